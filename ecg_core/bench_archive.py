"""Archive benchmark: python -m ecg_core bench-archive [--mitdb DIR] [--records all|non-paced|LIST] [--workers N]

1. The mitdb records scored by classify-archive in one process, one after the other (--engine local), and
   on a LocalCluster of --workers processes: wall time, records per minute, CPU utilisation (CPU seconds of
   the benchmark's own processes over wall seconds x cores; other load on the machine is not counted), and
   whether the two runs wrote the same beat tables.
2. A --hours recording built by concatenating the MLII leads of the mitdb records in numeric order (100,
   101, ..., 234, again from 100 when they run out), written as one WFDB record, scored end to end (read,
   R peaks, chunks, Parquet) on the same cluster; with --check-long also in one piece by classify_signal,
   beat for beat.
3. Peak memory (RSS) of each worker process, and of this process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

def _records(mitdb: Path, which: str) -> list[str]:
    from ecg_core.data.dataset import PACED_RECORDS  # imported here: the TensorFlow log level is set first

    names = sorted(p.stem for p in mitdb.glob("*.hea"))
    if which == "all":
        return names
    if which == "non-paced":
        return [n for n in names if n not in PACED_RECORDS]
    wanted = [w.strip() for w in which.split(",") if w.strip()]
    missing = [w for w in wanted if w not in names]
    if missing:
        raise SystemExit(f"bench-archive: records not in {mitdb}: {', '.join(missing)}")
    return wanted


def _link_records(mitdb: Path, names: list[str], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        for ext in ("hea", "dat", "atr"):
            src = mitdb / f"{n}.{ext}"
            if src.exists():
                (folder / src.name).symlink_to(src.resolve())


def build_long_record(mitdb: Path, hours: float, folder: Path, name: str = "holter") -> Path:
    """A WFDB record (MLII, 360 Hz, format 16) of `hours` made of the mitdb records' MLII leads in turn."""
    import wfdb

    need = int(round(hours * 3600 * 360))
    parts, have = [], 0
    names = sorted(p.stem for p in mitdb.glob("*.hea"))
    i = 0
    while have < need:
        rec = wfdb.rdrecord(str(mitdb / names[i % len(names)]))
        lead = [s.upper() for s in rec.sig_name].index("MLII") if "MLII" in [s.upper() for s in rec.sig_name] else 0
        x = rec.p_signal[:, lead]
        parts.append(x[: need - have])
        have += parts[-1].size
        i += 1
    folder.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(name, fs=360, units=["mV"], sig_name=["MLII"], p_signal=np.concatenate(parts)[:, None],
                fmt=["16"], adc_gain=[200.0], baseline=[0], write_dir=str(folder))
    return folder / f"{name}.hea"


