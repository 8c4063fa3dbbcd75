"""Bounded load test: the real server on 127.0.0.1 with 5 concurrent sessions uploading and classifying.

The full form (50 concurrent users, two waves) is `python scripts/loadtest.py --users 50`.
"""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_script():
    spec = importlib.util.spec_from_file_location("loadtest", ROOT / "scripts" / "loadtest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["loadtest"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_five_concurrent_sessions_classify_without_errors():
    loadtest = load_script()
    out = io.StringIO()
    s = loadtest.run(sessions=5, images=2, waves=1, timeout=50, out=out)
    report = out.getvalue()
    assert s["errors"] == 0, report
    assert s["failure_probe_detected"], "a session uploading non-images must not count as classified"
    assert s["temp_files_left"] == [], "uploads must stay in memory"
    assert not s["server_exited"]
    assert s["classify_p95_s"] < 40, report
    assert s["rss_after_waves_mib"][-1] < s["rss_warm_mib"] + 200, "memory grew: model loaded more than once?"
    assert s["tf_traces_at_end"] == s["tf_traces_after_warmup"], "the model was traced again for new sessions"


@pytest.mark.slow
def test_a_very_long_file_name_is_refused_by_the_server_and_the_page_carries_on():
    """Tornado refuses a request whose header carries a 5000-character file name (HTTP 400) before the app sees
    it; the uploaders say so in their help, and the session goes on working with a normal name."""
    import asyncio

    loadtest = load_script()
    server = loadtest.start_server()

    async def session() -> tuple[int, str, list[str], list[str]]:
        s = await asyncio.to_thread(loadtest.Session, server.base)
        async with s:
            assert await s.run(timeout=120) == "FINISHED_SUCCESSFULLY"
            helps = [t for t in s.texts if "HTTP 400" in t]
            name = "a" * 5000 + ".png"
            good = loadtest.session_files(__import__("random").Random(0), 1)
            request_id = "long-name"
            await s.send(loadtest.BackMsg(file_urls_request=loadtest.FileURLsRequest(
                request_id=request_id, file_names=[name], session_id=s.session_id)))
            while True:
                msg = await s._recv(time.monotonic() + 60)
                if msg.WhichOneof("type") == "file_urls_response":
                    break
            urls = msg.file_urls_response.file_urls[0]
            status = await asyncio.to_thread(s._put, urls.upload_url, name, good[0][1])
            state = await s.upload(good)
            finished = await s.run([state], timeout=300)
            return status, finished, s.exceptions, helps

    import time

    try:
        status, finished, exceptions, helps = asyncio.run(session())
    finally:
        loadtest.stop_server(server)
    assert status == 400
    assert finished == "FINISHED_SUCCESSFULLY" and not exceptions
    assert helps, "the uploader's help names the server's limit"
