"""Load test: the real Streamlit server on 127.0.0.1, many concurrent sessions uploading and classifying pictures.

Each session speaks the browser's own protocol (Streamlit's protobuf messages over the /_stcore/stream
websocket; files PUT to /_stcore/upload_file with the XSRF cookie and header, exactly as the frontend does),
so the server runs one script thread per session, as it would for real browsers, without the cost of
rendering 50 pages in Chromium on a small machine. A session: open the app, upload ECG pictures into the
Classify page's uploader, wait for them to be digitized and classified, check the result (no exception
element; the time scale of the reading shown), disconnect.

Reported: errors, page times (open, classify: p50 / p95 / max), the server's resident memory after a
warm-up session, at its peak and after every wave (the model is loaded once per process, so it should
stay flat), and any file left in the server's private temp folder (uploads stay in memory).

    python scripts/loadtest.py --users 50            # starts and stops its own server
    python scripts/loadtest.py --users 5 --waves 1   # the bounded form tests/test_load.py runs
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import requests
import websockets
from PIL import Image
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.Common_pb2 import FileUploaderState, FileURLs, FileURLsRequest, UploadedFileInfo
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "streamlit_app.py"
SAMPLES = ROOT / "sample_images" / "pictures"
UPLOADER_KEY = "classify_upload"
XSRF_COOKIE = "_streamlit_xsrf"
# (what, summary key, limit): 50 concurrent users should get their result and open the page within 5 s each,
# with the server under 1.5 GB
TARGETS = (("upload -> result p95 (s)", "classify_p95_s", 5.0), ("page open p95 (s)", "open_p95_s", 5.0),
           ("server RSS peak (MiB)", "rss_peak_mib", 1536))
TEMP_NOISE = ("__autograph_generated_file",)  # TensorFlow's generated code (no user data), once per trace


@dataclass
class SessionResult:
    ok: bool
    open_s: float = float("nan")
    classify_s: float = float("nan")
    error: str = ""


@dataclass
class Server:
    """A `streamlit run` subprocess on 127.0.0.1 with a private, empty TMPDIR."""

    port: int
    proc: subprocess.Popen
    tmpdir: Path
    log: Path
    rss_samples: list[int] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss(self) -> int:
        """Resident set size of the server process, bytes."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def cpu_s(self) -> float:
        """CPU seconds the server process has used (all its threads, user + system)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def traces(self) -> int:
        """TensorFlow autograph files in the server's temp folder: one set per traced function, so a count that
        does not grow with sessions shows the model (and its Grad-CAM model) were built once."""
        return sum(1 for p in self.tmpdir.rglob("*") if p.name.startswith(TEMP_NOISE))

    def leftover_files(self) -> list[str]:
        return sorted(str(p.relative_to(self.tmpdir)) for p in self.tmpdir.rglob("*")
                      if p.is_file() and not p.name.startswith(TEMP_NOISE))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(timeout: float = 180.0) -> Server:
    port = free_port()
    tmpdir = Path(tempfile.mkdtemp(prefix="ecg-load-tmp-"))
    log = tmpdir.parent / f"{tmpdir.name}.log"
    env = {**os.environ, "TMPDIR": str(tmpdir), "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", "127.0.0.1", "--server.port",
           str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
    server = Server(port, proc, tmpdir, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            if requests.get(f"{server.base}/_stcore/health", timeout=2).status_code == 200:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.5)
    stop_server(server)
    raise TimeoutError("server did not become healthy")


def stop_server(server: Server) -> None:
    if server.proc.poll() is None:
        os.killpg(server.proc.pid, signal.SIGTERM)
        try:
            server.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.proc.pid, signal.SIGKILL)
            server.proc.wait(timeout=10)
    shutil.rmtree(server.tmpdir, ignore_errors=True)


# ---------------------------------------------------------------- one browser-like session

def _texts(msg: ForwardMsg) -> list[str]:
    """Every string body of an element delta (markdown, headings, alerts, captions, exception messages, help)."""
    out: list[str] = []

    def walk(m) -> None:
        for fd, value in m.ListFields():
            if hasattr(value, "ListFields"):
                walk(value)
            elif fd.type == fd.TYPE_MESSAGE:  # repeated messages
                for v in value:
                    walk(v)
            elif isinstance(value, str) and fd.name in ("body", "message", "label", "help"):
                out.append(value)

    if msg.WhichOneof("type") == "delta" and msg.delta.WhichOneof("type") == "new_element":
        walk(msg.delta.new_element)
    return out


class Session:
    """A websocket session that behaves like the browser frontend."""

    def __init__(self, base: str):
        self.base = base
        self.cookie = requests.get(f"{base}/_stcore/health", timeout=30).cookies.get(XSRF_COOKIE)
        self.ws = None
        self.session_id = ""
        self.uploader_id = ""
        self.texts: list[str] = []
        self.exceptions: list[str] = []

    async def __aenter__(self) -> Session:
        url = self.base.replace("http://", "ws://") + "/_stcore/stream"
        self.ws = await websockets.connect(
            url, subprotocols=["streamlit", self.cookie], origin=self.base, max_size=2**27,
            additional_headers={"Cookie": f"{XSRF_COOKIE}={self.cookie}"}, open_timeout=60, ping_interval=None)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.ws.close()

    async def send(self, msg: BackMsg) -> None:
        await self.ws.send(msg.SerializeToString())

    async def run(self, widgets: list[WidgetState] | None = None, timeout: float = 600) -> str:
        """Rerun the script with these widget states and read until it finishes; returns the finish status."""
        self.texts, self.exceptions = [], []
        await self.send(BackMsg(rerun_script=ClientState(widget_states=WidgetStates(widgets=widgets or []))))
        deadline = time.monotonic() + timeout
        while True:
            msg = await self._recv(deadline)
            kind = msg.WhichOneof("type")
            if kind == "new_session":
                self.session_id = msg.new_session.initialize.session_id
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                el = msg.delta.new_element
                if el.WhichOneof("type") == "file_uploader" and UPLOADER_KEY in el.file_uploader.id:
                    self.uploader_id = el.file_uploader.id
                if el.WhichOneof("type") == "exception":
                    self.exceptions.append(f"{el.exception.type}: {el.exception.message}")
                self.texts.extend(_texts(msg))
            elif kind == "script_finished":
                status = ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished)
                if status != "FINISHED_EARLY_FOR_RERUN":
                    return status

    async def _recv(self, deadline: float) -> ForwardMsg:
        raw = await asyncio.wait_for(self.ws.recv(), max(0.1, deadline - time.monotonic()))
        msg = ForwardMsg()
        msg.ParseFromString(raw)
        return msg

    async def upload(self, files: list[tuple[str, bytes]], timeout: float = 120) -> WidgetState:
        """Ask for upload URLs, PUT each file, and return the uploader's new widget state."""
        request_id = uuid.uuid4().hex
        await self.send(BackMsg(file_urls_request=FileURLsRequest(
            request_id=request_id, file_names=[n for n, _ in files], session_id=self.session_id)))
        deadline = time.monotonic() + timeout
        while True:
            msg = await self._recv(deadline)
            if msg.WhichOneof("type") == "file_urls_response" and msg.file_urls_response.response_id == request_id:
                break
        if msg.file_urls_response.error_msg:
            raise RuntimeError(msg.file_urls_response.error_msg)
        infos = []
        for (name, data), urls in zip(files, msg.file_urls_response.file_urls):
            status = await asyncio.to_thread(self._put, urls.upload_url, name, data)
            if status != 204:
                raise RuntimeError(f"upload answered HTTP {status}")
            infos.append(UploadedFileInfo(name=name, size=len(data), file_id=urls.file_id,
                                          file_urls=FileURLs(file_id=urls.file_id, upload_url=urls.upload_url,
                                                             delete_url=urls.delete_url)))
        return WidgetState(id=self.uploader_id, file_uploader_state_value=FileUploaderState(uploaded_file_info=infos))

    def _put(self, url: str, name: str, data: bytes) -> int:
        full = url if url.startswith("http") else self.base + url
        r = requests.put(full, files={"file": (name, data, "image/png")}, headers={"X-Xsrftoken": self.cookie},
                         cookies={XSRF_COOKIE: self.cookie}, timeout=120)
        return r.status_code


