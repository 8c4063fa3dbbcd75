"""Training-time image augmentation suited to ECG pictures (NumPy + OpenCV, training only).

Small shifts, amplitude (vertical) and time (horizontal) scaling, line width, blur and noise: the ways
users' pictures differ from ours that normalisation cannot fully remove. Optionally (`morph`) a smooth
column-wise amplitude warp that changes the heights of a patient's P, QRS and T waves but keeps every
width and interval, so a model must lean on timing and width, which carry over to new patients.
"""

from __future__ import annotations

import cv2
import numpy as np

_KERNEL = np.ones((2, 2), np.uint8)
MORPH_KNOT_PX = 16  # one random amplitude factor every 16 columns (about 0.2 s of a beat window)
MORPH_LOG_SD = 0.3  # log-normal factors, clipped to exp(+-0.5), divided by their largest
MORPH_REPRESENTATIONS = frozenset({"waveform", "overlay"})  # one trace panel, no frequency axis


def _row_extent(img: np.ndarray) -> tuple[int, int] | None:
    rows = np.nonzero(img.max(axis=1) > 0.05)[0]
    return (int(rows[0]), int(rows[-1])) if rows.size else None


def morph_warp(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scale the trace's height column by column about its median row by a smooth random factor, then
    stretch it back to its old top and bottom rows (as a min-max scaled picture would be).

    Columns keep their place, so QRS widths, RR intervals and where the beat departs from its template
    are unchanged; only the relative heights of the waves (a patient's morphology) change.
    float32 (h, w) in [0, 1].
    """
    h, w = img.shape
    extent = _row_extent(img)
    if extent is None:
        return img
    weights = img.sum(axis=1)
    centre = float(np.searchsorted(np.cumsum(weights), weights.sum() / 2.0))
    knots = np.exp(np.clip(rng.normal(0.0, MORPH_LOG_SD, w // MORPH_KNOT_PX + 2), -0.5, 0.5))
    knots /= knots.max()  # shrink only, so nothing leaves the picture
    scale = np.interp(np.arange(w), np.linspace(0, w - 1, knots.size), knots).astype(np.float32)
    map_x = np.broadcast_to(np.arange(w, dtype=np.float32), (h, w)).copy()
    rows = np.arange(h, dtype=np.float32)[:, None]
    map_y = (centre + (rows - centre) / scale[None, :]).astype(np.float32)
    out = cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    new = _row_extent(out)
    if new is None or new[1] <= new[0]:
        return img
    (t0, b0), (t1, b1) = extent, new
    k = (b0 - t0) / (b1 - t1)
    m = np.array([[1, 0, 0], [0, k, t0 - k * t1]], dtype=np.float32)
    return cv2.warpAffine(out, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def augment_image(img: np.ndarray, rng: np.random.Generator, representation: str = "waveform",
                  morph: bool = False) -> np.ndarray:
    """Augment one float32 image (h, w) in [0, 1]; `morph` adds `morph_warp` to trace pictures."""
    h, w = img.shape
    if morph and representation in MORPH_REPRESENTATIONS:
        img = morph_warp(img, rng)
    sy, sx = rng.uniform(0.85, 1.1), rng.uniform(0.9, 1.1)  # amplitude, time scaling
    ty, tx = rng.uniform(-4, 4, size=2)
    cy, cx = h / 2.0, w / 2.0
    m = np.array([[sx, 0, cx - sx * cx + tx], [0, sy, cy - sy * cy + ty]], dtype=np.float32)
    out = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if representation != "spectral":
        u = rng.random()
        if u < 0.25:
            out = cv2.dilate(out, _KERNEL)
        elif u < 0.4:
            out = cv2.GaussianBlur(out, (3, 3), 0.8)
            out /= max(float(out.max()), 1e-6)
    sigma = rng.uniform(0.0, 0.04)
    if sigma > 0.005:
        out = out + rng.normal(0.0, sigma, out.shape).astype(np.float32)
    return np.clip(out, 0.0, 1.0)


def augment_batch(x: np.ndarray, rng: np.random.Generator, representation: str = "waveform",
                  morph: bool = False) -> np.ndarray:
    """Augment a float32 batch (n, h, w, 1) in [0, 1]."""
    out = np.empty_like(x)
    for i in range(len(x)):
        out[i, ..., 0] = augment_image(x[i, ..., 0], rng, representation, morph)
    return out
