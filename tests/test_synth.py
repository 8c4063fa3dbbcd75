"""The synthetic ECG picture generator: determinism, sizes, encodings, and that the recorded truth (scale,
offset, baseline, rotation, grid period) matches what is actually in the pixels."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import wfdb
from PIL import Image

from ecg_core.data.dataset import DS2
from ecg_core.picture import synth
from ecg_core.picture.synth import (
    DRAWN_BEAT_SYMBOLS,
    DS2_RECORDS,
    PAPER_STYLES,
    STYLES,
    THIN_SIZE,
    Drawn,
    draw,
    draw_stacked,
    draw_twelve_lead,
    excerpts,
    twelve_from_two,
)

ROOT = Path(__file__).resolve().parent.parent
MITDB = ROOT / "tests" / "data" / "mitdb"
PICTURES = ROOT / "tests" / "data" / "pictures"


@pytest.fixture(scope="module")
def ex():
    """10 s of record 208 (N and V beats) from the committed excerpt."""
    return excerpts(MITDB, ["208"], 10.0, 1, seed=3)[0]


@pytest.fixture(scope="module")
def short(ex):
    """The first 4 s of it, with its beats: enough for most checks, quick to draw."""
    n = int(4 * ex.fs)
    keep = ex.r_peaks < n
    return ex.signal[:n], ex.fs, ex.r_peaks[keep], ex.symbols[keep]


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def trace_score(d: Drawn, rgb: np.ndarray) -> np.ndarray:
    """How trace-like each pixel is: dark ink on paper, a light trace on a monitor, a blue line in a plot."""
    if d.style == "monitor":
        return luminance(rgb)
    if d.style == "plot_axes":
        return rgb[..., 2].astype(np.float64) - rgb[..., 0]
    return 255.0 - luminance(rgb)


def flat_samples(d: Drawn, n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """The n flattest samples of the middle 80 % (at least 0.15 s apart) and their local spread in pixels:
    the vertical range the samples drawn within a pixel column of them cover."""
    k = int(np.ceil(d.fs / d.px_per_s)) + 1
    x = d.signal
    idx = np.arange(max(k, int(0.1 * x.size)), min(x.size - k, int(0.9 * x.size)))
    spread = np.array([np.ptp(x[i - k:i + k + 1]) for i in idx]) * d.px_per_mv
    chosen = []
    for j in np.argsort(spread, kind="stable"):
        if all(abs(idx[j] - c) >= 0.15 * d.fs for c in chosen):
            chosen.append(idx[j])
        if len(chosen) == n:
            break
    chosen = np.sort(np.array(chosen))
    return chosen, spread[np.searchsorted(idx, chosen)]


def row_errors(d: Drawn, n: int = 12, band: float = 15.0) -> np.ndarray:
    """Pixels by which the most trace-like pixel, in the truth column of each of the flattest samples, misses
    the rows the truth puts the trace at there (final picture, through the homography)."""
    idx, spread = flat_samples(d, n)
    assert idx.size >= min(n, 4) and np.median(spread) < 4.0
    rgb = d.decode()
    score = trace_score(d, rgb)
    out = []
    for (x, y), sp in zip(d.points(idx), spread):
        c = int(round(x))
        lo, hi = max(0, int(y - band)), min(rgb.shape[0], int(y + band) + 1)
        out.append(max(0.0, abs(lo + np.argmax(score[lo:hi, c]) - y) - sp))
    return np.array(out)


def autocorr_period(profile: np.ndarray, lo: float, hi: float) -> float:
    """Lag (sub-pixel, parabolic) of the autocorrelation maximum between lags lo and hi."""
    p = profile - profile.mean()
    ac = np.correlate(p, p, "full")[p.size - 1:]
    lags = np.arange(int(np.floor(lo)), int(np.ceil(hi)) + 1)
    k = lags[np.argmax(ac[lags])]
    a, b, c = ac[k - 1], ac[k], ac[k + 1]
    return k + 0.5 * (a - c) / (a - 2 * b + c)


# ---------------------------------------------------------------------------------------------- basics

def test_ds2_is_the_dataset_constant():
    assert DS2_RECORDS == tuple(DS2) and len(DS2_RECORDS) == 22 and "100" in DS2_RECORDS


def test_same_seed_same_picture_other_seed_other(short):
    x, fs, r, s = short
    for style in ("paper_red", "photo", "monitor", "plot_axes"):
        a = draw(x, fs, style, r_peaks=r, symbols=s, seed=5)
        b = draw(x, fs, style, r_peaks=r, symbols=s, seed=5)
        c = draw(x, fs, style, r_peaks=r, symbols=s, seed=6)
        assert a.data == b.data and a.x0 == b.x0 and a.px_per_s == b.px_per_s
        np.testing.assert_array_equal(a.homography, b.homography)
        assert a.data != c.data


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("layout", ["strip", "beat"])
def test_every_style_decodes_at_its_stated_size(short, style, layout):
    x, fs, r, s = short
    d = draw(x, fs, style, r_peaks=r, symbols=s, seed=1, layout=layout)
    img = Image.open(io.BytesIO(d.data))
    assert img.size == (d.width, d.height)
    assert img.format == ("JPEG" if style in ("jpeg", "photo") else "PNG")
    assert (d.jpeg_quality > 0) == (img.format == "JPEG")
    if style == "seed_thin":
        assert img.size == THIN_SIZE
    assert d.style == style and d.layout == layout and d.fs == fs
    if style != "monitor":  # a monitor's faint grid is optional
        assert d.grid == (style in PAPER_STYLES or style in ("jpeg", "rotated", "photo"))
    assert d.symbols.dtype == object and d.symbols.size == d.r_peaks.size
    assert ((d.r_peaks >= 0) & (d.r_peaks < d.signal.size)).all()
    corners = d.points([0, d.signal.size - 1])
    assert (corners >= -1).all() and (corners[:, 0] <= d.width).all() and (corners[:, 1] <= d.height).all()


@pytest.mark.parametrize("style", ["paper_pink", "no_grid", "monitor", "plot_axes", "seed_thin", "rotated"])
def test_multi_lead_layouts(ex, style):
    st = draw_stacked([ex.signal, ex.second], ex.fs, style, seed=2, labels=["II", "V1"], r_peaks=ex.r_peaks,
                      symbols=ex.symbols)
    assert Image.open(io.BytesIO(st.data)).size == (st.width, st.height)
    assert st.layout == "stacked" and st.signal is not None and np.array_equal(st.signal, ex.signal)
    tw = draw_twelve_lead(twelve_from_two(ex.signal, ex.second), ex.fs, style, rhythm=ex.signal, seed=2,
                          r_peaks=ex.r_peaks, symbols=ex.symbols)
    assert Image.open(io.BytesIO(tw.data)).size == (tw.width, tw.height)
    assert tw.layout == "twelve_lead" and np.array_equal(tw.signal, ex.signal) and tw.r_peaks.size == ex.r_peaks.size
    if style != "rotated":  # the truth is the top strip of a stack and the bottom (rhythm) strip of a 12-lead
        assert st.baseline_y < st.height / 2 < tw.baseline_y
        assert (row_errors(st, 6) <= 1.5).all()
        assert (row_errors(tw, 6) <= 1.5).all()


def test_beat_layout_cuts_a_window_around_an_annotated_beat(ex):
    for seed in range(6):
        d = draw(ex.signal, ex.fs, "paper_red", r_peaks=ex.r_peaks, symbols=ex.symbols, seed=seed, layout="beat")
        assert d.signal.size in (round(0.8 * ex.fs), round(1.6 * ex.fs))
        np.testing.assert_array_equal(d.signal, ex.signal[d.offset:d.offset + d.signal.size])
        assert d.r_peaks.size >= 1
        inside = ex.r_peaks[(ex.r_peaks >= d.offset) & (ex.r_peaks < d.offset + d.signal.size)]
        np.testing.assert_array_equal(d.r_peaks, inside - d.offset)
    thin = draw(ex.signal, ex.fs, "seed_thin", r_peaks=ex.r_peaks, symbols=ex.symbols, layout="beat")
    assert thin.signal.size == round(0.8 * ex.fs)
    ends = thin.points([0, thin.signal.size - 1])  # the beat fills the 192 x 128 frame
    assert ends[0, 0] <= 4.5 and ends[1, 0] >= THIN_SIZE[0] - 5.5
    ys = thin.points()[:, 1]
    assert ys.min() <= 6.5 and ys.max() >= THIN_SIZE[1] - 7.5


def test_bad_input_is_refused(short):
    x, fs, _, _ = short
    with pytest.raises(ValueError, match="unknown style"):
        draw(x, fs, "crayon")
    with pytest.raises(ValueError, match="draw_stacked"):
        draw(x, fs, "paper_red", layout="stacked")
    with pytest.raises(ValueError, match="finite"):
        draw(np.r_[x, np.nan], fs, "paper_red")
    with pytest.raises(ValueError, match="V6"):
        draw_twelve_lead({"II": x}, fs, "paper_red", rhythm=None)


# ---------------------------------------------------------------------------------------------- truth

@pytest.mark.parametrize("style", ["paper_red", "paper_green", "paper_grey", "no_grid", "monitor", "plot_axes",
                                   "seed_thin"])
def test_flat_samples_lie_on_the_trace(ex, style):
    """Where the signal is flat, the trace's centre row in that column is the truth row (within a pixel)."""
    d = draw(ex.signal, ex.fs, style, seed=4)
    err = row_errors(d, band=8.0 if style == "seed_thin" else 15.0)
    assert np.median(err) <= 0.75 and err.max() <= 1.5, err


