"""Shared fixtures: the committed excerpt and a small real dataset built from it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
TEST_DATA = ROOT / "tests" / "data"
MITDB = TEST_DATA / "mitdb"
VFDB = TEST_DATA / "vfdb"


@pytest.fixture(scope="session")
def excerpt_dataset():
    """The real pipeline (read, filter, cut, render, normalise) on the committed excerpt."""
    from ecg_core.data import dataset

    return dataset.build(MITDB, VFDB, "waveform")
