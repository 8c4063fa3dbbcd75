"""CSV recordings from bytes: one column of samples (the rate must be given), or time (seconds or
milliseconds) + value columns; comma, semicolon, tab or whitespace separated; an optional header row (and
PhysioNet's units row); values in millivolts or ADC units. With a header row, a further column headed V1 is
read beside the lead (a 'V1' beside a time column only is the lead itself), else a second column headed as an
ECG lead (V5 beside MLII: only its QRS width is read). Parsed by pandas from memory, a
chunk of rows at a time, so a long recording costs its numbers, not the parser's copy of the whole text."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ecg_core.io.base import (
    DEFAULT_ADC_GAIN,
    WITHOUT_LEAD2,
    WITHOUT_V1,
    SignalInput,
    SignalInputError,
    check_rate,
    require_quality,
    second_lead_fields,
    validate,
    validate_v1,
)
from ecg_core.signal.signals import PREFERRED_LEAD, is_ecg_lead, is_v1

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


CHUNK_ROWS = 500_000  # rows parsed at a time: the parser's memory stays that of one chunk, not of the file
_NAN_WORDS = ["nan", "na", "null", "none", ""]


@dataclass
class _Table:
    """The parsed columns: numbers (float64, NaN where empty), which cells held anything, and per column the
    first cell that is text (row from the first data row, column index, token) or None."""

    names: list
    numbers: list[np.ndarray]
    given: list[np.ndarray]
    first_bad: list[tuple[int, int, str] | None]


def _parse(data: bytes, name: str, sep: str, decimal: str, has_header: bool, units_row: bool) -> _Table:
    """Parse the CSV in chunks of CHUNK_ROWS rows straight into numeric columns."""
    reader = pd.read_csv(io.BytesIO(data), sep=sep, decimal=decimal, header=0 if has_header else None,
                         skiprows=[1] if units_row else None, skip_blank_lines=False, encoding="utf-8",
                         engine="c", skipinitialspace=True, chunksize=CHUNK_ROWS)
    names: list = []
    numbers: list[list[np.ndarray]] = []
    given: list[list[np.ndarray]] = []
    first_bad: list[tuple[int, int, str] | None] = []
    row0 = 0
    with reader:
        for chunk in reader:
            if not names:
                names = list(chunk.columns)
                numbers, given = [[] for _ in names], [[] for _ in names]
                first_bad = [None] * len(names)
            for j in range(chunk.shape[1]):
                raw = chunk.iloc[:, j]
                num = pd.to_numeric(raw, errors="coerce")
                present = raw.notna().to_numpy()
                if first_bad[j] is None and not pd.api.types.is_numeric_dtype(raw):  # tokens kept as text
                    bad = num.isna().to_numpy() & present  # NaN spellings are missing, other words errors
                    bad &= ~raw.astype(str).str.strip().str.lower().isin(_NAN_WORDS).to_numpy()
                    if bad.any():
                        i = int(np.argmax(bad))
                        first_bad[j] = (row0 + i, j, str(raw.iloc[i]))
                numbers[j].append(num.to_numpy(dtype=np.float64))
                given[j].append(present)
            row0 += chunk.shape[0]
    if not names:
        raise pd.errors.EmptyDataError(name)
    return _Table(names, [np.concatenate(c) for c in numbers], [np.concatenate(g) for g in given], first_bad)


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
    skip = int(has_header) + int(units_row)  # file rows before the first data row
    try:
        table = _parse(data, name, sep, decimal, has_header, units_row)
    except pd.errors.ParserError as exc:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if m:
            raise SignalInputError(
                f"{name}: row {m.group(2)} has {m.group(3)} values where earlier rows have {m.group(1)}.") from None
        raise SignalInputError(f"{name}: not a readable CSV file.") from None
    except UnicodeDecodeError:
        raise SignalInputError(f"{name}: not a readable CSV file.") from None
    except pd.errors.EmptyDataError:
        raise SignalInputError(f"The file {name} holds no data.") from None
    names, cols, given, first_bad = table.names, table.numbers, table.given, table.first_bad
    n_rows = cols[0].size if cols else 0
    if n_rows and cols and not any(g.any() for g in given):
        raise SignalInputError(f"{name}: no sample is a number (every value is empty or NaN).")
    second_col, col_is_v1 = _second_column(table) if has_header else (None, True)  # beside the lead; never refuses
    if has_header:  # a named column without a single number (an unnamed one is a trailing separator)
        for j, (col, g) in enumerate(zip(names, given)):
            if not str(col).startswith("Unnamed:") and not g.any() and j != second_col:
                raise SignalInputError(f"{name}: no sample of column {str(col).strip()!r} is a number "
                                       "(every value is empty or NaN).")
    numbered = [j for j, g in enumerate(given) if g.any()]  # the columns as a reader counts them
    keep = [j for j in numbered if j != second_col]  # trailing separators make empty columns
    names, cols, given = [names[j] for j in keep], [cols[j] for j in keep], [given[j] for j in keep]
    filled = np.flatnonzero(np.logical_or.reduce(given)) if given else np.zeros(0, dtype=np.int64)
    n_rows = int(filled[-1]) + 1 if filled.size else 0  # trailing blank lines (inner ones are gaps)
    cols = [c[:n_rows] for c in cols]
    if len(cols) not in (1, 2):
        also = f" besides {_header(table, second_col)}" if second_col is not None else ""
        raise SignalInputError(
            f"{name}: expected 1 column (samples) or 2 columns (time, value){also}, found {len(cols)}.")
    if n_rows == 0:
        raise SignalInputError(f"The file {name} holds no data.")
    bad = [b for b in first_bad if b is not None and b[0] < n_rows and b[1] in keep]
    if bad:
        i, j, token = min(bad)
        column = numbered.index(j) + 1
        raise SignalInputError(f"{name}: row {i + 1 + skip}, column {column}: {token!r} is not a number.")
    values = cols[-1]
    notes: list[str] = []
    if len(cols) == 2:
        label = str(names[0]).strip("'\" ") if has_header else ""
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
                    f"before row {k + 2 + skip}; the usual step is {usual * 1000:.1f} ms).")
            if fs is not None and abs(fs - fs_time) > 0.01 * fs:
                raise SignalInputError(
                    f"{name}: the given rate {fs:g} Hz disagrees with the time column ({fs_time:.4g} Hz).")
            fs = round(fs_time, 3)
            notes.append(f"Sampling rate {fs:g} Hz taken from the time column"
                         f"{' (milliseconds)' if scale != 1.0 else ' (seconds)'}.")
    if fs is None:
        raise SignalInputError(f"{name}: one column of samples needs the sampling rate (Hz).")
    check_rate(fs, name)
    resolution = None
    if units.lower() == "adc":
        if not np.isfinite(adc_gain) or adc_gain <= 0:
            raise SignalInputError(f"{name}: the ADC gain must be positive.")
        values = _from_adc(values, adc_gain, adc_baseline)
        resolution = 1.0 / adc_gain
    x, more = validate(values, fs, name, resolution_mv=resolution)
    label = str(names[-1]).strip("'\" ") if has_header else "CSV"
    second, second_notes = ({}, []) if second_col is None else _second_samples(
        table, second_col, n_rows, skip, float(fs), units.lower() == "adc", adc_gain, adc_baseline, col_is_v1)
    return require_quality(SignalInput(Path(name).stem, x, float(fs), label, None, notes + more + second_notes,
                                       **second))


def _from_adc(values: np.ndarray, gain: float, baseline: float) -> np.ndarray:
    with np.errstate(over="ignore"):  # a huge value becomes inf, which the range check refuses
        return (values - baseline) / gain


def _looks_like_time(label: str, t: np.ndarray) -> bool:
    """A time or sample-number column: named so, or every value a number and increasing (an ECG never is)."""
    if re.search(r"time|sample|^(t|s|ms)$", label.strip("'\" ").lower()):
        return True
    return t.size > 1 and bool(np.isfinite(t).all()) and bool(np.all(np.diff(t) > 0))


def _header(table: _Table, j: int) -> str:
    return str(table.names[j]).strip("'\" ")


def _v1_column(table: _Table) -> int | None:
    """The column headed V1 (signals.is_v1) when the other columns still hold a lead: read beside it. Alone,
    or beside a time column only, V1 is the lead itself (as before V1 was read)."""
    j = next((k for k in range(len(table.names)) if is_v1(_header(table, k))), None)
    if j is None:
        return None
    rest = [k for k, g in enumerate(table.given) if g.any() and k != j]
    if not rest or (len(rest) == 1 and _looks_like_time(str(table.names[rest[0]]), table.numbers[rest[0]])):
        return None
    return j


def _second_column(table: _Table) -> tuple[int | None, bool]:
    """The column read beside the lead and whether it is V1: the V1 column (_v1_column), else, where two columns
    are headed as ECG leads (signals.is_ecg_lead), the one that is not MLII / II (or the second of them)."""
    j = _v1_column(table)
    if j is not None:
        return j, True
    leads = [k for k in range(len(table.names))
             if table.given[k].any() and is_ecg_lead(_header(table, k)) and not is_v1(_header(table, k))]
    if len(leads) < 2:
        return None, True
    bare = [re.sub(r"[\s_\-]|^(ECG|EKG)", "", _header(table, k).upper()) for k in leads]
    first = next((k for want in (PREFERRED_LEAD, "II") for k, b in zip(leads, bare) if b == want), leads[0])
    return next(k for k in leads if k != first), False


def _second_samples(table: _Table, j: int, n_rows: int, skip: int, fs: float, adc: bool, gain: float,
                    baseline: float, as_v1: bool = True) -> tuple[dict, list[str]]:
    """The V1 (or other second lead's) column in millivolts, checked like the lead: SignalInput fields ({} when
    it cannot be used) and notes."""
    label = _header(table, j)
    without = WITHOUT_V1 if as_v1 else WITHOUT_LEAD2
    bad = table.first_bad[j]
    if bad is not None and bad[0] < n_rows:
        return {}, [f"Lead {label} is not used: row {bad[0] + 1 + skip}: {bad[2]!r} is not a number. {without}"]
    values = table.numbers[j][:n_rows]
    values = _from_adc(values, gain, baseline) if adc else values
    x, notes = validate_v1(values, fs, label, n_rows, 1.0 / gain if adc else None, without)
    return second_lead_fields(x, label, as_v1), notes