def column_extent(d: Drawn, c: int) -> tuple[float, float]:
    """Top and bottom rows of the true polyline where it crosses pixel column c (pre-warp)."""
    xs, ys = d.points(warped=False).T
    inside = ys[(xs >= c - 0.5) & (xs <= c + 0.5)].tolist() + np.interp([c - 0.5, c + 0.5], xs, ys).tolist()
    return min(inside), max(inside)


@pytest.mark.parametrize("seed", [0, 1])
def test_r_peaks_reach_their_true_height(ex, seed):
    """At each annotated beat's apex (the highest sample within 50 ms), the ink in that column starts where the
    truth puts the apex, and runs down at least as far as the polyline goes in that column."""
    d = draw(ex.signal, ex.fs, "paper_red", r_peaks=ex.r_peaks, symbols=ex.symbols, seed=seed)
    rgb = d.decode()
    score = 255.0 - rgb.max(axis=2)  # ink is dark in every channel, red grid lines are not
    ink = score > 0.5 * score.max()
    w = int(0.05 * d.fs)
    beats = d.r_peaks[(d.r_peaks > d.fs) & (d.r_peaks < d.signal.size - w)]  # past the printed lead label
    assert beats.size >= 8
    for r in beats:
        apex = r - w + int(np.argmax(d.signal[r - w:r + w + 1]))
        x, y = d.points([apex], warped=False)[0]
        c = int(round(x))
        _, bottom = column_extent(d, c)
        run = np.flatnonzero(ink[int(y) - 12:int(bottom) + 13, c]) + int(y) - 12
        assert abs(run.min() - y) <= 2.5 and run.max() >= bottom - 2.5, (r, run.min(), y, run.max(), bottom)


