"""Signal mode: classify every beat of a whole recording, find ventricular fibrillation episodes, compare.

Pipeline (the same preprocessing as training, end to end):
  SignalInput (any rate, mV) -> signals.prepare_signal (360 Hz, band-pass); its V1 lead, where the recording
     has one, prepared the same way for the beat features (QRS width, height, terminal and late part in V1)
  -> R peaks: Pan-Tompkins (`pan_tompkins`, ~0.1 s per 30 min; wfdb's XQRS via signals.detect_r_peaks is
     an option, ~45x slower because of a per-sample Python loop, and less sensitive on MIT-BIH)
  -> beat windows (1.0 s before, 0.6 s after) -> render -> imaging.normalise_batch -> Classifier.predict_proba
  -> rhythm (ecg_core.signal.rhythm): every second judged by 4 s and 8 s windows of the whole signal:
     VF / flutter episodes (each named VF/flutter or VT, whichever dominates it), and noise / unreadable
     segments (the detector's, and the signal-quality check's flat and clipped stretches) with their reason.
  -> beats inside a VF episode are kept and reported as VF (`in_vf_episode` is True): the R-peak detector
     picks the flutter/fibrillation waves as "beats", and MIT-BIH annotates these waves as '!' beats of the
     VF class, so keeping them lines the table up with reference annotations; their confidence is the
     rhythm detector's P(VF) + P(VT). Beats inside noise are not classified (`in_noise`: empty class, no
     confidence; the beat model's probabilities stay for reference). Heart rate is computed from the beats
     outside VF episodes and noise.
  -> with reference annotations: detection sensitivity / positive predictivity (all beat symbols,
     150 ms), per-class agreement and confusion matrix (the six classes).

Sample indices in the output are at the recording's own rate; times are in seconds.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ecg_core.classes import BEAT_SYMBOLS, CLASS_INDEX, CLASS_KEYS, SYMBOL_TO_KEY, VF_RHYTHMS
from ecg_core.io.signal_io import SignalInput, SignalInputError, read_path, require_quality
from ecg_core.picture.imaging import normalise_batch
from ecg_core.picture.render import render
from ecg_core.settings import (
    LEADS_PER_REPRESENTATION,
    TEMPLATE_REPRESENTATIONS,
    WINDOW_AFTER_S,
    WINDOW_BEFORE_S,
    WORKING_FS,
)
from ecg_core.signal import rhythm, signals
from ecg_core.signal.beats import cut_windows, inside_bounds, rhythm_episodes, with_templates
from ecg_core.signal.features import beat_features, without_v1
from ecg_core.signal.peaks import detect_beats, pan_tompkins  # noqa: F401  (re-exported)

Progress = Callable[[float, str], None]

CHUNK = 512  # beats rendered, normalised and predicted per step (bounds memory for 24-hour recordings)
MATCH_TOLERANCE_S = 0.15
BEAT_COLUMNS = ["sample", "time_s", "predicted", "confidence", *CLASS_KEYS]
EPISODE_COLUMNS = ["start_s", "end_s", "kind"]  # kind: 'VF/flutter' or 'VT' (which dominates the episode)
# uncertain: a classified beat whose top probability is below the model's threshold (its card's
# low_confidence_threshold, chosen on validation patients): read its class as a guess, not an answer
CSV_COLUMNS = [*BEAT_COLUMNS, "in_vf_episode", "in_noise", "uncertain"]


# ---------------------------------------------------------------- classification

def model_images(x: np.ndarray, centres: np.ndarray, representation: str,
                 peaks: np.ndarray | None = None) -> np.ndarray:
    """Model-input images (uint8, n x 128 x 128) of windows centred at `centres`, made exactly as in training.

    The overlay representation pairs each window with the median beat at the R `peaks` nearby; they are
    detected here when not given (pass them: detection is per call).
    """
    if representation in TEMPLATE_REPRESENTATIONS:
        windows = with_templates(x, centres, detect_beats(x) if peaks is None else peaks)
    else:
        windows = cut_windows(x, centres)
    return normalise_batch(render(windows, representation), representation)


def classify_windows(x: np.ndarray, centres: np.ndarray, clf, progress: Callable[[int], None] | None = None,
                     chunk: int = CHUNK, peaks: np.ndarray | None = None, rr_mean_s: float | None = None,
                     v1: np.ndarray | None = None, lead2: np.ndarray | None = None) -> np.ndarray:
    """Probabilities (n, 6) of the windows centred at `centres`, chunk by chunk (`peaks`: see model_images;
    `v1`, `lead2`: the prepared V1 or other second lead for the beat features, see model_features).

    A worker thread makes the next chunk's images while the model predicts the current one (TensorFlow
    releases the GIL), which overlaps the two costs on a multi-core machine.
    """
    rep = clf.info.representation
    out = np.zeros((centres.size, len(CLASS_KEYS)), dtype=np.float32)
    starts = list(range(0, centres.size, chunk))
    if not starts:
        return out
    reads_features = getattr(clf, "reads_features", False)
    if (rep in TEMPLATE_REPRESENTATIONS or reads_features) and peaks is None:
        peaks = detect_beats(x)
    feats = model_features(x, centres, peaks, rr_mean_s, v1, lead2) if reads_features else None
    if len(starts) == 1:  # one chunk (a picture's few beats): nothing to overlap, no thread to start
        images = model_images(x, centres, rep, peaks)
        out[:] = clf.predict_proba(images, feats) if reads_features else clf.predict_proba(images)
        if progress is not None:
            progress(centres.size)
        return out
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(model_images, x, centres[: chunk], rep, peaks)
        for k, i in enumerate(starts):
            images = pending.result()
            if k + 1 < len(starts):
                nxt = starts[k + 1]
                pending = pool.submit(model_images, x, centres[nxt: nxt + chunk], rep, peaks)
            out[i: i + len(images)] = (clf.predict_proba(images, feats[i: i + len(images)]) if reads_features
                                       else clf.predict_proba(images))
            if progress is not None:
                progress(i + len(images))
    return out


V1_REACH_S = 0.5  # a beat's V1 measurements read this far either side of its R peak (QRS search, noise floor)


def model_features(x: np.ndarray, centres: np.ndarray, peaks: np.ndarray, rr_mean_s: float | None = None,
                   v1: np.ndarray | None = None, lead2: np.ndarray | None = None) -> np.ndarray:
    """Beat features (signal.features) of windows centred at `centres`, with the R `peaks` that also make the
    templates: what a model reading features gets besides the picture. rr_mean_s: the whole recording's mean
    RR when x is a chunk of it. v1: the recording's V1 lead prepared as x (prepare_v1), as training reads it;
    NaN where V1 was not recorded, and a beat whose V1 reach holds NaN is read as one lead. lead2: a second
    lead other than V1, prepared as x (prepare_lead2), whole; only its QRS width is read."""
    if lead2 is not None:
        return beat_features(x, centres, peaks, v1, record_mean_s=rr_mean_s, lead2=lead2)
    if v1 is None or not np.isnan(v1).any():
        return beat_features(x, centres, peaks, v1, record_mean_s=rr_mean_s)
    f = beat_features(x, centres, peaks, np.nan_to_num(v1), record_mean_s=rr_mean_s)
    outside = ~v1_covers(v1, centres)
    f[outside] = without_v1(f[outside])
    return f


def v1_covers(v1: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Per centre, whether V1 is known (not NaN) within V1_REACH_S of it."""
    reach = int(round(V1_REACH_S * WORKING_FS))
    gaps = np.concatenate([[0], np.cumsum(np.isnan(v1))])
    lo = np.clip(np.asarray(centres, np.int64) - reach, 0, v1.size)
    hi = np.clip(np.asarray(centres, np.int64) + reach + 1, 0, v1.size)
    return (hi - lo == 2 * reach + 1) & (gaps[hi] - gaps[lo] == 0)


