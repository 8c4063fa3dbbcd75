"""The digitizer on pictures with known truth (tests/data/pictures, drawn by ecg_core.picture.synth from real
mitdb excerpts) and on pictures that hold no ECG: grid period, deskew, polarity, continuity, calibration."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw

from ecg_core.picture import grid, trace
from ecg_core.picture.digitize import DigitizeError, digitize, find_pulse
from ecg_core.picture.imaging import decode_rgb_with_notes

DATA = Path(__file__).resolve().parent / "data" / "pictures"
PICTURES = sorted(p for p in DATA.iterdir() if p.suffix in (".png", ".jpg"))
PAPER = [p for p in PICTURES if p.name.startswith(("paper_", "jpeg_", "rotated_")) and "_strip_" in p.name]


def truth(p: Path) -> dict:
    z = np.load(p.with_suffix(".npz"))
    return {k: z[k] for k in z.files}


def png(img: Image.Image | np.ndarray) -> bytes:
    buf = io.BytesIO()
    (img if isinstance(img, Image.Image) else Image.fromarray(np.asarray(img, np.uint8))).save(buf, "PNG")
    return buf.getvalue()


def ink_of(p: Path) -> grid.Ground:
    rgb, _ = decode_rgb_with_notes(p.read_bytes())
    return grid.ground(rgb)


@pytest.mark.parametrize("path", [p for p in PICTURES if truth(p)["grid"] and "_strip_" in p.name
                                  and not p.name.startswith(("rotated", "photo", "monitor"))], ids=lambda p: p.name)
def test_grid_period_is_the_small_box(path):
    t = truth(path)
    found = grid.grid_period(ink_of(path).line_ink)
    assert found is not None and found.large_boxes
    assert found.px_per_mm == pytest.approx(float(t["px_per_mm"]), rel=0.005)


@pytest.mark.parametrize("path", [p for p in PICTURES if not truth(p)["grid"] and "_strip_" in p.name],
                         ids=lambda p: p.name)
def test_no_grid_is_found_where_none_is_drawn(path):
    assert grid.grid_period(ink_of(path).line_ink) is None


def test_deskew_recovers_the_rotation():
    for p in [q for q in PICTURES if q.name.startswith("rotated_strip")]:
        d = digitize(p.read_bytes())
        assert d.rotation_deg == pytest.approx(-float(truth(p)["rotation_deg"]), abs=0.3)  # undone, so opposite
        assert any("Straightened" in n for n in d.notes)


def test_an_upright_picture_is_not_rotated():
    for p in [q for q in PICTURES if not (q.name.startswith("seed_thin") and "_beat_" not in q.name)]:
        if abs(float(truth(p)["rotation_deg"])) < 0.01 and "photo" not in p.name:
            assert digitize(p.read_bytes(), span_s=None if truth(p)["grid"] else 10.0).rotation_deg == 0.0, p.name


def test_polarity():
    assert digitize((DATA / "monitor_strip_0_100.png").read_bytes()).light_on_dark
    assert not digitize((DATA / "paper_red_strip_0_210.png").read_bytes()).light_on_dark
    # the same strip inverted (light trace on dark) gives the same beats at the same times
    p = DATA / "paper_grey_strip_0_233.png"
    rgb = np.asarray(Image.open(p).convert("RGB"))
    a, b = digitize(p.read_bytes()), digitize(png(255 - rgb))
    assert b.light_on_dark
    x, y = a.traces[a.primary].signal_mv, b.traces[b.primary].signal_mv
    n = min(x.size, y.size)
    assert np.corrcoef(x[:n], y[:n])[0, 1] > 0.95


@pytest.mark.parametrize("path", PAPER, ids=lambda p: p.name)
def test_grid_calibration_gives_seconds_and_millivolts(path):
    t = truth(path)
    d = digitize(path.read_bytes())
    assert d.calibration.method == "grid"
    assert d.calibration.px_per_s == pytest.approx(float(t["px_per_s"]), rel=0.01)
    assert d.calibration.px_per_mv == pytest.approx(float(t["px_per_mv"]), rel=0.05)
    tr = d.traces[d.primary]
    assert tr.duration_s == pytest.approx(float(t["signal"].size / t["fs"]), abs=0.1)
    # the digitized trace follows the drawn one: the strongest deflection has the drawn height
    sig = tr.signal_mv - np.median(tr.signal_mv)
    drawn = t["signal"] - np.median(t["signal"])
    assert np.ptp(sig) == pytest.approx(np.ptp(drawn), rel=0.15)


def test_calibration_pulse_is_found_and_left_out():
    p = DATA / "paper_red_strip_0_210.png"
    d = digitize(p.read_bytes())
    assert "calibration pulse" in d.calibration.description
    assert any("calibration pulse" in n for n in d.notes)
    # the signal starts where the drawn trace starts, not at the pulse
    t = truth(p)
    assert d.traces[d.primary].t0_s == pytest.approx(float(t["x0"]) / float(t["px_per_s"]), abs=0.05)


def test_pulse_sets_the_gain_when_it_differs_from_the_grid():
    """A strip printed at 5 mm/mV: the pulse is half as tall as 10 mm/mV would draw it."""
    px_mm = 5
    h, w = 60 * px_mm, 260 * px_mm
    img = np.full((h, w), 255, np.uint8)
    for i in range(0, w, px_mm):
        img[:, i] = 200 if (i // px_mm) % 5 else 150
    for j in range(0, h, px_mm):
        img[j, :] = np.minimum(img[j, :], 200 if (j // px_mm) % 5 else 150)
    base = h // 2
    pulse = [(10 * px_mm, base), (12 * px_mm, base), (12 * px_mm, base - 5 * px_mm), (17 * px_mm, base - 5 * px_mm),
             (17 * px_mm, base), (19 * px_mm, base)]
    cv2.polylines(img, [np.array(pulse, np.int32)], False, 0, 2)
    import wfdb

    rec = wfdb.rdrecord(str(Path(__file__).resolve().parent / "data" / "mitdb" / "208"), channels=[0],
                        sampto=int(9.5 * 360))
    beat = rec.p_signal[:, 0] - np.median(rec.p_signal[:, 0])  # a real MLII excerpt, mV
    t = np.arange(beat.size) / 360
    xs = 20 * px_mm + t * 25 * px_mm
    ys = base - beat * 5 * px_mm  # drawn at 5 mm/mV
    cv2.polylines(img, [np.round(np.stack([xs, ys], 1)).astype(np.int32)], False, 0, 2, cv2.LINE_AA)
    d = digitize(png(img))
    assert d.calibration.px_per_mv == pytest.approx(5 * px_mm, rel=0.1)
    sig = d.traces[d.primary].signal_mv
    assert np.ptp(sig) == pytest.approx(np.ptp(beat), rel=0.15)


def test_stated_span_calibrates_a_picture_without_grid():
    p = DATA / "no_grid_strip_0_212.png"
    d = digitize(p.read_bytes(), span_s=10.0)
    assert d.calibration.method == "span"
    assert d.traces[d.primary].duration_s == pytest.approx(10.0, abs=0.05)
    # no grid, but the strip's calibration pulse gives the amplitude
    assert d.calibration.px_per_mv == pytest.approx(float(truth(p)["px_per_mv"]), rel=0.05)
    assert "amplitude relative" not in d.calibration.description
    guessed = digitize(p.read_bytes())
    assert guessed.calibration.method == "assumed" and "10 s strip" in guessed.calibration.description
    with pytest.raises(DigitizeError, match="between 0.2 and 60 seconds"):
        digitize(p.read_bytes(), span_s=0.01)


def test_trace_continuity_through_steep_strokes_and_a_gap():
    p = DATA / "paper_red_strip_0_210.png"
    rgb = np.asarray(Image.open(p).convert("RGB")).copy()
    t = truth(p)
    whole = digitize(p.read_bytes()).traces[0]
    x_gap = int(float(t["x0"]) + 4.0 * float(t["px_per_s"]))
    rgb[:, x_gap: x_gap + 3] = 255  # a 3-pixel break in the trace (and the grid)
    broken = digitize(png(rgb)).traces[0]
    assert broken.duration_s == pytest.approx(whole.duration_s, abs=0.02)
    n = min(whole.signal_mv.size, broken.signal_mv.size)
    assert np.corrcoef(whole.signal_mv[:n], broken.signal_mv[:n])[0, 1] > 0.98
    # steep QRS strokes keep their height: the tallest R wave matches the drawn one within a line width
    peak_drawn = float(t["signal"].max() - np.median(t["signal"]))
    sig = whole.signal_mv - np.median(whole.signal_mv)
    assert sig.max() == pytest.approx(peak_drawn, abs=3 / float(t["px_per_mv"]) + 0.05)


def test_path_follows_the_trace_not_the_text_beside_it():
    m = np.zeros((120, 400), bool)
    m[60:62, 20:380] = True  # a flat trace
    m[20:30, 100:104] = True  # a text blob above it
    ink = m.astype(np.float32)
    p = trace.follow(m, ink, (0, 120), 60)
    assert p is not None and np.nanmax(np.abs(p.y - 60.5)) < 1.0


@pytest.mark.parametrize("layout,n", [("stacked", 2), ("twelve_lead", 4)])
def test_layouts(layout, n):
    for p in [q for q in PICTURES if f"_{layout}_" in q.name and not q.name.startswith("seed_thin")]:
        t = truth(p)
        d = digitize(p.read_bytes(), span_s=None if t["grid"] else 10.0)
        assert d.layout == layout, p.name
        assert len(d.traces) >= n if layout == "twelve_lead" else len(d.traces) == n, p.name
        if layout == "twelve_lead":
            assert d.primary == len(d.traces) - 1 and "II" in d.traces[d.primary].label
            assert d.traces[d.primary].duration_s == pytest.approx(10.0, abs=0.5), p.name


def bars() -> bytes:
    img = Image.new("RGB", (640, 360), "white")
    d = ImageDraw.Draw(img)
    for i, h in enumerate([120, 200, 90, 260, 180, 140]):
        d.rectangle([60 + i * 90, 320 - h, 120 + i * 90, 320], fill=(40, 90, 200))
    return png(img)


def photograph() -> bytes:
    from skimage import data

    return png(data.astronaut())


def twelve_lead_without_rhythm_strip() -> bytes:
    """A 12-lead page cropped above its rhythm strip: four short leads per row, nothing full-width below."""
    p = next(q for q in PICTURES if q.name.startswith("paper_red_twelve_lead"))
    img = Image.open(p).convert("RGB")
    rows = [b for b in trace.bands(trace.trace_mask(grid.remove_lines(ink_of(p).trace_ink)))]
    cut = (rows[-2][1] + rows[-1][1]) // 2
    return png(img.crop((0, 0, img.width, cut)).resize((img.width, cut)))


@pytest.mark.parametrize("make,words", [
    (lambda: png(np.full((300, 400), 255)), "no ecg trace"),
    (lambda: png(np.zeros((300, 400))), "no ecg trace"),
    (lambda: png(np.random.default_rng(1).integers(0, 256, (300, 400))), ""),
    (bars, ""),
    (photograph, ""),
    (lambda: b"%PDF-1.4 not a picture", "pdf"),
])
def test_pictures_without_an_ecg_get_one_line(make, words):
    """Refused by the digitizer, or by the recordings' quality verdict on the trace it read: either way one
    line, from the same call the app and the CLI make."""
    from ecg_core.model import predict
    from ecg_core.pipeline.picture import classify_picture

    with pytest.raises(DigitizeError) as exc:
        classify_picture(make(), predict.load(), "picture")
    msg = str(exc.value)
    assert msg and "\n" not in msg and words in msg.lower()


def test_a_short_12_lead_crop_is_not_taken_for_three_stacked_strips_silently():
    """Without its rhythm strip the 3 x 4 rows are read as stacked strips and the note says which is used."""
    d = digitize(twelve_lead_without_rhythm_strip())
    assert d.layout == "stacked" and any("top one is classified" in n for n in d.notes)


def test_find_pulse_ignores_ordinary_beats():
    for p in [q for q in PICTURES if not (q.name.startswith("seed_thin") and "_beat_" not in q.name)]:
        t = truth(p)
        d = digitize(p.read_bytes(), span_s=None if t["grid"] else float(t["signal"].size / t["fs"]))
        if "monitor" in p.name or "plot" in p.name or "seed" in p.name:  # these styles draw no pulse
            assert not any("calibration pulse" in n for n in d.notes), p.name


def test_nothing_is_left_of_a_pulse_detector_on_a_flat_strip():
    m = np.zeros((100, 300), bool)
    m[50:52, 10:290] = True
    p = trace.follow(m, m.astype(np.float32), (0, 100), 50)
    assert find_pulse(p, 5.0) is None


# ------------------------------------------------------------------ plots, photos, dense strips, pulses beside

MITDB = Path(__file__).resolve().parent / "data" / "mitdb"


@pytest.fixture(scope="module")
def excerpt():
    """10 s of real MLII (record 232 of the committed excerpt) and its beats."""
    from ecg_core.bench_pictures import read_record

    rec = read_record(MITDB, "232")
    a, n = 3600, 3600
    inside = (rec.beats >= a) & (rec.beats < a + n)
    return rec.signal[a:a + n], rec.fs, rec.beats[inside] - a, rec.symbols[inside]


def _drawn(excerpt, style: str, seed: int = 3, layout: str = "strip", **kw):
    from ecg_core.picture import synth

    x, fs, r, s = excerpt
    return synth.draw(x, fs, style, r_peaks=r, symbols=s, seed=seed, layout=layout, **kw)


def test_a_plots_frame_and_gridlines_are_not_an_ecg_grid(excerpt):
    """A plot's frame and its few gridlines share harmonics with a grid's comb by chance; they do not repeat at
    the 5 mm lag, so the plot is read without grid calibration (its time from the span, not a false 1 mm)."""
    for seed in range(4):
        d = _drawn(excerpt, "plot_axes", seed)
        rgb, _ = decode_rgb_with_notes(d.data)
        assert grid.grid_period(grid.ground(rgb).line_ink) is None, seed
        assert digitize(d.data).calibration.method == "assumed"


def test_repeat_at_tells_a_comb_from_a_few_lines():
    comb = np.zeros(600)
    comb[::6] = 1.0  # 1 mm lines every 6 px, bold every 30
    comb[::30] = 2.0
    few = np.zeros(600)
    few[[40, 190, 400]] = 2.0
    assert grid.repeat_at(comb, 30.0) > 0.8
    assert abs(grid.repeat_at(few, 30.0)) < 0.1


def test_a_gridless_strip_is_timed_from_its_line_centres(excerpt):
    """Without grid the stated span runs between the line's centres, not its ink ends (half a line width
    each side): the scale is then within 0.2 % of the truth; a 10 s strip is recognised from its beats."""
    for style in ("no_grid", "plot_axes"):
        d = _drawn(excerpt, style)
        dig = digitize(d.data)
        assert dig.calibration.method == "assumed" and "beats drawn" in dig.calibration.description
        scale = dig.width / d.width
        assert dig.calibration.px_per_s == pytest.approx(d.px_per_s * scale, rel=0.002), style


def test_a_dense_tiny_strip_is_read_not_taken_for_a_photograph(excerpt):
    """192 x 128 for 10 s: ink covers 10-20 % of the strip, yet it is all the followed line."""
    d = _drawn(excerpt, "seed_thin")
    dig = digitize(d.data)
    assert dig.traces[dig.primary].duration_s == pytest.approx(10.0, abs=0.3)


def test_a_photos_keystone_is_measured_and_undone(excerpt):
    """The vertical grid lines of a photo taken at an angle tilt differently across the picture: the fitted
    tilt (a line in the column) follows the true, projective one within 0.03 at 15 % and 85 % of the width."""
    from ecg_core.picture.synth import apply_homography

    found = 0
    for seed in range(6):
        d = _drawn(excerpt, "photo", seed)
        rgb, _ = decode_rgb_with_notes(d.data)
        g = grid.ground(rgb)
        field = grid.shear_field(g.line_ink)
        if field is None:
            continue
        found += 1
        h, w = g.line_ink.shape
        inv = np.linalg.inv(d.homography)
        for x in (0.15 * w, 0.85 * w):  # the true tilt of a paper vertical through (x, h/2)
            p = inv @ np.array([x, h / 2.0, 1.0])
            p /= p[2]
            top, bottom = apply_homography(d.homography, np.array([[p[0], p[1] - 40], [p[0], p[1] + 40]]))
            true = (bottom[0] - top[0]) / (bottom[1] - top[1])
            assert float(field.tilt(x)) == pytest.approx(true, abs=0.03), (seed, x)
    assert found >= 3


def test_a_screens_amplitude_is_relative_unless_a_pulse_shows_it(excerpt):
    d = _drawn(excerpt, "monitor", 5)
    dig = digitize(d.data)
    assert dig.light_on_dark and dig.calibration.px_per_mv is None


def test_a_pulse_beside_its_trace_is_not_a_strip_of_its_own(excerpt):
    """A short beat picture with its calibration pulse at the left: one trace, the pulse recognised."""
    hits = 0
    for seed in range(12):
        d = _drawn(excerpt, "paper_red", seed, layout="beat", beat_seconds=1.6)
        dig = digitize(d.data)
        assert dig.layout == "strip", seed
        hits += any("calibration pulse" in n for n in dig.notes)
    assert hits >= 1


def test_count_spikes_counts_beats_not_their_two_sides():
    from ecg_core.picture.digitize import count_spikes

    t = np.arange(1000)
    rows = 100.0 - 40.0 * np.exp(-(((t % 200) - 100) / 4.0) ** 2) + 15.0 * np.exp(-(((t % 200) - 110) / 4.0) ** 2)
    assert count_spikes(rows) == 5
    # three deep PVCs reaching further below the baseline than the twelve R waves above it: twelve beats
    x = np.arange(3000)
    rows = np.full(x.size, 100.0)
    for k, c in enumerate(range(100, 3000, 200)):
        rows -= (40.0 if k % 5 else -60.0) * np.exp(-((x - c) / 4.0) ** 2)
    assert count_spikes(rows) == 12
    # one upright beat on a baseline with a small wobble: the wobble below the baseline is not beats
    one = 100.0 - 40.0 * np.exp(-((x[:400] - 200) / 4.0) ** 2) + 1.5 * np.sin(x[:400] / 6.0)
    assert count_spikes(one) == 1


def test_sorted_quantiles_are_numpys_exactly():
    """The sort-based medians and percentiles of grid give numpy's floats: the same ranks, interpolation weight
    and arithmetic (ink maps: many exact zeros and ties, even and odd counts)."""
    rng = np.random.default_rng(0)
    for trial in range(60):
        h, w = (int(v) for v in rng.integers(1, 40, size=2))
        a = rng.random((h, w)).astype(np.float32)
        a[a < rng.random()] = 0
        if trial % 3 == 0:
            a = np.round(a * 4) / 4
        for q in (0.0, 0.5, 30.000000000000004, 50.0, 99.9, 99.95, 100.0):
            for nonnegative in (False, True):
                np.testing.assert_array_equal(grid.column_percentile(a, q, nonnegative), np.percentile(a, q, axis=0))
                np.testing.assert_array_equal(grid.row_percentile(a, q, nonnegative), np.percentile(a, q, axis=1))
                assert grid.percentile(a, q, nonnegative) == float(np.percentile(a, q))
        np.testing.assert_array_equal(grid.column_median(a, nonnegative=True), np.median(a, axis=0))
        signed = a.astype(np.float64) - 0.5
        np.testing.assert_array_equal(grid.column_median(signed), np.median(signed, axis=0))
        np.testing.assert_array_equal(grid.column_percentile(signed, 30.0), np.percentile(signed, 30.0, axis=0))


def _runs_one_column_at_a_time(starts: list, ends: list, thick: float, baseline: float) -> np.ndarray | None:
    """The dynamic programme over the columns' runs stepped column by column, as trace._choose_runs defines it."""
    back, prev_s, prev_e, prev_cost = [], None, None, None
    for s, e in zip(starts, ends):
        if s.size == 0:
            back.append(None)
            if prev_cost is not None:
                prev_cost = prev_cost + trace.SKIP_COST
            continue
        if prev_s is None:
            cost, bp = np.abs((s + e) / 2.0 - baseline) * 1e-3, np.full(s.size, -1)
        else:
            gap = np.maximum(0, np.maximum(s[None, :] - prev_e[:, None], prev_s[:, None] - e[None, :]))
            total = prev_cost[:, None] + gap / thick
            bp = np.argmin(total, axis=0)
            cost = total[bp, np.arange(s.size)]
        back.append(bp)
        prev_s, prev_e, prev_cost = s, e, cost
    if prev_cost is None:
        return None
    chosen, j = np.full(len(starts), -1), int(np.argmin(prev_cost))
    for i in range(len(starts) - 1, -1, -1):
        if back[i] is not None:
            chosen[i], j = j, int(back[i][j])
            if j < 0:
                break
    return chosen


