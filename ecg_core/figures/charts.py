"""Plotly figure builders for the app (no Streamlit here: every figure is testable on its own).

Colours come from `ecg_core.classes`, so a class keeps one colour on every chart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ecg_core.classes import CLASS_BY_KEY, CLASS_INDEX, CLASS_KEYS, CLASSES
from ecg_core.figures.measurements import group_label

FONT = dict(family="Inter, Segoe UI, Helvetica, Arial, sans-serif", size=13)
MODEL_PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2", "#ff9da6",
                 "#9d755d", "#bab0ac")
REFERENCE_COLOUR = "#555555"


def class_label(key: str) -> str:
    """'Premature ventricular contraction (V)'."""
    return f"{CLASS_BY_KEY[key].name} ({key})"


def _style(fig: go.Figure, height: int, title: str | None = None, top: int = 10) -> go.Figure:
    fig.update_layout(height=height, font=FONT, margin=dict(l=10, r=10, t=40 if title else top, b=10),
                      title=dict(text=title, x=0, xanchor="left") if title else None,
                      paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)")
    return fig


def _hex_to_rgba(colour: str, alpha: float) -> str:
    c = colour.lstrip("#")
    r, g, b = (int(c[i: i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


# ---------------------------------------------------------------- one prediction

def probability_bars(probs: Sequence[float], highlight: int | None = None, threshold: float | None = None,
                     height: int = 300) -> go.Figure:
    """Horizontal bars of all class probabilities, highest on top; the predicted class is highlighted.

    `threshold` draws the model card's low-confidence threshold as a dotted line.
    """
    p = np.asarray(probs, dtype=float)
    if p.shape != (len(CLASS_KEYS),):
        raise ValueError(f"expected {len(CLASS_KEYS)} probabilities, got shape {p.shape}")
    top = int(np.argmax(p)) if highlight is None else int(highlight)
    order = np.argsort(p, kind="stable")  # ascending: plotly draws the first bar at the bottom
    keys = [CLASS_KEYS[i] for i in order]
    colours = [CLASS_BY_KEY[k].colour if i == top else _hex_to_rgba(CLASS_BY_KEY[k].colour, 0.45)
               for k, i in zip(keys, order)]
    fig = go.Figure(go.Bar(
        x=p[order], y=[class_label(k) for k in keys], orientation="h",
        marker=dict(color=colours, line=dict(color=["#111" if i == top else "rgba(0,0,0,0)" for i in order],
                                             width=2)),
        text=[f"{v:.1%}" for v in p[order]], textposition="outside", cliponaxis=False,
        hovertemplate="%{y}: %{x:.2%}<extra></extra>", name="probability"))
    if threshold is not None:
        fig.add_vline(x=float(threshold), line=dict(color=REFERENCE_COLOUR, dash="dot", width=1),
                      annotation_text=f"threshold {threshold:.0%}", annotation_position="top",
                      annotation_font_size=11)
    fig.update_xaxes(range=[0, 1.12], tickformat=".0%", title_text="probability", showgrid=True,
                     gridcolor="rgba(128,128,128,0.2)")
    fig.update_yaxes(title_text=None)
    fig.update_layout(showlegend=False, bargap=0.25)
    return _style(fig, height, top=30 if threshold is not None else 10)


def measurement_effect_bars(effects: Mapping[str, float], class_key: str, height: int | None = None) -> go.Figure:
    """Horizontal bars of how much each group of beat measurements moves the trees' probability of one class,
    in percentage points (positive: speaks for the class, in its colour; negative: grey), largest on top.

    `effects`: group name -> change of probability (Classifier.measurement_effects of one beat); groups without
    a finite number (not measured, e.g. V1 on a one-lead recording) are left out.
    """
    items = [(str(k), float(v)) for k, v in effects.items() if v is not None and np.isfinite(float(v))]
    items.sort(key=lambda kv: abs(kv[1]))  # ascending: plotly draws the first bar at the bottom
    pp = [100.0 * v for _, v in items]
    colour = CLASS_BY_KEY[class_key].colour
    fig = go.Figure(go.Bar(
        x=pp, y=[group_label(k) for k, _ in items], orientation="h", customdata=[k for k, _ in items],
        marker_color=[colour if v >= 0 else "#9a9a9a" for v in pp],
        text=[f"{round(v, 1) + 0.0:+.1f} pp" for v in pp], textposition="outside", cliponaxis=False,
        hovertemplate="%{customdata}: %{x:+.1f} percentage points<extra></extra>", name="effect"))
    reach = max([abs(v) for v in pp] + [1.0]) * 1.35
    fig.add_vline(x=0, line=dict(color=REFERENCE_COLOUR, width=1))
    fig.update_xaxes(range=[-reach, reach], title_text=f"change of P({class_key}) against a typical normal beat "
                     "(percentage points)", showgrid=True, gridcolor="rgba(128,128,128,0.2)", zeroline=False)
    fig.update_yaxes(title_text=None)
    fig.update_layout(showlegend=False, bargap=0.3)
    return _style(fig, height or 60 + 34 * max(len(items), 1))


# ---------------------------------------------------------------- per-class and per-model summaries

def recall_bars(recall: Mapping[str, float], title: str | None = None, height: int = 300) -> go.Figure:
    """Vertical bars of one model's per-class recall, in class order and class colours."""
    keys = [k for k in CLASS_KEYS if k in recall and recall[k] is not None]
    values = [float(recall[k]) for k in keys]
    fig = go.Figure(go.Bar(
        x=[class_label(k) for k in keys], y=values, marker_color=[CLASS_BY_KEY[k].colour for k in keys],
        text=[f"{v:.0%}" for v in values], textposition="outside", cliponaxis=False,
        hovertemplate="%{x}: recall %{y:.1%}<extra></extra>"))
    fig.update_yaxes(range=[0, 1.1], tickformat=".0%", title_text="recall (share of beats found)")
    fig.update_layout(showlegend=False)
    return _style(fig, height, title)


