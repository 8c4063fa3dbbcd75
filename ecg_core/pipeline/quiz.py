"""Quiz for teachers: name real beats of patients the models never saw, then compare with the reference
annotation and the model's answer.

The beats come from the bundled sample recordings (`sample_records/`, test patients only: mitdb DS2 and
the vfdb test list), read exactly as an upload is, with their reference annotations, so no database is
needed at run time. Every candidate is cut where the training beats are cut: at the annotated R peaks
(the six classes) and every 0.5 s inside annotated VF/VFL episodes; the model classifies the same
pictures training made (templates from the detected beats, as in training).

Difficulty: easy = beats the model gets right with high confidence (typical beats); hard = beats the
model gets wrong or is unsure about (below its low-confidence threshold); mixed = any. A round's beats
are drawn with a seed, spread over the classes the difficulty offers, so the same quiz number gives the
same ten beats with the same model on the same machine (a class can hand out one quiz number to all).
Nothing is stored: a round is a list of row numbers into the pool.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ecg_core.classes import CLASS_BY_KEY, CLASS_KEYS, VF_RHYTHMS
from ecg_core.io.base import SignalInput
from ecg_core.settings import WINDOW_AFTER_S, WINDOW_BEFORE_S, WORKING_FS
from ecg_core.signal import signals
from ecg_core.signal.beats import episode_windows, labelled_beats, rhythm_episodes
from ecg_core.signal.peaks import detect_beats

DIFFICULTIES = ("easy", "mixed", "hard")
DIFFICULTY_HELP = {
    "easy": "typical beats: the model names them right with high confidence",
    "mixed": "any beat of the sample recordings",
    "hard": "beats the model gets wrong or is unsure about",
}
ROUND_SIZE = 10
EASY_CONFIDENCE = 0.9  # easy beats: the model is right with at least this probability (or its threshold, if higher)
PER_CLASS_CAP = 80  # candidates kept per recording and class (seeded), which bounds the work at page load
STRIP_S = 5.0  # seconds of signal shown around a beat
POOL_SEED = 0


@dataclass
class QuizSource:
    """One recording of the pool: its prepared signal and where it comes from."""

    key: str
    title: str
    source: str  # e.g. "mitdb record 233, from 21:50 for 180 s"
    start_s: float  # where the excerpt starts in its source record
    x: np.ndarray  # prepared signal at WORKING_FS
    peaks: np.ndarray  # detected R peaks (templates of the overlay pictures)


@dataclass
class QuizPool:
    """Candidate beats with their reference label and the model's answer.

    items: one row per candidate: sample, centre (working-rate sample), time_s (in the excerpt), reference,
    predicted, confidence, correct, and the six probabilities.
    """

    model: str
    representation: str
    threshold: float
    sources: dict[str, QuizSource]
    items: pd.DataFrame

    def image(self, row: int) -> np.ndarray:
        """The model's picture of pool row `row` (uint8 128x128), made as for classification."""
        from ecg_core.pipeline.record_mode import beat_image

        it = self.items.loc[row]
        s = self.sources[it["sample"]]
        return beat_image(s.x, int(it["centre"]), self.representation, s.peaks)

    def features(self, row: int) -> np.ndarray:
        """The beat features (1, N_FEATURES) of pool row `row`, as measured for classification."""
        from ecg_core.pipeline.record_mode import model_features

        it = self.items.loc[row]
        s = self.sources[it["sample"]]
        return model_features(s.x, np.array([int(it["centre"])], dtype=np.int64), s.peaks)

    def probabilities(self, row: int) -> np.ndarray:
        return self.items.loc[row, list(CLASS_KEYS)].to_numpy(dtype=np.float32)

    def where(self, row: int) -> str:
        """Where a beat comes from, for after the answer (the sample's title would give the answer away)."""
        it = self.items.loc[row]
        s = self.sources[it["sample"]]
        return (f"{s.source.split(',')[0]} at {s.start_s + float(it['time_s']):.1f} s (the sample "
                f"\"{s.title}\", {float(it['time_s']):.1f} s in)")


