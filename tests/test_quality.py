"""Signal quality verdict: real excerpts pass, noise, flat lines and clipping do not; full-database calibration."""

from __future__ import annotations

import numpy as np
import pytest
import wfdb
from conftest import MITDB, ROOT, VFDB

from ecg_core.io import signal_io as sio
from ecg_core.signal import quality

SHARED = ROOT.parent / "shared" / "data"


def lead(path, name: str | None = None) -> tuple[np.ndarray, float]:
    rec = wfdb.rdrecord(str(path))
    i = rec.sig_name.index(name) if name else 0
    return rec.p_signal[:, i], float(rec.fs)


@pytest.mark.parametrize("path, name", [(MITDB / "208", "MLII"), (MITDB / "232", "MLII"), (MITDB / "207", "MLII"),
                                        (MITDB / "114", "MLII"), (VFDB / "430", None)])
def test_real_excerpts_are_good(path, name):
    x, fs = lead(path, name)
    q = quality.assess(x, fs)
    assert q.verdict == "good", q.reason
    assert q.readable_share >= 0.9 and "readable" in q.reason and "\n" not in q.note
    assert q.peaks.size > 0.8 * x.size / fs  # at least ~50 beats per minute found


def test_vf_is_not_unreadable():
    """vfdb 430's excerpt holds a VF episode: near-sinusoidal, not peaky, yet a rhythm, not noise."""
    x, fs = lead(VFDB / "430")
    ann = wfdb.rdann(str(VFDB / "430"), "atr")
    starts = [s for s, a in zip(ann.sample, ann.aux_note) if a.strip("\x00") in ("(VF", "(VFL", "(VFIB")]
    assert starts, "the excerpt should hold a VF episode"
    q = quality.assess(x, fs)
    vf = (q.windows["start_s"] * fs >= starts[0])
    assert vf.sum() >= 2
    assert np.median(q.windows["kurtosis"][vf]) < 4.0  # not peaky ...
    reasons = quality.window_reasons(q.windows)
    assert sum(bool(reasons[i]) for i in np.flatnonzero(vf)) <= 0.25 * vf.sum()  # ... but readable


@pytest.mark.parametrize("kind", ["white", "uniform bytes"])
def test_noise_is_unreadable(kind):
    rng = np.random.default_rng(1)
    fs = 360.0
    x = rng.normal(0, 0.5, 60 * 360) if kind == "white" else (rng.integers(0, 4096, 60 * 360) - 2048) / 200
    q = quality.assess(x, fs)
    assert q.verdict == "unreadable" and q.readable_share < 0.1
    assert q.reason.startswith("0 % of the recording is readable (mostly high-frequency noise")


def test_a_flat_stretch_and_a_clipped_stretch_are_located():
    x, fs = lead(MITDB / "208", "MLII")  # 120 s
    x = x.copy()
    x[int(20 * fs): int(40 * fs)] = x[int(20 * fs)]  # electrode off for 20 s
    q = quality.assess(x, fs)
    flat = [s for s in q.segments if s.reason == quality.FLAT]
    assert len(flat) == 1 and 19 <= flat[0].start_s <= 21 and 39 <= flat[0].end_s <= 41
    assert q.verdict == "poor" and 0.75 <= q.readable_share <= 0.85
    assert "20-40 s: flat line" in q.reason

    y, _ = lead(MITDB / "208", "MLII")
    rail = y.max() + 0.2  # the amplifier's limit, never reached by the normal trace
    y = y.copy()
    y[int(60 * fs): int(80 * fs)] += 3.0  # a 3 mV baseline jump drives it into saturation for 20 s
    c = quality.assess(np.minimum(y, rail), fs)
    clipped = [s for s in c.segments if s.reason == quality.CLIPPED]
    assert clipped and clipped[0].start_s <= 61 and clipped[-1].end_s >= 79 and clipped[-1].end_s <= 86


def test_thirty_minutes_are_assessed_as_one_good_recording():
    """A whole 30-minute recording (its speed is measured by `python -m ecg_core bench`, not here)."""
    x, fs = lead(MITDB / "208", "MLII")
    q = quality.assess(np.tile(x, 15), fs)  # 30 min at 360 Hz
    assert q.verdict == "good" and q.readable_share > 0.95


def test_assess_refuses_non_finite_input():
    with pytest.raises(ValueError, match="finite"):
        quality.assess(np.array([0.0, np.nan, 1.0]), 360.0)


def test_require_quality_refuses_an_unreadable_signal_input():
    noise = np.random.default_rng(2).normal(0, 0.3, 30 * 360)
    sig = sio.SignalInput("noise", noise, 360.0, "CSV")
    with pytest.raises(sio.SignalInputError, match=r"^noise: not readable as an ECG: 0 % of the recording is "
                                                   r"readable \(mostly high-frequency noise\)\.$"):
        sio.require_quality(sig)
    good = sio.require_quality(sio.SignalInput("208", lead(MITDB / "208", "MLII")[0], 360.0, "MLII"))
    assert good.quality.verdict == "good" and good.notes[-1].startswith("Signal quality good: 100 % of")
    assert sio.require_quality(good).notes == good.notes  # assessed once


# ---------------------------------------------------------------- the full databases (calibration of the thresholds)


@pytest.mark.slow
def test_every_mitdb_record_is_good_and_vfdb_vf_stays_readable():
    if not (SHARED / "mitdb" / "100.dat").exists() or not (SHARED / "vfdb" / "418.dat").exists():
        pytest.skip(f"the full databases are not in {SHARED}")
    records = sorted(p.stem for p in (SHARED / "mitdb").glob("*.hea"))
    assert len(records) == 48
    unreadable = {}
    for r in records:
        sig = sio.read_path(SHARED / "mitdb" / r)  # the reader itself assesses
        assert sig.quality is not None and sig.quality.verdict == "good", f"{r}: {sig.quality.reason}"
        unreadable[r] = int(sum(bool(w) for w in quality.window_reasons(sig.quality.windows)))
    print("mitdb unreadable 5-s windows:", {r: n for r, n in unreadable.items() if n})
    assert sum(unreadable.values()) < 0.005 * 48 * 361

    vf = noise = vf_bad = noise_bad = 0
    for hea in sorted((SHARED / "vfdb").glob("*.hea")):
        sig = sio.read_path(hea.with_suffix(""))
        ann = wfdb.rdann(str(hea.with_suffix("")), "atr")
        marks = [(s, a.strip("\x00")) for s, a in zip(ann.sample, ann.aux_note) if a.strip("\x00").startswith("(")]
        label = np.full(sig.signal.size, "", dtype=object)
        for (s, a), (e, _) in zip(marks, marks[1:] + [(sig.signal.size, "")]):
            label[s:e] = a
        q = sig.quality
        reasons = quality.window_reasons(q.windows)
        n = int(round(quality.WINDOW_S * sig.fs))
        for start, why in zip((q.windows["start_s"] * sig.fs).astype(int), reasons):
            lab = set(label[start: start + n])
            if len(lab) != 1:
                continue
            lab = lab.pop()
            if lab in ("(VF", "(VFL", "(VFIB"):
                vf += 1
                vf_bad += bool(why)
            elif lab == "(NOISE" and hea.stem != "605":  # 605's 27 'noise' minutes show clean beats in lead 0
                noise += 1
                noise_bad += bool(why)
    print(f"vfdb VF windows unreadable: {vf_bad} of {vf}; NOISE windows (605 aside) unreadable: {noise_bad} of {noise}")
    assert vf_bad <= 0.05 * vf
    assert noise_bad >= 0.2 * noise