def periodicity(profile: np.ndarray, lo: float, hi: float) -> float:
    """Normalised autocorrelation peak between lags lo and hi (1: perfectly periodic)."""
    p = profile - profile.mean()
    ac = np.correlate(p, p, "full")[p.size - 1:]
    return float(ac[int(np.floor(lo)):int(np.ceil(hi)) + 1].max() / ac[0])


@pytest.mark.parametrize("style", ["paper_red", "paper_pink", "paper_green", "paper_grey"])
def test_grid_period_is_px_per_mm(short, style):
    x, fs, _, _ = short
    d = draw(x, fs, style, seed=7)
    dark = 255.0 - luminance(d.decode())
    ppm = d.px_per_mm
    assert d.grid and 4.0 <= ppm <= 8.0
    for profile in (dark.mean(axis=0), dark.mean(axis=1)):  # columns (time) and rows (voltage)
        assert abs(autocorr_period(profile, 4.2 * ppm, 5.8 * ppm) - 5 * ppm) <= 0.5
        assert abs(autocorr_period(profile, 0.7 * ppm, 1.3 * ppm) - ppm) <= 0.25
        assert periodicity(profile, 4.2 * ppm, 5.8 * ppm) > 0.25
    assert d.px_per_s == pytest.approx(25 * ppm) and d.px_per_mv == pytest.approx(10 * ppm)


