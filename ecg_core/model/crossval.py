"""Patient-wise cross-validation, the DS1 -> DS2 row, and the model trained on every patient.

    python -m ecg_core crossval --recipe features --dataset data/overlay            # 5 folds over 64 records
    python -m ecg_core crossval --recipe features --dataset data/overlay --protocol ds1-ds2
    python -m ecg_core train-final --recipe features --dataset data/overlay          # every patient

Grouped K-fold by record over every non-paced mitdb record (44) and the 20 vfdb records; 201 and 202 are one
patient and share a fold. Folds are assigned so that the bundle-branch-block patients and the records richest
in A, V and VF land in different folds (`assign_folds`). In each fold the next fold's records are the
validation patients: early stopping, temperature and the "uncertain" threshold are chosen on them, never on
the test fold. Each fold's test predictions are kept under data/crossval/<recipe>/ so an interrupted run
resumes; the stored result is models/results/crossval/<recipe>.json.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ecg_core.classes import CLASS_INDEX, CLASS_KEYS
from ecg_core.data import dataset
from ecg_core.model import calibration, trees
from ecg_core.model.evaluate import metrics, per_record_confusion
from ecg_core.signal.features import (
    FEATURE_NAMES,
    FEATURES_VERSION,
    PATIENT_FEATURES,
    READING_KINDS,
    as_other_second_lead,
    reading_kind,
    without_patient_rr,
    without_rr,
    without_v1,
)

RESULTS_DIR = Path(__file__).resolve().parents[2] / "models" / "results" / "crossval"
WORK_DIR = Path("data/crossval")
K_FOLDS = 5
SAME_PATIENT = (("mitdb/201", "mitdb/202"),)  # MIT-BIH: records of one subject
SPREAD_CLASSES = ("L", "R", "VF", "A", "V")  # rarest first
PROTOCOLS = ("kfold", "ds1-ds2")
VAL_CAP = 1500  # validation windows per class read each epoch


@dataclass(frozen=True)
class Recipe:
    """How one model is trained; the name is its results' file name."""

    name: str
    arch: str = "ecgnet_lite_features"
    features: bool = True
    epochs: int = 8
    cap_per_class: int = 3000
    batch_size: int = 128
    lr: float = 2e-3
    patience: int = 4
    augment: bool = True
    morph: bool = True
    absolute_rr: bool = False  # False: PATIENT_FEATURES held constant (they identify patients, not classes)
    patient_balanced: bool = True  # each class's training windows shared equally between its patients
    trees: int = 100  # the features-only baseline: boosting iterations, tree depth, smallest leaf
    tree_depth: int | None = 2
    tree_leaf: int = 500


RECIPES = {
    "features": Recipe("features"),
    "image": Recipe("image", arch="ecgnet_lite", features=False, patient_balanced=False),
    "features_only": Recipe("features_only", arch="gradient_boosting", epochs=0),
    "blend": Recipe("blend", arch="blend"),  # the network and the trees above, mixed
}
BLEND_PARTS = ("features", "features_only")  # the network, the trees
BLEND_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)  # the network's share in the blend, chosen per fold on validation


# ---------------------------------------------------------------- folds

def assign_folds(groups: np.ndarray, labels: np.ndarray, k: int = K_FOLDS) -> dict[str, int]:
    """Record ('db/record') -> fold. Patients of each rare class (rarest first, largest count first) go to
    the fold holding least of that class so far; the rest balance the folds' window counts."""
    names = sorted(set(groups.tolist()))
    counts = {g: np.bincount(labels[groups == g], minlength=len(CLASS_KEYS)) for g in names}
    units: list[tuple[str, ...]] = []
    seen: set[str] = set()
    for pair in SAME_PATIENT:
        present = tuple(g for g in pair if g in counts)
        if present:
            units.append(present)
            seen.update(present)
    units += [(g,) for g in names if g not in seen]
    unit_counts = {u: sum(counts[g] for g in u) for u in units}
    fold_counts = np.zeros((k, len(CLASS_KEYS)), np.int64)
    fold_of: dict[tuple[str, ...], int] = {}

    def place(u: tuple[str, ...], cls: int | None) -> None:
        key = fold_counts[:, cls] if cls is not None else np.zeros(k)
        f = int(np.lexsort((fold_counts.sum(axis=1), key))[0])
        fold_of[u] = f
        fold_counts[f] += unit_counts[u]

    for key in SPREAD_CLASSES:
        c = CLASS_INDEX[key]
        for u in sorted((u for u in units if u not in fold_of and unit_counts[u][c] > 0),
                        key=lambda u: (-unit_counts[u][c], u)):
            place(u, c)
    for u in sorted((u for u in units if u not in fold_of), key=lambda u: (-unit_counts[u].sum(), u)):
        place(u, None)
    return {g: f for u, f in fold_of.items() for g in u}


