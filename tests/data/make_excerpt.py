"""Regenerate the test excerpt from the full databases: python tests/data/make_excerpt.py SHARED_DATA_DIR

Cuts a few minutes of a few records (signals in format 212 and their reference annotations, sample
indices shifted to the excerpt's start).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import wfdb

EXCERPTS = [  # (database, record, start s, end s, why)
    ("mitdb", "207", 0, 180, "L, R, V, '!' flutter beats and two (VFL episodes"),
    ("mitdb", "208", 0, 120, "N and V"),
    ("mitdb", "232", 0, 120, "R and A"),
    ("mitdb", "114", 0, 30, "MLII is the second lead"),
    ("vfdb", "430", 380, 500, "a ventricular fibrillation episode at 250 Hz"),
]


def cut(src: Path, dst: Path, record: str, start_s: float, end_s: float) -> None:
    hdr = wfdb.rdheader(str(src / record))
    a, b = int(start_s * hdr.fs), int(end_s * hdr.fs)
    rec = wfdb.rdrecord(str(src / record), sampfrom=a, sampto=b, physical=False)
    ann = wfdb.rdann(str(src / record), "atr", sampfrom=a, sampto=b - 1)
    dst.mkdir(parents=True, exist_ok=True)
    names = [n if n not in rec.sig_name[:i] else f"{n}{i + 1}" for i, n in enumerate(rec.sig_name)]  # vfdb: ECG, ECG
    wfdb.wrsamp(record, fs=rec.fs, units=rec.units, sig_name=names, d_signal=rec.d_signal,
                fmt=rec.fmt, adc_gain=rec.adc_gain, baseline=rec.baseline, write_dir=str(dst))
    # rhythm state at the cut: carry the last rhythm note before the start over to sample 0
    full = wfdb.rdann(str(src / record), "atr", sampto=a) if a > 0 else None
    samples, symbols, aux = list(ann.sample - a), list(ann.symbol), [n or "" for n in ann.aux_note]
    if full is not None:
        notes = [(s, n) for s, n in zip(full.sample, full.aux_note) if n and n.startswith("(")]
        if notes and (not aux or not aux[0].startswith("(") or samples[0] > 0):
            samples.insert(0, 0)
            symbols.insert(0, "+")
            aux.insert(0, notes[-1][1])
    wfdb.wrann(record, "atr", np.array(samples), symbol=symbols, aux_note=aux, fs=rec.fs, write_dir=str(dst))


def main(shared: str) -> None:
    here = Path(__file__).resolve().parent
    for db, record, s, e, _ in EXCERPTS:
        cut(Path(shared) / db, here / db, record, s, e)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
