"""A self-contained HTML report for reviewers, built in memory (nothing is written to disk).

One page that travels alone (no external files, scripts or fonts): the recording as an inline SVG strip
(drawn here, no plotting engine needed) or the user's own picture, the beat labels, the counts per class,
the VF episodes, the probabilities of a selected beat with its model picture and Grad-CAM picture (PNG
bytes passed in: explanations are computed by the caller, never here), the model's card, its numbers on
patients it never saw with their protocol, the time the report was made, and the notice that this is
not a medical device.

`build_report` takes plain inputs (a beats table, PNG bytes, a card dict) and serves any source: a
recording, a digitized picture, a single beat. `record_report` fills it from a signal-mode RecordResult.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from ecg_core.classes import CLASS_BY_KEY, CLASS_KEYS, CLASS_NAMES

NOTICE = "Research and teaching tool, not a medical device"
NOTICE_DETAIL = "Never use it to diagnose or treat anyone; every label here is a model's guess to be checked."
PROTOCOL = ("DS1 -> DS2, patients never seen: trained on the MIT-BIH records of DS1 (and the vfdb training "
            "list), tested on the other patients (DS2, de Chazal et al. 2004, and the vfdb test list)")
MAX_TABLE_ROWS = 5000  # beats listed in the table; a 24-hour recording's full table belongs in the CSV
STRIP_ROW_S = 10.0  # seconds per row of the detailed strip
STRIP_ROWS = 6
STRIP_WIDTH_PX = 1000
ROW_PX = 120
PX_PER_MV = 40.0
GRID_MINOR = "#f6d5d5"
GRID_MAJOR = "#eaa9a9"
VF_FILL = "rgba(140,86,75,0.22)"
TRACE = "#222222"
CARD_FIELDS = (  # (card key, label) shown in the model section
    ("name", "Model"), ("architecture", "Architecture"), ("representation", "Input picture"),
    ("split", "Trained on split"), ("preprocessing_version", "Preprocessing version"), ("params", "Parameters"),
    ("low_confidence_threshold", "Low-confidence threshold"),
)


@dataclass(frozen=True)
class Picture:
    """An image for the report: PNG (or SVG) bytes with a caption."""

    caption: str
    data: bytes
    mime: str = "image/png"

    def data_uri(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


# ---------------------------------------------------------------- SVG strips

def _decimate(y: np.ndarray, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values keeping each bucket's minimum and maximum (the envelope survives)."""
    y = np.asarray(y, dtype=np.float64)
    if y.size <= 2 * buckets:
        return np.arange(y.size), y
    edges = np.linspace(0, y.size, buckets + 1).astype(np.int64)
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        seg = y[a:b]
        lo, hi = a + int(np.argmin(seg)), a + int(np.argmax(seg))
        out.extend(sorted((lo, hi)))
    idx = np.array(out, dtype=np.int64)
    return idx, y[idx]


def _points(xs: np.ndarray, ys: np.ndarray) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys))


