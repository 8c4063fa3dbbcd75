"""Single-beat pictures the picture benchmark once read wrong, redrawn exactly as `bench-pictures --seed 0`
draws them, into tests/data/pictures/hard (picture + truth sidecar, as synth's own set):

- 117 no_grid 0.8 s: its baseline steps down after the QRS and was split into two stacked strips;
- 117 photo 0.8 s: a blurred, sheared calibration pulse was not recognised and was read as part of the trace;
- 222 paper_pink 0.8 s: split into two strips like the first;
- 202 paper_pink 1.6 s: a small premature beat in the middle, a tall normal beat on either side;
- 221 photo 0.8 s: a thin frame of desk, parted from the picture's edge by straightening, was followed as trace;
- 234 photo 0.8 s: a calibration pulse whose falling stroke a rotated, blurred photo draws out was not recognised.

    PYTHONPATH=. python scripts/make_hard_pictures.py [--mitdb ../shared/data/mitdb]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "pictures" / "hard"
CASES = [("117", "no_grid", 0, 0), ("117", "photo", 0, 0), ("222", "paper_pink", 2, 0), ("202", "paper_pink", 0, 0),
         ("221", "photo", 1, 1), ("234", "photo", 0, 1)]
SEED = 0


def main() -> None:
    from ecg_core import bench_pictures as bp
    from ecg_core.picture import synth

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mitdb", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mitdb"))
    a = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for name, style, strip, beat in CASES:
        rec = bp.read_record(a.mitdb, name)
        rng = np.random.default_rng([SEED, int(name)])  # the bench's draws, in its order
        length = int(round(bp.STRIP_S * rec.fs))
        starts = bp.choose_strips(rec, 3, rng, bp.STRIP_S)
        for si, start in enumerate(starts):
            ids = bp.choose_beats(rec, start, length, bp.BEAT_PICTURES_PER_STRIP, rng)
            seconds = [float(rng.choice([0.8, 1.6])) for _ in ids]
            if si != strip:
                continue
            b, sec = ids[beat], seconds[beat]
            a0, e = bp.beat_crop(rec, b, sec)
            inb = (rec.beats >= a0) & (rec.beats < e)
            s = SEED * 1_000_003 + int(name) * 101 + si
            d = synth.draw(rec.signal[a0:e], rec.fs, style, r_peaks=rec.beats[inb] - a0, symbols=rec.symbols[inb],
                           seed=s * 7 + beat, layout="beat", beat_seconds=sec)
            target = int(np.flatnonzero(d.r_peaks == int(rec.beats[b]) - a0 - d.offset)[0])
            stem = f"{style}_beat_{name}_{sec:g}s"
            ext = ".jpg" if d.data[:2] == b"\xff\xd8" else ".png"
            (OUT / f"{stem}{ext}").write_bytes(d.data)
            np.savez_compressed(OUT / f"{stem}.npz", **d.sidecar(), target=np.int64(target),
                                record_start=np.int64(a0 + d.offset))
            print(f"{stem}{ext}: record {name} sample {a0 + d.offset}, {sec:g} s, beat {target} "
                  f"({rec.symbols[b]}) of {d.r_peaks.size}")


if __name__ == "__main__":
    main()
