"""Unstructured magnitude pruning for Keras 3 models, during fine-tuning with ``model.fit``.

The sparsity follows the polynomial-decay schedule of Zhu & Gupta (2017, "To prune, or
not to prune"): ``s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (n Δt))^3`` for ``t`` in
``[t0, t0 + nΔt]``, held at ``s_f`` afterwards. Every ``Δt`` steps (`Schedule.frequency`)
the masks are recomputed from the current weight magnitudes, either per kernel (``layer``
scope) or with one threshold over all pruned kernels (``global`` scope); the k smallest
magnitudes are masked, ``k = round(s * n)`` exactly, ties included.

How the masks hold: each pruned kernel variable gets a Keras variable *constraint* (the
user's own kernel constraint first, then the mask). Keras 3's ``optimizer.apply`` calls
``variable.constraint`` right after every update inside the compiled train step, so
momentum and Adam cannot bring a pruned weight back and no per-batch Python work is
needed; the mask is a non-trainable ``keras.Variable`` read by the traced step, so a new
mask takes effect without retracing. The constraint is set on the *variable*, not on the
layer's ``kernel_constraint``, so the layer config never carries it; `MagnitudePruner.strip`
restores the original constraints and leaves a plain Keras model.

Gotcha: Keras caches the traced ``model.train_function`` and the constraint is read when
it is traced, so the pruner drops the cached function when it installs and when it removes
the constraints (the next ``fit`` retraces).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from edgekit.errors import InputError
from edgekit.prune.options import SCOPES

PRUNABLE = ("Conv1D", "Conv2D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D", "Dense",
            "Conv2DTranspose", "Conv1DTranspose")
# the weights pruned in each prunable layer type (biases and normalization never are)
_WEIGHTS = {"SeparableConv1D": ("depthwise_kernel", "pointwise_kernel"),
            "SeparableConv2D": ("depthwise_kernel", "pointwise_kernel")}
_MAX_LISTED = 20


def _check_sparsity(value: Any, what: str = "--sparsity") -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not 0.0 <= number < 1.0:  # also rejects NaN
        raise InputError(f"{what} {value}", expected="a sparsity in [0, 1), e.g. 0.8", found=repr(value),
                         hint="the sparsity is the fraction of weights set to zero; 1.0 would remove them all")
    return number


def polynomial_sparsity(step: int, *, begin_step: int, end_step: int, initial: float, final: float,
                        power: int = 3) -> float:
    """The sparsity at `step` on the Zhu & Gupta polynomial-decay schedule.

    Args:
        step: the training step (optimizer updates since pruning started).
        begin_step: ``t0``, where the ramp starts (the sparsity is `initial` up to here).
        end_step: ``t0 + nΔt``, where the ramp ends (the sparsity is `final` from here).
        initial: ``s_i``.
        final: ``s_f``.
        power: the exponent (3 in the paper).

    Returns:
        ``s_f + (s_i - s_f) * (1 - (step - t0) / (end - t0)) ** power``, clamped to the
        ramp's ends.
    """
    if step <= begin_step:
        return float(initial) if end_step > begin_step else float(final)
    if step >= end_step:
        return float(final)
    progress = (step - begin_step) / (end_step - begin_step)
    return float(final + (initial - final) * (1.0 - progress) ** power)


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A polynomial-decay sparsity schedule (Zhu & Gupta 2017).

    Attributes:
        final: the target sparsity ``s_f``, in [0, 1).
        end_step: the step where the target is reached (keyword; required).
        begin_step: the step where pruning starts; no mask is computed before it.
        frequency: steps between mask updates (``Δt``).
        initial: the sparsity at `begin_step` (``s_i``), in [0, final].

    Raises:
        InputError: a value out of range (the message names it).
    """

    final: float
    begin_step: int = 0
    end_step: int = dataclasses.field(kw_only=True)
    frequency: int = 100
    initial: float = 0.0

    def __post_init__(self) -> None:
        _check_sparsity(self.final)
        _check_sparsity(self.initial, "initial sparsity")
        if self.initial > self.final:
            raise InputError(f"initial sparsity {self.initial}", expected=f"at most the final sparsity {self.final}",
                             found=repr(self.initial))
        if int(self.begin_step) < 0:
            raise InputError("pruning begin step", expected="a step >= 0", found=repr(self.begin_step))
        if int(self.end_step) < int(self.begin_step):
            raise InputError("pruning end step", expected=f"a step >= the begin step {self.begin_step}",
                             found=repr(self.end_step), hint="pass end_step, e.g. 70% of the fine-tuning steps")
        if int(self.frequency) < 1:
            raise InputError("pruning frequency", expected="at least 1 step between mask updates",
                             found=repr(self.frequency))

    def sparsity_at(self, step: int) -> float:
        """The target sparsity at `step`."""
        return polynomial_sparsity(step, begin_step=self.begin_step, end_step=self.end_step, initial=self.initial,
                                   final=self.final)

    def slot(self, step: int) -> int | None:
        """Which mask-update period `step` falls in: None before `begin_step`, one number
        per `frequency` steps of the ramp, and one for everything from `end_step` on (so
        the final sparsity is reached at `end_step` even when the ramp is not a multiple
        of `frequency`)."""
        if step < self.begin_step:
            return None
        if step >= self.end_step:
            return -1
        return (step - self.begin_step) // self.frequency


