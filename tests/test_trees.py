"""The tree model's arrays predict what scikit-learn's fitted model predicts, and load back from disk."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from ecg_core.model import trees


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 7))
    y = np.select([x[:, 0] > 1, x[:, 1] > 0.5, x[:, 2] + x[:, 3] > 0.8], [1, 3, 5], 0)  # four of the six classes
    x[rng.random(x.shape) < 0.02] = np.nan  # missing values take the side the fit chose
    model = HistGradientBoostingClassifier(max_iter=30, max_depth=3, min_samples_leaf=40, random_state=0)
    return model.fit(x, y), x


def test_arrays_match_sklearn(fitted):
    model, x = fitted
    t = trees.from_sklearn(model)
    probs = t.predict_proba(x)
    assert probs.shape == (len(x), 6)
    np.testing.assert_allclose(probs[:, model.classes_], model.predict_proba(x), atol=1e-6)
    assert (probs[:, [2, 4]] == 0).all()  # the classes it never saw


def test_two_classes(fitted):
    _, x = fitted
    y = np.where(np.nan_to_num(x[:, 0]) > 0, 4, 0)
    model = HistGradientBoostingClassifier(max_iter=10, max_depth=2, random_state=0).fit(x, y)
    probs = trees.from_sklearn(model).predict_proba(x)
    np.testing.assert_allclose(probs[:, [0, 4]], model.predict_proba(x), atol=1e-6)


def test_save_and_load(fitted, tmp_path):
    model, x = fitted
    t = trees.from_sklearn(model)
    t.save(tmp_path / "m.trees.npz")
    back = trees.load(tmp_path / "m.trees.npz")
    np.testing.assert_array_equal(back.predict_proba(x[:100]), t.predict_proba(x[:100]))


def test_unusable_files_and_inputs(fitted, tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a tree model file"):
        trees.load(tmp_path / "bad.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="no baseline"):
        trees.load(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="read 7 beat features"):
        trees.from_sklearn(fitted[0]).predict_proba(np.zeros((2, 5)))


def test_effects_of_measurement_groups():
    from ecg_core.signal.features import FEATURE_GROUPS, FEATURE_NAMES, N_FEATURES

    rng = np.random.default_rng(1)
    x = rng.normal(size=(4000, N_FEATURES))
    x[:, FEATURE_NAMES.index("has_v1")] = 1.0
    y = np.where(x[:, 7] > 0.8, 1, np.where(x[:, 2] < -0.8, 3, 0))  # wide QRS -> L, early -> A
    model = HistGradientBoostingClassifier(max_iter=40, max_depth=2, random_state=0).fit(x, y)
    t = trees.from_sklearn(model, reference=np.zeros(N_FEATURES))
    wide = np.zeros((2, N_FEATURES))
    wide[:, 7] = 2.5
    wide[0, FEATURE_NAMES.index("has_v1")] = 1.0  # the second row has no V1
    effects = t.effects(wide, 1, FEATURE_GROUPS)
    assert set(effects) == set(FEATURE_GROUPS)
    width = effects["QRS width, first lead (and its neighbours')"]
    assert (width > 0.5).all()  # the wide QRS is what speaks for L
    assert abs(effects["prematurity (RR before over the local and recording mean)"][0]) < 0.05
    v1 = effects["QRS in V1 (width, height, polarity, terminal and late part)"]
    assert np.isfinite(v1[0]) and np.isnan(v1[1])  # no V1 in the second row
    with pytest.raises(ValueError, match="no reference"):
        trees.from_sklearn(model).effects(wide, 1, FEATURE_GROUPS)
