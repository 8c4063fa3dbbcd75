"""Beat features measured from the signal: rhythm (RR intervals and their ratios) and QRS shape.

One implementation for training, the Signal page and digitized pictures. Inputs are prepared signals
(WORKING_FS, band-passed, millivolts), the centres of the windows to describe and the R peaks the app's
detector found (never the annotations), so training and the app measure the same thing.

QRS onset and offset come from an own slope method (`qrs_bounds`): the 20 ms mean of |dx/dt| around the
R peak, onset / offset where it stays below 10 % of its QRS maximum, and below 5 times its noise floor (the
20th percentile within +-0.5 s), for 16 ms. MIT-BIH has no onset/offset
annotations; docs/results.md states how the widths separate the annotated bundle-branch-block beats
(QRS >= 120 ms by definition) from normal ones, and how they compare with neurokit2's delineation.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter1d, uniform_filter1d

from ecg_core.settings import WORKING_FS

FEATURES_VERSION = "3"  # bump when a measure changes: models trained on other features refuse to load
FEATURE_NAMES: tuple[str, ...] = (
    "rr_pre_s",  # R peak of the previous beat to this one
    "rr_post_s",  # this beat to the next R peak
    "rr_pre_local",  # rr_pre / mean RR of the ~10 beats around
    "rr_post_local",
    "rr_pre_record",  # rr_pre / the recording's mean RR
    "rr_local_record",  # local mean RR / recording mean RR (a fast or slow stretch)
    "rr_known",  # 1 when the beat has a neighbour on both sides (0: a lone beat; RR features neutral)
    "qrs_ms",  # QRS duration, first lead
    "qrs_amp_mv",  # QRS peak-to-peak, first lead
    "qrs_polarity",  # (max + min) / (max - min) of the QRS about its onset level: +1 upright, -1 inverted
    "v1_qrs_ms",  # the same in V1 (bundle-branch blocks are read there); 0 without V1
    "v1_amp_mv",
    "v1_polarity",
    "v1_terminal",  # mean of the QRS's last 40 ms in V1 over its amplitude: RBBB's R' > 0, LBBB's S < 0
    "has_v1",  # 1 when a V1 lead was measured
    "qrs_template_ms",  # median QRS width of the ~10 beats around: a bundle-branch block widens them all
    "qrs_vs_template_ms",  # this QRS minus that: an ectopic beat is wider (or narrower) than its neighbours
    "template_corr",  # correlation of this QRS (+-100 ms) with the median of its neighbours': morphology kept?
    "qrs_late",  # mean of +40..+100 ms after the R peak over the QRS's height, about the PR level: RBBB's S < 0
    "v1_late",  # the same in V1: RBBB's late R' > 0
    "lead2_qrs_ms",  # QRS duration in the second lead, whichever it is (V1, V2, V4, V5): width is read in any lead
    "has_lead2",  # 1 when a second lead was measured
)
N_FEATURES = len(FEATURE_NAMES)
RR_FEATURES = slice(0, 7)
V1_FEATURES = np.array([10, 11, 12, 13, 14, 19])
LEAD2_FEATURES = np.array([20, 21])
ONE_LEAD_MISSING = np.concatenate([V1_FEATURES, LEAD2_FEATURES])  # what a one-lead reading lacks
TEMPLATE_FEATURES = slice(15, 18)
# What a reader calls one measurement: the groups the app's "what the measurements say" panel varies together.
FEATURE_GROUPS: dict[str, tuple[int, ...]] = {
    "prematurity (RR before over the local and recording mean)": (2, 4),
    "pause after (RR after over the local mean)": (3,),
    "rate of the stretch": (5,),
    "QRS width, first lead (and its neighbours')": (7, 15, 16),
    "QRS height and polarity, first lead": (8, 9),
    "late QRS, first lead": (18,),
    "shape match with the neighbours": (17,),
    "QRS in V1 (width, height, polarity, terminal and late part)": (10, 11, 12, 13, 19),
    "QRS width, second lead": (20,),
}
# Absolute RR intervals tell patients apart (each has their own heart rate) more than beat classes, which
# their ratios carry: models trained with `without_patient_rr` see them held constant.
PATIENT_FEATURES = ("rr_pre_s", "rr_post_s")
_QRS_HALF_S = 0.1  # the QRS window compared with the neighbours' median
NEUTRAL_RR_S = 0.8  # RR used where a beat has no neighbour (a single-beat picture)
LOCAL_BEATS = 5  # RR intervals on each side that make the local mean (about 10 beats)
MATCH_S = 0.05  # a detected peak this close to a centre is the beat itself

# QRS search and thresholds
_BEFORE_S, _AFTER_S = 0.16, 0.22  # where onset / offset are looked for around the R peak
_CORE_S = 0.06  # the QRS slope maximum is looked for within this of the R peak
_ENVELOPE_S = 0.02
_QUIET_S = 0.016
_LEVEL = 0.1
# A low-amplitude lead's noise can stay above 10 % of its QRS slope for the whole search (V1 widths of
# 170-220 ms in normal beats); the floor keeps onset / offset at the end of the QRS's own slope.
_FLOOR_S = 0.5
_FLOOR_QUANTILE = 0.2
_FLOOR_TIMES = 5.0
_TERMINAL_S = 0.04
# the late QRS: its level against the PR segment's, over the QRS height (-80..+80 ms)
_PR_S = (-0.13, -0.08)
_LATE_S = (0.04, 0.10)
_HEIGHT_S = 0.08


def mean_rr(peaks: np.ndarray, fs: int = WORKING_FS) -> float | None:
    """The recording's mean RR in seconds (plausible intervals 0.2-3 s), None with fewer than two peaks."""
    peaks = np.unique(np.asarray(peaks, dtype=np.int64))
    if peaks.size < 2:
        return None
    rr = np.diff(peaks) / fs
    plausible = (rr > 0.2) & (rr < 3.0)
    return float(rr[plausible].mean()) if plausible.any() else float(rr.mean())