BBB_MIN_BEATS = 100


def bbb_patient(labels: np.ndarray) -> bool:
    """A record with at least BBB_MIN_BEATS left or right bundle-branch-block beats."""
    counts = np.bincount(labels, minlength=len(CLASS_KEYS))
    return bool(max(counts[CLASS_INDEX["L"]], counts[CLASS_INDEX["R"]]) >= BBB_MIN_BEATS)


def protocol_parts(ds: dataset.Dataset, protocol: str, k: int = K_FOLDS) -> list[dict]:
    """The (fit, validation, test) window indices of every fold of a protocol, with their records."""
    groups = ds.groups
    if protocol == "kfold":
        folds = assign_folds(groups, ds.labels, k)
        fold = np.array([folds[g] for g in groups])
        parts = []
        for f in range(k):
            v = (f + 1) % k
            parts.append({"fold": f, "test": np.flatnonzero(fold == f), "val": np.flatnonzero(fold == v),
                          "fit": np.flatnonzero((fold != f) & (fold != v))})
    elif protocol == "ds1-ds2":
        train, test = dataset.split_indices(ds, "recordwise")
        train_groups = groups[train]
        folds = assign_folds(train_groups, ds.labels[train], k)
        inner = np.array([folds[g] for g in train_groups])
        parts = [{"fold": 0, "test": test, "val": train[inner == 0], "fit": train[inner != 0]}]
    else:
        raise ValueError(f"unknown protocol {protocol!r}; use one of {PROTOCOLS}")
    # A bundle-branch-block patient in the validation fold would leave two or three of them to learn from:
    # they train instead, and the validation patients choose epochs, temperature and threshold without them.
    bbb = [g for g in set(groups.tolist()) if bbb_patient(ds.labels[groups == g])]
    for p in parts:
        moved = p["val"][np.isin(groups[p["val"]], bbb)]
        if moved.size < p["val"].size:  # a validation fold of bundle-branch-block patients only stays as it is
            p["val"] = np.setdiff1d(p["val"], moved)
            p["fit"] = np.sort(np.concatenate([p["fit"], moved]))
    for p in parts:
        for part in ("fit", "val", "test"):
            p[f"{part}_records"] = sorted(set(groups[p[part]].tolist()))
    return parts


# ---------------------------------------------------------------- fitting

def _capped(ds: dataset.Dataset, idx: np.ndarray, cap: int, seed: int, balanced: bool = False) -> np.ndarray:
    if balanced:
        return idx[dataset.cap_indices_by_group(ds.labels[idx], ds.groups[idx], cap, seed)]
    return idx[dataset.cap_indices(ds.labels[idx], cap, seed)]


def model_view(ds: dataset.Dataset, recipe: Recipe) -> dataset.Dataset:
    """The dataset as the recipe's models read it: PATIENT_FEATURES held constant unless absolute_rr."""
    if not recipe.features or recipe.absolute_rr or ds.features is None:
        return ds
    return replace(ds, features=without_patient_rr(ds.features))


def _inputs(ds: dataset.Dataset, idx: np.ndarray, recipe: Recipe, one_lead: bool = False):
    from ecg_core.picture.imaging import to_model_input

    x = to_model_input(ds.images[idx])
    if not recipe.features:
        return x
    f = ds.features[idx]
    return (x, without_v1(f) if one_lead else f)