def prepare_v1(sig: SignalInput, clf) -> np.ndarray | None:
    """The recording's V1 lead prepared exactly as its first lead (signals.prepare_signal at WORKING_FS), for a
    model that reads beat features; None without V1, or for a model that reads only the picture. Where V1 is
    NaN (known over part of the recording: a 12-lead page's V1 panel) it is held at the nearest known value for
    the filter and NaN again after it."""
    if sig.v1 is None or not getattr(clf, "reads_features", False):
        return None
    known = ~np.isnan(sig.v1)
    if known.all():
        return signals.prepare_signal(sig.v1, sig.fs)
    if not known.any():
        return None
    i = np.arange(sig.v1.size)
    out = signals.prepare_signal(np.interp(i, i[known], sig.v1[known]), sig.fs)
    own = np.minimum((np.arange(out.size) * (sig.fs / WORKING_FS)).astype(np.int64), sig.v1.size - 1)
    out[~known[own]] = np.nan
    return out


def prepare_lead2(sig: SignalInput, clf) -> np.ndarray | None:
    """The recording's second lead other than V1 prepared exactly as its first lead, for a model that reads beat
    features; None without one, or for a model that reads only the picture."""
    if sig.lead2 is None or not getattr(clf, "reads_features", False):
        return None
    return signals.prepare_signal(sig.lead2, sig.fs)


