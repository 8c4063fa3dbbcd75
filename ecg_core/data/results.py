"""Read stored evaluation results (models/results/*.json, written by `ecg_core.model.evaluate`) for display.

Nothing here trains or evaluates: the comparison page is built only from these files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ecg_core.classes import CLASS_KEYS

SPLIT_LABELS = {"recordwise": "record-wise", "beatwise": "beat-wise"}


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
    """One line per evaluated model: provenance, headline metrics, per-class F1, size and speed."""
    records = []
    for r in rows:
        m = r["metrics"]
        rec = {
            "model": r["model"],
            "architecture": r.get("architecture"),
            "representation": r.get("representation"),
            "trained on": SPLIT_LABELS.get(r.get("trained_on"), r.get("trained_on")),
            "split": SPLIT_LABELS.get(r.get("split"), r.get("split")),
            "protocol": r.get("protocol"),
            "test windows": m.get("n"),
            "accuracy": m.get("accuracy"),
            "macro F1": m.get("macro_f1"),
        }
        for k in CLASS_KEYS:
            rec[f"F1 {k}"] = m["per_class"].get(k, {}).get("f1")
        rec["params"] = r.get("params")
        rec["size (MB)"] = r["file_bytes"] / 1e6 if r.get("file_bytes") else None
        rec["latency (ms)"] = r.get("latency_ms_single")
        records.append(rec)
    table = pd.DataFrame.from_records(records)
    return table.sort_values("macro F1", ascending=False, ignore_index=True) if len(table) else table


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
