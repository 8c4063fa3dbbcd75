"""Build, cache and split the image dataset; export sample images.

Every image is traceable to (database, record, sample index at the record's own rate).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ecg_core.classes import CLASS_KEYS
from ecg_core.picture.imaging import encode_png, normalise_batch
from ecg_core.picture.render import render
from ecg_core.settings import (
    LEADS_PER_REPRESENTATION,
    PREPROCESSING_VERSION,
    SPLIT_SEED,
    TEMPLATE_REPRESENTATIONS,
    WORKING_FS,
)
from ecg_core.signal.beats import (
    LONE_STRETCH,
    Beats,
    episode_windows,
    labelled_beats,
    lone_crops,
    lone_windows,
    rhythm_episodes,
    with_templates,
)
from ecg_core.signal.features import FEATURE_NAMES, FEATURES_VERSION, beat_features, without_rr, without_v1
from ecg_core.signal.peaks import detect_beats
from ecg_core.signal.signals import RecordError, is_ecg_lead, is_v1, read_record

# de Chazal et al. 2004 inter-patient protocol; paced records 102 104 107 217 excluded.
PACED_RECORDS = ("102", "104", "107", "217")
DS1 = ("101 106 108 109 112 114 115 116 118 119 122 124 201 203 205 207 208 209 215 220 223 230").split()
DS2 = ("100 103 105 111 113 117 121 123 200 202 210 212 213 214 219 221 222 228 231 232 233 234").split()
VFDB_TRAIN = "418 420 421 422 423 425 427 430 602 605 607".split()
VFDB_TEST = "424 428 429 609 610 611 612 614 615".split()
DATABASES = ("mitdb", "vfdb")
SPLITS = ("beatwise", "recordwise")
# "full": each window as cut from the recording (the preceding beat, the patient's usual beat as template);
# "lone": each beat alone, as in a single-beat picture (beats.lone_windows): a seeded random crop around it,
# stretched, padded with its edge baseline, the beat its own template.
CONTEXTS = ("full", "lone")
LONE_REPRESENTATIONS = ("waveform", "spectral", "overlay")  # one-lead pictures only


@dataclass
class Dataset:
    """Images with labels and provenance; `meta` records how it was built."""

    images: np.ndarray  # uint8 (n, 128, 128), normalised exactly as the app normalises uploads
    labels: np.ndarray  # int8 class index
    database: np.ndarray  # int8 index into DATABASES
    record: np.ndarray  # str record id
    sample: np.ndarray  # int64 sample index at the record's own sampling rate
    meta: dict = field(default_factory=dict)
    features: np.ndarray | None = None  # float32 (n, N_FEATURES): signal.features.beat_features of each window

    def __len__(self) -> int:
        return int(self.labels.size)

    def subset(self, idx: np.ndarray) -> Dataset:
        return Dataset(self.images[idx], self.labels[idx], self.database[idx], self.record[idx],
                       self.sample[idx], dict(self.meta), None if self.features is None else self.features[idx])

    @property
    def groups(self) -> np.ndarray:
        """'db/record' strings: the patient grouping used by record-wise splits."""
        return np.char.add(np.char.add(np.array(DATABASES)[self.database], "/"), self.record.astype(str))


def record_ids(directory: str | Path) -> list[str]:
    """Record names of a WFDB directory (its RECORDS file, else every .hea)."""
    d = Path(directory)
    listing = d / "RECORDS"
    if listing.exists():
        return [r.strip() for r in listing.read_text().split() if r.strip()]
    return sorted(p.stem for p in d.glob("*.hea"))


def record_beats(record_path: str | Path, database: str, leads: int = 1,
                 templates: bool = False, context: str = "full", stretch: tuple[float, float] = LONE_STRETCH,
                 seed: int = 0) -> tuple[Beats, float]:
    """All labelled windows of one record: annotated beats (mitdb) and VF/VFL episode windows.

    leads=2 cuts each window from MLII and the second lead: windows (n, 2, WINDOW_LEN).
    templates=True pairs each MLII window with its local template (beats.with_templates, for the overlay
    representation), computed from the R peaks the app's detector finds, not from the annotations:
    (n, 2, WINDOW_LEN).
    context="lone" (one lead): each window is its beat alone as a single-beat picture would show it
    (beats.lone_windows; crops and stretch factors in `stretch` seeded by seed, database and record), with
    itself as template when templates=True.
    """
    if context not in CONTEXTS:
        raise ValueError(f"unknown context {context!r}; use one of {CONTEXTS}")
    if context == "lone" and leads != 1:
        raise ValueError("the lone-beat context reads one lead (a single-beat picture has one trace)")
    rec = read_record(record_path, second_lead=leads == 2)
    ann = rec.annotations
    assert ann is not None
    x = rec.leads
    parts = []
    if database == "mitdb":
        parts.append(labelled_beats(x, ann.sample, ann.symbol))
    parts.append(episode_windows(x, rhythm_episodes(ann.sample, ann.aux_note, rec.signal.size)))
    beats = Beats(np.concatenate([p.windows for p in parts]), np.concatenate([p.centres for p in parts]),
                  np.concatenate([p.labels for p in parts]))
    if context == "lone":
        rng = np.random.default_rng([seed, DATABASES.index(database), _record_number(rec.record_id)])
        windows = lone_windows(rec.signal, beats.centres, lone_crops(beats.centres, rec.signal.size, rng, stretch))
        beats.windows = windows if templates else windows[:, 0]
    elif templates:
        beats.windows = with_templates(rec.leads, beats.centres, detect_beats(rec.signal))
    return beats, rec.original_fs


def _record_number(rid: str) -> int:
    digits = "".join(ch for ch in rid if ch.isdigit())
    return int(digits) if digits else sum(map(ord, rid))


def record_features(record_path: str | Path, centres: np.ndarray) -> np.ndarray:
    """Beat features (signal.features) of windows centred at `centres` (working rate) of one record: from
    the lead the models read, the R peaks the app's detector finds, V1 when the record has it, and the
    second lead's QRS width whichever lead it is."""
    rec = read_record(record_path, with_annotations=False, second_lead=True)
    v1 = rec.signal2 if is_v1(rec.lead2) else None  # the recording path decides with the same is_v1
    lead2 = rec.signal2 if v1 is None and is_ecg_lead(rec.lead2) else v1  # and is_ecg_lead (other_lead_index)
    return beat_features(rec.signal, centres, detect_beats(rec.signal), v1, lead2=lead2)