def per_class_f1_bars(f1_by_model: Mapping[str, Mapping[str, float]], reference: float | None = None,
                      reference_label: str = "reported, not reproduced", height: int = 380) -> go.Figure:
    """Grouped bars: per-class F1 (x = class) for each model (one colour per model).

    `reference` draws a labelled horizontal line (e.g. a macro F1 someone reported but we did not reproduce).
    """
    fig = go.Figure()
    for i, (model, f1) in enumerate(f1_by_model.items()):
        keys = [k for k in CLASS_KEYS if k in f1]
        fig.add_trace(go.Bar(
            x=[class_label(k) for k in keys], y=[float(f1[k]) for k in keys], name=model,
            marker_color=MODEL_PALETTE[i % len(MODEL_PALETTE)],
            hovertemplate=f"{model}<br>%{{x}}: F1 %{{y:.3f}}<extra></extra>"))
    if reference is not None:
        fig.add_hline(y=float(reference), line=dict(color=REFERENCE_COLOUR, dash="dash", width=1.5),
                      annotation_text=f"{reference_label}: macro F1 {reference:.3f}",
                      annotation_position="top left", annotation_font_size=11)
    fig.update_yaxes(range=[0, 1.05], title_text="F1 score")
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=-0.2, x=0), bargap=0.2)
    return _style(fig, height)


