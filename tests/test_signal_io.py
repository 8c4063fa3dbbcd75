"""Uploaded recordings parsed from bytes: WFDB (== wfdb.rdrecord / rdann), CSV, EDF, and every refusal message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import wfdb
from conftest import MITDB, ROOT, VFDB
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


def test_csv_is_parsed_a_chunk_of_rows_at_a_time_with_the_same_result(monkeypatch):
    """Long CSVs are parsed in chunks (bounded parser memory): the chunks join to the same signal, and a word
    or a trailing blank in a later chunk is found at its row of the file."""
    from ecg_core.io import csv_bytes as cb

    x = mlii()[:7200]
    data = csv_bytes(x, fs=360, header="time,MLII")
    whole = sio.read_csv_bytes(data, "a.csv")
    monkeypatch.setattr(cb, "CHUNK_ROWS", 1000)
    chunked = sio.read_csv_bytes(data + b"\n\n", "a.csv")  # blank lines at the end are trimmed
    np.testing.assert_array_equal(chunked.signal, whole.signal)
    assert chunked.fs == whole.fs == 360 and chunked.lead == "MLII"
    lines = data.decode().splitlines()
    lines[5001] = lines[5001].split(",")[0] + ",lead off"  # file row 5002 (the header is row 1)
    with pytest.raises(SignalInputError, match=r"^b.csv: row 5002, column 2: 'lead off' is not a number.$"):
        sio.read_csv_bytes(("\n".join(lines) + "\n").encode(), "b.csv")


def edf_bytes(path: Path, tmp_path: Path) -> bytes:
    """The record as EDF, written by wfdb's converter (it pads the last data record with -32768)."""
    from wfdb.io.convert.edf import wfdb_to_edf

    out = tmp_path / f"{path.name}.edf"
    wfdb_to_edf(str(path), output_filename=str(out))
    return out.read_bytes()


@pytest.mark.parametrize("path, lead", [(VFDB / "430", 0), (MITDB / "207", 0), (MITDB / "114", 1)])
def test_edf_bytes_equal_rdrecord(tmp_path, path, lead):
    sig = sio.read_upload({f"{path.name}.edf": edf_bytes(path, tmp_path)})
    rec = wfdb.rdrecord(str(path))
    assert sig.fs == rec.fs and sig.lead == rec.sig_name[lead] and sig.signal.size == rec.sig_len
    np.testing.assert_allclose(sig.signal, rec.p_signal[:, lead], atol=1e-9)
    assert any("padding the last data record" in n for n in sig.notes)
    assert sig.quality.verdict == "good"


def _edf_with(data: bytes, samples_per_record: bytes | None = None, records: bytes | None = None) -> bytes:
    d = bytearray(data)
    ns = int(d[252:256])
    if records is not None:
        d[236:244] = records.ljust(8)
    if samples_per_record is not None:
        at = 256 + ns * 216
        for i in range(ns):
            d[at + 8 * i: at + 8 * (i + 1)] = samples_per_record.ljust(8)
    return bytes(d)


def test_malformed_edf_counts_get_one_line_messages(tmp_path):
    data = edf_bytes(MITDB / "208", tmp_path)
    cases = [
        (_edf_with(data, b"0", b"-1"),  # was an uncaught ZeroDivisionError
         "x.edf: the header gives 0 samples per data record; every signal needs at least one."),
        (_edf_with(data, b"-5"),
         "x.edf: the header gives -5 samples per data record; every signal needs at least one."),
        (_edf_with(data, records=b"99"), "x.edf: the header describes 99 data records but the file is shorter."),
        (data[:300], "x.edf: the file ends inside its header (300 of 768 bytes)."),
    ]
    for bad, message in cases:
        with pytest.raises(SignalInputError) as exc:
            sio.read_upload({"x.edf": bad})
        assert str(exc.value) == message
    ok = sio.read_upload({"x.edf": _edf_with(data, records=b"-1")})  # -1: 'unknown' (written while recording)
    assert ok.signal.size == 43200