def beat_image(x: np.ndarray, centre: int, representation: str, peaks: np.ndarray | None = None) -> np.ndarray:
    """The model-input image (uint8, 128x128) of one beat, made exactly as for classification."""
    return model_images(x, np.array([centre], dtype=np.int64), representation, peaks)[0]


# ---------------------------------------------------------------- comparison with reference annotations

def match_beats(ref: np.ndarray, det: np.ndarray, tolerance: int) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matches (closest first) within `tolerance` samples: (ref indices, det indices)."""
    ref, det = np.asarray(ref, np.int64), np.asarray(det, np.int64)
    if ref.size == 0 or det.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.argsort(ref, kind="stable")
    rs = ref[order]
    pos = np.searchsorted(rs, det)
    pairs = []
    for k in (pos - 1, pos):
        ok = (k >= 0) & (k < rs.size)
        d_idx = np.flatnonzero(ok)
        r_idx = k[ok]
        dist = np.abs(rs[r_idx] - det[d_idx])
        keep = dist <= tolerance
        pairs.append(np.stack([dist[keep], order[r_idx[keep]], d_idx[keep]], axis=1))
    cand = np.concatenate(pairs)
    cand = cand[np.lexsort((cand[:, 2], cand[:, 1], cand[:, 0]))]
    used_r, used_d, mr, md = set(), set(), [], []
    for _, r, d in cand.tolist():
        if r not in used_r and d not in used_d:
            used_r.add(r)
            used_d.add(d)
            mr.append(r)
            md.append(d)
    return np.array(mr, np.int64), np.array(md, np.int64)


@dataclass
class Comparison:
    """Agreement with reference annotations."""

    n_reference_beats: int
    n_detected: int
    n_matched: int
    sensitivity: float | None
    positive_predictivity: float | None
    per_class: pd.DataFrame  # index class key: reference, agree, agreement, predicted, precision
    confusion: pd.DataFrame  # rows reference class, columns predicted class
    agreement: float | None  # over matched beats of the six classes
    reference_vf_s: float  # seconds of reference VF/VFL rhythm
    detected_vf_overlap_s: float  # seconds of it covered by detected episodes

    @property
    def macro_f1(self) -> float | None:
        """Mean F1 over the classes the reference has (as model.evaluate.metrics averages it)."""
        c = self.per_class
        present = c["reference"] > 0
        if not present.any():
            return None
        f1 = 2 * c["agree"] / (c["reference"] + c["predicted"])
        return float(f1[present].mean())


def compare(reference, fs: float, peaks_own: np.ndarray, beats: pd.DataFrame,
            episodes: list[tuple[float, float]], n_samples: int,
            tolerance_s: float = MATCH_TOLERANCE_S) -> Comparison:
    """Detected peaks and classified beats vs reference annotations (all at the recording's own rate)."""
    tol = int(round(tolerance_s * fs))
    sym = np.asarray(reference.symbol, dtype=object)
    samp = np.asarray(reference.sample, dtype=np.int64)
    is_beat = np.array([s in BEAT_SYMBOLS for s in sym], dtype=bool)
    ref_beats = samp[is_beat]
    mr, md = match_beats(ref_beats, peaks_own, tol)
    se = mr.size / ref_beats.size if ref_beats.size else None
    ppv = md.size / peaks_own.size if (peaks_own.size and ref_beats.size) else None

    keys = np.array([SYMBOL_TO_KEY.get(s) for s in sym], dtype=object)
    six = np.array([k is not None for k in keys], dtype=bool)
    r_six = np.flatnonzero(six)
    mr6, mb = match_beats(samp[r_six], beats["sample"].to_numpy(np.int64), tol)
    ref_k = keys[r_six][mr6].astype(str)
    pred_k = beats["predicted"].to_numpy(dtype=str)[mb]
    confusion = pd.crosstab(pd.Categorical(ref_k, categories=CLASS_KEYS), pd.Categorical(pred_k, categories=CLASS_KEYS),
                            dropna=False).rename_axis(index="reference", columns="predicted")
    diag = np.diag(confusion.to_numpy())
    n_ref = confusion.sum(axis=1).to_numpy()
    n_pred = confusion.sum(axis=0).to_numpy()
    per_class = pd.DataFrame({
        "reference": n_ref, "agree": diag,
        "agreement": np.where(n_ref > 0, diag / np.maximum(n_ref, 1), np.nan),
        "predicted": n_pred,
        "precision": np.where(n_pred > 0, diag / np.maximum(n_pred, 1), np.nan),
    }, index=pd.Index(CLASS_KEYS, name="class"))
    total = int(n_ref.sum())
    ref_ep = rhythm_episodes(samp, np.asarray(reference.aux_note, dtype=object), n_samples, VF_RHYTHMS)
    ref_vf = sum(b - a for a, b in ref_ep) / fs
    overlap = 0.0
    for a, b in ref_ep:
        for s, e in episodes:
            overlap += max(0.0, min(b / fs, e) - max(a / fs, s))
    return Comparison(int(ref_beats.size), int(peaks_own.size), int(mr.size), se, ppv, per_class, confusion,
                      float(diag.sum() / total) if total else None, float(ref_vf), float(overlap))


# ---------------------------------------------------------------- the whole record

@dataclass
class RecordResult:
    """Everything signal mode shows: per-beat table, VF episodes, the prepared signal, comparison."""

    name: str
    lead: str
    fs: float  # the recording's own rate
    n_samples: int  # at the own rate
    model: str
    representation: str
    x: np.ndarray  # prepared signal at WORKING_FS (what windows are cut from)
    centres: np.ndarray  # working-rate R peaks of the beats in `beats` (same order)
    beats: pd.DataFrame  # BEAT_COLUMNS + in_vf_episode, in_noise (not classified: predicted '', confidence NaN)
    episodes: pd.DataFrame  # start_s, end_s, duration_s, kind
    peaks_own: np.ndarray  # every detected R peak (own rate), also those too close to the edges to classify
    comparison: Comparison | None = None
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    noise: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=rhythm.NOISE_COLUMNS))  # unreadable
    rr_mean_s: float | None = None  # the recording's mean RR the beat features were measured against
    v1: np.ndarray | None = None  # the prepared V1 lead the beat features read (prepare_v1), None when not read
    v1_state: str = "absent"  # one of V1_STATES: whether the recording's V1 was read
    lead2: np.ndarray | None = None  # the prepared second lead other than V1 (prepare_lead2), None when not read
    lead2_label: str = ""  # its label, when read

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs

    def image(self, i: int) -> np.ndarray:
        """Model-input image of beat i (row i of `beats`)."""
        return beat_image(self.x, int(self.centres[i]), self.representation, self.centres)

    def features(self, idx) -> np.ndarray:
        """Beat features (n, N_FEATURES) of beats `idx` (rows of `beats`), as measured for classification."""
        return model_features(self.x, self.centres[np.atleast_1d(idx)], self.centres, self.rr_mean_s, self.v1,
                              self.lead2)

    def probabilities(self, i: int) -> np.ndarray:
        return self.beats.loc[self.beats.index[i], list(CLASS_KEYS)].to_numpy(dtype=np.float32)