def record_chunk(directory: str | Path, rid: str, db_index: int, representation: str, context: str = "full",
                 stretch: tuple[float, float] = LONE_STRETCH, seed: int = 0) -> tuple | None:
    """One record's rendered, normalised windows with their labels, database, record, sample and features."""
    db = DATABASES[db_index]
    beats, fs = record_beats(Path(directory) / rid, db, LEADS_PER_REPRESENTATION.get(representation, 1),
                             templates=representation in TEMPLATE_REPRESENTATIONS, context=context,
                             stretch=stretch, seed=seed)
    if len(beats) == 0:
        return None
    images = normalise_batch(render(beats.windows, representation), representation)
    own_rate = np.round(beats.centres * (fs / WORKING_FS)).astype(np.int64)
    features = record_features(Path(directory) / rid, beats.centres)
    if context == "lone":
        features = without_rr(without_v1(features))  # a single-beat picture: one trace, no neighbours
    return (images, beats.labels, np.full(len(beats), db_index, np.int8), np.full(len(beats), rid), own_rate,
            features)


def build(mitdb: str | Path | None, vfdb: str | Path | None, representation: str,
          records: dict[str, Iterable[str]] | None = None,
          cap_per_class: int | None = None, seed: int = 0,
          progress: Callable[[str], None] | None = None, workers: int = 1, context: str = "full",
          stretch: tuple[float, float] = LONE_STRETCH) -> Dataset:
    """Read the databases, cut windows, render and normalise them. Paced mitdb records are skipped.

    workers > 1 reads and renders records in that many processes; the result is the same.
    context="lone": every window is its beat alone, as a single-beat picture (see CONTEXTS), its crop seeded
    by `seed` and stretched by a factor drawn uniformly in `stretch` (one fixed factor when both are equal).
    """
    if context not in CONTEXTS:
        raise ValueError(f"unknown context {context!r}; use one of {CONTEXTS}")
    if context == "lone" and representation not in LONE_REPRESENTATIONS:
        raise ValueError(f"the lone-beat context needs a one-lead representation ({', '.join(LONE_REPRESENTATIONS)})")
    stretch = (float(stretch[0]), float(stretch[1]))
    records = {k: list(v) for k, v in records.items()} if records else None
    t0 = time.perf_counter()
    sources = {"mitdb": mitdb, "vfdb": vfdb}
    jobs = []
    for db_index, db in enumerate(DATABASES):
        directory = sources[db]
        if directory is None:
            continue
        ids = list(records[db]) if records and db in records else record_ids(directory)
        jobs += [(directory, rid, db_index, representation, context, stretch, seed) for rid in ids
                 if not (db == "mitdb" and rid in PACED_RECORDS)]
    chunks = []
    with ProcessPoolExecutor(workers) if workers > 1 else nullcontext() as pool:
        results = pool.map(record_chunk, *zip(*jobs)) if pool and jobs else (record_chunk(*j) for j in jobs)
        for job, chunk in zip(jobs, results):
            if chunk is not None:
                chunks.append(chunk)
                if progress:
                    progress(f"{DATABASES[job[2]]}/{job[1]}: {len(chunk[1])} windows")
    if not chunks:
        raise RecordError("no records found: check the --mitdb / --vfdb directories")
    ds = Dataset(*(np.concatenate([c[i] for c in chunks]) for i in range(5)),
                 features=np.concatenate([c[5] for c in chunks]))
    if cap_per_class:
        ds = ds.subset(cap_indices(ds.labels, cap_per_class, seed))
    ds.meta = {
        "representation": representation,
        "preprocessing_version": PREPROCESSING_VERSION,
        "classes": list(CLASS_KEYS),
        "cap_per_class": cap_per_class,
        "seed": seed,
        "paced_records_excluded": list(PACED_RECORDS),
        "sources": {k: str(v) for k, v in sources.items() if v is not None},
        **({"context": "lone", "stretch": list(stretch)} if context == "lone" else {}),
        **({"records": {k: sorted(v) for k, v in records.items()}} if records else {}),
        "features": list(FEATURE_NAMES),
        "features_version": FEATURES_VERSION,
        "n": len(ds),
        "build_seconds": round(time.perf_counter() - t0, 1),
    }
    return ds