def reference_windows(sig: SignalInput, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Working-rate centres and class indices of the reference: annotated beats and VF episode windows."""
    ref = sig.reference
    if ref is None:
        return np.zeros(0, np.int64), np.zeros(0, np.int8)
    samples = signals.rescale_samples(ref.sample, sig.fs, WORKING_FS)
    beats = labelled_beats(x, samples, ref.symbol)
    vf = episode_windows(x, rhythm_episodes(samples, ref.aux_note, x.size, VF_RHYTHMS))
    return np.concatenate([beats.centres, vf.centres]), np.concatenate([beats.labels, vf.labels])


def _capped(labels: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices keeping at most `cap` per class (a seeded choice)."""
    keep = []
    for k in np.unique(labels):
        idx = np.flatnonzero(labels == k)
        keep.append(idx if idx.size <= cap else rng.choice(idx, cap, replace=False))
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)


def build_pool(recordings: Iterable[tuple[str, str, str, float, SignalInput]], clf,
               cap: int = PER_CLASS_CAP, seed: int = POOL_SEED) -> QuizPool:
    """Classify the reference windows of each (key, title, source, start_s, signal) -> QuizPool."""
    from ecg_core.pipeline.record_mode import classify_windows, reads_one_lead, two_lead_message

    if not reads_one_lead(clf.info.representation):
        raise ValueError(two_lead_message(clf.name, clf.info.representation))
    rng = np.random.default_rng(seed)
    sources, frames = {}, []
    for key, title, source, start_s, sig in recordings:
        x = signals.prepare_signal(sig.signal, sig.fs)
        centres, labels = reference_windows(sig, x)
        if centres.size == 0:
            continue
        keep = _capped(labels, cap, rng)
        centres, labels = centres[keep], labels[keep]
        peaks = detect_beats(x)
        probs = classify_windows(x, centres, clf, peaks=peaks)
        pred = probs.argmax(axis=1)
        sources[key] = QuizSource(key, title, source, float(start_s), x, peaks)
        frames.append(pd.DataFrame({
            "sample": key, "centre": centres, "time_s": np.round(centres / WORKING_FS, 3),
            "reference": np.array(CLASS_KEYS, dtype=object)[labels],
            "predicted": np.array(CLASS_KEYS, dtype=object)[pred],
            "confidence": probs[np.arange(pred.size), pred].astype(float),
            "correct": pred == labels,
            **{k: probs[:, j] for j, k in enumerate(CLASS_KEYS)}}))
    items = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["sample", "centre", "time_s", "reference", "predicted", "confidence", "correct", *CLASS_KEYS])
    return QuizPool(clf.name, clf.info.representation, float(clf.info.low_confidence_threshold), sources, items)


def pool_from_samples(clf, directory=None, cap: int = PER_CLASS_CAP) -> QuizPool:
    """The pool of the bundled sample recordings, each read through read_upload as an upload is."""
    from ecg_core.io import samples
    from ecg_core.io.signal_io import read_upload

    recs = []
    for s in samples.list_samples(directory):
        sig = read_upload(samples.sample_files(s, directory))
        recs.append((s.key, s.title, s.source, s.start_s, sig))
    return build_pool(recs, clf, cap)


def eligible(pool: QuizPool, difficulty: str) -> np.ndarray:
    """Mask of the pool's items that fit a difficulty."""
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {', '.join(DIFFICULTIES)}, not {difficulty!r}")
    it = pool.items
    sure = it["confidence"].to_numpy(float) >= pool.threshold
    correct = it["correct"].to_numpy(bool)
    if difficulty == "easy":
        return correct & (it["confidence"].to_numpy(float) >= max(EASY_CONFIDENCE, pool.threshold))
    if difficulty == "hard":
        return ~correct | ~sure
    return np.ones(len(it), dtype=bool)


def classes_offered(pool: QuizPool, difficulty: str) -> list[str]:
    """Class keys with at least one item of this difficulty, in CLASS_KEYS order."""
    present = set(pool.items.loc[eligible(pool, difficulty), "reference"])
    return [k for k in CLASS_KEYS if k in present]


