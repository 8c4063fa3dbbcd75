"""Archive mode: every beat of every recording in folders or globs, scored on Dask, one summary table.

    python -m ecg_core classify-archive DIR_OR_GLOB... --out OUT_DIR [--engine dask|local]
        [--scheduler tcp://HOST:8786] [--workers N]

Outputs in OUT_DIR: `<recording>.parquet` per recording (the beat columns of `classify-record`, with the
model, code version, input fingerprint, VF episodes, noise and the summary row in its metadata) and
`summary.csv` / `summary.parquet` (one row per recording, SUMMARY_COLUMNS).

Work and exactness
- One task per recording: read, quality check, `record_mode.classify_signal`, the same code as
  `classify-record`. A recording longer than 1.5 chunks is cut into chunks of `chunk_s` seconds (at whole
  seconds) and each chunk, with `overlap_s` of signal on each side, is a task of its own that any worker
  takes, so one 24-hour recording does not hold up the rest. The R peaks are found once on the whole
  recording (Pan-Tompkins' adaptive thresholds depend on everything before a beat, which no overlap
  reproduces exactly, in ventricular fibrillation least of all: measured, 2 of 328 beats of the vfdb
  excerpt differ with 30 s of overlap) and each chunk classifies its own. A chunk keeps the beats of its
  core, and the VF episodes and noise of its core and half the overlap on each side (pieces of one
  episode seen by two chunks are joined). The overlap makes the core's beat pictures those of the
  recording in one piece: the 0.5-40 Hz filter gives bit-identical float32 samples from 10-30 s after a
  cut, and the overlay template reads +-10 s around each beat. Chunk starts fall on whole seconds, so the
  resampling grid and the VF scan's 0.5 s grid stay aligned.
- Dask: an embedded LocalCluster (one process per worker, one thread each; TensorFlow limited to one
  thread so workers do not oversubscribe the cores) or an existing scheduler. Each worker loads the model
  once (ModelPlugin). Recordings are submitted a few per worker at a time, so memory stays bounded on a
  large archive; paths must be readable by the workers (a shared file system on a real cluster).
- Resume: a recording whose Parquet file exists with the same model file, code version and input files
  (sizes and modification times) is skipped and its summary row read back from the file. Files are written
  atomically, so an interrupted run leaves whole files only. A recording that fails (unreadable, refused
  by the quality check, any error) gets a summary row with status "failed" and its one-line reason; the
  run goes on, and a later run tries it again.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ecg_core import __version__
from ecg_core.classes import CLASS_KEYS
from ecg_core.io.signal_io import SignalInput, SignalInputError, read_path
from ecg_core.pipeline import record_mode
from ecg_core.settings import WORKING_FS
from ecg_core.signal import signals
from ecg_core.signal.beats import inside_bounds
from ecg_core.signal.features import mean_rr
from ecg_core.signal.peaks import detect_beats

CHUNK_S = 1800.0  # core of a chunk of a long recording (24 h: 48 chunks; a 30-min recording is one piece)
OVERLAP_S = 60.0  # context on each side of a chunk, scored and dropped (see the module docstring)
MIN_OVERLAP_S = 30.0  # below this a chunk's core is no longer certain to match the recording in one piece
RECORDING_SUFFIXES = (".hea", ".csv", ".edf")  # what a folder search collects
FILE_SUFFIXES = (".hea", ".dat", ".csv", ".txt", ".tsv", ".edf")  # what a path may name directly
OUTPUT_VERSION = "1"
META_KEY = b"ecg_core.archive"
PLUGIN_NAME = "ecg-archive-model"
PROGRESS_TOPIC = "ecg-archive-progress"
IN_FLIGHT_PER_WORKER = 2  # recordings submitted ahead per worker: busy workers, bounded memory
# The modules whose code decides a recording's output; a change to any of them re-scores an archive.
CODE_FILES = ("classes.py", "settings.py", "io/*.py", "signal/*.py", "picture/render.py", "picture/imaging.py",
              "model/predict.py", "pipeline/record_mode.py", "pipeline/archive.py")
SUMMARY_COLUMNS = ["recording", "path", "status", "reason", "quality", "duration_s", "beats", *CLASS_KEYS,
                   "v_burden_pct", "a_burden_pct", "heart_rate_bpm", "vf_episodes", "vf_s", "noise_s",
                   "ref_sensitivity", "ref_ppv", "ref_agreement", "chunks", "seconds", "model"]


class ArchiveError(ValueError):
    """The run cannot start (no recordings, an unusable output folder, no cluster); one-line message."""


# ---------------------------------------------------------------- recordings to score

@dataclass(frozen=True)
class Job:
    """One recording: its path (a WFDB .hea, a CSV or an EDF file), its output name, its input files."""

    path: str
    name: str
    files: tuple[str, ...]

    def fingerprint(self) -> str:
        """Sizes and modification times of the input files: a changed recording is scored again."""
        h = hashlib.sha256()
        for f in self.files:
            try:
                st = os.stat(f)
                h.update(f"{Path(f).name}:{st.st_size}:{st.st_mtime_ns};".encode())
            except OSError:
                h.update(f"{Path(f).name}:missing;".encode())
        return h.hexdigest()[:16]


def _split_pattern(pattern: str) -> tuple[Path, list[Path]]:
    """(base folder the output names are relative to, matching paths) of one argument."""
    if glob.has_magic(pattern):
        parts = Path(pattern).parts
        k = next(i for i, p in enumerate(parts) if glob.has_magic(p))
        base = Path(*parts[:k]) if k else Path(".")
        return base, [Path(p) for p in sorted(glob.glob(pattern, recursive=True))]
    p = Path(pattern)
    return (p if p.is_dir() else p.parent), [p]


def _inside(path: Path, folder: Path | None) -> bool:
    if folder is None:
        return False
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def find_recordings(patterns: Sequence[str], exclude: str | Path | None = None) -> list[Job]:
    """Every recording named by the arguments: folders are searched recursively for .hea (WFDB), .csv and
    .edf files; a glob's matches and plain files are taken as they are (a .dat names its record).
    Output names are paths relative to each argument's folder; clashing names get a hash of the path.
    ArchiveError when an argument matches nothing."""
    exclude_dir = Path(exclude) if exclude is not None else None
    found: dict[Path, Path] = {}  # recording path -> base folder
    for pattern in patterns:
        base, matches = _split_pattern(pattern)
        if not matches or not any(m.exists() for m in matches):
            raise ArchiveError(f"{pattern}: no such file or folder, and no file matches it.")
        n_before = len(found)
        for m in matches:
            if m.is_dir():
                for root, dirs, files in os.walk(m):
                    dirs.sort()
                    for f in sorted(files):
                        p = Path(root) / f
                        if p.suffix.lower() in RECORDING_SUFFIXES and not _inside(p, exclude_dir):
                            found.setdefault(p, base)
            elif m.suffix.lower() in FILE_SUFFIXES and not _inside(m, exclude_dir):
                found.setdefault(m.with_suffix(".hea") if m.suffix.lower() == ".dat" else m, base)
        if len(found) == n_before:
            raise ArchiveError(f"{pattern}: holds no recording (WFDB .hea, .csv or .edf).")
    names: dict[Path, str] = {}
    for p, base in found.items():
        try:
            rel = p.relative_to(base)
        except ValueError:
            rel = Path(p.name)
        names[p] = "__".join(rel.with_suffix("").parts) or p.stem
    counts = pd.Series(list(names.values())).value_counts()
    jobs = []
    for p, name in names.items():
        if counts[name] > 1:
            name = f"{name}-{hashlib.sha256(str(p.resolve()).encode()).hexdigest()[:6]}"
        jobs.append(Job(str(p), name, _input_files(p)))
    return jobs


def _input_files(p: Path) -> tuple[str, ...]:
    """The files a recording is read from: for WFDB the header and the files sharing its record name."""
    if p.suffix.lower() != ".hea":
        return (str(p),)
    stem = p.with_suffix("").name
    try:
        siblings = [q for q in p.parent.iterdir() if q.name.startswith(stem + ".")]
    except OSError:
        siblings = []
    return tuple(sorted(str(q) for q in siblings)) or (str(p),)


# ---------------------------------------------------------------- versions (what makes an output current)

def code_version() -> str:
    """A hash of the package version and the modules that decide a recording's output."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(__version__.encode())
    for pattern in CODE_FILES:
        for f in sorted(root.glob(pattern)):
            h.update(f.relative_to(root).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def model_version(model_path: str | Path) -> str:
    """A hash of the model file and its card."""
    p = Path(model_path)
    h = hashlib.sha256()
    for f in (p, p.with_suffix(".json")):
        if f.exists():
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------- chunks of a long recording

@dataclass(frozen=True)
class Chunk:
    """Own-rate sample ranges: the part scored [start, end) and the part kept [core_start, core_end)."""

    index: int
    count: int
    start: int
    end: int
    core_start: int
    core_end: int
    recording: str = ""  # the output name, for progress reports


def plan_chunks(n_samples: int, fs: float, chunk_s: float = CHUNK_S, overlap_s: float = OVERLAP_S,
                recording: str = "") -> list[Chunk]:
    """Chunks with cores of chunk_s seconds (the last one takes the rest) and overlap_s on each side.

    Boundaries fall on whole seconds, so a non-integer sampling rate, or a recording under 1.5 chunks,
    is one piece."""
    whole = [Chunk(0, 1, 0, n_samples, 0, n_samples, recording)]
    if fs != int(fs) or n_samples <= 1.5 * chunk_s * fs:
        return whole
    step, ov = int(round(chunk_s)) * int(fs), int(math.ceil(overlap_s)) * int(fs)
    bounds = list(range(0, n_samples, step))
    if n_samples - bounds[-1] < step // 2:
        bounds.pop()
    bounds.append(n_samples)
    n = len(bounds) - 1
    return [Chunk(i, n, max(0, a - ov), min(n_samples, b + ov), a, b, recording)
            for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))]


