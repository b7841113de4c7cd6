"""Structured (channel) pruning: remove whole filters and units and rebuild a thinner Keras model.

`plan_channels` walks a functional (or Sequential) Keras 3 graph and sorts the output
channels of every Conv/Dense layer into *channel groups*: the channels one producer
makes, followed through the layers that keep them apart (BatchNormalization,
activations, dropout, pooling, padding, DepthwiseConv, Flatten into a Dense) and joined
where tensors meet at an ``Add``/``Multiply``/... (channels that are added together are
removed together from every producer feeding the add). A group is thinned unless it
reaches a model output or input, meets a layer or op edgekit cannot resize (Reshape,
Concatenate, attention, LayerNormalization, Lambda, ``x + constant``...), or contains a
layer listed in ``skip``; every Conv/Dense/Depthwise layer left alone is listed with a
reason. Within a group the channels with the lowest importance go.

`rebuild` clones the model with fewer filters/units in the producers (names, dtype
policies and regularizers kept) and copies the weights sliced: a producer's output
axis, a consumer's input axis (Conv, Dense, SeparableConv, ConvTranspose, and the input
kernel of LSTM/GRU/SimpleRNN), BatchNormalization and DepthwiseConv by their group.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from edgekit.errors import InputError
from edgekit.prune.options import IMPORTANCE

# Activations that act on each channel alone (softmax and friends mix them).
_ELEMENTWISE = frozenset({
    "linear", "relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "sigmoid", "hard_sigmoid",
    "log_sigmoid", "tanh", "hard_tanh", "swish", "silu", "hard_swish", "hard_silu", "mish", "softplus",
    "softsign", "exponential", "sparse_plus", "squareplus", "soft_shrink", "hard_shrink", "tanh_shrink",
    "threshold",
})
_FOLLOWERS = (  # layers whose output channel c is a function of input channel c alone
    "ReLU", "LeakyReLU", "ELU", "Identity", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
    "SpatialDropout3D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
    "AveragePooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D", "ZeroPadding1D", "ZeroPadding2D",
    "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D", "UpSampling1D", "UpSampling2D",
    "UpSampling3D", "RepeatVector",
)
_MERGES = ("Add", "Subtract", "Multiply", "Maximum", "Minimum", "Average")
_CONVS = ("Conv1D", "Conv2D", "Conv3D")
_TRANSPOSED = ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")
_SEPARABLE = ("SeparableConv1D", "SeparableConv2D")
_DEPTHWISE = ("DepthwiseConv1D", "DepthwiseConv2D")
_RECURRENT = ("LSTM", "GRU", "SimpleRNN")
_LISTED = 6  # layers named in the "nothing to prune" error before "and N more"


@dataclasses.dataclass(frozen=True)
class ChannelGroup:
    """Output channels shared by one or more producers, thinned together.

    Attributes:
        producers: names of the layers whose output channels (filters, units) these are,
            e.g. the convolutions feeding one ``Add``, in graph order.
        channels: the number of channels before pruning.
        keep: sorted indices of the channels kept.
    """

    producers: tuple[str, ...]
    channels: int
    keep: tuple[int, ...]

    def to_dict(self) -> dict:
        """A JSON-ready summary: producers, channels before and after."""
        return {"producers": list(self.producers), "before": self.channels, "after": len(self.keep)}


@dataclasses.dataclass(frozen=True)
class ChannelPlan:
    """What `rebuild` removes, and what it leaves alone and why.

    Attributes:
        groups: the channel groups that will be thinned.
        left_alone: ``(layer name, reason)`` for every Conv/Dense/Depthwise layer not thinned.
        fraction: the fraction of channels removed from each group.
        importance: how channels were ranked, one of `IMPORTANCE`.
        notes: remarks on the ranking (``bn`` falling back to ``l1`` where a producer has
            no BatchNormalization right after it).
    """

    groups: tuple[ChannelGroup, ...]
    left_alone: tuple[tuple[str, str], ...]
    fraction: float
    importance: str
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """A JSON-ready form of the plan (without the kept indices)."""
        return {
            "fraction": self.fraction,
            "importance": self.importance,
            "groups": [group.to_dict() for group in self.groups],
            "left_alone": [{"layer": name, "reason": reason} for name, reason in self.left_alone],
            "notes": list(self.notes),
        }


def prune_channels(model: Any, fraction: float, **options: Any) -> tuple[Any, ChannelPlan]:
    """Plan and rebuild in one step.

    Args:
        model: a built functional or Sequential Keras 3 model.
        fraction: the fraction of channels removed from each prunable group, in (0, 1).
        **options: `plan_channels` keyword options (importance, skip, round_to, min_channels).

    Returns:
        The thinner model (weights copied from `model`) and the plan it follows.

    Raises:
        InputError: see `plan_channels`.
    """
    plan = plan_channels(model, fraction, **options)
    return rebuild(model, plan), plan


def plan_channels(model: Any, fraction: float, *, importance: str = "l1", skip: Sequence[str] = (),
                  round_to: int = 1, min_channels: int = 1) -> ChannelPlan:
    """Choose the channels to remove from each prunable group of `model`.

    Each group keeps ``channels - round(fraction * channels)`` channels, rounded to a
    multiple of `round_to` (never more than it has); a group where that removes nothing
    is left alone. Channels are ranked by the L1 or L2 norm of each producer's filter,
    or (``bn``) by the |gamma| of the BatchNormalization right after the producer
    (L1 where there is none); scores are divided by each producer's mean before the
    producers of a group are summed, so a large layer does not drown a small one.

    Args:
        model: a built functional or Sequential Keras 3 model.
        fraction: the fraction of channels removed from each group, in (0, 1).
        importance: one of `IMPORTANCE`.
        skip: names of producer layers (and so their groups) to leave alone.
        round_to: kept channel counts are multiples of this (e.g. 8 for SIMD widths).
        min_channels: the fewest channels a thinned group may keep.

    Returns:
        The plan.

    Raises:
        InputError: a bad argument, a layer in `skip` the model does not have, a
            fraction that would leave a group with fewer than `min_channels`
            channels, or a model with nothing edgekit can thin.
    """
    keras = _keras()
    _check_options(fraction, importance, round_to, min_channels)
    graph = _Graph(keras, model, skip)
    left_alone: list[tuple[str, str]] = list(graph.unsupported.items())
    thin: list[tuple[int, int]] = []  # (root space, channels kept)
    short: list[tuple[int, int]] = []
    for root in graph.roots():
        space = graph.spaces[root]
        if space.blocks:
            left_alone += [(name, graph.reason(root, name)) for name in space.producers]
            continue
        kept = _kept(space.channels, fraction, round_to)
        if kept >= space.channels:
            rounded = f" rounded to a multiple of {round_to}" if round_to > 1 else ""
            left_alone += [(name, f"keeps all its {space.channels} {graph.unit(name)} at fraction {fraction:g}"
                                  f"{rounded}") for name in space.producers]
        elif kept < min_channels:
            short.append((root, kept))
        else:
            thin.append((root, kept))
    if short:
        raise _too_few_error(graph, fraction, round_to, min_channels, short)
    if not thin:
        raise _nothing_error(left_alone)
    notes: list[str] = []
    groups = []
    thinned_roots = set()
    for root, kept in thin:
        space = graph.spaces[root]
        score = sum(_normalized(_scores(graph, name, importance, notes)) for name in space.producers)
        order = sorted(range(space.channels), key=lambda c: (-float(score[c]), c))
        groups.append(ChannelGroup(tuple(space.producers), space.channels, tuple(sorted(order[:kept]))))
        thinned_roots.add(root)
    for name, space_id in graph.depthwise.items():
        root = graph.find(space_id)
        if root not in thinned_roots:
            producers = graph.spaces[root].producers
            if name in graph.skip:
                reason = "listed in skip"
            elif producers:
                reason = f"follows the channels of {producers[0]}, which is left alone"
            else:
                reason = "its input channels come from a layer or input edgekit does not thin"
            left_alone.append((name, reason))
    left_alone.sort(key=lambda item: graph.position.get(item[0], len(graph.position)))
    return ChannelPlan(tuple(groups), tuple(left_alone), float(fraction), importance, tuple(notes))


def rebuild(model: Any, plan: ChannelPlan) -> Any:
    """A thinner copy of `model` that follows `plan`, with the weights sliced from `model`.

    Layer names, dtype policies, regularizers and the compile configuration (if any)
    are kept; the input and output shapes are those of `model`.

    Args:
        model: the model the plan was made for.
        plan: from `plan_channels`.

    Returns:
        A new Keras model (functional, or Sequential for a Sequential `model`).

    Raises:
        InputError: the plan does not fit the model (other layers, groups or channel counts).
    """
    keras = _keras()
    graph = _Graph(keras, model, ())
    keep: dict[int, Any] = {}
    widths: dict[str, int] = {}
    for group in plan.groups:
        root = _check_group(graph, group)
        keep[root] = group.keep
        widths.update({name: len(group.keep) for name in group.producers})

    def clone(operation: Any) -> Any:
        if not isinstance(operation, keras.layers.Layer):
            return operation  # a stateless keras op (x + constant): reused as is
        config = operation.get_config()
        if operation.name in widths:
            config["units" if "units" in config else "filters"] = widths[operation.name]
        if isinstance(operation, keras.layers.Lambda):
            # the model is already in memory: its code was trusted when it was loaded
            return type(operation).from_config(config, safe_mode=False)
        return type(operation).from_config(config)

    inputs = None
    if not isinstance(model, keras.Sequential):  # clone_model would name the inputs after their tensors
        inputs = keras.tree.map_structure(
            lambda tensor: keras.Input(batch_shape=tensor.shape, dtype=tensor.dtype,
                                       name=tensor._keras_history.operation.name), model.input)
    thinner = keras.models.clone_model(model, input_tensors=inputs, clone_function=clone)
    for layer in model.layers:
        if layer.weights:
            thinner.get_layer(layer.name).set_weights(graph.sliced_weights(layer, keep))
    return thinner


# ---------------------------------------------------------------------------- the graph


@dataclasses.dataclass
class _Block:
    """Why a channel group cannot be thinned: said of `owner` itself, and of the others in its group."""

    owner: str
    own: str
    other: str


@dataclasses.dataclass
class _Space:
    """A set of channels (union-find node): who produces them and what stops their removal."""

    channels: int
    parent: int
    producers: list[str] = dataclasses.field(default_factory=list)
    blocks: list[_Block] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class _Layout:
    """How a tensor's last axis maps onto a space's channels.

    Index ``(p * channels + c) * inner + i`` holds channel ``c``: ``outer`` counts the
    positions a Flatten folded in, ``inner`` the depth multiplier of DepthwiseConvs.
    """

    space: int
    outer: int = 1
    inner: int = 1


class _Graph:
    """Channel groups of a functional graph, and the slicing of each layer's weights."""

    def __init__(self, keras: Any, model: Any, skip: Sequence[str]) -> None:
        self.keras = keras
        graph = _functional(keras, model)
        self.spaces: list[_Space] = []
        self.layouts: dict[int, _Layout] = {}  # id(KerasTensor) -> layout
        self.made_by: dict[int, str] = {}  # id(KerasTensor) -> name of the producer that made it
        self.input_of: dict[str, _Layout] = {}  # weighted layer -> layout of its input
        self.producer: dict[str, int] = {}  # producer name -> its space
        self.depthwise: dict[str, int] = {}  # depthwise layer -> the space it follows
        self.kind: dict[str, str] = {}
        self.layers: dict[str, Any] = {}
        self.bn_after: dict[str, Any] = {}  # producer -> BatchNormalization right after it
        self.unsupported: dict[str, str] = {}  # Conv/Dense-like layers edgekit cannot resize
        self.position: dict[str, int] = {}
        self.skip = set(skip)
        nodes = [node for depth in sorted(graph._nodes_by_depth, reverse=True)
                 for node in graph._nodes_by_depth[depth]]
        self.calls = Counter(id(node.operation) for node in nodes)
        self.outputs = {id(tensor) for tensor in graph.outputs}
        for node in nodes:
            operation = node.operation
            self.position.setdefault(operation.name, len(self.position))
            if isinstance(operation, keras.layers.Layer):
                self.layers[operation.name] = operation
            self._visit(operation, list(node.input_tensors), list(node.outputs))
        unknown = sorted(self.skip - set(self.producer) - set(self.depthwise) - set(self.unsupported))
        if unknown:
            names = list(self.producer)
            listed = ", ".join(names[:_LISTED]) + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")
            raise InputError("layers to skip", expected="names of the model's Conv or Dense layers",
                             found=", ".join(unknown), hint=f"the model's Conv and Dense layers are {listed or 'none'}")

    # union-find over spaces

    def new_space(self, channels: Any, block: _Block | None = None, producer: str | None = None) -> int:
        space = _Space(int(channels or 0), len(self.spaces))
        if producer is not None:
            space.producers.append(producer)
        if block is not None:
            space.blocks.append(block)
        self.spaces.append(space)
        return space.parent

    def find(self, space: int) -> int:
        while self.spaces[space].parent != space:
            self.spaces[space].parent = self.spaces[self.spaces[space].parent].parent
            space = self.spaces[space].parent
        return space

    def union(self, a: int, b: int) -> int:
        a, b = self.find(a), self.find(b)
        if a == b:
            return a
        a, b = min(a, b), max(a, b)
        self.spaces[b].parent = a
        self.spaces[a].producers += self.spaces[b].producers
        self.spaces[a].blocks += self.spaces[b].blocks
        return a

    def block(self, space: int, block: _Block) -> None:
        self.spaces[self.find(space)].blocks.append(block)

    def roots(self) -> list[int]:
        """Spaces with producers, in graph order."""
        roots = {self.find(space) for space in self.producer.values()}
        return sorted(roots, key=lambda root: self.position[self.spaces[root].producers[0]])

    def reason(self, root: int, name: str) -> str:
        """Why `name`'s group is left alone, in plain words."""
        blocks = self.spaces[root].blocks
        own = [block.own for block in blocks if block.owner == name]
        return own[0] if own else blocks[0].other

    def unit(self, name: str) -> str:
        return "units" if self.kind.get(name) == "dense" else "filters"

    # the walk

    def _visit(self, operation: Any, inputs: list[Any], outputs: list[Any]) -> None:
        keras = self.keras
        name = operation.name
        if isinstance(operation, keras.layers.InputLayer):
            for tensor in outputs:
                space = self.new_space(tensor.shape[-1], _Block(name, "is a model input",
                                                                f"its channels are tied to the model input {name}"))
                self._set(operation, tensor, _Layout(space))
            return
        kind, why = self._classify(operation, inputs)
        self.kind[name] = kind
        if kind == "unknown":
            self._unknown(operation, inputs, outputs, why)
            return
        layout = self.layouts[id(inputs[0])]
        if kind in ("conv", "transposed", "separable", "dense"):
            self.input_of[name] = layout
            space = self.new_space(outputs[0].shape[-1], producer=name)
            self.producer[name] = space
            self.made_by[id(outputs[0])] = name
            self._set(operation, outputs[0], _Layout(space))
            activation = operation.get_config().get("activation")
            if name in self.skip:
                self.block(space, _Block(name, "listed in skip", f"in a group with {name} (listed in skip)"))
            elif not isinstance(activation, str) or activation not in _ELEMENTWISE:
                own = f"its activation {activation!r} mixes its {self.unit(name)}"
                self.block(space, _Block(name, own, f"in a group with {name} ({own})"))
        elif kind == "recurrent":
            self.input_of[name] = layout
            label = f"in a group with {name} ({type(operation).__name__}, not rebuildable)"
            for tensor in outputs:
                self._set(operation, tensor, _Layout(self.new_space(tensor.shape[-1], _Block(name, label, label))))
        elif kind == "merge":
            layouts = [self.layouts[id(tensor)] for tensor in inputs]
            shapes = {(item.outer, item.inner, tensor.shape[-1])
                      for item, tensor in zip(layouts, inputs, strict=True)}
            if len(shapes) != 1:
                self._unknown(operation, inputs, outputs, "meets channels laid out differently")
                return
            space = layouts[0].space
            for item in layouts[1:]:
                space = self.union(space, item.space)
            self._set(operation, outputs[0], _Layout(space, layouts[0].outer, layouts[0].inner))
        elif kind == "depthwise":
            self.input_of[name] = layout
            self.depthwise[name] = layout.space
            if name in self.skip:
                self.block(layout.space, _Block(name, "listed in skip", f"in a group with {name} (listed in skip)"))
            multiplier = int(operation.depth_multiplier)
            self._set(operation, outputs[0], _Layout(layout.space, layout.outer, layout.inner * multiplier))
        elif kind == "flatten":
            positions = math.prod(int(dim) for dim in inputs[0].shape[1:-1])
            self._set(operation, outputs[0], _Layout(layout.space, layout.outer * positions, layout.inner))
        else:  # "follow", "batchnorm"
            if kind == "batchnorm":
                self.input_of[name] = layout
                producer = self.made_by.get(id(inputs[0]))
                if producer is not None and operation.scale:
                    self.bn_after.setdefault(producer, operation)
            self._set(operation, outputs[0], layout)

    def _set(self, operation: Any, tensor: Any, layout: _Layout) -> None:
        self.layouts[id(tensor)] = layout
        if id(tensor) in self.outputs:
            self.block(layout.space, _Block(operation.name, "its output is the model's output",
                                            f"its channels reach the model's output ({operation.name})"))

    def _unknown(self, operation: Any, inputs: list[Any], outputs: list[Any], why: str) -> None:
        name = operation.name
        cls = type(operation).__name__
        what = f"{cls} ({name})" if isinstance(operation, self.keras.layers.Layer) else f"the Keras op {name} ({cls})"
        if isinstance(operation, self.keras.Model):
            what = f"the nested model {name}"
            self.unsupported[name] = "a nested model (a model used as a layer): edgekit does not prune inside it"
        elif any(word in cls for word in ("Conv", "Dense")):
            self.unsupported[name] = f"{cls} {why}"
        for tensor in inputs:
            reason = f"feeds {what}, which {why}"
            self.block(self.layouts[id(tensor)].space, _Block(name, reason, reason))
        for tensor in outputs:
            label = f"in a group with {name} ({cls}, which {why})"
            self._set(operation, tensor, _Layout(self.new_space(tensor.shape[-1], _Block(name, label, label))))

    def _classify(self, operation: Any, inputs: list[Any]) -> tuple[str, str]:
        """The layer's role in the channel walk, or ``("unknown", why)``."""
        keras = self.keras
        cls = type(operation).__name__
        cannot = "edgekit cannot resize"
        if not isinstance(operation, keras.layers.Layer):
            return "unknown", cannot
        if isinstance(operation, keras.Model):
            return "unknown", "edgekit does not prune inside"
        if self.calls[id(operation)] > 1:
            return "unknown", "is called more than once (shared)"
        if not inputs or any(id(tensor) not in self.layouts for tensor in inputs):
            return "unknown", cannot
        if getattr(operation, "data_format", "channels_last") != "channels_last":
            return "unknown", "has channels first, which edgekit cannot resize"
        if type(operation) in _types(keras, _MERGES):
            return "merge", ""
        if len(inputs) != 1:
            return "unknown", cannot
        if getattr(operation, "quantization_mode", None) or getattr(operation, "lora_enabled", False):
            return "unknown", "is quantized or carries LoRA weights, which edgekit cannot resize"
        if type(operation) in _types(keras, _CONVS):
            return ("conv", "") if operation.groups == 1 else ("unknown", "is a grouped convolution, which "
                                                                          f"{cannot}")
        kinds = ((_TRANSPOSED, "transposed"), (_SEPARABLE, "separable"), (("Dense",), "dense"),
                 (_RECURRENT, "recurrent"), (_FOLLOWERS, "follow"), (_DEPTHWISE, "depthwise"))
        for names, kind in kinds:
            if type(operation) in _types(keras, names):
                return kind, ""
        if cls == "BatchNormalization" and type(operation) is keras.layers.BatchNormalization:
            rank = len(inputs[0].shape)
            return ("batchnorm", "") if operation.axis in (-1, rank - 1) else ("unknown", "normalizes another axis")
        if type(operation) is keras.layers.Activation:
            activation = operation.get_config().get("activation")
            if isinstance(activation, str) and activation in _ELEMENTWISE:
                return "follow", ""
            return "unknown", f"mixes channels ({activation!r}), which {cannot}"
        if type(operation) is keras.layers.Rescaling:
            scalar = _is_scalar(operation.scale) and _is_scalar(operation.offset)
            return ("follow", "") if scalar else ("unknown", f"scales each channel, which {cannot}")
        if type(operation) is keras.layers.Flatten:
            if all(dim is not None for dim in inputs[0].shape[1:]):
                return "flatten", ""
            return "unknown", f"flattens a shape it does not know, which {cannot}"
        return "unknown", cannot

    # the weights

    def index(self, layout: _Layout | None, keep: dict[int, Any], multiplier: int = 1) -> Any:
        """Indices into a tensor's last axis that survive, or None where nothing is removed."""
        import numpy as np

        if layout is None:
            return None
        root = self.find(layout.space)
        if root not in keep:
            return None
        kept = np.asarray(keep[root], dtype=np.int64)
        channels = self.spaces[root].channels
        inner = layout.inner * multiplier
        positions = np.arange(layout.outer)[:, None, None] * channels
        return ((positions + kept[None, :, None]) * inner + np.arange(inner)[None, None, :]).reshape(-1)

    def sliced_weights(self, layer: Any, keep: dict[int, Any]) -> list[Any]:
        """`layer`'s weights with the removed channels cut out of every axis they index."""
        import numpy as np

        name = layer.name
        kind = self.kind.get(name, "unknown")
        into = self.index(self.input_of.get(name), keep)
        out = self.index(_Layout(self.producer[name]), keep) if name in self.producer else None
        rules: dict[str, list[tuple[int, Any]]] = {}
        if kind == "conv":
            rules = {"kernel": [(-2, into), (-1, out)], "bias": [(0, out)]}
        elif kind == "transposed":
            rules = {"kernel": [(-1, into), (-2, out)], "bias": [(0, out)]}
        elif kind == "dense":
            rules = {"kernel": [(0, into), (1, out)], "bias": [(0, out)]}
        elif kind == "separable":
            middle = self.index(self.input_of[name], keep, int(layer.depth_multiplier))
            rules = {"depthwise_kernel": [(-2, into)], "pointwise_kernel": [(-2, middle), (-1, out)],
                     "bias": [(0, out)]}
        elif kind == "depthwise":
            middle = self.index(self.input_of[name], keep, int(layer.depth_multiplier))
            rules = {"kernel": [(-2, into)], "bias": [(0, middle)]}
        elif kind == "recurrent":
            rules = {"kernel": [(0, into)]}
        values = []
        for variable, value in zip(layer.weights, layer.get_weights(), strict=True):
            cuts = [(0, into)] if kind == "batchnorm" else rules.get(variable.name, [])
            for axis, indices in cuts:
                if indices is not None:
                    value = np.take(value, indices, axis=axis)
            values.append(value)
        return values


