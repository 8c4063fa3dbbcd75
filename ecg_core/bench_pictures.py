"""Picture-path benchmark: python -m ecg_core bench-pictures [--quick] [--per-record N] [--styles ...] [--out F]

Pictures are drawn by `ecg_core.picture.synth` from real DS2 (test-set) signals, so everything they show is
known exactly. Every picture goes through the user's path (`pipeline.picture.classify_picture`: digitizer ->
the recordings' beat detection and model) and is compared with the truth, per style and layout:

- digitization (10 s strips): SNR of the extracted trace against the drawn signal (see PROTOCOL);
- beat detection: Se / PPV against the annotated beats of strips; for single-beat pictures the share where
  exactly one beat comes back near the true R peak;
- classification: macro F1 over N, L, R, A, V of the picture path and of the signal path (the same record
  segment classified as a recording by `record_mode.classify_signal`) on the same annotated beats;
- time: picture bytes -> labels, and -> labels + Grad-CAM of every beat, medians on this machine.

Everything stays in memory; nothing is written except the JSON of --out. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecg_core.data.drawn import RecordData, read_record

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FS = 360  # both signals are compared at the working rate
MAX_LAG_S = 0.2  # cross-correlation search, around the lag the picture's geometry predicts
EDGE_S = 1.0  # cut at each end of the band-passed signals (filter edges)
MATCH_S = 0.15  # beat matching tolerance
EXCLUDE_EDGE_S = 0.2  # beats this close to a trace edge are left out of both sides
CONTEXT_S = 30.0  # the signal path classifies each picture's segment with this much record on each side
STRIP_S = 10.0
BEAT_PICTURES_PER_STRIP = 2
F1_CLASSES: tuple[str, ...] = ("N", "L", "R", "A", "V")
RARE_CLASSES: tuple[str, ...] = ("L", "R", "A", "V")
PHOTO_LIKE: tuple[str, ...] = ("jpeg", "rotated", "photo")  # scan and photo artefacts; the other styles are clean
QUICK_STYLES: tuple[str, ...] = ("paper_red", "photo")
QUICK_RECORDS = 3
MISSED = "-"  # the label of a beat a path did not return
MISS_KINDS = {  # why a beat picture is not a hit
    "refused": "refused",
    "other beat": "one beat returned, another of the beats drawn",
    "elsewhere": "one beat returned, away from the only beat drawn",
    "several": "several beats returned",
}
MISSING_SNR_DB = 0.0  # a strip refused, or read too short to compare: the Challenge's score of a missing signal

PROTOCOL = (
    "SNR protocol (PhysioNet Challenge 2024 style): truth resampled to 360 Hz if needed; both signals minus "
    "their medians; aligned in time by cross-correlation within +-{lag:g} s of the lag the picture's geometry "
    "predicts; a vertical offset fitted; a gain fitted only where the digitizer reads amplitude as relative "
    "(no grid, no pulse); SNR = 10 log10(sum truth^2 / sum (truth - fit)^2) over the overlap. 'band': both "
    "band-passed 0.5-40 Hz (signals.bandpass, the pipeline's own band), {edge:g} s cut at each end, then "
    "aligned (the main column); 'bb': broadband, no cut. A strip refused or read too short to compare (under "
    "2 s) scores 0 dB, as a missing signal does in the Challenge. Strips only (single beats are too short). "
    "Detection: {tol:g} ms matching in the digitizer's time axis (truth mapped through the picture geometry), "
    "beats within {excl:g} s of the drawn trace's ends left out of both sides; Se counts the beats of refused "
    "pictures as missed. F1: macro over the classes of N L R A V present among the beats; a beat a path did "
    "not return counts as a wrong label. Signal path ('sig', what dF1 compares with): the true signal the "
    "picture shows, resampled to the working rate, through the picture path's own beat pipeline "
    "(pipeline.picture after the digitizer: the same padding, lone-beat handling and model); 'rec': each "
    "segment with {ctx:g} s of its record on either side through record_mode.classify_signal."
)


# ---------------------------------------------------------------------------------------------- measures

@dataclass(frozen=True)
class Snr:
    """One signal-to-noise comparison: est[j] was compared with ref[j + lag]."""

    db: float
    lag: int  # samples
    offset: float  # fitted vertical offset (ref units)
    gain: float  # fitted gain (1.0 unless fitted)
    overlap: int  # samples compared

    @staticmethod
    def none() -> Snr:
        return Snr(float("nan"), 0, float("nan"), float("nan"), 0)


def _overlap(ref: np.ndarray, est: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    j0, j1 = max(0, -lag), min(est.size, ref.size - lag)
    if j1 <= j0:
        return ref[:0], est[:0]
    return ref[j0 + lag: j1 + lag], est[j0:j1]


def best_lag(ref: np.ndarray, est: np.ndarray, lags: range, min_overlap: int = 1) -> tuple[int, float]:
    """The lag (est[j] ~ ref[j + lag]) among `lags` with the highest correlation over the overlap, and it."""
    best, best_c = lags[0] if len(lags) else 0, -math.inf
    for lag in lags:
        r, e = _overlap(ref, est, lag)
        if r.size < max(min_overlap, 3):
            continue
        rc, ec = r - r.mean(), e - e.mean()
        den = math.sqrt(float(rc @ rc) * float(ec @ ec))
        c = float(rc @ ec) / den if den > 0 else 0.0
        if c > best_c:
            best, best_c = lag, c
    return best, best_c


def snr_db(ref: np.ndarray, est: np.ndarray, fs: float = FS, max_lag_s: float = MAX_LAG_S, centre: int = 0,
           fit_gain: bool = False) -> Snr:
    """SNR (dB) of est against ref after alignment: a lag within centre +- max_lag_s found by cross-correlation,
    then a vertical offset (and, with fit_gain, a gain) fitted by least squares over the overlap.

    The signal power is sum(ref ** 2) over the overlap: centre ref first (the benchmark removes medians).
    """
    ref = np.nan_to_num(np.asarray(ref, dtype=np.float64))
    est = np.nan_to_num(np.asarray(est, dtype=np.float64))
    if ref.size < 3 or est.size < 3:
        return Snr.none()
    m = int(round(max_lag_s * fs))
    lag, corr = best_lag(ref, est, range(centre - m, centre + m + 1), min_overlap=min(ref.size, est.size) // 2)
    r, e = _overlap(ref, est, lag)
    if r.size < 3 or corr == -math.inf:
        return Snr.none()
    if fit_gain:
        a = np.stack([e, np.ones_like(e)], axis=1)
        (gain, offset), *_ = np.linalg.lstsq(a, r, rcond=None)
    else:
        gain, offset = 1.0, float(np.mean(r - e))
    noise = r - (gain * e + offset)
    p_sig, p_noise = float(r @ r), float(noise @ noise)
    if p_sig <= 0:
        return Snr(float("nan"), lag, float(offset), float(gain), r.size)
    db = math.inf if p_noise <= 0 else 10.0 * math.log10(p_sig / p_noise)
    return Snr(db, lag, float(offset), float(gain), r.size)


def band_snr_db(ref: np.ndarray, est: np.ndarray, fs: int = FS, centre: int = 0, fit_gain: bool = False,
                edge_s: float = EDGE_S, max_lag_s: float = MAX_LAG_S) -> Snr:
    """snr_db in the pipeline's band: medians removed, both band-passed 0.5-40 Hz, edge_s cut at each end."""
    from ecg_core.signal.signals import bandpass

    cut = int(round(edge_s * fs))
    ref, est = np.asarray(ref, dtype=np.float64), np.asarray(est, dtype=np.float64)
    if min(ref.size, est.size) <= 2 * cut + 16:
        return Snr.none()
    r = bandpass(ref - np.median(ref), fs).astype(np.float64)
    e = bandpass(est - np.median(est), fs).astype(np.float64)
    # the same cut at both starts leaves the lag unchanged
    return snr_db(r[cut: r.size - cut], e[cut: e.size - cut], fs, max_lag_s, centre, fit_gain)


