"""Uploaded ECG recordings (WFDB record, CSV, EDF) parsed from bytes in memory, and validated.

Nothing here writes to disk: uploads are parsed from the bytes the browser sent. Every problem with the
input raises SignalInputError whose str() is one line naming the file and the problem.

Supported inputs
- WFDB: `.hea` header + the `.dat` file(s) it names (formats 212, 16, 61, 80, 160; one sample per frame),
  optionally a `.atr` reference annotation file (MIT format, parsed with wfdb's own byte-level functions).
- CSV: one column of samples (the sampling rate must be given), or time (seconds) + value columns; comma,
  semicolon, tab or whitespace separated; an optional header row; values in millivolts or ADC units.
- EDF/EDF+ (16-bit): the lead named like MLII / II if present, else the first ECG-like signal.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from wfdb.io import annotation as wfdb_ann
from wfdb.io.header import parse_header_content, rx_record, rx_signal

from ecg_core.signal.signals import PREFERRED_LEAD, choose_lead

MIN_FS, MAX_FS = 100.0, 1000.0  # Hz
MIN_DURATION_S = 10.0
MAX_DURATION_S = 24 * 3600.0
MAX_GAP_S = 0.1  # runs of missing samples up to this long are filled in by linear interpolation
FLAT_STD_MV = 1e-4  # a signal varying less than this (0.1 microvolt) is a flat line
DEFAULT_ADC_GAIN = 200.0  # ADC units per millivolt (WFDB's default)

WFDB_FORMATS = ("212", "16", "61", "80", "160")
_INVALID_SAMPLE = {"212": -(2**11), "16": -(2**15), "61": -(2**15), "80": -(2**7), "160": -(2**15)}
_UNIT_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "v": 1e3, "nv": 1e-6}
ANNOTATION_EXTENSIONS = ("atr",)


class SignalInputError(ValueError):
    """An uploaded or given signal cannot be used; str(error) is the one-line reason."""


@dataclass
class Reference:
    """Reference annotations at the recording's own sampling rate."""

    sample: np.ndarray  # int64
    symbol: np.ndarray  # object (str)
    aux_note: np.ndarray  # object (str), "" where none


@dataclass
class SignalInput:
    """One lead in millivolts at its own rate, ready for ecg_core.signal.signals.prepare_signal."""

    name: str
    signal: np.ndarray  # float64, millivolts, no NaN
    fs: float
    lead: str
    reference: Reference | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return self.signal.size / self.fs


# ---------------------------------------------------------------- validation shared by all formats

def check_rate(fs: float, name: str) -> float:
    """The sampling rate as float, or SignalInputError when it is outside 100-1000 Hz."""
    if not np.isfinite(fs) or not MIN_FS <= fs <= MAX_FS:
        raise SignalInputError(f"{name}: sampling rate {fs:g} Hz is outside {MIN_FS:g}-{MAX_FS:g} Hz.")
    return float(fs)


