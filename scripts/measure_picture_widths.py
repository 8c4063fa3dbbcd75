"""What digitizing a strip costs, beat by beat: relative amplitude against the drawn line's QRS widening.

The benchmark's strips (`bench-pictures`, the same DS2 records, drawing seeds and choice of strips) are read
three ways by the default model: the picture path; the picture path's own beat pipeline on the true signal
(the benchmark's `sig`); and the same on the true signal scaled as an uncalibrated trace is (its 1-99 % range
to UNRELATIVE_RANGE_MV), which isolates what an unknown amplitude scale costs. For every beat found in both,
the beat features of the picture are compared with those of the true signal, and the picture is classified
once more with its QRS widths narrowed by the widening its line predicts (--narrow A B: A * line width in ms
+ B, line width from the followed path's ink where it runs level), to see what correcting that bias gives.

    PYTHONPATH=. python scripts/measure_picture_widths.py --styles monitor plot_axes no_grid paper_red
    PYTHONPATH=. python scripts/measure_picture_widths.py --styles monitor --line-px 1 2 3 --px-per-mm 4 7 \
        --records 101 106 112 115 116 119 122 201 205 209 215 220 223 230 --training-records

--line-px and --px-per-mm fix the generator's trace width and resolution, --glow the monitor's halo (drawing
experiments); --weak sets the trace mask's weak hysteresis threshold (a digitizer experiment); with
--training-records the records may be DS1 ones. --by-record adds each record's agreement with the true signal
(calibrated / relative). --line-model S also reads the true signal as the drawn line would give it (`drawn_line`:
the generator's line, S times its width, swept along the curve and read at each column's ink centre), to see how
much of the picture's change that geometry explains.
"""

from __future__ import annotations

import argparse
import itertools
from collections import Counter

import numpy as np
from scipy import ndimage

from ecg_core import bench_pictures as bp
from ecg_core.classes import CLASS_KEYS
from ecg_core.data.dataset import DS2
from ecg_core.data.drawn import read_record
from ecg_core.model import predict
from ecg_core.picture import synth
from ecg_core.picture import trace as tracelib
from ecg_core.picture.digitize import UNRELATIVE_RANGE_MV, DigitizeError
from ecg_core.pipeline.picture import _classify_once, classify_picture
from ecg_core.settings import WORKING_FS
from ecg_core.signal.features import FEATURE_NAMES, beat_features
from ecg_core.signal.signals import resample

WIDTHS = [FEATURE_NAMES.index(n) for n in ("qrs_ms", "qrs_template_ms")]


def true_reading(signal: np.ndarray, fs: float, lead: str, clf) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(R peak times s, beat features, labels) of the picture path's beat pipeline on a true signal."""
    x = resample(np.asarray(signal, dtype=np.float64), fs, WORKING_FS).astype(np.float64)
    xx, pad, centres, peaks, probs, *_ = _classify_once(x, clf, "strip", "truth", lead)
    return (centres - pad) / WORKING_FS, beat_features(xx, centres, peaks), [CLASS_KEYS[int(k)] for k in
                                                                            probs.argmax(axis=1)]