def chunk_input(sig: SignalInput, c: Chunk) -> SignalInput:
    """The chunk's part of the recording (its V1 or other second lead with it), carrying the whole recording's
    quality verdict shifted to it."""
    q = sig.quality
    if q is not None:
        t0, t1 = c.start / sig.fs, c.end / sig.fs
        segments = [dataclasses.replace(s, start_s=round(max(s.start_s, t0) - t0, 2),
                                        end_s=round(min(s.end_s, t1) - t0, 2))
                    for s in q.segments if s.end_s > t0 and s.start_s < t1]
        peaks = q.peaks[(q.peaks >= c.start) & (q.peaks < c.end)] - c.start
        windows = {}
        if "start_s" in q.windows:
            keep = (q.windows["start_s"] >= t0) & (q.windows["start_s"] < t1)
            windows = {k: (v[keep] - t0 if k == "start_s" else v[keep]) for k, v in q.windows.items()}
        q = dataclasses.replace(q, segments=segments, peaks=peaks, windows=windows, working_peaks=None,
                                working_samples=0)  # the chunk's R peaks come with it (chunk_peaks)
    return dataclasses.replace(sig, name=f"{sig.name} [{c.start / sig.fs:.0f}-{c.end / sig.fs:.0f} s]",
                               signal=sig.signal[c.start: c.end], reference=None, quality=q,
                               v1=None if sig.v1 is None else sig.v1[c.start: c.end],
                               lead2=None if sig.lead2 is None else sig.lead2[c.start: c.end])


