"""Training and record-grouped cross-validation of the rhythm detector (ecg_core.signal.rhythm), with baselines.

Data: every record of vfdb and mitdb, the lead the app reads (read_path, as an upload), prepared and
measured exactly as classify_signal does; each second labelled by its rhythm annotation (VF/VFL/VFIB,
VT, NOISE, everything else organised). Features are cached per record under data/rhythm/ (git-ignored).

Protocol: grouped K-fold by record (vfdb and mitdb records dealt round-robin into the folds, seed 0): no
second of a test record is in training or in any choice. Inside each training part, a grouped 3-fold
split gives out-of-fold probabilities from which the VF threshold is chosen: the lowest threshold whose
training seconds, after the episode rules, call at most TARGET_ORGANISED of organised and TARGET_NOISE
of noise seconds VF. The baselines (TCSC, VF filter leakage: a threshold each; SPEC: Barro's fixed rule)
take their thresholds from the training records by the same rule and go through the same episode rules.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import wfdb

from ecg_core.model import rhythm_metrics as rm
from ecg_core.signal import quality as signal_quality
from ecg_core.signal import rhythm, signals
from ecg_core.signal.peaks import detect_beats

CACHE_DIR = Path("data/rhythm")
RESULTS_DIR = Path("models/results/rhythm")
TARGET_ORGANISED, TARGET_NOISE = 0.005, 0.03
TARGET_ORGANISED_UNREADABLE = 0.02  # organised seconds the noise threshold may call unreadable (training)
HIDDEN, ALPHA = (16,), 0.1  # small and strongly regularised: the VF seconds come from 7 patients
ORGANISED_EVERY = 2  # every 2nd pure organised second is a training example (plenty of them)
THRESHOLDS = np.concatenate([np.round(np.arange(0.05, 0.96, 0.05), 2), [0.97, 0.98, 0.99]])


# ---------------------------------------------------------------- per-record data

def record_data(path: Path) -> dict:
    """Features, reference labels and forced-noise quality segments of one record (cached)."""
    from ecg_core.io.signal_io import read_path

    key = f"{path.parent.name}_{path.name}"
    cache = CACHE_DIR / f"{key}.npz"
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        return {k: z[k] for k in z.files} | {"name": key}
    sig = read_path(path)
    q = sig.quality or signal_quality.assess(sig.signal, sig.fs)
    x = signals.prepare_signal(sig.signal, sig.fs)
    feats = rhythm.features(x, detect_beats(x))
    ann = wfdb.rdann(str(path), "atr")
    ref, notes = rhythm.second_labels(ann.sample, np.array(ann.aux_note, dtype=object), sig.signal.size, sig.fs)
    k = feats.shape[0]
    ref, notes = ref[:k], notes[:k]
    seg = np.array([[s.start_s, s.end_s] for s in q.segments], dtype=np.float64).reshape(-1, 2)
    reasons = np.array([s.reason for s in q.segments], dtype=str)
    out = {"features": feats, "ref": ref, "notes": notes.astype(str), "quality_seg": seg,
           "quality_reason": reasons, "duration_s": np.float64(sig.signal.size / sig.fs)}
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, **out)
    return out | {"name": key}


def records(mitdb: str, vfdb: str) -> list[Path]:
    return [p.with_suffix("") for d in (vfdb, mitdb) for p in sorted(Path(d).glob("*.hea"))]


def load_all(mitdb: str, vfdb: str, log=print) -> list[dict]:
    out = []
    for i, p in enumerate(records(mitdb, vfdb)):
        t = time.perf_counter()
        out.append(record_data(p))
        log(f"[{i + 1}] {out[-1]['name']}: {out[-1]['features'].shape[0]} s ({time.perf_counter() - t:.1f} s)")
    return out


class _Seg:  # quality segment as rhythm.resolve reads it
    def __init__(self, a: float, b: float, reason: str):
        self.start_s, self.end_s, self.reason = a, b, reason


def quality_segments(d: dict) -> list[_Seg]:
    return [_Seg(float(a), float(b), str(r)) for (a, b), r in zip(d["quality_seg"], d["quality_reason"])]


# ---------------------------------------------------------------- training

def training_set(data: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Seconds whose whole 4 s window carries one class; organised ones thinned."""
    xs, ys = [], []
    for d in data:
        ref = d["ref"].astype(np.int64)
        pad = np.pad(ref, 2, mode="edge")
        pure = np.all(np.stack([pad[i: i + ref.size] == ref for i in range(5)]), axis=0)
        keep = pure & ((ref != rm.ORG) | (np.arange(ref.size) % ORGANISED_EVERY == 0))
        xs.append(d["features"][keep])
        ys.append(ref[keep])
    return np.concatenate(xs), np.concatenate(ys)


