"""Gradient-boosted trees over the beat features: fitted with scikit-learn, kept and evaluated as plain arrays.

The fitted model is exported to a few numpy arrays (one row per tree, padded nodes) so the shipped file is an
.npz that loads without pickle and without scikit-learn's private classes, and prediction is a handful of
vectorised steps (the trees are shallow). `tests/test_trees.py` checks the arrays against scikit-learn's own
predict_proba.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecg_core.classes import CLASS_KEYS

ROWS_PER_STEP = 8192  # rows evaluated at once (rows x trees node indices held in memory)


@dataclass(frozen=True)
class Trees:
    """An additive tree model: raw score of class k = baseline[k] + the values of the leaves its trees reach."""

    feature: np.ndarray  # (trees, nodes) feature index of a split node
    threshold: np.ndarray  # (trees, nodes) go left when x <= threshold
    missing_left: np.ndarray  # (trees, nodes) where NaN goes
    left: np.ndarray  # (trees, nodes) child indices
    right: np.ndarray
    is_leaf: np.ndarray  # (trees, nodes)
    value: np.ndarray  # (trees, nodes) leaf values
    tree_class: np.ndarray  # (trees,) position in `classes` each tree adds to
    baseline: np.ndarray  # (classes,)
    classes: np.ndarray  # (classes,) indices into CLASS_KEYS
    n_features: int
    reference: np.ndarray  # (features,) a typical normal beat of the training patients (NaN: not known)

    def raw_scores(self, features: np.ndarray) -> np.ndarray:
        """(n, features) -> (n, classes) summed leaf values plus the baseline."""
        x = np.asarray(features, np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"the trees read {self.n_features} beat features, not an array of shape {x.shape}")
        n_trees, width = self.feature.shape
        offset = np.arange(n_trees) * width  # node arrays read flat: tree t's node j is t * width + j
        feature, threshold, missing_left = self.feature.ravel(), self.threshold.ravel(), self.missing_left.ravel()
        left, right, is_leaf = self.left.ravel() + offset.repeat(width), self.right.ravel() + offset.repeat(width), \
            self.is_leaf.ravel()
        to_class = np.zeros((n_trees, len(self.classes)))
        to_class[np.arange(n_trees), self.tree_class] = 1.0
        out = np.empty((len(x), len(self.classes)), np.float64)
        for start in range(0, len(x), ROWS_PER_STEP):
            xs = x[start: start + ROWS_PER_STEP]
            node = np.broadcast_to(offset, (len(xs), n_trees)).copy()
            for _ in range(width):  # at most one step per level; stops when every row is in a leaf
                leaf = is_leaf[node]
                if leaf.all():
                    break
                v = np.take_along_axis(xs, feature[node], axis=1)
                go_left = np.where(np.isnan(v), missing_left[node], v <= threshold[node])
                node = np.where(leaf, node, np.where(go_left, left[node], right[node]))
            out[start: start + len(xs)] = self.value.ravel()[node] @ to_class + self.baseline
        return out

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """(n, features) -> probabilities (n, 6) in CLASS_KEYS order (0 for a class the trees never saw)."""
        raw = self.raw_scores(features)
        raw -= raw.max(axis=1, keepdims=True)
        p = np.exp(raw)
        probs = np.zeros((len(raw), len(CLASS_KEYS)), np.float32)
        probs[:, self.classes] = p / p.sum(axis=1, keepdims=True)
        return probs

    def effects(self, features: np.ndarray, cls: int, groups: dict[str, tuple[int, ...]],
                temperature: float = 1.0) -> dict[str, np.ndarray]:
        """How much each group of measurements moves the probability of class `cls` (a CLASS_KEYS index):
        p(x) - p(x with the group set to `reference`), per row; positive: the measurement speaks for `cls`.
        Rows without V1 (has_v1 0) get NaN for groups that read V1, rows without a second lead (has_lead2 0) for
        groups that read it."""
        from ecg_core.model.calibration import with_temperature
        from ecg_core.signal.features import FEATURE_NAMES, LEAD2_FEATURES, V1_FEATURES

        if np.isnan(self.reference).any():
            raise ValueError("these trees carry no reference beat")
        x = np.asarray(features, np.float64)
        base = with_temperature(self.predict_proba(x), temperature)[:, cls]
        has_v1 = x[:, FEATURE_NAMES.index("has_v1")] > 0.5
        has_lead2 = x[:, FEATURE_NAMES.index("has_lead2")] > 0.5
        out = {}
        for name, idx in groups.items():
            moved = x.copy()
            moved[:, list(idx)] = self.reference[list(idx)]
            delta = base - with_temperature(self.predict_proba(moved), temperature)[:, cls]
            if set(idx) & set(V1_FEATURES.tolist()):
                delta = np.where(has_v1, delta, np.nan)
            if set(idx) & set(LEAD2_FEATURES.tolist()):
                delta = np.where(has_lead2, delta, np.nan)
            out[name] = delta
        return out

    def save(self, path: Path) -> None:
        np.savez_compressed(path, **{k: np.asarray(getattr(self, k)) for k in self.__dataclass_fields__})


def load(path: Path) -> Trees:
    """Trees saved by Trees.save; ValueError when the file is not one."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{Path(path).name} is not a tree model file ({type(exc).__name__})") from None
    missing = set(Trees.__dataclass_fields__) - set(arrays)
    if missing:
        raise ValueError(f"{Path(path).name} is not a tree model file (no {', '.join(sorted(missing))})")
    arrays["n_features"] = int(arrays["n_features"])
    return Trees(**arrays)


