"""The second lead of a recording: V1 read by every reader where a lead is labelled V1, else another ECG lead whose
QRS width alone is read; prepared and measured exactly as training measures them (dataset.record_features),
carried through an archive's chunks, and said on the page."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import edfio
import numpy as np
import pytest
import wfdb
from conftest import MITDB, VFDB

from ecg_core.data import dataset
from ecg_core.io import signal_io as sio
from ecg_core.pipeline import archive, record_mode
from ecg_core.signal.features import FEATURE_NAMES, LEAD2_FEATURES, ONE_LEAD_MISSING, V1_FEATURES, beat_features
from ecg_core.signal.signals import is_ecg_lead, is_v1, other_lead_index, read_record

HAS_V1, HAS_LEAD2 = FEATURE_NAMES.index("has_v1"), FEATURE_NAMES.index("has_lead2")
# what a beat's own QRS gives, whatever its neighbours: the first lead's QRS and late part, all of V1, the second
# lead's width
OWN_BEAT = ([FEATURE_NAMES.index(n) for n in ("qrs_ms", "qrs_amp_mv", "qrs_polarity", "qrs_late")] + list(V1_FEATURES)
            + list(LEAD2_FEATURES))


class Recorder:
    """The default model, keeping the beat features the recording path hands it."""

    def __init__(self, clf):
        self._clf, self.features = clf, []

    def __getattr__(self, name):
        return getattr(self._clf, name)

    def predict_proba(self, images, features=None):
        self.features.append(features)
        return self._clf.predict_proba(images, features)


@pytest.fixture(scope="module")
def clf():
    from ecg_core.model import predict

    return predict.load(None)


def classify(path: Path, clf) -> tuple[record_mode.RecordResult, np.ndarray]:
    """classify-record's path on a record: its result and the features the model was given."""
    rec = Recorder(clf)
    result = record_mode.classify_signal(sio.read_path(path), rec)
    return result, np.concatenate(rec.features)


def record_files(path: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(path.parent.glob(f"{path.name}.*"))}


def mlii_v1(record: str = "207") -> tuple[np.ndarray, np.ndarray]:
    rec = wfdb.rdrecord(str(MITDB / record))
    return rec.p_signal[:, rec.sig_name.index("MLII")], rec.p_signal[:, rec.sig_name.index("V1")]


# ---------------------------------------------------------------- one source of truth with training

@pytest.mark.parametrize("record", ["207", "232"])
def test_recording_path_measures_v1_as_training_does(clf, record):
    """The features classify-record gives the model are beat_features as dataset.record_features computes them
    (training's read_record, its prepared MLII and V1), for the same beats and R peaks."""
    result, given = classify(MITDB / record, clf)
    assert result.v1_state == "read" and given.shape == (len(result.beats), len(FEATURE_NAMES))
    rec = read_record(MITDB / record, with_annotations=False, second_lead=True)
    assert is_v1(rec.lead2)
    np.testing.assert_array_equal(result.x, rec.signal)
    np.testing.assert_array_equal(result.v1, rec.signal2)
    training = beat_features(rec.signal, result.centres, result.centres, rec.signal2)
    np.testing.assert_array_equal(given, training)
    assert (given[:, HAS_V1] == 1).all() and (given[:, HAS_LEAD2] == 1).all()
    width = [FEATURE_NAMES.index(n) for n in ("lead2_qrs_ms", "v1_qrs_ms")]
    np.testing.assert_array_equal(given[:, width[0]], given[:, width[1]])
    np.testing.assert_array_equal(result.features(np.arange(len(result.beats))), given)  # the page's panel
    # record_features itself: its R peaks also count the beats too near the edges to classify, which only the
    # neighbour-based measures (RR, the neighbours' QRS) can see; every beat's own QRS and V1 are identical
    stored = dataset.record_features(MITDB / record, result.centres)
    np.testing.assert_array_equal(given[:, OWN_BEAT], stored[:, OWN_BEAT])


