"""Edge-sized Keras 3 architectures, in a registry keyed by the recipe's ``architecture.name``.

Each builder takes the input shape (without batch), the number of outputs and the
recipe's architecture options (checked against the builder's defaults: an unknown one
is an error listing the valid ones) and returns the functional graph's inputs and
outputs; `build` wraps them in a named ``keras.Model``.
Only layers every converter handles (Conv, DepthwiseConv, Dense, BatchNorm, ReLU, pooling,
GRU/LSTM unrolled) so the TFLite and ONNX exports stay clean.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from edgekit.errors import InputError

Builder = Callable[[Any, tuple[int, ...], int, dict[str, Any]], tuple[Any, Any]]
BUILDERS: dict[str, tuple[Builder, dict[str, Any]]] = {}


def register(name: str, **defaults: Any) -> Callable[[Builder], Builder]:
    """Add a builder with its option defaults."""

    def add(function: Builder) -> Builder:
        BUILDERS[name] = (function, defaults)
        return function

    return add


def options_for(name: str, given: Mapping[str, Any], where: str = "architecture") -> dict[str, Any]:
    """The builder's defaults updated with `given` (which may carry ``name``).

    Raises:
        InputError: unknown builder or option (the message lists the valid ones).
    """
    if name not in BUILDERS:
        raise InputError(f"unrecognized {where}.name={name!r}", expected=f"one of {sorted(BUILDERS)}", found=repr(name))
    defaults = BUILDERS[name][1]
    unknown = sorted(set(given) - set(defaults) - {"name"})
    if unknown:
        raise InputError(f"{where} ({name}): unknown option {unknown[0]!r}", expected=f"some of {sorted(defaults)}",
                         found=", ".join(map(repr, unknown)))
    options = dict(defaults)
    options.update({k: v for k, v in given.items() if k != "name"})
    return options


def build(keras: Any, architecture: Mapping[str, Any], input_shape: tuple[int, ...], outputs: int,
          model_name: str) -> Any:
    """Build the model the recipe's `architecture` section describes."""
    name = str(architecture.get("name"))
    options = options_for(name, architecture)
    inputs, out = BUILDERS[name][0](keras, tuple(input_shape), outputs, options)
    return keras.Model(inputs, out, name=model_name.replace("-", "_"))


def _conv_bn(layers: Any, x: Any, filters: int, kernel: Any, strides: Any = 1, depthwise: bool = False,
             momentum: float = 0.99) -> Any:
    if depthwise:
        x = layers.DepthwiseConv2D(kernel, strides=strides, padding="same", use_bias=False)(x)
    else:
        x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=momentum)(x)
    return layers.ReLU()(x)


def _head(keras: Any, x: Any, outputs: int, dropout: float, logits: bool = False) -> Any:
    layers = keras.layers
    if dropout:
        x = layers.Dropout(dropout)(x)
    # float32 output even under mixed precision: softmax in float16 loses the small classes
    return layers.Dense(outputs, activation=None if logits else "softmax", dtype="float32", name="probabilities")(x)


@register("ds_cnn", filters=64, blocks=4, first_kernel=[10, 4], first_strides=[2, 2], dropout=0.2)
def ds_cnn(keras: Any, input_shape: tuple[int, ...], outputs: int, o: dict[str, Any]) -> tuple[Any, Any]:
    """Depthwise-separable CNN for keyword spotting (Hello Edge; MLPerf Tiny KWS)."""
    layers = keras.layers
    inputs = keras.Input(shape=input_shape, name="features")
    x = inputs if len(input_shape) == 3 else layers.Reshape((*input_shape, 1))(inputs)
    x = _conv_bn(layers, x, o["filters"], tuple(o["first_kernel"]), tuple(o["first_strides"]))
    if o["dropout"]:
        x = layers.Dropout(o["dropout"])(x)
    for _ in range(o["blocks"]):
        x = _conv_bn(layers, x, o["filters"], 3, depthwise=True)
        x = _conv_bn(layers, x, o["filters"], 1)
    x = layers.GlobalAveragePooling2D()(x)
    return inputs, _head(keras, x, outputs, o["dropout"])


@register("resnet8", filters=[16, 32, 64], dropout=0.0, l2=1e-4)
def resnet8(keras: Any, input_shape: tuple[int, ...], outputs: int, o: dict[str, Any]) -> tuple[Any, Any]:
    """ResNet-8 (MLPerf Tiny image classification): a stem and three residual stages."""
    layers = keras.layers
    reg = keras.regularizers.L2(o["l2"]) if o["l2"] else None
    inputs = keras.Input(shape=input_shape, name="image")
    first = o["filters"][0]
    x = layers.Conv2D(first, 3, padding="same", kernel_regularizer=reg, use_bias=False)(inputs)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    for stage, filters in enumerate(o["filters"]):
        strides = 1 if stage == 0 else 2
        y = layers.Conv2D(filters, 3, strides=strides, padding="same", kernel_regularizer=reg, use_bias=False)(x)
        y = layers.ReLU()(layers.BatchNormalization()(y))
        y = layers.Conv2D(filters, 3, padding="same", kernel_regularizer=reg, use_bias=False)(y)
        y = layers.BatchNormalization()(y)
        if strides != 1 or x.shape[-1] != filters:
            x = layers.Conv2D(filters, 1, strides=strides, padding="same", kernel_regularizer=reg, use_bias=False)(x)
        x = layers.ReLU()(layers.Add()([x, y]))
    x = layers.GlobalAveragePooling2D()(x)
    return inputs, _head(keras, x, outputs, o["dropout"])


