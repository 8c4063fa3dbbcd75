"""The time span of a lone-beat picture without grid, estimated from the beat's shape.

A single beat drawn without grid or axis values has no time scale; taking every such picture for a 1.6 s
beat picture reads a 0.8 s crop at twice its span, and the QRS then looks twice as wide (a normal beat read as
a bundle-branch block). The shape tells the span: the QRS, P and T waves have typical durations, a
neighbouring beat shows the RR. Gradient-boosted trees map scale-free measures of the trace (band energies in
cycles per picture width, the main spike's width, autocorrelation lags, the spikes' spacing) to log(span);
trained on DS1 records only (`python -m ecg_core train-span`), so the picture benchmark's DS2 stays unseen.
An estimate near one of the beat-picture presets is read at the preset: the estimate leans with the class (a
bundle-branch block's wide QRS pulls it long), the presets do not.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import signal as sps

from ecg_core.model import trees as treelib
from ecg_core.settings import MODELS_DIR

MODEL_PATH = MODELS_DIR / "lone_beat_span.npz"
POINTS = 256  # the trace resampled to this many points across the picture
SPAN_RANGE_S = (0.5, 2.4)  # what the estimator answers within (a lone beat: under the pipeline's 2.5 s)
# the beat pictures people have: a single beat of about 0.8 s, this project's 1.6 s picture; an estimate within
# SNAP_WITHIN of one is read at it (the estimate's own error is about 12 %)
BEAT_PRESETS_S = (0.8, 1.6)
SNAP_WITHIN = 1.25
_BANDS = tuple(2.0 ** (k / 2) for k in range(14))  # half-octave bands from 1 to ~128 cycles per width
_AUTOCORR_LEVELS = (0.8, 0.5, 0.2, 0.0, -0.2)
FEATURE_NAMES = (*(f"band_{b:.2f}" for b in _BANDS), "centroid", "spike_width_50", "spike_width_25", "spikes",
                 "spike_spacing", "flat_share", *(f"autocorr_{a:g}" for a in _AUTOCORR_LEVELS))


def shape_features(y: np.ndarray) -> np.ndarray:
    """Scale-free measures of a trace (one value per column, any amplitude unit or sign) in FEATURE_NAMES
    order: every time measure is a share of the trace's width, every amplitude one a share of its range."""
    y = np.asarray(y, dtype=np.float64)
    y = y[np.isfinite(y)]
    if y.size < 8:
        raise ValueError("a trace of fewer than 8 points has no shape to measure")
    v = np.interp(np.linspace(0, y.size - 1, POINTS), np.arange(y.size), y)
    lo, hi = np.percentile(v, [1, 99])
    v = (v - np.median(v)) / max(hi - lo, 1e-9)
    d = np.diff(v)
    power = np.abs(np.fft.rfft(d * np.hanning(d.size))) ** 2
    f = np.arange(power.size)
    bands = np.array([power[(f >= b) & (f < b * np.sqrt(2.0))].sum() for b in _BANDS])
    out = list(np.log(bands / (bands.sum() + 1e-12) + 1e-6))
    out.append(np.log((power * f).sum() / (power.sum() + 1e-12) + 1e-6))
    a = np.abs(v)
    k = int(np.argmax(a))
    for level in (0.5, 0.25):  # the tallest spike's width at half and a quarter of its height
        above = a >= level * a[k]
        left = k - int(np.argmin(above[k::-1])) if not above[: k + 1].all() else 0
        right = k + int(np.argmin(above[k:])) if not above[k:].all() else POINTS
        out.append(np.log(max(right - left, 1) / POINTS))
    peaks, _ = sps.find_peaks(a, prominence=0.4 * a[k], distance=4)
    out.append(float(peaks.size))
    out.append(np.log(np.diff(peaks).min() / POINTS) if peaks.size > 1 else np.log(1.5))
    out.append(float(np.mean(a < 0.05)))
    ac = np.correlate(d, d, "full")[d.size - 1:]
    ac = ac / (ac[0] + 1e-12)
    for level in _AUTOCORR_LEVELS:
        below = np.flatnonzero(ac < level)
        out.append(np.log(((below[0] if below.size else POINTS) + 1) / POINTS))
    return np.asarray(out, dtype=np.float32)


@lru_cache(maxsize=1)
def _model() -> treelib.Trees | None:
    try:
        return treelib.load(MODEL_PATH)
    except (OSError, ValueError):
        return None


def estimate_span(y: np.ndarray) -> float | None:
    """Seconds across a lone-beat trace (a followed path's rows or a signal), within SPAN_RANGE_S; None when
    the estimator is not installed or the trace is too short."""
    model = _model()
    if model is None:
        return None
    try:
        f = shape_features(y)
    except ValueError:
        return None
    log_span = float(model.raw_scores(f[None])[0, 0])
    return float(np.clip(np.exp(log_span), *SPAN_RANGE_S))


def lone_beat_span(y: np.ndarray) -> tuple[float, float] | None:
    """(the span to read a lone-beat trace at, the estimate it comes from): the nearest of BEAT_PRESETS_S where
    the estimate lies within SNAP_WITHIN of it, else the estimate; None without an estimate."""
    estimate = estimate_span(y)
    if estimate is None:
        return None
    preset = min(BEAT_PRESETS_S, key=lambda p: abs(np.log(estimate / p)))
    return (preset if abs(np.log(estimate / preset)) <= np.log(SNAP_WITHIN) else estimate), estimate
