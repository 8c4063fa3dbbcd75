"""A picture in, every beat classified: picture -> digitizer -> the signal pipeline of recordings -> beats.

A strip picture becomes a SignalInput and goes through `record_mode.classify_signal`, the same beat
detection, beat pictures and model as an uploaded recording. The models read 1.0 s before and 0.6 s after
each R peak; a picture's edges are padded with its own baseline (PAD_S) so that its first and last beats
can be classified too, with the context they lack shown as flat.

A lone beat (a trace shorter than LONE_BEAT_MAX_S) is one beat: the one R peak found, classified with the
baseline padding around it; it has no preceding beat and no patient template but itself.

Without grid calibration the time scale is a stated or assumed span: every beat is then classified again
at SPAN_FACTORS of that span, and a beat whose class changes is marked uncertain.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ecg_core.classes import CLASS_KEYS
from ecg_core.io.signal_io import SignalInput, SignalInputError
from ecg_core.picture.digitize import Digitized, DigitizeError, Trace, digitize
from ecg_core.picture.render import window_time_axis
from ecg_core.pipeline import record_mode
from ecg_core.settings import WINDOW_AFTER, WINDOW_AFTER_S, WINDOW_BEFORE, WINDOW_BEFORE_S, WORKING_FS
from ecg_core.signal import signals
from ecg_core.signal.beats import inside_bounds, stretched_index
from ecg_core.signal.beats import pad_with_baseline as _padded  # shared with the lone-beat training data
from ecg_core.signal.beats import stretch_trace as _stretch
from ecg_core.signal.peaks import detect_beats

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif")
PAD_S = 1.2
LONE_BEAT_MAX_S = 2.5
# a premature beat beside a tall neighbour can be a third of its height; a P or T wave is smaller still (the
# ratio was chosen on beat pictures of DS1 records: 0.2-0.3 tie there, 0.4 misses more)
LONE_BEAT_MIN_RATIO = 0.2
LONE_BEAT_EDGE_S = 0.1  # a lone beat's R peak is not this close to the trace's ends (its QRS would be cut)
SPAN_FACTORS = (0.8, 1.0, 1.25)  # the span check: within +-25 % of the stated or assumed span
# a standard 12-lead page: four simultaneous 2.5 s columns over the rhythm strip's time, the top row I, aVR, V1,
# V4; each column's first and last 0.1 s left out (lead-change marks)
TWELVE_COLUMNS, V1_COLUMN, V1_EDGE_S = 4, 2, 0.1
CSV_COLUMNS = ["file", "beat", "time_s", "predicted", "confidence", *CLASS_KEYS, "error", "uncertain"]


@dataclass
class PictureResult:
    """Every beat of a picture, where it lies in the picture, and how the picture was read."""

    name: str
    digitized: Digitized
    kind: str  # "beat" or "strip"
    model: str
    representation: str
    x: np.ndarray  # prepared, padded signal at WORKING_FS (what windows are cut from)
    pad: int  # padding samples before the picture's trace in x
    centres: np.ndarray  # R peaks in x of the beats in `beats`
    peaks: np.ndarray  # every R peak in x (for the templates)
    beats: pd.DataFrame  # beat, time_s, predicted, confidence, N..VF, uncertain, span_classes, why_uncertain,
    #                      in_vf_episode, x_px, y_px
    episodes: pd.DataFrame  # VF episodes (start_s, end_s, duration_s) from the picture's left edge
    notes: list[str] = field(default_factory=list)
    # a lone beat's model inputs as classified (images (1, 128, 128), features or None): made once, not again
    # for its explanation
    inputs: tuple[np.ndarray, np.ndarray | None] | None = field(default=None, repr=False)
    v1: np.ndarray | None = field(default=None, repr=False)  # prepared V1 on x's axis (NaN where none), or None

    @property
    def trace(self) -> Trace:
        return self.digitized.traces[self.digitized.primary]

    def image(self, i: int) -> np.ndarray:
        """The model's picture of beat i, made exactly as for classification."""
        if self.inputs is not None:
            return self.inputs[0][i].copy()
        return record_mode.beat_image(self.x, int(self.centres[i]), self.representation, self.peaks)

    def features(self, idx) -> np.ndarray:
        """Beat features (n, N_FEATURES) of beats `idx`, as measured for classification."""
        idx = np.atleast_1d(idx)
        if self.inputs is not None and self.inputs[1] is not None:
            return self.inputs[1][idx].copy()
        return record_mode.model_features(self.x, self.centres[idx], self.peaks, v1=self.v1)

    def probabilities(self, i: int) -> np.ndarray:
        return self.beats.loc[self.beats.index[i], list(CLASS_KEYS)].to_numpy(dtype=np.float32)

    def window_picture_x(self, i: int) -> np.ndarray:
        """Picture columns of the model picture's columns for beat i (time axis of the beat window)."""
        t = self.beats["time_s"].iloc[i] + window_time_axis() / WORKING_FS
        return self.trace.picture_x(t)


