"""Signal window -> 128x128 uint8 image. Each representation is one function over a batch."""

from __future__ import annotations

import cv2
import numpy as np
from scipy import signal as sps

from ecg_core.settings import IMAGE_MARGIN, IMAGE_SIZE, TEMPLATE_INTENSITY, WINDOW_BEFORE, WINDOW_LEN, WORKING_FS

_SHIFT = 4  # OpenCV sub-pixel bits: coordinates are multiplied by 2**_SHIFT
SPECTRAL_NPERSEG = 64  # 178 ms analysis window
SPECTRAL_HOP = 4
SPECTRAL_NFFT = 256
SPECTRAL_MAX_HZ = 45.0


def _trace_points(windows: np.ndarray, size: int, margin: int, height: int | None = None,
                  top: int = 0, lo: np.ndarray | None = None, hi: np.ndarray | None = None) -> np.ndarray:
    """Pixel coordinates (n, w, 2) in OpenCV fixed point: time left->right, amplitude bottom->top.

    The trace spans the full width and the rows [top, top + height) (default: the whole square); its
    amplitude range is each window's own min..max unless lo/hi (n, 1) give a shared one.
    """
    w = np.asarray(windows, dtype=np.float32)
    lo = w.min(axis=1, keepdims=True) if lo is None else lo
    hi = w.max(axis=1, keepdims=True) if hi is None else hi
    span = np.maximum(hi - lo, 1e-6)
    inner = size - 1 - 2 * margin
    inner_y = (height or size) - 1 - 2 * margin
    y = top + margin + (1.0 - (w - lo) / span) * inner_y
    x = np.broadcast_to(np.linspace(margin, margin + inner, w.shape[1], dtype=np.float32), w.shape)
    pts = np.stack([x, y], axis=-1) * (1 << _SHIFT)
    return np.round(pts).astype(np.int32)


def render_waveform(windows: np.ndarray, size: int = IMAGE_SIZE, margin: int = IMAGE_MARGIN,
                    thickness: int = 1) -> np.ndarray:
    """Anti-aliased white trace on black, amplitude min-max scaled to the image: (n, size, size) uint8."""
    windows = np.atleast_2d(windows)
    pts = _trace_points(windows, size, margin)
    out = np.zeros((len(pts), size, size), dtype=np.uint8)
    for img, p in zip(out, pts):
        cv2.polylines(img, [p], False, 255, thickness, cv2.LINE_AA, _SHIFT)
    return out


def render_twolead(windows: np.ndarray, size: int = IMAGE_SIZE, margin: int = IMAGE_MARGIN,
                   thickness: int = 1) -> np.ndarray:
    """Two traces from windows (n, 2, w): the first lead (MLII) in the top half, the second (V1) in the
    bottom half, each min-max scaled to its half: (n, size, size) uint8."""
    windows = np.asarray(windows, dtype=np.float32)
    if windows.ndim != 3 or windows.shape[1] != 2:
        raise ValueError(f"two-lead windows must be (n, 2, samples), not {windows.shape}")
    half = size // 2
    out = np.zeros((len(windows), size, size), dtype=np.uint8)
    for lead in range(2):
        pts = _trace_points(windows[:, lead], size, margin, height=half, top=lead * half)
        for img, p in zip(out, pts):
            cv2.polylines(img, [p], False, 255, thickness, cv2.LINE_AA, _SHIFT)
    return out


def render_overlay(windows: np.ndarray, size: int = IMAGE_SIZE, margin: int = IMAGE_MARGIN,
                   thickness: int = 1) -> np.ndarray:
    """The beat (white) drawn over its local template (grey, TEMPLATE_INTENSITY) from windows (n, 2, w), on
    the pair's shared amplitude scale in one panel: where they coincide only the beat shows, where the beat
    departs from the patient's usual one two curves part: (n, size, size) uint8."""
    windows = np.asarray(windows, dtype=np.float32)
    if windows.ndim != 3 or windows.shape[1] != 2:
        raise ValueError(f"beat+template windows must be (n, 2, samples), not {windows.shape}")
    out = np.zeros((len(windows), size, size), dtype=np.uint8)
    _draw_beat_over_template(out, windows, margin, thickness)
    return out