def fit(x: np.ndarray, y: np.ndarray, kind: str = "mlp", seed: int = 0) -> rhythm.RhythmModel:
    """A RhythmModel (threshold 0.5 until chosen) from features and class indices, classes balanced."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / scale
    counts = np.bincount(y, minlength=len(rhythm.CLASSES)).astype(np.float64)
    w = (y.size / (len(rhythm.CLASSES) * np.maximum(counts, 1)))[y]
    if kind == "mlp":
        clf = MLPClassifier(HIDDEN, alpha=ALPHA, batch_size=256, learning_rate_init=1e-3, max_iter=40,
                            early_stopping=True, n_iter_no_change=5, random_state=seed)
        clf.fit(z, y, sample_weight=w)
        weights, biases = [np.asarray(c) for c in clf.coefs_], [np.asarray(b) for b in clf.intercepts_]
    elif kind == "logistic":
        clf = LogisticRegression(C=1.0, max_iter=500)
        clf.fit(z, y, sample_weight=w)
        weights, biases = [clf.coef_.T.copy()], [clf.intercept_.copy()]
    else:
        raise ValueError(f"unknown model kind {kind!r}")
    present = np.unique(y)
    if present.size < len(rhythm.CLASSES):  # a class absent from training: never predicted
        full_w = np.zeros((weights[-1].shape[0], len(rhythm.CLASSES)))
        full_b = np.full(len(rhythm.CLASSES), -1e9)
        full_w[:, present], full_b[present] = weights[-1], biases[-1]
        weights[-1], biases[-1] = full_w, full_b
    return rhythm.RhythmModel(mean, scale, weights, biases, 0.5, 0.5,
                              {"kind": kind, "hidden": list(HIDDEN), "alpha": ALPHA})


def folds(data: list[dict], k: int, seed: int = 0) -> np.ndarray:
    """Fold index per record: vfdb and mitdb records each shuffled and dealt round-robin."""
    rng = np.random.default_rng(seed)
    out = np.zeros(len(data), dtype=np.int64)
    for db in ("vfdb", "mitdb"):
        idx = np.array([i for i, d in enumerate(data) if d["name"].startswith(db)])
        idx = idx[rng.permutation(idx.size)]
        out[idx] = np.arange(idx.size) % k
    return out


# ---------------------------------------------------------------- scoring a detector on records

def score(data: list[dict], vf_flags: list[np.ndarray], noise_flags: list[np.ndarray]) -> dict:
    """Summed EC57-style numbers of per-second VF / noise flags, after the pipeline's episode rules."""
    total = None
    for d, v, n in zip(data, vf_flags, noise_flags):
        episodes, noise = rhythm.resolve(v, n, quality_segments(d), float(d["duration_s"]))
        s = rm.score_record(d["ref"].astype(np.int64), d["notes"], episodes,
                            list(noise[["start_s", "end_s"]].itertuples(index=False, name=None)))
        total = s if total is None else total.add(s)
    return rm.summarise(total)


def choose_threshold(data: list[dict], scores: list[np.ndarray], noise_flags: list[np.ndarray],
                     candidates: np.ndarray) -> float:
    """The lowest candidate meeting the training targets (most sensitive); else the one with fewest false VF."""
    best, fallback = None, (np.inf, float(candidates[-1]))
    for t in sorted(candidates):
        s = score(data, [sc >= t for sc in scores], noise_flags)
        org, noi = s["organised_called_vf"] or 0.0, s["noise_called_vf"] or 0.0
        if org <= TARGET_ORGANISED and noi <= TARGET_NOISE:
            best = float(t)
            break
        if org + noi < fallback[0]:
            fallback = (org + noi, float(t))
    return best if best is not None else fallback[1]


def _detector_flags(model: rhythm.RhythmModel, d: dict) -> tuple[np.ndarray, np.ndarray]:
    labels = rhythm.decide(model.predict_proba(d["features"]), model.vf_threshold, model.noise_threshold)
    return labels == rm.VF, labels == rm.NOISE