# ---------------------------------------------------------------------------
# layers


def _walk(model: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(name, layer) in topological order, into nested models (named ``outer/inner``)."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _walk(layer, f"{prefix}{layer.name}/")
        else:
            yield f"{prefix}{layer.name}", layer


def _is_kernel(variable: Any) -> bool:
    name = variable.name.rsplit("/", 1)[-1]
    return "kernel" in name or name == "embeddings"


def _kernels(layer: Any) -> list[Any]:
    """The layer's kernel variables (sublayers' included: MultiHeadAttention's projections)."""
    seen: set[int] = set()
    found = []
    for variable in layer.weights:
        if _is_kernel(variable) and id(variable) not in seen:
            seen.add(id(variable))
            found.append(variable)
    return found


@functools.cache
def _prunable_types() -> tuple[type, ...]:
    import keras

    return tuple(getattr(keras.layers, name) for name in PRUNABLE)


def _prunable_type(layer: Any) -> str | None:
    """The PRUNABLE name `layer` is (or, for a subclass, derives from), or None."""
    types = dict(zip(PRUNABLE, _prunable_types(), strict=True))
    for name, cls in types.items():
        if type(layer) is cls:
            return name
    for name, cls in types.items():
        if isinstance(layer, cls):
            return name
    return None


def _why_not(layer: Any) -> str:
    """Why a layer with kernels that is not of a prunable type is left alone."""
    import keras

    kind = type(layer).__name__
    if isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional)):
        return f"{kind}: recurrent kernels are not pruned"
    if isinstance(layer, keras.layers.MultiHeadAttention):
        return f"{kind}: attention projections are not pruned"
    if isinstance(layer, keras.layers.Embedding):
        return f"{kind}: embedding tables are not pruned"
    return f"{kind}: this layer type is not pruned"


def _weight_variables(layer: Any, kind: str) -> list[tuple[str, Any]]:
    names = _WEIGHTS.get(kind, ("kernel",))
    by_name = {v.name.rsplit("/", 1)[-1]: v for v in layer.weights}
    return [(name, by_name[name]) for name in names if name in by_name]


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f", ... ({len(names) - _MAX_LISTED} more)" if len(names) > _MAX_LISTED else "")