def fit_network(ds: dataset.Dataset, fit_idx: np.ndarray, val_idx: np.ndarray | None, recipe: Recipe,
                seed: int = 0, epochs: int | None = None, log=print):
    """A Keras model of the recipe fitted on fit_idx; early-stopped on val_idx (new patients) when given,
    else trained for `epochs`. Returns (model, epochs_run, best_epoch, history)."""
    import keras

    from ecg_core.model import architectures, train

    keras.utils.set_random_seed(seed)
    fit = _capped(ds, fit_idx, recipe.cap_per_class, seed, recipe.patient_balanced)
    if recipe.features:
        # standardised over what training shows the model: V1 and RR parts removed at random as in the batches
        f = train.drop_features(ds.features[fit], np.random.default_rng(seed)) if recipe.augment else ds.features[fit]
        model = architectures.ecgnet_lite_features(len(FEATURE_NAMES), f.mean(axis=0),
                                                   np.maximum(f.var(axis=0), 1e-2))
    else:
        model = architectures.build(recipe.arch)
    model.compile(optimizer=keras.optimizers.Adam(recipe.lr), loss="sparse_categorical_crossentropy")
    weights = train.class_weights(ds.labels[fit])
    batches = train.Batches(ds.images, ds.labels, fit, min(recipe.batch_size, len(fit)), seed, recipe.augment,
                            "overlay",
                            weights, workers=2, morph=recipe.morph,
                            features=ds.features if recipe.features else None)
    callbacks = [keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.3, patience=2, min_lr=1e-5)]
    if val_idx is not None:
        val = _capped(ds, val_idx, VAL_CAP, seed)
        callbacks = [train.MacroF1(_inputs(ds, val, recipe), ds.labels[val].astype(np.int32)),
                     keras.callbacks.EarlyStopping(monitor="val_macro_f1", mode="max", patience=recipe.patience,
                                                   restore_best_weights=True), *callbacks]
    log(f"  fit {len(fit)} windows per class {np.bincount(ds.labels[fit], minlength=6).tolist()}")
    history = model.fit(batches.for_fit(), steps_per_epoch=len(batches), epochs=epochs or recipe.epochs,
                        callbacks=callbacks, verbose=2)
    hist = {k: [round(float(v), 5) for v in vals] for k, vals in history.history.items()}
    run = len(hist.get("loss", []))
    best = int(np.argmax(hist["val_macro_f1"])) + 1 if "val_macro_f1" in hist else run
    return model, run, best, hist


def save_model(model, path: Path) -> None:
    """Save the weights in a fresh, uncompiled copy (no optimizer state on disk)."""
    import keras

    clean = keras.Model.from_config(model.get_config())  # uncompiled: clone_model keeps the optimizer's state
    clean.set_weights(model.get_weights())
    clean.save(path)


def _predict(model, inputs) -> np.ndarray:
    return model.predict(inputs, batch_size=512, verbose=0)


