"""Realistic ECG pictures drawn from real signals, with exact ground truth: the digitizer's test input.

Each picture is drawn from a known signal (mV) at a known scale, so a digitizer's output can be compared
sample by sample. Styles imitate ECG paper (red, pink, green, grey grids; calibration pulse; lead labels;
printed header), a plain trace, a patient-monitor screenshot, a scientific plot, a thin grey single-beat
picture, and the artefacts of scans and phone photos (JPEG, rotation, perspective, lighting, blur, noise).

Truth convention: pixel centres lie at integer (column, row) coordinates. Before any rotation or perspective
warp, sample i of `Drawn.signal` is drawn at (x0 + i * px_per_s / fs, baseline_y - v[i] * px_per_mv);
`Drawn.homography` maps those coordinates to the final picture (identity unless rotated or photographed).

Deterministic given the seed; pure numpy / OpenCV / Pillow; writes nothing except through the CLI:
    python -m ecg_core.picture.synth --mitdb /work/shared/data/mitdb --out DIR [--per-style N] [--seed S]
"""

from __future__ import annotations

import argparse
import io
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import wfdb
from PIL import Image, ImageDraw, ImageFont

from ecg_core.data.dataset import DS2
from ecg_core.data.drawn import DRAWN_BEAT_SYMBOLS

STYLES: tuple[str, ...] = ("paper_red", "paper_pink", "paper_green", "paper_grey", "no_grid", "monitor",
                           "plot_axes", "seed_thin", "jpeg", "rotated", "photo")
LAYOUTS: tuple[str, ...] = ("strip", "beat", "stacked", "twelve_lead")
DS2_RECORDS: tuple[str, ...] = tuple(DS2)  # de Chazal 2004 test set (ecg_core.data.dataset.DS2)
PAPER_STYLES: tuple[str, ...] = ("paper_red", "paper_pink", "paper_green", "paper_grey")
TWELVE_COLUMNS: tuple[tuple[str, str, str], ...] = (("I", "II", "III"), ("aVR", "aVL", "aVF"),
                                                    ("V1", "V2", "V3"), ("V4", "V5", "V6"))
TWELVE_COLUMN_S = 2.5
MM_PER_S, MM_PER_MV = 25.0, 10.0
THIN_SIZE = (192, 128)  # (width, height) of every seed_thin picture
_SS = 4  # supersampling factor of trace masks
_SHIFT = 4  # OpenCV fixed-point bits
# 1 mV x 0.2 s calibration pulse, (mm after the trace start, mm above the baseline)
_CAL_MM = ((-9.0, 0.0), (-7.5, 0.0), (-7.5, 10.0), (-2.5, 10.0), (-2.5, 0.0), (-1.0, 0.0))
_CAL_LEFT_MM = 10.0
# paper: background, minor (1 mm) line and major (5 mm) line colours
_PAPER = {
    "paper_red": ((255, 251, 248), (246, 196, 190), (226, 110, 100)),
    "paper_pink": ((255, 242, 246), (247, 200, 215), (228, 128, 165)),
    "paper_green": ((248, 254, 248), (190, 228, 192), (100, 175, 112)),
    "paper_grey": ((255, 255, 255), (222, 222, 222), (160, 160, 160)),
}
_MONITOR_TRACE = ((60, 235, 80), (240, 230, 70), (70, 220, 240))
_PLOT_TRACE = ((31, 119, 180), (0, 0, 255), (0, 70, 160), (40, 90, 200))
Colour = tuple[int, int, int]


@dataclass
class Drawn:
    """One picture and the exact truth of what it shows (see the module docstring for the mapping)."""

    data: bytes  # the encoded picture (PNG, or JPEG for jpeg/photo styles)
    style: str
    fs: float  # sampling rate of `signal`
    signal: np.ndarray  # the true signal drawn (mV), one lead (the rhythm lead for multi-lead layouts)
    r_peaks: np.ndarray  # sample indices into `signal` of the annotated beats inside the drawing
    symbols: np.ndarray  # their MIT-BIH symbols (object array of str)
    px_per_s: float  # true horizontal scale of the drawn signal (before rotation/perspective)
    px_per_mv: float  # true vertical scale
    x0: float  # picture column of signal sample 0 (before rotation/perspective)
    baseline_y: float  # picture row of 0 mV of the (rhythm) trace (before rotation/perspective)
    rotation_deg: float  # rotation applied, counter-clockwise as seen (photo: the warped baseline's angle)
    grid: bool  # whether an ECG grid is drawn
    layout: str  # "strip", "beat", "stacked", "twelve_lead"
    width: int = 0  # final picture size (pixels)
    height: int = 0
    px_per_mm: float = float("nan")  # mm scale of paper and monitor pictures (the grid's 1 mm period)
    homography: np.ndarray = field(default_factory=lambda: np.eye(3))  # pre-warp (x, y, 1) -> final picture
    jpeg_quality: int = 0  # 0: PNG
    lead: str = "II"  # printed label of the truth trace
    offset: int = 0  # index of the input signal where `signal` starts (beat layout: the window's start)

    def points(self, idx: np.ndarray | None = None, warped: bool = True) -> np.ndarray:
        """(n, 2) picture (x, y) of samples idx (default all), through the homography unless warped=False."""
        i = np.arange(self.signal.size) if idx is None else np.asarray(idx)
        xy = np.stack([self.x0 + i * self.px_per_s / self.fs, self.baseline_y - self.signal[i] * self.px_per_mv], 1)
        return apply_homography(self.homography, xy) if warped else xy

    def decode(self) -> np.ndarray:
        """The picture as an RGB uint8 array."""
        return np.asarray(Image.open(io.BytesIO(self.data)).convert("RGB"))

    def sidecar(self) -> dict[str, np.ndarray]:
        """The truth as arrays, for np.savez (symbols as str, loadable without pickle)."""
        return {"signal": self.signal, "fs": np.float64(self.fs), "r_peaks": self.r_peaks,
                "symbols": self.symbols.astype(str), "px_per_s": np.float64(self.px_per_s),
                "px_per_mv": np.float64(self.px_per_mv), "x0": np.float64(self.x0),
                "baseline_y": np.float64(self.baseline_y), "rotation_deg": np.float64(self.rotation_deg),
                "homography": self.homography, "px_per_mm": np.float64(self.px_per_mm),
                "grid": np.bool_(self.grid), "style": np.str_(self.style), "layout": np.str_(self.layout),
                "width": np.int64(self.width), "height": np.int64(self.height),
                "jpeg_quality": np.int64(self.jpeg_quality), "lead": np.str_(self.lead)}


