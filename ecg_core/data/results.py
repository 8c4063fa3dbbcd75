"""Read stored evaluation results (models/results/*.json, written by `ecg_core.model.evaluate`) for display.

Nothing here trains or evaluates: the comparison page is built only from these files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ecg_core.classes import CLASS_KEYS

SPLIT_LABELS = {"recordwise": "record-wise", "beatwise": "beat-wise"}
SEED_SUFFIX = re.compile(r"_seed(\d+)$")
# A beat-wise run trained with --seed 1 before the split had its own seed is tested on that split; the runs of a
# recipe are still one protocol ("all windows"), each on its own split.
_OWN_SPLIT = re.compile(r"\s*\(the model's own split, seed \d+\)")


@dataclass
class StoredResults:
    """Evaluated rows (one per model and split), reported reference rows, and files that could not be read."""

    evaluated: list[dict] = field(default_factory=list)
    reported: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def splits(self) -> list[str]:
        """Splits with at least one evaluated model, record-wise first."""
        found = {r.get("split") for r in self.evaluated}
        return [s for s in ("recordwise", "beatwise") if s in found] + sorted(found - {"recordwise", "beatwise"})

    def for_split(self, split: str) -> list[dict]:
        return [r for r in self.evaluated if r.get("split") == split]

    def find(self, model: str, split: str) -> dict | None:
        return next((r for r in self.evaluated if r.get("model") == model and r.get("split") == split), None)


def _usable(row: dict) -> bool:
    m = row.get("metrics", {})
    return bool(row.get("model")) and "macro_f1" in m and "per_class" in m and "confusion_matrix" in m


def load_results(results_dir: str | Path) -> StoredResults:
    """Every *.json in results_dir, sorted by name; unreadable or incomplete files are listed in `problems`."""
    out = StoredResults()
    d = Path(results_dir)
    if not d.is_dir():
        return out
    for path in sorted(d.glob("*.json")):
        try:
            row = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            out.problems.append(f"{path.name}: not readable JSON ({type(exc).__name__})")
            continue
        if not isinstance(row, dict):
            out.problems.append(f"{path.name}: not a result object")
        elif row.get("kind") == "reported":
            if isinstance(row.get("metrics", {}).get("macro_f1"), (int, float)):
                out.reported.append(row)
            else:
                out.problems.append(f"{path.name}: reported row without metrics.macro_f1")
        elif _usable(row):
            out.evaluated.append(row)
        else:
            out.problems.append(f"{path.name}: missing model, metrics.macro_f1, per_class or confusion_matrix")
    return out


def comparison_table(rows: list[dict]) -> pd.DataFrame:
    """One line per evaluated run: headline metrics, per-class F1, size and speed, then provenance."""
    records = []
    for r in rows:
        m = r["metrics"]
        rec = {"model": r["model"], "macro F1": m.get("macro_f1"), "accuracy": m.get("accuracy")}
        for k in CLASS_KEYS:
            rec[f"F1 {k}"] = m["per_class"].get(k, {}).get("f1")
        rec["params"] = r.get("params")
        rec["size (MB)"] = r["file_bytes"] / 1e6 if r.get("file_bytes") else None
        rec["latency (ms)"] = r.get("latency_ms_single")
        rec.update({
            "architecture": r.get("architecture"),
            "representation": r.get("representation"),
            "trained on": SPLIT_LABELS.get(r.get("trained_on"), r.get("trained_on")),
            "split": SPLIT_LABELS.get(r.get("split"), r.get("split")),
            "protocol": r.get("protocol"),
            "test windows": m.get("n"),
        })
        records.append(rec)
    table = pd.DataFrame.from_records(records)
    return table.sort_values("macro F1", ascending=False, ignore_index=True) if len(table) else table


def recipe_of(model: str) -> tuple[str, int]:
    """A result's recipe and seed: 'x_seed3' -> ('x', 3); a name without the suffix is seed 0 (train's default)."""
    m = SEED_SUFFIX.search(model)
    return (model[:m.start()], int(m.group(1))) if m else (model, 0)


def protocol_family(protocol: str | None) -> str:
    """The protocol without the note of which beat-wise split a run was tested on (each run on its own)."""
    return _OWN_SPLIT.sub("", str(protocol or "")).strip()


def tested_on(protocol: str | None) -> str:
    """A protocol in two words: 'all windows', or '≤ 300 per class' for a seeded per-class subsample."""
    m = re.search(r"at most (\d+) windows per class", str(protocol or ""))
    return f"≤ {m.group(1)} per class" if m else "all windows"


def _mean(values: list) -> float | None:
    vals = [float(v) for v in values if isinstance(v, (int, float))]
    return float(np.mean(vals)) if vals else None


def _shipped_mark(runs: list[tuple[int, dict]], shipped: Collection[str], default: str | None) -> str:
    marks = [("default" if r["model"] == default else "shipped") + (f" · seed {seed}" if len(runs) > 1 else "")
             for seed, r in runs if r["model"] in shipped or r["model"] == default]
    return ", ".join(marks)


def recipe_table(rows: list[dict], shipped: Collection[str] = (), default: str | None = None) -> pd.DataFrame:
    """One line per recipe (the result name without its `_seedN` suffix) and protocol, over its seeds.

    After the recipe, whether it ships and which test windows it was tested on, the metrics come first: mean macro
    F1, its standard deviation over seeds (None for one run), the number of runs, the best seed and its macro F1,
    mean accuracy and per-class recall (where stored); then size, latency and provenance. `shipped` names the
    results whose model file ships; `default` the app's default model. Recipes tested on every test window come
    first, then subsamples; within each, highest mean macro F1 first.
    """
    groups: dict[tuple[str, str], list[tuple[int, dict]]] = {}
    for r in rows:
        recipe, seed = recipe_of(str(r["model"]))
        groups.setdefault((recipe, protocol_family(r.get("protocol"))), []).append((seed, r))
    records = []
    for (recipe, protocol), runs in groups.items():
        runs.sort(key=lambda sr: sr[0])
        f1 = [float(r["metrics"]["macro_f1"]) for _, r in runs]
        best_seed, best = max(runs, key=lambda sr: sr[1]["metrics"]["macro_f1"])
        rec = {
            "recipe": recipe,
            "shipped": _shipped_mark(runs, shipped, default),
            "tested on": tested_on(protocol),
            "macro F1": float(np.mean(f1)),
            "± sd": float(np.std(f1, ddof=1)) if len(f1) > 1 else None,
            "runs": len(runs),
            "best seed": best_seed,
            "best macro F1": float(best["metrics"]["macro_f1"]),
            "accuracy": _mean([r["metrics"].get("accuracy") for _, r in runs]),
        }
        for k in CLASS_KEYS:
            rec[f"recall {k}"] = _mean([r["metrics"]["per_class"].get(k, {}).get("recall") for _, r in runs])
        sizes = [r["file_bytes"] / 1e6 for _, r in runs if r.get("file_bytes")]
        latency = [r["latency_ms_single"] for _, r in runs if isinstance(r.get("latency_ms_single"), (int, float))]
        rec["size (MB)"] = float(np.median(sizes)) if sizes else None
        rec["latency (ms)"] = float(np.median(latency)) if latency else None
        rec["params"] = best.get("params")
        rec["seeds"] = ", ".join(str(s) for s, _ in runs)
        rec["architecture"] = best.get("architecture")
        rec["representation"] = best.get("representation")
        rec["protocol"] = protocol
        rec["test windows"] = best["metrics"].get("n")
        rec["models"] = ", ".join(r["model"] for _, r in runs)
        records.append(rec)
    table = pd.DataFrame.from_records(records)
    if not len(table):
        return table
    order = table.assign(_sub=table["protocol"].str.contains("subsample"), _f1=-table["macro F1"])
    return table.loc[order.sort_values(["_sub", "_f1", "recipe"]).index].reset_index(drop=True)


def headline_and_singles(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a `recipe_table` into the recipes shown at once (repeated over seeds, or shipped) and the single,
    unshipped experiments (shown when asked for)."""
    if not len(table):
        return table, table
    headline = (table["runs"] > 1) | (table["shipped"] != "")
    return table[headline].reset_index(drop=True), table[~headline].reset_index(drop=True)