def recordwise_test_records(mitdb: str | Path | None = None,
                            vfdb: str | Path | None = None) -> dict[str, list[str]]:
    """The records of the record-wise test part (DS2 and the vfdb test list): a dataset of them alone;
    with a database's directory, only those of its records it holds."""
    out = {}
    for db, ids, directory in (("mitdb", DS2, mitdb), ("vfdb", VFDB_TEST, vfdb)):
        held = set(record_ids(directory)) if directory is not None else None
        out[db] = [r for r in ids if held is None or r in held]
    return out


def cap_indices(labels: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """At most `cap` random indices per class (sorted), reproducible from the seed."""
    rng = np.random.default_rng(seed)
    keep = []
    for k in np.unique(labels):
        idx = np.flatnonzero(labels == k)
        keep.append(idx if idx.size <= cap else rng.choice(idx, cap, replace=False))
    return np.sort(np.concatenate(keep))


def fair_shares(sizes: np.ndarray, cap: int) -> np.ndarray:
    """How many of each group's `sizes` to take for at most `cap` in all, as equal as the groups allow
    (water-filling: a group smaller than its share leaves the rest to the others)."""
    sizes = np.asarray(sizes, np.int64)
    take = np.zeros_like(sizes)
    left = int(min(cap, sizes.sum()))
    while left > 0:
        open_ = np.flatnonzero(take < sizes)
        share = left // open_.size
        if share == 0:  # fewer left than open groups: one more each for the first ones
            take[open_[:left]] += 1
            break
        add = np.minimum(sizes[open_] - take[open_], share)
        take[open_] += add
        left -= int(add.sum())
    return take


def cap_indices_by_group(labels: np.ndarray, groups: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """At most `cap` random indices per class (sorted), shared as equally as possible between the groups
    (patients) that hold the class, so that no patient's beats dominate what a class looks like."""
    rng = np.random.default_rng(seed)
    keep = []
    for k in np.unique(labels):
        idx = np.flatnonzero(labels == k)
        names, inverse = np.unique(groups[idx], return_inverse=True)
        members = [idx[inverse == g] for g in range(names.size)]
        for m, n in zip(members, fair_shares(np.array([m.size for m in members]), cap)):
            keep.append(m if n >= m.size else rng.choice(m, n, replace=False))
    return np.sort(np.concatenate(keep))


def save(ds: Dataset, path: str | Path) -> Path:
    """Write the compact cache: one .npz with arrays and the metadata as JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, images=ds.images, labels=ds.labels, database=ds.database,
             record=ds.record.astype("U8"), sample=ds.sample, meta=json.dumps(ds.meta),
             **({"features": ds.features} if ds.features is not None else {}))
    return path


def load(path: str | Path) -> Dataset:
    """Read a cache written by `save`."""
    path = Path(path)
    if path.is_dir():
        path = path / "dataset.npz"
    with np.load(path, allow_pickle=False) as z:
        return Dataset(z["images"], z["labels"], z["database"], z["record"], z["sample"],
                       json.loads(str(z["meta"])), z["features"] if "features" in z.files else None)


# ---------------------------------------------------------------- splits

def split_indices(ds: Dataset, kind: str, seed: int = SPLIT_SEED,
                  test_size: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices of a named split.

    beatwise: stratified random split over windows (patients appear on both sides: leaks).
    recordwise: mitdb DS1/DS2 and the fixed vfdb lists (no patient on both sides).
    """
    if kind == "beatwise":
        from sklearn.model_selection import train_test_split

        idx = np.arange(len(ds))
        train, test = train_test_split(idx, test_size=test_size, random_state=seed, stratify=ds.labels)
        return np.sort(train), np.sort(test)
    if kind == "recordwise":
        train_groups = {f"mitdb/{r}" for r in DS1} | {f"vfdb/{r}" for r in VFDB_TRAIN}
        test_groups = {f"mitdb/{r}" for r in DS2} | {f"vfdb/{r}" for r in VFDB_TEST}
        g = ds.groups
        return np.flatnonzero(np.isin(g, list(train_groups))), np.flatnonzero(np.isin(g, list(test_groups)))
    raise ValueError(f"unknown split {kind!r}; use one of {SPLITS}")


def grouped_folds(ds: Dataset, idx: np.ndarray, k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Grouped K-fold by record over the given indices (model selection inside a train split)."""
    from sklearn.model_selection import StratifiedGroupKFold

    folds = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(idx[a], idx[b]) for a, b in folds.split(idx, ds.labels[idx], ds.groups[idx])]


VALIDATION_KINDS = ("windows", "records")


def validation_split(ds: Dataset, train_idx: np.ndarray, seed: int = 0, fraction: float = 0.15,
                     kind: str = "windows") -> tuple[np.ndarray, np.ndarray]:
    """Carve a validation part out of TRAIN (never the test split).

    kind="windows": a stratified `fraction` of TRAIN windows. DS1 holds only two LBBB and three RBBB
    patients, and holding one out would remove a third to a half of a class's patients from training;
    the price is an optimistic (intra-patient) validation score.
    kind="records": whole TRAIN records (one fold of a stratified grouped 1/fraction-fold split), so
    the validation score is measured on patients the model has not seen, like the record-wise test.
    """
    if kind == "records":
        k = min(max(2, round(1 / fraction)), len(set(ds.groups[train_idx].tolist())))
        fit, val = grouped_folds(ds, train_idx, k=k, seed=seed)[0]
        return np.sort(fit), np.sort(val)
    if kind != "windows":
        raise ValueError(f"unknown validation kind {kind!r}; use one of {VALIDATION_KINDS}")
    from sklearn.model_selection import train_test_split

    fit, val = train_test_split(train_idx, test_size=fraction, random_state=seed, stratify=ds.labels[train_idx])
    return np.sort(fit), np.sort(val)


def fit_validation_indices(ds: Dataset, split: str, seed: int, validation: str = "windows",
                           cap_per_class: int | None = None,
                           split_seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """The (fit, validation) windows a model is trained and early-stopped on: the split's TRAIN part, a
    validation part carved from it with the training seed, each capped per class as in training."""
    train_idx, _ = split_indices(ds, split, split_seed)
    fit_idx, val_idx = validation_split(ds, train_idx, seed, kind=validation)
    if cap_per_class:
        fit_idx = fit_idx[cap_indices(ds.labels[fit_idx], cap_per_class, seed)]
        val_idx = val_idx[cap_indices(ds.labels[val_idx], max(cap_per_class // 3, 200), seed)]
    return fit_idx, val_idx


def count_table(ds: Dataset) -> pd.DataFrame:
    """Per-class counts of every split part (rows) x class (columns)."""
    rows = {"all": ds.labels}
    for kind in SPLITS:
        train, test = split_indices(ds, kind)
        rows[f"{kind} train"] = ds.labels[train]
        rows[f"{kind} test"] = ds.labels[test]
    table = pd.DataFrame({name: np.bincount(lab, minlength=len(CLASS_KEYS)) for name, lab in rows.items()},
                         index=list(CLASS_KEYS)).T
    table["total"] = table.sum(axis=1)
    return table


# ---------------------------------------------------------------- samples

def export_samples(ds: Dataset, out_dir: str | Path, per_class: int = 6, seed: int = 0,
                   split: str = "recordwise") -> pd.DataFrame:
    """Write real test-split images per class to out_dir/<key>/ with manifest.csv; returns the manifest."""
    out_dir = Path(out_dir)
    _, test = split_indices(ds, split)
    rng = np.random.default_rng(seed)
    rows = []
    for k, key in enumerate(CLASS_KEYS):
        idx = test[ds.labels[test] == k]
        # spread the picks over records so a class is not shown by one patient only
        order = rng.permutation(idx)
        per_record = -(-per_class // max(1, len(set(ds.groups[idx].tolist()))))
        picks, seen = [], {}
        for i in order:
            g = ds.groups[i]
            if seen.get(g, 0) < per_record:
                picks.append(i)
                seen[g] = seen.get(g, 0) + 1
            if len(picks) == per_class:
                break
        (out_dir / key).mkdir(parents=True, exist_ok=True)
        for i in sorted(picks):
            db, rec, smp = DATABASES[ds.database[i]], str(ds.record[i]), int(ds.sample[i])
            name = f"{key}/{db}_{rec}_{smp}.png"
            (out_dir / name).write_bytes(encode_png(ds.images[i]))
            fs = 360 if db == "mitdb" else 250
            rows.append({"file": name, "label": key, "database": db, "record": rec, "sample": smp,
                         "time_s": round(smp / fs, 3), "split": f"{split} test"})
    manifest = pd.DataFrame(rows)
    manifest.to_csv(out_dir / "manifest.csv", index=False)
    return manifest