def test_the_followed_runs_are_the_column_by_column_programmes():
    """Stretches of one-run columns are stepped at once (their costs summed in the same order): the same runs
    are chosen as stepping every column, on traces with gaps, specks and text-like blobs beside them."""
    rng = np.random.default_rng(1)
    for _ in range(40):
        h, w = 40, int(rng.integers(20, 120))
        mask = np.zeros((h, w), dtype=bool)
        rows = np.clip(np.cumsum(rng.integers(-3, 4, size=w)) + h // 2, 0, h - 3)
        for x, r in enumerate(rows):
            mask[r: r + int(rng.integers(1, 4)), x] = rng.random() > 0.1  # a broken line
        for _ in range(int(rng.integers(0, 6))):  # blobs above and below it
            y0, x0 = int(rng.integers(0, h - 4)), int(rng.integers(0, w - 4))
            mask[y0: y0 + int(rng.integers(1, 4)), x0: x0 + int(rng.integers(1, 5))] = True
        start_row, end_row, cuts = trace._column_runs_flat(mask)
        starts, ends = trace._column_runs(mask)
        for x in range(w):  # the runs themselves
            s, e = trace._runs(mask[:, x])
            np.testing.assert_array_equal(starts[x], s)
            np.testing.assert_array_equal(ends[x], e)
        thick = float(rng.choice([1.0, 2.0, 3.5]))
        got = trace._choose_runs(start_row, end_row, cuts, thick, h / 2)
        want = _runs_one_column_at_a_time(starts, ends, thick, h / 2)
        assert (got is None) == (want is None)
        if want is not None:
            np.testing.assert_array_equal(got, want)
        r, s0, e0 = trace._row_runs(mask)
        for y in range(h):
            s, e = trace._runs(mask[y])
            np.testing.assert_array_equal(s0[r == y], s)
            np.testing.assert_array_equal(e0[r == y], e)


def test_text_beside_the_start_of_a_trace_is_left_out_but_a_calibration_pulse_is_not():
    from ecg_core.picture import trace as tracelib
    from ecg_core.picture.digitize import without_stray_ends

    def path(y):
        x = np.arange(y.size, dtype=float) + 5
        return tracelib.Path(5, y, x, y.copy(), 2.0, 1.0, 1.0, 2.0)

    t = np.arange(1000)
    ecg = 80.0 - 25.0 * np.exp(-(((t % 100) - 50) / 3.0) ** 2)  # ten beats on a baseline at row 80
    texted = ecg.copy()
    texted[:25] = 12.0 + 4 * (t[:25] % 3)  # a monitor's header text, far above every row the trace visits
    texted[8:10] = np.nan  # between two glyphs
    cut = without_stray_ends(path(texted))
    assert cut.x_start == 30 and cut.y.size == 975 and np.all(cut.sample_x >= 30)
    pulsed = ecg.copy()
    pulsed[10:40] = 40.0  # a 1 mV pulse rising from the baseline, taller than the beats
    pulsed[40:50] = 80.0
    assert without_stray_ends(path(pulsed)).y.size == 1000
    assert without_stray_ends(path(ecg)).y.size == 1000


@pytest.mark.parametrize("width", [2, 4])
def test_a_trace_carries_its_line_width(width):
    img = np.full((200, 800), 255, np.uint8)
    xs = np.arange(20, 780, dtype=float)
    ys = 100 + 40 * np.sin(xs / 60.0)  # a slow wave: long level stretches at its tops and troughs
    cv2.polylines(img, [np.round(np.stack([xs, ys], 1)).astype(np.int32)], False, 0, width)
    drawn = int((img[:, 94] < 128).sum())  # the ink of a column at a crest (x / 60 = pi / 2)
    tr = digitize(png(img), span_s=4.0).traces[0]
    assert drawn >= width and tr.ink_width == pytest.approx(drawn, abs=0.75)
