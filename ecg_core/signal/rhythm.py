"""Rhythm-level detection over signal windows: ventricular fibrillation / flutter, VT, organised rhythm, noise.

Every second of a prepared signal (WORKING_FS, band-passed) is judged by the windows centred on it:
4 s and 8 s long, one per second. Each window gets the measures of the classic VF detectors compared by
Amann et al. 2005 (Biomed Eng Online 4:60) and a few of shape and regularity:
- TCSC, threshold crossing sample count (Arafat et al. 2009): share of samples above 0.2 of each 1 s
  block's maximum; VF hovers away from the baseline, organised rhythm returns to it;
- VF filter leakage (Kuo & Dillman 1978): what a notch filter at the window's mean frequency leaves;
  a near-sinusoid (VF, flutter) leaks little;
- the spectral parameters of Barro et al. 1989 (peak frequency, normalised first moment FSMN, A1, A2, A3);
- band powers, spectral entropy, the power at the harmonics of the dominant frequency against its own
  (a near-sinusoid has little), isoelectric share, kurtosis, slope measures, the wave rate (turning points
  of the 100 ms average), autocorrelation
  (periodicity), and the R-peak rate and RR regularity in the window (Pan-Tompkins peaks);
- the phase-space box count of Amann et al. 2007 (x(t) against x(t - 0.5 s)), the longest stretch
  without slope, and of the detected complexes: how alike successive ones are, their height variation and
  the successive RR differences (an organised rhythm repeats its complex however wide it is; VF does not).
A bag of small networks (`RhythmModel`, weights in JSON, numpy forward pass: no pickle) turns them into
probabilities of four classes, averaged over the bag and over smooth_s seconds. A second belongs to a VF
episode when P(VF) + P(VT) reaches the model's threshold (see `shockable`) and its windows do not repeat one
complex under 130 /min (`repeating_complexes`), else it is noise when P(noise) reaches the noise threshold
(thresholds, smoothing, padding and joining gap chosen on training records only). Each episode is named
VF/flutter or VT by the class that dominates it.

Episode rules (`runs`, `resolve`): runs of VF seconds at most the model's merge_gap_s apart are one
episode (never joined across a flat or clipped stretch); episodes shorter than MIN_VF_S are dropped
(isolated false alarms), the others widened by the model's pad_s on both sides (centred windows see an
episode's edges half organised); noise runs likewise with MERGE_GAP_S and MIN_NOISE_S. The recording's
signal-quality segments that are flat or clipped (ecg_core.signal.quality) are noise whatever the model
says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.ndimage import maximum_filter1d, uniform_filter1d

from ecg_core.settings import WORKING_FS
from ecg_core.signal import signals

CLASSES = ("organised", "VF", "VT", "noise")
SCALES_S = (4.0, 8.0)  # window lengths, centred on each second
FEATURE_FS = 90  # Hz: measures are taken on the prepared signal resampled to this rate
MEASURES_VERSION = 6  # raised when a measure's definition or the R-peak detector changes (caches are keyed by it)
STEP_S = 1.0
MERGE_GAP_S = 2.0  # runs of noise seconds this close are one segment (of VF seconds: the model's merge_gap_s)
MIN_VF_S = 3.0
MIN_NOISE_S = 2.0
MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "rhythm"
DEFAULT_MODEL = MODEL_DIR / "rhythm_mlp.json"
DETECTOR_REASON = "noise or artifact (no readable rhythm)"
FORCED_NOISE = ("flat line", "clipped (the amplifier saturates)")  # quality reasons that override the model
NOISE_COLUMNS = ["start_s", "end_s", "duration_s", "reason"]

# rhythm annotation (aux note) -> class; every other rhythm is organised
LABEL_OF = {"(VF": "VF", "(VFL": "VF", "(VFIB": "VF", "(VT": "VT", "(NOISE": "noise"}


# ---------------------------------------------------------------- window measures

BASE_FEATURES = (
    "log_amp", "log_rms", "kurtosis", "abs_skew", "tcsc", "leakage", "peak_hz", "fsmn", "a1", "a2", "a3",
    "p_low", "p_vf", "p_mid", "p_high", "spec_entropy", "iso_share", "flat_slope_share", "slope_ratio",
    "acf_max", "acf_lag_s", "beat_rate", "rr_cv", "amp_var",
    "phase_boxes", "flat_run_s", "beat_corr", "beat_corr_low", "peak_amp_cv", "rr_diff", "beat_width",
    "wave_rate_hz", "harmonic_ratio")
# measures of the detected complexes: unknown (NaN, the training mean to the model) in a window with too
# few peaks, e.g. while the R-peak detector has lost the signal after an artifact (a flat line is caught by
# the quality check, so no peaks is no evidence of a rate)
MISSING_OK = ("beat_rate", "rr_cv", "beat_corr", "beat_corr_low", "peak_amp_cv", "rr_diff", "beat_width")
BEAT_HALF_S = 0.15  # half width of the complex compared with its predecessor
PHASE_LAG_S, PHASE_GRID = 0.5, 40  # Amann et al. 2007: x(t) against x(t - 0.5 s) on a 40 x 40 grid
# VF has no repeating complex and flutter runs at 250-300 /min: where both windows show alike successive
# complexes (mean correlation >= REPEAT_CORR) under REPEAT_RATE_MIN per minute, the rhythm is organised
# however wide its complexes (see `repeating_complexes`)
REPEAT_CORR, REPEAT_RATE_MIN = 0.85, 130.0


def window_starts(n: int, length: int, fs: int = WORKING_FS, step_s: float = STEP_S) -> np.ndarray:
    """Start samples of the windows centred on each second (k + 0.5 s), kept inside the signal."""
    k = max(1, int(np.ceil(n / (step_s * fs))))
    centre = (np.arange(k) + 0.5) * step_s * fs
    return np.clip(np.round(centre - length / 2), 0, max(n - length, 0)).astype(np.int64)


def _percentiles(a: np.ndarray, qs: tuple[float, ...]) -> list[np.ndarray]:
    """np.percentile(a, q, axis=1) (linear interpolation) for each q, from one partial sort of the rows."""
    n = a.shape[1]
    pos = [q / 100.0 * (n - 1) for q in qs]
    kth = sorted({k for p in pos for k in (int(np.floor(p)), min(int(np.floor(p)) + 1, n - 1))})
    part = np.partition(a, kth, axis=1)
    out = []
    for p in pos:
        lo = int(np.floor(p))
        hi, frac = min(lo + 1, n - 1), p - lo
        out.append(part[:, lo] + (part[:, hi] - part[:, lo]) * frac)
    return out


def _measures(w: np.ndarray, fs: int) -> dict[str, np.ndarray]:
    """Measures of each row of w (windows x samples, mV)."""
    m, n = w.shape
    c = w - w.mean(axis=1, keepdims=True)
    a = np.abs(c)
    out: dict[str, np.ndarray] = {}
    p1, p99 = _percentiles(c, (1.0, 99.0))
    amp = p99 - p1
    out["log_amp"] = np.log(amp + 1e-3)
    c2 = c * c
    var = c2.mean(axis=1)
    out["log_rms"] = 0.5 * np.log(var + 1e-8)
    sd = np.sqrt(var) + 1e-9
    out["kurtosis"] = np.log((c2 * c2).mean(axis=1) / (var * var + 1e-18) + 1e-6)
    out["abs_skew"] = np.abs((c2 * c).mean(axis=1) / sd**3)
    # TCSC: 1 s blocks, each normalised by its own maximum
    blocks = n // fs
    b = a[:, : blocks * fs].reshape(m, blocks, fs)
    out["tcsc"] = (b > 0.2 * (b.max(axis=2, keepdims=True) + 1e-9)).mean(axis=(1, 2))
    # VF filter leakage: a notch at the window's mean frequency, half period N samples
    d = np.diff(c, axis=1)
    half = np.floor(np.pi * a.sum(axis=1) / (np.abs(d).sum(axis=1) + 1e-9) + 0.5).astype(np.int64)
    half = np.clip(half, 1, n // 2)
    idx = np.arange(n)[None, :]
    lag = np.take_along_axis(c, np.clip(idx - half[:, None], 0, n - 1), axis=1)
    valid = idx >= half[:, None]
    out["leakage"] = (np.abs(c + lag) * valid).sum(axis=1) / ((a + np.abs(lag)) * valid).sum(axis=1).clip(1e-9)
    # spectrum (Barro et al.): Hamming window, |Re| + |Im|
    nfft = 1 << int(np.ceil(np.log2(max(n, 2 * fs * 4))))  # 0.1 Hz bins at least
    f = np.fft.rfftfreq(nfft, 1.0 / fs)
    spec = np.fft.rfft(c * np.hamming(n)[None, :], n=nfft, axis=1)
    amp_s = np.abs(spec.real) + np.abs(spec.imag)
    band = (f >= 0.5) & (f <= 9.0)
    pk = np.flatnonzero(band)[amp_s[:, band].argmax(axis=1)]
    omega = f[pk]
    out["peak_hz"] = omega
    # Barro's shares: the kept amplitudes between 0.5 Hz and min(20 omega, 40 Hz), summed band by band from
    # one cumulative sum (bands as bin ranges: f is sorted)
    top = np.minimum(20 * omega, 40.0)
    a_s = np.where(amp_s >= 0.05 * amp_s[np.arange(m), pk][:, None], amp_s, 0.0)
    f0, f_top = int(np.searchsorted(f, 0.5)), np.searchsorted(f, top, side="right")
    a_s[:, :f0] = 0.0
    a_s[np.arange(f.size)[None, :] >= f_top[:, None]] = 0.0
    cum = np.concatenate([np.zeros((m, 1)), np.cumsum(a_s, axis=1)], axis=1)
    total = cum[:, -1] + 1e-12
    out["fsmn"] = (a_s @ f) / total / np.maximum(omega, 1e-3)
    rows = np.arange(m)

    def share(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        i0, i1 = np.searchsorted(f, lo), np.searchsorted(f, hi, side="right")
        return (cum[rows, np.maximum(i1, i0)] - cum[rows, i0]) / total

    out["a1"] = share(np.full(m, 0.5), omega / 2)
    out["a2"] = share(0.7 * omega, 1.4 * omega)
    out["a3"] = sum(share(k * omega - 0.6, k * omega + 0.6) for k in range(2, 9))
    p = spec.real**2 + spec.imag**2
    b05, b40 = int(np.searchsorted(f, 0.5)), int(np.searchsorted(f, 40.0, side="right"))
    pt = p[:, b05:b40].sum(axis=1) + 1e-12
    for name, lo, hi in (("p_low", 0.5, 2.5), ("p_vf", 2.5, 7.0), ("p_mid", 7.0, 15.0), ("p_high", 15.0, 40.0)):
        out[name] = p[:, np.searchsorted(f, lo): np.searchsorted(f, hi)].sum(axis=1) / pt
    q = p[:, b05:b40] / pt[:, None]
    out["spec_entropy"] = -(q * np.log(q + 1e-12)).sum(axis=1) / np.log(q.shape[1])
    # a near-sinusoid (flutter, VF) has little power at the harmonics of its dominant frequency (1.5-9 Hz);
    # organised rhythm's narrow complexes put most of theirs there
    srch = np.flatnonzero((f >= 1.5) & (f <= 9.0))
    dom = f[srch[p[:, srch].argmax(axis=1)]]
    in_band = ((f >= 1.0) & (f <= 20.0))[None, :]
    fund = (np.abs(f[None, :] - dom[:, None]) <= 0.5) & in_band
    harm = np.zeros_like(fund)
    for k in (2, 3, 4):
        harm |= np.abs(f[None, :] - k * dom[:, None]) <= 0.5
    out["harmonic_ratio"] = np.log((p * (harm & in_band)).sum(axis=1) / ((p * fund).sum(axis=1) + 1e-12) + 1e-3)
    # shape: organised rhythm rests on an isoelectric line between narrow complexes
    out["iso_share"] = (a < 0.1 * (a.max(axis=1, keepdims=True) + 1e-9)).mean(axis=1)
    ad = np.abs(d)
    out["flat_slope_share"] = (ad < 0.05 * (ad.max(axis=1, keepdims=True) + 1e-12)).mean(axis=1)
    out["slope_ratio"] = np.log(ad.mean(axis=1) * fs / (a.mean(axis=1) + 1e-9) + 1e-6)
    # turning points per second of the signal averaged over 100 ms: the waves, not the noise riding on them
    # (the raw count doubled on low-amplitude flutter with jitter and made it look organised)
    ds = np.diff(uniform_filter1d(c, max(1, int(round(0.1 * fs))), axis=1), axis=1)
    out["wave_rate_hz"] = (np.diff(np.signbit(ds), axis=1)).sum(axis=1) / (n / fs)
    # periodicity: the highest normalised autocorrelation between 0.2 and 2 s
    fa = np.fft.rfft(c, n=nfft, axis=1)
    ac = np.fft.irfft(fa.real**2 + fa.imag**2, n=nfft, axis=1)
    lo, hi = int(0.2 * fs), min(int(2.0 * fs), n - 1)
    seg = ac[:, lo:hi] / (ac[:, :1] + 1e-12) * n / np.maximum(n - np.arange(lo, hi), 1)[None, :]
    out["acf_max"] = seg.max(axis=1)
    out["acf_lag_s"] = (seg.argmax(axis=1) + lo) / fs
    # amplitude stability across 1 s blocks (noise bursts vary; VF waxes slowly)
    bmax = b.max(axis=2)
    out["amp_var"] = np.log(bmax.std(axis=1) / (bmax.mean(axis=1) + 1e-9) + 1e-3)
    # phase space (Amann et al. 2007): VF wanders over many boxes of the x(t), x(t - 0.5 s) plane, organised
    # rhythm stays near the origin box between its complexes
    lag_n = int(round(PHASE_LAG_S * fs))
    if n > lag_n:
        z = np.clip((c - p1[:, None]) / (amp[:, None] + 1e-9), 0.0, 1.0 - 1e-9)
        g = (z * PHASE_GRID).astype(np.int64)
        box = g[:, lag_n:] * PHASE_GRID + g[:, :-lag_n]
        seen = np.zeros((m, PHASE_GRID * PHASE_GRID), dtype=bool)
        seen[np.arange(m)[:, None], box] = True
        out["phase_boxes"] = seen.sum(axis=1) / (PHASE_GRID * PHASE_GRID)
    else:
        out["phase_boxes"] = np.zeros(m)
    # the longest stretch without slope: a wide complex still leaves an isoelectric segment, VF never rests
    still = ad < 0.1 * (_percentiles(ad, (95.0,))[0][:, None] + 1e-12)
    cs = np.cumsum(still, axis=1)
    reset = np.maximum.accumulate(np.where(still, 0, cs), axis=1)
    out["flat_run_s"] = (cs - reset).max(axis=1) / fs
    return out


def beat_shapes(x: np.ndarray, peaks: np.ndarray, fs: int) -> tuple[np.ndarray, np.ndarray]:
    """Per detected peak: the correlation of its complex (+-BEAT_HALF_S) with the previous one, and its height.

    Organised rhythm repeats its complex, however wide; the peaks found in VF fall on changing waves.
    """
    h = int(round(BEAT_HALF_S * fs))
    p = np.clip(np.asarray(peaks, dtype=np.int64), h, max(x.size - h - 1, h))
    if p.size == 0 or x.size < 2 * h + 1:
        return np.zeros(p.size), np.zeros(p.size)
    seg = x[p[:, None] + np.arange(-h, h + 1)[None, :]]
    height = seg.max(axis=1) - seg.min(axis=1)
    seg = seg - seg.mean(axis=1, keepdims=True)
    seg /= np.linalg.norm(seg, axis=1, keepdims=True) + 1e-9
    corr = np.zeros(p.size)
    corr[1:] = (seg[1:] * seg[:-1]).sum(axis=1)
    return corr, height


def beat_widths(x: np.ndarray, peaks: np.ndarray, fs: int) -> np.ndarray:
    """Per detected peak: the width in seconds of the steep part around it (|slope|, its largest over 3
    samples, above a tenth of its maximum within 60 ms of the peak, contiguous through the peak). A
    supraventricular rhythm's complexes are narrow at any rate; VT's and flutter's are wide."""
    h = int(round(BEAT_HALF_S * fs))
    p = np.clip(np.asarray(peaks, dtype=np.int64), h, max(x.size - h - 2, h))
    if p.size == 0 or x.size < 2 * h + 2:
        return np.zeros(p.size)
    # the largest |slope| of 3 samples: the slope passes through zero at a wave's apex
    d = maximum_filter1d(np.abs(np.diff(x)), 3)
    seg = d[p[:, None] + np.arange(-h, h + 1)[None, :]]
    core = int(round(0.06 * fs))
    thr = 0.1 * seg[:, h - core: h + core + 1].max(axis=1, keepdims=True)
    above = seg >= thr
    left = np.cumprod(above[:, h::-1], axis=1).sum(axis=1)
    right = np.cumprod(above[:, h:], axis=1).sum(axis=1)
    return np.maximum(left + right - 1, 0) / fs


