"""What an unknown amplitude costs a lone beat: the default's lone-beat reading (pipeline.picture, as for a
single-beat picture) of true-signal beat crops, calibrated, scaled to the 2.2 mV range a picture without an
amplitude scale gets (digitize.UNRELATIVE_RANGE_MV), at fixed gains, and averaged over five assumed ranges.

Beats as the picture benchmark picks them (bench_pictures.choose_strips / choose_beats, crops of 0.8 or 1.6 s),
macro F1 over N L R A V against the annotations.

    PYTHONPATH=. python scripts/measure_lone_beat_amplitude.py --records ds1 --strips 6 --beats 3
"""

from __future__ import annotations

import argparse

import numpy as np

from ecg_core import bench_pictures as bench
from ecg_core.classes import CLASS_KEYS
from ecg_core.data.dataset import DS1, DS2
from ecg_core.model import predict
from ecg_core.picture.digitize import UNRELATIVE_RANGE_MV
from ecg_core.pipeline.picture import _classify_once
from ecg_core.settings import WORKING_FS
from ecg_core.signal.signals import resample

RANGES_MV = (1.2, 1.6, 2.2, 3.0, 4.0)


def label(y: np.ndarray, clf, r_s: float) -> tuple[str, np.ndarray | None]:
    _, pad, centres, _, probs, *_ = _classify_once(y, clf, "beat", "beat", "MLII")
    d = np.abs((centres - pad) / WORKING_FS - r_s)
    if not d.size or d.min() >= 0.15:
        return bench.MISSED, None
    p = probs[int(d.argmin())]
    return CLASS_KEYS[int(p.argmax())], p


def main() -> None:
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("--mitdb", default="../shared/data/mitdb")
    a.add_argument("--records", choices=("ds1", "ds2"), default="ds1")
    a.add_argument("--strips", type=int, default=6)
    a.add_argument("--beats", type=int, default=3)
    args = a.parse_args()
    clf = predict.load(None)
    modes = ("calibrated", f"range {UNRELATIVE_RANGE_MV:g} mV", "gain 0.5", "gain 2", "mean of 5 ranges")
    truth: list[str] = []
    out: dict[str, list[str]] = {m: [] for m in modes}
    for name in DS1 if args.records == "ds1" else DS2:
        rec = bench.read_record(args.mitdb, name)
        rng = np.random.default_rng([0, int(name)])
        for start in bench.choose_strips(rec, args.strips, rng, bench.STRIP_S):
            for b in bench.choose_beats(rec, start, int(bench.STRIP_S * rec.fs), args.beats, rng):
                key = bench._key(rec.symbols[b])
                if key not in bench.F1_CLASSES:
                    continue
                lo, hi = bench.beat_crop(rec, b, float(rng.choice([0.8, 1.6])))
                if lo < 0 or hi > rec.signal.size:
                    continue
                x = resample(rec.signal[lo:hi].astype(np.float64), rec.fs, WORKING_FS)
                r_s = (rec.beats[b] - lo) / rec.fs
                p1, p99 = np.percentile(x, [1, 99])
                centred = (x - np.median(x)) / max(p99 - p1, 1e-6)
                truth.append(key)
                out[modes[0]].append(label(x, clf, r_s)[0])
                out[modes[1]].append(label(centred * UNRELATIVE_RANGE_MV, clf, r_s)[0])
                out[modes[2]].append(label(0.5 * x, clf, r_s)[0])
                out[modes[3]].append(label(2.0 * x, clf, r_s)[0])
                probs = [p for p in (label(centred * r, clf, r_s)[1] for r in RANGES_MV) if p is not None]
                out[modes[4]].append(CLASS_KEYS[int(np.mean(probs, axis=0).argmax())] if probs else bench.MISSED)
    print(f"{len(truth)} {args.records.upper()} lone beats")
    for m in modes:
        print(f"{m:18s} macro F1 {bench.macro_f1(truth, out[m]):.3f}")


if __name__ == "__main__":
    main()
