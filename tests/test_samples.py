"""The bundled sample recordings: test patients only, small, read exactly as uploads, regenerable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecg_core.data.dataset import DS2, VFDB_TEST
from ecg_core.io import samples
from ecg_core.io.signal_io import read_upload

SHARED = Path("/work/shared/data")
MAX_BYTES = 3_000_000


def test_manifest_names_test_patients_and_every_file():
    found = samples.list_samples()
    assert len(found) >= 6
    for s in found:
        assert s.record in (DS2 if s.database == "mitdb" else VFDB_TEST), s.key
        assert 120 <= s.duration_s <= 300
        assert all((samples.SAMPLES_DIR / f).is_file() for f in s.files)
        assert {Path(f).suffix for f in s.files} == {".hea", ".dat", ".atr"}
    covered = {k for s in found for k in s.classes}
    assert covered == {"N", "L", "R", "A", "V", "VF"}
    assert any(s.record == "105" for s in found)  # the noisy stretch


def test_samples_are_small():
    total = sum(p.stat().st_size for p in samples.SAMPLES_DIR.iterdir())
    assert total < MAX_BYTES, total
    for s in samples.list_samples():
        assert "212" in (samples.SAMPLES_DIR / f"{s.key}.hea").read_text().split("\n")[1]


def test_readme_holds_attribution_and_command():
    text = (samples.SAMPLES_DIR / "README.md").read_text()
    for needle in ("Moody", "Greenwald", "Goldberger", "Open Data Commons Attribution License v1.0",
                   samples.EXPORT_COMMAND):
        assert needle in text


@pytest.mark.parametrize("sample", samples.list_samples(), ids=lambda s: s.key)
def test_every_sample_reads_like_an_upload(sample):
    sig = read_upload(samples.sample_files(sample))
    assert sig.name == sample.key
    assert sig.duration_s == pytest.approx(sample.duration_s, abs=0.01)
    assert sig.reference is not None  # the reference annotations are used
    assert sig.fs == (360.0 if sample.database == "mitdb" else 250.0)


def test_unknown_or_missing_sample_is_one_line(tmp_path):
    with pytest.raises(samples.SampleError, match="No bundled sample recording named 'nope'"):
        samples.sample_files("nope")
    assert samples.list_samples(tmp_path) == []
    (tmp_path / samples.MANIFEST).write_text("{not json")
    with pytest.raises(samples.SampleError) as exc:
        samples.list_samples(tmp_path)
    assert "\n" not in str(exc.value)


@pytest.mark.skipif(not (SHARED / "mitdb").is_dir(), reason="the full databases are not here")
def test_excerpt_is_the_source_record_and_regenerates_byte_identical(tmp_path):
    import wfdb

    s = samples.sample_by_key("mitdb_214_80s")
    src = wfdb.rdrecord(str(SHARED / "mitdb" / s.record), sampfrom=int(s.start_s * 360), sampto=int(s.start_s * 360)
                        + 3600, physical=False)
    cut = wfdb.rdrecord(str(samples.SAMPLES_DIR / s.key), sampto=3600, physical=False)
    np.testing.assert_array_equal(src.d_signal, cut.d_signal)
    ann = wfdb.rdann(str(samples.SAMPLES_DIR / s.key), "atr")
    ref = wfdb.rdann(str(SHARED / "mitdb" / s.record), "atr", sampfrom=int(s.start_s * 360),
                     sampto=int((s.start_s + s.duration_s) * 360) - 1)
    beats = [i for i, sym in enumerate(ann.symbol) if sym != "+"]
    assert [ann.symbol[i] for i in beats] == [sym for sym in ref.symbol if sym != "+"]

    samples.export(SHARED / "mitdb", SHARED / "vfdb", tmp_path, [e for e in samples.EXCERPTS if e[1] in ("214", "609")])
    for name in ("mitdb_214_80s.hea", "mitdb_214_80s.dat", "mitdb_214_80s.atr", "vfdb_609_960s.atr"):
        assert (tmp_path / name).read_bytes() == (samples.SAMPLES_DIR / name).read_bytes(), name


def test_export_refuses_a_training_record(tmp_path):
    with pytest.raises(ValueError, match="not a test-split record"):
        samples.export(tmp_path, tmp_path, tmp_path, [("mitdb", "208", 0, 120, "PVCs", "a training patient")])
