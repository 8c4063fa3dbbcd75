"""AppTest: every page renders, the sidebar model picker, comparison from stored JSON, the no-model page."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from app_support import (
    MODELS,
    PICTURES,
    ROOT,
    SAMPLES,
    all_text,
    copy_default_model,
    new_app,
    run_ok,
    save_second_model,
    switch,
)

from ecg_core.classes import CLASS_KEYS, CLASS_NAMES, CLASSES

PAGES = ["classify", "class_guide", "comparison", "about"]


@pytest.fixture
def app(monkeypatch):
    monkeypatch.delenv("ECG_MODELS_DIR", raising=False)
    return run_ok(new_app())


def default_card() -> dict:
    from ecg_core.model import predict

    return predict.default_model(MODELS).card


def test_every_page_renders(app):
    pages = PAGES + (["signal"] if (ROOT / "pages" / "signal.py").exists() else [])
    for page in pages:
        switch(app, page)
        assert app.title, f"{page} has no title"
    assert "The model cannot be loaded" not in all_text(app)


def test_sidebar_picker_preselects_default_and_shows_its_f1(app):
    card = default_card()
    picker = app.sidebar.selectbox(key="ecg_model_path")
    assert picker.value.endswith(f"{card['name']}.keras")
    label = picker.options[picker.index]
    f1 = card["metrics"].get("crossval_macro_f1", card["metrics"].get("recordwise_macro_f1"))
    assert card["name"] in label and f"{f1:.3f}" in label
    assert any("not a medical device" in c.value for c in app.sidebar.caption)
    assert any(c.value.startswith("**The default.** For new patients") for c in app.sidebar.caption)


def test_picker_says_in_plain_words_what_each_model_is_for():
    """Labels come from the cards (default flag, split, representation, metrics), never from model names."""
    from pathlib import Path

    from ecg_core.model.predict import ModelInfo, read_card
    from ui.components import model_label

    for path in sorted(MODELS.glob("*.keras")):
        card = read_card(path)
        label = model_label(ModelInfo(path, card))
        assert label.endswith(f" · {card['name']}")
        assert label.startswith("default · one lead · beat over the patient's usual beat · F1 ") == bool(
            card.get("default")), label
        if card["split"] == "beatwise":
            assert label.startswith("beat-wise benchmark model (patients seen in training) · ")
            assert "unseen" not in label
            assert f"beat-wise F1 {card['metrics']['beatwise_macro_f1']:.3f}" in label
        elif "crossval_macro_f1" in card["metrics"] and card["split"] == "all":
            assert f"F1 {card['metrics']['crossval_macro_f1']:.3f} on unseen patients (5-fold" in label
        else:
            assert f"F1 {card['metrics']['recordwise_macro_f1']:.3f} on unseen patients" in label
    two = {"name": "x", "representation": "twolead_overlay", "split": "recordwise", "metrics": {}}
    assert model_label(ModelInfo(Path("x.keras"), two)) == \
        "two leads · each lead's beat over its usual beat · not evaluated yet · x"


def comparison_tables(at, splits: list[str]) -> dict:
    """The comparison page's tables by role: 'recipes <split>' (the headline, one per split in `splits`, page
    order), 'singles <split>' and 'runs <split>' (in expanders), 'patients'. AppTest keeps no key of a dataframe,
    so they are found by place."""
    out, folded = {}, []
    for e in at.expander:
        split = "beatwise" if "beat-wise" in e.label else "recordwise"
        role = "singles" if "single" in e.label else "runs" if "Every run" in e.label else None
        if role and e.dataframe:
            out[f"{role} {split}"] = e.dataframe[0].value
            folded.append(e.dataframe[0])
    shown = [d.value for d in at.dataframe if not any(d is f for f in folded)]
    out.update(("crossval", t) for t in shown if "ECE" in t.columns)
    out.update(zip((f"recipes {s}" for s in splits), (t for t in shown if "recipe" in t.columns
                                                      and "ECE" not in t.columns)))
    out.update(("patients", t) for t in shown if "record" in t.columns)
    return out


def stored_rows() -> tuple[list[dict], list[dict]]:
    rows = [json.loads(p.read_text()) for p in sorted((MODELS / "results").glob("*.json"))]
    return [r for r in rows if r.get("kind") != "reported"], [r for r in rows if r.get("kind") == "reported"]


def test_comparison_page_is_built_from_stored_json(app):
    evaluated, reported = stored_rows()
    switch(app, "comparison")
    splits = [s for s in ("recordwise", "beatwise") if any(r["split"] == s for r in evaluated)]
    tables = comparison_tables(app, splits)
    for split in splits:
        rows = [r for r in evaluated if r["split"] == split]
        lines = [tables[f"recipes {split}"]] + ([tables[f"singles {split}"]] if f"singles {split}" in tables else [])
        runs = sorted(m for t in lines for line in t["models"] for m in line.split(", "))
        assert runs == sorted(r["model"] for r in rows)  # every stored result in exactly one recipe line
    split = app.radio(key="comparison_split").value
    table = tables[f"runs {split}"]
    assert sorted(table["model"]) == sorted(r["model"] for r in evaluated if r["split"] == split)
    for r in evaluated:
        if r["split"] == split:
            row = (table["model"] == r["model"]) & (table["protocol"] == r["protocol"])
            assert table.loc[row, "macro F1"].item() == pytest.approx(r["metrics"]["macro_f1"])
    assert len(app.get("plotly_chart")) == 3  # per-class F1, size vs F1, confusion matrix
    for r in reported:
        assert any("reported, not reproduced" in m.label and f"{r['metrics']['macro_f1']:.3f}" in m.value
                   for m in app.metric)
    for other in app.radio(key="comparison_split").options[1:]:  # labels of the other splits
        app.radio(key="comparison_split").set_value(
            {"beat-wise": "beatwise", "record-wise": "recordwise"}.get(other, other))
        run_ok(app)
        assert f"runs {app.radio(key='comparison_split').value}" in comparison_tables(app, splits)


def test_comparison_shows_the_stored_cross_validation(app):
    """The patient-wise cross-validation table holds one line per stored result, with its pooled macro F1."""
    from ecg_core.data.results import load_crossval

    rows, problems = load_crossval(MODELS / "results")
    stored = sorted(p for p in (MODELS / "results" / "crossval").glob("*.json"))
    if not stored:
        pytest.skip("no stored cross-validation result")
    assert not problems and len(rows) == len(stored)
    switch(app, "comparison")
    table = comparison_tables(app, [])["crossval"]
    assert len(table) == len(rows)
    assert sorted(table["macro F1"]) == pytest.approx(sorted(json.loads(p.read_text())["pooled"]["macro_f1"]
                                                              for p in stored))
    assert any("patient-wise cross-validation" in h.value for h in app.header)


def test_comparison_shows_the_rhythm_detector_against_its_baselines(app):
    """The VF detector's stored cross-validation: one line per detector with its VF duration Se, and the
    recordings that hold VF or had a false alarm."""
    from ecg_core.data.results import load_rhythm_crossval

    result, problems = load_rhythm_crossval(MODELS / "results")
    assert result is not None and not problems
    switch(app, "comparison")
    tables = [d.value for d in app.dataframe if "detector" in d.value.columns]
    assert len(tables) == 1 and len(tables[0]) == len(result["detectors"])
    stored = sorted(d["overall"]["vf_duration_se"] for d in result["detectors"].values())
    assert sorted(tables[0]["VF duration Se"]) == pytest.approx(stored)
    assert tables[0]["detector"][0] == "rhythm detector (shipped)"
    records = [d.value for d in app.dataframe if "recording" in d.value.columns]
    assert len(records) == 1 and "vfdb 430" in set(records[0]["recording"])
    assert any("Ventricular fibrillation" in h.value for h in app.header)


def test_comparison_groups_seed_runs_marks_shipped_and_folds_singles(app):
    """The grouped view: one line per recipe (mean +- sd over seeds, best seed), metrics first, shipped models
    marked, single experiments in an expander, each split under a heading that names its protocol."""
    from ecg_core.data.results import recipe_of

    evaluated, _ = stored_rows()
    switch(app, "comparison")
    headers = [h.value for h in app.header]
    assert any(h.startswith("Patient-wise test (record-wise)") for h in headers)
    assert any(h.startswith("Beat-wise test") and "leaks" in h for h in headers)
    text = all_text(app)
    assert "DS1" in text and "DS2" in text and "70 %" in text
    tables = comparison_tables(app, ["recordwise", "beatwise"])
    recipes = tables["recipes recordwise"]
    assert list(recipes.columns[:5]) == ["recipe", "shipped", "tested on", "macro F1", "± sd"]
    assert all(f"recall {k}" in recipes.columns for k in CLASS_KEYS)
    assert list(recipes.columns).index("latency (ms)") < list(recipes.columns).index("protocol")
    # the shipped record-wise model whose recipe was run over the most seeds
    shipped_rw = [r for r in evaluated if r["split"] == "recordwise" and (MODELS / f"{r['model']}.keras").exists()]
    best = max(shipped_rw, key=lambda r: sum(recipe_of(o["model"])[0] == recipe_of(r["model"])[0] for o in evaluated))
    recipe = recipe_of(best["model"])[0]
    seeds = [r for r in evaluated if r["split"] == "recordwise" and recipe_of(r["model"])[0] == recipe
             and r["protocol"] == best["protocol"]]
    line = recipes[recipes["recipe"] == recipe]
    assert len(line) == 1 and line["runs"].item() == len(seeds) > 1
    assert line["macro F1"].item() == pytest.approx(np.mean([r["metrics"]["macro_f1"] for r in seeds]))
    assert line["± sd"].item() == pytest.approx(np.std([r["metrics"]["macro_f1"] for r in seeds], ddof=1))
    assert line["shipped"].item().startswith("default" if best["model"] == default_card()["name"] else "shipped")
    assert len(recipes) < sum(r["split"] == "recordwise" for r in evaluated)
    shipped = {p.stem for p in MODELS.glob("*.keras")}
    for split in ("recordwise", "beatwise"):
        singles = tables[f"singles {split}"]
        assert (singles["runs"] == 1).all() and (singles["shipped"] == "").all()
        assert not set(singles["models"]) & shipped
    assert any(e.label.endswith("single record-wise experiment(s): one run each, not shipped")
               for e in app.expander)


def test_comparison_split_toggle_and_confusion_matrix(monkeypatch, tmp_path):
    copy_default_model(tmp_path)
    (tmp_path / "results").mkdir()
    # a shipped model's record-wise result, so a headline line even with one run
    src = next(r for r in stored_rows()[0] if r["split"] == "recordwise" and (MODELS / f"{r['model']}.keras").exists()
               and json.loads((MODELS / f"{r['model']}.json").read_text()).get("representation") == "overlay")
    for ext in (".keras", ".json"):
        shutil.copy(MODELS / f"{src['model']}{ext}", tmp_path / f"{src['model']}{ext}")
    missed = np.zeros((len(CLASS_KEYS), len(CLASS_KEYS)), dtype=int)
    missed[1, 0] = 1980  # every LBBB beat of one patient called normal
    src = dict(src, per_record_confusion={"mitdb/214": missed.tolist()})
    beat = dict(src, model="beat_model", split="beatwise", trained_on="beatwise")
    del beat["per_record_confusion"]  # a result stored before per-patient counts were recorded
    beat["metrics"] = dict(src["metrics"], macro_f1=0.987, confusion_matrix=np.diag([50] * len(CLASS_KEYS)).tolist())
    (tmp_path / "results" / "a.json").write_text(json.dumps(src))
    (tmp_path / "results" / "b.json").write_text(json.dumps(beat))
    bad = dict(src, model="bad_counts", per_record_confusion={"mitdb/100": [[1]]})
    bad["metrics"] = dict(src["metrics"], macro_f1=0.1)
    (tmp_path / "results" / "c.json").write_text(json.dumps(bad))
    (tmp_path / "results" / "broken.json").write_text("{not json")
    shutil.copy(MODELS / "results" / "reported_seed.json", tmp_path / "results" / "reported_seed.json")
    monkeypatch.setenv("ECG_MODELS_DIR", str(tmp_path))
    at = run_ok(new_app())
    switch(at, "comparison")
    tables = comparison_tables(at, ["recordwise", "beatwise"])
    assert list(tables["runs recordwise"]["model"]) == [src["model"], "bad_counts"]
    assert list(tables["recipes recordwise"]["models"]) == [src["model"]]  # the shipped one; bad_counts: single
    assert list(tables["singles recordwise"]["models"]) == ["bad_counts"]
    assert any("broken.json" in w.value for w in at.warning)
    patients = tables["patients"]
    assert list(patients["record"]) == ["214"] and patients["recall L"].item() == 0
    assert patients["commonest mistake"].item() == "L called N (1,980)"
    at.selectbox(key="comparison_cm_recordwise").set_value("bad_counts")
    run_ok(at)
    assert "patients" not in comparison_tables(at, ["recordwise", "beatwise"])
    assert any("mitdb/100" in w.value for w in at.warning)
    assert not any("no per-patient counts" in i.value for i in at.info)
    at.radio(key="comparison_split").set_value("beatwise")
    run_ok(at)
    tables = comparison_tables(at, ["recordwise", "beatwise"])
    table = tables["runs beatwise"]
    assert list(table["model"]) == ["beat_model"] and table["macro F1"].item() == pytest.approx(0.987)
    assert "recipes beatwise" not in tables  # one unshipped run: a single experiment, folded away
    assert tables["singles beatwise"]["macro F1"].item() == pytest.approx(0.987)
    assert "leaks" in all_text(at)
    assert "patients" not in tables
    assert any("no per-patient counts" in i.value for i in at.info)
    heat = [c for c in at.get("plotly_chart") if "Heatmap" in c.proto.spec or "heatmap" in c.proto.spec]
    assert heat, "no confusion-matrix heatmap"


def test_class_guide_shows_every_class_recall_and_real_samples(app):
    switch(app, "class_guide")
    text = all_text(app)
    for c in CLASSES:
        assert c.name in text and c.description in text and c.significance in text
    metrics = default_card()["metrics"]
    recall = metrics.get("crossval_recall", metrics.get("recordwise_recall"))
    shown = [m.value for m in app.metric]  # one per class tab, in class order
    assert shown == [f"{recall[c.key]:.0%}" for c in CLASSES if c.key in recall]
    if "crossval_recall" in metrics:  # every patient tested once by the fold that never saw it
        recipe = default_card()["training"]["recipe"]["name"]
        stored = json.loads((MODELS / "results" / "crossval" / f"{recipe}.json").read_text())
        by_record = stored["per_patient_confusion"]
    else:
        stored = json.loads((MODELS / "results" / f"{default_card()['name']}__recordwise.json").read_text())
        by_record = stored["per_record_confusion"]
    lbbb = [(g.split("/")[1], cm[1][1], sum(cm[1])) for g, cm in by_record.items() if sum(cm[1])]
    assert lbbb, "the tested patients include LBBB patients"
    per_patient = [c.value for c in app.caption if c.value.startswith("Found by ")]
    assert len(per_patient) == len(CLASSES), "every class occurs in some test patient"
    assert all(f"{rec}: {found:,} of {total:,}" in per_patient[1] for rec, found, total in lbbb)
    captions = [c for im in app.image for c in im.captions]
    assert any("record" in c for c in captions) and len(captions) >= len(list(SAMPLES.glob("*/*.png"))) * 0.5


def test_about_page_draws_the_pipeline_of_a_real_beat(app):
    switch(app, "about")
    assert len(app.get("plotly_chart")) == 1
    text = all_text(app)
    assert "record 208" in text and "ODC-By 1.0" in text and "python -m ecg_core train" in "\n".join(
        c.value for c in app.code)


def test_no_model_shows_restore_page_not_a_traceback(monkeypatch, tmp_path):
    monkeypatch.setenv("ECG_MODELS_DIR", str(tmp_path))
    at = run_ok(new_app())
    text = all_text(at)
    assert "The model cannot be loaded" in text and "git checkout -- models/" in text
    for page in PAGES[1:]:  # pages that need no model still work
        switch(at, page)


def test_corrupt_model_file_shows_restore_page(monkeypatch, tmp_path):
    model = copy_default_model(tmp_path)
    model.write_bytes(b"PK\x03\x04 this is not a keras archive")
    monkeypatch.setenv("ECG_MODELS_DIR", str(tmp_path))
    at = run_ok(new_app())
    text = all_text(at)
    assert "The model cannot be loaded" in text and "corrupt" in text and "git checkout -- models/" in text


def test_model_picker_switches_models(monkeypatch, tmp_path):
    from ecg_core.model import predict
    from ecg_core.pipeline.picture import classify_picture

    copy_default_model(tmp_path)
    second = save_second_model(tmp_path, "second_model", 0.123)
    monkeypatch.setenv("ECG_MODELS_DIR", str(tmp_path))
    strip = "normal_paper_red_strip.png"
    data = (PICTURES / strip).read_bytes()
    expected = {name: classify_picture(data, predict.Classifier(predict.info_from_path(path)), strip)
                for name, path in (("default", tmp_path / predict.default_model().path.name), ("second", second))}

    at = run_ok(new_app())
    picker = at.sidebar.selectbox(key="ecg_model_path")
    assert len(picker.options) == 2
    assert any("second_model" in o and "0.123" in o for o in picker.options)
    at.file_uploader(key="classify_upload").set_value(("strip.png", data, "image/png"))
    run_ok(at)
    shown = list(at.dataframe[0].value["predicted"])
    assert shown == [CLASS_NAMES[k] for k in expected["default"].beats["predicted"]]
    at.sidebar.selectbox(key="ecg_model_path").set_value(str(second))
    run_ok(at)
    assert "`second_model`" in all_text(at)
    table = at.dataframe[0].value
    assert list(table["predicted"]) == [CLASS_NAMES[k] for k in expected["second"].beats["predicted"]]
    assert np.allclose(table["confidence"], expected["second"].beats["confidence"])


@pytest.mark.parametrize("representation", ["twolead", "twolead_overlay"])
def test_two_lead_model_is_explained_not_run_on_one_lead_input(monkeypatch, tmp_path, representation):
    """A two-lead model (from ECG_MODELS_DIR) gets a clear message on the pages that take one lead."""
    copy_default_model(tmp_path)
    second = save_second_model(tmp_path, "twolead_model", 0.475)
    card = json.loads(second.with_suffix(".json").read_text())
    second.with_suffix(".json").write_text(json.dumps({**card, "representation": representation}))
    monkeypatch.setenv("ECG_MODELS_DIR", str(tmp_path))
    at = run_ok(new_app())
    at.sidebar.selectbox(key="ecg_model_path").set_value(str(second))
    run_ok(at)
    assert "reads two leads (MLII above V1) at once: it reads pictures of two stacked strips" in all_text(at)
    at.file_uploader(key="classify_upload").set_value(("strip.png", (PICTURES / "normal_paper_red_strip.png")
                                                                    .read_bytes(), "image/png"))
    run_ok(at)
    assert "this picture shows one trace; choose a one-lead model" in all_text(at)
    switch(at, "signal")
    assert "made from two leads; this page classifies one lead" in all_text(at)


def test_every_one_lead_model_classifies_the_bundled_pictures(monkeypatch, tmp_path):
    """Waveform and overlay models read the same pictures: the picture is digitized, the model's own beat
    pictures are made from the signal, so no model needs pictures of its own form."""
    copy_default_model(tmp_path)
    others = {}
    for rep in ("waveform", "overlay"):
        path = save_second_model(tmp_path, f"{rep}_model", 0.4)
        card = json.loads(path.with_suffix(".json").read_text())
        path.with_suffix(".json").write_text(json.dumps({**card, "representation": rep}))
        others[rep] = path
    monkeypatch.setenv("ECG_MODELS_DIR", str(tmp_path))
    at = run_ok(new_app())
    at.radio(key="classify_source").set_value("samples")
    run_ok(at)
    for rep in others:
        at.sidebar.selectbox(key="ecg_model_path").set_value(str(others[rep]))
        run_ok(at)
        assert f"`{rep}_model`" in all_text(at), rep
        assert int(next(m for m in at.metric if m.label == "Beats").value) >= 10, rep
        assert not at.warning or all("two leads" not in w.value for w in at.warning), rep