def select_layers(model: Any, *, skip_first: bool = True, skip_last: bool = True, skip: Sequence[str] = (),
                  include: Sequence[str] = (), min_weights: int = 0, skip_depthwise: bool = False
                  ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The kernels magnitude pruning would prune in `model`, and the layers it leaves alone.

    First and last are the first and last layers of a `PRUNABLE` type in topological order
    (usually the stem convolution and the classifier). Layers without kernels
    (BatchNormalization, pooling...) are not listed at all.

    Args:
        model: a built Keras 3 model.
        skip_first: leave the first prunable layer dense (pruning the input layer costs
            the most accuracy for the fewest weights).
        skip_last: leave the last prunable layer (the classifier) dense.
        skip: layer names never pruned.
        include: layer names always pruned (overrides `skip_first`, `skip_last`, `min_weights`).
        min_weights: leave layers with fewer prunable weights than this.
        skip_depthwise: leave DepthwiseConv kernels dense: each channel has a handful of
            taps (9 for 3x3), so pruning them removes whole taps for few weights (a DS-CNN at
            80%, 40 epochs of fine-tuning: 1.2 points lost with them pruned, none without).

    Returns:
        ``(pruned, left_alone)``: ``[(layer name, weight name)]`` (``kernel``, or
        ``depthwise_kernel`` and ``pointwise_kernel`` for separable convolutions) and
        ``[(layer name, reason)]``.

    Raises:
        InputError: a name in `skip` or `include` is not a layer of the model (or, for
            `include`, not a prunable one), or a name is in both.
    """
    candidates: list[tuple[str, Any, str]] = []  # (name, layer, prunable type)
    others: list[tuple[str, str]] = []
    all_names = []
    for name, layer in _walk(model):
        all_names.append(name)
        kind = _prunable_type(layer)
        if kind is None:
            if _kernels(layer):
                others.append((name, _why_not(layer)))
            continue
        if not layer.weights:
            continue  # not built: nothing to prune
        candidates.append((name, layer, kind))
    prunable_names = [name for name, _, _ in candidates]
    valid = f"layer names of {model.name!r} with prunable kernels: [{_listed(prunable_names)}]"
    for option, names, allowed in (("skip", skip, set(all_names)), ("include", include, set(prunable_names))):
        unknown = [n for n in names if n not in allowed]
        if unknown:
            known = unknown[0] in all_names
            raise InputError(f"prune {option}: {'unprunable' if known else 'unknown'} layer {unknown[0]!r}",
                             expected=valid, found=", ".join(map(repr, unknown)),
                             hint="the names are those of model.summary()")
    both = sorted(set(skip) & set(include))
    if both:
        raise InputError(f"prune skip/include: layer {both[0]!r}", expected="a layer in skip or in include",
                         found="in both")
    first = prunable_names[0] if prunable_names else None
    last = prunable_names[-1] if prunable_names else None
    pruned: list[tuple[str, str]] = []
    left_alone: list[tuple[str, str]] = []
    for name, layer, kind in candidates:
        reason = None
        size = sum(int(np.prod(v.shape)) for _, v in _weight_variables(layer, kind))
        if getattr(layer, "quantization_mode", None):
            reason = f"{kind}: quantized ({layer.quantization_mode}) weights are not pruned"
        elif getattr(layer, "lora_enabled", False):
            reason = f"{kind}: LoRA is enabled (merge it into the kernel first)"
        elif name in skip:
            reason = "listed in skip"
        elif name in include:
            reason = None
        elif skip_first and name == first:
            reason = "first layer (kept dense by default; --prune-first to include)"
        elif skip_last and name == last:
            reason = "last layer (kept dense by default; --prune-last to include)"
        elif skip_depthwise and kind.startswith("DepthwiseConv"):
            reason = "depthwise kernel: a few taps per channel (kept dense by default; --prune-depthwise to include)"
        elif size < min_weights:
            reason = f"{size} weights, fewer than the minimum of {min_weights}"
        if reason is None:
            pruned.extend((name, weight) for weight, _ in _weight_variables(layer, kind))
        else:
            left_alone.append((name, reason))
    # with the layers of kinds never pruned, in model order
    order = {name: i for i, name in enumerate(all_names)}
    left_alone = sorted(left_alone + others, key=lambda item: order[item[0]])
    return pruned, left_alone


# ---------------------------------------------------------------------------
# measuring


def _count(variable: Any) -> tuple[int, int]:
    values = np.asarray(variable.numpy())
    return int(values.size), int(values.size - np.count_nonzero(values))


def _ratio(zeros: int, weights: int) -> float:
    return round(zeros / weights, 6) if weights else 0.0


def sparsity_of(model: Any) -> dict[str, Any]:
    """Sparsity measured from the weights alone (e.g. of a saved, stripped model).

    Returns:
        ``{"layers": [{"name", "type", "weights", "zeros", "sparsity"}], "overall": float}``
        over every layer that has kernels (embedding tables included); ``overall`` is the
        fraction of all kernel weights that are exactly zero.
    """
    layers = []
    seen: set[int] = set()
    total = zeros_total = 0
    for name, layer in _walk(model):
        weights = zeros = 0
        for variable in _kernels(layer):
            if id(variable) in seen:
                continue  # a shared layer counts once
            seen.add(id(variable))
            size, zero = _count(variable)
            weights += size
            zeros += zero
        if weights:
            layers.append({"name": name, "type": type(layer).__name__, "weights": weights, "zeros": zeros,
                           "sparsity": _ratio(zeros, weights)})
            total += weights
            zeros_total += zeros
    return {"layers": layers, "overall": _ratio(zeros_total, total)}


# ---------------------------------------------------------------------------
# the pruner


class _MaskConstraint:
    """The variable constraint that keeps pruned weights at zero: ``mask * theirs(w)``."""

    def __init__(self, mask: Any, theirs: Any) -> None:
        self.mask = mask
        self.theirs = theirs

    def __call__(self, w: Any) -> Any:
        from keras import ops

        if self.theirs is not None:
            w = self.theirs(w)
        return ops.multiply(w, ops.cast(self.mask, w.dtype))


@dataclasses.dataclass
class _Target:
    layer: str
    weight: str
    kind: str
    variable: Any
    mask: Any
    original_constraint: Any


def _drop_traced_train_function(model: Any) -> None:
    # Keras caches the traced train step; the constraints are read when it is traced
    if getattr(model, "train_function", None) is not None:
        model.train_function = None


class MagnitudePruner:
    """Prunes a built Keras 3 model's kernels by magnitude on a `Schedule`.

    Construct it, pass `callback()` to ``model.fit``, then call `strip()`. Masks start
    all ones; the callback computes them at the first step from `Schedule.begin_step`,
    every `Schedule.frequency` steps along the ramp and at `Schedule.end_step`. The step
    count lives in the pruner (``step``), so a second ``fit`` with a new callback carries on
    along the schedule.

    Args:
        model: the (trained) model, pruned in place.
        schedule: the sparsity schedule.
        scope: ``layer`` (every kernel at the target) or ``global`` (one magnitude
            threshold over all pruned kernels; layers end up at different sparsities).
        skip_first, skip_last, skip, include, skip_depthwise: see `select_layers`.
        block: prune runs of this many consecutive input channels together (by their mean
            magnitude): 1 is element-wise. The input channel is the innermost axis of
            TFLite's Conv, DepthwiseConv and FullyConnected weights, so blocks are
            contiguous zeros in the file (which gzip compresses better) and the pattern
            sparse kernels (e.g. XNNPACK's) favour.

    Attributes:
        pruned: ``[(layer name, weight name)]`` being pruned.
        left_alone: ``[(layer name, reason)]``.
        step: training steps seen by the callbacks.
        updates: ``[(step, sparsity)]``, one per mask update the callbacks made.

    Raises:
        InputError: sparsity out of [0, 1), unknown scope or layer name, nothing to prune.
    """

    def __init__(self, model: Any, schedule: Schedule, *, scope: str = "layer", skip_first: bool = True,
                 skip_last: bool = True, skip: Sequence[str] = (), include: Sequence[str] = (),
                 block: int = 1, skip_depthwise: bool = False) -> None:
        import keras

        if not isinstance(block, int) or isinstance(block, bool) or block < 1:
            raise InputError("pruning block", expected="a whole number >= 1 of consecutive input channels",
                             found=repr(block))
        self.block = block

        _check_sparsity(schedule.final)
        if scope not in SCOPES:
            raise InputError(f"unrecognized pruning scope={scope!r}", expected=f"one of {list(SCOPES)}",
                             found=repr(scope))
        if not model.built or not model.weights:
            raise InputError(f"model {model.name!r}", expected="a built model with weights", found="an unbuilt model",
                             hint="call the model on an input (or load a trained one) before pruning")
        self.model = model
        self.schedule = schedule
        self.scope = scope
        self.pruned, self.left_alone = select_layers(model, skip_first=skip_first, skip_last=skip_last, skip=skip,
                                                     include=include, skip_depthwise=skip_depthwise)
        if not self.pruned:
            found = "; ".join(f"{name}: {reason}" for name, reason in self.left_alone) or "no Conv or Dense layer"
            raise InputError(f"nothing to prune in model {model.name!r}",
                             expected=f"at least one layer of a prunable type ({', '.join(PRUNABLE)})", found=found,
                             hint="--prune-first / --prune-last include the first and last layers")
        self.step = 0
        self.updates: list[tuple[int, float]] = []
        self._last_slot: int | None = None
        self._stripped = False
        layers = dict(_walk(model))
        self._targets: list[_Target] = []
        for layer_name, weight in self.pruned:
            layer = layers[layer_name]
            kind = _prunable_type(layer) or type(layer).__name__
            variable = dict(_weight_variables(layer, kind))[weight]
            mask = keras.Variable(np.ones(variable.shape, dtype=variable.dtype), dtype=variable.dtype,
                                  trainable=False, name=f"{weight}_pruning_mask")
            original = variable.constraint
            variable.constraint = _MaskConstraint(mask, original)
            self._targets.append(_Target(layer_name, weight, kind, variable, mask, original))
        _drop_traced_train_function(model)

    def _check_live(self) -> None:
        if self._stripped:
            raise RuntimeError("MagnitudePruner.strip() was called: the pruner no longer holds masks")

    def callback(self) -> Any:
        """A ``keras.callbacks.Callback`` for ``model.fit`` that updates and applies the masks
        on the schedule (at train batch begin) and applies them once more at train end
        (after an EMA optimizer has written its averages)."""
        self._check_live()
        return _callback_class()(self)

    def apply_masks(self) -> None:
        """Set the masked weights to exactly zero now."""
        from keras import ops

        self._check_live()
        for target in self._targets:
            target.variable.assign(ops.multiply(target.variable.value, target.mask.value))

    def update_masks(self, sparsity: float) -> None:
        """Recompute the masks at `sparsity` from the current magnitudes (without applying them).

        ``layer`` scope masks ``round(sparsity * n)`` weights of each kernel of ``n``;
        ``global`` scope ``round(sparsity * N)`` of all ``N`` pruned weights, by one
        per-element magnitude threshold. Ties are broken so the counts are exact.

        Raises:
            InputError: `sparsity` outside [0, 1).
        """
        self._check_live()
        sparsity = _check_sparsity(sparsity)
        kernels = [np.abs(np.asarray(t.variable.numpy(), dtype=np.float32)) for t in self._targets]
        magnitudes = [_block_scores(k, self.block).ravel() for k in kernels]
        if self.scope == "layer":
            masks = [_smallest_masked(m, int(round(sparsity * m.size))) for m in magnitudes]
        else:
            joined = np.concatenate(magnitudes)
            flat = _smallest_masked(joined, int(round(sparsity * joined.size)))
            masks = np.split(flat, np.cumsum([m.size for m in magnitudes])[:-1])
        for target, kernel, mask in zip(self._targets, kernels, masks, strict=True):
            full = _expand_blocks(mask, kernel.shape, self.block)
            target.mask.assign(full.astype(target.mask.dtype))

    def _on_step(self, step: int) -> None:
        """Update and apply the masks when `step` starts a new schedule period."""
        slot = self.schedule.slot(step)
        if slot is None or slot == self._last_slot:
            return
        sparsity = self.schedule.sparsity_at(step)
        self.update_masks(sparsity)
        self.apply_masks()
        self._last_slot = slot
        self.updates.append((step, sparsity))

    def strip(self) -> None:
        """Apply the final masks and remove the constraints: the model is a plain Keras model
        again (its original kernel constraints back), which saves and loads with
        ``safe_mode=True`` and no custom objects."""
        if self._stripped:
            return
        self.apply_masks()
        for target in self._targets:
            target.variable.constraint = target.original_constraint
        self._targets = []
        self._stripped = True
        _drop_traced_train_function(self.model)

    def report(self) -> dict[str, Any]:
        """What was pruned and how sparse it is, measured from the weights.

        Returns:
            ``{"scope", "target", "achieved" (zeros over the pruned kernels), "overall"
            (zeros over all kernel weights of the model), "layers": [{"name", "type",
            "weights", "zeros", "sparsity"}] (the pruned layers), "left_alone": [{"name",
            "reason"}]}``.
        """
        layers = dict(_walk(self.model))
        rows: dict[str, dict[str, Any]] = {}
        for layer_name, weight in self.pruned:
            layer = layers[layer_name]
            variable = dict(_weight_variables(layer, _prunable_type(layer) or ""))[weight]
            size, zeros = _count(variable)
            row = rows.setdefault(layer_name, {"name": layer_name, "type": type(layer).__name__, "weights": 0,
                                               "zeros": 0})
            row["weights"] += size
            row["zeros"] += zeros
        for row in rows.values():
            row["sparsity"] = _ratio(row["zeros"], row["weights"])
        weights = sum(row["weights"] for row in rows.values())
        zeros = sum(row["zeros"] for row in rows.values())
        return {"scope": self.scope, "target": self.schedule.final, "achieved": _ratio(zeros, weights),
                "overall": sparsity_of(self.model)["overall"], "layers": list(rows.values()),
                "left_alone": [{"name": name, "reason": reason} for name, reason in self.left_alone]}


def _block_scores(magnitude: np.ndarray, block: int) -> np.ndarray:
    """Mean magnitude of each run of `block` consecutive input channels (axis -2 of a Keras
    Conv/Dense kernel; the last run may be shorter); `magnitude` itself when `block` is 1."""
    if block == 1 or magnitude.ndim < 2:
        return magnitude
    moved = np.moveaxis(magnitude, -2, -1)  # (..., out, in)
    size = moved.shape[-1]
    runs = -(-size // block)
    padded = np.zeros((*moved.shape[:-1], runs * block), np.float32)
    padded[..., :size] = moved
    counts = np.full(runs, block, np.float32)
    counts[-1] = size - (runs - 1) * block
    return padded.reshape(*moved.shape[:-1], runs, block).sum(-1) / counts


def _expand_blocks(mask: np.ndarray, shape: tuple[int, ...], block: int) -> np.ndarray:
    """The element mask of a kernel of `shape` from its flat per-run mask (see `_block_scores`)."""
    if block == 1 or len(shape) < 2:
        return mask.reshape(shape)
    moved = (*shape[:-2], shape[-1], shape[-2])
    runs = -(-shape[-2] // block)
    full = np.repeat(mask.reshape(*moved[:-1], runs), block, axis=-1)[..., :shape[-2]]
    return np.moveaxis(full, -1, -2)


def _smallest_masked(magnitudes: np.ndarray, k: int) -> np.ndarray:
    """A 0/1 mask with zeros at exactly `k` of the smallest `magnitudes` (ties broken by index)."""
    mask = np.ones(magnitudes.size, dtype=np.float32)
    if k >= magnitudes.size:
        mask[:] = 0.0
    elif k > 0:
        mask[np.argpartition(magnitudes, k - 1)[:k]] = 0.0
    return mask


@functools.cache
def _callback_class() -> type:
    import keras

    class MagnitudePruning(keras.callbacks.Callback):
        """Steps a `MagnitudePruner` along its schedule during ``model.fit``."""

        def __init__(self, pruner: MagnitudePruner) -> None:
            super().__init__()
            self.pruner = pruner
            self._epoch_start = pruner.step

        def on_train_begin(self, logs: Any = None) -> None:
            self.pruner._check_live()
            self.pruner._last_slot = None  # the first step of each fit computes the masks

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._epoch_start = self.pruner.step

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            # `batch` is the step within the epoch (with steps_per_execution, the first of the run)
            self.pruner._on_step(self._epoch_start + batch)

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            done = batch + 1
            steps = (self.params or {}).get("steps")
            if steps:  # with steps_per_execution, the last execution's end may run past the epoch
                done = min(done, int(steps))
            self.pruner.step = self._epoch_start + done

        def on_train_end(self, logs: Any = None) -> None:
            self.pruner.apply_masks()

    return MagnitudePruning
