"""Patient-wise cross-validation on the committed excerpt, calibration and the uncertain threshold."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ecg_core.data import dataset
from ecg_core.model import calibration, crossval
from ecg_core.model.evaluate import expected_calibration_error

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def excerpt() -> dataset.Dataset:
    return dataset.build(DATA / "mitdb", DATA / "vfdb", "overlay")


def test_dataset_carries_features(excerpt):
    from ecg_core.signal.features import N_FEATURES

    assert excerpt.features.shape == (len(excerpt), N_FEATURES)
    assert np.isfinite(excerpt.features).all()
    # 207 and 232 have V1 as their second lead, vfdb 430 has none
    has_v1 = excerpt.features[:, 14] == 1
    assert has_v1[excerpt.groups == "mitdb/207"].all() and not has_v1[excerpt.groups == "vfdb/430"].any()


def test_folds_spread_patients_and_never_share_a_record(excerpt):
    parts = crossval.protocol_parts(excerpt, "kfold", k=5)
    tested = [r for p in parts for r in p["test_records"]]
    assert sorted(tested) == sorted(set(excerpt.groups.tolist()))  # every record tested exactly once
    for p in parts:
        assert not set(p["test_records"]) & (set(p["fit_records"]) | set(p["val_records"]))
        assert not set(p["fit_records"]) & set(p["val_records"])
        assert len(p["test"]) + len(p["val"]) + len(p["fit"]) == len(excerpt)


def test_same_patient_records_share_a_fold():
    groups = np.array(["mitdb/201"] * 5 + ["mitdb/202"] * 5 + [f"mitdb/1{i:02d}" for i in range(10)])
    labels = np.zeros(groups.size, np.int8)
    folds = crossval.assign_folds(groups, labels, k=5)
    assert folds["mitdb/201"] == folds["mitdb/202"]


def test_crossval_end_to_end(excerpt, tmp_path):
    recipe = replace(crossval.RECIPES["features_only"], trees=10)
    result = crossval.crossval(excerpt, recipe, "kfold", work_dir=tmp_path, log=lambda *_: None, k=5)
    assert crossval.pooled_equals_folds(result)
    assert sum(np.sum(f_cm) for f_cm in (np.array(m) for m in result["per_patient_confusion"].values())) \
        == len(excerpt)
    assert len(result["per_fold"]) == 5 and 0.0 <= result["pooled"]["macro_f1"] <= 1.0
    # resumable: a second run reads the folds back and gives the same result
    again = crossval.crossval(excerpt, recipe, "kfold", work_dir=tmp_path, log=lambda *_: None, k=5)
    assert again["pooled"] == result["pooled"]


def test_network_fold_and_ds1_protocol(excerpt, tmp_path):
    recipe = replace(crossval.RECIPES["features"], epochs=1, cap_per_class=40)
    part = crossval.protocol_parts(excerpt, "ds1-ds2")[0]
    assert part["test_records"] == ["mitdb/232"]  # the excerpt's only DS2 record
    out = crossval.run_fold(excerpt, part, recipe, tmp_path, log=lambda *_: None)
    assert out["raw"].shape == (len(part["test"]), 6) and np.allclose(out["raw"].sum(axis=1), 1, atol=1e-4)
    assert (tmp_path / "fold0.keras").exists() and 0.25 <= out["temperature"] <= 8


def test_temperature_scaling_is_monotone_and_keeps_the_class():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(6) * 0.3, size=200).astype(np.float32)
    tops = [calibration.with_temperature(p, t).max(axis=1).mean() for t in (0.5, 1.0, 2.0, 4.0)]
    assert all(a > b for a, b in zip(tops, tops[1:]))
    np.testing.assert_array_equal(calibration.with_temperature(p, 3.0).argmax(axis=1), p.argmax(axis=1))
    np.testing.assert_allclose(calibration.with_temperature(p, 1.0), p, atol=1e-5)


def test_fit_temperature_undoes_overconfidence():
    """Labels drawn from softened probabilities: the fitted temperature is about the softening factor."""
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, size=(4000, 6))
    true = np.exp(logits / 2.0)
    true /= true.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(6, p=row) for row in true])
    shown = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    t = calibration.fit_temperature(shown, y)
    assert 1.7 <= t <= 2.3
    assert expected_calibration_error(calibration.with_temperature(shown, t), y) < \
        expected_calibration_error(shown, y)


def test_expected_calibration_error_by_hand():
    # two bins: confidence 0.9 right 1 of 2 (gap 0.4), confidence 0.6 right 2 of 2 (gap 0.4) -> ECE 0.4
    p = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    y = np.array([0, 1, 0, 0])
    assert expected_calibration_error(p, y) == pytest.approx(0.4)


def test_uncertain_threshold_reaches_the_error_rate():
    rng = np.random.default_rng(2)
    conf = rng.uniform(0.3, 1.0, 5000)
    y = np.zeros(5000, int)
    pred = np.where(rng.random(5000) < conf, 0, 1)  # right with probability = confidence
    probs = np.stack([np.where(pred == 0, conf, 1 - conf), np.where(pred == 0, 1 - conf, conf)], axis=1)
    t = calibration.uncertain_threshold(probs, y, 0.05)
    stats = calibration.answered_stats(probs, y, t)
    assert stats["answered_error_rate"] <= 0.05 and 0.85 <= t <= 0.99


def test_fair_shares_fill_each_group_equally():
    assert dataset.fair_shares(np.array([10, 100, 1000]), 300).tolist() == [10, 100, 190]
    assert dataset.fair_shares(np.array([2000, 2000, 397, 85]), 3000).tolist() == [1259, 1259, 397, 85]
    assert dataset.fair_shares(np.array([5, 5]), 100).tolist() == [5, 5]
    assert dataset.fair_shares(np.array([3, 3, 3]), 4).sum() == 4


def test_patient_balanced_cap_shares_a_class_between_patients():
    labels = np.array([0] * 900 + [0] * 100 + [1] * 50)
    groups = np.array(["a"] * 900 + ["b"] * 100 + ["a"] * 50)
    idx = dataset.cap_indices_by_group(labels, groups, 200, seed=0)
    assert np.all(np.diff(idx) > 0)
    kept = groups[idx][labels[idx] == 0]
    assert (kept == "a").sum() == 100 and (kept == "b").sum() == 100  # not 180 / 20 as a random cap gives
    assert (labels[idx] == 1).sum() == 50


def test_recipe_holds_patient_rr_and_stale_features_are_refused(excerpt, tmp_path):
    from ecg_core.signal.features import FEATURE_NAMES, NEUTRAL_RR_S

    view = crossval.model_view(excerpt, crossval.RECIPES["features"])
    assert (view.features[:, FEATURE_NAMES.index("rr_pre_s")] == NEUTRAL_RR_S).all()
    assert (excerpt.features[:, FEATURE_NAMES.index("rr_pre_s")] != NEUTRAL_RR_S).any()  # the source is kept
    stale = replace(excerpt, meta={**excerpt.meta, "features_version": "1"})
    with pytest.raises(ValueError, match="rebuild it"):
        crossval.crossval(stale, crossval.RECIPES["features_only"], work_dir=tmp_path, log=lambda *_: None)


def test_blend_mixes_the_folds_network_and_trees(excerpt, tmp_path):
    recipe = replace(crossval.RECIPES["blend"], epochs=1, cap_per_class=40, trees=10)
    result = crossval.crossval(excerpt, recipe, "kfold", work_dir=tmp_path, log=lambda *_: None, k=3)
    assert crossval.pooled_equals_folds(result)
    assert {"features_kfold", "features_only_kfold"} <= {p.name for p in tmp_path.iterdir()}
    for fold in result["per_fold"]:
        assert set(fold["weight_network"]) == {"two_lead", "one_lead", "lone"}
        assert set(fold["weight_network"].values()) <= set(crossval.BLEND_WEIGHTS)
    # the blend at a share of 1 is the network alone, at 0 the trees alone
    net = np.load(tmp_path / "features_kfold" / "fold0.npz")
    boost = np.load(tmp_path / "features_only_kfold" / "fold0.npz")
    t_net, t_trees = 1.3, 0.8
    np.testing.assert_allclose(calibration.blend(net["raw"], boost["raw"], 1.0, t_net, t_trees),
                               calibration.with_temperature(net["raw"], t_net), atol=1e-6)
    np.testing.assert_allclose(calibration.blend(net["raw"], boost["raw"], 0.0, t_net, t_trees),
                               calibration.with_temperature(boost["raw"], t_trees), atol=1e-6)
