"""Beat windows around R peaks, their labels, and windows cut from VF/VFL episodes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecg_core.classes import CLASS_INDEX, SYMBOL_TO_KEY, VF_RHYTHMS
from ecg_core.settings import (
    TEMPLATE_SPAN_S,
    VF_WINDOW_STEP_S,
    WINDOW_AFTER,
    WINDOW_BEFORE,
    WINDOW_LEN,
    WORKING_FS,
)


@dataclass
class Beats:
    """Windows (n, WINDOW_LEN), or (n, leads, WINDOW_LEN) when cut from several leads, with the sample
    index (working rate) of each centre and its label."""

    windows: np.ndarray
    centres: np.ndarray
    labels: np.ndarray  # class index, int8

    def __len__(self) -> int:
        return int(self.centres.size)


def inside_bounds(centres: np.ndarray, n_samples: int,
                  before: int = WINDOW_BEFORE, after: int = WINDOW_AFTER) -> np.ndarray:
    """Mask of centres whose whole window [c - before, c + after) lies inside the signal."""
    centres = np.asarray(centres, dtype=np.int64)
    return (centres - before >= 0) & (centres + after <= n_samples)


def cut_windows(x: np.ndarray, centres: np.ndarray,
                before: int = WINDOW_BEFORE, after: int = WINDOW_AFTER) -> np.ndarray:
    """Windows around centres (all must be inside bounds): (n, before + after) from a signal (samples,),
    (n, leads, before + after) from several leads (leads, samples)."""
    centres = np.asarray(centres, dtype=np.int64)
    idx = centres[:, None] + np.arange(-before, after)[None, :]
    x = np.asarray(x, dtype=np.float32)
    return x[idx] if x.ndim == 1 else np.moveaxis(x[:, idx], 0, 1)


def labelled_beats(x: np.ndarray, samples: np.ndarray, symbols: np.ndarray) -> Beats:
    """Beats of the six classes from beat annotations; other symbols and edge beats are dropped."""
    keys = [SYMBOL_TO_KEY.get(str(s)) for s in symbols]
    keep = np.array([k is not None for k in keys], dtype=bool)
    keep &= inside_bounds(samples, np.shape(x)[-1])
    centres = np.asarray(samples, dtype=np.int64)[keep]
    labels = np.array([CLASS_INDEX[k] for k, m in zip(keys, keep) if m], dtype=np.int8)
    return Beats(cut_windows(x, centres), centres, labels)


def rhythm_episodes(samples: np.ndarray, aux_notes: np.ndarray, n_samples: int,
                    rhythms: frozenset[str] = VF_RHYTHMS) -> list[tuple[int, int]]:
    """(start, end) sample ranges of episodes whose rhythm note is in `rhythms`.

    A rhythm annotation starts an episode that lasts until the next rhythm annotation.
    """
    marks = [(int(s), str(a)) for s, a in zip(samples, aux_notes) if str(a).startswith("(")]
    episodes = []
    for i, (start, note) in enumerate(marks):
        if note in rhythms:
            end = marks[i + 1][0] if i + 1 < len(marks) else n_samples
            episodes.append((start, min(end, n_samples)))
    return episodes


def episode_windows(x: np.ndarray, episodes: list[tuple[int, int]],
                    step_s: float = VF_WINDOW_STEP_S, label: str = "VF") -> Beats:
    """Windows every step_s whose whole span lies inside one episode (and inside the signal)."""
    step = int(round(step_s * WORKING_FS))
    centres = []
    for start, end in episodes:
        first, last = start + WINDOW_BEFORE, end - WINDOW_AFTER
        if last >= first:
            centres.append(np.arange(first, last + 1, step))
    c = np.concatenate(centres).astype(np.int64) if centres else np.zeros(0, dtype=np.int64)
    c = c[inside_bounds(c, np.shape(x)[-1])]
    labels = np.full(c.size, CLASS_INDEX[label], dtype=np.int8)
    return Beats(cut_windows(x, c), c, labels)


def local_templates(x: np.ndarray, centres: np.ndarray, peaks: np.ndarray,
                    span_s: float = TEMPLATE_SPAN_S, fs: int = WORKING_FS) -> np.ndarray:
    """The patient's typical beat around each centre: (n, WINDOW_LEN), the sample-wise median of the
    windows at the R `peaks` within span_s on either side of the centre (the beat itself included).

    The median follows the dominant morphology and rhythm, so ectopic beats barely move it. With no
    peak in reach (e.g. inside ventricular fibrillation, where a detector finds few), the template is
    the window itself, so the picture reads "no usual beat to compare with".
    """
    x = np.asarray(x, dtype=np.float32)
    centres = np.asarray(centres, dtype=np.int64)
    peaks = np.sort(np.asarray(peaks, dtype=np.int64))
    peaks = peaks[inside_bounds(peaks, x.size)]
    out = cut_windows(x, centres)
    if peaks.size == 0 or centres.size == 0:
        return out
    span = int(round(span_s * fs))
    lo = np.searchsorted(peaks, centres - span, side="left")
    hi = np.searchsorted(peaks, centres + span, side="right")
    has = hi > lo
    if not has.any():
        return out
    first = int(lo[has].min())
    windows = cut_windows(x, peaks[first: int(hi[has].max())])  # only the peaks these centres reach
    # one median per distinct run of peaks, computed for all runs of a length at once: sorting along the
    # runs and averaging the middle one or two is np.median's own arithmetic (same values), and faster
    runs, which = np.unique(np.stack([lo[has] - first, hi[has] - first], axis=1), axis=0, return_inverse=True)
    length = runs[:, 1] - runs[:, 0]
    medians = np.empty((len(runs), windows.shape[1]), np.float32)
    for k in np.unique(length).tolist():
        sel = np.flatnonzero(length == k)
        mid = slice((k - 1) // 2, k // 2 + 1)
        for s in range(0, sel.size, 256):  # bounds the stacked windows' memory
            part = sel[s: s + 256]
            stack = np.sort(windows[runs[part, 0][:, None] + np.arange(k)[None, :]], axis=1)
            medians[part] = np.mean(stack[:, mid], axis=1)
    out[has] = medians[which.ravel()]
    return out


def with_templates(x: np.ndarray, centres: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """Each window stacked with its local template (`local_templates`): (n, 2, WINDOW_LEN) for one lead;
    for leads x (k, samples), (n, 2k, WINDOW_LEN) as window, template of lead 0, then of lead 1, ...
    (the templates of every lead use the same `peaks`)."""
    x = np.asarray(x)
    if x.ndim == 2:
        return np.concatenate([with_templates(lead, centres, peaks) for lead in x], axis=1)
    return np.stack([cut_windows(x, centres), local_templates(x, centres, peaks)], axis=1)


# ---------------------------------------------------------------- lone beats (a picture of one beat)

# The baseline padding around a picture's trace (pipeline/picture.py PAD_S): longer than WINDOW_BEFORE so a
# beat at the trace's very start still gets a whole window.
BASELINE_PAD_S = 1.2
LONE_CROP_S = (0.6, 1.6)  # the width of a single-beat picture, seconds
LONE_BEFORE_FRACTION = (0.3, 0.6)  # where the R peak sits across it
LONE_STRETCH = (0.75, 1.25)  # the span augmentation: a picture's time scale is often only assumed


def pad_with_baseline(signal_mv: np.ndarray, pad: int) -> np.ndarray:
    """The trace with `pad` samples on each side at its edge baseline (the median of its first / last 0.2 s),
    as a picture's trace is padded before its beats are cut."""
    edge = max(1, int(0.2 * WORKING_FS))
    left = np.full(pad, np.median(signal_mv[:edge]))
    right = np.full(pad, np.median(signal_mv[-edge:]))
    return np.concatenate([left, signal_mv, right])


