"""QRS width in each lead against the annotated beat classes, over every non-paced MIT-BIH record.

MIT-BIH has no QRS onset/offset annotations; bundle-branch-block beats are >= 120 ms by definition, so a width
measure is judged by how well it separates the annotated L and R beats from N beats: ROC AUC over the pooled
beats (up to 1,500 N/L/R beats per record, at the annotations), and the per-record medians. The shipped
method (`features.qrs_bounds`, with its noise floor) is compared with the same method without the floor.

    PYTHONPATH=. python scripts/measure_qrs_width.py [--mitdb ../shared/data/mitdb]
"""

from __future__ import annotations

import argparse

import numpy as np

PACED = {"102", "104", "107", "217"}
DS1 = set("101 106 108 109 112 114 115 116 118 119 122 124 201 203 205 207 208 209 215 220 223 230".split())
PER_RECORD = 1500


def main() -> None:
    from sklearn.metrics import roc_auc_score

    from ecg_core.classes import SYMBOL_TO_KEY
    from ecg_core.data.dataset import record_ids
    from ecg_core.settings import WORKING_FS
    from ecg_core.signal import features
    from ecg_core.signal.signals import read_record

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--mitdb", default="../shared/data/mitdb")
    a = p.parse_args()
    floor = features._FLOOR_TIMES
    rows = []  # (record, class, has V1, {method: width})
    for rid in [r for r in record_ids(a.mitdb) if r not in PACED]:
        rec = read_record(f"{a.mitdb}/{rid}", second_lead=True)
        keys = np.array([SYMBOL_TO_KEY.get(s) for s in rec.annotations.symbol], dtype=object)
        s = rec.annotations.sample
        keep = np.isin(keys, ["N", "L", "R"]) & (s > 400) & (s < rec.signal.size - 400)
        c, k = s[keep], keys[keep]
        if c.size > PER_RECORD:
            pick = np.sort(np.random.default_rng(0).choice(c.size, PER_RECORD, replace=False))
            c, k = c[pick], k[pick]
        v1 = str(rec.lead2).strip().upper() == "V1"
        widths = {}
        for name, times in (("floor", floor), ("no floor", 0.0)):
            features._FLOOR_TIMES = times
            for lead, x in (("first lead", rec.signal), ("V1", rec.signal2 if v1 else None)):
                if x is not None:
                    on, off = features.qrs_bounds(x, c)
                    widths[f"{lead}, {name}"] = (off - on) * 1000.0 / WORKING_FS
        features._FLOOR_TIMES = floor
        rows += [(rid, k[i], v1, {m: w[i] for m, w in widths.items()}) for i in range(c.size)]
    methods = sorted({m for r in rows for m in r[3]})
    print("| method | beats | ROC AUC L/R vs N, all records | DS1 records only | N record medians max | "
          "L record medians | R record medians |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for m in methods:
        sel = [r for r in rows if m in r[3]]
        y = np.array([r[1] in ("L", "R") for r in sel])
        w = np.array([r[3][m] for r in sel])
        ds1 = np.array([r[0] in DS1 for r in sel])
        med = {}
        for r, wi in zip(sel, w):
            med.setdefault((r[0], r[1]), []).append(wi)
        med = {key: float(np.median(v)) for key, v in med.items()}
        n_max = max(v for (rid, cls), v in med.items() if cls == "N")
        lr = {cls: " ".join(f"{rid} {v:.0f}" for (rid, c2), v in sorted(med.items()) if c2 == cls) for cls in "LR"}
        print(f"| {m} | {len(sel)} | {roc_auc_score(y, w):.3f} | {roc_auc_score(y[ds1], w[ds1]):.3f} | "
              f"{n_max:.0f} | {lr['L']} | {lr['R']} |")


if __name__ == "__main__":
    main()
