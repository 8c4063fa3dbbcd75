"""Figure builders, stored-results reading and Grad-CAM on the saved-and-reloaded default model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from app_support import MODELS, ROOT, SAMPLES, best_agreeing_sample

from ecg_core.classes import CLASS_BY_KEY, CLASS_KEYS
from ecg_core.data.results import (
    StoredResults,
    class_recall,
    class_recall_by_record,
    comparison_table,
    load_results,
    per_class_f1,
    per_record_table,
)
from ecg_core.figures import charts


def test_probability_bars_sorted_highlighted_in_class_colours():
    probs = np.array([0.05, 0.1, 0.02, 0.08, 0.7, 0.05])
    fig = charts.probability_bars(probs, threshold=0.8)
    bar = fig.data[0]
    assert list(bar.x) == sorted(probs)  # ascending: plotly draws the largest on top
    assert bar.y[-1] == charts.class_label("V")
    assert bar.marker.color[-1] == CLASS_BY_KEY["V"].colour  # predicted: full colour
    assert all(c.startswith("rgba(") for c in bar.marker.color[:-1])  # others faded
    assert any("threshold" in a.text for a in fig.layout.annotations)
    with pytest.raises(ValueError):
        charts.probability_bars([0.5, 0.5])


def test_confusion_heatmap_row_shares_and_counts():
    m = np.diag([10, 20, 30, 40, 50, 60])
    m[0, 4] = 10
    fig = charts.confusion_heatmap(m.tolist())
    z = np.asarray(fig.data[0].z)
    assert z[0, 0] == pytest.approx(0.5) and z[0, 4] == pytest.approx(0.5) and z[5, 5] == 1
    assert fig.data[0].text[0][4].startswith("10<br>50%")
    with pytest.raises(ValueError):
        charts.confusion_heatmap([[1, 2], [3, 4]])


def test_stored_results_table_and_reference_row():
    res = load_results(MODELS / "results")
    files = [json.loads(p.read_text()) for p in (MODELS / "results").glob("*.json")]
    assert len(res.evaluated) == sum(f.get("kind") != "reported" for f in files)
    assert len(res.reported) == sum(f.get("kind") == "reported" for f in files)
    table = comparison_table(res.evaluated)
    assert {"architecture", "representation", "trained on", "split", "protocol", "accuracy", "macro F1", "params",
            "size (MB)", "latency (ms)"} <= set(table.columns)
    assert all(f"F1 {k}" in table.columns for k in CLASS_KEYS)
    assert list(table["macro F1"]) == sorted(table["macro F1"], reverse=True)
    f1 = per_class_f1(res.evaluated)
    fig = charts.per_class_f1_bars(f1, res.reported[0]["metrics"]["macro_f1"] if res.reported else None)
    assert len(fig.data) == len(f1)


def test_per_record_table_from_stored_counts():
    m = np.zeros((6, 6), dtype=int)
    m[1, 0], m[1, 1], m[4, 4] = 1640, 18, 1  # LBBB mostly called normal
    vf = np.diag([0, 0, 0, 0, 0, 9])
    row = {"per_record_confusion": {"mitdb/111": m.tolist(), "vfdb/424": vf.tolist()}}
    table = per_record_table(row)
    first = table.iloc[0]
    assert first["record"] == "111" and first["database"] == "mitdb"
    assert first["test windows"] == 1659 and first["accuracy"] == pytest.approx(19 / 1659)
    assert first["recall L"] == pytest.approx(18 / 1658) and first["recall V"] == 1 and pd.isna(first["recall N"])
    assert first["commonest mistake"] == "L called N (1,640)" and first["classes (windows)"] == "L 1,658 · V 1"
    assert table.iloc[1]["commonest mistake"] == "" and table.iloc[1]["recall VF"] == 1
    assert per_record_table({"metrics": {}}) is None, "results from before per-record counts"
    stored = StoredResults(evaluated=[dict(row, model="m", split="recordwise")])
    by_class = class_recall_by_record(stored, "m")
    assert by_class["L"] == [("111", 18, 1658)] and by_class["VF"] == [("424", 9, 9)] and by_class["N"] == []
    assert class_recall_by_record(stored, "m", "beatwise") is None and class_recall_by_record(stored, "other") is None
    with pytest.raises(ValueError, match="mitdb/100"):
        per_record_table({"per_record_confusion": {"mitdb/100": [[1, 2], [3, 4]]}})
    with pytest.raises(ValueError, match="mitdb/100"):
        per_record_table({"per_record_confusion": {"mitdb/100": "many"}})


def test_class_recall_from_card_or_results(tmp_path):
    res = load_results(MODELS / "results")
    row = res.evaluated[0]
    expected = {k: v["recall"] for k, v in row["metrics"]["per_class"].items()}
    assert class_recall({"name": row["model"], "metrics": {}}, res, row["split"]) == pytest.approx(expected)
    assert class_recall({"name": "nobody"}, res) is None
    (tmp_path / "x.json").write_text("[1, 2]")
    (tmp_path / "y.json").write_text("{")
    assert len(load_results(tmp_path).problems) == 2


def test_pipeline_example_is_the_training_pipeline():
    from ecg_core.picture.imaging import normalise_batch
    from ecg_core.picture.render import render
    from ecg_core.signal.beats import labelled_beats
    from ecg_core.signal.signals import read_record

    path = ROOT / "tests" / "data" / "mitdb" / "208"
    ex = charts.pipeline_example(path, "V")
    assert ex.label == "V" and ex.image.shape == (128, 128) and ex.image.dtype == np.uint8
    rec = read_record(path)
    beats = labelled_beats(rec.signal, rec.annotations.sample, rec.annotations.symbol)
    i = int(np.flatnonzero(beats.centres == round(ex.r_peak_s * ex.fs))[0])
    assert np.allclose(ex.window, beats.windows[i], atol=1e-5)
    assert np.array_equal(ex.image, normalise_batch(render(beats.windows[i: i + 1], "waveform"), "waveform")[0])
    assert len(charts.pipeline_figure(ex).data) == 4


def test_gradcam_on_reloaded_default_model_differs_by_class():
    from ecg_core.model import predict
    from ecg_core.model.explain import GradCam, mass_near_trace, overlay
    from ecg_core.picture.imaging import load_image, to_model_input

    clf = predict.load(predict.default_model(MODELS))  # loaded from the saved .keras file, as the app does
    cam = GradCam(clf.model)
    f = None
    if not clf.reads_features:
        s = best_agreeing_sample()
        image = load_image((SAMPLES / s["file"]).read_bytes())
        x, label = to_model_input(image), CLASS_KEYS.index(s["label"])
    else:  # a beat of the excerpt, with its features, made as the app makes it
        from ecg_core.pipeline.record_mode import model_features, model_images
        from ecg_core.signal.peaks import detect_beats
        from ecg_core.signal.signals import read_record

        rec = read_record(ROOT / "tests" / "data" / "mitdb" / "208", with_annotations=False)
        peaks = detect_beats(rec.signal)
        centre = peaks[len(peaks) // 2: len(peaks) // 2 + 1]
        image = model_images(rec.signal, centre, clf.info.representation, peaks)[0]
        x, f = to_model_input(image), model_features(rec.signal, centre, peaks)
        label = int(clf.predict_proba(image[None], f)[0].argmax())
    maps = np.stack([cam.heatmaps(x, [k], "gradcam", features=f)[0] for k in range(len(CLASS_KEYS))])
    assert maps.shape == (len(CLASS_KEYS), 128, 128) and np.isfinite(maps).all()
    assert maps.min() >= 0 and maps.max() <= 1 and (maps.max(axis=(1, 2)) > 0).sum() >= 2
    corr = np.corrcoef(maps.reshape(len(maps), -1))
    assert np.nanmin(corr) < 0.95, "every class gives the same map: gradients are not class specific"
    pp = cam.heatmaps(x, [label], "gradcam++", features=f)[0]
    assert pp.shape == (128, 128) and pp.max() == pytest.approx(1.0)
    assert 0.0 <= mass_near_trace(image, pp) <= 1.0
    assert overlay(image, pp, 0.5, upscale=3).shape == (384, 384, 3)