def strip_svg(x: np.ndarray, fs: float, marks: Sequence[tuple[float, str]] = (),
              shaded: Sequence[tuple[float, float]] = (), start_s: float = 0.0, row_s: float = STRIP_ROW_S,
              rows: int = STRIP_ROWS, selected_s: float | None = None, width: int = STRIP_WIDTH_PX) -> bytes:
    """An ECG-paper strip (SVG bytes): rows of row_s seconds from start_s, beats labelled with their class key.

    x: the signal in mV at rate fs; marks: (time s, class key); shaded: (start s, end s) VF episodes.
    Grid lines every 0.2 s and 0.5 mV, darker every 1 s and 1 mV (the paper's 1-mm lines are left out).
    """
    x = np.asarray(x, dtype=np.float64)
    total_s = x.size / fs
    start_s = max(0.0, min(start_s, max(0.0, total_s - row_s)))
    rows = max(1, min(rows, int(np.ceil((total_s - start_s) / row_s))))
    left, top = 42, 8
    height = top + rows * ROW_PX + 22
    px_s = (width - left - 8) / row_s
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
             f'<rect width="{width}" height="{height}" fill="white"/>']
    for r in range(rows):
        t0 = start_s + r * row_s
        t1 = min(t0 + row_s, total_s)
        y0 = top + r * ROW_PX
        mid = y0 + ROW_PX * 0.58
        parts.append(f'<clipPath id="row{r}"><rect x="{left}" y="{y0}" width="{width - left - 8}" '
                     f'height="{ROW_PX}"/></clipPath>')
        for s, e in shaded:
            a, b = max(s, t0), min(e, t1)
            if b > a:
                parts.append(f'<rect x="{left + (a - t0) * px_s:.1f}" y="{y0}" width="{(b - a) * px_s:.1f}" '
                             f'height="{ROW_PX}" fill="{VF_FILL}"/>')
        for k in range(int(row_s / 0.2) + 1):
            gx = left + k * 0.2 * px_s
            colour = GRID_MAJOR if k % 5 == 0 else GRID_MINOR
            parts.append(f'<line x1="{gx:.1f}" y1="{y0}" x2="{gx:.1f}" y2="{y0 + ROW_PX}" stroke="{colour}" '
                         'stroke-width="0.6"/>')
        for k in range(-6, 7):
            gy = mid - k * 0.5 * PX_PER_MV
            if y0 <= gy <= y0 + ROW_PX:
                parts.append(f'<line x1="{left}" y1="{gy:.1f}" x2="{width - 8}" y2="{gy:.1f}" '
                             f'stroke="{GRID_MAJOR if k % 2 == 0 else GRID_MINOR}" stroke-width="0.6"/>')
        parts.append(f'<text x="2" y="{y0 + 14}" fill="#555">{t0:.0f} s</text>')
        a, b = int(t0 * fs), int(t1 * fs)
        seg = x[a:b]
        if seg.size:
            idx, yv = _decimate(seg, width - left)
            baseline = float(np.median(seg))
            parts.append(f'<polyline clip-path="url(#row{r})" fill="none" stroke="{TRACE}" stroke-width="0.9" '
                         f'points="{_points(left + (idx / fs) * px_s, mid - (yv - baseline) * PX_PER_MV)}"/>')
        for t, key in marks:
            if t0 <= t < t1:
                c = CLASS_BY_KEY[key].colour if key in CLASS_BY_KEY else "#555555"
                parts.append(f'<text x="{left + (t - t0) * px_s:.1f}" y="{y0 + 12}" fill="{c}" '
                             f'text-anchor="middle" font-weight="bold">{html.escape(key)}</text>')
        if selected_s is not None and t0 <= selected_s < t1:
            sx = left + (selected_s - t0) * px_s
            parts.append(f'<rect x="{sx - 14:.1f}" y="{y0 + 1}" width="28" height="{ROW_PX - 2}" fill="none" '
                         'stroke="#1f77b4" stroke-width="2"/>')
    parts.append(f'<text x="{left}" y="{height - 6}" fill="#555">grid: 0.2 s and 0.5 mV '
                 f'({PX_PER_MV:g} px per mV); letters: predicted class; shaded: VF episodes</text>')
    parts.append("</svg>")
    return "".join(parts).encode()


def overview_svg(x: np.ndarray, fs: float, marks: Sequence[tuple[float, str]] = (),
                 shaded: Sequence[tuple[float, float]] = (), window: tuple[float, float] | None = None,
                 width: int = STRIP_WIDTH_PX, height: int = 90) -> bytes:
    """The whole recording as a min/max envelope (SVG bytes): VF shaded, non-normal beats as ticks above."""
    x = np.asarray(x, dtype=np.float64)
    total_s = max(x.size / fs, 1e-9)
    left, right = 42, 8
    px_s = (width - left - right) / total_s
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
             f'<rect width="{width}" height="{height}" fill="white"/>']
    for s, e in shaded:
        parts.append(f'<rect x="{left + s * px_s:.1f}" y="14" width="{max((e - s) * px_s, 1):.1f}" '
                     f'height="{height - 30}" fill="{VF_FILL}"/>')
    if x.size:
        idx, yv = _decimate(x, width - left - right)
        lo, hi = np.percentile(x, [0.5, 99.5])
        span = max(hi - lo, 1e-6)
        ys = 16 + (height - 34) * (1 - (np.clip(yv, lo, hi) - lo) / span)
        parts.append(f'<polyline fill="none" stroke="{TRACE}" stroke-width="0.6" '
                     f'points="{_points(left + (idx / fs) * px_s, ys)}"/>')
    for t, key in marks:
        if key != "N" and key in CLASS_BY_KEY:
            tx = left + t * px_s
            parts.append(f'<line x1="{tx:.1f}" y1="3" x2="{tx:.1f}" y2="12" stroke="{CLASS_BY_KEY[key].colour}" '
                         'stroke-width="1"/>')
    if window is not None:
        parts.append(f'<rect x="{left + window[0] * px_s:.1f}" y="14" width="{(window[1] - window[0]) * px_s:.1f}" '
                     f'height="{height - 30}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>')
    parts.append(f'<text x="2" y="{height - 4}" fill="#555">0 s</text>'
                 f'<text x="{width - right}" y="{height - 4}" fill="#555" text-anchor="end">{total_s:.0f} s</text>')
    parts.append("</svg>")
    return "".join(parts).encode()