def _peak_measures(peaks: np.ndarray, starts: np.ndarray, n: int, fs: int,
                   shapes: tuple[np.ndarray, np.ndarray] | None = None,
                   widths: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Rate, RR regularity, complex-to-complex likeness and width of the peaks inside each window (cumulative
    sums)."""
    peaks = np.asarray(peaks, dtype=np.int64)
    corr, height = shapes if shapes is not None else (np.zeros(peaks.size), np.zeros(peaks.size))
    widths = np.zeros(peaks.size) if widths is None else np.asarray(widths, dtype=np.float64)
    i0 = np.searchsorted(peaks, starts)
    i1 = np.searchsorted(peaks, starts + n)
    cnt = i1 - i0
    rate = cnt / (n / fs) * 60.0

    def window_sum(v: np.ndarray, first: np.ndarray) -> np.ndarray:  # sum of v[first:i1] per window
        c = np.concatenate([[0.0], np.cumsum(v)])
        return c[i1] - c[np.minimum(first, i1)]

    rr = np.diff(peaks).astype(np.float64)
    rr_at = np.concatenate([[0.0], rr])  # rr_at[i]: the interval ending at peak i
    drr_at = np.concatenate([[0.0, 0.0], np.abs(np.diff(rr))])  # |RR change| ending at peak i
    k_rr = np.maximum(cnt - 1, 0)
    s1, s2 = window_sum(rr_at, i0 + 1), window_sum(rr_at**2, i0 + 1)
    mean_rr = s1 / np.maximum(k_rr, 1)
    var_rr = np.maximum(s2 / np.maximum(k_rr, 1) - mean_rr**2, 0.0)
    enough = cnt >= 3
    cv = np.where(enough, np.sqrt(var_rr) / np.maximum(mean_rr, 1.0), np.nan)
    rr_diff = np.where(enough, window_sum(drr_at, i0 + 2) / np.maximum(cnt - 2, 1) / np.maximum(mean_rr, 1.0),
                       np.nan)
    k_c = np.maximum(cnt - 1, 1)
    beat_corr = np.where(cnt >= 2, window_sum(corr, i0 + 1) / k_c, np.nan)
    low = np.where(cnt >= 2, window_sum((corr < 0.8).astype(np.float64), i0 + 1) / k_c, np.nan)
    h1, h2 = window_sum(height, i0), window_sum(height**2, i0)
    mh = h1 / np.maximum(cnt, 1)
    amp_cv = np.where(cnt >= 2, np.sqrt(np.maximum(h2 / np.maximum(cnt, 1) - mh**2, 0.0)) / (mh + 1e-9), np.nan)
    width = np.where(cnt >= 2, window_sum(widths, i0) / np.maximum(cnt, 1), np.nan)
    return {"beat_rate": np.where(cnt >= 2, np.log1p(rate), np.nan), "rr_cv": cv, "rr_diff": rr_diff,
            "beat_corr": beat_corr, "beat_corr_low": low, "peak_amp_cv": amp_cv, "beat_width": width}


def features(x: np.ndarray, peaks: np.ndarray, fs: int = WORKING_FS, chunk: int = 600) -> np.ndarray:
    """(seconds, features) of a prepared signal: every base measure at each scale (FEATURES order).

    Measured at FEATURE_FS (the signal is band-limited to 40 Hz already): a quarter of the work at 360 Hz.
    """
    n_seconds = max(1, int(np.ceil(np.asarray(x).size / fs)))
    x = signals.resample(np.asarray(x, dtype=np.float64), fs, FEATURE_FS)
    return features_at_feature_fs(x, signals.rescale_samples(peaks, fs, FEATURE_FS), n_seconds, chunk)


def features_at_feature_fs(x: np.ndarray, peaks: np.ndarray, n_seconds: int, chunk: int = 600) -> np.ndarray:
    """`features` of a signal already at FEATURE_FS (peaks at that rate too)."""
    x = np.asarray(x, dtype=np.float64)
    fs = FEATURE_FS
    peaks = np.sort(np.asarray(peaks, dtype=np.int64))
    shapes = beat_shapes(x, peaks, fs)
    widths = beat_widths(x, peaks, fs)
    parts = []
    for scale in SCALES_S:
        length = min(int(round(scale * fs)), x.size)
        starts = window_starts(x.size, length, fs)[:n_seconds]
        starts = np.pad(starts, (0, n_seconds - starts.size), mode="edge")
        cols = {k: np.empty(starts.size) for k in BASE_FEATURES}
        for c0 in range(0, starts.size, chunk):  # bounded memory on 24-hour recordings
            s = starts[c0: c0 + chunk]
            meas = _measures(x[s[:, None] + np.arange(length)[None, :]], fs)
            meas.update(_peak_measures(peaks, s, length, fs, shapes, widths))
            for k in BASE_FEATURES:
                cols[k][c0: c0 + chunk] = meas[k]
        parts.append(np.stack([cols[k] for k in BASE_FEATURES], axis=1))
    out = np.concatenate(parts, axis=1)
    keep_nan = np.isnan(out) & np.isin(np.array(FEATURES), MISSING_FEATURES)[None, :]
    return np.where(keep_nan, np.nan, np.nan_to_num(out)).astype(np.float32)


FEATURES = tuple(f"{k}_{s:g}s" for s in SCALES_S for k in BASE_FEATURES)
MISSING_FEATURES = tuple(f for f in FEATURES if f.rsplit("_", 1)[0] in MISSING_OK)


# ---------------------------------------------------------------- baselines (one score per second)

def baseline_scores(feats: np.ndarray) -> dict[str, np.ndarray]:
    """The classic detectors' VF scores on the 8 s windows (Amann et al. 2005 used 8 s): higher = more VF-like.

    TCSC and 1 - leakage are thresholded (threshold from training records); SPEC is Barro's fixed rule.
    """
    i = {k: FEATURES.index(f"{k}_8s") for k in ("tcsc", "leakage", "fsmn", "a1", "a2", "a3")}
    spec_vf = ((feats[:, i["fsmn"]] <= 1.55) & (feats[:, i["a1"]] < 0.38) & (feats[:, i["a2"]] >= 0.252)
               & (feats[:, i["a3"]] < 0.23))
    return {"TCSC": feats[:, i["tcsc"]].astype(np.float64), "VF filter leakage": 1.0 - feats[:, i["leakage"]],
            "SPEC (Barro)": spec_vf.astype(np.float64)}


# ---------------------------------------------------------------- the model

Network = tuple[list[np.ndarray], list[np.ndarray]]  # (weights, biases) per layer


def _forward(h: np.ndarray, net: Network) -> np.ndarray:
    weights, biases = net
    for k, (w, b) in enumerate(zip(weights, biases)):
        h = h @ w + b
        if k < len(weights) - 1:
            h = np.maximum(h, 0.0)
    h = h - h.max(axis=1, keepdims=True)
    e = np.exp(h)
    return e / e.sum(axis=1, keepdims=True)


@dataclass
class Bag:
    """Some of the FEATURES, standardised (an unknown one at its training mean) -> a bag of small networks
    (ReLU hidden layers, softmax over CLASSES) whose probabilities are averaged."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    members: list[Network]

    def __post_init__(self) -> None:
        self.columns = np.array([FEATURES.index(f) for f in self.features], dtype=np.int64)

    def predict_proba(self, feats: np.ndarray) -> np.ndarray:
        h = (np.asarray(feats, np.float64)[:, self.columns] - self.mean) / self.scale
        h = np.nan_to_num(h, nan=0.0)
        return sum(_forward(h, net) for net in self.members) / len(self.members)

    def to_json(self) -> dict:
        return {"features": list(self.features), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "members": [{"weights": [w.tolist() for w in ws], "biases": [b.tolist() for b in bs]}
                            for ws, bs in self.members]}

    @classmethod
    def from_json(cls, d: dict) -> Bag:
        if not set(d["features"]) <= set(FEATURES):
            raise ValueError("the rhythm model was trained on other features or classes; train it again "
                             "(python -m ecg_core train-rhythm)")
        members = [([np.array(w) for w in m["weights"]], [np.array(b) for b in m["biases"]]) for m in d["members"]]
        return cls(tuple(d["features"]), np.array(d["mean"]), np.array(d["scale"]), members)


@dataclass
class RhythmModel:
    """The network bag on every feature, with the thresholds, the smoothing width and the episode padding."""

    bag: Bag
    vf_threshold: float
    noise_threshold: float = 0.5
    card: dict = field(default_factory=dict)
    smooth_s: int = 1  # centred moving average of the probabilities over this many seconds (odd)
    pad_s: float = 0.0  # each VF episode widened by this much on both sides (centred windows cut its edges)
    merge_gap_s: float = MERGE_GAP_S  # VF runs this close are one episode

    _SETTINGS = ("vf_threshold", "noise_threshold", "smooth_s", "pad_s", "merge_gap_s")

    def predict_proba(self, feats: np.ndarray) -> np.ndarray:
        """The main bag's class probabilities of each second (unsmoothed)."""
        return self.bag.predict_proba(feats)

    def second_probs(self, feats: np.ndarray) -> np.ndarray:
        """The probabilities the decisions read: `predict_proba` smoothed over smooth_s seconds."""
        return smooth(self.predict_proba(feats), self.smooth_s)

    def to_json(self) -> dict:
        return {**self.card, "classes": list(CLASSES), "features": list(FEATURES),
                **{k: getattr(self, k) for k in self._SETTINGS}, "bag": self.bag.to_json()}

    @classmethod
    def from_json(cls, d: dict) -> RhythmModel:
        if tuple(d.get("features", ())) != FEATURES or tuple(d.get("classes", ())) != CLASSES or "bag" not in d:
            raise ValueError("the rhythm model was trained on other features or classes; train it again "
                             "(python -m ecg_core train-rhythm)")
        card = {k: v for k, v in d.items() if k not in ("bag", *cls._SETTINGS)}
        return cls(Bag.from_json(d["bag"]), float(d["vf_threshold"]), float(d.get("noise_threshold", 0.5)), card,
                   int(d.get("smooth_s", 1)), float(d.get("pad_s", 0.0)), float(d.get("merge_gap_s", MERGE_GAP_S)))

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_json(), indent=1))
        return p


