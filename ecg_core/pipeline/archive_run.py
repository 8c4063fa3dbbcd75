"""Running classify-archive: the engines (Dask, or one process in sequence), progress, resume, the CLI.

The scoring itself (recordings, chunks, outputs) is ecg_core.pipeline.archive.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ecg_core.pipeline import archive
from ecg_core.pipeline.archive import ArchiveError, Job, Outcome, ReadOptions

SUMMARY_EVERY_S = 30.0  # the summary table is rewritten this often during a run (an interrupted run keeps it)


@dataclass
class RunReport:
    summary: pd.DataFrame
    scored: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    dashboard: str | None = None
    interrupted: bool = False
    workers: int = 0
    notes: list[str] = field(default_factory=list)


class Progress:
    """Terminal progress: a bar over the recordings and one over the chunks of each long recording in work
    (tqdm; drawn only on a terminal), and one line per finished recording."""

    def __init__(self, total: int, done: int, enabled: bool = True, log: Callable[[str], None] | None = None):
        from tqdm.auto import tqdm

        self._tqdm = tqdm
        self.enabled = enabled
        self.log = log
        self.total = tqdm(total=total, initial=done, desc="recordings", unit="rec", file=sys.stderr,
                          disable=None if enabled else True, dynamic_ncols=True)
        self.bars: dict[str, object] = {}

    def chunk(self, recording: str, index: int, of: int) -> None:
        if not self.enabled or of <= 1:
            return
        bar = self.bars.get(recording)
        if bar is None:
            bar = self.bars[recording] = self._tqdm(total=of, desc=f"  {recording}", unit="chunk", leave=False,
                                                    file=sys.stderr, disable=None, dynamic_ncols=True)
        bar.update(1)

    def finished(self, outcome: Outcome, k: int, n: int) -> None:
        bar = self.bars.pop(outcome.job.name, None)
        if bar is not None:
            bar.close()
        self.total.update(1)
        r = outcome.row
        head = f"[{k}/{n}] {outcome.job.name}:"
        ok = f"{head} {r.get('beats', 0)} beats, {r.get('vf_episodes', 0)} VF episode(s), {r.get('seconds', 0):.1f} s"
        line = ok if outcome.ok else f"{head} failed: {r['reason']}"
        if self.log is not None:
            self.log(line)
        elif self.enabled:
            self.total.write(line, file=sys.stderr)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.total.close()


def _prepare_out(out_dir: str | Path) -> Path:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ArchiveError(f"--out {out}: it is a file; give a folder.")
    if not out.exists() and not out.parent.is_dir():
        raise ArchiveError(f"--out {out}: the folder {out.parent} does not exist.")
    target = out if out.exists() else out.parent
    if not os.access(target, os.W_OK):
        raise ArchiveError(f"--out {out}: permission denied.")
    return out


def _model(model: str | None):
    from ecg_core.model.predict import ModelError, default_model, info_from_path
    from ecg_core.pipeline.record_mode import reads_one_lead, two_lead_message

    try:
        info = info_from_path(model) if model else default_model()
    except (ModelError, OSError) as exc:
        raise ArchiveError(str(exc)) from None
    if not info.path.exists():
        raise ArchiveError(f"{info.path}: model file not found.")
    if not reads_one_lead(info.representation):
        raise ArchiveError(two_lead_message(info.name, info.representation))
    return info


def run(patterns: Sequence[str], out_dir: str | Path, *, engine: str = "dask", scheduler: str | None = None,
        workers: int | None = None, model: str | None = None, options: ReadOptions | None = None,
        chunk_s: float = archive.CHUNK_S, overlap_s: float = archive.OVERLAP_S, client=None,
        progress: bool = True, dashboard: bool = True, log: Callable[[str], None] | None = None) -> RunReport:
    """Score every recording named by `patterns` into out_dir (see ecg_core.pipeline.archive).

    engine "dask": on `client` if given, else on the scheduler at `scheduler`, else on an embedded
    LocalCluster of `workers` processes (default: one per core); engine "local": one process, one
    recording after the other. ArchiveError (nothing written) when the run cannot start."""
    if engine not in ("dask", "local"):
        raise ArchiveError(f"--engine must be 'dask' or 'local', not {engine!r}.")
    if chunk_s < 60:
        raise ArchiveError(f"--chunk-minutes: chunks of {chunk_s:g} s are too short; at least 1 minute.")
    if overlap_s < archive.MIN_OVERLAP_S:
        raise ArchiveError(f"overlap of {overlap_s:g} s is too short; at least {archive.MIN_OVERLAP_S:g} s.")
    if workers is not None and workers < 1:
        raise ArchiveError(f"--workers must be at least 1, not {workers}.")
    out = _prepare_out(out_dir)
    jobs = archive.find_recordings(patterns, exclude=out)
    info = _model(model)
    t0 = time.perf_counter()
    model_sha, code_sha = archive.model_version(info.path), archive.code_version()
    stamps = {j.name: archive.stamp(j, model_sha, code_sha) for j in jobs}
    rows: dict[str, dict] = {}
    todo: list[Job] = []
    for j in jobs:
        row = archive.done_row(archive.output_path(out, j), stamps[j.name])
        if row is not None:
            rows[j.name] = row
        else:
            todo.append(j)
    report = RunReport(pd.DataFrame(), skipped=len(rows))
    out.mkdir(exist_ok=True)
    bars = Progress(len(jobs), len(rows), enabled=progress, log=log)
    last_write = [time.perf_counter()]

    def finished(outcome: Outcome) -> None:
        if outcome.ok:
            try:
                archive.write_output(out, outcome, stamps[outcome.job.name])
            except OSError as exc:
                outcome.row.update(status="failed", reason=f"cannot write {archive.output_path(out, outcome.job)}: "
                                   f"{exc.strerror or exc}")
        rows[outcome.job.name] = outcome.row
        report.scored += outcome.ok
        report.failed += not outcome.ok
        bars.finished(outcome, len(rows), len(jobs))
        if time.perf_counter() - last_write[0] > SUMMARY_EVERY_S:
            archive.write_summary(out, [rows[j.name] for j in jobs if j.name in rows])
            last_write[0] = time.perf_counter()

    try:
        if todo and engine == "local":
            report.workers = 1
            clf = archive.load_classifier(str(info.path))
            chunk_map = archive.sequential_chunks(clf, lambda c: bars.chunk(c.recording, c.index, c.count))
            for j in todo:
                finished(archive.score_recording(j, options, chunk_s, overlap_s, clf=clf, map_chunks=chunk_map))
        elif todo:
            _run_dask(todo, info, options, chunk_s, overlap_s, client, scheduler, workers, dashboard, bars,
                      finished, report, log)
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        bars.close()
        report.summary = archive.write_summary(out, [rows[j.name] for j in jobs if j.name in rows])
        report.seconds = time.perf_counter() - t0
    return report


def _run_dask(todo: list[Job], info, options, chunk_s: float, overlap_s: float, client, scheduler: str | None,
              workers: int | None, dashboard: bool, bars: Progress, finished: Callable[[Outcome], None],
              report: RunReport, log: Callable[[str], None] | None) -> None:
    from distributed import Client, as_completed

    say = log or (lambda m: print(m, file=sys.stderr, flush=True))
    own = None
    if client is None:
        try:
            if scheduler:
                own = client = Client(scheduler, timeout="15s")
            else:
                n = workers or os.cpu_count() or 1
                cluster = archive.local_cluster(n, ":8787" if dashboard else None)
                own = client = Client(cluster)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ArchiveError(f"cannot reach the Dask scheduler {scheduler or '(local)'}: {exc}") from None
    try:
        served = "dashboard" in client.scheduler_info().get("services", {})  # a cluster may run without one
        report.dashboard = client.dashboard_link if dashboard and served else None
        if report.dashboard:
            say(f"Dask dashboard: {report.dashboard}")
        if scheduler:  # a cluster started elsewhere must run the same scoring code
            versions = set(client.run(archive.code_version).values())
            if versions != {archive.code_version()}:
                raise ArchiveError("the Dask workers run other ecg_core code than this command; install the same "
                                   "version on them.")
        client.register_plugin(archive.ModelPlugin(str(info.path), threads=1), name=archive.PLUGIN_NAME)
        report.workers = len(client.scheduler_info().get("workers", {}))
        client.subscribe_topic(archive.PROGRESS_TOPIC,
                               lambda event: bars.chunk(event[1]["recording"], event[1]["chunk"], event[1]["of"]))
        limit = max(2, archive.IN_FLIGHT_PER_WORKER * max(report.workers, 1))
        pending = iter(todo)
        futures: dict = {}
        done = as_completed()
        run_id = uuid.uuid4().hex[:8]

        def submit() -> None:
            job = next(pending, None)
            if job is not None:
                f = client.submit(archive.score_recording, job, options, chunk_s, overlap_s, pure=False,
                                  key=f"recording-{job.name}-{run_id}")
                futures[f.key] = job
                done.add(f)

        for _ in range(limit):
            submit()
        for f in done:
            job = futures.pop(f.key)
            try:
                outcome = f.result()
            except Exception as exc:  # noqa: BLE001 (a worker lost while scoring it, ...): a row, not a stop
                outcome = archive._failed(job, {"recording": job.name, "path": job.path},
                                          f"{type(exc).__name__}: {exc}", time.perf_counter())
                outcome.row["seconds"] = None
            finished(outcome)
            f.release()
            submit()
    finally:
        if own is None:  # a caller's client stays open for the caller
            client.unsubscribe_topic(archive.PROGRESS_TOPIC)
        else:
            cluster = getattr(own, "cluster", None)
            own.close()
            if cluster is not None:
                cluster.close()


# ---------------------------------------------------------------- command line

def add_parser(sub) -> argparse.ArgumentParser:
    ca = sub.add_parser("classify-archive", help="every recording in folders / globs -> per-beat Parquet + a "
                        "summary table, on Dask")
    ca.add_argument("paths", nargs="+", metavar="DIR_OR_GLOB",
                    help="folders (searched recursively for .hea, .csv, .edf), globs or recording files")
    ca.add_argument("--out", required=True, help="output folder: <recording>.parquet and summary.csv/.parquet")
    ca.add_argument("--engine", choices=("dask", "local"), default="dask",
                    help="dask (default): a LocalCluster, or --scheduler's cluster; local: one process, in sequence")
    ca.add_argument("--scheduler", default=None, help="address of a running Dask scheduler (tcp://HOST:8786)")
    ca.add_argument("--workers", type=int, default=None, help="LocalCluster worker processes (default: one per core)")
    ca.add_argument("--model", default=None)
    ca.add_argument("--chunk-minutes", type=float, default=archive.CHUNK_S / 60,
                    help="longer recordings are scored in chunks of this many minutes (default %(default)g)")
    ca.add_argument("--no-dashboard", action="store_true", help="do not start the Dask dashboard")
    ca.add_argument("--fs", type=float, default=None, help="sampling rate of CSV files without a time column")
    ca.add_argument("--units", choices=("mV", "adc"), default="mV")
    ca.add_argument("--adc-gain", type=float, default=200.0, help="ADC units per mV (with --units adc)")
    ca.add_argument("--adc-baseline", type=float, default=0.0, help="ADC value of 0 mV (with --units adc)")
    return ca


def cli(a: argparse.Namespace) -> int:
    """Exit status 0: every recording scored; 1: some failed (their reasons are in the summary);
    2: the run could not start (one line on stderr, nothing written); 130: interrupted (run it again)."""
    def err(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if a.scheduler and a.engine == "local":
        err("error: --scheduler needs --engine dask.")
        return 2
    options = ReadOptions(a.fs, a.units, a.adc_gain, a.adc_baseline)
    try:
        rep = run(a.paths, a.out, engine=a.engine, scheduler=a.scheduler, workers=a.workers, model=a.model,
                  options=options, chunk_s=a.chunk_minutes * 60, dashboard=not a.no_dashboard)
    except ArchiveError as exc:
        err(f"error: {exc}")
        return 2
    s = rep.summary
    total = len(s)
    err(f"{a.out}: {rep.scored} scored, {rep.skipped} already done, {rep.failed} failed of {total} recording(s) "
        f"in {rep.seconds:.1f} s ({rep.workers} worker(s)); summary in {Path(a.out) / 'summary.csv'}")
    if rep.interrupted:
        err("interrupted: run the same command again to continue (finished recordings are kept).")
        return 130
    for _, r in s[s["status"] == "failed"].iterrows():
        err(f"failed: {r['recording']}: {r['reason']}")
    return 1 if rep.failed else 0