# ---------------------------------------------------------------- refusals, each with its exact message


def _mismatched_header() -> dict[str, bytes]:
    files = record_files(MITDB / "208")
    files["208.hea"] = files["208.hea"].replace(b"43200", b"50000")
    return files


def _rate_header(rate: bytes) -> dict[str, bytes]:
    files = record_files(MITDB / "208")
    files["208.hea"] = files["208.hea"].replace(b" 360 ", b" " + rate + b" ")
    return files


def _header_with(old: bytes, new: bytes) -> dict[str, bytes]:
    files = record_files(MITDB / "208")
    assert old in files["208.hea"]
    files["208.hea"] = files["208.hea"].replace(old, new, 1)
    return files


def _random_dat() -> dict[str, bytes]:
    """208's valid header over random bytes of the right length."""
    files = record_files(MITDB / "208")
    files["208.dat"] = np.random.default_rng(3).integers(0, 256, len(files["208.dat"]), dtype=np.uint8).tobytes()
    return files


GAIN = b"200.0(1024)/mV 12 0 1003"
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
    # headers wfdb's patterns let through to defaults (250 Hz, the file's length)
    ("negative rate", lambda: sio.read_upload(_header_with(b" 360 ", b" -360 ")),
     "208.hea: the sampling rate '-360' is not a positive number of Hz."),
    ("NaN rate", lambda: sio.read_upload(_header_with(b" 360 ", b" nan ")),
     "208.hea: the sampling rate 'nan' is not a positive number of Hz."),
    ("negative sample count", lambda: sio.read_upload(_header_with(b" 43200", b" -43200")),
     "208.hea: the sample count '-43200' is not a whole number of samples."),
    ("NaN gain", lambda: sio.read_upload(_header_with(GAIN, b"nan(1024)/mV 12 0 1003")),
     "208.hea: the ADC gain 'nan(1024)/mV' of signal 1 is not a number."),
    # out of physical range: the flat-line check used to be fooled by an overflowing standard deviation
    ("tiny gain", lambda: sio.read_upload(_header_with(GAIN, b"1e-300(1024)/mV 12 0 1003")),
     "208.dat: the sample at 56.36 s reads 4.67e+302 mV; an ECG stays within +-20 mV "
     "(check the units, the gain and the baseline)."),
    ("huge gain", lambda: sio.read_upload(_header_with(GAIN, b"1e300(1024)/mV 12 0 1003")),
     "208.dat: the signal spans only 8.16e-298 mV peak to peak, less than an ECG amplifier resolves "
     "(20 microvolts); check the units and the gain."),
    ("overflow CSV", lambda: sio.read_upload({"big.csv": b"1e308\n-1e308\n" * 3600}, fs=360),
     "big.csv: the sample at 0.00 s reads 1e+308 mV; an ECG stays within +-20 mV "
     "(check the units, the gain and the baseline)."),
    ("infinite CSV", lambda: sio.read_upload({"inf.csv": csv_bytes(np.r_[NOISE[:10], np.inf, NOISE])}, fs=360),
     "inf.csv: the sample at 0.03 s reads inf mV; an ECG stays within +-20 mV "
     "(check the units, the gain and the baseline)."),
    ("all-NaN CSV", lambda: sio.read_upload({"nan.csv": b"nan\n" * 7200}, fs=360),
     "nan.csv: no sample is a number (every value is empty or NaN)."),
    ("all-NaN value column", lambda: sio.read_upload({"nan2.csv": b"t,v\n" + b"".join(
        f"{i / 360:.5f},\n".encode() for i in range(7200))}),
     "nan2.csv: no sample of column 'v' is a number (every value is empty or NaN)."),
    # a valid header over random bytes: within range, not flat, but no part of it is an ECG
    ("random .dat", lambda: sio.read_upload(_random_dat()),
     "208: not readable as an ECG: 0 % of the recording is readable (mostly high-frequency noise)."),
    ("white-noise CSV", lambda: sio.read_upload({"noise.csv": csv_bytes(NOISE * 0.3)}, fs=360),
     "noise: not readable as an ECG: 0 % of the recording is readable (mostly high-frequency noise)."),
]