# ---------------------------------------------------------------- model numbers

def unseen_numbers(card: Mapping, stored: Mapping | None = None) -> list[tuple[str, str]]:
    """The model's numbers on patients it never saw, with their protocol (from the card, else stored results)."""
    metrics = dict(card.get("metrics") or {})
    if card.get("split") == "all" and metrics.get("crossval_macro_f1") is not None:
        # trained on every patient: only its recipe's patient-wise cross-validation speaks for new patients
        rows = [("Cross-validated macro F1", f"{float(metrics['crossval_macro_f1']):.3f}"),
                ("Protocol", str(metrics.get("crossval_protocol", "patient-wise cross-validation")))]
        if metrics.get("ds1_ds2_one_lead_macro_f1") is not None:
            rows.append(("DS1 -> DS2 macro F1 (the same recipe trained on DS1 only)",
                         f"{float(metrics['ds1_ds2_one_lead_macro_f1']):.3f}"))
        recall = metrics.get("crossval_recall") or {}
        if recall:
            rows.append(("Recall per class", ", ".join(f"{k} {float(v):.2f}" for k, v in recall.items())))
        return rows
    f1 = metrics.get("recordwise_macro_f1")
    acc = metrics.get("recordwise_accuracy")
    recall = metrics.get("recordwise_recall") or {}
    if stored is not None and stored.get("split") == "recordwise":
        m = stored.get("metrics") or {}
        f1 = m.get("macro_f1", f1) if f1 is None else f1
        acc = m.get("accuracy", acc) if acc is None else acc
        if not recall and m.get("per_class"):
            recall = {k: v.get("recall") for k, v in m["per_class"].items()}
    if f1 is None:
        return [("Record-wise macro F1", "not evaluated on patients never seen")]
    rows = [("Record-wise macro F1", f"{float(f1):.3f}"), ("Protocol", PROTOCOL)]
    if acc is not None:
        rows.insert(1, ("Record-wise accuracy", f"{float(acc):.3f}"))
    if metrics.get("recordwise_protocol"):
        rows.append(("Windows evaluated", str(metrics["recordwise_protocol"])))
    if stored is not None and stored.get("test_records"):
        tr = list(stored["test_records"])
        rows.append(("Test records", f"{len(tr)}: " + " ".join(str(r) for r in tr)))
    if recall:
        rows.append(("Recall per class", ", ".join(f"{k} {float(v):.2f}" for k, v in recall.items()
                                                    if v is not None)))
    return rows