def _intervals(df: pd.DataFrame | None, offset_s: float, lo_s: float, hi_s: float) -> pd.DataFrame | None:
    """Rows of an interval table (start_s, end_s, ...) shifted by offset_s and clipped to [lo_s, hi_s)."""
    if not isinstance(df, pd.DataFrame) or not {"start_s", "end_s"} <= set(df.columns):
        return df
    out = df.copy()
    out["start_s"] = (out["start_s"] + offset_s).round(2).clip(lower=lo_s)
    out["end_s"] = (out["end_s"] + offset_s).round(2).clip(upper=hi_s)
    out = out[out["end_s"] > out["start_s"]].reset_index(drop=True)
    if "duration_s" in out.columns:
        out["duration_s"] = (out["end_s"] - out["start_s"]).round(2)
    return out


def _union(tables: list[pd.DataFrame | None]) -> pd.DataFrame | None:
    """Interval tables of neighbouring chunks joined: pieces of one episode seen by two chunks overlap."""
    tables = [t for t in tables if isinstance(t, pd.DataFrame)]
    if not tables:
        return None
    if not all({"start_s", "end_s"} <= set(t.columns) for t in tables):
        return tables[0]
    rows = pd.concat(tables, ignore_index=True).sort_values("start_s", kind="stable").to_dict("records")
    merged: list[dict] = []
    for r in rows:
        if merged and r["start_s"] <= merged[-1]["end_s"]:
            merged[-1]["end_s"] = max(merged[-1]["end_s"], r["end_s"])
        else:
            merged.append(dict(r))
    out = pd.DataFrame(merged, columns=tables[0].columns)
    if "duration_s" in out.columns:
        out["duration_s"] = (out["end_s"] - out["start_s"]).round(2)
    if not len(out):
        return tables[0].iloc[:0]
    return out.astype({c: t for c, t in tables[0].dtypes.items() if c in out.columns})


