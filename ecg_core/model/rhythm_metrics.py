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

Operating curves (`episode_thresholds`, `operating_curve` and the read-outs after them): the whole range of a
detector's VF threshold at once. Per second, the highest threshold at which the second lies in a VF episode
after the episode rules; summed over recordings, VF duration Se and the organised and noise seconds called VF
at every threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecg_core.signal.rhythm import CLASSES, FORCED_NOISE, MERGE_GAP_S, MIN_VF_S, STEP_S, runs

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


# ---------------------------------------------------------------- operating curves


def episode_thresholds(score: np.ndarray, quality_segments: list | None, duration_s: float, pad_s: float = 0.0,
                       merge_gap_s: float = MERGE_GAP_S) -> np.ndarray:
    """Per second: the highest threshold t at which the second lies in a VF episode when the VF flags are
    `score >= t` and go through `rhythm.resolve_rows` (flat and clipped stretches, joining gap, MIN_VF_S,
    padding, the recording's end); -inf for a second no threshold puts in an episode (NaN scores never flag).

    A higher threshold flags a subset of the seconds and the episode rules keep it a subset, so a second is in
    an episode exactly at the thresholds up to this value: `episode_thresholds(...) >= t` equals the seconds
    `resolve_rows(score >= t, ...)` puts in episodes, for every t at once. Computed by adding the seconds in
    falling score order and keeping the joined runs (intervals) in a union-find.
    """
    s = np.asarray(score, dtype=np.float64).copy()
    n = s.size
    s[np.isnan(s)] = -np.inf
    forced, no_pad = np.zeros(n, bool), np.zeros(n, bool)
    for q in quality_segments or []:
        if q.reason in FORCED_NOISE:
            a = int(np.floor(q.start_s))
            forced[a: int(np.ceil(q.end_s))] = True
            no_pad[a: int(np.ceil(min(q.end_s, duration_s)))] = True
    s[forced] = -np.inf
    stretch = np.cumsum(forced)  # two unforced seconds share a stretch when no forced second lies between
    gap = int(np.floor(merge_gap_s / STEP_S + 1e-9))  # unflagged seconds a joined run may hold between flags
    min_len = int(np.ceil(MIN_VF_S / STEP_S - 1e-9))
    k = int(round(pad_s / STEP_S))
    crit = np.full(n, -np.inf)
    open_ = np.ones(n, bool) & ~no_pad  # seconds an episode may still cover
    open_[(np.arange(n) + 0.5) * STEP_S >= round(duration_s, 2)] = False  # past the end (episodes are clipped)
    parent = np.arange(n)
    lo, hi = np.arange(n), np.arange(n)  # the interval of each run's root (inclusive)
    flagged = np.zeros(n, bool)

    def find(i: int) -> int:
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    for i in np.argsort(-s, kind="stable"):
        t = s[i]
        if t == -np.inf:
            break
        flagged[i] = True
        root = i
        for j in (*range(i - 1, max(i - gap - 2, -1), -1), *range(i + 1, min(i + gap + 2, n))):
            if flagged[j] and stretch[j] == stretch[i]:
                rj = find(j)
                if rj != root:
                    parent[rj] = root
                    lo[root], hi[root] = min(lo[root], lo[rj]), max(hi[root], hi[rj])
        if hi[root] - lo[root] + 1 >= min_len:
            a, b = max(lo[root] - k, 0), min(hi[root] + 1 + k, n)
            new = open_[a:b]
            if new.any():
                crit[a:b][new] = t
                open_[a:b] = False
    return crit


def operating_curve(thresholds: list[np.ndarray], refs: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Summed over recordings (per second: `episode_thresholds`, reference class), at every threshold that
    changes a count, highest first (the first, +inf, calls nothing VF): VF duration Se and the organised and
    noise seconds called VF."""
    crit = np.concatenate([np.asarray(c, dtype=np.float64) for c in thresholds])
    ref = np.concatenate([np.asarray(r) for r in refs])
    keep = np.isin(ref, (VF, ORG, NOISE))
    t = np.unique(crit[keep & np.isfinite(crit)])[::-1]
    t = np.concatenate([[np.inf], t])
    out = {"threshold": t}
    for name, cls in (("vf_duration_se", VF), ("organised_called_vf", ORG), ("noise_called_vf", NOISE)):
        v = np.sort(crit[ref == cls])
        out[name] = (v.size - np.searchsorted(v, t, side="left")) / v.size if v.size else np.zeros(t.size)
    return out


def best_se_at_false_rate(curve: dict, max_false: float, false_key: str = "organised_called_vf") -> int:
    """Index of the threshold with the highest VF duration Se among those calling at most `max_false` of the
    `false_key` seconds VF (ties: the fewer false seconds, then the higher threshold)."""
    ok = np.flatnonzero(curve[false_key] <= max_false + 1e-12)
    return int(ok[np.lexsort((-curve["threshold"][ok], curve[false_key][ok], -curve["vf_duration_se"][ok]))[0]])


def least_false_at_se(curve: dict, min_se: float, false_key: str = "organised_called_vf") -> int | None:
    """Index of the threshold calling the fewest `false_key` seconds VF among those reaching VF duration Se
    `min_se` (ties: the higher Se, then the higher threshold); None when no threshold reaches it."""
    ok = np.flatnonzero(curve["vf_duration_se"] >= min_se - 1e-12)
    if not ok.size:
        return None
    return int(ok[np.lexsort((-curve["threshold"][ok], -curve["vf_duration_se"][ok], curve[false_key][ok]))[0]])


def partial_auc(curve: dict, max_false: float, false_key: str = "organised_called_vf") -> float:
    """Area under the best VF duration Se reachable at or under each false rate x (a step function: the
    highest Se of the thresholds calling at most x of the `false_key` seconds VF; 0 where none does), x from 0
    to `max_false`, divided by `max_false` (1 = every VF second found with no false second)."""
    f, se = np.asarray(curve[false_key], np.float64), np.asarray(curve["vf_duration_se"], np.float64)
    order = np.lexsort((-se, f))
    f, best = f[order], np.maximum.accumulate(se[order])
    right = np.append(f[1:], np.inf)
    width = np.clip(np.minimum(right, max_false) - f, 0.0, None)
    return float(np.sum(best * width) / max_false)
