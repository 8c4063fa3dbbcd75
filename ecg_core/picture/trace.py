"""Follow an ECG trace through a cleaned ink map: the trace mask, its rows (strips), and one path per strip.

The path is chosen column by column among the runs of trace pixels in each column, by dynamic programming
(Viterbi): the cost of a step is the vertical gap between consecutive runs, so the path stays on the
connected trace through steep QRS strokes and small gaps, and text or specks beside it are left alone.
A run taller than the line shows a stroke: its far end is taken where the trace turns (a peak), its
middle where it passes through.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import signal as sps

STRONG, WEAK = 0.45, 0.18  # hysteresis thresholds on the cleaned ink (relative to its top)
ZERO = np.zeros(1, dtype=np.int64)
SKIP_COST = 2.0  # cost of a column without any trace pixel, in pixels of vertical gap
MAX_BANDS = 6


@dataclass(frozen=True)
class Path:
    """One followed trace: a row (sub-pixel) for each column from x_start, NaN where no trace was found,
    and the finer signal samples (two per column where the trace moves within a column)."""

    x_start: int
    y: np.ndarray  # float64 rows, one per column
    sample_x: np.ndarray  # float64 picture columns of the signal samples, increasing
    sample_y: np.ndarray  # float64 rows of the signal samples, NaN where no trace was found
    thickness: float
    coverage: float  # share of columns between the ends where trace pixels were found
    smoothness: float  # share of steps between found columns without a jump larger than a few line widths
    ink_width: float = 0.0  # the line's width measured as ink per column where it runs flat (anti-aliasing included)

    @property
    def columns(self) -> np.ndarray:
        return np.arange(self.x_start, self.x_start + self.y.size)


def trace_mask(ink: np.ndarray) -> np.ndarray:
    """Boolean mask of trace pixels: hysteresis threshold, then small blobs (text glyphs, specks) dropped."""
    top = float(np.percentile(ink, 99.9)) if ink.size > 2000 else float(ink.max())
    if top <= 0.05:
        return np.zeros(ink.shape, dtype=bool)
    strong = ink >= STRONG * top
    weak = (ink >= WEAK * top).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(weak, connectivity=8)
    keep = np.zeros(n, dtype=bool)
    keep[np.unique(labels[strong])] = True
    keep[0] = False
    h, w = ink.shape
    bw, bh = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    small = (bw < max(4, 0.025 * w)) & (bh < max(6, 0.08 * h))
    pieces = keep & small
    keep &= ~small
    # a thin anti-aliased line breaks into short pieces where it fades between pixels: pieces within two
    # pixels of the trace kept so far belong to it (chains of them too); glyphs further off stay out
    near = cv2.getStructuringElement(cv2.MORPH_RECT, (5, 5))
    for _ in range(6):
        if not pieces.any():
            break
        grown = cv2.dilate(keep[labels].astype(np.uint8), near).astype(bool)
        touching = np.unique(labels[grown & pieces[labels]])
        if touching.size == 0:
            break
        keep[touching] = True
        pieces[touching] = False
    return keep[labels]


def bands(mask: np.ndarray) -> list[tuple[int, int, int]]:
    """Horizontal strips of trace: (top row, baseline row, bottom row) each, from the top of the picture.

    Each strip's baseline is a peak of the row profile of trace pixels (a trace spends most of its time
    there); a strip reaches halfway to the next one.
    """
    h = mask.shape[0]
    prof = mask.sum(axis=1).astype(np.float64)
    if prof.max() <= 0:
        return []
    smooth = np.convolve(prof, np.ones(5) / 5, mode="same")
    peaks, _ = sps.find_peaks(smooth, height=0.2 * smooth.max(), prominence=0.15 * smooth.max(),
                              distance=max(8, h // 8))
    if peaks.size == 0:
        peaks = np.array([int(np.argmax(smooth))])
    # a strip is only a strip if its trace runs a good part of the picture's width
    widths = []
    reach = max(3, h // 40)  # rows either side: a wandering baseline stays within them
    for p in peaks:
        cols = mask[max(0, p - reach): p + reach + 1].any(axis=0)
        widths.append(cols.sum())
    widths = np.array(widths)
    peaks = peaks[widths >= 0.5 * widths.max()]  # text lines, a pulse's top or a flat ST are narrower
    return around(peaks, h)


def around(baselines, height: int) -> list[tuple[int, int, int]]:
    """(top, baseline, bottom) strips around baseline rows (top to bottom): each reaches halfway to the next."""
    out = []
    for i, p in enumerate(baselines):
        top = 0 if i == 0 else (baselines[i - 1] + p) // 2
        bottom = height if i == len(baselines) - 1 else (p + baselines[i + 1]) // 2
        out.append((int(top), int(p), int(bottom)))
    return out


def _runs(col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (inclusive) rows of the runs of True in a boolean column."""
    d = np.diff(np.concatenate([[0], col.view(np.int8), [0]]))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1


