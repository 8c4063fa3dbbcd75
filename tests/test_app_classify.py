"""The Classify page under AppTest with real sample images and the real default model, and ui.batch."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from app_support import (
    MODELS,
    SAMPLES,
    all_text,
    best_agreeing_sample,
    default_predictions,
    new_app,
    png_bytes,
    run_ok,
)

from ecg_core.classes import CLASS_KEYS, CLASS_NAMES
from ecg_core.picture.imaging import display_name


@pytest.fixture
def app(monkeypatch):
    monkeypatch.delenv("ECG_MODELS_DIR", raising=False)
    return run_ok(new_app())


@pytest.fixture(scope="module")
def clf():
    from ecg_core.model import predict

    return predict.load(predict.default_model(MODELS))


def upload(at, files: list[tuple[str, bytes]]):
    at.file_uploader(key="classify_upload").set_value([(n, b, "image/png") for n, b in files])
    return run_ok(at)


def sample_files(n: int) -> list[tuple[str, bytes]]:
    m = default_predictions().groupby("label").head(1).head(n)
    return [(f.split("/")[-1], (SAMPLES / f).read_bytes()) for f in m["file"]]


def noise_png() -> bytes:
    return png_bytes(np.random.default_rng(0).integers(0, 256, (240, 320)))


def test_upload_one_sample_shows_class_probabilities_chart_and_heatmap(app):
    s = best_agreeing_sample()
    assert s["predicted"] == s["label"]  # the manifest label and the model agree on this image
    upload(app, [(s["file"].split("/")[-1], (SAMPLES / s["file"]).read_bytes())])
    text = all_text(app)
    assert f"**{CLASS_NAMES[s['label']]}**" in text and f"**{s['confidence']:.1%}**" in text
    charts = app.get("plotly_chart")
    assert len(charts) == 1 and all(k in charts[0].proto.spec for k in CLASS_KEYS)
    heat = [im for im in app.image if any("Grad-CAM" in c for c in im.captions)]
    assert len(heat) == 1 and heat[0].value[0]  # an image URL was served
    assert app.selectbox(key=next(w.key for w in app.selectbox if w.label == "Explain class")).value == \
        CLASS_KEYS.index(s["label"])


def test_heatmap_controls_change_class_and_method(app):
    s = best_agreeing_sample()
    upload(app, [("beat.png", (SAMPLES / s["file"]).read_bytes())])
    explain = next(w for w in app.selectbox if w.label == "Explain class")
    other = (CLASS_KEYS.index(s["label"]) + 1) % len(CLASS_KEYS)
    explain.set_value(other)
    next(r for r in app.radio if r.label == "Method").set_value("gradcam++")
    run_ok(app)
    captions = [c for im in app.image for c in im.captions if "Grad-CAM" in c]
    assert captions == [captions[0]] and captions[0].startswith(f"Grad-CAM++ for {CLASS_NAMES[CLASS_KEYS[other]]}")


def test_low_confidence_note(app, clf):
    m = default_predictions()
    low = m[m["confidence"] < clf.info.low_confidence_threshold]
    if low.empty:
        pytest.skip("the default model is confident on every bundled sample")
    upload(app, [("low.png", (SAMPLES / low.iloc[0]["file"]).read_bytes())])
    assert any("Low confidence" in w.value for w in app.warning)


def test_bundled_sample_picker(app):
    s = best_agreeing_sample()
    app.radio(key="classify_source").set_value("samples")
    run_ok(app)
    app.selectbox(key="sample_class").set_value(s["label"])
    run_ok(app)
    app.multiselect(key=f"samples_{s['label']}").set_value([s["file"]])
    run_ok(app)
    text = all_text(app)
    assert f"reference label: {CLASS_NAMES[s['label']]}" in text
    assert f"**{CLASS_NAMES[s['predicted']]}**" in text and f"record {s['record']}" in text


def test_many_images_give_a_table_a_csv_and_a_selectable_panel(app, clf):
    files = sample_files(4)
    upload(app, files)
    table = app.dataframe[0].value
    m = default_predictions().groupby("label").head(1).head(4)
    assert list(table["file"]) == [n for n, _ in files]
    assert list(table["predicted"]) == [CLASS_NAMES[k] for k in m["predicted"]]
    assert np.allclose(table["confidence"], m["confidence"], atol=1e-5)
    assert [b.label for b in app.download_button] == ["Download all results (CSV)"]
    pick = app.selectbox(key=next(w.key for w in app.selectbox if w.label == "Show details for"))
    pick.set_value(2)
    run_ok(app)
    assert f"`{files[2][0]}`" in all_text(app) and f"**{CLASS_NAMES[m.iloc[2]['predicted']]}**" in all_text(app)


def test_unreadable_file_gets_its_reason_and_the_rest_still_classify(app):
    files = sample_files(3)
    good = files[0][1]
    bad = [("truncated.png", good[: len(good) // 3]), ("notes.png", b"this is text, not an image\n" * 10),
           ("empty.png", b""), ("x`![a](http://example.invalid/a.png)`.png", b"GIF89a")]
    upload(app, files[:2] + bad + files[2:])
    errors = "\n".join(e.value for e in app.error)
    for name, _ in bad:
        shown = display_name(name).replace("`", chr(39))
        assert f"`{shown}`" in errors  # names shown without folders, as inline code: no Markdown injection
    assert "empty" in errors.lower()
    assert list(app.dataframe[0].value["file"]) == [display_name(n) for n, _ in files]


def test_non_ecg_image_is_flagged_not_classified_unless_asked(app):
    files = sample_files(1) + [("noise.png", noise_png()), ("blank.png", png_bytes(np.full((200, 300), 255)))]
    upload(app, files)
    warning = "\n".join(w.value for w in app.warning)
    assert "`noise.png`" in warning and "`blank.png`" in warning
    assert list(app.dataframe[0].value["file"]) == [files[0][0]]
    app.checkbox(key="classify_anyway").check()
    run_ok(app)
    table = app.dataframe[0].value
    assert list(table["file"]) == [n for n, _ in files]
    assert table["note"].iloc[1].startswith("classified anyway")


# ---------------------------------------------------------------- the plain upload-handling functions

def test_batch_matches_direct_prediction_and_csv(clf):
    from ui import batch

    files = sample_files(5) + [("broken.png", b"\x89PNG\r\n\x1a\n0000")]
    results = batch.process(files, clf)
    assert [r.status for r in results] == ["ok"] * 5 + ["error"]
    direct = clf.predict_proba(np.stack([r.image for r in results[:5]]))
    assert np.allclose(np.stack([r.probs for r in results[:5]]), direct, atol=1e-6)
    csv = pd.read_csv(io.BytesIO(batch.results_csv(results)))
    assert list(csv["file"]) == [n for n, _ in files]
    assert np.allclose(csv[list(CLASS_KEYS)].to_numpy()[:5], direct, atol=1e-4)
    assert csv["status"].iloc[-1] == "error" and isinstance(csv["reason"].iloc[-1], str)
    assert list(csv["predicted"].iloc[:5]) == [CLASS_KEYS[i] for i in direct.argmax(axis=1)]


def test_batch_normalises_like_training(clf):
    from ecg_core.picture.imaging import load_image
    from ui import batch

    name, data = sample_files(1)[0]
    inverted = png_bytes(255 - np.asarray(load_image(data)))  # dark trace on light paper
    r = batch.prepare([(name, data), ("inverted.png", inverted)], clf.info.representation)
    assert np.array_equal(r[0].image, load_image(data))
    assert np.abs(r[1].image.astype(int) - r[0].image.astype(int)).mean() < 8
