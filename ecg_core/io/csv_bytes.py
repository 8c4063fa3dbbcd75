"""CSV recordings from bytes: one column of samples (the rate must be given), or time (seconds or
milliseconds) + value columns; comma, semicolon, tab or whitespace separated; an optional header row (and
PhysioNet's units row); values in millivolts or ADC units. Parsed by pandas from memory."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ecg_core.io.base import DEFAULT_ADC_GAIN, SignalInput, SignalInputError, check_rate, require_quality, validate

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
    if df.shape[0] and df.shape[1] and not df.notna().to_numpy().any():
        raise SignalInputError(f"{name}: no sample is a number (every value is empty or NaN).")
    if has_header:  # a named column without a single number (an unnamed one is a trailing separator)
        for col in df.columns:
            if not str(col).startswith("Unnamed:") and not df[col].notna().any():
                raise SignalInputError(f"{name}: no sample of column {str(col).strip()!r} is a number "
                                       "(every value is empty or NaN).")
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
    resolution = None
    if units.lower() == "adc":
        if not np.isfinite(adc_gain) or adc_gain <= 0:
            raise SignalInputError(f"{name}: the ADC gain must be positive.")
        with np.errstate(over="ignore"):
            values = (values - adc_baseline) / adc_gain
        resolution = 1.0 / adc_gain
    x, more = validate(values, fs, name, resolution_mv=resolution)
    label = str(df.columns[-1]).strip("'\" ") if has_header else "CSV"
    return require_quality(SignalInput(Path(name).stem, x, float(fs), label, None, notes + more))


