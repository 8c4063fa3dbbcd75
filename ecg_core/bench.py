"""Speed and memory benchmark: python -m ecg_core bench [--model PATH] [--quick]

Prints one table row per measurement with its target. Timings are wall-clock medians on this machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent


def _median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def _windows(n: int) -> np.ndarray:
    from ecg_core.signal import beats, signals

    rec = signals.read_record(ROOT / "tests" / "data" / "mitdb" / "208")
    b = beats.labelled_beats(rec.signal, rec.annotations.sample, rec.annotations.symbol)
    reps = int(np.ceil(n / len(b)))
    return np.tile(b.windows, (reps, 1))[:n]


def bench_render(n: int) -> list[tuple[str, float, str, str]]:
    import cv2

    from ecg_core.picture.render import render_overlay, render_spectral, render_waveform

    cv2.setNumThreads(1)
    w = _windows(n)
    pairs = np.stack([w, w[::-1]], axis=1)  # a beat and another beat standing in for its template
    rows = []
    for name, fn, x, target in (("render waveform (1 thread)", render_waveform, w, ">= 5000"),
                                ("render overlay (1 thread)", render_overlay, pairs, "-"),
                                ("render spectral (1 thread)", render_spectral, w, "-")):
        t = _median_time(lambda fn=fn, x=x: fn(x), 3)
        rows.append((name, n / t, "images/s", target))
    return rows


def _feature_maker(clf) -> Callable[[int], np.ndarray | None]:
    """n -> the beat features of n real beats (excerpt of record 208), measured anew on each call (so the
    timings include feature extraction); None for a model that reads pictures only."""
    if not getattr(clf, "reads_features", False):
        return lambda n: None
    from ecg_core.pipeline.record_mode import model_features
    from ecg_core.signal import beats, peaks, signals

    rec = signals.read_record(ROOT / "tests" / "data" / "mitdb" / "208", with_annotations=False)
    found = peaks.detect_beats(rec.signal)
    centres = found[beats.inside_bounds(found, rec.signal.size)]
    return lambda n: model_features(rec.signal, np.resize(centres, n), found)


def bench_model(model_path: str | None, quick: bool) -> list[tuple[str, float, str, str]]:
    from ecg_core.model import predict
    from ecg_core.model.explain import GradCam
    from ecg_core.picture.imaging import load_image, to_model_input

    info = predict.info_from_path(model_path) if model_path else predict.default_model()
    clf = predict.load(info)
    sample = next(iter(sorted((ROOT / "sample_images" / info.representation).rglob("*.png"))))
    data = sample.read_bytes()
    img = load_image(data, info.representation)
    repeats = 30 if quick else 200
    features = _feature_maker(clf)
    single = _median_time(lambda: clf.predict_proba(img[None], features(1)), repeats)
    batch = np.repeat(img[None], 256, axis=0)
    t_batch = _median_time(lambda: clf.predict_proba(batch, features(256)), 3 if quick else 10)
    cam = GradCam(clf.model, info.card.get("last_conv_layer"))
    x = to_model_input(img[None])

    def classify_and_explain() -> None:
        f = features(1)
        probs = clf.predict_proba(load_image(data, info.representation)[None], f)
        cam.heatmaps(x, [int(np.argmax(probs[0]))], features=f)

    t_cam = _median_time(classify_and_explain, repeats)
    from ecg_core.picture.guard import check_ecg_image, check_for
    from ecg_core.picture.imaging import decode_image

    gray = decode_image(data)
    check = check_for(info.representation) or check_ecg_image
    t_guard = _median_time(lambda: check(gray), repeats)
    with_features = " (beat features measured)" if clf.reads_features else ""
    return [
        (f"{info.name}: file size" + (" (network and trees)" if len(info.files) > 1 else ""),
         info.size_bytes / 1e6, "MB", "<= 1"),
        (f"{info.name}: single-image predict p50{with_features}", single * 1e3, "ms", "<= 5"),
        (f"{info.name}: batch 256 throughput{with_features}", 256 / t_batch, "images/s", ">= 2000"),
        (f"{info.name}: decode + classify + Grad-CAM p50", t_cam * 1e3, "ms", "<= 10"),
        ("non-ECG guard per sample image p50", t_guard * 1e3, "ms", "<= 5"),
    ]


def bench_cold_start() -> list[tuple[str, float, str, str]]:
    """App start to first full render in a fresh process, after imports are cached (AppTest)."""
    code = (
        "import time, streamlit, tensorflow, keras, plotly, cv2, pandas\n"
        "from streamlit.testing.v1 import AppTest\n"
        "t = time.perf_counter()\n"
        "at = AppTest.from_file('streamlit_app.py', default_timeout=60).run()\n"
        "assert not at.exception, at.exception\n"
        "print(time.perf_counter() - t)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        return [("app cold start to first render", float("nan"), "s", f"<= 4 (failed: {r.stderr.strip()[-200:]})")]
    return [("app cold start to first render", float(r.stdout.strip().splitlines()[-1]), "s", "<= 4")]


def bench_record(mitdb: str, model_path: str | None) -> list[tuple[str, float, str, str]]:
    """A full 30-minute mitdb record from upload bytes to per-beat labels."""
    try:
        from ecg_core.pipeline import record_mode
    except ImportError:
        return []
    bench_fn = getattr(record_mode, "bench_full_record", None)
    if bench_fn is None or not Path(mitdb, "100.dat").exists():
        return []
    seconds = bench_fn(mitdb)
    return [("30-min mitdb record 100: bytes -> beat labels", float(seconds), "s", "<= 5")]


def bench_quality() -> list[tuple[str, float, str, str]]:
    """The signal-quality verdict on 30 minutes (the excerpt of record 208 repeated), p50 of 3."""
    from ecg_core.signal import quality, signals

    rec = signals.read_record(ROOT / "tests" / "data" / "mitdb" / "208")
    x = np.tile(rec.signal, int(np.ceil(30 * 60 * rec.fs / rec.signal.size)))[: int(30 * 60 * rec.fs)]
    quality.assess(x[: int(30 * rec.fs)], rec.fs)  # warm-up
    return [("signal-quality verdict, 30 min at 360 Hz", _median_time(lambda: quality.assess(x, rec.fs), 3) * 1e3,
             "ms", "<= 1000")]


def bench_rhythm() -> list[tuple[str, float, str, str]]:
    """The rhythm detector (VF / noise, ecg_core.signal.rhythm) on 30 minutes (excerpt of 208 repeated), p50 of 3."""
    from ecg_core.signal import peaks, rhythm, signals

    rec = signals.read_record(ROOT / "tests" / "data" / "mitdb" / "208", with_annotations=False)
    x = np.tile(rec.signal, int(np.ceil(30 * 60 * rec.fs / rec.signal.size)))[: int(30 * 60 * rec.fs)]
    found = peaks.detect_beats(x)
    rhythm.detect(x[: int(60 * rec.fs)], found[found < 60 * rec.fs])  # warm-up, model loaded
    return [("rhythm detector (VF / noise), 30 min at 360 Hz", _median_time(lambda: rhythm.detect(x, found), 3) * 1e3,
             "ms", "<= 1000")]


def main(a: argparse.Namespace) -> int:
    rows = bench_render(2000 if a.quick else 10000)
    rows += bench_quality()
    rows += bench_rhythm()
    rows += bench_model(a.model, a.quick)
    rows += bench_record(a.mitdb, a.model)
    rows += bench_cold_start()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append(("peak memory of this benchmark process", peak_mb, "MB", "-"))
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement':<{width}}  {'value':>10}  {'unit':<9} target")
    print("-" * (width + 36))
    for name, value, unit, target in rows:
        print(f"{name:<{width}}  {value:>10.2f}  {unit:<9} {target}")
    return 0
