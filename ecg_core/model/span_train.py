"""Training of the lone-beat span estimator (picture.span): DS1 beats cut at random spans, scored on DS2.

Each example is one annotated beat of a DS1 record cut as a beat picture is (centred within +-JITTER_S, a span
drawn log-uniformly in SPAN_DRAW_S), resampled to the columns of a picture of random width, quantised to a
quarter of a pixel of a random height, with a little noise; the target is log(span). DS2 beats, cut the same
way, measure it; so do the two presets a beat picture is drawn at (0.8 and 1.6 s).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ecg_core.data.dataset import DS1, DS2
from ecg_core.data.drawn import read_record
from ecg_core.picture import span as spanlib

SPAN_DRAW_S = (0.55, 2.4)
JITTER_S = 0.08
TRAIN_PER_RECORD, TEST_PER_RECORD = 800, 150
PRESETS_S = (0.8, 1.6)


def examples(mitdb: str | Path, records: list[str], per_record: int, rng: np.random.Generator,
             span_s: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, log spans, MIT-BIH symbols) of beats cut at random spans (or all at span_s)."""
    xs, ys, symbols = [], [], []
    for name in records:
        rec = read_record(mitdb, name)
        inner = np.arange(5, rec.beats.size - 5)
        for b in rng.choice(inner, size=min(per_record, inner.size), replace=False):
            span = span_s or float(np.exp(rng.uniform(*np.log(SPAN_DRAW_S))))
            n = int(span * rec.fs)
            a = int(rec.beats[b]) + int(rng.uniform(-JITTER_S, JITTER_S) * rec.fs) - n // 2
            if a < 0 or a + n > rec.signal.size:
                continue
            x = rec.signal[a: a + n]
            cols, rows = int(rng.integers(120, 700)), float(rng.uniform(40, 300))
            y = np.interp(np.linspace(0, n - 1, cols), np.arange(n), x)
            y = y / max(float(np.ptp(y)), 1e-6) * rows
            y = np.round((y + rng.normal(0, 0.01 * rows, cols)) * 4) / 4
            xs.append(spanlib.shape_features(y))
            ys.append(np.log(span))
            symbols.append(str(rec.symbols[b]))
    return np.array(xs, np.float32), np.array(ys), np.array(symbols, dtype=object)


def scores(log_true: np.ndarray, log_pred: np.ndarray) -> dict:
    ratio = np.exp(log_pred - log_true)
    err = np.abs(ratio - 1.0)
    return {"beats": int(ratio.size), "median_abs_error": round(float(np.median(err)), 3),
            "within_15pct": round(float(np.mean(err < 0.15)), 3), "within_25pct": round(float(np.mean(err < 0.25)), 3),
            "median_ratio": round(float(np.median(ratio)), 3)}


def train(mitdb: str | Path, out: Path, seed: int = 0, say=print) -> dict:
    from sklearn.ensemble import HistGradientBoostingRegressor

    from ecg_core.model import trees as treelib

    t = time.perf_counter()
    rng = np.random.default_rng(seed)
    x, y, _ = examples(mitdb, list(DS1), TRAIN_PER_RECORD, rng)
    say(f"train-span: {len(y)} DS1 beats cut at random spans ({time.perf_counter() - t:.0f} s)")
    model = HistGradientBoostingRegressor(max_iter=300, learning_rate=0.05, random_state=seed).fit(x, y)
    trees = treelib.from_sklearn_regressor(model)
    xt, yt, st = examples(mitdb, list(DS2), TEST_PER_RECORD, rng)
    pred = trees.raw_scores(xt)[:, 0]
    result = {"all": scores(yt, pred)}
    for sym in "NLRAV":
        sel = st == sym
        if sel.any():
            result[sym] = scores(yt[sel], pred[sel])
    for preset in PRESETS_S:
        xp, yp, _ = examples(mitdb, list(DS2), TEST_PER_RECORD // 3, rng, span_s=preset)
        result[f"at {preset:g} s"] = scores(yp, trees.raw_scores(xp)[:, 0])
    out.parent.mkdir(parents=True, exist_ok=True)
    trees.save(out)
    card = {
        "name": out.stem, "kind": "lone-beat span estimator (gradient-boosted trees, log seconds)",
        "features": list(spanlib.FEATURE_NAMES), "trained_on": f"DS1 ({len(DS1)} records), {len(y)} beats",
        "examples": (f"annotated beats cut at spans log-uniform in {SPAN_DRAW_S[0]:g}-{SPAN_DRAW_S[1]:g} s, centred "
                     f"within +-{JITTER_S:g} s, resampled to 120-700 columns, a quarter-pixel quantisation and 1 % "
                     "noise"),
        "evaluated_on": f"DS2 ({len(DS2)} records), beats never seen, cut the same way",
        "result": result, "seed": seed,
        "command": f"python -m ecg_core train-span --mitdb {mitdb} --out {out} --seed {seed}",
    }
    out.with_suffix(".json").write_text(json.dumps(card, indent=1) + "\n")
    say(f"train-span: DS2 {result['all']}; at 0.8 s {result['at 0.8 s']}; at 1.6 s {result['at 1.6 s']} "
        f"({time.perf_counter() - t:.0f} s)")
    return card


def cli(a: argparse.Namespace) -> int:
    train(a.mitdb, Path(a.out), a.seed)
    return 0
