"""Picture bytes -> calibrated ECG signals: the digitizer.

Steps: decode (colour kept) -> ground and ink maps (dark-on-light or light-on-dark, shading removed) ->
deskew from the grid or baseline -> grid period -> straight lines (grid, axes) removed -> trace mask (text
and specks dropped) -> strips -> one followed path per strip -> calibration -> signals in millivolts.

Calibration: from the ECG grid when there is one (1 mm small boxes; 25 mm/s and 10 mm/mV), else from
the time span the user states for the trace's width (presets in SPAN_PRESETS); a picture without grid and
without a stated span gets a guess from its shape (a lone beat: picture.span estimates it), and says so.
Amplitude without a grid is relative (the models scale every beat to its own range).

Nothing is written to disk; every failure is a DigitizeError whose str() is one line for the user.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np
from scipy import signal as sps

from ecg_core.io.signal_io import SignalInput
from ecg_core.picture import grid as gridlib
from ecg_core.picture import span as spanlib
from ecg_core.picture import trace as tracelib
from ecg_core.picture.imaging import ImageInputError, decode_rgb_with_notes
from ecg_core.settings import WORKING_FS

PAPER_SPEED_MM_S = 25.0
PAPER_GAIN_MM_MV = 10.0
SINGLE_BEAT_S, PROJECT_BEAT_S = spanlib.BEAT_PRESETS_S
SPAN_PRESETS: dict[str, float] = {  # label -> seconds across the trace
    f"a single beat (about {SINGLE_BEAT_S:g} s)": SINGLE_BEAT_S,
    f"a beat picture of this project ({PROJECT_BEAT_S:g} s)": PROJECT_BEAT_S,
    "a 10 s rhythm strip": 10.0,
}
MIN_SKEW_GAIN = 3.0  # row-profile sharpening that proves a tilt (real tilts: 6-16; a lone trace: 1-2)
LINE_CAP = 0.55  # the retry's cap on line removal: grid lines are fainter than the trace
MIN_STRIP_SHARE = 0.35  # of the longest strip's width, for a row of trace to count as a strip
MAX_SIDE_OVERLAP = 0.3  # rows overlapping less than this (of the shorter) lie side by side: one trace
# stacked strips span the same columns; two rows of one connected line that overlap less are one trace whose
# baseline moves (a beat picture's ST segment below its PR segment)
MIN_STACKED_OVERLAP = 0.9
STRIP_SPIKES = 5  # without grid or stated span, a trace with this many beats is taken for a 10 s strip
BEAT_SPIKES = 3  # and one with this many or fewer for a beat picture (between them, the picture's shape)
STRAY_END = 0.06  # of a path's width: how far from its ends a stray stretch (text beside the trace) is looked for
SPIKE_WIDTH = 0.03  # of the trace's width: a counted spike is narrower near its tip (a QRS on a strip)
STRIP_ASPECT = 2.5  # without grid or stated span, a picture this much wider than tall is taken for a 10 s strip
MIN_COVERAGE = 0.5  # share of the trace's columns that must hold trace pixels
MAX_INK_DENSITY = 0.12  # share of a strip's area an ECG line covers: 2-8 % drawn, photos 15-35 %
STANDARD_GAINS = (0.25, 0.5, 1.0, 2.0)  # a calibration pulse's height over the grid's 10 mm/mV
MAX_INK_EXCESS = 2.0  # ink over what the followed line itself covers: a dense tiny strip ~1, photos 3+
MAX_TALL_SHARE = 0.35  # columns with a run this much taller than the line: filled areas, not a trace
MIN_GRID_CONFIDENCE = gridlib.MIN_CONFIDENCE
UNRELATIVE_RANGE_MV = 2.2  # 1-99 % range given to an uncalibrated trace: the median of 10 s MLII windows in DS1


class DigitizeError(ValueError):
    """A picture that cannot be digitized; str(error) is the one-line reason."""


@dataclass(frozen=True)
class Calibration:
    """How pixels became seconds and millivolts, and how sure that is."""

    method: str  # "grid", "span" (stated) or "assumed"
    px_per_s: float  # at the picture's centre column
    px_per_mv: float | None  # None: amplitude relative
    confidence: float  # 0..1
    description: str
    scale_slope: float = 0.0  # relative change of px_per_s per column (perspective), 0 for a flat picture
    centre: float = 0.0  # the column where px_per_s holds

    def seconds(self, columns: np.ndarray) -> np.ndarray:
        """Time in seconds of picture columns (straightened picture) from its left edge.

        With perspective the scale changes linearly across the picture: px/s(x) = s (1 + k (x - c)), and
        the time is its integral, ln(1 + k (x - c)) / (s k) from column 0.
        """
        x = np.asarray(columns, dtype=float)
        k, s, c = self.scale_slope, self.px_per_s, self.centre
        if abs(k) < 1e-9:
            return x / s
        return (np.log1p(k * (x - c)) - np.log1p(k * (0.0 - c))) / (s * k)


@dataclass
class Trace:
    """One digitized strip: the signal, and where it lies in the user's picture."""

    label: str
    signal_mv: np.ndarray  # at WORKING_FS
    fs: float
    t0_s: float  # time of sample 0 from the picture's left edge, as calibrated
    path_x: np.ndarray  # the followed path in the decoded picture's pixels (at most 2000 per side), a point per column
    path_y: np.ndarray
    path_t: np.ndarray  # the time of each path point from the picture's left edge, as calibrated
    quality: float  # 0..1: coverage x smoothness of the followed path
    thickness: float
    ink_width: float = 0.0  # the line's width in pixels where it runs level (anti-aliasing included); 0: unknown

    @property
    def duration_s(self) -> float:
        return self.signal_mv.size / self.fs

    def picture_x(self, t_s: np.ndarray) -> np.ndarray:
        """Picture columns (uploaded picture) of times measured from the picture's left edge."""
        return np.interp(np.asarray(t_s, dtype=float), self.path_t, self.path_x)

    def picture_y(self, t_s: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(t_s, dtype=float), self.path_t, self.path_y)


