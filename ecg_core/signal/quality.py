"""Signal quality of a recording, judged window by window before any beat is trusted.

`assess(x_mv, fs)` cuts the recording into 5 s windows and calls a window unreadable when it is
- a flat line (less than 20 microvolts peak to peak, raw or in the 1-40 Hz band),
- clipped (a twentieth of its samples sit at the recording's extreme values: a saturated amplifier),
- high-frequency noise (over 30 % of its power above 40 Hz; an ECG keeps almost all of it below),
- or noisy on at least two of three counts:
  * the two R-peak detectors disagree: Pan-Tompkins (ecg_core.signal.peaks, the pipeline's own) and a
    simple envelope detector (8-25 Hz band, 50 ms envelope, threshold at a third of the window's 99th
    percentile) find the same peaks within 150 ms for less than 80 % of them (Li, Mark & Clifford 2008,
    "bSQI");
  * beat shapes are inconsistent: a detected beat's best correlation with another beat of the window
    (+-80 ms) has a median below 0.85 (ectopic beats still find their like: bigeminy passes);
  * baseline swings (below 0.7 Hz) span over twice the 99th percentile of the 1-40 Hz signal.
  Kurtosis is reported per window but calls none unreadable: ventricular fibrillation and flutter are
  near-sinusoidal (kurtosis 1.5-3, like noise) and are a real rhythm, which the VF detector judges.

Calibration (tests/test_quality.py::test_every_mitdb_record_is_good_and_vfdb_vf_stays_readable checks it):
all 48 MIT-BIH records are good (22 of their 17,328 windows unreadable, 13 of them in record 108);
vfdb: 13 of 378 VF/VFL windows unreadable (3 %), 126 of 497 '(NOISE' windows (25 %; many of those show
readable beats in the lead read, and record 605's 27 'noise' minutes are clean, 1 window of 412 called
unreadable). A 30-minute record at 360 Hz is assessed in ~0.35 s.

The verdict: 'good' when at least 90 % of the recording is readable, 'unreadable' when less than 10 %
is, 'poor' in between. `reason` is one line for the user; `segments` lists the unreadable stretches.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from scipy import signal as sps
from scipy.ndimage import uniform_filter1d

from ecg_core.settings import WORKING_FS
from ecg_core.signal import signals
from ecg_core.signal.peaks import pan_tompkins
from ecg_core.signal.signals import zero_phase

WINDOW_S = 5.0
MIN_WINDOW_S = 2.0  # a shorter tail is judged with the last full window's length, overlapping it
FLAT_PTP_MV = 0.02
CLIP_SHARE = 0.05
HF_CUTOFF_HZ, HF_SHARE = 40.0, 0.30
MATCH_S = 0.15
AGREEMENT_MIN = 0.8
SHAPE_MIN = 0.85
SHAPE_HALF_S = 0.08
BASELINE_RATIO_MAX = 2.0
GOOD_SHARE, UNREADABLE_SHARE = 0.90, 0.10
REFERENCE_AGREEMENT_MIN = 0.5  # F1 of reference beats vs detected R peaks; a matching file gives > 0.9

FLAT, CLIPPED, HF_NOISE = "flat line", "clipped (the amplifier saturates)", "high-frequency noise"
DISAGREE, SHAPES, BASELINE = "R-peak detectors disagree", "beat shapes inconsistent", "baseline swings"


@dataclass(frozen=True)
class Segment:
    """An unreadable stretch of the recording, in seconds from its start."""

    start_s: float
    end_s: float
    reason: str


@dataclass
class Quality:
    verdict: str  # "good", "poor" or "unreadable"
    readable_share: float  # of the recording's duration
    segments: list[Segment]
    reason: str  # one line
    peaks: np.ndarray = field(repr=False)  # R peaks found by Pan-Tompkins, at the recording's own rate
    windows: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # per-window measures
    # the same R peaks at the working rate, as peaks.detect_beats finds them in signals.prepare_signal of
    # the assessed signal (the same arrays): a caller holding that signal need not detect them again
    working_peaks: np.ndarray | None = field(default=None, repr=False)
    working_samples: int = 0  # the prepared signal's length those peaks belong to

    @property
    def note(self) -> str:
        return f"Signal quality {self.verdict}: {self.reason}"


# ---------------------------------------------------------------- detectors and per-window measures

def envelope_peaks(xp: np.ndarray, fs: int = WORKING_FS, window: int | None = None) -> np.ndarray:
    """A second, deliberately simple R-peak detector: 8-25 Hz band, 50 ms mean of its magnitude, peaks above a
    third of each window's 99th percentile, 250 ms apart. It shares no decision rule with Pan-Tompkins."""
    if xp.size < 2 * fs:
        return np.zeros(0, dtype=np.int64)
    f = zero_phase(signals.butter_sos(2, (8.0, 25.0), "bandpass", fs), xp)
    env = uniform_filter1d(np.abs(f, out=f), max(1, int(round(0.05 * fs))))
    del f
    n = window or int(round(WINDOW_S * fs))
    k = max(1, env.size // n)
    level = np.percentile(env[: k * n].reshape(k, -1) if env.size >= n else env[None, :], 99, axis=1)
    floor = np.maximum(level / 3.0, 1e-12)  # each window's height threshold, written once per sample
    height = np.empty(env.size)
    whole = min(k, env.size // n)
    height[: whole * n].reshape(whole, n)[:] = floor[:whole, None]
    height[whole * n:] = floor[whole] if whole < k else floor[-1]
    peaks, _ = sps.find_peaks(env, height=height, distance=max(1, int(round(0.25 * fs))))
    return peaks.astype(np.int64)


def _matched(a: np.ndarray, b: np.ndarray, tol: int) -> np.ndarray:
    """For each element of sorted a, whether sorted b has one within tol."""
    if a.size == 0 or b.size == 0:
        return np.zeros(a.size, dtype=bool)
    j = np.clip(np.searchsorted(b, a), 1, b.size - 1) if b.size > 1 else np.zeros(a.size, dtype=np.int64)
    d = np.abs(b[j] - a)
    if b.size > 1:
        d = np.minimum(d, np.abs(b[j - 1] - a))
    return d <= tol


def _window_starts(n_samples: int, n: int) -> np.ndarray:
    if n_samples <= n:
        return np.zeros(1, dtype=np.int64)
    k = n_samples // n
    starts = np.arange(k, dtype=np.int64) * n
    if n_samples - k * n >= MIN_WINDOW_S / WINDOW_S * n:
        starts = np.append(starts, n_samples - n)
    return starts


def _detections(x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prepared signal as float64, its Pan-Tompkins peaks, its envelope peaks), at the working rate."""
    xp = signals.prepare_signal(x, fs).astype(np.float64)
    return xp, pan_tompkins(xp), envelope_peaks(xp)


def window_measures(x: np.ndarray, fs: float) -> tuple[np.ndarray, int, dict[str, np.ndarray], np.ndarray, int]:
    """(window starts, window length, measures per window, Pan-Tompkins peaks at the working rate, the
    prepared signal's length).

    The two detectors run in a second thread while the per-window measures are taken (NumPy and SciPy
    release the GIL): the same numbers in about half the wall time on two cores."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        detected = pool.submit(_detections, x, fs)
        starts, n, out = _signal_measures(x, fs)
        xp, pt, env = detected.result()
    scale = WORKING_FS / fs
    tol = int(round(MATCH_S * WORKING_FS))
    ok_pt, ok_env = _matched(pt, env, tol), _matched(env, pt, tol)
    # detector agreement per window from cumulative counts (the windows' peaks: searchsorted once)
    a, e = np.round(starts * scale).astype(np.int64), np.round((starts + n) * scale).astype(np.int64)
    i0, i1 = np.searchsorted(pt, a), np.searchsorted(pt, e)
    j0, j1 = np.searchsorted(env, a), np.searchsorted(env, e)
    cum_pt = np.concatenate([[0], np.cumsum(ok_pt)])
    cum_env = np.concatenate([[0], np.cumsum(ok_env)])
    found = (i1 - i0) + (j1 - j0)
    agreement = np.ones(starts.size)
    has = found > 0
    agreement[has] = ((cum_pt[i1] - cum_pt[i0]) + (cum_env[j1] - cum_env[j0]))[has] / found[has]
    beats = (i1 - i0).astype(np.int64)
    half = int(round(SHAPE_HALF_S * WORKING_FS))
    shape = np.full(starts.size, np.nan)
    for i in np.flatnonzero(beats >= 3).tolist():
        p = pt[i0[i]:i1[i]]
        p = p[(p >= half) & (p < xp.size - half)]
        if p.size >= 3:
            seg = xp[p[:, None] + np.arange(-half, half + 1)[None, :]]
            seg = seg - seg.mean(axis=1, keepdims=True)
            seg /= np.maximum(np.linalg.norm(seg, axis=1, keepdims=True), 1e-12)
            corr = seg @ seg.T
            np.fill_diagonal(corr, -1.0)
            shape[i] = float(np.median(corr.max(axis=1)))
    measures = {"start_s": starts / fs, **out, "agreement": agreement, "shape": shape, "beats": beats}
    return starts, n, measures, pt, int(xp.size)


def _signal_measures(x: np.ndarray, fs: float) -> tuple[np.ndarray, int, dict[str, np.ndarray]]:
    """(window starts, window length, the measures of each window read off the signal itself)."""
    n = min(int(round(WINDOW_S * fs)), x.size)
    starts = _window_starts(x.size, n)
    chunk = max(1, 2_000_000 // n)  # windows per pass: a few tens of MB at most, even for 24 h at 1000 Hz
    passes = [slice(c0, c0 + chunk) for c0 in range(0, starts.size, chunk)]
    # the baseline's swing per window first, so that the two filtered copies are never held together
    low = zero_phase(signals.butter_sos(2, 0.7, "lowpass", fs), x)
    swing = np.concatenate([np.ptp(low[starts[sl, None] + np.arange(n)[None, :]], axis=1) for sl in passes])
    del low
    band = zero_phase(signals.butter_sos(2, (1.0, 40.0), "bandpass", fs), x)
    hi, lo = float(x.max()), float(x.min())
    freqs = np.fft.rfftfreq(n, 1.0 / fs)
    taper = np.hanning(n)
    cols = ("ptp_mv", "clip_share", "hf_share", "kurtosis", "baseline_ratio")
    out = {k: np.empty(starts.size) for k in cols}
    for sl in passes:
        idx = starts[sl, None] + np.arange(n)[None, :]
        raw, b = x[idx], band[idx]
        amp = np.percentile(np.abs(b), 99, axis=1)
        c = b - b.mean(axis=1, keepdims=True)
        c2 = c * c
        var = c2.mean(axis=1)
        # the fourth moment as (c^2)^2: a multiplication instead of pow() (the same to ~1e-16)
        out["kurtosis"][sl] = (c2 * c2).mean(axis=1) / np.maximum(var * var, 1e-30)
        spec = np.abs(np.fft.rfft((raw - raw.mean(axis=1, keepdims=True)) * taper, axis=1)) ** 2
        total = spec[:, freqs >= 0.5].sum(axis=1)
        out["hf_share"][sl] = spec[:, freqs >= HF_CUTOFF_HZ].sum(axis=1) / np.maximum(total, 1e-30)
        out["clip_share"][sl] = ((raw >= hi) | (raw <= lo)).mean(axis=1) if hi > lo else 1.0
        out["ptp_mv"][sl] = np.minimum(np.ptp(raw, axis=1), np.ptp(b, axis=1))
        out["baseline_ratio"][sl] = swing[sl] / np.maximum(amp, 1e-12)
    return starts, n, out


def window_reasons(m: dict[str, np.ndarray]) -> list[str]:
    """'' for a readable window, else why it is unreadable."""
    out = []
    for i in range(m["start_s"].size):
        if m["ptp_mv"][i] < FLAT_PTP_MV:
            out.append(FLAT)
        elif m["clip_share"][i] >= CLIP_SHARE:
            out.append(CLIPPED)
        elif m["hf_share"][i] >= HF_SHARE:
            out.append(HF_NOISE)
        else:
            counts = [name for name, bad in ((DISAGREE, m["agreement"][i] < AGREEMENT_MIN),
                                              (SHAPES, m["shape"][i] < SHAPE_MIN),  # NaN (< 3 beats): no count
                                              (BASELINE, m["baseline_ratio"][i] > BASELINE_RATIO_MAX)) if bad]
            out.append(f"noise ({', '.join(counts)})" if len(counts) >= 2 else "")
    return out


# ---------------------------------------------------------------- the verdict

def _fmt_s(t: float) -> str:
    return f"{t:.0f} s" if t < 600 else f"{t / 60:.1f} min"


def assess(x_mv: np.ndarray, fs: float) -> Quality:
    """The quality verdict of one lead in millivolts (finite samples, at least a few seconds)."""
    x = np.asarray(x_mv, dtype=np.float64)
    if x.size < 2 or not np.isfinite(x).all():
        raise ValueError("assess() needs a finite signal of at least two samples")
    starts, n, m, pt, n_work = window_measures(x, fs)
    reasons = window_reasons(m)
    bad = np.zeros(x.size, dtype=bool)
    for s, r in zip(starts, reasons):
        if r:
            bad[s: s + n] = True
    share = 1.0 - float(bad.mean())
    segments: list[Segment] = []
    i = 0
    while i < starts.size:  # merge runs of unreadable windows, each with its commonest reason
        if not reasons[i]:
            i += 1
            continue
        j = i
        while j + 1 < starts.size and reasons[j + 1] and starts[j + 1] <= starts[j] + n:
            j += 1
        why = Counter(reasons[i: j + 1]).most_common(1)[0][0]
        segments.append(Segment(round(float(starts[i] / fs), 2), round(float(min(starts[j] + n, x.size) / fs), 2), why))
        i = j + 1
    verdict = "good" if share >= GOOD_SHARE else "unreadable" if share < UNREADABLE_SHARE else "poor"
    pct = f"{np.floor(100 * share):.0f} %" if share < 1 else "100 %"
    if not segments:
        reason = f"{pct} of the recording is readable ({starts.size} windows of {WINDOW_S:g} s checked)."
    else:
        lost = sum(s.end_s - s.start_s for s in segments)
        worst = Counter(s.reason for s in segments for _ in range(max(1, round((s.end_s - s.start_s) / WINDOW_S))))
        longest = max(segments, key=lambda s: s.end_s - s.start_s)
        if verdict == "unreadable":
            reason = f"{pct} of the recording is readable (mostly {worst.most_common(1)[0][0]})."
        else:
            reason = (f"{pct} of the recording is readable; {len(segments)} unreadable stretch"
                      f"{'es' if len(segments) > 1 else ''} ({_fmt_s(lost)} in all), the longest "
                      f"{longest.start_s:.0f}-{longest.end_s:.0f} s: {longest.reason}.")
    peaks = np.clip(signals.rescale_samples(pt, WORKING_FS, fs), 0, x.size - 1)
    return Quality(verdict, share, segments, reason, peaks, m, working_peaks=pt, working_samples=n_work)


def reference_agreement(reference_beats: np.ndarray, quality: Quality, fs: float, n_samples: int) -> float | None:
    """F1 of reference beat positions against the detected R peaks (150 ms), inside readable stretches only;
    None when either side has fewer than 5 beats there."""
    keep = np.ones(n_samples, dtype=bool)
    for s in quality.segments:
        keep[int(s.start_s * fs): int(np.ceil(s.end_s * fs))] = False
    ref = np.sort(np.asarray(reference_beats, dtype=np.int64))
    inside = (ref >= 0) & (ref < n_samples)
    outside = int((~inside).sum())
    ref = ref[inside]
    ref = ref[keep[ref]]
    det = quality.peaks[keep[quality.peaks]]
    if ref.size + outside < 5 or det.size < 5:
        return None
    tol = int(round(MATCH_S * fs))
    hits = _matched(ref, det, tol).sum() + _matched(det, ref, tol).sum()
    return float(hits / (ref.size + outside + det.size))
