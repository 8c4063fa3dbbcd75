"""The rhythm-level VF / noise detector on the committed excerpt, its episode rules, scoring and outputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import wfdb
from conftest import MITDB, VFDB

from ecg_core.io import signal_io
from ecg_core.model import rhythm_metrics as rm
from ecg_core.signal import quality, rhythm, signals
from ecg_core.signal.peaks import detect_beats


def run_detector(sig: signal_io.SignalInput) -> rhythm.Rhythm:
    x = signals.prepare_signal(sig.signal, sig.fs)
    q = sig.quality or quality.assess(sig.signal, sig.fs)
    return rhythm.detect(x, detect_beats(x), quality_segments=q.segments)


def reference(path) -> tuple[np.ndarray, np.ndarray]:
    ann = wfdb.rdann(str(path), "atr")
    hdr = wfdb.rdheader(str(path))
    return rhythm.second_labels(ann.sample, np.array(ann.aux_note, dtype=object), hdr.sig_len, hdr.fs)


def covered(episodes, ref: np.ndarray, cls: str) -> float:
    want = ref == rhythm.CLASSES.index(cls)
    return float((rm.flags(episodes, ref.size) & want).sum() / want.sum())


# ---------------------------------------------------------------- the detector on real excerpts


def test_vfdb_430_fibrillation_and_flutter_are_found():
    found = run_detector(signal_io.read_path(VFDB / "430"))
    ref, notes = reference(VFDB / "430")
    assert {"(VFL", "(VF", "(NOISE"} <= set(notes)
    assert covered(found.episodes, ref, "VF") >= 0.9, found.episodes
    assert found.probs.shape == (ref.size, len(rhythm.CLASSES))
    assert np.allclose(found.probs.sum(axis=1), 1.0)


def test_mitdb_207_flutter_is_found_and_its_organised_minutes_are_not():
    found = run_detector(signal_io.read_path(MITDB / "207"))
    ref, _ = reference(MITDB / "207")
    assert covered(found.episodes, ref, "VF") >= 0.9, found.episodes
    organised = ref == rhythm.CLASSES.index("organised")
    assert (rm.flags(found.episodes, ref.size) & organised).sum() <= 0.05 * organised.sum()


@pytest.mark.parametrize("record", ["208", "232"])
def test_organised_excerpts_raise_no_vf(record):
    assert run_detector(signal_io.read_path(MITDB / record)).episodes == []


@pytest.mark.parametrize("kind", ["flat", "clipped"])
def test_flat_or_saturated_stretch_is_noise_with_its_reason_and_never_vf(kind):
    """A VF recording (vfdb 430) whose 30-60 s of flutter are replaced by a dead or saturated amplifier."""
    sig = signal_io.read_path(VFDB / "430")
    y = sig.signal.copy()
    a, b = int(30 * sig.fs), int(60 * sig.fs)
    lo, hi = y.min(), y.max()
    # flat: a dead lead; clipped: the gain jumps eightfold and the amplifier sits on its rails
    y[a:b] = y[a] if kind == "flat" else np.clip(8 * y[a:b], lo, hi)
    found = run_detector(signal_io.SignalInput("430_" + kind, y, sig.fs, sig.lead))
    # a stretch sitting on a rail for whole windows is a flat line to the quality check, which is right too
    reasons = {quality.FLAT} if kind == "flat" else {quality.FLAT, quality.CLIPPED}
    rows = found.noise[found.noise["reason"].isin(reasons)]
    assert len(rows) and rows["start_s"].min() <= 31 and rows["end_s"].max() >= 59, found.noise
    assert not rm.flags(found.episodes, 120)[31:59].any(), found.episodes
    assert rm.flags(found.episodes, 120)[62:92].mean() >= 0.5  # the flutter after it is still VF (mostly)


# ---------------------------------------------------------------- episode rules


def test_runs_join_close_runs_and_drop_short_ones():
    f = np.zeros(40, bool)
    f[2:6] = f[7:9] = True  # one second between: joined (gap <= 2 s)
    f[20:22] = True  # 2 s alone: shorter than MIN_VF_S
    f[30:34] = True  # 4 s, 22 s after the first
    assert rhythm.runs(f) == [(2.0, 9.0), (30.0, 34.0)]
    assert rhythm.runs(f, merge_gap_s=0.0, min_s=1.0) == [(2.0, 6.0), (7.0, 9.0), (20.0, 22.0), (30.0, 34.0)]
    assert rhythm.runs(np.zeros(5, bool)) == []


def test_resolve_vf_beats_model_noise_and_quality_overrides_vf():
    class Seg:
        def __init__(self, a, b, r):
            self.start_s, self.end_s, self.reason = a, b, r

    vf, noise = np.zeros(60, bool), np.zeros(60, bool)
    vf[5:20] = True
    noise[18:30] = True  # its first seconds lie inside the VF episode: they stay VF
    vf[40:50] = True
    episodes, segs = rhythm.resolve(vf, noise, [Seg(38.0, 52.0, quality.FLAT), Seg(0.0, 3.0, quality.HF_NOISE)], 60.0)
    assert episodes == [(5.0, 20.0)]  # the flat line removes the second episode
    assert list(segs.columns) == rhythm.NOISE_COLUMNS
    assert segs.values.tolist() == [[20.0, 30.0, 10.0, rhythm.DETECTOR_REASON], [38.0, 52.0, 14.0, quality.FLAT]]


def test_decide_vf_on_vf_plus_vt_then_noise_on_its_own_threshold():
    p = np.array([[0.6, 0.3, 0.05, 0.05], [0.2, 0.1, 0.1, 0.6], [0.1, 0.45, 0.4, 0.05], [0.3, 0.0, 0.2, 0.5]])
    assert rhythm.decide(p, 0.3, 0.5).tolist() == [1, 3, 1, 3]
    assert rhythm.decide(p, 0.5, 0.55).tolist() == [0, 3, 1, 0]
    assert rhythm.episode_kind(p, 0, 3) == "VF/flutter" and rhythm.episode_kind(p[3:], 0, 1) == "VT"


def test_second_labels_follow_the_rhythm_in_force():
    samples = np.array([0, 250 * 10, 250 * 20])
    ref, notes = rhythm.second_labels(samples, np.array(["(N", "(VFL\x00", "(NOISE"], dtype=object), 250 * 30, 250)
    assert ref.size == 30 and notes[9] == "(N" and notes[10] == "(VFL" and notes[25] == "(NOISE"
    assert set(ref[10:20]) == {rhythm.CLASSES.index("VF")} and set(ref[20:]) == {rhythm.CLASSES.index("noise")}


# ---------------------------------------------------------------- scoring


def test_score_record_counts_seconds_episodes_and_latency():
    ref = np.full(100, rm.ORG)
    ref[20:40] = rm.VF
    ref[60:70] = rm.NOISE
    notes = np.where(ref == rm.ORG, "(N", "").astype(object)
    s = rm.summarise(rm.score_record(ref, notes, episodes=[(23.0, 40.0), (80.0, 84.0)], noise=[(60.0, 66.0)]))
    assert s["vf_episode_se"] == 1.0 and s["vf_episode_ppv"] == 0.5
    assert s["vf_duration_se"] == pytest.approx(17 / 20) and s["onset_latency_median_s"] == 3.0
    assert s["organised_called_vf"] == pytest.approx(4 / 70, abs=1e-4) and s["noise_called_unreadable"] == 0.6
    assert s["sinus_specificity"] == pytest.approx(1 - 4 / 70, abs=1e-4)


# ---------------------------------------------------------------- the stored model


def test_stored_model_round_trips_and_refuses_other_features(tmp_path):
    model = rhythm.load_model()
    assert 0.0 < model.vf_threshold < 1.0 and model.card["command"].startswith("python -m ecg_core train-rhythm")
    p = model.save(tmp_path / "m.json")
    again = rhythm.RhythmModel.from_json(json.loads(p.read_text()))
    x = np.random.default_rng(0).normal(size=(5, len(rhythm.FEATURES)))
    np.testing.assert_allclose(again.predict_proba(x), model.predict_proba(x))
    d = json.loads(p.read_text())
    d["features"] = d["features"][:-1]
    with pytest.raises(ValueError, match="other features"):
        rhythm.RhythmModel.from_json(d)


def test_features_are_one_row_per_second_at_any_length():
    x = signals.prepare_signal(signal_io.read_path(MITDB / "232").signal[: 360 * 7 + 100], 360)
    f = rhythm.features(x, detect_beats(x))
    assert f.shape == (8, len(rhythm.FEATURES)) and np.isfinite(f).all()


# ---------------------------------------------------------------- CLI outputs


def test_classify_record_writes_beats_episodes_and_noise(tmp_path, capsys):
    from ecg_core.__main__ import main
    from ecg_core.pipeline import record_mode

    out, ep, nz = tmp_path / "beats.csv", tmp_path / "episodes.csv", tmp_path / "noise.csv"
    assert main(["classify-record", str(VFDB / "430"), "--out", str(out), "--episodes", str(ep),
                 "--noise", str(nz)]) == 0
    beats, episodes, noise = pd.read_csv(out, keep_default_na=False), pd.read_csv(ep), pd.read_csv(nz)
    assert list(beats.columns) == record_mode.CSV_COLUMNS
    assert list(episodes.columns) == ["start_s", "end_s", "kind"] and len(episodes) >= 1
    assert set(episodes["kind"]) <= {"VF/flutter", "VT"}
    assert list(noise.columns) == rhythm.NOISE_COLUMNS
    assert (beats.loc[beats["in_vf_episode"], "predicted"] == "VF").all()
    assert (beats.loc[beats["in_noise"], "predicted"] == "").all()
    err = capsys.readouterr().err
    assert "rhythm: " in err and "VF episode(s)" in err
    assert main(["classify-record", str(VFDB / "430"), "--out", str(out), "--noise", str(out)]) == 2
    assert "--out and --noise name the same file" in capsys.readouterr().err
