"""`--auto-fallback`: which layers of a quantized variant to keep at a higher precision,
chosen by the drop they actually remove.

The quantization debugger ranks the layers by their own quantization error (TFLite's
`QuantizationDebugger`; onnxruntime's `qdq_loss_debug` for ONNX), but a layer's error is
not its effect on the task: the worst-ranked layers may cost nothing and a quiet one
everything. So the ranking only names the candidates (the `SearchLimits.candidates`
worst); the choice is measured on the validation split. First each candidate alone: the
drop it removes. Then a greedy pass, re-measured: starting from the layer that removed
the most alone, the others are added in the order of what they removed alone, each kept
when the set with it measures no higher a drop than the set without it (a layer that
only helps together with another is kept on a tie, so the pair is reached). The search
ends at the first set that passes the gate (so the smallest set it finds), or when the
candidates or `SearchLimits.tries` run out: at most ``2 * candidates - 1`` tries per
remedy. A set whose file is larger than the variant's float model is never measured
nor kept, and no set that adds to it is tried; when nothing smaller is left the report
says the gate is not reachable below the float model's size.

Remedies, each a search of its own, in the order of ``--fallback-precision`` (float
first by default: TFLite's int16 kernels are reference kernels, which XNNPACK does not
take; on a MobileNet v2-style model the int16-mixed file ran 8x slower than int8 on an
x86 core, the float-mixed one no slower):

- ``float``: the chosen layers in float, with float input and output (``tflite-int8``
  through the TFLite converter's ``denylisted_nodes``; ``onnx-int8`` through
  onnxruntime's ``nodes_to_exclude``, a layer with the nodes that write its inputs and
  read its output, else they would quantize the same tensors).
- ``int16``: 16-bit activations (int16x8) for the chosen layers, every other layer int8.
  ``tflite-int8``: through ai-edge-quantizer when it is installed, with int8 I/O (not
  with ``--int8-io uint8``): the file stays integer and about int8's size; its input
  and output are int8, or int16 where a kept layer produces the model's output. It
  needs a runtime whose QUANTIZE kernel requantizes between int8 and int16 (LiteRT
  does; TensorFlow 2.21's own ``tf.lite`` interpreter does not). ``onnx-int8``:
  onnxruntime's ``TensorQuantOverrides`` on the layers' output tensors (Q/DQ of the
  ``com.microsoft`` domain, which take int16 at opset 17).

The calibration runs once per remedy (the debugger's calibrated model for the TFLite
converter, one calibration result for ai-edge-quantizer, onnxruntime's calibration
cache), so a try costs one re-quantization and one pass over the validation split.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import math
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.convert.options import DEFAULT_FALLBACK_PRECISIONS
from edgekit.convert.variants.base import (
    ConversionError,
    ConversionOptions,
    conversion_error,
    quiet_converter,
)
from edgekit.stats import Drop

# One line of at most this many characters for a converter's error in a try.
_ERROR_CHARS = 240


@dataclasses.dataclass(frozen=True)
class SearchLimits:
    """What one fallback search may cost.

    Attributes:
        candidates: the worst layers by the debugger's error that the search chooses from.
        tries: the most sets one remedy's search measures (a try: one re-quantization and
            one pass over the validation split).
    """

    candidates: int = 12
    tries: int = 24


@dataclasses.dataclass(frozen=True)
class Layer:
    """A candidate: the name the quantizer takes, the op, and the debugger's error."""

    name: str
    op: str
    error: float

    def label(self) -> str:
        return f"{self.op} {self.name}"


@dataclasses.dataclass
class Trial:
    """One measured set of layers at a remedy's precision."""

    remedy: str
    layers: tuple[str, ...]
    size_bytes: int | None = None
    drop_pts: float | None = None
    drop_ci95: list[float] | None = None
    passed: bool = False
    error: str | None = None
    larger_than_float: bool = False
    seconds: float = 0.0
    measured: Any = dataclasses.field(default=None, repr=False)  # what `measure` returned

    def to_dict(self) -> dict[str, Any]:
        return {"remedy": self.remedy, "layers": list(self.layers), "size_bytes": self.size_bytes,
                "drop_pts": self.drop_pts, "drop_ci95": self.drop_ci95, "passed": self.passed, "error": self.error,
                "larger_than_float": self.larger_than_float, "seconds": round(self.seconds, 3)}


