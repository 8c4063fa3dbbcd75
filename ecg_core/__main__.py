"""Command line: python -m ecg_core <command> ... (see --help of each command)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ecg_core.settings import REPRESENTATIONS


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cmd_build_dataset(a: argparse.Namespace) -> int:
    from ecg_core.data import dataset

    records = dataset.recordwise_test_records(a.mitdb, a.vfdb) if a.records == "recordwise-test" else None
    ds = dataset.build(a.mitdb, a.vfdb, a.representation, records=records, cap_per_class=a.cap_per_class,
                       seed=a.seed, progress=_err if a.verbose else None, workers=a.workers, context=a.context,
                       stretch=tuple(a.stretch))
    out = Path(a.out)
    path = dataset.save(ds, out / "dataset.npz" if out.suffix != ".npz" else out)
    print(f"wrote {path} ({len(ds)} images, {ds.meta['representation']}, built in {ds.meta['build_seconds']} s)")
    print(dataset.count_table(ds).to_string())
    return 0


def cmd_export_samples(a: argparse.Namespace) -> int:
    from ecg_core.data import dataset

    ds = dataset.load(a.dataset)
    out = a.out or f"sample_images/{ds.meta['representation']}"
    manifest = dataset.export_samples(ds, out, per_class=a.per_class, seed=a.seed)
    print(f"wrote {len(manifest)} images and manifest.csv to {out}")
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from ecg_core.model import train

    train.main(a)
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    from ecg_core.model import evaluate

    evaluate.main(a)
    return 0


def cmd_crossval(a: argparse.Namespace) -> int:
    from ecg_core.model import crossval

    crossval.main(a)
    return 0


def cmd_train_final(a: argparse.Namespace) -> int:
    from ecg_core.model import crossval

    return _refusing("train-final", crossval.main_final, a)


def _refusing(command: str, run, a: argparse.Namespace) -> int:
    """Run a model-writing command; a refusal (bad input) is one line on stderr and exit code 2."""
    from ecg_core.model.predict import ModelError

    try:
        run(a)
    except (ValueError, ModelError, OSError) as exc:
        _err(f"{command}: {exc}")
        return 2
    return 0


def cmd_ensemble(a: argparse.Namespace) -> int:
    from ecg_core.model import ensemble

    return _refusing("ensemble", ensemble.main, a)


def cmd_offsets(a: argparse.Namespace) -> int:
    from ecg_core.model import offsets

    return _refusing("offsets", offsets.main, a)


def cmd_predict(a: argparse.Namespace) -> int:
    from ecg_core.pipeline import picture

    return picture.cli(a)


def cmd_bench(a: argparse.Namespace) -> int:
    from ecg_core import bench

    return bench.main(a)


def cmd_bench_pictures(a: argparse.Namespace) -> int:
    from ecg_core import bench_pictures

    return bench_pictures.main(a)


def cmd_train_span(a: argparse.Namespace) -> int:
    from ecg_core.model import span_train

    return span_train.cli(a)


def cmd_classify_record(a: argparse.Namespace) -> int:
    from ecg_core.pipeline import record_mode

    return record_mode.cli(a)


def cmd_rhythm_crossval(a: argparse.Namespace) -> int:
    from ecg_core.model import rhythm_train

    return rhythm_train.main_crossval(a)


def cmd_train_rhythm(a: argparse.Namespace) -> int:
    from ecg_core.model import rhythm_train

    return rhythm_train.main_train(a)


def cmd_classify_archive(a: argparse.Namespace) -> int:
    from ecg_core.pipeline import archive_run

    return archive_run.cli(a)


def cmd_bench_archive(a: argparse.Namespace) -> int:
    from ecg_core import bench_archive

    return bench_archive.main(a)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ecg_core", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build-dataset", help="MIT-BIH (+ vfdb) records -> image dataset cache")
    b.add_argument("--mitdb", default="../shared/data/mitdb")
    b.add_argument("--vfdb", default="../shared/data/vfdb")
    b.add_argument("--out", required=True, help="output directory (dataset.npz) or .npz path")
    b.add_argument("--representation", choices=REPRESENTATIONS, default="waveform")
    b.add_argument("--cap-per-class", type=int, default=None)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--verbose", action="store_true")
    b.add_argument("--workers", type=int, default=1, help="records read and rendered in parallel processes")
    b.add_argument("--context", choices=("full", "lone"), default="full",
                   help="lone: each beat alone as in a single-beat picture (seeded crop, padded with its baseline, "
                   "its own template, stretched by --stretch)")
    b.add_argument("--stretch", type=float, nargs=2, default=(0.75, 1.25), metavar=("LO", "HI"),
                   help="lone context: time-stretch factor range of each crop (LO = HI: one fixed factor)")
    b.add_argument("--records", choices=("all", "recordwise-test"), default="all",
                   help="recordwise-test: only DS2 and the vfdb test records (an evaluation dataset)")
    b.set_defaults(func=cmd_build_dataset)

    e = sub.add_parser("export-samples", help="write real test-split images per class with a manifest")
    e.add_argument("--dataset", required=True)
    e.add_argument("--out", default=None, help="default: sample_images/<the dataset's representation>")
    e.add_argument("--per-class", type=int, default=6)
    e.add_argument("--seed", type=int, default=0)
    e.set_defaults(func=cmd_export_samples)

    t = sub.add_parser("train", help="train one architecture on a dataset split")
    t.add_argument("--arch", required=True)
    t.add_argument("--dataset", required=True)
    t.add_argument("--split", choices=("beatwise", "recordwise"), required=True)
    t.add_argument("--out", default="models", help="directory for <name>.keras + <name>.json")
    t.add_argument("--name", default=None)
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--cap-per-class", type=int, default=None, help="cap TRAIN windows per class")
    t.add_argument("--patience", type=int, default=5)
    t.add_argument("--validation", choices=("windows", "records"), default="windows",
                   help="early-stopping validation: 15 %% of TRAIN windows, or whole TRAIN records (new patients)")
    t.add_argument("--no-augment", action="store_true")
    t.add_argument("--morph-augment", action="store_true",
                   help="also warp wave heights column by column (widths and intervals kept), for new patients")
    t.add_argument("--steps-per-epoch", type=int, default=None)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--workers", type=int, default=1, help="threads preparing and augmenting batches")
    t.add_argument("--max-minutes", type=float, default=None,
                   help="stop after the epoch that passes this much training time (best epoch kept)")
    t.set_defaults(func=cmd_train)

    v = sub.add_parser("evaluate", help="evaluate a model on a split's test part -> JSON")
    v.add_argument("--model", required=True)
    v.add_argument("--dataset", required=True)
    v.add_argument("--split", choices=("beatwise", "recordwise"), required=True)
    v.add_argument("--out", required=True)
    v.add_argument("--seed", type=int, default=0, help="seed of the --max-per-class subsample (the beat-wise "
                   "split is the model's own, from its card)")
    v.add_argument("--max-per-class", type=int, default=None,
                   help="evaluate on a seeded per-class subsample of the test part (slow models)")
    v.add_argument("--span-datasets", nargs="+", default=None, metavar="DIR",
                   help="lone-beat datasets of the same beats at other fixed stretch factors (build-dataset "
                   "--context lone --stretch F F): also report the share of beats whose class changes")
    v.set_defaults(func=cmd_evaluate)

    cv = sub.add_parser("crossval", help="patient-wise cross-validation of a training recipe -> stored result")
    cv.add_argument("--recipe", choices=("features", "image", "features_only", "blend"), required=True)
    cv.add_argument("--dataset", required=True, help="a dataset built with beat features (build-dataset)")
    cv.add_argument("--protocol", choices=("kfold", "ds1-ds2"), default="kfold")
    cv.add_argument("--seed", type=int, default=0)
    cv.add_argument("--work", default="data/crossval", help="per-fold predictions (an interrupted run resumes)")
    cv.add_argument("--results-dir", default=None, help="default: models/results/crossval")
    cv.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    cv.add_argument("--cap-per-class", type=int, default=None, help="override the recipe's cap")
    cv.set_defaults(func=cmd_crossval)

    tf_ = sub.add_parser("train-final", help="the shipped model of a cross-validated recipe (every patient, or DS1)")
    tf_.add_argument("--recipe", choices=("features", "blend"), default="features")
    tf_.add_argument("--dataset", required=True)
    tf_.add_argument("--which", choices=("all", "ds1"), default="all")
    tf_.add_argument("--out", default="models")
    tf_.add_argument("--seed", type=int, default=0)
    tf_.add_argument("--work", default="data/crossval")
    tf_.add_argument("--epochs", type=int, default=None, help=argparse.SUPPRESS)
    tf_.add_argument("--cap-per-class", type=int, default=None, help=argparse.SUPPRESS)
    tf_.set_defaults(func=cmd_train_final)

    from ecg_core.model.rhythm_train import add_arguments as rhythm_arguments

    rc = sub.add_parser("rhythm-crossval", help="VF / noise rhythm detector and baselines, grouped by record -> JSON")
    rhythm_arguments(rc, train=False)
    rc.set_defaults(func=cmd_rhythm_crossval)
    tr = sub.add_parser("train-rhythm", help="the shipped rhythm detector (models/rhythm/), trained on every record")
    rhythm_arguments(tr, train=True)
    tr.set_defaults(func=cmd_train_rhythm)
    ts = sub.add_parser("train-span", help="the lone-beat span estimator (models/lone_beat_span.npz), trained on DS1")
    ts.add_argument("--mitdb", default="../shared/data/mitdb")
    ts.add_argument("--out", default="models/lone_beat_span.npz")
    ts.add_argument("--seed", type=int, default=0)
    ts.set_defaults(func=cmd_train_span)

    en = sub.add_parser("ensemble", help="average trained models of one representation into one model")
    en.add_argument("models", nargs="+", help="member .keras files (each with its card beside it)")
    en.add_argument("--name", required=True)
    en.add_argument("--out", default="data/models", help="directory for <name>.keras + <name>.json")
    en.set_defaults(func=cmd_ensemble)

    of = sub.add_parser("offsets", help="per-class logit offsets chosen on a model's own validation windows")
    of.add_argument("--model", required=True)
    of.add_argument("--dataset", required=True, help="the dataset the model was trained on")
    of.add_argument("--name", default=None, help="default: <model>_offsets")
    of.add_argument("--out", default="data/models", help="directory for <name>.keras + <name>.json")
    of.set_defaults(func=cmd_offsets)

    pr = sub.add_parser("predict", help="digitize ECG pictures (files/folders) and classify every beat, CSV to stdout")
    pr.add_argument("paths", nargs="+")
    pr.add_argument("--model", default=None)
    pr.add_argument("--span", type=float, default=None,
                    help="seconds across the trace, for pictures without an ECG grid (e.g. 0.8, 1.6, 10)")
    pr.add_argument("--layout", choices=("auto", "beat", "strip"), default="auto",
                    help="what a picture holds; auto: a trace under 2.5 s is one beat")
    pr.set_defaults(func=cmd_predict)

    bn = sub.add_parser("bench", help="speed / memory benchmark table")
    bn.add_argument("--model", default=None)
    bn.add_argument("--quick", action="store_true")
    bn.add_argument("--mitdb", default="../shared/data/mitdb")
    bn.set_defaults(func=cmd_bench)

    bp = sub.add_parser("bench-pictures", help="picture path vs truth: digitization SNR, beat detection, F1, time")
    bp.add_argument("--mitdb", default="../shared/data/mitdb")
    bp.add_argument("--per-record", type=int, default=None, help="10 s strips per DS2 record (default 3; quick 1)")
    bp.add_argument("--styles", nargs="+", default=None, help="picture styles (default: all)")
    bp.add_argument("--records", nargs="+", default=None, help="DS2 records (default: all 22)")
    bp.add_argument("--seed", type=int, default=0)
    bp.add_argument("--model", default=None)
    bp.add_argument("--quick", action="store_true", help="3 records, 2 styles, 1 strip each")
    bp.add_argument("--out", default=None, help="also write the numbers and the command as JSON "
                    "(e.g. docs/bench_pictures.json)")
    bp.set_defaults(func=cmd_bench_pictures)

    cr = sub.add_parser("classify-record", help="classify every beat of a WFDB record or CSV signal")
    cr.add_argument("path")
    cr.add_argument("--model", default=None)
    cr.add_argument("--out", required=True)
    cr.add_argument("--episodes", default=None, help="VF episodes CSV (start_s, end_s, kind)")
    cr.add_argument("--noise", default=None, help="noise / unreadable segments CSV (start_s, end_s, reason, ...)")
    cr.add_argument("--fs", type=float, default=None, help="sampling rate of a CSV without time column")
    cr.add_argument("--units", choices=("mV", "adc"), default="mV")
    cr.add_argument("--adc-gain", type=float, default=200.0, help="ADC units per mV (with --units adc)")
    cr.add_argument("--adc-baseline", type=float, default=0.0, help="ADC value of 0 mV (with --units adc)")
    cr.set_defaults(func=cmd_classify_record)

    from ecg_core.pipeline.archive_run import add_parser as add_archive_parser  # no Dask import until it runs

    add_archive_parser(sub).set_defaults(func=cmd_classify_archive)
    ba = sub.add_parser("bench-archive", help="classify-archive on mitdb: LocalCluster vs one process, a 24-hour "
                        "recording, memory per worker")
    ba.add_argument("--mitdb", default="../shared/data/mitdb")
    ba.add_argument("--records", default="all", help="all (48), non-paced (44) or a comma-separated list")
    ba.add_argument("--workers", type=int, default=2)
    ba.add_argument("--hours", type=float, default=24.0, help="length of the long recording (0: skip it)")
    ba.add_argument("--skip-sequential", action="store_true", help="only the LocalCluster run")
    ba.add_argument("--check-long", action="store_true", help="also score the long recording in one piece and "
                    "compare beat for beat")
    ba.add_argument("--work", default=None, help="folder for outputs (default: a temporary folder)")
    ba.add_argument("--out", default=None, help="also write the numbers and the command as JSON")
    ba.set_defaults(func=cmd_bench_archive)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
