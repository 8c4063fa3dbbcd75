"""The bundled sample pictures: ECG pictures in many styles drawn from test-split (DS2) recordings.

    python -m ecg_core.picture.samples --mitdb ../shared/data/mitdb --out sample_images/pictures

Each picture is drawn by `synth` from a real MIT-BIH segment chosen around a beat of the class it shows;
manifest.csv names the record, the segment's start and the annotated classes of the beats drawn (in order),
so the app can show the reference next to its reading. No picture of a DS2 beat is ever trained on.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import wfdb

from ecg_core.classes import SYMBOL_TO_KEY
from ecg_core.picture import synth

# (file stem, record, class to centre on, style, layout, seconds)
PLAN: tuple[tuple[str, str, str, str, str, float], ...] = (
    ("normal_paper_red_strip", "100", "N", "paper_red", "strip", 10.0),
    ("lbbb_paper_pink_strip", "214", "L", "paper_pink", "strip", 10.0),
    ("lbbb_photo_strip", "111", "L", "photo", "strip", 10.0),
    ("rbbb_monitor_strip", "212", "R", "monitor", "strip", 10.0),
    ("rbbb_paper_green_beat", "231", "R", "paper_green", "beat", 10.0),
    ("pac_no_grid_strip", "222", "A", "no_grid", "strip", 10.0),
    ("pvc_photo_strip", "200", "V", "photo", "strip", 10.0),
    ("pvc_plot_strip", "233", "V", "plot_axes", "strip", 10.0),
    ("pvc_seed_thin_beat", "213", "V", "seed_thin", "beat", 10.0),
    ("pvc_rotated_strip", "210", "V", "rotated", "strip", 10.0),
    ("twelve_lead_paper_red", "105", "N", "paper_red", "twelve_lead", 10.0),
    ("stacked_paper_grey", "214", "V", "paper_grey", "stacked", 10.0),
)


def _segment(mitdb: Path, record: str, key: str, seconds: float, seed: int):
    """(signal MLII mV, second lead mV, fs, start sample, beat samples, symbols) around a beat of class key."""
    path = str(mitdb / record)
    ann = wfdb.rdann(path, "atr")
    header = wfdb.rdheader(path)
    fs = float(header.fs)
    n = int(round(seconds * fs))
    hits = [s for s, sym in zip(ann.sample, ann.symbol) if SYMBOL_TO_KEY.get(sym) == key]
    if not hits:
        raise ValueError(f"record {record} has no beat of class {key}")
    rng = np.random.default_rng(seed)
    centre = int(hits[int(rng.integers(len(hits)))])
    start = int(np.clip(centre - n // 2, 0, header.sig_len - n))
    rec = wfdb.rdrecord(path, sampfrom=start, sampto=start + n)
    names = list(rec.sig_name)
    lead = names.index("MLII") if "MLII" in names else 0
    other = 1 - lead
    keep = (ann.sample >= start) & (ann.sample < start + n)
    samples = ann.sample[keep] - start
    symbols = np.array(ann.symbol, dtype=object)[keep]
    return rec.p_signal[:, lead], rec.p_signal[:, other], fs, start, samples, symbols, names[other]


def make(mitdb: Path, out: Path, seed: int = 0) -> pd.DataFrame:
    """Draw every picture of PLAN into `out` with manifest.csv; returns the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for k, (stem, record, key, style, layout, seconds) in enumerate(PLAN):
        x, second, fs, start, r, s, second_name = _segment(mitdb, record, key, seconds, seed + k)
        beats = np.array([SYMBOL_TO_KEY.get(str(sym)) is not None for sym in s])
        if layout == "twelve_lead":
            d = synth.draw_twelve_lead(synth.twelve_from_two(x, second), fs, style, rhythm=x, seed=seed + k,
                                       r_peaks=r[beats], symbols=s[beats])
        elif layout == "stacked":
            d = synth.draw_stacked([x, second], fs, style, seed=seed + k, labels=["II", second_name],
                                   r_peaks=r[beats], symbols=s[beats])
        else:
            r, s = r[beats], s[beats]
            if layout == "beat":  # the beat window around the beat of the class nearest the segment's middle
                of_class = np.flatnonzero([SYMBOL_TO_KEY.get(str(sym)) == key for sym in s])
                i = of_class[np.argmin(np.abs(r[of_class] - x.size // 2))]
                r, s = r[i: i + 1], s[i: i + 1]
            d = synth.draw(x, fs, style, r_peaks=r, symbols=s, seed=seed + k, layout=layout)
        ext = "jpg" if d.jpeg_quality else "png"
        name = f"{stem}.{ext}"
        (out / name).write_bytes(d.data)
        labels = " ".join(SYMBOL_TO_KEY.get(str(sym), "?") for sym in d.symbols) if layout != "beat" else key
        t0 = (start + d.offset) / fs
        rows.append({"file": name, "style": style, "layout": layout.replace("_", "-"), "database": "mitdb",
                     "record": record, "start_s": round(t0, 2), "labels": labels})
    manifest = pd.DataFrame(rows)
    manifest.to_csv(out / "manifest.csv", index=False)
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mitdb", default="../shared/data/mitdb")
    ap.add_argument("--out", default="sample_images/pictures")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    m = make(Path(a.mitdb), Path(a.out), a.seed)
    print(m.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
