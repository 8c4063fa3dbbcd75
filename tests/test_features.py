"""Beat features: RR exact against the annotations, QRS width on known shapes and on real beats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecg_core.classes import SYMBOL_TO_KEY
from ecg_core.settings import WORKING_FS
from ecg_core.signal import features as F
from ecg_core.signal.peaks import detect_beats
from ecg_core.signal.signals import read_record

EXCERPT = Path(__file__).parent / "data" / "mitdb"


@pytest.fixture(scope="module")
def rec208():
    return read_record(EXCERPT / "208", second_lead=True)


def test_rr_exact_against_annotations(rec208):
    s = rec208.annotations.sample
    beats = s[np.array([SYMBOL_TO_KEY.get(x) is not None for x in rec208.annotations.symbol])]
    f = F.rr_features(beats, beats)
    inner = slice(1, -1)
    np.testing.assert_allclose(f[inner, 0], np.diff(beats)[:-1] / WORKING_FS, atol=1e-6)
    np.testing.assert_allclose(f[inner, 1], np.diff(beats)[1:] / WORKING_FS, atol=1e-6)
    rr = np.diff(beats) / WORKING_FS
    np.testing.assert_allclose(f[inner, 4], rr[:-1] / rr[(rr > 0.2) & (rr < 3)].mean(), rtol=1e-5)
    assert f[inner, 6].min() == 1.0 and f[0, 6] == 0.0 and f[-1, 6] == 0.0


@pytest.fixture(scope="module")
def v_and_n(rec208):
    """Features of 208's annotated V and N beats (at the annotations, with the detector's peaks)."""
    a = rec208.annotations
    keys = np.array([SYMBOL_TO_KEY.get(x) for x in a.symbol], dtype=object)
    keep = keys != None  # noqa: E711
    f = F.beat_features(rec208.signal, a.sample[keep], detect_beats(rec208.signal))
    return f[keys[keep] == "V"], f[keys[keep] == "N"]


def test_rr_local_ratio_marks_premature_beats(v_and_n):
    """Annotated V beats in 208 come early: their RR before over the local mean is well below N beats'."""
    v, n = v_and_n
    assert np.median(v[:, 2]) < 0.85 < np.median(n[:, 2])
    assert np.median(v[:, 3]) > np.median(n[:, 3])  # the compensatory pause after


def test_rr_from_detected_peaks_matches_annotations(rec208):
    """With the detector's peaks instead of every annotated beat (208 also holds fusion beats), RR before
    each classified beat is within 30 ms of the annotation-based value for >= 95 % of beats."""
    from ecg_core.classes import BEAT_SYMBOLS

    a = rec208.annotations
    every = a.sample[np.isin(a.symbol.astype(str), list(BEAT_SYMBOLS))]
    beats = a.sample[np.array([SYMBOL_TO_KEY.get(x) is not None for x in a.symbol])]
    ref = F.rr_features(beats, every)
    det = F.rr_features(beats, detect_beats(rec208.signal))
    close = np.abs(det[1:-1, 0] - ref[1:-1, 0]) <= 0.03
    assert close.mean() >= 0.95


