"""Scoring a rhythm detector against rhythm annotations, second by second, in the style of ANSI/AAMI EC57.

Per recording: the reference class and rhythm note of each second (`rhythm.second_labels`) and the
detector's output (VF episodes, noise segments). Summed over recordings:
- VF episode sensitivity (reference VF/flutter episodes overlapped by a detected episode) and positive
  predictivity (detected episodes overlapping reference VF);
- VF duration sensitivity and positive predictivity (seconds);
- organised-rhythm seconds called VF: share and per hour; the same for sinus rhythm ('(N', '(NSR') alone
  (the AHA's NSR specificity) and for the other non-shockable rhythms;
- noise seconds ('(NOISE') called VF, and called unreadable;
- VT seconds called VF (VT may be shockable; reported, not a target);
- onset latency: detected start minus reference start of each detected reference episode (median, max).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecg_core.signal.rhythm import CLASSES, runs

ORG, VF, VT, NOISE = (CLASSES.index(k) for k in ("organised", "VF", "VT", "noise"))
SINUS_NOTES = frozenset({"(N", "(NSR"})


def flags(segments: list[tuple[float, float]], n_seconds: int) -> np.ndarray:
    """Seconds (by their midpoint) inside any of the (start_s, end_s) segments."""
    mid = np.arange(n_seconds) + 0.5
    out = np.zeros(n_seconds, dtype=bool)
    for a, b in segments:
        out |= (mid >= a) & (mid < b)
    return out


@dataclass
class RecordScore:
    """Counts of one recording; `add` sums them."""

    seconds: dict[str, float]
    ref_episodes: int
    ref_episodes_found: int
    det_episodes: int
    det_episodes_true: int
    latencies: list[float]

    def add(self, other: RecordScore) -> RecordScore:
        keys = set(self.seconds) | set(other.seconds)
        return RecordScore({k: self.seconds.get(k, 0.0) + other.seconds.get(k, 0.0) for k in keys},
                           self.ref_episodes + other.ref_episodes, self.ref_episodes_found + other.ref_episodes_found,
                           self.det_episodes + other.det_episodes, self.det_episodes_true + other.det_episodes_true,
                           self.latencies + other.latencies)


def score_record(ref: np.ndarray, notes: np.ndarray, episodes: list[tuple[float, float]],
                 noise: list[tuple[float, float]]) -> RecordScore:
    """One recording: ref class per second, notes per second, detected VF episodes and noise segments (s)."""
    n = ref.size
    det_vf, det_noise = flags(episodes, n), flags(noise, n) & ~flags(episodes, n)
    is_vf, is_org, is_noise, is_vt = ref == VF, ref == ORG, ref == NOISE, ref == VT
    sinus = is_org & np.isin(notes.astype(str), list(SINUS_NOTES))
    s = {
        "vf": is_vf.sum(), "vf_found": (is_vf & det_vf).sum(), "det_vf": det_vf.sum(),
        "organised": is_org.sum(), "organised_vf": (is_org & det_vf).sum(),
        "sinus": sinus.sum(), "sinus_vf": (sinus & det_vf).sum(),
        "other": (is_org & ~sinus).sum(), "other_vf": (is_org & ~sinus & det_vf).sum(),
        "noise": is_noise.sum(), "noise_vf": (is_noise & det_vf).sum(),
        "noise_unreadable": (is_noise & det_noise).sum(),
        "organised_unreadable": (is_org & det_noise).sum(), "vf_unreadable": (is_vf & det_noise).sum(),
        "vt": is_vt.sum(), "vt_vf": (is_vt & det_vf).sum(),
    }
    ref_eps = runs(is_vf, merge_gap_s=0.0, min_s=1.0)
    found, lat = 0, []
    for a, b in ref_eps:
        hits = [(s0, e0) for s0, e0 in episodes if s0 < b and e0 > a]
        if hits:
            found += 1
            lat.append(max(0.0, min(h[0] for h in hits) - a))
    true_det = sum(1 for s0, e0 in episodes if is_vf[int(s0): int(np.ceil(e0))].any())
    return RecordScore({k: float(v) for k, v in s.items()}, len(ref_eps), found, len(episodes), true_det, lat)


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 4) if b else None


def summarise(total: RecordScore) -> dict:
    """The headline numbers of summed counts."""
    s = total.seconds
    lat = np.array(total.latencies)
    return {
        "vf_episode_se": _ratio(total.ref_episodes_found, total.ref_episodes),
        "vf_episode_ppv": _ratio(total.det_episodes_true, total.det_episodes),
        "vf_duration_se": _ratio(s["vf_found"], s["vf"]),
        "vf_duration_ppv": _ratio(s["vf_found"], s["det_vf"]),
        "organised_called_vf": _ratio(s["organised_vf"], s["organised"]),
        "false_vf_s_per_hour": round(3600.0 * s["organised_vf"] / s["organised"], 2) if s["organised"] else None,
        "sinus_specificity": None if not s["sinus"] else round(1 - s["sinus_vf"] / s["sinus"], 4),
        "other_nonshockable_specificity": None if not s["other"] else round(1 - s["other_vf"] / s["other"], 4),
        "noise_called_vf": _ratio(s["noise_vf"], s["noise"]),
        "noise_called_unreadable": _ratio(s["noise_unreadable"], s["noise"]),
        "organised_called_unreadable": _ratio(s["organised_unreadable"], s["organised"]),
        "vf_called_unreadable": _ratio(s["vf_unreadable"], s["vf"]),
        "vt_called_vf": _ratio(s["vt_vf"], s["vt"]),
        "onset_latency_median_s": round(float(np.median(lat)), 1) if lat.size else None,
        "onset_latency_max_s": round(float(lat.max()), 1) if lat.size else None,
        "vf_episodes_reference": total.ref_episodes,
        "seconds": {k: int(v) for k, v in s.items()},
    }