@dataclass
class Excerpt:
    """A real segment of one mitdb record: MLII (mV, wfdb physical units) at the record's rate, its beats."""

    record: str
    start: int  # first sample, in the record
    fs: float
    signal: np.ndarray  # MLII (mV)
    r_peaks: np.ndarray  # beat annotation samples, indices into signal
    symbols: np.ndarray  # object array of str
    second: np.ndarray  # the record's other lead (mV)
    second_lead: str  # its name (V1, V2, V4, V5)
    lead: str = "MLII"


@dataclass
class _Seg:
    values: np.ndarray
    t0: float  # seconds after the row start
    label: str


@dataclass
class _Row:
    segs: list[_Seg]
    duration: float  # seconds

    @property
    def lo(self) -> float:
        return float(min(s.values.min() for s in self.segs))

    @property
    def hi(self) -> float:
        return float(max(s.values.max() for s in self.segs))


@dataclass
class _Geo:
    """Where the rows went: per-row trace start column, baseline row and vertical scale."""

    x_start: float
    px_per_s: float
    baselines: list[float]
    px_per_mv: list[float]
    px_per_mm: float = float("nan")
    grid: bool = False
    background: Colour = (255, 255, 255)


@dataclass
class _Info:
    """What the picture's texts say."""

    layout: str
    hr: int
    px_per_mm: tuple[float, float] | None = None  # overrides the style's seeded scale range


def apply_homography(h: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Map (n, 2) points through a 3x3 homography."""
    p = np.c_[np.asarray(xy, float), np.ones(len(xy))] @ np.asarray(h, float).T
    return p[:, :2] / p[:, 2:3]


# ---------------------------------------------------------------------------------------------- primitives

@lru_cache(maxsize=64)
def _font(size: float) -> ImageFont.FreeTypeFont:
    """Pillow's bundled font (the same on every machine)."""
    return ImageFont.load_default(size=max(6.0, round(size * 2) / 2))


def _jitter(c: Colour, rng: np.random.Generator, amount: float) -> Colour:
    """Colour c made lighter or darker by up to `amount`, its hue kept (a few levels of tint noise)."""
    shift = rng.uniform(-amount, amount)
    return tuple(int(np.clip(v + shift + rng.uniform(-2, 2), 0, 255)) for v in c)


def _coverage(coords: np.ndarray, origin: float, period: float, width: float) -> np.ndarray:
    """Fraction of each pixel [c - 0.5, c + 0.5] covered by lines of `width` every `period` from origin."""
    d = np.abs((coords - origin + period / 2) % period - period / 2)
    return np.clip(np.minimum(d + 0.5, width / 2) - np.maximum(d - 0.5, -width / 2), 0.0, 1.0)


def _blend(img: np.ndarray, alpha: np.ndarray, colour: Sequence[float]) -> None:
    """img = img * (1 - alpha) + colour * alpha, in place (img float32 HxWx3, alpha HxW)."""
    a = alpha[..., None]
    img *= 1.0 - a
    img += a * np.asarray(colour, np.float32)


def _grid(img: np.ndarray, ppm: float, origin: tuple[float, float], minor: tuple[Colour, float],
          major: tuple[Colour, float], top: int = 0, every_mm: tuple[int, ...] = (1, 5)) -> None:
    """Draw a mm grid (anti-aliased, sub-pixel exact) on img rows top.. ; minor/major: (colour, line width)."""
    h, w = img.shape[:2]
    xs, ys = np.arange(w, dtype=np.float64), np.arange(top, h, dtype=np.float64)
    for (colour, width), step in zip((minor, major), every_mm):
        if width <= 0:
            continue
        cx = _coverage(xs, origin[0], step * ppm, width)
        cy = _coverage(ys, origin[1], step * ppm, width)
        alpha = 1.0 - (1.0 - cx[None, :]) * (1.0 - cy[:, None])
        _blend(img[top:], alpha.astype(np.float32), colour)


def _trace_mask(shape: tuple[int, int], lines: list[np.ndarray], width: float) -> np.ndarray:
    """Anti-aliased coverage (HxW float32 0..1) of polylines (each (n, 2) float x, y) of `width` pixels."""
    h, w = shape
    big = np.zeros((h * _SS, w * _SS), np.uint8)
    pts = [np.round((p * _SS + (_SS - 1) / 2) * (1 << _SHIFT)).astype(np.int32) for p in lines if len(p)]
    cv2.polylines(big, pts, False, 255, max(1, round(width * _SS)), cv2.LINE_AA, _SHIFT)
    return cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _ink(img: np.ndarray, lines: list[np.ndarray], width: float, colour: Colour, glow: float = 0.0) -> None:
    """Draw polylines onto img (float32) in colour; glow > 0 adds a soft halo (monitor phosphor)."""
    mask = _trace_mask(img.shape[:2], lines, width)
    if glow:
        _blend(img, np.clip(cv2.GaussianBlur(mask, (0, 0), 1.6) * glow, 0, 1), colour)
    _blend(img, mask, colour)


def _text(img: np.ndarray, items: list[tuple]) -> np.ndarray:
    """Print texts (x, y, text, size, colour, anchor[, vertical]) with Pillow; returns the new float image."""
    if not items:
        return img
    pil = Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for x, y, text, size, colour, anchor, *vertical in items:
        if vertical and vertical[0]:
            box = draw.textbbox((0, 0), text, font=_font(size), anchor="lt")
            tile = Image.new("L", (box[2] + 2, box[3] + 2), 0)
            ImageDraw.Draw(tile).text((1, 1), text, fill=255, font=_font(size), anchor="lt")
            tile = tile.transpose(Image.Transpose.ROTATE_90)
            pil.paste(Image.new("RGB", tile.size, colour), (int(x - tile.size[0] / 2), int(y - tile.size[1] / 2)),
                      tile)
        else:
            draw.text((x, y), text, fill=colour, font=_font(size), anchor=anchor)
    return np.asarray(pil).astype(np.float32)


def _segment_lines(rows: list[_Row], fs: float, geo: _Geo) -> list[list[np.ndarray]]:
    """Per row, the (n, 2) polylines of its segments under the geometry."""
    out = []
    for row, base, gain in zip(rows, geo.baselines, geo.px_per_mv):
        out.append([np.stack([geo.x_start + (s.t0 + np.arange(s.values.size) / fs) * geo.px_per_s,
                              base - s.values * gain], 1) for s in row.segs])
    return out


def _calibration(x_start: float, baseline: float, ppm: float) -> np.ndarray:
    """The 1 mV x 0.2 s calibration pulse left of a row's trace start."""
    return np.array([(x_start + x * ppm, baseline - y * ppm) for x, y in _CAL_MM])


def _hr_text(r_peaks: np.ndarray, fs: float, rng: np.random.Generator) -> int:
    if r_peaks.size >= 2:
        return int(round(60.0 * fs / float(np.median(np.diff(r_peaks)))))
    return int(rng.integers(60, 100))


def _timestamp(rng: np.random.Generator) -> str:
    return (f"{rng.integers(2016, 2026)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d} "
            f"{rng.integers(0, 24):02d}:{rng.integers(0, 60):02d}:{rng.integers(0, 60):02d}")


def _nice_ticks(lo: float, hi: float, target: int) -> tuple[np.ndarray, int]:
    """Round tick values in [lo, hi] (1-2-2.5-5 steps) and the decimals their labels need."""
    raw = (hi - lo) / max(target, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw * 0.999)
    ticks = np.arange(math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9) + 1) * step
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) + (1 if round(step / mag, 3) == 2.5 else 0)
    return ticks, decimals


