"""Per-class logit offsets: chosen on validation logits only, written into the logits layer's bias."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_core.model import offsets

keras = pytest.importorskip("keras")


def _logits(n: int = 3000, classes: int = 4, shift: float = 0.6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    logits = np.eye(classes)[y] * 1.5 + rng.normal(0, 0.6, (n, classes))
    logits[:, 2] -= shift  # class 2 is under-called by a fixed margin
    return logits, y


def test_macro_f1_matches_sklearn_over_present_classes():
    from sklearn.metrics import f1_score

    logits, y = _logits()
    y = np.where(y == 3, 0, y)  # class 3 absent from the labels but still predicted sometimes
    expected = f1_score(y, logits.argmax(1), labels=np.unique(y), average="macro")
    assert offsets.macro_f1(logits, y) == pytest.approx(expected)


def test_offsets_undo_a_class_bias_and_stay_zero_where_nothing_helps():
    logits, y = _logits()
    b, before, after = offsets.choose_offsets(logits, y)
    assert b[0] == 0 and after > before + 0.01
    assert 0.3 <= b[2] - np.mean(np.delete(b, 2)) <= 0.9, "class 2's logit is raised by about its handicap"
    fresh, fresh_y = _logits(seed=1)  # the offsets carry to new draws of the same distribution
    assert offsets.macro_f1(fresh + b, fresh_y) > offsets.macro_f1(fresh, fresh_y)

    clean = np.eye(4)[y] * 5.0
    b, before, after = offsets.choose_offsets(clean, y)
    assert not b.any() and before == after == 1.0


def test_offsets_need_a_logits_layer():
    inp = keras.Input((4,))
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="probabilities")(inp))
    with pytest.raises(ValueError, match="no 'logits' layer"):
        offsets.logits_of(model, np.zeros((2, 4), np.float32))
