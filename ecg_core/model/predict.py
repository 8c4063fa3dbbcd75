"""Model registry (self-describing models in models/) and batch prediction."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecg_core.classes import CLASS_KEYS
from ecg_core.model.calibration import blend, with_temperature
from ecg_core.picture.imaging import load_image, to_model_input
from ecg_core.settings import IMAGE_SIZE, MODELS_DIR, PREPROCESSING_VERSION
from ecg_core.signal.features import (
    FEATURES_VERSION,
    N_FEATURES,
    PATIENT_FEATURES,
    READING_KINDS,
    reading_kind,
    without_patient_rr,
)

PREDICT_BATCH = 256


class ModelError(RuntimeError):
    """A model cannot be used; the message says why and how to restore it."""


@dataclass(frozen=True)
class ModelInfo:
    """A model file with its card (the JSON beside it)."""

    path: Path
    card: dict = field(hash=False, compare=False)

    @property
    def name(self) -> str:
        return str(self.card.get("name", self.path.stem))

    @property
    def representation(self) -> str:
        return str(self.card.get("representation", "waveform"))

    @property
    def is_default(self) -> bool:
        return bool(self.card.get("default", False))

    @property
    def low_confidence_threshold(self) -> float:
        return float(self.card.get("low_confidence_threshold", 0.5))

    @property
    def files(self) -> list[Path]:
        """The model file and, for a blend, its trees file beside it."""
        trees = (self.card.get("blend") or {}).get("trees")
        return [self.path] + ([self.path.with_name(str(trees))] if trees else [])

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files if p.exists())

    def metric(self, key: str, default: float | None = None) -> float | None:
        return self.card.get("metrics", {}).get(key, default)


def read_card(model_path: Path) -> dict:
    """The card beside a model file, validated; ModelError if missing or unusable."""
    card_path = model_path.with_suffix(".json")
    if not card_path.exists():
        raise ModelError(f"{card_path.name}: model card missing; every model in models/ needs one.")
    try:
        card = json.loads(card_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{card_path.name}: model card is not valid JSON ({exc}).") from None
    if list(card.get("classes", [])) != list(CLASS_KEYS):
        raise ModelError(f"{card_path.name}: classes {card.get('classes')} differ from {list(CLASS_KEYS)}.")
    if str(card.get("preprocessing_version")) != PREPROCESSING_VERSION:
        raise ModelError(
            f"{model_path.name} was trained with preprocessing version {card.get('preprocessing_version')!r}, "
            f"this code uses {PREPROCESSING_VERSION!r}: retrain it or check out the matching code.")
    if card.get("features") and str(card.get("features_version", "1")) != FEATURES_VERSION:
        raise ModelError(
            f"{model_path.name} was trained on beat features version {card.get('features_version', '1')!r}, "
            f"this code measures {FEATURES_VERSION!r}: retrain it or check out the matching code.")
    return card


def discover(models_dir: str | Path = MODELS_DIR) -> list[ModelInfo]:
    """Every model with a usable card in models_dir, default first, then by name.

    Ensembles (`python -m ecg_core ensemble`) are left out: the app explains each prediction with Grad-CAM,
    which needs one last convolution; `predict --model` and `evaluate` still take them.
    """
    found = []
    for path in sorted(Path(models_dir).glob("*.keras")) + sorted(Path(models_dir).glob("*.h5")):
        try:
            info = ModelInfo(path, read_card(path))
        except ModelError:
            continue
        if info.card.get("architecture") != "ensemble":
            found.append(info)
    return sorted(found, key=lambda m: (not m.is_default, m.name))


def default_model(models_dir: str | Path = MODELS_DIR) -> ModelInfo:
    """The model whose card says "default": true."""
    models = discover(models_dir)
    if not models:
        raise ModelError(f"No usable model in {models_dir}. Restore it with `git checkout -- models/` "
                         "or retrain with `python -m ecg_core train` (see README).")
    return models[0]


class Classifier:
    """A loaded model with a compiled, batch-first forward pass."""

    def __init__(self, info: ModelInfo):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras
        import tensorflow as tf

        self.info = info
        if not info.path.exists():
            raise ModelError(f"{info.path.name} is missing. Restore it with `git checkout -- models/`.")
        try:
            self.model = keras.models.load_model(info.path, compile=False)
        except Exception as exc:  # corrupt or foreign file
            raise ModelError(f"{info.path.name} cannot be loaded ({type(exc).__name__}); the file may be "
                             "corrupt. Restore it with `git checkout -- models/` or retrain it.") from None
        shapes = [tuple(t.shape[1:]) for t in self.model.inputs]
        if shapes[0] != (IMAGE_SIZE, IMAGE_SIZE, 1) or len(shapes) > 2 or (
                len(shapes) == 2 and shapes[1] != (N_FEATURES,)):
            raise ModelError(f"{info.path.name} expects inputs {shapes}, not a {(IMAGE_SIZE, IMAGE_SIZE, 1)} picture"
                             f" (and {N_FEATURES} beat features).")
        self.reads_features = len(shapes) == 2
        held = list(info.card.get("features_held", []))
        if held and held != list(PATIENT_FEATURES):
            raise ModelError(f"{info.path.name}: its card holds features {held}; this code can hold only "
                             f"{list(PATIENT_FEATURES)}.")
        self.holds_patient_rr = bool(held)
        self.temperature = float(info.card.get("temperature", 1.0))
        self.trees, self.mix = self._companion_trees(info) if self.reads_features else (None, {})
        spec = tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 1], tf.float32)
        # the traced graph itself: calling it skips tf.function's argument binding (~0.15 ms a call, a single
        # beat's prediction is ~1 ms); the inputs are always float32 of the signature's shapes
        if self.reads_features:
            fspec = tf.TensorSpec([None, N_FEATURES], tf.float32)
            self._forward = tf.function(lambda x, f: self.model((x, f), training=False),
                                        input_signature=[spec, fspec]).get_concrete_function()
        else:
            self._forward = tf.function(lambda x: self.model(x, training=False),
                                        input_signature=[spec]).get_concrete_function()

    @staticmethod
    def _companion_trees(info: ModelInfo):
        """The tree model a blend card names (next to the network), with its share and temperatures."""
        mix = info.card.get("blend")
        if not mix:
            return None, {}
        from ecg_core.model import trees

        path = info.path.with_name(str(mix.get("trees", "")))
        if not path.is_file():
            raise ModelError(f"{info.path.name}: its tree model {path.name} is missing. Restore it with "
                             "`git checkout -- models/`.")
        try:
            model = trees.load(path)
        except ValueError as exc:
            raise ModelError(f"{exc}; restore it with `git checkout -- models/` or retrain it.") from None
        if model.n_features != N_FEATURES:
            raise ModelError(f"{path.name} reads {model.n_features} beat features, this code measures {N_FEATURES}.")
        shares = mix.get("weight_network")
        if not isinstance(shares, dict) or set(shares) != set(READING_KINDS):
            raise ModelError(f"{info.path.name}: its card gives no network share for each of {list(READING_KINDS)}.")
        return model, {"weight_network": {k: float(shares[k]) for k in READING_KINDS},
                       **{k: float(mix[k]) for k in ("temperature_network", "temperature_trees")}}

    def network_share(self, features: np.ndarray) -> np.ndarray:
        """A blend's share of the network for each beat, by what the beat was measured from (READING_KINDS)."""
        if self.trees is None:
            raise ModelError(f"{self.name} is not a blend of a network and trees.")
        by_kind = np.array([self.mix["weight_network"][k] for k in READING_KINDS])
        return by_kind[reading_kind(np.asarray(features).reshape(-1, N_FEATURES))]

    @property
    def name(self) -> str:
        return self.info.name

    def parts_proba(self, images: np.ndarray, features: np.ndarray,
                    batch_size: int = PREDICT_BATCH) -> dict[str, np.ndarray]:
        """A blend's two parts, each calibrated on its own, and the blend's own answer, from one forward pass:
        {"network": (n, 6), "trees": (n, 6), "blend": (n, 6) as predict_proba gives it}."""
        if self.trees is None:
            raise ModelError(f"{self.name} is not a blend of a network and trees.")
        net, boost = self._raw(images, features, batch_size)
        return {"network": with_temperature(net, self.mix["temperature_network"]),
                "trees": with_temperature(boost, self.mix["temperature_trees"]),
                "blend": self._answer(net, boost, features)}

    def measurement_effects(self, features: np.ndarray, cls: int) -> dict[str, np.ndarray]:
        """A blend's trees: how much each group of beat measurements (FEATURE_GROUPS) moves the trees'
        probability of class `cls` against a typical normal beat; see trees.Trees.effects."""
        from ecg_core.signal.features import FEATURE_GROUPS

        if self.trees is None:
            raise ModelError(f"{self.name} is not a blend of a network and trees.")
        return self.trees.effects(self._model_features(features), cls, FEATURE_GROUPS, self.mix["temperature_trees"])

    def _model_features(self, features: np.ndarray) -> np.ndarray:
        """The beat features as the model reads them (the patient's absolute RR held when the card says so)."""
        return without_patient_rr(features) if self.holds_patient_rr else np.asarray(features, np.float32)

    def _raw(self, images: np.ndarray, features: np.ndarray | None, batch_size: int):
        """The network's softmax outputs and, for a blend, the trees' probabilities (else None)."""
        x = to_model_input(images)
        if not self.reads_features:
            out = [self._forward(x[i: i + batch_size]).numpy() for i in range(0, len(x), batch_size)]
            return (np.concatenate(out) if out else np.zeros((0, len(CLASS_KEYS)), np.float32)), None
        if features is None:
            raise ModelError(f"{self.name} also reads beat features measured from the signal (RR intervals, "
                             "QRS width); classify a recording or an ECG picture, not a lone beat picture.")
        f = self._model_features(features)
        out = [self._forward(x[i: i + batch_size], f[i: i + batch_size]).numpy() for i in range(0, len(x), batch_size)]
        net = np.concatenate(out) if out else np.zeros((0, len(CLASS_KEYS)), np.float32)
        return net, (self.trees.predict_proba(f) if self.trees is not None else None)

    def predict_proba(self, images: np.ndarray, features: np.ndarray | None = None,
                      batch_size: int = PREDICT_BATCH) -> np.ndarray:
        """uint8 images (n, 128, 128) [+ beat features (n, N_FEATURES) for a model that reads them] ->
        probabilities (n, 6) in CLASS_KEYS order, calibrated by the card's temperature (a blend: its network
        and trees each calibrated, mixed by the card's share, then the blend's temperature)."""
        net, boost = self._raw(images, features, batch_size)
        return self._answer(net, boost, features)

    def _answer(self, net: np.ndarray, boost: np.ndarray | None, features: np.ndarray | None) -> np.ndarray:
        """The card's calibrated probabilities from the raw outputs (a blend's parts mixed first)."""
        if not len(net):
            return net
        if boost is not None:
            net = blend(net, boost, self.network_share(features), self.mix["temperature_network"],
                        self.mix["temperature_trees"])
        return with_temperature(net, self.temperature) if self.temperature != 1.0 else net

    def warm_up(self) -> None:
        """One prediction on a blank picture (with lone-beat features), so the graph is built before timing."""
        from ecg_core.signal.features import without_rr

        blank = np.zeros((1, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
        self.predict_proba(blank, without_rr(np.zeros((1, N_FEATURES), np.float32)) if self.reads_features else None)

    def predict_bytes(self, data: bytes) -> np.ndarray:
        """Image file bytes -> probabilities (6,); ImageInputError for unusable input."""
        return self.predict_proba(load_image(data, self.info.representation)[None])[0]


def load(info: ModelInfo | None = None, models_dir: str | Path = MODELS_DIR) -> Classifier:
    """Load a model (the default when none is given)."""
    return Classifier(info or default_model(models_dir))


def info_from_path(path: str | Path) -> ModelInfo:
    p = Path(path)
    return ModelInfo(p, read_card(p))
