"""Quantization-aware training for Keras 3: the fake-quantized twin of a trained model.

`quantize_model` rebuilds a functional Keras model the way the TFLite int8 kernels will
compute it:

- BatchNormalization that directly follows a convolution or a dense layer is folded into
  its weights and bias (with the moving statistics), as the converters fold it; the
  fine-tuning then trains the folded weights, so what is trained is what is deployed.
- Weights are fake-quantized per output channel, symmetric, 8 bits in the narrow range
  [-127, 127] (TFLite's int8 weight scheme), from their current range at every step (a
  Dense layer on sequences: one scale, see `QuantDense`).
- Activations are fake-quantized per tensor (asymmetric, 8 bits) at the tensors an int8
  graph stores: the model input, the output of each convolution, dense layer, addition,
  pooling to a mean, ... after the ReLU or ReLU6 the converters fuse into it (none between
  a convolution and its ReLU), not after the ops that keep their input's scale (max
  pooling, reshape, dropout). Their ranges are moving averages of the batch minimum and
  maximum during training (initialized by a calibration pass), fixed in inference.
- A softmax output keeps int8 softmax's fixed range (the converter sets it).

The fake quantization is ``keras.quantizers.fake_quant_with_min_max_vars``, which on the
TensorFlow backend is ``tf.quantization.fake_quant_with_min_max_vars`` (per tensor) and
``..._per_channel`` (weights): the FakeQuant ops the TFLite converter and tf2onnx read as
the quantization parameters of a full-int8 model (QAT; tensorflow-model-optimization does
the same for the legacy ``tf_keras`` only). The QAT model is saved as a SavedModel
(`export_saved_model`): its layers are edgekit's classes, and a SavedModel carries the
graph, not code.

This module imports TensorFlow and Keras: it is only imported to train.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import InputError
from edgekit.keras_env import import_keras

keras = import_keras()
import tensorflow as tf  # noqa: E402 - this module is only imported to train

PACKAGE = "edgekit_qat"
RANGES_SOURCE = ("moving average of each batch's min/max during fine-tuning (initialized on {n} training samples); "
                 "the input's: its running min/max")
MINMAX_SOURCE = "running min/max of every batch during fine-tuning (initialized on {n} training samples)"


@dataclasses.dataclass(frozen=True)
class QatOptions:
    """How the fake-quantized model is made.

    Attributes:
        ema_decay: decay of the activation ranges' moving averages per training step; 0:
            the running min/max instead (every value seen stays in range). The model
            input's range is always the running min/max (the data's own range, as
            calibration takes it: a moving average would clip the rare wide inputs, which
            an anomaly detector exists to see).
        fold_batchnorm: fold BatchNormalization into the preceding convolution or dense layer.
        calibration_batches: batches run (training mode, no weight updates) to initialize
            the activation ranges before fine-tuning.
    """

    ema_decay: float = 0.99
    fold_batchnorm: bool = True
    calibration_batches: int = 8


# ---------------------------------------------------------------------------
# the fake-quantization layers


def _channels_last(kernel: Any, axis: int) -> tuple[Any, list[int] | None]:
    rank = len(kernel.shape)
    axis = axis % rank
    if axis == rank - 1:
        return kernel, None
    perm = [i for i in range(rank) if i != axis] + [axis]
    return tf.transpose(kernel, perm), perm


def _weight_fake_quant(kernel: Any, axis: int | None, low: Any, high: Any) -> Any:
    """Symmetric narrow-range int8 fake quantization of a kernel, per channel along `axis`
    (None: per tensor)."""
    if axis is None:
        return tf.quantization.fake_quant_with_min_max_vars(kernel, low, high, num_bits=8, narrow_range=True)
    moved, perm = _channels_last(tf.convert_to_tensor(kernel), axis)
    out = tf.quantization.fake_quant_with_min_max_vars_per_channel(moved, low, high, num_bits=8, narrow_range=True)
    return out if perm is None else tf.transpose(out, np.argsort(perm).tolist())


def _weight_bound(kernel: Any, axis: int | None) -> Any:
    if axis is None:
        return tf.maximum(tf.reduce_max(tf.abs(kernel)), 1e-8)
    moved, _perm = _channels_last(tf.convert_to_tensor(kernel), axis)
    return tf.maximum(tf.reduce_max(tf.abs(moved), axis=list(range(len(moved.shape) - 1))), 1e-8)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ActivationQuantizer(keras.layers.Layer):
    """Per-tensor int8 fake quantization with moving-average min/max ranges (``ema_decay``
    > 0), or the running minimum and maximum (``ema_decay`` 0: every value seen is kept in
    range, as post-training calibration keeps it).

    In inference the FakeQuant op reads the two range variables directly: the converter
    freezes them into the constants it takes the quantization parameters from.
    """

    def __init__(self, ema_decay: float = 0.99, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ema_decay = float(ema_decay)

    def build(self, input_shape: Any) -> None:
        self.range_min = self.add_weight(name="range_min", shape=(), initializer="zeros", trainable=False)
        self.range_max = self.add_weight(name="range_max", shape=(), initializer="zeros", trainable=False)
        self.seen = self.add_weight(name="seen", shape=(), initializer="zeros", trainable=False)

    def call(self, inputs: Any, training: Any = None) -> Any:
        x = tf.cast(inputs, tf.float32)
        if training:
            low = tf.minimum(tf.reduce_min(x), 0.0)
            high = tf.maximum(tf.reduce_max(x), low + 1e-6)
            first = tf.equal(self.seen, 0.0)
            decay = self.ema_decay
            if decay > 0:
                new_low = decay * self.range_min + (1 - decay) * low
                new_high = decay * self.range_max + (1 - decay) * high
            else:
                new_low, new_high = tf.minimum(self.range_min, low), tf.maximum(self.range_max, high)
            self.range_min.assign(tf.where(first, low, new_low))
            self.range_max.assign(tf.where(first, high, new_high))
            self.seen.assign_add(1.0)
        return tf.quantization.fake_quant_with_min_max_vars(x, self.range_min, self.range_max, num_bits=8,
                                                            narrow_range=False)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "ema_decay": self.ema_decay}


class _QuantizedWeights:
    """Fake-quantized kernel: its per-channel range follows the kernel in training and is
    held in two variables (min, max) that inference reads, so they freeze into constants."""

    quant_axis: int | None = -1

    def build(self, input_shape: Any) -> None:
        super().build(input_shape)  # the Keras layer's kernel and bias
        shape = tuple(_weight_bound(self.kernel, self.quant_axis).shape)
        self.weight_min = self.add_weight(name="weight_min", shape=shape, initializer="zeros", trainable=False)
        self.weight_max = self.add_weight(name="weight_max", shape=shape, initializer="ones", trainable=False)

    def sync_ranges(self) -> Any:
        """Set the range from the current kernel; returns its bound."""
        bound = _weight_bound(self.kernel, self.quant_axis)
        self.weight_min.assign(-bound)
        self.weight_max.assign(bound)
        return bound

    def quantized_kernel(self, training: Any, kernel: Any = None) -> Any:
        kernel = self.kernel if kernel is None else kernel
        if training:
            bound = self.sync_ranges()
            return _weight_fake_quant(kernel, self.quant_axis, -bound, bound)
        return _weight_fake_quant(kernel, self.quant_axis, self.weight_min, self.weight_max)

    def _finish(self, outputs: Any) -> Any:
        if self.use_bias:
            outputs = outputs + self.bias
        return outputs if self.activation is None else self.activation(outputs)


@keras.saving.register_keras_serializable(package=PACKAGE)
class QuantConv2D(_QuantizedWeights, keras.layers.Conv2D):
    """Conv2D (channels last) with per-output-channel fake-quantized weights."""

    def call(self, inputs: Any, training: Any = None) -> Any:
        return self._finish(self.convolution_op(inputs, self.quantized_kernel(training)))


@keras.saving.register_keras_serializable(package=PACKAGE)
class QuantConv1D(_QuantizedWeights, keras.layers.Conv1D):
    """Conv1D (channels last) with per-output-channel fake-quantized weights."""

    def call(self, inputs: Any, training: Any = None) -> Any:
        # As a 2D convolution over (1, steps): the kernel is fake-quantized in the
        # (1, k, in, out) shape the converter gives CONV_2D, so its per-channel axis stays last
        # (fake-quantizing (k, in, out) and expanding it after breaks the converter's axis).
        if self.padding == "causal":
            inputs = keras.ops.pad(inputs, self._compute_causal_padding())
        padding = "VALID" if self.padding == "causal" else self.padding.upper()
        kernel = self.quantized_kernel(training, tf.expand_dims(self.kernel, 0))
        outputs = tf.nn.conv2d(tf.expand_dims(inputs, 1), kernel, strides=[1, 1, self.strides[0], 1],
                               padding=padding, dilations=[1, 1, self.dilation_rate[0], 1])
        return self._finish(tf.squeeze(outputs, 1))


@keras.saving.register_keras_serializable(package=PACKAGE)
class QuantDepthwiseConv2D(_QuantizedWeights, keras.layers.DepthwiseConv2D):
    """DepthwiseConv2D (channels last, depth multiplier 1) with per-channel fake-quantized
    weights: the output channel is the input channel, axis 2 of the kernel."""

    quant_axis = 2

    def call(self, inputs: Any, training: Any = None) -> Any:
        outputs = keras.ops.depthwise_conv(inputs, self.quantized_kernel(training), strides=self.strides,
                                           padding=self.padding, dilation_rate=self.dilation_rate,
                                           data_format=self.data_format)
        return self._finish(outputs)


@keras.saving.register_keras_serializable(package=PACKAGE)
class QuantDense(_QuantizedWeights, keras.layers.Dense):
    """Dense with per-output-unit fake-quantized weights.

    On a batch of vectors it computes as a 1x1 convolution, so the converters make a
    CONV_2D (Conv) whose per-channel weights are the ones trained: a fully connected op's
    kernel is the transpose of Keras' ``(in, out)``, and the converter's transpose of a
    per-channel fake-quantized constant fails ("mismatched quantized axes"), while one scale
    per tensor loses the small columns BatchNorm folding leaves (tab-mlp lost 7 points to
    it). On sequences (rank > 2) it stays a matmul with one scale per tensor.
    """

    def build(self, input_shape: Any) -> None:
        self.quant_axis = -1 if len(input_shape) == 2 else None
        super().build(input_shape)

    def call(self, inputs: Any, training: Any = None) -> Any:
        if self.quant_axis is None:
            return self._finish(keras.ops.matmul(inputs, self.quantized_kernel(training)))
        kernel = self.quantized_kernel(training, tf.reshape(self.kernel, [1, 1, *self.kernel.shape]))
        outputs = tf.nn.conv2d(tf.reshape(inputs, [-1, 1, 1, int(self.kernel.shape[0])]), kernel, strides=1,
                               padding="VALID")
        return self._finish(tf.reshape(outputs, [-1, int(self.kernel.shape[1])]))


def sync_weight_ranges(model: Any) -> None:
    """Set every weight range from the current kernel (after the last optimizer step)."""
    for layer in _all_layers(model):
        if isinstance(layer, _QuantizedWeights):
            layer.sync_ranges()


QUANT_CLASSES: dict[str, Any] = {"Conv2D": QuantConv2D, "Conv1D": QuantConv1D,
                                 "DepthwiseConv2D": QuantDepthwiseConv2D, "Dense": QuantDense}
CUSTOM_OBJECTS = {f"{PACKAGE}>{c.__name__}": c for c in (ActivationQuantizer, *QUANT_CLASSES.values())}
# Ops whose int8 output keeps the input's scale: no range of their own.
SAME_SCALE = frozenset({"Dropout", "Reshape", "Flatten", "MaxPooling1D", "MaxPooling2D", "Identity", "Permute",
                        "SpatialDropout1D", "SpatialDropout2D", "Cropping1D", "Cropping2D", "ZeroPadding1D",
                        "ZeroPadding2D", "UpSampling1D", "UpSampling2D", "GaussianNoise", "ActivityRegularization"})
FUSED_INTO = frozenset({"Conv2D", "Conv1D", "DepthwiseConv2D", "Dense", "Add", "BatchNormalization"})


def _class(layer: Any) -> str:
    return type(layer).__name__


def _fusable_activation(layer: Any) -> bool:
    """A ReLU or ReLU6 the converters fuse into the op before it."""
    name = _class(layer)
    if name == "ReLU":
        return (layer.max_value in (None, 6.0, 6) and not float(layer.negative_slope) and not float(layer.threshold))
    if name == "Activation":
        return getattr(layer.activation, "__name__", "") in ("relu", "relu6")
    return False


def _consumers(model: Any) -> dict[int, list[Any]]:
    """Layer id -> the layers of `model` that read its output."""
    inside = {id(layer) for layer in model.layers}
    out: dict[int, list[Any]] = {}
    for layer in model.layers:
        out[id(layer)] = [node.operation for node in layer._outbound_nodes  # noqa: SLF001 - the graph's edges
                          if id(node.operation) in inside]
    return out


def _activation_name(layer: Any) -> str:
    act = getattr(layer, "activation", None)
    return getattr(act, "__name__", "linear") if act is not None else "linear"


@dataclasses.dataclass
class QuantizedModel:
    """The fake-quantized model and what was done to make it."""

    model: Any
    folded: list[tuple[str, str]]
    quantized_weights: list[str]
    activation_ranges: list[str]
    left_float: list[str]


def quantize_model(model: Any, options: QatOptions = QatOptions()) -> QuantizedModel:
    """The fake-quantized twin of a functional Keras model (weights copied, BatchNorm folded).

    Raises:
        InputError: a model that is not functional (a subclassed model has no graph to rebuild).
    """
    if not hasattr(model, "_outbound_nodes") or not hasattr(model, "inputs") or model.inputs is None \
            or _class(model) not in ("Functional", "Sequential"):
        raise InputError(f"model {getattr(model, 'name', '?')}", expected="a functional or Sequential Keras model",
                         found=_class(model), hint="QAT rebuilds the layer graph; a subclassed model has none")
    consumers = _consumers(model)
    producer: dict[int, Any] = {}
    for layer in model.layers:
        for node in layer._inbound_nodes:  # noqa: SLF001
            parents = [p.operation for p in node.parent_nodes]
            if len(parents) == 1:
                producer[id(layer)] = parents[0]
    fold: dict[int, Any] = {}  # weighted layer id -> its BatchNormalization
    folded_bn: set[int] = set()
    if options.fold_batchnorm:
        for layer in model.layers:
            if _class(layer) in QUANT_CLASSES and _activation_name(layer) == "linear":
                after = consumers[id(layer)]
                if len(after) == 1 and _class(after[0]) == "BatchNormalization" and \
                        after[0].axis in (-1, len(layer.output.shape) - 1):
                    fold[id(layer)] = after[0]
                    folded_bn.add(id(after[0]))

    def effective(layer: Any) -> Any:
        """The layer whose op the converter fuses `layer` into (a folded BN stands for its conv)."""
        return producer.get(id(layer)) if id(layer) in folded_bn else layer

    def fused_into_next(layer: Any) -> bool:
        after = consumers[id(layer)]
        if id(layer) in fold:
            after = consumers[id(fold[id(layer)])]
        return len(after) == 1 and _fusable_activation(after[0]) and _class(effective(layer)) in FUSED_INTO

    mapping: dict[int, Any] = {}
    record = QuantizedModel(model=None, folded=[], quantized_weights=[], activation_ranges=[], left_float=[])

    def clone(layer: Any) -> Any:
        if id(layer) not in consumers:  # an op of the graph that is not a layer (x + constant): as it is
            return layer
        name = _class(layer)
        if name in QUANT_CLASSES:
            config = layer.get_config()
            config["activation"] = "linear"
            if id(layer) in fold:
                config["use_bias"] = True
            new = QUANT_CLASSES[name].from_config(config)
        elif id(layer) in folded_bn:
            new = keras.layers.Identity(name=layer.name)
        else:
            new = layer.__class__.from_config(layer.get_config())
        mapping[id(new)] = layer
        return new

    def quantizer(name: str, decay: float | None = None) -> Any:
        record.activation_ranges.append(name)
        return ActivationQuantizer(options.ema_decay if decay is None else decay, name=f"{name}_quant")

    def call(new: Any, *args: Any, **kwargs: Any) -> Any:
        old = mapping.get(id(new))
        if old is None:  # an op of the functional graph that is not a layer (x + constant): as it is
            return new(*args, **kwargs)
        name = _class(old)
        # a folded BatchNormalization is the identity (its scale and shift are in the weights)
        out = args[0] if id(old) in folded_bn else new(*args, **kwargs)
        if name in QUANT_CLASSES:
            record.quantized_weights.append(old.name)
            activation = _activation_name(old)
            if activation == "softmax":
                # int8 softmax reads quantized logits and writes the fixed range [0, 1) itself
                return keras.layers.Activation("softmax", name=f"{old.name}_softmax")(quantizer(old.name)(out))
            if activation != "linear":
                fused = activation in ("relu", "relu6")
                if not fused:
                    out = quantizer(f"{old.name}_preact")(out)
                out = keras.layers.Activation(activation, name=f"{old.name}_{activation}")(out)
                return quantizer(old.name)(out)
            if id(old) in fold or fused_into_next(old):
                return out  # its range is taken after the folded BN / the fused ReLU
            return quantizer(old.name)(out)
        if id(old) in folded_bn:
            return out if fused_into_next(producer[id(old)]) else quantizer(old.name)(out)
        if name in SAME_SCALE:
            return out
        if name == "Add" and fused_into_next(old):
            return out
        if name not in ("ReLU", "Activation", "Add", "GlobalAveragePooling2D", "GlobalAveragePooling1D",
                        "AveragePooling2D", "AveragePooling1D", "Concatenate", "Multiply", "Subtract", "Rescaling",
                        "Normalization"):
            record.left_float.append(f"{old.name} ({name}: output range learnt; its inner tensors calibrated)")
        if isinstance(out, (list, tuple)):
            return out
        return quantizer(old.name)(out)

    with keras.name_scope("qat"):
        body = keras.models.clone_model(model, clone_function=clone, call_function=call)
    for new in body.layers:
        old = mapping.get(id(new))
        if old is None or not old.weights:
            continue
        if id(old) in folded_bn:
            continue
        if id(old) in fold:
            kernel, bias = _fold(old, fold[id(old)])
            new.kernel.assign(kernel)
            new.bias.assign(bias)
            record.folded.append((old.name, fold[id(old)].name))
        elif isinstance(new, _QuantizedWeights):
            new.kernel.assign(old.kernel)
            if old.use_bias:
                new.bias.assign(old.bias)
        else:
            new.set_weights(old.get_weights())
    inputs = [keras.Input(shape=tuple(t.shape[1:]), dtype=t.dtype, name=t.name.split(":")[0]) for t in model.inputs]
    quantized_inputs = [quantizer(f"input_{i}" if len(inputs) > 1 else "input", 0.0)(x) for i, x in enumerate(inputs)]
    outputs = body(quantized_inputs[0] if len(quantized_inputs) == 1 else quantized_inputs)
    record.model = keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs, name=f"{model.name}_qat")
    sync_weight_ranges(record.model)
    return record


def _fold(layer: Any, bn: Any) -> tuple[np.ndarray, np.ndarray]:
    """`layer`'s kernel and bias with `bn` (moving statistics) folded in."""
    weights = layer.get_weights()
    kernel = np.asarray(weights[0], np.float64)
    bias = np.asarray(weights[1], np.float64) if layer.use_bias else 0.0
    params = {w.path.split("/")[-1]: np.asarray(keras.ops.convert_to_numpy(w), np.float64) for w in bn.weights}
    gamma = params.get("gamma", 1.0)
    beta = params.get("beta", 0.0)
    scale = gamma / np.sqrt(params["moving_variance"] + bn.epsilon)
    if _class(layer) == "DepthwiseConv2D":
        kernel = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])
    else:
        kernel = kernel * scale
    bias = (bias - params["moving_mean"]) * scale + beta
    channels = kernel.shape[2] * kernel.shape[3] if _class(layer) == "DepthwiseConv2D" else kernel.shape[-1]
    return kernel.astype(np.float32), np.broadcast_to(bias, (channels,)).astype(np.float32)