def stretch_trace(signal_mv: np.ndarray, factor: float) -> np.ndarray:
    """The trace read with a span `factor` times the calibrated one (longer: more samples)."""
    n = max(2, int(round(signal_mv.size * factor)))
    return np.interp(np.linspace(0, signal_mv.size - 1, n), np.arange(signal_mv.size), signal_mv)


def stretched_index(index: float, n_in: int, factor: float) -> int:
    """Where sample `index` of a trace of n_in samples lies after stretch_trace(trace, factor)."""
    n_out = max(2, int(round(n_in * factor)))
    return int(round(index * (n_out - 1) / max(1, n_in - 1)))


def lone_beat_signal(segment_mv: np.ndarray, pad_s: float = BASELINE_PAD_S) -> tuple[np.ndarray, int]:
    """(x, pad): a single-beat trace padded with its baseline and prepared (filtered) as the picture
    pipeline prepares it; the trace starts at x[pad]."""
    from ecg_core.signal.signals import prepare_signal

    pad = int(round(pad_s * WORKING_FS))
    return prepare_signal(pad_with_baseline(np.asarray(segment_mv, dtype=np.float64), pad), WORKING_FS), pad


def lone_window(segment_mv: np.ndarray, r_index: int, pad_s: float = BASELINE_PAD_S) -> np.ndarray:
    """(2, WINDOW_LEN): the window and template the model reads for a picture holding only `segment_mv`
    (working rate) with its R peak at r_index: flat baseline outside the trace, the beat its own template."""
    x, pad = lone_beat_signal(segment_mv, pad_s)
    c = np.array([pad + int(r_index)], dtype=np.int64)
    return with_templates(x, c, c)[0]