@dataclass
class Digitized:
    """What the digitizer read from a picture."""

    width: int
    height: int
    layout: str  # "strip", "stacked", "twelve_lead"
    traces: list[Trace]
    primary: int  # index of the trace to classify with a one-lead model (lead II rhythm strip on a 12-lead)
    calibration: Calibration
    rotation_deg: float
    light_on_dark: bool
    grid_px_per_mm: float | None
    notes: list[str] = field(default_factory=list)

    @property
    def quality(self) -> float:
        return float(self.traces[self.primary].quality * max(self.calibration.confidence, 0.3) ** 0.25)

    def signal_input(self, name: str, index: int | None = None) -> SignalInput:
        """A trace as the SignalInput every recording becomes (one lead, mV, WORKING_FS)."""
        tr = self.traces[self.primary if index is None else index]
        notes = list(self.notes) + [f"Digitized from the picture: {self.calibration.description}."]
        return SignalInput(name, tr.signal_mv.astype(np.float64), tr.fs, tr.label, None, notes)


@dataclass(frozen=True)
class Pulse:
    """A calibration pulse at the start of a strip: a flat-topped step of 1 mV (usually 0.2 s wide)."""

    end_column: int  # first column of the path after the pulse (and its gap)
    height_px: float  # pixels per millivolt it shows
    width_px: float


