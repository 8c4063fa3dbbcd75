"""How a beat picture without grid is timed, measured on the picture benchmark's beat pictures: the span rule of
`picture.span` (an estimate from the beat's shape, read at a beat-picture preset when within 25 % of it), the
estimate alone, and the constant 1.6 s the digitizer used before.

Pictures of 4 gridless styles drawn by `picture/synth.py` (bench_pictures.run: 6 strips per record, 2 beat
pictures each, seed 1), from DS1 (where the rule is chosen) or DS2 records. Per style and rule: macro F1 (N L R A
V) of the picture path, of its pipeline on the true signal (sig) and with the true span stated (st); the share of
beats where the picture's label is the true signal's (agree) and where it is right (acc).

    PYTHONPATH=. python scripts/measure_lone_beat_span.py --records ds1 --rule span
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ecg_core import bench_pictures as bench
from ecg_core.data.dataset import DS1, DS2
from ecg_core.model import predict
from ecg_core.picture import span as spanlib

STYLES = ("no_grid", "monitor", "plot_axes", "seed_thin")


def use_rule(rule: str) -> None:
    if rule == "estimate":
        spanlib.lone_beat_span = lambda y: (lambda e: None if e is None else (e, e))(spanlib.estimate_span(y))
    elif rule == "constant":  # no estimator: the digitizer's 1.6 s
        spanlib.MODEL_PATH = Path("/nonexistent/lone_beat_span.npz")
        spanlib._model.cache_clear()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mitdb", default="../shared/data/mitdb")
    p.add_argument("--records", choices=("ds1", "ds2"), default="ds1")
    p.add_argument("--rule", choices=("span", "estimate", "constant"), default="span")
    p.add_argument("--per-record", type=int, default=6)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    use_rule(a.rule)
    clf = predict.load(None)
    outs = bench.run(a.mitdb, list(DS1 if a.records == "ds1" else DS2), list(STYLES), a.per_record, a.seed, clf)
    for style in STYLES:
        beats = [o for o in outs if o.style == style and o.layout == "beat" and o.truth]
        truth, pic, sig = ([x for o in beats for x in getattr(o, k)] for k in ("truth", "picture", "same"))
        # the stated-span reading (a picture the path refused has none: its refusal counts)
        stated = [x for o in beats for x in (o.stated if len(o.stated) == len(o.truth) else o.picture)]
        agree = np.mean([x == y for x, y in zip(pic, sig)])
        acc = np.mean([x == y for x, y in zip(pic, truth)])
        print(f"{a.rule:9s} {a.records} {style:10s} n {len(truth)}  F1 pic {bench.macro_f1(truth, pic):.3f}  "
              f"sig {bench.macro_f1(truth, sig):.3f}  st {bench.macro_f1(truth, stated):.3f}  "
              f"agree {agree:.3f}  acc {acc:.3f}", flush=True)


if __name__ == "__main__":
    main()
