"""Uploads are processed in memory: classifying them writes no file anywhere and logs no name or byte.

The real app (streamlit_app.py under AppTest, real default model) classifies uploads whose names and bytes
carry a random token. HOME and TMPDIR point at fresh folders while it runs. Checked after the upload run:
- no file appeared or changed in the repository, the fresh HOME or the fresh temp folder;
- no file in the real temp folder or real home that changed meanwhile holds the token in its name or content;
- nothing written to stdout/stderr or through `logging` holds the token or the start of the uploaded bytes.
A first, identical upload warms up (TensorFlow writes its autograph code to the temp folder once per process).
Also: the Streamlit configuration keeps telemetry off, XSRF protection on and error details hidden.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_images" / "waveform" / "V" / "mitdb_200_396585.png"
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache"}
REPO_SKIP = {ROOT / ".git", ROOT / "data", ROOT / ".venv"}  # data/: gitignored caches of long jobs
HOME_SKIP = {".pyenv", ".rustup", ".cargo", ".m2", ".npm"}  # toolchains, never written by the app


def snapshot(root: Path, skip: set[Path] = frozenset(), skip_names: set[str] = frozenset()) -> dict[str, tuple]:
    """path -> (mtime_ns, size) of every file below root, minus caches and the skipped folders."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and d not in skip_names and here / d not in skip]
        for f in filenames:
            try:
                s = os.lstat(here / f)
            except OSError:
                continue
            out[str(here / f)] = (s.st_mtime_ns, s.st_size)
    return out


def changed(before: dict, after: dict) -> list[str]:
    return sorted(p for p, v in after.items() if before.get(p) != v)


def holds(path: str, token: bytes) -> bool:
    if token.decode() in path:
        return True
    try:
        return os.path.getsize(path) < 50_000_000 and token in Path(path).read_bytes()
    except OSError:
        return False


def png_with_text(a: np.ndarray, text: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", text)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def uploads(token: str) -> list[tuple[str, bytes, str]]:
    """An ECG beat, a photo-like non-ECG image and a broken file, all carrying the token."""
    beat = 255 - np.asarray(Image.open(SAMPLE))
    noise = np.random.default_rng(0).integers(0, 256, (200, 300), dtype=np.uint8)
    good = png_with_text(beat, token)
    return [(f"../../{token}_beat.png", good, "image/png"),
            (f"{token}_noise.png", png_with_text(noise, token), "image/png"),
            (f"{token}_broken.png", good[:300], "image/png")]


@pytest.mark.slow
def test_uploads_leave_no_trace_on_disk_or_in_logs(tmp_path, monkeypatch, capfd):
    from app_support import all_text, new_app, run_ok

    monkeypatch.delenv("ECG_MODELS_DIR", raising=False)
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    real_tmp = Path(tempfile.gettempdir())
    real_home = Path.home()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))

    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Collect(logging.DEBUG)
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict))]
    for lg in loggers:
        lg.addHandler(handler)
    try:
        at = run_ok(new_app())
        at.file_uploader(key="classify_upload").set_value(uploads(f"warmup{uuid.uuid4().hex[:8]}"))
        run_ok(at)  # loads and traces the model, writes TensorFlow's autograph files
        capfd.readouterr()
        records.clear()

        token = f"secret{uuid.uuid4().hex[:12]}"
        files = uploads(token)
        t0 = time.time_ns()
        repo0, home0, tmp0 = snapshot(ROOT, REPO_SKIP), snapshot(home), snapshot(tmp)
        at.file_uploader(key="classify_upload").set_value(files)
        run_ok(at)
        repo1, home1, tmp1 = snapshot(ROOT, REPO_SKIP), snapshot(home), snapshot(tmp)
        out, err = capfd.readouterr()
    finally:
        for lg in loggers:
            lg.removeHandler(handler)

    text = all_text(at)
    assert "1 images classified" in text or "probability" in text  # the upload really was classified
    assert "damaged or truncated" in text  # and the broken file was reported, not crashed on

    assert changed(repo0, repo1) == [], "files written in the repository"
    assert changed(home0, home1) == [], "files written in the home folder"
    assert changed(tmp0, tmp1) == [], "files written in the temp folder"
    assert not (ROOT.parent.parent / f"{token}_beat.png").exists()
    secret = token.encode()
    for root, skip_names in ((real_tmp, set()), (real_home, HOME_SKIP)):
        touched = [p for p, (mtime, _) in snapshot(root, skip_names=skip_names).items() if mtime >= t0]
        assert [p for p in touched if holds(p, secret)] == [], f"upload data written under {root}"

    logged = "\n".join([out, err, *records])
    head = files[0][1][:24]
    for needle in (token, base64.b64encode(head).decode()[:24], repr(head)[2:30], head.hex()[:32]):
        assert needle not in logged, f"logged: {needle!r}"


def test_streamlit_config_is_hardened():
    """The committed config: keys Streamlit knows, with the values a public deployment needs."""
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["browser"]["gatherUsageStats"] is False
    assert cfg["server"]["enableXsrfProtection"] is True
    assert cfg["server"]["enableCORS"] is True  # XSRF protection needs CORS protection on
    assert 50 <= cfg["server"]["maxUploadSize"] <= 500  # MB: an image is <= 20 MB, a 24 h recording ~100 MB
    assert cfg["client"]["toolbarMode"] == "viewer"
    assert cfg["client"]["showErrorDetails"] == "none"
    assert cfg["server"].get("enableStaticServing", False) is False
    assert cfg["server"]["address"] == "127.0.0.1"  # serving on a network is a deliberate flag (README)
    assert cfg["server"]["fileWatcherType"] == "none" and cfg["server"]["runOnSave"] is False


def test_streamlit_reads_every_configured_key():
    """`streamlit config show` run in the repository lists each key of our file as set there (so none is
    misspelled or unknown to the installed Streamlit)."""
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    shown = subprocess.run([sys.executable, "-m", "streamlit", "config", "show"], cwd=ROOT, capture_output=True,
                           text=True, timeout=120, check=True).stdout.splitlines()
    for section, values in cfg.items():
        for key, value in values.items():
            line = f"{key} = {'true' if value is True else 'false' if value is False else repr(value)}"
            line = line.replace("'", '"')
            at = [i for i, s in enumerate(shown) if s.strip() == line]
            assert at, f"[{section}] {key} not accepted by Streamlit"
            assert any("config.toml" in shown[j] for j in range(max(0, at[0] - 3), at[0])), f"{key} not from ours"


def test_upload_names_are_shown_without_folders_or_control_characters():
    from ecg_core.model import predict
    from ui import pictures

    strip = ROOT / "sample_images" / "pictures" / "normal_paper_red_strip.png"
    (o,) = pictures.process([("../../etc/\u202ebeat`.png", strip.read_bytes())], predict.load(), None, "auto")
    assert o.name == "beat'.png" and o.ok and o.result.name == "beat'.png"