def find_pulse(path: tracelib.Path, px_per_mm: float | None) -> Pulse | None:
    """The calibration pulse in the first quarter of a followed strip, if there is one.

    A pulse is a plateau at least 3 mm (or 1.2 % of the strip) wide whose rows stay within about a line width,
    at least 5 mm (or a quarter of the trace's range) above the level before and after it, entered and left
    by steep strokes. ECG waves do not stay that flat that high.
    """
    y = tracelib.fill_gaps(path.y)
    n = y.size
    if n < 40:
        return None
    t = path.thickness
    lo_level = float(np.median(y))
    span = float(np.percentile(y, 99.5) - np.percentile(y, 0.5))
    # a pulse at half gain is 5 mm tall; without grid, 1 mV can be a sixth of a tall ventricular beat's range
    min_height = 4 * px_per_mm if px_per_mm else 0.15 * span
    min_width = 3 * px_per_mm if px_per_mm else max(4.0, 0.012 * n)  # a 0.2 s pulse on a 10 s strip: 2 %
    region = y[: max(int(0.25 * n), 10)]
    high = region < lo_level - max(min_height, 3 * t)
    i = 0
    while i < region.size:
        if not high[i]:
            i += 1
            continue
        j = i
        while j + 1 < region.size and high[j + 1]:
            j += 1
        top = region[i: j + 1]
        # the plateau is the stretch's top level (its strokes, and a base standing above the trace, lie lower)
        plateau = float(np.median(top[top <= top.min() + max(3.0, t)]))
        flat = np.abs(top - plateau) <= max(2.0, t)  # within a line width (a photo's paper is not flat)
        start, width = _longest_run_at(flat)
        # a pulse rises and falls within a few columns (a thick, blurred or sheared line's width); an R wave
        # drawn this wide takes longer
        steep = max(4.0, 1.5 * t)
        mostly_flat = width >= top.size - 2 * steep - 2  # all but its strokes
        # at the strip's start the pulse's own base can lie above the trace's baseline, inside the same high
        # stretch: then the plateau is judged by its strokes alone
        # (a stray column or two of the trace's start may precede it)
        base_above = i <= 3 and not mostly_flat and start >= 2  # its rising stroke must be on the path
        if width >= min_width and (mostly_flat or base_above):
            if base_above:
                i, j = start, start + width - 1
                plateau = float(np.median(top[start: start + width]))
            before = y[max(0, i - 6): i]  # the level the pulse rises from: the lowest point just before it
            level = float(before.max()) if before.size else lo_level
            rise = i - _last_near(y, i, level, 2 * t)
            if rise > steep:
                i = j + 1
                continue
            after_idx = j + 1  # the falling edge ends where the trace is back at the level before the pulse
            while after_idx < n and y[after_idx] < level - 2 * t:
                after_idx += 1
            if after_idx < n and base_above:  # the base is where the falling stroke lands
                level = max(level, float(y[after_idx: after_idx + 4].max()))
            if after_idx < n and after_idx - j <= 2 * steep + 1 and level - plateau >= min_height:
                # printers leave a short gap between the pulse and the trace: the trace starts after it
                reach = max(8, int(0.04 * n), int(3 * px_per_mm) if px_per_mm else 0)
                ahead = np.flatnonzero(~np.isfinite(path.y[after_idx: after_idx + reach]))
                end = after_idx + int(ahead[-1]) + 1 if ahead.size else after_idx + 2
                return Pulse(min(n - 1, end), level - plateau, float(width))
        i = j + 1
    return None


def _last_near(y: np.ndarray, i: int, level: float, tol: float) -> int:
    """The last column before i whose row is within tol of level (-1 if none)."""
    for k in range(i - 1, -1, -1):
        if abs(y[k] - level) <= tol:
            return k
    return -1


def _longest_run_at(flags: np.ndarray) -> tuple[int, int]:
    """(start, length) of the longest run of True."""
    s, e = tracelib._runs(np.asarray(flags, dtype=bool))
    if s.size == 0:
        return 0, 0
    k = int(np.argmax(e - s))
    return int(s[k]), int(e[k] - s[k] + 1)


def _kept_columns(path: tracelib.Path, a: int, b: int) -> tracelib.Path:
    """The path over its columns [a, b)."""
    keep = (path.sample_x >= path.x_start + a) & (path.sample_x < path.x_start + b)
    return tracelib.Path(path.x_start + a, path.y[a:b], path.sample_x[keep], path.sample_y[keep], path.thickness,
                         path.coverage, path.smoothness, path.ink_width)


def without_stray_ends(path: tracelib.Path) -> tracelib.Path:
    """The path without a first or last stretch (within STRAY_END of its width) that jumps into rows the rest
    of the trace never visits: text beside the trace's start (a monitor's header, a lead label) that the
    follower took for the trace before reaching it."""
    y = path.y
    n = y.size
    found = np.flatnonzero(np.isfinite(y))
    if found.size < 20:
        return path
    reach = max(2, int(STRAY_END * n))
    mid = y[found[(found >= reach) & (found < n - reach)]]
    if mid.size < 10:
        return path
    lo, hi = np.percentile(mid, [0.5, 99.5])
    margin = 0.1 * (hi - lo) + 2 * path.thickness
    outside = np.isfinite(y) & ((y < lo - margin) | (y > hi + margin))
    a, b = 0, n
    head = found[found < reach]
    # the last stray column before the trace starts in earnest; everything found before it is stray too
    stray = head[outside[head]]
    if stray.size and outside[head[head <= stray[-1]]].all():
        a = int(stray[-1]) + 1
    tail = found[found >= n - reach]
    stray = tail[outside[tail]]
    if stray.size and outside[tail[tail >= stray[0]]].all():
        b = int(stray[0])
    return path if (a, b) == (0, n) else _kept_columns(path, a, b)


