"""Stored results grouped by recipe (runs of one training command over seeds), without Streamlit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecg_core.classes import CLASS_KEYS
from ecg_core.data.results import (
    comparison_table,
    headline_and_singles,
    load_results,
    protocol_family,
    recipe_of,
    recipe_per_class_f1,
    recipe_table,
)

ROOT = Path(__file__).resolve().parent.parent
ALL = "recordwise test part, all windows"
SUB = "recordwise test part, random subsample of at most 300 windows per class (seed 0)"


def run(model: str, f1: float, protocol: str = ALL, recall_v: float = 0.9, file_bytes: int = 150_000,
        latency: float = 2.0) -> dict:
    per_class = {k: {"f1": f1, "recall": recall_v if k == "V" else 0.5} for k in CLASS_KEYS}
    return {"model": model, "split": "recordwise", "protocol": protocol, "architecture": "ecgnet_lite",
            "representation": "overlay", "params": 21902, "file_bytes": file_bytes, "latency_ms_single": latency,
            "metrics": {"macro_f1": f1, "accuracy": f1 + 0.3, "n": 49501, "per_class": per_class,
                        "confusion_matrix": np.eye(6, dtype=int).tolist()}}


def test_recipe_is_the_name_without_its_seed_suffix():
    assert recipe_of("ecgnet_lite_overlay_recordwise_seed3") == ("ecgnet_lite_overlay_recordwise", 3)
    assert recipe_of("ecgnet_lite_overlay_recordwise") == ("ecgnet_lite_overlay_recordwise", 0)
    assert recipe_of("lite_morph_seed12") == ("lite_morph", 12)
    # a seed inside the name is part of another recipe (a variant built from that run)
    assert recipe_of("large_noaug_seed1_offsets") == ("large_noaug_seed1_offsets", 0)
    assert protocol_family("beatwise test part, all windows (the model's own split, seed 1)") == \
        "beatwise test part, all windows"


def test_runs_of_a_recipe_give_mean_sd_and_best_seed():
    f1 = [0.467, 0.493, 0.435, 0.449, 0.440]
    rows = [run("lite" + (f"_seed{s}" if s else ""), v, recall_v=0.8 + s / 100) for s, v in enumerate(f1)]
    rows.append(run("big", 0.45, file_bytes=2_400_000, latency=9.0))
    table = recipe_table(rows, shipped={"lite"}, default="lite")
    assert list(table["recipe"]) == ["lite", "big"]  # highest mean macro F1 first
    lite = table.iloc[0]
    assert lite["runs"] == 5 and lite["seeds"] == "0, 1, 2, 3, 4"
    assert lite["macro F1"] == pytest.approx(np.mean(f1))
    assert lite["± sd"] == pytest.approx(np.std(f1, ddof=1)) and lite["± sd"] == pytest.approx(0.024, abs=5e-4)
    assert lite["best seed"] == 1 and lite["best macro F1"] == pytest.approx(0.493)
    assert lite["recall V"] == pytest.approx(0.82) and lite["recall N"] == pytest.approx(0.5)
    assert lite["shipped"] == "default · seed 0"
    big = table.iloc[1]
    assert big["runs"] == 1 and pd.isna(big["± sd"]) and big["shipped"] == ""
    assert big["size (MB)"] == pytest.approx(2.4) and big["latency (ms)"] == 9.0
    # metric columns come before size, latency and provenance
    cols = list(table.columns)
    assert cols[:4] == ["recipe", "shipped", "tested on", "macro F1"] and lite["tested on"] == "all windows"
    assert cols.index("recall VF") < cols.index("size (MB)") < cols.index("architecture") < cols.index("protocol")


def test_protocols_are_never_pooled_and_subsamples_come_last():
    rows = [run("a", 0.40), run("a", 0.49, protocol=SUB), run("b", 0.45), run("b_seed1", 0.47)]
    table = recipe_table(rows, shipped={"a"})
    assert list(zip(table["recipe"], table["runs"])) == [("b", 2), ("a", 1), ("a", 1)]
    assert list(table["protocol"]) == [ALL, ALL, SUB]
    assert list(table["tested on"]) == ["all windows", "all windows", "≤ 300 per class"]
    assert table.iloc[2]["macro F1"] == pytest.approx(0.49)


def test_headline_holds_repeated_or_shipped_recipes_singles_the_rest():
    rows = [run("rep", 0.45), run("rep_seed1", 0.47), run("shipped_one", 0.41), run("lone", 0.46)]
    headline, singles = headline_and_singles(recipe_table(rows, shipped={"shipped_one"}))
    assert list(headline["recipe"]) == ["rep", "shipped_one"] and headline.iloc[1]["shipped"] == "shipped"
    assert list(singles["recipe"]) == ["lone"]
    f1 = recipe_per_class_f1(rows, headline)
    assert list(f1) == ["rep (mean of 2)", "shipped_one"]
    assert f1["rep (mean of 2)"]["V"] == pytest.approx(0.46)
    empty = recipe_table([])
    assert headline_and_singles(empty)[0].empty and headline_and_singles(empty)[1].empty


def test_stored_results_group_into_fewer_rows_each_run_counted_once():
    res = load_results(ROOT / "models" / "results")
    shipped = {p.stem for p in (ROOT / "models").glob("*.keras")}
    default = next(json.loads(p.read_text())["name"] for p in (ROOT / "models").glob("*.json")
                   if json.loads(p.read_text()).get("default"))
    for split in res.splits():
        rows = res.for_split(split)
        table = recipe_table(rows, shipped, default)
        assert table["runs"].sum() == len(rows) and len(table) < len(rows)
        models = [m for line in table["models"] for m in line.split(", ")]
        assert sorted(models) == sorted(r["model"] for r in rows)
        assert len(comparison_table(rows)) == len(rows)
    record = recipe_table(res.for_split("recordwise"), shipped, default)
    marked = record[record["shipped"].str.startswith("default")]
    if res.find(default, "recordwise"):
        line = marked.iloc[0]
        assert line["recipe"] == recipe_of(default)[0] and line["runs"] >= 2
    else:  # a default trained on every patient has no record-wise test: no line may claim it
        assert marked.empty and (record["shipped"] != "").sum() >= 1
    seeded = record[record["runs"] >= 2]
    assert len(seeded) and (seeded["shipped"] != "").any()


def test_rhythm_result_is_read_or_named_as_a_problem(tmp_path):
    import json

    from ecg_core.data.results import load_rhythm_crossval, rhythm_by_record, rhythm_table

    assert load_rhythm_crossval(tmp_path) == (None, [])  # nothing stored: nothing shown, nothing wrong
    (tmp_path / "rhythm").mkdir()
    path = tmp_path / "rhythm" / "crossval.json"
    path.write_text("{not json")
    result, problems = load_rhythm_crossval(tmp_path)
    assert result is None and "not readable JSON" in problems[0]
    path.write_text(json.dumps({"detectors": {"TCSC": {"thresholds": [0.7]}}}))
    assert "not a rhythm cross-validation result" in load_rhythm_crossval(tmp_path)[1][0]
    shipped = {"overall": {"vf_duration_se": 0.9, "onset_latency_max_s": 4},
               "per_record": {"vfdb_430": {"vf_duration_se": 0.9, "episodes": [[1, 9]]},
                              "mitdb_100": {"vf_duration_se": None, "organised_called_vf": 0.0}}}
    path.write_text(json.dumps({"protocol": "grouped 2-fold", "folds": {"vfdb_430": 1, "mitdb_100": 0},
                                "detectors": {"rhythm mlp": shipped, "TCSC": {"overall": {"vf_duration_se": 0.2}}}}))
    result, problems = load_rhythm_crossval(tmp_path)
    table = rhythm_table(result)
    assert not problems and list(table["detector"]) == ["rhythm detector (shipped)", "TCSC"]
    assert table["VF duration Se"].tolist() == [0.9, 0.2] and table["onset latency max (s)"][0] == 4
    by_record = rhythm_by_record(result)
    assert by_record["recording"].tolist() == ["vfdb 430"]  # 100: no VF and no false alarm
    assert by_record["fold"].tolist() == [1] and by_record["episodes found"].tolist() == [1]
