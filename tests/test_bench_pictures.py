"""The picture benchmark: its SNR, alignment, matching and F1 measures against hand computations, the
picture geometry on committed pictures, the choice of segments and beats, and a --quick run end to end on
the committed excerpt (the full database is not needed)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from ecg_core import bench_pictures as bp
from ecg_core.picture import synth

ROOT = Path(__file__).resolve().parent.parent
MITDB = ROOT / "tests" / "data" / "mitdb"
PICTURES = ROOT / "tests" / "data" / "pictures"


@pytest.fixture(scope="module")
def ecg() -> np.ndarray:
    """20 s of real MLII (record 232 of the committed excerpt), mV at 360 Hz, median removed."""
    rec = bp.read_record(MITDB, "232")
    x = rec.signal[3600:3600 + 7200]
    return x - np.median(x)


def _hand_snr(ref: np.ndarray, est: np.ndarray, lag: int) -> float:
    """SNR at a given lag with the offset fitted, written out: est[j] ~ ref[j + lag]."""
    j = np.arange(max(0, -lag), min(est.size, ref.size - lag))
    r, e = ref[j + lag], est[j]
    resid = (r - e) - np.mean(r - e)
    return 10 * math.log10(np.sum(r ** 2) / np.sum(resid ** 2))


# ---------------------------------------------------------------------------------------------- SNR

def test_identical_signals_have_a_very_high_snr(ecg):
    assert bp.snr_db(ecg, ecg).db > 100
    assert bp.snr_db(ecg, ecg).lag == 0
    assert bp.band_snr_db(ecg, ecg).db > 100
    assert bp.broadband_snr_db(ecg + 0.7, ecg - 0.2).db > 100  # medians and offset do not count


@pytest.mark.parametrize("lag", [0, 17, -40, 70])
def test_alignment_recovers_a_known_lag_and_the_hand_snr(ecg, lag):
    rng = np.random.default_rng(1)
    n = 3600
    ref = ecg[200:200 + n + 200]
    est = ref[100 + lag: 100 + lag + n] + 0.25 + rng.normal(0, 0.05, n)  # est[j] = ref[j + 100 + lag]
    s = bp.snr_db(ref, est, centre=100)
    assert s.lag == 100 + lag
    assert s.offset == pytest.approx(-0.25, abs=0.01)
    assert s.db == pytest.approx(_hand_snr(ref, est, 100 + lag), abs=1e-9)
    noise_db = 10 * math.log10(np.mean(ref[100 + lag: 100 + lag + n] ** 2) / 0.05 ** 2)
    assert s.db == pytest.approx(noise_db, abs=0.5)  # and that is about what the noise level says


def test_alignment_searches_only_around_its_centre(ecg):
    ref = ecg[:4000]
    est = ref[300:3300]  # lag 300 = 0.83 s: outside +-0.2 s of 0, found around 300
    assert bp.snr_db(ref, est, centre=0).lag != 300
    far = bp.snr_db(ref, est, centre=0).db
    near = bp.snr_db(ref, est, centre=280)
    assert near.lag == 300 and near.db > 100 and far < 5


def test_a_gain_is_fitted_only_when_asked(ecg):
    est = 0.5 * ecg + 0.1
    with_gain = bp.snr_db(ecg, est, fit_gain=True)
    assert with_gain.db > 100 and with_gain.gain == pytest.approx(2.0)
    without = bp.snr_db(ecg, est)
    half = 0.5 * ecg
    assert without.db == pytest.approx(10 * math.log10(np.sum(ecg ** 2) / np.sum((half - np.mean(half)) ** 2)))
    assert without.db == pytest.approx(6.02, abs=0.05)  # half the amplitude: noise = half the signal


def test_band_snr_ignores_what_the_pipeline_filters_out(ecg):
    t = np.arange(ecg.size) / bp.FS
    est = ecg + 0.3 * np.sin(2 * np.pi * 0.1 * t) + 0.05 * np.sin(2 * np.pi * 100 * t)  # wander + hum
    band, broad = bp.band_snr_db(ecg, est), bp.broadband_snr_db(ecg, est)
    assert band.db > 25 > 10 > broad.db
    wideband_noise = ecg + np.random.default_rng(0).normal(0, 0.05, ecg.size)
    assert bp.band_snr_db(ecg, wideband_noise).db < bp.band_snr_db(ecg, est).db


def test_signals_too_short_to_compare_give_nan(ecg):
    assert math.isnan(bp.band_snr_db(ecg, ecg[:700]).db)  # under 2 s: nothing left after the 1 s cuts
    assert math.isnan(bp.snr_db(ecg, ecg[:2]).db)


# ---------------------------------------------------------------------------------------------- matching, F1

def test_matching_counts_and_edges():
    ref = np.array([1.0, 2.0, 3.0, 4.0])
    det = np.array([1.05, 2.3, 3.0, 3.1, 5.0])
    m = bp.match_times(ref, det)
    assert (m.n_ref, m.n_det, m.n_matched) == (4, 5, 2)
    assert m.ref_to_det == {0: 0, 2: 2}  # the closest detection wins, one to one
    assert m.se == pytest.approx(0.5) and m.ppv == pytest.approx(0.4)
    # beats within 0.2 s of the trace's ends leave both sides: ref 1.0, det 1.05 and 5.0
    e = bp.match_times(ref, det, window=(0.9, 5.1))
    assert (e.n_ref, e.n_det, e.n_matched) == (3, 3, 1)
    assert e.se == pytest.approx(1 / 3) and e.ppv == pytest.approx(1 / 3)
    assert math.isnan(bp.match_times(np.zeros(0), det).se)


def test_matching_tolerance_is_150_ms():
    assert bp.match_times(np.array([1.0]), np.array([1.149])).n_matched == 1
    assert bp.match_times(np.array([1.0]), np.array([1.151])).n_matched == 0


def test_macro_f1_by_hand():
    truth = ["N", "N", "N", "V", "V", "A"]
    pred = ["N", "N", "V", "V", bp.MISSED, "N"]
    # N: tp 2, 3 true, 3 predicted -> 2/3; V: tp 1, 2 true, 2 predicted -> 1/2; A: 0; L, R absent
    assert bp.macro_f1(truth, pred) == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    assert bp.macro_f1(truth, truth) == 1.0
    assert math.isnan(bp.macro_f1([], []))


# ---------------------------------------------------------------------------------------------- geometry

def _drawn(npz: Path) -> synth.Drawn:
    z = np.load(npz)
    return synth.Drawn(data=b"", style=str(z["style"]), fs=float(z["fs"]), signal=z["signal"],
                       r_peaks=z["r_peaks"], symbols=z["symbols"].astype(object), px_per_s=float(z["px_per_s"]),
                       px_per_mv=float(z["px_per_mv"]), x0=float(z["x0"]), baseline_y=float(z["baseline_y"]),
                       rotation_deg=float(z["rotation_deg"]), grid=bool(z["grid"]), layout=str(z["layout"]),
                       homography=z["homography"], width=int(z["width"]), height=int(z["height"]))


@pytest.mark.parametrize("stem", ["paper_red_strip_0_210", "rotated_strip_0_210"])
def test_committed_strip_maps_truth_onto_the_digitizer_axis(stem):
    """Truth and digitized trace line up through the geometry: the lag the geometry predicts is what
    cross-correlation finds, the SNR is that of a good reading, and every annotated beat is detected."""
    from ecg_core.picture.digitize import digitize

    drawn = _drawn(PICTURES / f"{stem}.npz")
    dig = digitize((PICTURES / f"{stem}.png").read_bytes())
    _check_reading(drawn, dig)


def _check_reading(drawn, dig):
    from ecg_core.signal.peaks import detect_beats
    from ecg_core.signal.signals import prepare_signal

    tr = dig.traces[dig.primary]
    scale = bp.frame_scale(drawn, dig)
    lag = bp.geometric_lag(drawn, tr, bp.FS, scale)
    s = bp.band_snr_db(drawn.signal, tr.signal_mv, bp.FS, lag, dig.calibration.px_per_mv is None)
    assert abs(s.lag - lag) <= 5
    assert s.db > 12
    cols = bp.truth_columns(drawn, scale)
    ref_t = bp.picture_times(tr, cols[drawn.r_peaks])
    # a truth sample's time on the digitizer's axis points back at its own column of the picture
    assert np.allclose(tr.picture_x(ref_t), cols[drawn.r_peaks], atol=2.0)
    det_t = tr.t0_s + detect_beats(prepare_signal(tr.signal_mv, tr.fs)) / tr.fs
    ends = bp.picture_times(tr, cols[[0, -1]])
    m = bp.match_times(ref_t, det_t, (ends[0], ends[1]))
    assert m.n_ref >= 8 and m.se == 1.0


def test_a_picture_the_digitizer_reads_reduced_is_mapped_in_its_frame():
    """Pictures over the digitizer's working size are read reduced; its columns are the reduced picture's."""
    from ecg_core.picture.digitize import digitize

    rec = bp.read_record(MITDB, "232")
    start = 7200
    inside = (rec.beats >= start) & (rec.beats < start + 3600)
    drawn = synth.draw(rec.signal[start:start + 3600], rec.fs, "paper_grey", r_peaks=rec.beats[inside] - start,
                       symbols=rec.symbols[inside], seed=2, px_per_mm=9.5)
    dig = digitize(drawn.data)
    assert drawn.width > dig.width  # read reduced: without the frame scale the beats drift by several %
    assert bp.frame_scale(drawn, dig) == pytest.approx(dig.width / drawn.width)
    _check_reading(drawn, dig)


def test_pixel_ceiling_follows_the_pixels_a_picture_has():
    """A paper strip at ~6 px/mm holds the signal almost exactly; the seed-like 192 x 128 strip of 10 s has
    19 columns a second, far too few for the 0.5-40 Hz band; more pixels, a higher ceiling."""
    rec = bp.read_record(MITDB, "232")
    start, n = 3600, 3600
    inside = (rec.beats >= start) & (rec.beats < start + n)
    kw = dict(r_peaks=rec.beats[inside] - start, symbols=rec.symbols[inside], seed=1)
    paper = bp.pixel_ceiling_db(synth.draw(rec.signal[start:start + n], rec.fs, "paper_red", **kw))
    thin = bp.pixel_ceiling_db(synth.draw(rec.signal[start:start + n], rec.fs, "seed_thin", **kw))
    assert paper > 25 and 0 < thin < 12 and paper > thin + 10


def test_beat_crop_makes_the_generator_draw_the_chosen_beat():
    rec = bp.read_record(MITDB, "232")
    rng = np.random.default_rng(0)
    for b in rng.choice(np.arange(5, rec.beats.size - 5), 8, replace=False):
        for seconds in (0.8, 1.6):
            a, e = bp.beat_crop(rec, int(b), seconds)
            inb = (rec.beats >= a) & (rec.beats < e)
            for seed in range(3):
                d = synth.draw(rec.signal[a:e], rec.fs, "paper_grey", r_peaks=rec.beats[inb] - a,
                               symbols=rec.symbols[inb], seed=seed, layout="beat", beat_seconds=seconds)
                centre = rec.beats[b] - a - d.offset
                assert centre in d.r_peaks
                assert abs(centre - d.signal.size / 2) <= 0.06 * rec.fs + 1


def test_strips_are_centred_on_rare_beats_and_beats_favour_rare_classes():
    rec = bp.read_record(MITDB, "232")  # R (most beats) and A
    keys = np.array([bp._key(s) for s in rec.symbols], dtype=object)
    rng = np.random.default_rng(0)
    length = int(bp.STRIP_S * rec.fs)
    starts = bp.choose_strips(rec, 4, rng)
    for s in starts:
        inside = keys[(rec.beats >= s) & (rec.beats < s + length)]
        assert {"A", "R"} & set(inside)
    assert any("A" in keys[(rec.beats >= s) & (rec.beats < s + length)] for s in starts)
    picked = [keys[i] for s in starts for i in bp.choose_beats(rec, s, length, 2, rng)]
    assert picked and set(picked) <= set(bp.F1_CLASSES)


def test_a_record_with_one_rare_beat_still_gives_strips_from_different_parts():
    beats = np.arange(200, 200_000, 300)
    symbols = np.array(["N"] * beats.size, dtype=object)
    symbols[100] = "V"
    rec = bp.RecordData("x", 360.0, np.zeros(200_200), "MLII", beats, symbols)
    length = int(bp.STRIP_S * rec.fs)
    starts = bp.choose_strips(rec, 3, np.random.default_rng(0))
    assert starts[0] <= beats[100] < starts[0] + length
    assert all(abs(a - b) >= length for i, a in enumerate(starts) for b in starts[i + 1:])


# ---------------------------------------------------------------------------------------------- end to end

def test_quick_run_prints_a_table_and_writes_json(tmp_path, capsys):
    from ecg_core.__main__ import main

    out = tmp_path / "bench.json"
    assert main(["bench-pictures", "--mitdb", str(MITDB), "--records", "232", "--quick", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    for needle in ("SNR band", "F1 pic", "dF1", "refused", "Targets", "Wall time", "paper_red", "photo",
                   "10 log10"):
        assert needle in text
    doc = json.loads(out.read_text())
    assert doc["command"].startswith("python -m ecg_core bench-pictures")
    assert [r["style"] for r in doc["rows"]] == list(bp.QUICK_STYLES)
    red = doc["rows"][0]
    assert red["strips"] == 1 and red["beat_pictures"] == 1
    assert red["snr_band_median"] is not None and red["snr_band_median"] > 10
    assert red["se"] is not None and red["se"] > 0.8
    assert red["strip_beats"] >= 8 and red["f1_signal"] is not None
    assert sum(doc["entered"]["strips"].values()) == red["strip_beats"]
    assert len(doc["targets"]) >= 10 and all(isinstance(t["met"], bool) for t in doc["targets"])


def test_a_beat_picture_read_with_its_span_stated():
    """Where no grid calibrates a beat picture, the benchmark also reads it with its true span stated; a
    grid-calibrated picture keeps its own answer."""
    from ecg_core.model import predict
    from ecg_core.model.explain import GradCam
    from ecg_core.picture import synth

    clf = predict.load(None)
    runner = bp.Runner(clf, GradCam(clf.model, clf.info.card.get("last_conv_layer")))
    rec = bp.read_record(MITDB, "232")
    b = 5
    a, e = bp.beat_crop(rec, b, 1.6)
    inb = (rec.beats >= a) & (rec.beats < e)
    drawn = synth.draw(rec.signal[a:e], rec.fs, "no_grid", r_peaks=rec.beats[inb] - a, symbols=rec.symbols[inb],
                       seed=3, layout="beat", beat_seconds=1.6)
    target = int(np.flatnonzero(drawn.r_peaks == int(rec.beats[b]) - a - drawn.offset)[0])
    assert runner.stated_span_label(drawn, target, "grid", "Q") == "Q"
    label = runner.stated_span_label(drawn, target, "assumed", "Q")
    assert label in ("N", "L", "R", "A", "V", "VF")
    out = runner.run(bp.Outcome("232", "no_grid", "beat", a + drawn.offset, 3), drawn, {}, target)
    assert out.stated == [label] and out.calibration != "grid"


def test_refuses_records_outside_ds2_and_unknown_styles(capsys):
    from ecg_core.__main__ import main

    assert main(["bench-pictures", "--mitdb", str(MITDB), "--records", "208"]) == 2
    assert "DS2" in capsys.readouterr().err
    assert main(["bench-pictures", "--mitdb", str(MITDB), "--records", "232", "--styles", "crayon"]) == 2
    assert "crayon" in capsys.readouterr().err
