"""Metrics and stored evaluation results: python -m ecg_core evaluate --model PATH --dataset DIR ..."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from ecg_core.classes import CLASS_KEYS
from ecg_core.data import dataset
from ecg_core.settings import SPLIT_SEED
from ecg_core.signal.features import without_v1


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """ECE of the top-class confidence, equal-width bins."""
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def metrics(probs: np.ndarray, y: np.ndarray) -> dict:
    """Accuracy, macro F1, per-class P/R/F1/support, confusion matrix, one-vs-rest AUC, ECE."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score

    labels = list(range(len(CLASS_KEYS)))
    pred = probs.argmax(axis=1)
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    present = s > 0
    per_class = {}
    for i, key in enumerate(CLASS_KEYS):
        auc = None
        if 0 < s[i] < len(y):
            auc = float(roc_auc_score(y == i, probs[:, i]))
        per_class[key] = {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                          "support": int(s[i]), "roc_auc": auc}
    aucs = [v["roc_auc"] for v in per_class.values() if v["roc_auc"] is not None]
    return {
        "n": int(len(y)),
        "accuracy": float(np.mean(pred == y)),
        "macro_f1": float(np.mean(f[present])) if present.any() else 0.0,
        "macro_f1_classes": [k for k, m in zip(CLASS_KEYS, present) if m],
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(y, pred, labels=labels).tolist(),
        "macro_roc_auc": float(np.mean(aucs)) if aucs else None,
        "ece": expected_calibration_error(probs, y),
    }


def per_record_confusion(pred: np.ndarray, y: np.ndarray, groups: np.ndarray) -> dict[str, list[list[int]]]:
    """Confusion matrix (rows true, columns predicted, CLASS_KEYS order) of each test record ('db/record')."""
    n = len(CLASS_KEYS)
    out = {}
    for group in sorted(set(groups.tolist())):
        m = groups == group
        cm = np.zeros((n, n), dtype=np.int64)
        np.add.at(cm, (y[m], pred[m]), 1)
        out[str(group)] = cm.tolist()
    return out


def single_image_latency_ms(clf, image: np.ndarray, repeats: int = 50, features: np.ndarray | None = None) -> float:
    """Median wall time of one compiled single-image prediction (with its beat features for a model that
    reads them)."""
    clf.predict_proba(image[None], features)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        clf.predict_proba(image[None], features)
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3)


def split_seed(card: dict) -> int:
    """The beat-wise split seed a model was trained with: its card's split_seed; cards from before that
    field existed used their training seed (SPLIT_SEED since)."""
    if "split_seed" in card:
        return int(card["split_seed"])
    return int(card.get("training", {}).get("seed", SPLIT_SEED))


def span_check(clf, base: dataset.Dataset, pred: np.ndarray, test: np.ndarray,
               others: list[str | Path]) -> dict:
    """How often a beat's predicted class changes when it is read at another time scale: `others` are
    lone-context datasets of the same beats and crops as `base`, each at one fixed stretch factor."""
    changed_any = np.zeros(test.size, dtype=bool)
    per_factor, at_factor = {}, {}
    y = base.labels[test].astype(int)
    for path in others:
        other = dataset.load(path)
        if other.meta.get("context") != "lone" or len(other) != len(base) or not (
                np.array_equal(other.sample, base.sample) and np.array_equal(other.record, base.record)
                and np.array_equal(other.labels, base.labels)):
            raise ValueError(f"{path}: not a lone-beat dataset of the same beats as the evaluated one")
        lo, hi = other.meta.get("stretch", (None, None))
        if lo != hi:
            raise ValueError(f"{path}: its crops are stretched at random ({lo}-{hi}); build it with one factor")
        probs = clf.predict_proba(other.images[test])
        changed = probs.argmax(axis=1) != pred
        changed_any |= changed
        per_factor[f"{float(lo):g}"] = float(changed.mean())
        m = metrics(probs, y)
        at_factor[f"{float(lo):g}"] = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
                                       "recall": {k: v["recall"] for k, v in m["per_class"].items()}}
    base_factor = base.meta.get("stretch", (1.0, 1.0))
    return {
        "reference_factor": float(base_factor[0]) if base_factor[0] == base_factor[1] else None,
        "changed_share": per_factor,
        "changed_share_any": float(changed_any.mean()),
        "changed_share_any_per_class": {k: float(changed_any[y == i].mean()) for i, k in enumerate(CLASS_KEYS)
                                        if (y == i).any()},
        "metrics_at_factor": at_factor,
        "datasets": [str(p) for p in others],
    }