def one_line(text: str) -> str:
    """A converter's error as one line (its first meaningful line, shortened)."""
    lines = [" ".join(line.split()) for line in str(text).splitlines() if line.strip()]
    line = lines[0] if lines else "unknown error"
    for candidate in lines:  # converters put the cause on a line of its own
        if "error" in candidate.lower() or "check" in candidate.lower():
            line = candidate
            break
    return line if len(line) <= _ERROR_CHARS else line[: _ERROR_CHARS - 3] + "..."


def relative_error(float_values: list[np.ndarray], quantized_values: list[np.ndarray]) -> float:
    """How badly quantization hurts a tensor: the 90th percentile over channels (the last
    axis) of RMSE / spread of the float values.

    A plain RMSE relative to the scale looks harmless for a tensor whose scale an outlier
    channel inflated, which is exactly the tensor that ruins the small channels.
    """
    def rows(values: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([np.asarray(v, np.float64).reshape(-1, np.asarray(v).shape[-1] if np.ndim(v) else 1)
                               for v in values])

    f, q = rows(float_values), rows(quantized_values)
    rmse = np.sqrt(np.mean((q - f) ** 2, axis=0))
    spread = np.std(f, axis=0)
    floor = 1e-3 * float(np.mean(np.abs(f))) + 1e-12
    return float(np.percentile(rmse / np.maximum(spread, floor), 90))


def channel_relative_error(float_tensors: list[np.ndarray], quant_tensors: list[np.ndarray], scale: float,
                           zero_point: int) -> float:
    """`relative_error` of a quantized tensor (the TFLite debugger's metric signature)."""
    return relative_error(float_tensors, [(np.asarray(q, np.float64) - zero_point) * scale for q in quant_tensors])


# ---------------------------------------------------------------------------
# routes: how one variant is ranked and re-quantized


class TfliteInt8Route:
    """``tflite-int8``: ranked by the TFLite quantization debugger; float layers through the
    converter's ``denylisted_nodes`` on the debugger's calibrated model, int16 layers
    through ai-edge-quantizer (one calibration each)."""

    variant = "tflite-int8"

    def __init__(self, source: Any, calibration: np.ndarray, options: ConversionOptions,
                 remedies: tuple[str, ...] | None = None) -> None:
        self.source, self.calibration, self.options = source, calibration, options
        self._remedies = remedies
        self._calibrated: bytes | None = None

    @property
    def remedies(self) -> tuple[str, ...]:
        """The precisions asked for, less int16 where ai-edge-quantizer cannot make it."""
        asked = self._remedies if self._remedies is not None else DEFAULT_FALLBACK_PRECISIONS
        if self.options.int8_io != "int8":  # ai-edge-quantizer's models take and give int8
            return tuple(r for r in asked if r != "int16")
        try:
            import ai_edge_quantizer  # noqa: F401
        except ImportError:
            return tuple(r for r in asked if r != "int16")
        return tuple(asked)

    def float_size(self) -> int:
        from edgekit.convert.variants.tflite_fp32 import fp32_bytes

        return len(fp32_bytes(self.source))

    def rank(self) -> list[Layer]:
        """Every quantized layer, worst first by `channel_relative_error` (the debugger
        calibrates on the whole calibration split once; the float tries reuse it)."""
        import tensorflow as tf

        from edgekit.convert.variants.tflite import representative
        from edgekit.convert.variants.tflite_int8 import float_ops_converter

        converter = float_ops_converter(self.source, self.calibration, self.options)
        debug_options = tf.lite.experimental.QuantizationDebugOptions(
            layer_direct_compare_metrics={"channel_relative_error": channel_relative_error})
        with quiet_converter():
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter, debug_dataset=representative(self.calibration[: min(len(self.calibration), 64)]),
                debug_options=debug_options)
            debugger.run()
            buffer = io.StringIO()
            debugger.layer_statistics_dump(buffer)
        self._calibrated = bytes(debugger.calibrated_model)
        layers = []
        for row in csv.DictReader(io.StringIO(buffer.getvalue())):
            error = float(row.get("channel_relative_error") or "nan")
            if math.isfinite(error):
                layers.append(Layer(row["tensor_name"], row["op_name"], error))
        return sorted(layers, key=lambda layer: -layer.error)

    def build(self, remedy: str, layers: tuple[str, ...]) -> bytes:
        return self._int16(layers) if remedy == "int16" else self._float_layers(layers)

    def _float_layers(self, layers: tuple[str, ...]) -> bytes:
        from edgekit.convert.variants.tflite_int8 import requantize

        assert self._calibrated is not None, "rank() calibrates first"
        return requantize(self._calibrated, self.options, layers)

    def _float_model(self) -> bytes:
        """The float .tflite ai-edge-quantizer starts from."""
        from edgekit.convert.variants.tflite_fp32 import fp32_bytes

        return fp32_bytes(self.source)

    def _int16(self, layers: tuple[str, ...]) -> bytes:
        return self._aeq(layers, "int16")

    def _aeq(self, layers: tuple[str, ...], remedy: str) -> bytes:
        """int8 by ai-edge-quantizer, the named layers with 16-bit activations (``int16``)
        or left in float (``float``), from one calibration."""
        import ai_edge_quantizer as aeq

        from edgekit.convert.variants.foreign import CALIBRATION_KEY, calibrate, int8_recipe_manager

        recipe = aeq.recipe
        granularity = (aeq.qtyping.QuantGranularity.CHANNELWISE if self.options.per_channel
                       else aeq.qtyping.QuantGranularity.TENSORWISE)
        manager = int8_recipe_manager(aeq, self.options.per_channel)
        for name in layers:  # an op's scope: its output tensors' names, each followed by ";"
            scope = f"^{re.escape(name)};"
            if remedy == "int16":
                manager.add_static_config(scope, recipe.TFLOperationName.ALL_SUPPORTED, 16, 8, granularity)
            else:  # the last matching config wins: these ops stay float, fed and read through (de)quantize ops
                manager.add_quantization_config(scope, recipe.TFLOperationName.ALL_SUPPORTED,
                                                algorithm_key=recipe.AlgorithmName.NO_QUANTIZE)
        model = self._float_model()
        try:
            with quiet_converter(), contextlib.redirect_stderr(io.StringIO()):  # its progress bars
                quantizer = aeq.quantizer.Quantizer(model, manager.get_quantization_recipe())
                calibration = self.source.cached(CALIBRATION_KEY, lambda: calibrate(quantizer, model, self.calibration))
                quantized = quantizer.quantize(calibration, enable_progress_bar=False, enable_progress_report=False)
                return bytes(quantized.quantized_model)
        except Exception as exc:  # the quantizer raises ValueError/RuntimeError/KeyError on ops it lacks
            raise conversion_error(f"tflite-int8 with {remedy} layers", exc,
                                   "int16x8" if remedy == "int16" else "int8") from exc


