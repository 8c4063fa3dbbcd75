"""The lone-beat span estimator: scale-free measures, the shipped trees against scikit-learn, estimates on real
beats it was not trained on (DS2 record 232 of the excerpt, and 114), and its place in the digitizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecg_core.model import span_train
from ecg_core.model import trees as treelib
from ecg_core.picture import span as spanlib

MITDB = Path(__file__).resolve().parent / "data" / "mitdb"


def test_measures_do_not_depend_on_amplitude_sign_or_offset():
    rng = np.random.default_rng(0)
    y = np.cumsum(rng.normal(size=400))
    a = spanlib.shape_features(y)
    assert a.shape == (len(spanlib.FEATURE_NAMES),)
    np.testing.assert_allclose(spanlib.shape_features(3.5 * y + 40.0), a, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError):
        spanlib.shape_features(np.array([1.0, 2.0, np.nan]))


def test_regressor_arrays_predict_as_scikit_learn():
    from sklearn.ensemble import HistGradientBoostingRegressor

    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 6))
    y = x[:, 0] * 2 - np.abs(x[:, 3]) + rng.normal(0, 0.1, 500)
    model = HistGradientBoostingRegressor(max_iter=40, random_state=0).fit(x, y)
    trees = treelib.from_sklearn_regressor(model)
    np.testing.assert_allclose(trees.raw_scores(x)[:, 0], model.predict(x), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("preset", span_train.PRESETS_S)
def test_estimates_real_beats_it_never_saw(preset):
    """Beats of 232 (right bundle-branch block, DS2) and 114 cut at a preset span: the median estimate within 30 %
    of it (the constant 1.6 s it replaced is 100 % off at 0.8 s), most beats within 35 %."""
    x, y, _ = span_train.examples(MITDB, ["232", "114"], 60, np.random.default_rng(1), span_s=preset)
    pred = spanlib._model().raw_scores(x)[:, 0]
    ratio = np.exp(pred - y)
    assert 0.7 < float(np.median(ratio)) < 1.3
    assert np.mean(np.abs(ratio - 1) < 0.35) >= 0.6


def test_estimate_is_bounded_and_absent_without_the_model(monkeypatch, tmp_path):
    y = np.sin(np.linspace(0, 40, 300))
    s = spanlib.estimate_span(y)
    assert spanlib.SPAN_RANGE_S[0] <= s <= spanlib.SPAN_RANGE_S[1]
    monkeypatch.setattr(spanlib, "MODEL_PATH", tmp_path / "missing.npz")
    spanlib._model.cache_clear()
    try:
        assert spanlib.estimate_span(y) is None
    finally:
        spanlib._model.cache_clear()


def test_a_beat_picture_without_grid_is_timed_from_its_shape():
    """0.8 s and 1.6 s beat pictures of 232 without grid: read at an estimated span, nearer its own preset than the
    other; the calibration says the span was estimated. (One noisy 1.6 s picture of the four holds 11 spikes and is
    taken for a 10 s strip before any span is estimated: the spike count's limit, not the estimator's.)"""
    from ecg_core.data.drawn import read_record
    from ecg_core.picture import synth
    from ecg_core.picture.digitize import digitize

    rec = read_record(MITDB, "232")
    for seconds in span_train.PRESETS_S:
        spans = []
        for seed, beat in enumerate((20, 40, 60, 80)):
            c = int(rec.beats[beat])
            a, b = c - int(seconds * rec.fs) // 2 - 20, c + int(seconds * rec.fs) // 2 + 20
            inside = (rec.beats >= a) & (rec.beats < b)
            drawn = synth.draw(rec.signal[a:b], rec.fs, "no_grid", r_peaks=rec.beats[inside] - a,
                               symbols=rec.symbols[inside], seed=seed, layout="beat", beat_seconds=seconds)
            cal = digitize(drawn.data)
            if "estimated from the beat's shape" in cal.calibration.description:
                assert cal.calibration.method == "assumed"
                spans.append(cal.traces[cal.primary].duration_s)
        assert len(spans) >= 3
        other = 1.6 if seconds == 0.8 else 0.8
        assert abs(np.log(np.median(spans) / seconds)) < abs(np.log(np.median(spans) / other))


@pytest.mark.parametrize(("estimate", "read"),
                         [(0.9, 0.8), (0.66, 0.8), (1.2, 1.2), (1.9, 1.6), (2.1, 2.1), (0.55, 0.55)])
def test_an_estimate_near_a_preset_is_read_at_it(monkeypatch, estimate, read):
    monkeypatch.setattr(spanlib, "estimate_span", lambda y: estimate)
    assert spanlib.lone_beat_span(np.zeros(10)) == (pytest.approx(read), estimate)