def _draw_beat_over_template(out: np.ndarray, pair: np.ndarray, margin: int, thickness: int,
                             height: int | None = None, top: int = 0) -> None:
    """Draw pair (n, 2, w) = (beat, template) into out (n, size, size) in place: the template grey, then the
    beat white over it, both on the pair's shared amplitude scale, in rows [top, top + height)."""
    lo, hi = pair.min(axis=(1, 2))[:, None], pair.max(axis=(1, 2))[:, None]
    for row, colour in ((1, TEMPLATE_INTENSITY), (0, 255)):
        pts = _trace_points(pair[:, row], out.shape[-1], margin, height=height, top=top, lo=lo, hi=hi)
        for img, p in zip(out, pts):
            cv2.polylines(img, [p], False, colour, thickness, cv2.LINE_AA, _SHIFT)


def render_twolead_overlay(windows: np.ndarray, size: int = IMAGE_SIZE, margin: int = IMAGE_MARGIN,
                           thickness: int = 1) -> np.ndarray:
    """Two overlays from windows (n, 4, w) = (MLII beat, MLII template, V1 beat, V1 template): MLII's beat
    over its template in the top half, V1's below, each pair on its own shared amplitude scale."""
    windows = np.asarray(windows, dtype=np.float32)
    if windows.ndim != 3 or windows.shape[1] != 4:
        raise ValueError(f"two-lead beat+template windows must be (n, 4, samples), not {windows.shape}")
    half = size // 2
    out = np.zeros((len(windows), size, size), dtype=np.uint8)
    for lead in range(2):
        _draw_beat_over_template(out, windows[:, 2 * lead:2 * lead + 2], margin, thickness, half, lead * half)
    return out


def render_spectral(windows: np.ndarray, size: int = IMAGE_SIZE, fs: int = WORKING_FS) -> np.ndarray:
    """Log-magnitude STFT (0-45 Hz, low frequencies at the bottom), min-max scaled: (n, size, size) uint8."""
    windows = np.atleast_2d(np.asarray(windows, dtype=np.float32))
    freqs, _, z = sps.stft(windows, fs=fs, nperseg=SPECTRAL_NPERSEG,
                           noverlap=SPECTRAL_NPERSEG - SPECTRAL_HOP, nfft=SPECTRAL_NFFT,
                           boundary="even", padded=False, axis=-1)
    mag = np.log1p(np.abs(z[:, freqs <= SPECTRAL_MAX_HZ, :]) * 100.0)
    lo = mag.min(axis=(1, 2), keepdims=True)
    hi = mag.max(axis=(1, 2), keepdims=True)
    scaled = ((mag - lo) / np.maximum(hi - lo, 1e-9) * 255.0).astype(np.float32)
    out = np.empty((len(windows), size, size), dtype=np.uint8)
    for i, m in enumerate(scaled):
        out[i] = np.clip(cv2.resize(m[::-1], (size, size), interpolation=cv2.INTER_LINEAR), 0, 255)
    return out


def window_time_axis(size: int = IMAGE_SIZE, margin: int = IMAGE_MARGIN) -> np.ndarray:
    """For each column of a trace picture, its time in working-rate samples from the beat's R peak.

    The window's WINDOW_LEN samples span the columns margin .. size - 1 - margin (see _trace_points);
    columns in the margins extrapolate the same axis.
    """
    inner = size - 1 - 2 * margin
    return (np.arange(size) - margin) / inner * (WINDOW_LEN - 1) - WINDOW_BEFORE


RENDERERS = {"waveform": render_waveform, "spectral": render_spectral, "twolead": render_twolead,
             "overlay": render_overlay, "twolead_overlay": render_twolead_overlay}


def render(windows: np.ndarray, representation: str) -> np.ndarray:
    """Render windows in the named representation."""
    try:
        fn = RENDERERS[representation]
    except KeyError:
        raise ValueError(f"unknown representation {representation!r}; use one of {sorted(RENDERERS)}") from None
    return fn(windows)