_CACHE: dict[str, RhythmModel] = {}


def load_model(path: str | Path = DEFAULT_MODEL) -> RhythmModel:
    """The stored rhythm model (read once per process)."""
    key = str(Path(path).resolve())
    if key not in _CACHE:
        _CACHE[key] = RhythmModel.from_json(json.loads(Path(path).read_text()))
    return _CACHE[key]


# ---------------------------------------------------------------- seconds -> episodes

def smooth(probs: np.ndarray, width_s: int) -> np.ndarray:
    """Centred moving average over width_s seconds (edges repeated): a second is judged with its neighbours'
    windows too, at most (width_s - 1) / 2 s of look-ahead, so the onset is not delayed beyond that."""
    if width_s <= 1 or probs.shape[0] < 2:
        return probs
    return uniform_filter1d(np.asarray(probs, dtype=np.float64), int(width_s), axis=0, mode="nearest")


def shockable(probs: np.ndarray) -> np.ndarray:
    """P(VF) + P(VT): the ventricular tachyarrhythmia score of each second.

    vfdb's annotators call much fast polymorphic VT what others call flutter (out of fold, the network gives
    two thirds of the VF seconds the VT class and the reverse), so VF is found on the pair, and an episode
    says which of the two dominates it (`episode_kind`).
    """
    return probs[:, CLASSES.index("VF")] + probs[:, CLASSES.index("VT")]


