"""Training loop and model card: python -m ecg_core train --arch NAME --dataset DIR --split ..."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import threading
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from ecg_core.classes import CLASS_KEYS  # noqa: E402
from ecg_core.data import dataset  # noqa: E402
from ecg_core.model import architectures  # noqa: E402
from ecg_core.model.augment import augment_batch  # noqa: E402
from ecg_core.picture.imaging import to_model_input  # noqa: E402
from ecg_core.settings import PREPROCESSING_VERSION, SPLIT_SEED  # noqa: E402


def class_weights(labels: np.ndarray, power: float = 0.5) -> dict[int, float]:
    """Inverse-frequency weights softened by `power` (0.5 = square root), mean weight per sample 1."""
    counts = np.bincount(labels, minlength=len(CLASS_KEYS)).astype(float)
    w = np.where(counts > 0, (counts.sum() / np.maximum(counts, 1)) ** power, 0.0)
    w = w / (w[labels].mean())
    return {i: float(v) for i, v in enumerate(w)}


class Batches(keras.utils.PyDataset):
    """Shuffled (x, y, w) batches gathered from the uint8 cache and augmented on the fly.

    Batch b of epoch e is a pure function of (seed, e, b): its order and augmentation come from generators
    seeded by them, so threads do not change what a batch holds. A keras PyDataset, so training runs on
    any Keras backend; on TensorFlow, `for_fit` streams the same batches through tf.data, which steps
    about 40 % faster on a CPU than Keras' generator path.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, idx: np.ndarray, batch_size: int, seed: int,
                 augment: bool, representation: str, weights: dict[int, float] | None, workers: int = 1,
                 morph: bool = False, features: np.ndarray | None = None):
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=max(4, 2 * workers))
        self.images, self.labels, self.idx = images, labels, idx
        self.features = features  # beat features: batches become ((image, features), y, w)
        self.batch_size, self.seed, self.augment, self.representation = batch_size, seed, augment, representation
        self.morph = morph
        self.w_table = (np.array([weights[i] for i in range(len(CLASS_KEYS))], np.float32) if weights
                        else np.ones(len(CLASS_KEYS), np.float32))
        self.epoch = 0
        self._orders: dict[int, np.ndarray] = {}
        self._orders_lock = threading.Lock()  # batches are made in several threads

    def order(self, epoch: int) -> np.ndarray:
        """The shuffled TRAIN indices of one epoch (the last few are kept)."""
        with self._orders_lock:
            if epoch not in self._orders:
                if len(self._orders) > 4:
                    self._orders.pop(min(self._orders))
                self._orders[epoch] = np.random.default_rng([self.seed, epoch]).permutation(self.idx)
            return self._orders[epoch]

    def __len__(self) -> int:
        return max(1, len(self.idx) // self.batch_size)

    def at(self, epoch: int, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Batch b of the given epoch."""
        i = np.sort(self.order(epoch)[b * self.batch_size:(b + 1) * self.batch_size])
        x = to_model_input(self.images[i])
        rng = np.random.default_rng([self.seed, epoch, b])
        if self.augment:
            x = augment_batch(x, rng, self.representation, self.morph)
        y = self.labels[i].astype(np.int32)
        if self.features is not None:
            f = self.features[i]
            if self.augment:
                f = drop_features(f, rng)
            return (x, f), y, self.w_table[y]
        return x, y, self.w_table[y]

    def __getitem__(self, b: int):
        return self.at(self.epoch, b)

    def on_epoch_end(self) -> None:
        self.epoch += 1

    def for_fit(self):
        """What model.fit should read: on TensorFlow an endless tf.data stream of the same batches, step k
        being batch k % len of epoch k // len; on other backends this PyDataset."""
        if keras.backend.backend() != "tensorflow":
            return self
        import tensorflow as tf

        n = len(self)

        def flat(k):
            batch = self.at(int(k) // n, int(k) % n)
            return (*batch[0], *batch[1:]) if self.features is not None else batch

        def load(k):
            types = [tf.float32] * (2 if self.features is not None else 1) + [tf.int32, tf.float32]
            *xs, y, w = tf.numpy_function(flat, [k], types)
            xs[0].set_shape([self.batch_size, *architectures.INPUT_SHAPE])
            if len(xs) == 2:
                xs[1].set_shape([self.batch_size, self.features.shape[1]])
            y.set_shape([self.batch_size])
            w.set_shape([self.batch_size])
            return (tuple(xs) if len(xs) == 2 else xs[0]), y, w

        return tf.data.Dataset.range(2**62).map(load, num_parallel_calls=max(1, self.workers)).prefetch(2)


# Share of training batches' windows whose second-lead features (one-lead fallback), V1 part alone (a second
# lead other than V1) or RR features (a lone beat) are removed, so that one model serves recordings with and
# without V1 and single-beat pictures.
DROP_V1, DROP_V1_ONLY, DROP_RR = 0.35, 0.15, 0.1


def drop_features(f: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Beat features with second-lead, V1 and RR parts removed at random (DROP_V1, DROP_V1_ONLY, DROP_RR), as
    the app may lack them."""
    from ecg_core.signal.features import as_other_second_lead, without_rr, without_v1

    f = np.array(f, dtype=np.float32, copy=True)
    draw = rng.random(len(f))
    one_lead, other = draw < DROP_V1, (draw >= DROP_V1) & (draw < DROP_V1 + DROP_V1_ONLY)
    rr = rng.random(len(f)) < DROP_RR
    f[one_lead] = without_v1(f[one_lead])
    f[other] = as_other_second_lead(f[other])
    f[rr] = without_rr(f[rr])
    return f


class MacroF1(keras.callbacks.Callback):
    """Validation macro F1 each epoch (logged as val_macro_f1) for early stopping and the log."""

    def __init__(self, x_val: np.ndarray, y_val: np.ndarray):
        super().__init__()
        self.x_val, self.y_val = x_val, y_val

    def on_epoch_end(self, epoch, logs=None):
        from sklearn.metrics import f1_score

        pred = np.argmax(self.model.predict(self.x_val, batch_size=512, verbose=0), axis=1)
        f1 = f1_score(self.y_val, pred, average="macro", labels=np.unique(self.y_val))
        if logs is not None:
            logs["val_macro_f1"] = float(f1)
        print(f"  epoch {epoch + 1}: val_macro_f1={f1:.4f} lr={float(self.model.optimizer.learning_rate):.2e}",
              flush=True)


class TimeLimit(keras.callbacks.Callback):
    """Stop after the epoch that passes `minutes` of training; early stopping still restores the best."""

    def __init__(self, minutes: float):
        super().__init__()
        self.seconds, self.start = minutes * 60.0, time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if time.perf_counter() - self.start > self.seconds:
            print(f"  time limit: stopping after epoch {epoch + 1}", flush=True)
            self.model.stop_training = True


def confidence_threshold(probs: np.ndarray, y: np.ndarray, target_accuracy: float = 0.8) -> float:
    """Smallest top-probability t such that validation predictions with confidence >= t reach the
    target accuracy in every bin above it; predictions below t are flagged low-confidence in the app."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    edges = np.arange(0.3, 1.0, 0.05)
    threshold = 0.5
    for lo in edges[::-1]:
        m = (conf >= lo) & (conf < lo + 0.05)
        if m.sum() >= 10 and correct[m].mean() < target_accuracy:
            threshold = float(lo + 0.05)
            break
    return round(max(threshold, 0.5), 2)


def context_purpose(meta: dict) -> str | None:
    """What a model trained on windows of another context than a recording's own is for (its card)."""
    if meta.get("context") != "lone":
        return None
    lo, hi = meta.get("stretch", (1.0, 1.0))
    span = "span-augmented +-25 %" if (lo, hi) == (0.75, 1.25) else f"span-augmented {lo:g}x to {hi:g}x"
    return f"single-beat pictures: the beat alone, padded with its baseline, {span}"


def save_without_optimizer(model: keras.Model, arch: str, path: Path) -> None:
    """Save weights in a fresh, uncompiled copy of the architecture: no optimizer state on disk."""
    clean = architectures.build(arch)
    clean.set_weights(model.get_weights())
    clean.save(path)


def train(args: argparse.Namespace) -> Path:
    """Fit one model on a split's TRAIN part (validation carved from it), save .keras + card."""
    keras.utils.set_random_seed(args.seed)
    ds = dataset.load(args.dataset)
    representation = ds.meta["representation"]
    validation = getattr(args, "validation", "windows")
    # the split has its own seed (SPLIT_SEED): the training seed never moves the test split
    fit_idx, val_idx = dataset.fit_validation_indices(ds, args.split, args.seed, validation, args.cap_per_class)
    name = args.name or f"{args.arch}_{representation}_{args.split}"
    print(f"[{name}] fit {len(fit_idx)} val {len(val_idx)} windows; fit per class "
          f"{dict(zip(CLASS_KEYS, np.bincount(ds.labels[fit_idx], minlength=6).tolist()))}", flush=True)

    model = architectures.build(args.arch)
    model.compile(optimizer=keras.optimizers.Adam(args.lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    weights = class_weights(ds.labels[fit_idx])
    steps = args.steps_per_epoch or max(1, len(fit_idx) // args.batch_size)
    x_val, y_val = to_model_input(ds.images[val_idx]), ds.labels[val_idx].astype(np.int32)
    callbacks = [
        MacroF1(x_val, y_val),
        keras.callbacks.EarlyStopping(monitor="val_macro_f1", mode="max", patience=args.patience,
                                      restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.3, patience=2, min_lr=1e-5),
    ]
    if getattr(args, "max_minutes", None):
        callbacks.append(TimeLimit(args.max_minutes))
    t0 = time.perf_counter()
    history = model.fit(
        Batches(ds.images, ds.labels, fit_idx, args.batch_size, args.seed, not args.no_augment,
                representation, weights, workers=getattr(args, "workers", 1),
                morph=getattr(args, "morph_augment", False)).for_fit(),
        steps_per_epoch=steps, epochs=args.epochs, validation_data=(x_val, y_val),
        callbacks=callbacks, verbose=2)
    seconds = time.perf_counter() - t0

    val_probs = model.predict(x_val, batch_size=512, verbose=0)
    check_idx = fit_idx[np.random.default_rng(args.seed).choice(len(fit_idx), min(2000, len(fit_idx)), replace=False)]
    x_chk, y_chk = to_model_input(ds.images[check_idx]), ds.labels[check_idx]
    acc_train_mode = float(np.mean(np.argmax(model(x_chk, training=True), axis=1) == y_chk))
    acc_infer_mode = float(np.mean(np.argmax(model.predict(x_chk, verbose=0), axis=1) == y_chk))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / f"{name}.keras"
    save_without_optimizer(model, args.arch, model_path)
    hist = {k: [round(float(v), 5) for v in vals] for k, vals in history.history.items()}
    card = {
        "name": name,
        "architecture": args.arch,
        "classes": list(CLASS_KEYS),
        "input_shape": list(architectures.INPUT_SHAPE),
        "representation": representation,
        "preprocessing_version": PREPROCESSING_VERSION,
        "split": args.split,
        "split_seed": SPLIT_SEED,
        "last_conv_layer": architectures.last_conv_layer(model),
        "low_confidence_threshold": confidence_threshold(val_probs, y_val),
        "params": int(model.count_params()),
        "training": {
            "command": "python -m ecg_core " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
            "fit_windows": int(len(fit_idx)),
            "validation_windows": int(len(val_idx)),
            "validation": ("TRAIN records " + " ".join(sorted(set(ds.groups[val_idx].tolist())))
                           if validation == "records" else "stratified 15 % of TRAIN windows")
                          + " (test split never used)",
            "epochs_run": len(hist.get("loss", [])),
            "best_val_macro_f1": max(hist.get("val_macro_f1", [0.0])),
            "seconds": round(seconds, 1),
            "keras_backend": keras.backend.backend(),
            "max_minutes": getattr(args, "max_minutes", None),
            "augment": not args.no_augment,
            "morph_augment": bool(getattr(args, "morph_augment", False)) and not args.no_augment,
            "class_weights": {CLASS_KEYS[k]: round(v, 3) for k, v in weights.items()},
            "cap_per_class": args.cap_per_class,
            "seed": args.seed,
            "train_mode_accuracy": round(acc_train_mode, 4),
            "inference_mode_accuracy": round(acc_infer_mode, 4),
            "history": hist,
        },
        "dataset": ds.meta,
        "context": ds.meta.get("context", "full"),
        **({"purpose": context_purpose(ds.meta)} if context_purpose(ds.meta) else {}),
        "default": False,
    }
    (out / f"{name}.json").write_text(json.dumps(card, indent=2))
    print(f"[{name}] saved {model_path} ({model_path.stat().st_size / 1e3:.0f} kB) in {seconds:.0f} s; "
          f"train-mode acc {acc_train_mode:.3f} vs inference-mode {acc_infer_mode:.3f}", flush=True)
    return model_path


def main(args: argparse.Namespace) -> None:
    train(args)