def _lone_beat_centre(x: np.ndarray, pad: int, n: int) -> int:
    """The R peak of a single-beat picture: the detected beat nearest the picture's middle (a beat picture is
    drawn around its beat; neighbours cut at its edges are not it), unless one beside it is more than
    LONE_BEAT_MIN_RATIO times larger (then the middle one is a P or T wave); the strongest deflection when no
    beat is detected. Detections within LONE_BEAT_EDGE_S of the trace's ends (a calibration pulse's edge, a cut
    neighbour) are not the beat; with nothing else found, the strongest deflection away from the ends is."""
    edge = min(int(round(LONE_BEAT_EDGE_S * WORKING_FS)), n // 4)
    lo, hi = pad + edge, pad + n - edge
    peaks = detect_beats(x)
    inside = peaks[(peaks >= lo) & (peaks < hi)]
    if inside.size:
        amp = np.abs(x[inside])
        near = int(np.argmin(np.abs(inside - (pad + n / 2))))
        return int(inside[near] if amp[near] >= LONE_BEAT_MIN_RATIO * amp.max() else inside[int(np.argmax(amp))])
    seg = np.abs(x[lo: hi])
    return lo + int(np.argmax(seg))


def _lone_beat(trace_mv: np.ndarray, r_index: int | None = None) -> tuple[np.ndarray, int, np.ndarray]:
    """(x, pad, centres) of a single-beat trace: padded with its baseline, prepared, its one R peak (found, or
    at `r_index` of trace_mv when it is known)."""
    pad = int(round(PAD_S * WORKING_FS))
    x = signals.prepare_signal(_padded(trace_mv, pad), WORKING_FS)
    centre = _lone_beat_centre(x, pad, trace_mv.size) if r_index is None else pad + int(r_index)
    return x, pad, np.array([centre], dtype=np.int64)


def _classify_beats(trace_mv: np.ndarray, factors: list[float], clf) -> tuple[
        list[tuple[np.ndarray, int, np.ndarray]], np.ndarray, tuple[np.ndarray, np.ndarray | None]]:
    """A single-beat trace read as calibrated and at each span factor of the span check, classified in one model
    call: each reading's (x, pad, centres), their probabilities (n, 6), and the first one's model inputs
    (images, features). The stretched readings classify the beat found in the first, where the stretch moves
    it (the check asks whether this beat's class depends on the span, not whether another one is found).

    The same inputs as `record_mode.classify_windows` makes for each; one call instead of one per reading
    (each model call costs a few ms of fixed overhead on a CPU)."""
    first = _lone_beat(trace_mv)
    r = int(first[2][0] - first[1])
    readings = [first] + [_lone_beat(_stretch(trace_mv, f), stretched_index(r, trace_mv.size, f)) for f in factors]
    rep = clf.info.representation
    reads_features = getattr(clf, "reads_features", False)
    images = [record_mode.model_images(x, c, rep, c) for x, _, c in readings]
    feats = [record_mode.model_features(x, c, c) for x, _, c in readings] if reads_features else None
    stacked = np.concatenate(images)
    probs = (clf.predict_proba(stacked, np.concatenate(feats)) if reads_features
             else clf.predict_proba(stacked)).astype(np.float32, copy=False)
    return readings, probs, (images[0], feats[0] if feats is not None else None)


def _classify_once(trace_mv: np.ndarray, clf, kind: str, name: str, lead: str, v1_mv: np.ndarray | None = None):
    """(x, pad, centres, peaks, probs, episodes in s from the trace start, in-VF flags, prepared V1 or None) for
    one reading of the trace; v1_mv: V1 on the trace's samples (NaN where the picture shows none)."""
    if kind == "beat":
        x, pad, centres = _lone_beat(trace_mv)
        probs = record_mode.classify_windows(x, centres, clf, peaks=centres)
        return x, pad, centres, centres, probs, pd.DataFrame(columns=["start_s", "end_s", "duration_s"]), [], None
    pad = int(round(PAD_S * WORKING_FS))
    padded = _padded(trace_mv, pad)
    v1 = None if v1_mv is None else np.pad(v1_mv, (pad, padded.size - pad - v1_mv.size), constant_values=np.nan)
    sig = SignalInput(name, padded, float(WORKING_FS), lead, v1=v1)
    res = record_mode.classify_signal(sig, clf)
    inside = (res.centres >= pad) & (res.centres < pad + trace_mv.size)
    probs = res.beats[list(CLASS_KEYS)].to_numpy(dtype=np.float32)[inside]
    ep = res.episodes.copy()
    if len(ep):
        ep[["start_s", "end_s"]] = (ep[["start_s", "end_s"]] - pad / WORKING_FS).clip(
            lower=0.0, upper=trace_mv.size / WORKING_FS)
        ep["duration_s"] = (ep["end_s"] - ep["start_s"]).round(2)
        ep = ep[ep["duration_s"] > 0]
    vf = res.beats["in_vf_episode"].to_numpy()[inside]
    # the peaks the model's templates and RR were made with (every classified beat), so that an explanation's
    # picture and features are the classified ones
    return res.x, pad, res.centres[inside], res.centres, probs, ep, [bool(v) for v in vf], res.v1


def twelve_lead_v1(dig: Digitized) -> np.ndarray | None:
    """A standard 12-lead page's V1 panel (top row, third of four columns) on the rhythm strip's samples, NaN
    elsewhere; None for other layouts, or where the top row does not run beside the rhythm strip."""
    if dig.layout != "twelve_lead" or dig.primary == 0:
        return None
    top, rhythm = dig.traces[0], dig.traces[dig.primary]
    column = rhythm.duration_s / TWELVE_COLUMNS
    a = rhythm.t0_s + V1_COLUMN * column + V1_EDGE_S
    b = rhythm.t0_s + (V1_COLUMN + 1) * column - V1_EDGE_S
    if top.t0_s > a or top.t0_s + top.duration_s < b or abs(column - 2.5) > 0.25:
        return None
    ia, n = int(round((a - rhythm.t0_s) * WORKING_FS)), int(round((b - a) * WORKING_FS))
    src = int(round((a - top.t0_s) * WORKING_FS))
    seg = top.signal_mv[src: src + n]
    v1 = np.full(rhythm.signal_mv.size, np.nan)
    v1[ia: ia + seg.size] = seg[: max(0, v1.size - ia)]
    return v1


def _two_leads(dig: Digitized) -> tuple[np.ndarray, np.ndarray, float]:
    """The top two stacked strips over the time they share: (first lead, second lead, start s)."""
    a, b = dig.traces[0], dig.traces[1]
    start = max(a.t0_s, b.t0_s)
    end = min(a.t0_s + a.duration_s, b.t0_s + b.duration_s)
    n = int((end - start) * WORKING_FS)
    if n < WORKING_FS:
        raise DigitizeError("The two stacked strips do not overlap in time: they cannot be read as two leads.")
    ia, ib = int(round((start - a.t0_s) * WORKING_FS)), int(round((start - b.t0_s) * WORKING_FS))
    return a.signal_mv[ia: ia + n], b.signal_mv[ib: ib + n], start


def _classify_two(first: np.ndarray, second: np.ndarray, clf):
    """Beats found on the first lead, classified from both (a two-lead model); no VF scan."""
    pad = int(round(PAD_S * WORKING_FS))
    x = np.stack([signals.prepare_signal(_padded(v, pad), WORKING_FS) for v in (first, second)])
    peaks = detect_beats(x[0])
    centres = peaks[inside_bounds(peaks, x.shape[1]) & (peaks >= pad) & (peaks < pad + first.size)]
    probs = record_mode.classify_windows(x, centres, clf, peaks=peaks)
    return x, pad, centres, peaks, probs, pd.DataFrame(columns=["start_s", "end_s", "duration_s"]), []


def classify_picture(data: bytes, clf, name: str = "picture", span_s: float | None = None,
                     expect: str = "auto", decoded: tuple[np.ndarray, list[str]] | None = None,
                     read_v1: bool = True) -> PictureResult:
    """Picture bytes -> PictureResult; DigitizeError (one line) when the picture cannot be read.

    span_s: seconds across the trace when the picture has no grid; expect: "auto", "beat" or "strip";
    decoded: the picture already decoded (`decode_rgb_with_notes(data)`), to decode it once.
    read_v1: a 12-lead page's V1 panel gives the beats beside it their V1 measurements (False: lead II alone).
    A two-lead model reads the top two of stacked strips as its two leads (MLII above V1).
    """
    two = not record_mode.reads_one_lead(clf.info.representation)
    dig = digitize(data, span_s=span_s, expect="beat" if expect == "beat" else "auto", decoded=decoded)
    trace = dig.traces[dig.primary]
    kind = "beat" if expect == "beat" or (expect == "auto" and trace.duration_s < LONE_BEAT_MAX_S) else "strip"
    if kind == "beat" and trace.duration_s < 0.25:
        raise DigitizeError(f"The trace spans only {trace.duration_s:.2f} s as calibrated: too short for a beat.")
    span_check = dig.calibration.method != "grid" and not two
    v1_mv = v1 = None  # V1 beside the trace (a 12-lead page's V1 panel), as read and as prepared
    others = [f for f in SPAN_FACTORS if f != 1.0] if span_check else []
    inputs = None
    other_readings: dict[float, tuple[int, np.ndarray, np.ndarray]] = {}  # factor -> (pad, centres, probs)
    if two:
        if dig.layout != "stacked" or kind == "beat":
            raise DigitizeError(f"{clf.name} reads two leads (MLII above V1): this picture shows one trace; "
                                "choose a one-lead model, or upload two stacked strips.")
        first, second, start = _two_leads(dig)
        trace = dig.traces[0]
        offset = start - trace.t0_s
        x, pad, centres, peaks, probs, episodes, in_vf = _classify_two(first, second, clf)
        centres = centres + int(round(offset * WORKING_FS))  # on the first strip's own time axis
        x = np.pad(x, ((0, 0), (int(round(offset * WORKING_FS)), 0)), mode="edge")
        peaks = peaks + int(round(offset * WORKING_FS))
    elif kind == "beat":  # every span's reading in one model call
        readings, all_probs, inputs = _classify_beats(trace.signal_mv, others, clf)
        (x, pad, centres), probs = readings[0], all_probs[:1]
        peaks, episodes, in_vf = centres, pd.DataFrame(columns=["start_s", "end_s", "duration_s"]), []
        for j, f in enumerate(others, start=1):
            other_readings[f] = (readings[j][1], readings[j][2], all_probs[j: j + 1])
    else:
        v1_mv = twelve_lead_v1(dig) if read_v1 and getattr(clf, "reads_features", False) else None
        try:
            x, pad, centres, peaks, probs, episodes, in_vf, v1 = _classify_once(trace.signal_mv, clf, kind, name,
                                                                                trace.label, v1_mv)
        except SignalInputError as exc:  # the recordings' quality verdict: the trace read is not an ECG
            raise DigitizeError("The trace read from the picture is not readable as an ECG: "
                                + str(exc).split("not readable as an ECG: ", 1)[-1]) from None
    notes = list(dig.notes)
    if centres.size == 0:
        raise DigitizeError("No heartbeat was found in the digitized trace.")
    if v1 is not None:
        covered = int(record_mode.v1_covers(v1, centres).sum())
        notes.append(f"12-lead page: V1 read from its panel (top row, third column) "
                     f"for the V1 measurements of the {covered} beat(s) there; the others are read from lead II alone.")
    times = trace.t0_s + (centres - pad) / WORKING_FS
    k = probs.argmax(axis=1)
    span_classes = [[CLASS_KEYS[j]] for j in k]
    if span_check:
        for f in others:
            if f in other_readings:
                pad_f, c_f, p_f = other_readings[f]
            else:
                try:
                    v1_f = None if v1_mv is None else _stretch(v1_mv, f)
                    _, pad_f, c_f, _, p_f, _, _, _ = _classify_once(_stretch(trace.signal_mv, f), clf, kind, name,
                                                                    trace.label, v1_f)
                except SignalInputError:  # read at this span the trace fails the quality check: no reading
                    continue
            if c_f.size == 0:
                continue
            t_f = trace.t0_s + (c_f - pad_f) / WORKING_FS / f  # back on the calibrated time axis
            nearest = np.abs(times[:, None] - t_f[None, :]).argmin(axis=1)
            close = np.abs(times - t_f[nearest]) < 0.1
            for i in np.flatnonzero(close):
                span_classes[i].append(CLASS_KEYS[int(p_f[nearest[i]].argmax())])
        notes.append(f"Span check: every beat classified again with the time scale {SPAN_FACTORS[0]:g}x and "
                     f"{SPAN_FACTORS[-1]:g}x; a beat whose class changes is marked uncertain.")
    span_dependent = [len(set(c)) > 1 for c in span_classes]
    # a strip's first and last beats are read with part of their window outside the picture (flat there)
    rel = centres - pad
    partial = ((rel < WINDOW_BEFORE) | (rel + WINDOW_AFTER > trace.signal_mv.size)) if kind == "strip" \
        else np.zeros(centres.size, dtype=bool)
    threshold = clf.info.low_confidence_threshold
    unsure = probs[np.arange(k.size), k] < threshold if k.size else np.zeros(0, dtype=bool)
    uncertain = [a or bool(b) or bool(u) for a, b, u in zip(span_dependent, partial, unsure)]
    why = ["class depends on the time scale: " + " / ".join(dict.fromkeys(c)) if d
           else "its window reaches beyond the picture's edge" if e
           else f"confidence below the model's threshold of {threshold:.0%}" if u else ""
           for c, d, e, u in zip(span_classes, span_dependent, partial, unsure)]
    if partial.any():
        notes.append(f"{int(partial.sum())} beat(s) near the picture's edges are read with part of their "
                     f"{WINDOW_BEFORE_S + WINDOW_AFTER_S:g} s window outside the picture and marked uncertain.")
    beats = pd.DataFrame({
        "beat": np.arange(centres.size),
        "time_s": np.round(times, 3),
        "predicted": np.array(CLASS_KEYS, dtype=object)[k],
        "confidence": np.round(probs[np.arange(k.size), k], 4),
        **{key: np.round(probs[:, j], 4) for j, key in enumerate(CLASS_KEYS)},
        "uncertain": uncertain,
        "span_classes": [" / ".join(dict.fromkeys(c)) for c in span_classes],
        "why_uncertain": why,
        "in_vf_episode": in_vf if in_vf else [False] * centres.size,
        "x_px": np.round(trace.picture_x(times), 1),
        "y_px": np.round(trace.picture_y(times), 1),
    })
    if len(episodes):
        episodes = episodes.copy()
        episodes[["start_s", "end_s"]] += trace.t0_s
    return PictureResult(name, dig, kind, clf.name, clf.info.representation, x, pad, centres,
                         np.asarray(peaks), beats, episodes, notes, inputs, v1)


def csv_rows(result: PictureResult | None, file: str, error: str | None = None) -> list[dict]:
    """The predict CLI's rows for one picture: one per beat, or one row with the reason it was not read."""
    if result is None:
        return [{"file": file, "beat": "", "time_s": "", "predicted": "", "confidence": "",
                 **{k: "" for k in CLASS_KEYS}, "error": error or "", "uncertain": ""}]
    rows = []
    for _, b in result.beats.iterrows():
        rows.append({"file": file, "beat": int(b["beat"]), "time_s": f"{b['time_s']:.3f}",
                     "predicted": b["predicted"], "confidence": f"{b['confidence']:.4f}",
                     **{k: f"{b[k]:.4f}" for k in CLASS_KEYS}, "error": "", "uncertain": bool(b["uncertain"])})
    return rows



def iter_picture_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Files as given, and picture files found recursively in folders (sorted)."""
    for p in map(Path, paths):
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
        else:
            yield p


def cli(a: argparse.Namespace) -> int:
    """python -m ecg_core predict PICTURE_OR_FOLDER... [--model M] [--span S] [--layout auto|beat|strip].

    One CSV row per beat on stdout; a picture that cannot be read gives one row with the reason in `error`,
    the same reason the Classify page shows. Exit code 1 when any picture could not be read.
    """
    from ecg_core.model.predict import ModelError, info_from_path, load

    try:
        clf = load(info_from_path(a.model) if a.model else None)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    writer = csv.DictWriter(sys.stdout, fieldnames=CSV_COLUMNS, restval="")
    writer.writeheader()
    failed = 0
    for f in iter_picture_files(a.paths):
        try:
            data = f.read_bytes()
            rows = csv_rows(classify_picture(data, clf, f.name, span_s=a.span, expect=a.layout), str(f))
        except DigitizeError as exc:
            rows = csv_rows(None, str(f), str(exc))
        except OSError as exc:
            rows = csv_rows(None, str(f), f"cannot read file ({exc.strerror or exc})")
        failed += bool(rows[0]["error"])
        writer.writerows(rows)
        sys.stdout.flush()
    return 1 if failed else 0
