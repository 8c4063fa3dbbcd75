"""Per-class logit offsets chosen on a model's own validation windows: python -m ecg_core offsets --model M ...

A classifier predicts the class with the largest logit; adding a constant b_c to class c's logit moves the
boundaries between classes (the same as re-weighting the class priors). The offsets are chosen on the
validation windows the model was early-stopped on, rebuilt from its card, never on the test split. They are
written into the bias of the "logits" layer of a copy of the model, so the copy is an ordinary model:
`evaluate`, `predict`, the app and Grad-CAM (a constant does not change a logit's gradients) take it as is.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

from ecg_core.classes import CLASS_KEYS
from ecg_core.data import dataset
from ecg_core.model.evaluate import split_seed
from ecg_core.model.predict import read_card

GRID = np.round(np.arange(-1.0, 1.0 + 1e-9, 0.05), 2)  # candidate offsets, in logit units
PASSES = 3  # coordinate-ascent sweeps over the classes after N (whose offset stays 0)
MIN_GAIN = 1e-4  # an offset is moved only if validation macro F1 rises by more than this


def macro_f1(logits: np.ndarray, y: np.ndarray) -> float:
    """Macro F1 of argmax(logits) over the classes present in y."""
    n = logits.shape[1]
    cm = np.bincount(y * n + logits.argmax(axis=1), minlength=n * n).reshape(n, n)
    tp, support, called = np.diag(cm), cm.sum(axis=1), cm.sum(axis=0)
    f1 = 2 * tp / np.maximum(support + called, 1)
    return float(f1[support > 0].mean())


def choose_offsets(logits: np.ndarray, y: np.ndarray, grid: np.ndarray = GRID, passes: int = PASSES,
                   min_gain: float = MIN_GAIN) -> tuple[np.ndarray, float, float]:
    """Offsets (n_classes,) by coordinate ascent on macro F1, smallest offsets first on ties;
    returns (offsets, macro F1 before, macro F1 after)."""
    offsets = np.zeros(logits.shape[1])
    before = best = macro_f1(logits, y)
    candidates = sorted(grid, key=lambda v: (abs(v), v))
    for _ in range(passes):
        moved = False
        for c in range(1, logits.shape[1]):
            for v in candidates:
                trial = offsets.copy()
                trial[c] = v
                score = macro_f1(logits + trial, y)
                if score > best + min_gain:
                    best, offsets, moved = score, trial, True
        if not moved:
            break
    return offsets, before, best


def validation_windows(card: dict, ds: dataset.Dataset) -> np.ndarray:
    """The validation windows the model was early-stopped on, rebuilt from its card."""
    t = card.get("training", {})
    if "seed" not in t:
        raise ValueError(f"{card.get('name')}: its card does not say how it was trained (no training seed)")
    kind = "records" if str(t.get("validation", "")).startswith("TRAIN records") else "windows"
    _, val = dataset.fit_validation_indices(ds, card["split"], int(t["seed"]), kind, t.get("cap_per_class"),
                                            split_seed(card))
    expected = t.get("validation_windows")
    if expected is not None and int(expected) != len(val):
        raise ValueError(f"rebuilt {len(val)} validation windows, the card says {expected}: "
                         "is this the dataset the model was trained on?")
    return val


def logits_of(model, x: np.ndarray) -> np.ndarray:
    """The model's logits (the "logits" layer, before the softmax)."""
    import keras

    try:
        layer = model.get_layer("logits")
    except ValueError:
        raise ValueError("the model has no 'logits' layer (an ensemble or a foreign model)") from None
    return keras.Model(model.inputs, layer.output).predict(x, batch_size=256, verbose=0)


def with_offsets(model, offsets: np.ndarray):
    """The model with offsets added to its logits' bias (in place; returns it)."""
    layer = model.get_layer("logits")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, (bias + offsets).astype(bias.dtype)])
    return model


def make(model_path: Path, dataset_dir: str, name: str, out: Path) -> Path:
    """Choose offsets for a model on its validation windows and write the offset copy + its card."""
    import keras

    from ecg_core.picture.imaging import to_model_input

    if not model_path.exists():
        raise ValueError(f"{model_path}: no such model file")
    card = read_card(model_path)
    ds = dataset.load(dataset_dir)
    if ds.meta.get("representation") != card.get("representation"):
        raise ValueError(f"the model reads {card.get('representation')} pictures, the dataset holds "
                         f"{ds.meta.get('representation')}")
    model = keras.models.load_model(model_path, compile=False)
    val = validation_windows(card, ds)
    logits = logits_of(model, to_model_input(ds.images[val]))
    offsets, before, after = choose_offsets(logits, ds.labels[val].astype(np.int64))
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.keras"
    with_offsets(model, offsets).save(path)
    new = {k: v for k, v in card.items() if k not in ("metrics", "default", "name")}
    new.update({
        "name": name,
        "base_model": card["name"],
        "logit_offsets": {k: round(float(v), 2) for k, v in zip(CLASS_KEYS, offsets)},
        "offsets": {
            "command": "python -m ecg_core " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
            "chosen_on": f"the model's own {len(val)} validation windows (test split never used)",
            "grid": [float(GRID[0]), float(GRID[-1]), 0.05], "passes": PASSES, "min_gain": MIN_GAIN,
            "validation_macro_f1_before": round(before, 5), "validation_macro_f1_after": round(after, 5),
        },
        "default": False,
    })
    (out / f"{name}.json").write_text(json.dumps(new, indent=2))
    print(f"[{name}] offsets {new['logit_offsets']}; validation macro F1 {before:.4f} -> {after:.4f}; "
          f"saved {path}", flush=True)
    return path


def main(args: argparse.Namespace) -> None:
    model = Path(args.model)
    make(model, args.dataset, args.name or f"{model.stem}_offsets", Path(args.out))
