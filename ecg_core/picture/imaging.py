"""Image bytes -> validated, normalised model input. Used by training AND the app.

`decode_image` turns untrusted bytes into a grayscale float array or raises ImageInputError with a
one-line message; `normalise` brings any ECG picture (dark-on-light or light-on-dark, colour, grid,
margins, any size) to the training form; `to_model_input` makes the batch tensor every model eats.
"""

from __future__ import annotations

import io
import os
import struct
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ecg_core.settings import IMAGE_MARGIN, IMAGE_SIZE

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 25_000_000  # e.g. 5000 x 5000; larger images are refused before decoding
MAX_SIDE = 20_000  # pixels on the longer side; refused before decoding
MIN_SIDE = 16
MAX_DECODED_SIDE = 1024  # decoded pictures are box-reduced to at most this many pixels per side
MAX_DIGITIZE_SIDE = 2000  # pictures to digitize keep more detail: a 12-lead page's small boxes stay resolved
MAX_FILES_PER_BATCH = 200  # files beyond this in one upload are not decoded (bounds CPU time per rerun)
DISPLAY_NAME_MAX = 60  # characters of a file name shown to the user
SUPPORTED_FORMATS = ("PNG", "JPEG", "BMP", "WEBP", "TIFF", "GIF")

GRID_CONTRAST = 0.35  # pixels fainter than this (relative to the trace) are grid/background
TRACE_CONTRAST = 0.5  # pixels at least this strong define the trace's bounding box

# Everything Pillow's decoders are known to raise on malformed input (found by tests/test_fuzz_decode.py).
_DECODER_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError, AttributeError,
                   ArithmeticError, MemoryError, RecursionError, struct.error)

UNSUPPORTED = "This is not a supported image (PNG, JPEG, BMP, WebP, TIFF or GIF)."
DAMAGED = "The image file is damaged or truncated and cannot be decoded."
ANIMATED_NOTE = "Animated or multi-page image: only the first frame is used."
ROTATED_NOTE = "Rotated upright according to the photo's orientation tag."


class ImageInputError(ValueError):
    """Untrusted image input that cannot be used; str(error) is the one-line user-facing reason."""


def decode_image(data: bytes) -> np.ndarray:
    """Untrusted bytes -> grayscale float32 array in [0, 1] (first frame, EXIF orientation applied).

    At most MAX_DECODED_SIDE pixels per side (larger pictures are box-reduced); any failure is an
    ImageInputError whose message is one user-facing line.
    """
    return decode_image_with_notes(data)[0]