V1_STATES = ("read", "absent", "unused")  # read for the features; no V1 lead; a V1 the model does not read


def v1_state(sig: SignalInput, v1: np.ndarray | None) -> str:
    return "read" if v1 is not None else "absent" if sig.v1 is None else "unused"


def leads_line(result: RecordResult) -> str:
    """One line saying which leads were read, for the Signal page and the CLI."""
    if result.v1_state == "read":
        return f"Read {result.lead}, with V1 for the bundle-branch-block measurements"
    if result.v1_state == "unused":
        return f"Read {result.lead}; the recording's V1 is not used ({result.model} reads the beat picture only)"
    if result.lead2_label:
        return (f"Read {result.lead}, with {result.lead2_label}'s QRS width (no V1: bundle-branch blocks are told "
                "apart less well)")
    return f"One lead read ({result.lead}, no V1): bundle-branch blocks are found less often"


def known_peaks(sig: SignalInput, n_working: int) -> np.ndarray | None:
    """The R peaks the signal-quality check already found in this signal (Pan-Tompkins on the same
    prepared signal, so the same array detect_beats gives), or None."""
    q = sig.quality
    if q is None or getattr(q, "working_peaks", None) is None or q.working_samples != n_working:
        return None
    return np.asarray(q.working_peaks, dtype=np.int64)