def test_a_second_lead_that_is_not_v1_gives_its_qrs_width_as_training_reads_it(clf):
    sig = sio.read_path(MITDB / "114")  # V5 and MLII
    assert sig.lead == "MLII" and sig.v1 is None and sig.lead2_label == "V5" and sig.lead2.size == sig.signal.size
    result, given = classify(MITDB / "114", clf)
    assert result.v1 is None and result.v1_state == "absent" and result.lead2_label == "V5"
    assert (given[:, HAS_V1] == 0).all() and (given[:, V1_FEATURES] == 0).all() and (given[:, HAS_LEAD2] == 1).all()
    rec = read_record(MITDB / "114", with_annotations=False, second_lead=True)
    np.testing.assert_array_equal(result.lead2, rec.signal2)
    stored = dataset.record_features(MITDB / "114", result.centres)  # training reads V5's width the same way
    np.testing.assert_array_equal(given[:, OWN_BEAT], stored[:, OWN_BEAT])
    np.testing.assert_array_equal(result.features(np.arange(len(result.beats))), given)  # the page's panel
    widths = given[:, FEATURE_NAMES.index("lead2_qrs_ms")]
    assert 40 < np.median(widths) < 120  # 114's beats are mostly normal
    assert record_mode.leads_line(result) == ("Read MLII, with V5's QRS width (no V1: bundle-branch blocks are "
                                              "told apart less well)")
    one = record_mode.classify_signal(dataclasses.replace(sig, lead2=None, lead2_label=""), clf)
    assert one.lead2 is None and record_mode.leads_line(one) == ("One lead read (MLII, no V1): bundle-branch "
                                                                 "blocks are found less often")


def test_an_unnamed_second_ecg_lead_is_read_as_training_reads_it(clf):
    """vfdb's leads are labelled ECG and ECG2: training measures the second one's width, so the app does too."""
    sig = sio.read_path(VFDB / "430")
    assert sig.v1 is None and sig.lead2_label == "ECG2"
    result, given = classify(VFDB / "430", clf)
    stored = dataset.record_features(VFDB / "430", result.centres)
    assert (stored[:, HAS_LEAD2] == 1).all()
    np.testing.assert_array_equal(given[:, OWN_BEAT], stored[:, OWN_BEAT])


def test_a_model_reading_only_the_picture_leaves_v1_unused():
    class PictureOnly:
        reads_features = False

    sig = sio.read_path(MITDB / "207")
    assert sig.v1 is not None
    assert record_mode.prepare_v1(sig, PictureOnly()) is None
    assert record_mode.v1_state(sig, None) == "unused"


def test_is_v1_reads_labels_as_writers_spell_them():
    for label in ("V1", "v1", " V1 ", "ECG V1", "EKG_V1", "EEG V1", "ECG-V1", "V 1"):
        assert is_v1(label), label
    for label in ("V11", "V5", "MLII", "V1 lead", "II", "", "aVL"):
        assert not is_v1(label), label
    for label in ("V5", "ECG V2", "MLII", "II", "aVL", "EKG-III", "V1"):
        assert is_ecg_lead(label), label
    for label in ("ECG", "ECG2", "EKG 1"):  # an ECG lead whose name is not given (vfdb's ECG, ECG2)
        assert is_ecg_lead(label), label
    for label in ("Resp", "SpO2", "EDF Annotations", "V7", "ABP", "", "ECG V7"):
        assert not is_ecg_lead(label), label
    assert other_lead_index(["MLII", "V5"], 0) == 1 and other_lead_index(["MLII", "V1"], 0) is None
    assert other_lead_index(["MLII", "Resp", "V4"], 0) == 2 and other_lead_index(["MLII", "Resp"], 0) is None


# ---------------------------------------------------------------- readers

def test_wfdb_reader_reads_v1_beside_mlii():
    sig = sio.read_upload(record_files(MITDB / "207"))
    mlii, v1 = mlii_v1("207")
    assert sig.lead == "MLII"
    np.testing.assert_array_equal(sig.signal, mlii)
    np.testing.assert_array_equal(sig.v1, v1)