def repeating_complexes(feats: np.ndarray) -> np.ndarray:
    """Per second: both windows hold alike successive complexes (mean correlation >= REPEAT_CORR) at under
    REPEAT_RATE_MIN per minute. Such a second is never VF: the definition of VF (no repeating complex) and of
    flutter (250-300 /min) rule it out, whatever the wave-shape measures of a wide complex say."""
    f = np.asarray(feats, dtype=np.float64)
    out = np.ones(f.shape[0], dtype=bool)
    for s in SCALES_S:
        corr = f[:, FEATURES.index(f"beat_corr_{s:g}s")]
        rate = np.expm1(f[:, FEATURES.index(f"beat_rate_{s:g}s")])  # NaN (too few peaks) fails both tests
        out &= (corr >= REPEAT_CORR) & (rate < REPEAT_RATE_MIN)
    return out


def vf_score(probs: np.ndarray, feats: np.ndarray) -> np.ndarray:
    """`shockable`, zero on the seconds of `repeating_complexes`: what the VF threshold reads."""
    return np.where(repeating_complexes(feats), 0.0, shockable(probs))


def decide(probs: np.ndarray, vf_threshold: float, noise_threshold: float = 0.5,
           feats: np.ndarray | None = None) -> np.ndarray:
    """Per-second class index: VF when P(VF) + P(VT) >= vf_threshold (never on a second of
    `repeating_complexes` when the features are given); else noise when P(noise) >= noise_threshold; else
    organised."""
    out = np.full(probs.shape[0], CLASSES.index("organised"))
    out[probs[:, CLASSES.index("noise")] >= noise_threshold] = CLASSES.index("noise")
    score = shockable(probs) if feats is None else vf_score(probs, feats)
    out[score >= vf_threshold] = CLASSES.index("VF")
    return out