def fit_boosting(ds: dataset.Dataset, fit_idx: np.ndarray, seed: int = 0,
                 recipe: Recipe = RECIPES["features_only"]) -> trees.Trees:
    """The features-only model: gradient-boosted trees over the beat features (no picture); shallow trees
    with large leaves, because a few patients per class let deeper ones learn the patients instead."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    from ecg_core.model import train

    fit = _capped(ds, fit_idx, 4000, seed, recipe.patient_balanced)
    w = train.class_weights(ds.labels[fit])
    x, y = ds.features[fit], ds.labels[fit]
    weight = np.array([w[int(c)] for c in y])
    # the V1 beats once more as a second lead other than V1 would give them (at half weight): otherwise the only
    # such beats in training are the normal ones of 100, 103, 117 and 123, and a wide QRS in V4 reads as normal
    v1 = x[:, FEATURE_NAMES.index("has_v1")] > 0.5
    x = np.concatenate([x, as_other_second_lead(x[v1])])
    y = np.concatenate([y, y[v1]])
    weight = np.concatenate([weight, 0.5 * weight[v1]])
    model = HistGradientBoostingClassifier(max_iter=recipe.trees, learning_rate=0.1, random_state=seed,
                                           max_depth=recipe.tree_depth, min_samples_leaf=recipe.tree_leaf)
    with threadpool_limits(1):  # OpenMP threads spin against other busy processes: one is ~10x faster then
        model.fit(x, y, sample_weight=weight)
    normal = fit[(ds.labels[fit] == CLASS_INDEX["N"]) & (ds.features[fit, FEATURE_NAMES.index("has_v1")] > 0.5)]
    return trees.from_sklearn(model, np.median(ds.features[normal], axis=0) if normal.size else None)


# ---------------------------------------------------------------- one fold

def _variants(model, ds: dataset.Dataset, idx: np.ndarray, recipe: Recipe) -> tuple[np.ndarray, ...]:
    """A fold model's predictions of windows idx as read with V1 where the record has it, as one lead, and as
    one lead without RR (a lone beat)."""
    if recipe.arch == "gradient_boosting":
        f = ds.features[idx]
        return tuple(model.predict_proba(v) for v in (f, without_v1(f), without_rr(without_v1(f))))
    full = _predict(model, _inputs(ds, idx, recipe))
    if not recipe.features:
        return full, full, full
    x, f = _inputs(ds, idx, recipe, one_lead=True)
    return full, _predict(model, (x, f)), _predict(model, (x, without_rr(f)))


def _save_fold(out: Path, info: dict, arrays: dict) -> None:
    tmp = out.with_suffix(".tmp.npz")
    np.savez(tmp, info=json.dumps(info), **arrays)
    tmp.rename(out)


def _load_fold_model(work: Path, fold: int, recipe: Recipe):
    if recipe.arch == "gradient_boosting":
        return trees.load(work / f"fold{fold}.trees.npz")
    import keras

    return keras.models.load_model(work / f"fold{fold}.keras", compile=False)


def run_fold(ds: dataset.Dataset, part: dict, recipe: Recipe, work: Path, seed: int = 0, log=print) -> dict:
    """Train on the fold's fit records, calibrate on its validation records, predict its test records.
    Returns (and keeps in `work`) the validation and test predictions; a fold already done is read back."""
    out = work / f"fold{part['fold']}.npz"
    if out.exists():
        with np.load(out, allow_pickle=False) as z:
            done = {k: z[k] for k in z.files} | json.loads(str(z["info"]))
        info = {k: v for k, v in done.items() if not isinstance(v, np.ndarray)}
        if "raw_val" not in done:
            log(f"[{recipe.name}] fold {part['fold']}: kept predictions lack the validation part, fold run again")
        elif recipe.features and done.get("features_version", "1") != FEATURES_VERSION:
            log(f"[{recipe.name}] fold {part['fold']}: kept predictions use other beat features, fold run again")
        else:
            if "raw_val_lone" not in done:  # kept before the one-lead validation readings: the fold's model makes them
                model = _load_fold_model(work, part["fold"], recipe)
                _, done["raw_val_one_lead"], done["raw_val_lone"] = _variants(model, ds, done["val"], recipe)
                _save_fold(out, info, {k: v for k, v in done.items() if isinstance(v, np.ndarray) and k != "info"})
            return done
    t0 = time.perf_counter()
    log(f"[{recipe.name}] fold {part['fold']}: test {' '.join(part['test_records'])}")
    val_cal = _capped(ds, part["val"], 3000, seed + 1)
    work.mkdir(parents=True, exist_ok=True)
    if recipe.arch == "gradient_boosting":
        model = fit_boosting(ds, part["fit"], seed, recipe)
        model.save(work / f"fold{part['fold']}.trees.npz")  # the DS1 -> DS2 fold is the DS1-only model
        run = best = 0
    else:
        model, run, best, _ = fit_network(ds, part["fit"], part["val"], recipe, seed, log=log)
        save_model(model, work / f"fold{part['fold']}.keras")
    raw_val, raw_val_one, raw_val_lone = _variants(model, ds, val_cal, recipe)
    raw_test, raw_test_one, raw_test_lone = _variants(model, ds, part["test"], recipe)
    y_val = ds.labels[val_cal].astype(np.int64)
    temperature = calibration.fit_temperature(raw_val, y_val)
    threshold = calibration.uncertain_threshold(calibration.with_temperature(raw_val, temperature), y_val)
    info = {"temperature": temperature, "threshold": threshold, "epochs_run": run, "best_epoch": best,
            "seconds": round(time.perf_counter() - t0, 1), "features_version": FEATURES_VERSION}
    arrays = {"test": part["test"], "raw": raw_test, "raw_one_lead": raw_test_one, "raw_lone": raw_test_lone,
              "val": val_cal, "raw_val": raw_val, "raw_val_one_lead": raw_val_one, "raw_val_lone": raw_val_lone}
    _save_fold(out, info, arrays)
    log(f"[{recipe.name}] fold {part['fold']} done in {info['seconds']} s: T={temperature} threshold={threshold}")
    return arrays | info


def blend_parts(recipe: Recipe) -> tuple[Recipe, Recipe]:
    """The network and the trees a blend recipe mixes (its epochs, cap and tree count are theirs)."""
    net, boost = (RECIPES[n] for n in BLEND_PARTS)
    return (replace(net, epochs=recipe.epochs, cap_per_class=recipe.cap_per_class),
            replace(boost, trees=recipe.trees))


def blend_fold(ds: dataset.Dataset, part: dict, recipe: Recipe, work_dir: Path, protocol: str, seed: int = 0,
               log=print) -> dict:
    """The blend of the fold's network and trees (each run, or read back, in its own work folder). The network's
    share is chosen on the validation patients for each reading kind (macro F1, ties to the even mix): beats
    with a second lead on the validation beats that have one, one lead and lone beats on every validation beat
    read so;
    then the blend's temperature and threshold on the same patients."""
    net, boost = (run_fold(model_view(ds, r), part, r, work_dir / f"{r.name}_{protocol}", seed, log)
                  for r in blend_parts(recipe))
    if not np.array_equal(net["val"], boost["val"]):
        raise ValueError("the blended models were calibrated on different validation windows")
    val, test = net["val"], net["test"]
    y_val = ds.labels[val].astype(np.int64)

    def mixed(key: str, w) -> np.ndarray:
        return calibration.blend(net[key], boost[key], w, net["temperature"], boost["temperature"])

    two_leads = np.flatnonzero(reading_kind(ds.features[val]) == 0)
    shares, scores = {}, {}
    for kind, key, rows in (("two_lead", "raw_val", two_leads), ("one_lead", "raw_val_one_lead", None),
                            ("lone", "raw_val_lone", None)):
        rows = np.arange(val.size) if rows is None or rows.size < 100 else rows
        scores[kind] = {w: metrics(mixed(key, w)[rows], y_val[rows])["macro_f1"] for w in BLEND_WEIGHTS}
        shares[kind] = max(BLEND_WEIGHTS, key=lambda w, sc=scores[kind]: (round(sc[w], 4), -abs(w - 0.5)))
    by_kind = np.array([shares[k] for k in READING_KINDS])

    def per_row(f: np.ndarray) -> np.ndarray:
        return by_kind[reading_kind(f)]

    f_test = ds.features[test]
    out = {"raw": mixed("raw", per_row(f_test)),
           "raw_one_lead": mixed("raw_one_lead", per_row(without_v1(f_test))),
           "raw_lone": mixed("raw_lone", per_row(without_rr(without_v1(f_test)))),
           "raw_val": mixed("raw_val", per_row(ds.features[val])), "test": test, "val": val}
    temperature = calibration.fit_temperature(out["raw_val"], y_val)
    threshold = calibration.uncertain_threshold(calibration.with_temperature(out["raw_val"], temperature), y_val)
    log(f"[blend] fold {part['fold']}: network share " + ", ".join(
        f"{k} {shares[k]} (" + " ".join(f"{w}: {v:.3f}" for w, v in scores[k].items()) + ")" for k in READING_KINDS)
        + f"; T={temperature} threshold={threshold}")
    return out | {"temperature": temperature, "threshold": threshold, "weight_network": shares,
                  "temperature_network": net["temperature"], "temperature_trees": boost["temperature"],
                  "epochs_run": net["epochs_run"], "best_epoch": net["best_epoch"],
                  "seconds": round(float(net["seconds"]) + float(boost["seconds"]), 1)}


