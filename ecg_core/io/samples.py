"""Bundled sample recordings: short WFDB excerpts of test-split patients, read as uploads are.

The folder `sample_records/` holds a few minutes each of records the models never saw in training
(mitdb DS2 of de Chazal et al. 2004, and vfdb records of the fixed test list), in WFDB format 212 with
their reference annotations, plus `manifest.json` (what each excerpt is and shows) and a README with
the attribution. The app reads a sample's file bytes and passes them through `signal_io.read_upload`,
exactly as an upload, so a sample and an upload of the same files give the same result.

Regenerate the folder from the full databases (deterministic; the command is stored in the manifest):

    python -m ecg_core.io.samples --mitdb ../shared/data/mitdb --vfdb ../shared/data/vfdb --out sample_records
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLES_DIR = ROOT / "sample_records"
MANIFEST = "manifest.json"
EXPORT_COMMAND = ("python -m ecg_core.io.samples --mitdb ../shared/data/mitdb --vfdb ../shared/data/vfdb "
                  "--out sample_records")
DATABASES = {
    "mitdb": "MIT-BIH Arrhythmia Database (Moody & Mark 2001), https://physionet.org/content/mitdb/1.0.0/",
    "vfdb": "MIT-BIH Malignant Ventricular Ectopy Database (Greenwald 1986), "
            "https://physionet.org/content/vfdb/1.0.0/",
}
ATTRIBUTION = (
    "Excerpts of the MIT-BIH Arrhythmia Database (Moody GB, Mark RG. The impact of the MIT-BIH Arrhythmia "
    "Database. IEEE Eng in Med and Biol 20(3):45-50, 2001) and the MIT-BIH Malignant Ventricular Ectopy "
    "Database (Greenwald SD. The development and analysis of a ventricular fibrillation detector. M.S. "
    "thesis, MIT Dept. of Electrical Engineering and Computer Science, 1986), from PhysioNet (Goldberger AL "
    "et al. PhysioBank, PhysioToolkit, and PhysioNet. Circulation 101(23):e215-e220, 2000), under the Open "
    "Data Commons Attribution License v1.0.")


class SampleError(Exception):
    """A sample recording is missing or its manifest is unreadable (str() is one line)."""


@dataclass(frozen=True)
class SampleRecording:
    """One bundled excerpt: where it comes from and what it shows."""

    key: str  # the WFDB record name of the excerpt (file stem)
    database: str  # mitdb | vfdb
    record: str  # the source record
    start_s: float  # where the excerpt starts in the source record
    duration_s: float
    title: str  # short label for a selector
    shows: str  # what a reader will see in it
    classes: tuple[str, ...]  # class keys the reference annotations hold in it
    files: tuple[str, ...] = field(default=())

    @property
    def source(self) -> str:
        m, s = divmod(int(round(self.start_s)), 60)
        return f"{self.database} record {self.record}, from {m}:{s:02d} for {self.duration_s:.0f} s"

    def label(self) -> str:
        return f"{self.title} ({self.database} {self.record})"


# The excerpts (database, record, start s, duration s, title, what it shows). Every record is a test
# patient: mitdb DS2 or vfdb's test list (ecg_core.data.dataset.DS2 / VFDB_TEST); starts were chosen
# for many beats of the class named in the title.
EXCERPTS: tuple[tuple[str, str, float, float, str, str], ...] = (
    ("mitdb", "100", 1100, 180, "Normal sinus rhythm",
     "Normal beats with nine premature atrial contractions."),
    ("mitdb", "214", 80, 180, "Left bundle branch block",
     "LBBB in every conducted beat, with 33 premature ventricular contractions (trigeminy at times)."),
    ("mitdb", "212", 990, 180, "Right bundle branch block",
     "Runs of normally conducted beats and of RBBB beats, about half of each."),
    ("mitdb", "232", 40, 180, "Premature atrial contractions",
     "Sinus bradycardia with RBBB, 121 premature atrial contractions and long pauses."),
    ("mitdb", "233", 1310, 180, "Premature ventricular contractions",
     "Frequent PVCs (about one beat in three), three short runs of ventricular tachycardia, bigeminy."),
    ("vfdb", "609", 960, 180, "Ventricular flutter",
     "Atrial fibrillation, a 21-s episode of ventricular flutter (61-83 s), a ventricular escape rhythm, "
     "then sinus rhythm; 250 Hz, no beat annotations (rhythm only)."),
    ("mitdb", "105", 1030, 180, "Noisy recording",
     "Normal beats under heavy noise and artifact, which can look like fibrillation."),
)


def sample_key(database: str, record: str, start_s: float) -> str:
    return f"{database}_{record}_{int(round(start_s))}s"


def list_samples(directory: str | Path | None = None) -> list[SampleRecording]:
    """The bundled samples in manifest order (an empty list when the folder or manifest is missing)."""
    base = Path(directory) if directory is not None else SAMPLES_DIR
    path = base / MANIFEST
    if not path.is_file():
        return []
    try:
        rows = json.loads(path.read_text())["samples"]
        return [SampleRecording(**{**r, "classes": tuple(r["classes"]), "files": tuple(r["files"])}) for r in rows]
    except (ValueError, KeyError, TypeError) as exc:
        raise SampleError(f"{path}: not a readable sample manifest ({type(exc).__name__}).") from None


def sample_by_key(key: str, directory: str | Path | None = None) -> SampleRecording:
    for s in list_samples(directory):
        if s.key == key:
            return s
    raise SampleError(f"No bundled sample recording named {key!r}.")


def sample_files(sample: SampleRecording | str, directory: str | Path | None = None) -> dict[str, bytes]:
    """{file name: bytes} of one sample, ready for signal_io.read_upload (as if the files were uploaded)."""
    base = Path(directory) if directory is not None else SAMPLES_DIR
    s = sample_by_key(sample, base) if isinstance(sample, str) else sample
    out = {}
    for name in s.files:
        p = base / name
        if not p.is_file():
            raise SampleError(f"The sample recording {s.key} lacks its file {name}; regenerate with: {EXPORT_COMMAND}")
        out[name] = p.read_bytes()
    return out


# ---------------------------------------------------------------- export (needs the full databases)

def cut(src: Path, out: Path, database: str, record: str, start_s: float, duration_s: float) -> list[str]:
    """Write one excerpt (signals in format 212, annotations shifted to its start) -> the file names."""
    import numpy as np
    import wfdb

    hdr = wfdb.rdheader(str(src / record))
    a = int(round(start_s * hdr.fs))
    b = min(int(round((start_s + duration_s) * hdr.fs)), int(hdr.sig_len))
    rec = wfdb.rdrecord(str(src / record), sampfrom=a, sampto=b, physical=False)
    names = [n if n not in rec.sig_name[:i] else f"{n}{i + 1}" for i, n in enumerate(rec.sig_name)]  # vfdb: ECG, ECG
    key = sample_key(database, record, start_s)
    comments = [f"excerpt of {database} record {record}, samples {a}-{b} ({start_s:g}-{start_s + duration_s:g} s)",
                "Open Data Commons Attribution License v1.0; see README.md"]
    wfdb.wrsamp(key, fs=rec.fs, units=rec.units, sig_name=names, d_signal=rec.d_signal, fmt=["212"] * rec.n_sig,
                adc_gain=rec.adc_gain, baseline=rec.baseline, comments=comments, write_dir=str(out))
    ann = wfdb.rdann(str(src / record), "atr", sampfrom=a, sampto=b - 1)
    samples = list(np.asarray(ann.sample, np.int64) - a)
    symbols = list(ann.symbol)
    aux = [(n or "").replace("\x00", "") for n in ann.aux_note]
    subtype, chan, num = list(ann.subtype), list(ann.chan), list(ann.num)  # '~' noise marks keep their leads
    # the rhythm in force at the cut is repeated at sample 0, so the excerpt's episodes start right
    before = wfdb.rdann(str(src / record), "atr", sampto=a) if a > 0 else None
    if before is not None:
        notes = [n.replace("\x00", "") for n in before.aux_note if n and n.startswith("(")]
        if notes and not (samples and samples[0] == 0 and aux[0].startswith("(")):
            samples.insert(0, 0)
            symbols.insert(0, "+")
            aux.insert(0, notes[-1])
            for column in (subtype, chan, num):
                column.insert(0, 0)
    wfdb.wrann(key, "atr", np.array(samples, dtype=np.int64), symbol=symbols, subtype=np.array(subtype),
               chan=np.array(chan), num=np.array(num), aux_note=aux, fs=rec.fs, write_dir=str(out))
    return [f"{key}.hea", f"{key}.dat", f"{key}.atr"]


def reference_classes(out: Path, key: str) -> tuple[str, ...]:
    """Class keys of the excerpt's reference: annotated beats and VF rhythm episodes."""
    import wfdb

    from ecg_core.classes import CLASS_KEYS, SYMBOL_TO_KEY, VF_RHYTHMS

    ann = wfdb.rdann(str(out / key), "atr")
    found = {SYMBOL_TO_KEY[s] for s in ann.symbol if s in SYMBOL_TO_KEY}
    if any((n or "").replace("\x00", "") in VF_RHYTHMS for n in ann.aux_note):
        found.add("VF")
    return tuple(k for k in CLASS_KEYS if k in found)


