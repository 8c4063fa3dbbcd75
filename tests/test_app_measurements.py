"""The beat measurements shown with each prediction, and a blend's two readers: the table and chart builders on
known values, then the Classify page under AppTest with the default model (a lone beat picture) and with a
blend of the committed network and trees fitted on the committed excerpt."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from app_support import MODELS, PICTURES, all_text, new_app, picture_result, run_ok

from ecg_core.classes import CLASS_KEYS, CLASS_NAMES
from ecg_core.figures import charts, measurements
from ecg_core.signal.features import (
    FEATURE_GROUPS,
    FEATURE_NAMES,
    N_FEATURES,
    as_other_second_lead,
    without_rr,
    without_v1,
)
from tests.conftest import write_blend_model

MIX = {"weight_network": {"two_lead": 0.9, "one_lead": 0.3, "lone": 0.3}, "temperature_network": 1.5,
       "temperature_trees": 0.8}
LONE = "pvc_seed_thin_beat.png"  # a picture of one beat: no neighbours
STRIP = "normal_paper_red_strip.png"


def beat(**values: float) -> np.ndarray:
    f = np.zeros(N_FEATURES, np.float32)
    for name, v in values.items():
        f[FEATURE_NAMES.index(name)] = v
    return f


KNOWN = beat(rr_pre_s=0.5124, rr_post_s=1.0431, rr_pre_local=0.7342, rr_post_local=1.46, rr_pre_record=0.7,
             rr_local_record=1.0, rr_known=1.0, qrs_ms=131.6, qrs_amp_mv=1.2345, qrs_polarity=-0.62,
             v1_qrs_ms=141.2, v1_amp_mv=0.8, v1_polarity=0.1, v1_terminal=0.27, has_v1=1.0, qrs_template_ms=96.4,
             qrs_vs_template_ms=35.2, template_corr=0.612, qrs_late=-0.214, v1_late=0.3, lead2_qrs_ms=141.2,
             has_lead2=1.0)


def values(table: pd.DataFrame) -> dict[str, str]:
    assert list(table.columns) == list(measurements.COLUMNS)
    return dict(zip(table["measurement"], table["value"]))


# ---------------------------------------------------------------- builders

def test_measurements_table_has_the_values_in_their_units():
    v = values(measurements.measurements_table(KNOWN[None]))  # (1, N) as the pipelines give it
    assert v == {
        "RR before": "512 ms",
        "RR after": "1043 ms",
        "Prematurity": "73 % of the local mean RR (early)",
        "QRS width (first lead)": "132 ms",
        "QRS height (first lead)": "1.23 mV",
        "QRS polarity (first lead)": "inverted (-0.62)",
        "Late QRS (first lead)": "below the baseline (a late S wave) (-0.21 of the QRS height)",
        "Neighbours' QRS width": "96 ms (this beat +35 ms)",
        "Shape match with the neighbours": "different shape (correlation 0.61)",
        "QRS width in V1": "141 ms",
        "Terminal QRS in V1": "positive (an R' at the end, as in right bundle-branch block) (+0.27)",
    }
    assert values(measurements.measurements_table(KNOWN)) == v  # (N,) too
    assert all(len(m) > 20 for m in measurements.measurements_table(KNOWN)["what it means"])


def test_words_follow_the_sign_and_size():
    upright = values(measurements.measurements_table(beat(**{**dict(zip(FEATURE_NAMES, KNOWN)), "qrs_polarity": 0.9,
                                                             "qrs_late": 0.004, "template_corr": 0.97,
                                                             "rr_pre_local": 1.02, "v1_terminal": -0.3,
                                                             "qrs_vs_template_ms": -0.2})))
    assert upright["QRS polarity (first lead)"] == "upright (+0.90)"
    assert upright["Late QRS (first lead)"] == "near the baseline (+0.00 of the QRS height)"
    assert upright["Shape match with the neighbours"] == "same shape (correlation 0.97)"
    assert upright["Prematurity"] == "102 % of the local mean RR (on time)"
    assert upright["Terminal QRS in V1"].startswith("negative (an S at the end")
    assert upright["Neighbours' QRS width"] == "96 ms (this beat +0 ms)"  # no "-0"


def test_one_lead_and_lone_beat_say_so_instead_of_neutral_values():
    one_lead = values(measurements.measurements_table(without_v1(KNOWN[None])))
    assert one_lead["V1"] == "no V1 lead"
    assert "QRS width in V1" not in one_lead and "Terminal QRS in V1" not in one_lead
    assert one_lead["RR before"] == "512 ms"

    lone = values(measurements.measurements_table(without_rr(without_v1(KNOWN[None]))))
    assert lone["Rhythm (RR intervals, prematurity)"] == "no neighbours (single beat)"
    assert lone["Neighbours' QRS"] == "no neighbours (single beat)"
    assert not {"RR before", "RR after", "Prematurity", "Neighbours' QRS width"} & set(lone)
    assert lone["QRS width (first lead)"] == "132 ms" and lone["V1"] == "no V1 lead"

    other = values(measurements.measurements_table(as_other_second_lead(KNOWN[None])))  # V5, not V1
    assert other["QRS width, second lead"] == "141 ms" and other["V1"] == "no V1 lead"
    assert "QRS width in V1" not in other and "QRS width, second lead" not in one_lead

    edge = KNOWN.copy()  # first beat of a recording: one neighbour, its RR real
    edge[FEATURE_NAMES.index("rr_known")] = 0.0
    shown = measurements.measurements_table(edge)
    assert values(shown)["RR before"] == "512 ms"
    assert "one neighbour is missing" in shown.set_index("measurement").loc["RR before", "what it means"]


def test_bad_measurements_are_refused_or_marked():
    for bad in (np.zeros(5), np.zeros((2, N_FEATURES)), "text", None):
        with pytest.raises(ValueError):
            measurements.measurements_table(bad)
    f = KNOWN.copy()
    f[FEATURE_NAMES.index("qrs_ms")] = np.nan
    f[FEATURE_NAMES.index("qrs_polarity")] = np.inf
    v = values(measurements.measurements_table(f))
    assert v["QRS width (first lead)"] == "not measured" and v["QRS polarity (first lead)"] == "not measured"


def test_effects_chart_has_one_bar_per_finite_group_in_percentage_points():
    names = list(FEATURE_GROUPS)
    raw = {n: np.array([0.05 * (i - 3)], np.float32) for i, n in enumerate(names)}
    v1 = next(n for n in names if "V1" in n)
    raw[v1] = np.array([np.nan], np.float32)
    kept, left_out = measurements.finite_effects(raw)
    assert left_out == [v1] and len(kept) == len(names) - 1
    fig = charts.measurement_effect_bars(kept, "V")
    bar = fig.data[0]
    assert len(bar.x) == len(names) - 1
    shown = dict(zip(bar.customdata, bar.x))
    for n in kept:
        assert shown[n] == pytest.approx(100.0 * float(raw[n][0]), abs=1e-4)
    assert list(np.abs(bar.x)) == sorted(np.abs(bar.x))  # largest on top
    assert measurements.group_label(v1) == "QRS in V1" and "QRS in V1" not in bar.y
    assert all(t.endswith(" pp") for t in bar.text)
    colours = dict(zip(bar.x, bar.marker.color))
    assert colours[max(bar.x)] != colours[min(bar.x)]  # for and against the class differ


def test_readers_table_takes_the_parts_of_the_class():
    parts = {"network": np.array([[0.1, 0.2, 0.3, 0.1, 0.2, 0.1]]), "trees": np.array([0.5, 0.1, 0.1, 0.1, 0.1, 0.1])}
    t = measurements.readers_table(parts, 2, 0.3, blended=0.25)
    assert list(t["probability"]) == pytest.approx([0.3, 0.1, 0.25])
    assert list(t["share"]) == ["30%", "70%", ""]
    with pytest.raises(ValueError):
        measurements.readers_table(parts, 2, 1.5)


def test_cache_stamp_follows_a_blends_trees_file(tmp_path):
    from ui import state

    model = tmp_path / "b.keras"
    model.write_bytes(b"network")
    trees = tmp_path / "b.trees.npz"
    trees.write_bytes(b"trees")
    card = {"blend": {"trees": "b.trees.npz"}}
    before = state._stamp(model, card)
    assert state._stamp(model) == before[:2]  # a plain model: its own file only
    trees.write_bytes(b"other trees, longer")
    assert state._stamp(model, card) != before
    assert state._stamp(model, card)[:2] == before[:2]


# ---------------------------------------------------------------- the app

def upload(at, name: str):
    at.file_uploader(key="classify_upload").set_value([(name, (PICTURES / name).read_bytes(), "image/png")])
    return run_ok(at)


def measurement_table(at) -> pd.DataFrame:
    return next(t.value for t in at.table if "measurement" in t.value.columns)


def test_lone_beat_picture_shows_its_measurements(monkeypatch):
    monkeypatch.delenv("ECG_MODELS_DIR", raising=False)
    at = upload(run_ok(new_app()), LONE)
    expected = picture_result(LONE)
    assert expected.kind == "beat"
    shown = measurement_table(at)
    pd.testing.assert_frame_equal(shown.reset_index(drop=True), measurements.measurements_table(expected.features(0)))
    v = values(shown)
    assert v["Rhythm (RR intervals, prematurity)"] == "no neighbours (single beat)" and v["V1"] == "no V1 lead"
    qrs = float(expected.features(0)[0, FEATURE_NAMES.index("qrs_ms")])
    assert v["QRS width (first lead)"] == f"{qrs:.0f} ms"
    readers = [e for e in at.expander if e.label.startswith("Two readers")]
    from ecg_core.model import predict

    assert len(readers) == (1 if predict.default_model(MODELS).card.get("blend") else 0)  # only for a blend


@pytest.fixture()
def blend_dir(tmp_path) -> Path:
    return write_blend_model(tmp_path, MIX)


def test_blend_shows_its_two_readers_and_what_the_measurements_say(monkeypatch, blend_dir):
    from ecg_core.model import predict
    from ecg_core.pipeline.picture import classify_picture

    clf = predict.load(models_dir=blend_dir)
    expected = classify_picture((PICTURES / STRIP).read_bytes(), clf, STRIP)
    image, features = expected.image(0), expected.features(0)
    top = int(np.argmax(expected.probabilities(0)))
    parts = clf.parts_proba(image[None], features)
    effects = clf.measurement_effects(features, top)

    monkeypatch.setenv("ECG_MODELS_DIR", str(blend_dir))
    at = upload(run_ok(new_app()), STRIP)
    readers = next(d.value for d in at.dataframe if "reader" in d.value.columns)
    assert list(readers["probability"][:2]) == pytest.approx([parts["network"][0, top], parts["trees"][0, top]],
                                                             abs=1e-5)
    # the blend's own probability, against the beat table's, which keeps 4 decimals
    assert readers["probability"].iloc[2] == pytest.approx(expected.probabilities(0)[top], abs=5.1e-5)
    assert list(readers["share"][:2]) == ["30%", "70%"]
    text = all_text(at)
    assert "30% of the network's and 70% of the trees'" in text
    chart = next(c for c in at.get("plotly_chart") if '"effect"' in c.proto.spec)
    bar = json.loads(chart.proto.spec)["data"][0]
    finite = {k: float(v[0]) for k, v in effects.items() if np.isfinite(v[0])}
    assert len(bar["x"]) == len(finite) == len(FEATURE_GROUPS) - 2  # V1 and the second lead left out: one lead
    assert dict(zip(bar["customdata"], bar["x"])) == pytest.approx({k: 100 * v for k, v in finite.items()}, abs=1e-4)
    assert "Not shown, not measured on this beat: QRS in V1; QRS width, second lead." in text
    assert f"**What the measurements say for {CLASS_NAMES[CLASS_KEYS[top]]}**" in text
    pd.testing.assert_frame_equal(measurement_table(at).reset_index(drop=True),
                                  measurements.measurements_table(features))