# ---------------------------------------------------------------- the result

def _summary(probs: np.ndarray, y: np.ndarray) -> dict:
    m = metrics(probs, y)
    return {"macro_f1": round(m["macro_f1"], 4), "accuracy": round(m["accuracy"], 4), "ece": round(m["ece"], 4),
            "recall": {k: round(v["recall"], 4) for k, v in m["per_class"].items() if v["support"]},
            "precision": {k: round(v["precision"], 4) for k, v in m["per_class"].items() if v["support"]},
            "support": {k: v["support"] for k, v in m["per_class"].items()},
            "confusion_matrix": m["confusion_matrix"]}


def crossval(ds: dataset.Dataset, recipe: Recipe, protocol: str = "kfold", seed: int = 0,
             work_dir: Path = WORK_DIR, log=print, k: int = K_FOLDS) -> dict:
    """Every fold of the protocol, then pooled and per-fold metrics on calibrated test probabilities."""
    if recipe.features and ds.features is None:
        raise ValueError("this dataset has no beat features: rebuild it with `python -m ecg_core build-dataset`")
    if recipe.features and str(ds.meta.get("features_version", "1")) != FEATURES_VERSION:
        raise ValueError(f"this dataset's beat features are version {ds.meta.get('features_version', '1')}, the "
                         f"code's {FEATURES_VERSION}: rebuild it with `python -m ecg_core build-dataset`")
    ds = model_view(ds, recipe)
    parts = protocol_parts(ds, protocol, k)
    work = work_dir / f"{recipe.name}_{protocol}"
    folds = [blend_fold(ds, p, recipe, work_dir, protocol, seed, log) if recipe.arch == "blend"
             else run_fold(ds, p, recipe, work, seed, log) for p in parts]
    idx = np.concatenate([f["test"] for f in folds])
    y = ds.labels[idx].astype(np.int64)
    variants = {}
    for key, label in (("raw", "with V1 where the record has it"), ("raw_one_lead", "one lead (V1 features removed)"),
                       ("raw_lone", "one lead, no RR (as a single-beat picture)")):
        probs = np.concatenate([calibration.with_temperature(f[key], f["temperature"]) for f in folds])
        variants[key] = (label, probs)
    probs = variants["raw"][1]
    thresholds = np.concatenate([np.full(len(f["test"]), f["threshold"]) for f in folds])
    conf = probs.max(axis=1)
    answered = conf >= thresholds
    wrong = probs.argmax(axis=1) != y
    uncalibrated = np.concatenate([f["raw"] for f in folds])
    per_fold = []
    for p, f in zip(parts, folds):
        fy = ds.labels[f["test"]].astype(np.int64)
        s = _summary(calibration.with_temperature(f["raw"], f["temperature"]), fy)
        per_fold.append({"fold": p["fold"], "test_records": p["test_records"], "validation_records": p["val_records"],
                         "macro_f1": s["macro_f1"], "recall": s["recall"], "ece": s["ece"],
                         **{k: f[k] for k in ("temperature", "threshold", "epochs_run", "best_epoch", "seconds",
                                              "weight_network", "temperature_network", "temperature_trees")
                            if k in f}})
    pred = probs.argmax(axis=1)
    groups = ds.groups[idx]
    return {
        "recipe": asdict(recipe),
        "protocol": protocol,
        "protocol_text": ("patient-wise 5-fold cross-validation grouped by record over the 44 non-paced mitdb "
                          "records and the 20 vfdb records; every record tested once; validation patients "
                          "(the next fold, its bundle-branch-block patients moved to training) choose early "
                          "stopping, temperature and threshold"
                          if protocol == "kfold" else
                          "DS1 -> DS2 (de Chazal 2004) with the vfdb train / test record lists; validation "
                          "patients carved from DS1 by record"),
        "windows": "all windows of the test records, natural class mix",
        "command": "python -m ecg_core " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "features": list(FEATURE_NAMES) if recipe.features else [],
        "features_version": FEATURES_VERSION if recipe.features else None,
        "pooled": _summary(probs, y),
        "pooled_uncalibrated_ece": round(metrics(uncalibrated, y)["ece"], 4),
        "one_lead": _summary(variants["raw_one_lead"][1], y),
        "lone_beat_features": _summary(variants["raw_lone"][1], y),
        "uncertain": {"error_rate_target": calibration.ANSWERED_ERROR_RATE,
                      "answered_share": round(float(answered.mean()), 4),
                      "answered_error_rate": round(float(wrong[answered].mean()), 4) if answered.any() else None,
                      "error_rate_all": round(float(wrong.mean()), 4),
                      "answered_recall": {k: round(float((pred[answered & (y == i)] == i).mean()), 4)
                                          for i, k in enumerate(CLASS_KEYS) if (answered & (y == i)).any()}},
        "per_fold": per_fold,
        "per_patient_confusion": per_record_confusion(pred, y, groups),
        "temperature_median": float(np.median([f["temperature"] for f in folds])),
        "threshold_median": float(np.median([f["threshold"] for f in folds])),
        "best_epoch_median": int(np.median([f["best_epoch"] for f in folds])),
        **({"weight_network_median": {k: float(np.median([f["weight_network"][k] for f in folds]))
                                      for k in READING_KINDS},
            **{f"{k}_median": float(np.median([f[k] for f in folds]))
               for k in ("temperature_network", "temperature_trees")}} if recipe.arch == "blend" else {}),
        "dataset": {k: ds.meta.get(k) for k in ("representation", "preprocessing_version", "n", "sources")},
    }


