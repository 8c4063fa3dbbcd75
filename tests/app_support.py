"""Helpers for the app tests: the real app under AppTest, real sample images, the real default model."""

from __future__ import annotations

import functools
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "streamlit_app.py"
MODELS = ROOT / "models"


def default_representation() -> str:
    """The representation of the model whose card says "default": true (read without TensorFlow)."""
    for card in sorted(MODELS.glob("*.json")):
        c = json.loads(card.read_text())
        if c.get("default"):
            return str(c.get("representation", "waveform"))
    return "waveform"


SAMPLES = ROOT / "sample_images" / default_representation()  # the pictures the default model reads
WAVEFORM_SAMPLES = ROOT / "sample_images" / "waveform"
TIMEOUT = 240  # seconds; the first run imports TensorFlow and loads the model on a busy 2-core machine


def new_app():
    """The real app under AppTest.

    AppTest resets `PagesManager.uses_pages_directory` before every run and, because a `pages/` folder sits
    next to the entry point, re-runs then go the legacy multipage way: the page script alone, without
    streamlit_app.py (so no sidebar). A real server decides this once per process and honours
    st.navigation. Running the entry point from a wrapper script in a folder without `pages/` gives
    AppTest the real server's behaviour; the app's page paths are absolute, so nothing else changes.
    """
    from streamlit.testing.v1 import AppTest

    script = f"import runpy\nrunpy.run_path({str(APP)!r}, run_name='__main__')\n"
    return AppTest.from_string(script, default_timeout=TIMEOUT)


def switch(at, page: str):
    """Switch to pages/<page>.py and run."""
    at.switch_page(str(ROOT / "pages" / f"{page}.py"))
    return run_ok(at)


def run_ok(at):
    """Run and fail with the app's own exception text if any element is an exception."""
    at.run()
    errors = [e.value for e in at.exception]
    assert not errors, errors
    return at


def all_text(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [t.value for t in at.title]
    parts += [e.value for e in at.error] + [w.value for w in at.warning] + [i.value for i in at.info]
    parts += [h.value for h in at.subheader] + [h.value for h in at.header]
    return "\n".join(str(p) for p in parts)


def manifest() -> pd.DataFrame:
    return pd.read_csv(SAMPLES / "manifest.csv", dtype={"record": str})


@functools.cache
def default_predictions() -> pd.DataFrame:
    """Every bundled sample with its manifest label and the default model's prediction (computed directly)."""
    from ecg_core.classes import CLASS_KEYS
    from ecg_core.model import predict
    from ecg_core.picture.imaging import load_image

    clf = predict.load(predict.default_model(MODELS))
    m = manifest()
    images = np.stack([load_image((SAMPLES / f).read_bytes(), clf.info.representation) for f in m["file"]])
    probs = clf.predict_proba(images)
    m["predicted"] = [CLASS_KEYS[i] for i in probs.argmax(axis=1)]
    m["confidence"] = probs.max(axis=1)
    m["probs"] = list(probs)
    return m


def best_agreeing_sample() -> pd.Series:
    """The sample the default model classifies correctly (= its manifest label) with the highest confidence."""
    m = default_predictions()
    agree = m[m["predicted"] == m["label"]]
    assert len(agree), "the default model classifies no bundled sample correctly"
    return agree.sort_values("confidence", ascending=False).iloc[0]


PICTURES = ROOT / "sample_images" / "pictures"  # pictures in many styles drawn from test-split recordings


def picture_manifest() -> pd.DataFrame:
    return pd.read_csv(PICTURES / "manifest.csv", dtype={"record": str, "labels": str})


@functools.cache
def picture_result(file: str, span_s: float | None = None, layout: str = "auto"):
    """The picture pipeline's own result for a bundled sample picture, with the default model."""
    from ecg_core.model import predict
    from ecg_core.pipeline.picture import classify_picture

    clf = predict.load(predict.default_model(MODELS))
    return classify_picture((PICTURES / file).read_bytes(), clf, file, span_s=span_s, expect=layout)


def png_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(a, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def copy_default_model(dest: Path) -> Path:
    """Copy the default model, its card (and a blend's trees) into dest; returns the copied .keras path."""
    from ecg_core.model import predict

    info = predict.default_model(MODELS)
    dest.mkdir(parents=True, exist_ok=True)
    for path in [*info.files, info.path.with_suffix(".json")]:
        shutil.copy(path, dest / path.name)
    return dest / info.path.name


def save_second_model(dest: Path, name: str, macro_f1: float) -> Path:
    """A real, differently initialised ecgnet saved with a card (not default) next to the copied one."""
    import keras

    from ecg_core.model import architectures, predict

    keras.utils.set_random_seed(7)
    model = architectures.build("ecgnet")
    path = dest / f"{name}.keras"
    model.save(path)
    card = dict(predict.default_model(MODELS).card)
    card.update(name=name, default=False, metrics={"recordwise_macro_f1": macro_f1}, params=model.count_params())
    path.with_suffix(".json").write_text(json.dumps(card))
    return path