def rr_features(centres: np.ndarray, peaks: np.ndarray, fs: int = WORKING_FS,
                record_mean_s: float | None = None) -> np.ndarray:
    """(n, 7): the RR part of FEATURE_NAMES for each centre, from the detected R `peaks` (working rate).

    A centre within MATCH_S of a peak is that beat; otherwise (a window inside fibrillation, a missed beat)
    its neighbours are the peaks just before and after it. Missing neighbours take the local mean RR,
    and without any RR the beat is a lone one (NEUTRAL_RR_S, ratios 1, rr_known 0). record_mean_s: the
    recording's mean RR when `peaks` are only part of it (a chunk of a long recording), else from `peaks`.
    """
    centres = np.asarray(centres, dtype=np.int64)
    peaks = np.unique(np.asarray(peaks, dtype=np.int64))
    n = centres.size
    out = np.zeros((n, 7), np.float32)
    if n == 0:
        return out
    if peaks.size < 2:
        out[:, 0:2] = NEUTRAL_RR_S
        out[:, 2:6] = 1.0
        return out
    rr = np.diff(peaks) / fs  # rr[i]: peaks[i] -> peaks[i + 1]
    record_mean = float(record_mean_s) if record_mean_s else mean_rr(peaks, fs)
    # local mean of RR intervals i - LOCAL_BEATS .. i + LOCAL_BEATS (cumulative sums, edges shortened)
    c = np.concatenate([[0.0], np.cumsum(rr)])
    k = np.arange(rr.size)
    lo, hi = np.maximum(k - LOCAL_BEATS, 0), np.minimum(k + LOCAL_BEATS + 1, rr.size)
    local = (c[hi] - c[lo]) / (hi - lo)

    j = np.searchsorted(peaks, centres)  # first peak >= centre
    left = np.clip(j - 1, 0, peaks.size - 1)
    right = np.clip(j, 0, peaks.size - 1)
    near_left = np.abs(centres - peaks[left]) <= MATCH_S * fs
    near_right = np.abs(peaks[right] - centres) <= MATCH_S * fs
    own = np.where(near_right & (~near_left | (peaks[right] - centres < centres - peaks[left])), right,
                   np.where(near_left, left, -1))
    is_beat = own >= 0
    # the previous / next peak: around the beat itself, or around the centre
    prev_i = np.where(is_beat, own - 1, j - 1)
    next_i = np.where(is_beat, own + 1, j)
    has_prev, has_next = prev_i >= 0, next_i < peaks.size
    prev_t = peaks[np.clip(prev_i, 0, peaks.size - 1)]
    next_t = peaks[np.clip(next_i, 0, peaks.size - 1)]
    anchor = np.where(is_beat, peaks[np.clip(own, 0, peaks.size - 1)], centres)
    rr_index = np.clip(np.where(has_prev, prev_i, next_i - 1), 0, rr.size - 1)
    local_rr = local[rr_index]
    pre = np.where(has_prev, (anchor - prev_t) / fs, local_rr)
    post = np.where(has_next, (next_t - anchor) / fs, local_rr)
    out[:, 0], out[:, 1] = pre, post
    out[:, 2], out[:, 3] = pre / local_rr, post / local_rr
    out[:, 4], out[:, 5] = pre / record_mean, local_rr / record_mean
    out[:, 6] = (has_prev & has_next).astype(np.float32)
    np.clip(out[:, :6], 0.0, 6.0, out=out[:, :6])
    return out