def test_wfdb_flat_v1_is_left_out_with_a_note(tmp_path):
    src = wfdb.rdrecord(str(MITDB / "232"), physical=False)
    d = src.d_signal.copy()
    d[:, 1] = d[0, 1]  # V1 a flat line: the recording is still read, on MLII
    wfdb.wrsamp("flat", fs=src.fs, units=src.units, sig_name=src.sig_name, d_signal=d, fmt=src.fmt,
                adc_gain=src.adc_gain, baseline=src.baseline, write_dir=str(tmp_path))
    sig = sio.read_path(tmp_path / "flat")
    assert sig.lead == "MLII" and sig.v1 is None
    assert any(n.startswith("Lead V1 is not used: the signal is a flat line") for n in sig.notes), sig.notes


def _edf(signals: list[tuple[str, np.ndarray]], fs: float = 360.0) -> bytes:
    return edfio.Edf([edfio.EdfSignal(x, fs, label=label, physical_dimension="mV", physical_range=(-10.0, 10.0))
                      for label, x in signals]).to_bytes()


def test_edf_reader_reads_v1_labels():
    mlii, v1 = mlii_v1("207")
    n = 360 * 170  # whole data records of one second
    for label in ("V1", "ECG V1", "EEG V1"):
        sig = sio.read_upload({"r.edf": _edf([("ECG II", mlii[:n]), (label, v1[:n])])})
        assert sig.lead == "ECG II" and sig.v1 is not None, label
        np.testing.assert_allclose(sig.v1, v1[:n], atol=20 / 65535)  # one 16-bit step of the +-10 mV range
    other = sio.read_upload({"r.edf": _edf([("ECG II", mlii[:n]), ("ECG V5", v1[:n])])})
    assert other.v1 is None and other.lead2_label == "ECG V5"
    np.testing.assert_allclose(other.lead2, v1[:n], atol=20 / 65535)
    resp = sio.read_upload({"r.edf": _edf([("ECG II", mlii[:n]), ("Resp", v1[:n])])})  # not an ECG lead
    assert resp.v1 is None and resp.lead2 is None


def test_edf_written_by_wfdb_keeps_v1_and_unusable_v1_is_a_note(tmp_path):
    from wfdb.io.convert.edf import wfdb_to_edf

    out = tmp_path / "207.edf"
    wfdb_to_edf(str(MITDB / "207"), output_filename=str(out))
    sig = sio.read_upload({"207.edf": out.read_bytes()})
    mlii, v1 = mlii_v1("207")
    assert sig.lead == "MLII" and sig.v1.size == sig.signal.size == mlii.size
    np.testing.assert_allclose(sig.v1, v1, atol=1e-9)

    n = 360 * 170
    flat = sio.read_upload({"f.edf": _edf([("MLII", mlii[:n]), ("V1", np.zeros(n))])})
    assert flat.v1 is None and any(m.startswith("Lead V1 is not used") for m in flat.notes)


def _csv(header: str, *columns: np.ndarray) -> bytes:
    rows = [",".join(f"{v:.5f}" if np.isfinite(v) else "" for v in row) for row in zip(*columns)]
    return ("\n".join([header, *rows]) + "\n").encode()


def test_csv_reader_reads_a_v1_column():
    mlii, v1 = mlii_v1("207")
    t = np.arange(mlii.size) / 360
    three = sio.read_csv_bytes(_csv("time,MLII,V1", t, mlii, v1), "three.csv")
    assert three.lead == "MLII" and three.fs == 360
    np.testing.assert_allclose(three.signal, mlii, atol=1e-5)
    np.testing.assert_allclose(three.v1, v1, atol=1e-5)
    first = sio.read_csv_bytes(_csv("V1,MLII", v1, mlii), "first.csv", fs=360)  # no time column: --fs
    assert first.lead == "MLII"
    np.testing.assert_allclose(first.v1, v1, atol=1e-5)
    adc = sio.read_csv_bytes(_csv("MLII,V1", mlii * 200 + 1024, v1 * 200 + 1024), "adc.csv", fs=360, units="adc",
                             adc_gain=200, adc_baseline=1024)
    np.testing.assert_allclose(adc.v1, v1, atol=1e-6)
    alone = sio.read_csv_bytes(_csv("time,V1", t, v1), "alone.csv")  # V1 beside time only: it is the lead
    assert alone.lead == "V1" and alone.v1 is None
    np.testing.assert_allclose(alone.signal, v1, atol=1e-5)