def confusion_heatmap(matrix: Sequence[Sequence[int]], title: str | None = None, height: int = 460) -> go.Figure:
    """Confusion matrix (rows = true class, columns = predicted), coloured by row share, annotated with counts."""
    m = np.asarray(matrix, dtype=float)
    n = len(CLASS_KEYS)
    if m.shape != (n, n):
        raise ValueError(f"expected a {n}x{n} confusion matrix, got shape {m.shape}")
    rows = m.sum(axis=1, keepdims=True)
    share = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    labels = [class_label(k) for k in CLASS_KEYS]
    text = [[f"{int(c)}<br>{s:.0%}" for c, s in zip(rc, rs)] for rc, rs in zip(m, share)]
    fig = go.Figure(go.Heatmap(
        z=share, x=labels, y=labels, text=text, texttemplate="%{text}", colorscale="Blues", zmin=0, zmax=1,
        colorbar=dict(title="share of<br>true class", tickformat=".0%"),
        hovertemplate="true %{y}<br>predicted %{x}<br>%{text}<extra></extra>"))
    fig.update_xaxes(title_text="predicted class", side="bottom", tickangle=-30)
    fig.update_yaxes(title_text="true class", autorange="reversed")
    return _style(fig, height, title)


def size_vs_f1_scatter(rows: Sequence[Mapping], reference: float | None = None,
                       reference_label: str = "reported, not reproduced", height: int = 400) -> go.Figure:
    """Model file size (MB, log axis) against macro F1; one labelled marker per model.

    Each row needs "model", "size_mb" and "macro_f1"; "latency_ms" and "architecture" are shown on hover.
    """
    fig = go.Figure()
    for i, r in enumerate(rows):
        hover = (f"<b>{r['model']}</b><br>{r.get('architecture') or ''}<br>size %{{x:.2f}} MB<br>"
                 f"macro F1 %{{y:.3f}}")
        if r.get("latency_ms") is not None:
            hover += f"<br>latency {float(r['latency_ms']):.1f} ms / image"
        fig.add_trace(go.Scatter(
            x=[float(r["size_mb"])], y=[float(r["macro_f1"])], mode="markers+text", name=str(r["model"]),
            text=[str(r["model"])], textposition="top center",
            marker=dict(size=14, color=MODEL_PALETTE[i % len(MODEL_PALETTE)], line=dict(color="#222", width=1)),
            hovertemplate=hover + "<extra></extra>"))
    if reference is not None:
        fig.add_hline(y=float(reference), line=dict(color=REFERENCE_COLOUR, dash="dash", width=1.5),
                      annotation_text=f"{reference_label}: {reference:.3f}", annotation_position="bottom right",
                      annotation_font_size=11)
    fig.update_xaxes(type="log", title_text="model file size (MB, log scale)")
    fig.update_yaxes(range=[0, 1.05], title_text="macro F1")
    fig.update_layout(showlegend=False)
    return _style(fig, height)


# ---------------------------------------------------------------- how an image is made

@dataclass
class PipelineExample:
    """One real beat through the training pipeline: raw -> filtered -> window -> image."""

    record: str
    label: str  # class key
    fs: int
    time_s: np.ndarray  # context time axis (s from record start)
    raw: np.ndarray  # resampled, unfiltered (mV)
    filtered: np.ndarray  # band-pass filtered (mV)
    window_start_s: float
    window_end_s: float
    r_peak_s: float
    window: np.ndarray  # the filtered beat window
    image: np.ndarray  # uint8 normalised image, as the model sees it


