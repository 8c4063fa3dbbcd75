"""How much a model's beat labels depend on the recording's gain: every non-paced MIT-BIH record's first
minutes classified at gains 0.5-2 (a screen's x0.5 or x2, a plot without units, a file in other units), each
against the same record at gain 1.

Reported per gain: the share of beats whose label changes, and macro F1 (N, L, R, A, V) against the annotations.
The default model trained on every patient has seen these records, so the F1 column is not a patients-never-seen
figure; the agreement column is the measure.

    PYTHONPATH=. python scripts/measure_gain_invariance.py [--mitdb ../shared/data/mitdb] [--model M] [--minutes 5]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

GAINS = (0.5, 0.7, 1.0, 1.4, 2.0)


def main() -> None:
    import wfdb

    from ecg_core.bench_pictures import F1_CLASSES, _key, macro_f1
    from ecg_core.data.dataset import PACED_RECORDS
    from ecg_core.io.signal_io import SignalInput
    from ecg_core.model import predict
    from ecg_core.pipeline.record_mode import classify_signal, match_beats

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mitdb", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mitdb"))
    ap.add_argument("--model", default=None)
    ap.add_argument("--minutes", type=float, default=5.0)
    a = ap.parse_args()
    clf = predict.load(predict.info_from_path(a.model) if a.model else None)
    names = sorted(p.stem for p in Path(a.mitdb).glob("*.hea") if p.stem not in PACED_RECORDS)
    truth: list[str] = []
    labels: dict[float, list[str]] = {g: [] for g in GAINS}
    for name in names:
        path = str(Path(a.mitdb) / name)
        n = int(a.minutes * 60 * 360)
        rec, ann = wfdb.rdrecord(path, sampto=n), wfdb.rdann(path, "atr", sampto=n)
        lead = rec.sig_name.index("MLII") if "MLII" in rec.sig_name else 0
        keep = [(s, _key(sym)) for s, sym in zip(ann.sample, ann.symbol) if _key(sym) in F1_CLASSES]
        ref = np.array([s for s, _ in keep], dtype=np.int64)
        per_gain = {}
        for g in GAINS:
            res = classify_signal(SignalInput(name, rec.p_signal[:, lead] * g, float(rec.fs), "MLII"), clf)
            mr, md = match_beats(ref, res.beats["sample"].to_numpy(np.int64), int(0.15 * rec.fs))
            pred = res.beats["predicted"].to_numpy(dtype=object)
            per_gain[g] = {int(i): str(pred[j]) for i, j in zip(mr, md)}
        found = sorted(set.intersection(*(set(m) for m in per_gain.values())))  # beats found at every gain
        truth.extend(keep[i][1] for i in found)
        for g in GAINS:
            labels[g].extend(per_gain[g][i] for i in found)
    base = np.array(labels[1.0], dtype=object)
    print(f"model {clf.name}: {len(names)} non-paced records, first {a.minutes:g} min each, {base.size} beats found "
          "at every gain\n")
    print("| gain | labels changed vs gain 1 | macro F1 (N L R A V) |")
    print("| --- | --- | --- |")
    for g in GAINS:
        changed = float(np.mean(np.array(labels[g], dtype=object) != base))
        print(f"| {g:g} | {100 * changed:.1f} % | {macro_f1(truth, labels[g]):.3f} |")


if __name__ == "__main__":
    main()