def pixel_ceiling_db(drawn) -> float:
    """Band SNR of an ideal reading limited to the picture's pixels: each column gives the rows the true signal
    spans in it (rounded to whole pixels), its lowest and highest at a quarter and three quarters of the column,
    in the order the signal visits them. What no digitizer can beat on that picture (before rotation and
    photo effects); a 10 s strip 192 pixels wide holds about 19 columns per second."""
    truth = drawn.signal if drawn.fs == FS else _resample(drawn.signal, drawn.fs)
    t = np.arange(truth.size) / FS
    col = np.floor(t * drawn.px_per_s).astype(np.int64)
    q = np.round(truth * drawn.px_per_mv) / drawn.px_per_mv
    cuts = np.flatnonzero(np.diff(col)) + 1
    xs, ys = [], []
    for c, seg in zip(col[np.concatenate([[0], cuts])], np.split(q, cuts)):
        i_lo, i_hi = int(np.argmin(seg)), int(np.argmax(seg))
        if seg[i_lo] == seg[i_hi]:
            xs.append(c + 0.5)
            ys.append(seg[i_lo])
            continue
        first, second = sorted((i_lo, i_hi))
        xs += [c + 0.25, c + 0.75]
        ys += [seg[first], seg[second]]
    est = np.interp(t, np.asarray(xs) / drawn.px_per_s, ys)
    return band_snr_db(truth, est, FS, 0, False).db


def broadband_snr_db(ref: np.ndarray, est: np.ndarray, fs: int = FS, centre: int = 0,
                     fit_gain: bool = False, max_lag_s: float = MAX_LAG_S) -> Snr:
    """snr_db of the raw signals, medians removed, no cut."""
    ref, est = np.asarray(ref, dtype=np.float64), np.asarray(est, dtype=np.float64)
    if ref.size < 3 or est.size < 3:
        return Snr.none()
    return snr_db(ref - np.median(ref), est - np.median(est), fs, max_lag_s, centre, fit_gain)


@dataclass(frozen=True)
class Detection:
    """Beats matched between reference times and detected times (seconds), edges left out."""

    n_ref: int
    n_det: int
    n_matched: int
    ref_to_det: dict[int, int]  # index in the given ref array -> index in the given det array

    @property
    def se(self) -> float:
        return self.n_matched / self.n_ref if self.n_ref else float("nan")

    @property
    def ppv(self) -> float:
        return self.n_matched / self.n_det if self.n_det else float("nan")


def match_times(ref_s: np.ndarray, det_s: np.ndarray, window: tuple[float, float] | None = None,
                tolerance_s: float = MATCH_S, exclude_s: float = EXCLUDE_EDGE_S) -> Detection:
    """One-to-one matching (closest first) of detected to reference beat times within tolerance_s.

    window: the trace's (start, end) in the same time axis; beats closer than exclude_s to either end are
    left out of both sides.
    """
    from ecg_core.pipeline.record_mode import match_beats

    ref_s, det_s = np.asarray(ref_s, dtype=float), np.asarray(det_s, dtype=float)
    keep_r, keep_d = np.ones(ref_s.size, bool), np.ones(det_s.size, bool)
    if window is not None:
        lo, hi = window[0] + exclude_s, window[1] - exclude_s
        keep_r = (ref_s >= lo) & (ref_s <= hi)
        keep_d = (det_s >= lo) & (det_s <= hi)
    ri, di = np.flatnonzero(keep_r), np.flatnonzero(keep_d)
    us = 1e6  # microsecond integers for match_beats
    mr, md = match_beats(np.round(ref_s[ri] * us).astype(np.int64), np.round(det_s[di] * us).astype(np.int64),
                         int(round(tolerance_s * us)))
    pairs = {int(ri[a]): int(di[b]) for a, b in zip(mr, md)}
    return Detection(int(ri.size), int(di.size), len(pairs), pairs)


def macro_f1(truth: list[str] | np.ndarray, pred: list[str] | np.ndarray,
             classes: tuple[str, ...] = F1_CLASSES) -> float:
    """Macro F1 over the classes present in truth (any other predicted label, e.g. MISSED, is wrong)."""
    t, p = np.asarray(truth, dtype=object), np.asarray(pred, dtype=object)
    scores = []
    for c in classes:
        tp = int(np.sum((t == c) & (p == c)))
        n_true, n_pred = int(np.sum(t == c)), int(np.sum(p == c))
        if n_true == 0:
            continue
        scores.append(2 * tp / (n_true + n_pred))
    return float(np.mean(scores)) if scores else float("nan")


