"""An ECG picture's ground, grid and tilt: ink maps, the grid's period, straight-line removal, deskew.

Every function takes float32 arrays in [0, 1] and returns new arrays; nothing is drawn or written.
The grid period is what calibrates a paper ECG: a small box is 1 mm, which is 40 ms at 25 mm/s and
0.1 mV at 10 mm/mV.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
MIN_PERIOD_PX = 3.0  # a grid finer than this cannot be told from JPEG noise
MAX_PERIOD_PX = 60.0
MIN_GRID_SIDE_PX = 100  # a grid seen one way only must be measured over at least this many pixels
MIN_CONFIDENCE = 0.2
MIN_REPEAT = 0.6  # columns + rows autocorrelation at the 5 mm lag: ECG grids 0.9-1.4, plots' gridlines < 0.1
MIN_REPEAT_ONE_WAY = 0.4
MIN_REPEAT_BOTH = 0.9  # both profiles at one period's large box where their own periods disagree: grids 1.15+
LINE_COVERAGE = 0.7  # a row or column (of a tile) inked over this share of its length holds a straight line


@dataclass(frozen=True)
class Ground:
    """How ink stands out from the paper or screen."""

    light_on_dark: bool
    trace_ink: np.ndarray  # the trace stands out most here; coloured grid lines fade (HSV value)
    line_ink: np.ndarray  # every line stands out here, grid included (luminance)
    desk: np.ndarray | None = None  # a photo's desk around the paper (bool, full size), None where there is none


@dataclass(frozen=True)
class GridPeriod:
    """The ECG grid's small-box period in pixels, and how sure we are of it."""

    px_per_mm: float
    confidence: float  # 0..1: periodicity strength, small/large box structure, x/y agreement
    large_boxes: bool  # bold lines every five small boxes were seen


