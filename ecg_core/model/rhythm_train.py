"""Training and record-grouped cross-validation of the rhythm detector (ecg_core.signal.rhythm), with baselines.

Data: every record of vfdb and mitdb, the lead the app reads (read_path, as an upload), prepared and
measured exactly as classify_signal does; each second labelled by its rhythm annotation (VF/VFL/VFIB,
VT, NOISE, everything else organised). Features are cached per record under data/rhythm/ (git-ignored).

Protocol: grouped K-fold by record (vfdb and mitdb records dealt round-robin into the folds, seed 0): no
second of a test record is in training or in any choice. Inside each training part, a grouped 3-fold
split gives out-of-fold probabilities from which the settings are chosen: for each smoothing width the
noise threshold, for each episode padding and joining gap the VF threshold (the lowest whose training
seconds, after the episode rules, call at most TARGET_ORGANISED of organised and TARGET_NOISE of noise
seconds VF), and of these the setting with the highest VF duration Se. The baselines (TCSC, VF filter
leakage: a threshold each; SPEC: Barro's fixed rule) take their thresholds from the training records by the
same rule and go through the same episode rules (no padding, the default gap, no repeating-complex rule).

Operating curves (`operating_curves`): on the same out-of-fold per-second scores of every method, with each
method's episode rules held as above (the detector: each fold's smoothing, padding and gap), the VF threshold
is swept over its whole range: VF duration Se at fixed shares of organised seconds called VF, the false VF
shares at fixed Se, and the normalised area under the curve up to CURVE_AUC_MAX_FALSE. A read-out of the
whole curve on the test records, not a choice of anything.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import wfdb

from ecg_core.model import rhythm_metrics as rm
from ecg_core.settings import WORKING_FS
from ecg_core.signal import quality as signal_quality
from ecg_core.signal import rhythm, signals
from ecg_core.signal.peaks import detect_beats

CACHE_DIR = Path("data/rhythm")
RESULTS_DIR = Path("models/results/rhythm")
TARGET_ORGANISED, TARGET_NOISE = 0.005, 0.03
TARGET_ORGANISED_UNREADABLE = 0.02  # organised seconds the noise threshold may call unreadable (training)
HIDDEN, ALPHA = (16,), 0.1  # small and strongly regularised: the VF seconds come from 7 patients
MEMBERS, BAG_SHARE = 5, 0.8  # a bag of networks, each on 80 % of the records: steadier on a new patient
# what the inner folds choose among (training records only): probability smoothing, episode padding and gap
SMOOTHING_S = (1, 3, 5)
PAD_S = (0.0, 1.0, 2.0, 3.0)
MERGE_GAPS_S = (2.0, 5.0, 10.0)  # VF runs this close are one episode (a few organised-looking seconds inside VF)
ORGANISED_EVERY = 2  # every 2nd pure organised second is a training example (plenty of them)
# probabilities crowd towards 1 (classes balanced), so the grid is fine there: 1 - 10^-1 ... 1 - 10^-4
THRESHOLDS = np.unique(np.round(np.concatenate([np.arange(0.05, 0.9, 0.05), 1 - np.logspace(-1, -4, 31)]), 6))
# operating-curve read-outs: VF duration Se at these shares of organised seconds called VF, false shares at these Se
CURVE_FALSE_RATES = (0.001, 0.005, 0.01, 0.02)
CURVE_SE_TARGETS = (0.5, 0.8, 0.9, 0.95)
CURVE_AUC_MAX_FALSE = 0.02
CURVE_POINTS_MAX_FALSE, CURVE_POINTS = 0.05, 120  # the stored (thinned) curve


# ---------------------------------------------------------------- per-record data

def prepared_record(path: Path) -> dict:
    """The signal at FEATURE_FS, its R peaks, reference labels and forced-noise quality segments (cached).

    Cached apart from the features, so that new measures do not repeat the preparation and beat detection.
    """
    from ecg_core.io.signal_io import read_path

    cache = CACHE_DIR / "prepared" / f"{path.parent.name}_{path.name}_v{rhythm.MEASURES_VERSION}.npz"
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        return {k: z[k] for k in z.files}
    sig = read_path(path)
    q = sig.quality or signal_quality.assess(sig.signal, sig.fs)
    x = signals.prepare_signal(sig.signal, sig.fs)
    peaks = detect_beats(x)
    n_seconds = max(1, int(np.ceil(x.size / WORKING_FS)))
    ann = wfdb.rdann(str(path), "atr")
    ref, notes = rhythm.second_labels(ann.sample, np.array(ann.aux_note, dtype=object), sig.signal.size, sig.fs)
    seg = np.array([[s.start_s, s.end_s] for s in q.segments], dtype=np.float64).reshape(-1, 2)
    out = {"x": signals.resample(np.asarray(x, dtype=np.float64), WORKING_FS, rhythm.FEATURE_FS),
           "peaks": signals.rescale_samples(peaks, WORKING_FS, rhythm.FEATURE_FS), "n_seconds": np.int64(n_seconds),
           "ref": ref[:n_seconds], "notes": notes[:n_seconds].astype(str), "quality_seg": seg,
           "quality_reason": np.array([s.reason for s in q.segments], dtype=str),
           "duration_s": np.float64(sig.signal.size / sig.fs)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, **out)
    return out


def record_data(path: Path) -> dict:
    """Features (cached per feature list), reference labels and quality segments of one record."""
    key = f"{path.parent.name}_{path.name}"
    tag = hashlib.sha1(",".join((*rhythm.FEATURES, str(rhythm.MEASURES_VERSION))).encode()).hexdigest()[:8]
    cache = CACHE_DIR / f"{key}_{tag}.npz"
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        return {k: z[k] for k in z.files} | {"name": key}
    p = prepared_record(path)
    feats = rhythm.features_at_feature_fs(p["x"], p["peaks"], int(p["n_seconds"]))
    k = feats.shape[0]
    out = {"features": feats, "ref": p["ref"][:k], "notes": p["notes"][:k], "quality_seg": p["quality_seg"],
           "quality_reason": p["quality_reason"], "duration_s": p["duration_s"]}
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

def training_set(data: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, class, record index) of the seconds whose whole 4 s window carries one class; organised
    ones thinned."""
    xs, ys, gs = [], [], []
    for r, d in enumerate(data):
        ref = d["ref"].astype(np.int64)
        pad = np.pad(ref, 2, mode="edge")
        pure = np.all(np.stack([pad[i: i + ref.size] == ref for i in range(5)]), axis=0)
        keep = pure & ((ref != rm.ORG) | (np.arange(ref.size) % ORGANISED_EVERY == 0))
        xs.append(d["features"][keep])
        ys.append(ref[keep])
        gs.append(np.full(int(keep.sum()), r))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(gs)