def _fmt(v: float, decimals: int) -> str:
    s = f"{v:.{decimals}f}"
    return "0" + ("." + "0" * decimals if decimals else "") if float(s) == 0 else s


# ---------------------------------------------------------------------------------------------- families

def _paper(rows: list[_Row], fs: float, info: _Info, rng: np.random.Generator,
           colours: tuple[Colour, Colour, Colour] | None) -> tuple[np.ndarray, _Geo]:
    """ECG paper at 25 mm/s and 10 mm/mV (colours None: plain white, no grid)."""
    beat, twelve = info.layout == "beat", info.layout == "twelve_lead"
    ppm = rng.uniform(*(info.px_per_mm or ((5.0, 10.0) if beat else (4.0, 8.0))))
    calib = rng.random() < (0.4 if beat else 0.85)
    header = not beat and rng.random() < (0.9 if twelve else 0.6)
    labels = len(rows) > 1 or rng.random() < (0.5 if beat else 0.9)
    pad = rng.uniform(2.0, 4.0) if beat else rng.uniform(3.0, 6.0)
    left = _CAL_LEFT_MM + rng.uniform(0, 3) if calib else rng.uniform(1.5, 5)
    top = rng.uniform(9, 12) if header else rng.uniform(0.5, 2)
    above = [max(r.hi, 1.0 if calib else 0.0, 0.0) * MM_PER_MV + pad for r in rows]
    below = [max(-r.lo, 0.0) * MM_PER_MV + pad for r in rows]
    gaps = [below[k - 1] + above[k] for k in range(1, len(rows))]
    pitch = float(np.clip(max(gaps, default=0.0), 25.0, 40.0))
    base_mm = [top + above[0]]
    for g in gaps:
        base_mm.append(base_mm[-1] + (pitch if twelve else max(g, 15.0)))
    width_mm = left + max(r.duration for r in rows) * MM_PER_S + rng.uniform(1.5, 6)
    height_mm = base_mm[-1] + below[-1] + rng.uniform(0.5, 3)
    w, h = math.ceil(width_mm * ppm), math.ceil(height_mm * ppm)
    grid = colours is not None
    bg_c, minor_c, major_c = colours or ((255, 255, 255),) * 3
    bg = _jitter(bg_c, rng, 3) if grid else _jitter((252, 252, 252), rng, 3)
    img = np.empty((h, w, 3), np.float32)
    img[:] = bg
    if grid:
        wmin = float(np.clip(rng.uniform(0.09, 0.16) * ppm, 0.6, 1.1))
        grid_top = int(top * ppm * 0.6) if header and rng.random() < 0.4 else 0
        _grid(img, ppm, tuple(rng.uniform(0, 5 * ppm, 2)), (_jitter(minor_c, rng, 8), wmin),
              (_jitter(major_c, rng, 8), wmin * rng.uniform(1.4, 2.2)), top=grid_top)
    geo = _Geo(left * ppm, MM_PER_S * ppm, [b * ppm for b in base_mm], [MM_PER_MV * ppm] * len(rows), ppm, grid, bg)
    ink = (int(rng.integers(10, 45)),) * 3 if rng.random() < 0.7 else _jitter((25, 35, 110), rng, 15)
    texts = []
    if header:
        size, dark = rng.uniform(2.3, 3.1) * ppm, (int(rng.integers(20, 70)),) * 3
        y = rng.uniform(1.2, 3) * ppm
        texts.append((rng.uniform(1.5, 4) * ppm, y, "25 mm/s   10 mm/mV   0.05-150 Hz   50 Hz", size, dark, "lt"))
        right = _timestamp(rng) + (f"   HR {info.hr} bpm" if twelve or rng.random() < 0.5 else "")
        texts.append((w - rng.uniform(1.5, 4) * ppm, y, right, size, dark, "rt"))
        if twelve:
            texts.append((rng.uniform(1.5, 4) * ppm, y + size * 1.3, f"ID {rng.integers(10**6, 10**7)}   12-lead",
                          size, dark, "lt"))
    if labels:
        size, up = rng.uniform(2.8, 4.0) * ppm, rng.uniform(5, 8) * ppm
        for row, base in zip(rows, geo.baselines):
            for s in row.segs:
                texts.append((geo.x_start + s.t0 * geo.px_per_s + 0.8 * ppm, base - up, s.label, size, ink, "ls"))
    img = _text(img, texts)
    lines = [ln for row in _segment_lines(rows, fs, geo) for ln in row]
    for row, base in zip(rows, geo.baselines):
        if calib:
            lines.append(_calibration(geo.x_start, base, ppm))
        for s in row.segs[1:]:  # column separators of the 12-lead layout
            x = geo.x_start + s.t0 * geo.px_per_s
            lines.append(np.array([(x, base - 2.5 * ppm), (x, base + 2.5 * ppm)]))
    _ink(img, lines, float(np.clip(rng.uniform(0.16, 0.32) * ppm, 1.0, 3.0)), ink)
    return img, geo


