"""Model builders, one function per family, all with the functional API.

Every model ends in a Dense layer named "logits" followed by a softmax named "probabilities", so that
Grad-CAM can differentiate the class score before the softmax.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from ecg_core.classes import CLASS_KEYS
from ecg_core.settings import IMAGE_SIZE

INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)
N_CLASSES = len(CLASS_KEYS)


def _head(x):
    return layers.Dense(N_CLASSES, name="logits")(x)


def _finish(inputs, logits, name: str) -> keras.Model:
    probs = layers.Activation("softmax", name="probabilities")(logits)
    return keras.Model(inputs, probs, name=name)


def shallow_cnn() -> keras.Model:
    """Seed report: one 32-filter convolution, max pooling, dense softmax."""
    inp = keras.Input(INPUT_SHAPE, name="image")
    x = layers.Conv2D(32, 3, activation="relu", name="conv1")(inp)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    return _finish(inp, _head(x), "shallow_cnn")


def deep_cnn() -> keras.Model:
    """Seed report: conv 32/64/128 each with max pooling, dense 256, dropout 0.5."""
    inp = keras.Input(INPUT_SHAPE, name="image")
    x = inp
    for i, f in enumerate((32, 64, 128), 1):
        x = layers.Conv2D(f, 3, activation="relu", name=f"conv{i}")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(256, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    return _finish(inp, _head(x), "deep_cnn")


def _cnn_sequence(inp):
    """Conv 32/64 with pooling, then the image columns (time) as a sequence of feature vectors."""
    x = inp
    for i, f in enumerate((32, 64), 1):
        x = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Permute((2, 1, 3))(x)  # (time=width, height, channels)
    return layers.Reshape((x.shape[1], x.shape[2] * x.shape[3]))(x)


def cnn_lstm() -> keras.Model:
    """Seed report: CNN 32/64 feeding an LSTM(64) that reads the image left to right (time)."""
    inp = keras.Input(INPUT_SHAPE, name="image")
    x = layers.LSTM(64)(_cnn_sequence(inp))
    return _finish(inp, _head(x), "cnn_lstm")


def cnn_gru_attention() -> keras.Model:
    """Seed report: CNN 32/64, GRU(64) over time, additive attention pooling over its states."""
    inp = keras.Input(INPUT_SHAPE, name="image")
    h = layers.GRU(64, return_sequences=True)(_cnn_sequence(inp))
    scores = layers.Dense(1, activation="tanh")(h)
    weights = layers.Softmax(axis=1, name="attention")(scores)
    x = layers.Dot(axes=1)([weights, h])
    x = layers.Flatten()(x)
    return _finish(inp, _head(x), "cnn_gru_attention")


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, separable: bool = False):
    conv = layers.SeparableConv2D if separable else layers.Conv2D
    x = conv(filters, kernel, strides=stride, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _conv_bn_gap(blocks: tuple[tuple[int, int, int], ...], name: str, separable_from: int | None = None) -> keras.Model:
    """conv+BN+ReLU blocks (filters, kernel, stride), global average pooling, dropout, logits.

    Blocks numbered separable_from and later use depthwise-separable convolutions.
    """
    inp = keras.Input(INPUT_SHAPE, name="image")
    x = inp
    for i, (filters, kernel, stride) in enumerate(blocks, 1):
        separable = separable_from is not None and i >= separable_from
        x = _conv_bn(x, filters, kernel, stride, f"conv{i}", separable)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.3)(x)
    return _finish(inp, _head(x), name)


def ecgnet() -> keras.Model:
    """Ours, small and fast: a 4x4/4 patch stem, three conv+BN blocks, global average pooling (~114 k params).

    The strided patch stem cuts the 128x128 image to 32x32 feature maps at once, which keeps the FLOPs
    low; BN momentum 0.9 keeps the saved moving statistics close to the weights.
    """
    return _conv_bn_gap(((24, 4, 4), (48, 3, 2), (64, 3, 1), (128, 3, 2)), "ecgnet")


def ecgnet_lite() -> keras.Model:
    """Ours, fastest: ecgnet's 4x4/4 patch stem, then three depthwise-separable conv+BN blocks (~22 k params).

    Separable convolutions cut the FLOPs per image about five-fold against ecgnet, for >= 3,000 images/s
    at batch 256 on a 2-core CPU; the feature maps keep ecgnet's 8x8 resolution for Grad-CAM.
    """
    return _conv_bn_gap(((24, 4, 4), (48, 3, 2), (96, 3, 1), (128, 3, 2)), "ecgnet_lite", separable_from=2)


def ecgnet_wide() -> keras.Model:
    """Ours, larger: a 5x5/2 stem then three strided conv+BN blocks (~2x the FLOPs of ecgnet)."""
    return _conv_bn_gap(((16, 5, 2), (32, 3, 2), (64, 3, 2), (128, 3, 2)), "ecgnet_wide")


def ecgnet_large() -> keras.Model:
    """Ours, for accuracy first (~0.6 M params): a full-resolution 3x3/2 stem and seven conv+BN blocks.

    Thin strokes survive the stem, which the 4x4/4 patch stem of ecgnet averages away; about ten times
    ecgnet's FLOPs, so it is a beat-wise reference rather than the app's default.
    """
    return _conv_bn_gap(((32, 3, 2), (32, 3, 1), (64, 3, 2), (64, 3, 1), (128, 3, 2), (128, 3, 1), (256, 3, 2)),
                        "ecgnet_large")


def ecgnet_lite_features(n_features: int = 15, mean=None, variance=None) -> keras.Model:
    """ecgnet_lite's picture branch joined before the logits by a small dense branch over the beat features
    (ecg_core.signal.features: RR intervals and ratios, QRS width, amplitude and polarity, V1's QRS).

    The features are standardised inside the model (mean / variance measured on the training windows and
    kept in the saved model), so the app passes them as measured. Grad-CAM still reads the picture branch's
    last convolution; the features' share of a decision is what the picture alone cannot show.
    """
    image = keras.Input(INPUT_SHAPE, name="image")
    feats = keras.Input((n_features,), name="features")
    x = image
    for i, (filters, kernel, stride) in enumerate(((24, 4, 4), (48, 3, 2), (96, 3, 1), (128, 3, 2)), 1):
        x = _conv_bn(x, filters, kernel, stride, f"conv{i}", separable=i >= 2)
    x = layers.GlobalAveragePooling2D()(x)
    f = layers.Normalization(mean=mean, variance=variance, name="feature_scaling")(feats) \
        if mean is not None else layers.Normalization(name="feature_scaling")(feats)
    f = layers.Dense(32, activation="relu", name="features_dense1")(f)
    f = layers.Dense(32, activation="relu", name="features_dense2")(f)
    x = layers.Concatenate(name="joined")([x, f])
    x = layers.Dropout(0.3)(x)
    probs = layers.Activation("softmax", name="probabilities")(_head(x))
    return keras.Model([image, feats], probs, name="ecgnet_lite_features")


FEATURE_ARCHITECTURES = frozenset({"ecgnet_lite_features"})

ARCHITECTURES: dict[str, Callable[[], keras.Model]] = {
    "shallow_cnn": shallow_cnn,
    "deep_cnn": deep_cnn,
    "cnn_lstm": cnn_lstm,
    "cnn_gru_attention": cnn_gru_attention,
    "ecgnet": ecgnet,
    "ecgnet_lite": ecgnet_lite,
    "ecgnet_wide": ecgnet_wide,
    "ecgnet_large": ecgnet_large,
    "ecgnet_lite_features": ecgnet_lite_features,
}
SEED_ARCHITECTURES = ("shallow_cnn", "deep_cnn", "cnn_lstm", "cnn_gru_attention")


def build(name: str) -> keras.Model:
    """A fresh, uncompiled model of the named architecture."""
    try:
        return ARCHITECTURES[name]()
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; use one of {sorted(ARCHITECTURES)}") from None


def last_conv_layer(model: keras.Model) -> str:
    """Name of the last convolutional feature map: the last Conv2D, or the BN/ReLU/pooling right after it."""
    conv_like = (layers.Conv2D, layers.SeparableConv2D, layers.DepthwiseConv2D)
    follow = (layers.BatchNormalization, layers.ReLU, layers.Activation, layers.MaxPooling2D)
    names = [layer.name for layer in model.layers]
    idx = [i for i, layer in enumerate(model.layers) if isinstance(layer, conv_like)]
    if not idx:
        raise ValueError(f"model {model.name} has no convolutional layer")
    i = idx[-1]
    while i + 1 < len(model.layers) and isinstance(model.layers[i + 1], follow):
        i += 1
    return names[i]
