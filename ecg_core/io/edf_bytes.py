"""EDF / EDF+ recordings from bytes, read by edfio (from memory, no file): the lead named like MLII / II
if present, else the first ECG-like signal, else the first signal.

edfio trusts the header's counts (samples per record 0 divides by zero, a record duration of 0 fails
inside it), so the fixed 256-byte header and the samples-per-record fields are checked here first.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import edfio
import numpy as np

from ecg_core.io.base import UNIT_TO_MV, SignalInput, SignalInputError, require_quality, validate

ANNOTATION_LABEL = "EDF Annotations"


def _edf_lead(labels: list[str], usable: list[int]) -> int:
    """Index of lead II (MLII, 'ECG II', 'II'), else of the first ECG/EKG signal, else the first signal."""
    bare = {i: re.sub(r"ECG|EKG|[\s_\-]", "", labels[i].upper()) for i in usable}
    for want in ("MLII", "II"):
        hits = [i for i in usable if bare[i] == want]
        if hits:
            return hits[0]
    hits = [i for i in usable if re.search(r"ECG|EKG", labels[i].upper())]
    return hits[0] if hits else usable[0]


def _check_header(data: bytes, name: str) -> None:
    """The counts edfio relies on: one-line refusals instead of its ZeroDivisionError or IndexError."""
    try:
        head = data[:256].decode("ascii")
        if len(data) < 256 or head[:8].strip() != "0":
            raise ValueError
        header_bytes, n_records, ns = int(head[184:192]), int(head[236:244]), int(head[252:256])
        duration = float(head[244:252])
        labels_end = 256 + ns * 16
        spr_at = 256 + ns * (16 + 80 + 8 * 5 + 80)  # label, transducer, dim, 4 ranges, prefilter
        spr_field = data[spr_at: spr_at + 8 * ns].decode("ascii")
        labels = [data[256 + 16 * i: 256 + 16 * (i + 1)].decode("ascii").strip() for i in range(ns)]
    except (ValueError, UnicodeDecodeError):
        raise SignalInputError(f"{name}: not an EDF file (invalid header).") from None
    if ns <= 0 or header_bytes != 256 * (ns + 1) or labels_end > header_bytes:
        raise SignalInputError(f"{name}: not an EDF file (the header announces {ns} signals in {header_bytes} bytes).")
    if len(data) < header_bytes:
        raise SignalInputError(f"{name}: the file ends inside its header ({len(data)} of {header_bytes} bytes).")
    try:
        spr = [int(spr_field[8 * i: 8 * (i + 1)]) for i in range(ns)]
    except ValueError:
        raise SignalInputError(f"{name}: not an EDF file (invalid signal header).") from None
    if any(v <= 0 for v, lab in zip(spr, labels) if lab != ANNOTATION_LABEL) or sum(spr) <= 0:
        raise SignalInputError(f"{name}: the header gives {min(spr)} samples per data record; every signal needs at "
                               "least one.")
    if not np.isfinite(duration) or duration <= 0:
        raise SignalInputError(f"{name}: the data record duration {duration:g} s is not a positive number.")
    if n_records < -1:
        raise SignalInputError(f"{name}: the header gives {n_records} data records.")
    available = (len(data) - header_bytes) // (2 * sum(spr))
    if n_records > available:
        raise SignalInputError(f"{name}: the header describes {n_records} data records but the file is shorter.")


def read_edf_bytes(data: bytes, name: str = "signal.edf") -> SignalInput:
    """EDF / EDF+ bytes (16-bit samples) -> SignalInput of the preferred ECG lead."""
    if not data:
        raise SignalInputError(f"The file {name} is empty (0 bytes).")
    _check_header(data, name)
    notes: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            edf = edfio.read_edf(bytes(data), lazy_load_data=False)
            signals = [s for s in edf.signals]
            labels = [s.label for s in signals]
            usable = [i for i, lab in enumerate(labels) if lab != ANNOTATION_LABEL]
            if not usable:
                raise SignalInputError(f"{name}: the file holds no signals.")
            pick = _edf_lead(labels, usable)
            chosen = signals[pick]
            p = np.asarray(chosen.data, dtype=np.float64)
            digital = np.asarray(chosen.digital)
            per_record = chosen.samples_per_data_record
            fs = float(chosen.sampling_frequency)
            dim, dmin, dmax = chosen.physical_dimension, chosen.digital_min, chosen.digital_max
            pmin, pmax = chosen.physical_min, chosen.physical_max
    except SignalInputError:
        raise
    except Exception as exc:  # edfio raises several types on corrupt headers
        raise SignalInputError(f"{name}: not a readable EDF file ({type(exc).__name__}: {exc}).".replace("\n", " ")) \
            from None
    if any("Incomplete data record" in str(w.message) for w in caught):
        notes.append("The last, incomplete data record of the EDF file was left out.")
    # Samples outside the header's digital range are not signal: writers pad the last data record with them
    # (wfdb's wfdb_to_edf with -32768). A run of them at the end, at most one data record long, is left out;
    # others are missing samples (filled in when short, refused when long).
    invalid = (digital < min(dmin, dmax)) | (digital > max(dmin, dmax))
    if invalid.any():
        run = int(np.argmax(~invalid[::-1])) if (~invalid).any() else invalid.size
        if 0 < run <= per_record and run < invalid.size:
            p, invalid = p[: p.size - run], invalid[: invalid.size - run]
            notes.append(f"{run} samples padding the last data record (outside the digital range) were left out.")
        p = np.where(invalid, np.nan, p)
    scale = UNIT_TO_MV.get(dim.lower())
    if scale is None:
        notes.append(f"Signal {labels[pick]} is in {dim!r}; read as millivolts.")
        scale = 1.0
    step = abs(pmax - pmin) / abs(dmax - dmin) * scale if dmax != dmin else None
    x, more = validate(p * scale, fs, name, resolution_mv=step)
    return require_quality(SignalInput(Path(name).stem, x, fs, labels[pick], None, notes + more))
