"""AppTest of the Signal page: a recording with a VF episode and a noise segment shows both."""

from __future__ import annotations

import numpy as np
import pytest
from app_support import all_text, new_app, run_ok, switch
from conftest import VFDB

from ecg_core.io import signal_io


@pytest.fixture
def page(monkeypatch):
    monkeypatch.delenv("ECG_MODELS_DIR", raising=False)
    return switch(run_ok(new_app()), "signal")


def test_vf_episode_and_noise_segment_are_shown(page):
    """vfdb 430 (flutter from 18 s) whose first 12 s are a dead lead, uploaded as a CSV."""
    sig = signal_io.read_path(VFDB / "430")
    y = sig.signal.copy()
    y[: int(12 * sig.fs)] = y[int(12 * sig.fs)]
    body = "time,ecg\n" + "\n".join(f"{i / sig.fs:.4f},{v:.4f}" for i, v in enumerate(y))
    page.file_uploader(key="signal_upload").set_value([("430_dead_start.csv", body.encode(), "text/csv")])
    at = run_ok(page)
    m = {x.label: x.value for x in at.metric}
    assert int(m["VF episodes"]) >= 1 and float(m["VF / flutter"].split()[0]) >= 30
    assert float(m["Noise (unreadable)"].split()[0]) >= 10
    text = all_text(at)
    assert "Noise / unreadable segments" in text and "Ventricular fibrillation / flutter episodes" in text
    result = at.session_state["signal_result"][1]
    assert (result.noise["reason"] == "flat line").any()
    assert "Download noise segments (CSV)" in [b.label for b in at.get("download_button")]
    # the rhythm strip shades both: the VF episode and the noise segment
    shapes = [s for chart in at.get("plotly_chart") for s in _shapes(chart)]
    fills = {s.get("fillcolor") for s in shapes}
    from ecg_core.figures import record_figures

    assert {record_figures.VF_FILL, record_figures.NOISE_FILL} <= fills
    # a beat inside the noise is marked in the beat table and not classified
    assert not np.any(result.beats["in_noise"] & result.beats["in_vf_episode"])


def _shapes(chart) -> list[dict]:
    import json

    return json.loads(chart.proto.spec).get("layout", {}).get("shapes", [])
