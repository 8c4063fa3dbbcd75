"""The Classify page under AppTest: real pictures (bundled samples drawn from test-split recordings, and
hostile uploads) through the real digitizer, pipeline and default model."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from app_support import PICTURES, all_text, new_app, picture_manifest, picture_result, png_bytes, run_ok
from PIL import Image, ImageDraw

from ecg_core.classes import CLASS_KEYS, CLASS_NAMES
from ecg_core.picture.imaging import display_name

STRIP = "pvc_plot_strip.png"  # a plot with axes, ticks and labels: no grid, so the span check runs
PAPER = "normal_paper_red_strip.png"  # ECG paper: calibrated from the grid


@pytest.fixture
def app(monkeypatch):
    monkeypatch.delenv("ECG_MODELS_DIR", raising=False)
    return run_ok(new_app())


def upload(at, files: list[tuple[str, bytes]]):
    at.file_uploader(key="classify_upload").set_value([(n, b, "image/png") for n, b in files])
    return run_ok(at)


def picture_chart(at):
    return next(c for c in at.get("plotly_chart") if '"extracted trace"' in c.proto.spec
                or '"explanation"' in c.proto.spec)


def bar_chart_png() -> bytes:
    img = Image.new("RGB", (640, 360), "white")
    d = ImageDraw.Draw(img)
    for i, h in enumerate([120, 200, 90, 260, 180, 140]):
        d.rectangle([60 + i * 90, 320 - h, 120 + i * 90, 320], fill=(40, 90, 200))
    d.line([40, 320, 620, 320], fill="black", width=2)
    d.line([40, 20, 40, 320], fill="black", width=2)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_strip_picture_gives_per_beat_labels_and_the_trace_over_the_picture(app):
    expected = picture_result(STRIP)
    upload(app, [("strip.png", (PICTURES / STRIP).read_bytes())])
    beats = next(m for m in app.metric if m.label == "Beats")
    assert int(beats.value) == len(expected.beats) >= 10
    table = app.dataframe[0].value
    assert list(table["predicted"]) == [CLASS_NAMES[k] for k in expected.beats["predicted"]]
    assert np.allclose(table["time (s)"], expected.beats["time_s"])
    spec = picture_chart(app).proto.spec
    assert '"extracted trace"' in spec and 'base64,' in spec  # the user's own picture under it
    for key in set(expected.beats["predicted"]):
        assert f"({key})" in spec  # a legend entry per predicted class, markers on the beats
    assert "Span check" in all_text(app)  # no grid: the time scale was checked at 0.8x and 1.25x
    assert [b.label for b in app.download_button] == ["Download every beat (CSV)", "Download the report (HTML)"]


def test_explanation_is_drawn_along_the_trace_and_the_selected_beat_has_its_heatmap(app):
    upload(app, [("paper.png", (PICTURES / PAPER).read_bytes())])
    next(r for r in app.radio if r.label == "Show on the picture").set_value("explain")
    run_ok(app)
    spec = picture_chart(app).proto.spec
    assert '"explanation"' in spec and '"colorscale"' in spec
    heat = [im for im in app.image if any("Grad-CAM" in c for c in im.captions)]
    assert len(heat) == 1
    beat = app.selectbox(key=next(w.key for w in app.selectbox if w.label == "Beat"))
    beat.set_value(3)
    run_ok(app)
    expected = picture_result(PAPER)
    k = expected.beats["predicted"].iloc[3]
    assert f"**{CLASS_NAMES[k]}**" in all_text(app)
    assert f"**{expected.beats['confidence'].iloc[3]:.1%}**" in all_text(app)


def test_grid_calibration_is_stated(app):
    upload(app, [("paper.png", (PICTURES / PAPER).read_bytes())])
    text = all_text(app)
    assert "ECG grid, small box" in text and "25 mm/s" in text
    assert "calibration pulse" in text


def test_stated_span_is_used_for_a_picture_without_grid(app):
    app.selectbox(key="classify_scale").set_value("a 10 s rhythm strip")
    run_ok(app)
    upload(app, [("plot.png", (PICTURES / STRIP).read_bytes())])
    assert "stated span 10 s" in all_text(app)


def test_bundled_sample_pictures(app):
    m = picture_manifest()
    app.radio(key="classify_source").set_value("samples")
    run_ok(app)
    chosen = app.multiselect(key="sample_pictures").value
    assert chosen == [m["file"].iloc[0]]
    row = m.iloc[0]
    text = all_text(app)
    assert f"record {row['record']}" in text and "reference beats:" in text
    assert int(next(x for x in app.metric if x.label == "Beats").value) == len(picture_result(row["file"]).beats)


def test_unreadable_and_non_ecg_pictures_get_one_line_reasons_and_the_rest_still_run(app):
    good = (PICTURES / PAPER).read_bytes()
    noise = png_bytes(np.random.default_rng(0).integers(0, 256, (240, 320)))
    bad = [("truncated.png", good[: len(good) // 3]), ("notes.png", b"this is text, not an image\n" * 10),
           ("empty.png", b""), ("blank.png", png_bytes(np.full((200, 300), 255))), ("noise.png", noise),
           ("bars.png", bar_chart_png()), ("x`![a](http://example.invalid/a.png)`.png", b"GIF89a")]
    upload(app, [("paper.png", good)] + bad)
    errors = "\n".join(e.value for e in app.error)
    for name, _ in bad:
        shown = display_name(name).replace("`", chr(39))
        line = next(ln for ln in errors.splitlines() if f"`{shown}`" in ln)  # names as inline code: no injection
        assert len(line) > len(shown) + 8  # with its reason, on one line
    assert "empty" in errors.lower() and "not an image" in errors
    summary = app.dataframe[0].value
    assert list(summary["picture"]) == ["paper.png"] + [display_name(n) for n, _ in bad]
    assert summary["status"].iloc[0].startswith("ok") and (summary["beats"].iloc[1:] == 0).all()


def test_many_pictures_give_a_summary_and_a_picker(app):
    m = picture_manifest().head(3)
    upload(app, [(f, (PICTURES / f).read_bytes()) for f in m["file"]])
    summary = app.dataframe[0].value
    assert list(summary["picture"]) == list(m["file"])
    assert list(summary["beats"]) == [len(picture_result(f).beats) for f in m["file"]]
    pick = app.selectbox(key=next(w.key for w in app.selectbox if w.label == "Show"))
    pick.set_value(2)
    run_ok(app)
    assert f"`{m['file'].iloc[2]}`" in all_text(app)


# ---------------------------------------------------------------- the plain functions behind the page

def test_results_csv_has_the_predict_columns_and_one_row_per_beat():
    from ecg_core.model import predict
    from ui import pictures

    clf = predict.load()
    outcomes = pictures.process([(PAPER, (PICTURES / PAPER).read_bytes()), ("bad.png", b"nope")], clf, None, "auto")
    table = pd.read_csv(io.BytesIO(pictures.results_csv(outcomes)), keep_default_na=False)
    assert list(table.columns) == ["file", "beat", "time_s", "predicted", "confidence", *CLASS_KEYS, "error",
                                   "uncertain"]
    n = len(picture_result(PAPER).beats)
    assert len(table) == n + 1 and list(table["beat"][:n].astype(int)) == list(range(n))
    assert table["error"].iloc[-1] and not table["predicted"].iloc[-1]
    probs = table[list(CLASS_KEYS)][:n].astype(float).to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0, atol=2e-3)


def test_the_report_download_is_offered_and_holds_the_picture_and_numbers(app):
    upload(app, [("paper.png", (PICTURES / PAPER).read_bytes())])
    assert "Download the report (HTML)" in [b.label for b in app.download_button]


def test_picture_report_holds_the_picture_the_trace_the_beats_and_the_notice():
    from html.parser import HTMLParser

    from ecg_core import report
    from ecg_core.figures.picture import annotated_png, display_image, input_png
    from ecg_core.model import predict
    from ecg_core.picture.imaging import decode_rgb_with_notes

    res = picture_result(PAPER)
    uri, _ = display_image(decode_rgb_with_notes((PICTURES / PAPER).read_bytes())[0])
    card = predict.default_model().card
    page = report.picture_report(res, card, input_png=input_png(uri), annotated_png=annotated_png(uri, res),
                                 selected=2).decode("utf-8")
    HTMLParser().feed(page)  # parses
    assert page.count("data:image/png;base64,") >= 2  # the picture and the trace drawn on it
    assert f"<td>{len(res.beats)}</td>" in page.replace(" ", "") or str(len(res.beats)) in page
    assert "not a medical device" in page.lower() and "ECG grid, small box" in page
    f1 = card["metrics"].get("crossval_macro_f1", card["metrics"].get("recordwise_macro_f1"))
    assert f"{f1:.3f}" in page
    assert "beat 3 at" in page
