"""Reading ECG records (WFDB), choosing the lead, resampling, filtering and R-peak detection."""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import wfdb
import wfdb.processing
from scipy import signal as sps

from ecg_core.settings import BANDPASS_HZ, SECOND_LEAD, WORKING_FS

log = logging.getLogger(__name__)

PREFERRED_LEAD = "MLII"


class RecordError(ValueError):
    """A record cannot be read or used; the message names the file and the problem."""


@dataclass
class Annotations:
    """Annotations of one record, sample indices at the working rate."""

    sample: np.ndarray
    symbol: np.ndarray
    aux_note: np.ndarray


@dataclass
class Recording:
    """One lead of a record, resampled to the working rate and band-pass filtered."""

    path: str
    signal: np.ndarray  # float32, millivolts, filtered
    fs: int
    lead: str
    lead_fallback: bool
    original_fs: float
    annotations: Annotations | None = None
    notes: list[str] = field(default_factory=list)
    signal2: np.ndarray | None = None  # the second lead, prepared the same way, when asked for
    lead2: str | None = None

    @property
    def leads(self) -> np.ndarray:
        """(2, samples) when the second lead was read, else (samples,)."""
        return self.signal if self.signal2 is None else np.stack([self.signal, self.signal2])

    @property
    def record_id(self) -> str:
        return Path(self.path).name


def choose_lead(sig_names: list[str], preferred: str = PREFERRED_LEAD) -> tuple[int, bool]:
    """Index of the preferred lead by name, else 0; and whether it fell back."""
    names = [str(n).strip().upper() for n in sig_names]
    if preferred.upper() in names:
        return names.index(preferred.upper()), False
    return 0, True


def choose_second_lead(sig_names: list[str], first: int, preferred: str = SECOND_LEAD) -> int | None:
    """Index of the preferred second lead by name, else the first lead other than `first`; None if alone."""
    names = [str(n).strip().upper() for n in sig_names]
    if preferred.upper() in names and names.index(preferred.upper()) != first:
        return names.index(preferred.upper())
    others = [i for i in range(len(names)) if i != first]
    return others[0] if others else None


def _bare_label(label: object) -> str:
    bare = re.sub(r"[\s_\-]", "", str(label)).upper()
    return re.sub(r"^(ECG|EKG|EEG)", "", bare)


_ECG_LEADS = {"I", "II", "III", "AVR", "AVL", "AVF", "MLI", "MLII", "MLIII", *(f"V{k}" for k in range(1, 7)),
              *(f"MV{k}" for k in range(1, 7))}


def is_v1(label: object) -> bool:
    """Whether a signal's label names the V1 lead: case, spaces, '_' / '-' and an ECG/EKG/EEG prefix aside
    ('V1', 'v1', 'ECG V1', 'EEG V1'; EDF writers often prefix every label with its signal type). Training
    (dataset.record_features) and every reader decide with this, so a recording's V1 is the one training read."""
    return _bare_label(label) == SECOND_LEAD.upper()


def is_ecg_lead(label: object) -> bool:
    """Whether a label names an ECG lead (limb, modified limb or precordial), decided as is_v1 decides V1, or is an
    ECG lead whose name is not given ('ECG', 'ECG2': vfdb's two leads)."""
    bare = re.sub(r"[\s_\-]", "", str(label)).upper()
    return _bare_label(label) in _ECG_LEADS or re.fullmatch(r"(ECG|EKG)\d?", bare) is not None


def v1_index(sig_names: list[str], first: int) -> int | None:
    """Index of the first signal other than `first` whose label is V1 (is_v1), else None."""
    return next((i for i, n in enumerate(sig_names) if i != first and is_v1(n)), None)


def other_lead_index(sig_names: list[str], first: int) -> int | None:
    """Index of the first signal other than `first` labelled as an ECG lead other than V1 (is_ecg_lead): the
    second lead whose QRS width is read where a recording has no V1 (mitdb's V2, V4, V5), else None."""
    return next((i for i, n in enumerate(sig_names) if i != first and is_ecg_lead(n) and not is_v1(n)), None)