def reads_one_lead(representation: str) -> bool:
    """Whether a model of this representation can classify a one-lead recording."""
    return LEADS_PER_REPRESENTATION.get(representation, 1) == 1


def two_lead_message(model: str, representation: str) -> str:
    """Why a model that reads two leads cannot classify a one-lead recording."""
    return (f"{model} reads {representation} pictures made from two leads; classify a recording with a "
            "single-lead model")


def classify_signal(sig: SignalInput, clf, progress: Progress | None = None, vf_scan: str = "auto",
                    detector: str = "pan-tompkins", peaks: np.ndarray | None = None,
                    rr_mean_s: float | None = None) -> RecordResult:
    """Classify every beat of a recording and find VF episodes.

    vf_scan: 'auto' or 'full' (kept for callers; the rhythm detector reads the whole signal either way).
    peaks: working-rate R peaks found beforehand (a chunk of a long recording gets those of the whole
    recording, so its beats are the same as in one piece); detected here when None. rr_mean_s: the whole
    recording's mean RR for the beat features (a chunk's own would differ); from the beats here when None.
    progress(fraction, message) is called as the work goes on.
    """
    if not reads_one_lead(clf.info.representation):
        raise ValueError(two_lead_message(clf.name, clf.info.representation))
    sig = require_quality(sig)  # the verdict joins the notes; a recording judged unreadable is refused
    report = progress or (lambda f, m: None)
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    report(0.0, "Filtering and resampling to 360 Hz")
    x = signals.prepare_signal(sig.signal, sig.fs)
    v1, lead2 = prepare_v1(sig, clf), prepare_lead2(sig, clf)
    n = x.size
    t1 = time.perf_counter()
    seconds["prepare"] = t1 - t0
    report(0.05, "Detecting beats")
    if peaks is None:
        peaks = known_peaks(sig, n) if detector == "pan-tompkins" else None
    peaks = detect_beats(x, method=detector) if peaks is None else np.asarray(peaks, dtype=np.int64)
    t2 = time.perf_counter()
    seconds["detect"] = t2 - t1
    centres = peaks[inside_bounds(peaks, n)]
    report(0.15, f"Classifying {centres.size} beats")

    def beat_progress(done: int) -> None:
        report(0.15 + 0.7 * done / max(centres.size, 1), f"Classified {done} of {centres.size} beats")

    probs = classify_windows(x, centres, clf, beat_progress, peaks=centres, rr_mean_s=rr_mean_s, v1=v1, lead2=lead2)
    t3 = time.perf_counter()
    seconds["classify"] = t3 - t2
    report(0.85, "Finding ventricular fibrillation and noise")
    if vf_scan not in ("auto", "full"):
        raise ValueError(f"vf_scan must be 'auto' or 'full', not {vf_scan!r}")
    found = rhythm.detect(x, peaks, quality_segments=sig.quality.segments if sig.quality else None)
    seconds["vf_scan"] = time.perf_counter() - t3
    t_c = centres / WORKING_FS
    in_vf, in_noise = _inside(t_c, found.episodes), _inside(t_c, found.noise[["start_s", "end_s"]].to_numpy())
    in_noise &= ~in_vf
    probs = probs.copy()
    # the detector's waves inside an episode are its '!' beats (as MIT-BIH annotates them): reported as VF
    probs[in_vf] = np.eye(len(CLASS_KEYS), dtype=np.float32)[CLASS_INDEX["VF"]]

    own = np.clip(signals.rescale_samples(centres, WORKING_FS, sig.fs), 0, sig.signal.size - 1)
    k = probs.argmax(axis=1) if probs.size else np.zeros(0, dtype=int)
    confidence = probs[np.arange(k.size), k]
    confidence[in_noise] = np.nan  # no rhythm is readable there: these beats get no class
    second = np.clip(t_c.astype(np.int64), 0, max(found.probs.shape[0] - 1, 0))
    if in_vf.any():  # an episode beat's confidence is the detector's P(VF) + P(VT) at its second
        confidence[in_vf] = np.clip(rhythm.shockable(found.probs)[second[in_vf]], 0.0, 1.0)
    beats = pd.DataFrame({
        "sample": own,
        "time_s": np.round(own / sig.fs, 4),
        "predicted": np.where(in_noise, "", np.array(CLASS_KEYS, dtype=object)[k]).astype(object),
        "confidence": np.round(confidence, 4),
        **{key: np.round(probs[:, j], 4) for j, key in enumerate(CLASS_KEYS)},
        "in_vf_episode": in_vf,
        "in_noise": in_noise,
        "uncertain": ~in_vf & ~in_noise & (confidence < clf.info.low_confidence_threshold),
    })
    ep = pd.DataFrame(found.episodes, columns=["start_s", "end_s"], dtype=float).round(2)
    ep["duration_s"] = (ep["end_s"] - ep["start_s"]).round(2)
    ep["kind"] = pd.Series(found.kinds, dtype=object)
    peaks_own = np.clip(signals.rescale_samples(peaks, WORKING_FS, sig.fs), 0, sig.signal.size - 1)
    notes = list(sig.notes)
    edge = peaks.size - centres.size
    if edge:
        notes.append(f"{edge} beat(s) within {WINDOW_BEFORE_S:g} s of the start or {WINDOW_AFTER_S:g} s of the end "
                     "could not be classified (their window would leave the recording).")
    if in_noise.any():
        notes.append(f"{int(in_noise.sum())} beat(s) inside noise segments are not classified.")
    result = RecordResult(sig.name, sig.lead, sig.fs, sig.signal.size, clf.name, clf.info.representation, x,
                          centres, beats, ep, peaks_own, None, notes, seconds, noise=found.noise,
                          rr_mean_s=rr_mean_s, v1=v1, v1_state=v1_state(sig, v1), lead2=lead2,
                          lead2_label=sig.lead2_label if lead2 is not None else "")
    if sig.reference is not None:
        report(0.98, "Comparing with the reference annotations")
        result.comparison = compare(sig.reference, sig.fs, peaks_own, beats,
                                    list(ep[["start_s", "end_s"]].itertuples(index=False, name=None)), sig.signal.size)
    seconds["total"] = time.perf_counter() - t0
    report(1.0, f"Done: {len(beats)} beats, {len(ep)} VF episode(s), {len(found.noise)} noise segment(s)")
    return result