def test_csv_unusable_v1_column_is_a_note_not_a_refusal():
    mlii, v1 = mlii_v1("207")
    t = np.arange(mlii.size) / 360
    empty = sio.read_csv_bytes(_csv("time,MLII,V1", t, mlii, np.full(mlii.size, np.nan)), "empty.csv")
    assert empty.v1 is None and any(n.startswith("Lead V1 is not used: no sample is a number") for n in empty.notes)
    flat = sio.read_csv_bytes(_csv("time,MLII,V1", t, mlii, np.full(mlii.size, 0.5)), "flat.csv")
    assert flat.v1 is None and any(n.startswith("Lead V1 is not used: the signal is a flat line") for n in flat.notes)
    gap = v1.copy()
    gap[1000:2000] = np.nan
    long_gap = sio.read_csv_bytes(_csv("time,MLII,V1", t, mlii, gap), "gap.csv")
    assert long_gap.v1 is None and long_gap.lead == "MLII"
    body = _csv("time,MLII,V1", t, mlii, v1).decode().splitlines()
    body[10] = body[10].rsplit(",", 1)[0] + ",off"
    word = sio.read_csv_bytes(("\n".join(body) + "\n").encode(), "word.csv")
    assert word.v1 is None and any(n.startswith("Lead V1 is not used: row 11: 'off' is not a number.")
                                   for n in word.notes), word.notes
    with pytest.raises(sio.SignalInputError, match=r"besides V1, found 3\.$"):
        sio.read_csv_bytes(_csv("time,MLII,V5,V1", t, mlii, v1, v1), "four.csv")


def test_csv_reader_reads_another_lead_column_for_its_width():
    mlii, v1 = mlii_v1("207")
    t = np.arange(mlii.size) / 360
    for header, cols in (("time,MLII,V5", (t, mlii, v1)), ("time,V5,MLII", (t, v1, mlii))):
        sig = sio.read_csv_bytes(_csv(header, *cols), "two.csv")
        assert sig.lead == "MLII" and sig.v1 is None and sig.lead2_label == "V5", header
        np.testing.assert_allclose(sig.signal, mlii, atol=1e-5)
        np.testing.assert_allclose(sig.lead2, v1, atol=1e-5)
    plain = sio.read_csv_bytes(_csv("time,value", t, mlii), "plain.csv")  # one lead, as before
    assert plain.lead2 is None and plain.v1 is None
    flat = sio.read_csv_bytes(_csv("time,II,V4", t, mlii, np.full(mlii.size, 0.5)), "flat.csv")
    assert flat.lead2 is None and flat.lead == "II"
    assert any(n.startswith("Lead V4 is not used: the signal is a flat line")
               and n.endswith("Its QRS width is not read.") for n in flat.notes), flat.notes


# ---------------------------------------------------------------- archive chunks and the page

def test_archive_chunks_carry_v1():
    sig = sio.read_path(MITDB / "207")
    c = archive.Chunk(0, 2, 3600, 36000, 3600, 36000)
    part = archive.chunk_input(sig, c)
    np.testing.assert_array_equal(part.v1, sig.v1[3600:36000])
    assert part.v1.size == part.signal.size
    assert archive.chunk_input(dataclasses.replace(sig, v1=None), c).v1 is None
    other = archive.chunk_input(sio.read_path(MITDB / "114"), c)
    assert other.lead2.size == other.signal.size and other.lead2_label == "V5"
    with pytest.raises(ValueError, match="V1 has"):
        dataclasses.replace(sig, v1=sig.v1[:10])


