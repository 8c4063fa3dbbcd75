"""What a 12-lead page's V1 panel adds: standard 12-lead pages (3 x 4 leads of 2.5 s and a lead-II rhythm strip,
`synth.draw_twelve_lead`, the twelve leads built from the record's MLII and V1 by `synth.twelve_from_two`, so the
V1 panel shows the record's real V1) of the DS2 records that have V1, each read twice by the picture path: with
the V1 panel's measurements for the beats beside it (`pipeline.picture.twelve_lead_v1`), and from lead II alone.

Reported: beats on the rhythm strip matched to the annotations (150 ms, after the page's offset is fitted), how
many of them the V1 panel reaches, and macro F1 (N L R A V, the classes present) and per-class recall of those
beats read each way. With the DS1-trained sibling (`--model models/ecgnet_lite_blend_ds1.keras`) the DS2 patients
are new to the model.

    PYTHONPATH=. python scripts/measure_twelve_lead_v1.py [--mitdb ../shared/data/mitdb] [--model M]
        [--pages 3] [--styles paper_red monitor]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

F1_KEYS = ("N", "L", "R", "A", "V")


def main() -> None:
    from ecg_core.bench_pictures import _key, macro_f1
    from ecg_core.data.dataset import DS2
    from ecg_core.model import predict
    from ecg_core.picture import synth
    from ecg_core.picture.digitize import DigitizeError
    from ecg_core.pipeline import record_mode
    from ecg_core.pipeline.picture import classify_picture

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mitdb", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mitdb"))
    ap.add_argument("--model", default=None)
    ap.add_argument("--pages", type=int, default=3, help="pages per record and style")
    ap.add_argument("--styles", nargs="+", default=["paper_red", "monitor"])
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    clf = predict.load(predict.info_from_path(a.model) if a.model else None)
    ex = [e for e in synth.excerpts(a.mitdb, DS2, 10.0, a.pages, a.seed) if e.second_lead == "V1"]
    truth, with_v1, lead_ii = [], [], []
    n_pages = n_refused = n_beats = 0
    for k, e in enumerate(ex):
        for style in a.styles:
            d = synth.draw_twelve_lead(synth.twelve_from_two(e.signal, e.second), e.fs, style, rhythm=e.signal,
                                       seed=a.seed * 1000 + k, r_peaks=e.r_peaks, symbols=e.symbols)
            n_pages += 1
            try:
                r1 = classify_picture(d.data, clf, f"{e.record}_{style}")
                r0 = classify_picture(d.data, clf, f"{e.record}_{style}", read_v1=False)
            except DigitizeError:
                n_refused += 1
                continue
            if r1.v1 is None:
                continue
            covered = record_mode.v1_covers(r1.v1, r1.centres)
            t_true = d.x0 / d.px_per_s + d.r_peaks / d.fs
            t_pic = r1.beats["time_s"].to_numpy()
            near = np.abs(t_pic[:, None] - t_true[None, :]).argmin(axis=1)
            offset = float(np.median(t_pic - t_true[near]))
            for i in np.flatnonzero(covered):
                j = int(np.abs(t_pic[i] - offset - t_true).argmin())
                key = _key(str(d.symbols[j]))
                if abs(t_pic[i] - offset - t_true[j]) > 0.15 or key is None:
                    continue
                truth.append(key)
                with_v1.append(str(r1.beats["predicted"].iloc[i]))
                lead_ii.append(str(r0.beats["predicted"].iloc[i]))
            n_beats += len(r1.beats)
    print(f"model {clf.name}; {n_pages} pages ({len(ex)} excerpts of DS2 records with V1 x {len(a.styles)} styles: "
          f"{', '.join(a.styles)}), {n_refused} refused; {n_beats} beats read, {len(truth)} of them reached by the "
          f"V1 panel and matched to an annotation")
    t = np.array(truth)
    print(f"{'reading':12s} {'macro F1':>8s} " + " ".join(f"{k:>10s}" for k in F1_KEYS))
    for name, pred in (("with V1", with_v1), ("lead II", lead_ii)):
        p = np.array(pred)
        rec = [f"{np.mean(p[t == k] == k):.3f} ({int((t == k).sum())})" if (t == k).any() else "-" for k in F1_KEYS]
        print(f"{name:12s} {macro_f1(truth, pred):8.3f} " + " ".join(f"{r:>10s}" for r in rec))


if __name__ == "__main__":
    main()