def score_chunk(sig: SignalInput, c: Chunk, peaks: np.ndarray, clf=None,
                rr_mean_s: float | None = None) -> record_mode.RecordResult:
    """Classify one chunk (`peaks`: the whole recording's R peaks inside it, at the working rate from the
    chunk's start): the beats of its core, and its VF episodes and noise inside its trusted zone (the
    core and half the overlap on each side, where its signal equals the recording's), at the
    recording's sample numbers and seconds."""
    clf = clf or worker_classifier()
    r = record_mode.classify_signal(sig, clf, peaks=peaks, rr_mean_s=rr_mean_s)
    off_s = c.start / sig.fs
    trust = (min(c.core_start - c.start, c.end - c.core_end) or (c.end - c.core_end)) / 2 / sig.fs
    lo_s = 0.0 if c.core_start == 0 else c.core_start / sig.fs - trust
    hi_s = c.core_end / sig.fs + trust
    own = r.beats["sample"].to_numpy(np.int64) + c.start
    keep = (own >= c.core_start) & (own < c.core_end)
    beats = r.beats[keep].copy()
    beats["sample"] = own[keep]
    beats["time_s"] = np.round(own[keep] / sig.fs, 4)  # as classify_signal computes it
    peaks_own = r.peaks_own + c.start
    changes = dict(x=np.zeros(0, np.float32), v1=None if r.v1 is None else np.zeros(0, np.float32),
                   lead2=None if r.lead2 is None else np.zeros(0, np.float32),
                   beats=beats.reset_index(drop=True),
                   centres=r.centres[keep] + working_offset(c.start, sig.fs),
                   peaks_own=peaks_own[(peaks_own >= c.core_start) & (peaks_own < c.core_end)],
                   episodes=_intervals(r.episodes, off_s, lo_s, hi_s))
    if isinstance(getattr(r, "noise", None), pd.DataFrame):
        changes["noise"] = _intervals(r.noise, off_s, lo_s, hi_s)
    _report_progress(c)
    return dataclasses.replace(r, **changes)


def working_offset(own_sample: int, fs: float) -> int:
    """A chunk start (whole seconds at the own rate) at the working rate."""
    return int(round(own_sample * WORKING_FS / fs))


def chunk_peaks(peaks: np.ndarray, c: Chunk, fs: float) -> np.ndarray:
    """The recording's working-rate R peaks inside chunk c, counted from its start."""
    a, b = working_offset(c.start, fs), working_offset(c.end, fs)
    return peaks[(peaks >= a) & (peaks < b)] - a