def pooled_equals_folds(result: dict) -> bool:
    """The pooled confusion matrix is the sum of the per-patient ones (every test window counted once)."""
    total = np.sum([np.array(m) for m in result["per_patient_confusion"].values()], axis=0)
    return bool(np.array_equal(total, np.array(result["pooled"]["confusion_matrix"])))


def result_path(recipe: str, protocol: str) -> Path:
    return RESULTS_DIR / (f"{recipe}.json" if protocol == "kfold" else f"{recipe}_{protocol}.json")


def load_result(recipe: str, protocol: str = "kfold") -> dict | None:
    """A stored cross-validation result, or None."""
    p = result_path(recipe, protocol)
    return json.loads(p.read_text()) if p.exists() else None


def recipe_from_args(a: argparse.Namespace) -> Recipe:
    """The named recipe, with --epochs / --cap-per-class overrides (small runs, tests)."""
    from dataclasses import replace

    recipe = RECIPES[a.recipe]
    changes = {k: v for k, v in (("epochs", a.epochs), ("cap_per_class", a.cap_per_class)) if v is not None}
    return replace(recipe, **changes) if changes else recipe


def main(a: argparse.Namespace) -> None:
    recipe = recipe_from_args(a)
    ds = dataset.load(a.dataset)
    result = crossval(ds, recipe, a.protocol, a.seed, Path(a.work))
    out = Path(a.results_dir) / result_path(recipe.name, a.protocol).name if a.results_dir else \
        result_path(recipe.name, a.protocol)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    p = result["pooled"]
    print(f"wrote {out}: macro F1 {p['macro_f1']:.3f}, ECE {p['ece']:.3f}, recall "
          + " ".join(f"{k} {v:.2f}" for k, v in p["recall"].items()))


