"""Edge-sized Keras 3 architectures, in a registry keyed by the recipe's ``architecture.name``.

Each builder takes the input shape (without batch), the number of outputs and the
recipe's architecture options (checked against the builder's defaults: an unknown one
is an error listing the valid ones) and returns the functional graph's inputs and
outputs; `build` wraps them in a named ``keras.Model``.
Only built-in Keras layers and ops (no custom classes: a model that needs edgekit's code to
load would be refused by `edgekit convert` as code), and layers the converters handle:
Conv, DepthwiseConv, Conv2DTranspose, Dense, BatchNorm, LayerNorm, ReLU, pooling, GRU/LSTM
unrolled, MultiHeadAttention.

The head follows the task: `build` passes private options the builders read through
`_head`: ``_head`` ``softmax`` (classification) or ``linear`` (regression, with
``_target_scale``/``_target_offset`` mapping normalized predictions to target units), and
``_output_range`` for a generator's output.
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
          model_name: str, **private: Any) -> Any:
    """Build the model the recipe's `architecture` section describes.

    Args:
        private: fitted values the recipe does not carry (see the module docstring):
            ``_head``, ``_target_scale``, ``_target_offset``, ``_output_range``.
    """
    name = str(architecture.get("name"))
    options = options_for(name, architecture)
    options.update(private)
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


def _head(keras: Any, x: Any, outputs: int, o: Mapping[str, Any]) -> Any:
    """The output layer: class probabilities, or (``_head: linear``) regression values."""
    layers = keras.layers
    if o.get("dropout"):
        x = layers.Dropout(o["dropout"])(x)
    if o.get("_head", "softmax") == "linear":
        # the network predicts normalized targets; Rescaling maps them to target units, so
        # the exported model (and the device) answers in the units of the data
        x = layers.Dense(outputs, dtype="float32", name="normalized_prediction")(x)
        return layers.Rescaling(o.get("_target_scale", 1.0), offset=o.get("_target_offset", 0.0), dtype="float32",
                                name="prediction")(x)
    # float32 output even under mixed precision: softmax in float16 loses the small classes
    return layers.Dense(outputs, activation="softmax", dtype="float32", name="probabilities")(x)


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
    return inputs, _head(keras, x, outputs, o)


@register("resnet8", filters=[16, 32, 64], dropout=0.0, l2=1e-4, bn_momentum=0.9)
def resnet8(keras: Any, input_shape: tuple[int, ...], outputs: int, o: dict[str, Any]) -> tuple[Any, Any]:
    """ResNet-8 (MLPerf Tiny image classification): a stem and three residual stages."""
    layers = keras.layers
    reg = keras.regularizers.L2(o["l2"]) if o["l2"] else None
    inputs = keras.Input(shape=input_shape, name="image")
    # bn_momentum 0.9: ~1,000 images are ~15 steps an epoch, and 0.99 moving statistics lag
    # the weights by ~100 steps (validation at 35% where training is at 95% on real digits)
    momentum = float(o["bn_momentum"])
    first = o["filters"][0]
    x = layers.Conv2D(first, 3, padding="same", kernel_regularizer=reg, use_bias=False)(inputs)
    x = layers.ReLU()(layers.BatchNormalization(momentum=momentum)(x))
    for stage, filters in enumerate(o["filters"]):
        strides = 1 if stage == 0 else 2
        y = layers.Conv2D(filters, 3, strides=strides, padding="same", kernel_regularizer=reg, use_bias=False)(x)
        y = layers.ReLU()(layers.BatchNormalization(momentum=momentum)(y))
        y = layers.Conv2D(filters, 3, padding="same", kernel_regularizer=reg, use_bias=False)(y)
        y = layers.BatchNormalization(momentum=momentum)(y)
        if strides != 1 or x.shape[-1] != filters:
            x = layers.Conv2D(filters, 1, strides=strides, padding="same", kernel_regularizer=reg, use_bias=False)(x)
        x = layers.ReLU()(layers.Add()([x, y]))
    x = layers.GlobalAveragePooling2D()(x)
    return inputs, _head(keras, x, outputs, o)


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
    return inputs, _head(keras, x, outputs, o)


@register("mobilenet_v2", alpha=0.35, first_filters=32,
          blocks=[[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 2, 2], [6, 96, 1, 1]], last_filters=0,
          dropout=0.0, bn_momentum=0.9, activation="relu6", projection_bn=True)
def mobilenet_v2(keras: Any, input_shape: tuple[int, ...], outputs: int, o: dict[str, Any]) -> tuple[Any, Any]:
    """MobileNet v2 (Sandler et al. 2018): inverted residual blocks, each ``[expansion,
    filters, repeats, stride]``: a 1x1 expansion with ReLU6, a 3x3 depthwise convolution with
    ReLU6, a linear 1x1 projection (no activation: the "linear bottleneck") and a residual
    addition where the shapes allow; filters scaled by `alpha`.

    The linear bottlenecks and the residual sums carry unbounded, wide activation ranges
    next to the ReLU6-bounded ones: the architecture post-training int8 is known to hurt
    most (published: 71.9% float, 63.7% post-training int8, 70.9% with QAT on ImageNet).
    `activation` ``relu`` (unbounded) and ``projection_bn: false`` (no BatchNormalization
    after the projections: the residual sums grow with depth) widen those ranges further.
    """
    if o["activation"] not in ("relu6", "relu"):
        raise InputError(f"unrecognized architecture (mobilenet_v2).activation={o['activation']!r}",
                         expected="one of ['relu', 'relu6']", found=repr(o["activation"]))
    layers = keras.layers
    cap = 6.0 if o["activation"] == "relu6" else None
    momentum = float(o["bn_momentum"])

    def width(filters: int) -> int:
        return max(8, int(filters * o["alpha"] + 4) // 8 * 8)

    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(width(o["first_filters"]), 3, strides=2, padding="same", use_bias=False)(inputs)
    x = layers.ReLU(cap)(layers.BatchNormalization(momentum=momentum)(x))
    for expansion, filters, repeats, stride in o["blocks"]:
        out = width(filters)
        for i in range(repeats):
            y = x
            if expansion != 1:
                y = layers.Conv2D(int(x.shape[-1]) * expansion, 1, use_bias=False)(y)
                y = layers.ReLU(cap)(layers.BatchNormalization(momentum=momentum)(y))
            y = layers.DepthwiseConv2D(3, strides=stride if i == 0 else 1, padding="same", use_bias=False)(y)
            y = layers.ReLU(cap)(layers.BatchNormalization(momentum=momentum)(y))
            y = layers.Conv2D(out, 1, use_bias=not o["projection_bn"])(y)
            if o["projection_bn"]:
                y = layers.BatchNormalization(momentum=momentum)(y)
            x = layers.Add()([x, y]) if (i > 0 or stride == 1) and int(x.shape[-1]) == out else y
    if o["last_filters"]:
        x = layers.Conv2D(width(o["last_filters"]), 1, use_bias=False)(x)
        x = layers.ReLU(cap)(layers.BatchNormalization(momentum=momentum)(x))
    x = layers.GlobalAveragePooling2D()(x)
    return inputs, _head(keras, x, outputs, o)


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
    return inputs, _head(keras, x, outputs, o)


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
    return inputs, _head(keras, x, outputs, o)


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


@register("mlp", units=[64, 32], dropout=0.2, batch_norm=True)
def mlp(keras: Any, input_shape: tuple[int, ...], outputs: int, o: dict[str, Any]) -> tuple[Any, Any]:
    """Feed-forward dense network over feature vectors (tabular sensor features).

    Standardize the features in the preprocessing, not in the model: a sensor spec with
    ``window: 1`` and one channel per feature carries the mean and std fitted on the
    training split, applied in float before an int8 model quantizes its input (raw
    features whose scales differ 1000x lose the small ones to one input scale).
    """
    layers = keras.layers
    inputs = keras.Input(shape=input_shape, name="features")
    x = inputs
    if len(input_shape) > 1:
        x = layers.Flatten()(x)
    for units in o["units"]:
        x = layers.Dense(units, use_bias=not o["batch_norm"])(x)
        if o["batch_norm"]:
            x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.ReLU()(x)
    return inputs, _head(keras, x, outputs, o)


def sinusoidal_positions(length: int, depth: int) -> Any:
    """The Transformer's fixed positional encoding (Vaswani et al. 2017), ``(length, depth)`` float32."""
    import numpy as np

    position = np.arange(length, dtype=np.float64)[:, None]
    rate = np.power(10000.0, -(2 * (np.arange(depth) // 2)) / depth)[None, :]
    angle = position * rate
    return np.where(np.arange(depth)[None, :] % 2 == 0, np.sin(angle), np.cos(angle)).astype("float32")


@register("transformer", d_model=32, heads=4, key_dim=8, layers=2, ff=64, patch=4, dropout=0.1)
def transformer(keras: Any, input_shape: tuple[int, ...], outputs: int, o: dict[str, Any]) -> tuple[Any, Any]:
    """A small Transformer encoder for sequence classification (sensor windows).

    A strided Conv1D cuts the window into patches of `patch` steps and projects them to
    `d_model`; the sinusoidal positional encoding is added as a constant (a plain Keras
    add, no custom layer); then `layers` post-norm encoder blocks (multi-head
    self-attention, feed-forward, residuals, layer normalization) and average pooling.
    """
    layers = keras.layers
    if len(input_shape) != 2:
        raise InputError("architecture (transformer) input", expected="sequences (steps, channels)",
                         found=f"shape {input_shape}")
    inputs = keras.Input(shape=input_shape, name="window")
    patch = int(o["patch"]) or 1
    x = layers.Conv1D(o["d_model"], patch, strides=patch, padding="same", name="patch_embedding")(inputs)
    steps = -(-input_shape[0] // patch)
    x = x + sinusoidal_positions(steps, int(o["d_model"]))
    for i in range(int(o["layers"])):
        attention = layers.MultiHeadAttention(o["heads"], o["key_dim"], dropout=o["dropout"], name=f"attention_{i}")(x, x)
        x = layers.LayerNormalization(epsilon=1e-5, name=f"norm_attention_{i}")(layers.Add()([x, attention]))
        y = layers.Dense(o["ff"], activation="relu")(x)
        y = layers.Dense(o["d_model"])(y)
        if o["dropout"]:
            y = layers.Dropout(o["dropout"])(y)
        x = layers.LayerNormalization(epsilon=1e-5, name=f"norm_ff_{i}")(layers.Add()([x, y]))
    x = layers.GlobalAveragePooling1D()(x)
    return inputs, _head(keras, x, outputs, o)


@register("conv_autoencoder", filters=[16, 32, 64], bottleneck=32, output_activation="sigmoid")
def conv_autoencoder(keras: Any, input_shape: tuple[int, ...], outputs: int, o: dict[str, Any]) -> tuple[Any, Any]:
    """Convolutional autoencoder for image anomaly detection: strided convolutions down to a
    dense bottleneck, transposed convolutions back up; reconstructs the (normalized) image.

    Inputs in [0, 1] (``scale: 1/255``) suit the default sigmoid output; use
    ``output_activation: linear`` for other normalizations. `outputs` is ignored.
    """
    if o["output_activation"] not in ("sigmoid", "linear"):
        raise InputError(f"unrecognized architecture (conv_autoencoder).output_activation={o['output_activation']!r}",
                         expected="one of ['linear', 'sigmoid']", found=repr(o["output_activation"]))
    layers = keras.layers
    height, width, channels = input_shape
    factor = 2 ** len(o["filters"])
    if height % factor or width % factor:
        raise InputError("architecture (conv_autoencoder) input", expected=f"height and width divisible by {factor} "
                         f"({len(o['filters'])} stride-2 stages)", found=f"{height}x{width}")
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for filters in o["filters"]:
        x = layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False)(x)
        x = layers.ReLU()(layers.BatchNormalization(momentum=0.9)(x))
    small = (height // factor, width // factor, o["filters"][-1])
    x = layers.Flatten()(x)
    x = layers.Dense(o["bottleneck"], activation="relu", name="bottleneck")(x)
    x = layers.Dense(small[0] * small[1] * small[2], activation="relu")(x)
    x = layers.Reshape(small)(x)
    for filters in reversed(o["filters"][:-1]):
        x = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", use_bias=False)(x)
        x = layers.ReLU()(layers.BatchNormalization(momentum=0.9)(x))
    activation = None if o["output_activation"] == "linear" else "sigmoid"
    out = layers.Conv2DTranspose(channels, 3, strides=2, padding="same", activation=activation, dtype="float32",
                                 name="reconstruction")(x)
    return inputs, out


@register("dcgan", latent_dim=32, filters=[128, 64, 32], discriminator_filters=[32, 64, 128], dropout=0.3)
def dcgan(keras: Any, input_shape: tuple[int, ...], outputs: int, o: dict[str, Any]) -> tuple[Any, Any]:
    """DCGAN generator (Radford et al. 2016): latent vector -> image of `input_shape`.

    `input_shape` is the shape of the training images; the generator's own input is the
    ``(latent_dim,)`` vector. Dense projection to a small feature map, then stride-2
    transposed convolutions with BatchNorm and ReLU, tanh, and a Rescaling to the range
    the training images have after preprocessing (``_output_range``, default [0, 1]).
    `outputs` is ignored; `discriminator` builds the critic it is trained against.
    """
    layers = keras.layers
    height, width, channels = input_shape
    stages = len(o["filters"])
    factor = 2**stages
    if height % factor or width % factor:
        raise InputError("architecture (dcgan) image size", expected=f"height and width divisible by {factor} "
                         f"({stages} stride-2 stages)", found=f"{height}x{width}")
    inputs = keras.Input(shape=(int(o["latent_dim"]),), name="latent")
    small = (height // factor, width // factor, o["filters"][0])
    x = layers.Dense(small[0] * small[1] * small[2], use_bias=False)(inputs)
    x = layers.ReLU()(layers.BatchNormalization(momentum=0.9)(x))
    x = layers.Reshape(small)(x)
    for filters in o["filters"][1:]:
        x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False)(x)
        x = layers.ReLU()(layers.BatchNormalization(momentum=0.9)(x))
    x = layers.Conv2DTranspose(channels, 4, strides=2, padding="same", activation="tanh", dtype="float32")(x)
    low, high = o.get("_output_range", (0.0, 1.0))
    out = layers.Rescaling((high - low) / 2.0, offset=(high + low) / 2.0, dtype="float32", name="image")(x)
    return inputs, out


def discriminator(keras: Any, image_shape: tuple[int, ...], options: Mapping[str, Any]) -> Any:
    """The DCGAN critic for `dcgan`: stride-2 convolutions, LeakyReLU, dropout, one logit."""
    layers = keras.layers
    o = options_for("dcgan", options)
    inputs = keras.Input(shape=image_shape, name="image")
    x = inputs
    for i, filters in enumerate(o["discriminator_filters"]):
        x = layers.Conv2D(filters, 4, strides=2, padding="same")(x)
        if i:
            x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.LeakyReLU(0.2)(x)
        if o["dropout"]:
            x = layers.Dropout(o["dropout"])(x)
    x = layers.Flatten()(x)
    out = layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(inputs, out, name="discriminator")