def _worker_stats() -> dict:
    import psutil

    p = psutil.Process()
    t = p.cpu_times()
    return {"cpu": t.user + t.system, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_mb": p.memory_info().rss / 2**20}


def _cpu_self() -> float:
    t = os.times()
    return t.user + t.system


def _same_outputs(a: Path, b: Path, names: list[str]) -> int:
    import pandas as pd

    same = 0
    for n in names:
        pa, pb = a / f"{n}.parquet", b / f"{n}.parquet"
        if pa.exists() and pb.exists():
            x, y = pd.read_parquet(pa), pd.read_parquet(pb)
            shared = [c for c in x.columns if c in y.columns]  # a column added meanwhile is no difference
            same += x[shared].equals(y[shared])
    return same


def _timed_cluster_run(client, path: Path, out: Path, say):
    """(report, wall s, CPU s of the workers and this process, worker stats after) of one archive run."""
    from ecg_core.pipeline import archive_run

    before, c = client.run(_worker_stats), _cpu_self()
    t = time.perf_counter()
    rep = archive_run.run([str(path)], out, client=client, progress=False, log=say)
    wall = time.perf_counter() - t
    after = client.run(_worker_stats)
    cpu = sum(after[w]["cpu"] - before[w]["cpu"] for w in after) + _cpu_self() - c
    return rep, wall, cpu, after


def main(a: argparse.Namespace) -> int:

    from distributed import Client

    from ecg_core.pipeline import archive, archive_run

    mitdb = Path(a.mitdb)
    if not mitdb.is_dir():
        print(f"bench-archive: {mitdb} is not a folder of mitdb records", file=sys.stderr)
        return 2
    names = _records(mitdb, a.records)
    cores = os.cpu_count() or 1
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="bench_archive_"))
    rows: list[tuple[str, str, str]] = []
    result: dict = {"command": " ".join(["python -m ecg_core bench-archive", *sys.argv[2:]]),
                    "records": len(names), "workers": a.workers, "cores": cores}
    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    code_at_start = archive.code_version()
    try:
        recs = work / "records"
        if not recs.exists():
            _link_records(mitdb, names, recs)
        hours = f"{len(names)} records ({sum((mitdb / f'{n}.dat').stat().st_size for n in names) / 2**20:.0f} MB)"
        if not a.skip_sequential:
            say(f"one process, in sequence: {hours}")
            t, c = time.perf_counter(), _cpu_self()
            rep = archive_run.run([str(recs)], work / "out_local", engine="local", progress=False, log=say)
            wall, cpu = time.perf_counter() - t, _cpu_self() - c
            result["local"] = {"wall_s": wall, "cpu_s": cpu, "scored": rep.scored, "failed": rep.failed}
            rows.append((f"{len(names)} mitdb records, one process in sequence (model loaded once)",
                         f"{wall:.1f} s, {rep.scored / wall * 60:.1f} rec/min",
                         f"CPU {cpu / wall / cores:.0%} of {cores} cores"))

        say(f"LocalCluster of {a.workers} workers")
        t = time.perf_counter()
        cluster = archive.local_cluster(a.workers)
        client = Client(cluster)
        client.register_plugin(archive.ModelPlugin(str(archive_run._model(None).path), threads=1),
                               name=archive.PLUGIN_NAME)
        start = time.perf_counter() - t
        result["cluster_start_s"] = start
        rows.append((f"LocalCluster start ({a.workers} workers, TensorFlow + model loaded in each)",
                     f"{start:.1f} s", ""))
        try:
            rep, wall, cpu, after = _timed_cluster_run(client, recs, work / "out_dask", say)
            result["dask"] = {"wall_s": wall, "cpu_s": cpu, "scored": rep.scored, "failed": rep.failed,
                              "worker_peak_mb": {w: s["peak_mb"] for w, s in after.items()}}
            rows.append((f"{len(names)} mitdb records, LocalCluster of {a.workers}",
                         f"{wall:.1f} s, {rep.scored / wall * 60:.1f} rec/min",
                         f"CPU {cpu / wall / cores:.0%} of {cores} cores"))
            if "local" in result:
                rows.append(("speed-up over one process (cluster start not counted / counted)",
                             f"{result['local']['wall_s'] / wall:.2f}x / "
                             f"{result['local']['wall_s'] / (wall + start):.2f}x", ""))
                same = _same_outputs(work / "out_local", work / "out_dask", names)
                result["identical_outputs"] = same
                rows.append(("beat tables identical, one process vs cluster", f"{same} of {len(names)}", ""))
            peak = max(s["peak_mb"] for s in after.values())
            rows.append(("peak RSS per worker after the records", f"{peak:.0f} MB", ""))

            if a.hours > 0:
                long_dir = work / "long"
                hea = long_dir / "holter.hea"
                if not hea.exists():
                    say(f"building a {a.hours:g}-hour record from the mitdb MLII leads")
                    build_long_record(mitdb, a.hours, long_dir)
                shutil.rmtree(work / "out_long", ignore_errors=True)
                rep, wall, cpu, after = _timed_cluster_run(client, hea, work / "out_long", say)
                row = rep.summary.iloc[0].to_dict()
                result["long"] = {"hours": a.hours, "wall_s": wall, "cpu_s": cpu, "row": row,
                                  "worker_peak_mb": {w: s["peak_mb"] for w, s in after.items()}}
                rows.append((f"{a.hours:g}-hour record (mitdb MLII leads concatenated), end to end on the cluster",
                             f"{wall:.1f} s",
                             f"{row['beats']} beats, {row['chunks']} chunks, CPU {cpu / wall / cores:.0%}"))
                rows.append((f"peak RSS per worker after the {a.hours:g}-hour record",
                             f"{max(s['peak_mb'] for s in after.values()):.0f} MB", "max over workers"))
                if getattr(a, "check_long", False):
                    say("the long record in one piece (classify_signal), for the beat-for-beat check")
                    import pandas as pd

                    from ecg_core.io.signal_io import read_path
                    from ecg_core.pipeline import record_mode

                    t = time.perf_counter()
                    whole = record_mode.classify_signal(read_path(hea), archive.load_classifier(None))
                    one = time.perf_counter() - t
                    got = pd.read_parquet(work / "out_long" / "holter.parquet")
                    ref = whole.beats.reset_index(drop=True)
                    same = got[list(ref.columns)].equals(ref)  # NaN (beats in noise) counts as equal
                    result["long"]["one_piece_s"], result["long"]["identical"] = one, same
                    rows.append(("the same record in one piece, one process (classify_signal)", f"{one:.1f} s",
                                 f"beats identical: {same}"))
        finally:
            client.close()
            cluster.close()
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)
    if archive.code_version() != code_at_start:  # the runs compared may not have run the same code
        rows.append(("the scoring code changed while the benchmark ran", "yes", "compare with care"))
        result["code_changed"] = True
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append(("peak RSS of this process (client; also the one-process runs)", f"{peak_self:.0f} MB", ""))
    result["client_peak_mb"] = peak_self
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement':<{width}}  {'value':<28} note")
    print("-" * (width + 50))
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:<28} {note}")
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=1, default=str) + "\n")
    return 0
