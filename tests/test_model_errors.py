"""A missing or corrupt model never crashes: ecg_core.model.predict raises ModelError saying how to restore it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ecg_core.model import predict
from ecg_core.model.predict import ModelError, ModelInfo

MODELS = Path(__file__).resolve().parent.parent / "models"
SAMPLE = Path(__file__).resolve().parent.parent / "sample_images" / "waveform" / "V" / "mitdb_200_396585.png"
RESTORE = "git checkout -- models/"


@pytest.fixture(scope="module")
def real_default() -> Path:
    """The shipped default model's .keras path (the one the app loads)."""
    info = predict.default_model(MODELS)
    assert info.path.suffix == ".keras" and info.path.with_suffix(".json").exists()
    return info.path


def copy_model(src: Path, dst_dir: Path, name: str = "m") -> Path:
    dst = dst_dir / f"{name}.keras"
    shutil.copyfile(src, dst)
    card = json.loads(src.with_suffix(".json").read_text())
    if card.get("blend"):  # a blend's trees travel with it, renamed like the copy
        shutil.copyfile(src.with_name(card["blend"]["trees"]), dst.with_suffix(".trees.npz"))
        card["blend"]["trees"] = dst.with_suffix(".trees.npz").name
    dst.with_suffix(".json").write_text(json.dumps(card))
    return dst


def test_valid_copy_loads_and_predicts(tmp_path: Path, real_default: Path):
    path = copy_model(real_default, tmp_path)
    (info,) = predict.discover(tmp_path)
    clf = predict.load(info)
    if clf.reads_features:  # a lone model picture carries no RR or QRS measurements: a one-line refusal
        with pytest.raises(predict.ModelError, match="also reads beat features"):
            clf.predict_bytes(SAMPLE.read_bytes())
        from ecg_core.picture.imaging import load_image
        from ecg_core.signal.features import N_FEATURES, without_rr

        probs = clf.predict_proba(load_image(SAMPLE.read_bytes())[None],
                                  without_rr(np.zeros((1, N_FEATURES), np.float32)))[0]
    else:
        probs = clf.predict_bytes(SAMPLE.read_bytes())
    assert probs.shape == (6,) and np.isclose(probs.sum(), 1.0, atol=1e-4)
    assert info.path == path


def test_missing_keras_file(tmp_path: Path, real_default: Path):
    path = copy_model(real_default, tmp_path)
    card = json.loads(path.with_suffix(".json").read_text())
    path.unlink()
    with pytest.raises(ModelError) as info:
        predict.Classifier(ModelInfo(path, card))
    assert str(info.value) == f"m.keras is missing. Restore it with `{RESTORE}`."


def test_no_model_at_all(tmp_path: Path):
    with pytest.raises(ModelError) as info:
        predict.load(models_dir=tmp_path)
    msg = str(info.value)
    assert msg.startswith("No usable model in ") and RESTORE in msg and "python -m ecg_core train" in msg


@pytest.mark.parametrize("content", [b"", b"not a zip at all", np.random.default_rng(0).bytes(4096)],
                         ids=["empty", "text", "random"])
def test_corrupt_keras_file(tmp_path: Path, real_default: Path, content: bytes):
    path = copy_model(real_default, tmp_path)
    path.write_bytes(content)
    (info,) = predict.discover(tmp_path)  # the card is fine, so the model is listed ...
    with pytest.raises(ModelError) as err:  # ... and loading it says what to do
        predict.load(info)
    msg = str(err.value)
    assert msg.startswith("m.keras cannot be loaded (") and "the file may be corrupt" in msg and RESTORE in msg
    assert "\n" not in msg and err.value.__cause__ is None


def test_truncated_keras_file(tmp_path: Path, real_default: Path):
    path = copy_model(real_default, tmp_path)
    path.write_bytes(real_default.read_bytes()[: real_default.stat().st_size // 2])
    with pytest.raises(ModelError, match="the file may be corrupt"):
        predict.load(predict.info_from_path(path))


def test_wrong_preprocessing_version(tmp_path: Path, real_default: Path):
    path = copy_model(real_default, tmp_path)
    card_path = path.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card["preprocessing_version"] = "0"
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelError) as info:
        predict.info_from_path(path)
    assert str(info.value) == ("m.keras was trained with preprocessing version '0', this code uses "
                               f"{predict.PREPROCESSING_VERSION!r}: retrain it or check out the matching code.")
    assert predict.discover(tmp_path) == []  # not offered in the model picker


def test_beat_features_of_another_version(tmp_path: Path, real_default: Path):
    """A model trained on beat features measured another way would read wrong numbers: refused."""
    path = copy_model(real_default, tmp_path)
    card_path = path.with_suffix(".json")
    card = json.loads(card_path.read_text())
    assert card["features"] and card["features_version"] == predict.FEATURES_VERSION
    card["features_version"] = "0"
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelError, match="trained on beat features version '0'"):
        predict.info_from_path(path)


def test_missing_card(tmp_path: Path, real_default: Path):
    path = copy_model(real_default, tmp_path)
    path.with_suffix(".json").unlink()
    with pytest.raises(ModelError) as info:
        predict.info_from_path(path)
    assert str(info.value) == "m.json: model card missing; every model in models/ needs one."
    assert predict.discover(tmp_path) == []


def test_card_not_json(tmp_path: Path, real_default: Path):
    path = copy_model(real_default, tmp_path)
    path.with_suffix(".json").write_text("{ not json")
    with pytest.raises(ModelError, match=r"^m\.json: model card is not valid JSON"):
        predict.info_from_path(path)


def test_card_with_other_classes(tmp_path: Path, real_default: Path):
    path = copy_model(real_default, tmp_path)
    card_path = path.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card["classes"] = ["N", "V"]
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelError, match=r"^m\.json: classes \['N', 'V'\] differ from"):
        predict.info_from_path(path)


def test_sample_is_a_real_picture():
    assert np.asarray(Image.open(SAMPLE)).shape == (128, 128)
