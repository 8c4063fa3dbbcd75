"""A blend card: the network and its trees, each calibrated, mixed by the card's share; one-line refusals when
the trees file is missing or unusable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ecg_core.data import dataset
from ecg_core.model import calibration, predict
from ecg_core.model.predict import ModelError
from ecg_core.signal.features import (
    FEATURE_NAMES,
    N_FEATURES,
    READING_KINDS,
    reading_kind,
    without_patient_rr,
    without_rr,
    without_v1,
)
from tests.conftest import write_blend_model

DATA = Path(__file__).parent / "data"
NETWORK = Path(__file__).resolve().parent.parent / "models" / "ecgnet_lite_features_all.keras"
SHARES = {"two_lead": 0.25, "one_lead": 0.75, "lone": 0.5}
MIX = {"weight_network": SHARES, "temperature_network": 1.5, "temperature_trees": 0.8}


@pytest.fixture(scope="module")
def excerpt() -> dataset.Dataset:
    return dataset.build(DATA / "mitdb", DATA / "vfdb", "overlay")


@pytest.fixture()
def blend_dir(excerpt, tmp_path) -> Path:
    return write_blend_model(tmp_path, MIX, excerpt)


def test_blend_is_the_calibrated_mix_of_its_parts(blend_dir, excerpt):
    clf = predict.load(models_dir=blend_dir)
    images, features = excerpt.images[:64], excerpt.features[:64].copy()
    features[32:] = without_v1(features[32:])  # read as one lead: both shares of the mix are used
    parts = clf.parts_proba(images, features)
    net_raw = clf.model.predict((images[..., None].astype(np.float32) / 255.0, without_patient_rr(features)),
                                verbose=0)
    np.testing.assert_allclose(parts["network"], calibration.with_temperature(net_raw, 1.5), atol=1e-4)
    kinds = reading_kind(features)
    assert {0, 1} <= set(kinds.tolist())
    w = np.array([SHARES[k] for k in READING_KINDS])[kinds][:, None]
    mixed = w * parts["network"] + (1 - w) * parts["trees"]
    np.testing.assert_allclose(clf.predict_proba(images, features), calibration.with_temperature(mixed, 1.2),
                               atol=1e-4)
    np.testing.assert_allclose(parts["blend"], clf.predict_proba(images, features), atol=1e-6)
    assert clf.predict_proba(images[:0], features[:0]).shape == (0, 6)


def test_reading_kinds():
    f = np.zeros((4, N_FEATURES), np.float32)
    f[0, 14] = 1.0  # has_v1
    f[3, FEATURE_NAMES.index("has_lead2")] = 1.0  # a second lead other than V1
    f[1, 6] = 1.0  # rr_known
    assert reading_kind(f).tolist() == [0, 1, 2, 0]
    assert (reading_kind(without_v1(f)) != 0).all() and (reading_kind(without_rr(f)) != 1).all()


def test_a_card_without_a_share_per_reading_kind_is_refused(blend_dir):
    card = json.loads((blend_dir / "b.json").read_text())
    card["blend"]["weight_network"] = 0.5
    (blend_dir / "b.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="no network share for each of"):
        predict.load(models_dir=blend_dir)


def test_missing_or_corrupt_trees_are_refused_in_one_line(blend_dir):
    (blend_dir / "b.trees.npz").write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(ModelError, match="not a tree model file.*git checkout -- models/"):
        predict.load(models_dir=blend_dir)
    (blend_dir / "b.trees.npz").unlink()
    with pytest.raises(ModelError, match="b.trees.npz is missing"):
        predict.load(models_dir=blend_dir)


def test_a_network_alone_has_no_parts():
    clf = predict.load(predict.info_from_path(NETWORK))
    with pytest.raises(ModelError, match="not a blend"):
        clf.parts_proba(np.zeros((1, 128, 128), np.uint8), np.zeros((1, 20), np.float32))