def calibrate(model: Any, batches: Any, count: int) -> int:
    """Initialize the activation ranges: `count` batches through the model in training mode
    (no weight update; a BatchNormalization left unfolded is run in inference mode).

    Returns the number of samples seen.
    """
    quantizers = [layer for layer in _all_layers(model) if isinstance(layer, ActivationQuantizer)]
    seen = 0
    for i, (x, _y) in enumerate(batches):
        if i >= count:
            break
        _calibration_pass(model, quantizers, x)
        seen += int(x.shape[0])
    return seen


def _calibration_pass(model: Any, quantizers: list[Any], x: Any) -> None:
    # Only the range variables may move: run in inference mode for every other layer, and
    # update each quantizer from the tensor it sees by calling it in training mode.
    originals = {}
    for q in quantizers:
        originals[id(q)] = q.call

        def wrapped(inputs: Any, training: Any = None, _q: Any = q) -> Any:
            return ActivationQuantizer.call(_q, inputs, training=True)

        q.call = wrapped
    try:
        model(x, training=False)
    finally:
        for q in quantizers:
            del q.call


def _all_layers(model: Any) -> list[Any]:
    out = []
    for layer in model.layers:
        out.append(layer)
        if hasattr(layer, "layers"):
            out += _all_layers(layer)
    return out