# ---------------------------------------------------------------------------------------------- geometry

def _path_axis(trace) -> tuple[np.ndarray, np.ndarray]:
    """(monotone picture columns, times) of the followed path, in time order."""
    px = np.asarray(trace.path_x, dtype=float)
    pt = getattr(trace, "path_t", None)
    if pt is None:  # a digitizer without per-point times: columns at the calibrated scale from t0
        pt = trace.t0_s + np.arange(px.size) / trace.px_per_s
    pt = np.asarray(pt, dtype=float)
    order = np.argsort(pt, kind="stable")
    return np.maximum.accumulate(px[order]), pt[order]


def picture_times(trace, x_cols: np.ndarray) -> np.ndarray:
    """Times on the digitizer's axis (s from the picture's left edge, as calibrated) of picture columns,
    through the followed path (extended at the path's mean scale beyond its ends)."""
    px, pt = _path_axis(trace)
    x = np.asarray(x_cols, dtype=float)
    out = np.interp(x, px, pt)
    s_per_px = (pt[-1] - pt[0]) / (px[-1] - px[0]) if px[-1] > px[0] else 0.0
    out = np.where(x < px[0], pt[0] - (px[0] - x) * s_per_px, out)
    return np.where(x > px[-1], pt[-1] + (x - px[-1]) * s_per_px, out)


def frame_scale(drawn, digitized) -> float:
    """Digitizer frame / drawn picture: the digitizer reads large pictures reduced (its width says how)."""
    return digitized.width / drawn.width if drawn.width and digitized.width else 1.0


def truth_columns(drawn, scale: float = 1.0) -> np.ndarray:
    """Column of every sample of the drawn signal in the final picture (times scale: the digitizer's frame),
    monotone through small rotations."""
    return np.maximum.accumulate(drawn.points()[:, 0] * scale)


