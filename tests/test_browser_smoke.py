"""Real-browser smoke test: start the Streamlit server, upload a photo-like strip JPEG in Debian's chromium.

Run alone with `python -m pytest -m browser tests/test_browser_smoke.py`. Set ECG_SCREENSHOT_DIR to keep
the screenshots; otherwise they go to pytest's tmp_path.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from app_support import PICTURES, ROOT, picture_result

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
STARTUP_S = 180
PREDICTION_S = 240

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server():
    port = free_port()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("ECG_MODELS_DIR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"), "--server.port", str(port),
         "--server.headless", "true", "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited early:\n{proc.stdout.read()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.terminate()
        pytest.fail("streamlit did not become healthy in time")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_photo_strip_in_real_browser_gets_labels(server, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is absent (install Debian's chromium package; never `playwright install`)")
    from playwright.sync_api import expect, sync_playwright

    photo = "pvc_photo_strip.jpg"  # a phone photo of paper: perspective, shading, blur, JPEG
    expected = picture_result(photo)
    out = Path(os.environ.get("ECG_SCREENSHOT_DIR", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1100})
            page.goto(server, wait_until="domcontentloaded")
            page.locator("input[type=file]").first.set_input_files(str(PICTURES / photo),
                                                                   timeout=PREDICTION_S * 1000)
            expect(page.get_by_text("Digitization quality").first).to_be_visible(timeout=PREDICTION_S * 1000)
            expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=60_000)
            # the labels drawn on the user's own picture: "V 97%" style text over each beat
            first = expected.beats.iloc[0]
            label = f"{first['predicted']}{'?' if first['uncertain'] else ''} {first['confidence']:.0%}"
            expect(page.locator(".js-plotly-plot text", has_text=label).first).to_be_attached(timeout=60_000)
            expect(page.locator("[data-testid=stImage] img").first).to_be_visible(timeout=60_000)  # the heatmap
            page.wait_for_timeout(1500)  # let Plotly finish drawing before the screenshot
            shot = out / "classify_photo_strip.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            assert page.locator("[data-testid=stException]").count() == 0
            # the result is a fragment: switching its view reruns it alone, and the explanation is drawn
            page.get_by_text("Explanation along the trace").first.click()
            expect(page.get_by_text("Colour along the trace").first).to_be_visible(timeout=60_000)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(out / "classify_photo_strip_explained.png"), full_page=True)
            assert page.locator("[data-testid=stException]").count() == 0
        finally:
            browser.close()


PAGES = ("Classify", "Signal", "Quiz", "Class guide", "Model comparison", "About")


def test_every_page_renders_wide_and_narrow(server, tmp_path):
    """Each page at 1280 px and on a narrow (phone-sized) window: it renders, without an exception, and the
    screenshots are kept (ECG_SCREENSHOT_DIR) for a person to look at."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is absent (install Debian's chromium package; never `playwright install`)")
    from playwright.sync_api import expect, sync_playwright

    out = Path(os.environ.get("ECG_SCREENSHOT_DIR", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for width, height in ((1280, 900), (420, 860)):
                page = browser.new_page(viewport={"width": width, "height": height})
                page.goto(server, wait_until="domcontentloaded")
                expect(page.locator("h1").first).to_be_visible(timeout=PREDICTION_S * 1000)
                for name in PAGES:
                    if width < 600:  # the sidebar is folded away on a narrow window: open it to navigate
                        toggle = page.locator("[data-testid=stExpandSidebarButton], "
                                              "[data-testid=stSidebarCollapsedControl] button")
                        if toggle.count():
                            toggle.first.click()
                    page.locator("[data-testid=stSidebarNav] a", has_text=name).first.click()
                    expect(page.locator("h1").first).to_be_visible(timeout=PREDICTION_S * 1000)
                    if width < 600:  # fold the sidebar again to see the page itself
                        close = page.locator("[data-testid=stSidebarCollapseButton] button, "
                                             "[data-testid=stSidebarCollapseButton]")
                        if close.count():
                            close.first.click()
                    page.wait_for_timeout(4000)
                    assert page.locator("[data-testid=stException]").count() == 0, (name, width)
                    shot = out / f"page_{name.lower().replace(' ', '_')}_{width}.png"
                    page.screenshot(path=str(shot))
                    assert shot.stat().st_size > 5_000
                page.close()
        finally:
            browser.close()
