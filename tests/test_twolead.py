"""The two-lead representation: second-lead choice, windows from two leads, the stacked rendering."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import MITDB, ROOT, VFDB

from ecg_core.data import dataset
from ecg_core.picture import imaging, render
from ecg_core.settings import IMAGE_SIZE, WINDOW_LEN
from ecg_core.signal import beats, signals


def test_second_lead_prefers_v1_then_the_other_lead():
    assert signals.choose_second_lead(["MLII", "V1"], 0) == 1
    assert signals.choose_second_lead(["V5", "MLII"], 1) == 0  # 114: MLII second, V5 first
    assert signals.choose_second_lead(["ECG", "ECG"], 0) == 1  # vfdb: unnamed leads
    assert signals.choose_second_lead(["MLII"], 0) is None


def test_read_record_with_second_lead_prepares_both_leads_alike():
    rec = signals.read_record(MITDB / "114", second_lead=True)
    assert rec.lead == "MLII" and rec.lead2 == "V5"
    assert rec.signal2 is not None and rec.signal2.shape == rec.signal.shape
    assert rec.leads.shape == (2, rec.signal.size)
    assert not np.allclose(rec.signal, rec.signal2)
    single = signals.read_record(MITDB / "114")
    assert single.signal2 is None and np.array_equal(single.signal, rec.signal)


def test_windows_from_two_leads_match_single_lead_windows():
    rec = signals.read_record(MITDB / "208", second_lead=True)
    ann = rec.annotations
    two = beats.labelled_beats(rec.leads, ann.sample, ann.symbol)
    one = beats.labelled_beats(rec.signal, ann.sample, ann.symbol)
    assert two.windows.shape == (len(one), 2, WINDOW_LEN)
    assert np.array_equal(two.windows[:, 0], one.windows)
    assert np.array_equal(two.centres, one.centres) and np.array_equal(two.labels, one.labels)
    c = int(two.centres[3])
    assert np.array_equal(two.windows[3, 1], rec.signal2[c - 360: c + 216])


def test_twolead_rendering_puts_mlii_on_top_and_the_second_lead_below():
    w = np.zeros((1, 2, WINDOW_LEN), np.float32)
    w[0, 0, 100] = 1.0  # spike early in lead 1
    w[0, 1, 400] = 1.0  # spike late in lead 2
    im = render.render(w, "twolead")[0]
    assert im.shape == (IMAGE_SIZE, IMAGE_SIZE)
    top, bottom = im[: IMAGE_SIZE // 2], im[IMAGE_SIZE // 2:]
    peak_col = lambda half: int(np.argmax((half[:20] > 100).any(axis=0)))  # noqa: E731
    assert peak_col(top) < 40 and peak_col(bottom) > 80
    assert (top > 100).any(axis=1)[-10:].any() and (bottom > 100).any(axis=1)[-10:].any(), "baselines low in each half"
    with pytest.raises(ValueError, match="two-lead windows"):
        render.render_twolead(np.zeros((1, WINDOW_LEN)))


def test_twolead_dataset_builds_from_the_excerpt_and_normalises_like_the_app():
    ds = dataset.build(MITDB, VFDB, "twolead", records={"mitdb": ["232"], "vfdb": ["430"]})
    assert ds.meta["representation"] == "twolead" and len(ds) > 100
    assert set(ds.labels.tolist()) >= {2, 3, 5}  # R, A from 232; VF from vfdb 430
    for im in ds.images[:10]:
        assert imaging.in_training_form(im)
        assert np.array_equal(imaging.load_image(imaging.encode_png(im), "twolead"), im)
        assert (im[:60] > 0).any() and (im[68:] > 0).any(), "a trace in each half"


def test_record_mode_refuses_a_two_lead_model_with_a_clear_message(tmp_path):
    import json

    import keras

    from ecg_core.io import signal_io
    from ecg_core.model import architectures, predict
    from ecg_core.pipeline import record_mode

    path = tmp_path / "tl.keras"
    architectures.build("ecgnet_lite").save(path)
    card = dict(predict.default_model().card, name="tl", default=False, representation="twolead")
    path.with_suffix(".json").write_text(json.dumps(card))
    clf = predict.Classifier(predict.info_from_path(path))
    assert not record_mode.reads_one_lead("twolead") and record_mode.reads_one_lead("waveform")
    with pytest.raises(ValueError, match="two leads"):
        record_mode.classify_signal(signal_io.read_path(MITDB / "232"), clf)
    out = tmp_path / "beats.csv"
    r = subprocess.run([sys.executable, "-m", "ecg_core", "classify-record", str(MITDB / "232"), "--model",
                        str(path), "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 2 and "made from two leads" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()
    keras.backend.clear_session()