def _monitor(rows: list[_Row], fs: float, info: _Info, rng: np.random.Generator) -> tuple[np.ndarray, _Geo]:
    """A patient-monitor screenshot: light trace on near-black, parameters panel, optional faint grid."""
    beat = info.layout == "beat"
    ppm = rng.uniform(*(info.px_per_mm or ((4.5, 8.0) if beat else (3.5, 6.5))))
    gain = float(rng.choice([1.0, 1.0, 1.0, 2.0, 0.5]))
    pps, ppmv = MM_PER_S * ppm, MM_PER_MV * ppm * gain
    top = rng.uniform(4, 10) if beat else rng.uniform(24, 34)
    left = rng.uniform(8, 20) if beat else rng.uniform(30, 60)
    panel = 0.0 if beat or rng.random() < 0.2 else rng.uniform(150, 220)
    above = [max(r.hi, 0.0) * ppmv + 22 for r in rows]
    below = [max(-r.lo, 0.0) * ppmv + 10 for r in rows]
    bases = [top + above[0]]
    for k in range(1, len(rows)):
        bases.append(bases[-1] + max(below[k - 1] + above[k], 50.0))
    w = math.ceil(left + max(r.duration for r in rows) * pps + rng.uniform(8, 20) + panel)
    h = math.ceil(bases[-1] + below[-1] + rng.uniform(6, 16))
    bg = (int(rng.integers(0, 12)), int(rng.integers(0, 12)), int(rng.integers(0, 22)))
    img = np.empty((h, w, 3), np.float32)
    img[:] = bg
    grid = rng.random() < 0.5
    if grid:
        faint = tuple(c + int(rng.integers(18, 34)) for c in bg)
        _grid(img, ppm, tuple(rng.uniform(0, 5 * ppm, 2)), (bg, 0.0), (faint, 1.0), every_mm=(1, 5))
    geo = _Geo(left, pps, bases, [ppmv] * len(rows), ppm, grid, bg)
    colour = _jitter(_MONITOR_TRACE[int(rng.integers(len(_MONITOR_TRACE)))], rng, 12)
    white = (int(rng.integers(200, 240)),) * 3
    texts = []
    size = rng.uniform(12, 16)
    gain_txt = {1.0: "x1", 2.0: "x2", 0.5: "x0.5"}[gain]
    for row, base, up in zip(rows, bases, above):
        for s in row.segs:
            texts.append((left + s.t0 * pps + 4, base - up + 2, f"{s.label}  {gain_txt}", size, colour, "lt"))
    if not beat:
        texts.append((8, top / 2, f"BED {rng.integers(1, 30):02d}   ADULT   {_timestamp(rng)[11:]}", size, white, "lm"))
        texts.append((w - panel - 10, top / 2, "25 mm/s", size, white, "rm"))
    if panel:
        px = w - panel + 12
        texts += [(px, top + 8, "HR", size, colour, "lt"), (px, top + 8 + size * 1.2, str(info.hr), panel * 0.32,
                                                            colour, "lt"),
                  (px, top + 30 + panel * 0.5, "SpO2", size, (80, 220, 240), "lt"),
                  (px, top + 30 + panel * 0.5 + size * 1.2, str(rng.integers(94, 100)), panel * 0.22, (80, 220, 240),
                   "lt"),
                  (px, top + 50 + panel * 0.85, "NIBP", size, white, "lt"),
                  (px, top + 50 + panel * 0.85 + size * 1.2, f"{rng.integers(100, 140)}/{rng.integers(60, 90)}",
                   panel * 0.13, white, "lt")]
    img = _text(img, texts)
    lines = [ln for row in _segment_lines(rows, fs, geo) for ln in row]
    _ink(img, lines, rng.uniform(1.4, 2.6), colour, glow=0.35 if rng.random() < 0.5 else 0.0)
    return img, geo


