"""Variants derived from a model edgekit did not make (`edgekit.convert.foreign`).

There is no trained model to convert again, so each derived variant comes from a
maintained tool that works on the exported file itself:

- from a float ``.tflite``: ``tflite-fp16`` (float16 weights, float compute),
  ``tflite-dynamic`` (int8 weights, activations quantized at run time) and
  ``tflite-int8`` (int8 weights and activations, calibrated), all by ai-edge-quantizer
  (``pip install ai-edge-quantizer``, in the train extra);
- from a float ``.onnx``: ``onnx-int8`` by ``onnxruntime.quantization``, the same
  variant `onnx_int8` builds for a trained model (the given bytes stand for its export).

`derivations` says which of these a given model allows; the given model itself is one
more `VariantKind` (`as_given`), packed byte for byte.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import numpy as np

from edgekit._optional import require
from edgekit.convert.variants import onnx_int8
from edgekit.convert.variants.base import (
    ConversionOptions,
    VariantKind,
    conversion_error,
    quiet_converter,
    single,
)
from edgekit.progress import Progress, no_progress


def signature_input(data: bytes) -> tuple[str, str]:
    """The (signature key, input name) a calibration dataset is keyed by."""
    from edgekit.runtime.backends import tflite_interpreter_class

    interpreter_class, _package = tflite_interpreter_class()
    interpreter = interpreter_class(model_content=bytes(data))
    signatures = interpreter.get_signature_list()
    if not signatures:
        raise conversion_error("tflite-int8", ValueError("the model has no signature to calibrate through; "
                                                         "re-export it with a serving signature"), "int8")
    key = "serving_default" if "serving_default" in signatures else sorted(signatures)[0]
    return key, signatures[key]["inputs"][0]


def calibrate(quantizer: Any, data: bytes, calib: np.ndarray, progress: Progress = no_progress,
              label: str = "calibrating") -> Any:
    """ai-edge-quantizer's calibration result for the model `data`, one sample of `calib` at a
    time through its serving signature, each tensor's range the min and max over all of
    `calib` (what the TFLite converter's calibration takes).

    Not ``Quantizer.calibrate``: its calibrator merges the samples' ranges by a moving
    average (``qsv_utils.moving_average_update``, smoothing 0.95), so on a few hundred
    samples or fewer a range is about the first samples' and the rest is clipped (a tone
    classifier lost 32 points that way, its input range cut from [-2.53, 4.09] to
    [-1.83, 3.56]). Its ``Calibrator`` takes the update function; ``min_max_update`` is
    the library's own.
    """
    from ai_edge_quantizer import calibrator, recipe_manager
    from ai_edge_quantizer.utils import qsv_utils

    if not quantizer.need_calibration:
        return {}
    key, input_name = signature_input(data)
    dataset = [{input_name: calib[i : i + 1].astype(np.float32)} for i in progress(range(len(calib)), label, len(calib))]
    manager = recipe_manager.RecipeManager()
    manager.load_quantization_recipe(quantizer.get_quantization_recipe())
    run = calibrator.Calibrator(bytes(data), num_threads=1, qsv_update_func=qsv_utils.min_max_update)
    with contextlib.redirect_stderr(io.StringIO()):  # its tqdm bar (from 100 op runs on) is not ours
        run.calibrate({key: dataset}, manager)
    return run.get_model_qsvs()


def _recipe(aeq: Any, name: str, per_channel: bool = True) -> Any:
    """The ai-edge-quantizer recipe of a variant (`per_channel`: the int8 weights' granularity,
    ``--per-channel/--per-tensor``)."""
    recipe = aeq.recipe
    if name == "tflite-fp16":  # weight-only float16: FLOAT_CASTING with 16-bit float weights
        manager = recipe.recipe_manager.RecipeManager()
        manager.add_weight_only_config(regex=".*", operation_name=recipe.TFLOperationName.ALL_SUPPORTED,
                                       num_bits=16, algorithm_key=recipe.AlgorithmName.FLOAT_CASTING)
        return manager.get_quantization_recipe()
    if name == "tflite-dynamic":
        return recipe.dynamic_wi8_afp32()
    return int8_recipe_manager(aeq, per_channel).get_quantization_recipe()


def int8_recipe_manager(aeq: Any, per_channel: bool) -> Any:
    """ai-edge-quantizer's recipe manager for ``tflite-int8``: every supported op with int8
    weights (per channel or per tensor) and int8 activations, what ``static_wi8_ai8()`` gives
    with the granularity asked for. auto-fallback adds its per-layer configs to it."""
    manager = aeq.recipe_manager.RecipeManager()
    manager.add_static_config(".*", aeq.recipe.TFLOperationName.ALL_SUPPORTED, 8, 8,
                              aeq.qtyping.QuantGranularity.CHANNELWISE if per_channel
                              else aeq.qtyping.QuantGranularity.TENSORWISE)
    return manager


CALIBRATION_KEY = "ai-edge-quantizer calibration"
"""`source.cached` key of the calibration of the source's float .tflite on the calibration
split: the tflite-int8 variant of a given .tflite and auto-fallback's tries share it."""


