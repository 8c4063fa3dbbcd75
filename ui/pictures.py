"""Pictures on the Classify page: run the picture pipeline per file (cached per upload), show one result.

Plain functions around `ecg_core.pipeline.picture`; results are kept in this session's state only, keyed by
the files' content hash and the settings, so a rerun (a click, a slider) never digitizes or classifies again.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ecg_core.classes import CLASS_KEYS, CLASS_NAMES
from ecg_core.figures.picture import display_image
from ecg_core.picture.digitize import DigitizeError
from ecg_core.picture.imaging import MAX_FILES_PER_BATCH, ImageInputError, decode_rgb_with_notes, display_name
from ecg_core.pipeline.picture import CSV_COLUMNS, PictureResult, classify_picture, csv_rows

if TYPE_CHECKING:
    from ui.serving import Slots

MAX_FILES = MAX_FILES_PER_BATCH


@dataclass
class PictureOutcome:
    """One uploaded picture: what the pipeline read, or the one-line reason it could not."""

    name: str
    result: PictureResult | None = None
    error: str | None = None
    display: str = ""  # the picture as a PNG data URI, reduced for the browser (drawn under the results)
    label: str | None = None  # reference class, for bundled samples
    source: str = ""

    @property
    def ok(self) -> bool:
        return self.result is not None


def digest(files: Sequence[tuple[str, bytes]], *extra: object) -> str:
    """Content hash of the files and settings, to reuse results across reruns."""
    h = hashlib.sha256()
    for name, data in files:
        h.update(name.encode("utf-8", "replace") + b"\0" + hashlib.sha256(data).digest())
    h.update(repr(extra).encode())
    return h.hexdigest()


def process(files: Sequence[tuple[str, bytes]], clf, span_s: float | None, layout: str,
            progress: Callable[[int, str], None] | None = None, slots: Slots | None = None,
            waiting: Callable[[int], None] | None = None) -> list[PictureOutcome]:
    """Digitize and classify each picture; a bad file gets its reason and never stops the others.

    slots: the server's shared slots for heavy work; one is held for the whole batch, so that concurrent
    sessions finish one after another rather than all together at the end. `waiting(ahead)` is called when
    none is free."""
    out = []
    turn = slots.hold(waiting) if slots else contextlib.nullcontext()
    with turn:
        for i, (raw_name, data) in enumerate(files[:MAX_FILES]):
            name = display_name(raw_name)
            if progress:
                progress(i, name)
            try:
                decoded = decode_rgb_with_notes(data)  # once: for the digitizer and for the page's drawing
                res = classify_picture(data, clf, name, span_s=span_s, expect=layout, decoded=decoded)
                out.append(PictureOutcome(name, res, None, display_image(decoded[0])[0]))
            except (DigitizeError, ImageInputError) as exc:
                out.append(PictureOutcome(name, error=str(exc)))
            except Exception as exc:  # noqa: BLE001 - one odd file must not stop the batch
                out.append(PictureOutcome(name, error=f"The picture could not be processed "
                                          f"({type(exc).__name__})."))
    for raw_name, _ in files[MAX_FILES:]:
        out.append(PictureOutcome(display_name(raw_name), error=f"Not processed: at most {MAX_FILES} pictures at a "
                                  "time; upload the rest separately."))
    return out


def summary_frame(outcomes: Sequence[PictureOutcome]) -> pd.DataFrame:
    """One row per picture: beats per class, how it was read, or why not."""
    rows = []
    for o in outcomes:
        if not o.ok:
            rows.append({"picture": o.name, "beats": 0, "classes": "", "read as": "", "status": o.error})
            continue
        r = o.result
        counts = r.beats["predicted"].value_counts()
        classes = ", ".join(f"{int(counts[k])} {k}" for k in CLASS_KEYS if k in counts)
        unsure = int(r.beats["uncertain"].sum())
        rows.append({"picture": o.name, "beats": len(r.beats), "classes": classes,
                     "read as": f"{r.kind}, {r.digitized.calibration.method} scale",
                     "status": "ok" + (f", {unsure} uncertain" if unsure else "")})
    return pd.DataFrame(rows)


def beats_frame(result: PictureResult) -> pd.DataFrame:
    """The beat table shown on the page."""
    b = result.beats
    probs = b[list(CLASS_KEYS)].to_numpy(dtype=float)
    second = np.argsort(probs, axis=1)[:, -2] if len(b) else np.zeros(0, dtype=int)
    return pd.DataFrame({
        "beat": b["beat"] + 1,
        "time (s)": b["time_s"],
        "predicted": [CLASS_NAMES[k] for k in b["predicted"]],
        "confidence": b["confidence"],
        "runner-up": [f"{CLASS_NAMES[CLASS_KEYS[j]]} ({probs[i, j]:.0%})" for i, j in enumerate(second)],
        "uncertain": b["why_uncertain"],
    })


def results_csv(outcomes: Sequence[PictureOutcome]) -> bytes:
    """Every picture's beats (or its reason) in the predict CLI's columns, as CSV bytes built in memory."""
    rows = []
    for o in outcomes:
        rows += csv_rows(o.result, o.name, o.error)
    return pd.DataFrame(rows, columns=CSV_COLUMNS).to_csv(index=False).encode("utf-8")