def episode_kind(probs: np.ndarray, start_s: float, end_s: float) -> str:
    """'VF/flutter' or 'VT': the class with the larger summed probability over the episode's seconds."""
    seg = probs[int(start_s): max(int(np.ceil(end_s)), int(start_s) + 1)]
    return "VT" if seg[:, CLASSES.index("VT")].sum() > seg[:, CLASSES.index("VF")].sum() else "VF/flutter"


def runs(flags: np.ndarray, merge_gap_s: float = MERGE_GAP_S, min_s: float = MIN_VF_S,
         step_s: float = STEP_S) -> list[tuple[float, float]]:
    """(start_s, end_s) of runs of True seconds: runs at most merge_gap_s apart joined, shorter than min_s dropped."""
    f = np.asarray(flags, dtype=bool)
    if not f.any():
        return []
    edges = np.diff(np.concatenate([[0], f.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    joined = [[starts[0], ends[0]]]
    for a, b in zip(starts[1:], ends[1:]):
        if (a - joined[-1][1]) * step_s <= merge_gap_s:
            joined[-1][1] = b
        else:
            joined.append([a, b])
    return [(a * step_s, b * step_s) for a, b in joined if (b - a) * step_s >= min_s]


@dataclass
class Rhythm:
    """The detector's verdict on one recording (seconds from its start)."""

    probs: np.ndarray  # (seconds, CLASSES), smoothed as the model says (what the thresholds read)
    labels: np.ndarray  # per-second class index after the threshold (before the episode rules)
    episodes: list[tuple[float, float]]  # VF / flutter (or VT that dominates it)
    noise: pd.DataFrame  # NOISE_COLUMNS
    kinds: list[str] = field(default_factory=list)  # per episode: 'VF/flutter' or 'VT'


def segments_frame(rows: list[tuple[float, float, str]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["start_s", "end_s", "reason"])
    df.insert(2, "duration_s", (df["end_s"] - df["start_s"]).round(2))
    return df[NOISE_COLUMNS].astype({"start_s": float, "end_s": float, "duration_s": float})


def resolve(vf: np.ndarray, noisy: np.ndarray, quality_segments: list | None, duration_s: float,
            pad_s: float = 0.0, merge_gap_s: float = MERGE_GAP_S) -> tuple[list[tuple[float, float]], pd.DataFrame]:
    """Per-second VF / noise flags -> (VF episodes, noise segments as NOISE_COLUMNS); see `resolve_rows`."""
    episodes, rows = resolve_rows(vf, noisy, quality_segments, duration_s, pad_s, merge_gap_s)
    return episodes, segments_frame(rows).round(2)


def resolve_rows(vf: np.ndarray, noisy: np.ndarray, quality_segments: list | None, duration_s: float,
                 pad_s: float = 0.0, merge_gap_s: float = MERGE_GAP_S
                 ) -> tuple[list[tuple[float, float]], list[tuple[float, float, str]]]:
    """Per-second VF / noise flags -> (VF episodes, noise segments) under the episode rules.

    quality_segments: objects with start_s, end_s, reason (ecg_core.signal.quality.Segment); the flat and
    clipped ones are noise whatever the flags say, their reason kept. Other noise has DETECTOR_REASON.
    VF runs at most merge_gap_s apart are one episode; pad_s widens each kept episode on both sides. Neither
    the joining nor the padding reaches into a flat or clipped stretch.
    """
    vf, noisy = np.asarray(vf, bool).copy(), np.asarray(noisy, bool).copy()
    forced_rows = []
    forced = np.zeros(vf.size, bool)
    for s in quality_segments or []:
        if s.reason in FORCED_NOISE:
            a, b = int(np.floor(s.start_s)), int(np.ceil(s.end_s))
            vf[a:b] = noisy[a:b] = False
            forced[a:b] = True
            forced_rows.append((float(s.start_s), float(min(s.end_s, duration_s)), s.reason))
    # runs are joined within each stretch between flat or clipped ones, never across them
    edges = np.flatnonzero(np.diff(np.concatenate([[1], forced.astype(np.int8), [1]])))
    kept = [(a + s0 * STEP_S, b + s0 * STEP_S) for s0, s1 in zip(edges[::2], edges[1::2])
            for a, b in runs(vf[s0:s1], merge_gap_s=merge_gap_s)]
    if kept and pad_s > 0:
        k = int(round(pad_s / STEP_S))
        wide = np.zeros(vf.size, bool)
        for a, b in kept:
            wide[max(int(a) - k, 0): int(b) + k] = True
        for a, b, _ in forced_rows:
            wide[int(np.floor(a)): int(np.ceil(b))] = False
        kept = runs(wide, merge_gap_s=0.0, min_s=MIN_VF_S)
    episodes = [(round(a, 2), round(min(b, duration_s), 2)) for a, b in kept]
    for a, b in episodes:  # a second inside a VF episode is VF, not noise
        noisy[int(a): int(np.ceil(b))] = False
    rows = [(a, min(b, duration_s), DETECTOR_REASON) for a, b in runs(noisy, min_s=MIN_NOISE_S)] + forced_rows
    return episodes, sorted(rows)  # plain rows: scoring calls this thousands of times, a DataFrame each is slow


def detect_features(feats: np.ndarray, model: RhythmModel, quality_segments: list | None,
                    duration_s: float) -> Rhythm:
    """The detector on per-second features (see `features`)."""
    probs = model.second_probs(feats)
    labels = decide(probs, model.vf_threshold, model.noise_threshold, feats)
    episodes, noise = resolve(labels == CLASSES.index("VF"), labels == CLASSES.index("noise"), quality_segments,
                              duration_s, model.pad_s, model.merge_gap_s)
    return Rhythm(probs, labels, episodes, noise, [episode_kind(probs, a, b) for a, b in episodes])


def detect(x: np.ndarray, peaks: np.ndarray, model: RhythmModel | None = None,
           quality_segments: list | None = None, fs: int = WORKING_FS) -> Rhythm:
    """VF episodes and noise segments of a prepared signal (R `peaks` at the same rate); see `resolve`."""
    return detect_features(features(x, peaks, fs), model or load_model(), quality_segments, x.size / fs)


# ---------------------------------------------------------------- reference labels

def second_labels(samples: np.ndarray, aux_notes: np.ndarray, n_samples: int,
                  fs: float) -> tuple[np.ndarray, np.ndarray]:
    """(class index, rhythm note) per second from rhythm annotations: the note in force at mid-second.

    Seconds before the first rhythm annotation are organised with note ''.
    """
    k = max(1, int(np.ceil(n_samples / fs)))
    mid = (np.arange(k) + 0.5) * fs
    marks = [(int(s), str(a).replace("\x00", "").strip()) for s, a in zip(samples, aux_notes)
             if str(a).startswith("(")]
    notes = np.array([""] * k, dtype=object)
    if marks:
        pos = np.array([m[0] for m in marks])
        j = np.searchsorted(pos, mid, side="right") - 1
        names = np.array([m[1] for m in marks], dtype=object)
        notes = np.where(j >= 0, names[np.clip(j, 0, None)], "")
    cls = np.array([CLASSES.index(LABEL_OF.get(n, "organised")) for n in notes], dtype=np.int8)
    return cls, notes
