"""Plotly figures of signal mode: a rhythm strip with classified beats, VF episodes and noise, and an overview.

Long recordings are never plotted point by point: the strip shows a window (full resolution up to
MAX_STRIP_POINTS), the overview a min/max-decimated envelope of the whole recording.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ecg_core.classes import CLASS_BY_KEY, CLASS_KEYS
from ecg_core.pipeline.record_mode import RecordResult
from ecg_core.settings import WORKING_FS

MAX_STRIP_POINTS = 24_000  # about 66 s at 360 Hz in full resolution
OVERVIEW_BUCKETS = 2_000
VF_FILL = "rgba(140,86,75,0.22)"  # the VF class colour, translucent
NOISE_FILL = "rgba(120,120,120,0.28)"
NOISE_MARKER = "#9e9e9e"
TRACE_COLOUR = "#333333"


def minmax_decimate(y: np.ndarray, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values keeping each bucket's minimum and maximum (in time order): the envelope survives."""
    y = np.asarray(y)
    if y.size <= 2 * buckets:
        return np.arange(y.size), y
    edges = np.linspace(0, y.size, buckets + 1).astype(np.int64)
    size = int(np.min(np.diff(edges)))
    starts = edges[:-1]
    idx = starts[:, None] + np.arange(size)[None, :]
    block = y[idx]
    lo, hi = idx[np.arange(buckets), block.argmin(axis=1)], idx[np.arange(buckets), block.argmax(axis=1)]
    both = np.sort(np.stack([lo, hi], axis=1), axis=1).ravel()
    return both, y[both]


def _noise(result: RecordResult) -> list[tuple[float, float, str]]:
    """(start_s, end_s, reason) of the noise segments (none on results made before they existed)."""
    noise = getattr(result, "noise", None)
    if noise is None or not len(noise):
        return []
    return list(noise[["start_s", "end_s", "reason"]].itertuples(index=False, name=None))


def _beat_hover(result: RecordResult, rows: np.ndarray) -> list[str]:
    b = result.beats
    return [f"beat {i + 1}<br>{t:.2f} s<br>{CLASS_BY_KEY[p].name} ({p})<br>confidence {c:.0%}"
            + ("<br>inside a VF episode" if v else "")
            for i, t, p, c, v in zip(rows, b["time_s"].to_numpy()[rows], b["predicted"].to_numpy()[rows],
                                     b["confidence"].to_numpy()[rows], b["in_vf_episode"].to_numpy()[rows])]


