"""Reading records, lead choice, resampling, filtering, errors that name the file."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import wfdb

from ecg_core.settings import WORKING_FS
from ecg_core.signal import signals
from tests.conftest import MITDB, VFDB


def test_choose_lead_prefers_mlii_by_name():
    assert signals.choose_lead(["MLII", "V1"]) == (0, False)
    assert signals.choose_lead(["V5", "MLII"]) == (1, False)
    assert signals.choose_lead(["V5", "V2"]) == (0, True)
    assert signals.choose_lead(["ECG", "ECG2"]) == (0, True)


def test_record_114_uses_its_second_lead_mlii():
    rec = signals.read_record(MITDB / "114")
    assert rec.lead == "MLII" and not rec.lead_fallback
    raw = wfdb.rdrecord(str(MITDB / "114")).p_signal[:, 1]
    expected = signals.prepare_signal(raw, 360)
    np.testing.assert_allclose(rec.signal, expected, atol=1e-5)


def test_vfdb_record_falls_back_to_lead_0_and_says_so():
    rec = signals.read_record(VFDB / "430")
    assert rec.lead_fallback and rec.lead == "ECG"
    assert any("no MLII lead" in n for n in rec.notes)


def test_vfdb_is_resampled_to_the_working_rate():
    rec = signals.read_record(VFDB / "430")
    n250 = wfdb.rdheader(str(VFDB / "430")).sig_len
    assert rec.fs == WORKING_FS and rec.original_fs == 250
    assert rec.signal.size == pytest.approx(n250 * 360 / 250, abs=2)
    ann = wfdb.rdann(str(VFDB / "430"), "atr")
    np.testing.assert_array_equal(rec.annotations.sample, np.round(ann.sample * 360 / 250).astype(int))


def test_resample_preserves_a_sine():
    t250 = np.arange(0, 10, 1 / 250)
    t360 = np.arange(0, 10, 1 / 360)
    y = signals.resample(np.sin(2 * np.pi * 5 * t250), 250)
    assert y.size == t360.size
    np.testing.assert_allclose(y[100:-100], np.sin(2 * np.pi * 5 * t360)[100:-100], atol=0.02)


def test_bandpass_removes_baseline_wander_and_keeps_qrs_band():
    t = np.arange(0, 20, 1 / WORKING_FS)
    wander = 2.0 * np.sin(2 * np.pi * 0.1 * t)
    qrs_band = np.sin(2 * np.pi * 10 * t)
    y = signals.bandpass(wander + qrs_band)
    core = slice(WORKING_FS * 2, -WORKING_FS * 2)
    assert np.std(y[core] - qrs_band[core]) < 0.1


def test_missing_record_file_names_the_file(tmp_path):
    with pytest.raises(signals.RecordError, match=r"999\.hea: record file not found"):
        signals.read_record(tmp_path / "999")


def test_corrupt_record_names_the_file(tmp_path):
    for ext in ("hea", "atr"):
        shutil.copy(MITDB / f"208.{ext}", tmp_path / f"208.{ext}")
    (tmp_path / "208.dat").write_bytes((MITDB / "208.dat").read_bytes()[:100])
    with pytest.raises(signals.RecordError, match="208"):
        signals.read_record(tmp_path / "208")


def test_missing_annotations_name_the_file(tmp_path):
    for ext in ("hea", "dat"):
        shutil.copy(MITDB / f"208.{ext}", tmp_path / f"208.{ext}")
    with pytest.raises(signals.RecordError, match=r"208\.atr: annotation file not found"):
        signals.read_record(tmp_path / "208")


def test_record_without_usable_lead_is_refused(tmp_path):
    flat = np.zeros((3600, 1), dtype=np.int64)
    wfdb.wrsamp("flat", fs=360, units=["mV"], sig_name=["MLII"], d_signal=flat, fmt=["16"],
                adc_gain=[200.0], baseline=[0], write_dir=str(tmp_path))
    with pytest.raises(signals.RecordError, match="flat.dat: lead 'MLII' has no usable signal"):
        signals.read_record(tmp_path / "flat", with_annotations=False)


def test_zero_phase_is_scipys_sosfiltfilt():
    """The band-pass's own forward-backward pass (one copy fewer, the filter's initial state kept per filter) gives
    scipy's sosfiltfilt numbers exactly, for each filter and length, called again with the same filter too."""
    import scipy.signal as sps

    rng = np.random.default_rng(0)
    for band in ((0.5, 40.0), (5.0, 15.0), (0.5, 40.0)):
        sos = signals.butter_sos(2, band, "bandpass", float(WORKING_FS)).copy()
        for n in (200, 5_000, 100_000):
            x = rng.normal(size=n)
            np.testing.assert_array_equal(signals.zero_phase(sos, x), sps.sosfiltfilt(sos, x))