class ForeignTfliteInt8Route(TfliteInt8Route):
    """``tflite-int8`` derived from a given float ``.tflite`` (no trained model to convert
    again): the variant is ai-edge-quantizer's, and so is every try. Ranked by
    ai-edge-quantizer's model validator, each tensor of the all-int8 model against the
    float model's (`relative_error`, on at most 16 calibration samples); the chosen layers
    in float (``NO_QUANTIZE``: the quantizer puts dequantize and quantize ops around them)
    or with 16-bit activations, every other layer int8, from one calibration."""

    def __init__(self, source: Any, calibration: np.ndarray, options: ConversionOptions,
                 remedies: tuple[str, ...] | None, failed: bytes) -> None:
        super().__init__(source, calibration, options, remedies)
        self.failed = failed  # the variant as it failed (every layer int8), which `rank` compares

    @property
    def remedies(self) -> tuple[str, ...]:
        return self._remedies if self._remedies is not None else DEFAULT_FALLBACK_PRECISIONS

    def float_size(self) -> int:
        return len(self.source.data)

    def _float_model(self) -> bytes:
        return bytes(self.source.data)

    def build(self, remedy: str, layers: tuple[str, ...]) -> bytes:
        return self._aeq(layers, remedy)

    def rank(self) -> list[Layer]:
        from ai_edge_quantizer import model_validator
        from ai_edge_quantizer.utils import validation_utils

        from edgekit.convert.variants.foreign import signature_input

        model = self._float_model()
        quantized = self.failed
        key, input_name = signature_input(model)
        samples = self.calibration[: min(len(self.calibration), 16)].astype(np.float32)
        data = {key: [{input_name: samples[i : i + 1]} for i in range(len(samples))]}
        try:
            with quiet_converter():
                # the validator's own metrics are not relative: a custom compare function
                # under the MSE key (the result is keyed by the metric's name)
                result = model_validator.compare_model(
                    model, quantized, data, [validation_utils.ValidationErrorMetric.MSE],
                    compare_fns=[lambda got, want: relative_error([want], [got])], num_threads=1)
        except Exception as exc:  # noqa: BLE001 - the validator raises its own types
            raise conversion_error("tflite-int8 quantization debug", exc, "int8") from exc
        compared = result.get_signature_comparison_result(key)
        errors = {**compared.intermediate_tensors, **compared.output_tensors}
        layers = []
        for tensor, op in _producers(model).items():
            error = errors.get(tensor, {}).get(validation_utils.ValidationErrorMetric.MSE.value)
            if error is not None and math.isfinite(error):
                layers.append(Layer(tensor, op, float(error)))
        return sorted(layers, key=lambda layer: -layer.error)


