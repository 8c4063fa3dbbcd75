"""The overlay representation: local templates from detected peaks, the beat drawn over its template on one
amplitude scale, the dataset from the committed excerpt, signal mode making the same pictures, the guard."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import MITDB, VFDB

from ecg_core.data import dataset
from ecg_core.picture import guard, imaging, render
from ecg_core.pipeline import record_mode
from ecg_core.settings import IMAGE_SIZE, TEMPLATE_INTENSITY, WINDOW_AFTER, WINDOW_BEFORE, WINDOW_LEN, WORKING_FS
from ecg_core.signal import beats, peaks, signals


def _synthetic(n_beats: int = 30, rr: int = 300, odd: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """A regular rhythm of narrow beats with one wide, tall, early beat (index `odd`)."""
    x = np.zeros(WINDOW_BEFORE + n_beats * rr + WINDOW_AFTER, np.float32)
    t = np.arange(-20, 21)
    centres = WINDOW_BEFORE + np.arange(n_beats) * rr
    centres[odd] -= 100  # premature
    for i, c in enumerate(centres):
        width, height = (10.0, 3.0) if i == odd else (3.0, 1.0)
        x[c + t] += height * np.exp(-0.5 * (t / width) ** 2)
    return x, centres


def test_template_of_an_ectopic_beat_is_the_dominant_beat():
    x, centres = _synthetic()
    tpl = beats.local_templates(x, centres, centres)
    own = beats.cut_windows(x, centres)
    normal = own[5]  # a beat whose neighbourhood is regular
    assert np.allclose(tpl[15, WINDOW_BEFORE - 30: WINDOW_BEFORE + 30], normal[WINDOW_BEFORE - 30: WINDOW_BEFORE + 30],
                       atol=1e-6), "the median ignores the one odd beat"
    assert np.abs(own[15] - tpl[15]).max() > 1.0, "the odd beat differs from its template"
    assert np.abs(own[5] - tpl[5]).max() < 1e-6


def test_template_uses_only_peaks_within_the_span():
    x, centres = _synthetic(n_beats=80, rr=300, odd=40)
    span_beats = int(beats.TEMPLATE_SPAN_S * WORKING_FS // 300)
    only_odd = centres[[40]]
    tpl = beats.local_templates(x, centres, only_odd)
    assert np.array_equal(tpl[40], beats.cut_windows(x, only_odd)[0])
    far = 40 - span_beats - 2
    assert np.array_equal(tpl[far], beats.cut_windows(x, centres[[far]])[0]), "no peak in reach: the window itself"


def test_with_templates_stacks_window_and_template():
    x, centres = _synthetic()
    w = beats.with_templates(x, centres, centres)
    assert w.shape == (centres.size, 2, WINDOW_LEN)
    assert np.array_equal(w[:, 0], beats.cut_windows(x, centres))
    assert np.array_equal(beats.local_templates(x, centres, np.zeros(0, np.int64)), w[:, 0])


def test_overlay_windows_use_detected_peaks_and_signal_mode_makes_the_same_pictures():
    rec = signals.read_record(MITDB / "232")
    one, _ = dataset.record_beats(MITDB / "232", "mitdb")
    two, _ = dataset.record_beats(MITDB / "232", "mitdb", templates=True)
    assert two.windows.shape == (len(one), 2, WINDOW_LEN)
    assert np.array_equal(two.windows[:, 0], one.windows)
    expected = beats.local_templates(rec.signal, one.centres, peaks.detect_beats(rec.signal))
    assert np.array_equal(two.windows[:, 1], expected)

    ds = dataset.build(MITDB, VFDB, "overlay", records={"mitdb": ["232"], "vfdb": ["430"]})
    assert ds.meta["representation"] == "overlay" and set(ds.labels.tolist()) >= {2, 3, 5}
    some = ds.images[ds.database == 0][:50]
    made = record_mode.model_images(rec.signal, one.centres[:50], "overlay", peaks.detect_beats(rec.signal))
    assert np.array_equal(made, some), "signal mode renders exactly the training pictures"
    assert np.array_equal(record_mode.model_images(rec.signal, one.centres[:5], "overlay"), some[:5])


def test_overlay_draws_the_beat_bright_over_a_dimmer_template():
    w = np.zeros((1, 2, WINDOW_LEN), np.float32)
    w[0, 0, 100] = 1.0  # the beat's spike, early
    w[0, 1, 400] = 1.0  # the template's spike, late
    im = render.render(w, "overlay")[0]
    top_rows = im[: IMAGE_SIZE // 4]
    beat_col, tpl_col = 4 + 100 * 119 // WINDOW_LEN, 4 + 400 * 119 // WINDOW_LEN
    assert top_rows[:, beat_col - 2: beat_col + 3].max() > 230
    tpl_peak = int(top_rows[:, tpl_col - 2: tpl_col + 3].max())
    assert 150 <= tpl_peak <= TEMPLATE_INTENSITY
    with pytest.raises(ValueError, match="beat\\+template"):
        render.render_overlay(np.zeros((1, WINDOW_LEN)))


def test_overlay_pictures_keep_the_template_visible_after_normalising():
    ds = dataset.build(MITDB, None, "overlay", records={"mitdb": ["232"]})
    assert ds.meta["representation"] == "overlay"
    a = ds.labels == 3  # premature atrial beats: the template's preceding beat sits later than the beat's
    assert a.any()
    for im in ds.images[a][:5]:
        assert imaging.in_training_form(im)
        assert np.array_equal(imaging.load_image(imaging.encode_png(im), "overlay"), im)
        dim = ((im > 60) & (im < 200)).sum()
        assert dim > 100, "the grey template survives normalisation"


def test_overlay_guard_passes_overlay_pictures_and_flags_non_ecg():
    ds = dataset.build(MITDB, None, "overlay", records={"mitdb": ["232"]})
    departing = [im for im, k in zip(ds.images, ds.labels) if k == 3][:20]  # A beats: two curves in places
    assert guard.check_for("overlay") is guard.check_overlay_image
    assert guard.check_for("waveform") is guard.check_ecg_image and guard.check_for("spectral") is None
    for im in departing:
        g = im.astype(np.float32) / 255.0
        assert guard.check_overlay_image(g).is_ecg
        assert guard.check_overlay_image(1.0 - g).is_ecg, "saved dark on light"
    rng = np.random.default_rng(0)
    assert not guard.check_overlay_image(rng.random((128, 128)).astype(np.float32)).is_ecg
    assert not guard.check_overlay_image(np.zeros((128, 128), np.float32)).is_ecg
    text = [d for s, _, d in guard.non_ecg_corpus("test") if s.startswith("text")]
    flagged = [not guard.check_overlay_image(imaging.decode_image(d)).is_ecg for d in text]
    assert np.mean(flagged) >= 0.75, "text pictures are still mostly flagged"


def test_two_lead_templates_are_each_leads_own_with_the_same_peaks():
    x, centres = _synthetic()
    other = np.roll(x, 7) * -0.5  # a second lead: another shape, the same beats
    w = beats.with_templates(np.stack([x, other]), centres, centres)
    assert w.shape == (centres.size, 4, WINDOW_LEN)
    assert np.array_equal(w[:, :2], beats.with_templates(x, centres, centres))
    assert np.array_equal(w[:, 2:], beats.with_templates(other, centres, centres))


def test_twolead_overlay_draws_each_leads_beat_over_its_template_in_its_half():
    w = np.zeros((1, 4, WINDOW_LEN), np.float32)
    w[0, 0, 100] = 1.0  # MLII beat: early spike
    w[0, 1, 400] = 1.0  # MLII template: late spike
    w[0, 2, 250] = -1.0  # V1 beat: a downward spike in the middle
    w[0, 3, 250] = -1.0  # V1 template: the same
    im = render.render(w, "twolead_overlay")[0]
    top, bottom = im[: IMAGE_SIZE // 2], im[IMAGE_SIZE // 2:]
    col = lambda s: 4 + s * 119 // WINDOW_LEN  # noqa: E731
    assert top[:16, col(100) - 2: col(100) + 3].max() > 230, "MLII's beat, bright, at the top"
    assert 150 <= top[:16, col(400) - 2: col(400) + 3].max() <= TEMPLATE_INTENSITY, "its template, grey"
    assert bottom[-16:, col(250) - 2: col(250) + 3].max() > 230, "V1's downward spike in the bottom half"
    assert (bottom[:16] > 100).any(axis=1).any(), "V1's baseline high in its half (its spike points down)"
    with pytest.raises(ValueError, match="two-lead beat\\+template"):
        render.render_twolead_overlay(np.zeros((1, 2, WINDOW_LEN)))


def test_twolead_overlay_dataset_pairs_both_leads_with_their_templates():
    rec = signals.read_record(MITDB / "232", second_lead=True)
    two, _ = dataset.record_beats(MITDB / "232", "mitdb", leads=2, templates=True)
    assert two.windows.shape[1:] == (4, WINDOW_LEN)
    found = peaks.detect_beats(rec.signal)
    assert np.array_equal(two.windows[:, 3], beats.local_templates(rec.signal2, two.centres, found))
    ds = dataset.build(MITDB, None, "twolead_overlay", records={"mitdb": ["232"]})
    assert ds.meta["representation"] == "twolead_overlay" and len(ds) == len(two)
    for im in ds.images[:5]:
        assert imaging.in_training_form(im)
        assert np.array_equal(imaging.load_image(imaging.encode_png(im), "twolead_overlay"), im)
