"""Renderers, the dataset builder on the real excerpt, splits, determinism, sample export."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecg_core.classes import CLASS_KEYS
from ecg_core.data import dataset
from ecg_core.picture import imaging, render
from ecg_core.settings import IMAGE_SIZE, WINDOW_LEN


@pytest.fixture(scope="module")
def windows(excerpt_dataset):
    from ecg_core.signal import beats, signals
    from tests.conftest import MITDB

    rec = signals.read_record(MITDB / "208")
    return beats.labelled_beats(rec.signal, rec.annotations.sample, rec.annotations.symbol).windows[:50]


def test_waveform_draws_one_trace_across_the_width(windows):
    imgs = render.render_waveform(windows)
    assert imgs.shape == (50, IMAGE_SIZE, IMAGE_SIZE) and imgs.dtype == np.uint8
    for im in imgs[:10]:
        cols = (im > 128).any(axis=0)
        assert cols[8:-8].all(), "trace spans the width"
        assert (im > 0).mean() < 0.15, "a thin line, not a fill"
    assert not np.array_equal(imgs[0], imgs[1])


def test_waveform_amplitude_maps_top_to_top():
    w = np.zeros((1, WINDOW_LEN), np.float32)
    w[0, WINDOW_LEN // 2] = 1.0  # one spike up
    im = render.render_waveform(w)[0]
    ys, _ = np.nonzero(im > 128)
    baseline_rows = np.nonzero(im[:, 10] > 128)[0]
    assert ys.min() <= 6 and baseline_rows.min() > 115, "baseline at the bottom, spike reaches the top"


def test_spectral_is_log_magnitude_with_low_frequencies_at_the_bottom(windows):
    imgs = render.render_spectral(windows)
    assert imgs.shape == (50, IMAGE_SIZE, IMAGE_SIZE) and imgs.dtype == np.uint8
    assert imgs[:, 64:].mean() > imgs[:, :64].mean(), "ECG energy sits at low frequencies"
    t = np.arange(WINDOW_LEN) / 360
    slow, fast = np.sin(2 * np.pi * 3 * t), np.sin(2 * np.pi * 30 * t)
    s = render.render_spectral(np.stack([slow, fast]))
    row_slow, row_fast = s[0].mean(axis=1).argmax(), s[1].mean(axis=1).argmax()
    assert row_slow > row_fast


def test_render_dispatch_rejects_unknown_representation(windows):
    with pytest.raises(ValueError, match="unknown representation"):
        render.render(windows, "scalogram")


def test_rendering_is_deterministic(windows):
    assert np.array_equal(render.render_waveform(windows), render.render_waveform(windows))
    assert np.array_equal(render.render_spectral(windows), render.render_spectral(windows))


def test_normalising_a_rendered_png_gives_the_training_image(windows):
    """The app's path (PNG bytes -> decode -> normalise) reproduces the dataset's images exactly."""
    rendered = render.render_waveform(windows)
    train_form = imaging.normalise_batch(rendered)
    assert np.abs(train_form.astype(int) - rendered).mean() < 6, "normalising our own render is near-identity"
    for im in train_form[:10]:
        assert imaging.in_training_form(im)
        assert np.array_equal(imaging.load_image(imaging.encode_png(im)), im)


def test_excerpt_dataset_covers_all_six_classes_and_is_traceable(excerpt_dataset):
    ds = excerpt_dataset
    counts = np.bincount(ds.labels, minlength=6)
    assert (counts > 0).all(), dict(zip(CLASS_KEYS, counts))
    assert ds.images.shape[1:] == (IMAGE_SIZE, IMAGE_SIZE) and ds.images.dtype == np.uint8
    vf = ds.database == dataset.DATABASES.index("vfdb")
    assert vf.any() and ds.sample[vf].max() < 120 * 250, "vfdb samples are at the record's own 250 Hz"
    assert set(ds.record[~vf]) == {"114", "207", "208", "232"}


def test_recordwise_split_never_shares_a_record(excerpt_dataset):
    ds = excerpt_dataset
    train, test = dataset.split_indices(ds, "recordwise")
    assert len(train) and len(test)
    assert not set(ds.groups[train]) & set(ds.groups[test])
    assert set(ds.groups[test]) == {"mitdb/232"}


def test_beatwise_split_is_stratified_70_30_and_seeded(excerpt_dataset):
    ds = excerpt_dataset
    train, test = dataset.split_indices(ds, "beatwise", seed=1)
    assert len(test) / len(ds) == pytest.approx(0.3, abs=0.01)
    assert not set(train) & set(test)
    again = dataset.split_indices(ds, "beatwise", seed=1)
    other = dataset.split_indices(ds, "beatwise", seed=2)
    assert np.array_equal(train, again[0]) and not np.array_equal(train, other[0])


def test_grouped_folds_keep_records_together(excerpt_dataset):
    ds = excerpt_dataset
    train, _ = dataset.split_indices(ds, "recordwise")
    for fit, val in dataset.grouped_folds(ds, train, k=3):
        assert not set(ds.groups[fit]) & set(ds.groups[val])


def test_validation_by_records_holds_out_whole_train_records(excerpt_dataset):
    ds = excerpt_dataset
    train, test = dataset.split_indices(ds, "recordwise")
    fit, val = dataset.validation_split(ds, train, kind="records")
    assert len(val) and len(fit) and not set(ds.groups[fit]) & set(ds.groups[val])
    assert np.array_equal(np.sort(np.concatenate([fit, val])), np.sort(train))
    assert not set(val) & set(test)
    fit_w, val_w = dataset.validation_split(ds, train, kind="windows")
    assert set(ds.groups[fit_w]) & set(ds.groups[val_w]), "window validation shares records with fitting"
    with pytest.raises(ValueError, match="unknown validation kind"):
        dataset.validation_split(ds, train, kind="patients")


def test_build_is_deterministic_and_caps_are_recorded(tmp_path, excerpt_dataset):
    from tests.conftest import MITDB, VFDB

    capped = dataset.build(MITDB, VFDB, "waveform", cap_per_class=20, seed=3)
    again = dataset.build(MITDB, VFDB, "waveform", cap_per_class=20, seed=3)
    assert np.array_equal(capped.images, again.images) and np.array_equal(capped.sample, again.sample)
    assert np.bincount(capped.labels).max() == 20 and capped.meta["cap_per_class"] == 20
    path = dataset.save(capped, tmp_path / "ds.npz")
    loaded = dataset.load(path)
    assert np.array_equal(loaded.images, capped.images) and loaded.meta == capped.meta
    assert np.array_equal(loaded.groups, capped.groups)


def test_parallel_build_gives_the_same_dataset(excerpt_dataset):
    from tests.conftest import MITDB, VFDB

    parallel = dataset.build(MITDB, VFDB, "waveform", workers=2)
    assert np.array_equal(parallel.images, excerpt_dataset.images)
    assert np.array_equal(parallel.labels, excerpt_dataset.labels)
    assert np.array_equal(parallel.groups, excerpt_dataset.groups)
    assert np.array_equal(parallel.sample, excerpt_dataset.sample)


def test_export_samples_draws_from_test_records_only(tmp_path, excerpt_dataset):
    manifest = dataset.export_samples(excerpt_dataset, tmp_path, per_class=3)
    assert set(manifest["record"]) == {"232"}
    assert set(manifest["label"]) == {"R", "A"}
    on_disk = pd.read_csv(tmp_path / "manifest.csv", dtype={"record": str})
    assert list(on_disk.columns) == ["file", "label", "database", "record", "sample", "time_s", "split"]
    for f in on_disk["file"]:
        assert (tmp_path / f).exists()


def test_committed_sample_images_are_test_split_and_in_training_form():
    from tests.conftest import ROOT

    folders = sorted(p for p in (ROOT / "sample_images").iterdir() if p.is_dir() and p.name != "pictures")
    assert [p.name for p in folders] == ["overlay", "waveform"]
    beats = None
    for folder in folders:
        manifest = pd.read_csv(folder / "manifest.csv", dtype={"record": str})
        assert set(manifest["label"]) == set(CLASS_KEYS)
        test_records = set(dataset.DS2) | set(dataset.VFDB_TEST)
        assert set(manifest["record"]) <= test_records
        same = manifest[["file", "label", "record", "sample"]]
        assert beats is None or same.equals(beats), "every representation shows the same beats"
        beats = same
        for f in manifest["file"]:
            im = imaging.load_image((folder / f).read_bytes(), folder.name)
            assert im.shape == (IMAGE_SIZE, IMAGE_SIZE) and imaging.in_training_form(im)


def test_sample_pictures_come_from_test_patients():
    """The bundled user-style pictures are drawn from test-split (DS2) recordings only."""
    from tests.conftest import ROOT

    manifest = pd.read_csv(ROOT / "sample_images" / "pictures" / "manifest.csv", dtype={"record": str})
    assert len(manifest) >= 10 and set(manifest["record"]) <= set(dataset.DS2)
    assert all((ROOT / "sample_images" / "pictures" / f).is_file() for f in manifest["file"])
    present = {k for labels in manifest["labels"] for k in str(labels).split()}
    assert {"N", "L", "R", "A", "V"} <= present
