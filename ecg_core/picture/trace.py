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

from ecg_core.picture.grid import percentile

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
    top = percentile(ink, 99.9, nonnegative=True) if ink.size > 2000 else float(ink.max())
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


def _column_runs_flat(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start and end rows (inclusive) of the runs of True in every column, all columns at once, as flat arrays
    sorted by column then row, and where each column's runs begin in them (mask.shape[1] + 1 offsets)."""
    pad = np.zeros((1, mask.shape[1]), dtype=np.int8)
    d = np.diff(np.vstack([pad, mask.astype(np.int8), pad]), axis=0)
    start_col, start_row = np.nonzero(d.T == 1)  # transposed: sorted by column, then row
    end_col, end_row = np.nonzero(d.T == -1)
    cuts = np.concatenate([[0], np.searchsorted(start_col, np.arange(1, mask.shape[1])), [start_row.size]])
    return start_row, end_row - 1, cuts


def _column_runs(mask: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Start and end rows (inclusive) of the runs of True in every column, all columns at once."""
    start_row, end_row, cuts = _column_runs_flat(mask)
    c = cuts.tolist()
    # slices of the flat arrays (the views np.split makes, without its per-piece overhead)
    return [start_row[a:b] for a, b in zip(c[:-1], c[1:])], [end_row[a:b] for a, b in zip(c[:-1], c[1:])]


def _row_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, start column, end column inclusive) of every run of True in the rows of a boolean mask, sorted by
    row, then column."""
    pad = np.zeros((mask.shape[0], 1), dtype=np.int8)
    d = np.diff(np.hstack([pad, mask.astype(np.int8), pad]), axis=1)
    rows, starts = np.nonzero(d == 1)
    _, ends = np.nonzero(d == -1)  # a row's runs alternate start, end: the k-th end closes the k-th start
    return rows, starts, ends - 1


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


def _choose_runs(start_row: np.ndarray, end_row: np.ndarray, cuts: np.ndarray, thick: float,
                 baseline: float) -> np.ndarray | None:
    """The run each column's path passes through (index among the column's runs, -1 for none), by dynamic
    programming over the columns' runs (`_column_runs_flat`); None when no column holds a run.

    The cost of a step is the vertical gap between consecutive runs in line widths (SKIP_COST across a column
    without trace); the first run is chosen nearest the baseline on ties.
    """
    c = cuts.tolist()
    starts = [start_row[a:b] for a, b in zip(c[:-1], c[1:])]
    ends = [end_row[a:b] for a, b in zip(c[:-1], c[1:])]
    n = len(starts)
    sizes = np.diff(cuts)
    simple = sizes <= 1
    # where a stretch of columns holding at most one run each ends: the next column with several runs, or n
    several = np.flatnonzero(~simple)
    stretch_end = np.append(several, n)[np.searchsorted(several, np.arange(n))]
    first = np.minimum(cuts[:-1], max(start_row.size - 1, 0))  # each column's first run (any for an empty one)
    first_s, first_e = (start_row[first], end_row[first]) if start_row.size else (sizes, sizes)
    back: list[np.ndarray | None] = []
    prev_s = prev_e = None
    prev_cost = None
    i = 0
    while i < n:
        s, e = starts[i], ends[i]
        if prev_cost is not None and prev_s.size == 1 and simple[i]:
            # the common case, one run a column (or none) after one run: no choice to make. The cost only grows,
            # by the gaps (or SKIP_COST), summed in the same order as one column at a time
            j = int(stretch_end[i])
            found = np.flatnonzero(sizes[i:j] == 1) + i
            steps = np.full(j - i, SKIP_COST)
            if found.size:
                ps = np.concatenate([prev_s[:1], first_s[found[:-1]]])
                pe = np.concatenate([prev_e[:1], first_e[found[:-1]]])
                gap = np.maximum(0, np.maximum(first_s[found] - pe, ps - first_e[found]))
                steps[found - i] = gap / thick
                prev_s, prev_e = starts[int(found[-1])], ends[int(found[-1])]
            prev_cost = np.cumsum(np.concatenate([prev_cost, steps]))[-1:]
            back.extend(ZERO if r else None for r in (sizes[i:j] == 1).tolist())
            i = j
            continue
        if s.size == 0:
            back.append(None)
            if prev_cost is not None:
                prev_cost = prev_cost + SKIP_COST
            i += 1
            continue
        if prev_s is None:
            cost = np.abs((s + e) / 2.0 - baseline) * 1e-3  # start near the baseline on ties
            bp = np.full(s.size, -1)
        else:
            gap = np.maximum(0, np.maximum(s[None, :] - prev_e[:, None], prev_s[:, None] - e[None, :]))
            total = prev_cost[:, None] + gap / thick
            bp = np.argmin(total, axis=0)
            cost = total[bp, np.arange(s.size)]
        back.append(bp)
        prev_s, prev_e, prev_cost = s, e, cost
        i += 1
    if prev_cost is None:
        return None
    # backtrack
    chosen = np.full(n, -1)
    j = int(np.argmin(prev_cost))
    for i in range(n - 1, -1, -1):
        if back[i] is None:
            continue
        chosen[i] = j
        j = int(back[i][j])
        if j < 0:
            break
    return chosen


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

    start_row, end_row, cuts = _column_runs_flat(sub[:, x0:x1])
    n = x1 - x0
    chosen = _choose_runs(start_row, end_row, cuts, thick, baseline - top)
    if chosen is None:
        return None
    y = np.full(n, np.nan)
    lo = np.full(n, np.nan)
    hi = np.full(n, np.nan)
    picked = np.flatnonzero(chosen >= 0)
    a = start_row[cuts[picked] + chosen[picked]].astype(np.int64)
    b = end_row[cuts[picked] + chosen[picked]].astype(np.int64)
    lo[picked], hi[picked] = a, b
    # each chosen run's ink-weighted centre, from cumulative sums down the columns
    # (rows below the lowest chosen run are not summed: the sums above them are the same)
    w = weights[: int(b.max()) + 1, x0:x1][:, picked].astype(np.float64)
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
    xs: list[np.ndarray] = [flat.astype(float)]
    ys: list[np.ndarray] = [y[flat]]
    half = thick / 2.0
    t_starts, t_ends = _runs(tall)
    for i, j in zip(t_starts.tolist(), t_ends.tolist()):
        a, b = max(0, i - 1), min(n - 1, j + 1)
        r0, r1 = int(np.nanmin(lo[a: b + 1])), int(np.nanmax(hi[a: b + 1]))
        # the followed runs only (no text beside): rows lo..hi of each found column
        c_lo, c_hi, c_found = lo[a: b + 1] - r0, hi[a: b + 1] - r0, found[a: b + 1]
        rr = np.arange(r1 - r0 + 1)[:, None]
        window = c_found[None, :] & (rr >= np.where(c_found, c_lo, 0)) & (rr <= np.where(c_found, c_hi, -1))
        last = window.shape[1] - 1
        r, s0, e0 = _row_runs(window)  # the runs of every row at once
        row = (r0 + r).astype(float)
        wide = e0 - s0 + 1 > 1.6 * thick
        from_left, to_right = (s0 == 0) & (a < i), (e0 == last) & (b > j)
        joins = from_left | to_right  # joins a flat neighbour: only the stroke's own end is a new crossing
        end = joins & wide & ~(from_left & to_right)
        xs.append(a + np.where(from_left[end], e0[end] - half + 0.5, s0[end] + half - 0.5))
        ys.append(row[end])
        both = ~joins & wide  # two strokes merged in this row (near a peak): both crossings
        xs += [a + s0[both] + half - 0.5, a + e0[both] - half + 0.5]
        ys += [row[both]] * 2
        mid = ~joins & ~wide
        xs.append(a + 0.5 * (s0[mid] + e0[mid]))
        ys.append(row[mid])
    return _one_per_column(np.concatenate(xs), np.concatenate(ys), thick)


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
