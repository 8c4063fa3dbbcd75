"""Grad-CAM sanity checks on the shipped default model, loaded from disk as the app loads it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecg_core.classes import CLASS_KEYS
from ecg_core.model import architectures, predict
from ecg_core.model.explain import GradCam, mass_near_trace
from ecg_core.picture.imaging import load_image, to_model_input
from tests.conftest import ROOT

MIN_MASS_NEAR_TRACE = 0.5  # measured 2026-11-25 on the 36 sample images: median 0.53 (area share 0.40)


@pytest.fixture(scope="module")
def default_clf():
    return predict.load(predict.default_model())


@pytest.fixture(scope="module")
def samples(default_clf):
    """The sample pictures of the default model's representation."""
    folder = ROOT / "sample_images" / default_clf.info.representation
    manifest = pd.read_csv(folder / "manifest.csv", dtype={"record": str})
    return np.stack([load_image((folder / f).read_bytes(), default_clf.info.representation) for f in manifest["file"]])


def measure_mass_near_trace(clf, images: np.ndarray, method: str = "gradcam") -> np.ndarray:
    """Per image: fraction of the predicted class's Grad-CAM mass within 6 px of the trace."""
    cam = GradCam(clf.model, clf.info.card.get("last_conv_layer"))
    probs = clf.predict_proba(images)
    maps = cam.heatmaps(to_model_input(images), probs.argmax(axis=1), method)
    return np.array([mass_near_trace(im, m) for im, m in zip(images, maps)])


def test_maps_are_finite_and_normalised_for_every_class(default_clf, samples):
    cam = GradCam(default_clf.model)
    x = to_model_input(samples[:6])
    for k in range(len(CLASS_KEYS)):
        for method in ("gradcam", "gradcam++"):
            maps = cam.heatmaps(x, [k] * len(x), method)
            assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1 + 1e-6


def test_map_changes_when_weights_are_randomised(default_clf, samples):
    """Adebayo et al. 2018 model-randomisation test: an explanation must depend on the learned weights."""
    x = to_model_input(samples)
    probs = default_clf.predict_proba(samples)
    target = probs.argmax(axis=1)
    trained = GradCam(default_clf.model).heatmaps(x, target)
    random_model = architectures.build(default_clf.info.card["architecture"])  # fresh random init, same graph
    randomised = GradCam(random_model).heatmaps(x, target)
    corr = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(trained, randomised)
            if a.std() > 0 and b.std() > 0]
    assert np.nanmedian(corr) < 0.5, f"maps barely change under weight randomisation (median r={np.nanmedian(corr)})"


def test_most_grad_cam_mass_lies_on_or_near_the_trace(default_clf, samples):
    mass = measure_mass_near_trace(default_clf, samples)
    background = np.array([(cv_near(im)).mean() for im in samples])
    assert np.median(mass) >= MIN_MASS_NEAR_TRACE, f"median mass near trace {np.median(mass):.2f}"
    assert np.median(mass) > np.median(background) + 0.1, "map concentrates on the trace beyond its area share"


def cv_near(image: np.ndarray, radius: int = 6) -> np.ndarray:
    import cv2

    trace = (image > 64).astype(np.uint8)
    return cv2.dilate(trace, np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)) > 0
