"""Hostile and broken uploads: every case gets its exact one-line message, or decodes correctly.

The corpus is generated here (nothing binary is committed). Valid variants of a real rendered ECG beat
(sample_images/) must normalise to nearly the same array as the original: mean absolute difference is
measured against the original and compared with the difference to a wrongly oriented copy.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from ecg_core.picture import imaging
from ecg_core.picture.imaging import (
    MAX_FILES_PER_BATCH,
    ImageInputError,
    decode_batch,
    decode_image,
    decode_image_with_notes,
    display_name,
    normalise_waveform,
)

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"),  # Pillow: corrupt EXIF in truncated files
              pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")]

SAMPLE = Path(__file__).resolve().parent.parent / "sample_images" / "waveform" / "V" / "mitdb_200_396585.png"

EMPTY = "The file is empty (0 bytes)."
DAMAGED = "The image file is damaged or truncated and cannot be decoded."
UNSUPPORTED = "This is not a supported image (PNG, JPEG, BMP, WebP, TIFF or GIF)."
TEXT = "This is a text file, not an image."
HTML = "This is a web page (HTML), not an image: save the picture itself as PNG or JPEG."
SVG = "SVG drawings are not supported: export the ECG as a PNG or JPEG image."
PDF = "PDF documents are not supported: export the ECG as a PNG or JPEG image."
POSTSCRIPT = "PostScript files are not supported: export the ECG as a PNG or JPEG image."
ARCHIVE = "This is a compressed archive, not an image: extract it and upload the images."
HEIC = "HEIC and AVIF photos are not supported: convert the photo to JPEG or PNG."
BOMB = "The image is far too large (limit 25 megapixels)."
ANIMATED = "Animated or multi-page image: only the first frame is used."
ROTATED = "Rotated upright according to the photo's orientation tag."


def too_large(w: int, h: int) -> str:
    return f"The image is too large ({w} x {h} pixels; limit 25 megapixels and 20000 pixels per side)."


def too_small(w: int, h: int) -> str:
    return f"The image is too small ({w} x {h} pixels; at least 16 per side)."


# ---------------------------------------------------------------- builders

def ecg() -> np.ndarray:
    """A real rendered beat: uint8 128 x 128, white trace on black (the training form)."""
    return np.asarray(Image.open(SAMPLE))


def ecg_dark() -> np.ndarray:
    """The same beat as a user would usually have it: dark trace on white."""
    return 255 - ecg()


def save(img: Image.Image | np.ndarray, fmt: str, **kw) -> bytes:
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def blank_png(w: int, h: int) -> bytes:
    """A 1-bit all-black PNG of any size, built row by row: a 20000 x 20000 one is ~50 kB (a decompression bomb)."""
    row = b"\x00" * (1 + (w + 7) // 8)
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(h)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def zip_of_png() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("ecg.png", save(ecg(), "PNG"))
    return buf.getvalue()


def corrupt_idat() -> bytes:
    """Garbage in the middle of the compressed pixel stream (the chunk CRC is not checked on load)."""
    data = bytearray(save(ecg_dark(), "PNG"))
    at = data.index(b"IDAT") + 4
    n = struct.unpack(">I", data[at - 8: at - 4])[0]
    data[at + 2: at + n // 2] = bytes(range(256)) * ((n // 2 - 2) // 256) + b"\xff" * ((n // 2 - 2) % 256)
    return bytes(data)


def exif_rotated(orientation: int) -> bytes:
    """The dark ECG stored transformed so that applying `orientation` shows it upright again."""
    stored = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
              6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}
    exif = Image.Exif()
    exif[0x0112] = orientation
    return save(Image.fromarray(ecg_dark()).transpose(stored[orientation]), "JPEG", quality=95, exif=exif)


def animated(fmt: str, **kw) -> bytes:
    first = Image.fromarray(ecg_dark())
    other = Image.fromarray(np.full((128, 128), 90, np.uint8))
    return save(first, fmt, save_all=True, append_images=[other, first.rotate(90)], **kw)


def rgba_transparent(colour: int = 0) -> bytes:
    a = np.full((128, 128, 4), colour, np.uint8)
    a[..., 3] = ecg()  # trace of one colour, opaque only where drawn
    return save(Image.fromarray(a, "RGBA"), "PNG")


def palette_transparent(a: np.ndarray) -> bytes:
    """Palette PNG whose paper colour (the brightest entry) is transparent."""
    img = Image.fromarray(a).convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    lum = np.asarray(img.getpalette()[: 3 * 32]).reshape(-1, 3).sum(axis=1)
    return save(img, "PNG", transparency=int(np.argmax(lum)))


def red_on_paper() -> np.ndarray:
    t = ecg().astype(np.float32)[..., None] / 255.0
    paper = np.array([255, 240, 235], np.float32)
    return (paper * (1 - t) + np.array([200, 0, 0], np.float32) * t).astype(np.uint8)


def with_grid() -> np.ndarray:
    big = cv2.resize(ecg(), (384, 384), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    paper = np.full((384, 384), 0.97, np.float32)
    paper[::12, :] = paper[:, ::12] = 0.85
    paper[::60, :] = paper[:, ::60] = 0.75
    return ((paper * (1 - big) + 0.05 * big) * 255).astype(np.uint8)


def cmyk_jpeg() -> bytes:
    return save(Image.fromarray(ecg_dark()).convert("CMYK"), "JPEG", quality=95)


def png16(a8: np.ndarray) -> bytes:
    return save(Image.fromarray(a8.astype(np.uint16) * 257), "PNG")


def png16_rgb() -> bytes:
    a = np.repeat(ecg_dark()[..., None].astype(np.uint16) * 257, 3, axis=2)
    ok, buf = cv2.imencode(".png", a)
    assert ok
    return buf.tobytes()


def tiff_float() -> bytes:
    return save(Image.fromarray(ecg_dark().astype(np.float32) / 255.0, "F"), "TIFF")


def multipage_tiff() -> bytes:
    return save(Image.fromarray(ecg_dark()), "TIFF", save_all=True,
                append_images=[Image.fromarray(np.zeros((64, 64), np.uint8))])


# ---------------------------------------------------------------- the corpus

Refused = tuple[str, Callable[[], bytes], str]
REFUSED: list[Refused] = [
    ("zero-byte", lambda: b"", EMPTY),
    ("over 20 MB", lambda: b"\x89PNG" + b"\x00" * (20 * 2**20), "The file is too large (20.0 MB; limit 20 MB)."),
    ("truncated PNG (half)", lambda: save(ecg_dark(), "PNG")[: len(save(ecg_dark(), "PNG")) // 2], DAMAGED),
    ("truncated PNG (header only)", lambda: save(ecg_dark(), "PNG")[:60], DAMAGED),
    ("PNG signature only", lambda: b"\x89PNG\r\n\x1a\n", DAMAGED),
    ("PNG with corrupt pixel stream", corrupt_idat, DAMAGED),
    ("truncated JPEG (half)", lambda: save(ecg_dark(), "JPEG")[: len(save(ecg_dark(), "JPEG")) // 2], DAMAGED),
    ("JPEG start marker only", lambda: b"\xff\xd8\xff\xe0", DAMAGED),
    ("truncated GIF", lambda: save(ecg_dark(), "GIF")[:30], DAMAGED),
    ("truncated BMP", lambda: save(ecg_dark(), "BMP")[:200], DAMAGED),
    ("truncated TIFF", lambda: save(ecg_dark(), "TIFF")[:100], DAMAGED),
    ("truncated WebP", lambda: save(ecg_dark(), "WEBP")[:40], DAMAGED),
    ("text renamed .png", lambda: b"Patient: 12345\nRhythm: sinus\n" * 20, TEXT),
    ("CSV of samples", lambda: "\n".join(f"{i},{np.sin(i / 9):.4f}" for i in range(300)).encode(), TEXT),
    ("UTF-8 text with accents", lambda: "Électrocardiogramme — 心电图\n".encode() * 10, TEXT),
    ("HTML renamed .png", lambda: b"<!DOCTYPE html><html><body><img src='ecg.png'></body></html>", HTML),
    ("HTML without doctype", lambda: b"\n  <html lang='en'><head></head></html>", HTML),
    ("ZIP renamed .png", zip_of_png, ARCHIVE),
    ("gzip", lambda: zlib.compress(b"x" * 100)[:0] + b"\x1f\x8b\x08\x00" + b"\x00" * 20, ARCHIVE),
    ("SVG", lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><path d="M0 0L9 9"/></svg>',
     SVG),
    ("SVG with XML prolog", lambda: b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>', SVG),
    ("PDF", lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", PDF),
    ("PostScript (never handed to Ghostscript)", lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 9 9\n",
     POSTSCRIPT),
    ("HEIC photo", lambda: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64, HEIC),
    ("random bytes", lambda: np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
     UNSUPPORTED),
    ("ICO (valid, unsupported format)", lambda: save(Image.fromarray(ecg_dark()), "ICO"), UNSUPPORTED),
    ("PSD header", lambda: b"8BPS\x00\x01" + b"\x00" * 40, UNSUPPORTED),
    ("decompression bomb 20000 x 20000", lambda: blank_png(20000, 20000), BOMB),
    ("100 megapixels", lambda: blank_png(10000, 10000), too_large(10000, 10000)),
    ("30 megapixels", lambda: blank_png(6000, 5000), too_large(6000, 5000)),
    ("too long a side", lambda: blank_png(30000, 16), too_large(30000, 16)),
    ("1 x 1", lambda: save(np.zeros((1, 1), np.uint8), "PNG"), too_small(1, 1)),
    ("3 x 3", lambda: save(np.zeros((3, 3), np.uint8), "PNG"), too_small(3, 3)),
    ("1 x 1 GIF", lambda: save(np.zeros((1, 1), np.uint8), "GIF"), too_small(1, 1)),
    ("thin strip 1000 x 8", lambda: save(np.zeros((8, 1000), np.uint8), "PNG"), too_small(1000, 8)),
]

Valid = tuple[str, Callable[[], bytes], tuple[str, ...]]
VALID: list[Valid] = [
    ("PNG training form", lambda: save(ecg(), "PNG"), ()),
    ("PNG dark on light (inverted colours)", lambda: save(ecg_dark(), "PNG"), ()),
    ("RGB PNG", lambda: save(Image.fromarray(ecg_dark()).convert("RGB"), "PNG"), ()),
    ("red trace on pink paper", lambda: save(red_on_paper(), "PNG"), ()),
    ("RGBA, black trace on transparent", rgba_transparent, ()),
    ("RGBA, white trace on transparent", lambda: rgba_transparent(255), ()),
    ("LA PNG", lambda: save(Image.fromarray(ecg_dark()).convert("LA"), "PNG"), ()),
    ("palette PNG", lambda: save(Image.fromarray(ecg_dark()).convert("P"), "PNG"), ()),
    ("palette PNG with transparency", lambda: palette_transparent(ecg_dark()), ()),
    ("1-bit PNG", lambda: save(Image.fromarray(ecg_dark()).convert("1"), "PNG"), ()),
    ("16-bit grayscale PNG", lambda: png16(ecg_dark()), ()),
    ("16-bit RGB PNG", png16_rgb, ()),
    ("grayscale JPEG", lambda: save(ecg_dark(), "JPEG", quality=90), ()),
    ("colour JPEG", lambda: save(red_on_paper(), "JPEG", quality=85), ()),
    ("progressive JPEG", lambda: save(ecg_dark(), "JPEG", quality=90, progressive=True), ()),
    ("CMYK JPEG", cmyk_jpeg, ()),
    *[(f"EXIF orientation {o} JPEG", lambda o=o: exif_rotated(o), (ROTATED,)) for o in range(2, 9)],
    ("GIF", lambda: save(ecg_dark(), "GIF"), ()),
    ("animated GIF", lambda: animated("GIF"), (ANIMATED,)),
    ("animated WebP", lambda: animated("WEBP", lossless=True), (ANIMATED,)),
    ("animated PNG", lambda: animated("PNG"), (ANIMATED,)),
    ("multi-page TIFF", multipage_tiff, (ANIMATED,)),
    ("BMP", lambda: save(ecg_dark(), "BMP"), ()),
    ("LZW TIFF", lambda: save(ecg_dark(), "TIFF", compression="tiff_lzw"), ()),
    ("32-bit float TIFF", tiff_float, ()),
    ("lossless WebP", lambda: save(ecg_dark(), "WEBP", lossless=True), ()),
    ("lossy WebP", lambda: save(ecg_dark(), "WEBP", quality=85), ()),
    ("on gridded paper, 384 px", lambda: save(with_grid(), "PNG"), ()),
    ("on gridded paper, JPEG", lambda: save(with_grid(), "JPEG", quality=75), ()),
    ("large 3000 x 3000 (reduced on decode)",
     lambda: save(cv2.resize(ecg_dark(), (3000, 3000), interpolation=cv2.INTER_LINEAR), "PNG"), ()),
    ("large palette PNG with transparency, 4000 x 2500",
     lambda: palette_transparent(cv2.resize(ecg_dark(), (4000, 2500))), ()),
    ("large 16-bit PNG, 2100 x 2100", lambda: png16(cv2.resize(ecg_dark(), (2100, 2100))), ()),
    ("non-square 400 x 200 with margins",
     lambda: save(np.pad(cv2.resize(ecg_dark(), (300, 150)), ((25, 25), (50, 50)), constant_values=255), "PNG"),
     ()),
    ("PNG with trailing garbage", lambda: save(ecg_dark(), "PNG") + b"\x00garbage" * 10, ()),
]


def test_corpus_is_large_enough():
    assert len(REFUSED) + len(VALID) >= 40


@pytest.mark.parametrize("data, message", [(f(), m) for _, f, m in REFUSED], ids=[c[0] for c in REFUSED])
def test_refused_with_exact_message(data: bytes, message: str):
    with pytest.raises(ImageInputError) as info:
        decode_image(data)
    assert str(info.value) == message
    assert "\n" not in str(info.value) and info.value.__cause__ is None


@pytest.mark.parametrize("data, notes", [(f(), n) for _, f, n in VALID], ids=[c[0] for c in VALID])
def test_valid_variant_normalises_like_the_original(data: bytes, notes: tuple[str, ...]):
    gray, got_notes = decode_image_with_notes(data)
    assert gray.dtype == np.float32 and gray.ndim == 2 and np.isfinite(gray).all()
    assert 0.0 <= gray.min() and gray.max() <= 1.0
    assert max(gray.shape) <= imaging.MAX_DECODED_SIDE
    assert got_notes == notes
    original = ecg().astype(np.float32) / 255.0
    out = normalise_waveform(gray).astype(np.float32) / 255.0
    mad = float(np.abs(out - original).mean())
    wrong = min(float(np.abs(out - np.rot90(original, k)).mean()) for k in (1, 2, 3))
    mirrored = float(np.abs(out - original[:, ::-1]).mean())
    assert mad < 0.04, f"mean abs diff {mad:.4f}"
    assert mad < 0.5 * min(wrong, mirrored), "orientation lost"


def test_polarity_and_orientation_of_decoded_pixels():
    """A marker in the top-left corner, dark on white, survives every lossless format as stored."""
    a = np.full((40, 60), 255, np.uint8)
    a[2:10, 3:15] = 0
    for fmt in ("PNG", "BMP", "TIFF", "GIF", "WEBP"):
        kw = {"lossless": True} if fmt == "WEBP" else {}
        g = decode_image(save(a, fmt, **kw))
        assert g.shape == (40, 60), fmt
        assert np.abs(g - a / 255.0).max() < 1e-6, fmt


def test_first_frame_is_the_one_used():
    gray = decode_image(animated("GIF"))
    assert np.abs(gray - ecg_dark() / 255.0).mean() < 0.01


def test_wrong_extension_is_irrelevant():
    """Content decides, never the name: PNG bytes called .jpg, JPEG bytes called .gif decode fine."""
    results = decode_batch([("ecg.jpg", save(ecg_dark(), "PNG")), ("ecg.gif", save(ecg_dark(), "JPEG")),
                            ("notes.png", b"just text")])
    assert [r.ok for r in results] == [True, True, False]
    assert results[2].error == TEXT


@pytest.mark.parametrize("name, shown", [
    ("../../x.png", "x.png"),
    ("..\\..\\windows\\system32\\x.png", "x.png"),
    ("/etc/passwd", "passwd"),
    ("C:\\Users\\ana\\Desktop\\ecg 1.png", "ecg 1.png"),
    ("ecg\u202egnp.exe", "ecggnp.exe"),  # right-to-left override removed
    ("a\x00b\x1b[31mred\x07.png", "ab[31mred.png"),
    ("line\nbreak\r\ttab.png", "line break tab.png"),
    ("zero\u200bwidth.png", "zerowidth.png"),
    ("x` ![t](https://evil.example/t.png) `.png", "t.png) '.png"),  # no code-span break-out
    ("a`b`.png", "a'b'.png"),
    ("  spaced   out  .png", "spaced out .png"),
    ("électrocardiogramme_心电图.png", "électrocardiogramme_心电图.png"),
    ("e\u0301cg.png", "\u00e9cg.png"),  # NFD -> NFC
    ("", "unnamed file"),
    ("..", "unnamed file"),
    ("dir/", "unnamed file"),
    ("x" * 300 + ".png", "x" * 55 + "\u2026.png"),
    ("y" * 300, "y" * 59 + "\u2026"),
])
def test_display_name(name: str, shown: str):
    assert display_name(name) == shown
    assert len(display_name(name)) <= imaging.DISPLAY_NAME_MAX


def test_batch_isolates_failures_and_limits_count():
    good = save(ecg_dark(), "PNG")
    files = [(f"beat{i}.png", good) for i in range(MAX_FILES_PER_BATCH + 5)]
    files[3] = ("../../broken.png", good[:100])
    files[7] = ("empty.png", b"")
    results = decode_batch(files)
    assert len(results) == len(files)
    assert results[3].name == "broken.png" and results[3].error == DAMAGED and results[3].gray is None
    assert results[7].error == EMPTY
    assert all(r.ok and r.gray is not None for i, r in enumerate(results[:MAX_FILES_PER_BATCH]) if i not in (3, 7))
    over = (f"Not processed: at most {MAX_FILES_PER_BATCH} files at a time (this upload has "
            f"{MAX_FILES_PER_BATCH + 5}); upload the rest separately.")
    assert [r.error for r in results[MAX_FILES_PER_BATCH:]] == [over] * 5
    assert decode_batch([]) == []


def test_batch_notes_say_first_frame_used():
    (r,) = decode_batch([("anim.gif", animated("GIF"))])
    assert r.ok and r.notes == (ANIMATED,)
