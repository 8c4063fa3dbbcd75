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