# ---------------------------------------------------------------- summaries and outputs

def summary(result: RecordResult) -> dict:
    """Headline numbers: heart rate, beats per class (count and %), VF episodes."""
    b = result.beats[~result.beats["in_vf_episode"] & ~result.beats.get("in_noise", False)]
    counts = result.beats["predicted"].value_counts().reindex(list(CLASS_KEYS), fill_value=0)
    total = int(counts.sum())
    rr = np.diff(b["sample"].to_numpy()) / result.fs
    rr = rr[(rr > 0.2) & (rr < 3.0)]
    ep = result.episodes
    return {
        "duration_s": round(result.duration_s, 1),
        "beats": total,
        "heart_rate_bpm": round(60.0 / float(np.median(rr)), 1) if rr.size else None,
        "counts": {k: int(v) for k, v in counts.items()},
        "percent": {k: round(100.0 * v / total, 2) if total else 0.0 for k, v in counts.items()},
        "vf_episodes": int(len(ep)),
        "vf_total_s": round(float(ep["duration_s"].sum()), 1) if len(ep) else 0.0,
        "longest_vf_s": round(float(ep["duration_s"].max()), 1) if len(ep) else 0.0,
        "noise_segments": int(len(result.noise)),
        "noise_total_s": round(float(result.noise["duration_s"].sum()), 1) if len(result.noise) else 0.0,
        "beats_in_noise": int(result.beats["in_noise"].sum()) if "in_noise" in result.beats else 0,
    }