def resample(x: np.ndarray, fs_in: float, fs_out: int = WORKING_FS) -> np.ndarray:
    """Polyphase resampling (anti-aliased) from fs_in to fs_out."""
    if abs(fs_in - fs_out) < 1e-9:
        return np.asarray(x, dtype=np.float32)
    ratio = Fraction(fs_out / fs_in).limit_denominator(1000)
    y = sps.resample_poly(np.asarray(x, dtype=np.float64), ratio.numerator, ratio.denominator)
    return y.astype(np.float32)


def rescale_samples(samples: np.ndarray, fs_in: float, fs_out: int = WORKING_FS) -> np.ndarray:
    """Sample indices at fs_in -> the nearest indices at fs_out."""
    return np.round(np.asarray(samples, dtype=np.float64) * (fs_out / fs_in)).astype(np.int64)


@functools.lru_cache(maxsize=64)
def butter_sos(order: int, cutoff: float | tuple[float, float], btype: str, fs: float) -> np.ndarray:
    """Butterworth second-order sections, designed once per setting (designing costs more than filtering a
    beat picture's few seconds)."""
    return sps.butter(order, cutoff, btype=btype, fs=fs, output="sos")


@functools.lru_cache(maxsize=64)
def _initial_state(sos_bytes: bytes, sections: int) -> np.ndarray:
    """scipy.signal.sosfilt_zi of a filter (as its bytes), computed once per filter (it costs about as much as
    filtering a beat picture's few seconds)."""
    zi = sps.sosfilt_zi(np.frombuffer(sos_bytes, dtype=np.float64).reshape(sections, 6)).reshape(sections, 2)
    zi.setflags(write=False)
    return zi


def zero_phase(sos: np.ndarray, x: np.ndarray) -> np.ndarray:
    """scipy.signal.sosfiltfilt(sos, x) of a 1-D signal (odd padding, default length), the same numbers with
    one full-length temporary fewer: the padded input is dropped once the forward pass has copied it
    (a 24-hour recording's copies are 250 MB each)."""
    x = np.asarray(x)
    ntaps = 2 * sos.shape[0] + 1 - min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    edge = 3 * ntaps
    if x.ndim != 1 or x.size <= edge:
        return sps.sosfiltfilt(sos, x)
    ext = np.concatenate((2 * x[:1] - x[edge:0:-1], x, 2 * x[-1:] - x[-2:-(edge + 2):-1]))
    zi = _initial_state(np.ascontiguousarray(sos, dtype=np.float64).tobytes(), sos.shape[0])
    y, _ = sps.sosfilt(sos, ext, zi=zi * ext[:1])
    del ext
    y, _ = sps.sosfilt(sos, y[::-1], zi=zi * y[-1:])
    return y[::-1][edge:-edge]


def bandpass(x: np.ndarray, fs: int = WORKING_FS, band: tuple[float, float] = BANDPASS_HZ) -> np.ndarray:
    """Zero-phase Butterworth band-pass: removes baseline wander and high-frequency noise."""
    sos = butter_sos(2, tuple(band), "bandpass", float(fs)).copy()  # scipy's filter wants a writable array
    x = np.asarray(x, dtype=np.float64)
    if not np.isfinite(x).all():  # (a copy only when there is something to replace)
        x = np.nan_to_num(x)
    if x.size <= 3 * 2 * sos.shape[0]:
        raise RecordError(f"signal too short to filter ({x.size} samples)")
    return zero_phase(sos, x).astype(np.float32)


def prepare_signal(x: np.ndarray, fs_in: float) -> np.ndarray:
    """Raw millivolt signal at any rate -> the working-rate, filtered signal every beat is cut from."""
    return bandpass(resample(x, fs_in), WORKING_FS)


def _clean_aux(notes: list[str] | None, n: int) -> np.ndarray:
    if notes is None:
        return np.array([""] * n, dtype=object)
    return np.array([str(a).replace("\x00", "").strip() for a in notes], dtype=object)


