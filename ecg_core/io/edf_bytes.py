"""EDF / EDF+ recordings from bytes, read by edfio (from memory, no file): the lead named like MLII / II
if present, else the first ECG-like signal, else the first signal; and a signal labelled V1 ('V1', 'ECG V1',
signals.is_v1) beside it, else another signal labelled as an ECG lead (signals.other_lead_index).

edfio trusts the header's counts (samples per record 0 divides by zero, a record duration of 0 fails
inside it), so the fixed 256-byte header and the samples-per-record fields are checked here first.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import edfio
import numpy as np

from ecg_core.io.base import (
    UNIT_TO_MV,
    WITHOUT_LEAD2,
    WITHOUT_V1,
    SignalInput,
    SignalInputError,
    require_quality,
    second_lead_fields,
    validate,
    validate_v1,
)
from ecg_core.signal.signals import other_lead_index, v1_index

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


@dataclass
class _Signal:
    """One EDF signal's samples and the header fields they are read with."""

    label: str
    physical: np.ndarray  # float64, as edfio scales it
    digital: np.ndarray
    fs: float
    per_record: int
    dim: str
    digital_range: tuple[int, int]
    physical_range: tuple[float, float]

    @property
    def invalid(self) -> np.ndarray:
        """Samples outside the header's digital range (not signal: writers pad the last data record with them)."""
        lo, hi = min(self.digital_range), max(self.digital_range)
        return (self.digital < lo) | (self.digital > hi)

    def scale_mv(self) -> tuple[float, str | None]:
        """Millivolts per physical unit, and a note when the unit is not a voltage (then read as millivolts)."""
        scale = UNIT_TO_MV.get(self.dim.lower())
        return (1.0, f"Signal {self.label} is in {self.dim!r}; read as millivolts.") if scale is None else (scale, None)

    def step_mv(self, scale: float) -> float | None:
        """One digital step in millivolts (what the amplifier resolves)."""
        (dmin, dmax), (pmin, pmax) = self.digital_range, self.physical_range
        return abs(pmax - pmin) / abs(dmax - dmin) * scale if dmax != dmin else None


def _signal(s) -> _Signal:
    return _Signal(s.label, np.asarray(s.data, dtype=np.float64), np.asarray(s.digital), float(s.sampling_frequency),
                   s.samples_per_data_record, s.physical_dimension, (s.digital_min, s.digital_max),
                   (s.physical_min, s.physical_max))


def _second_lead(signals: list, labels: list[str], usable: list[int], first: int) -> tuple[_Signal | None, bool]:
    """The V1 signal beside the first lead, else another ECG lead (signals.v1_index, signals.other_lead_index
    decide, as in training), or None; and whether it is V1."""
    names = [labels[j] if j in usable else "" for j in range(len(labels))]
    i = v1_index(names, first)
    if i is not None:
        return _signal(signals[i]), True
    i = other_lead_index(names, first)
    return (None if i is None else _signal(signals[i])), False


def _second_samples(lead: _Signal, fs: float, n: int, as_v1: bool = True) -> tuple[dict, list[str]]:
    """V1 (or the other second lead) in millivolts, cut to the first lead's n samples (its padding goes with the
    first lead's) and checked like it: SignalInput fields ({} when it cannot be used) and notes."""
    without = WITHOUT_V1 if as_v1 else WITHOUT_LEAD2
    if lead.fs != fs:
        return {}, [f"Lead {lead.label} is not used: it is sampled at {lead.fs:g} Hz, the first lead at {fs:g} Hz. "
                    f"{without}"]
    scale, note = lead.scale_mv()
    p = np.where(lead.invalid, np.nan, lead.physical)[:n]
    x, notes = validate_v1(p * scale, fs, lead.label, n, lead.step_mv(scale), without)
    return second_lead_fields(x, lead.label, as_v1), ([note] if note else []) + notes


def read_edf_bytes(data: bytes, name: str = "signal.edf") -> SignalInput:
    """EDF / EDF+ bytes (16-bit samples) -> SignalInput of the preferred ECG lead, with V1 when one is labelled so."""
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
            chosen = _signal(signals[pick])
            second_lead, second_is_v1 = _second_lead(signals, labels, usable, pick)
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
    p, invalid = chosen.physical, chosen.invalid
    if invalid.any():
        run = int(np.argmax(~invalid[::-1])) if (~invalid).any() else invalid.size
        if 0 < run <= chosen.per_record and run < invalid.size:
            p, invalid = p[: p.size - run], invalid[: invalid.size - run]
            notes.append(f"{run} samples padding the last data record (outside the digital range) were left out.")
        p = np.where(invalid, np.nan, p)
    scale, unit_note = chosen.scale_mv()
    notes += [unit_note] if unit_note else []
    x, more = validate(p * scale, chosen.fs, name, resolution_mv=chosen.step_mv(scale))
    second, second_notes = ({}, []) if second_lead is None else _second_samples(second_lead, chosen.fs, x.size,
                                                                             second_is_v1)
    return require_quality(SignalInput(Path(name).stem, x, chosen.fs, chosen.label, None, notes + more + second_notes,
                                       **second))
