"""The picture pipeline end to end: a digitized strip goes through the recordings' own beat detection and model,
a lone beat gives one beat, two stacked strips feed a two-lead model, and the result maps back onto the picture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ecg_core.classes import CLASS_KEYS
from ecg_core.io.signal_io import SignalInput
from ecg_core.model import predict
from ecg_core.picture.digitize import DigitizeError, digitize
from ecg_core.pipeline import record_mode
from ecg_core.pipeline.picture import PAD_S, SPAN_FACTORS, classify_picture
from ecg_core.signal import signals
from ecg_core.signal.beats import pad_with_baseline, stretched_index

ROOT = Path(__file__).resolve().parent.parent
PICTURES = ROOT / "sample_images" / "pictures"
DATA = ROOT / "tests" / "data" / "pictures"


@pytest.fixture(scope="module")
def clf():
    return predict.load()


def test_strip_beats_are_the_signal_paths_beats(clf):
    """The same probabilities as the digitized trace classified as a recording (padded the same way)."""
    data = (PICTURES / "normal_paper_red_strip.png").read_bytes()
    res = classify_picture(data, clf, "strip")
    tr = digitize(data).traces[0]
    pad = int(round(PAD_S * 360))
    edge = int(0.2 * 360)
    padded = np.concatenate([np.full(pad, np.median(tr.signal_mv[:edge])), tr.signal_mv,
                             np.full(pad, np.median(tr.signal_mv[-edge:]))])
    rec = record_mode.classify_signal(SignalInput("strip", padded, 360.0, "II"), clf)
    inside = (rec.centres >= pad) & (rec.centres < pad + tr.signal_mv.size)
    assert len(res.beats) == int(inside.sum()) >= 10
    assert np.allclose(res.beats[list(CLASS_KEYS)].to_numpy(), rec.beats[list(CLASS_KEYS)].to_numpy()[inside])
    # beat times are measured from the picture's left edge and land on the trace in the picture
    assert np.allclose(res.beats["time_s"], tr.t0_s + (rec.centres[inside] - pad) / 360, atol=1e-3)
    assert np.all(np.abs(res.beats["x_px"] - tr.picture_x(res.beats["time_s"])) < 1.0)


class KeepsInputs:
    """The default model, keeping the pictures and features it is given."""

    def __init__(self, model):
        self._model, self.images, self.features = model, [], []

    def __getattr__(self, name):
        return getattr(self._model, name)

    def predict_proba(self, images, features=None):
        self.images.append(images)
        self.features.append(features)
        return self._model.predict_proba(images, features)


def test_a_strip_beats_explanation_reads_the_inputs_it_was_classified_from(clf):
    """A strip's beat picture and features made again for its explanation are those the model classified,
    the first and last beats included (their templates and RR come from the same peaks)."""
    keeps = KeepsInputs(clf)
    res = classify_picture((PICTURES / "normal_paper_red_strip.png").read_bytes(), keeps, "strip")
    images, feats = np.concatenate(keeps.images), np.concatenate(keeps.features)
    inside = np.isin(res.peaks, res.centres)  # every classified beat of the padded trace; the picture's own inside
    assert inside.sum() == len(res.beats) and res.peaks.size == images.shape[0]
    n = len(res.beats)
    np.testing.assert_array_equal(res.features(np.arange(n)), feats[inside])
    for i in (0, n - 1):
        np.testing.assert_array_equal(res.image(i), images[inside][i])


def test_beat_times_match_the_annotations():
    """Beats found in a drawn strip are the annotated beats, at their drawn times (150 ms)."""
    z = np.load(DATA / "paper_red_strip_0_210.npz")
    res = classify_picture((DATA / "paper_red_strip_0_210.png").read_bytes(), predict.load(), "s")
    true_t = (float(z["x0"]) + z["r_peaks"] * float(z["px_per_s"]) / float(z["fs"])) / float(z["px_per_s"])
    got = res.beats["time_s"].to_numpy()
    assert len(got) == len(true_t)
    assert np.max(np.abs(np.sort(got) - np.sort(true_t))) < 0.15


def test_a_single_beat_picture_gives_one_beat_and_the_span_check(clf):
    res = classify_picture((PICTURES / "pvc_seed_thin_beat.png").read_bytes(), clf, "beat")
    assert res.kind == "beat" and len(res.beats) == 1
    assert res.digitized.calibration.method == "assumed"  # no grid: the span is guessed, then checked
    assert any("Span check" in n for n in res.notes)
    assert len(res.beats["span_classes"].iloc[0].split(" / ")) == len(set(
        res.beats["span_classes"].iloc[0].split(" / ")))
    forced = classify_picture((PICTURES / "pvc_seed_thin_beat.png").read_bytes(), clf, "beat", span_s=0.8,
                              expect="beat")
    assert forced.digitized.calibration.method == "span" and len(forced.beats) == 1
    assert SPAN_FACTORS[0] == 0.8 and SPAN_FACTORS[-1] == 1.25


def test_edge_beats_are_marked_uncertain(clf):
    res = classify_picture((PICTURES / "normal_paper_red_strip.png").read_bytes(), clf, "strip")
    b = res.beats
    assert b["uncertain"].iloc[0] and "beyond the picture's edge" in b["why_uncertain"].iloc[0]
    middle = b.iloc[len(b) // 2]
    assert not middle["uncertain"]


def test_model_picture_of_a_beat_is_made_from_the_signal(clf):
    res = classify_picture((PICTURES / "normal_paper_red_strip.png").read_bytes(), clf, "strip")
    im = res.image(3)
    assert im.shape == (128, 128) and im.dtype == np.uint8 and im.max() == 255
    p = clf.predict_proba(im[None], res.features(3))[0]
    assert np.allclose(p, res.probabilities(3), atol=2e-3)


def two_lead_model(tmp_path, representation: str):
    import keras

    from ecg_core.model import architectures

    keras.utils.set_random_seed(3)
    path = tmp_path / f"{representation}_model.keras"
    architectures.build("ecgnet_lite").save(path)
    card = dict(predict.default_model().card)
    card.update(name=path.stem, default=False, representation=representation)
    path.with_suffix(".json").write_text(json.dumps(card))
    return predict.Classifier(predict.info_from_path(path))


@pytest.mark.parametrize("representation", ["twolead", "twolead_overlay"])
def test_two_lead_models_read_two_stacked_strips(tmp_path, representation):
    model = two_lead_model(tmp_path, representation)
    res = classify_picture((PICTURES / "stacked_paper_grey.png").read_bytes(), model, "stacked")
    assert len(res.beats) >= 10 and res.x.shape[0] == 2
    assert res.image(2).shape == (128, 128)
    with pytest.raises(DigitizeError, match="shows one trace"):
        classify_picture((PICTURES / "normal_paper_red_strip.png").read_bytes(), model, "strip")


def test_the_span_check_reads_every_span_in_one_model_call(clf, monkeypatch):
    """A lone beat without grid is read at each span of the check in one model call, each reading with the
    probabilities it gets alone; its model picture and features are kept for its explanation."""
    from ecg_core.pipeline import picture

    data = (PICTURES / "pvc_seed_thin_beat.png").read_bytes()
    calls = []
    real = clf.predict_proba

    def counted(images, *a, **k):
        calls.append(len(images))
        return real(images, *a, **k)

    monkeypatch.setattr(clf, "predict_proba", counted)
    res = classify_picture(data, clf, "beat")
    monkeypatch.undo()
    assert res.digitized.calibration.method == "assumed" and calls == [len(SPAN_FACTORS)]
    tr = res.trace.signal_mv
    factors = [1.0] + [f for f in SPAN_FACTORS if f != 1.0]
    readings, probs, _ = picture._classify_beats(tr, factors[1:], clf)
    x1, pad1, c1, _, p1, *_ = picture._classify_once(tr, clf, "beat", "beat", "II")
    for (x, pad, centres), p, f in zip(readings, probs, factors):
        # each stretched reading classifies the first reading's beat where the stretch moves it
        assert pad == pad1 and centres[0] == pad + stretched_index(int(c1[0] - pad1), tr.size, f)
        np.testing.assert_array_equal(x, signals.prepare_signal(pad_with_baseline(picture._stretch(tr, f), pad), 360))
        np.testing.assert_allclose(p, record_mode.classify_windows(x, centres, clf, peaks=centres)[0], atol=1e-6)
    np.testing.assert_allclose(probs[0], p1[0], atol=1e-6)
    np.testing.assert_allclose(res.probabilities(0), probs[0], atol=1e-4)  # the table rounds to 4 decimals
    np.testing.assert_array_equal(res.image(0), record_mode.beat_image(res.x, int(res.centres[0]),
                                                                       res.representation, res.peaks))
    np.testing.assert_array_equal(res.features(0), record_mode.model_features(res.x, res.centres[[0]], res.peaks))


def test_a_span_whose_reading_fails_the_quality_check_gives_no_classes(clf, monkeypatch):
    """Read at a checked span, a strip can fail the recordings' quality verdict: that span gives no classes to
    compare (the trace itself was read), rather than an error."""
    from ecg_core.io.signal_io import SignalInputError

    data = (PICTURES / "pac_no_grid_strip.png").read_bytes()
    plain = classify_picture(data, clf, "strip")
    assert plain.kind == "strip" and plain.digitized.calibration.method != "grid"
    real, seen = record_mode.classify_signal, []

    def picky(sig, *a, **k):
        seen.append(sig.signal.size)
        if sig.signal.size != seen[0]:  # a stretched reading
            raise SignalInputError(f"{sig.name}: not readable as an ECG: stretched")
        return real(sig, *a, **k)

    monkeypatch.setattr(record_mode, "classify_signal", picky)
    res = classify_picture(data, clf, "strip")
    assert len(seen) == len(SPAN_FACTORS)
    assert res.beats[list(CLASS_KEYS)].equals(plain.beats[list(CLASS_KEYS)])
    assert (res.beats["span_classes"] == res.beats["predicted"]).all()


@pytest.mark.parametrize("path", sorted(p for p in (DATA / "hard").iterdir() if p.suffix in (".png", ".jpg")),
                         ids=lambda p: p.name)
def test_hard_single_beat_pictures_give_their_own_beat(clf, path):
    """Beat pictures the benchmark once misread (scripts/make_hard_pictures.py says how each failed): one trace,
    timed within 15 % of its true span, and the one beat returned is the drawn beat, within 150 ms."""
    from ecg_core.picture.synth import apply_homography

    z = np.load(path.with_suffix(".npz"))
    res = classify_picture(path.read_bytes(), clf, path.stem)
    assert res.digitized.layout == "strip" and res.kind == "beat" and len(res.beats) == 1
    true_s = z["signal"].size / float(z["fs"])
    assert res.trace.duration_s == pytest.approx(true_s, rel=0.15) or res.digitized.calibration.method == "assumed"
    r = int(z["r_peaks"][int(z["target"])])
    drawn = [float(z["x0"]) + r * float(z["px_per_s"]) / float(z["fs"]),
             float(z["baseline_y"]) - float(z["signal"][r]) * float(z["px_per_mv"])]
    true_x = float(apply_homography(z["homography"], np.array([drawn]))[0, 0])
    # 150 ms of the picture's seconds as it was read (as the benchmark matches), or of true seconds if fewer px
    px_per_s = float(z["px_per_s"]) * min(1.0, true_s / res.trace.duration_s)
    assert abs(float(res.beats["x_px"].iloc[0]) - true_x) <= 0.15 * px_per_s
