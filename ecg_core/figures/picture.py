"""The user's own picture with what was read from it: the extracted trace, each beat's class, the explanation.

Plotly figures in the picture's pixel coordinates (rows grow downwards), testable without Streamlit.
"""

from __future__ import annotations

import base64

import cv2
import numpy as np
import plotly.graph_objects as go

from ecg_core.classes import CLASS_BY_KEY, CLASS_KEYS
from ecg_core.pipeline.picture import PictureResult

DISPLAY_MAX_SIDE = 1400  # the picture is shown at most this wide or tall (the browser scales it further)
TRACE_COLOUR = "rgba(235, 0, 170, 0.75)"  # magenta: stands out on black, blue, red and green traces and grids
HEAT_SCALE = "Turbo"


def display_image(rgb: np.ndarray) -> tuple[str, float]:
    """The picture as a PNG data URI at most DISPLAY_MAX_SIDE per side, and its scale from picture pixels."""
    h, w = rgb.shape[:2]
    scale = min(1.0, DISPLAY_MAX_SIDE / max(h, w))
    img = np.clip(np.asarray(rgb, dtype=np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if scale < 1.0:
        img = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("PNG encoding failed")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii"), scale


def trace_heat(result: PictureResult, heat_by_beat: np.ndarray) -> np.ndarray:
    """Explanation strength (0..1) at each point of the extracted trace.

    heat_by_beat (n_beats, picture columns of the model picture) is each beat's attribution along its window's
    time axis; a point of the trace takes the value of the beat whose R peak is nearest to it.
    """
    path_x = result.trace.path_x
    out = np.zeros(path_x.size, dtype=np.float32)
    if len(result.beats) == 0:
        return out
    beat_x = result.beats["x_px"].to_numpy(dtype=float)
    nearest = np.abs(path_x[:, None] - beat_x[None, :]).argmin(axis=1)
    for i in range(len(result.beats)):
        cols = result.window_picture_x(i)
        sel = nearest == i
        out[sel] = np.interp(path_x[sel], cols, heat_by_beat[i], left=0.0, right=0.0)
    return out


def picture_figure(display_uri: str, result: PictureResult, selected: int | None = None,
                   heat: np.ndarray | None = None, show_trace: bool = True, height: int | None = None) -> go.Figure:
    """The uploaded picture (`display_image`'s data URI), the extracted trace over it (or coloured by
    `heat`), and each beat labelled with its class and confidence.

    Beat markers carry their row in `result.beats` as customdata (for selection events).
    """
    uri = display_uri
    h, w = result.digitized.height, result.digitized.width
    fig = go.Figure()
    fig.add_layout_image(dict(source=uri, xref="x", yref="y", x=0, y=0, sizex=w, sizey=h, sizing="stretch",
                              layer="below"))
    tr = result.trace
    if show_trace and heat is None:
        fig.add_trace(go.Scatter(x=tr.path_x, y=tr.path_y, mode="lines", name="extracted trace",
                                   line=dict(color=TRACE_COLOUR, width=2), hoverinfo="skip"))
    if heat is not None:
        fig.add_trace(go.Scatter(
            x=tr.path_x, y=tr.path_y, mode="markers", name="explanation",
            marker=dict(color=heat, colorscale=HEAT_SCALE, cmin=0, cmax=1, size=4,
                        colorbar=dict(title="influence", thickness=10, len=0.6)),
            hoverinfo="skip"))
    b = result.beats
    top = float(np.min(tr.path_y)) if tr.path_y.size else 0.0
    label_y = max(0.0, top - 0.04 * h)
    for key in CLASS_KEYS:
        rows = np.flatnonzero(b["predicted"].to_numpy() == key)
        if rows.size == 0:
            continue
        c = CLASS_BY_KEY[key]
        text = [f"{key}{'?' if b['uncertain'].iloc[r] else ''} {b['confidence'].iloc[r]:.0%}" for r in rows]
        hover = [f"beat {r + 1} at {b['time_s'].iloc[r]:.2f} s: {c.name}, {b['confidence'].iloc[r]:.0%}"
                 + (" (uncertain: " + b["why_uncertain"].iloc[r] + ")" if b["uncertain"].iloc[r] else "")
                 for r in rows]
        fig.add_trace(go.Scatter(
            x=b["x_px"].to_numpy()[rows], y=b["y_px"].to_numpy()[rows], mode="markers", name=f"{c.name} ({key})",
            marker=dict(color=c.colour, size=10, line=dict(color="white", width=1.5)), customdata=rows,
            hovertext=hover, hovertemplate="%{hovertext}<extra></extra>"))
        fig.add_trace(go.Scatter(x=b["x_px"].to_numpy()[rows], y=np.full(rows.size, label_y), mode="text",
                                 text=text, textfont=dict(color=c.colour, size=11), showlegend=False,
                                 hoverinfo="skip"))
    if selected is not None and 0 <= selected < len(b):
        fig.add_trace(go.Scatter(x=[b["x_px"].iloc[selected]], y=[b["y_px"].iloc[selected]], mode="markers",
                                 name="selected beat", hoverinfo="skip",
                                 marker=dict(symbol="circle-open", size=24, color="black", line=dict(width=2.5))))
    fig.update_xaxes(range=[0, w], visible=False, constrain="domain")
    fig.update_yaxes(range=[h, 0], visible=False, scaleanchor="x", scaleratio=1, constrain="domain")
    fig.update_layout(height=height or int(min(720, max(260, 900 * h / max(w, 1)))), dragmode="zoom",
                      margin=dict(l=0, r=0, t=30, b=0), legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
                      paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)", hovermode="closest")
    return fig


def annotated_png(display_uri: str, result: PictureResult) -> bytes:
    """The shown picture (a `display_image` data URI) with the extracted trace and each beat's class drawn on
    it, as PNG bytes (for reports; OpenCV, no browser needed)."""
    raw = base64.b64decode(display_uri.split(",", 1)[1])
    img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    scale = img.shape[1] / max(result.digitized.width, 1)
    tr = result.trace
    pts = np.round(np.stack([tr.path_x, tr.path_y], 1) * scale * 16).astype(np.int32)
    cv2.polylines(img, [pts], False, (170, 0, 235), max(1, round(2 * scale)), cv2.LINE_AA, 4)
    b = result.beats
    for x, y, key, conf, unsure in zip(b["x_px"], b["y_px"], b["predicted"], b["confidence"], b["uncertain"]):
        rgb = tuple(int(CLASS_BY_KEY[key].colour.lstrip("#")[i: i + 2], 16) for i in (0, 2, 4))
        centre = (int(round(x * scale)), int(round(y * scale)))
        cv2.circle(img, centre, 5, rgb[::-1], -1, cv2.LINE_AA)
        label = f"{key}{'?' if unsure else ''} {conf:.0%}"
        cv2.putText(img, label, (centre[0] - 14, max(12, centre[1] - 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    rgb[::-1], 1, cv2.LINE_AA)
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def input_png(display_uri: str) -> bytes:
    """The shown picture itself as PNG bytes."""
    return base64.b64decode(display_uri.split(",", 1)[1])
