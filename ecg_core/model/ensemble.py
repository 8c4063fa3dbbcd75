"""Average trained models of one representation into one model: python -m ecg_core ensemble MODEL... --name NAME.

The ensemble is a single Keras file (the members as nested models, their probabilities averaged), so
`evaluate` and `predict` take it like any model. It has no single last convolution, so the app's
Grad-CAM does not apply to it, and the app does not list it (predict.discover).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from ecg_core.model import architectures
from ecg_core.model.evaluate import split_seed
from ecg_core.model.predict import read_card
from ecg_core.settings import SPLIT_SEED

SHARED_KEYS = ("classes", "input_shape", "representation", "preprocessing_version", "split")


def build(paths: list[Path], name: str):
    """The averaging model and its card; ValueError if the members disagree on what they read or predict."""
    import keras

    if len(paths) < 2:
        raise ValueError("an ensemble needs at least two models")
    cards = [read_card(p) for p in paths]
    for key in SHARED_KEYS:
        values = {json.dumps(c.get(key)) for c in cards}
        if len(values) > 1:
            raise ValueError(f"members differ in {key}: {sorted(values)}")
    seeds = {split_seed(c) for c in cards} if cards[0]["split"] == "beatwise" else {SPLIT_SEED}
    if len(seeds) > 1:  # each member's test beats would be another member's training beats
        raise ValueError(f"members were trained on different beat-wise splits (seeds {sorted(seeds)})")
    image = keras.Input(architectures.INPUT_SHAPE, name="image")
    outputs = []
    for i, path in enumerate(paths):
        member = keras.models.load_model(path, compile=False)
        wrapped = keras.Model(member.inputs[0], member.outputs[0], name=f"member{i}_{cards[i]['name']}")
        outputs.append(wrapped(image))
    model = keras.Model(image, keras.layers.Average(name="probabilities")(outputs), name=name)
    card = {
        "name": name,
        "architecture": "ensemble",
        **{key: cards[0][key] for key in SHARED_KEYS},
        "split_seed": seeds.pop(),
        "members": [c["name"] for c in cards],
        "last_conv_layer": None,
        "low_confidence_threshold": max(float(c.get("low_confidence_threshold", 0.5)) for c in cards),
        "params": int(model.count_params()),
        "training": {
            "command": "python -m ecg_core " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
            "members": {c["name"]: c.get("training", {}).get("command") for c in cards},
            "seconds": round(sum(float(c.get("training", {}).get("seconds", 0.0)) for c in cards), 1),
        },
        "dataset": cards[0].get("dataset"),
        "default": False,
    }
    return model, card


def main(a: argparse.Namespace) -> None:
    model, card = build([Path(p) for p in a.models], a.name)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / f"{a.name}.keras")
    (out / f"{a.name}.json").write_text(json.dumps(card, indent=2))
    print(f"[{a.name}] {len(card['members'])} members, {card['params']} params -> {out / (a.name + '.keras')}")