def fill_gaps(x: np.ndarray, fs: float, name: str, max_gap_s: float = MAX_GAP_S) -> tuple[np.ndarray, int]:
    """Linearly interpolate runs of NaN up to max_gap_s; a longer run raises. Returns (signal, n filled)."""
    x = np.asarray(x, dtype=np.float64)
    bad = ~np.isfinite(x)
    n_bad = int(bad.sum())
    if n_bad == 0:
        return x, 0
    if n_bad == x.size:
        raise SignalInputError(f"{name}: the signal holds no numeric samples.")
    edges = np.diff(np.concatenate([[0], bad.view(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    lengths = ends - starts
    max_gap = int(round(max_gap_s * fs))
    worst = int(np.argmax(lengths))
    if lengths[worst] > max_gap:
        raise SignalInputError(
            f"{name}: {lengths[worst]} missing samples in a row at {starts[worst] / fs:.2f} s; "
            f"at most {max_gap} ({max_gap_s * 1000:g} ms) can be filled in.")
    good = np.flatnonzero(~bad)
    x = x.copy()
    x[bad] = np.interp(np.flatnonzero(bad), good, x[good])
    return x, n_bad


def validate(x: np.ndarray, fs: float, name: str) -> tuple[np.ndarray, list[str]]:
    """Rate, duration, gaps and flatness checks; returns the gap-filled signal and notes for the user."""
    check_rate(fs, name)
    duration = x.size / fs
    if duration < MIN_DURATION_S:
        raise SignalInputError(
            f"{name}: the recording lasts {duration:.1f} s; at least {MIN_DURATION_S:g} s are needed.")
    if duration > MAX_DURATION_S:
        raise SignalInputError(
            f"{name}: the recording lasts {duration / 3600:.1f} h; at most {MAX_DURATION_S / 3600:g} h are accepted.")
    x, n_filled = fill_gaps(x, fs, name)
    if float(np.std(x)) < FLAT_STD_MV:
        raise SignalInputError(f"{name}: the signal is a flat line (no variation); check the lead and the units.")
    notes = [f"{n_filled} missing samples were filled in by interpolation."] if n_filled else []
    return x, notes


# ---------------------------------------------------------------- WFDB

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


def parse_header(text: str, name: str = "header") -> WfdbHeader:
    """Parse the text of a single-segment WFDB header with wfdb's own line patterns."""
    lines, _ = parse_header_content(text)
    if not lines:
        raise SignalInputError(f"{name}: the header is empty.")
    m = rx_record.match(lines[0])
    if m is None or not m.group("n_sig"):
        raise SignalInputError(f"{name}: invalid record line {lines[0]!r}.")
    if m.group("n_seg"):
        raise SignalInputError(f"{name}: multi-segment records are not supported.")
    n_sig = int(m.group("n_sig"))
    fs = float(m.group("fs")) if m.group("fs") else 250.0  # WFDB's default rate
    sig_len = int(m.group("sig_len")) if m.group("sig_len") else None
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
        gain = float(s.group("adc_gain")) if s.group("adc_gain") else 0.0
        specs.append(SignalSpec(
            file_name=s.group("file_name"),
            fmt=fmt,
            byte_offset=int(s.group("byte_offset") or 0),
            adc_gain=gain if gain != 0 else DEFAULT_ADC_GAIN,
            baseline=int(s.group("baseline")) if s.group("baseline") else adc_zero,
            units=s.group("units") or "mV",
            name=s.group("sig_name").strip() or f"signal {len(specs)}",
        ))
    return WfdbHeader(m.group("record_name"), n_sig, fs, sig_len, specs)


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
    dat_names = {s.file_name for s in header.signals}
    signals = read_wfdb_signals(header, {k: v for k, v in by_name.items() if k in dat_names}, hea)
    check_rate(header.fs, hea)
    idx, fallback = choose_lead([s.name for s in header.signals], preferred_lead)
    lead = header.signals[idx]
    scale = _UNIT_TO_MV.get(lead.units.lower())
    notes = []
    if fallback:
        notes.append(f"No {preferred_lead} lead; using the first lead ({lead.name}).")
    if scale is None:
        notes.append(f"Lead {lead.name} is in {lead.units!r}, not millivolts; read as millivolts.")
        scale = 1.0
    x, more = validate(signals[:, idx] * scale, header.fs, f"{header.record_name}.dat")
    reference = None
    stem = Path(hea).stem
    for ext in ANNOTATION_EXTENSIONS:
        ann_name = f"{stem}.{ext}"
        if ann_name in by_name:
            reference = read_annotation_bytes(by_name[ann_name], ann_name)
    return SignalInput(header.record_name, x, header.fs, lead.name, reference, notes + more)


# ---------------------------------------------------------------- CSV

_HEADER_MS = re.compile(r"(\bms\b|msec|millisec|\(ms\)|_ms\b)", re.IGNORECASE)


def _is_number(token: str) -> bool:
    try:
        float(token)
        return True
    except ValueError:
        return token.strip().lower() in ("", "nan", "na", "null", "none")


def _sniff(lines: list[str]) -> tuple[str, str]:
    """(separator, decimal mark) from the first non-empty lines: ';' with decimal commas, tab, ',', spaces."""
    head = lines[:5]
    for sep in (";", "\t", ","):
        if sep in head[0]:
            comma = sep != "," and any(re.search(r"\d,\d", ln) for ln in head)
            return sep, "," if comma else "."
    return r"\s+", "."


def read_csv_bytes(data: bytes, name: str = "signal.csv", fs: float | None = None, units: str = "mV",
                   adc_gain: float = DEFAULT_ADC_GAIN, adc_baseline: float = 0.0) -> SignalInput:
    """CSV bytes -> SignalInput. One column of samples needs `fs`; time + value columns give their own rate."""
    if not data:
        raise SignalInputError(f"The file {name} is empty (0 bytes).")
    if units.lower() not in ("mv", "adc"):
        raise SignalInputError(f"{name}: units must be 'mV' or 'adc', not {units!r}.")
    try:
        text_head = data[:4096].decode("utf-8-sig")
    except UnicodeDecodeError:
        text_head = data[:4096].decode("latin-1")
    lines = [ln for ln in text_head.splitlines() if ln.strip()]
    if not lines:
        raise SignalInputError(f"The file {name} holds no data.")
    data = data.lstrip(b"\xef\xbb\xbf").lstrip()  # BOM and leading blank lines
    sep, decimal = _sniff(lines)

    def numeric_line(line: str) -> bool:
        cells = [t.strip().strip("'\"") for t in re.split(sep, line.strip())]
        return all(_is_number(t.replace(",", ".") if decimal == "," else t) for t in cells)

    has_header = not numeric_line(lines[0])
    units_row = has_header and len(lines) > 1 and not numeric_line(lines[1])  # e.g. PhysioNet's 'mV' row
    try:
        df = pd.read_csv(io.BytesIO(data), sep=sep, decimal=decimal, header=0 if has_header else None,
                         skiprows=[1] if units_row else None, skip_blank_lines=False, encoding="utf-8",
                         engine="c", skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if m:
            raise SignalInputError(
                f"{name}: row {m.group(2)} has {m.group(3)} values where earlier rows have {m.group(1)}.") from None
        raise SignalInputError(f"{name}: not a readable CSV file.") from None
    except pd.errors.EmptyDataError:
        raise SignalInputError(f"The file {name} holds no data.") from None
    df = df.dropna(axis=1, how="all")  # trailing separators
    filled = np.flatnonzero(df.notna().any(axis=1).to_numpy())
    df = df.iloc[: filled[-1] + 1] if filled.size else df.iloc[:0]  # trailing blank lines (inner ones are gaps)
    if df.shape[1] not in (1, 2):
        raise SignalInputError(
            f"{name}: expected 1 column (samples) or 2 columns (time, value), found {df.shape[1]}.")
    if df.shape[0] == 0:
        raise SignalInputError(f"The file {name} holds no data.")
    cols = []
    for j in range(df.shape[1]):
        raw = df.iloc[:, j]
        num = pd.to_numeric(raw, errors="coerce")
        bad = num.isna() & raw.notna()
        if bad.any():
            if raw.dtype == object:  # tokens pandas kept as text: NaN spellings are missing, others are errors
                bad &= ~raw.astype(str).str.strip().str.lower().isin(["nan", "na", "null", "none", ""])
            if bad.any():
                i = int(np.argmax(bad.to_numpy()))
                row = i + 1 + int(has_header) + int(units_row)
                raise SignalInputError(f"{name}: row {row}, column {j + 1}: {str(raw.iloc[i])!r} is not a number.")
        cols.append(num.to_numpy(dtype=np.float64))
    values = cols[-1]
    notes: list[str] = []
    if len(cols) == 2:
        label = str(df.columns[0]).strip("'\" ") if has_header else ""
        t = cols[0]
        if not np.isfinite(t).all():
            raise SignalInputError(f"{name}: the time column has missing values.")
        steps = np.diff(t)
        is_index = "sample" in label.lower() or (t.size > 1 and np.all(steps == 1) and np.all(t == np.round(t)))
        if is_index:
            if fs is None:
                raise SignalInputError(f"{name}: the first column counts samples; give the sampling rate (Hz).")
        else:
            if t.size < 2 or np.any(steps <= 0):
                raise SignalInputError(f"{name}: the time column does not increase steadily.")
            scale = 1e-3 if _HEADER_MS.search(label) else 1.0
            t = (t - t[0]) * scale
            fs_time = (t.size - 1) / t[-1]
            if abs(fs_time - round(fs_time)) < 1e-3 * fs_time:
                fs_time = float(round(fs_time))
            # regular sampling: every time lies within half a sample period of its place on the grid
            # (times printed with few decimals are fine)
            if np.max(np.abs(t - np.arange(t.size) / fs_time)) > 0.5 / fs_time:
                usual = float(np.median(steps)) * scale
                k = int(np.argmax(np.abs(steps * scale - usual)))
                raise SignalInputError(
                    f"{name}: the time column is not evenly spaced (a step of {steps[k] * scale * 1000:.1f} ms "
                    f"before row {k + 2 + int(has_header) + int(units_row)}; the usual step is {usual * 1000:.1f} ms).")
            if fs is not None and abs(fs - fs_time) > 0.01 * fs:
                raise SignalInputError(
                    f"{name}: the given rate {fs:g} Hz disagrees with the time column ({fs_time:.4g} Hz).")
            fs = round(fs_time, 3)
            notes.append(f"Sampling rate {fs:g} Hz taken from the time column"
                         f"{' (milliseconds)' if scale != 1.0 else ' (seconds)'}.")
    if fs is None:
        raise SignalInputError(f"{name}: one column of samples needs the sampling rate (Hz).")
    check_rate(fs, name)
    if units.lower() == "adc":
        if adc_gain <= 0:
            raise SignalInputError(f"{name}: the ADC gain must be positive.")
        values = (values - adc_baseline) / adc_gain
    x, more = validate(values, fs, name)
    label = str(df.columns[-1]).strip("'\" ") if has_header else "CSV"
    return SignalInput(Path(name).stem, x, float(fs), label, None, notes + more)


# ---------------------------------------------------------------- EDF

def _edf_lead(labels: list[str], usable: list[int]) -> int:
    """Index of lead II (MLII, 'ECG II', 'II'), else of the first ECG/EKG signal, else the first signal."""
    bare = {i: re.sub(r"ECG|EKG|[\s_\-]", "", labels[i].upper()) for i in usable}
    for want in ("MLII", "II"):
        hits = [i for i in usable if bare[i] == want]
        if hits:
            return hits[0]
    hits = [i for i in usable if re.search(r"ECG|EKG", labels[i].upper())]
    return hits[0] if hits else usable[0]


def read_edf_bytes(data: bytes, name: str = "signal.edf") -> SignalInput:
    """EDF / EDF+ bytes (16-bit samples) -> SignalInput of the preferred ECG lead."""
    if not data:
        raise SignalInputError(f"The file {name} is empty (0 bytes).")
    try:
        head = data[:256].decode("ascii")
        if len(data) < 256 or head[:8].strip() != "0":
            raise ValueError
        header_bytes, n_records, rec_dur, ns = int(head[184:192]), int(head[236:244]), float(head[244:252]), \
            int(head[252:256])
        fields = data[256: 256 + ns * 256].decode("ascii")
    except (ValueError, UnicodeDecodeError):
        raise SignalInputError(f"{name}: not an EDF file (invalid header).") from None

    widths = {"label": 16, "transducer": 80, "dim": 8, "pmin": 8, "pmax": 8, "dmin": 8, "dmax": 8,
              "prefilter": 80, "spr": 8, "reserved": 32}
    cols, offset = {}, 0
    for key, width in widths.items():  # each field holds ns values of `width` characters
        cols[key] = [fields[offset + i * width: offset + (i + 1) * width].strip() for i in range(ns)]
        offset += width * ns
    labels, dims = cols["label"], cols["dim"]
    try:
        pmin, pmax, dmin, dmax = ([float(v) for v in cols[k]] for k in ("pmin", "pmax", "dmin", "dmax"))
        spr = [int(v) for v in cols["spr"]]
    except ValueError:
        raise SignalInputError(f"{name}: not an EDF file (invalid signal header).") from None
    record_samples = sum(spr)
    body = len(data) - header_bytes
    if n_records < 0:
        n_records = body // (2 * record_samples)
    if body < n_records * record_samples * 2 or header_bytes != 256 * (ns + 1):
        raise SignalInputError(f"{name}: the header describes {n_records} data records but the file is shorter.")
    usable = [i for i, lab in enumerate(labels) if lab != "EDF Annotations"]
    if not usable:
        raise SignalInputError(f"{name}: the file holds no signals.")
    pick = _edf_lead(labels, usable)
    rec = np.frombuffer(data, dtype="<i2", count=n_records * record_samples, offset=header_bytes)
    rec = rec.reshape(n_records, record_samples)
    start = sum(spr[:pick])
    d = rec[:, start: start + spr[pick]].reshape(-1).astype(np.float64)
    gain = (pmax[pick] - pmin[pick]) / (dmax[pick] - dmin[pick]) if dmax[pick] != dmin[pick] else 1.0
    p = (d - dmin[pick]) * gain + pmin[pick]
    scale = _UNIT_TO_MV.get(dims[pick].lower())
    notes = [] if scale is not None else [f"Signal {labels[pick]} is in {dims[pick]!r}; read as millivolts."]
    fs = spr[pick] / rec_dur if rec_dur > 0 else 0.0
    x, more = validate(p * (scale or 1.0), fs, name)
    return SignalInput(Path(name).stem, x, fs, labels[pick], None, notes + more)


# ---------------------------------------------------------------- dispatch

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