def stitch(sig: SignalInput, parts: list[record_mode.RecordResult], n_chunks: int) -> record_mode.RecordResult:
    """The chunks' results as one recording's."""
    first = parts[0]
    changes = dict(
        name=sig.name, n_samples=int(sig.signal.size),
        beats=pd.concat([p.beats for p in parts], ignore_index=True),
        centres=np.concatenate([p.centres for p in parts]),
        peaks_own=np.concatenate([p.peaks_own for p in parts]),
        episodes=_union([p.episodes for p in parts]),
        notes=[*sig.notes, f"Scored in {n_chunks} chunks (each with its neighbours' signal around it)."],
        seconds={k: round(sum(p.seconds.get(k, 0.0) for p in parts), 3) for k in first.seconds})
    if isinstance(getattr(first, "noise", None), pd.DataFrame):
        changes["noise"] = _union([p.noise for p in parts])
    return dataclasses.replace(first, **changes)


# ---------------------------------------------------------------- one recording

@dataclass
class ReadOptions:
    """How CSV files are read (as classify-record's --fs, --units, --adc-gain, --adc-baseline)."""

    fs: float | None = None
    units: str = "mV"
    adc_gain: float = 200.0
    adc_baseline: float = 0.0


@dataclass
class Outcome:
    """What scoring one recording gave: the beat table and the summary row, or the reason it failed."""

    job: Job
    row: dict
    beats: pd.DataFrame | None = None
    episodes: list[dict] = field(default_factory=list)
    noise: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.row.get("status") == "ok"


# (signal, chunks, the whole recording's R peaks, its mean RR for the beat features) -> one result per chunk
ChunkMap = Callable[[SignalInput, list[Chunk], np.ndarray, float | None], list[record_mode.RecordResult]]


def sequential_chunks(clf, progress: Callable[[Chunk], None] | None = None) -> ChunkMap:
    """Chunks scored one after the other in this process (the local engine)."""
    def run(sig: SignalInput, chunks: list[Chunk], peaks: np.ndarray,
            rr_mean_s: float | None = None) -> list[record_mode.RecordResult]:
        out = []
        for c in chunks:
            out.append(score_chunk(chunk_input(sig, c), c, chunk_peaks(peaks, c, sig.fs), clf, rr_mean_s))
            if progress is not None:
                progress(c)
        return out
    return run


def _dask_chunks(sig: SignalInput, chunks: list[Chunk], peaks: np.ndarray,
                 rr_mean_s: float | None = None) -> list[record_mode.RecordResult]:
    """Chunks scored on any worker, each on its own; the recording's worker thread is given back while it waits."""
    from distributed import worker_client

    with worker_client() as client:
        futures = [client.submit(score_chunk, client.scatter(chunk_input(sig, c), direct=True), c,
                                 chunk_peaks(peaks, c, sig.fs), None, rr_mean_s, pure=False, priority=10)
                   for c in chunks]
        return client.gather(futures)


def score_recording(job: Job, options: ReadOptions | None = None, chunk_s: float = CHUNK_S,
                    overlap_s: float = OVERLAP_S, clf=None, map_chunks: ChunkMap | None = None) -> Outcome:
    """Read and classify one recording (chunked when long). Never raises: a failure is an Outcome with
    status "failed" and the reason. clf / map_chunks default to the Dask worker's model and tasks."""
    options = options or ReadOptions()
    t0 = time.perf_counter()
    row = {"recording": job.name, "path": job.path}
    try:
        sig = read_path(job.path, fs=options.fs, units=options.units, adc_gain=options.adc_gain,
                        adc_baseline=options.adc_baseline)
        chunks = plan_chunks(sig.signal.size, sig.fs, chunk_s, overlap_s, job.name)
        if len(chunks) == 1:
            result = record_mode.classify_signal(dataclasses.replace(sig, reference=None), clf or worker_classifier())
        else:
            # R peaks of the whole recording, as classify-record finds them: Pan-Tompkins' adaptive
            # thresholds depend on all that came before, which no overlap reproduces exactly (in VF neither)
            # (the signal-quality check found them in the prepared signal already; else found here)
            peaks, n_working = _whole_peaks(sig)
            # the beat features' recording mean RR, over the beats classify-record classifies in one piece
            rr_mean = mean_rr(peaks[inside_bounds(peaks, n_working)])
            mapper = map_chunks or (sequential_chunks(clf) if clf is not None else _dask_chunks)
            result = stitch(sig, mapper(sig, chunks, peaks, rr_mean), len(chunks))
        if sig.reference is not None:
            eps = list(result.episodes[["start_s", "end_s"]].itertuples(index=False, name=None))
            result.comparison = record_mode.compare(sig.reference, sig.fs, result.peaks_own, result.beats, eps,
                                                    sig.signal.size)
    except (SignalInputError, ValueError, OSError) as exc:
        return _failed(job, row, str(exc), t0)
    except Exception as exc:  # noqa: BLE001 (one recording's bug must not stop an archive)
        return _failed(job, row, f"{type(exc).__name__}: {exc}", t0)
    row.update(summary_row(result, sig, len(chunks)))
    row["seconds"] = round(time.perf_counter() - t0, 2)
    noise = getattr(result, "noise", None)
    return Outcome(job, row, result.beats, _records(result.episodes), _records(noise), list(result.notes))