def ground(rgb: np.ndarray, background_px: int = 15, desk: np.ndarray | None = None) -> Ground:
    """Ink maps of a picture: 0 on the paper (or screen), 1 on the strongest ink.

    The local background is a morphological closing (opening for light-on-dark pictures) larger than a line,
    so shading and uneven lighting do not count as ink. desk: the desk found in the picture before it was
    straightened (`warp_mask`), for straightened pictures, whose filled corners part a thin desk from the edge.
    """
    lum = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    # HSV value: red, pink or green grid lines stay bright in it; a black or dark blue trace does not
    value = np.maximum(np.maximum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])
    dark = float(column_median(lum.reshape(-1, 1), nonnegative=True)[0]) < 0.5
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (background_px, background_px))

    def ink(channel: np.ndarray) -> np.ndarray:
        c = np.ascontiguousarray(channel, dtype=np.float32)
        if dark:
            bg = cv2.morphologyEx(c, cv2.MORPH_OPEN, k)
            out = c - bg
        else:
            bg = cv2.morphologyEx(c, cv2.MORPH_CLOSE, k)
            out = (bg - c) / np.maximum(bg, 0.2)
        out = np.clip(out, 0.0, None)
        top = percentile(out, 99.95, nonnegative=True) if out.size > 4000 else float(out.max())
        return np.clip(out / max(top, 1e-3), 0.0, 1.0).astype(np.float32)

    line = ink(lum)
    if dark:
        return Ground(dark, line, line)
    # a photo shows the desk around the paper: large dark areas and the paper's edges are not ink
    if desk is None:
        small = cv2.resize((lum * 255).astype(np.uint8), None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
        found = _touching_border(cv2.medianBlur(small, 5) <= 90)  # a dense stretch of dark trace is not the desk
        found |= _edge_bands(small <= 90)  # a thin frame of desk, which the median takes away
        desk = cv2.resize(found.astype(np.uint8), (lum.shape[1], lum.shape[0]),
                          interpolation=cv2.INTER_NEAREST).astype(bool)  # found at a quarter size: 16x cheaper
    paper = ~desk
    if not paper.all():
        paper = cv2.erode(paper.astype(np.uint8), k, iterations=2).astype(bool)
        line = np.where(paper, line, 0.0).astype(np.float32)
    # A dark trace is dark in luminance, whatever its hue (black, dark blue, a plot's pure blue); a coloured grid
    # is light in luminance and bright in its own channel, so it fades in the value channel. Take the value
    # ink, and the luminance ink where the pixel itself is dark.
    dark_weight = np.clip((0.62 - lum) / 0.3, 0.0, 1.0)
    trace = np.maximum(ink(value), line * dark_weight)
    if not paper.all():
        trace = np.where(paper, trace, 0.0)
    return Ground(dark, trace.astype(np.float32), line, desk if desk.any() else None)


def _sorted_rows(a: np.ndarray, nonnegative: bool) -> np.ndarray:
    """A sorted copy of each row of a 2-D array. numpy's vectorised sort beats np.partition on these sizes, and
    partitioning at several ranks (np.median of an even count, np.percentile) is slower still.

    nonnegative: a float32 array known to hold no negative value nor NaN (ink maps) is sorted by its bits as
    int32, which order such floats as their values do, and faster."""
    t = np.array(a, order="C")  # always a copy: sorted in place
    if nonnegative and t.dtype == np.float32:
        t.view(np.int32).sort(axis=1)
    else:
        t.sort(axis=1)
    return t


def _linear_quantile(t: np.ndarray, q: float) -> np.ndarray:
    """np.percentile's default ("linear") interpolation for a Python float q, on values sorted along the last
    axis: the same ranks, weight and arithmetic (numpy's _lerp), so the same floats."""
    n = t.shape[-1]
    virtual = (n - 1) * (q / 100)
    prev = int(np.floor(virtual))
    if virtual >= n - 1:  # numpy takes the last value for both, its weight measured from index -1
        prev_i = next_i = n - 1
        gamma = virtual + 1.0
    else:
        prev_i, next_i = prev, prev + 1
        gamma = virtual - prev
    a, b = t[..., prev_i], t[..., next_i]
    diff = b - a
    return b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma


def column_percentile(a: np.ndarray, q: float, nonnegative: bool = False) -> np.ndarray:
    """np.percentile(a, q, axis=0) of a 2-D array without NaN, exactly (q a Python float), several times faster."""
    return _linear_quantile(_sorted_rows(a.T, nonnegative), float(q))


def row_percentile(a: np.ndarray, q: float, nonnegative: bool = False) -> np.ndarray:
    """np.percentile(a, q, axis=1) of a 2-D array without NaN, exactly (q a Python float)."""
    return _linear_quantile(_sorted_rows(a, nonnegative), float(q))


def percentile(a: np.ndarray, q: float, nonnegative: bool = False) -> float:
    """float(np.percentile(a, q)) of an array without NaN, exactly (q a Python float)."""
    return float(_linear_quantile(_sorted_rows(np.reshape(a, (1, -1)), nonnegative), float(q))[0])


def column_median(a: np.ndarray, nonnegative: bool = False) -> np.ndarray:
    """np.median(a, axis=0) of a 2-D array, exactly, several times faster (see _sorted_rows; nonnegative: the
    same)."""
    t = _sorted_rows(a.T, nonnegative)
    n = t.shape[1]
    k = n // 2
    if n % 2:
        return t[:, k]
    return (t[:, k - 1] + t[:, k]) / 2


def _edge_bands(dark: np.ndarray, share: float = 0.6) -> np.ndarray:
    """Dark bands along the picture's sides: on each side, the dark run from the edge inwards in every column
    (row) where at least `share` of them start dark. A trace that reaches the edge does so in a few columns."""
    out = np.zeros_like(dark, dtype=bool)
    for k in range(4):
        d = np.rot90(dark, k)
        depth = np.where(d.all(axis=0), d.shape[0], np.argmin(d, axis=0))
        if np.mean(depth >= 1) >= share:
            band = np.arange(d.shape[0])[:, None] < depth[None, :]
            out |= np.rot90(band, -k)
    return out


def _touching_border(mask: np.ndarray) -> np.ndarray:
    """The parts of a boolean mask connected to the picture's border."""
    if not mask.any():
        return mask
    n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    keep = np.zeros(n, dtype=bool)
    keep[edge] = True
    keep[0] = False
    return keep[labels]


def _spectrum(profile: np.ndarray, pad: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies in cycles per pixel, power) of a detrended, windowed line profile."""
    p = profile.astype(np.float64)
    p = p - cv2.blur(p.reshape(1, -1), (31, 1)).ravel()
    p = (p - p.mean()) * np.hanning(p.size)
    n = 1 << int(np.ceil(np.log2(p.size * pad)))
    power = np.abs(np.fft.rfft(p, n)) ** 2
    return np.fft.rfftfreq(n), power


def _peak(freqs: np.ndarray, power: np.ndarray, f: float, rel: float = 0.04) -> tuple[float, float]:
    """(frequency, power) of the strongest bin within +-rel of f, parabolically interpolated."""
    lo, hi = np.searchsorted(freqs, f * (1 - rel)), np.searchsorted(freqs, f * (1 + rel)) + 1
    lo, hi = max(lo, 1), min(hi, power.size - 1)
    if hi <= lo:
        return f, 0.0
    i = lo + int(np.argmax(power[lo:hi]))
    a, b, c = np.log(power[i - 1: i + 2] + 1e-30)
    d = a - 2 * b + c
    shift = min(max(float(0.5 * (a - c) / d), -0.5), 0.5) if d < 0 else 0.0  # np.clip's value, on a float
    return float(freqs[i] + shift * (freqs[1] - freqs[0])), float(power[i])


def _period_1d(profile: np.ndarray) -> tuple[float, float, bool]:
    """(small-box period px, strength 0..1, bold lines seen) of a grid's line profile; period 0 when none.

    A grid is a comb in the spectrum: its fundamental is the widest repeat (the 5 mm bold lines where they
    are drawn), and paper with bold lines has an especially strong fifth harmonic (the 1 mm lines). The period
    is refined on the highest harmonic that stands out, which measures it over the whole picture.
    """
    if profile.size < 8 * MIN_PERIOD_PX:
        return 0.0, 0.0, False
    freqs, power = _spectrum(profile)
    band = (freqs >= 1.0 / min(5.5 * MAX_PERIOD_PX, profile.size / 3)) & (freqs <= 1.0 / MIN_PERIOD_PX)
    if not band.any() or power[band].max() <= 0:
        return 0.0, 0.0, False
    total = float(power[band].sum())
    f_top = float(freqs[band][np.argmax(power[band])])
    floor = float(np.median(power[band]))
    # the fundamental: the lowest sub-multiple of the strongest line that still stands out of the floor
    f0 = f_top
    for k in range(6, 1, -1):
        f, pw = _peak(freqs, power, f_top / k)
        if f >= freqs[band][0] and pw > 30 * floor and pw > 0.02 * power[band].max():
            f0 = f_top / k
            break
    f0, _ = _peak(freqs, power, f0)
    harmonics = [(_peak(freqs, power, k * f0)) for k in range(1, 11) if k * f0 <= 0.5]
    comb = sum(pw for _, pw in harmonics)
    # share of the profile's power on the comb's bins (each harmonic's peak spreads over ~pad bins)
    strength = float(np.clip(comb * 12 / max(total, 1e-30), 0.0, 1.0))
    powers = np.array([pw for _, pw in harmonics])
    bold = powers.size >= 5 and powers[4] > 2.0 * max(float(np.mean(powers[1:4])), 1e-30)
    # refine on the highest harmonic that stands out
    best = 1
    for k, (_, pw) in enumerate(harmonics, start=1):
        if pw > 0.1 * powers.max():
            best = k
    f_ref = harmonics[best - 1][0] / best
    spacing = 1.0 / f_ref
    if bold:
        return spacing / 5.0, strength, True
    if spacing > 14.0:  # lines this far apart are the 5 mm lines of a grid without the 1 mm ones
        return spacing / 5.0, strength * 0.8, True
    return spacing, strength, False


def repeat_at(profile: np.ndarray, lag: float) -> float:
    """Normalised autocorrelation of a detrended line profile at a (fractional) lag: how well the profile
    repeats itself at that period. A plot's few gridlines or frame lines share harmonics with a grid's comb by
    chance, but they do not repeat at the 5 mm lag."""
    p = profile.astype(np.float64)
    p = p - cv2.blur(p.reshape(1, -1), (31, 1)).ravel()
    i, f = int(np.floor(lag)), lag - np.floor(lag)
    if i < 1 or i + 1 >= p.size:
        return 0.0

    def r(k: int) -> float:
        a, b = p[:-k], p[k:]
        return float(np.dot(a, b) / max(np.sqrt(np.dot(a, a) * np.dot(b, b)), 1e-12))

    return (1 - f) * r(i) + f * r(i + 1)


def grid_period(line_ink: np.ndarray) -> GridPeriod | None:
    """The ECG grid's small-box period, measured from column and row profiles of the line ink, or None.

    A grid repeats both ways with one period: when columns and rows agree within 3 % it is taken (their
    weighted mean); one direction alone must be clearly periodic, in a picture large enough to tell. Either
    way the profiles must repeat at five small boxes (the large box), which a plot's gridlines do not.
    """
    cols = column_median(line_ink)  # the trace covers few rows of a column; grid lines all of them
    rows = column_median(line_ink.T)
    px, sx, bx = _period_1d(cols)
    py, sy, by = _period_1d(rows)
    if px > 0 and py > 0 and abs(px - py) / max(px, py) < 0.03:
        period = (px * sx + py * sy) / max(sx + sy, 1e-9)
        if repeat_at(cols, 5 * period) + repeat_at(rows, 5 * period) >= MIN_REPEAT:
            return GridPeriod(float(period), float(np.clip(0.4 + sx + sy, 0.0, 1.0)), bx or by)
    # the two measures disagree (one way is disturbed by the trace or text): a period under which both
    # profiles repeat at the large box is the grid's
    both = [(repeat_at(cols, 5 * c) + repeat_at(rows, 5 * c), c, st, b)
            for c, st, b in ((px, sx, bx), (py, sy, by)) if c > 0]
    if both and max(both)[0] >= MIN_REPEAT_BOTH:
        score, c, st, b = max(both)
        return GridPeriod(float(c), float(np.clip(0.2 + st + 0.2 * score, 0.0, 1.0)), b)
    if min(line_ink.shape) < MIN_GRID_SIDE_PX:
        return None
    (period, strength, bold), profile = max((((px, sx, bx), cols), ((py, sy, by), rows)), key=lambda c: c[0][1])
    confidence = float(np.clip(2.0 * (strength - 0.15), 0.0, 1.0))
    # seen one way only, the large boxes must show too: a regular rhythm's QRS strokes repeat like lines
    if (period <= 0 or confidence < MIN_CONFIDENCE or not bold
            or repeat_at(profile, 5 * period) < MIN_REPEAT_ONE_WAY):
        return None
    return GridPeriod(float(period), confidence, bold)


def period_trend(line_ink: np.ndarray, px_per_mm: float, tiles: int = 6) -> tuple[float, float, float] | None:
    """How the grid period changes across the picture (perspective): (relative slope per column, period at
    the centre, centre column), from the column profile's period in overlapping tiles; None when too few
    tiles show the grid."""
    h, w = line_ink.shape
    width = int(w / (tiles / 2 + 0.5))
    if width < 40 * px_per_mm / 5 or width < 60:
        return None
    centres, periods, weights = [], [], []
    for a in np.linspace(0, w - width, tiles).astype(int):
        prof = column_median(line_ink[:, a: a + width])
        freqs, power = _spectrum(prof)
        # the strongest harmonic near the known small-box or bold-line frequency
        best = None
        for k in (1.0, 0.2):
            f, pw = _peak(freqs, power, k / px_per_mm, rel=0.08)
            if best is None or pw > best[1]:
                best = (f / k, pw)
        if best[1] > 0:
            centres.append(a + width / 2.0)
            periods.append(1.0 / best[0])
            weights.append(best[1])
    if len(periods) < 4:
        return None
    c = np.asarray(centres)
    p = np.asarray(periods)
    wts = np.sqrt(np.asarray(weights))
    if np.any(np.abs(p / px_per_mm - 1) > 0.1):  # a tile that locked on something else
        keep = np.abs(p / px_per_mm - 1) <= 0.1
        if keep.sum() < 4:
            return None
        c, p, wts = c[keep], p[keep], wts[keep]
    slope, intercept = np.polyfit(c, p, 1, w=wts)
    centre = w / 2.0
    p_centre = float(slope * centre + intercept)
    return float(slope / p_centre), p_centre, centre


def remove_lines(ink: np.ndarray, coverage: float = LINE_COVERAGE, cap: float = 1.0) -> np.ndarray:
    """Ink less the straight horizontal and vertical lines (grid, axes, frames) that cross a tile.

    A line's strength in a column is a low percentile of that column (the trace covers few of its pixels, a
    grid or axis line nearly all); the same along rows, per quarter of the width so that mild perspective and
    a slight residual tilt are followed. A steep QRS stroke that fills a column loses that column only, which
    the trace follower bridges. `cap` limits what is taken away, so that a trace drawn as a long straight line
    (a flat baseline) outlives the removal while fainter grid lines still go.
    """
    q = 100.0 * (1.0 - coverage)
    h, w = ink.shape
    vertical = np.empty_like(ink)
    tiles_v = 2 if h >= 300 else 1
    for t in range(tiles_v):
        a, b = t * h // tiles_v, (t + 1) * h // tiles_v
        vertical[a:b] = column_percentile(ink[a:b], q, nonnegative=True)[None, :]
    horizontal = np.empty_like(ink)
    for t in range(4):
        a, b = t * w // 4, (t + 1) * w // 4
        horizontal[:, a:b] = row_percentile(ink[:, a:b], q, nonnegative=True)[:, None]
    # long straight segments anywhere (axes, frames, spines that start mid-tile): grey-level openings
    seg_h = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (max(15, w // 7), 1)))
    seg_v = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, max(15, int(h * 0.6)))))
    lines = np.maximum(np.maximum(vertical, horizontal), np.maximum(seg_h, seg_v))
    return np.clip(ink - np.minimum(lines, cap), 0.0, 1.0).astype(np.float32)


def _reduced(line_ink: np.ndarray, work_side: int) -> np.ndarray:
    h, w = line_ink.shape
    s = min(1.0, work_side / max(h, w))
    return cv2.resize(line_ink, (max(8, int(w * s)), max(8, int(h * s))), interpolation=cv2.INTER_AREA)


def _steps_energy(profile: np.ndarray) -> float:
    """float(np.sum(np.diff(profile) ** 2)), the same arithmetic without the wrappers' overhead (called ~200
    times a picture)."""
    d = profile[1:] - profile[:-1]
    return float(np.multiply(d, d, out=d).sum())


def _sharpest(score, limit: float, coarse_step: float, fine_step: float, smallest: float,
              coarse_score=None) -> tuple[float, float]:
    """The parameter in [-limit, limit] that maximises score (a coarse then a fine search), and the gain over 0;
    (0, 1) unless it is clearly better than no change. coarse_score: a cheaper score (the same measure on a
    smaller picture) for the coarse search; the refinement and the gain use `score`."""
    coarse = np.arange(-limit, limit + 1e-9, coarse_step)
    coarse_scores = [(coarse_score or score)(v) for v in coarse]
    k = int(np.argmax(coarse_scores))
    best = float(coarse[k])
    top = float(coarse_scores[k]) if coarse_score is None else score(best)
    # golden-section refinement around the coarse peak, down to fine_step (a third of the evaluations of a grid)
    a, b = best - coarse_step, best + coarse_step
    g = (np.sqrt(5.0) - 1.0) / 2.0
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = score(c), score(d)
    while b - a > fine_step:
        if fc >= fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = score(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = score(d)
    for v, f in ((c, fc), (d, fd)):
        if f > top:
            best, top = float(v), float(f)
    zero = np.flatnonzero(coarse == 0.0)  # the coarse grid may hold no change exactly: its score is known
    base = float(coarse_scores[int(zero[0])]) if zero.size and coarse_score is None else score(0.0)
    if abs(best) < smallest or top < 1.08 * base:
        return 0.0, 1.0
    return best, float(top / max(base, 1e-12))


def skew_angle(line_ink: np.ndarray, max_deg: float = 6.0, work_side: int = 480) -> tuple[float, float]:
    """The rotation (degrees, counter-clockwise positive as cv2 uses it) that makes lines horizontal, and how
    much sharper the row profile gets with it (1: not at all).

    The angle whose row profile is sharpest (grid lines, axes and the baseline line up with pixel rows);
    0 unless the best angle is clearly sharper than no rotation.
    """
    def sharpness_of(small: np.ndarray):
        sh, sw = small.shape

        def sharpness(angle: float) -> float:
            m = cv2.getRotationMatrix2D((sw / 2.0, sh / 2.0), angle, 1.0)
            r = cv2.warpAffine(small, m, (sw, sh), flags=cv2.INTER_LINEAR, borderValue=0.0)
            return _steps_energy(r.sum(axis=1))
        return sharpness

    # the coarse search on a picture of half the side (a quarter of the pixels) finds the same peak
    angle, gain = _sharpest(sharpness_of(_reduced(line_ink, work_side)), max_deg, 0.5, 0.1, 0.15,
                            coarse_score=sharpness_of(_reduced(line_ink, work_side // 2)))
    return round(angle, 2), gain


def shear_slope(line_ink: np.ndarray, max_slope: float = 0.3, work_side: int = 320) -> tuple[float, float]:
    """The horizontal shear (column shift per row) that makes vertical grid lines vertical, and how much
    sharper the column profile gets with it (1: not at all). A photo taken at an angle tilts the vertical lines
    apart from the horizontal ones; columns are time, so a tilt there would shift every peak in time."""
    small = _reduced(line_ink, work_side)
    sh, sw = small.shape

    def sharpness(k: float) -> float:
        m = np.float32([[1, -k, k * sh / 2.0], [0, 1, 0]])
        r = cv2.warpAffine(small, m, (sw, sh), flags=cv2.INTER_LINEAR, borderValue=0.0)
        # the median: grid lines, not the trace (ink interpolated with a zero border is never negative)
        return _steps_energy(column_median(r, nonnegative=True))

    slope, gain = _sharpest(sharpness, max_slope, 0.02, 0.003, 0.004)
    return round(slope, 4), gain


@dataclass(frozen=True)
class ShearField:
    """Vertical lines tilted by a slope that changes across the picture (a photo's keystone): a vertical line
    at column x runs with dx/dy = slope + change * (x - centre_x), about the row centre_y."""

    slope: float
    change: float  # per column
    centre_x: float
    centre_y: float

    def tilt(self, x: np.ndarray) -> np.ndarray:
        return self.slope + self.change * (np.asarray(x, dtype=np.float64) - self.centre_x)

    def to_picture(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """Columns in the sheared (picture) frame of points (xs, ys) of the straightened frame."""
        return np.asarray(xs, dtype=np.float64) + self.tilt(xs) * (np.asarray(ys, dtype=np.float64) - self.centre_y)

    def straighten(self, image: np.ndarray, fill: tuple[float, ...]) -> np.ndarray:
        h, w = image.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        map_x = self.to_picture(xx, yy).astype(np.float32)
        return cv2.remap(image, map_x, yy, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=fill)


def shear_field(line_ink: np.ndarray, tiles: int = 5, min_gain: float = 3.0) -> ShearField | None:
    """The tilt of the vertical grid lines measured in `tiles` slices across the picture and fitted as a line
    in the column (a photo at an angle tilts the left and right ends differently); None without a clear tilt
    seen in at least two slices that agree with the line within 0.015 (a photo's slices agree to under 0.01;
    the tilts a screen's trace and digits suggest scatter by 0.03-0.1)."""
    h, w = line_ink.shape
    xs, slopes = [], []
    for t in range(tiles):
        a, b = t * w // tiles, (t + 1) * w // tiles
        if b - a < 40:
            continue
        if len(slopes) + (tiles - t) < 2:  # too few slices left to reach two with a tilt: the answer is None
            break
        slope, gain = shear_slope(line_ink[:, a:b])
        if gain >= min_gain:
            xs.append((a + b - 1) / 2.0)
            slopes.append(slope)
    if len(slopes) < 2:
        return None
    x, s = np.array(xs) - (w - 1) / 2.0, np.array(slopes)
    if x.size >= 3:
        change, slope = np.polyfit(x, s, 1)
        resid = np.abs(s - (slope + change * x))
        if resid.max() > 0.015 and x.size >= 4:  # one slice misread: fit without it
            keep = resid < resid.max()
            x, s = x[keep], s[keep]
            change, slope = np.polyfit(x, s, 1)
    else:
        slope, change = float(np.mean(s)), 0.0
    if np.abs(s - (slope + change * x)).max() > 0.015:  # the slices disagree: no tilt to trust
        return None
    if abs(slope) < 0.004 and abs(change) * w < 0.008:
        return None
    return ShearField(float(slope), float(change), (w - 1) / 2.0, h / 2.0)


def rotate(image: np.ndarray, angle: float, fill: float | tuple[float, ...]) -> np.ndarray:
    """image rotated by `angle` degrees about its centre (same size), the uncovered corners filled."""
    if angle == 0.0:
        return image
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
    border = fill if isinstance(fill, tuple) else (fill, fill, fill)
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=border)


def warp_mask(mask: np.ndarray | None, warp) -> np.ndarray | None:
    """A boolean mask through the warp a picture went through (`warp(uint8 image, fill)`); corners the warp
    uncovers are False."""
    if mask is None:
        return None
    return warp(mask.astype(np.uint8) * 255, (0.0,)) >= 128


def rotation_matrix(shape: tuple[int, int], angle: float) -> np.ndarray:
    """The 2 x 3 affine matrix `rotate` applies to a picture of this shape."""
    h, w = shape[:2]
    return cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
