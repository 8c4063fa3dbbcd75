"""WFDB records (.hea + .dat [+ .atr]) decoded from bytes in memory.

wfdb-python reads records only from paths (local, PhysioNet or s3/gs/az URLs: a `memory://` path is
turned into a local one by os.path.abspath), so the .dat formats are decoded here with numpy; a test
compares this decoder with wfdb.rdrecord on every MIT-BIH and vfdb record. Header lines are matched with
wfdb's own patterns and their numbers checked strictly (wfdb's patterns let a negative or NaN rate, a
negative sample count or a NaN gain fall through to defaults). Annotations use wfdb's byte-level functions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from wfdb.io import annotation as wfdb_ann
from wfdb.io.header import parse_header_content, rx_record, rx_signal

from ecg_core.classes import BEAT_SYMBOLS
from ecg_core.io.base import (
    DEFAULT_ADC_GAIN,
    UNIT_TO_MV,
    WITHOUT_LEAD2,
    WITHOUT_V1,
    Reference,
    SignalInput,
    SignalInputError,
    check_rate,
    require_quality,
    second_lead_fields,
    validate,
    validate_v1,
)
from ecg_core.signal import quality as signal_quality
from ecg_core.signal.signals import PREFERRED_LEAD, choose_lead, other_lead_index, v1_index

DEFAULT_FS = 250.0  # WFDB's rate when the header gives none
WFDB_FORMATS = ("212", "16", "61", "80", "160")
_INVALID_SAMPLE = {"212": -(2**11), "16": -(2**15), "61": -(2**15), "80": -(2**7), "160": -(2**15)}
ANNOTATION_EXTENSIONS = ("atr",)

_RATE = re.compile(r"^(?P<fs>[^/(]+)(?:/(?P<counter>[^(]*)(?:\((?P<base>[^)]*)\))?)?$")
_GAIN = re.compile(r"^(?P<gain>[^(/]*)(?:\((?P<baseline>[^)]*)\))?(?:/(?P<units>.*))?$")


@dataclass
class SignalSpec:
    """One signal line of a WFDB header."""

    file_name: str
    fmt: str
    byte_offset: int
    adc_gain: float
    baseline: int
    units: str
    name: str


@dataclass
class WfdbHeader:
    record_name: str
    n_sig: int
    fs: float
    sig_len: int | None
    signals: list[SignalSpec]
    notes: tuple[str, ...] = ()


def _number(token: str) -> float | None:
    try:
        v = float(token)
    except ValueError:
        return None
    return v if np.isfinite(v) else None


def parse_header(text: str, name: str = "header") -> WfdbHeader:
    """Parse the text of a single-segment WFDB header with wfdb's own line patterns, numbers checked strictly."""
    lines, _ = parse_header_content(text)
    if not lines:
        raise SignalInputError(f"{name}: the header is empty.")
    m = rx_record.match(lines[0])
    if m is None or not m.group("n_sig"):
        raise SignalInputError(f"{name}: invalid record line {lines[0]!r}.")
    if m.group("n_seg"):
        raise SignalInputError(f"{name}: multi-segment records are not supported.")
    tokens = lines[0].split()
    notes: list[str] = []
    n_sig = int(m.group("n_sig"))
    if len(tokens) > 2:
        r = _RATE.match(tokens[2])
        fs = _number(r.group("fs")) if r else None
        if fs is None or fs <= 0:
            raise SignalInputError(f"{name}: the sampling rate {tokens[2]!r} is not a positive number of Hz.")
    else:
        fs = DEFAULT_FS
        notes.append(f"{name} gives no sampling rate; WFDB's default of {DEFAULT_FS:g} Hz is assumed.")
    sig_len = None
    if len(tokens) > 3:
        if not tokens[3].isdigit():
            raise SignalInputError(f"{name}: the sample count {tokens[3]!r} is not a whole number of samples.")
        sig_len = int(tokens[3])
    if n_sig == 0:
        raise SignalInputError(f"{name}: the record holds no signals.")
    if len(lines) < 1 + n_sig:
        raise SignalInputError(f"{name}: the record line announces {n_sig} signals but {len(lines) - 1} are described.")
    specs = []
    for line in lines[1: 1 + n_sig]:
        s = rx_signal.match(line)
        if s is None or not s.group("fmt"):
            raise SignalInputError(f"{name}: invalid signal line {line!r}.")
        fmt = s.group("fmt")
        if fmt not in WFDB_FORMATS:
            raise SignalInputError(f"{name}: signal format {fmt} is not supported (use {', '.join(WFDB_FORMATS)}).")
        if s.group("samps_per_frame") not in ("", "1") or s.group("skew") not in ("", "0"):
            raise SignalInputError(f"{name}: multi-frequency or skewed signals are not supported.")
        adc_zero = int(s.group("adc_zero")) if s.group("adc_zero") else 0
        sig_name = s.group("sig_name").strip() or f"signal {len(specs)}"
        gain, baseline, units = 0.0, None, ""
        words = line.split()
        if len(words) > 2:
            g = _GAIN.match(words[2])
            gain_value = _number(g.group("gain")) if g and g.group("gain") else None
            if gain_value is None:
                raise SignalInputError(f"{name}: the ADC gain {words[2]!r} of signal {len(specs) + 1} is not a number.")
            gain = gain_value
            if g.group("baseline"):
                try:
                    baseline = int(g.group("baseline"))
                except ValueError:
                    bad = g.group("baseline")
                    raise SignalInputError(
                        f"{name}: the baseline {bad!r} of signal {len(specs) + 1} is not an integer.") from None
            units = g.group("units") or ""
        if gain < 0:  # legal WFDB (the samples were stored inverted); read as wfdb.rdrecord does, and say so
            notes.append(f"Signal {sig_name} has a negative ADC gain ({gain:g}): its samples are turned over as "
                         "the header asks; if the trace looks upside down, check the header.")
        specs.append(SignalSpec(
            file_name=s.group("file_name"),
            fmt=fmt,
            byte_offset=int(s.group("byte_offset") or 0),
            adc_gain=gain if gain != 0 else DEFAULT_ADC_GAIN,
            baseline=baseline if baseline is not None else adc_zero,
            units=units or "mV",
            name=sig_name,
        ))
    return WfdbHeader(m.group("record_name"), n_sig, float(fs), sig_len, specs, tuple(notes))


