"""Lone beats: the single-beat form of the training data is made as the picture pipeline reads one beat."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ecg_core.settings import WINDOW_AFTER, WINDOW_BEFORE, WINDOW_LEN, WORKING_FS
from ecg_core.signal import beats as B
from tests.conftest import MITDB, ROOT, VFDB

BEFORE, AFTER = int(0.4 * WORKING_FS), int(0.45 * WORKING_FS)


@pytest.fixture(scope="module")
def rec208():
    from ecg_core.signal.signals import read_record

    return read_record(MITDB / "208")


def _normal_beat(rec, k: int = 20) -> int:
    """The k-th N beat of the excerpt with a preceding beat inside the 1.0 s before it (context to lose)."""
    ann = rec.annotations
    idx = [i for i in range(1, len(ann.symbol)) if ann.symbol[i] == "N"
           and 0 < ann.sample[i] - ann.sample[i - 1] < 0.95 * WORKING_FS and ann.sample[i] > 2 * WORKING_FS]
    return int(ann.sample[idx[k]])


def test_padding_is_the_picture_pipelines_own():
    from ecg_core.pipeline import picture

    assert picture._padded is B.pad_with_baseline
    assert picture._stretch is B.stretch_trace
    assert B.BASELINE_PAD_S == picture.PAD_S


def test_pad_with_baseline_keeps_the_samples_and_pads_flat(rec208):
    c = _normal_beat(rec208)
    seg = rec208.signal[c - BEFORE: c + AFTER].astype(np.float64)
    pad = 100
    out = B.pad_with_baseline(seg, pad)
    assert out.size == seg.size + 2 * pad
    np.testing.assert_array_equal(out[pad: pad + seg.size], seg)
    edge = int(0.2 * WORKING_FS)
    np.testing.assert_array_equal(out[:pad], np.median(seg[:edge]))
    np.testing.assert_array_equal(out[-pad:], np.median(seg[-edge:]))


def test_lone_window_holds_the_beat_and_flat_baseline(rec208):
    c = _normal_beat(rec208)
    seg = rec208.signal[c - BEFORE: c + AFTER]
    w = B.lone_window(seg, BEFORE)
    assert w.shape == (2, WINDOW_LEN)
    np.testing.assert_array_equal(w[0], w[1])  # the beat is its own template
    beat = w[0, WINDOW_BEFORE - BEFORE: WINDOW_BEFORE + AFTER]
    # the beat's own samples (filtered once more, as the app filters a digitized trace)
    assert np.corrcoef(beat, seg)[0, 1] > 0.95
    assert abs(int(np.argmax(beat)) - int(np.argmax(seg))) <= 2
    # outside the crop: no preceding beat, only the baseline's slow settling
    full = rec208.signal[c - WINDOW_BEFORE: c + WINDOW_AFTER]
    outside = w[0, : WINDOW_BEFORE - BEFORE - int(0.1 * WORKING_FS)]
    assert np.ptp(outside) < 0.05 * np.ptp(beat)
    assert np.ptp(full[: outside.size]) > 0.3 * np.ptp(beat)  # the recording did have context there


def test_lone_window_is_what_the_picture_pipeline_feeds_the_model(rec208, monkeypatch):
    from ecg_core.pipeline import picture, record_mode

    c = _normal_beat(rec208, 5)
    seg = rec208.signal[c - BEFORE: c + AFTER].astype(np.float64)
    seen = {}

    def capture(x, centres, clf, peaks=None, **_):
        seen.update(x=x, centres=centres, peaks=peaks)
        return np.zeros((centres.size, 6), dtype=np.float32)

    monkeypatch.setattr(record_mode, "classify_windows", capture)
    x, pad, centres, peaks, *_ = picture._classify_once(seg, None, "beat", "beat", "MLII")
    assert pad == round(picture.PAD_S * WORKING_FS)
    assert abs(int(centres[0]) - (pad + BEFORE)) <= 0.05 * WORKING_FS  # the app finds the annotated R
    fed = B.with_templates(seen["x"], seen["centres"], seen["peaks"])[0]
    np.testing.assert_allclose(B.lone_window(seg, int(centres[0]) - pad), fed, rtol=0, atol=1e-6)


def test_lone_crops_are_seeded_and_bounded():
    centres = np.arange(1000, 60000, 97)
    a = B.lone_crops(centres, 61000, np.random.default_rng(3))
    b = B.lone_crops(centres, 61000, np.random.default_rng(3))
    c = B.lone_crops(centres, 61000, np.random.default_rng(4))
    assert a == b and a != c
    f = np.array([k.factor for k in a])
    assert f.min() >= 0.75 and f.max() <= 1.25 and f.min() < 0.8 and f.max() > 1.2
    width = np.array([k.before + k.after for k in a]) / WORKING_FS
    assert width.min() >= 0.6 - 1e-9 and width.max() <= 1.6 + 1e-9
    frac = np.array([k.before / (k.before + k.after) for k in a])
    assert frac.min() >= 0.3 - 0.01 and frac.max() <= 0.6 + 0.01
    # the same crops at one fixed factor: a span check compares one crop at several time scales
    fixed = B.lone_crops(centres, 61000, np.random.default_rng(3), stretch=(1.25, 1.25))
    assert [(k.before, k.after) for k in fixed] == [(k.before, k.after) for k in a]
    assert {k.factor for k in fixed} == {1.25}
    # crops stay inside the signal
    edge = B.lone_crops(np.array([5, 995]), 1000, np.random.default_rng(0))
    assert edge[0].before <= 5 and edge[1].after <= 5


@pytest.mark.parametrize("factor", [0.75, 0.8, 1.25])
def test_stretch_keeps_the_r_peak_at_the_centre(rec208, factor):
    c = _normal_beat(rec208, 7)
    seg = rec208.signal[c - BEFORE: c + AFTER]
    r = int(np.argmax(seg))
    s = B.stretch_trace(seg, factor)
    assert s.size == round(seg.size * factor)
    assert abs(B.stretched_index(r, seg.size, factor) - int(np.argmax(s))) <= 1
    crop = B.LoneCrop(BEFORE, AFTER, factor)
    w = B.lone_windows(rec208.signal, np.array([c]), [crop])[0, 0]
    assert abs(int(np.argmax(w)) - WINDOW_BEFORE) <= 2
    width = np.flatnonzero(w > 0.5 * w.max())  # a stretched beat is wider in the window
    base = B.lone_windows(rec208.signal, np.array([c]), [B.LoneCrop(BEFORE, AFTER, 1.0)])[0, 0]
    ref = np.flatnonzero(base > 0.5 * base.max())
    assert np.sign(width.size - ref.size) in ({0, 1} if factor > 1 else {0, -1})


@pytest.fixture(scope="module")
def lone_sets(tmp_path_factory):
    from ecg_core.data import dataset

    out = tmp_path_factory.mktemp("lone")
    full = dataset.build(MITDB, VFDB, "overlay")
    lone = dataset.build(MITDB, VFDB, "overlay", context="lone")
    paths = {"full": dataset.save(full, out / "full.npz"), "lone": dataset.save(lone, out / "lone.npz")}
    for f in (1.0, 0.8, 1.25):
        paths[f] = dataset.save(dataset.build(MITDB, VFDB, "overlay", context="lone", stretch=(f, f)),
                                out / f"lone_{f}.npz")
    return full, lone, paths


def test_lone_dataset_has_the_same_beats_in_lone_form(lone_sets):
    from ecg_core.data import dataset

    full, lone, paths = lone_sets
    assert lone.images.shape == full.images.shape and lone.images.dtype == np.uint8
    assert lone.images.shape[1:] == (128, 128)
    np.testing.assert_array_equal(lone.labels, full.labels)
    np.testing.assert_array_equal(lone.sample, full.sample)
    assert set(dataset.DATABASES[i] for i in lone.database) == {"mitdb", "vfdb"}  # VF windows too
    assert lone.meta["context"] == "lone" and lone.meta["stretch"] == [0.75, 1.25]
    assert "context" not in full.meta
    assert (lone.images != full.images).any(axis=(1, 2)).mean() > 0.95
    again = dataset.load(paths["lone"])
    np.testing.assert_array_equal(again.images, lone.images)  # seeded: the same build twice
    one = dataset.load(paths[1.0])
    assert one.meta["stretch"] == [1.0, 1.0]
    assert (one.images != lone.images).any(axis=(1, 2)).mean() > 0.5
    with pytest.raises(ValueError, match="one-lead"):
        dataset.build(MITDB, None, "twolead", context="lone")


def test_lone_dataset_cli_and_test_records(tmp_path):
    from ecg_core.__main__ import main
    from ecg_core.data import dataset

    out = tmp_path / "ds"
    assert main(["build-dataset", "--mitdb", str(MITDB), "--vfdb", str(VFDB), "--out", str(out),
                 "--representation", "overlay", "--context", "lone", "--stretch", "0.8", "0.8",
                 "--records", "recordwise-test"]) == 0
    ds = dataset.load(out)
    assert set(ds.record.tolist()) == {"232"}  # the excerpt's one DS2 record; 430 is a vfdb train record
    assert ds.meta["stretch"] == [0.8, 0.8] and ds.meta["context"] == "lone"


def test_evaluate_lone_span_check_leaves_the_card_alone(lone_sets, tmp_path):
    import argparse

    from ecg_core.model import evaluate

    _, _, paths = lone_sets
    name = "ecgnet_lite_overlay_recordwise"
    for ext in (".keras", ".json"):
        shutil.copy(ROOT / "models" / f"{name}{ext}", tmp_path / f"{name}{ext}")
    card_before = (tmp_path / f"{name}.json").read_text()
    out = tmp_path / "res.json"
    evaluate.main(argparse.Namespace(model=str(tmp_path / f"{name}.keras"), dataset=str(paths[1.0]),
                                     split="recordwise", out=str(out), seed=0, max_per_class=None,
                                     span_datasets=[str(paths[0.8]), str(paths[1.25])]))
    res = json.loads(out.read_text())
    assert res["context"] == "lone" and res["model_context"] == "full"
    assert "lone-beat windows" in res["protocol"]
    sc = res["span_check"]
    assert sc["reference_factor"] == 1.0 and set(sc["changed_share"]) == {"0.8", "1.25"}
    assert all(0.0 <= v <= 1.0 for v in sc["changed_share"].values())
    assert max(sc["changed_share"].values()) <= sc["changed_share_any"] <= sum(sc["changed_share"].values())
    # a full-context model's card keeps its own numbers
    assert (tmp_path / f"{name}.json").read_text() == card_before
    # a randomly stretched dataset is no span reference
    with pytest.raises(ValueError, match="stretched at random"):
        evaluate.evaluate(tmp_path / f"{name}.keras", paths[1.0], "recordwise", span_datasets=[paths["lone"]])
    with pytest.raises(ValueError, match="same beats"):
        evaluate.evaluate(tmp_path / f"{name}.keras", paths[1.0], "recordwise", span_datasets=[paths["full"]])


def test_train_card_names_the_context():
    from ecg_core.model.train import context_purpose

    assert context_purpose({"context": "lone", "stretch": [0.75, 1.25]}) == (
        "single-beat pictures: the beat alone, padded with its baseline, span-augmented +-25 %")
    assert context_purpose({}) is None


def test_shipped_lone_model_card():
    card_path = Path(ROOT / "models" / "ecgnet_lite_overlay_lone_recordwise.json")
    if not card_path.exists():
        pytest.skip("the lone-beat model is not in models/")
    card = json.loads(card_path.read_text())
    assert card["context"] == "lone" and card["default"] is False
    assert card["representation"] == "overlay" and card["split"] == "recordwise"
    assert card["dataset"]["context"] == "lone"
    assert "single-beat pictures" in card["purpose"]
    res = json.loads((ROOT / "models" / "results" / "lone"
                      / "ecgnet_lite_overlay_lone_recordwise__recordwise_lone.json").read_text())
    assert res["context"] == "lone" and res["model_context"] == "lone" and "span_check" in res
    assert card["metrics"]["recordwise_macro_f1"] == round(res["metrics"]["macro_f1"], 4)
    assert "lone-beat windows" in card["metrics"]["recordwise_protocol"]