def from_sklearn(model, reference: np.ndarray | None = None) -> Trees:
    """The arrays of a fitted (numerical features only) HistGradientBoostingClassifier; `reference` is the
    typical beat `Trees.effects` compares with."""
    per_iteration = len(model._predictors[0])
    baseline = np.asarray(model._baseline_prediction, np.float64).reshape(-1)
    tree_class = np.tile(np.arange(per_iteration), len(model._predictors))
    if per_iteration == 1:  # two classes: one tree per iteration scores the second class against the first,
        baseline, tree_class = np.array([0.0, baseline[0]]), tree_class + 1  # softmax of (0, score) = sigmoid
    return _from_predictors(model, baseline, tree_class, np.asarray(model.classes_, np.int64), reference)


def from_sklearn_regressor(model) -> Trees:
    """The arrays of a fitted (numerical features only) HistGradientBoostingRegressor: one output,
    `raw_scores(x)[:, 0]` its prediction."""
    baseline = np.asarray(model._baseline_prediction, np.float64).reshape(-1)
    return _from_predictors(model, baseline, np.zeros(len(model._predictors), np.int64), np.zeros(1, np.int64))


def _from_predictors(model, baseline: np.ndarray, tree_class: np.ndarray, classes: np.ndarray,
                     reference: np.ndarray | None = None) -> Trees:
    predictors = [tree for iteration in model._predictors for tree in iteration]
    width = max(len(t.nodes) for t in predictors)

    def field(name: str, dtype, fill) -> np.ndarray:
        out = np.full((len(predictors), width), fill, dtype)
        for i, t in enumerate(predictors):
            out[i, : len(t.nodes)] = t.nodes[name]
        return out

    if any(t.nodes["is_categorical"].any() for t in predictors):
        raise ValueError("categorical splits are not supported")
    return Trees(feature=field("feature_idx", np.int64, 0), threshold=field("num_threshold", np.float64, 0.0),
                 missing_left=field("missing_go_to_left", bool, True), left=field("left", np.int64, 0),
                 right=field("right", np.int64, 0), is_leaf=field("is_leaf", bool, True),
                 value=field("value", np.float64, 0.0), tree_class=tree_class, baseline=baseline, classes=classes,
                 n_features=int(model.n_features_in_),
                 reference=np.full(model.n_features_in_, np.nan) if reference is None
                 else np.asarray(reference, np.float64))