def _bytes_per_frame(fmt: str, n: int) -> float:
    return {"212": 1.5, "80": 1.0}.get(fmt, 2.0) * n


def decode_dat(data: bytes, fmt: str, n_sig: int, sig_len: int | None, name: str,
               byte_offset: int = 0) -> np.ndarray:
    """Digital samples (sig_len, n_sig) int32 of one .dat file holding n_sig interleaved signals."""
    payload = memoryview(data)[byte_offset:]
    available = int(len(payload) // _bytes_per_frame(fmt, n_sig)) if n_sig else 0
    if sig_len is None:
        sig_len = available
    need_bytes = int(np.ceil(sig_len * _bytes_per_frame(fmt, n_sig)))
    frame_bytes = int(np.ceil(_bytes_per_frame(fmt, n_sig)))
    if len(payload) < need_bytes or len(payload) - need_bytes >= frame_bytes:
        raise SignalInputError(f"{name}: the header says {sig_len} samples per signal but the file holds {available}.")
    n = sig_len * n_sig
    if fmt == "212":
        b = np.frombuffer(payload[:need_bytes], dtype=np.uint8)
        b = np.concatenate([b, np.zeros((-b.size) % 3, dtype=np.uint8)]).astype(np.int32).reshape(-1, 3)
        d = np.empty(b.shape[0] * 2, dtype=np.int32)
        d[0::2] = b[:, 0] + ((b[:, 1] & 0x0F) << 8)
        d[1::2] = b[:, 2] + ((b[:, 1] >> 4) << 8)
        d = d[:n]
        d[d > 2047] -= 4096
    elif fmt == "16":
        d = np.frombuffer(payload[:need_bytes], dtype="<i2").astype(np.int32)
    elif fmt == "61":
        d = np.frombuffer(payload[:need_bytes], dtype=">i2").astype(np.int32)
    elif fmt == "80":
        d = np.frombuffer(payload[:need_bytes], dtype=np.uint8).astype(np.int32) - 128
    else:  # "160"
        d = np.frombuffer(payload[:need_bytes], dtype="<u2").astype(np.int32) - 32768
    return d.reshape(sig_len, n_sig)


def read_wfdb_signals(header: WfdbHeader, dat_files: Mapping[str, bytes], hea_name: str) -> np.ndarray:
    """All signals of a record in physical units (millivolts where the header says mV): (sig_len, n_sig)."""
    out: np.ndarray | None = None
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(header.signals):
        groups.setdefault(s.file_name, []).append(i)
    for file_name, idx in groups.items():
        if file_name not in dat_files:
            raise SignalInputError(f"{hea_name} names {file_name}, which was not uploaded; upload it with the header.")
        specs = [header.signals[i] for i in idx]
        if len({s.fmt for s in specs}) != 1 or len({s.byte_offset for s in specs}) != 1:
            raise SignalInputError(f"{file_name}: signals of one file with different formats are not supported.")
        data = dat_files[file_name]
        if not data:
            raise SignalInputError(f"The file {file_name} is empty (0 bytes).")
        d = decode_dat(data, specs[0].fmt, len(idx), header.sig_len, file_name, specs[0].byte_offset)
        if out is None:
            out = np.empty((d.shape[0], header.n_sig), dtype=np.float64)
        elif d.shape[0] != out.shape[0]:
            raise SignalInputError(f"{file_name}: holds {d.shape[0]} samples per signal, other files {out.shape[0]}.")
        for col, (i, s) in enumerate(zip(idx, specs)):
            with np.errstate(over="ignore"):  # a huge value becomes inf, which the range check refuses
                p = (d[:, col].astype(np.float64) - s.baseline) / s.adc_gain
            p[d[:, col] == _INVALID_SAMPLE[s.fmt]] = np.nan
            out[:, i] = p
    assert out is not None
    return out


def read_annotation_bytes(data: bytes, name: str = "annotations") -> Reference:
    """MIT-format annotation bytes -> Reference, with the same field decoding as wfdb.rdann."""
    if not data:
        raise SignalInputError(f"The file {name} is empty (0 bytes).")
    if len(data) % 2:
        raise SignalInputError(f"{name}: not a WFDB annotation file (odd number of bytes).")
    try:
        filebytes = np.frombuffer(data, dtype="<u1").reshape(-1, 2)
        sample, label_store, subtype, chan, num, aux_note = wfdb_ann.proc_ann_bytes(filebytes, None)
        special, rm_inds = wfdb_ann.get_special_inds(sample, label_store, aux_note)
        _, custom_labels = wfdb_ann.interpret_defintion_annotations(special, aux_note)
        sample, label_store, subtype, chan, num, aux_note = wfdb_ann.rm_empty_indices(
            rm_inds, sample, label_store, subtype, chan, num, aux_note)
        ann = wfdb_ann.Annotation(record_name=Path(name).stem, extension="atr",
                                  sample=np.array(sample, dtype=np.int64),
                                  label_store=np.array(label_store, dtype=int), custom_labels=custom_labels)
        ann.set_label_elements(["symbol"])
    except SignalInputError:
        raise
    except Exception as exc:  # wfdb raises many types on corrupt input
        raise SignalInputError(f"{name}: not a readable WFDB annotation file ({type(exc).__name__}).") from None
    notes = np.array([str(a or "").replace("\x00", "").strip() for a in aux_note], dtype=object)
    return Reference(np.asarray(ann.sample, dtype=np.int64), np.array(ann.symbol, dtype=object), notes)


def reference_note(reference: Reference, sig: SignalInput, ann_name: str) -> str | None:
    """Why the reference is not used, when its beats disagree wildly with the R peaks found in the signal."""
    beats = reference.sample[np.array([s in BEAT_SYMBOLS for s in reference.symbol], dtype=bool)]
    if sig.quality is None:
        return None
    f1 = signal_quality.reference_agreement(beats, sig.quality, sig.fs, sig.signal.size)
    if f1 is None or f1 >= signal_quality.REFERENCE_AGREEMENT_MIN:
        return None
    return (f"{ann_name} is not used as the reference: its {beats.size} beat annotations and the R peaks found "
            f"in the signal agree for only {100 * f1:.0f} % (a file made for this recording agrees for over 90 %).")


def _second_lead(header: WfdbHeader, signals: np.ndarray, first: int) -> tuple[dict, list[str]]:
    """The record's V1 lead in millivolts, else another ECG lead (signals.v1_index, signals.other_lead_index
    decide, as in training), checked like the first: SignalInput fields ({} without one) and notes."""
    names = [s.name for s in header.signals]
    i, as_v1 = v1_index(names, first), True
    if i is None:
        i, as_v1 = other_lead_index(names, first), False
    if i is None:
        return {}, []
    spec = header.signals[i]
    scale = UNIT_TO_MV.get(spec.units.lower())
    notes = [] if scale is not None else [f"Lead {spec.name} is in {spec.units!r}, not millivolts; read as millivolts."]
    scale = 1.0 if scale is None else scale
    x, more = validate_v1(signals[:, i] * scale, header.fs, spec.name, signals.shape[0], scale / abs(spec.adc_gain),
                          WITHOUT_V1 if as_v1 else WITHOUT_LEAD2)
    return second_lead_fields(x, spec.name, as_v1), notes + more


def read_wfdb_bytes(files: Mapping[str, bytes], preferred_lead: str = PREFERRED_LEAD) -> SignalInput:
    """A WFDB record uploaded as {file name: bytes}: one .hea, the .dat file(s) it names, optional .atr."""
    by_name = {Path(k).name: v for k, v in files.items()}
    headers = [k for k in by_name if k.lower().endswith(".hea")]
    if not headers:
        raise SignalInputError("A WFDB record needs its .hea header file; none was uploaded.")
    if len(headers) > 1:
        raise SignalInputError(f"Upload one record at a time: found {len(headers)} .hea files.")
    hea = headers[0]
    if not by_name[hea]:
        raise SignalInputError(f"The file {hea} is empty (0 bytes).")
    try:
        text = by_name[hea].decode("ascii")
    except UnicodeDecodeError:
        raise SignalInputError(f"{hea}: not a WFDB header (not plain ASCII text).") from None
    header = parse_header(text, hea)
    check_rate(header.fs, hea)
    dat_names = {s.file_name for s in header.signals}
    signals = read_wfdb_signals(header, {k: v for k, v in by_name.items() if k in dat_names}, hea)
    idx, fallback = choose_lead([s.name for s in header.signals], preferred_lead)
    lead = header.signals[idx]
    scale = UNIT_TO_MV.get(lead.units.lower())
    notes = list(header.notes)
    if fallback:
        notes.append(f"No {preferred_lead} lead; using the first lead ({lead.name}).")
    if scale is None:
        notes.append(f"Lead {lead.name} is in {lead.units!r}, not millivolts; read as millivolts.")
        scale = 1.0
    x, more = validate(signals[:, idx] * scale, header.fs, lead.file_name, resolution_mv=scale / abs(lead.adc_gain))
    second, second_notes = _second_lead(header, signals, idx)
    del signals  # every lead decoded: not kept while the quality check runs (a 24-hour lead is 250 MB)
    sig = require_quality(SignalInput(header.record_name, x, header.fs, lead.name, None, notes + more + second_notes,
                                      **second))
    stem = Path(hea).stem
    for ext in ANNOTATION_EXTENSIONS:
        ann_name = f"{stem}.{ext}"
        if ann_name in by_name:
            reference = read_annotation_bytes(by_name[ann_name], ann_name)
            why = reference_note(reference, sig, ann_name)
            if why:
                sig.notes.append(why)
            else:
                sig.reference = reference
    return sig