# ---------------------------------------------------------------- the shipped models

def _card(name: str, recipe: Recipe, model, split: str, temperature: float, threshold: float, training: dict,
          ds: dataset.Dataset, kfold: dict | None, ds1: dict | None) -> dict:
    from ecg_core.model import architectures
    from ecg_core.settings import PREPROCESSING_VERSION

    metrics_block: dict = {}
    if kfold:
        p, one = kfold["pooled"], kfold["one_lead"]
        metrics_block.update({
            "crossval_macro_f1": p["macro_f1"], "crossval_recall": p["recall"], "crossval_ece": p["ece"],
            "crossval_one_lead_macro_f1": one["macro_f1"], "crossval_one_lead_recall": one["recall"],
            "crossval_protocol": kfold["protocol_text"] + "; " + kfold["windows"],
            "crossval_uncertain": kfold["uncertain"]})
    if ds1:
        p, one = ds1["pooled"], ds1["one_lead"]
        metrics_block.update({"ds1_ds2_macro_f1": p["macro_f1"], "ds1_ds2_recall": p["recall"],
                              "ds1_ds2_one_lead_macro_f1": one["macro_f1"], "ds1_ds2_protocol": ds1["protocol_text"]})
        if split == "recordwise":  # this model IS the DS1 -> DS2 row: the app's record-wise figures
            metrics_block.update({"recordwise_macro_f1": one["macro_f1"], "recordwise_recall": one["recall"],
                                  "recordwise_protocol": "DS1 -> DS2, all windows, one lead"})
    return {
        "name": name,
        "architecture": recipe.arch,
        "classes": list(CLASS_KEYS),
        "input_shape": list(architectures.INPUT_SHAPE),
        "representation": "overlay",
        "preprocessing_version": PREPROCESSING_VERSION,
        "split": split,
        "features": list(FEATURE_NAMES),
        "features_version": FEATURES_VERSION,
        "features_held": [] if recipe.absolute_rr else list(PATIENT_FEATURES),
        "last_conv_layer": architectures.last_conv_layer(model),
        "temperature": temperature,
        "low_confidence_threshold": threshold,
        "uncertain_rule": (f"a beat whose calibrated top probability is below {threshold:.2f} is answered "
                           f"'uncertain' (chosen on validation patients for at most "
                           f"{calibration.ANSWERED_ERROR_RATE:.0%} errors among answered beats)"),
        "params": int(model.count_params()),
        "training": training,
        "dataset": {k: ds.meta.get(k) for k in ("representation", "preprocessing_version", "n", "sources",
                                                "paced_records_excluded", "features")},
        "context": "full",
        "metrics": metrics_block,
        "default": False,
    }


