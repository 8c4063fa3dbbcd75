"""Image bytes -> validated, normalised model input. Used by training AND the app.

`decode_image` turns untrusted bytes into a grayscale float array or raises ImageInputError with a
one-line message; `normalise` brings any ECG picture (dark-on-light or light-on-dark, colour, grid,
margins, any size) to the training form; `to_model_input` makes the batch tensor every model eats.
"""

from __future__ import annotations

import io
import warnings

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ecg_core.settings import IMAGE_MARGIN, IMAGE_SIZE

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 25_000_000  # e.g. 5000 x 5000; larger images are refused before decoding
MIN_SIDE = 16
SUPPORTED_FORMATS = ("PNG", "JPEG", "BMP", "WEBP", "TIFF", "GIF")

GRID_CONTRAST = 0.35  # pixels fainter than this (relative to the trace) are grid/background
TRACE_CONTRAST = 0.5  # pixels at least this strong define the trace's bounding box


class ImageInputError(ValueError):
    """Untrusted image input that cannot be used; str(error) is the one-line user-facing reason."""


def decode_image(data: bytes) -> np.ndarray:
    """Untrusted bytes -> grayscale float32 array in [0, 1] (first frame, EXIF orientation applied)."""
    if not data:
        raise ImageInputError("The file is empty (0 bytes).")
    if len(data) > MAX_FILE_BYTES:
        raise ImageInputError(f"The file is too large ({len(data) / 1e6:.1f} MB; limit {MAX_FILE_BYTES // 2**20} MB).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise ImageInputError(
                    f"The image is too large ({w} x {h} pixels; limit {MAX_PIXELS // 1_000_000} megapixels).")
            if min(w, h) < MIN_SIDE:
                raise ImageInputError(f"The image is too small ({w} x {h} pixels; at least {MIN_SIDE} per side).")
            img.seek(0)
            img.load()
            img = ImageOps.exif_transpose(img)
            return _to_gray(img)
    except ImageInputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageInputError("This is not a supported image (PNG, JPEG, BMP, WebP, TIFF or GIF).") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError,
            MemoryError, ZeroDivisionError, struct_error()):
        raise ImageInputError("The image file is damaged or truncated and cannot be decoded.") from None


def struct_error() -> type[Exception]:
    import struct

    return struct.error


def _to_gray(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> grayscale float32 [0, 1]; transparency is flattened onto a contrasting ground."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, dtype=np.float32)
        lo, hi = float(a.min()), float(a.max())
        return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    if img.mode in ("P", "PA", "LA", "RGBA", "La") or "transparency" in img.info:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3]
        lum = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        opaque = alpha > 0.5
        ground = 1.0 if (opaque.any() and lum[opaque].mean() < 0.5) else 0.0
        return (lum * alpha + ground * (1.0 - alpha)).astype(np.float32)
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0


def contrast_map(gray: np.ndarray) -> np.ndarray:
    """Trace strength in [0, 1]: background (judged from the border) -> 0, strongest ink -> 1."""
    g = np.asarray(gray, dtype=np.float32)
    border = np.concatenate([g[:2].ravel(), g[-2:].ravel(), g[:, :2].ravel(), g[:, -2:].ravel()])
    if np.median(border) > 0.5:  # dark trace on light paper
        g = 1.0 - g
    background = float(np.median(g))
    c = g - background
    top = float(np.percentile(c, 99.9)) if c.size > 1000 else float(c.max())
    top = max(top, float(c.max()) * 0.5)
    if top <= 1e-6:
        return np.zeros_like(g)
    return np.clip(c / top, 0.0, 1.0)


def normalise_waveform(gray: np.ndarray, size: int = IMAGE_SIZE, margin: int = IMAGE_MARGIN) -> np.ndarray:
    """Grayscale ECG picture -> training form: white trace on black, cropped to the trace, size x size."""
    c = contrast_map(gray)
    c = np.where(c >= GRID_CONTRAST, (c - GRID_CONTRAST) / (1.0 - GRID_CONTRAST), 0.0).astype(np.float32)
    ys, xs = np.nonzero(c >= (TRACE_CONTRAST - GRID_CONTRAST) / (1.0 - GRID_CONTRAST))
    inner = size - 2 * margin
    out = np.zeros((size, size), dtype=np.float32)
    if ys.size == 0:
        return out.astype(np.uint8)
    crop = c[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
    shrinking = crop.shape[0] > inner or crop.shape[1] > inner
    resized = cv2.resize(crop, (inner, inner), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    peak = float(resized.max())
    if peak > 0:
        resized = resized / peak
    out[margin: margin + inner, margin: margin + inner] = resized
    return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)


def normalise_spectral(gray: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """Grayscale spectrogram picture -> size x size, min-max scaled uint8."""
    g = cv2.resize(np.asarray(gray, dtype=np.float32), (size, size), interpolation=cv2.INTER_AREA)
    lo, hi = float(g.min()), float(g.max())
    g = (g - lo) / (hi - lo) if hi > lo else np.zeros_like(g)
    return np.clip(g * 255.0 + 0.5, 0, 255).astype(np.uint8)


NORMALISERS = {"waveform": normalise_waveform, "spectral": normalise_spectral}


def normalise(gray: np.ndarray, representation: str = "waveform") -> np.ndarray:
    """Normalise a grayscale picture for the named representation."""
    return NORMALISERS[representation](gray)


def normalise_batch(images: np.ndarray, representation: str = "waveform") -> np.ndarray:
    """Normalise rendered uint8 images (n, h, w) exactly as the app normalises an uploaded one."""
    fn = NORMALISERS[representation]
    return np.stack([fn(im.astype(np.float32) / 255.0) for im in images]) if len(images) else \
        np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)


def load_image(data: bytes, representation: str = "waveform") -> np.ndarray:
    """Untrusted bytes -> normalised uint8 image, or ImageInputError."""
    return normalise(decode_image(data), representation)


def to_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 images (n, size, size) -> float32 (n, size, size, 1) in [0, 1]: what every model eats."""
    a = np.asarray(images)
    if a.ndim == 2:
        a = a[None]
    return (a.astype(np.float32) / 255.0)[..., None]


def encode_png(image: np.ndarray) -> bytes:
    """uint8 image -> PNG bytes (lossless, as sample images are stored)."""
    ok, buf = cv2.imencode(".png", np.asarray(image, dtype=np.uint8))
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()