def choose_noise_threshold(data: list[dict], p_noise: list[np.ndarray]) -> float:
    """The lowest candidate calling at most TARGET_ORGANISED_UNREADABLE of organised seconds unreadable."""
    none = [np.zeros(p.size, bool) for p in p_noise]
    for t in sorted(THRESHOLDS):
        if (score(data, none, [p >= t for p in p_noise])["organised_called_unreadable"] or 0.0) \
                <= TARGET_ORGANISED_UNREADABLE:
            return float(t)
    return float(THRESHOLDS[-1])


def fit_with_threshold(train: list[dict], kind: str, inner: int = 3, seed: int = 0) -> rhythm.RhythmModel:
    """Fit on `train`; the noise and VF thresholds from inner grouped out-of-fold probabilities of `train`."""
    f = folds(train, inner, seed + 1)
    oof: list[np.ndarray] = [np.zeros((0, len(rhythm.CLASSES)))] * len(train)
    for j in range(inner):
        part = [d for d, fj in zip(train, f) if fj != j]
        m = fit(*training_set(part), kind=kind, seed=seed)
        for i in np.flatnonzero(f == j):
            oof[i] = m.predict_proba(train[i]["features"])
    model = fit(*training_set(train), kind=kind, seed=seed)
    model.noise_threshold = choose_noise_threshold(train, [p[:, rm.NOISE] for p in oof])
    noise = [p[:, rm.NOISE] >= model.noise_threshold for p in oof]
    model.vf_threshold = choose_threshold(train, [rhythm.shockable(p) for p in oof], noise, THRESHOLDS)
    return model


def crossval(data: list[dict], k: int = 10, kinds: tuple[str, ...] = ("mlp", "logistic"), seed: int = 0,
             log=print) -> dict:
    """Grouped K-fold results of the detector(s) and the baselines, overall and per record."""
    f = folds(data, k, seed)
    det_vf = {kind: [None] * len(data) for kind in kinds}
    det_noise = {kind: [None] * len(data) for kind in kinds}
    thresholds: dict[str, list[float]] = {kind: [] for kind in kinds}
    base_scores = [rhythm.baseline_scores(d["features"]) for d in data]
    base_names = list(base_scores[0])
    base_vf = {b: [None] * len(data) for b in base_names}
    base_thr: dict[str, list[float]] = {b: [] for b in base_names}
    zeros = [np.zeros(d["ref"].size, bool) for d in data]
    for j in range(k):
        t0 = time.perf_counter()
        train = [d for d, fj in zip(data, f) if fj != j]
        test_idx = np.flatnonzero(f == j)
        for kind in kinds:
            model = fit_with_threshold(train, kind, seed=seed)
            thresholds[kind].append([model.vf_threshold, model.noise_threshold])
            for i in test_idx:
                det_vf[kind][i], det_noise[kind][i] = _detector_flags(model, data[i])
        tr_idx = np.flatnonzero(f != j)
        for b in base_names:
            if b.startswith("SPEC"):  # Barro's fixed rule
                t = 0.5
            else:
                sc = np.concatenate([base_scores[i][b] for i in tr_idx])
                cand = np.unique(np.quantile(sc, np.linspace(0.5, 0.999, 120)))
                t = choose_threshold([data[i] for i in tr_idx], [base_scores[i][b] for i in tr_idx],
                                     [zeros[i] for i in tr_idx], cand)
            base_thr[b].append(round(float(t), 4))
            for i in test_idx:
                base_vf[b][i] = base_scores[i][b] >= t
        log(f"fold {j + 1}/{k}: {len(test_idx)} test records, thresholds "
            + ", ".join(f"{kk} {v[-1]}" for kk, v in {**thresholds, **base_thr}.items())
            + f" ({time.perf_counter() - t0:.0f} s)")
    out = {"protocol": f"grouped {k}-fold by record over vfdb + mitdb (seed {seed}); thresholds from "
                       "training records only", "folds": {d["name"]: int(fj) for d, fj in zip(data, f)},
           "detectors": {}}
    for kind in kinds:
        out["detectors"][f"rhythm {kind}"] = {"thresholds": thresholds[kind],
                                              **_overall_and_per_record(data, det_vf[kind], det_noise[kind])}
    for b in base_names:
        out["detectors"][b] = {"thresholds": base_thr[b], **_overall_and_per_record(data, base_vf[b], zeros)}
    return out


