"""One beat's measurements in words for the app: the beat features (signal.features) as a table a clinician or
teacher can read, and a blend's two readers (picture network, measurement trees) side by side.

No Streamlit here: every table is a pandas DataFrame, testable on its own. Values are the features as measured
(not as a model that holds the absolute RR constant reads them).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ecg_core.signal.features import FEATURE_NAMES, N_FEATURES, NEUTRAL_RR_S

COLUMNS = ("measurement", "value", "what it means")
NOT_MEASURED = "not measured"
LONE_BEAT = "no neighbours (single beat)"
NO_V1 = "no V1 lead"
# words for the sign or size of a measure (thresholds for reading, not for classifying)
EARLY, LATE = 0.85, 1.15  # rr_pre_local below / above: earlier / later than the local rhythm
UPRIGHT = 0.3  # |qrs_polarity| above: upright or inverted, else biphasic
LATE_QRS = 0.1  # |qrs_late| above: a late wave below / above the baseline
SAME_SHAPE, SIMILAR_SHAPE = 0.95, 0.8  # template_corr
TERMINAL = 0.05  # |v1_terminal| above: a positive R' / negative S at the end of the QRS in V1


def beat_vector(features) -> np.ndarray:
    """The N_FEATURES measurements of one beat from (N_FEATURES,) or (1, N_FEATURES); ValueError otherwise."""
    try:
        f = np.asarray(features, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("the beat measurements are not numbers") from None
    if f.ndim == 2 and f.shape[0] == 1:
        f = f[0]
    if f.shape != (N_FEATURES,):
        raise ValueError(f"expected the {N_FEATURES} measurements of one beat, got an array of shape {f.shape}")
    return f


def _get(f: np.ndarray, name: str) -> float:
    return float(f[FEATURE_NAMES.index(name)])


def _num(v: float, fmt: str, unit: str = "") -> str:
    return f"{v:{fmt}}{unit}" if np.isfinite(v) else NOT_MEASURED


def _signed(v: float, digits: int) -> str:
    """+0.12 / -3: a sign always, and no "-0" for a value that rounds to zero."""
    return f"{float(np.round(v, digits)) + 0.0:+.{digits}f}"


def is_lone_beat(features) -> bool:
    """No neighbour on either side: every RR is the neutral stand-in (a single-beat picture)."""
    f = beat_vector(features)
    rr = f[:6]
    return (_get(f, "rr_known") < 0.5 and np.allclose(rr[:2], NEUTRAL_RR_S, atol=1e-6)
            and np.allclose(rr[2:6], 1.0, atol=1e-6))


def polarity_word(p: float) -> str:
    if not np.isfinite(p):
        return NOT_MEASURED
    return "upright" if p > UPRIGHT else "inverted" if p < -UPRIGHT else "biphasic (as far up as down)"


def late_word(v: float) -> str:
    if not np.isfinite(v):
        return NOT_MEASURED
    return ("below the baseline (a late S wave)" if v < -LATE_QRS else
            "above the baseline (a late R wave)" if v > LATE_QRS else "near the baseline")


def shape_word(r: float) -> str:
    if not np.isfinite(r):
        return NOT_MEASURED
    return "same shape" if r >= SAME_SHAPE else "similar shape" if r >= SIMILAR_SHAPE else "different shape"


def terminal_word(v: float) -> str:
    if not np.isfinite(v):
        return NOT_MEASURED
    return ("positive (an R' at the end, as in right bundle-branch block)" if v > TERMINAL else
            "negative (an S at the end, as in left bundle-branch block)" if v < -TERMINAL else "near zero")


def timing_word(ratio: float) -> str:
    if not np.isfinite(ratio):
        return NOT_MEASURED
    return "early" if ratio < EARLY else "late" if ratio > LATE else "on time"


def measurements_table(features) -> pd.DataFrame:
    """One beat's measurements as rows of (measurement, value, what it means), values with their units:
    RR intervals, prematurity, QRS width, height, polarity and late part in the first lead, the neighbours'
    width and shape match, and the V1 block when a V1 lead was measured. A lone beat (no neighbours) and a
    recording without V1 say so instead of showing their neutral stand-in values."""
    f = beat_vector(features)
    rows: list[tuple[str, str, str]] = []
    lone = is_lone_beat(f)
    if lone:
        rows.append(("Rhythm (RR intervals, prematurity)", LONE_BEAT,
                     "A picture of one beat has no beat before or after it: the model reads neutral rhythm values."))
    else:
        edge = _get(f, "rr_known") < 0.5
        stand_in = (" At the start or end of the trace one neighbour is missing: its interval is the local mean."
                    if edge else "")
        pre, post, ratio = _get(f, "rr_pre_s"), _get(f, "rr_post_s"), _get(f, "rr_pre_local")
        rows += [
            ("RR before", _num(pre * 1000.0, ".0f", " ms"),
             "Time from the previous beat's R peak to this one." + stand_in),
            ("RR after", _num(post * 1000.0, ".0f", " ms"),
             "Time from this beat's R peak to the next; a long one after an early beat is a compensatory pause."),
            ("Prematurity", _num(ratio * 100.0, ".0f", " % of the local mean RR")
             + (f" ({timing_word(ratio)})" if np.isfinite(ratio) else ""),
             f"RR before over the mean RR of the ~10 beats around; below {EARLY:.0%}: the beat comes early, "
             "as premature atrial and ventricular beats do."),
        ]
    width, height, pol = _get(f, "qrs_ms"), _get(f, "qrs_amp_mv"), _get(f, "qrs_polarity")
    late = _get(f, "qrs_late")
    rows += [
        ("QRS width (first lead)", _num(width, ".0f", " ms"),
         "Normal up to about 110 ms; 120 ms or more: a bundle-branch block or a beat from the ventricles."),
        ("QRS height (first lead)", _num(height, ".2f", " mV"), "Peak-to-peak size of the QRS complex."),
        ("QRS polarity (first lead)", polarity_word(pol) + (f" ({_signed(pol, 2)})" if np.isfinite(pol) else ""),
         "Main direction of the QRS: +1 all upward, -1 all downward."),
        ("Late QRS (first lead)", late_word(late) + (f" ({_signed(late, 2)} of the QRS height)" if np.isfinite(late)
                                                     else ""),
         "The signal 40-100 ms after the R peak against the PR level: right bundle-branch block draws a late S."),
    ]
    if lone:
        rows.append(("Neighbours' QRS", LONE_BEAT, "Width and shape are compared with the beats around; a "
                     "single-beat picture has none."))
    else:
        tmpl, diff, corr = _get(f, "qrs_template_ms"), _get(f, "qrs_vs_template_ms"), _get(f, "template_corr")
        rows += [
            ("Neighbours' QRS width", _num(tmpl, ".0f", " ms")
             + (f" (this beat {_signed(diff, 0)} ms)" if np.isfinite(diff) else ""),
             "Median QRS width of the ~10 beats around: a bundle-branch block widens them all, an ectopic beat "
             "differs from them."),
            ("Shape match with the neighbours", shape_word(corr) + (f" (correlation {corr:.2f})"
                                                                   if np.isfinite(corr) else ""),
             "This QRS against the neighbours' median QRS (1 = identical): a ventricular beat usually differs."),
        ]
    if _get(f, "has_v1") > 0.5:
        v1w, term = _get(f, "v1_qrs_ms"), _get(f, "v1_terminal")
        rows += [
            ("QRS width in V1", _num(v1w, ".0f", " ms"),
             "Bundle-branch blocks are read in V1; 120 ms or more is wide."),
            ("Terminal QRS in V1", terminal_word(term) + (f" ({_signed(term, 2)})" if np.isfinite(term) else ""),
             "Mean of the last 40 ms of the QRS in V1 over its height: RBBB ends upward (R'), LBBB downward (S)."),
        ]
    elif _get(f, "has_lead2") > 0.5:
        rows += [
            ("QRS width, second lead", _num(_get(f, "lead2_qrs_ms"), ".0f", " ms"),
             "The recording's second lead is not V1: its QRS width is read (120 ms or more is wide), its shape not."),
            ("V1", NO_V1, "The V1 measurements that tell the bundle-branch blocks apart are missing."),
        ]
    else:
        rows.append(("V1", NO_V1, "A one-lead recording or picture: the V1 measurements that tell the bundle-branch "
                     "blocks apart are missing."))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def group_label(name: str) -> str:
    """A FEATURE_GROUPS name without its parenthesis, capitalised: 'Prematurity', 'QRS in V1'."""
    short = name.split(" (")[0].strip()
    return short[:1].upper() + short[1:]


def finite_effects(effects: Mapping[str, object]) -> tuple[dict[str, float], list[str]]:
    """({group: change of probability} for the groups with a number, [groups left out (NaN: not measured)]),
    from Classifier.measurement_effects of one beat ((1,) arrays or plain numbers)."""
    kept, left_out = {}, []
    for name, value in effects.items():
        v = np.asarray(value, dtype=np.float64).reshape(-1)
        if v.size and np.isfinite(v[0]):
            kept[name] = float(v[0])
        else:
            left_out.append(name)
    return kept, left_out


def readers_table(parts: Mapping[str, np.ndarray], cls: int, weight_network: float,
                  blended: float | None = None) -> pd.DataFrame:
    """A blend's two readers of one beat: (reader, probability of class `cls`, share in the blend as text), from
    Classifier.parts_proba of that beat; `blended`, the blend's own probability, adds a last row."""
    w = float(weight_network)
    if not 0.0 <= w <= 1.0:
        raise ValueError(f"the blend's share of the network is {w}, not between 0 and 1")

    def p(part: str) -> float:
        a = np.asarray(parts[part], dtype=np.float64)
        return float(a.reshape(-1, a.shape[-1])[0, cls])

    rows = [("picture network (the beat's picture and its measurements)", p("network"), f"{w:.0%}"),
            ("measurement trees (the measurements alone)", p("trees"), f"{1.0 - w:.0%}")]
    if blended is not None:
        rows.append(("blend (the two mixed, then calibrated)", float(blended), ""))
    return pd.DataFrame(rows, columns=["reader", "probability", "share"])