def _network(z: np.ndarray, y: np.ndarray, kind: str, seed: int, hidden: tuple[int, ...],
             alpha: float) -> rhythm.Network:
    """One network on standardised features, classes balanced; a class absent from y is never predicted."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    counts = np.bincount(y, minlength=len(rhythm.CLASSES)).astype(np.float64)
    w = (y.size / (len(rhythm.CLASSES) * np.maximum(counts, 1)))[y]
    if kind == "mlp":
        clf = MLPClassifier(hidden, alpha=alpha, batch_size=256, learning_rate_init=1e-3, max_iter=40,
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
    if present.size < len(rhythm.CLASSES) or weights[-1].shape[1] != len(rhythm.CLASSES):
        full_w = np.zeros((weights[-1].shape[0], len(rhythm.CLASSES)))
        full_b = np.full(len(rhythm.CLASSES), -1e9)
        full_w[:, present], full_b[present] = weights[-1], biases[-1]
        weights[-1], biases[-1] = full_w, full_b
    return weights, biases


def fit_bag(x: np.ndarray, y: np.ndarray, groups: np.ndarray | None, features: tuple[str, ...], kind: str = "mlp",
            seed: int = 0, hidden: tuple[int, ...] = HIDDEN, alpha: float = ALPHA,
            members: int = MEMBERS) -> rhythm.Bag:
    """`members` networks on the named feature columns, each trained on the seconds of a random BAG_SHARE
    of the records (`groups`: record index per row; all rows when None or one member)."""
    cols = np.array([rhythm.FEATURES.index(f) for f in features])
    x = x[:, cols].astype(np.float64)
    mean, scale = np.nanmean(x, axis=0), np.nanstd(x, axis=0) + 1e-6
    z = np.nan_to_num((x - mean) / scale, nan=0.0)  # an unknown measure sits at the training mean
    rng = np.random.default_rng(seed)
    nets = []
    for k in range(members):
        rows = np.ones(y.size, bool)
        if groups is not None and members > 1:
            ids = np.unique(groups)
            rows = np.isin(groups, rng.choice(ids, max(1, int(round(BAG_SHARE * ids.size))), replace=False))
        nets.append(_network(z[rows], y[rows], kind, seed + k, hidden, alpha))
    return rhythm.Bag(tuple(features), mean, scale, nets)


def fit(x: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None, kind: str = "mlp", seed: int = 0,
        members: int = MEMBERS) -> rhythm.RhythmModel:
    """A RhythmModel (thresholds 0.5 until chosen): the bag on every feature."""
    bag = fit_bag(x, y, groups, rhythm.FEATURES, kind, seed, members=members)
    card = {"kind": kind, "members": members} | ({"hidden": list(HIDDEN), "alpha": ALPHA} if kind == "mlp" else {})
    return rhythm.RhythmModel(bag, 0.5, 0.5, card)


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

def score(data: list[dict], vf_flags: list[np.ndarray], noise_flags: list[np.ndarray],
          pad_s: float | list[float] = 0.0, merge_gap_s: float | list[float] = rhythm.MERGE_GAP_S) -> dict:
    """Summed EC57-style numbers of per-second VF / noise flags, after the pipeline's episode rules
    (pad_s, merge_gap_s: the episode padding and joining gap, one for all records or one per record)."""
    total = None
    pads = pad_s if isinstance(pad_s, list) else [pad_s] * len(data)
    gaps = merge_gap_s if isinstance(merge_gap_s, list) else [merge_gap_s] * len(data)
    for d, v, n, pad, gap in zip(data, vf_flags, noise_flags, pads, gaps):
        episodes, noise = rhythm.resolve_rows(v, n, quality_segments(d), float(d["duration_s"]), pad, gap)
        s = rm.score_record(d["ref"].astype(np.int64), d["notes"], episodes,
                            [(round(a, 2), round(b, 2)) for a, b, _ in noise])
        total = s if total is None else total.add(s)
    return rm.summarise(total)


def choose_threshold(data: list[dict], scores: list[np.ndarray], noise_flags: list[np.ndarray],
                     candidates: np.ndarray, pad_s: float = 0.0, merge_gap_s: float = rhythm.MERGE_GAP_S) -> float:
    """The lowest candidate meeting the training targets (most sensitive); else the highest (fewest false VF).

    A higher threshold flags a subset of the seconds, and the episode rules keep it a subset, so the false VF
    shares fall with the threshold: bisection finds the lowest one meeting the targets.
    """
    cand = np.sort(np.asarray(candidates, dtype=np.float64))

    def ok(t: float) -> bool:
        s = score(data, [sc >= t for sc in scores], noise_flags, pad_s, merge_gap_s)
        return (s["organised_called_vf"] or 0.0) <= TARGET_ORGANISED and (s["noise_called_vf"] or 0.0) <= TARGET_NOISE

    return _lowest_passing(cand, ok)


def _lowest_passing(cand: np.ndarray, ok) -> float:
    """The lowest of sorted candidates where ok holds, by bisection (ok holds from some candidate upward);
    the highest candidate when none passes."""
    lo, hi = 0, cand.size - 1
    if not ok(cand[hi]):
        return float(cand[hi])
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(cand[mid]):
            hi = mid
        else:
            lo = mid + 1
    return float(cand[lo])


def sweep_score(probs: np.ndarray, feats: np.ndarray) -> np.ndarray:
    """What the VF threshold reads (`rhythm.vf_score`), with the repeating-complex seconds at -inf instead of 0:
    the rule keeps them out of VF at every threshold of the sweep, not only at the positive ones."""
    return np.where(rhythm.repeating_complexes(feats), -np.inf, rhythm.shockable(probs))


def _detector_flags(model: rhythm.RhythmModel, d: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """VF flags, noise flags and the per-second `sweep_score` of the detector on one record."""
    probs = model.second_probs(d["features"])
    labels = rhythm.decide(probs, model.vf_threshold, model.noise_threshold, d["features"])
    return labels == rm.VF, labels == rm.NOISE, sweep_score(probs, d["features"])


def choose_noise_threshold(data: list[dict], p_noise: list[np.ndarray]) -> float:
    """The lowest candidate calling at most TARGET_ORGANISED_UNREADABLE of organised seconds unreadable
    (bisection: that share falls as the threshold rises)."""
    none = [np.zeros(p.size, bool) for p in p_noise]

    def ok(t: float) -> bool:
        s = score(data, none, [p >= t for p in p_noise])
        return (s["organised_called_unreadable"] or 0.0) <= TARGET_ORGANISED_UNREADABLE

    return _lowest_passing(THRESHOLDS, ok)


def merit(s: dict) -> tuple:
    """Larger is better: meeting the training targets first, then VF duration Se, then fewer false VF."""
    org, noi = s["organised_called_vf"] or 0.0, s["noise_called_vf"] or 0.0
    return (org <= TARGET_ORGANISED and noi <= TARGET_NOISE, s["vf_duration_se"] or 0.0, -(org + noi))


def choose_settings(train: list[dict], oof: list[np.ndarray], log=None) -> dict:
    """Smoothing width, episode padding, joining gap and both thresholds from out-of-fold probabilities of
    `train`: for each width the noise threshold, for each padding and gap the VF threshold
    (`choose_threshold`); the best merit."""
    best = None
    for width in SMOOTHING_S:
        p = [rhythm.smooth(q, width) for q in oof]
        noise_t = choose_noise_threshold(train, [q[:, rm.NOISE] for q in p])
        noise = [q[:, rm.NOISE] >= noise_t for q in p]
        shock = [rhythm.vf_score(q, d["features"]) for q, d in zip(p, train)]
        for pad, gap in itertools.product(PAD_S, MERGE_GAPS_S):
            vf_t = choose_threshold(train, shock, noise, THRESHOLDS, pad, gap)
            m = merit(score(train, [q >= vf_t for q in shock], noise, pad, gap))
            if log:
                log(f"  inner: smoothing {width} s, padding {pad:g} s, gap {gap:g} s: thresholds {vf_t} / "
                    f"{noise_t}, merit {m}")
            if best is None or m > best[0]:
                best = (m, {"smooth_s": width, "pad_s": pad, "merge_gap_s": gap, "vf_threshold": vf_t,
                            "noise_threshold": noise_t})
    return best[1]


def fit_with_threshold(train: list[dict], kind: str, inner: int = 3, seed: int = 0,
                       log=None) -> rhythm.RhythmModel:
    """Fit on `train`; smoothing, padding and both thresholds from inner grouped out-of-fold probabilities
    of `train` (each model trained on two inner thirds of the records, judged on the third left out)."""
    f = folds(train, inner, seed + 1)
    oof: list[np.ndarray] = [np.zeros((0, len(rhythm.CLASSES)))] * len(train)
    for j in range(inner):
        part = [d for d, fj in zip(train, f) if fj != j]
        m = fit(*training_set(part), kind=kind, seed=seed)
        for i in np.flatnonzero(f == j):
            oof[i] = m.predict_proba(train[i]["features"])
    model = fit(*training_set(train), kind=kind, seed=seed)
    for k, v in choose_settings(train, oof, log).items():
        setattr(model, k, v)
    return model


def crossval(data: list[dict], k: int = 10, kinds: tuple[str, ...] = ("mlp", "logistic"), seed: int = 0,
             log=print) -> dict:
    """Grouped K-fold results of the detector(s) and the baselines, overall and per record."""
    f = folds(data, k, seed)
    det_vf = {kind: [None] * len(data) for kind in kinds}
    det_noise = {kind: [None] * len(data) for kind in kinds}
    det_score = {kind: [None] * len(data) for kind in kinds}
    det_thr = {kind: [0.0] * len(data) for kind in kinds}
    det_pad = {kind: [0.0] * len(data) for kind in kinds}
    det_gap = {kind: [rhythm.MERGE_GAP_S] * len(data) for kind in kinds}
    thresholds: dict[str, list[float]] = {kind: [] for kind in kinds}
    chosen: dict[str, list[dict]] = {kind: [] for kind in kinds}
    base_scores = [rhythm.baseline_scores(d["features"]) for d in data]
    base_names = list(base_scores[0])
    base_vf = {b: [None] * len(data) for b in base_names}
    base_thr: dict[str, list[float]] = {b: [] for b in base_names}
    base_rec_thr = {b: [0.0] * len(data) for b in base_names}
    zeros = [np.zeros(d["ref"].size, bool) for d in data]
    for j in range(k):
        t0 = time.perf_counter()
        train = [d for d, fj in zip(data, f) if fj != j]
        test_idx = np.flatnonzero(f == j)
        for kind in kinds:
            model = fit_with_threshold(train, kind, seed=seed, log=log)
            thresholds[kind].append([model.vf_threshold, model.noise_threshold])
            chosen[kind].append({"smooth_s": model.smooth_s, "pad_s": model.pad_s, "merge_gap_s": model.merge_gap_s})
            for i in test_idx:
                det_vf[kind][i], det_noise[kind][i], det_score[kind][i] = _detector_flags(model, data[i])
                det_pad[kind][i], det_gap[kind][i] = model.pad_s, model.merge_gap_s
                det_thr[kind][i] = model.vf_threshold
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
                base_vf[b][i], base_rec_thr[b][i] = base_scores[i][b] >= t, float(t)
        log(f"fold {j + 1}/{k}: {len(test_idx)} test records, thresholds "
            + ", ".join(f"{kk} {v[-1]}" for kk, v in {**thresholds, **base_thr}.items())
            + f" ({time.perf_counter() - t0:.0f} s)")
    out = {"protocol": f"grouped {k}-fold by record over vfdb + mitdb (seed {seed}); thresholds from "
                       "training records only", "folds": {d["name"]: int(fj) for d, fj in zip(data, f)},
           "detectors": {}}
    for kind in kinds:
        out["detectors"][f"rhythm {kind}"] = {"thresholds": thresholds[kind], "chosen": chosen[kind],
                                              **_overall_and_per_record(data, det_vf[kind], det_noise[kind],
                                                                        det_pad[kind], det_gap[kind])}
    for b in base_names:
        out["detectors"][b] = {"thresholds": base_thr[b], **_overall_and_per_record(data, base_vf[b], zeros)}
    methods = {f"rhythm {kind}": (det_score[kind], det_pad[kind], det_gap[kind], det_thr[kind], det_vf[kind])
               for kind in kinds}
    methods |= {b: ([s[b] for s in base_scores], [0.0] * len(data), [rhythm.MERGE_GAP_S] * len(data),
                    base_rec_thr[b], base_vf[b]) for b in base_names}
    out["operating_curves"] = operating_curves(data, methods, log)
    return out


# ---------------------------------------------------------------- operating curves

def _point(curve: dict, i: int | None) -> dict | str:
    if i is None:
        return "not reached"
    return {"threshold": None if not np.isfinite(curve["threshold"][i]) else round(float(curve["threshold"][i]), 6),
            **{k: round(float(curve[k][i]), 4) for k in ("vf_duration_se", "organised_called_vf", "noise_called_vf")}}


def curve_readout(curve: dict) -> dict:
    """The operating points of one method's curve (`rm.operating_curve`) and a thinned copy of the curve."""
    at_false = {f"{x:g}": _point(curve, rm.best_se_at_false_rate(curve, x)) for x in CURVE_FALSE_RATES}
    at_se = {f"{x:g}": _point(curve, rm.least_false_at_se(curve, x)) for x in CURVE_SE_TARGETS}
    # the upper-left corners (Se rises as the threshold falls) up to CURVE_POINTS_MAX_FALSE, thinned evenly
    org, se = curve["organised_called_vf"], curve["vf_duration_se"]
    corner = np.flatnonzero((org <= CURVE_POINTS_MAX_FALSE) & (np.append(se[1:], np.inf) > se))
    corner = corner[np.unique(np.linspace(0, corner.size - 1, min(CURVE_POINTS, corner.size)).round().astype(int))]
    return {"vf_duration_se_at_organised_called_vf": at_false, "false_vf_at_vf_duration_se": at_se,
            f"auc_organised_called_vf_0_to_{CURVE_AUC_MAX_FALSE:g}": round(rm.partial_auc(curve, CURVE_AUC_MAX_FALSE),
                                                                           4),
            "max_vf_duration_se": round(float(se.max()), 4),
            "curve": {"columns": ["threshold", "vf_duration_se", "organised_called_vf", "noise_called_vf"],
                      "rows": [list(_point(curve, int(i)).values()) for i in corner]}}