def pipeline_example(record_path: str | Path, label: str | None = None, context_s: float = 2.5) -> PipelineExample:
    """Run one annotated beat of a WFDB record through signals -> beats -> render -> imaging.

    `label` picks the first beat of that class (default: the first usable beat of any of the six classes).
    """
    import wfdb

    from ecg_core.picture.imaging import normalise_batch
    from ecg_core.picture.render import render
    from ecg_core.settings import WINDOW_AFTER, WINDOW_BEFORE, WORKING_FS
    from ecg_core.signal.beats import labelled_beats
    from ecg_core.signal.signals import bandpass, choose_lead, read_annotations, resample

    path = Path(record_path)
    rec = wfdb.rdrecord(str(path))
    lead, _ = choose_lead(list(rec.sig_name or []))
    raw = resample(np.nan_to_num(rec.p_signal[:, lead]), rec.fs)
    filtered = bandpass(raw)
    ann = read_annotations(path, rec.fs)
    beats = labelled_beats(filtered, ann.sample, ann.symbol)
    if len(beats) == 0:
        raise ValueError(f"{path.name}: no usable beat of the six classes")
    wanted = np.flatnonzero(beats.labels == CLASS_INDEX[label]) if label else np.arange(len(beats))
    if wanted.size == 0:
        raise ValueError(f"{path.name}: no {label} beat")
    i = int(wanted[0])
    centre = int(beats.centres[i])
    half = int(context_s * WORKING_FS)
    lo, hi = max(0, centre - half), min(filtered.size, centre + half)
    image = normalise_batch(render(beats.windows[i: i + 1], "waveform"), "waveform")[0]
    return PipelineExample(
        record=path.name, label=CLASS_KEYS[int(beats.labels[i])], fs=WORKING_FS,
        time_s=np.arange(lo, hi) / WORKING_FS, raw=raw[lo:hi], filtered=filtered[lo:hi],
        window_start_s=(centre - WINDOW_BEFORE) / WORKING_FS, window_end_s=(centre + WINDOW_AFTER) / WORKING_FS,
        r_peak_s=centre / WORKING_FS, window=beats.windows[i], image=image)


def pipeline_figure(ex: PipelineExample, height: int = 330) -> go.Figure:
    """Four panels: raw signal, band-pass filtered signal with the beat window, the window, the image."""
    colour = CLASS_BY_KEY[ex.label].colour
    fig = make_subplots(rows=1, cols=4, column_widths=[0.3, 0.3, 0.2, 0.2], horizontal_spacing=0.05,
                        subplot_titles=("1. raw lead (resampled)", "2. band-pass filtered",
                                        "3. beat window", "4. image (model input)"))
    fig.add_trace(go.Scatter(x=ex.time_s, y=ex.raw, line=dict(color="#777", width=1), name="raw",
                             hovertemplate="%{x:.2f} s: %{y:.2f} mV<extra>raw</extra>"), 1, 1)
    fig.add_trace(go.Scatter(x=ex.time_s, y=ex.filtered, line=dict(color="#333", width=1), name="filtered",
                             hovertemplate="%{x:.2f} s: %{y:.2f} mV<extra>filtered</extra>"), 1, 2)
    fig.add_vrect(x0=ex.window_start_s, x1=ex.window_end_s, fillcolor=_hex_to_rgba(colour, 0.18), line_width=0,
                  row=1, col=2)
    t_win = np.arange(ex.window.size) / ex.fs - (ex.r_peak_s - ex.window_start_s)
    fig.add_trace(go.Scatter(x=t_win, y=ex.window, line=dict(color=colour, width=1.5), name="window",
                             hovertemplate="%{x:.2f} s from R: %{y:.2f} mV<extra>window</extra>"), 1, 3)
    fig.add_vline(x=0, line=dict(color=colour, dash="dot", width=1), row=1, col=3)
    fig.add_trace(go.Heatmap(z=ex.image[::-1], colorscale="gray", showscale=False, hoverinfo="skip"), 1, 4)
    fig.update_xaxes(title_text="time (s)", row=1, col=1)
    fig.update_xaxes(title_text="time (s)", row=1, col=2)
    fig.update_xaxes(title_text="s from R peak", row=1, col=3)
    fig.update_yaxes(title_text="mV", row=1, col=1)
    fig.update_xaxes(visible=False, row=1, col=4)
    fig.update_yaxes(visible=False, scaleanchor="x4", row=1, col=4)
    fig.update_layout(showlegend=False)
    return _style(fig, height, top=40)


def class_colours() -> dict[str, str]:
    """Class key -> colour (for tables and legends)."""
    return {c.key: c.colour for c in CLASSES}
