"""AppTest of the Signal page: real uploads (WFDB set, CSV), bundled samples, the real model, the shared
prediction panel, the report download."""

from __future__ import annotations

import pytest
import wfdb
from app_support import all_text, new_app, run_ok, switch
from conftest import MITDB

OCTET = "application/octet-stream"


@pytest.fixture
def page(monkeypatch):
    monkeypatch.delenv("ECG_MODELS_DIR", raising=False)
    return switch(run_ok(new_app()), "signal")


def upload(at, files: list[tuple[str, bytes]]):
    at.file_uploader(key="signal_upload").set_value([(n, b, OCTET) for n, b in files])
    return run_ok(at)


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_wfdb_upload_with_annotations(page):
    at = upload(page, [(f.name, f.read_bytes()) for f in sorted(MITDB.glob("208.*"))])
    m = metrics(at)
    assert int(m["Beats"].replace(",", "")) > 150
    assert m["VF episodes"] == "0"
    assert m["Detection sensitivity"].endswith("%") and float(m["Detection sensitivity"][:-1]) >= 99.0
    text = all_text(at)
    assert "Agreement with the reference annotations" in text and "Beat 1 of" in text
    assert "Read MLII, with V1 for the bundle-branch-block measurements." in text  # 208's second lead is V1
    assert [b.label for b in at.get("download_button")] == ["Download this beat's picture (PNG)",
                                                            "Download beats (CSV)", "Download VF episodes (CSV)",
                                                            "Download the report (HTML)"]

    at.number_input(key="signal_beat").set_value(7)
    run_ok(at)
    assert any(c.value.startswith("Beat 7 of") for c in at.caption)
    assert "probability" in all_text(at)  # the shared prediction panel of the chosen beat

    result = at.session_state["signal_result"][1]
    late_v = [i for i, p in enumerate(result.beats["predicted"]) if p == "V" and result.beats["time_s"].iloc[i] > 60]
    at.number_input(key="signal_beat").set_value(late_v[0])  # the beat before the first V after 60 s
    run_ok(at)
    at.selectbox(key="signal_jump_class").set_value("V")
    at.button(key="signal_jump").click()
    run_ok(at)
    assert at.number_input(key="signal_beat").value == late_v[0] + 1
    t = result.beats["time_s"].iloc[late_v[0]]
    start = at.slider(key="signal_start").value
    assert start <= t < start + at.select_slider(key="signal_length").value  # the strip followed the beat


def test_csv_upload_with_rate_and_refusal(page):
    x = wfdb.rdrecord(str(MITDB / "232"), sampto=7200).p_signal[:, 0]
    body = "\n".join(f"{v:.4f}" for v in x).encode()
    at = upload(page, [("one.csv", body)])
    assert [e.value for e in at.error] == ["one.csv: one column of samples needs the sampling rate (Hz)."]

    at.number_input(key="signal_fs").set_value(360.0)
    run_ok(at)
    assert not at.error
    assert int(metrics(at)["Beats"]) >= 15
    assert "Agreement with the reference annotations" not in all_text(at)
    assert "One lead read (CSV, no V1): bundle-branch blocks are found less often." in all_text(at)


def test_flat_csv_is_refused_with_its_message(page):
    at = upload(page, [("flat.csv", b"t,v\n" + b"".join(f"{i / 250:.4f},0.1\n".encode() for i in range(5000)))])
    assert [e.value for e in at.error] == ["flat.csv: the signal is a flat line (no variation); check the lead and "
                                           "the units."]


def pick_sample(at, key: str):
    at.selectbox(key="signal_sample_pick").set_value(key)
    at.button(key="signal_sample_run").click()
    return run_ok(at)


def test_sample_recording_is_classified_with_report(page):
    assert "Try a sample recording" in all_text(page)
    at = pick_sample(page, "mitdb_233_1310s")
    m = metrics(at)
    assert int(m["Beats"].replace(",", "")) > 250
    assert float(m["PVC burden"].split()[0]) > 20.0  # about one beat in three is a PVC
    text = all_text(at)
    assert "Sample recording: Premature ventricular contractions" in text
    assert "Agreement with the reference annotations" in text  # the bundled .atr is the reference
    # the PVCs are found, and the N beats with V1 read beside MLII (99.7 % agreement; with MLII alone, about a
    # quarter of the N beats, those with a deep late S in lead II, were read as RBBB: 79.9 %)
    assert "Read MLII, with V1 for the bundle-branch-block measurements." in text
    assert float(m["Class agreement"][:-1]) > 95.0
    assert at.session_state["signal_result"][1].comparison.per_class.loc["V", "agreement"] >= 0.95
    assert "Download the report (HTML)" in [b.label for b in at.get("download_button")]
    assert at.session_state["signal_result"][1].name == "mitdb_233_1310s"


def test_vf_sample_shows_its_episode_and_an_upload_takes_over(page):
    at = pick_sample(page, "vfdb_609_960s")
    m = metrics(at)
    assert m["VF episodes"] == "1"
    assert float(m["Reference VF covered"].split()[0]) >= 18  # about 19-21 of the reference's 21 s
    assert "Download the report (HTML)" in [b.label for b in at.get("download_button")]

    at = upload(at, [("flat.csv", b"t,v\n" + b"".join(f"{i / 250:.4f},0.1\n".encode() for i in range(5000)))])
    assert [e.value for e in at.error][0].startswith("flat.csv: the signal is a flat line")