def _producers(model: bytes) -> dict[str, str]:
    """Each op's first output tensor (what ai-edge-quantizer's scope begins with) -> the op."""
    from edgekit.convert.variants.tflite import details_interpreter

    interpreter = details_interpreter(model)
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    return {names[op["outputs"][0]]: op["op_name"] for op in interpreter._get_ops_details()  # noqa: SLF001
            if len(op["outputs"]) and op["outputs"][0] in names}


class OnnxInt8Route:
    """``onnx-int8`` (static QDQ): ranked by onnxruntime's ``qdq_loss_debug`` (each
    activation before and after its QuantizeLinear/DequantizeLinear pair); int16 layers
    through ``TensorQuantOverrides`` on their output tensors (Q/DQ of the ``com.microsoft``
    domain, which take int16 at opset 17), float layers through ``nodes_to_exclude``, all
    reusing one calibration cache."""

    variant = "onnx-int8"

    def __init__(self, source: Any, calibration: np.ndarray, options: ConversionOptions, work: Path,
                 remedies: tuple[str, ...] = DEFAULT_FALLBACK_PRECISIONS) -> None:
        self.source, self.calibration, self.options = source, calibration, options
        self.remedies = remedies
        self._tmp = Path(tempfile.mkdtemp(dir=work))
        self._prepared: Path | None = None
        self._cache = self._tmp / "calibration.json"
        self._readers: dict[str, tuple[str, ...]] = {}
        self._outputs: dict[str, str] = {}  # node name -> the tensor the debugger measured

    def float_size(self) -> int:
        from edgekit.convert.variants.onnx import onnx_export

        return len(onnx_export(self.source, self.options.opset))

    def rank(self) -> list[Layer]:
        import onnx
        from onnxruntime.quantization import qdq_loss_debug

        from edgekit.convert.variants.onnx_int8 import Reader, prepare, quantize_qdq

        self._prepared = prepare(self.source, self.options, self._tmp)
        qdq, augmented = self._tmp / "rank.onnx", self._tmp / "augmented.onnx"
        try:
            with quiet_converter():
                quantize_qdq(self._prepared, qdq, self.calibration, self.options, cache=self._cache)
                qdq_loss_debug.modify_model_output_intermediate_tensors(str(qdq), str(augmented))
                graph = onnx.load(str(self._prepared)).graph
                activations = qdq_loss_debug.collect_activations(
                    str(augmented), Reader(graph.input[0].name, self.calibration[: min(len(self.calibration), 64)]))
                matching = qdq_loss_debug.create_activation_matching(activations)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
            raise conversion_error("onnx-int8 quantization debug", exc, "int8") from exc
        nodes = graph.node
        producers = {out: node for node in nodes for out in node.output}
        layers = []
        for tensor, match in matching.items():
            node = producers.get(tensor)
            if node is None or not match.get("pre_qdq") or not match.get("post_qdq"):
                continue  # a graph input, or a tensor the quantizer left in float
            error = relative_error(list(match["pre_qdq"]), list(match["post_qdq"]))
            if math.isfinite(error):
                layers.append(Layer(node.name, node.op_type, error))
                # A layer in float: the nodes that read its output and write its inputs stay
                # float too (excluding it alone leaves them quantizing the same tensors).
                self._outputs[node.name] = tensor
                writers = [producers[i].name for i in node.input if i in producers]
                self._readers[node.name] = (*writers, *(n.name for n in nodes if tensor in n.input))
        return sorted(layers, key=lambda layer: -layer.error)

    def build(self, remedy: str, layers: tuple[str, ...]) -> bytes:
        from edgekit.convert.variants.onnx_int8 import quantize_qdq

        assert self._prepared is not None, "rank() prepares first"
        out = self._tmp / "try.onnx"
        try:
            with quiet_converter():
                if remedy == "int16":
                    quantize_qdq(self._prepared, out, self.calibration, self.options, cache=self._cache,
                                 int16=tuple(self._outputs[name] for name in layers))
                else:
                    exclude = tuple(dict.fromkeys(n for name in layers for n in (name, *self._readers.get(name, ()))))
                    quantize_qdq(self._prepared, out, self.calibration, self.options, exclude=exclude,
                                 cache=self._cache)
        except Exception as exc:  # noqa: BLE001
            raise conversion_error(f"onnx-int8 with {remedy} layers", exc, "int8") from exc
        return out.read_bytes()