async def one_session(base: str, files: list[tuple[str, bytes]], timeout: float) -> SessionResult:
    try:
        s = await asyncio.to_thread(Session, base)
        async with s:
            t0 = time.monotonic()
            status = await s.run(timeout=timeout)
            open_s = time.monotonic() - t0
            if status != "FINISHED_SUCCESSFULLY" or s.exceptions or not s.uploader_id:
                return SessionResult(False, open_s, error=f"open: {status} {s.exceptions[:1]} uploader "
                                                           f"{'found' if s.uploader_id else 'missing'}")
            state = await s.upload(files)
            t1 = time.monotonic()
            status = await s.run([state], timeout=timeout)
            classify_s = time.monotonic() - t1
            want = "Time scale:"  # shown for the picture on display once it is digitized and classified
            if status != "FINISHED_SUCCESSFULLY" or s.exceptions or not any(want in t for t in s.texts):
                return SessionResult(False, open_s, classify_s,
                                     f"classify: {status} {s.exceptions[:1]} {'' if s.exceptions else 'no result'}")
            return SessionResult(True, open_s, classify_s)
    except Exception as exc:  # noqa: BLE001 - every failure of a session is counted and reported
        return SessionResult(False, error=f"{type(exc).__name__}: {exc}"[:300])


# ---------------------------------------------------------------- the run