def count_spikes(y: np.ndarray) -> int:
    """QRS-like spikes along a followed path (rows per column): peaks of the deviation from the baseline
    standing out by at least 40 % of that side's range, at least 2 % of the width apart.

    Each side of the baseline is counted on its own and the larger count kept: one spike per beat (a
    biphasic QRS is not two), and a few deep beats of the other polarity (PVCs) do not hide the rest. A spike
    is narrow (under SPIKE_WIDTH of the trace's width near its tip): a strip's QRS complexes are,
    while every wave of a one- or two-second picture, its S waves and T troughs included, is broad."""
    y = tracelib.fill_gaps(y)
    if y.size < 10:
        return 0
    dev = y - np.median(y)
    spans = [float(np.percentile(side, 99.5)) for side in (dev, -dev)]
    counts = [0]
    for side, span in zip((dev, -dev), spans):
        if span > 0:  # a side that barely leaves the baseline counts no wobble as beats
            prominence = max(0.4 * span, 0.25 * max(spans))
            # width a quarter of the prominence below the tip: a neighbouring deep beat widens it no further
            counts.append(sps.find_peaks(side, prominence=prominence, distance=max(2, int(0.02 * y.size)),
                                         width=(None, SPIKE_WIDTH * y.size), rel_height=0.25)[0].size)
    return int(max(counts))


def _guess_span(width_px: int, height_px: int, trace_px: int, layout: str = "strip",
                spikes: int | None = None, shape: np.ndarray | None = None) -> tuple[float, str]:
    if layout == "twelve_lead":
        return 10.0, "no grid found and no stated span: the 12-lead page's rhythm strip taken for the standard 10 s"
    # the beats drawn tell a strip from a beat picture better than the picture's shape does
    if spikes is not None and spikes >= STRIP_SPIKES:
        return 10.0, f"no grid and no stated span: {spikes} beats drawn, taken for a 10 s strip"
    # three beats in a 10 s strip would be 18 a minute; in a 1.6 s picture they are 110
    if spikes is not None and spikes <= BEAT_SPIKES:
        why = f"a beat picture ({spikes} beat{'s' if spikes != 1 else ''} drawn)"
    elif width_px >= STRIP_ASPECT * height_px:
        return 10.0, "no grid and no stated span: taken for a 10 s strip from its shape"
    else:
        why = "a beat picture from its shape"
    read = spanlib.lone_beat_span(-shape) if shape is not None else None
    if read is None:
        return PROJECT_BEAT_S, f"no grid and no stated span: taken for {why} of {PROJECT_BEAT_S:g} s"
    span, estimate = read
    return span, (f"no grid and no stated span: taken for {why}; its span estimated from the beat's shape at "
                  f"{estimate:.2f} s" + (f", read as {span:g} s" if span != estimate else ""))


def calibrate(period: gridlib.GridPeriod | None, trace_px: float, width: int, height: int,
              span_s: float | None, layout: str = "strip", spikes: int | None = None,
              shape: np.ndarray | None = None) -> Calibration:
    """Pixels per second and per millivolt from the grid, a stated span, or a guess (shape: the followed
    path's rows, from which a lone beat's span is estimated)."""
    if span_s is not None:
        if not np.isfinite(span_s) or not 0.2 <= span_s <= 60.0:
            raise DigitizeError(f"The stated span must be between 0.2 and 60 seconds, not {span_s:g}.")
        px_s = trace_px / span_s
        credible = period is not None and period.large_boxes and period.confidence >= 0.5
        px_mv = PAPER_GAIN_MM_MV * period.px_per_mm if credible else None
        return Calibration("span", px_s, px_mv, 0.9,
                           f"stated span {span_s:g} s over the trace's {trace_px:.0f} px"
                           + ("" if px_mv else "; amplitude relative"))
    if period is not None and period.confidence >= MIN_GRID_CONFIDENCE:
        px_mm = period.px_per_mm
        return Calibration("grid", PAPER_SPEED_MM_S * px_mm, PAPER_GAIN_MM_MV * px_mm, period.confidence,
                           f"ECG grid, small box {px_mm:.2f} px = 1 mm, read at {PAPER_SPEED_MM_S:g} mm/s and "
                           f"{PAPER_GAIN_MM_MV:g} mm/mV")
    span, why = _guess_span(width, height, trace_px, layout, spikes, shape)
    return Calibration("assumed", trace_px / span, None, 0.3, f"{why} (state the span if it is not)")


