"""App state: where models live, which one the sidebar picked, and the cached loaded models.

Models and their Grad-CAM gradient models are built once per process and model file
(`st.cache_resource`); the key includes the file's mtime and size (and a blend's trees file's), so a replaced
file is reloaded.
Set ECG_MODELS_DIR to serve models from another directory (its results/ sub-folder holds the results).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import streamlit as st

from ecg_core.data.results import StoredResults, load_results
from ecg_core.model import predict
from ecg_core.model.predict import Classifier, ModelError, ModelInfo
from ui import serving

if TYPE_CHECKING:
    from ecg_core.model.explain import GradCam

ROOT = Path(__file__).resolve().parent.parent
SAMPLES_ROOT = ROOT / "sample_images"  # one folder per representation, the same beats in each
PICTURES_DIR = SAMPLES_ROOT / "pictures"  # pictures drawn from test-split recordings in many styles
MODEL_KEY = "ecg_model_path"  # session-state key of the sidebar's model picker


def models_dir() -> Path:
    """The models directory: $ECG_MODELS_DIR if set, else the repository's models/."""
    env = os.environ.get("ECG_MODELS_DIR", "").strip()
    return Path(env).expanduser() if env else predict.MODELS_DIR


def results_dir() -> Path:
    return models_dir() / "results"


def _folder_stamp(folder: Path) -> tuple:
    """(name, mtime, size) of every model file and card: a changed, added or removed model changes it."""
    try:
        return tuple(sorted((p.name, *_stamp(p)) for p in folder.iterdir() if p.suffix in (".keras", ".h5", ".json")))
    except OSError:
        return ()


@st.cache_resource(show_spinner=False, max_entries=4)
def _discover(folder: str, stamp: tuple) -> list[ModelInfo]:
    return predict.discover(folder)


def available_models() -> list[ModelInfo]:
    """Every model with a usable card, default first (cards are read again when a model file changes)."""
    folder = models_dir()
    return list(_discover(str(folder), _folder_stamp(folder)))


def current_model_info() -> ModelInfo:
    """The model chosen in the sidebar, else the default; ModelError when there is none."""
    models = available_models()
    if not models:
        raise ModelError(f"No usable model (a .keras file with its .json card) in {models_dir()}.")
    chosen = st.session_state.get(MODEL_KEY)
    return next((m for m in models if str(m.path) == chosen), models[0])


def _file_stamp(path: Path) -> tuple[int, int]:
    try:
        s = path.stat()
    except OSError:
        return (0, 0)
    return (s.st_mtime_ns, s.st_size)


def _stamp(path: Path, card: dict | None = None) -> tuple[int, ...]:
    """(mtime, size) of a file; for a blend's card also those of the tree model it names, so that a replaced
    trees file reloads the model too."""
    stamp = _file_stamp(path)
    mix = (card or {}).get("blend")
    if isinstance(mix, dict) and mix.get("trees"):
        stamp += _file_stamp(path.with_name(str(mix["trees"])))
    return stamp


def model_stamp(info: ModelInfo) -> tuple[int, ...]:
    """The cache key of a loaded model: its file's stamp, with its blend trees' when it has them."""
    return _stamp(info.path, info.card)


@st.cache_resource(show_spinner="Loading the model (once per server process)...", max_entries=8)
def _load_classifier(path: str, stamp: tuple[int, ...]) -> Classifier:
    clf = Classifier(predict.info_from_path(path))
    serving.settle_heap()  # TensorFlow's objects are permanent: no later collection scans them again
    return clf


@st.cache_resource(show_spinner="Preparing Grad-CAM (once per model)...", max_entries=8)
def _load_gradcam(path: str, stamp: tuple[int, ...]) -> GradCam:
    from ecg_core.model.explain import GradCam  # imports Keras: only when a heatmap is first needed

    cam = GradCam(_load_classifier(path, stamp).model)
    serving.settle_heap()
    return cam


def classifier_for(info: ModelInfo) -> Classifier:
    """The loaded model for a card (cached per process); ModelError if the file is missing or corrupt."""
    return _load_classifier(str(info.path), model_stamp(info))


def current_classifier() -> Classifier:
    """The sidebar's model, loaded once per process."""
    return classifier_for(current_model_info())


def current_gradcam() -> GradCam:
    """Grad-CAM for the sidebar's model; its gradient model is built once per model file."""
    info = current_model_info()
    return _load_gradcam(str(info.path), model_stamp(info))


