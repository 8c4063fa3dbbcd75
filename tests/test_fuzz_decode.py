"""Fuzz the upload decoder: random bytes and mutated valid PNG / JPEG / GIF / BMP / TIFF / WebP files.

Property: decode_image either raises ImageInputError with a one-line message, or returns a finite float32
2-D array in [0, 1] no larger than MAX_DECODED_SIDE per side. Nothing else may escape.

CI runs a bounded, derandomised search (~300 examples per test, a few seconds). A longer random search:
ECG_FUZZ_EXAMPLES=20000 python -m pytest tests/test_fuzz_decode.py
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from ecg_core.picture.imaging import MAX_DECODED_SIDE, ImageInputError, decode_image, decode_image_with_notes

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about corrupt EXIF, bombs

LONG_RUN = "ECG_FUZZ_EXAMPLES" in os.environ
FUZZ = settings(max_examples=int(os.environ.get("ECG_FUZZ_EXAMPLES", "300")), deadline=None,
                derandomize=not LONG_RUN, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _seed_images() -> dict[str, bytes]:
    """Small valid files of every supported format (and a few modes) to mutate."""
    rng = np.random.default_rng(0)
    gray = (rng.random((24, 32)) * 255).astype(np.uint8)
    gray[10:12, :] = 0
    rgb = np.stack([gray, gray[::-1], 255 - gray], axis=-1)
    frames = [Image.fromarray(gray), Image.fromarray(255 - gray)]
    out = {}

    def save(name: str, img: Image.Image, fmt: str, **kw) -> None:
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        out[name] = buf.getvalue()

    save("png", Image.fromarray(gray), "PNG")
    save("png-rgba", Image.fromarray(np.dstack([rgb, gray]), "RGBA"), "PNG")
    save("png-16", Image.fromarray(gray.astype(np.uint16) * 257), "PNG")
    save("png-palette", Image.fromarray(rgb).convert("P"), "PNG")
    save("apng", frames[0], "PNG", save_all=True, append_images=frames[1:])
    save("jpeg", Image.fromarray(rgb), "JPEG", quality=80)
    save("jpeg-progressive", Image.fromarray(gray), "JPEG", quality=80, progressive=True)
    save("jpeg-cmyk", Image.fromarray(rgb).convert("CMYK"), "JPEG")
    exif = Image.Exif()
    exif[0x0112] = 6
    save("jpeg-exif", Image.fromarray(gray), "JPEG", exif=exif)
    save("gif", frames[0], "GIF", save_all=True, append_images=frames[1:])
    save("bmp", Image.fromarray(rgb), "BMP")
    save("tiff", Image.fromarray(rgb), "TIFF", compression="tiff_lzw")
    save("tiff-float", Image.fromarray(gray.astype(np.float32), "F"), "TIFF")
    save("webp", Image.fromarray(rgb), "WEBP", quality=70)
    save("webp-anim", frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    return out


SEEDS = _seed_images()


def check(data: bytes) -> None:
    """The property: ImageInputError with a one-line message, or a well-formed picture."""
    try:
        gray, notes = decode_image_with_notes(data)
    except ImageInputError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg and len(msg) < 200
        return
    assert isinstance(gray, np.ndarray) and gray.dtype == np.float32 and gray.ndim == 2
    assert 1 <= min(gray.shape) and max(gray.shape) <= MAX_DECODED_SIDE
    assert np.isfinite(gray).all() and gray.min() >= 0.0 and gray.max() <= 1.0
    assert all(isinstance(n, str) and "\n" not in n for n in notes)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid seed file with a few byte flips, overwrites, insertions, deletions or a truncation."""
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[at: at + 4] = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff",
                                                     b"\x80\x00\x00\x00", b"\x00\x00\xff\xff"]))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[at: at + draw(st.integers(1, 16))]
        else:
            del data[at:]
    return bytes(data)


def test_seeds_are_valid():
    for name, data in SEEDS.items():
        assert decode_image(data).shape == (24, 32) or name == "jpeg-exif", name


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes):
    check(data)


@FUZZ
@given(st.sampled_from(sorted(SEEDS)).map(SEEDS.get).flatmap(
    lambda seed: st.tuples(st.just(seed), st.binary(min_size=1, max_size=64))).map(lambda t: t[1] + t[0]))
def test_junk_prefix(data: bytes):
    check(data)


@FUZZ
@given(mutated())
def test_mutated_valid_files(data: bytes):
    check(data)


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_every_truncation_point_of_a_header(name: str):
    """Cut each seed at every length up to 300 bytes: the header parsers' edge cases, exhaustively."""
    data = SEEDS[name]
    for n in range(min(len(data), 300)):
        check(data[:n])