def _with_perspective(cal: Calibration, line_ink: np.ndarray, period: gridlib.GridPeriod,
                      notes: list[str]) -> Calibration:
    """The grid's period measured across the picture: a photo taken at an angle shows a scale that changes
    from left to right, which a single period would turn into a drift of the time axis."""
    trend = gridlib.period_trend(line_ink, period.px_per_mm)
    if trend is None:
        return cal
    slope, centre_period, centre = trend
    if abs(slope) * line_ink.shape[1] < 0.01:  # under 1 % across the picture: a flat picture
        return cal
    notes.append(f"Perspective: the grid's scale changes by {100 * slope * line_ink.shape[1]:+.1f} % from left to "
                 "right; the time axis follows it.")
    px_s = PAPER_SPEED_MM_S * centre_period
    return replace(cal, px_per_s=px_s, scale_slope=slope, centre=centre)


def _to_picture(xs: np.ndarray, ys: np.ndarray, inverse: np.ndarray | None,
                shear: gridlib.ShearField | None = None) -> tuple[np.ndarray, np.ndarray]:
    if shear is not None:  # undone last, so redone first
        xs = shear.to_picture(xs, ys)
    if inverse is None:
        return xs, ys
    pts = np.stack([xs, ys, np.ones_like(xs)], axis=0)
    out = inverse @ pts
    return out[0], out[1]


def _resample(x_cols: np.ndarray, y_rows: np.ndarray, baseline: float, cal: Calibration) -> np.ndarray:
    """Samples (picture column, row) -> millivolts at WORKING_FS from the first column on (linear)."""
    found = np.isfinite(y_rows)
    x_cols, y_rows = x_cols[found], y_rows[found]
    times = cal.seconds(x_cols)
    t = times[0] + np.arange(int(np.floor((times[-1] - times[0]) * WORKING_FS)) + 1) / WORKING_FS
    rows = np.interp(t, times, y_rows)
    if cal.px_per_mv:
        return -(rows - baseline) / cal.px_per_mv
    v = -(rows - baseline)
    lo, hi = np.percentile(v, [1, 99]) if v.size else (0.0, 1.0)
    return v * (UNRELATIVE_RANGE_MV / max(hi - lo, 1e-6))