@st.cache_data(show_spinner=False, max_entries=512)  # 64 KB a map; found again only with the same picture
def _heatmap(path: str, stamp: tuple[int, ...], image: np.ndarray, cls: int, method: str,
             features: np.ndarray | None) -> np.ndarray:
    from ecg_core.picture.imaging import to_model_input

    return _load_gradcam(path, stamp).heatmaps(to_model_input(image), [cls], method, features=features)[0]


def heatmap(image: np.ndarray, cls: int, method: str, features: np.ndarray | None = None) -> np.ndarray:
    """The sidebar model's heatmap of one model picture for one class, computed once (a rerun, a slider or
    another session asking for the same picture gets the stored map)."""
    info = current_model_info()
    return _heatmap(str(info.path), model_stamp(info), np.ascontiguousarray(image), int(cls), method,
                    None if features is None else np.ascontiguousarray(features, np.float32))


@st.cache_data(show_spinner=False, max_entries=256)  # a few hundred bytes a beat
def _blend_reading(path: str, stamp: tuple[int, ...], image: np.ndarray, features: np.ndarray,
                   cls: int) -> dict:
    clf = _load_classifier(path, stamp)
    parts = clf.parts_proba(image[None], features)
    try:
        effects = {k: float(v[0]) for k, v in clf.measurement_effects(features, cls).items()}
    except ValueError:  # trees saved without a reference beat: no effects to show
        effects = None
    return {"network": parts["network"][0], "trees": parts["trees"][0], "effects": effects,
            "blend": parts["blend"][0],
            "weight_network": float(clf.network_share(features)[0])}


def blend_reading(image: np.ndarray, features: np.ndarray, cls: int) -> dict | None:
    """For a blend model (sidebar choice): its two parts' and its own probabilities of one beat ("network",
    "trees", "blend": (6,)), the effects of the measurement groups on class `cls` (group -> change of
    probability, NaN where not measured; None when the trees carry no reference beat) and the network's share;
    None for other models. Computed once per beat and model file."""
    from ecg_core.signal.features import N_FEATURES

    info = current_model_info()
    if classifier_for(info).trees is None:
        return None
    f = np.ascontiguousarray(np.asarray(features, np.float32).reshape(1, -1))
    if f.shape != (1, N_FEATURES) or np.ndim(image) != 2:
        raise ValueError(f"one beat's picture and its {N_FEATURES} measurements are needed")
    return _blend_reading(str(info.path), model_stamp(info), np.ascontiguousarray(image), f, int(cls))


@st.cache_data(ttl=60, show_spinner=False)
def _results(path: str) -> StoredResults:
    return load_results(path)


def stored_results() -> StoredResults:
    """Stored evaluation results of the models directory (re-read at most once a minute)."""
    return _results(str(results_dir()))


@st.cache_data(show_spinner=False)
def _manifest(path: str) -> pd.DataFrame:
    p = Path(path) / "manifest.csv"
    if not p.exists():
        return pd.DataFrame(columns=["file", "label", "database", "record", "sample", "time_s"])
    m = pd.read_csv(p, dtype={"record": str})
    return m[[(Path(path) / f).is_file() for f in m["file"]]].reset_index(drop=True)


def samples_dir(representation: str = "waveform") -> Path:
    """The bundled sample pictures of a representation (sample_images/<representation>/)."""
    return SAMPLES_ROOT / representation


def sample_manifest(representation: str = "waveform") -> pd.DataFrame:
    """Bundled sample images of a representation (file relative to its folder, label, database, record,
    sample, time_s); empty when there are none."""
    return _manifest(str(samples_dir(representation)))


def sample_source(row: pd.Series) -> str:
    """'mitdb record 213, 1694.2 s' for a manifest row."""
    return f"{row['database']} record {row['record']}, {float(row['time_s']):.1f} s"


def pictures_dir() -> Path:
    return PICTURES_DIR


def picture_manifest() -> pd.DataFrame:
    """Bundled sample pictures (file, style, layout, database, record, start_s, labels); empty when none."""
    p = PICTURES_DIR / "manifest.csv"
    if not p.exists():
        return pd.DataFrame(columns=["file", "style", "layout", "database", "record", "start_s", "labels"])
    return _picture_manifest(str(p))


@st.cache_data(show_spinner=False)
def _picture_manifest(path: str) -> pd.DataFrame:
    m = pd.read_csv(path, dtype={"record": str, "labels": str}).fillna("")
    return m[[(PICTURES_DIR / f).is_file() for f in m["file"]]].reset_index(drop=True)


def picture_caption(row: pd.Series) -> str:
    """'paper_red strip · mitdb record 213 from 1694.2 s' for a picture manifest row."""
    return (f"{row['style']} {row['layout']} · {row['database']} record {row['record']} from "
            f"{float(row['start_s']):.1f} s")