def _plot(rows: list[_Row], fs: float, info: _Info, rng: np.random.Generator) -> tuple[np.ndarray, _Geo]:
    """A scientific plot (one axes per row, shared time axis): ticks, tick labels, axis titles, blue trace."""
    beat, n = info.layout == "beat", len(rows)
    duration = max(r.duration for r in rows)
    if beat:
        w, h_ax = rng.uniform(420, 700), rng.uniform(240, 380)
    else:
        w, h_ax = float(np.clip(duration * rng.uniform(90, 170), 520, 1800)), rng.uniform(150, 260 if n > 1 else 340)
    left, right = rng.uniform(62, 84), rng.uniform(16, 36)
    title = rng.random() < 0.5
    top, bottom, gap = (rng.uniform(34, 44) if title else rng.uniform(12, 22)), rng.uniform(48, 60), rng.uniform(26, 40)
    h = math.ceil(top + n * h_ax + (n - 1) * gap + bottom)
    w = math.ceil(w)
    margin = 0.05 if rng.random() < 0.7 else 0.0  # matplotlib's default x margin, or tight limits
    t_off = 0.0 if rng.random() < 0.6 else round(float(rng.uniform(1, 1700)), 1)
    xlim = (t_off - margin * duration, t_off + duration * (1 + margin))
    ax_l, ax_r = left, w - 1 - right
    pps = (ax_r - ax_l) / (xlim[1] - xlim[0])
    bg = (255, 255, 255)
    img = np.full((h, w, 3), 255, np.float32)
    gridlines = rng.random() < 0.5
    fsize = rng.uniform(11, 14)
    black, grey = (0, 0, 0), (int(rng.integers(200, 232)),) * 3
    xt, xd = _nice_ticks(xlim[0], xlim[1], int(rng.integers(5, 9)))
    bases, gains, texts, rules = [], [], [], []  # rules: (x0, y0, x1, y1, colour)
    for k, row in enumerate(rows):
        ax_t = top + k * (h_ax + gap)
        ax_b = ax_t + h_ax
        lo, hi = row.lo, row.hi
        span = max(hi - lo, 0.2)
        ylim = (lo - 0.05 * span, hi + 0.05 * span)
        gain = h_ax / (ylim[1] - ylim[0])
        bases.append(ax_b - (0.0 - ylim[0]) * gain)
        gains.append(gain)
        yt, yd = _nice_ticks(ylim[0], ylim[1], int(rng.integers(5, 9)))
        for t in xt:
            x = round(ax_l + (t - xlim[0]) * pps)
            if gridlines:
                rules.append((x, ax_t, x, ax_b, grey))
            rules.append((x, ax_b, x, ax_b + 5, black))
            if k == n - 1:
                texts.append((x, ax_b + 8, _fmt(t, xd), fsize, black, "mt"))
        for v in yt:
            y = round(ax_b - (v - ylim[0]) * gain)
            if gridlines:
                rules.append((ax_l, y, ax_r, y, grey))
            rules.append((ax_l - 5, y, ax_l, y, black))
            texts.append((ax_l - 8, y, _fmt(v, yd), fsize, black, "rm"))
        rules += [(ax_l, ax_t, ax_r, ax_t, black), (ax_l, ax_b, ax_r, ax_b, black), (ax_l, ax_t, ax_l, ax_b, black),
                  (ax_r, ax_t, ax_r, ax_b, black)]
        texts.append((18, (ax_t + ax_b) / 2, "Amplitude (mV)" if n == 1 else "mV", fsize, black, "mm", True))
        if n > 1 or rng.random() < 0.4:
            for sg in row.segs:
                texts.append((ax_l + (t_off + sg.t0 - xlim[0]) * pps + 8, ax_t + 6, sg.label if n > 1 else "MLII",
                              fsize, black, "lt"))
    texts.append(((ax_l + ax_r) / 2, h - 10, "Time (s)", fsize, black, "mb"))
    if title:
        name = "ECG" if rng.random() < 0.5 else "Lead II"
        texts.append(((ax_l + ax_r) / 2, top / 2, name, fsize * 1.15, black, "mm"))
    pil = Image.fromarray(img.astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for x0, y0, x1, y1, c in sorted(rules, key=lambda r: r[4] == black):
        draw.line([(round(x0), round(y0)), (round(x1), round(y1))], fill=c, width=1)
    img = _text(np.asarray(pil).astype(np.float32), texts)
    geo = _Geo(ax_l + (t_off - xlim[0]) * pps, pps, bases, gains, grid=False, background=bg)
    lines = [ln for row in _segment_lines(rows, fs, geo) for ln in row]
    colour = _PLOT_TRACE[0] if rng.random() < 0.6 else _PLOT_TRACE[int(rng.integers(1, len(_PLOT_TRACE)))]
    _ink(img, lines, rng.uniform(1.0, 2.0), colour)
    return img, geo


def _thin(rows: list[_Row], fs: float, info: _Info, rng: np.random.Generator) -> tuple[np.ndarray, _Geo]:
    """192 x 128, a thin grey 1 px trace on white, no axes, no grid; each row fills its share of the frame."""
    w, h = THIN_SIZE
    mx, my = rng.uniform(0, 4), rng.uniform(2, 6)
    span = max(r.duration - 1.0 / fs for r in rows)
    pps = (w - 1 - 2 * mx) / max(span, 1.0 / fs)
    band = h / len(rows)
    bases, gains = [], []
    for k, row in enumerate(rows):
        gain = (band - 1 - 2 * my) / max(row.hi - row.lo, 1e-3)
        gains.append(gain)
        bases.append(k * band + my + row.hi * gain)
    img = np.full((h, w, 3), 255, np.float32)
    geo = _Geo(mx, pps, bases, gains, grid=False, background=(255, 255, 255))
    lines = [ln for row in _segment_lines(rows, fs, geo) for ln in row]
    _ink(img, lines, 1.0, (int(rng.integers(100, 141)),) * 3)
    return img, geo


# ---------------------------------------------------------------------------------------------- artefacts

def _rotate(img: np.ndarray, angle: float, fill: Colour) -> tuple[np.ndarray, np.ndarray]:
    """Rotate counter-clockwise by angle degrees about the centre, the canvas grown to keep every corner."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
    c, s = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = math.ceil(w * c + h * s), math.ceil(w * s + h * c)
    m[0, 2] += (nw - w) / 2
    m[1, 2] += (nh - h) / 2
    out = cv2.warpAffine(img, m, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=tuple(float(v) for v in fill))
    return out, np.vstack([m, [0.0, 0.0, 1.0]])


def _photograph(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A phone photo of the paper: perspective, desk around it, uneven light, colour cast, blur, noise."""
    h, w = img.shape[:2]
    mx, my = round(rng.uniform(0.03, 0.07) * w), round(rng.uniform(0.04, 0.09) * h)
    ow, oh = w + 2 * mx, h + 2 * my
    src = np.float32([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
    dst = src + np.float32([mx, my]) + rng.uniform(-1, 1, (4, 2)).astype(np.float32) * np.float32(
        [0.025 * w, 0.03 * h])
    hom = cv2.getPerspectiveTransform(src, dst)
    paper = cv2.warpPerspective(img, hom, (ow, oh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    cover = cv2.warpPerspective(np.ones((h, w), np.float32), hom, (ow, oh), flags=cv2.INTER_LINEAR)
    desk = np.asarray([(125, 95, 65), (95, 95, 100), (45, 45, 50), (200, 198, 190)][int(rng.integers(4))], np.float32)
    texture = cv2.GaussianBlur(rng.normal(0, 1, (oh, ow)).astype(np.float32), (0, 0), 3.0) * 12.0 + cv2.resize(
        rng.normal(0, 1, (oh // 40 + 2, ow // 40 + 2)).astype(np.float32), (ow, oh), interpolation=cv2.INTER_CUBIC) * 5
    out = paper + (1.0 - cover[..., None]) * (desk + texture[..., None])
    yy, xx = np.mgrid[0:oh, 0:ow].astype(np.float32)
    xx, yy = xx / ow * 2 - 1, yy / oh * 2 - 1
    theta = rng.uniform(0, 2 * np.pi)
    light = (rng.uniform(0.86, 1.0) + rng.uniform(0.08, 0.25) * (np.cos(theta) * xx + np.sin(theta) * yy) / 2
             - rng.uniform(0.05, 0.22) * (xx ** 2 + yy ** 2) / 2)
    if rng.random() < 0.45:  # a soft shadow (the phone, a hand) falling across one side
        phi, at = rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 0.8)
        side = (np.cos(phi) * xx + np.sin(phi) * yy - at) / rng.uniform(0.05, 0.2)
        light = light * (1 - rng.uniform(0.12, 0.3) / (1 + np.exp(-side)))
    cast = np.float32([1.0, rng.uniform(0.95, 1.0), rng.uniform(0.86, 0.97)])
    out = out * light[..., None] * cast
    out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.2))
    noise = rng.normal(0, rng.uniform(2, 5), (oh, ow, 1)) + rng.normal(0, 1.5, (oh, ow, 3))
    return out + noise.astype(np.float32), hom


def _encode(img: np.ndarray, jpeg_quality: int) -> bytes:
    rgb = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    if jpeg_quality:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", quality=int(jpeg_quality))
        return buf.getvalue()
    ok, png = cv2.imencode(".png", rgb[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return png.tobytes()


# ---------------------------------------------------------------------------------------------- drawing

def _rng(seed: int, style: str, layout: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), STYLES.index(style), LAYOUTS.index(layout)])


def _check(signal: np.ndarray, fs: float, style: str) -> np.ndarray:
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose from {', '.join(STYLES)}")
    if not fs > 0:
        raise ValueError(f"sampling rate must be positive, not {fs}")
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 1 or x.size < 2 or not np.isfinite(x).all():
        raise ValueError("signal must be a finite 1-D array of at least 2 samples")
    return x


def _beats(n: int, r_peaks, symbols) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray([] if r_peaks is None else r_peaks, dtype=np.int64)
    s = np.asarray(["?"] * r.size if symbols is None else list(symbols), dtype=object)
    if s.size != r.size:
        raise ValueError(f"{r.size} r_peaks but {s.size} symbols")
    keep = (r >= 0) & (r < n)
    return r[keep], s[keep]


def _compose(rows: list[_Row], fs: float, style: str, info: _Info, truth_row: int, rng: np.random.Generator,
             signal: np.ndarray, r_peaks: np.ndarray, symbols: np.ndarray, lead: str) -> Drawn:
    """Draw the rows in the style, apply the style's artefacts, encode, and record the truth."""
    base = style if style in PAPER_STYLES else PAPER_STYLES[int(rng.integers(4))]
    if style in ("monitor", "plot_axes", "seed_thin"):
        img, geo = {"monitor": _monitor, "plot_axes": _plot, "seed_thin": _thin}[style](rows, fs, info, rng)
    else:
        img, geo = _paper(rows, fs, info, rng, None if style == "no_grid" else _PAPER[base])
    hom, angle, quality = np.eye(3), 0.0, 0
    if style == "rotated":
        angle = float(rng.uniform(0.5, 5.0) * rng.choice([-1.0, 1.0]))
        img, hom = _rotate(img, angle, geo.background if rng.random() < 0.5 else (255, 255, 255))
    elif style == "photo":
        img, hom = _photograph(img, rng)
        quality = int(rng.integers(60, 86))
    elif style == "jpeg":
        quality = int(rng.integers(30, 91))
    x0, base_y = geo.x_start, geo.baselines[truth_row]
    if style == "photo":
        ends = apply_homography(hom, [(x0, base_y), (x0 + signal.size / fs * geo.px_per_s, base_y)])
        angle = float(-np.degrees(np.arctan2(ends[1, 1] - ends[0, 1], ends[1, 0] - ends[0, 0])))
    return Drawn(data=_encode(img, quality), style=style, fs=float(fs), signal=signal, r_peaks=r_peaks,
                 symbols=symbols, px_per_s=float(geo.px_per_s), px_per_mv=float(geo.px_per_mv[truth_row]),
                 x0=float(x0), baseline_y=float(base_y), rotation_deg=angle, grid=geo.grid, layout=info.layout,
                 width=int(img.shape[1]), height=int(img.shape[0]), px_per_mm=float(geo.px_per_mm),
                 homography=hom, jpeg_quality=quality, lead=lead)


def beat_window(signal: np.ndarray, fs: float, r_peaks: np.ndarray, rng: np.random.Generator,
                seconds: float | None = None) -> tuple[int, int]:
    """[start, stop) of a window of about 0.8 s or 1.6 s around one R peak (seeded choice of beat)."""
    seconds = float(rng.choice([0.8, 1.6])) if seconds is None else seconds
    n = int(round(seconds * fs))
    if signal.size <= n:
        return 0, int(signal.size)
    half = n // 2
    inside = r_peaks[(r_peaks >= half) & (r_peaks < signal.size - (n - half))]
    if inside.size:
        centre = int(inside[int(rng.integers(inside.size))])
    else:
        centre = int(np.clip(np.argmax(np.abs(signal - np.median(signal))), half, signal.size - (n - half)))
    start = int(np.clip(centre - half + int(rng.uniform(-0.05, 0.05) * fs), 0, signal.size - n))
    return start, start + n


def _scale(px_per_mm: float | tuple[float, float] | None) -> tuple[float, float] | None:
    if px_per_mm is None:
        return None
    lo, hi = (px_per_mm, px_per_mm) if np.isscalar(px_per_mm) else px_per_mm
    if not 0 < lo <= hi:
        raise ValueError(f"px_per_mm must be positive (a value or a (low, high) range), not {px_per_mm}")
    return float(lo), float(hi)


def draw(signal_mv: np.ndarray, fs: float, style: str, *, r_peaks=None, symbols=None, seed: int = 0,
         layout: str = "strip", label: str = "II", beat_seconds: float | None = None,
         px_per_mm: float | tuple[float, float] | None = None) -> Drawn:
    """Draw one lead as a rhythm strip (all of it) or, layout="beat", one beat (0.8 or 1.6 s around an R peak;
    seed_thin: 0.8 s, filling the frame).

    r_peaks/symbols: the signal's beat annotations (sample indices), kept in the truth where drawn.
    px_per_mm: a scale, or a (low, high) range to draw it from, instead of the style's (paper and monitor).
    """
    x = _check(signal_mv, fs, style)
    if layout not in ("strip", "beat"):
        raise ValueError(f"draw() draws 'strip' or 'beat', not {layout!r}: use draw_stacked / draw_twelve_lead")
    rng = _rng(seed, style, layout)
    r, s = _beats(x.size, r_peaks, symbols)
    a = 0
    if layout == "beat":
        a, b = beat_window(x, fs, r, rng, beat_seconds or (0.8 if style == "seed_thin" else None))
        keep = (r >= a) & (r < b)
        x, r, s = x[a:b], r[keep] - a, s[keep]
    rows = [_Row([_Seg(x, 0.0, label)], x.size / fs)]
    info = _Info(layout, _hr_text(r, fs, rng), _scale(px_per_mm))
    drawn = _compose(rows, fs, style, info, 0, rng, x, r, s, label)
    drawn.offset = a if layout == "beat" else 0
    return drawn


def draw_stacked(signals_mv: list[np.ndarray], fs: float, style: str, *, seed: int = 0,
                 labels: Sequence[str] | None = None, r_peaks=None, symbols=None,
                 px_per_mm: float | tuple[float, float] | None = None) -> Drawn:
    """2-3 strips one above the other (leads or consecutive segments); the truth is the first (top) strip."""
    xs = [_check(x, fs, style) for x in signals_mv]
    if not 1 <= len(xs) <= 6:
        raise ValueError(f"draw_stacked takes 2-3 strips (at most 6), not {len(xs)}")
    labels = list(labels) if labels is not None else ["II", "V1", "V5", "III", "aVF", "V2"][: len(xs)]
    rng = _rng(seed, style, "stacked")
    r, s = _beats(xs[0].size, r_peaks, symbols)
    rows = [_Row([_Seg(x, 0.0, lab)], x.size / fs) for x, lab in zip(xs, labels)]
    info = _Info("stacked", _hr_text(r, fs, rng), _scale(px_per_mm))
    return _compose(rows, fs, style, info, 0, rng, xs[0], r, s, labels[0])


def draw_twelve_lead(leads: dict[str, np.ndarray], fs: float, style: str, *, rhythm: np.ndarray | None,
                     seed: int = 0, r_peaks=None, symbols=None,
                     px_per_mm: float | tuple[float, float] | None = None) -> Drawn:
    """Standard 3 x 4 layout (I II III / aVR aVL aVF / V1-V3 / V4-V6, 2.5 s each, simultaneous columns)
    plus a full-width lead-II rhythm strip at the bottom (default leads["II"]); the truth is the rhythm strip.

    r_peaks/symbols annotate the rhythm strip.
    """
    n4 = int(round(TWELVE_COLUMN_S * fs))
    missing = [name for col in TWELVE_COLUMNS for name in col if name not in leads]
    if missing:
        raise ValueError(f"twelve-lead picture needs leads {', '.join(missing)}")
    cols = {name: _check(leads[name], fs, style) for col in TWELVE_COLUMNS for name in col}
    short = [name for name, x in cols.items() if x.size < 4 * n4]
    if short:
        raise ValueError(f"leads {', '.join(short)} are shorter than {4 * TWELVE_COLUMN_S:g} s")
    strip = _check(cols["II"] if rhythm is None else rhythm, fs, style)
    rng = _rng(seed, style, "twelve_lead")
    r, s = _beats(strip.size, r_peaks, symbols)
    rows = [_Row([_Seg(cols[col[k]][c * n4:(c + 1) * n4], c * TWELVE_COLUMN_S, col[k])
                  for c, col in enumerate(TWELVE_COLUMNS)], 4 * TWELVE_COLUMN_S) for k in range(3)]
    rows.append(_Row([_Seg(strip, 0.0, "II")], max(strip.size / fs, 4 * TWELVE_COLUMN_S)))
    info = _Info("twelve_lead", _hr_text(r, fs, rng), _scale(px_per_mm))
    return _compose(rows, fs, style, info, 3, rng, strip, r, s, "II")


def twelve_from_two(ii: np.ndarray, v1: np.ndarray) -> dict[str, np.ndarray]:
    """Twelve plausible leads from lead II (MLII) and V1, for pictures only: mitdb records have two leads.

    Lead I is invented as 0.55 II - 0.15 V1; III, aVR, aVL, aVF follow from Einthoven's and Goldberger's
    relations; V2-V6 blend V1 into II (R-wave progression) with gains peaking at V3-V4.
    """
    ii, v1 = np.asarray(ii, float), np.asarray(v1, float)
    lead_i = 0.55 * ii - 0.15 * v1
    iii = ii - lead_i
    out = {"I": lead_i, "II": ii, "III": iii, "aVR": -(lead_i + ii) / 2, "aVL": (lead_i - iii) / 2,
           "aVF": (ii + iii) / 2}
    for k, gain in enumerate((1.0, 1.3, 1.5, 1.4, 1.2, 1.0)):
        t = k / 5
        out[f"V{k + 1}"] = gain * ((1 - t) * v1 + t * ii)
    return out


# ---------------------------------------------------------------------------------------------- data

def excerpts(mitdb_dir: str | Path, records: Sequence[str], seconds: float, n_per_record: int,
             seed: int) -> list[Excerpt]:
    """Real segments cut from the records: MLII (else the first lead) and the other lead in mV, with their
    beat annotations. Starts are seeded; the n segments of a record come from n equal parts, so never overlap
    where the record is long enough."""
    rng = np.random.default_rng(seed)
    out = []
    for rec in records:
        path = str(Path(mitdb_dir) / str(rec))
        header = wfdb.rdheader(path)
        fs, total = float(header.fs), int(header.sig_len)
        n = int(round(seconds * fs))
        if n > total:
            raise ValueError(f"record {rec} is {total / fs:.1f} s long, shorter than {seconds} s")
        part = total // max(n_per_record, 1)
        for k in range(n_per_record):
            lo, hi = (k * part, (k + 1) * part - n) if part >= n else (0, total - n)
            start = int(rng.integers(lo, hi + 1))
            out.append(_excerpt(path, str(rec), start, n))
    return out


def _excerpt(path: str, rec: str, start: int, n: int) -> Excerpt:
    record = wfdb.rdrecord(path, sampfrom=start, sampto=start + n)
    names = list(record.sig_name)
    lead = names.index("MLII") if "MLII" in names else 0
    other = 1 - lead if len(names) > 1 else lead
    scale = [{"uv": 1e-3, "v": 1e3}.get(str(u).lower(), 1.0) for u in record.units]
    sig = np.nan_to_num(record.p_signal.astype(np.float64)) * np.asarray(scale)
    ann = wfdb.rdann(path, "atr", sampfrom=start, sampto=start + n - 1)
    samples = np.asarray(ann.sample, dtype=np.int64) - start
    symbols = np.asarray(ann.symbol, dtype=object)
    keep = (samples >= 0) & (samples < n) & np.isin(symbols, sorted(DRAWN_BEAT_SYMBOLS))
    return Excerpt(rec, start, float(record.fs), sig[:, lead], samples[keep], symbols[keep], sig[:, other],
                   names[other], names[lead])


# ---------------------------------------------------------------------------------------------- CLI

_README = """# Synthetic ECG pictures with ground truth

Drawn by `ecg_core/picture/synth.py` from real signals of the MIT-BIH Arrhythmia Database; regenerate with

    {command}

Each picture `NAME.png` / `NAME.jpg` has a sidecar `NAME.npz` with the truth: `signal` (mV, the lead drawn;
the rhythm strip of multi-lead pictures), `fs`, `r_peaks` (sample indices into `signal`), `symbols` (MIT-BIH
beat labels), `px_per_s`, `px_per_mv`, `x0`, `baseline_y`, `rotation_deg`, `homography`, `px_per_mm`, `grid`,
`style`, `layout`, `width`, `height`, `jpeg_quality`, `lead`, `record`, `record_start` (the record's sample
at signal[0]). Pixel centres are at integer coordinates; sample i is drawn at
(x0 + i * px_per_s / fs, baseline_y - signal[i] * px_per_mv), then mapped through `homography` (identity
unless the style rotates or photographs the paper).

Styles: `paper_red/pink/green/grey` ECG paper at 25 mm/s and 10 mm/mV (1 mm and 5 mm lines, calibration
pulse, lead labels, printed header); `no_grid` the same on plain white; `monitor` a patient-monitor screenshot;
`plot_axes` a scientific plot with ticks and axis titles; `seed_thin` a 192 x 128 thin grey trace (the look of
a public single-beat dataset); `jpeg` paper saved as JPEG (quality 30-90); `rotated` paper rotated by up to
5 degrees; `photo` a phone photo of paper (perspective, uneven light, blur, noise, JPEG 60-85).
{scales}

Layouts: `strip` = 10 s of MLII; `beat` = 0.8 or 1.6 s around one annotated beat; `stacked` = MLII above the
record's second lead, same 10 s; `twelve_lead` = 3 x 4 leads of 2.5 s plus a 10 s lead-II rhythm strip.
mitdb records have only two leads (MLII and V1/V2/V4/V5), so the twelve leads are *built* from MLII and V1
by `twelve_from_two` (lead I invented as 0.55 II - 0.15 V1, III/aVR/aVL/aVF from Einthoven's and
Goldberger's relations, V2-V6 blends of V1 and II): plausible pictures, not recorded 12-lead ECGs. The
rhythm strip (the truth) is the real MLII.

| file | style | layout | record | first sample | seconds | leads |
| --- | --- | --- | --- | --- | --- | --- |
{rows}

Source: MIT-BIH Arrhythmia Database, https://physionet.org/content/mitdb/1.0.0/ (Open Data Commons
Attribution License v1.0) — Moody GB, Mark RG. The impact of the MIT-BIH Arrhythmia Database. IEEE Eng in
Med and Biol 20(3):45-50 (May-June 2001). Goldberger AL et al. PhysioBank, PhysioToolkit, and PhysioNet.
Circulation 101(23):e215-e220 (2000).
"""


def _write(out: Path, stem: str, drawn: Drawn, ex: Excerpt, start: int, n: int, leads: str) -> str:
    name = f"{stem}.{'jpg' if drawn.jpeg_quality else 'png'}"
    (out / name).write_bytes(drawn.data)
    np.savez_compressed(out / f"{stem}.npz", **drawn.sidecar(), record=np.str_(ex.record),
                        record_start=np.int64(start))
    return f"| {name} | {drawn.style} | {drawn.layout} | {ex.record} | {start} | {n / ex.fs:g} | {leads} |"


def write_set(mitdb_dir: str | Path, out: str | Path, per_style: int = 1, seed: int = 0, command: str = "",
              px_per_mm: tuple[float, float] | None = None, multi_styles: Sequence[str] | None = None) -> list[str]:
    """Write, per style, per_style 10 s strips and beats from DS2 records plus one stacked and one 12-lead
    picture (only for multi_styles, default all), with sidecars and a README; returns the file names."""
    multi = set(STYLES if multi_styles is None else multi_styles)
    if multi - set(STYLES):
        raise ValueError(f"unknown styles {', '.join(sorted(multi - set(STYLES)))}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pool = excerpts(mitdb_dir, DS2_RECORDS, 10.0, 1, seed)
    order = np.random.default_rng(seed).permutation(len(pool))
    with_v1 = [e for e in pool if e.second_lead == "V1"]
    rows, k = [], 0
    for si, style in enumerate(STYLES):
        for j in range(per_style):
            for layout in ("strip", "beat"):
                ex = pool[order[k % len(pool)]]
                k += 1
                d = draw(ex.signal, ex.fs, style, r_peaks=ex.r_peaks, symbols=ex.symbols, seed=seed + j,
                         layout=layout, px_per_mm=px_per_mm)
                start = ex.start + d.offset
                rows.append(_write(out, f"{style}_{layout}_{j}_{ex.record}", d, ex, start, d.signal.size, ex.lead))
        if style not in multi:
            continue
        ex = pool[order[k % len(pool)]]
        k += 1
        d = draw_stacked([ex.signal, ex.second], ex.fs, style, seed=seed, labels=["II", ex.second_lead],
                         r_peaks=ex.r_peaks, symbols=ex.symbols, px_per_mm=px_per_mm)
        rows.append(_write(out, f"{style}_stacked_{ex.record}", d, ex, ex.start, ex.signal.size,
                           f"{ex.lead}, {ex.second_lead}"))
        ex = with_v1[(si + seed) % len(with_v1)]
        d = draw_twelve_lead(twelve_from_two(ex.signal, ex.second), ex.fs, style, rhythm=ex.signal, seed=seed,
                             r_peaks=ex.r_peaks, symbols=ex.symbols, px_per_mm=px_per_mm)
        rows.append(_write(out, f"{style}_twelve_lead_{ex.record}", d, ex, ex.start, ex.signal.size,
                           "12 built from MLII + V1; rhythm MLII"))
    scales = ("Paper and monitor scales drawn from {:g}-{:g} px/mm (set by the command; the styles' own ranges "
              "are wider).".format(*px_per_mm) if px_per_mm else "")
    if multi != set(STYLES):
        scales += (" Stacked and 12-lead pictures only for the styles the command names, to keep the set "
                   "small.")
    (out / "README.md").write_text(_README.format(command=command or "python -m ecg_core.picture.synth",
                                                  rows="\n".join(rows), scales=scales.strip()))
    return sorted(p.name for p in out.iterdir())


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ecg_core.picture.synth", description=__doc__.splitlines()[0])
    p.add_argument("--mitdb", required=True, help="MIT-BIH Arrhythmia Database directory (WFDB files)")
    p.add_argument("--out", required=True, help="directory to write pictures, sidecars and README.md into")
    p.add_argument("--per-style", type=int, default=1, help="strips and beats per style (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--px-per-mm", type=float, nargs=2, metavar=("LOW", "HIGH"),
                   help="draw paper and monitor scales from this range instead of each style's own")
    p.add_argument("--multi-lead-styles", nargs="+", choices=STYLES, metavar="STYLE",
                   help="styles that also get a stacked and a 12-lead picture (default: every style)")
    a = p.parse_args(argv)
    command = (f"python -m ecg_core.picture.synth --mitdb {a.mitdb} --out {a.out} --per-style {a.per_style} "
               f"--seed {a.seed}" + (f" --px-per-mm {a.px_per_mm[0]:g} {a.px_per_mm[1]:g}" if a.px_per_mm else "")
               + (f" --multi-lead-styles {' '.join(a.multi_lead_styles)}" if a.multi_lead_styles else ""))
    names = write_set(a.mitdb, a.out, a.per_style, a.seed, command, tuple(a.px_per_mm) if a.px_per_mm else None,
                      a.multi_lead_styles)
    print(f"{len(names)} files written to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
