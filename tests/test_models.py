"""Architectures, training and evaluation CLIs, prediction CLI, Grad-CAM, and the shipped model's guard."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ecg_core.classes import CLASS_KEYS
from ecg_core.data import dataset
from ecg_core.model import architectures, predict
from ecg_core.picture.imaging import to_model_input
from tests.conftest import ROOT

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def tiny(excerpt_dataset):
    ds = excerpt_dataset
    idx = dataset.cap_indices(ds.labels, 8, seed=0)
    return to_model_input(ds.images[idx]), ds.labels[idx].astype("int32"), ds.features[idx]


@pytest.mark.parametrize("name", sorted(architectures.ARCHITECTURES))
def test_each_architecture_trains_a_step_and_reloads_identically(name, tiny, tmp_path):
    from ecg_core.model.explain import GradCam

    images, y, f = tiny
    reads_features = name in architectures.FEATURE_ARCHITECTURES
    model = (architectures.ARCHITECTURES[name](f.shape[1], f.mean(axis=0), f.var(axis=0) + 1e-2) if reads_features
             else architectures.build(name))
    x = (images, f) if reads_features else images
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    model.train_on_batch(x, y)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights())), "weights moved"
    path = tmp_path / f"{name}.keras"
    model.save(path)
    reloaded = keras.models.load_model(path, compile=False)
    np.testing.assert_allclose(model.predict(x, verbose=0), reloaded.predict(x, verbose=0), atol=1e-6)
    assert model.output_shape == (None, len(CLASS_KEYS))
    # Grad-CAM works on the saved-and-loaded model, as the app uses it
    cam = GradCam(reloaded)
    maps = cam.heatmaps(images[:3], [0, 1, 2], features=f[:3] if reads_features else None)
    assert maps.shape == (3, 128, 128) and np.isfinite(maps).all()
    assert maps.min() >= 0 and maps.max() <= 1


def test_last_conv_layer_is_a_spatial_feature_map():
    for name in architectures.ARCHITECTURES:
        m = architectures.build(name)
        layer = m.get_layer(architectures.last_conv_layer(m))
        assert len(layer.output.shape) == 4, name
        assert "permute" not in layer.name and "reshape" not in layer.name


def test_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="unknown architecture"):
        architectures.build("resnet9000")


def test_training_batches_are_seeded_weighted_and_independent_of_workers(excerpt_dataset):
    from ecg_core.model.train import Batches, class_weights

    ds = excerpt_dataset
    idx = np.arange(len(ds))
    weights = class_weights(ds.labels)

    def epochs(workers: int) -> list:
        b = Batches(ds.images, ds.labels, idx, 16, 7, True, "waveform", weights, workers=workers)
        first = [b[i] for i in range(len(b))]
        b.on_epoch_end()
        return first, b[0]

    (one, next_one), (four, next_four) = epochs(1), epochs(4)
    assert len(one) == len(ds) // 16
    for (x1, y1, w1), (x4, y4, w4) in zip(one, four):
        assert np.array_equal(x1, x4) and np.array_equal(y1, y4) and np.array_equal(w1, w4)
    assert x1.shape == (16, 128, 128, 1) and x1.dtype == np.float32 and 0 <= x1.min() and x1.max() <= 1
    assert np.allclose(w1, [weights[c] for c in y1])
    seen = np.concatenate([y for _, y, _ in one])
    assert len(seen) == 16 * len(one)
    assert not np.array_equal(one[0][0], next_one[0]), "a new epoch reshuffles and re-augments"
    assert np.array_equal(next_one[0], next_four[0])
    # on TensorFlow, fit reads the same batches through tf.data: step k = batch k % len of epoch k // len
    b = Batches(ds.images, ds.labels, idx, 16, 7, True, "waveform", weights, workers=2)
    stream = list(b.for_fit().take(len(one) + 1).as_numpy_iterator())
    for (x1, y1, w1), (xs, ys, ws) in zip(one, stream):
        assert np.array_equal(x1, xs) and np.array_equal(y1, ys) and np.allclose(w1, ws)
    assert np.array_equal(stream[-1][0], next_one[0])


def test_time_limit_stops_after_the_epoch_that_passes_it(tiny):
    from ecg_core.model.train import TimeLimit

    x, y, _ = tiny
    model = architectures.build("ecgnet_lite")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[TimeLimit(0.0)])
    assert len(history.history["loss"]) == 1
    history = model.fit(x, y, epochs=2, verbose=0, callbacks=[TimeLimit(60.0)])
    assert len(history.history["loss"]) == 2


def _saved_member(tmp_path: Path, name: str, x: np.ndarray, target: int, representation: str = "overlay") -> Path:
    """A small model pushed towards calling everything `target`, saved with a card."""
    from ecg_core.settings import PREPROCESSING_VERSION

    model = architectures.build("ecgnet_lite")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x, np.full(len(x), target), epochs=3, verbose=0)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    card = {"name": name, "classes": list(CLASS_KEYS), "input_shape": list(architectures.INPUT_SHAPE),
            "representation": representation, "preprocessing_version": PREPROCESSING_VERSION,
            "split": "beatwise", "low_confidence_threshold": 0.6, "training": {"command": f"train {name}"}}
    path.with_suffix(".json").write_text(json.dumps(card))
    return path


def test_ensemble_averages_its_members_and_refuses_mixed_pictures(tiny, tmp_path):
    from ecg_core.model import ensemble

    x, _, _ = tiny
    a, b = _saved_member(tmp_path, "a", x, 0), _saved_member(tmp_path, "b", x, 3)
    model, card = ensemble.build([a, b], "ab")
    pa, pb = (keras.models.load_model(m, compile=False).predict(x, verbose=0) for m in (a, b))
    assert np.abs(pa - pb).max() > 1e-3, "members must differ for the average to be checked"
    expected = (pa + pb) / 2
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-6)
    assert card["members"] == ["a", "b"] and card["representation"] == "overlay"
    assert card["low_confidence_threshold"] == 0.6 and card["training"]["members"]["b"] == "train b"
    model.save(tmp_path / "ab.keras")
    (tmp_path / "ab.json").write_text(json.dumps(card))
    clf = predict.Classifier(predict.info_from_path(tmp_path / "ab.keras"))
    np.testing.assert_allclose(clf.predict_proba(np.round(x[..., 0] * 255).astype(np.uint8)), expected, atol=1e-5)

    assert [m.name for m in predict.discover(tmp_path)] == ["a", "b"], "the app lists no ensemble"

    w = _saved_member(tmp_path, "w", x, 1, representation="waveform")
    with pytest.raises(ValueError, match="members differ in representation"):
        ensemble.build([a, w], "aw")
    with pytest.raises(ValueError, match="at least two"):
        ensemble.build([a], "a_alone")
    other_split = _saved_member(tmp_path, "s", x, 2)
    card = json.loads(other_split.with_suffix(".json").read_text())
    other_split.with_suffix(".json").write_text(json.dumps({**card, "split_seed": 1}))
    with pytest.raises(ValueError, match="different beat-wise splits"):
        ensemble.build([a, other_split], "as")
    r = _run("ensemble", str(a), str(w), "--name", "aw", "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and "members differ in representation" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ecg_core", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_train_and_evaluate_cli_write_model_card_and_results(excerpt_dataset, tmp_path):
    ds_path = dataset.save(excerpt_dataset, tmp_path / "ds" / "dataset.npz")
    r = _run("train", "--arch", "ecgnet", "--dataset", str(ds_path.parent), "--split", "beatwise",
             "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "16", "--seed", "3", "--morph-augment",
             "--out", str(tmp_path / "m"))
    assert r.returncode == 0, r.stderr[-2000:]
    card = json.loads((tmp_path / "m" / "ecgnet_waveform_beatwise.json").read_text())
    assert card["training"]["seed"] == 3 and card["split_seed"] == 0, "the training seed never moves the test split"
    assert card["training"]["morph_augment"] is True
    for key in ("classes", "input_shape", "representation", "preprocessing_version", "split",
                "last_conv_layer", "low_confidence_threshold", "training", "dataset"):
        assert key in card
    assert card["classes"] == list(CLASS_KEYS) and card["training"]["command"].startswith("python -m ecg_core train")
    model_path = tmp_path / "m" / "ecgnet_waveform_beatwise.keras"
    r = _run("evaluate", "--model", str(model_path), "--dataset", str(ds_path.parent), "--split", "beatwise",
             "--out", str(tmp_path / "eval.json"))
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "eval.json").read_text())
    m = res["metrics"]
    assert set(m["per_class"]) == set(CLASS_KEYS)
    assert np.array(m["confusion_matrix"]).sum() == m["n"] > 0
    for key in ("accuracy", "macro_f1", "ece", "macro_roc_auc"):
        assert 0 <= m[key] <= 1
    assert res["params"] > 0 and res["file_bytes"] > 0 and res["latency_ms_single"] > 0
    assert "evaluate" in res["command"] and res["split"] == "beatwise"
    by_record = res["per_record_confusion"]
    assert sorted(by_record) == res["test_records"]
    np.testing.assert_array_equal(np.sum([np.array(c) for c in by_record.values()], axis=0), m["confusion_matrix"])
    card = json.loads((tmp_path / "m" / "ecgnet_waveform_beatwise.json").read_text())
    assert card["metrics"]["beatwise_macro_f1"] == pytest.approx(m["macro_f1"], abs=1e-4)

    # logit offsets: chosen on the model's own validation windows, written into the logits layer's bias
    r = _run("offsets", "--model", str(model_path), "--dataset", str(ds_path.parent), "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr[-2000:]
    shifted = tmp_path / "o" / "ecgnet_waveform_beatwise_offsets.keras"
    new_card = json.loads(shifted.with_suffix(".json").read_text())
    b = np.array([new_card["logit_offsets"][k] for k in CLASS_KEYS])
    assert b[0] == 0 and new_card["base_model"] == "ecgnet_waveform_beatwise" and "metrics" not in new_card
    assert new_card["split_seed"] == 0 and "validation windows" in new_card["offsets"]["chosen_on"]
    old, new = (keras.models.load_model(p, compile=False) for p in (model_path, shifted))
    np.testing.assert_allclose(new.get_layer("logits").get_weights()[1] - old.get_layer("logits").get_weights()[1],
                               b, atol=1e-6)
    x = to_model_input(excerpt_dataset.images[:32])
    logits = keras.Model(old.inputs, old.get_layer("logits").output).predict(x, verbose=0) + b
    expected = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(new.predict(x, verbose=0), expected / expected.sum(1, keepdims=True), atol=1e-5)
    r = _run("offsets", "--model", str(tmp_path / "missing.keras"), "--dataset", str(ds_path.parent))
    assert r.returncode == 2 and "no such model file" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_train_cli_can_validate_on_whole_train_records(excerpt_dataset, tmp_path):
    ds_path = dataset.save(excerpt_dataset, tmp_path / "ds" / "dataset.npz")
    r = _run("train", "--arch", "ecgnet_lite", "--dataset", str(ds_path.parent), "--split", "recordwise",
             "--validation", "records", "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "16",
             "--out", str(tmp_path / "m"))
    assert r.returncode == 0, r.stderr[-2000:]
    training = json.loads((tmp_path / "m" / "ecgnet_lite_waveform_recordwise.json").read_text())["training"]
    assert training["validation"].startswith("TRAIN records ")
    held_out = training["validation"].split("(")[0].split()[2:]
    assert held_out and not {"mitdb/232"} & set(held_out), "a test record is never used for validation"
    assert "--validation records" in training["command"]


def test_evaluation_uses_the_beatwise_split_the_model_was_trained_on(excerpt_dataset):
    from ecg_core.model.evaluate import split_seed
    from ecg_core.settings import SPLIT_SEED

    assert split_seed({"split_seed": 0, "training": {"seed": 4}}) == 0
    assert split_seed({"training": {"seed": 1}}) == 1, "cards from before split_seed: the training seed"
    assert split_seed({}) == SPLIT_SEED
    train0, test0 = dataset.split_indices(excerpt_dataset, "beatwise")
    train1, test1 = dataset.split_indices(excerpt_dataset, "beatwise", 1)
    assert set(test0) & set(train1), "another seed's training beats overlap this test part"


def test_metrics_on_known_predictions():
    from ecg_core.model.evaluate import expected_calibration_error, metrics

    y = np.array([0, 0, 1, 1, 5])
    probs = np.eye(6)[[0, 1, 1, 1, 5]] * 0.9 + 0.1 / 6
    m = metrics(probs, y)
    assert m["accuracy"] == pytest.approx(0.8)
    assert m["per_class"]["N"]["recall"] == pytest.approx(0.5) and m["per_class"]["N"]["precision"] == 1.0
    assert m["per_class"]["R"]["support"] == 0 and "R" not in m["macro_f1_classes"]
    assert m["confusion_matrix"][0][1] == 1
    assert expected_calibration_error(np.eye(6)[[0, 1]], np.array([0, 1])) == pytest.approx(0.0)


def test_per_record_confusion_counts_each_patient_apart():
    from ecg_core.model.evaluate import per_record_confusion

    y = np.array([1, 1, 1, 0, 0, 5])
    pred = np.array([0, 0, 1, 0, 3, 5])
    groups = np.array(["mitdb/214", "mitdb/214", "mitdb/111", "mitdb/111", "mitdb/214", "vfdb/424"])
    cm = per_record_confusion(pred, y, groups)
    assert list(cm) == ["mitdb/111", "mitdb/214", "vfdb/424"]
    assert cm["mitdb/214"][1][0] == 2 and cm["mitdb/214"][0][3] == 1 and np.sum(cm["mitdb/214"]) == 3
    assert cm["mitdb/111"][1][1] == 1 and cm["mitdb/111"][0][0] == 1 and np.sum(cm["mitdb/111"]) == 2
    assert cm["vfdb/424"][5][5] == 1 and np.sum(cm["vfdb/424"]) == 1


# ---------------------------------------------------------------- the shipped default model

def test_exactly_one_default_model_ships_with_card_and_results():
    cards = [json.loads(p.read_text()) for p in (ROOT / "models").glob("*.json")]
    assert sum(bool(c.get("default")) for c in cards) == 1
    info = predict.default_model()
    assert all(p.exists() for p in info.files) and info.size_bytes <= 1_000_000
    total = sum(p.stat().st_size for p in (ROOT / "models").glob("*.keras"))
    assert total <= 50_000_000


def _predict_cli(*args: str) -> tuple[int, list[dict], str]:
    r = _run("predict", *args)
    return r.returncode, list(csv.DictReader(io.StringIO(r.stdout))), r.stderr


PICTURES = ROOT / "sample_images" / "pictures"


def test_default_model_reproduces_recorded_sample_predictions():
    """Regression guard: the whole picture path (digitizer, beats, default model) still gives the beats and
    classes recorded for the bundled sample pictures."""
    info = predict.default_model()
    recorded_path = info.path.with_suffix(".samples.csv")
    assert recorded_path.exists(), f"record with: python -m ecg_core predict sample_images/pictures > {recorded_path}"
    recorded = list(csv.DictReader(recorded_path.open()))
    code, rows, _ = _predict_cli(str(PICTURES))
    assert code == 0 and len(rows) == len(recorded) >= 100

    def key(r: dict) -> tuple[str, str]:
        return Path(r["file"]).name, r["beat"]

    got = {key(r): r for r in rows}
    for want in recorded:
        row = got[key(want)]
        assert row["predicted"] == want["predicted"], key(want)
        assert float(row["time_s"]) == pytest.approx(float(want["time_s"]), abs=2e-3)
        for k in CLASS_KEYS:
            assert float(row[k]) == pytest.approx(float(want[k]), abs=2e-3), (key(want), k)


def test_predict_cli_writes_a_row_per_beat_and_reports_unreadable_files(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image at all")
    strip = PICTURES / "normal_paper_red_strip.png"
    code, rows, _ = _predict_cli(str(strip), str(bad))
    assert code == 1
    assert list(rows[0]) == ["file", "beat", "time_s", "predicted", "confidence", *CLASS_KEYS, "error", "uncertain"]
    beats = [r for r in rows if r["file"] == str(strip)]
    assert len(beats) >= 10 and [int(r["beat"]) for r in beats] == list(range(len(beats)))
    assert all(r["predicted"] in CLASS_KEYS and not r["error"] for r in beats)
    assert all(sum(float(r[k]) for k in CLASS_KEYS) == pytest.approx(1.0, abs=2e-3) for r in beats)
    times = [float(r["time_s"]) for r in beats]
    assert times == sorted(times) and 0 < times[0] < times[-1] < 11
    assert rows[-1]["file"].endswith("broken.png") and rows[-1]["error"] and not rows[-1]["predicted"]


def test_a_single_beat_picture_gives_one_row():
    code, rows, _ = _predict_cli(str(PICTURES / "rbbb_paper_green_beat.png"))
    assert code == 0 and len(rows) == 1 and rows[0]["beat"] == "0" and rows[0]["predicted"] in CLASS_KEYS


def test_predict_cli_walks_folders_recursively():
    code, rows, _ = _predict_cli(str(PICTURES))
    assert code == 0
    files = {Path(r["file"]).name for r in rows}
    assert files == {p.name for p in PICTURES.rglob("*") if p.suffix in (".png", ".jpg")}


def test_predict_cli_gives_the_apps_verdict_for_pictures_that_are_not_ecgs(tmp_path):
    """The CLI and the Classify page take the same path: the same one-line reason for every picture."""
    from PIL import Image

    from ui import pictures

    rng = np.random.default_rng(0)
    made = {"noise.png": rng.integers(0, 256, (240, 320)).astype(np.uint8),
            "white.png": np.full((200, 300), 255, np.uint8), "black.png": np.zeros((200, 300), np.uint8)}
    for name, a in made.items():
        Image.fromarray(a).save(tmp_path / name)
    (tmp_path / "text.png").write_bytes(b"just some text, not a picture\n" * 20)
    code, rows, _ = _predict_cli(str(tmp_path / "noise.png"), str(tmp_path / "white.png"),
                                 str(tmp_path / "black.png"), str(tmp_path / "text.png"))
    assert code == 1
    cli = {Path(r["file"]).name: r["error"] for r in rows}
    clf = predict.load()
    app = {o.name: o.error for o in pictures.process([(p.name, p.read_bytes()) for p in sorted(tmp_path.iterdir())],
                                                     clf, None, "auto")}
    assert set(cli) == set(app) == {"noise.png", "white.png", "black.png", "text.png"}
    for name in cli:
        assert cli[name] and cli[name] == app[name], name
        assert "\n" not in cli[name]
        assert not any(r["predicted"] for r in rows if Path(r["file"]).name == name)


def test_every_one_lead_model_reads_pictures():
    strip = str(PICTURES / "normal_paper_red_strip.png")
    waveform = str(ROOT / "models" / "ecgnet_lite_waveform_recordwise.keras")
    code, rows, _ = _predict_cli(strip, "--model", waveform)
    assert code == 0 and len(rows) >= 10 and not any(r["error"] for r in rows)
