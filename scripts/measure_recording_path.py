"""What the recording path (the Signal page, `classify-record`) gives on whole records, read with and without
their second lead (V1, else another lead's QRS width): every beat of each record found by the app's own detector,
classified and matched to the annotations (`record_mode.compare`), the confusions pooled over the records; per
record, the share of matched beats whose class agrees.

With the DS1-trained sibling (`--model models/ecgnet_lite_blend_ds1.keras`) on the DS2 records (the default)
this is a patients-never-seen figure for the app's own reading of a two-lead recording, the literature's DS1 ->
DS2 split. Macro F1 over N, L, R, A, V (the classes of the picture benchmark), and VF recall where the records
have it.

    PYTHONPATH=. python scripts/measure_recording_path.py [--mitdb ../shared/data/mitdb] [--model M]
        [--records 100 103 ...]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

F1_KEYS = ("N", "L", "R", "A", "V")


def pooled_scores(confusion: np.ndarray, keys: tuple[str, ...]) -> dict[str, float]:
    """Macro F1 over `F1_KEYS` and each class's recall from a pooled confusion (rows reference, columns
    predicted, in `keys` order)."""
    diag = np.diag(confusion).astype(float)
    ref, pred = confusion.sum(axis=1), confusion.sum(axis=0)
    recall = np.where(ref > 0, diag / np.maximum(ref, 1), np.nan)
    f1 = np.where(ref + pred > 0, 2 * diag / np.maximum(ref + pred, 1), 0.0)
    out = {"macro_f1": float(np.mean([f1[keys.index(k)] for k in F1_KEYS]))}
    out.update({k: float(recall[i]) for i, k in enumerate(keys)})
    return out


def main() -> None:
    from ecg_core.classes import CLASS_KEYS
    from ecg_core.data.dataset import DS2
    from ecg_core.io.signal_io import read_path
    from ecg_core.model import predict
    from ecg_core.pipeline.record_mode import classify_signal

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mitdb", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mitdb"))
    ap.add_argument("--model", default=None)
    ap.add_argument("--records", nargs="+", default=list(DS2))
    a = ap.parse_args()
    clf = predict.load(predict.info_from_path(a.model) if a.model else None)
    keys = tuple(CLASS_KEYS)
    pooled = {"two leads": np.zeros((len(keys), len(keys)), np.int64),
              "one lead": np.zeros((len(keys), len(keys)), np.int64)}
    print(f"model {clf.name}; records {' '.join(a.records)}")
    print(f"{'record':8s} {'leads':10s} {'beats':>6s} {'agreement, two leads':>20s} {'one lead':>9s}")
    for name in a.records:
        sig = read_path(Path(a.mitdb) / name)
        row = []
        one_lead = dataclasses.replace(sig, v1=None, lead2=None, lead2_label="")
        for kind, s in (("two leads", sig), ("one lead", one_lead)):
            res = classify_signal(s, clf, vf_scan="auto")
            c = res.comparison.confusion.loc[list(keys), list(keys)].to_numpy()
            pooled[kind] += c
            row.append(np.trace(c) / max(int(c.sum()), 1))
        second = "V1" if sig.v1 is not None else sig.lead2_label if sig.lead2 is not None else ""
        leads = sig.lead + (f" + {second}" if second else "")
        print(f"{name:8s} {leads:10s} {int(c.sum()):6d} {row[0]:20.3f} {row[1]:9.3f}")
    print()
    print(f"pooled over {len(a.records)} records (recall per class; macro F1 over {', '.join(F1_KEYS)}):")
    print(f"{'reading':10s} {'macro F1':>8s} " + " ".join(f"{k:>6s}" for k in keys))
    for kind, c in pooled.items():
        s = pooled_scores(c, keys)
        print(f"{kind:10s} {s['macro_f1']:8.3f} " + " ".join(f"{s[k]:6.3f}" for k in keys))


if __name__ == "__main__":
    main()