def export(mitdb: str | Path, vfdb: str | Path, out: str | Path = SAMPLES_DIR,
           excerpts: Sequence[tuple[str, str, float, float, str, str]] = EXCERPTS) -> list[SampleRecording]:
    """Write every excerpt, manifest.json and README.md into `out`; refuses training-split records."""
    from ecg_core.data.dataset import DS2, VFDB_TEST

    test = {"mitdb": set(DS2), "vfdb": set(VFDB_TEST)}
    sources = {"mitdb": Path(mitdb), "vfdb": Path(vfdb)}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    samples = []
    for db, record, start, duration, title, shows in excerpts:
        if record not in test[db]:
            raise ValueError(f"{db} record {record} is not a test-split record; samples come from test patients only")
        files = cut(sources[db], out, db, record, start, duration)
        key = sample_key(db, record, start)
        samples.append(SampleRecording(key, db, record, float(start), float(duration), title, shows,
                                       reference_classes(out, key), tuple(files)))
    manifest = {"command": EXPORT_COMMAND, "attribution": ATTRIBUTION, "databases": DATABASES,
                "split": "test patients only: mitdb DS2 (de Chazal et al. 2004) and the fixed vfdb test list",
                "samples": [{**asdict(s), "classes": list(s.classes), "files": list(s.files)} for s in samples]}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    (out / "README.md").write_text(readme(samples))
    return samples


