"""What every reader shares: the error type, the result types and the checks a recording must pass.

Every problem with the input raises SignalInputError whose str() is one line naming the file and the problem.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ecg_core.signal import quality as signal_quality

MIN_FS, MAX_FS = 100.0, 1000.0  # Hz
MIN_DURATION_S = 10.0
MAX_DURATION_S = 24 * 3600.0
MAX_GAP_S = 0.1  # runs of missing samples up to this long are filled in by linear interpolation
FLAT_STD_MV = 1e-4  # a signal varying less than this (0.1 microvolt) is a flat line
# Physical range: ECG amplifiers span about +-5 to +-10 mV (MIT-BIH: +-10.24 mV); beyond +-20 mV the units,
# gain or baseline are wrong. An ECG that varies by less than 20 microvolts in all cannot be read.
MAX_ABS_MV = 20.0
MIN_RANGE_MV = 0.02
DEFAULT_ADC_GAIN = 200.0  # ADC units per millivolt (WFDB's default)
UNIT_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "v": 1e3, "nv": 1e-6}
WITHOUT_V1 = "Without V1, bundle-branch blocks are found less often."
WITHOUT_LEAD2 = "Its QRS width is not read."


class SignalInputError(ValueError):
    """An uploaded or given signal cannot be used; str(error) is the one-line reason."""


@dataclass
class Reference:
    """Reference annotations at the recording's own sampling rate."""

    sample: np.ndarray  # int64
    symbol: np.ndarray  # object (str)
    aux_note: np.ndarray  # object (str), "" where none


@dataclass
class SignalInput:
    """One lead in millivolts at its own rate, ready for ecg_core.signal.signals.prepare_signal, and the
    recording's V1 lead beside it when it has one (the beat features' bundle-branch-block measurements)."""

    name: str
    signal: np.ndarray  # float64, millivolts, no NaN
    fs: float
    lead: str
    reference: Reference | None = None
    notes: list[str] = field(default_factory=list)
    quality: signal_quality.Quality | None = None  # set by the readers (and by require_quality)
    # float64 mV, same rate and length as `signal`, checked like it; only a lead labelled V1 (signals.is_v1).
    # The readers give it whole; NaN marks where V1 was not recorded (a 12-lead page's 2.5 s V1 panel)
    v1: np.ndarray | None = None
    # A second lead other than V1 (V2, V4, V5, a limb lead; signals.other_lead_index), given only where there is
    # no V1, whole, checked like the first lead: only its QRS width is read, as training reads mitdb's V2-V5.
    lead2: np.ndarray | None = None
    lead2_label: str = ""

    def __post_init__(self) -> None:
        for label, lead in (("V1", self.v1), (self.lead2_label or "The second lead", self.lead2)):
            if lead is not None and lead.shape != self.signal.shape:  # a reader's bug, not the user's input
                raise ValueError(f"{self.name}: {label} has {lead.size} samples, the first lead {self.signal.size}")

    @property
    def duration_s(self) -> float:
        return self.signal.size / self.fs


def check_rate(fs: float, name: str) -> float:
    """The sampling rate as float, or SignalInputError when it is outside 100-1000 Hz."""
    if not np.isfinite(fs) or not MIN_FS <= fs <= MAX_FS:
        raise SignalInputError(f"{name}: sampling rate {fs:g} Hz is outside {MIN_FS:g}-{MAX_FS:g} Hz.")
    return float(fs)


