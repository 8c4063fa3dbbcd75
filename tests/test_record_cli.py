"""classify-record on the command line: unusable output paths and unreadable recordings exit 2 with one line on
stderr, before the classification and without a traceback; the quality verdict is reported."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import MITDB

from ecg_core.__main__ import main
from ecg_core.io import signal_io
from ecg_core.pipeline import record_mode


def run(capsys, *args: str) -> tuple[int, str]:
    code = main(["classify-record", *map(str, args)])
    return code, capsys.readouterr().err


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    assert not any(ln.startswith("[") for ln in lines)  # refused before any classification step
    return lines[0]


def test_out_is_a_folder(tmp_path, capsys):
    code, err = run(capsys, MITDB / "114", "--out", tmp_path)
    assert code == 2
    assert one_error_line(err) == f"error: cannot write --out {tmp_path}: it is a folder; give a file name."


def test_out_in_a_missing_folder(tmp_path, capsys):
    out = tmp_path / "missing" / "beats.csv"
    code, err = run(capsys, MITDB / "114", "--out", out)
    assert code == 2
    assert one_error_line(err) == f"error: cannot write --out {out}: the folder {out.parent} does not exist."
    assert not out.parent.exists()


@pytest.mark.skipif(not sys.platform.startswith("linux") or not Path("/proc/self").is_dir(), reason="needs /proc")
def test_out_where_nothing_can_be_created(tmp_path, capsys):
    """/proc accepts no new files, even from root (os.access says it may): the open itself is tried."""
    code, err = run(capsys, MITDB / "114", "--out", tmp_path / "b.csv", "--episodes", "/proc/ecg-episodes.csv")
    assert code == 2
    assert one_error_line(err).startswith("error: cannot write --episodes /proc/ecg-episodes.csv: ")
    assert not (tmp_path / "b.csv").exists()  # the check leaves nothing behind


def test_out_and_episodes_the_same_file(tmp_path, capsys):
    out = tmp_path / "b.csv"
    code, err = run(capsys, MITDB / "114", "--out", out, "--episodes", out)
    assert code == 2 and one_error_line(err) == f"error: --out and --episodes name the same file ({out})."


def test_unreadable_recording_exits_2(tmp_path, capsys):
    """A valid header over random bytes: refused by the reader's quality verdict, one line."""
    (tmp_path / "208.hea").write_bytes((MITDB / "208.hea").read_bytes())
    size = (MITDB / "208.dat").stat().st_size
    (tmp_path / "208.dat").write_bytes(np.random.default_rng(5).integers(0, 256, size, dtype=np.uint8).tobytes())
    code, err = run(capsys, tmp_path / "208", "--out", tmp_path / "b.csv")
    assert code == 2
    assert one_error_line(err) == ("error: 208: not readable as an ECG: 0 % of the recording is readable "
                                   "(mostly high-frequency noise).")
    assert not (tmp_path / "b.csv").exists()


def test_real_excerpt_reports_its_quality(tmp_path, capsys):
    out = tmp_path / "b.csv"
    code, err = run(capsys, MITDB / "114", "--out", out)
    assert code == 0 and "Traceback" not in err
    assert len(pd.read_csv(out)) >= 20  # 30 s: 28 reference beats, those near the ends are not classified
    assert "note: Signal quality good: 100 % of the recording is readable" in err
    assert err.count("Signal quality") == 1  # assessed by the reader, not again by classify_signal


@pytest.fixture(scope="module")
def clf():
    from ecg_core.model import predict

    return predict.load()


def test_classify_signal_refuses_an_unreadable_signal_built_in_code(clf):
    noise = np.random.default_rng(6).normal(0, 0.4, 40 * 250)
    with pytest.raises(signal_io.SignalInputError, match=r"^noise: not readable as an ECG: 0 % of the recording"):
        record_mode.classify_signal(signal_io.SignalInput("noise", noise, 250.0, "II"), clf)
    good = signal_io.SignalInput("114", signal_io.read_path(MITDB / "114").signal, 360.0, "MLII")
    res = record_mode.classify_signal(good, clf)
    assert [n for n in res.notes if n.startswith("Signal quality good: ")]