def evaluate(model_path: str | Path, dataset_path: str | Path, split: str, seed: int = 0,
             max_per_class: int | None = None, command: str | None = None,
             span_datasets: list[str | Path] | None = None) -> dict:
    """Evaluate a model on the test part of a split; returns the result dict (JSON-ready).

    span_datasets: lone-beat datasets of the same beats at other fixed stretch factors; the result then
    also holds the share of test beats whose predicted class changes at each (span_check).
    """
    from ecg_core.model import predict

    info = predict.info_from_path(model_path)
    clf = predict.Classifier(info)
    ds = dataset.load(dataset_path)
    if ds.meta.get("representation") != info.representation:
        raise ValueError(f"model uses {info.representation} images, dataset holds {ds.meta.get('representation')}")
    own_seed = split_seed(info.card)
    _, test = dataset.split_indices(ds, split, own_seed)  # the beats this model was not trained on
    own = f" (the model's own split, seed {own_seed})" if split == "beatwise" and own_seed != SPLIT_SEED else ""
    protocol = f"{split} test part, all windows{own}"
    if max_per_class:
        test = test[dataset.cap_indices(ds.labels[test], max_per_class, seed)]
        protocol = (f"{split} test part, random subsample of at most {max_per_class} windows per class "
                    f"(seed {seed}){own}")
    features = None
    if getattr(clf, "reads_features", False):
        if ds.features is None:
            raise ValueError(f"{info.name} reads beat features; this dataset has none (rebuild it)")
        # as the app reads a recording: one lead, so V1's features are left out
        features = without_v1(ds.features[test])
        protocol += ", beat features of one lead (as the app reads a recording)"
    t0 = time.perf_counter()
    probs = clf.predict_proba(ds.images[test], features)
    seconds = time.perf_counter() - t0
    y = ds.labels[test].astype(int)
    context = ds.meta.get("context", "full")
    if context != "full":
        protocol += f", {context}-beat windows"
    result = {
        "model": info.name,
        "architecture": info.card.get("architecture"),
        "representation": info.representation,
        "trained_on": info.card.get("split"),
        "split": split,
        "protocol": protocol,
        "context": context,
        "model_context": info.card.get("context", "full"),
        "test_records": sorted(set(ds.groups[test].tolist())),
        "params": int(clf.model.count_params()),
        "file_bytes": int(Path(model_path).stat().st_size),
        "latency_ms_single": single_image_latency_ms(clf, ds.images[test[0]],
                                                     features=None if features is None else features[:1]),
        "throughput_images_per_s": float(len(test) / max(seconds, 1e-9)),
        "metrics": metrics(probs, y),
        "per_record_confusion": per_record_confusion(probs.argmax(axis=1), y, ds.groups[test]),
        "command": command or "python -m ecg_core " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "dataset": ds.meta,
        "evaluated_at": time.strftime("%Y-%m-%d"),
    }
    if span_datasets:
        result["span_check"] = span_check(clf, ds, probs.argmax(axis=1), test, list(span_datasets))
    return result


def update_card(model_path: str | Path, result: dict) -> None:
    """Copy the headline test numbers into the model card (the app's model picker shows them)."""
    card_path = Path(model_path).with_suffix(".json")
    card = json.loads(card_path.read_text())
    m = result["metrics"]
    card.setdefault("metrics", {})
    card["metrics"].update({
        f"{result['split']}_macro_f1": round(m["macro_f1"], 4),
        f"{result['split']}_accuracy": round(m["accuracy"], 4),
        f"{result['split']}_recall": {k: round(v["recall"], 4) for k, v in m["per_class"].items()},
        f"{result['split']}_protocol": result["protocol"],
        "latency_ms_single": round(result["latency_ms_single"], 2),
    })
    card_path.write_text(json.dumps(card, indent=2))


def main(a: argparse.Namespace) -> None:
    result = evaluate(a.model, a.dataset, a.split, a.seed, getattr(a, "max_per_class", None),
                      span_datasets=getattr(a, "span_datasets", None))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    if (result["trained_on"] == result["split"] and not getattr(a, "max_per_class", None)
            and result["context"] == result["model_context"]):
        update_card(a.model, result)  # the card carries full-test-split numbers of its own context only
    m = result["metrics"]
    print(f"{result['model']} on {result['protocol']}: accuracy {m['accuracy']:.4f}, macro F1 {m['macro_f1']:.4f}")
    print("  " + "  ".join(f"{k}: F1 {v['f1']:.3f} R {v['recall']:.3f} (n={v['support']})"
                           for k, v in m["per_class"].items()))
    if "span_check" in result:
        sc = result["span_check"]
        print("  class changes when stretched: " + ", ".join(f"{f}x {v:.4f}" for f, v in sc["changed_share"].items())
              + f"; any {sc['changed_share_any']:.4f} ("
              + " ".join(f"{k} {v:.3f}" for k, v in sc["changed_share_any_per_class"].items()) + ")")
        print("  macro F1 when stretched: " + ", ".join(f"{f}x {v['macro_f1']:.4f}"
                                                         for f, v in sc["metrics_at_factor"].items()))
