"""Uploaded ECG recordings (WFDB record, CSV, EDF) parsed from bytes in memory, and validated.

Nothing here writes to disk: uploads are parsed from the bytes the browser sent. Every problem with the
input raises SignalInputError whose str() is one line naming the file and the problem. Every recording
passes the physical-range checks (within +-20 mV, not flat, a range an amplifier resolves) and gets a
signal-quality verdict (ecg_core.signal.quality); one judged unreadable is refused.

Each reader also reads the recording's V1 lead where a lead other than the first is labelled V1
(signals.is_v1, as training decides): SignalInput.v1, checked like the first lead. Without V1, another lead
labelled as an ECG lead (signals.other_lead_index: V2, V4, V5, a limb lead) is SignalInput.lead2, whose QRS
width alone is read. A second lead that cannot be used is left out with a note, never a refusal.

Supported inputs (one reader module each; this module keeps the public names and dispatches)
- WFDB (ecg_core.io.wfdb_bytes): `.hea` header + the `.dat` file(s) it names (formats 212, 16, 61, 80,
  160; one sample per frame), optionally a `.atr` reference annotation file (MIT format, parsed with wfdb's
  own byte-level functions; one whose beats disagree wildly with the signal is not used, with a note).
- CSV (ecg_core.io.csv_bytes): one column of samples (the sampling rate must be given), or time (seconds)
  + value columns; comma, semicolon, tab or whitespace separated; an optional header row (where a further
  column headed V1 is the V1 lead); values in millivolts or ADC units.
- EDF/EDF+ (ecg_core.io.edf_bytes, read by edfio): the lead named like MLII / II if present, else the
  first ECG-like signal.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ecg_core.io.base import (  # noqa: F401  (public names of this module)
    DEFAULT_ADC_GAIN,
    FLAT_STD_MV,
    MAX_ABS_MV,
    MAX_DURATION_S,
    MAX_FS,
    MAX_GAP_S,
    MIN_DURATION_S,
    MIN_FS,
    MIN_RANGE_MV,
    Reference,
    SignalInput,
    SignalInputError,
    check_physical_range,
    check_rate,
    fill_gaps,
    require_quality,
    validate,
)
from ecg_core.io.csv_bytes import read_csv_bytes
from ecg_core.io.edf_bytes import read_edf_bytes
from ecg_core.io.wfdb_bytes import (  # noqa: F401
    ANNOTATION_EXTENSIONS,
    WFDB_FORMATS,
    SignalSpec,
    WfdbHeader,
    decode_dat,
    parse_header,
    read_annotation_bytes,
    read_wfdb_bytes,
    read_wfdb_signals,
)

WFDB_EXTENSIONS = {".hea", ".dat", *(f".{e}" for e in ANNOTATION_EXTENSIONS)}


def read_upload(files: Mapping[str, bytes], fs: float | None = None, units: str = "mV",
                adc_gain: float = DEFAULT_ADC_GAIN, adc_baseline: float = 0.0) -> SignalInput:
    """Uploaded {file name: bytes}: a WFDB set, one CSV or one EDF file -> SignalInput."""
    if not files:
        raise SignalInputError("No file was uploaded.")
    exts = {Path(n).suffix.lower() for n in files}
    if exts <= WFDB_EXTENSIONS:
        return read_wfdb_bytes(files)
    if len(files) > 1:
        raise SignalInputError("Upload either a WFDB record (.hea + .dat [+ .atr]) or a single CSV or EDF file.")
    name, data = next(iter(files.items()))
    ext = Path(name).suffix.lower()
    if ext in (".csv", ".txt", ".tsv"):
        return read_csv_bytes(data, name, fs, units, adc_gain, adc_baseline)
    if ext == ".edf":
        return read_edf_bytes(data, name)
    raise SignalInputError(
        f"{name}: unsupported file type; upload a WFDB record (.hea + .dat [+ .atr]), a .csv or an .edf file.")


def read_path(path: str | Path, fs: float | None = None, units: str = "mV",
              adc_gain: float = DEFAULT_ADC_GAIN, adc_baseline: float = 0.0) -> SignalInput:
    """A CSV/EDF file or a WFDB record path (without extension) on disk, through the same byte parsers."""
    p = Path(path)
    if p.suffix.lower() in (".csv", ".txt", ".tsv", ".edf") and p.is_file():
        return read_upload({p.name: p.read_bytes()}, fs, units, adc_gain, adc_baseline)
    if p.suffix.lower() in (".hea", ".dat", ".atr"):
        p = p.with_suffix("")
    hea = p.with_name(f"{p.name}.hea")
    if not hea.is_file():
        raise SignalInputError(f"{path}: no such CSV/EDF file or WFDB record ({hea.name} not found).")
    files = {hea.name: hea.read_bytes()}
    header = parse_header(files[hea.name].decode("ascii", errors="replace"), hea.name)
    for s in header.signals:
        f = p.with_name(s.file_name)
        if f.is_file():
            files[f.name] = f.read_bytes()
    for ext in ANNOTATION_EXTENSIONS:
        f = p.with_name(f"{p.name}.{ext}")
        if f.is_file():
            files[f.name] = f.read_bytes()
    return read_wfdb_bytes(files)
