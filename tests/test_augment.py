"""Training-time augmentation: the morphology warp changes wave heights, never widths or timing."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_core.model.augment import augment_image, morph_warp
from ecg_core.picture.imaging import to_model_input


@pytest.fixture(scope="module")
def pictures(excerpt_dataset):
    ds = excerpt_dataset
    picks = [np.nonzero(ds.labels == c)[0][0] for c in np.unique(ds.labels)]
    return to_model_input(ds.images[picks])[..., 0]


def _columns(img: np.ndarray) -> np.ndarray:
    return img.max(axis=0) > 0.05


def _rows(img: np.ndarray) -> tuple[int, int]:
    rows = np.nonzero(img.max(axis=1) > 0.05)[0]
    return int(rows[0]), int(rows[-1])


def test_morph_warp_keeps_columns_and_extent_but_changes_wave_heights(pictures):
    rng = np.random.default_rng(0)
    changed = 0
    for img in pictures:
        out = morph_warp(img, rng)
        assert out.shape == img.shape and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
        assert np.array_equal(_columns(out), _columns(img)), "every column keeps its trace: widths and RR kept"
        assert all(abs(a - b) <= 1 for a, b in zip(_rows(out), _rows(img))), "still spans the same rows"
        heights = [np.ptp(np.nonzero(x[:, lo:lo + 16].max(axis=1) > 0.05)[0])
                   for x in (img, out) for lo in range(0, 128, 16)]
        before, after = np.array(heights[:8], float), np.array(heights[8:], float)
        changed += not np.allclose(before / before.max(), after / after.max(), atol=0.05)
    assert changed >= len(pictures) - 1, "relative wave heights change"


def test_morph_warp_is_seeded_and_leaves_blank_and_spectral_pictures_alone(pictures):
    a = morph_warp(pictures[0], np.random.default_rng(5))
    assert np.array_equal(a, morph_warp(pictures[0], np.random.default_rng(5)))
    assert not np.array_equal(a, morph_warp(pictures[0], np.random.default_rng(6)))
    blank = np.zeros((128, 128), np.float32)
    assert np.array_equal(morph_warp(blank, np.random.default_rng(0)), blank)
    spec = [augment_image(pictures[0], np.random.default_rng(1), "spectral", morph=m) for m in (False, True)]
    assert np.array_equal(*spec), "spectrograms have no wave heights to warp"
    trace = [augment_image(pictures[0], np.random.default_rng(1), "waveform", morph=m) for m in (False, True)]
    assert not np.array_equal(*trace)