def operating_curves(data: list[dict], methods: dict[str, tuple], log=print) -> dict:
    """Per method (name: per-record scores, paddings, gaps, the fold's VF threshold and the crossval's VF flags
    at it): the VF threshold swept over the out-of-fold scores of every record. Also counts the seconds where
    the sweep, read at each record's fold threshold, differs from the episodes of the crossval's own flags
    (0: the sweep reproduces the crossval's detections)."""
    out = {"protocol": "the out-of-fold per-second VF scores of every method on all test records (each record "
                       "scored by the model of the fold that held it out), one VF threshold swept over the whole "
                       "range and applied to every record, each method's episode rules held as in the crossval "
                       "(the detector: its fold's smoothing, padding and joining gap; the baselines: no padding, "
                       f"{rhythm.MERGE_GAP_S:g} s gap). The thresholds are swept on the test scores: this reads "
                       "the whole curve and chooses nothing (the shipped thresholds come from training records "
                       "only; the per-fold thresholds of 'overall' differ by fold, so its point need not lie on "
                       "this one-threshold curve). Se at a false share: the highest VF duration Se of any "
                       "threshold calling at most that share of organised seconds VF. False shares at an Se: at "
                       "the highest threshold reaching it (both shares fall as the threshold rises, so both are "
                       "the lowest any threshold reaching that Se gives). AUC: area under that best Se as a step "
                       f"function of the organised share, 0 to {CURVE_AUC_MAX_FALSE:g}, divided by "
                       f"{CURVE_AUC_MAX_FALSE:g}.",
           "organised_called_vf": list(CURVE_FALSE_RATES), "vf_duration_se": list(CURVE_SE_TARGETS), "methods": {}}
    refs = [d["ref"].astype(np.int64) for d in data]
    for name, (scores, pads, gaps, fold_t, flagged) in methods.items():
        crit = [rm.episode_thresholds(sc, quality_segments(d), float(d["duration_s"]), pad, gap)
                for d, sc, pad, gap in zip(data, scores, pads, gaps)]
        differ = 0
        for d, c, t, v, pad, gap in zip(data, crit, fold_t, flagged, pads, gaps):
            episodes, _ = rhythm.resolve_rows(v, np.zeros(v.size, bool), quality_segments(d),
                                              float(d["duration_s"]), pad, gap)
            differ += int((rm.flags(episodes, v.size) != (c >= t)).sum())
        out["methods"][name] = curve_readout(rm.operating_curve(crit, refs)) | {"seconds_differing_from_crossval":
                                                                               differ}
        log(f"operating curve {name}: " + json.dumps(out["methods"][name]["vf_duration_se_at_organised_called_vf"]))
    return out