def fill_gaps(x: np.ndarray, fs: float, name: str, max_gap_s: float = MAX_GAP_S) -> tuple[np.ndarray, int]:
    """Linearly interpolate runs of NaN up to max_gap_s; a longer run raises. Returns (signal, n filled).

    Only NaN is missing: an infinite value is a sample out of range (check_physical_range says so)."""
    x = np.asarray(x, dtype=np.float64)
    bad = np.isnan(x)
    n_bad = int(bad.sum())
    if n_bad == 0:
        return x, 0
    if n_bad == x.size:
        raise SignalInputError(f"{name}: no sample is a number (every value is empty or NaN).")
    edges = np.diff(np.concatenate([[0], bad.view(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    lengths = ends - starts
    max_gap = int(round(max_gap_s * fs))
    worst = int(np.argmax(lengths))
    if lengths[worst] > max_gap:
        raise SignalInputError(
            f"{name}: {lengths[worst]} missing samples in a row at {starts[worst] / fs:.2f} s; "
            f"at most {max_gap} ({max_gap_s * 1000:g} ms) can be filled in.")
    good = np.flatnonzero(~bad)
    x = x.copy()
    x[bad] = np.interp(np.flatnonzero(bad), good, x[good])
    return x, n_bad


def check_physical_range(x: np.ndarray, fs: float, name: str, resolution_mv: float | None = None) -> None:
    """Refuse samples beyond +-20 mV (or infinite), a flat line, and a signal whose whole range is below what
    an ECG amplifier resolves (20 microvolts, or two steps of the file's own ADC when that is coarser)."""
    mag = np.abs(x)
    worst = int(np.argmax(mag)) if x.size else 0
    if x.size and not mag[worst] <= MAX_ABS_MV:  # also catches inf
        raise SignalInputError(
            f"{name}: the sample at {worst / fs:.2f} s reads {x[worst]:.3g} mV; an ECG stays within "
            f"+-{MAX_ABS_MV:g} mV (check the units, the gain and the baseline).")
    span = float(np.ptp(x)) if x.size else 0.0  # bounded by the check above: no overflow
    flat = f"{name}: the signal is a flat line (no variation); check the lead and the units."
    if span == 0.0:
        raise SignalInputError(flat)
    floor = max(MIN_RANGE_MV, 2.0 * resolution_mv) if resolution_mv and np.isfinite(resolution_mv) else MIN_RANGE_MV
    if span < floor:
        raise SignalInputError(
            f"{name}: the signal spans only {span:.3g} mV peak to peak, less than an ECG amplifier resolves "
            f"({floor * 1000:.3g} microvolts); check the units and the gain.")
    if float(np.std(x)) < FLAT_STD_MV:
        raise SignalInputError(flat)


def validate(x: np.ndarray, fs: float, name: str, resolution_mv: float | None = None) -> tuple[np.ndarray, list[str]]:
    """Rate, duration, gaps and physical-range checks; returns the gap-filled signal and notes for the user."""
    check_rate(fs, name)
    duration = x.size / fs
    if duration < MIN_DURATION_S:
        raise SignalInputError(
            f"{name}: the recording lasts {duration:.1f} s; at least {MIN_DURATION_S:g} s are needed.")
    if duration > MAX_DURATION_S:
        raise SignalInputError(
            f"{name}: the recording lasts {duration / 3600:.1f} h; at most {MAX_DURATION_S / 3600:g} h are accepted.")
    x, n_filled = fill_gaps(x, fs, name)
    check_physical_range(x, fs, name, resolution_mv)
    notes = [f"{n_filled} missing samples were filled in by interpolation."] if n_filled else []
    return x, notes


def validate_v1(x: np.ndarray, fs: float, label: str, n_samples: int,
                resolution_mv: float | None = None, without: str = WITHOUT_V1) -> tuple[np.ndarray | None, list[str]]:
    """A V1 (or other second) lead checked as the first lead is (gaps filled, physical range): (signal, notes),
    or (None, [why, then `without`]) when it cannot be used. It only adds measurements, so it never refuses the
    recording."""
    x = np.asarray(x, dtype=np.float64)
    if x.size != n_samples:
        return None, [f"Lead {label} is not used: it holds {x.size} samples where the first lead holds {n_samples}. "
                      f"{without}"]
    try:
        v1, notes = validate(x, fs, label, resolution_mv)
    except SignalInputError as exc:
        return None, [f"Lead {label} is not used: {str(exc).removeprefix(f'{label}: ')} {without}"]
    return v1, [f"Lead {label}: {note}" for note in notes]


def second_lead_fields(x: np.ndarray | None, label: str, as_v1: bool) -> dict:
    """The SignalInput fields of a checked second lead (validate_v1's signal): v1, or lead2 with its label; {}
    when it cannot be used."""
    if x is None:
        return {}
    return {"v1": x} if as_v1 else {"lead2": x, "lead2_label": label}


def require_quality(sig: SignalInput) -> SignalInput:
    """`sig` with its signal-quality verdict (assessed once) and the verdict's note; a recording judged
    unreadable raises SignalInputError."""
    if sig.quality is None:
        q = signal_quality.assess(sig.signal, sig.fs)
        sig = dataclasses.replace(sig, quality=q, notes=[*sig.notes, q.note])
    if sig.quality.verdict == "unreadable":
        raise SignalInputError(f"{sig.name}: not readable as an ECG: {sig.quality.reason}")
    return sig