def drawn_line(x: np.ndarray, fs: float, px_per_s: float, px_per_mv: float, width_px: float,
               sub: int = 8) -> np.ndarray:
    """x as a column-wise ink-centre reading gives it back when drawn as a line width_px wide: a disc swept along
    the curve (grey dilation and erosion by the disc's half-heights), each column read at its ink's middle."""
    t = np.arange(x.size) / fs
    cols = np.arange(0.0, t[-1] * px_per_s, 1.0 / sub)
    y = np.interp(cols / px_per_s, t, x) * px_per_mv
    r = width_px / 2.0
    dx = np.arange(-int(np.ceil(r * sub)), int(np.ceil(r * sub)) + 1) / sub
    half = np.sqrt(np.clip(r * r - dx * dx, 0.0, None))
    footprint = np.ones(dx.size, dtype=bool)
    top = ndimage.grey_dilation(y, footprint=footprint, structure=half, mode="nearest")
    bottom = ndimage.grey_erosion(y, footprint=footprint, structure=half, mode="nearest")
    return np.interp(t, cols / px_per_s, (top + bottom) / (2.0 * px_per_mv))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mitdb", default="../shared/data/mitdb")
    ap.add_argument("--styles", nargs="+", default=["monitor", "plot_axes", "no_grid", "paper_red"])
    ap.add_argument("--records", nargs="+", default=list(DS2))
    ap.add_argument("--training-records", action="store_true", help="allow DS1 records (drawing experiments)")
    ap.add_argument("--per-record", type=int, default=3)
    ap.add_argument("--narrow", nargs=2, type=float, default=(0.29, -2.87), metavar=("A", "B"))
    ap.add_argument("--line-px", nargs="+", type=float, default=[None])
    ap.add_argument("--px-per-mm", nargs="+", type=float, default=[None])
    ap.add_argument("--glow", type=float, default=None, help="the monitor's phosphor halo for every strip (0: none; "
                    "the generator draws 0.35 on half of them)")
    ap.add_argument("--weak", type=float, default=None, help=f"trace mask's weak threshold (default {tracelib.WEAK})")
    ap.add_argument("--by-record", action="store_true", help="each record's agreement with the true signal")
    ap.add_argument("--line-model", type=float, default=None, metavar="S",
                    help="also read the true signal through the drawn-line model at S x the drawn width")
    a = ap.parse_args()
    if a.weak is not None:
        tracelib.WEAK = a.weak
    if not a.training_records and set(a.records) - set(DS2):
        raise SystemExit("the benchmark's pictures come from DS2 records; add --training-records for others")
    clf = predict.load(None)
    draw_ink = synth._ink
    line_px: list[float | None] = [None]
    drawn_px: list[float] = [0.0]  # the width the generator drew the last picture's trace with

    def ink(img, lines, width, colour, glow=0.0):
        drawn_px[0] = line_px[0] or width
        return draw_ink(img, lines, drawn_px[0], colour, glow if a.glow is None or style != "monitor" else a.glow)

    synth._ink = ink
    for style, lp, ppm in itertools.product(a.styles, a.line_px, a.px_per_mm):
        line_px[0] = lp
        rows = []
        for name in a.records:
            rec = read_record(a.mitdb, name)
            rng = np.random.default_rng([0, int(name)])
            length = int(round(bp.STRIP_S * rec.fs))
            starts = bp.choose_strips(rec, a.per_record, rng, bp.STRIP_S)
            for si, start in enumerate(starts):
                bp.choose_beats(rec, start, length, bp.BEAT_PICTURES_PER_STRIP, rng)  # the benchmark's draws
                inside = (rec.beats >= start) & (rec.beats < start + length)
                d = synth.draw(rec.signal[start: start + length], rec.fs, style, r_peaks=rec.beats[inside] - start,
                               symbols=rec.symbols[inside], seed=int(name) * 101 + si, layout="strip",
                               px_per_mm=ppm)
                try:
                    res = classify_picture(d.data, clf, "picture")
                except DigitizeError:
                    continue
                tr = res.digitized.traces[res.digitized.primary]
                width_ms = tr.ink_width * 1e3 / res.digitized.calibration.px_per_s
                cols = bp.truth_columns(d, bp.frame_scale(d, res.digitized))
                on_picture = bp.match_times(bp.picture_times(res.trace, cols[d.r_peaks]),
                                            res.beats["time_s"].to_numpy(float)).ref_to_det
                idx = np.arange(len(res.beats))
                f_pic = res.features(idx)
                narrowed = f_pic.copy()
                narrowed[:, WIDTHS] -= max(0.0, a.narrow[0] * width_ms + a.narrow[1])
                images = np.stack([res.image(i) for i in idx]) if idx.size else None
                p_narrow = clf.predict_proba(images, narrowed).argmax(axis=1) if idx.size else []
                t_true, f_true, l_true = true_reading(d.signal, d.fs, d.lead, clf)
                lo, hi = np.percentile(d.signal, [1, 99])
                t_rel, _, l_rel = true_reading(d.signal * UNRELATIVE_RANGE_MV / max(hi - lo, 1e-6), d.fs, d.lead,
                                               clf)
                on_true = bp.match_times(d.r_peaks / d.fs, t_true).ref_to_det
                on_rel = bp.match_times(d.r_peaks / d.fs, t_rel).ref_to_det
                l_line: list[str] = []
                on_line: dict[int, int] = {}
                if a.line_model is not None:
                    line = drawn_line(d.signal, d.fs, d.px_per_s, d.px_per_mv, a.line_model * drawn_px[0])
                    if res.digitized.calibration.px_per_mv is None:  # read at the relative scale as the picture is
                        lo_l, hi_l = np.percentile(line, [1, 99])
                        line = line * UNRELATIVE_RANGE_MV / max(hi_l - lo_l, 1e-6)
                    t_line, _, l_line = true_reading(line, d.fs, d.lead, clf)
                    on_line = bp.match_times(d.r_peaks / d.fs, t_line).ref_to_det
                ends = bp.picture_times(res.trace, cols[[0, -1]])
                ref_pic = bp.picture_times(res.trace, cols[d.r_peaks])
                for k in range(d.r_peaks.size):
                    key = bp._key(d.symbols[k])
                    if (key not in bp.F1_CLASSES or k not in on_picture or k not in on_true or k not in on_rel
                            or (a.line_model is not None and k not in on_line)
                            or not ends[0] + bp.EXCLUDE_EDGE_S <= ref_pic[k] <= ends[1] - bp.EXCLUDE_EDGE_S):
                        continue
                    j = on_picture[k]
                    rows.append((name, key, str(res.beats["predicted"].iloc[j]), CLASS_KEYS[int(p_narrow[j])],
                                 l_true[on_true[k]], l_rel[on_rel[k]], width_ms,
                                 f_pic[j] - f_true[on_true[k]],
                                 l_line[on_line[k]] if a.line_model is not None else None))
        report(style, lp, ppm, rows, a.by_record)