def session_files(rng: random.Random, n: int) -> list[tuple[str, bytes]]:
    """n sample pictures as users would have them, each re-saved (PNG or JPEG) so that no two sessions upload
    the same bytes, with new names."""
    paths = sorted(p for p in SAMPLES.iterdir() if p.suffix in (".png", ".jpg"))
    out = []
    for k in range(n):
        img = Image.open(rng.choice(paths)).convert("RGB")
        buf = io.BytesIO()
        fmt = "PNG" if k % 2 == 0 else "JPEG"
        img.save(buf, fmt, **({"quality": rng.randint(80, 95)} if fmt == "JPEG" else {}))
        out.append((f"ecg_{uuid.uuid4().hex[:8]}.{fmt.lower()}", buf.getvalue()))
    return out


def percentile(values: list[float], q: float) -> float:
    v = [x for x in values if x == x]
    return float(np.percentile(v, q)) if v else float("nan")


async def wave(base: str, sessions: int, images: int, timeout: float, rng: random.Random,
               stagger: float) -> list[SessionResult]:
    async def delayed(i: int) -> SessionResult:
        await asyncio.sleep(i * stagger)
        return await one_session(base, session_files(rng, images), timeout)

    return await asyncio.gather(*(delayed(i) for i in range(sessions)))