@register("mobilenet", alpha=0.25, depth=[64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024],
          strides=[1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1], first_filters=32, dropout=0.1, bn_momentum=0.9)
def mobilenet(keras: Any, input_shape: tuple[int, ...], outputs: int, o: dict[str, Any]) -> tuple[Any, Any]:
    """MobileNet v1 with a width multiplier `alpha` (MLPerf Tiny visual wake words)."""
    if len(o["depth"]) != len(o["strides"]):
        raise InputError("architecture (mobilenet) depth/strides", expected="lists of the same length",
                         found=f"{len(o['depth'])} and {len(o['strides'])}")
    layers = keras.layers
    inputs = keras.Input(shape=input_shape, name="image")
    # bn_momentum 0.9: with a few hundred steps, 0.99 moving statistics lag the weights
    # and the evaluation-mode network stays at chance (seen on 1,200 synthetic images)
    momentum = float(o["bn_momentum"])
    x = _conv_bn(layers, inputs, max(8, int(o["first_filters"] * o["alpha"])), 3, 2, momentum=momentum)
    for filters, strides in zip(o["depth"], o["strides"], strict=True):
        x = _conv_bn(layers, x, 0, 3, strides, depthwise=True, momentum=momentum)
        x = _conv_bn(layers, x, max(8, int(filters * o["alpha"])), 1, momentum=momentum)
    x = layers.GlobalAveragePooling2D()(x)
    return inputs, _head(keras, x, outputs, o["dropout"])


@register("cnn1d", filters=[32, 64, 64], kernel=5, pool=2, dense=64, dropout=0.3)
def cnn1d(keras: Any, input_shape: tuple[int, ...], outputs: int, o: dict[str, Any]) -> tuple[Any, Any]:
    """1D CNN over sensor windows (time, channels)."""
    layers = keras.layers
    inputs = keras.Input(shape=input_shape, name="window")
    x = inputs
    for filters in o["filters"]:
        x = layers.Conv1D(filters, o["kernel"], padding="same", use_bias=False)(x)
        x = layers.ReLU()(layers.BatchNormalization()(x))
        if o["pool"] > 1:
            x = layers.MaxPooling1D(o["pool"])(x)
    x = layers.GlobalAveragePooling1D()(x)
    if o["dense"]:
        x = layers.Dense(o["dense"], activation="relu")(x)
    return inputs, _head(keras, x, outputs, o["dropout"])


@register("rnn", cell="gru", units=[32], conv_filters=32, conv_stride=2, dropout=0.2)
def rnn(keras: Any, input_shape: tuple[int, ...], outputs: int, o: dict[str, Any]) -> tuple[Any, Any]:
    """GRU or LSTM over sensor windows, after an optional strided Conv1D that shortens the sequence.

    Recurrent layers are unrolled (fixed window length): the converters then emit plain
    ops rather than a TensorList loop, which int8 and ONNX handle.
    """
    if o["cell"] not in ("gru", "lstm"):
        raise InputError(f"unrecognized architecture (rnn).cell={o['cell']!r}", expected="one of ['gru', 'lstm']",
                         found=repr(o["cell"]))
    layers = keras.layers
    inputs = keras.Input(shape=input_shape, name="window")
    x = inputs
    if o["conv_filters"]:
        x = layers.Conv1D(o["conv_filters"], 3, strides=o["conv_stride"], padding="same", activation="relu")(x)
    cell = layers.GRU if o["cell"] == "gru" else layers.LSTM
    for i, units in enumerate(o["units"]):
        x = cell(units, return_sequences=i < len(o["units"]) - 1, unroll=True)(x)
    return inputs, _head(keras, x, outputs, o["dropout"])


@register("dense_autoencoder", units=[128, 128, 128, 128], bottleneck=8)
def dense_autoencoder(keras: Any, input_shape: tuple[int, ...], outputs: int, o: dict[str, Any]) -> tuple[Any, Any]:
    """Dense autoencoder (the DCASE/ToyADMOS baseline shape): encoder, bottleneck, mirrored decoder.

    The output reconstructs the input; `outputs` is ignored.
    """
    layers = keras.layers
    inputs = keras.Input(shape=input_shape, name="features")
    x = inputs
    for units in [*o["units"], o["bottleneck"], *reversed(o["units"])]:
        x = layers.Dense(units, use_bias=False)(x)
        # momentum 0.9: the moving statistics catch up within the few hundred steps a
        # small normal-only dataset gives (0.99 left validation errors high for 30+ epochs)
        x = layers.ReLU()(layers.BatchNormalization(momentum=0.9)(x))
    size = 1
    for dim in input_shape:
        size *= dim
    out = layers.Dense(size, dtype="float32", name="reconstruction")(x)
    return inputs, out