def test_cli_says_which_leads_were_read(tmp_path, capsys):
    from ecg_core.__main__ import main

    assert main(["classify-record", str(MITDB / "232"), "--out", str(tmp_path / "b.csv")]) == 0
    err = capsys.readouterr().err
    assert "lead MLII with V1" in err
    assert "leads: Read MLII, with V1 for the bundle-branch-block measurements" in err
    assert "reference per class (recall, beats): " in err and "macro F1 " in err


# ------------------------------------------------------------------ V1 over part of a recording (12-lead pages)

def test_v1_known_over_a_stretch_gives_its_beats_their_v1_and_the_rest_one_lead():
    """V1 NaN but over 4 s (a 12-lead page's V1 panel): the beats V1 reaches get V1 measurements close to those of
    the whole V1, every other beat is read as one lead."""
    from ecg_core.settings import WORKING_FS
    from ecg_core.signal.peaks import detect_beats

    sig = sio.read_path(MITDB / "207")
    fs = sig.fs
    part = np.full_like(sig.v1, np.nan)
    a, b = int(20 * fs), int(24 * fs)
    part[a:b] = sig.v1[a:b]
    partial = dataclasses.replace(sig, v1=part)
    from ecg_core.model import predict

    clf = predict.load(None)
    x = record_mode.signals.prepare_signal(sig.signal, fs)
    v1_whole, v1_part = record_mode.prepare_v1(sig, clf), record_mode.prepare_v1(partial, clf)
    assert np.isnan(v1_part).sum() > 0 and not np.isnan(v1_whole).any()
    centres = detect_beats(x)
    centres = centres[(centres > WORKING_FS) & (centres < 40 * WORKING_FS)]
    covers = record_mode.v1_covers(v1_part, centres)
    t = centres / WORKING_FS
    assert covers.any() and np.all((t[covers] >= 20.5) & (t[covers] <= 23.5))
    whole = record_mode.model_features(x, centres, centres, v1=v1_whole)
    part_f = record_mode.model_features(x, centres, centres, v1=v1_part)
    assert np.all(part_f[covers, HAS_V1] == 1) and np.all(part_f[~covers, HAS_V1] == 0)
    assert np.all(part_f[~covers][:, V1_FEATURES] == 0)
    width = FEATURE_NAMES.index("v1_qrs_ms")
    assert np.abs(part_f[covers, width] - whole[covers, width]).max() <= 16  # the filter's edges: a stated tolerance
    first_lead = [i for i in range(len(FEATURE_NAMES)) if i not in set(ONE_LEAD_MISSING.tolist())]
    np.testing.assert_allclose(part_f[:, first_lead], whole[:, first_lead])


def test_a_twelve_lead_page_reads_its_v1_panel_for_the_beats_beside_it():
    from ecg_core.model import predict
    from ecg_core.pipeline.picture import classify_picture

    clf = predict.load(None)
    data = (Path(__file__).parent / "data" / "pictures" / "paper_red_twelve_lead_105.png").read_bytes()
    res = classify_picture(data, clf, "page")
    feats = res.features(np.arange(len(res.beats)))
    covers = record_mode.v1_covers(res.v1, res.centres)
    t = res.beats["time_s"].to_numpy() - res.trace.t0_s
    assert 1 <= covers.sum() <= 3 and np.all((t[covers] > 5.0) & (t[covers] < 7.5))  # the third 2.5 s column
    assert np.array_equal(feats[:, HAS_V1] == 1, covers)
    assert any("V1 read from its panel" in n for n in res.notes)
    alone = classify_picture(data, clf, "page", read_v1=False)
    assert alone.v1 is None and np.all(alone.features(np.arange(len(alone.beats)))[:, HAS_V1] == 0)
    assert len(alone.beats) == len(res.beats)