def test_no_grid_has_no_periodic_background(short):
    x, fs, _, _ = short
    d = draw(x, fs, "no_grid", seed=7)
    assert not d.grid
    rgb = d.decode()
    dark = 255.0 - luminance(rgb)
    for profile in (dark.mean(axis=0), dark.mean(axis=1)):
        assert periodicity(profile, 4.2 * d.px_per_mm, 5.8 * d.px_per_mm) < 0.2
    colours, counts = np.unique(rgb.reshape(-1, 3), axis=0, return_counts=True)
    assert counts.max() > 0.85 * counts.sum() and colours[np.argmax(counts)].min() >= 245  # plain white paper


def test_calibration_pulse_is_one_millivolt(short):
    """Paper pictures with a pulse: a 10 mm (1 mV) tall, 5 mm (0.2 s) wide box left of the trace start."""
    x, fs, _, _ = short
    found = 0
    for seed in range(6):
        d = draw(x, fs, "paper_grey", seed=seed)
        score = trace_score(d, d.decode())
        ppm, y0 = d.px_per_mm, d.baseline_y
        col = int(round(d.x0 - 5 * ppm))  # the middle of the pulse's top
        band = score[int(y0 - 14 * ppm):int(y0 + 2 * ppm), col]
        if d.x0 < 9 * ppm or band.max() < 120:
            continue
        found += 1
        rows = np.flatnonzero(band > 0.5 * band.max()) + int(y0 - 14 * ppm)
        assert abs(rows.mean() - (y0 - 10 * ppm)) <= 1.0, (rows, y0 - 10 * ppm)
        for edge in (-7.5, -2.5):  # the rise and the fall, 0.2 s apart
            line = score[int(round(y0 - 5 * ppm)), int(d.x0 + (edge - 1.5) * ppm):int(d.x0 + (edge + 1.5) * ppm)]
            assert abs(np.argmax(line) + int(d.x0 + (edge - 1.5) * ppm) - (d.x0 + edge * ppm)) <= 1.0
    assert found >= 3


def test_rotation_is_recorded_and_exact(ex):
    for seed in range(3):
        d = draw(ex.signal, ex.fs, "rotated", seed=seed)
        assert 0.5 <= abs(d.rotation_deg) <= 5.0
        ends = synth.apply_homography(d.homography, [(d.x0, d.baseline_y), (d.x0 + 1000.0, d.baseline_y)])
        angle = -np.degrees(np.arctan2(ends[1, 1] - ends[0, 1], ends[1, 0] - ends[0, 0]))
        assert angle == pytest.approx(d.rotation_deg, abs=1e-6)
        assert (row_errors(d) <= 1.5).all()


def test_jpeg_and_photo_are_jpeg_with_seeded_quality(short):
    x, fs, _, _ = short
    for seed in range(4):
        j = draw(x, fs, "jpeg", seed=seed)
        assert j.data[:3] == b"\xff\xd8\xff" and 30 <= j.jpeg_quality <= 90 and j.rotation_deg == 0
        p = draw(x, fs, "photo", seed=seed)
        assert p.data[:3] == b"\xff\xd8\xff" and 60 <= p.jpeg_quality <= 85
        assert abs(p.rotation_deg) < 6 and not np.allclose(p.homography, np.eye(3))


def test_photo_truth_goes_through_the_perspective(ex):
    d = draw(ex.signal, ex.fs, "photo", seed=2)
    err = row_errors(d, band=10.0)
    assert np.median(err) <= 1.0 and err.max() <= 2.5, err
    lum = luminance(d.decode())
    pts = d.points(flat_samples(d)[0])
    on = np.array([lum[int(round(y)), int(round(x))] for x, y in pts])
    off = np.array([lum[int(round(y)) - 8, int(round(x))] for x, y in pts])
    assert np.median(off - on) > 60  # ink on the truth points, paper 8 px above them


def test_twelve_leads_follow_einthoven_and_goldberger(ex):
    leads = twelve_from_two(ex.signal, ex.second)
    assert sorted(leads) == sorted(n for col in synth.TWELVE_COLUMNS for n in col)
    np.testing.assert_allclose(leads["I"] + leads["III"], leads["II"])
    np.testing.assert_allclose(leads["aVR"] + leads["aVL"] + leads["aVF"], 0, atol=1e-12)
    np.testing.assert_array_equal(leads["II"], ex.signal)
    np.testing.assert_array_equal(leads["V1"], ex.second)


