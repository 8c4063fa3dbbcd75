"""Uploaded recordings parsed from bytes: WFDB (== wfdb.rdrecord / rdann), CSV, EDF, and every refusal message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import wfdb
from conftest import MITDB, VFDB
from scipy import signal as sps

from ecg_core.io import signal_io as sio
from ecg_core.io.signal_io import SignalInputError


def record_files(path: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(path.parent.glob(f"{path.name}.*"))}


def csv_bytes(values: np.ndarray, fs: float | None = None, header: str | None = None, fmt: str = "%.5f") -> bytes:
    """One column, or time + value columns when fs is given."""
    lines = [header] if header else []
    if fs is None:
        lines += [fmt % v for v in values]
    else:
        lines += [f"{i / fs:.6f},{fmt % v}" for i, v in enumerate(values)]
    return ("\n".join(lines) + "\n").encode()


def mlii(record: str = "208") -> np.ndarray:
    return wfdb.rdrecord(str(MITDB / record)).p_signal[:, 0]


# ---------------------------------------------------------------- WFDB


@pytest.mark.parametrize("path", [MITDB / "207", MITDB / "114", VFDB / "430"])
def test_wfdb_bytes_equal_rdrecord_and_rdann(path):
    files = record_files(path)
    header = sio.parse_header(files[f"{path.name}.hea"].decode(), "hea")
    signals = sio.read_wfdb_signals(header, {k: v for k, v in files.items() if k.endswith(".dat")}, "hea")
    rec = wfdb.rdrecord(str(path))
    assert header.fs == rec.fs and header.sig_len == rec.sig_len
    np.testing.assert_array_equal(signals, rec.p_signal)

    ann = wfdb.rdann(str(path), "atr")
    ref = sio.read_annotation_bytes(files[f"{path.name}.atr"], "x.atr")
    np.testing.assert_array_equal(ref.sample, ann.sample)
    assert list(ref.symbol) == list(ann.symbol)
    assert list(ref.aux_note) == [str(a or "").replace("\x00", "").strip() for a in ann.aux_note]


@pytest.mark.parametrize("fmt", ["16", "80", "61", "160"])
def test_other_wfdb_formats_equal_rdrecord(tmp_path, fmt):
    src = wfdb.rdrecord(str(MITDB / "232"), physical=False, sampto=5000)
    d, gain, base = src.d_signal, src.adc_gain, src.baseline
    if fmt == "80":  # 8 bits: scale the 11-bit samples down
        d, gain, base = np.clip((d - np.array(base)) // 8, -127, 127), [g / 8 for g in gain], [0] * src.n_sig
    wfdb.wrsamp("rec", fs=src.fs, units=src.units, sig_name=src.sig_name, d_signal=d, fmt=["80" if fmt == "80"
                else "16"] * src.n_sig, adc_gain=gain, baseline=base, write_dir=str(tmp_path))
    if fmt in ("61", "160"):  # wfdb writes neither: derive them from format 16 (big-endian / offset binary)
        raw = np.fromfile(tmp_path / "rec.dat", dtype="<i2")
        new = raw.astype(">i2") if fmt == "61" else (raw.astype(np.int32) + 32768).astype("<u2")
        new.tofile(tmp_path / "rec.dat")
        hea = (tmp_path / "rec.hea").read_text().replace("rec.dat 16 ", f"rec.dat {fmt} ")
        (tmp_path / "rec.hea").write_text(hea)
    files = record_files(tmp_path / "rec")
    header = sio.parse_header(files["rec.hea"].decode())
    assert {s.fmt for s in header.signals} == {fmt}
    signals = sio.read_wfdb_signals(header, files, "rec.hea")
    np.testing.assert_array_equal(signals, wfdb.rdrecord(str(tmp_path / "rec")).p_signal)


def test_wfdb_upload_picks_mlii_and_keeps_reference():
    sig = sio.read_upload(record_files(MITDB / "114"))
    assert sig.lead == "MLII" and sig.fs == 360 and sig.signal.size == 10800
    np.testing.assert_array_equal(sig.signal, wfdb.rdrecord(str(MITDB / "114")).p_signal[:, 1])
    assert sig.reference is not None and len(sig.reference.sample) == 28

    vf = sio.read_upload(record_files(VFDB / "430"))
    assert vf.fs == 250 and vf.lead == "ECG" and "No MLII lead" in vf.notes[0]


def test_read_path_uses_the_same_parser():
    a = sio.read_path(MITDB / "232")
    b = sio.read_upload(record_files(MITDB / "232"))
    np.testing.assert_array_equal(a.signal, b.signal)
    np.testing.assert_array_equal(a.reference.sample, b.reference.sample)


# ---------------------------------------------------------------- CSV


@pytest.mark.parametrize("fs", [250, 500])
def test_csv_one_column_and_time_value(fs):
    x = sps.resample_poly(mlii(), fs, 360)
    one = sio.read_csv_bytes(csv_bytes(x), "one.csv", fs=fs)
    two = sio.read_csv_bytes(csv_bytes(x, fs=fs, header="time,MLII"), "two.csv")
    assert one.fs == fs and two.fs == fs
    np.testing.assert_allclose(one.signal, x, atol=1e-5)
    np.testing.assert_allclose(two.signal, x, atol=1e-5)
    assert two.lead == "MLII" and "taken from the time column" in two.notes[0]


def test_csv_adc_units_semicolons_and_milliseconds():
    x = mlii()[:7200]
    adc = np.round(x * 200 + 1024)
    data = "\n".join(f"{i * 1000 / 360:.4f};{int(v)}" for i, v in enumerate(adc)).encode()
    sig = sio.read_csv_bytes(b"time_ms;value\n" + data, "adc.csv", units="adc", adc_gain=200, adc_baseline=1024)
    assert abs(sig.fs - 360) < 0.01
    np.testing.assert_allclose(sig.signal, (adc - 1024) / 200)


def test_csv_short_gaps_are_filled():
    x = mlii()[:7200].copy()
    x[1000:1010] = np.nan
    sig = sio.read_csv_bytes(csv_bytes(x).replace(b"nan", b""), "gap.csv", fs=360)
    assert np.isfinite(sig.signal).all() and "10 missing samples were filled in" in sig.notes[0]


def test_edf_bytes(tmp_path):
    from wfdb.io.convert.edf import wfdb_to_edf

    wfdb_to_edf(str(VFDB / "430"), output_filename=str(tmp_path / "430.edf"))
    sig = sio.read_upload({"430.edf": (tmp_path / "430.edf").read_bytes()})
    assert sig.fs == 250 and sig.lead == "ECG"
    rec = wfdb.rdrecord(str(VFDB / "430"))
    np.testing.assert_allclose(sig.signal[: rec.sig_len], rec.p_signal[:, 0], atol=1e-9)


# ---------------------------------------------------------------- refusals, each with its exact message


def _mismatched_header() -> dict[str, bytes]:
    files = record_files(MITDB / "208")
    files["208.hea"] = files["208.hea"].replace(b"43200", b"50000")
    return files


def _rate_header(rate: bytes) -> dict[str, bytes]:
    files = record_files(MITDB / "208")
    files["208.hea"] = files["208.hea"].replace(b" 360 ", b" " + rate + b" ")
    return files


NOISE = np.random.default_rng(0).normal(size=7200)

REFUSALS = [
    ("wrong column count", lambda: sio.read_upload({"three.csv": b"0,1,2\n1,2,3\n2,3,4\n"}, fs=360),
     "three.csv: expected 1 column (samples) or 2 columns (time, value), found 3."),
    ("text", lambda: sio.read_upload({"text.csv": csv_bytes(NOISE[:4]) + b"abc\n" + csv_bytes(NOISE)}, fs=360),
     "text.csv: row 5, column 1: 'abc' is not a number."),
    ("NaN run", lambda: sio.read_upload({"gap.csv": csv_bytes(np.r_[NOISE[:1800], np.full(100, np.nan), NOISE])},
                                        fs=360),
     "gap.csv: 100 missing samples in a row at 5.00 s; at most 36 (100 ms) can be filled in."),
    ("flat line", lambda: sio.read_upload({"flat.csv": csv_bytes(np.full(7200, 0.25))}, fs=360),
     "flat.csv: the signal is a flat line (no variation); check the lead and the units."),
    ("too short", lambda: sio.read_upload({"short.csv": csv_bytes(NOISE[:1800])}, fs=360),
     "short.csv: the recording lasts 5.0 s; at least 10 s are needed."),
    ("header/data mismatch", lambda: sio.read_upload(_mismatched_header()),
     "208.dat: the header says 50000 samples per signal but the file holds 43200."),
    ("rate 50 Hz", lambda: sio.read_upload({"slow.csv": csv_bytes(NOISE)}, fs=50),
     "slow.csv: sampling rate 50 Hz is outside 100-1000 Hz."),
    ("rate 5000 Hz", lambda: sio.read_upload({"fast.csv": csv_bytes(NOISE, fs=5000, header="t,v")}),
     "fast.csv: sampling rate 5000 Hz is outside 100-1000 Hz."),
    ("WFDB rate 50 Hz", lambda: sio.read_upload(_rate_header(b"50")),
     "208.hea: sampling rate 50 Hz is outside 100-1000 Hz."),
    ("empty", lambda: sio.read_upload({"empty.csv": b""}, fs=360), "The file empty.csv is empty (0 bytes)."),
    ("empty dat", lambda: sio.read_upload({**record_files(MITDB / "208"), "208.dat": b""}),
     "The file 208.dat is empty (0 bytes)."),
    ("no rate", lambda: sio.read_upload({"norate.csv": csv_bytes(NOISE)}),
     "norate.csv: one column of samples needs the sampling rate (Hz)."),
    ("missing dat", lambda: sio.read_upload({"208.hea": (MITDB / "208.hea").read_bytes()}),
     "208.hea names 208.dat, which was not uploaded; upload it with the header."),
    ("no header", lambda: sio.read_upload({"208.dat": (MITDB / "208.dat").read_bytes()}),
     "A WFDB record needs its .hea header file; none was uploaded."),
    ("uneven time", lambda: sio.read_upload({"uneven.csv": b"t,v\n" + b"".join(  # a 100 ms jump at row 1802
        f"{t:.4f},{v:.3f}\n".encode() for t, v in zip(np.r_[0:1800, 1836:3636] / 360, NOISE))}),
     "uneven.csv: the time column is not evenly spaced "
     "(a step of 102.8 ms before row 1802; the usual step is 2.8 ms)."),
    ("not an annotation file", lambda: sio.read_annotation_bytes(b"abc", "x.atr"),
     "x.atr: not a WFDB annotation file (odd number of bytes)."),
    ("unsupported type", lambda: sio.read_upload({"beat.png": b"\x89PNG"}),
     "beat.png: unsupported file type; upload a WFDB record (.hea + .dat [+ .atr]), a .csv or an .edf file."),
    ("not EDF", lambda: sio.read_upload({"x.edf": b"hello" * 100}), "x.edf: not an EDF file (invalid header)."),
]


@pytest.mark.parametrize("case, call, message", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_have_one_line_messages(case, call, message):
    with pytest.raises(SignalInputError) as exc:
        call()
    assert str(exc.value) == message


def test_recordings_longer_than_24_hours_are_refused():
    with pytest.raises(SignalInputError, match=r"^long.csv: the recording lasts 24.1 h; at most 24 h are accepted.$"):
        sio.validate(np.zeros(int(24.1 * 3600 * 100)), 100.0, "long.csv")