def quantize_tflite(source: Any, name: str, calib: np.ndarray | None, progress: Progress = no_progress,
                    per_channel: bool = True) -> bytes:
    """``source.data`` (a float .tflite) quantized by ai-edge-quantizer for variant `name`."""
    aeq = require("ai_edge_quantizer", "quantizing a .tflite model")
    try:
        with quiet_converter():
            quantizer = aeq.quantizer.Quantizer(bytes(source.data), _recipe(aeq, name, per_channel))
            result = None
            if quantizer.need_calibration:
                assert calib is not None
                result = source.cached(CALIBRATION_KEY,
                                       lambda: calibrate(quantizer, source.data, calib, progress, f"calibrating {name}"))
            quantized = quantizer.quantize(result, enable_progress_bar=False, enable_progress_report=False)
            return bytes(quantized.quantized_model)
    except Exception as exc:  # the quantizer raises ValueError/RuntimeError/KeyError on ops it lacks
        raise conversion_error(name, exc, "int8" if name == "tflite-int8" else "") from exc


def _tflite_build(name: str) -> Any:
    def build(source: Any, calib: np.ndarray | None, options: ConversionOptions, _work: Path,
              progress: Progress = no_progress) -> bytes:
        return quantize_tflite(source, name, calib, progress, options.per_channel)
    return build


FROM_TFLITE_FP32: dict[str, VariantKind] = {
    "tflite-fp16": VariantKind("tflite-fp16", "tflite", "fp16", False, "TFLite, float16 weights (ai-edge-quantizer)",
                               single("fp16", "float16 weights, float compute", _tflite_build("tflite-fp16"))),
    "tflite-dynamic": VariantKind("tflite-dynamic", "tflite", "dynamic-int8", False,
                                  "TFLite, int8 weights, dynamic activations (ai-edge-quantizer)",
                                  single("dynamic-int8", "int8 weights, activations quantized at run time",
                                         _tflite_build("tflite-dynamic"))),
    "tflite-int8": VariantKind("tflite-int8", "tflite", "int8", True,
                               "TFLite, int8 weights and activations (ai-edge-quantizer, calibrated)",
                               single("int8", "int8 weights and activations (calibrated)",
                                      _tflite_build("tflite-int8"))),
}
FROM_ONNX_FP32: dict[str, VariantKind] = {"onnx-int8": onnx_int8.VARIANT}


def derivations(variant_name: str) -> dict[str, VariantKind]:
    """The variants a maintained tool derives from a given model of this kind (name -> kind).

    Only float models have any: quantizing an already quantized model again is not offered.
    """
    if variant_name == "tflite-fp32":
        return dict(FROM_TFLITE_FP32)
    if variant_name == "onnx-fp32":
        return dict(FROM_ONNX_FP32)
    return {}


def as_given(source: Any) -> VariantKind:
    """The given model as a variant of its own: its bytes, unchanged."""
    def build(_source: Any, _calib: np.ndarray | None, _options: ConversionOptions, _work: Path,
              _progress: Progress = no_progress) -> bytes:
        return bytes(source.data)

    return VariantKind(source.variant_name, source.format, source.precision, False,
                       f"the given {source.path.name}, as it is", single(source.precision, "as given", build))