def activation_ranges(model: Any) -> dict[str, list[float]]:
    """Each activation quantizer's learnt range ``[min, max]``."""
    return {layer.name: [round(float(layer.range_min.numpy()), 6), round(float(layer.range_max.numpy()), 6)]
            for layer in _all_layers(model) if isinstance(layer, ActivationQuantizer)}


def export_saved_model(model: Any, folder: Path) -> None:
    """The QAT model as a SavedModel with a ``serving_default`` signature (inference mode):
    the graph with its FakeQuant ops, which `edgekit convert` reads like any SavedModel.

    Keras' export archive tracks the inference endpoint alone: no training function assigns
    the range variables, so the converter freezes them into the constants it reads.
    """
    from edgekit.keras_env import stdout_to_stderr

    sync_weight_ranges(model)
    spec = tf.TensorSpec([None, *model.inputs[0].shape[1:]], tf.float32, name=model.inputs[0].name.split(":")[0])
    with stdout_to_stderr():
        model.export(str(folder), format="tf_saved_model", input_signature=[spec], verbose=False)


def summary_counts(record: QuantizedModel) -> Mapping[str, Any]:
    return {"folded_batchnorm": [list(pair) for pair in record.folded],
            "weights_per_channel": record.quantized_weights,
            "activation_ranges": len(record.activation_ranges),
            "left_float_inside": record.left_float}