def _windows(x: np.ndarray, centres: np.ndarray, before: int, after: int) -> np.ndarray:
    """(n, before + after) of x around centres, edge samples repeated outside the signal."""
    idx = np.clip(centres[:, None] + np.arange(-before, after)[None, :], 0, x.size - 1)
    return x[idx]


def _noise_floor(env: np.ndarray, centres: np.ndarray, fs: int) -> np.ndarray:
    """(n, 1): the _FLOOR_QUANTILE of the slope envelope within +-_FLOOR_S of each centre."""
    half = int(round(_FLOOR_S * fs))
    w = _windows(env, centres, half, half + 1)
    k = int(_FLOOR_QUANTILE * (w.shape[1] - 1))
    return np.partition(w, k, axis=1)[:, k:k + 1]


def qrs_bounds(x: np.ndarray, centres: np.ndarray, fs: int = WORKING_FS) -> tuple[np.ndarray, np.ndarray]:
    """(onset, offset) sample indices of the QRS complex around each R-peak centre (the slope method above)."""
    x = np.asarray(x, dtype=np.float32)
    centres = np.asarray(centres, dtype=np.int64)
    before, after = int(round(_BEFORE_S * fs)), int(round(_AFTER_S * fs))
    size = max(1, int(round(_ENVELOPE_S * fs)))
    if centres.size:  # the envelope only where the windows read it (exact: a margin beyond the filter's reach)
        reach, margin = max(before, int(round(_FLOOR_S * fs)) + 1, after), size + 2
        a = max(int(centres.min()) - reach - margin, 0)
        b = min(int(centres.max()) + reach + margin, x.size)
        if a > 0 or b < x.size:
            on, off = qrs_bounds(x[a:b], centres - a, fs)
            return on + a, off + a
    env = uniform_filter1d(np.abs(np.gradient(x)) * fs, size)
    w = _windows(env, centres, before, after)  # R peak at column `before`
    core = int(round(_CORE_S * fs))
    top = w[:, before - core: before + core + 1].max(axis=1, keepdims=True)
    floor = _noise_floor(env, centres, fs)
    quiet = max(1, int(round(_QUIET_S * fs)))
    low = w < np.maximum(_LEVEL * np.maximum(top, 1e-6), _FLOOR_TIMES * floor)
    # a column is "quiet" when `quiet` consecutive columns from it (forward) / up to it (backward) are low
    run = maximum_filter1d((~low).astype(np.uint8), quiet, axis=1, origin=-(quiet // 2)) == 0
    run_back = maximum_filter1d((~low).astype(np.uint8), quiet, axis=1, origin=(quiet - 1) // 2) == 0
    cols = np.arange(w.shape[1])
    back = np.where(run_back & (cols[None, :] < before), cols[None, :], -1).max(axis=1)
    onset_col = np.where(back >= 0, back, 0)
    fwd = np.where(run & (cols[None, :] > before), cols[None, :], w.shape[1]).min(axis=1)
    offset_col = np.where(fwd < w.shape[1], fwd, w.shape[1] - 1)
    return centres - before + onset_col, centres - before + offset_col


def qrs_shape(x: np.ndarray, onset: np.ndarray, offset: np.ndarray,
              fs: int = WORKING_FS) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(duration_ms, peak-to-peak mV, polarity, terminal) of each QRS between onset and offset."""
    x = np.asarray(x, dtype=np.float32)
    span = int(round((_BEFORE_S + _AFTER_S) * fs))
    start = np.clip(onset, 0, x.size - 1)
    seg = _windows(x, start, 0, span)
    length = np.clip(offset - onset, 1, span)
    inside = np.arange(span)[None, :] < length[:, None]
    seg = seg - seg[:, :1]  # about the onset level
    hi = np.where(inside, seg, -np.inf).max(axis=1)
    lo = np.where(inside, seg, np.inf).min(axis=1)
    amp = np.maximum(hi - lo, 1e-6)
    polarity = (hi + lo) / amp
    term = int(round(_TERMINAL_S * fs))
    tail = inside & (np.arange(span)[None, :] >= (length - term)[:, None])
    terminal = np.where(tail, seg, 0.0).sum(axis=1) / np.maximum(tail.sum(axis=1), 1) / amp
    return length * 1000.0 / fs, amp, polarity, terminal


def late_qrs(x: np.ndarray, centres: np.ndarray, fs: int = WORKING_FS) -> np.ndarray:
    """Mean of x from +40 to +100 ms after each R peak, about the PR segment's median level, over the QRS's
    height: the terminal S (lead II) or R' (V1) that a right bundle-branch block draws out after the R peak."""
    x = np.asarray(x, dtype=np.float32)
    centres = np.asarray(centres, dtype=np.int64)

    def at(t: float) -> int:
        return int(round(t * fs))

    level = np.median(_windows(x, centres, -at(_PR_S[0]), at(_PR_S[1])), axis=1)
    qrs = _windows(x, centres, at(_HEIGHT_S), at(_HEIGHT_S))
    height = np.maximum(qrs.max(axis=1) - qrs.min(axis=1), 1e-3)
    late = _windows(x, centres, -at(_LATE_S[0]), at(_LATE_S[1])).mean(axis=1)
    return ((late - level) / height).astype(np.float32)


def _nanmedian(a: np.ndarray, axis: int) -> np.ndarray:
    """np.nanmedian along `axis` for small axes (at least one number in each slice), with its arithmetic:
    sort (NaN last), then the mean of the middle one or two numbers as (low + high) / 2, ~10x faster."""
    s = np.sort(a, axis=axis)
    count = np.count_nonzero(~np.isnan(a), axis=axis, keepdims=True)
    high = count // 2
    low = np.where(count % 2 == 1, high, high - 1)
    both = np.take_along_axis(s, low, axis) + np.take_along_axis(s, high, axis)
    return np.squeeze(np.true_divide(both, 2.0), axis=axis)


def template_features(x: np.ndarray, centres: np.ndarray, peaks: np.ndarray, widths: np.ndarray,
                      fs: int = WORKING_FS, peak_widths: np.ndarray | None = None) -> np.ndarray:
    """(n, 3): the neighbours' median QRS width, this width minus it, and the correlation of this QRS with the
    neighbours' median QRS (the LOCAL_BEATS peaks on either side of the nearest detected peak, itself included).
    Without peaks the beat is its own template (0 difference, correlation 1). peak_widths: the QRS widths
    (ms, float32) of the sorted unique `peaks` when the caller has measured them already."""
    x = np.asarray(x, dtype=np.float32)
    centres = np.asarray(centres, dtype=np.int64)
    peaks = np.unique(np.asarray(peaks, dtype=np.int64))
    half = int(round(_QRS_HALF_S * fs))
    own = _windows(x, centres, half, half + 1)
    out = np.zeros((centres.size, 3), np.float32)
    if peaks.size == 0:
        out[:, 0], out[:, 2] = widths, 1.0
        return out
    k = LOCAL_BEATS
    nearest = np.clip(np.searchsorted(peaks, centres), 0, peaks.size - 1)
    left = np.clip(nearest - 1, 0, peaks.size - 1)
    nearest = np.where(np.abs(peaks[left] - centres) < np.abs(peaks[nearest] - centres), left, nearest)
    # only the peaks whose widths and QRS the nearest peaks' neighbourhoods read (a few beats of a long recording)
    first, last = max(int(nearest.min()) - k, 0), min(int(nearest.max()) + k + 1, peaks.size)
    peaks, nearest = peaks[first:last], nearest - first
    if peak_widths is None:
        on, off = qrs_bounds(x, peaks, fs)
        pw = ((off - on) * 1000.0 / fs).astype(np.float32)
    else:
        pw = np.asarray(peak_widths, np.float32)[first:last]
    pwin = _windows(x, peaks, half, half + 1)
    idx = np.arange(peaks.size)[:, None] + np.arange(-k, k + 1)[None, :]
    valid = (idx >= 0) & (idx < peaks.size)
    idx = np.clip(idx, 0, peaks.size - 1)
    width_t = _nanmedian(np.where(valid, pw[idx], np.nan), axis=1)
    out[:, 0] = width_t[nearest]
    out[:, 1] = widths - out[:, 0]
    # the neighbours' median QRS, only for the peaks the centres need (bounded memory on long recordings)
    need, inverse = np.unique(nearest, return_inverse=True)
    templates = np.empty((need.size, pwin.shape[1]), np.float32)
    for start in range(0, need.size, 4096):
        sel = need[start:start + 4096]
        stack = np.where(valid[sel][:, :, None], pwin[idx[sel]], np.nan)
        templates[start:start + sel.size] = _nanmedian(stack, axis=1)
    t = templates[inverse.ravel()]
    a = own - own.mean(axis=1, keepdims=True)
    b = t - t.mean(axis=1, keepdims=True)
    denom = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    out[:, 2] = np.where(denom > 1e-9, (a * b).sum(axis=1) / np.maximum(denom, 1e-9), 1.0)
    return out


def beat_features(x: np.ndarray, centres: np.ndarray, peaks: np.ndarray, v1: np.ndarray | None = None,
                  fs: int = WORKING_FS, record_mean_s: float | None = None,
                  lead2: np.ndarray | None = None) -> np.ndarray:
    """(n, N_FEATURES) float32 in FEATURE_NAMES order for windows centred at `centres` of the prepared lead
    `x`, with the detected R `peaks`; `v1`, the prepared V1 lead of the same recording, when there is one;
    `lead2`, its second lead prepared the same way whatever its name (V1 itself when not given)."""
    centres = np.asarray(centres, dtype=np.int64)
    out = np.zeros((centres.size, N_FEATURES), np.float32)
    if centres.size == 0:
        return out
    out[:, RR_FEATURES] = rr_features(centres, peaks, fs, record_mean_s)
    onset, offset = qrs_bounds(x, centres, fs)
    dur, amp, pol, _ = qrs_shape(x, onset, offset, fs)
    out[:, 7], out[:, 8], out[:, 9] = dur, np.minimum(amp, 10.0), pol
    unique_peaks = np.unique(np.asarray(peaks, dtype=np.int64))
    same = unique_peaks.size == centres.size and np.array_equal(unique_peaks, centres)  # a recording's beats
    widths = ((offset - onset) * 1000.0 / fs).astype(np.float32) if same else None  # measured once
    out[:, TEMPLATE_FEATURES] = template_features(x, centres, peaks, dur, fs, peak_widths=widths)
    out[:, 18] = late_qrs(x, centres, fs)
    if v1 is not None:
        on2, off2 = qrs_bounds(v1, centres, fs)
        dur2, amp2, pol2, term2 = qrs_shape(v1, on2, off2, fs)
        out[:, 10], out[:, 11], out[:, 12], out[:, 13] = dur2, np.minimum(amp2, 10.0), pol2, term2
        out[:, 14] = 1.0
        out[:, 19] = late_qrs(v1, centres, fs)
    lead2 = v1 if lead2 is None else lead2
    if lead2 is not None:
        if lead2 is v1:
            out[:, 20] = out[:, 10]
        else:
            on3, off3 = qrs_bounds(lead2, centres, fs)
            out[:, 20] = (off3 - on3) * 1000.0 / fs
        out[:, 21] = 1.0
    return out


READING_KINDS = ("two_lead", "one_lead", "lone")  # a blend's network share is chosen for each


def reading_kind(features: np.ndarray) -> np.ndarray:
    """Per beat, the index in READING_KINDS of what it was measured from: a second lead present (two leads);
    one lead with neighbours; no neighbour on a side (a lone beat, or a strip's first or last beat)."""
    f = np.asarray(features)
    two_leads = (f[:, FEATURE_NAMES.index("has_v1")] > 0.5) | (f[:, FEATURE_NAMES.index("has_lead2")] > 0.5)
    known = f[:, FEATURE_NAMES.index("rr_known")] > 0.5
    return np.where(two_leads, 0, np.where(known, 1, 2))


def without_patient_rr(features: np.ndarray) -> np.ndarray:
    """The features a model reads: PATIENT_FEATURES held at NEUTRAL_RR_S, so they tell it nothing."""
    f = np.array(features, dtype=np.float32, copy=True)
    f[:, [FEATURE_NAMES.index(n) for n in PATIENT_FEATURES]] = NEUTRAL_RR_S
    return f


def without_v1(features: np.ndarray) -> np.ndarray:
    """The features as a one-lead recording gives them (V1 and second-lead parts zero, has_v1 and has_lead2 0)."""
    f = np.array(features, dtype=np.float32, copy=True)
    f[:, ONE_LEAD_MISSING] = 0.0
    return f


def as_other_second_lead(features: np.ndarray) -> np.ndarray:
    """The features as a recording whose second lead is not V1 gives them (V2, V4 or V5: V1 part zero, the second
    lead's QRS width kept): training shows them so that a width read outside V1 is not taken for a normal beat's."""
    f = np.array(features, dtype=np.float32, copy=True)
    f[:, V1_FEATURES] = 0.0
    return f


def without_rr(features: np.ndarray) -> np.ndarray:
    """The features as a lone beat gives them: no neighbours (NEUTRAL_RR_S, ratios 1, rr_known 0)."""
    f = np.array(features, dtype=np.float32, copy=True)
    f[:, 0:2] = NEUTRAL_RR_S
    f[:, 2:6] = 1.0
    f[:, 6] = 0.0
    return f