# ---------------------------------------------------------------------------------------------- excerpts

def test_excerpts_carry_their_annotations():
    got = excerpts(MITDB, ["208", "232", "114"], 8.0, 3, seed=11)
    again = excerpts(MITDB, ["208", "232", "114"], 8.0, 3, seed=11)
    assert len(got) == 9 and [(e.record, e.start) for e in got] == [(e.record, e.start) for e in again]
    for e in got:
        assert e.fs == 360 and e.signal.size == e.second.size == 8 * 360
        assert ((e.r_peaks >= 0) & (e.r_peaks < e.signal.size)).all() and e.r_peaks.size >= 5
        assert set(e.symbols) <= DRAWN_BEAT_SYMBOLS and e.symbols.size == e.r_peaks.size
        ann = wfdb.rdann(str(MITDB / e.record), "atr")
        beats = [(s - e.start, y) for s, y in zip(ann.sample, ann.symbol)
                 if y in DRAWN_BEAT_SYMBOLS and e.start <= s < e.start + e.signal.size]
        assert [int(b[0]) for b in beats] == e.r_peaks.tolist() and [b[1] for b in beats] == e.symbols.tolist()
        rec = wfdb.rdrecord(str(MITDB / e.record), sampfrom=e.start, sampto=e.start + e.signal.size)
        np.testing.assert_array_equal(e.signal, rec.p_signal[:, rec.sig_name.index("MLII")])
        assert e.lead == "MLII" and e.second_lead == ("V5" if e.record == "114" else "V1")
    starts = [e.start for e in got if e.record == "208"]
    assert all(b - a >= 8 * 360 for a, b in zip(starts, starts[1:]))  # the three 208 excerpts do not overlap


# ---------------------------------------------------------------------------------------------- committed set

def test_committed_pictures_match_their_sidecars():
    readme = (PICTURES / "README.md").read_text()
    assert "python -m ecg_core.picture.synth" in readme and "Open Data Commons" in readme
    assert "Moody" in readme and "twelve_from_two" in readme
    pictures = sorted(p for p in PICTURES.iterdir() if p.suffix in (".png", ".jpg"))
    styles = {p.name.split("_strip")[0].split("_beat")[0] for p in pictures if "_strip_" in p.name}
    assert styles == set(STYLES)
    assert {lay for lay in synth.LAYOUTS if any(f"_{lay}_" in p.name for p in pictures)} == set(synth.LAYOUTS)
    assert sum(p.stat().st_size for p in PICTURES.iterdir()) < 3.3e6
    for p in pictures:
        z = np.load(p.with_suffix(".npz"))
        img = Image.open(p)
        assert img.size == (int(z["width"]), int(z["height"])), p.name
        assert img.format == ("JPEG" if p.suffix == ".jpg" else "PNG")
        assert str(z["style"]) in STYLES and str(z["layout"]) in synth.LAYOUTS and p.name in readme
        assert ((z["r_peaks"] >= 0) & (z["r_peaks"] < z["signal"].size)).all()


def committed(p: Path) -> Drawn:
    z = np.load(p.with_suffix(".npz"))
    return Drawn(p.read_bytes(), str(z["style"]), float(z["fs"]), z["signal"], z["r_peaks"],
                 z["symbols"].astype(object), float(z["px_per_s"]), float(z["px_per_mv"]), float(z["x0"]),
                 float(z["baseline_y"]), float(z["rotation_deg"]), bool(z["grid"]), str(z["layout"]),
                 int(z["width"]), int(z["height"]), float(z["px_per_mm"]), z["homography"], int(z["jpeg_quality"]))


@pytest.mark.parametrize("name", ["paper_red_strip", "paper_grey_strip", "monitor_strip", "plot_axes_strip",
                                  "rotated_strip", "photo_strip", "paper_red_twelve_lead", "monitor_stacked"])
def test_committed_truth_is_in_the_pixels(name):
    d = committed(next(PICTURES.glob(f"{name}_*.*[gf]")))
    err = row_errors(d, band=10.0)
    limit = 2.5 if d.style == "photo" else 1.5
    assert np.median(err) <= limit / 2 and err.max() <= limit, err