def draw_round(pool: QuizPool, difficulty: str, seed: int, n: int = ROUND_SIZE) -> list[int]:
    """Pool rows of one round: n items of the difficulty, spread over its classes, in a seeded order.

    Each offered class gets n // k items (the remainder to classes drawn first); a class with fewer
    items hands its share on. Too few items of the difficulty in all: the round is topped up with others.
    """
    rng = np.random.default_rng([int(seed), DIFFICULTIES.index(difficulty)])
    ok = eligible(pool, difficulty)
    refs = pool.items["reference"].to_numpy(dtype=object)
    by_class = {k: list(rng.permutation(np.flatnonzero(ok & (refs == k)))) for k in CLASS_KEYS}
    order = [str(k) for k in rng.permutation(list(CLASS_KEYS)) if by_class[str(k)]]
    chosen: list[int] = []
    while len(chosen) < n and any(by_class[k] for k in order):
        for k in order:
            if by_class[k] and len(chosen) < n:
                chosen.append(int(by_class[k].pop()))
    if len(chosen) < n:
        rest = [int(i) for i in rng.permutation(len(pool.items)) if int(i) not in set(chosen)]
        chosen += rest[: n - len(chosen)]
    return [int(pool.items.index[i]) for i in rng.permutation(chosen)]


def score(pool: QuizPool, rows: Sequence[int], answers: Sequence[str | None]) -> dict:
    """Right answers of the student and of the model over the answered items of a round."""
    done = [(r, a) for r, a in zip(rows, answers) if a is not None]
    ref = [pool.items.loc[r, "reference"] for r, _ in done]
    return {"answered": len(done), "of": len(rows),
            "student": sum(a == k for (_, a), k in zip(done, ref)),
            "model": sum(pool.items.loc[r, "predicted"] == k for (r, _), k in zip(done, ref))}


def round_table(pool: QuizPool, rows: Sequence[int], answers: Sequence[str | None]) -> pd.DataFrame:
    """One line per item of a round: where from, the reference, the student's and the model's answers."""
    it = pool.items.loc[list(rows)]
    return pd.DataFrame({
        "beat": np.arange(1, len(rows) + 1),
        "recording": [pool.sources[s].source.split(",")[0] for s in it["sample"]],
        "time_s": [round(pool.sources[s].start_s + t, 1) for s, t in zip(it["sample"], it["time_s"])],
        "reference": it["reference"].to_numpy(),
        "your answer": [a or "" for a in answers] + [""] * (len(rows) - len(answers)),
        "model": it["predicted"].to_numpy(),
        "model confidence": it["confidence"].round(3).to_numpy(),
    })


def strip_figure(pool: QuizPool, row: int, reveal: bool = False, length_s: float = STRIP_S):
    """A Plotly strip of `length_s` seconds around a beat: the model's window shaded, the beat marked.

    Before the answer the marks are neutral; with reveal=True they take the reference class's colour.
    """
    import plotly.graph_objects as go

    it = pool.items.loc[row]
    s = pool.sources[it["sample"]]
    c = int(it["centre"])
    half = int(length_s / 2 * WORKING_FS)
    a, b = max(0, c - half), min(s.x.size, c + half)
    t = np.arange(a, b) / WORKING_FS
    colour = CLASS_BY_KEY[it["reference"]].colour if reveal else "#1f77b4"
    fig = go.Figure(go.Scatter(x=t, y=s.x[a:b], mode="lines", line=dict(color="#222222", width=1.2),
                               hoverinfo="skip", name="ECG (filtered, mV)"))
    fig.add_vrect(x0=(c / WORKING_FS) - WINDOW_BEFORE_S, x1=(c / WORKING_FS) + WINDOW_AFTER_S, fillcolor=colour,
                  opacity=0.12, line_width=0, layer="below")
    top = float(np.max(s.x[a:b])) if b > a else 1.0
    fig.add_trace(go.Scatter(x=[c / WORKING_FS], y=[top * 1.15 + 0.1], mode="markers",
                             marker=dict(symbol="triangle-down", size=16, color=colour), hoverinfo="skip",
                             name="this beat" if it["reference"] != "VF" else "this window"))
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=10, b=10), showlegend=False, dragmode=False,
                      paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)")
    grid = dict(showgrid=True, gridcolor="rgba(200,0,0,0.35)", fixedrange=True)
    fig.update_xaxes(title_text="time in the sample (s)", dtick=1.0, range=[a / WORKING_FS, b / WORKING_FS],
                     minor=dict(dtick=0.2, showgrid=True, gridcolor="rgba(200,0,0,0.12)"), **grid)
    fig.update_yaxes(title_text="mV", dtick=1.0, minor=dict(dtick=0.5, showgrid=True,
                                                            gridcolor="rgba(200,0,0,0.12)"), **grid)
    return fig


def is_vf_window(pool: QuizPool, row: int) -> bool:
    return pool.items.loc[row, "reference"] == "VF"
