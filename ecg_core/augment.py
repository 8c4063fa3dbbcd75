"""Training-time image augmentation suited to ECG pictures (NumPy + OpenCV, training only).

Small shifts, amplitude (vertical) and time (horizontal) scaling, line width, blur and noise: the ways
users' pictures differ from ours that normalisation cannot fully remove.
"""

from __future__ import annotations

import cv2
import numpy as np

_KERNEL = np.ones((2, 2), np.uint8)


def augment_image(img: np.ndarray, rng: np.random.Generator, representation: str = "waveform") -> np.ndarray:
    """Augment one float32 image (h, w) in [0, 1]."""
    h, w = img.shape
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


def augment_batch(x: np.ndarray, rng: np.random.Generator, representation: str = "waveform") -> np.ndarray:
    """Augment a float32 batch (n, h, w, 1) in [0, 1]."""
    out = np.empty_like(x)
    for i in range(len(x)):
        out[i, ..., 0] = augment_image(x[i, ..., 0], rng, representation)
    return out