# ---------------------------------------------------------------------------
# the search


@dataclasses.dataclass
class Outcome:
    """What a search found: the accepted try (None when none passed) and every try."""

    ranked: list[Layer]
    trials: list[Trial]
    accepted: Trial | None = None
    accepted_data: Any = None  # what `measure` returned for the accepted try
    reason: str = ""
    seconds: float = 0.0


def search(route: Any, measure: Callable[[bytes], tuple[Any, Drop | None, float | None, list[float] | None]],
           passes: Callable[[Drop | None], bool], float_size: int | None,
           limits: SearchLimits = SearchLimits(), log: Callable[[str], None] = lambda _m: None) -> Outcome:
    """Choose the layers to keep at a higher precision by their measured effect: each
    candidate alone, then a greedy pass in the order of what each removed alone (see the
    module's docstring), remedy by remedy.

    Args:
        route: a `TfliteInt8Route` or `OnnxInt8Route`.
        measure: model bytes -> ``(measured, drop, drop_pts, drop_ci95)``; raises
            `ConversionError` (or `InputError`) for a file that cannot be run.
        passes: the gate's verdict on a drop.
        float_size: the variant's float model in bytes (None: not known, no size limit).

    Returns:
        The outcome; ``accepted`` is the first try that passes the gate.
    """
    started = time.perf_counter()
    ranked = route.rank()
    candidates = ranked[: limits.candidates]
    trials: list[Trial] = []
    outcome = Outcome(ranked, trials)
    if not candidates:
        outcome.reason = "the quantization debugger found no quantized layer to keep at a higher precision"
        return _done(outcome, started)
    sizes: list[str] = []
    for remedy in route.remedies:
        # 1. each candidate alone: the drop it removes, measured
        singles: list[tuple[float, int, Layer]] = []
        too_large = 0
        alone = candidates[: limits.tries]
        for order, layer in enumerate(alone):
            log(f"auto-fallback: {route.variant} with {layer.label()} in {remedy}")
            trial = _try(route, remedy, (layer.name,), measure, passes, float_size, trials)
            if trial.passed:
                outcome.accepted, outcome.accepted_data = trial, trial.measured
                return _done(outcome, started)
            too_large += trial.larger_than_float
            if trial.drop_pts is not None:
                singles.append((trial.drop_pts, order, layer))
        if too_large == len(alone) and float_size is not None:
            sizes.append(f"{remedy}: each layer alone makes a file larger than the float model ({float_size:,} bytes)")
        if not singles:
            continue
        # 2. greedy, re-measured: add the layers in the order of the drop they removed alone,
        #    keeping each one whose set measures no higher a drop than the set without it
        singles.sort(key=lambda s: (s[0], s[1]))
        chosen, current = [singles[0][2]], singles[0][0]
        budget = limits.tries - len(alone)
        left_out = 0
        for _drop, _order, layer in singles[1:]:
            if budget <= 0:
                break
            budget -= 1
            names = tuple(c.name for c in [*chosen, layer])
            log(f"auto-fallback: {route.variant} with {len(names)} layers in {remedy}")
            trial = _try(route, remedy, names, measure, passes, float_size, trials)
            if trial.passed:
                outcome.accepted, outcome.accepted_data = trial, trial.measured
                return _done(outcome, started)
            if trial.larger_than_float:
                left_out += 1  # not added: every set with it is larger still
                continue
            if trial.drop_pts is not None and trial.drop_pts <= current + 1e-9:
                chosen.append(layer)
                current = trial.drop_pts
        if left_out:
            sizes.append(f"{remedy}: {left_out} layer(s) left out, each making a file larger than the float model "
                         f"({float_size:,} bytes) with the {len(chosen)} kept")
    measured_trials = [t for t in trials if t.drop_pts is not None]
    best_trial = min(measured_trials, key=lambda t: t.drop_pts) if measured_trials else None  # type: ignore[arg-type,return-value]
    outcome.reason = (f"no set of the {len(candidates)} worst layer(s) passed in {len(trials)} tries"
                      + (f"; the best: {len(best_trial.layers)} layer(s) in {best_trial.remedy}, drop "
                         f"{best_trial.drop_pts:.2f} points" if best_trial else ""))
    if sizes:
        outcome.reason += "; not reachable below the float model's size (" + "; ".join(sizes) + ")"
    failed = [t for t in trials if t.error]
    if failed and not measured_trials:
        outcome.reason += f"; every try failed, e.g. {failed[0].error}"
    return _done(outcome, started)


def _try(route: Any, remedy: str, names: tuple[str, ...], measure: Callable[..., Any],
         passes: Callable[[Drop | None], bool], float_size: int | None, trials: list[Trial]) -> Trial:
    """Build and measure one set; a file larger than the float model is not measured."""
    trial = Trial(remedy, names)
    trials.append(trial)
    tick = time.perf_counter()
    try:
        data = route.build(remedy, names)
        trial.size_bytes = len(data)
        if float_size is not None and len(data) > float_size:
            trial.larger_than_float = True
        else:
            trial.measured, drop, trial.drop_pts, trial.drop_ci95 = measure(data)
            trial.passed = passes(drop)
    except ConversionError as exc:
        trial.error = one_line(str(exc))
    except Exception as exc:  # noqa: BLE001 - InputError from the runtime, quantizer internals
        trial.error = one_line(f"{type(exc).__name__}: {exc}")
    trial.seconds = time.perf_counter() - tick
    return trial


def _done(outcome: Outcome, started: float) -> Outcome:
    outcome.seconds = time.perf_counter() - started
    return outcome
