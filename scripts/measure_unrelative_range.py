"""The 1-99 % range of raw MLII windows of DS1 patients by window length: the range a picture without an amplitude
scale (a screen, a plot, paper without grid or pulse) is given, as digitize.UNRELATIVE_RANGE_MV says.

Beat windows (0.8 s, 1.6 s) are centred on annotated beats, as a single-beat picture shows one; longer windows start
anywhere. 200 windows per record and length, DS1 only (the test patients of DS1 -> DS2 play no part), seeded.

    PYTHONPATH=. python scripts/measure_unrelative_range.py --mitdb ../shared/data/mitdb
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import wfdb

from ecg_core.data.dataset import DS1
from ecg_core.picture.digitize import UNRELATIVE_RANGE_MV

LENGTHS_S = (0.8, 1.2, 1.6, 2.5, 5.0, 10.0)
PER_RECORD = 200


def ranges(x: np.ndarray, fs: float, beats: np.ndarray, seconds: float, rng: np.random.Generator) -> np.ndarray:
    n = int(round(seconds * fs))
    if seconds <= 1.6:
        ok = beats[(beats - n // 2 >= 0) & (beats + n - n // 2 <= x.size)]
        starts = rng.choice(ok, size=min(PER_RECORD, ok.size), replace=False) - n // 2
    else:
        starts = rng.integers(0, x.size - n, size=PER_RECORD)
    w = x[starts[:, None] + np.arange(n)[None, :]]
    lo, hi = np.percentile(w, [1, 99], axis=1)
    return hi - lo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mitdb", default="../shared/data/mitdb")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    found: dict[float, list[np.ndarray]] = {s: [] for s in LENGTHS_S}
    for name in DS1:
        path = str(Path(a.mitdb) / name)
        rec = wfdb.rdrecord(path)
        k = rec.sig_name.index("MLII") if "MLII" in rec.sig_name else 0
        x = np.nan_to_num(rec.p_signal[:, k])
        ann = wfdb.rdann(path, "atr")
        beats = np.asarray(ann.sample)[np.isin(ann.symbol, list("NLRAaJSVFejE/fQ"))]
        for s in LENGTHS_S:
            found[s].append(ranges(x, rec.fs, beats, s, rng))
    print(f"window   median 1-99 % range (mV)   p25    p75   (the digitizer gives {UNRELATIVE_RANGE_MV} mV)")
    for s in LENGTHS_S:
        r = np.concatenate(found[s])
        p25, p50, p75 = np.percentile(r, [25, 50, 75])
        print(f"{s:5.1f} s  {p50:8.2f}                {p25:5.2f}  {p75:5.2f}")


if __name__ == "__main__":
    main()