def read_annotations(record_path: str | Path, fs_in: float, extension: str = "atr") -> Annotations:
    """Read a WFDB annotation file, sample indices rescaled to the working rate."""
    path = Path(record_path)
    ann_file = path.with_name(f"{path.name}.{extension}")
    if not ann_file.exists():
        raise RecordError(f"{ann_file}: annotation file not found")
    try:
        ann = wfdb.rdann(str(path), extension)
    except Exception as exc:  # wfdb raises many types on corrupt input
        raise RecordError(f"{ann_file}: cannot read annotations ({exc})") from exc
    return Annotations(
        sample=rescale_samples(ann.sample, fs_in),
        symbol=np.array(ann.symbol, dtype=object),
        aux_note=_clean_aux(ann.aux_note, len(ann.sample)),
    )


def read_record(
    record_path: str | Path,
    *,
    with_annotations: bool = True,
    preferred_lead: str = PREFERRED_LEAD,
    second_lead: bool = False,
) -> Recording:
    """Read a WFDB record (path without extension), pick the lead, resample and filter it.

    With second_lead, also the second lead (V1 where the record has it, else its other lead).
    """
    path = Path(record_path)
    for ext in ("hea", "dat"):
        f = path.with_name(f"{path.name}.{ext}")
        if not f.exists():
            raise RecordError(f"{f}: record file not found")
    try:
        rec = wfdb.rdrecord(str(path))
    except Exception as exc:
        raise RecordError(f"{path}.hea/.dat: cannot read record ({exc})") from exc
    if rec.p_signal is None or rec.p_signal.ndim != 2 or rec.p_signal.shape[1] == 0:
        raise RecordError(f"{path}.dat: record holds no signal")
    idx, fallback = choose_lead(list(rec.sig_name or []), preferred_lead)
    raw = rec.p_signal[:, idx]
    finite = np.isfinite(raw)
    if finite.mean() < 0.5 or np.nanstd(raw) < 1e-6:
        raise RecordError(f"{path}.dat: lead {rec.sig_name[idx]!r} has no usable signal")
    notes: list[str] = []
    if fallback:
        msg = f"{path.name}: no {preferred_lead} lead, using lead 0 ({rec.sig_name[0]})"
        log.info(msg)
        notes.append(msg)
    recording = Recording(
        path=str(path),
        signal=prepare_signal(raw, rec.fs),
        fs=WORKING_FS,
        lead=str(rec.sig_name[idx]),
        lead_fallback=fallback,
        original_fs=float(rec.fs),
        notes=notes,
    )
    if second_lead:
        idx2 = choose_second_lead(list(rec.sig_name or []), idx)
        if idx2 is None:
            raise RecordError(f"{path}.hea: two leads are needed, the record has one")
        recording.signal2 = prepare_signal(np.nan_to_num(rec.p_signal[:, idx2]), rec.fs)
        recording.lead2 = str(rec.sig_name[idx2])
    if with_annotations:
        recording.annotations = read_annotations(path, rec.fs)
    return recording


def detect_r_peaks(x: np.ndarray, fs: int = WORKING_FS) -> np.ndarray:
    """R-peak sample indices of a filtered signal: wfdb's XQRS, then snapped to the local extremum."""
    if x.size < 2 * fs:
        return np.zeros(0, dtype=np.int64)
    xqrs = wfdb.processing.XQRS(sig=np.asarray(x, dtype=np.float64), fs=fs)
    xqrs.detect(verbose=False)
    peaks = np.asarray(xqrs.qrs_inds, dtype=np.int64)
    if peaks.size == 0:
        return peaks
    radius = int(0.05 * fs)
    return snap_to_extremum(x, peaks, radius)


def snap_to_extremum(x: np.ndarray, peaks: np.ndarray, radius: int) -> np.ndarray:
    """Move each peak to the largest absolute deflection within +-radius samples."""
    offsets = np.arange(-radius, radius + 1)
    idx = np.clip(peaks[:, None] + offsets[None, :], 0, x.size - 1)
    best = np.argmax(np.abs(x[idx]), axis=1)
    return np.unique(idx[np.arange(idx.shape[0]), best])