def _overall_and_per_record(data, vf, noise, pads: list[float] | None = None,
                            gaps: list[float] | None = None) -> dict:
    per = {}
    pads = pads or [0.0] * len(data)
    gaps = gaps or [rhythm.MERGE_GAP_S] * len(data)
    for d, v, n, pad, gap in zip(data, vf, noise, pads, gaps):
        s = score([d], [v], [n], pad, gap)
        per[d["name"]] = {k: s[k] for k in ("vf_duration_se", "organised_called_vf", "noise_called_vf",
                                            "noise_called_unreadable", "vt_called_vf")}
        per[d["name"]]["episodes"] = [list(e) for e in rhythm.resolve(v, n, quality_segments(d),
                                                                      float(d["duration_s"]), pad, gap)[0]]
    return {"overall": score(data, vf, noise, list(pads), list(gaps)), "per_record": per}


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


def curve_table(result: dict) -> str:
    """Markdown table of the operating curves: one row per method, one column per operating point."""
    oc = result["operating_curves"]
    auc_key = f"auc_organised_called_vf_0_to_{CURVE_AUC_MAX_FALSE:g}"

    def cell(p, key):
        return "not reached" if isinstance(p, str) else f"{p[key]:.3f}"

    head = ([f"Se at org. {100 * x:g} %" for x in oc["organised_called_vf"]]
            + [f"org. / noise at Se {x:g}" for x in oc["vf_duration_se"]] + [f"AUC to {100 * CURVE_AUC_MAX_FALSE:g} %"])
    lines = ["| method | " + " | ".join(head) + " |", "| --- |" + " --- |" * len(head)]
    for name, m in oc["methods"].items():
        a = [cell(m["vf_duration_se_at_organised_called_vf"][f"{x:g}"], "vf_duration_se")
             for x in oc["organised_called_vf"]]
        b = []
        for x in oc["vf_duration_se"]:
            p = m["false_vf_at_vf_duration_se"][f"{x:g}"]
            b.append(p if isinstance(p, str) else f"{p['organised_called_vf']:.4f} / {p['noise_called_vf']:.4f}")
        lines.append(f"| {name} | " + " | ".join(a + b + [f"{m[auc_key]:.3f}"]) + " |")
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
    print()
    print(curve_table(res))
    print(f"wrote {out}")
    return 0