def report(style: str, lp: float | None, ppm: float | None, rows: list, by_record: bool = False) -> None:
    if not rows:
        print(f"{style}: no beat read")
        return
    truth, pic, narrow, true, rel = ([r[i] for r in rows] for i in range(1, 6))
    dq = np.array([r[7][FEATURE_NAMES.index("qrs_ms")] for r in rows])
    flips = Counter((t, s, p) for t, s, p in zip(truth, rel, pic) if s != p)
    drawn = "" if lp is None and ppm is None else f" (line {lp} px, {ppm} px/mm)"
    print(f"{style}{drawn}: {len(rows)} beats; macro F1 picture {bp.macro_f1(truth, pic):.3f}, "
          f"narrowed {bp.macro_f1(truth, narrow):.3f}, true signal {bp.macro_f1(truth, true):.3f}, "
          f"true signal relative {bp.macro_f1(truth, rel):.3f}; agreement with the relative true signal "
          f"{np.mean([p == s for p, s in zip(pic, rel)]):.3f} (narrowed "
          f"{np.mean([p == s for p, s in zip(narrow, rel)]):.3f}); line {np.median([r[6] for r in rows]):.1f} ms; "
          f"QRS width picture - true: median {np.median(dq):+.1f} ms, mean {np.mean(np.clip(dq, -30, 30)):+.1f}, "
          f"90th percentile of |d| {np.percentile(np.abs(dq), 90):.1f}; commonest changes (true, relative true, "
          f"picture): {flips.most_common(4)}", flush=True)
    if rows[0][8] is not None:
        line = [r[8] for r in rows]
        agree = {name: np.mean([p == s for p, s in zip(line, other)])
                 for name, other in (("true", true), ("relative", rel), ("picture", pic))}
        print(f"  drawn-line model: macro F1 {bp.macro_f1(truth, line):.3f}; agreement with the true signal "
              f"{agree['true']:.3f} (relative {agree['relative']:.3f}), with the picture {agree['picture']:.3f}",
              flush=True)
    if by_record:
        names = sorted({r[0] for r in rows})
        cells = [f"{n} {np.mean([r[2] == r[4] for r in rows if r[0] == n]):.2f}/"
                 f"{np.mean([r[2] == r[5] for r in rows if r[0] == n]):.2f}" for n in names]
        print("  agreement by record (true / relative true):", ", ".join(cells), flush=True)


if __name__ == "__main__":
    main()
