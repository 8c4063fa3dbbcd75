"""The not-an-ECG-image guard on committed and generated pictures (the dataset-scale rates come from
`python -m ecg_core.picture.guard --dataset data/waveform`, which needs data/ and is not run here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecg_core.picture import guard
from ecg_core.picture.guard import THRESHOLDS, GuardResult, check_ecg_image, ecg_variants, non_ecg_corpus
from ecg_core.picture.imaging import decode_image

SAMPLES = sorted((Path(__file__).resolve().parent.parent / "sample_images" / "waveform").glob("*/*.png"))
REASONS = {c.reason for c in THRESHOLDS} | {c.low_reason for c in THRESHOLDS if c.low_reason}


@pytest.fixture(scope="module")
def corpus() -> list[tuple[str, str, np.ndarray]]:
    return [(src, var, decode_image(data)) for src, var, data in non_ecg_corpus("all")]


def test_every_committed_sample_passes():
    assert len(SAMPLES) >= 30
    for p in SAMPLES:
        r = check_ecg_image(decode_image(p.read_bytes()))
        assert r.is_ecg, f"{p.name}: {r.reason} {r.features}"
        assert r.score >= 0 and r.reason == ""


def test_samples_as_users_would_upload_them_pass():
    """Inverted, on gridded paper, JPEG: at most one of the 4 x 36 variants may be flagged."""
    rng = np.random.default_rng(0)
    results = [check_ecg_image(decode_image(data)) for p in SAMPLES
               for data in ecg_variants(decode_image_u8(p), rng).values()]
    assert sum(not r.is_ecg for r in results) <= 1


def decode_image_u8(p: Path) -> np.ndarray:
    return np.clip(decode_image(p.read_bytes()) * 255 + 0.5, 0, 255).astype(np.uint8)


def test_non_ecg_pictures_are_flagged(corpus):
    results = [(src, var, check_ecg_image(g)) for src, var, g in corpus]
    kinds = {src.split(":")[0] for src, _, _ in results}
    assert kinds == {"photo", *guard.GENERATED}
    photos = {src for src, _, _ in results if src.startswith("photo:")}
    assert len(photos) >= 20  # skimage's real photographs
    flagged = [not r.is_ecg for _, _, r in results]
    missed = [f"{s}/{v}" for s, v, r in results if r.is_ecg]
    assert np.mean(flagged) >= 0.95, missed
    for kind in guard.GENERATED:  # each generated kind on its own, too
        assert np.mean([f for (s, _, _), f in zip(results, flagged) if s.startswith(kind)]) >= 0.9, kind


def test_flagged_pictures_get_a_one_line_reason(corpus):
    for _, _, g in corpus[::7]:
        r = check_ecg_image(g)
        assert isinstance(r, GuardResult) and isinstance(r.is_ecg, bool) and isinstance(r.score, float)
        assert r.is_ecg == (r.score >= 0)
        assert r.is_ecg or (r.reason in REASONS and "\n" not in r.reason)


def test_blank_picture_reason():
    r = check_ecg_image(np.ones((200, 300), np.float32))
    assert not r.is_ecg and r.reason == "No ECG trace found: the picture is blank or nearly so."


def test_checkerboard_reason():
    yy, xx = np.mgrid[0:256, 0:256]
    r = check_ecg_image(((yy // 32 + xx // 32) % 2).astype(np.float32))
    assert not r.is_ecg and r.reason.startswith("Too much ink for a single ECG trace")


def test_a_thick_line_across_is_not_mistaken_for_noise():
    """A plain plotted signal (not from the dataset) passes: the guard tests shape, not familiarity."""
    g = np.ones((300, 600), np.float32)
    x = np.arange(600)
    y = (150 + 60 * np.sin(x / 40.0) * np.exp(-((x - 300) / 200.0) ** 2)).astype(int)
    for dx, dy in zip(x, y):
        g[dy - 1: dy + 2, dx] = 0.0
    assert check_ecg_image(g).is_ecg