# ---------------------------------------------------------------------------- helpers


def _keras() -> Any:
    from edgekit.keras_env import import_keras

    return import_keras()


def _types(keras: Any, names: Sequence[str]) -> set[type]:
    return {getattr(keras.layers, name) for name in names if hasattr(keras.layers, name)}


def _is_scalar(value: Any) -> bool:
    import numpy as np

    return bool(np.ndim(value) == 0)


def _functional(keras: Any, model: Any) -> Any:
    """The functional graph of `model` (a Sequential model's inner one)."""
    if isinstance(model, keras.Sequential):
        if getattr(model, "_functional", None) is None:
            raise InputError(f"Sequential model {model.name}", expected="a built model with a known input shape",
                             found="a model without an Input", hint="start it with keras.Input(shape=...)")
        return model._functional
    if not isinstance(model, keras.Model) or not hasattr(model, "_nodes_by_depth"):
        raise InputError("model to prune", expected="a functional or Sequential Keras 3 model",
                         found=type(model).__name__, hint="subclassed models have no graph edgekit can rebuild")
    return model


def _check_options(fraction: Any, importance: Any, round_to: Any, min_channels: Any) -> None:
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise InputError(f"channel fraction {fraction!r}",
                         expected="a fraction of channels to remove, greater than 0 and less than 1",
                         found=repr(fraction), hint="e.g. 0.25 removes a quarter of the filters of each pruned layer")
    if importance not in IMPORTANCE:
        raise InputError(f"unrecognized importance={importance!r}", expected=f"one of {list(IMPORTANCE)}",
                         found=repr(importance))
    for label, value in (("round_to", round_to), ("min_channels", min_channels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"channel pruning {label}", expected="a whole number of at least 1", found=repr(value))


def _kept(channels: int, fraction: float, round_to: int) -> int:
    """Channels kept of `channels` when `fraction` of them go (half-way rounds up, not to even)."""
    kept = channels - math.floor(fraction * channels + 0.5)
    if round_to > 1:
        kept = min(channels, math.floor(kept / round_to + 0.5) * round_to)
    return kept


def _largest_fraction(graph: _Graph, fraction: float, round_to: int, min_channels: int) -> float | None:
    """The largest fraction below `fraction`, in hundredths, that thins something and empties nothing."""
    sizes = [graph.spaces[root].channels for root in graph.roots() if not graph.spaces[root].blocks]
    for hundredths in range(math.ceil(fraction * 100) - 1, 0, -1):
        candidate = hundredths / 100
        kept = [(_kept(size, candidate, round_to), size) for size in sizes]
        if all(k >= size or k >= min_channels for k, size in kept) and any(k < size for k, size in kept):
            return candidate
    return None


def _too_few_error(graph: _Graph, fraction: float, round_to: int, min_channels: int,
                   short: list[tuple[int, int]]) -> InputError:
    root, kept = short[0]
    space = graph.spaces[root]
    name = space.producers[0]
    if len(space.producers) > 1:
        name += f" (and {len(space.producers) - 1} layer{'s' if len(space.producers) > 2 else ''} added to it)"
    best = _largest_fraction(graph, fraction, round_to, min_channels)
    hint = f"use a fraction of at most {best:g}" if best is not None else f"lower min_channels ({min_channels})"
    hint += f", or list {space.producers[0]} in skip"
    others = f" ({len(short) - 1} other layer group{'s' if len(short) > 2 else ''} too)" if len(short) > 1 else ""
    plural = "s" if min_channels > 1 else ""
    return InputError(f"channel fraction {fraction:g}",
                      expected=f"a fraction that keeps at least {min_channels} channel{plural} in every pruned layer",
                      found=f"it would leave {name} with {kept} of {space.channels} {graph.unit(space.producers[0])}"
                            f"{others}", hint=hint)


def _nothing_error(left_alone: list[tuple[str, str]]) -> InputError:
    listed = "; ".join(f"{name}: {reason}" for name, reason in left_alone[:_LISTED])
    if len(left_alone) > _LISTED:
        listed += f"; and {len(left_alone) - _LISTED} more"
    return InputError("channel pruning", expected="at least one Conv or Dense layer whose channels can be removed",
                      found=f"none ({listed or 'the model has no Conv or Dense layers'})",
                      hint="prune by magnitude (sparsity) instead")


def _check_group(graph: _Graph, group: ChannelGroup) -> int:
    """The space `group` names in `graph`, or an error when the plan was made for another model."""
    missing = [name for name in group.producers if name not in graph.producer]
    roots = {graph.find(graph.producer[name]) for name in group.producers if name in graph.producer}
    problem = None
    if missing:
        problem = f"no prunable layer {missing[0]}"
    elif len(roots) != 1:
        problem = f"{', '.join(group.producers)} in different channel groups"
    else:
        space = graph.spaces[next(iter(roots))]
        if set(space.producers) != set(group.producers) or space.channels != group.channels:
            problem = f"{group.producers[0]} in a group of {len(space.producers)} with {space.channels} channels"
        elif space.blocks:
            problem = f"{group.producers[0]} cannot be thinned ({space.blocks[0].other})"
        elif not group.keep or sorted(set(group.keep)) != list(group.keep) or not 0 <= group.keep[0] \
                or group.keep[-1] >= space.channels:
            problem = f"kept channels of {group.producers[0]} that are not sorted indices below {space.channels}"
    if problem:
        raise InputError("channel plan", expected="a plan made by plan_channels for this model", found=problem,
                         hint="make the plan from the model you rebuild")
    return next(iter(roots))


def _scores(graph: _Graph, name: str, importance: str, notes: list[str]) -> Any:
    """Per-output-channel importance of one producer."""
    import numpy as np

    layer = graph.layers[name]
    weights = {variable.name: value for variable, value in zip(layer.weights, layer.get_weights(), strict=True)}
    if importance == "bn":
        norm = graph.bn_after.get(name)
        if norm is not None:
            return np.abs(np.asarray(norm.gamma, dtype=np.float64))
        notes.append(f"{name} has no BatchNormalization right after it: ranked by l1 instead of bn")
        importance = "l1"
    kind = graph.kind[name]
    kernel = weights["pointwise_kernel" if kind == "separable" else "kernel"].astype(np.float64)
    if kind == "transposed":
        kernel = np.moveaxis(kernel, -2, -1)
    kernel = kernel.reshape(-1, kernel.shape[-1])
    if importance == "l2":
        return np.sqrt(np.sum(kernel**2, axis=0))
    return np.sum(np.abs(kernel), axis=0)


def _normalized(score: Any) -> Any:
    mean = float(score.mean())
    return score / mean if mean > 0 else score