@pytest.mark.parametrize("case, call, message", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_have_one_line_messages(case, call, message):
    with pytest.raises(SignalInputError) as exc:
        call()
    assert str(exc.value) == message


def test_recordings_longer_than_24_hours_are_refused():
    with pytest.raises(SignalInputError, match=r"^long.csv: the recording lasts 24.1 h; at most 24 h are accepted.$"):
        sio.validate(np.zeros(int(24.1 * 3600 * 100)), 100.0, "long.csv")


def test_negative_gain_is_read_as_wfdb_does_with_a_note():
    """WFDB allows a negative gain (samples stored inverted): read as wfdb.rdrecord reads it, and said."""
    files = _header_with(GAIN, b"-200.0(1024)/mV 12 0 1003")
    sig = sio.read_upload(files)
    np.testing.assert_array_equal(sig.signal, -mlii())
    assert sig.notes[0] == ("Signal MLII has a negative ADC gain (-200): its samples are turned over as the header "
                            "asks; if the trace looks upside down, check the header.")


def test_a_header_without_rate_says_250_hz_is_assumed():
    files = record_files(MITDB / "208")
    files["208.hea"] = files["208.hea"].replace(b"208 2 360 43200", b"208 2", 1)
    sig = sio.read_upload(files)
    assert sig.fs == 250 and sig.notes[0] == "208.hea gives no sampling rate; WFDB's default of 250 Hz is assumed."


def test_real_excerpt_is_accepted_with_a_good_verdict():
    for path in (MITDB / "208", MITDB / "232", VFDB / "430"):
        sig = sio.read_upload(record_files(path))
        assert sig.quality.verdict == "good" and sig.quality.readable_share >= 0.9
        assert sig.notes[-1].startswith("Signal quality good: ") and sig.reference is not None


@pytest.mark.parametrize("seed", [0, 2, 3])
def test_a_random_annotation_file_is_flagged_not_used(seed):
    files = record_files(MITDB / "208")
    files["208.atr"] = np.random.default_rng(seed).integers(0, 256, 6000, dtype=np.uint8).tobytes()
    sig = sio.read_upload(files)
    assert sig.reference is None
    note = [n for n in sig.notes if n.startswith("208.atr is not used as the reference")]
    assert len(note) == 1 and "agree for only" in note[0] and "\n" not in note[0]


# ---------------------------------------------------------------- the hand decoder against wfdb on the full databases

SHARED = ROOT.parent / "shared" / "data"


@pytest.mark.slow
@pytest.mark.parametrize("db", ["mitdb", "vfdb"])
def test_hand_decoder_equals_rdrecord_on_every_record(db):
    """wfdb reads records only from paths (a memory:// path is made local), so .dat bytes are decoded here."""
    folder = SHARED / db
    records = sorted(p.stem for p in folder.glob("*.hea"))
    if not records:
        pytest.skip(f"{folder} holds no records")
    assert len(records) >= {"mitdb": 48, "vfdb": 20}[db]
    for r in records:
        files = record_files(folder / r)
        header = sio.parse_header(files[f"{r}.hea"].decode(), f"{r}.hea")
        signals = sio.read_wfdb_signals(header, files, f"{r}.hea")
        rec = wfdb.rdrecord(str(folder / r))  # whole records: ~5 s for both databases
        assert header.fs == rec.fs and header.sig_len == rec.sig_len
        assert [s.name for s in header.signals] == rec.sig_name
        np.testing.assert_array_equal(signals, rec.p_signal, err_msg=f"{db} {r}")