@pytest.mark.parametrize("width_ms", [80, 120, 160])
def test_qrs_width_of_a_known_complex(width_ms):
    """A QRS drawn as one sine lobe of known width on a flat line is measured within 16 ms."""
    fs = WORKING_FS
    x = np.zeros(4 * fs, np.float32)
    n = int(round(width_ms / 1000 * fs))
    start = 2 * fs - n // 2
    x[start:start + n] = np.sin(np.linspace(0, np.pi, n)) ** 2
    centre = np.array([start + n // 2])
    on, off = F.qrs_bounds(x, centre)
    dur, amp, pol, _ = F.qrs_shape(x, on, off)
    assert abs(dur[0] - width_ms) <= 16
    assert amp[0] == pytest.approx(1.0, abs=0.05) and pol[0] > 0.9


def test_qrs_width_separates_ventricular_beats(rec208):
    a = rec208.annotations
    keys = np.array([SYMBOL_TO_KEY.get(x) for x in a.symbol], dtype=object)
    keep = keys != None  # noqa: E711
    f = F.beat_features(rec208.signal, a.sample[keep], a.sample[keep])
    assert np.median(f[keys[keep] == "V", 7]) > 1.5 * np.median(f[keys[keep] == "N", 7])


def test_v1_features_only_with_v1(rec208):
    c = rec208.annotations.sample[5:15]
    one = F.beat_features(rec208.signal, c, c)
    two = F.beat_features(rec208.signal, c, c, v1=rec208.signal2)
    assert (one[:, F.V1_FEATURES] == 0).all() and (two[:, 14] == 1).all() and (two[:, 10] > 0).all()
    np.testing.assert_array_equal(F.without_v1(two), one)


def test_second_lead_width_whichever_lead(rec208):
    """The second lead's QRS width: V1's own width where the second lead is V1, measured where it is another lead,
    zero (has_lead2 0) for one lead; a one-lead reading drops it, a reading as another lead keeps only it."""
    c = rec208.annotations.sample[5:40]
    width, has = F.FEATURE_NAMES.index("lead2_qrs_ms"), F.FEATURE_NAMES.index("has_lead2")
    one = F.beat_features(rec208.signal, c, c)
    with_v1 = F.beat_features(rec208.signal, c, c, v1=rec208.signal2)
    other = F.beat_features(rec208.signal, c, c, lead2=rec208.signal2)  # the same samples named, say, V5
    assert (one[:, [width, has]] == 0).all()
    np.testing.assert_array_equal(with_v1[:, width], with_v1[:, F.FEATURE_NAMES.index("v1_qrs_ms")])
    np.testing.assert_array_equal(other[:, width], with_v1[:, width])
    assert (other[:, has] == 1).all() and (other[:, F.V1_FEATURES] == 0).all()
    np.testing.assert_array_equal(other, F.as_other_second_lead(with_v1))
    np.testing.assert_array_equal(F.without_v1(other), one)
    assert F.reading_kind(other).tolist() == F.reading_kind(with_v1).tolist()
    assert 0 not in F.reading_kind(one).tolist()
    # a lead of its own: 208's V1 measured as the second lead differs from its MLII width
    assert not np.array_equal(F.beat_features(rec208.signal, c, c, lead2=rec208.signal)[:, width], other[:, width])


def test_training_drops_second_lead_parts_in_the_stated_shares(rec208):
    from ecg_core.model import train

    c = rec208.annotations.sample[5:45]
    f = np.tile(F.beat_features(rec208.signal, c, c, v1=rec208.signal2), (500, 1))
    dropped = train.drop_features(f, np.random.default_rng(0))
    has_v1, has_lead2 = (dropped[:, F.FEATURE_NAMES.index(n)] > 0.5 for n in ("has_v1", "has_lead2"))
    assert abs((~has_lead2).mean() - train.DROP_V1) < 0.01  # one lead
    assert abs((has_lead2 & ~has_v1).mean() - train.DROP_V1_ONLY) < 0.01  # a second lead other than V1
    assert not (has_v1 & ~has_lead2).any()


def test_lone_beat_and_empty_input():
    f = F.beat_features(np.zeros(3000, np.float32), np.array([1500]), np.array([1500]))
    assert f[0, 6] == 0 and f[0, 0] == F.NEUTRAL_RR_S and f[0, 2] == 1.0
    assert F.beat_features(np.zeros(3000, np.float32), np.zeros(0, np.int64), np.zeros(0)).shape == (0, F.N_FEATURES)
    g = F.without_rr(np.ones((2, F.N_FEATURES), np.float32))
    assert (g[:, 6] == 0).all() and (g[:, 0] == F.NEUTRAL_RR_S).all()


def test_template_features_tell_ectopic_from_sustained_wide_beats(v_and_n):
    """208's V beats are wider than their neighbours' median and shaped unlike it; N beats match theirs."""
    v, n = v_and_n
    assert np.median(v[:, 16]) > 40 > abs(np.median(n[:, 16]))
    assert np.median(n[:, 17]) > 0.9 > 0.75 > np.median(v[:, 17])


def test_lone_beat_is_its_own_template():
    x = np.zeros(3000, np.float32)
    x[1480:1520] = np.hanning(40)
    f = F.beat_features(x, np.array([1500]), np.array([1500]))
    assert f[0, 16] == pytest.approx(0.0, abs=1e-3) and f[0, 17] == pytest.approx(1.0)


@pytest.fixture(scope="module")
def rbbb232():
    """Features of 232's annotated RBBB beats (the excerpt's right bundle-branch block patient, with V1)."""
    rec = read_record(EXCERPT / "232", second_lead=True)
    a = rec.annotations
    keys = np.array([SYMBOL_TO_KEY.get(x) for x in a.symbol], dtype=object)
    r = a.sample[keys == "R"]
    assert r.size >= 20
    return F.beat_features(rec.signal, r, detect_beats(rec.signal), v1=rec.signal2)


def test_v1_width_and_late_r_mark_right_bundle_branch_block(rbbb232, rec208):
    """RBBB widens the QRS in V1 (>= 120 ms by definition) and draws a late R' there; 208's normal beats
    are narrow in V1 with no late R'. Widths of the annotated beats' medians, the app's own peaks."""
    a = rec208.annotations
    n = a.sample[np.array([SYMBOL_TO_KEY.get(x) == "N" for x in a.symbol])]
    normal = F.beat_features(rec208.signal, n, detect_beats(rec208.signal), v1=rec208.signal2)
    col = F.FEATURE_NAMES.index
    assert np.median(rbbb232[:, col("v1_qrs_ms")]) >= 115 > 100 > np.median(normal[:, col("v1_qrs_ms")])
    assert np.median(rbbb232[:, col("v1_late")]) > 0.25 > 0.15 > np.median(normal[:, col("v1_late")])
    assert (F.without_v1(rbbb232)[:, col("v1_late")] == 0).all()


def test_qrs_width_holds_in_a_noisy_low_lead():
    """A low QRS in noise (a weak V1): the noise floor keeps the offset at the complex's end instead of the
    search window's (220 ms), within 24 ms of the drawn 100 ms."""
    fs = WORKING_FS
    rng = np.random.default_rng(0)
    x = (0.03 * rng.standard_normal(6 * fs)).astype(np.float32)
    from ecg_core.signal.signals import bandpass

    x = bandpass(x).astype(np.float32)
    n = int(0.1 * fs)
    centres = np.arange(fs, 5 * fs, fs)
    for c in centres:
        x[c - n // 2: c - n // 2 + n] += 0.25 * np.sin(np.linspace(0, np.pi, n)) ** 2
    on, off = F.qrs_bounds(x, centres)
    dur = (off - on) * 1000 / fs
    assert np.all(np.abs(dur - 100) <= 24), dur


def test_late_qrs_sign():
    """A terminal deflection after the R peak (+40..+100 ms) gives its sign and relative size."""
    fs = WORKING_FS
    x = np.zeros(3 * fs, np.float32)
    c = 500
    x[c - 10: c + 10] = np.hanning(20)
    x[c + 20: c + 40] = 0.5 * np.hanning(20)  # an R' 55-110 ms after the R peak
    assert F.late_qrs(x, np.array([c]))[0] > 0.1
    assert F.late_qrs(-x, np.array([c]))[0] < -0.1


def test_patient_rr_held_constant():
    f = np.arange(2 * F.N_FEATURES, dtype=np.float32).reshape(2, F.N_FEATURES)
    g = F.without_patient_rr(f)
    held = [F.FEATURE_NAMES.index(n) for n in F.PATIENT_FEATURES]
    assert (g[:, held] == F.NEUTRAL_RR_S).all()
    rest = [i for i in range(F.N_FEATURES) if i not in held]
    np.testing.assert_array_equal(g[:, rest], f[:, rest])


def test_a_few_beats_measure_as_in_the_whole_recording(rec208):
    """Features of a few beats (measured on the stretch of signal they read) equal their rows of the whole
    recording's features, at the recording's edges too."""
    peaks = detect_beats(rec208.signal)
    whole = F.beat_features(rec208.signal, peaks, peaks, v1=rec208.signal2)
    for pick in ([0], [1, 2], [len(peaks) // 2], [len(peaks) - 3, len(peaks) - 1]):
        some = F.beat_features(rec208.signal, peaks[pick], peaks, v1=rec208.signal2)
        np.testing.assert_array_equal(some, whole[pick])
    # a centre between beats (a window inside fibrillation) against the same centre among many
    between = (peaks[10:12].sum() // 2)[None]
    among = np.sort(np.concatenate([between, peaks[::7]]))
    row = int(np.searchsorted(among, between[0]))
    np.testing.assert_array_equal(F.beat_features(rec208.signal, between, peaks),
                                  F.beat_features(rec208.signal, among, peaks)[[row]])