@dataclass
class LoneCrop:
    """How one beat is cut out as a single-beat picture: samples before / after its R peak, and the stretch."""

    before: int
    after: int
    factor: float


def lone_crops(centres: np.ndarray, n_samples: int, rng: np.random.Generator,
               stretch: tuple[float, float] = LONE_STRETCH, crop_s: tuple[float, float] = LONE_CROP_S,
               fs: int = WORKING_FS) -> list[LoneCrop]:
    """A seeded random crop (width in crop_s, R at LONE_BEFORE_FRACTION of it, inside the signal) and stretch
    factor (uniform in `stretch`; a fixed factor when both ends are equal) for each centre.

    Crops and factors are drawn from independent streams of `rng`, so the same seed gives the same crops
    whatever the stretch range (a span check compares one crop read at several factors).
    """
    crop_rng, stretch_rng = rng.spawn(2)
    out = []
    for c in np.asarray(centres, dtype=np.int64).tolist():
        width = crop_rng.uniform(*crop_s) * fs
        before = int(round(width * crop_rng.uniform(*LONE_BEFORE_FRACTION)))
        after = int(round(width)) - before
        before = max(1, min(before, c))
        after = max(1, min(after, n_samples - c))
        factor = float(stretch[0]) if stretch[0] == stretch[1] else float(stretch_rng.uniform(*stretch))
        out.append(LoneCrop(before, after, factor))
    return out


def lone_windows(x: np.ndarray, centres: np.ndarray, crops: list[LoneCrop]) -> np.ndarray:
    """(n, 2, WINDOW_LEN): each centre's beat cut out by its crop, stretched, padded and prepared as a
    single-beat picture of it would be (lone_window)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros((len(crops), 2, WINDOW_LEN), dtype=np.float32)
    for i, (c, crop) in enumerate(zip(np.asarray(centres, dtype=np.int64).tolist(), crops)):
        seg = x[c - crop.before: c + crop.after]
        r = crop.before
        if crop.factor != 1.0:
            r = stretched_index(r, seg.size, crop.factor)
            seg = stretch_trace(seg, crop.factor)
        out[i] = lone_window(seg, r)
    return out