def _overall_and_per_record(data, vf, noise) -> dict:
    per = {}
    for d, v, n in zip(data, vf, noise):
        s = score([d], [v], [n])
        per[d["name"]] = {k: s[k] for k in ("vf_duration_se", "organised_called_vf", "noise_called_vf",
                                            "noise_called_unreadable", "vt_called_vf")}
    return {"overall": score(data, vf, noise), "per_record": per}


# ---------------------------------------------------------------- tables and CLI

ROWS = [("VF episode Se", "vf_episode_se"), ("VF episode +P", "vf_episode_ppv"),
        ("VF duration Se", "vf_duration_se"), ("VF duration +P", "vf_duration_ppv"),
        ("organised s called VF", "organised_called_vf"), ("false VF s / h organised", "false_vf_s_per_hour"),
        ("sinus specificity", "sinus_specificity"),
        ("other non-shockable specificity", "other_nonshockable_specificity"),
        ("noise s called VF", "noise_called_vf"), ("noise s called unreadable", "noise_called_unreadable"),
        ("organised s called unreadable", "organised_called_unreadable"), ("VT s called VF", "vt_called_vf"),
        ("onset latency median (s)", "onset_latency_median_s"), ("onset latency max (s)", "onset_latency_max_s")]


def table(result: dict) -> str:
    """Markdown table: one column per detector."""
    names = list(result["detectors"])
    lines = ["| measure | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for label, key in ROWS:
        vals = [result["detectors"][n]["overall"].get(key) for n in names]
        lines.append(f"| {label} | " + " | ".join("n/a" if v is None else f"{v:g}" for v in vals) + " |")
    return "\n".join(lines)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main_crossval(a: argparse.Namespace) -> int:
    data = load_all(a.mitdb, a.vfdb, _log)
    t = time.perf_counter()
    res = crossval(data, k=a.folds, kinds=tuple(a.kinds), seed=a.seed, log=_log)
    res["command"] = ("python -m ecg_core rhythm-crossval --mitdb " + a.mitdb + " --vfdb " + a.vfdb
                      + f" --folds {a.folds} --kinds {' '.join(a.kinds)} --seed {a.seed}")
    res["seconds"] = round(time.perf_counter() - t, 1)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    print(table(res))
    print(f"wrote {out}")
    return 0


def main_train(a: argparse.Namespace) -> int:
    data = load_all(a.mitdb, a.vfdb, _log)
    model = fit_with_threshold(data, a.kind, seed=a.seed)
    x, y = training_set(data)
    model.card.update({
        "name": Path(a.out).stem, "trained_on": f"all {len(data)} records of vfdb + mitdb ({y.size} seconds)",
        "window_s": list(rhythm.SCALES_S), "feature_fs": rhythm.FEATURE_FS, "step_s": rhythm.STEP_S,
        "threshold_rule": f"inner 3-fold out-of-fold training seconds: the lowest P(noise) threshold calling at "
                          f"most {TARGET_ORGANISED_UNREADABLE:g} of organised seconds unreadable, then the lowest "
                          f"P(VF)+P(VT) threshold calling at most {TARGET_ORGANISED:g} of organised and "
                          f"{TARGET_NOISE:g} of noise seconds VF",
        "command": f"python -m ecg_core train-rhythm --mitdb {a.mitdb} --vfdb {a.vfdb} --kind {a.kind} "
                   f"--seed {a.seed} --out {a.out}",
        "results": "models/results/rhythm/crossval.json"})
    path = model.save(a.out)
    print(f"wrote {path} (VF threshold {model.vf_threshold}, noise threshold {model.noise_threshold})")
    return 0


def add_arguments(p: argparse.ArgumentParser, train: bool) -> None:
    p.add_argument("--mitdb", default="../shared/data/mitdb")
    p.add_argument("--vfdb", default="../shared/data/vfdb")
    p.add_argument("--seed", type=int, default=0)
    if train:
        p.add_argument("--kind", default="mlp", choices=["mlp", "logistic"])
        p.add_argument("--out", default=str(rhythm.DEFAULT_MODEL.relative_to(rhythm.MODEL_DIR.parents[1])))
    else:
        p.add_argument("--folds", type=int, default=10)
        p.add_argument("--kinds", nargs="+", default=["mlp", "logistic"], choices=["mlp", "logistic"])
        p.add_argument("--out", default=str(RESULTS_DIR / "crossval.json"))