def readme(samples: Sequence[SampleRecording]) -> str:
    rows = "\n".join(f"| `{s.key}` | {s.database} {s.record} | {s.start_s:g} s | {s.duration_s:g} s | {s.title} | "
                     f"{s.shows} | {' '.join(s.classes)} |" for s in samples)
    return f"""# Sample recordings

Short excerpts of test-split patients (never used for training any model here: mitdb DS2 of de Chazal
et al. 2004 and the fixed vfdb test list), for the Signal page's "Try a sample recording" and the Quiz
page. WFDB format 212 (both leads as recorded) with the reference annotations (`.atr`), sample
indices shifted to the excerpt's start; the rhythm in force at the cut is repeated at sample 0.

| excerpt | source record | starts at | length | title | what it shows | reference classes |
| --- | --- | --- | --- | --- | --- | --- |
{rows}

Made by (deterministic, from the full databases):

```bash
{EXPORT_COMMAND}
```

## Attribution

{ATTRIBUTION}

- MIT-BIH Arrhythmia Database: https://physionet.org/content/mitdb/1.0.0/
- MIT-BIH Malignant Ventricular Ectopy Database: https://physionet.org/content/vfdb/1.0.0/
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ecg_core.io.samples", description="write the bundled sample recordings")
    p.add_argument("--mitdb", default="../shared/data/mitdb")
    p.add_argument("--vfdb", default="../shared/data/vfdb")
    p.add_argument("--out", default=str(SAMPLES_DIR))
    a = p.parse_args(argv)
    for db in ("mitdb", "vfdb"):
        if not Path(getattr(a, db)).is_dir():
            print(f"error: --{db} {getattr(a, db)} is not a folder", file=sys.stderr)
            return 2
    try:
        samples = export(a.mitdb, a.vfdb, a.out)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    total = sum((Path(a.out) / f).stat().st_size for s in samples for f in s.files)
    print(f"wrote {len(samples)} sample recordings ({total / 1e6:.2f} MB) and {MANIFEST} to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
