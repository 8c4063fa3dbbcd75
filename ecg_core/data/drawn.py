"""A record as pictures draw it: its MLII lead in millivolts as recorded (no filtering, its own rate) with the
annotated beats. What the picture benchmark draws from and the lone-beat span estimator is trained on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecg_core.classes import BEAT_SYMBOLS, FLUTTER_WAVE

# the beats drawn pictures are scored on, one by one: flutter waves are left out (they occur only in 207)
DRAWN_BEAT_SYMBOLS = BEAT_SYMBOLS - {FLUTTER_WAVE}


@dataclass
class RecordData:
    name: str
    fs: float
    signal: np.ndarray  # MLII (else lead 0), mV
    lead: str
    beats: np.ndarray  # annotated beat samples
    symbols: np.ndarray  # their MIT-BIH symbols


def read_record(mitdb: str | Path, name: str) -> RecordData:
    import wfdb

    path = str(Path(mitdb) / name)
    rec = wfdb.rdrecord(path)
    names = list(rec.sig_name)
    k = names.index("MLII") if "MLII" in names else 0
    scale = {"uv": 1e-3, "v": 1e3}.get(str(rec.units[k]).lower(), 1.0)
    sig = np.nan_to_num(rec.p_signal[:, k].astype(np.float64)) * scale
    ann = wfdb.rdann(path, "atr")
    samples, symbols = np.asarray(ann.sample, np.int64), np.asarray(ann.symbol, dtype=object)
    keep = np.isin(symbols, sorted(DRAWN_BEAT_SYMBOLS)) & (samples >= 0) & (samples < sig.size)
    return RecordData(name, float(rec.fs), sig, names[k], samples[keep], symbols[keep])
