"""Grad-CAM / Grad-CAM++ on the last convolutional feature map, and heatmap overlays."""

from __future__ import annotations

import cv2
import numpy as np

from ecg_core.model.architectures import last_conv_layer

COLORMAP = cv2.COLORMAP_JET
METHODS = ("gradcam", "gradcam++")


class GradCam:
    """Grad-CAM for any class of one loaded model; the gradient model is built once, compiled.

    The class score is the logit (before the softmax): through a saturated softmax the gradients
    vanish and every map looks alike.
    """

    def __init__(self, model, layer_name: str | None = None):
        import keras
        import tensorflow as tf

        self.layer_name = layer_name or last_conv_layer(model)
        try:
            score_tensor = model.get_layer("logits").output
            self._from_probs = False
        except ValueError:  # a foreign model without our naming: use log-probabilities instead
            score_tensor = model.output
            self._from_probs = True
        self._grad_model = keras.Model(model.inputs, [model.get_layer(self.layer_name).output, score_tensor])
        self.reads_features = len(model.inputs) == 2  # picture + beat features (architectures.ecgnet_lite_features)
        image_spec = tf.TensorSpec([None, *model.inputs[0].shape[1:]], tf.float32)
        self._spec = [image_spec, tf.TensorSpec([None], tf.int32)]
        if self.reads_features:
            self._spec.insert(1, tf.TensorSpec([None, *model.inputs[1].shape[1:]], tf.float32))
        self._maps: dict[str, object] = {}  # method -> its traced graph, made at its first use

    def _graph(self, method: str):
        """The traced graph of one method (only its own operations), called directly: no tf.function
        argument binding per call (see predict.Classifier)."""
        if method not in self._maps:
            import tensorflow as tf

            if self.reads_features:
                fn = tf.function(lambda x, f, c: self._compute((x, f), c, method), input_signature=self._spec)
            else:
                fn = tf.function(lambda x, c: self._compute(x, c, method), input_signature=self._spec)
            self._maps[method] = fn.get_concrete_function()
        return self._maps[method]

    def _compute(self, x, class_idx, method: str):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            fmap, scores = self._grad_model(x, training=False)
            if self._from_probs:
                scores = tf.math.log(scores + 1e-9)
            chosen = tf.gather(scores, class_idx, axis=1, batch_dims=1)
        grads = tape.gradient(chosen, fmap)
        if method == "gradcam":
            # Grad-CAM: channel weights are the spatially averaged gradients
            w_cam = tf.reduce_mean(grads, axis=[1, 2])
            return tf.nn.relu(tf.einsum("bhwc,bc->bhw", fmap, w_cam))
        # Grad-CAM++ (Chattopadhyay et al. 2018), exponential-score closed form
        g2, g3 = grads ** 2, grads ** 3
        denom = 2.0 * g2 + tf.reduce_sum(fmap, axis=[1, 2], keepdims=True) * g3
        alpha = g2 / tf.where(tf.abs(denom) > 1e-12, denom, tf.ones_like(denom))
        w_pp = tf.reduce_sum(alpha * tf.nn.relu(grads), axis=[1, 2])
        return tf.nn.relu(tf.einsum("bhwc,bc->bhw", fmap, w_pp))

    def heatmaps(self, x: np.ndarray, class_idx: np.ndarray | list[int], method: str = "gradcam",
                 size: int | None = None, features: np.ndarray | None = None) -> np.ndarray:
        """Maps (n, size, size) in [0, 1] for model inputs x (n, h, w, 1) and one class per image; a model
        that also reads beat features needs them (n, N_FEATURES): the map explains the class they gave."""
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; use one of {METHODS}")
        classes = np.asarray(class_idx, np.int32)
        if self.reads_features:
            if features is None:
                raise ValueError("this model also reads beat features: pass the beats' features")
            maps = self._graph(method)(np.asarray(x, np.float32), np.asarray(features, np.float32), classes).numpy()
        else:
            maps = self._graph(method)(np.asarray(x, np.float32), classes).numpy()
        size = size or x.shape[1]
        out = np.empty((len(maps), size, size), np.float32)
        for i, m in enumerate(maps):
            if not np.isfinite(m).all():  # the check is much cheaper than nan_to_num itself
                m = np.nan_to_num(m)
            up = cv2.resize(m, (size, size), interpolation=cv2.INTER_CUBIC)
            up = np.clip(up, 0, None)
            top = float(up.max())
            out[i] = up / top if top > 0 else up
        return out


def overlay(image: np.ndarray, heatmap: np.ndarray, opacity: float = 0.45, upscale: int = 1) -> np.ndarray:
    """Grayscale uint8 image + heatmap [0, 1] -> RGB uint8 overlay (OpenCV JET colormap)."""
    h, w = image.shape[:2]
    if upscale > 1:
        image = cv2.resize(image, (w * upscale, h * upscale), interpolation=cv2.INTER_NEAREST)
        heatmap = cv2.resize(heatmap, (w * upscale, h * upscale), interpolation=cv2.INTER_LINEAR)
    colour = cv2.applyColorMap(np.clip(heatmap * 255, 0, 255).astype(np.uint8), COLORMAP)
    colour = cv2.cvtColor(colour, cv2.COLOR_BGR2RGB)
    base = cv2.cvtColor(np.asarray(image, np.uint8), cv2.COLOR_GRAY2RGB)
    return cv2.addWeighted(colour, float(opacity), base, 1.0 - float(opacity), 0.0)


def colormap_legend(width: int = 256, height: int = 12) -> np.ndarray:
    """RGB strip of the colormap from 0 (left) to 1 (right)."""
    ramp = np.tile(np.linspace(0, 255, width).astype(np.uint8), (height, 1))
    return cv2.cvtColor(cv2.applyColorMap(ramp, COLORMAP), cv2.COLOR_BGR2RGB)


def time_profile(image: np.ndarray, heatmap: np.ndarray, radius: int = 3) -> np.ndarray:
    """The heatmap along the picture's time axis: per column, its strongest value on or near the trace.

    A beat picture's columns are time (see render.window_time_axis), so this is where in time the model
    looked; it is what the picture pages draw along the user's own trace. Scaled to a maximum of 1.
    """
    trace = (np.asarray(image) > 64).astype(np.uint8)
    near = cv2.dilate(trace, np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)) > 0
    prof = np.where(near, heatmap, 0.0).max(axis=0)
    top = float(prof.max())
    return (prof / top).astype(np.float32) if top > 0 else prof.astype(np.float32)


def mass_near_trace(image: np.ndarray, heatmap: np.ndarray, radius: int = 6) -> float:
    """Fraction of the heatmap's mass within `radius` pixels of the trace (bright pixels)."""
    trace = (np.asarray(image) > 64).astype(np.uint8)
    near = cv2.dilate(trace, np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)) > 0
    total = float(heatmap.sum())
    return float(heatmap[near].sum() / total) if total > 0 else 0.0
