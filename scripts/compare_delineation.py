"""QRS width: ecg_core.signal.features' slope method against neurokit2's wavelet delineation.

neurokit2 is not a dependency: `pip install neurokit2` first. MIT-BIH has no QRS onset/offset annotations, so
both are judged on the first 10 minutes of 17 records (MLII, at the annotated R peaks of N, L and R beats) by
how well their widths separate the bundle-branch-block beats (QRS >= 120 ms by definition) from normal beats,
by their agreement with each other, by how often neurokit2 gives no width, and by time.

    PYTHONPATH=. python scripts/compare_delineation.py [--mitdb ../shared/data/mitdb]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

RECORDS = "100 101 103 105 106 109 111 113 118 124 207 212 214 215 219 231 232".split()
MINUTES = 10


def main() -> None:
    import neurokit2 as nk
    from sklearn.metrics import roc_auc_score

    from ecg_core.classes import SYMBOL_TO_KEY
    from ecg_core.settings import WORKING_FS
    from ecg_core.signal import features
    from ecg_core.signal.signals import read_record

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--mitdb", default="../shared/data/mitdb")
    a = p.parse_args()
    warnings.filterwarnings("ignore")
    ours, theirs, labels, t_ours, t_nk = [], [], [], 0.0, 0.0
    end = WORKING_FS * 60 * MINUTES
    for rid in RECORDS:
        rec = read_record(f"{a.mitdb}/{rid}")
        ann = rec.annotations
        keys = np.array([SYMBOL_TO_KEY.get(s) for s in ann.symbol], dtype=object)
        keep = np.isin(keys, ["N", "L", "R"]) & (ann.sample < end - 400)
        peaks = ann.sample[keep]
        t = time.perf_counter()
        _, waves = nk.ecg_delineate(rec.signal[:end], {"ECG_R_Peaks": peaks}, sampling_rate=WORKING_FS, method="dwt")
        t_nk += time.perf_counter() - t
        width_nk = (np.array(waves["ECG_R_Offsets"], float) - np.array(waves["ECG_R_Onsets"], float)) * 1e3 / WORKING_FS
        width_nk[~((width_nk > 0) & (width_nk < 300))] = np.nan
        t = time.perf_counter()
        onset, offset = features.qrs_bounds(rec.signal, peaks)
        t_ours += time.perf_counter() - t
        width = (offset - onset) * 1e3 / WORKING_FS
        both = np.isfinite(width_nk)
        gap = np.median(np.abs(width - width_nk)[both])
        print(f"{rid}: {peaks.size} beats, median width ours {np.median(width):.0f} ms, neurokit2 "
              f"{np.nanmedian(width_nk):.0f} ms, median |difference| {gap:.0f} ms, "
              f"neurokit2 without a width {1 - both.mean():.0%}")
        ours.append(width), theirs.append(width_nk), labels.append(keys[keep])
    o, n, lab = np.concatenate(ours), np.concatenate(theirs), np.concatenate(labels)
    bbb, ok = np.isin(lab, ["L", "R"]), np.isfinite(np.concatenate(theirs))
    print(f"\n{o.size} beats ({bbb.sum()} L or R). ROC AUC of width for L/R vs N: ours {roc_auc_score(bbb, o):.3f}, "
          f"neurokit2 {roc_auc_score(bbb[ok], n[ok]):.3f} (on the {ok.mean():.0%} of beats it measures)")
    print(f"L/R beats >= 120 ms: ours {(o[bbb] >= 120).mean():.2f}, neurokit2 {(n[bbb & ok] >= 120).mean():.2f}; "
          f"N beats < 120 ms: ours {(o[~bbb] < 120).mean():.2f}, neurokit2 {(n[~bbb & ok] < 120).mean():.2f}")
    print(f"time: ours {t_ours:.2f} s, neurokit2 {t_nk:.1f} s for {len(RECORDS)} x {MINUTES} min")


if __name__ == "__main__":
    main()
