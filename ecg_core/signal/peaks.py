"""R-peak detection on prepared (360 Hz, band-passed) signals: used by signal mode and by the
overlay representation's beat templates, so that training and the app find the same peaks."""

from __future__ import annotations

import numpy as np

from ecg_core.settings import WORKING_FS
from ecg_core.signal import signals

RELEARN_BLOCKS = 8  # seconds read when the thresholds are learnt again after a stretch without beats
DEAD_SHARE = 1e-3  # seconds whose energy is under this share of the recording's median: a dead lead


def pan_tompkins(x: np.ndarray, fs: int = WORKING_FS, band: tuple[float, float] = (5.0, 15.0),
                 integration_s: float = 0.15, refractory_s: float = 0.2, t_wave_s: float = 0.36,
                 snap_s: float = 0.05, relearn_s: float = 3.0) -> np.ndarray:
    """R peaks of a prepared signal with the Pan-Tompkins decision rules (Pan & Tompkins 1985, IEEE TBME 32:230).

    QRS enhancement is vectorised (zero-phase 5-15 Hz band-pass, derivative, squaring, 150 ms moving
    integration, scipy.signal.find_peaks with a 200 ms refractory period); the adaptive signal/noise
    thresholds, search-back after 1.66 mean RR and T-wave rejection (< 360 ms after a beat with less than
    half its slope) run over the candidate peaks only. Peaks are then snapped to the largest deflection
    within 50 ms, as ecg_core.signal.signals.detect_r_peaks does.

    After relearn_s without a beat (search-back included) the thresholds are learnt again, as at the start,
    from the next RELEARN_BLOCKS seconds: an artefact's step (a lead coming back after a dead stretch) counts
    as one huge beat and would otherwise hold the signal level above every QRS for tens of seconds. The
    signal level is the third largest of those seconds' maxima, so that two seconds of artefact do not set it.
    """
    from scipy import signal as sps
    from scipy.ndimage import uniform_filter1d

    x = np.asarray(x, dtype=np.float64)
    if x.size < 2 * fs:
        return np.zeros(0, dtype=np.int64)
    # temporaries are freed as soon as they are used: a 24-hour recording's are 250 MB each
    f = signals.zero_phase(signals.butter_sos(2, tuple(band), "bandpass", fs), x)
    d = np.empty_like(f)  # np.gradient(f), written in place (its arithmetic, no temporaries)
    np.subtract(f[2:], f[:-2], out=d[1:-1])
    np.divide(d[1:-1], 2.0, out=d[1:-1])
    d[0], d[-1] = f[1] - f[0], f[-1] - f[-2]
    del f
    energy = np.square(d)
    mwi = uniform_filter1d(energy, max(1, int(round(integration_s * fs))))
    del energy
    refractory, t_wave = int(round(refractory_s * fs)), int(round(t_wave_s * fs))
    cand, _ = sps.find_peaks(mwi, distance=max(1, refractory))
    if cand.size == 0:
        return np.zeros(0, dtype=np.int64)
    amp = mwi[cand]
    nb = mwi.size // fs
    block_max = mwi[: nb * fs].reshape(nb, fs).max(axis=1) if nb else np.zeros(1)
    block_mean = mwi[: nb * fs].reshape(nb, fs).mean(axis=1) if nb else np.zeros(1)
    typical = float(np.median(block_max))
    # the learning phase reads the first 2 s of signal: a leading flat stretch (a picture's baseline padding,
    # a lead not yet connected) would teach it thresholds below the T waves
    live = int(np.argmax(mwi > DEAD_SHARE * typical)) if (mwi > DEAD_SHARE * typical).any() else 0
    first = mwi[live: live + 2 * fs].copy()
    del mwi
    # the largest |slope| within 75 ms of each candidate (maximum_filter1d's at the candidates; its
    # reflected edges repeat samples inside the window)
    r = int(round(0.075 * fs))
    slope = np.abs(d[np.clip(cand[:, None] + np.arange(-r, r + 1)[None, :], 0, d.size - 1)]).max(axis=1)
    del d
    spk, npk = 0.25 * float(first.max()), 0.5 * float(first.mean())
    rr_avg = 0.8 * fs
    beats: list[int] = []
    last, last_slope = -(10**9), 0.0
    relearnt = -(10**9)  # the sample where the thresholds were last learnt again
    relearn = int(round(relearn_s * fs))
    i = 0
    while i < cand.size:
        t = int(cand[i])
        if beats and t - max(last, relearnt) > relearn:
            b0 = min(t // fs, nb - 1) if nb else 0
            top = np.sort(block_max[b0: b0 + RELEARN_BLOCKS])[::-1]
            level = float(top[min(2, top.size - 1)])
            if level > DEAD_SHARE * typical:  # not while the lead is dead
                spk = 0.25 * level
                npk = 0.5 * float(np.median(block_mean[b0: b0 + RELEARN_BLOCKS]))
            relearnt = t
        thr1 = npk + 0.25 * (spk - npk)
        if beats and t - last > 1.66 * rr_avg:  # search back for a beat missed since the last one
            lo = int(np.searchsorted(cand, last + refractory))
            if i > lo:
                j = lo + int(np.argmax(amp[lo:i]))
                if amp[j] > 0.5 * thr1 and not (cand[j] - last < t_wave and slope[j] < 0.5 * last_slope):
                    beats.append(j)
                    spk = 0.25 * amp[j] + 0.75 * spk
                    rr_avg = 0.875 * rr_avg + 0.125 * (cand[j] - last)
                    last, last_slope = int(cand[j]), float(slope[j])
                    continue  # judge candidate i again, against the beat just found
        if amp[i] > thr1 and t - last >= refractory and not (t - last < t_wave and slope[i] < 0.5 * last_slope):
            if beats:
                rr_avg = 0.875 * rr_avg + 0.125 * (t - last)
            beats.append(i)
            spk = 0.125 * amp[i] + 0.875 * spk
            last, last_slope = t, float(slope[i])
        else:
            npk = 0.125 * amp[i] + 0.875 * npk
        i += 1
    peaks = cand[np.array(beats, dtype=np.int64)]
    return signals.snap_to_extremum(x, peaks, int(round(snap_s * fs))) if peaks.size else peaks.astype(np.int64)


def detect_beats(x: np.ndarray, fs: int = WORKING_FS, method: str = "pan-tompkins") -> np.ndarray:
    """R peaks of a prepared signal: 'pan-tompkins' (default, fast) or 'xqrs' (ecg_core.signal.signals.detect_r_peaks).

    On all 48 MIT-BIH records (the app's lead, 150 ms; scripts/evaluate_beat_detection.py): Pan-Tompkins
    Se 0.9960 / +P 0.9960 in ~0.13 s per 30 min (0.9952 / 0.9961 before its thresholds were learnt again after
    3 s without a beat: 207's flutter); wfdb's XQRS Se 0.9913 / +P 0.9966 in ~6 s per 30 min (its local-peak
    search is a per-sample Python loop).
    """
    if method == "pan-tompkins":
        return pan_tompkins(x, fs)
    if method == "xqrs":
        return signals.detect_r_peaks(x, fs)
    raise ValueError(f"unknown beat detector {method!r}; use 'pan-tompkins' or 'xqrs'")
