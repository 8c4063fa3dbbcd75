"""R-peak detection against the MIT-BIH annotations: sensitivity and positive predictivity, all 48 records.

The lead the app reads (ecg_core.io.signal_io.read_path), prepared as every recording is; a detection matches
the closest annotated beat within 150 ms, one to one (record_mode.match_beats). Records with the most errors
are listed.

    PYTHONPATH=. python scripts/evaluate_beat_detection.py [--mitdb ../shared/data/mitdb] [--method pan-tompkins]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ecg_core.classes import BEAT_SYMBOLS
from ecg_core.io import signal_io
from ecg_core.pipeline.record_mode import match_beats
from ecg_core.settings import WORKING_FS
from ecg_core.signal import signals
from ecg_core.signal.peaks import detect_beats

TOLERANCE_S = 0.15


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mitdb", default="../shared/data/mitdb")
    ap.add_argument("--method", default="pan-tompkins", choices=["pan-tompkins", "xqrs"])
    a = ap.parse_args()
    matched = refs = dets = 0
    worst = []
    seconds = 0.0
    for hea in sorted(Path(a.mitdb).glob("*.hea")):
        sig = signal_io.read_path(hea.with_suffix(""))
        x = signals.prepare_signal(sig.signal, sig.fs)
        t = time.perf_counter()
        peaks = detect_beats(x, method=a.method)
        seconds += time.perf_counter() - t
        ann = sig.reference
        ref = signals.rescale_samples(ann.sample[np.isin(ann.symbol, list(BEAT_SYMBOLS))], sig.fs)
        r, _ = match_beats(ref, peaks, int(round(TOLERANCE_S * WORKING_FS)))
        matched, refs, dets = matched + r.size, refs + ref.size, dets + peaks.size
        worst.append((ref.size - r.size + peaks.size - r.size, hea.stem, ref.size - r.size, peaks.size - r.size))
    print(f"{a.method}: Se {matched / refs:.4f}, +P {matched / dets:.4f} ({refs - matched} missed, "
          f"{dets - matched} extra of {refs} beats; detection {seconds:.1f} s in all)")
    print("most errors: " + ", ".join(f"{n} ({fn} missed, {fp} extra)" for _, n, fn, fp in sorted(worst)[::-1][:5]))


if __name__ == "__main__":
    main()