def digitize(data: bytes, span_s: float | None = None, expect: str = "auto",
             decoded: tuple[np.ndarray, list[str]] | None = None) -> Digitized:
    """Picture bytes -> Digitized, or DigitizeError with a one-line reason.

    span_s: the seconds the trace's width spans, when the picture has no grid (or to override it).
    expect: "auto", "beat" (one trace expected) or "strip".
    decoded: `decode_rgb_with_notes(data)` when the caller has it already (the page also draws the picture).
    """
    try:
        rgb, decode_notes = decoded if decoded is not None else decode_rgb_with_notes(data)
    except ImageInputError as exc:
        raise DigitizeError(str(exc)) from None
    h, w = rgb.shape[:2]
    notes = list(decode_notes)
    g = gridlib.ground(rgb)
    period = gridlib.grid_period(g.line_ink)
    angle, gain = gridlib.skew_angle(g.line_ink)
    inverse = None
    if angle:
        fill = tuple(float(c) for c in np.median(rgb.reshape(-1, 3), axis=0))
        turned = gridlib.rotate(rgb, angle, fill)
        g2 = gridlib.ground(turned, desk=gridlib.warp_mask(g.desk, lambda m, f: gridlib.rotate(m, angle, f)))
        period2 = gridlib.grid_period(g2.line_ink)
        # a tilt is trusted when straightening makes the rows much sharper (grid lines, axes, a long baseline
        # lining up), or sharpens a grid that was already found
        confirmed = period2 is not None and period is not None and period2.confidence > period.confidence + 0.1
        if gain >= MIN_SKEW_GAIN or confirmed:
            rgb, g, period = turned, g2, period2
            m = np.vstack([gridlib.rotation_matrix((h, w), angle), [0, 0, 1]])
            inverse = np.linalg.inv(m)[:2]
            notes.append(f"Straightened by {angle:+.1f} degrees.")
        else:
            angle = 0.0
    shear = None
    # vertical grid lines tilted apart from the horizontal ones: a photo at an angle (a screenshot is flat)
    if period is not None and not g.light_on_dark:
        shear = gridlib.shear_field(g.line_ink)
        if shear is not None:
            fill = tuple(float(c) for c in np.median(rgb.reshape(-1, 3), axis=0))
            rgb = shear.straighten(rgb, fill)
            g = gridlib.ground(rgb, desk=gridlib.warp_mask(g.desk, shear.straighten))
            period = gridlib.grid_period(g.line_ink) or period
            lo, hi = float(shear.tilt(0)), float(shear.tilt(w - 1))
            notes.append(f"Vertical grid lines tilted by {np.degrees(np.arctan(lo)):+.1f} to "
                         f"{np.degrees(np.arctan(hi)):+.1f} degrees across the picture: straightened.")
    ink = g.trace_ink
    clean, mask, strips, paths = _follow_strips(ink, cap=1.0)
    if period is None and (not paths or paths[0] is None or paths[0].coverage < 0.95
                           or paths[0].y.size < 0.9 * _extent(mask, strips[0])):
        # without a grid there is no coloured grid to fade: a thin coloured trace (a plot's blue line) that
        # breaks up in the grid-fading ink is read from luminance too, where its anti-aliased edges stay ink
        lum_ink = np.maximum(g.trace_ink, g.line_ink)
        retry = _follow_strips(lum_ink, cap=1.0)
        if retry[3] and retry[3][0] is not None and _followed(retry[3][0]) > 1.05 * _followed(
                paths[0] if paths else None):
            ink, (clean, mask, strips, paths) = lum_ink, retry
    if paths and paths[0] is not None and (paths[0].coverage < 0.8
                                           or paths[0].y.size < 0.9 * _extent(mask, strips[0])):
        # a flat stretch of the trace (a long pause) can be as straight as a grid line: retry taking less away.
        # Taken away, it leaves gaps in the path or cuts the path short of the strip's ink
        retry = _follow_strips(ink, cap=LINE_CAP)
        # (a longer path counts only with the same rows of trace: lines left in can split a plot into bands)
        if retry[3] and retry[3][0] is not None and (
                retry[3][0].coverage > paths[0].coverage + 0.1
                or (len(retry[2]) == len(strips) and retry[3][0].coverage >= paths[0].coverage - 0.02
                    and _followed(retry[3][0]) > 1.1 * _followed(paths[0]))):
            clean, mask, strips, paths = retry
    if not strips:
        raise DigitizeError("No ECG trace was found in the picture.")
    if len(strips) > tracelib.MAX_BANDS:
        raise DigitizeError(f"{len(strips)} rows of traces were found: this layout is not understood "
                            "(a rhythm strip, 2-3 stacked strips or a standard 12-lead page are).")
    if expect == "beat" and len(strips) > 1:
        raise DigitizeError(f"{len(strips)} traces were found where one beat was expected.")
    layout = "strip" if len(strips) == 1 else "stacked" if len(strips) <= 3 else "twelve_lead"
    if layout == "twelve_lead":
        primary = len(paths) - 1  # the full-width lead-II rhythm strip at the bottom
        full = max((p.y.size for p in paths if p), default=0)
        if paths[primary] is None or paths[primary].y.size < 0.7 * full:
            raise DigitizeError("This looks like a 12-lead page but no full-width lead-II rhythm strip was found "
                                "at its bottom.")
        notes.append(f"12-lead layout ({len(strips)} rows): the bottom rhythm strip (lead II) is read.")
    else:
        primary = 0
        if layout == "stacked":
            notes.append(f"{len(strips)} stacked strips: the top one is classified.")
    if paths[primary] is None:
        raise DigitizeError("No ECG trace could be followed in the picture.")
    px_mm = period.px_per_mm if period and period.confidence >= MIN_GRID_CONFIDENCE else None
    paths = [without_stray_ends(p) if p is not None else None for p in paths]
    pulses = [find_pulse(p, px_mm) if p is not None else None for p in paths]
    uncut = paths
    paths = [_kept_columns(p, q.end_column, p.y.size) if q is not None else p for p, q in zip(paths, pulses)]
    pulse = pulses[primary]
    main = paths[primary]
    top, _, bottom = strips[primary]
    density = float(mask[top:bottom, main.x_start: main.x_start + main.y.size].mean())
    excess = _ink_excess(mask, strips[primary], main)
    if density > MAX_INK_DENSITY and excess > MAX_INK_EXCESS:
        raise DigitizeError(f"Ink covers {100 * density:.0f} % of the picture around the trace, far more than a "
                            "drawn ECG line does (a photograph or a texture?): no ECG trace was found.")
    tall = _tall_share(mask, strips[primary], main)
    if tall > MAX_TALL_SHARE:
        raise DigitizeError("The picture holds filled areas rather than a line trace (a chart or a photograph?): "
                            "no ECG trace was found.")
    if main.coverage < MIN_COVERAGE:
        raise DigitizeError(f"The trace could be followed over only {100 * main.coverage:.0f} % of its width: "
                            "the picture is too faint, broken or busy to digitize.")
    # a drawn line's ends stick out half its width beyond its first and last samples
    trace_px = max(main.y.size - min(main.ink_width, main.thickness), 1.0)
    cal = calibrate(period, trace_px, w, h, span_s, layout, count_spikes(main.y), tracelib.fill_gaps(main.y))
    if cal.method == "grid" and not g.light_on_dark:
        cal = _with_perspective(cal, g.line_ink, period, notes)
    if g.light_on_dark and cal.px_per_mv and pulse is None:
        # a monitor's grid times the trace, but its gain is whatever the screen is set to (shown as text,
        # x0.5 or x2, which is not read): amplitude relative unless a calibration pulse shows it
        cal = replace(cal, px_per_mv=None, description=cal.description.replace(
            f" and {PAPER_GAIN_MM_MV:g} mm/mV", "") + "; amplitude relative (a screen's gain is its own setting)")
    if pulse is not None:
        gain = pulse.height_px / cal.px_per_mv if cal.px_per_mv else None
        standard = gain is None or min(abs(gain / std - 1.0) for std in STANDARD_GAINS) <= 0.08
        if not standard:  # neither 10 mm/mV nor a standard gain: not a pulse the grid can be read with
            pulse = None
            paths[primary] = uncut[primary]
        elif gain is None or abs(gain - 1.0) > 0.08:  # the pulse says otherwise (or there is no grid)
            cal = replace(cal, px_per_mv=pulse.height_px, description=cal.description.replace(
                "; amplitude relative", "") + f"; amplitude from the 1 mV calibration pulse ({pulse.height_px:.0f} px)")
        else:
            cal = replace(cal, description=cal.description + " (the 1 mV calibration pulse agrees)")
    if pulse is not None:
        notes.append("A calibration pulse at the start of the strip was recognised and left out of the signal.")
    traces = []
    for k, p in enumerate(paths):
        if p is None:
            continue
        y = tracelib.fill_gaps(p.y)
        baseline = float(np.median(y))
        sig = _resample(p.sample_x, p.sample_y, baseline, cal)
        px, py = _to_picture(p.columns.astype(float), y, inverse, shear)
        path_t = cal.seconds(p.columns.astype(float))
        label = ("II (rhythm strip)" if layout == "twelve_lead" and k == primary
                 else f"strip {k + 1}" if layout != "strip" else "picture trace")
        t0 = float(cal.seconds(np.array([p.sample_x[np.isfinite(p.sample_y)][0]]))[0])
        tr = Trace(label, sig, float(WORKING_FS), t0, px, py, path_t, float(p.coverage * p.smoothness), p.thickness,
                   p.ink_width)
        traces.append(tr)
        if k == primary:
            primary_index = len(traces) - 1
    return Digitized(w, h, layout, traces, primary_index, cal, angle, g.light_on_dark,
                     period.px_per_mm if period else None, notes)