# ---------------------------------------------------------------- HTML

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1040px;color:#222;
line-height:1.4;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:1.8rem;border-bottom:1px solid #ddd}
.notice{background:#fff3cd;border:1px solid #e0c36a;padding:.5rem .8rem;border-radius:.3rem;font-weight:600}
table{border-collapse:collapse;font-size:.85rem;margin:.4rem 0}td,th{border:1px solid #ddd;padding:.15rem .45rem;
text-align:left}th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
.facts td:first-child{font-weight:600;background:#fafafa}.chip{color:white;border-radius:.3rem;padding:0 .35rem;
font-weight:600}.scroll{max-height:32rem;overflow:auto;border:1px solid #eee}img{max-width:100%}
figure{margin:.6rem 0}figcaption{font-size:.8rem;color:#555}.bar{display:inline-block;height:.7rem;
vertical-align:middle}.muted{color:#666;font-size:.85rem}
@media print{.scroll{max-height:none;overflow:visible;border:0}body{margin:0;max-width:none}}
"""


def _chip(key: str) -> str:
    c = CLASS_BY_KEY.get(key)
    if c is None:
        return html.escape(str(key))
    return f'<span class="chip" style="background:{c.colour}">{html.escape(c.key)}</span>'


def _cell(v) -> str:
    if isinstance(v, bool | np.bool_):
        return f"<td>{'yes' if v else ''}</td>"
    if isinstance(v, int | np.integer):
        return f'<td class="num">{int(v)}</td>'
    if isinstance(v, float | np.floating):
        return f'<td class="num">{float(v):.4g}</td>' if np.isfinite(v) else "<td></td>"
    if isinstance(v, str) and v in CLASS_BY_KEY:
        return f"<td>{_chip(v)}</td>"
    return f"<td>{html.escape(str(v))}</td>"


def _table(df: pd.DataFrame, max_rows: int | None = None, css: str = "") -> str:
    shown = df if max_rows is None else df.head(max_rows)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>"
                   for row in shown.itertuples(index=False, name=None))
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _facts(rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f'<table class="facts"><tbody>{body}</tbody></table>'


def _figure(p: Picture) -> str:
    return (f'<figure><img src="{p.data_uri()}" alt="{html.escape(p.caption)}"/>'
            f"<figcaption>{html.escape(p.caption)}</figcaption></figure>")


def class_counts(beats: pd.DataFrame) -> dict[str, int]:
    if "predicted" not in beats:
        return {k: 0 for k in CLASS_KEYS}
    vc = beats["predicted"].value_counts()
    return {k: int(vc.get(k, 0)) for k in CLASS_KEYS}


def _counts_table(counts: Mapping[str, int]) -> str:
    total = sum(counts.values())
    rows = []
    for k in CLASS_KEYS:
        n = int(counts.get(k, 0))
        pct = 100.0 * n / total if total else 0.0
        rows.append(f"<tr><td>{_chip(k)} {html.escape(CLASS_NAMES[k])}</td><td class=\"num\">{n}</td>"
                    f'<td class="num">{pct:.1f} %</td></tr>')
    return ("<table><thead><tr><th>class</th><th>beats</th><th>percent</th></tr></thead><tbody>"
            + "".join(rows) + f'</tbody><tfoot><tr><th>all</th><th class="num">{total}</th><th></th></tr>'
            "</tfoot></table>")


def _probabilities(probs: Sequence[float], threshold: float | None) -> str:
    p = np.asarray(probs, dtype=float)
    top = int(np.argmax(p))
    rows = []
    for i in np.argsort(-p):
        k = CLASS_KEYS[int(i)]
        w = max(1.0, 200 * float(p[i]))
        mark = " (predicted)" if i == top else ""
        rows.append(f"<tr><td>{_chip(k)} {html.escape(CLASS_NAMES[k])}{mark}</td><td class=\"num\">{p[i]:.1%}</td>"
                    f'<td><span class="bar" style="width:{w:.0f}px;background:{CLASS_BY_KEY[k].colour}"></span></td>'
                    "</tr>")
    low = (f'<p class="muted">Below this model\'s low-confidence threshold ({threshold:.0%}): uncertain.</p>'
           if threshold is not None and p[top] < threshold else "")
    return ("<table><thead><tr><th>class</th><th>probability</th><th></th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>" + low)


def build_report(title: str, *, beats: pd.DataFrame, model_card: Mapping,
                 input_image_png: bytes | None = None, trace_png: bytes | None = None,
                 pictures: Sequence[Picture] = (), counts: Mapping[str, int] | None = None,
                 episodes: pd.DataFrame | None = None, probabilities: Sequence[float] | None = None,
                 selected_label: str = "", beat_png: bytes | None = None, gradcam_png: bytes | None = None,
                 facts: Sequence[tuple[str, str]] = (), notes: Sequence[str] = (),
                 stored_result: Mapping | None = None, made_at: datetime | None = None,
                 max_rows: int = MAX_TABLE_ROWS) -> bytes:
    """One self-contained HTML page (UTF-8 bytes).

    beats: one row per beat (e.g. sample, time_s, predicted, confidence, the six probabilities);
    input_image_png: the user's own picture (digitized input); trace_png: the trace / strip as PNG;
    pictures: further images (PNG or SVG, e.g. a strip from strip_svg); probabilities (six, in
    CLASS_KEYS order), beat_png (the model's picture) and gradcam_png describe the selected beat;
    facts: (label, value) lines about the input; stored_result: the model's stored evaluation JSON.
    """
    made = (made_at or datetime.now(UTC)).astimezone(UTC)
    counts = dict(counts) if counts is not None else class_counts(beats)
    figs = []
    if input_image_png is not None:
        figs.append(Picture("The input picture", input_image_png))
    if trace_png is not None:
        figs.append(Picture("The trace", trace_png))
    figs.extend(pictures)
    threshold = model_card.get("low_confidence_threshold")
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8"/>',
           f"<title>{html.escape(title)}</title>", f"<style>{CSS}</style></head><body>",
           f"<h1>{html.escape(title)}</h1>",
           f'<p class="notice">{NOTICE}. {html.escape(NOTICE_DETAIL)}</p>',
           f'<p class="muted">Made {made:%Y-%m-%d %H:%M:%S} UTC by the ECG arrhythmia dashboard with model '
           f"<code>{html.escape(str(model_card.get('name', '?')))}</code>.</p>"]
    if facts:
        out += ["<h2>Input</h2>", _facts(facts)]
    if figs:
        out += ["<h2>Pictures</h2>", *(_figure(p) for p in figs)]
    out += ["<h2>Beats per class</h2>", _counts_table(counts)]
    if episodes is not None:
        out.append("<h2>Ventricular fibrillation episodes</h2>")
        out.append(_table(episodes) if len(episodes) else "<p>None found.</p>")
    if probabilities is not None:
        out.append(f"<h2>Selected beat{': ' + html.escape(selected_label) if selected_label else ''}</h2>")
        out.append(_probabilities(probabilities, float(threshold) if threshold is not None else None))
        for data, cap in ((beat_png, "The picture the model classified (1.0 s before the R peak to 0.6 s after)"),
                          (gradcam_png, "Grad-CAM: where the model looked for the predicted class "
                                        "(blue little influence, red the most)")):
            if data is not None:
                out.append(_figure(Picture(cap, data)))
    n = len(beats)
    out.append(f"<h2>Beat labels ({n} beat{'s' if n != 1 else ''})</h2>")
    if n > max_rows:
        out.append(f'<p class="muted">The first {max_rows} of {n} beats; the beats CSV holds all of them.</p>')
    out.append(f'<div class="scroll">{_table(beats, max_rows)}</div>' if n else "<p>No beat was found.</p>")
    out += ["<h2>Model</h2>", _facts([(label, str(model_card[k])) for k, label in CARD_FIELDS if k in model_card]),
            "<h3>On patients never seen in training</h3>", _facts(unseen_numbers(model_card, stored_result))]
    if notes:
        out += ["<h2>Notes</h2>", "<ul>" + "".join(f"<li>{html.escape(str(m))}</li>" for m in notes) + "</ul>"]
    out.append(f'<p class="notice">{NOTICE}.</p></body></html>')
    return "\n".join(out).encode("utf-8")


def record_report(result, card: Mapping, *, selected: int | None = None, beat_png: bytes | None = None,
                  gradcam_png: bytes | None = None, source: str = "", stored_result: Mapping | None = None,
                  made_at: datetime | None = None) -> bytes:
    """The report of a signal-mode RecordResult (ecg_core.pipeline.record_mode), optionally of one beat."""
    from ecg_core.pipeline.record_mode import BEAT_COLUMNS, summary
    from ecg_core.settings import WORKING_FS

    s = summary(result)
    b = result.beats
    marks = list(zip((result.centres / WORKING_FS).tolist(), b["predicted"].tolist()))
    shaded = list(result.episodes[["start_s", "end_s"]].itertuples(index=False, name=None))
    sel_t = float(result.centres[selected]) / WORKING_FS if selected is not None and 0 <= selected < len(b) else None
    span = STRIP_ROW_S * STRIP_ROWS
    start = 0.0 if sel_t is None else float(np.floor(max(0.0, min(sel_t - span / 2, result.duration_s - span))))
    pictures = [Picture("The whole recording (filtered, 360 Hz): VF episodes shaded, non-normal beats ticked; "
                        "the box is the stretch drawn below", overview_svg(result.x, WORKING_FS, marks, shaded,
                                                                           (start, start + span)), "image/svg+xml"),
                Picture(f"The recording from {start:.0f} s (filtered, 360 Hz), each beat labelled with its "
                        "predicted class" + ("; the box marks the selected beat" if sel_t is not None else ""),
                        strip_svg(result.x, WORKING_FS, marks, shaded, start, selected_s=sel_t), "image/svg+xml")]
    lead = result.lead + (" + V1 (for the QRS measurements)" if getattr(result, "v1_state", "") == "read" else
                          f" + {result.lead2_label} (for the QRS width)" if getattr(result, "lead2_label", "") else "")
    facts = [("Recording", result.name), ("Lead", lead), ("Sampling rate", f"{result.fs:g} Hz"),
             ("Duration", f"{s['duration_s']:.1f} s"), ("Beats classified", str(s["beats"])),
             ("Heart rate (median)", f"{s['heart_rate_bpm']:.0f} /min" if s["heart_rate_bpm"] else "n/a"),
             ("PVC burden", f"{s['percent']['V']:.1f} %"), ("VF episodes", str(s["vf_episodes"]))]
    if source:
        facts.insert(1, ("Source", source))
    c = result.comparison
    if c is not None:
        def pct(v):
            return f"{v:.1%}" if v is not None else "n/a"
        facts += [("Reference: detection sensitivity", pct(c.sensitivity)),
                  ("Reference: positive predictivity", pct(c.positive_predictivity)),
                  ("Reference: class agreement", pct(c.agreement)),
                  ("Reference: VF covered", f"{c.detected_vf_overlap_s:.0f} of {c.reference_vf_s:.0f} s")]
    beats = b[[*BEAT_COLUMNS, "in_vf_episode"]].copy()
    beats.insert(0, "beat", np.arange(1, len(beats) + 1))
    label = ""
    probs = None
    if sel_t is not None:
        label = f"beat {selected + 1} at {sel_t:.2f} s"
        probs = result.probabilities(selected)
    return build_report(f"ECG recording report: {result.name}", beats=beats, model_card=card, pictures=pictures,
                        counts=s["counts"], episodes=result.episodes, probabilities=probs, selected_label=label,
                        beat_png=beat_png if probs is not None else None,
                        gradcam_png=gradcam_png if probs is not None else None, facts=facts,
                        notes=list(result.notes), stored_result=stored_result, made_at=made_at)


def picture_report(result, card: Mapping, *, input_png: bytes, annotated_png: bytes, selected: int | None = None,
                   beat_png: bytes | None = None, gradcam_png: bytes | None = None, source: str = "",
                   stored_result: Mapping | None = None, made_at: datetime | None = None) -> bytes:
    """The report of a digitized picture (ecg_core.pipeline.picture.PictureResult): the user's picture, the
    extracted trace and beat labels drawn on it, how it was read, the beats, a selected beat."""
    d = result.digitized
    cal = d.calibration
    b = result.beats
    facts = [("Picture", result.name), ("Read as", "a single beat" if result.kind == "beat" else d.layout),
             ("Size", f"{d.width} x {d.height} pixels"), ("Time scale", cal.description),
             ("Time scale confidence", f"{cal.confidence:.0%}"), ("Digitization quality", f"{d.quality:.0%}"),
             ("Trace read", f"{result.trace.label}, {result.trace.duration_s:.2f} s"),
             ("Beats", str(len(b))), ("Uncertain beats", str(int(b["uncertain"].sum())))]
    if source:
        facts.insert(1, ("Source", source))
    beats = b[["beat", "time_s", "predicted", "confidence", *CLASS_KEYS, "uncertain", "why_uncertain"]].copy()
    beats["beat"] = beats["beat"] + 1
    label, probs = "", None
    if selected is not None and 0 <= selected < len(b):
        label = f"beat {selected + 1} at {b['time_s'].iloc[selected]:.2f} s"
        probs = result.probabilities(selected)
    pictures = [Picture("The extracted trace (magenta) and each beat's class drawn on the picture", annotated_png)]
    return build_report(f"ECG picture report: {result.name}", beats=beats, model_card=card, input_image_png=input_png,
                        pictures=pictures, probabilities=probs, selected_label=label,
                        beat_png=beat_png if probs is not None else None,
                        gradcam_png=gradcam_png if probs is not None else None, facts=facts,
                        notes=list(result.notes), stored_result=stored_result, made_at=made_at)


def report_file_name(name: str) -> str:
    """A safe download name for a report of `name`."""
    clean = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:80] or "ecg"
    return f"{clean}_report.html"