def geometric_lag(drawn, trace, truth_fs: float = FS, scale: float = 1.0) -> int:
    """The lag (truth index at truth_fs minus digitized index) the picture's geometry predicts."""
    n = trace.signal_mv.size
    j = np.arange(0, n, max(1, n // 400))
    x = trace.picture_x(trace.t0_s + j / trace.fs)
    cols = truth_columns(drawn, scale)
    i = np.interp(x, cols, np.arange(cols.size)) * (truth_fs / drawn.fs)
    return int(round(float(np.median(i - j * (truth_fs / trace.fs)))))


# ---------------------------------------------------------------------------------------------- data

def _key(symbol: str) -> str | None:
    from ecg_core.classes import SYMBOL_TO_KEY

    return SYMBOL_TO_KEY.get(symbol)


def choose_strips(rec: RecordData, n: int, rng: np.random.Generator, seconds: float = STRIP_S) -> list[int]:
    """Starts of n strips, each centred (with a seeded offset) on a beat of a rare class the record holds,
    cycling through them rarest first; a strip that would overlap one already chosen takes the next class,
    then any beat, so that a record with one rare beat still gives strips from different parts of it."""
    length = int(round(seconds * rec.fs))
    keys = np.array([_key(s) for s in rec.symbols], dtype=object)
    counts = Counter(k for k in keys if k in RARE_CLASSES)
    rare = sorted(counts, key=lambda c: (counts[c], c))
    starts: list[int] = []
    for k in range(n):
        centres = np.array([s + length // 2 for s in starts], dtype=np.int64)
        far = np.ones(rec.beats.size, bool) if not starts else \
            (np.abs(rec.beats[:, None] - centres[None, :]) > length).all(axis=1)
        order = rare[k % len(rare):] + rare[: k % len(rare)] if rare else []
        pool = next((np.flatnonzero((keys == c) & far) for c in order if ((keys == c) & far).any()), None)
        if pool is None:
            pool = np.flatnonzero(far) if far.any() else np.arange(rec.beats.size)
        pick = int(rng.choice(pool))
        start = int(rec.beats[pick]) - int(rng.uniform(0.2, 0.8) * length)
        starts.append(int(np.clip(start, 0, rec.signal.size - length)))
    return starts


def choose_beats(rec: RecordData, start: int, length: int, n: int, rng: np.random.Generator) -> list[int]:
    """Indices (into rec.beats) of n beats inside the strip for single-beat pictures: N L R A V beats, drawn
    with weights inversely proportional to their class's count in the strip (the rare ones first)."""
    margin = int(round(0.9 * rec.fs))
    inside = np.flatnonzero((rec.beats >= start + margin) & (rec.beats < start + length - margin))
    keys = [_key(s) for s in rec.symbols[inside]]
    ok = [i for i, k in zip(inside, keys) if k in F1_CLASSES]
    if not ok:
        return []
    counts = Counter(_key(rec.symbols[i]) for i in ok)
    w = np.array([1.0 / counts[_key(rec.symbols[i])] for i in ok])
    return [int(i) for i in rng.choice(ok, size=min(n, len(ok)), replace=False, p=w / w.sum())]


def beat_crop(rec: RecordData, beat: int, seconds: float) -> tuple[int, int]:
    """[a, b) of the record to draw a beat picture of `seconds` from, so that synth.draw's seeded choice of
    beat can only be this one (its window's centre range holds no other beat)."""
    n = int(round(seconds * rec.fs))
    m = int(round(0.06 * rec.fs))
    a = int(rec.beats[beat]) - n // 2 - m
    return a, a + n + 2 * m


# ---------------------------------------------------------------------------------------------- one picture

@dataclass
class Outcome:
    """What one picture gave."""

    record: str
    style: str
    layout: str
    start: int  # record sample at the drawn signal's sample 0
    seed: int
    refused: str | None = None  # the one-line reason, when the path refused the picture
    error: str | None = None  # an unexpected exception
    snr_band: float = float("nan")
    snr_bb: float = float("nan")
    snr_ceiling: float = float("nan")  # pixel_ceiling_db of the picture
    relative: bool = False  # amplitude read as relative (gain fitted)
    calibration: str = ""
    n_ref: int = 0
    n_det: int = 0
    n_matched: int = 0
    hit: bool = False
    miss: str = ""  # beat pictures: why it is not a hit (MISS_KINDS)
    truth: list[str] = field(default_factory=list)  # N L R A V labels of the scored beats
    picture: list[str] = field(default_factory=list)  # the picture path's labels for them
    signal: list[str] = field(default_factory=list)  # the signal path's labels for them (record context)
    same: list[str] = field(default_factory=list)  # the picture's own pipeline on the true signal it shows
    stated: list[str] = field(default_factory=list)  # beat pictures: the picture path with the true span stated
    t_labels: float = float("nan")
    t_explain: float = float("nan")  # labels + Grad-CAM of every beat


class Runner:
    """The model, its Grad-CAM and the signal path's labels, shared by every picture."""

    def __init__(self, clf, cam):
        self.clf, self.cam = clf, cam
        self._same: dict[tuple[str, int | None], dict[int, str]] = {}  # a strip's truth is shared by its styles

    def classify(self, data: bytes, name: str):
        """(result, seconds to labels, seconds to labels + explanation)."""
        from ecg_core.classes import CLASS_KEYS
        from ecg_core.picture.imaging import to_model_input
        from ecg_core.pipeline.picture import classify_picture

        t = time.perf_counter()
        res = classify_picture(data, self.clf, name)
        t1 = time.perf_counter()
        images = np.stack([res.image(i) for i in range(len(res.beats))])
        classes = [CLASS_KEYS.index(p) for p in res.beats["predicted"]]
        self.cam.heatmaps(to_model_input(images), classes, features=res.features(np.arange(len(res.beats))))
        return res, t1 - t, time.perf_counter() - t

    def run(self, out: Outcome, drawn, signal_labels: dict[int, str], target: int | None = None) -> Outcome:
        """Classify one drawn picture and score it (target: index into drawn.r_peaks of a beat picture's beat)."""
        from ecg_core.io.base import SignalInputError
        from ecg_core.picture.digitize import DigitizeError

        r_keys = [_key(s) for s in drawn.symbols]
        try:
            res, out.t_labels, out.t_explain = self.classify(drawn.data, f"{out.record}_{out.style}")
        except (DigitizeError, SignalInputError) as exc:
            out.refused = str(exc)
        except Exception as exc:  # a bug in the path: counted, reported, the run goes on
            out.error = f"{type(exc).__name__}: {exc}"
        if target is None:
            out.snr_ceiling = pixel_ceiling_db(drawn)
        if out.refused or out.error:
            res = None
            out.miss = "refused"
        scored = [k for k in range(drawn.r_peaks.size) if target is None or k == target]
        if res is None:
            if target is None:
                # beats near the drawn ends are left out as they would be with a reading
                n = drawn.signal.size
                edge = EXCLUDE_EDGE_S * drawn.fs
                scored = [k for k in scored if edge <= drawn.r_peaks[k] <= n - 1 - edge]
                out.n_ref = len(scored)
            self._labels(out, [r_keys[k] for k in scored], [MISSED] * len(scored),
                         [signal_labels.get(out.start + int(drawn.r_peaks[k]), MISSED) for k in scored],
                         drawn, scored, target)
            return out
        trace = res.trace
        cal = res.digitized.calibration
        out.calibration, out.relative = cal.method, cal.px_per_mv is None
        scale = frame_scale(drawn, res.digitized)
        cols = truth_columns(drawn, scale)
        ref_t = picture_times(trace, cols[drawn.r_peaks]) if drawn.r_peaks.size else np.zeros(0)
        det_t = res.beats["time_s"].to_numpy(dtype=float)
        pred = res.beats["predicted"].to_numpy(dtype=object)
        if target is None:
            ends = picture_times(trace, cols[[0, -1]])
            truth = drawn.signal if drawn.fs == FS else _resample(drawn.signal, drawn.fs)
            lag = geometric_lag(drawn, trace, FS, scale)
            est = trace.signal_mv
            out.snr_band = band_snr_db(truth, est, FS, lag, out.relative).db
            out.snr_bb = broadband_snr_db(truth, est, FS, lag, out.relative).db
            det = match_times(ref_t, det_t, (float(ends[0]), float(ends[1])))
            out.n_ref, out.n_det, out.n_matched = det.n_ref, det.n_det, det.n_matched
            lo, hi = ends[0] + EXCLUDE_EDGE_S, ends[1] - EXCLUDE_EDGE_S
            scored = [k for k in scored if lo <= ref_t[k] <= hi]
            labels = [pred[det.ref_to_det[k]] if k in det.ref_to_det else MISSED for k in scored]
        else:
            d = np.abs(det_t - ref_t[target])
            near = d.size > 0 and float(d.min()) <= MATCH_S
            out.hit = bool(det_t.size == 1 and near)
            if not out.hit:
                out.miss = ("several" if det_t.size > 1 else "other beat" if drawn.r_peaks.size > 1
                            else "elsewhere")
            labels = [pred[int(d.argmin())] if near else MISSED]
        self._labels(out, [r_keys[k] for k in scored], labels,
                     [signal_labels.get(out.start + int(drawn.r_peaks[k]), MISSED) for k in scored],
                     drawn, scored, target)
        if target is not None and out.truth:
            out.stated = [self.stated_span_label(drawn, target, cal.method, out.picture[0])]
        return out

    def stated_span_label(self, drawn, target: int, method: str, label: str) -> str:
        """A beat picture's label when its user states the true span (the picture path's own answer where a
        grid calibrated it): what the unknown span of a picture without grid costs."""
        from ecg_core.io.base import SignalInputError
        from ecg_core.picture.digitize import DigitizeError
        from ecg_core.pipeline.picture import classify_picture

        if method == "grid":
            return label
        try:
            res = classify_picture(drawn.data, self.clf, "stated", span_s=drawn.signal.size / drawn.fs)
        except (DigitizeError, SignalInputError):
            return MISSED
        det_t = res.beats["time_s"].to_numpy(dtype=float)
        ref_t = picture_times(res.trace, truth_columns(drawn, frame_scale(drawn, res.digitized))[drawn.r_peaks])
        d = np.abs(det_t - ref_t[target])
        return str(res.beats["predicted"].iloc[int(d.argmin())]) if d.size and d.min() <= MATCH_S else MISSED

    def same_signal(self, drawn, target: int | None) -> dict[int, str]:
        """The picture path's own beat pipeline (pipeline.picture, after the digitizer) on the true signal the
        picture shows, at the working rate: index into drawn.r_peaks -> label. What the picture path would
        give with a perfect digitizer; the picture's own context only (a strip's 10 s, a lone beat)."""
        key = (hashlib.sha1(np.ascontiguousarray(drawn.signal).tobytes()).hexdigest(), target)
        if key not in self._same:
            self._same[key] = self._same_signal(drawn, target)
        return self._same[key]

    def _same_signal(self, drawn, target: int | None) -> dict[int, str]:
        from ecg_core.classes import CLASS_KEYS
        from ecg_core.io.base import SignalInputError
        from ecg_core.pipeline.picture import _classify_once
        from ecg_core.settings import WORKING_FS
        from ecg_core.signal.signals import resample

        x = resample(np.asarray(drawn.signal, dtype=np.float64), drawn.fs, WORKING_FS).astype(np.float64)
        try:
            _, pad, centres, _, probs, *_ = _classify_once(x, self.clf, "strip" if target is None else "beat",
                                                             "truth", drawn.lead)
        except SignalInputError:
            return {}
        if centres.size == 0:
            return {}
        det_t = (centres - pad) / WORKING_FS
        ref_t = drawn.r_peaks / drawn.fs
        pred = [CLASS_KEYS[int(k)] for k in probs.argmax(axis=1)]
        if target is not None:
            d = np.abs(det_t - ref_t[target])
            return {target: pred[int(d.argmin())]} if d.min() <= MATCH_S else {}
        m = match_times(ref_t, det_t)
        return {k: pred[j] for k, j in m.ref_to_det.items()}

    def _labels(self, out: Outcome, truth: list, picture: list, signal: list, drawn=None,
                scored: list[int] | None = None, target: int | None = None) -> None:
        keep = [i for i, k in enumerate(truth) if k in F1_CLASSES]
        out.truth = [truth[i] for i in keep]
        out.picture = [str(picture[i]) for i in keep]
        out.signal = [str(signal[i]) for i in keep]
        if drawn is not None and scored is not None:
            same = self.same_signal(drawn, target)
            out.same = [same.get(scored[i], MISSED) for i in keep]


def _resample(x: np.ndarray, fs: float) -> np.ndarray:
    from ecg_core.signal.signals import resample

    return resample(x, fs, FS).astype(np.float64)


def signal_path_labels(rec: RecordData, starts: list[int], length: int, clf) -> dict[int, str]:
    """The signal path's label at every annotated beat of the segments (record samples -> class key), each
    segment classified as a recording with CONTEXT_S of the record on either side (overlaps merged)."""
    from ecg_core.io.signal_io import SignalInput
    from ecg_core.pipeline.record_mode import MATCH_TOLERANCE_S, classify_signal, match_beats

    ctx = int(round(CONTEXT_S * rec.fs))
    spans = sorted((max(0, s - ctx), min(rec.signal.size, s + length + ctx)) for s in starts)
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    labels: dict[int, str] = {}
    for a, b in merged:
        res = classify_signal(SignalInput(f"{rec.name}[{a}:{b}]", rec.signal[a:b], rec.fs, rec.lead), clf)
        ref = rec.beats[(rec.beats >= a) & (rec.beats < b)]
        mr, md = match_beats(ref - a, res.beats["sample"].to_numpy(np.int64), int(round(MATCH_TOLERANCE_S * rec.fs)))
        pred = res.beats["predicted"].to_numpy(dtype=object)
        labels.update({int(ref[i]): str(pred[j]) for i, j in zip(mr, md)})
    return labels


# ---------------------------------------------------------------------------------------------- the run

def run(mitdb: str | Path, records: list[str], styles: list[str], per_record: int, seed: int,
        clf, beats_per_strip: int = BEAT_PICTURES_PER_STRIP, progress=None) -> list[Outcome]:
    """Draw, classify and score every picture; returns one Outcome per picture."""
    from ecg_core.model.explain import GradCam
    from ecg_core.picture import synth

    say = progress or (lambda msg: None)
    runner = Runner(clf, GradCam(clf.model, clf.info.card.get("last_conv_layer")))
    outcomes: list[Outcome] = []
    warmed = False
    t_start = time.perf_counter()
    for ri, name in enumerate(records):
        rec = read_record(mitdb, name)
        rng = np.random.default_rng([seed, int(name) if name.isdigit() else ri])
        length = int(round(STRIP_S * rec.fs))
        starts = choose_strips(rec, per_record, rng, STRIP_S)
        labels = signal_path_labels(rec, starts, length, clf)
        for si, start in enumerate(starts):
            x = rec.signal[start: start + length]
            inside = (rec.beats >= start) & (rec.beats < start + length)
            peaks, symbols = rec.beats[inside] - start, rec.symbols[inside]
            beat_ids = choose_beats(rec, start, length, beats_per_strip, rng)
            seconds = [float(rng.choice([0.8, 1.6])) for _ in beat_ids]
            for style in styles:
                s = seed * 1_000_003 + (int(name) if name.isdigit() else ri) * 101 + si
                drawn = synth.draw(x, rec.fs, style, r_peaks=peaks, symbols=symbols, seed=s, layout="strip")
                if not warmed:  # the first call traces TensorFlow functions: not timed
                    try:
                        runner.classify(drawn.data, "warm-up")
                    except Exception:  # noqa: BLE001  (any refusal: the warm-up only compiles)
                        pass
                    warmed = True
                outcomes.append(runner.run(Outcome(name, style, "strip", start, s), drawn, labels))
                for bj, (b, sec) in enumerate(zip(beat_ids, seconds)):
                    a, e = beat_crop(rec, b, 0.8 if style == "seed_thin" else sec)
                    if a < 0 or e > rec.signal.size:
                        continue
                    inb = (rec.beats >= a) & (rec.beats < e)
                    bs = s * 7 + bj
                    d = synth.draw(rec.signal[a:e], rec.fs, style, r_peaks=rec.beats[inb] - a,
                                   symbols=rec.symbols[inb], seed=bs, layout="beat",
                                   beat_seconds=0.8 if style == "seed_thin" else sec)
                    target = np.flatnonzero(d.r_peaks == int(rec.beats[b]) - a - d.offset)
                    if target.size != 1:
                        continue
                    outcomes.append(runner.run(Outcome(name, style, "beat", a + d.offset, bs), d, labels,
                                               int(target[0])))
        el = time.perf_counter() - t_start
        eta = el / (ri + 1) * (len(records) - ri - 1)
        say(f"[{ri + 1}/{len(records)}] record {name}: {len(starts)} strips, {len(outcomes)} pictures so far, "
            f"{el:.0f} s elapsed, about {eta:.0f} s to go")
    return outcomes


# ---------------------------------------------------------------------------------------------- summary

def _reason(msg: str) -> str:
    """A refusal's reason with its numbers blanked, so that like reasons count together."""
    return re.sub(r"\d+(\.\d+)?", "#", msg).strip()


def _pct(values: list[float], q: float) -> float:
    v = [x for x in values if np.isfinite(x)]
    return float(np.percentile(v, q)) if v else float("nan")


def _snr_values(strips: list[Outcome], key: str) -> list[float]:
    """A strip's SNR, or MISSING_SNR_DB where it was refused or too short to compare."""
    return [float(getattr(o, key)) if np.isfinite(getattr(o, key)) else MISSING_SNR_DB for o in strips]


def _agreement(outcomes: list[Outcome]) -> float:
    """Share of the scored beats whose picture label is the one its pipeline gives on the true signal (less noisy
    than the difference of two macro F1 over a few beats of the rarer classes)."""
    pairs = [(p, s) for o in outcomes for p, s in zip(o.picture, o.same)]
    return float(np.mean([p == s for p, s in pairs])) if pairs else float("nan")


def summarise(outcomes: list[Outcome], styles: list[str]) -> dict:
    """Per-style numbers, the beats that entered, and the targets."""
    rows = []
    for style in styles:
        strips = [o for o in outcomes if o.style == style and o.layout == "strip"]
        beats = [o for o in outcomes if o.style == style and o.layout == "beat"]
        n_ref = sum(o.n_ref for o in strips)
        read = [o for o in strips if not (o.refused or o.error)]
        n_ref_read = sum(o.n_ref for o in read)
        n_det = sum(o.n_det for o in strips)
        n_match = sum(o.n_matched for o in strips)
        st_t = [k for o in strips for k in o.truth]
        bt_t = [k for o in beats for k in o.truth]
        refused = [o for o in strips + beats if o.refused]
        errors = [o for o in strips + beats if o.error]
        common = Counter(_reason(o.refused) for o in refused).most_common(1)
        common_err = Counter(o.error for o in errors).most_common(1)
        f1p = macro_f1(st_t, [k for o in strips for k in o.picture])
        f1s = macro_f1(st_t, [k for o in strips for k in o.same])
        f1r = macro_f1(st_t, [k for o in strips for k in o.signal])
        f1bp = macro_f1(bt_t, [k for o in beats for k in o.picture])
        f1bs = macro_f1(bt_t, [k for o in beats for k in o.same])
        f1br = macro_f1(bt_t, [k for o in beats for k in o.signal])
        f1bst = macro_f1(bt_t, [k for o in beats for k in (o.stated or o.picture)])
        agree, agree_b = _agreement(strips), _agreement(beats)
        rows.append({
            "style": style, "strips": len(strips), "beat_pictures": len(beats),
            "snr_band_median": _pct(_snr_values(strips, "snr_band"), 50),
            "snr_band_p10": _pct(_snr_values(strips, "snr_band"), 10),
            "snr_bb_median": _pct(_snr_values(strips, "snr_bb"), 50),
            "snr_ceiling_median": _pct([o.snr_ceiling for o in strips if np.isfinite(o.snr_ceiling)], 50),
            "snr_missing": sum(not np.isfinite(o.snr_band) for o in strips),
            "relative_amplitude": sum(o.relative for o in strips if not (o.refused or o.error)),
            "se": n_match / n_ref if n_ref else float("nan"),
            "se_read": n_match / n_ref_read if n_ref_read else float("nan"),
            "ppv": n_match / n_det if n_det else float("nan"),
            "beat_hit": float(np.mean([o.hit for o in beats])) if beats else float("nan"),
            "f1_picture": f1p, "f1_signal": f1s, "df1": f1p - f1s, "f1_record": f1r,
            "f1_beat_picture": f1bp, "f1_beat_signal": f1bs, "df1_beat": f1bp - f1bs, "f1_beat_record": f1br,
            "f1_beat_stated": f1bst, "df1_beat_stated": f1bst - f1bs, "agree": agree, "agree_beat": agree_b,
            "strip_beats": len(st_t), "beat_beats": len(bt_t),
            "refused_strips": sum(1 for o in refused if o.layout == "strip"),
            "refused_beats": sum(1 for o in refused if o.layout == "beat"),
            "errors": len(errors),
            "beat_misses": {k: sum(o.miss == k for o in beats) for k in MISS_KINDS},
            "commonest_refusal": common[0][0] if common else "",
            "commonest_error": common_err[0][0] if common_err else "",
            "strip_labels_ms": 1e3 * _pct([o.t_labels for o in strips], 50),
            "strip_explained_ms": 1e3 * _pct([o.t_explain for o in strips], 50),
            "beat_labels_ms": 1e3 * _pct([o.t_labels for o in beats], 50),
            "beat_explained_ms": 1e3 * _pct([o.t_explain for o in beats], 50),
        })
    first = styles[0] if styles else None
    entered = {
        "strips": Counter(k for o in outcomes if o.style == first and o.layout == "strip" for k in o.truth),
        "beat_pictures": Counter(k for o in outcomes if o.style == first and o.layout == "beat" for k in o.truth),
    }
    entered = {k: {c: int(v.get(c, 0)) for c in F1_CLASSES} for k, v in entered.items()}
    times = {
        "strip_labels_ms": 1e3 * _pct([o.t_labels for o in outcomes if o.layout == "strip"], 50),
        "strip_explained_ms": 1e3 * _pct([o.t_explain for o in outcomes if o.layout == "strip"], 50),
        "beat_labels_ms": 1e3 * _pct([o.t_labels for o in outcomes if o.layout == "beat"], 50),
        "beat_explained_ms": 1e3 * _pct([o.t_explain for o in outcomes if o.layout == "beat"], 50),
    }
    return {"rows": rows, "entered": entered, "times": times, "targets": targets(rows, times)}


def targets(rows: list[dict], times: dict) -> list[dict]:
    """The issue's targets, each met or not, with the styles that miss it."""
    out = []

    def check(name: str, key: str, ok, groups=("clean", "photo-like"), limits=None) -> None:
        for group, limit in zip(groups, limits):
            sel = [r for r in rows if (r["style"] in PHOTO_LIKE) == (group == "photo-like")]
            if not sel:
                continue
            missing = [r["style"] for r in sel if not (np.isfinite(r[key]) and ok(r[key], limit))]
            out.append({"target": name.format(group=group, limit=limit), "met": not missing, "missing": missing})

    check("strip band SNR median >= {limit:g} dB ({group})", "snr_band_median", lambda v, lim: v >= lim,
          limits=(15.0, 8.0))
    check("strip beat detection Se >= {limit:g} ({group})", "se", lambda v, lim: v >= lim, limits=(0.99, 0.97))
    check("strip beat detection PPV >= {limit:g} ({group})", "ppv", lambda v, lim: v >= lim, limits=(0.99, 0.97))
    check("beat pictures: one beat at the true R peak >= {limit:g} ({group})", "beat_hit",
          lambda v, lim: v >= lim, limits=(0.99, 0.97))
    check("strips: |F1 picture - F1 signal| <= {limit:g} ({group})", "df1", lambda v, lim: abs(v) <= lim,
          limits=(0.03, 0.03))
    check("beat pictures: |F1 picture - F1 signal| <= {limit:g} ({group})", "df1_beat",
          lambda v, lim: abs(v) <= lim, limits=(0.03, 0.03))
    for name, key, limit in (("10 s strip -> labels + Grad-CAM p50 <= 300 ms", "strip_explained_ms", 300.0),
                             ("single beat -> labels + Grad-CAM p50 <= 30 ms", "beat_explained_ms", 30.0)):
        v = times[key]
        out.append({"target": name + f" (measured {v:.0f} ms)", "met": bool(np.isfinite(v) and v <= limit),
                    "missing": []})
    return out


def _f(v: float, fmt: str) -> str:
    return format(v, fmt) if np.isfinite(v) else "-"


def format_report(summary: dict, header: list[str]) -> str:
    """The printed tables (quality, time, beats entered, targets)."""
    lines = list(header)
    cols = [("style", "<12"), ("strips", ">6"), ("SNR band", ">8"), ("p10", ">6"), ("SNR bb", ">6"), ("ceil", ">5"),
            ("0dB", ">4"), ("rel", ">4"), ("Se", ">6"), ("Se rd", ">6"), ("PPV", ">6"), ("beats", ">6"),
            ("hit", ">6"), ("F1 pic", ">7"), ("F1 sig", ">7"), ("dF1", ">7"), ("agree", ">6"), ("F1 rec", ">7"),
            ("F1b pic", ">7"), ("F1b sig", ">7"), ("dF1b", ">7"), ("agree b", ">7"), ("F1b rec", ">7"),
            ("F1b st", ">7"), ("dF1b st", ">7"),
            ("refused (commonest reason)", "")]
    head = "  ".join(format(c, f) for c, f in cols)
    lines += [head, "-" * len(head)]
    for r in summary["rows"]:
        refused = f"{r['refused_strips']} strip / {r['refused_beats']} beat"
        if r["commonest_refusal"]:
            refused += f": {r['commonest_refusal'][:70]}"
        if r["errors"]:
            refused += f"; {r['errors']} error(s): {r['commonest_error'][:60]}"
        vals = [r["style"], str(r["strips"]), _f(r["snr_band_median"], ".1f"), _f(r["snr_band_p10"], ".1f"),
                _f(r["snr_bb_median"], ".1f"), _f(r.get("snr_ceiling_median", float("nan")), ".1f"),
                str(r["snr_missing"]), str(r["relative_amplitude"]),
                _f(r["se"], ".3f"), _f(r["se_read"], ".3f"), _f(r["ppv"], ".3f"), str(r["beat_pictures"]),
                _f(r["beat_hit"], ".3f"), _f(r["f1_picture"], ".3f"), _f(r["f1_signal"], ".3f"),
                _f(r["df1"], "+.3f"), _f(r.get("agree", float("nan")), ".3f"),
                _f(r.get("f1_record", float("nan")), ".3f"), _f(r["f1_beat_picture"], ".3f"),
                _f(r["f1_beat_signal"], ".3f"), _f(r["df1_beat"], "+.3f"), _f(r.get("agree_beat", float("nan")), ".3f"),
                _f(r.get("f1_beat_record", float("nan")), ".3f"), _f(r.get("f1_beat_stated", float("nan")), ".3f"),
                _f(r.get("df1_beat_stated", float("nan")), "+.3f"), refused]
        lines.append("  ".join(format(v, f) for v, (_, f) in zip(vals, cols)))
    lines += ["", "Columns: SNR in dB (band: 0.5-40 Hz, the main measure; p10: 10th percentile; bb: broadband; "
              "ceil: median band SNR of an ideal reading limited to the picture's pixels, see pixel_ceiling_db); "
              "0dB: strips refused or read too short, scored 0 dB; rel: strips read with relative amplitude (gain "
              "fitted); Se/PPV: strip beat detection (Se rd: over the strips read, refusals left out); hit: beat "
              "pictures with exactly one beat returned within 150 ms of the true R peak; F1: macro F1 (N L R A V) "
              "of the picture path / the signal path on the same beats (F1b: beat pictures); sig: the picture "
              "path's own beat pipeline on the true signal the picture shows (a perfect digitizer); dF1 = pic - "
              "sig, what digitizing costs; agree: share of those beats whose picture label is the sig label (agree b: "
              "beat pictures); rec: the same beats classified inside their record (30 s either "
              "side), so sig - rec is what a picture's short context costs; st: beat pictures read with their true "
              "span stated (as a user can state it) where no grid calibrated them, so dF1b st is what digitizing "
              "costs once the unknowable span is known.", ""]
    lines += ["Beat pictures that are not hits: " + "; ".join(f"{k} = {v}" for k, v in MISS_KINDS.items()), ""]
    mcols = [("style", "<12"), *[(k, f">{max(len(k), 5)}") for k in MISS_KINDS]]
    head = "  ".join(format(c, f) for c, f in mcols)
    lines += [head, "-" * len(head)]
    for r in summary["rows"]:
        vals = [r["style"], *[str(r["beat_misses"][k]) for k in MISS_KINDS]]
        lines.append("  ".join(format(v, f) for v, (_, f) in zip(vals, mcols)))
    lines.append("")
    tcols = [("style", "<12"), ("strip labels", ">12"), ("strip +Grad-CAM", ">15"), ("beat labels", ">11"),
             ("beat +Grad-CAM", ">14")]
    head = "  ".join(format(c, f) for c, f in tcols) + "   (p50, ms)"
    lines += [head, "-" * len(head)]
    for r in summary["rows"] + [{"style": "all", **summary["times"]}]:
        vals = [r["style"], _f(r["strip_labels_ms"], ".0f"), _f(r["strip_explained_ms"], ".0f"),
                _f(r["beat_labels_ms"], ".0f"), _f(r["beat_explained_ms"], ".0f")]
        lines.append("  ".join(format(v, f) for v, (_, f) in zip(vals, tcols)))
    e = summary["entered"]
    strips = ", ".join(f"{c} {e['strips'][c]}" for c in F1_CLASSES)
    singles = ", ".join(f"{c} {e['beat_pictures'][c]}" for c in F1_CLASSES)
    lines += ["", f"Beats entered per style (N L R A V): strips {strips}; beat pictures {singles}", "",
              f"Targets (clean: every style but {', '.join(PHOTO_LIKE)}; photo-like: {', '.join(PHOTO_LIKE)}):"]
    for t in summary["targets"]:
        miss = f" ({', '.join(t['missing'])})" if t["missing"] else ""
        lines.append(f"  [{'met' if t['met'] else 'NOT MET'}] {t['target']}{miss}")
    return "\n".join(lines)


def _jsonable(v):
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, float | np.floating):
        return None if not np.isfinite(v) else round(float(v), 4)
    if isinstance(v, np.integer):
        return int(v)
    return v


def command_line(a: argparse.Namespace, records: list[str], styles: list[str], per_record: int) -> str:
    parts = ["python -m ecg_core bench-pictures", f"--mitdb {a.mitdb}"]
    if a.quick:
        parts.append("--quick")
    parts += [f"--per-record {per_record}", f"--seed {a.seed}"]
    if a.records:
        parts.append("--records " + " ".join(records))
    if a.styles:
        parts.append("--styles " + " ".join(styles))
    if a.model:
        parts.append(f"--model {a.model}")
    if a.out:
        parts.append(f"--out {a.out}")
    return " ".join(parts)


def main(a: argparse.Namespace) -> int:
    """The CLI: run, print the tables, write --out."""
    from ecg_core.data.dataset import DS2
    from ecg_core.picture.synth import STYLES

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    mitdb = Path(a.mitdb)
    if a.records:
        bad = [r for r in a.records if r not in DS2]
        if bad:
            say(f"bench-pictures: {', '.join(bad)} not DS2 (test) records; pictures come from DS2 only")
            return 2
        records = list(a.records)
    else:
        records = list(DS2)
    missing = [r for r in records if not (mitdb / f"{r}.hea").exists()]
    if a.records and missing:
        say(f"bench-pictures: records {', '.join(missing)} are not in {mitdb}")
        return 2
    records = [r for r in records if r not in missing]
    if a.quick and not a.records:
        records = records[:QUICK_RECORDS]
    if not records:
        say(f"bench-pictures: no DS2 record found in {mitdb}")
        return 2
    styles = list(a.styles) if a.styles else list(QUICK_STYLES if a.quick else STYLES)
    unknown = [s for s in styles if s not in STYLES]
    if unknown:
        say(f"bench-pictures: unknown style(s) {', '.join(unknown)}; choose from {', '.join(STYLES)}")
        return 2
    per_record = a.per_record if a.per_record is not None else (1 if a.quick else 3)
    beats_per_strip = 1 if a.quick else BEAT_PICTURES_PER_STRIP
    from ecg_core.model import predict

    clf = predict.load(predict.info_from_path(a.model) if a.model else None)
    say(f"bench-pictures: {len(records)} records x {per_record} strips x {len(styles)} styles, model {clf.name}")
    outcomes = run(mitdb, records, styles, per_record, a.seed, clf, beats_per_strip, say)
    summary = summarise(outcomes, styles)
    wall = time.perf_counter() - t0
    cmd = command_line(a, records, styles, per_record)
    header = [f"Picture benchmark: {cmd}",
              f"{len(records)} DS2 records ({', '.join(records)}), {per_record} strip(s) of {STRIP_S:g} s per record "
              f"+ up to {beats_per_strip} single-beat picture(s) per strip, in each of {len(styles)} styles; "
              f"model {clf.name}; seed {a.seed}",
              PROTOCOL.format(lag=MAX_LAG_S, edge=EDGE_S, tol=MATCH_S * 1e3, excl=EXCLUDE_EDGE_S, ctx=CONTEXT_S), ""]
    print(format_report(summary, header))
    print(f"\nWall time: {wall:.0f} s ({len(outcomes)} pictures)")
    if a.out:
        worst = sorted((o for o in outcomes if o.layout == "strip" and np.isfinite(o.snr_band)),
                       key=lambda o: o.snr_band)[:20]
        doc = {"command": cmd, "protocol": PROTOCOL.format(lag=MAX_LAG_S, edge=EDGE_S, tol=MATCH_S * 1e3,
                                                           excl=EXCLUDE_EDGE_S, ctx=CONTEXT_S),
               "model": clf.name, "records": records, "styles": styles, "per_record": per_record,
               "wall_s": wall, "pictures": len(outcomes), **summary,
               "refused": [{"record": o.record, "style": o.style, "layout": o.layout, "start": o.start,
                            "seed": o.seed, "reason": o.refused or o.error} for o in outcomes if o.refused or o.error],
               "lowest_snr_strips": [{"record": o.record, "style": o.style, "start": o.start, "seed": o.seed,
                                      "snr_band": o.snr_band, "calibration": o.calibration} for o in worst]}
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(_jsonable(doc), indent=1) + "\n")
        say(f"wrote {out}")
    return 0