def decode_image_with_notes(data: bytes) -> tuple[np.ndarray, tuple[str, ...]]:
    """Like decode_image, plus one-line notes for the user on what was done (first frame used, rotated)."""
    img, notes = open_image(data, MAX_DECODED_SIDE)
    gray = _to_gray(img)
    if max(gray.shape) > MAX_DECODED_SIDE:
        scale = MAX_DECODED_SIDE / max(gray.shape)
        size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    gray = np.clip(np.nan_to_num(gray, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0).astype(np.float32)
    return np.ascontiguousarray(gray), notes


def decode_rgb_with_notes(data: bytes, max_side: int = MAX_DIGITIZE_SIDE) -> tuple[np.ndarray, tuple[str, ...]]:
    """Untrusted bytes -> RGB float32 (h, w, 3) in [0, 1] at most max_side pixels per side, plus notes.

    The colour is kept (the digitizer tells a red grid from a black trace by it); transparency is flattened
    onto the ground a viewer would show. Failures are ImageInputError, as for decode_image.
    """
    img, notes = open_image(data, max_side)
    rgb = _to_rgb(img)
    if max(rgb.shape[:2]) > max_side:
        scale = max_side / max(rgb.shape[:2])
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    rgb = np.clip(np.nan_to_num(rgb, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0).astype(np.float32)
    return np.ascontiguousarray(rgb), notes


def open_image(data: bytes, max_side: int = MAX_DECODED_SIDE) -> tuple[Image.Image, tuple[str, ...]]:
    """Untrusted bytes -> a loaded Pillow image (first frame, upright, box-reduced towards max_side) and notes;
    every failure is an ImageInputError with a one-line reason."""
    if not data:
        raise ImageInputError("The file is empty (0 bytes).")
    if len(data) > MAX_FILE_BYTES:
        raise ImageInputError(
            f"The file is too large ({len(data) / 2**20:.1f} MB; limit {MAX_FILE_BYTES // 2**20} MB).")
    try:
        return _open(bytes(data), max_side)
    except ImageInputError:
        raise
    except UnidentifiedImageError:
        raise ImageInputError(_not_an_image_reason(data)) from None
    except Image.DecompressionBombError:  # Pillow's own guard, for sizes far over ours
        raise ImageInputError(f"The image is far too large (limit {MAX_PIXELS // 1_000_000} megapixels).") from None
    except _DECODER_ERRORS:
        raise ImageInputError(DAMAGED) from None


def _open(data: bytes, max_side: int) -> tuple[Image.Image, tuple[str, ...]]:
    """The Pillow part of open_image; raises Pillow's own errors for the caller to translate."""
    notes: list[str] = []
    img = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    w, h = img.size
    if w * h > MAX_PIXELS or max(w, h) > MAX_SIDE:
        raise ImageInputError(f"The image is too large ({w} x {h} pixels; limit {MAX_PIXELS // 1_000_000} "
                              f"megapixels and {MAX_SIDE} pixels per side).")
    if min(w, h) < MIN_SIDE:
        raise ImageInputError(f"The image is too small ({w} x {h} pixels; at least {MIN_SIDE} per side).")
    try:
        animated = bool(getattr(img, "is_animated", False))
    except _DECODER_ERRORS:  # a damaged later frame does not spoil the first
        animated = False
    if animated:
        notes.append(ANIMATED_NOTE)
        img.seek(0)
    if img.format == "JPEG":  # decode large JPEGs at a reduced DCT scale: faster and less memory
        img.draft(img.mode, (max_side, max_side))
    img.load()
    try:
        if img.getexif().get(0x0112) in (2, 3, 4, 5, 6, 7, 8):
            img = ImageOps.exif_transpose(img)
            notes.append(ROTATED_NOTE)
    except _DECODER_ERRORS:  # malformed EXIF: keep the picture as stored
        pass
    factor = max(img.size) // max_side
    if factor >= 2:  # box-reduce big pictures before the float conversion (memory: 4 x 4 bytes per RGBA pixel)
        if img.mode in ("P", "PA", "1"):
            img = img.convert("RGBA" if img.mode == "PA" or "transparency" in img.info else "L")
        if not img.mode.startswith("I;16"):  # Pillow cannot reduce 16-bit pictures: cv2 does it later
            img = img.reduce(factor)
    return img, tuple(notes)


def _to_rgb(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> RGB float32 [0, 1]; grey-level modes are repeated in three channels."""
    if img.mode in ("RGB", "RGBX", "YCbCr", "CMYK", "HSV") and "transparency" not in img.info:
        return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    if img.mode in ("P", "PA", "RGBA", "RGBa") or "transparency" in img.info:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3:4]
        lum = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        drawn = lum[alpha[..., 0] > 0.5]
        ground = 0.0 if drawn.size and np.percentile(drawn, 10) > 0.5 else 1.0
        return (rgba[..., :3] * alpha + ground * (1.0 - alpha)).astype(np.float32)
    gray = _to_gray(img)
    return np.repeat(gray[..., None], 3, axis=2)


def _to_gray(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> grayscale float32 [0, 1]; transparency is flattened onto a contrasting ground."""
    if img.mode.startswith("I;16"):
        return np.asarray(img, dtype=np.float32) / 65535.0
    if img.mode in ("I", "F"):  # 32-bit integer or float samples: scale the finite range to [0, 1]
        a = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(a.min()), float(a.max())
        return ((a - lo) / (hi - lo)).astype(np.float32) if hi > lo else np.zeros(a.shape, np.float32)
    if img.mode == "LAB":
        return np.asarray(img.getchannel("L"), dtype=np.float32) / 255.0
    if img.mode in ("P", "PA", "LA", "RGBA", "RGBa", "La", "1") or "transparency" in img.info:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3]
        lum = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        drawn = lum[alpha > 0.5]  # white ground (as a viewer shows it) unless even the darkest drawn tenth is light
        ground = 0.0 if drawn.size and np.percentile(drawn, 10) > 0.5 else 1.0
        return (lum * alpha + ground * (1.0 - alpha)).astype(np.float32)
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0


_IMAGE_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*")


def _not_an_image_reason(data: bytes) -> str:
    """One line naming what an unreadable upload looks like (damaged image, SVG, web page, PDF, archive, text)."""
    head = data[:2048]
    if head.startswith(_IMAGE_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return DAMAGED
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "SVG drawings are not supported: export the ECG as a PNG or JPEG image."
    if text.startswith((b"<!doctype html", b"<html")) or b"<html" in text[:512]:
        return "This is a web page (HTML), not an image: save the picture itself as PNG or JPEG."
    if head.startswith(b"%PDF"):
        return "PDF documents are not supported: export the ECG as a PNG or JPEG image."
    if head.startswith(b"%!PS"):
        return "PostScript files are not supported: export the ECG as a PNG or JPEG image."
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b", b"7z\xbc\xaf", b"Rar!")):
        return "This is a compressed archive, not an image: extract it and upload the images."
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"hevc", b"mif1", b"msf1", b"avif", b"avis"):
        return "HEIC and AVIF photos are not supported: convert the photo to JPEG or PNG."
    if _looks_like_text(head):
        return "This is a text file, not an image."
    if head.startswith(b"BM"):
        return DAMAGED
    return UNSUPPORTED


def _looks_like_text(head: bytes) -> bool:
    """UTF-8 (possibly cut mid-character at the end) without NULs, and almost all printable."""
    if b"\x00" in head:
        return False
    for cut in range(4):
        try:
            text = head[: len(head) - cut].decode("utf-8")
            break
        except UnicodeDecodeError:
            continue
    else:
        return False
    printable = sum(ch.isprintable() or ch in "\t\r\n\f" for ch in text)
    return printable >= 0.95 * max(1, len(text))


# ---------------------------------------------------------------- file names and batches

def display_name(name: str, max_len: int = DISPLAY_NAME_MAX) -> str:
    """A user-supplied file name made safe to show: no folders, no control or invisible characters, no
    backticks, at most max_len characters (extension kept). File names are only ever displayed, never used
    as paths; show them as plain text or inside a Markdown code span.
    """
    text = unicodedata.normalize("NFC", str(name)).replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(" " if unicodedata.category(ch) in ("Zl", "Zp") or ch.isspace() else ch
                   for ch in text if not unicodedata.category(ch).startswith("C") or ch in "\t\n\r")
    text = " ".join(text.split()).replace("`", "'")  # no backtick: safe inside a Markdown code span
    if text in ("", ".", ".."):
        return "unnamed file"
    if len(text) > max_len:
        stem, dot, ext = text.rpartition(".")
        ext = dot + ext if dot and stem and len(ext) <= 8 else ""
        text = text[: max(1, max_len - len(ext) - 1)].rstrip() + "\u2026" + ext
    return text


@dataclass(frozen=True)
class DecodeResult:
    """One uploaded file: its display name and either the decoded picture (with notes) or the reason it failed."""

    name: str
    gray: np.ndarray | None = field(default=None, repr=False, compare=False)
    error: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None


def decode_batch(files: Sequence[tuple[str, bytes]], max_files: int = MAX_FILES_PER_BATCH) -> list[DecodeResult]:
    """(file name, bytes) pairs -> one DecodeResult each, in order; a bad file never affects the others.

    Files beyond max_files are not decoded: they get an error telling the user to upload them separately.
    """
    results = []
    for i, (name, data) in enumerate(files):
        shown = display_name(name)
        if i >= max_files:
            results.append(DecodeResult(shown, error=f"Not processed: at most {max_files} files at a time "
                                                     f"(this upload has {len(files)}); upload the rest separately."))
            continue
        try:
            gray, notes = decode_image_with_notes(data)
            results.append(DecodeResult(shown, gray, None, notes))
        except ImageInputError as exc:
            results.append(DecodeResult(shown, error=str(exc)))
    return results


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


def in_training_form(gray: np.ndarray, size: int = IMAGE_SIZE, margin: int = IMAGE_MARGIN) -> bool:
    """True for a size x size picture on a black frame whose trace touches all four inner edges:
    what `normalise_waveform` outputs (and what the dataset and sample images hold)."""
    g = np.asarray(gray)
    if g.shape != (size, size) or margin <= 0:
        return False
    ink = g > 0
    inner = ink[margin:-margin, margin:-margin]
    frame_clear = ink.sum() == inner.sum()
    return bool(frame_clear and inner[0].any() and inner[-1].any() and inner[:, 0].any() and inner[:, -1].any())


def normalise_waveform(gray: np.ndarray, size: int = IMAGE_SIZE, margin: int = IMAGE_MARGIN) -> np.ndarray:
    """Grayscale ECG picture -> training form: white trace on black, cropped to the trace, size x size.

    A picture already in training form is returned unchanged, so normalising is idempotent and a saved
    sample image classifies exactly as the array it was saved from.
    """
    g = np.asarray(gray, np.float32)
    for candidate in (g, 1.0 - g):  # also the same image saved dark-on-light
        if in_training_form(candidate, size, margin):
            return np.clip(candidate * 255.0 + 0.5, 0, 255).astype(np.uint8)
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


def normalise_rendered(images: np.ndarray, size: int = IMAGE_SIZE, margin: int = IMAGE_MARGIN) -> np.ndarray:
    """`normalise_waveform` of each uint8 picture (n, size, size) read as im / 255, vectorised, bit-identical.

    A picture holds at most 256 grey levels, so every per-pixel step of contrast_map and normalise_waveform
    is a table over the levels, and the medians and the percentile are order statistics of the levels
    (every step is monotone). Only the crop and its resize are per picture. tests/test_record_mode.py
    compares it with normalise_waveform."""
    g8 = np.ascontiguousarray(images, dtype=np.uint8)
    n = len(g8)
    out = np.zeros((n, size, size), dtype=np.uint8)
    if n == 0:
        return out
    levels = np.arange(256, dtype=np.float32) / 255.0  # the values im.astype(float32) / 255.0 takes

    # in_training_form of each picture, as it is (ink: > 0) and inverted (ink: < 255)
    as_is = np.zeros(n, dtype=bool)
    as_inverse = np.zeros(n, dtype=bool)
    if margin > 0:
        frame = np.concatenate([g8[:, :margin].reshape(n, -1), g8[:, -margin:].reshape(n, -1),
                                g8[:, :, :margin].reshape(n, -1), g8[:, :, -margin:].reshape(n, -1)], axis=1)
        inner = g8[:, margin:-margin, margin:-margin]
        edges = (inner[:, 0], inner[:, -1], inner[:, :, 0], inner[:, :, -1])
        as_is = frame.max(axis=1) == 0
        for edge in edges:
            as_is &= edge.max(axis=1) > 0
        as_inverse = ~as_is & (frame.min(axis=1) == 255)
        for edge in edges:
            as_inverse &= edge.min(axis=1) < 255
    out[as_is] = np.clip(levels * 255.0 + 0.5, 0, 255).astype(np.uint8)[g8[as_is]]
    out[as_inverse] = np.clip((1.0 - levels) * 255.0 + 0.5, 0, 255).astype(np.uint8)[g8[as_inverse]]
    todo = np.flatnonzero(~as_is & ~as_inverse)
    if todo.size == 0:
        return out
    if todo.size < n:
        g8 = g8[todo]
    m = todo.size
    # contrast_map: dark-on-light pictures (border median over 0.5) are inverted; the border's middle
    # values are order statistics of its levels too
    border = np.concatenate([g8[:, :2].reshape(m, -1), g8[:, -2:].reshape(m, -1),
                             g8[:, :, :2].reshape(m, -1), g8[:, :, -2:].reshape(m, -1)], axis=1)
    half = border.shape[1] // 2
    middle = np.partition(border, [half - 1, half], axis=1)[:, half - 1: half + 1]
    middle = middle[:, 1:] if border.shape[1] % 2 else middle
    invert = np.mean(levels[middle], axis=1) > 0.5
    value = np.where(invert[:, None], (1.0 - levels)[None, :], levels[None, :])  # (m, 256) float32
    total = size * size
    flat = g8.reshape(m, -1)
    # the order statistics needed (medians, the 99.9th percentile, the maximum) of the levels, for either
    # direction: the k-th smallest value of an inverted picture is its (total - 1 - k)-th smallest level
    virtual = (total - 1) * float(np.true_divide(99.9, 100))  # np.percentile's index, method 'linear'
    lo_i = int(np.floor(virtual))
    wanted = {total // 2 - 1, total // 2, lo_i, min(lo_i + 1, total - 1), total - 1} if total > 1 else {0}
    known: dict[int, np.ndarray] = {}
    if total > 1000 and lo_i + 1 < total and not invert.any() and all(
            total - cv2.countNonZero(row) > total // 2 for row in flat):
        # the rendered case: over half the pixels black, so the middle values are level 0 and only the
        # top needs ordering (one split at the percentile's lower index)
        part = np.partition(flat, lo_i, axis=1)
        above = part[:, lo_i + 1:]
        known = {total // 2 - 1: np.zeros(m, np.uint8), total // 2: np.zeros(m, np.uint8), lo_i: part[:, lo_i],
                 lo_i + 1: above.min(axis=1), total - 1: above.max(axis=1)}
    else:
        wanted = sorted({max(k, 0) for k in wanted} | {total - 1 - max(k, 0) for k in wanted})
        part = np.partition(flat, wanted, axis=1)

    def kth(k: int) -> np.ndarray:  # the k-th smallest value of each picture (0-based)
        if k in known:
            return levels[known[k]]
        return np.where(invert, 1.0 - levels[part[:, total - 1 - k]], levels[part[:, k]])

    if total % 2:
        background = kth(total // 2)
    else:  # np.median: the float32 mean of the two middle values
        background = np.mean(np.stack([kth(total // 2 - 1), kth(total // 2)], axis=1), axis=1)
    background = background.astype(np.float32)
    top_c = kth(total - 1) - background
    if total > 1000:  # np.percentile(c, 99.9), method 'linear' (numpy's _lerp with a scalar gamma)
        gamma = float(virtual - lo_i)
        a = kth(lo_i) - background
        b = kth(min(lo_i + 1, total - 1)) - background
        diff = b - a
        top = b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma
        top = np.maximum(top.astype(np.float64), top_c.astype(np.float64) * 0.5)
    else:
        top = top_c.astype(np.float64)
    blank = top <= 1e-6
    top32 = np.where(blank, 1.0, top).astype(np.float32)
    c = np.clip((value - background[:, None]) / top32[:, None], 0.0, 1.0)
    c = np.where(c >= GRID_CONTRAST, (c - GRID_CONTRAST) / (1.0 - GRID_CONTRAST), 0.0).astype(np.float32)
    c[blank] = 0.0
    trace = c >= (TRACE_CONTRAST - GRID_CONTRAST) / (1.0 - GRID_CONTRAST)  # (m, 256) per level
    # every step above is monotone, so the trace's levels are those from one level up (down when inverted):
    # a row or column holds trace where its largest (smallest) level is one of them
    has_trace = trace.any(axis=1)
    first = np.argmax(trace, axis=1)
    last = 255 - np.argmax(trace[:, ::-1], axis=1)
    run = trace.sum(axis=1) == last - first + 1
    if not (~has_trace | (run & np.where(invert, first == 0, last == 255))).all():  # cannot happen
        return np.stack([normalise_waveform(im.astype(np.float32) / 255.0, size, margin) for im in images])
    ink_rows, ink_cols = g8.max(axis=2) >= first[:, None], g8.max(axis=1) >= first[:, None]
    if invert.any():
        inv = np.flatnonzero(invert)
        ink_rows[inv] = g8[inv].min(axis=2) <= last[inv, None]
        ink_cols[inv] = g8[inv].min(axis=1) <= last[inv, None]
    ink_rows &= has_trace[:, None]
    ink_cols &= has_trace[:, None]
    inner = size - 2 * margin
    done = np.zeros((m, size, size), dtype=np.uint8)
    y0, y1 = np.argmax(ink_rows, axis=1), size - np.argmax(ink_rows[:, ::-1], axis=1)
    x0, x1 = np.argmax(ink_cols, axis=1), size - np.argmax(ink_cols[:, ::-1], axis=1)
    for i in np.flatnonzero(ink_rows.any(axis=1)).tolist():
        crop = cv2.LUT(g8[i, y0[i]: y1[i], x0[i]: x1[i]], c[i])  # the contrast map's crop, per level
        shrinking = crop.shape[0] > inner or crop.shape[1] > inner
        r = cv2.resize(crop, (inner, inner), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        peak = float(r.max())
        if peak > 0:
            r /= peak
        r *= 255.0
        r += 0.5
        np.clip(r, 0, 255, out=r)
        done[i, margin: margin + inner, margin: margin + inner] = r
    out[todo] = done
    return out


def normalise_spectral(gray: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """Grayscale spectrogram picture -> size x size, min-max scaled uint8."""
    g = cv2.resize(np.asarray(gray, dtype=np.float32), (size, size), interpolation=cv2.INTER_AREA)
    lo, hi = float(g.min()), float(g.max())
    g = (g - lo) / (hi - lo) if hi > lo else np.zeros_like(g)
    return np.clip(g * 255.0 + 0.5, 0, 255).astype(np.uint8)


# Two-lead and overlay (beat over its template) pictures are normalised as trace pictures: rendered ones
# are already in training form.
NORMALISERS = {"waveform": normalise_waveform, "spectral": normalise_spectral, "twolead": normalise_waveform,
               "overlay": normalise_waveform, "twolead_overlay": normalise_waveform}


def normalise(gray: np.ndarray, representation: str = "waveform") -> np.ndarray:
    """Normalise a grayscale picture for the named representation."""
    return NORMALISERS[representation](gray)


def normalise_batch(images: np.ndarray, representation: str = "waveform", workers: int | None = None) -> np.ndarray:
    """Normalise rendered uint8 images (n, h, w) exactly as the app normalises an uploaded one.

    Trace pictures of the model's size take the vectorised normalise_rendered; other large batches are
    split over threads (NumPy and OpenCV release the GIL); the result is identical.
    """
    fn = NORMALISERS[representation]
    if not len(images):
        return np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    images = np.asarray(images)
    if fn is normalise_waveform and images.dtype == np.uint8 and images.shape[1:] == (IMAGE_SIZE, IMAGE_SIZE):
        step = 1024  # bounds the temporary arrays
        return np.concatenate([normalise_rendered(images[i: i + step]) for i in range(0, len(images), step)])

    def run(chunk: np.ndarray) -> np.ndarray:
        return np.stack([fn(im.astype(np.float32) / 255.0) for im in chunk])

    workers = workers or min(4, os.cpu_count() or 1)
    if workers < 2 or len(images) < 64:
        return run(images)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        return np.concatenate(list(pool.map(run, np.array_split(images, workers * 4))))


def load_image(data: bytes, representation: str = "waveform") -> np.ndarray:
    """Untrusted bytes -> normalised uint8 image, or ImageInputError."""
    return normalise(decode_image(data), representation)


def to_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 images (n, size, size) -> float32 (n, size, size, 1) in [0, 1]: what every model eats."""
    a = np.asarray(images)
    if a.ndim == 2:
        a = a[None]
    out = np.empty(a.shape, np.float32)  # one pass, no temporary: the same values as a.astype(float32) / 255
    np.divide(a, np.float32(255.0), out=out, dtype=np.float32)
    return out[..., None]


def encode_png(image: np.ndarray) -> bytes:
    """uint8 image -> PNG bytes (lossless, as sample images are stored)."""
    ok, buf = cv2.imencode(".png", np.asarray(image, dtype=np.uint8))
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()