def train_final(ds: dataset.Dataset, recipe: Recipe, out_dir: Path, which: str = "all", seed: int = 0,
                work_dir: Path = WORK_DIR, log=print) -> Path:
    """The shipped models of a recipe. which="all": trained on every patient for the cross-validation's median
    best epoch, with its median temperature and threshold (every choice made on the folds, none on a test).
    which="ds1": the DS1 -> DS2 protocol's own model (trained on DS1 only), the literature-comparable row.
    A blend ships its network as <name>.keras and its trees as <name>.trees.npz beside it."""
    kfold = load_result(recipe.name, "kfold")
    ds1 = load_result(recipe.name, "ds1-ds2")
    command = "python -m ecg_core " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    is_blend = recipe.arch == "blend"
    net_recipe, tree_recipe = blend_parts(recipe) if is_blend else (recipe, None)
    stem = "ecgnet_lite_blend" if is_blend else "ecgnet_lite_features"
    out_dir.mkdir(parents=True, exist_ok=True)
    boost = None
    if which == "ds1":
        import keras

        fold = work_dir / f"{net_recipe.name}_ds1-ds2" / "fold0"
        tree_fold = work_dir / f"{tree_recipe.name}_ds1-ds2" / "fold0.trees.npz" if is_blend else None
        if ds1 is None or not fold.with_suffix(".keras").exists() or (is_blend and not tree_fold.exists()):
            raise ValueError(f"run `python -m ecg_core crossval --recipe {recipe.name} --protocol ds1-ds2` first")
        model = keras.models.load_model(fold.with_suffix(".keras"), compile=False)
        with np.load(fold.with_suffix(".npz"), allow_pickle=False) as z:
            info = json.loads(str(z["info"]))
        boost = trees.load(tree_fold) if is_blend else None
        mix = ds1["per_fold"][0] if is_blend else {}
        name = f"{stem}_ds1"
        training = {"command": ds1["command"], "copied_by": command, "records": "DS1 and the vfdb train list",
                    "validation": "DS1 records (bundle-branch-block patients kept in training)",
                    "epochs_run": info["epochs_run"], "best_epoch": info["best_epoch"], "seed": seed,
                    "recipe": asdict(recipe)}
        split = "recordwise"
        temperature, threshold = (mix["temperature"], mix["threshold"]) if is_blend else \
            (info["temperature"], info["threshold"])
    elif which == "all":
        if kfold is None:
            raise ValueError(f"run `python -m ecg_core crossval --recipe {recipe.name}` first: its median best "
                             "epoch, temperature and threshold are the shipped model's")
        epochs = max(1, int(kfold["best_epoch_median"]))
        t0 = time.perf_counter()
        log(f"[{recipe.name}] every patient, {epochs} epochs")
        model, run, _, hist = fit_network(model_view(ds, net_recipe), np.arange(len(ds)), None, net_recipe, seed,
                                          epochs=epochs, log=log)
        if is_blend:
            boost = fit_boosting(model_view(ds, tree_recipe), np.arange(len(ds)), seed, tree_recipe)
        mix = {k: kfold[f"{k}_median"] for k in ("weight_network", "temperature_network", "temperature_trees")} \
            if is_blend else {}
        name = f"{stem}_all"
        training = {"command": command, "records": "every non-paced mitdb record and every vfdb record",
                    "validation": "none: epochs, temperatures, the blend's share and the threshold are the "
                                  "cross-validation's medians",
                    "epochs_run": run, "seconds": round(time.perf_counter() - t0, 1), "seed": seed,
                    "recipe": asdict(recipe), "history": hist}
        temperature, threshold, split = kfold["temperature_median"], kfold["threshold_median"], "all"
    else:
        raise ValueError("which must be 'all' or 'ds1'")
    path = out_dir / f"{name}.keras"
    card = _card(name, recipe, model, split, temperature, threshold, training, ds, kfold, ds1)
    if path.with_suffix(".json").exists():  # a model trained again stays the default if it was
        try:
            card["default"] = bool(json.loads(path.with_suffix(".json").read_text()).get("default", False))
        except (OSError, json.JSONDecodeError):
            pass
    save_model(model, path)
    if is_blend:
        boost.save(path.with_suffix(".trees.npz"))
        card["blend"] = {"trees": path.with_suffix(".trees.npz").name,
                         "weight_network": {k: float(mix["weight_network"][k]) for k in READING_KINDS},
                         **{k: float(mix[k]) for k in ("temperature_network", "temperature_trees")},
                         "rule": "weight_network[kind] x the network's probabilities (at temperature_network) + the "
                                 "rest x the trees' (at temperature_trees), then the card's temperature; kind: "
                                 "two_lead when the beat has V1 or another second lead, else lone when it lacks a "
                                 "neighbour, else one_lead"}
    path.with_suffix(".json").write_text(json.dumps(card, indent=2))
    log(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB)")
    return path


def main_final(a: argparse.Namespace) -> None:
    train_final(dataset.load(a.dataset), recipe_from_args(a), Path(a.out), a.which, a.seed, Path(a.work))