def run(sessions: int = 50, images: int = 2, waves: int = 2, timeout: float = 540, stagger: float = 0.02,
        seed: int = 0, settle: float = 0.0, out=sys.stdout) -> dict:
    """Start a server, warm it up with one session, run `waves` waves of concurrent sessions, stop it."""
    rng = random.Random(seed)
    t_start = time.monotonic()
    server = start_server()
    stop = threading.Event()

    def sample_rss() -> None:
        while not stop.wait(0.25):
            try:
                server.rss_samples.append(server.rss())
            except OSError:
                return

    sampler = threading.Thread(target=sample_rss, daemon=True)
    try:
        print(f"server pid {server.proc.pid} on {server.base}, ready in {time.monotonic() - t_start:.1f} s; "
              f"RSS {server.rss() / 2**20:.0f} MiB", file=out, flush=True)
        warm = asyncio.run(one_session(server.base, session_files(rng, images), timeout))
        if not warm.ok:
            raise RuntimeError(f"warm-up session failed: {warm.error}\n{server.log.read_text()[-3000:]}")
        rss_warm, traces_warm = server.rss(), server.traces()
        print(f"warm-up session: open {warm.open_s:.1f} s, classify {warm.classify_s:.1f} s (model loaded); "
              f"RSS {rss_warm / 2**20:.0f} MiB; {traces_warm} TensorFlow traces", file=out, flush=True)
        sampler.start()
        results: list[SessionResult] = []
        rss_after = []
        busy = []
        for w in range(waves):
            t0, cpu0 = time.monotonic(), server.cpu_s()
            got = asyncio.run(wave(server.base, sessions, images, timeout, rng, stagger))
            elapsed = time.monotonic() - t0
            busy.append((server.cpu_s() - cpu0) / elapsed)
            results.extend(got)
            rss_after.append(server.rss())
            bad = [r for r in got if not r.ok]
            print(f"wave {w + 1}: {sessions} concurrent sessions x {images} images in {elapsed:.1f} s, "
                  f"{len(bad)} errors; open p50 {percentile([r.open_s for r in got], 50):.1f} s "
                  f"p95 {percentile([r.open_s for r in got], 95):.1f} s; classify p50 "
                  f"{percentile([r.classify_s for r in got], 50):.1f} s p95 "
                  f"{percentile([r.classify_s for r in got], 95):.1f} s max "
                  f"{max((r.classify_s for r in got if r.ok), default=float('nan')):.1f} s; "
                  f"RSS {rss_after[-1] / 2**20:.0f} MiB; server CPU {busy[-1]:.2f} of {os.cpu_count()} cores busy",
                  file=out, flush=True)
            for r in bad[:5]:
                print(f"    error: {r.error}", file=out)
        rss_settled = None
        if settle > 0:  # disconnected sessions keep their state for server.disconnectedSessionTTL (120 s)
            time.sleep(settle)
            rss_settled = server.rss()
            print(f"after {settle:.0f} s idle (disconnected sessions expired): RSS {rss_settled / 2**20:.0f} MiB",
                  file=out, flush=True)
        stop.set()
        # the checks must be able to fail: a session uploading text files gets no classification
        probe = asyncio.run(one_session(server.base, [("a.png", b"not an image"), ("b.png", b"")], timeout))
        leftovers = server.leftover_files()
        summary = {
            "sessions": sessions * waves, "images_per_session": images, "waves": waves,
            "errors": sum(not r.ok for r in results),
            "open_p95_s": round(percentile([r.open_s for r in results], 95), 2),
            "classify_p50_s": round(percentile([r.classify_s for r in results], 50), 2),
            "classify_p95_s": round(percentile([r.classify_s for r in results], 95), 2),
            "rss_warm_mib": round(rss_warm / 2**20), "rss_peak_mib": round(max(server.rss_samples or [0]) / 2**20),
            "rss_after_waves_mib": [round(x / 2**20) for x in rss_after],
            "rss_after_settle_mib": None if rss_settled is None else round(rss_settled / 2**20),
            "server_cores_busy": [round(b, 2) for b in busy],
            "tf_traces_after_warmup": traces_warm, "tf_traces_at_end": server.traces(),
            "temp_files_left": leftovers, "server_exited": server.proc.poll() is not None,
            "failure_probe_detected": not probe.ok,
            "total_s": round(time.monotonic() - t_start, 1),
        }
        print(json.dumps(summary), file=out, flush=True)
        met = {name: summary[key] <= limit for name, key, limit in TARGETS}
        print("targets: " + "; ".join(f"{name} {summary[key]:g} {'<=' if met[name] else '>'} {limit:g}"
                                       f" ({'met' if met[name] else 'NOT met'})" for name, key, limit in TARGETS),
              file=out, flush=True)
        return summary
    finally:
        stop.set()
        stop_server(server)
        server.log.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=50, help="concurrent users (browser sessions) per wave")
    p.add_argument("--images", type=int, default=2, help="images uploaded by each session")
    p.add_argument("--waves", type=int, default=2, help="waves of concurrent sessions (memory must stay flat)")
    p.add_argument("--timeout", type=float, default=540, help="seconds a session may wait for one page")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--settle", type=float, default=0, help="seconds to idle after the waves, then read RSS again")
    a = p.parse_args(argv)
    summary = run(a.users, a.images, a.waves, a.timeout, seed=a.seed, settle=a.settle)
    good = summary["errors"] == 0 and not summary["temp_files_left"] and summary["failure_probe_detected"]
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
