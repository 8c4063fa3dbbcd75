"""Beat windows, their bounds at record edges, labels and VF episode windows."""

from __future__ import annotations

import numpy as np

from ecg_core.classes import CLASS_INDEX, CLASS_KEYS, SYMBOL_TO_KEY
from ecg_core.settings import WINDOW_AFTER, WINDOW_BEFORE, WINDOW_LEN, WORKING_FS
from ecg_core.signal import beats, signals
from tests.conftest import MITDB, VFDB


def test_window_bounds_at_record_edges():
    n = 10_000
    centres = np.array([WINDOW_BEFORE - 1, WINDOW_BEFORE, n - WINDOW_AFTER, n - WINDOW_AFTER + 1])
    assert beats.inside_bounds(centres, n).tolist() == [False, True, True, False]
    x = np.arange(n, dtype=np.float32)
    w = beats.cut_windows(x, centres[1:3])
    assert w.shape == (2, WINDOW_LEN)
    assert w[0, 0] == 0 and w[1, -1] == n - 1


def test_labels_follow_annotation_symbols_and_edge_beats_are_dropped():
    rec = signals.read_record(MITDB / "207")
    ann = rec.annotations
    b = beats.labelled_beats(rec.signal, ann.sample, ann.symbol)
    lookup = dict(zip(ann.sample.tolist(), ann.symbol.tolist()))
    for c, lab in zip(b.centres[:200], b.labels[:200]):
        assert SYMBOL_TO_KEY[lookup[int(c)]] == CLASS_KEYS[lab]
    usable = [s for s, sym in zip(ann.sample, ann.symbol) if sym in SYMBOL_TO_KEY]
    inside = [s for s in usable if s - WINDOW_BEFORE >= 0 and s + WINDOW_AFTER <= rec.signal.size]
    assert len(b) == len(inside) < len(usable) + 1
    assert set(np.unique(b.labels)) >= {CLASS_INDEX[k] for k in ("L", "R", "V", "VF")}
    assert np.allclose(b.windows[0], rec.signal[b.centres[0] - WINDOW_BEFORE: b.centres[0] + WINDOW_AFTER])


def test_rhythm_episodes_last_until_next_rhythm_note():
    samples = np.array([0, 100, 300, 500])
    notes = np.array(["(N", "(VFL", "", "(N"], dtype=object)
    assert beats.rhythm_episodes(samples, notes, 1000) == [(100, 500)]
    notes = np.array(["(N", "(VF", "", ""], dtype=object)
    assert beats.rhythm_episodes(samples, notes, 1000) == [(100, 1000)]


def test_vf_windows_lie_inside_their_episode_every_half_second():
    rec = signals.read_record(VFDB / "430")
    ann = rec.annotations
    eps = beats.rhythm_episodes(ann.sample, ann.aux_note, rec.signal.size)
    assert eps, "the excerpt holds a VF episode"
    w = beats.episode_windows(rec.signal, eps)
    assert len(w) > 20 and set(w.labels.tolist()) == {CLASS_INDEX["VF"]}
    assert np.all(np.diff(w.centres)[np.diff(w.centres) < WORKING_FS] == WORKING_FS // 2)
    for c in w.centres:
        assert any(s <= c - WINDOW_BEFORE and c + WINDOW_AFTER <= e for s, e in eps)
