"""classify-archive on the committed excerpts, on a LocalCluster of 2 workers: the same beats as
classify-record (chunked recordings included), resume, a corrupt recording, bad input."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecg_core.__main__ import main
from ecg_core.pipeline import archive, archive_run

DATA = Path(__file__).parent / "data"
RECORDINGS = {"207": DATA / "mitdb" / "207", "208": DATA / "mitdb" / "208", "430": DATA / "vfdb" / "430"}
CHUNK_S, OVERLAP_S = 60.0, 30.0  # short chunks, so that each excerpt (120-180 s) is scored in 2-3 chunks


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                       silence_logs=logging.ERROR)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def _copy_archive(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name, base in RECORDINGS.items():
        for ext in ("hea", "dat", "atr"):
            shutil.copy(base.with_suffix(f".{ext}"), folder / f"{name}.{ext}")
    return folder


@pytest.fixture(scope="module")
def scored(tmp_path_factory, client):
    """The three excerpts scored once on the cluster, chunked."""
    src = _copy_archive(tmp_path_factory.mktemp("archive") / "in")
    out = src.parent / "out"
    rep = archive_run.run([str(src)], out, client=client, chunk_s=CHUNK_S, overlap_s=OVERLAP_S, progress=False,
                          log=lambda m: None)
    return src, out, rep


def _classify_record(path: Path, tmp: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    beats, episodes = tmp / f"{path.name}_beats.csv", tmp / f"{path.name}_episodes.csv"
    assert main(["classify-record", str(path), "--out", str(beats), "--episodes", str(episodes)]) == 0
    return (pd.read_csv(beats, keep_default_na=False, na_values={"confidence": [""]}), pd.read_csv(episodes))


def test_chunked_outputs_equal_classify_record_beat_for_beat(scored, tmp_path):
    src, out, rep = scored
    assert (rep.scored, rep.failed, rep.skipped) == (3, 0, 0)
    summary = rep.summary.set_index("recording")
    assert (summary["chunks"] >= 2).all()  # every excerpt went through the chunk path
    for name in RECORDINGS:
        ref, ref_ep = _classify_record(src / name, tmp_path)
        got = archive.read_beats(out / f"{name}.parquet")
        assert len(got) == len(ref) > 100
        for col in ref.columns:
            a, b = got[col].to_numpy(), ref[col].to_numpy()
            if col == "predicted":
                assert list(a) == [("" if v != v else v) for v in b], col
            elif a.dtype.kind == "f":
                np.testing.assert_array_equal(a, b.astype(a.dtype), err_msg=col)  # float32 written as CSV text
            else:
                assert (a == b).all(), col
        info = archive.read_info(out / f"{name}.parquet")
        got_ep = [(e["start_s"], e["end_s"]) for e in info["episodes"]]
        assert got_ep == list(ref_ep[["start_s", "end_s"]].itertuples(index=False, name=None))
        row = summary.loc[name]
        assert row["status"] == "ok" and row["beats"] == (got["predicted"] != "").sum()
        assert row["vf_episodes"] == len(ref_ep)
    assert summary.loc["207", "vf_episodes"] > 0 and summary.loc["430", "vf_s"] > 30  # VF across chunk edges
    on_disk = archive.read_summary(out)
    assert list(on_disk["recording"]) == list(rep.summary["recording"])


def test_local_engine_writes_the_same_tables(scored, tmp_path):
    src, out, _ = scored
    rep = archive_run.run([str(src / "208.hea")], tmp_path / "local", engine="local", chunk_s=CHUNK_S,
                          overlap_s=OVERLAP_S, progress=False, log=lambda m: None)
    assert rep.scored == 1
    assert archive.read_beats(tmp_path / "local" / "208.parquet").equals(archive.read_beats(out / "208.parquet"))


def test_resume_skips_done_recordings_and_rescores_changed_ones(scored, client):
    src, out, _ = scored
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.parquet") if p.name != "summary.parquet"}
    rep = archive_run.run([str(src)], out, client=client, chunk_s=CHUNK_S, overlap_s=OVERLAP_S, progress=False,
                          log=lambda m: None)
    assert (rep.scored, rep.skipped) == (0, 3)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.parquet") if p.name != "summary.parquet"} == before
    assert rep.summary.drop(columns="seconds").equals(archive.read_summary(out).drop(columns="seconds"))
    (out / "207.parquet").unlink()  # as after an interrupted run
    st = os.stat(src / "208.dat")
    os.utime(src / "208.dat", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the recording changed
    rep = archive_run.run([str(src)], out, client=client, chunk_s=CHUNK_S, overlap_s=OVERLAP_S, progress=False,
                          log=lambda m: None)
    assert (rep.scored, rep.skipped) == (2, 1)
    assert (out / "207.parquet").exists() and (out / "430.parquet").stat().st_mtime_ns == before["430.parquet"]


def test_a_corrupt_recording_gets_its_reason_and_the_others_finish(tmp_path, client):
    src = _copy_archive(tmp_path / "in")
    (src / "broken.hea").write_text((src / "208.hea").read_text().replace("208.dat", "broken.dat"))
    (src / "broken.dat").write_bytes((src / "208.dat").read_bytes()[:999])  # cut short
    (src / "junk.csv").write_text("time,value\nnot,numbers\n")
    out = tmp_path / "out"
    rep = archive_run.run([str(src)], out, client=client, progress=False, log=lambda m: None)
    rows = rep.summary.set_index("recording")
    assert rep.failed == 2 and rep.scored == 3
    assert set(rows.index[rows["status"] == "ok"]) == set(RECORDINGS)
    for bad in ("broken", "junk"):
        assert rows.loc[bad, "status"] == "failed"
        reason = rows.loc[bad, "reason"]
        assert isinstance(reason, str) and "\n" not in reason and len(reason) > 10
        assert not (out / f"{bad}.parquet").exists()
    assert "broken" in rows.loc["broken", "reason"] or "dat" in rows.loc["broken", "reason"]


def test_plan_chunks_cover_the_recording_at_whole_seconds():
    fs = 250
    chunks = archive.plan_chunks(3600 * fs + 17, fs, 900.0, 60.0)
    assert len(chunks) == 4 and chunks[0].core_start == 0 and chunks[-1].core_end == 3600 * fs + 17
    for a, b in zip(chunks[:-1], chunks[1:]):
        assert a.core_end == b.core_start and b.start == b.core_start - 60 * fs and a.end == a.core_end + 60 * fs
    assert all(c.start % fs == 0 and c.core_start % fs == 0 for c in chunks)
    assert len(archive.plan_chunks(1300 * fs, fs, 900.0, 60.0)) == 1  # under 1.5 chunks: one piece
    assert len(archive.plan_chunks(10**7, 360.5, 900.0, 60.0)) == 1  # no whole-second grid


def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["classify-archive", str(tmp_path / "missing"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "missing" in err[0]
    (tmp_path / "empty").mkdir()
    assert main(["classify-archive", str(tmp_path / "empty"), "--out", str(out), "--engine", "local"]) == 2
    assert "holds no recording" in capsys.readouterr().err
    assert main(["classify-archive", str(DATA / "mitdb"), "--out", str(tmp_path / "no" / "such")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "no").exists()