def rhythm_strip(result: RecordResult, start_s: float = 0.0, length_s: float = 30.0, selected: int | None = None,
                 height: int = 360) -> go.Figure:
    """The prepared signal from start_s for length_s, beats marked in their predicted class colour.

    Each beat marker carries its row index in `result.beats` as customdata (for selection events).
    VF episodes are shaded; the x axis has a range slider for zooming within the window.
    """
    x = result.x
    a = int(max(0.0, start_s) * WORKING_FS)
    b = int(min(x.size, a + max(1.0, length_s) * WORKING_FS))
    seg = x[a:b]
    idx, y = minmax_decimate(seg, MAX_STRIP_POINTS // 2)
    fig = go.Figure()
    fig.add_trace(go.Scattergl(x=(a + idx) / WORKING_FS, y=y, mode="lines", line=dict(color=TRACE_COLOUR, width=1),
                               name="ECG (filtered, mV)", hoverinfo="skip"))
    in_win = np.flatnonzero((result.centres >= a) & (result.centres < b))
    predicted = result.beats["predicted"].to_numpy()
    for key in CLASS_KEYS:
        rows = in_win[predicted[in_win] == key]
        if rows.size == 0:
            continue
        c = result.centres[rows]
        fig.add_trace(go.Scatter(
            x=c / WORKING_FS, y=x[c], mode="markers", name=f"{CLASS_BY_KEY[key].name} ({key})",
            marker=dict(color=CLASS_BY_KEY[key].colour, size=9, line=dict(color="white", width=1)),
            customdata=rows, hovertext=_beat_hover(result, rows), hovertemplate="%{hovertext}<extra></extra>"))
    rows = in_win[predicted[in_win] == ""]  # beats inside noise: not classified
    if rows.size:
        c = result.centres[rows]
        hover = [f"beat {i + 1}<br>{t:.2f} s<br>inside noise: not classified"
                 for i, t in zip(rows, result.beats["time_s"].to_numpy()[rows])]
        fig.add_trace(go.Scatter(x=c / WORKING_FS, y=x[c], mode="markers", name="not classified (noise)",
                                 marker=dict(color=NOISE_MARKER, size=8, symbol="x"), customdata=rows,
                                 hovertext=hover, hovertemplate="%{hovertext}<extra></extra>"))
    if selected is not None and 0 <= selected < result.centres.size and a <= result.centres[selected] < b:
        c = int(result.centres[selected])
        fig.add_trace(go.Scatter(x=[c / WORKING_FS], y=[x[c]], mode="markers", name="selected beat",
                                 marker=dict(symbol="circle-open", size=20, color="black", line=dict(width=2)),
                                 hoverinfo="skip"))
    for s, e in result.episodes[["start_s", "end_s"]].itertuples(index=False, name=None):
        if e > a / WORKING_FS and s < b / WORKING_FS:
            fig.add_vrect(x0=max(s, a / WORKING_FS), x1=min(e, b / WORKING_FS), fillcolor=VF_FILL, line_width=0,
                          layer="below", annotation_text="VF", annotation_position="top left")
    for s, e, why in _noise(result):
        if e > a / WORKING_FS and s < b / WORKING_FS:
            fig.add_vrect(x0=max(s, a / WORKING_FS), x1=min(e, b / WORKING_FS), fillcolor=NOISE_FILL, line_width=0,
                          layer="below", annotation_text=f"noise: {why}", annotation_position="top left")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), hovermode="closest",
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0), dragmode="zoom",
                      paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)")
    fig.update_xaxes(title_text="time (s)", range=[a / WORKING_FS, b / WORKING_FS], showgrid=True,
                     gridcolor="rgba(200,0,0,0.15)", dtick=0.2 if length_s <= 12 else 1.0,
                     rangeslider=dict(visible=True, thickness=0.08))
    fig.update_yaxes(title_text="mV", showgrid=True, gridcolor="rgba(200,0,0,0.15)", fixedrange=False)
    return fig


def overview(result: RecordResult, window: tuple[float, float] | None = None, height: int = 170) -> go.Figure:
    """The whole recording as a min/max envelope, VF episodes shaded, non-normal beats as ticks above."""
    idx, y = minmax_decimate(result.x, OVERVIEW_BUCKETS)
    fig = go.Figure(go.Scattergl(x=idx / WORKING_FS, y=y, mode="lines", line=dict(color=TRACE_COLOUR, width=0.7),
                                 name="ECG envelope", hoverinfo="skip", showlegend=False))
    top = float(np.max(y)) if y.size else 1.0
    predicted = result.beats["predicted"].to_numpy()
    for key in CLASS_KEYS[1:]:
        rows = np.flatnonzero(predicted == key)
        if rows.size:
            fig.add_trace(go.Scattergl(
                x=result.centres[rows] / WORKING_FS, y=np.full(rows.size, top * 1.1), mode="markers",
                name=key, marker=dict(symbol="line-ns-open", size=10, color=CLASS_BY_KEY[key].colour),
                hovertemplate=f"{CLASS_BY_KEY[key].name} at %{{x:.1f}} s<extra></extra>"))
    for s, e in result.episodes[["start_s", "end_s"]].itertuples(index=False, name=None):
        fig.add_vrect(x0=s, x1=e, fillcolor=VF_FILL, line_width=0, layer="below")
    for s, e, _ in _noise(result):
        fig.add_vrect(x0=s, x1=e, fillcolor=NOISE_FILL, line_width=0, layer="below")
    if window is not None:
        fig.add_vrect(x0=window[0], x1=window[1], line=dict(color="#1f77b4", width=1.5), fillcolor="rgba(0,0,0,0)")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), showlegend=True,
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
                      paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)")
    fig.update_xaxes(title_text="time (s)", range=[0, result.x.size / WORKING_FS])
    fig.update_yaxes(visible=False, fixedrange=True)
    return fig