def _column_runs(mask: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Start and end rows (inclusive) of the runs of True in every column, all columns at once."""
    pad = np.zeros((1, mask.shape[1]), dtype=np.int8)
    d = np.diff(np.vstack([pad, mask.astype(np.int8), pad]), axis=0)
    start_col, start_row = np.nonzero(d.T == 1)  # transposed: sorted by column, then row
    end_col, end_row = np.nonzero(d.T == -1)
    cuts = np.searchsorted(start_col, np.arange(1, mask.shape[1]))
    return np.split(start_row, cuts), np.split(end_row - 1, cuts)


def _main_run(cols: np.ndarray, max_gap: int) -> tuple[int, int]:
    """[start, stop) of the longest stretch of columns holding trace pixels with no gap over max_gap: a label
    or a monitor's number panel beside the trace, across a wide gap, is not part of it."""
    breaks = np.flatnonzero(np.diff(cols) > max_gap)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [cols.size - 1]])
    k = int(np.argmax(cols[ends] - cols[starts]))
    return int(cols[starts[k]]), int(cols[ends[k]]) + 1


def line_thickness(mask: np.ndarray) -> float:
    """The drawn line's width in pixels: the median length of single short runs (flat stretches)."""
    cols = mask[:, :: max(1, mask.shape[1] // 200)].astype(np.int8)
    starts = (np.diff(cols, axis=0, prepend=0) == 1).sum(axis=0)
    lengths = cols.sum(axis=0, dtype=np.int64)[starts == 1]  # a column with a single run: its length
    return float(np.median(lengths)) if lengths.size else 1.0


def follow(mask: np.ndarray, ink: np.ndarray, rows: tuple[int, int], baseline: int) -> Path | None:
    """The trace of one strip (rows [top, bottom)) as a sub-pixel row per column, or None if there is none."""
    top, bottom = rows
    sub = mask[top:bottom]
    cols = np.flatnonzero(sub.any(axis=0))
    if cols.size < 8:
        return None
    x0, x1 = _main_run(cols, max(12, int(0.012 * mask.shape[1])))
    thick = max(1.0, line_thickness(sub[:, x0:x1]))
    weights = ink[top:bottom]

    starts, ends = _column_runs(sub[:, x0:x1])
    back: list[np.ndarray | None] = []
    prev_s = prev_e = None
    prev_cost = None
    for i in range(x1 - x0):
        s, e = starts[i], ends[i]
        if s.size == 0:
            back.append(None)
            if prev_cost is not None:
                prev_cost = prev_cost + SKIP_COST
            continue
        if prev_s is None:
            cost = np.abs((s + e) / 2.0 - (baseline - top)) * 1e-3  # start near the baseline on ties
            bp = np.full(s.size, -1)
        elif s.size == 1 and prev_s.size == 1:  # the common case, one run each: no choice to make
            gap = max(0, int(s[0]) - int(prev_e[0]), int(prev_s[0]) - int(e[0]))
            cost = prev_cost + gap / thick
            bp = ZERO
        else:
            gap = np.maximum(0, np.maximum(s[None, :] - prev_e[:, None], prev_s[:, None] - e[None, :]))
            total = prev_cost[:, None] + gap / thick
            bp = np.argmin(total, axis=0)
            cost = total[bp, np.arange(s.size)]
        back.append(bp)
        prev_s, prev_e, prev_cost = s, e, cost
    if prev_cost is None:
        return None

    # backtrack
    n = x1 - x0
    chosen = np.full(n, -1)
    j = int(np.argmin(prev_cost))
    for i in range(n - 1, -1, -1):
        if back[i] is None:
            continue
        chosen[i] = j
        j = int(back[i][j])
        if j < 0:
            break
    y = np.full(n, np.nan)
    lo = np.full(n, np.nan)
    hi = np.full(n, np.nan)
    picked = np.flatnonzero(chosen >= 0)
    a = np.array([starts[i][chosen[i]] for i in picked], dtype=np.int64)
    b = np.array([ends[i][chosen[i]] for i in picked], dtype=np.int64)
    lo[picked], hi[picked] = a, b
    # each chosen run's ink-weighted centre, from cumulative sums down the columns
    w = weights[:, x0:x1][:, picked].astype(np.float64)
    c0 = np.vstack([np.zeros((1, picked.size)), np.cumsum(w, axis=0)])
    c1 = np.vstack([np.zeros((1, picked.size)), np.cumsum(w * np.arange(w.shape[0])[:, None], axis=0)])
    k = np.arange(picked.size)
    mass = c0[b + 1, k] - c0[a, k]
    moment = c1[b + 1, k] - c1[a, k] - a * mass
    y[picked] = a + moment / np.maximum(mass, 1e-9)
    # where the line runs level (its row changes by under half a pixel on both sides) a column's ink is its width
    yp = y[picked]
    level = np.zeros(picked.size, dtype=bool)
    level[1:-1] = (np.abs(np.diff(yp)[:-1]) < 0.5) & (np.abs(np.diff(yp)[1:]) < 0.5) & (np.diff(picked, 2) == 0)
    level &= (b - a + 1) <= thick + 1
    ink_width = float(np.median(mass[level])) if level.sum() >= 20 else 0.0
    sx, sy = _samples(y, lo, hi, thick)
    found = np.isfinite(y)
    steps = np.abs(np.diff(y[found])) if found.sum() > 1 else np.zeros(0)
    smooth = float(np.mean(steps <= 4 * thick + 2)) if steps.size else 0.0
    return Path(x0, y + top, sx + x0, sy + top, thick, float(found.mean()), smooth, ink_width)


def _samples(y: np.ndarray, lo: np.ndarray, hi: np.ndarray, thick: float) -> tuple[np.ndarray, np.ndarray]:
    """Signal samples (column, row) from the followed runs.

    Where the trace is flat a column's run is about a line wide and gives its (ink-weighted) centre. Where
    it is steep, columns are a poor sampler: a thick line's up- and downstroke overlap in the same columns.
    There the followed pixels are scanned row by row instead, and each row's crossings (the centres of its
    runs) are points of the graph: sorted by column they sample strokes, spikes and turns at full height
    and with their timing.
    """
    n = y.size
    found = np.isfinite(y)
    tall = found & ((hi - lo + 1) > 1.8 * thick + 1)
    flat = np.flatnonzero(found & ~tall)
    xs: list[float] = flat.astype(float).tolist()
    ys: list[float] = y[flat].tolist()
    half = thick / 2.0
    t_starts, t_ends = _runs(tall)
    for i, j in zip(t_starts.tolist(), t_ends.tolist()):
        a, b = max(0, i - 1), min(n - 1, j + 1)
        r0, r1 = int(np.nanmin(lo[a: b + 1])), int(np.nanmax(hi[a: b + 1]))
        window = np.zeros((r1 - r0 + 1, b - a + 1), dtype=bool)  # the followed runs only (no text beside)
        for c in range(a, b + 1):
            if found[c]:
                window[int(lo[c]) - r0: int(hi[c]) - r0 + 1, c - a] = True
        last = window.shape[1] - 1
        row_starts, row_ends = _column_runs(window.T)  # the runs of every row at once
        for r in range(window.shape[0]):
            s, e = row_starts[r], row_ends[r]
            for s0, e0 in zip(s, e):
                wide = e0 - s0 + 1 > 1.6 * thick
                from_left, to_right = s0 == 0 and a < i, e0 == last and b > j
                if from_left or to_right:  # joins a flat neighbour: only the stroke's own end is a new crossing
                    if wide and not (from_left and to_right):
                        xs.append(a + (e0 - half + 0.5 if from_left else s0 + half - 0.5))
                        ys.append(float(r0 + r))
                elif wide:  # two strokes merged in this row (near a peak): both crossings
                    xs += [a + s0 + half - 0.5, a + e0 - half + 0.5]
                    ys += [float(r0 + r)] * 2
                else:
                    xs.append(a + 0.5 * (s0 + e0))
                    ys.append(float(r0 + r))
    return _one_per_column(np.asarray(xs), np.asarray(ys), thick)


def _one_per_column(xs: np.ndarray, ys: np.ndarray, thick: float, per_px: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Points at (nearly) the same column become one sample: the top (or bottom) of the points where both
    neighbouring samples lie below it (above it), a spike narrower than the line; else their middle."""
    key = np.round(xs * per_px)
    uniq, inv = np.unique(key, return_inverse=True)
    lo = np.full(uniq.size, np.inf)
    hi = np.full(uniq.size, -np.inf)
    np.minimum.at(lo, inv, ys)
    np.maximum.at(hi, inv, ys)
    mid = 0.5 * (lo + hi)
    row = mid.copy()
    half = thick / 2.0
    for k in np.flatnonzero(hi - lo > thick):
        left = mid[k - 1] if k > 0 else None
        right = mid[k + 1] if k + 1 < uniq.size else None
        if left is None or right is None:
            continue
        if left > lo[k] + thick and right > lo[k] + thick:
            row[k] = lo[k] + half
        elif left < hi[k] - thick and right < hi[k] - thick:
            row[k] = hi[k] - half
    return uniq / per_px, row


def fill_gaps(y: np.ndarray) -> np.ndarray:
    """NaN rows filled by linear interpolation between found ones (ends held)."""
    found = np.isfinite(y)
    if found.all() or not found.any():
        return y
    x = np.arange(y.size)
    return np.interp(x, x[found], y[found])