def _follow_strips(trace_ink: np.ndarray, cap: float):
    """Lines removed (at most `cap` of ink), the trace mask, its strips and one followed path per strip."""
    clean = gridlib.remove_lines(trace_ink, cap=cap)
    mask = tracelib.trace_mask(clean)
    strips = tracelib.bands(mask)
    if len(strips) > tracelib.MAX_BANDS:
        return clean, mask, strips, []
    paths = [tracelib.follow(mask, clean, (top, bottom), base) for top, base, bottom in strips]
    if len(strips) > 1:
        strips, paths = _one_per_trace(mask, clean, strips, paths)
    return clean, mask, strips, paths


def _one_per_trace(mask: np.ndarray, clean: np.ndarray, strips: list, paths: list) -> tuple[list, list]:
    """Rows of trace that are not strips of their own, folded into the strips beside them and followed again:
    a row much shorter than the longest (a label, a pulse's top), and two rows side by side rather than one
    above the other (a pulse beside its trace, one trace whose baseline wanders from one level to another)."""
    longest = max((p.y.size for p in paths if p is not None), default=0)
    keep = [p is not None and p.y.size >= MIN_STRIP_SHARE * longest for p in paths]
    kept = [k for k, ok in enumerate(keep) if ok]
    lines = _line_labels(mask) if len(kept) > 1 else None
    merged: list[list[int]] = []
    for k in kept:
        if merged:
            a, b = paths[merged[-1][-1]], paths[k]
            overlap = min(a.x_start + a.y.size, b.x_start + b.y.size) - max(a.x_start, b.x_start)
            shorter = min(a.y.size, b.y.size)
            if overlap < MAX_SIDE_OVERLAP * shorter or (
                    overlap < MIN_STACKED_OVERLAP * shorter and _line_of(lines, a) == _line_of(lines, b) != 0):
                merged[-1].append(k)
                continue
        merged.append([k])
    if len(merged) == len(strips) or not merged:
        return strips, paths
    # each group keeps the baseline of its longest row
    bases = [strips[max(g, key=lambda k: paths[k].y.size)][1] for g in merged]
    strips = tracelib.around(bases, mask.shape[0])
    return strips, [tracelib.follow(mask, clean, (top, bottom), base) for top, base, bottom in strips]