def beats_csv(result: RecordResult) -> bytes:
    """The per-beat table as CSV bytes (sample at the recording's own rate; beats in noise: empty class)."""
    return result.beats[CSV_COLUMNS].to_csv(index=False).encode()


def episodes_csv(result: RecordResult) -> bytes:
    return result.episodes[EPISODE_COLUMNS].to_csv(index=False).encode()


def noise_csv(result: RecordResult) -> bytes:
    """Noise / unreadable segments with their reason."""
    return result.noise[rhythm.NOISE_COLUMNS].to_csv(index=False).encode()


def _inside(t: np.ndarray, segments) -> np.ndarray:
    """Which times t (s) fall inside any (start_s, end_s) segment."""
    out = np.zeros(t.size, dtype=bool)
    for a, b in segments:
        out |= (t >= a) & (t < b)
    return out


# ---------------------------------------------------------------- CLI and benchmark

def cli(a: argparse.Namespace) -> int:
    """python -m ecg_core classify-record PATH [--model M] --out beats.csv [--episodes episodes.csv].

    Bad input, an unusable output path or an unreadable recording: exit status 2 and one line on stderr."""
    import os

    from ecg_core.model.predict import ModelError, info_from_path, load

    def err(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    def output_problem(path: str, flag: str) -> str | None:
        """Why `path` cannot receive an output file (checked before the work starts), or None."""
        p = Path(path)
        if p.is_dir():
            return f"cannot write {flag} {path}: it is a folder; give a file name."
        if not p.parent.is_dir():
            return f"cannot write {flag} {path}: the folder {p.parent} does not exist."
        if not os.access(p if p.exists() else p.parent, os.W_OK):
            return f"cannot write {flag} {path}: permission denied."
        existed = p.exists()
        try:  # what os.access cannot tell (root, read-only file systems): open it as the write will
            with open(p, "ab"):
                pass
        except OSError as exc:
            return f"cannot write {flag} {path}: {exc.strerror or exc}."
        if not existed:
            p.unlink(missing_ok=True)
        return None

    last = [-1]

    def progress(frac: float, msg: str) -> None:
        step = int(frac * 10)
        if step != last[0] or not msg.startswith("Classified"):  # every stage, and beats every 10 %
            last[0] = step
            err(f"[{frac:4.0%}] {msg}")

    noise_out = getattr(a, "noise", None)
    outputs = ([(a.out, "--out")] + ([(a.episodes, "--episodes")] if a.episodes else [])
               + ([(noise_out, "--noise")] if noise_out else []))
    for i, (p1, f1) in enumerate(outputs):
        for p2, f2 in outputs[i + 1:]:
            if Path(p1).resolve() == Path(p2).resolve():
                err(f"error: {f1} and {f2} name the same file ({p1}).")
                return 2
    for path, flag in outputs:
        problem = output_problem(path, flag)
        if problem:
            err(f"error: {problem}")
            return 2
    try:
        sig = read_path(a.path, fs=a.fs, units=a.units, adc_gain=a.adc_gain,
                        adc_baseline=getattr(a, "adc_baseline", 0.0))
    except (SignalInputError, OSError) as exc:
        err(f"error: {exc}")
        return 2
    try:
        clf = load(info_from_path(a.model) if a.model else None)
    except ModelError as exc:
        err(f"error: {exc}")
        return 2
    if not reads_one_lead(clf.info.representation):
        err(f"error: {two_lead_message(clf.name, clf.info.representation)}")
        return 2
    leads = f"lead {sig.lead}" + (" with V1" if sig.v1 is not None else
                                  f" with {sig.lead2_label} (its QRS width)" if sig.lead2 is not None else "")
    err(f"{sig.name}: {sig.duration_s:.1f} s at {sig.fs:g} Hz, {leads}; model {clf.name}")
    try:
        result = classify_signal(sig, clf, progress)
    except SignalInputError as exc:
        err(f"error: {exc}")
        return 2
    try:
        Path(a.out).write_bytes(beats_csv(result))
        if a.episodes:
            Path(a.episodes).write_bytes(episodes_csv(result))
        if noise_out:
            Path(noise_out).write_bytes(noise_csv(result))
    except OSError as exc:  # checked above; the disk can still fill up or the folder vanish meanwhile
        err(f"error: cannot write {exc.filename or a.out}: {exc.strerror or exc}.")
        return 2
    s = summary(result)
    err(f"wrote {a.out} ({s['beats']} beats)" + (f" and {a.episodes} ({s['vf_episodes']} VF episodes)"
                                                   if a.episodes else "")
        + (f" and {noise_out} ({s['noise_segments']} noise segments)" if noise_out else ""))
    err(f"rhythm: {s['vf_episodes']} VF episode(s), {s['vf_total_s']:.0f} s of VF; {s['noise_segments']} noise "
        f"segment(s), {s['noise_total_s']:.0f} s unreadable ({s['beats_in_noise']} beats there not classified)")
    err(f"leads: {leads_line(result)}")
    for note in result.notes:
        err(f"note: {note}")
    if result.comparison is not None:
        c = result.comparison
        err(f"reference: detection Se {_fmt(c.sensitivity)}, +P {_fmt(c.positive_predictivity)}; "
            f"class agreement {_fmt(c.agreement)}; VF {c.reference_vf_s:.1f} s, "
            f"{c.detected_vf_overlap_s:.1f} s of it inside detected episodes")
        err(f"reference per class (recall, beats): {per_class_line(c)}; macro F1 {_fmt(c.macro_f1)}")
    return 0


def per_class_line(c: Comparison) -> str:
    """Recall and reference beats of each class the reference has, e.g. 'N 0.985 (1502), V 0.970 (66)'."""
    rows = c.per_class[c.per_class["reference"] > 0]
    return ", ".join(f"{k} {r.agreement:.3f} ({int(r.reference)})" for k, r in rows.iterrows())


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def bench_full_record(mitdb_dir: str | Path, record: str = "100", clf=None, repeats: int = 1) -> float:
    """Seconds from a record's file bytes in memory to per-beat labels (model loaded beforehand; best of repeats)."""
    from ecg_core.io.signal_io import read_wfdb_bytes
    from ecg_core.model.predict import load

    base = Path(mitdb_dir)
    files = {f.name: f.read_bytes() for f in base.glob(f"{record}.*") if f.suffix in (".hea", ".dat")}
    clf = clf or load()
    clf.warm_up()  # build the graph outside the timing
    best = float("inf")
    for _ in range(max(1, repeats)):
        t = time.perf_counter()
        classify_signal(read_wfdb_bytes(files), clf)
        best = min(best, time.perf_counter() - t)
    return best
