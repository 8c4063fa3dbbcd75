"""Beat windows around R peaks, their labels, and windows cut from VF/VFL episodes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecg_core.classes import CLASS_INDEX, SYMBOL_TO_KEY, VF_RHYTHMS
from ecg_core.settings import TEMPLATE_SPAN_S, VF_WINDOW_STEP_S, WINDOW_AFTER, WINDOW_BEFORE, WORKING_FS


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
    windows = cut_windows(x, peaks)
    cache: dict[tuple[int, int], np.ndarray] = {}
    for i, (a, b) in enumerate(zip(lo.tolist(), hi.tolist())):
        if b - a < 1:
            continue
        if (a, b) not in cache:
            cache[(a, b)] = np.median(windows[a:b], axis=0)
        out[i] = cache[(a, b)]
    return out


def with_templates(x: np.ndarray, centres: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """Each window stacked with its local template (`local_templates`): (n, 2, WINDOW_LEN) for one lead;
    for leads x (k, samples), (n, 2k, WINDOW_LEN) as window, template of lead 0, then of lead 1, ...
    (the templates of every lead use the same `peaks`)."""
    x = np.asarray(x)
    if x.ndim == 2:
        return np.concatenate([with_templates(lead, centres, peaks) for lead in x], axis=1)
    return np.stack([cut_windows(x, centres), local_templates(x, centres, peaks)], axis=1)