def _whole_peaks(sig: SignalInput) -> tuple[np.ndarray, int]:
    """(working-rate R peaks of the whole recording, the prepared signal's length), as classify_signal
    finds them in one piece."""
    q = sig.quality
    if q is not None and getattr(q, "working_peaks", None) is not None and q.working_samples:
        return np.asarray(q.working_peaks, dtype=np.int64), int(q.working_samples)
    x = signals.prepare_signal(sig.signal, sig.fs)
    return detect_beats(x), int(x.size)


def _failed(job: Job, row: dict, reason: str, t0: float) -> Outcome:
    reason = " ".join(str(reason).split()) or "unknown error"
    row.update(status="failed", reason=reason, seconds=round(time.perf_counter() - t0, 2))
    return Outcome(job, row)


def _records(df) -> list[dict]:
    if not isinstance(df, pd.DataFrame):
        return []
    return json.loads(df.to_json(orient="records"))


def summary_row(result: record_mode.RecordResult, sig: SignalInput, n_chunks: int) -> dict:
    """The summary table's numbers of one recording (record_mode.summary plus quality and reference)."""
    s = record_mode.summary(result)
    q = sig.quality
    noise_s = s.get("noise_total_s")
    if noise_s is None and q is not None:  # no noise segments from the pipeline: the quality check's stretches
        noise_s = round(sum(seg.end_s - seg.start_s for seg in q.segments), 1)
    c = result.comparison
    return {
        "status": "ok", "reason": q.reason if q is not None else "",
        "quality": q.verdict if q is not None else "", "duration_s": s["duration_s"], "beats": s["beats"],
        **{k: s["counts"][k] for k in CLASS_KEYS},
        "v_burden_pct": s["percent"]["V"], "a_burden_pct": s["percent"]["A"],
        "heart_rate_bpm": s["heart_rate_bpm"], "vf_episodes": s["vf_episodes"], "vf_s": s["vf_total_s"],
        "noise_s": noise_s,
        "ref_sensitivity": _round(c.sensitivity) if c else None,
        "ref_ppv": _round(c.positive_predictivity) if c else None,
        "ref_agreement": _round(c.agreement) if c else None,
        "chunks": n_chunks, "model": result.model,
    }


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)


# ---------------------------------------------------------------- Dask workers