def _line_labels(mask: np.ndarray) -> np.ndarray:
    """Connected lines of trace pixels (gaps of a pixel bridged), labelled from 1; 0 is background."""
    bridged = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8))
    return cv2.connectedComponents(bridged, connectivity=8)[1]


def _line_of(labels: np.ndarray, path: tracelib.Path) -> int:
    """The connected line most of a followed path runs on (0: none)."""
    cols = path.columns
    ok = np.isfinite(path.y)
    rows = np.clip(np.round(path.y[ok]).astype(int), 0, labels.shape[0] - 1)
    on = labels[rows, np.clip(cols[ok], 0, labels.shape[1] - 1)]
    on = on[on > 0]
    return int(np.bincount(on).argmax()) if on.size else 0


def _extent(mask: np.ndarray, strip: tuple[int, int, int]) -> int:
    """Columns from the first to the last holding trace pixels in a strip."""
    cols = np.flatnonzero(mask[strip[0]:strip[2]].any(axis=0))
    return int(cols[-1] - cols[0] + 1) if cols.size else 0


def _followed(path: tracelib.Path | None) -> float:
    """Columns of trace a path holds."""
    return 0.0 if path is None else path.y.size * path.coverage


def _on_path_share(mask: np.ndarray, strip: tuple[int, int, int], path: tracelib.Path) -> float:
    """Share of the strip's trace pixels that lie on the followed path's runs (within a line width): high for
    an ECG (the ink is the trace), low for a photograph or a drawing whose ink is everywhere."""
    top, _, bottom = strip
    sub = mask[top:bottom, path.x_start: path.x_start + path.y.size]
    total = int(sub.sum())
    if total == 0:
        return 0.0
    rows = np.arange(sub.shape[0])[:, None]
    y = tracelib.fill_gaps(path.y) - top
    span = max(6.0, 3.0 * path.thickness)
    near = np.abs(rows - y[None, :]) <= span
    return float((sub & near).sum() / total)


def _ink_excess(mask: np.ndarray, strip: tuple[int, int, int], path: tracelib.Path) -> float:
    """Trace pixels in the strip over the pixels the followed line covers (each column: its rise to the next
    plus one line width). About 1 for a drawn ECG however densely it is drawn; a photograph or texture has
    ink everywhere else too."""
    top, _, bottom = strip
    sub = mask[top:bottom, path.x_start: path.x_start + path.y.size]
    y = tracelib.fill_gaps(path.y)
    if not np.isfinite(y).any():
        return float("inf")
    line = np.abs(np.diff(y, append=y[-1])) + path.thickness
    return float(sub.sum() / max(float(np.nansum(line)), 1.0))


def _tall_share(mask: np.ndarray, strip: tuple[int, int, int], path: tracelib.Path) -> float:
    """Share of the path's columns whose trace run in the strip is many line widths tall."""
    top, _, bottom = strip
    sub = mask[top:bottom, path.x_start: path.x_start + path.y.size]
    heights = sub.sum(axis=0)
    found = heights > 0
    if not found.any():
        return 0.0
    return float(np.mean(heights[found] > 6 * path.thickness + 4))
