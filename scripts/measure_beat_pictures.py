"""What digitizing a single-beat picture costs, step by step: the span, the amplitude scale and the waveform.

The benchmark's beat pictures (`bench-pictures`: the same DS2 records, drawing seeds, beats and spans, redrawn
as its run draws them) are read by a model four ways: the picture path; the picture path with the true span
stated (`span_s`, as a user can state it); the picture path's lone-beat pipeline on the true signal scaled as an
uncalibrated trace is (its 1-99 % range to UNRELATIVE_RANGE_MV); and the same on the true signal itself (the
benchmark's `sig`). Agreement between neighbours in that chain says which step changes the labels: the span,
the waveform, the amplitude scale.

    PYTHONPATH=. python scripts/measure_beat_pictures.py --styles monitor plot_axes no_grid paper_red
    PYTHONPATH=. python scripts/measure_beat_pictures.py --styles monitor plot_axes \
        --model models/ecgnet_lite_blend_ds1.keras
"""

from __future__ import annotations

import argparse

import numpy as np

from ecg_core import bench_pictures as bp
from ecg_core.classes import CLASS_KEYS
from ecg_core.data.dataset import DS2
from ecg_core.data.drawn import read_record
from ecg_core.io.base import SignalInputError
from ecg_core.model import predict
from ecg_core.picture import synth
from ecg_core.picture.digitize import UNRELATIVE_RANGE_MV, DigitizeError
from ecg_core.pipeline.picture import _classify_once, classify_picture
from ecg_core.settings import WORKING_FS
from ecg_core.signal.signals import resample

STEPS = ("picture", "stated", "relative", "true")


def lone_label(signal: np.ndarray, fs: float, lead: str, clf, at_s: float) -> str:
    """The lone-beat pipeline's label of the beat nearest at_s (s from the signal's start) on a signal."""
    x = resample(np.asarray(signal, dtype=np.float64), fs, WORKING_FS).astype(np.float64)
    try:
        _, pad, centres, _, probs, *_ = _classify_once(x, clf, "beat", "truth", lead)
    except SignalInputError:
        return bp.MISSED
    if centres.size == 0:
        return bp.MISSED
    d = np.abs((centres - pad) / WORKING_FS - at_s)
    return CLASS_KEYS[int(probs[int(d.argmin())].argmax())] if d.min() <= bp.MATCH_S else bp.MISSED


def picture_label(res, drawn, target: int) -> str:
    """A picture reading's label of the drawn beat `target` (MISSED where no beat is near it)."""
    det_t = res.beats["time_s"].to_numpy(dtype=float)
    ref_t = bp.picture_times(res.trace, bp.truth_columns(drawn, bp.frame_scale(drawn, res.digitized))[drawn.r_peaks])
    d = np.abs(det_t - ref_t[target])
    return str(res.beats["predicted"].iloc[int(d.argmin())]) if d.size and d.min() <= bp.MATCH_S else bp.MISSED


def beat_pictures(mitdb: str, records: list[str], style: str, per_record: int):
    """The benchmark's beat pictures of one style (seed 0): (record, drawn, target index into drawn.r_peaks)."""
    for name in records:
        rec = read_record(mitdb, name)
        rng = np.random.default_rng([0, int(name)])
        length = int(round(bp.STRIP_S * rec.fs))
        for si, start in enumerate(bp.choose_strips(rec, per_record, rng, bp.STRIP_S)):
            beat_ids = bp.choose_beats(rec, start, length, bp.BEAT_PICTURES_PER_STRIP, rng)
            seconds = [float(rng.choice([0.8, 1.6])) for _ in beat_ids]
            s = int(name) * 101 + si
            for bj, (b, sec) in enumerate(zip(beat_ids, seconds)):
                sec = 0.8 if style == "seed_thin" else sec
                a, e = bp.beat_crop(rec, b, sec)
                if a < 0 or e > rec.signal.size:
                    continue
                inb = (rec.beats >= a) & (rec.beats < e)
                d = synth.draw(rec.signal[a:e], rec.fs, style, r_peaks=rec.beats[inb] - a, symbols=rec.symbols[inb],
                               seed=s * 7 + bj, layout="beat", beat_seconds=sec)
                target = np.flatnonzero(d.r_peaks == int(rec.beats[b]) - a - d.offset)
                if target.size == 1 and bp._key(d.symbols[int(target[0])]) in bp.F1_CLASSES:
                    yield name, d, int(target[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mitdb", default="../shared/data/mitdb")
    ap.add_argument("--styles", nargs="+", default=["monitor", "plot_axes", "no_grid", "paper_red"])
    ap.add_argument("--records", nargs="+", default=list(DS2))
    ap.add_argument("--per-record", type=int, default=3)
    ap.add_argument("--model", default=None, help="a model file (default: the shipped default)")
    a = ap.parse_args()
    clf = predict.load(predict.info_from_path(a.model) if a.model else None)
    for style in a.styles:
        rows, relative = [], 0
        for _, d, target in beat_pictures(a.mitdb, a.records, style, a.per_record):
            at_s = d.r_peaks[target] / d.fs
            lo, hi = np.percentile(d.signal, [1, 99])
            row = {"truth": bp._key(d.symbols[target]),
                   "true": lone_label(d.signal, d.fs, d.lead, clf, at_s),
                   "relative": lone_label(d.signal * UNRELATIVE_RANGE_MV / max(hi - lo, 1e-6), d.fs, d.lead, clf,
                                          at_s)}
            try:
                res = classify_picture(d.data, clf, "picture")
                row["picture"] = picture_label(res, d, target)
                stated = classify_picture(d.data, clf, "stated", span_s=d.signal.size / d.fs)
                row["stated"] = picture_label(stated, d, target)
                relative += res.digitized.calibration.px_per_mv is None
            except DigitizeError:
                row["picture"] = row["stated"] = bp.MISSED
            rows.append(row)
        if not rows:
            print(f"{style}: no beat picture")
            continue
        truth = [r["truth"] for r in rows]
        f1 = ", ".join(f"{k} {bp.macro_f1(truth, [r[k] for r in rows]):.3f}" for k in STEPS)
        pairs = [("picture", "stated"), ("stated", "relative"), ("relative", "true"), ("picture", "true"),
                 ("stated", "true")]
        agree = ", ".join(f"{x}/{y} {np.mean([r[x] == r[y] for r in rows]):.3f}" for x, y in pairs)
        print(f"{style}: {len(rows)} beat pictures ({relative} read with relative amplitude); macro F1 {f1}; "
              f"agreement {agree}", flush=True)


if __name__ == "__main__":
    main()
