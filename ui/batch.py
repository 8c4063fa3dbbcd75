"""Classify a batch of image files given as (name, bytes) pairs. Plain Python: no Streamlit, nothing on disk.

Each file is decoded and normalised with `ecg_core.picture.imaging` (the same code training used); an unreadable
file gets a one-line reason and the rest of the batch still runs. Trace pictures are checked by the
non-ECG guard (`ecg_core.picture.guard.check_for`: overlay pictures with ranges of their own); flagged images are not
classified unless asked to.
All valid images go through `Classifier.predict_proba` in one call.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ecg_core.classes import CLASS_KEYS, CLASS_NAMES
from ecg_core.picture.guard import check_for
from ecg_core.picture.imaging import MAX_FILES_PER_BATCH, ImageInputError, decode_image, display_name, normalise

GuardFn = Callable[[np.ndarray], object]
AUTO = "auto"  # the guard for the model's representation (ecg_core.picture.guard.check_for)
MAX_FILES = MAX_FILES_PER_BATCH


@dataclass
class ImageResult:
    """One input file: its normalised image and probabilities, or why it was not classified."""

    name: str
    status: str  # "ok" | "flagged" (guard says not an ECG image) | "error" (unreadable)
    reason: str = ""
    image: np.ndarray | None = None  # uint8 (128, 128), the model's view
    probs: np.ndarray | None = None  # (6,) in CLASS_KEYS order, once classified
    label: str | None = None  # reference class key, for bundled samples
    source: str = ""  # provenance, for bundled samples

    @property
    def classified(self) -> bool:
        return self.probs is not None

    @property
    def predicted(self) -> str | None:
        return CLASS_KEYS[int(np.argmax(self.probs))] if self.probs is not None else None

    @property
    def confidence(self) -> float | None:
        return float(np.max(self.probs)) if self.probs is not None else None


def batch_digest(files: Sequence[tuple[str, bytes]], *extra: object) -> str:
    """Content hash of a batch (names, bytes and any extra settings), to reuse results across reruns."""
    h = hashlib.sha256()
    for name, data in files:
        h.update(name.encode("utf-8", "replace") + b"\0" + hashlib.sha256(data).digest())
    h.update(repr(extra).encode())
    return h.hexdigest()


def prepare(files: Iterable[tuple[str, bytes]], representation: str = "waveform",
            guard: GuardFn | str | None = AUTO) -> list[ImageResult]:
    """Decode, guard and normalise each file; never raises for bad input. guard=None checks nothing."""
    check = check_for(representation) if guard == AUTO else guard
    out = []
    for raw_name, data in files:
        name = display_name(raw_name)  # shown only, never used as a path
        try:
            gray = decode_image(data)
            image = normalise(gray, representation)
        except ImageInputError as exc:
            out.append(ImageResult(name, "error", str(exc)))
            continue
        except Exception as exc:  # one odd file must not stop the batch
            out.append(ImageResult(name, "error", f"The image could not be processed ({type(exc).__name__})."))
            continue
        status, reason = "ok", ""
        if check is not None:
            try:
                verdict = check(gray)
                if not bool(verdict.is_ecg):
                    status, reason = "flagged", str(verdict.reason)
            except Exception as exc:  # noqa: BLE001 - an unexpected guard failure must not pass the image silently
                status, reason = "flagged", f"could not be checked as an ECG image ({type(exc).__name__})"
        if status == "ok" and not image.any():
            status, reason = "flagged", "no trace found in the image (it is blank or uniform)"
        out.append(ImageResult(name, status, reason, image))
    return out


def classify(results: list[ImageResult], clf, include_flagged: bool = False) -> list[ImageResult]:
    """Fill in probabilities of the usable images with ONE batched `predict_proba` call (in place)."""
    wanted = {"ok", "flagged"} if include_flagged else {"ok"}
    todo = [r for r in results if r.image is not None and r.status in wanted]
    if todo:
        probs = clf.predict_proba(np.stack([r.image for r in todo]))
        for r, p in zip(todo, probs):
            r.probs = p
    return results


def process(files: Sequence[tuple[str, bytes]], clf, include_flagged: bool = False,
            guard: GuardFn | str | None = AUTO) -> list[ImageResult]:
    """prepare + classify."""
    return classify(prepare(files, clf.info.representation, guard), clf, include_flagged)


def _top2(p: np.ndarray) -> str:
    i = int(np.argsort(p)[-2])
    return f"{CLASS_NAMES[CLASS_KEYS[i]]} ({p[i]:.0%})"


def results_frame(results: Sequence[ImageResult]) -> pd.DataFrame:
    """Table of the classified images: file, predicted class, confidence, second candidate (+ reference label)."""
    rows = []
    for r in results:
        if not r.classified:
            continue
        row = {"file": r.name, "predicted": CLASS_NAMES[r.predicted], "confidence": r.confidence,
               "top-2": _top2(r.probs)}
        if r.label:
            row["reference label"] = CLASS_NAMES.get(r.label, r.label)
        if r.status == "flagged":
            row["note"] = f"classified anyway: {r.reason}"
        rows.append(row)
    return pd.DataFrame(rows)


def results_csv(results: Sequence[ImageResult]) -> bytes:
    """Every file (classified or not) with all class probabilities, as CSV bytes built in memory."""
    rows = []
    for r in results:
        row = {"file": r.name, "status": r.status, "reason": r.reason, "predicted": r.predicted or "",
               "confidence": round(r.confidence, 4) if r.classified else None}
        for k, v in zip(CLASS_KEYS, r.probs if r.classified else [None] * len(CLASS_KEYS)):
            row[k] = None if v is None else round(float(v), 4)
        if r.label:
            row["reference_label"] = r.label
        rows.append(row)
    buf = io.StringIO()
    pd.DataFrame(rows).to_csv(buf, index=False)
    return buf.getvalue().encode("utf-8")