def limit_threads(threads: int) -> None:
    """TensorFlow with `threads` threads (before it starts): workers sharing cores do not oversubscribe."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already running in this process: keep its setting
        pass


def load_classifier(model_path: str | None, threads: int | None = None):
    from ecg_core.model.predict import info_from_path, load

    if threads:
        limit_threads(threads)
    clf = load(info_from_path(model_path) if model_path else None)
    clf.warm_up()  # build the graph once, before the first recording
    return clf


try:
    from distributed import WorkerPlugin as _WorkerPlugin
except ImportError:  # Dask not installed: the local engine still works
    _WorkerPlugin = object


class ModelPlugin(_WorkerPlugin):
    """Loads the model once per worker (again on a restarted worker), TensorFlow limited to `threads`."""

    name = PLUGIN_NAME

    def __init__(self, model_path: str, threads: int = 1):
        self.model_path, self.threads, self.clf = model_path, threads, None

    def setup(self, worker) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        self.clf = load_classifier(self.model_path, self.threads)

    def __getstate__(self) -> dict:  # the loaded model stays on its worker
        return {"model_path": self.model_path, "threads": self.threads, "clf": None}


# Dask's nanny gives its workers MALLOC_TRIM_THRESHOLD_=65536, which also switches off glibc's adaptive
# mmap threshold: every array over 128 KB is then a fresh mapping whose pages fault in again. For this
# work (many multi-MB temporaries per chunk) that is 2.1 s of system time per 2 hours of signal instead of
# 0.3 s (measured on 4 chunks), about 20 % more CPU; local clusters start without it.
WORKER_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


def local_cluster(n_workers: int, dashboard_address: str | None = None):
    """A LocalCluster of single-threaded worker processes, glibc's allocator left at its defaults."""
    import logging

    import dask
    from distributed import LocalCluster

    with dask.config.set(WORKER_CONFIG):
        return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                            dashboard_address=dashboard_address, silence_logs=logging.ERROR)


def worker_classifier():
    """The model this Dask worker loaded (ModelPlugin)."""
    from distributed import get_worker

    return get_worker().plugins[PLUGIN_NAME].clf


def _report_progress(c: Chunk) -> None:
    """Tell the client a chunk is done (on a Dask worker; a no-op elsewhere)."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return
    worker.log_event(PROGRESS_TOPIC, {"recording": c.recording, "chunk": c.index, "of": c.count})


# ---------------------------------------------------------------- outputs

def output_path(out_dir: str | Path, job: Job) -> Path:
    return Path(out_dir) / f"{job.name}.parquet"


def stamp(job: Job, model_sha: str, code_sha: str) -> dict:
    return {"output_version": OUTPUT_VERSION, "model_sha": model_sha, "code_version": code_sha,
            "input": job.fingerprint()}


def done_row(path: Path, expected: dict) -> dict | None:
    """The summary row stored in a finished output whose stamp matches, else None (score it again)."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(path).metadata or {}
        info = json.loads(meta[META_KEY])
    except (OSError, KeyError, ValueError, TypeError):
        return None
    if any(info.get(k) != v for k, v in expected.items()):
        return None
    return info.get("summary")


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_output(out_dir: str | Path, outcome: Outcome, stamp_: dict) -> Path:
    """The beat table as Parquet, with the stamp, summary row, episodes, noise and notes in its metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(outcome.beats, preserve_index=False)
    info = {**stamp_, "summary": outcome.row, "episodes": outcome.episodes, "noise": outcome.noise,
            "notes": outcome.notes}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: json.dumps(info, default=_json)})
    path = output_path(out_dir, outcome.job)
    _atomic_write(path, lambda p: pq.write_table(table, p))
    return path


def _json(v):
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(type(v).__name__)


def read_beats(path: str | Path) -> pd.DataFrame:
    """A recording's beat table written by classify-archive."""
    return pd.read_parquet(path)


def read_info(path: str | Path) -> dict:
    """The metadata classify-archive stored with a recording's beats (stamp, summary, episodes, noise, notes)."""
    import pyarrow.parquet as pq

    return json.loads(pq.read_schema(path).metadata[META_KEY])


def summary_table(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for c in SUMMARY_COLUMNS:
        if c not in df.columns:
            df[c] = None
    return df[SUMMARY_COLUMNS]


def write_summary(out_dir: str | Path, rows: list[dict]) -> pd.DataFrame:
    df = summary_table(rows)
    out = Path(out_dir)
    _atomic_write(out / "summary.csv", lambda p: df.to_csv(p, index=False))
    _atomic_write(out / "summary.parquet", lambda p: df.to_parquet(p, index=False))
    return df


def read_summary(path: str | Path) -> pd.DataFrame:
    """A summary table (summary.parquet or summary.csv, or the folder holding it)."""
    p = Path(path)
    if p.is_dir():
        p = p / "summary.parquet" if (p / "summary.parquet").exists() else p / "summary.csv"
    return pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
