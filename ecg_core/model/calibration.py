"""Temperature scaling and the "uncertain" threshold, both chosen on validation patients only."""

from __future__ import annotations

import numpy as np

# The error rate the uncertain threshold is chosen for: beats answered with a class (not "uncertain") are
# wrong at most this often on the validation patients.
ANSWERED_ERROR_RATE = 0.05
TEMPERATURES = np.exp(np.linspace(np.log(0.25), np.log(8.0), 121))


def with_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities softmax(logits / T), from the softmax outputs (log p differs from the logits by a constant)."""
    logp = np.log(np.clip(np.asarray(probs, np.float64), 1e-12, 1.0)) / float(temperature)
    logp -= logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def blend(net: np.ndarray, boost: np.ndarray, weight, t_net: float, t_trees: float) -> np.ndarray:
    """weight x the network's calibrated probabilities + (1 - weight) x the trees' calibrated probabilities,
    weight a number or one per row: the cross-validation folds, the shipped model and the app all mix with this."""
    w = np.asarray(weight, np.float64)
    w = w[:, None] if w.ndim == 1 else w
    return (w * with_temperature(net, t_net) + (1.0 - w) * with_temperature(boost, t_trees)).astype(np.float32)


def fit_temperature(probs: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> float:
    """The temperature minimising the (optionally weighted) negative log-likelihood of validation labels."""
    y = np.asarray(y, dtype=np.int64)
    w = np.ones(y.size) if weights is None else np.asarray(weights, np.float64)
    best, best_nll = 1.0, np.inf
    for t in TEMPERATURES:
        p = with_temperature(probs, t)
        nll = -np.sum(w * np.log(np.clip(p[np.arange(y.size), y], 1e-12, 1.0))) / w.sum()
        if nll < best_nll:
            best, best_nll = float(t), nll
    return round(best, 4)


def uncertain_threshold(probs: np.ndarray, y: np.ndarray, error_rate: float = ANSWERED_ERROR_RATE,
                        grid: np.ndarray | None = None) -> float:
    """The smallest top probability t such that validation beats with confidence >= t are wrong at most
    `error_rate` of the time; beats below t are answered "uncertain". 1.0 when no t reaches it."""
    conf = probs.max(axis=1)
    wrong = probs.argmax(axis=1) != np.asarray(y)
    for t in (np.round(np.arange(0.30, 1.0, 0.01), 2) if grid is None else grid):
        answered = conf >= t
        if answered.sum() >= 20 and wrong[answered].mean() <= error_rate:
            return float(t)
    return 1.0


def answered_stats(probs: np.ndarray, y: np.ndarray, threshold: float) -> dict:
    """Coverage (share answered) and the error rate among answered beats at a threshold."""
    conf = probs.max(axis=1)
    answered = conf >= threshold
    wrong = probs.argmax(axis=1) != np.asarray(y)
    return {"threshold": float(threshold), "answered_share": float(answered.mean()) if answered.size else 0.0,
            "answered_error_rate": float(wrong[answered].mean()) if answered.any() else None,
            "error_rate_all": float(wrong.mean()) if wrong.size else None}