def main_train(a: argparse.Namespace) -> int:
    data = load_all(a.mitdb, a.vfdb, _log)
    model = fit_with_threshold(data, a.kind, seed=a.seed, log=_log)
    x, y, _ = training_set(data)
    model.card.update({
        "name": Path(a.out).stem, "trained_on": f"all {len(data)} records of vfdb + mitdb ({y.size} seconds)",
        "window_s": list(rhythm.SCALES_S), "feature_fs": rhythm.FEATURE_FS, "step_s": rhythm.STEP_S,
        "threshold_rule": f"inner 3-fold out-of-fold training seconds, for each smoothing width "
                          f"{list(SMOOTHING_S)} s, episode padding {list(PAD_S)} s and joining gap "
                          f"{list(MERGE_GAPS_S)} s: the lowest P(noise) "
                          "threshold calling at "
                          f"most {TARGET_ORGANISED_UNREADABLE:g} of organised seconds unreadable, then the lowest "
                          f"P(VF)+P(VT) threshold calling at most {TARGET_ORGANISED:g} of organised and "
                          f"{TARGET_NOISE:g} of noise seconds VF; the setting meeting these with the highest VF "
                          "duration Se is kept",
        "organised_gate": f"a second whose 4 s and 8 s windows repeat one complex (mean correlation of successive "
                          f"complexes >= {rhythm.REPEAT_CORR:g}) under {rhythm.REPEAT_RATE_MIN:g} /min is never VF",
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
