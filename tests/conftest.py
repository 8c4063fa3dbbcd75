"""Shared fixtures: the committed excerpt and a small real dataset built from it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
TEST_DATA = ROOT / "tests" / "data"
MITDB = TEST_DATA / "mitdb"
VFDB = TEST_DATA / "vfdb"


@pytest.fixture(scope="session")
def excerpt_dataset():
    """The real pipeline (read, filter, cut, render, normalise) on the committed excerpt."""
    from ecg_core.data import dataset

    return dataset.build(MITDB, VFDB, "waveform")


def write_blend_model(dest: Path, mix: dict, excerpt=None) -> Path:
    """A blend model folder in dest: the shipped network (ecgnet_lite_features_all) with trees fitted on the
    excerpt (overlay dataset; built when not given) and a default card named "b" mixing them by `mix`."""
    import json
    import shutil

    import numpy as np

    from ecg_core.data import dataset
    from ecg_core.model import crossval

    network = ROOT / "models" / "ecgnet_lite_features_all.keras"
    excerpt = excerpt if excerpt is not None else dataset.build(MITDB, VFDB, "overlay")
    recipe = crossval.RECIPES["features_only"]
    view = crossval.model_view(excerpt, recipe)
    crossval.fit_boosting(view, np.arange(len(view)), 0, recipe).save(dest / "b.trees.npz")
    shutil.copyfile(network, dest / "b.keras")
    card = json.loads(network.with_suffix(".json").read_text())
    card.update(name="b", default=True, temperature=1.2, blend={"trees": "b.trees.npz", **mix})
    (dest / "b.json").write_text(json.dumps(card))
    return dest