def recipe_per_class_f1(rows: list[dict], table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """recipe -> class key -> F1 averaged over the recipe's runs, for the recipes (and order) of `table`."""
    out = {}
    for _, line in table.iterrows():
        runs = [r for r in rows if r["model"] in set(line["models"].split(", "))
                and protocol_family(r.get("protocol")) == line["protocol"]]
        name = (line["recipe"] + (" · subsample" if "subsample" in line["protocol"] else "")
                + (f" (mean of {len(runs)})" if len(runs) > 1 else ""))
        out[name] = {k: v for k in CLASS_KEYS
                     if (v := _mean([r["metrics"]["per_class"].get(k, {}).get("f1") for r in runs])) is not None}
    return out


def per_class_f1(rows: list[dict]) -> dict[str, dict[str, float]]:
    """model -> class key -> F1, models in descending macro F1."""
    ordered = sorted(rows, key=lambda r: -r["metrics"]["macro_f1"])
    return {r["model"]: {k: v["f1"] for k, v in r["metrics"]["per_class"].items() if k in CLASS_KEYS}
            for r in ordered}


def class_recall(card: dict, results: StoredResults | None = None, split: str = "recordwise") -> dict | None:
    """A model's per-class recall on a split: from its card, else from its stored result; None if neither."""
    recall = card.get("metrics", {}).get(f"{split}_recall")
    if isinstance(recall, dict) and recall:
        return {k: float(recall[k]) for k in CLASS_KEYS if k in recall}
    if results is not None:
        row = results.find(str(card.get("name")), split)
        if row:
            return {k: float(v["recall"]) for k, v in row["metrics"]["per_class"].items() if k in CLASS_KEYS}
    return None


def per_record_counts(row: dict) -> dict[str, np.ndarray] | None:
    """'db/record' -> its confusion matrix from a stored result; None if the result predates per-record counts;
    ValueError if a stored matrix is not a non-negative count matrix of the six classes."""
    by_record = row.get("per_record_confusion")
    if not isinstance(by_record, dict) or not by_record:
        return None
    n = len(CLASS_KEYS)
    out = {}
    for group, matrix in by_record.items():
        try:
            cm = np.asarray(matrix, dtype=np.int64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{group}: not a count matrix") from exc
        if cm.shape != (n, n) or (cm < 0).any():
            raise ValueError(f"{group}: not a {n}x{n} count matrix")
        out[str(group)] = cm
    return out


def per_record_table(row: dict) -> pd.DataFrame | None:
    """One line per test record of a stored result: windows, accuracy, the commonest mistake, the recall of
    each class present and the class counts. None and ValueError as `per_record_counts`."""
    counts = per_record_counts(row)
    if counts is None:
        return None
    records = []
    for group, cm in counts.items():
        support = cm.sum(axis=1)
        database, _, record = group.partition("/")
        rec = {"record": record, "database": database,
               "test windows": int(support.sum()),
               "accuracy": float(np.trace(cm) / support.sum()) if support.sum() else None}
        errors = cm.copy()
        np.fill_diagonal(errors, 0)
        true_i, pred_i = np.unravel_index(int(errors.argmax()), errors.shape)
        rec["commonest mistake"] = (f"{CLASS_KEYS[true_i]} called {CLASS_KEYS[pred_i]} ({errors[true_i, pred_i]:,})"
                                    if errors.any() else "")
        for i, key in enumerate(CLASS_KEYS):
            rec[f"recall {key}"] = float(cm[i, i] / support[i]) if support[i] else None
        rec["classes (windows)"] = " · ".join(f"{k} {n:,}" for k, n in zip(CLASS_KEYS, support) if n)
        records.append(rec)
    return pd.DataFrame.from_records(records)


def class_recall_by_record(results: StoredResults, model: str, split: str = "recordwise",
                           ) -> dict[str, list[tuple[str, int, int]]] | None:
    """class key -> [(record, windows labelled correctly, windows of the class)] over the test records that hold
    the class, from a model's stored result; None if it has no readable per-record counts."""
    row = results.find(model, split)
    try:
        counts = per_record_counts(row) if row else None
    except ValueError:
        return None
    if counts is None:
        return None
    return {key: [(group.partition("/")[2], int(cm[i, i]), int(cm[i].sum())) for group, cm in counts.items()
                  if cm[i].sum()]
            for i, key in enumerate(CLASS_KEYS)}


# ---------------------------------------------------------------- patient-wise cross-validation

CROSSVAL_DIR = "crossval"  # models/results/crossval/*.json, written by `python -m ecg_core crossval`
RECIPE_LABELS = {"features": "picture + beat features (network)", "image": "picture only (network)",
                 "features_only": "beat features only (gradient-boosted trees)",
                 "blend": "network and trees, blended (shipped default)"}


def load_crossval(results_dir: str | Path) -> tuple[list[dict], list[str]]:
    """(results, problems): every readable cross-validation result under results_dir/crossval, k-fold first."""
    rows, problems = [], []
    for path in sorted(Path(results_dir, CROSSVAL_DIR).glob("*.json")):
        try:
            row = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append(f"{CROSSVAL_DIR}/{path.name}: not readable JSON ({type(exc).__name__})")
            continue
        if isinstance(row, dict) and isinstance(row.get("pooled", {}).get("macro_f1"), (int, float)) \
                and isinstance(row.get("recipe"), dict):
            rows.append(row)
        else:
            problems.append(f"{CROSSVAL_DIR}/{path.name}: not a cross-validation result")
    return sorted(rows, key=lambda r: (r.get("protocol") != "kfold", -r["pooled"]["macro_f1"])), problems


def crossval_table(rows: list[dict]) -> pd.DataFrame:
    """One line per recipe and protocol: pooled macro F1, ECE, recall per class, the one-lead figure and the
    uncertain answer's coverage and error rate."""
    lines = []
    for r in rows:
        p, u = r["pooled"], r.get("uncertain", {})
        name = r["recipe"].get("name", "?")
        lines.append({
            "recipe": RECIPE_LABELS.get(name, name),
            "protocol": "5-fold by patient" if r.get("protocol") == "kfold" else "DS1 -> DS2",
            "macro F1": p["macro_f1"], "ECE": p.get("ece"),
            **{f"recall {k}": p["recall"].get(k) for k in CLASS_KEYS},
            "one lead macro F1": r.get("one_lead", {}).get("macro_f1"),
            "answered": u.get("answered_share"), "error when answered": u.get("answered_error_rate"),
            "windows": int(np.sum(p["confusion_matrix"])),
        })
    return pd.DataFrame(lines)


def crossval_by_patient(row: dict, classes: Collection[str] = ("L", "R", "A", "V", "VF")) -> pd.DataFrame:
    """Patients holding at least 20 windows of one of `classes`: windows and recall per such class."""
    lines = []
    for group, matrix in row.get("per_patient_confusion", {}).items():
        cm = np.asarray(matrix, dtype=np.int64)
        line = {"patient": group}
        for i, k in enumerate(CLASS_KEYS):
            if k in classes and cm[i].sum() >= 20:
                line[f"{k} windows"] = int(cm[i].sum())
                line[f"recall {k}"] = round(float(cm[i, i] / cm[i].sum()), 3)
        if len(line) > 1:
            lines.append(line)
    return pd.DataFrame(lines)


def crossval_recall_by_record(row: dict) -> dict[str, list[tuple[str, int, int]]]:
    """class key -> [(record, windows labelled correctly, windows of the class)] from a cross-validation result."""
    counts = {g: np.asarray(m, dtype=np.int64) for g, m in row.get("per_patient_confusion", {}).items()}
    return {key: [(group.partition("/")[2], int(cm[i, i]), int(cm[i].sum())) for group, cm in counts.items()
                  if cm[i].sum()]
            for i, key in enumerate(CLASS_KEYS)}


def crossval_of(card: dict, rows: list[dict]) -> dict | None:
    """The k-fold cross-validation result of the recipe a model card was trained with, if stored."""
    recipe = card.get("training", {}).get("recipe", {}).get("name")
    return next((r for r in rows if r.get("protocol") == "kfold" and r["recipe"].get("name") == recipe), None) \
        if recipe else None


# ---------------------------------------------------------------- the rhythm-level VF detector

RHYTHM_RESULT = Path("rhythm") / "crossval.json"  # written by `python -m ecg_core rhythm-crossval`
RHYTHM_MEASURES = (  # (column, key in a detector's "overall"), the EC57-style numbers the page shows
    ("VF duration Se", "vf_duration_se"), ("VF episode Se", "vf_episode_se"), ("VF episode +P", "vf_episode_ppv"),
    ("organised s called VF", "organised_called_vf"), ("false VF s per hour", "false_vf_s_per_hour"),
    ("sinus specificity", "sinus_specificity"), ("noise s called VF", "noise_called_vf"),
    ("noise s called unreadable", "noise_called_unreadable"), ("VT s called VF", "vt_called_vf"),
    ("onset latency median (s)", "onset_latency_median_s"), ("onset latency max (s)", "onset_latency_max_s"))
RHYTHM_LABELS = {"rhythm mlp": "rhythm detector (shipped)"}


def load_rhythm_crossval(results_dir: str | Path) -> tuple[dict | None, list[str]]:
    """(result, problems): the stored cross-validation of the rhythm-level VF detector and its baselines."""
    path = Path(results_dir, RHYTHM_RESULT)
    if not path.exists():
        return None, []
    try:
        result = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, [f"{RHYTHM_RESULT}: not readable JSON ({type(exc).__name__})"]
    detectors = result.get("detectors") if isinstance(result, dict) else None
    if not isinstance(detectors, dict) or not all(isinstance(d, dict) and isinstance(d.get("overall"), dict)
                                                  for d in detectors.values()):
        return None, [f"{RHYTHM_RESULT}: not a rhythm cross-validation result"]
    return result, []


def rhythm_table(result: dict) -> pd.DataFrame:
    """One line per detector (the shipped one first): the EC57-style numbers of RHYTHM_MEASURES."""
    lines = [{"detector": RHYTHM_LABELS.get(name, name),
              **{col: d["overall"].get(key) for col, key in RHYTHM_MEASURES}}
             for name, d in result["detectors"].items()]
    return pd.DataFrame(lines, columns=["detector", *(c for c, _ in RHYTHM_MEASURES)])


def rhythm_by_record(result: dict, detector: str = "rhythm mlp") -> pd.DataFrame:
    """The detector's numbers per test recording that holds VF or had a second called VF (others: nothing)."""
    per = result["detectors"].get(detector, {}).get("per_record", {})
    lines = [{"recording": name.replace("_", " "), "fold": result.get("folds", {}).get(name),
              "VF duration Se": r.get("vf_duration_se"), "organised s called VF": r.get("organised_called_vf"),
              "VT s called VF": r.get("vt_called_vf"), "episodes found": len(r.get("episodes", []))}
             for name, r in per.items()
             if r.get("vf_duration_se") is not None or (r.get("organised_called_vf") or 0) > 0]
    return pd.DataFrame(lines, columns=["recording", "fold", "VF duration Se", "organised s called VF",
                                        "VT s called VF", "episodes found"])
