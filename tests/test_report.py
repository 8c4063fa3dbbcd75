"""The reviewers' HTML report: self-contained, parseable, and holding what a reviewer needs."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from app_support import MODELS

from ecg_core import report
from ecg_core.classes import CLASS_KEYS
from ecg_core.io import samples
from ecg_core.io.signal_io import read_upload
from ecg_core.picture.imaging import encode_png

MADE = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


class Collect(HTMLParser):
    """Tags, image sources, links and text of a page; raises on a tag closed that was not open."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.images: list[str] = []
        self.external: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a.get("src", ""))
        for key in ("src", "href"):
            if a.get(key, "").startswith(("http", "//")):
                self.external.append(a[key])
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-3:])
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(page: bytes) -> Collect:
    c = Collect()
    c.feed(page.decode("utf-8"))
    c.close()
    assert c.stack == [], c.stack
    return c


@pytest.fixture(scope="module")
def card() -> dict:
    from ecg_core.model import predict

    return predict.default_model(MODELS).card


@pytest.fixture(scope="module")
def vf_result():
    from ecg_core.model import predict
    from ecg_core.pipeline import record_mode

    clf = predict.load(predict.default_model(MODELS))
    return record_mode.classify_signal(read_upload(samples.sample_files("vfdb_609_960s")), clf)


def test_record_report_holds_strip_beats_f1_and_notice(vf_result, card):
    beat = 10
    png = encode_png(vf_result.image(beat))
    page = report.record_report(vf_result, card, selected=beat, beat_png=png, gradcam_png=png,
                                source="bundled sample", made_at=MADE)
    doc = parse(page)
    text = " ".join(doc.text)
    assert doc.external == []  # self-contained: nothing fetched from elsewhere
    svgs = [s for s in doc.images if s.startswith("data:image/svg+xml;base64,")]
    pngs = [s for s in doc.images if s.startswith("data:image/png;base64,")]
    assert len(svgs) == 2 and len(pngs) == 2
    strip = base64.b64decode(svgs[1].split(",", 1)[1]).decode()
    assert strip.startswith("<svg") and "<polyline" in strip
    assert base64.b64decode(pngs[0].split(",", 1)[1]) == png
    n = len(vf_result.beats)
    assert f"Beat labels ({n} beats)" in text
    assert page.count(b"<tr><td class=\"num\">") >= n  # one table row per beat
    if card.get("split") == "all":  # trained on every patient: the recipe's cross-validation is quoted
        assert f"{card['metrics']['crossval_macro_f1']:.3f}" in text and "cross-validation" in text
    else:
        assert f"{card['metrics']['recordwise_macro_f1']:.3f}" in text
        assert "DS1 -> DS2, patients never seen" in text
    assert report.NOTICE in text
    assert "2026-03-01 12:30:00 UTC" in text
    assert card["name"] in text
    assert "Selected beat: beat 11 at" in text
    start = float(vf_result.episodes["start_s"].iloc[0])
    # the VF episode (reference: 61-83 s), widened by the detector's padding (up to 3 s, chosen in training)
    assert 57 <= start <= 63 and f"{start:.4g}" in text


def test_generic_report_for_a_picture(card):
    beats = pd.DataFrame({"time_s": [0.4, 1.2], "predicted": ["N", "V"], "confidence": [0.91, 0.62]})
    picture = encode_png(np.full((40, 80, 3), 200, np.uint8))
    probs = np.array([0.1, 0.0, 0.0, 0.05, 0.8, 0.05])
    page = report.build_report("Digitized <strip> & co", beats=beats, model_card=card, input_image_png=picture,
                               trace_png=picture, probabilities=probs, selected_label="beat 2",
                               facts=[("Picture", "photo.jpg"), ("Time scale", "from the grid")],
                               notes=["a <b>note</b>"], made_at=MADE)
    doc = parse(page)
    text = " ".join(doc.text)
    assert sum(s.startswith("data:image/png;base64,") for s in doc.images) == 2
    assert "Digitized <strip> & co" in text and "a <b>note</b>" in text  # escaped, shown as text
    assert b"<b>note</b>" not in page
    assert "Beat labels (2 beats)" in text and "80.0%" in text
    assert report.NOTICE in text
    assert "Ventricular fibrillation episodes" not in text  # not given, not shown


def test_model_numbers_from_stored_results_when_the_card_has_none(card):
    if not (MODELS / "results" / f"{card['name']}__recordwise.json").exists():  # trained on every patient
        card = next(json.loads(p.read_text()) for p in sorted(MODELS.glob("*.json")) if p.with_suffix(".keras").exists()
                    and (MODELS / "results" / f"{p.stem}__recordwise.json").exists())
    bare = {k: v for k, v in card.items() if k != "metrics"}
    assert report.unseen_numbers(bare) == [("Record-wise macro F1", "not evaluated on patients never seen")]
    stored = json.loads((MODELS / "results" / f"{card['name']}__recordwise.json").read_text())
    rows = dict(report.unseen_numbers(bare, stored))
    assert rows["Record-wise macro F1"] == f"{stored['metrics']['macro_f1']:.3f}"
    assert rows["Test records"].startswith(f"{len(stored['test_records'])}: mitdb/100")


def test_long_tables_are_cut_and_said_so(card):
    n = 30
    beats = pd.DataFrame({"time_s": np.arange(n) * 0.8, "predicted": ["N"] * n})
    page = report.build_report("long", beats=beats, model_card=card, made_at=MADE, max_rows=10)
    assert "The first 10 of 30 beats" in " ".join(parse(page).text)
    assert report.class_counts(beats) == {k: (n if k == "N" else 0) for k in CLASS_KEYS}


def test_strip_svg_is_bounded_and_file_name_is_safe():
    x = np.sin(np.linspace(0, 400, 360 * 600))
    svg = report.strip_svg(x, 360.0, [(1.0, "N"), (2.0, "V")], [(3.0, 5.0)])
    assert len(svg) < 200_000  # 60 s drawn, decimated to the pixels
    assert report.overview_svg(x, 360.0).startswith(b"<svg")
    assert report.report_file_name("../a b/c") == ".._a_b_c_report.html"
