"""``onnx-int8``: onnx-fp32 quantized by ``onnxruntime.quantization``. With ``--onnx-int8
static`` (the default) its forms are static QDQ int8 (calibrated), then dynamic
quantization; with ``dynamic``, dynamic quantization only."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgekit._optional import require
from edgekit.convert.variants.base import (
    ConversionOptions,
    Form,
    OnnxInt8Mode,
    VariantKind,
    conversion_error,
    quiet_converter,
)
from edgekit.convert.variants.onnx import onnx_export
from edgekit.progress import Progress, no_progress


class Reader:
    """onnxruntime CalibrationDataReader over the calibration split, one sample at a time."""

    def __init__(self, name: str, calibration: np.ndarray, progress: Progress = no_progress) -> None:
        self.name, self.calibration, self.progress = name, calibration, progress
        self.rewind()

    def get_next(self) -> dict[str, np.ndarray] | None:
        index = next(self._order, None)
        if index is None:
            return None
        return {self.name: self.calibration[index : index + 1].astype(np.float32)}

    def __iter__(self):  # noqa: ANN204 - qdq_loss_debug.collect_activations iterates the reader
        self.rewind()
        return iter(self.get_next, None)

    def rewind(self) -> None:
        self._order = iter(self.progress(range(len(self.calibration)), "calibrating onnx-int8", len(self.calibration)))


def prepare(source: Any, options: ConversionOptions, folder: Path) -> Path:
    """onnx-fp32 after onnxruntime's pre-processing (shape inference, graph optimization),
    written to ``folder/pre.onnx``: what both quantizations start from.

    Raises:
        ConversionError: the export or the pre-processing failed.
    """
    quantization = require("onnxruntime.quantization", "quantizing ONNX models")
    fp32 = onnx_export(source, options.opset)
    src, pre = folder / "fp32.onnx", folder / "pre.onnx"
    src.write_bytes(fp32)
    try:
        # chdir: when symbolic shape inference gives up, onnxruntime saves its partial
        # model as sym_shape_infer_temp.onnx (plus a .data file) in the working directory.
        with quiet_converter(), contextlib.chdir(folder):
            try:
                quantization.shape_inference.quant_pre_process(str(src), str(pre))
            except Exception:  # noqa: BLE001 - sympy missing, or symbolic shape inference gave up
                # (a Transformer's reshapes with a dynamic batch: "Incomplete symbolic shape
                # inference"); ONNX's own shape inference is enough for quantization.
                quantization.shape_inference.quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    except Exception as exc:
        raise conversion_error("onnx-int8", exc, "int8") from exc
    return pre


def quantize_qdq(pre: Path, out: Path, calib: np.ndarray, options: ConversionOptions,
                 progress: Progress = no_progress, exclude: tuple[str, ...] = (), cache: Path | None = None,
                 int16: tuple[str, ...] = ()) -> None:
    """Static QDQ int8 of a prepared model (see `prepare`), calibrated by min/max.

    Args:
        exclude: node names left in float (auto-fallback's choice).
        int16: activation tensors quantized to int16 instead (auto-fallback's choice):
            onnxruntime's ``TensorQuantOverrides``, with the Q/DQ of the ``com.microsoft``
            domain, which take int16 at opset 17.
        cache: onnxruntime's calibration cache: written by the first call, read by the
            next ones, so that a search calibrates once.
    """
    quantization = require("onnxruntime.quantization", "quantizing ONNX models")
    import onnx

    input_name = onnx.load(str(pre)).graph.input[0].name
    cached = cache is not None and cache.is_file()
    quantization.quantize_static(
        str(pre), str(out), None if cached else Reader(input_name, calib, progress),
        quant_format=quantization.QuantFormat.QDQ,
        activation_type=quantization.QuantType.QInt8,
        weight_type=quantization.QuantType.QInt8,
        per_channel=options.per_channel,
        calibrate_method=quantization.CalibrationMethod.MinMax,
        nodes_to_exclude=list(exclude) or None,
        extra_options={"UseQDQContribOps": True, "TensorQuantOverrides": {
            tensor: [{"quant_type": quantization.QuantType.QInt16}] for tensor in int16}} if int16 else None,
        **({"calibration_cache_path": str(cache)} if cache is not None else {}),
    )


def _quantize(source: Any, calib: np.ndarray | None, options: ConversionOptions, work: Path,
              progress: Progress, mode: OnnxInt8Mode) -> bytes:
    """onnx-fp32 quantized by onnxruntime.quantization: ``static`` QDQ (calibrated) or ``dynamic``."""
    quantization = require("onnxruntime.quantization", "quantizing ONNX models")
    what = "onnx-int8" if mode is OnnxInt8Mode.STATIC else "onnx-int8 (dynamic)"
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        pre = prepare(source, options, Path(tmp))
        out = Path(tmp) / "int8.onnx"
        try:
            with quiet_converter(), contextlib.chdir(tmp):
                if mode is OnnxInt8Mode.DYNAMIC:
                    quantization.quantize_dynamic(str(pre), str(out), weight_type=quantization.QuantType.QInt8,
                                                  per_channel=options.per_channel)
                else:
                    assert calib is not None
                    quantize_qdq(pre, out, calib, options, progress)
        except Exception as exc:
            raise conversion_error(what, exc, "int8") from exc
        return out.read_bytes()


def build_static(source: Any, calib: np.ndarray | None, options: ConversionOptions, work: Path,
                 progress: Progress = no_progress) -> bytes:
    from edgekit.convert import qat

    if qat.is_qat_source(source):  # its learnt Q/DQ pairs and int8 weights, not a second calibration
        return qat.onnx_int8_bytes(source, options.opset)
    return _quantize(source, calib, options, work, progress, OnnxInt8Mode.STATIC)


def build_dynamic(source: Any, calib: np.ndarray | None, options: ConversionOptions, work: Path,
                  progress: Progress = no_progress) -> bytes:
    return _quantize(source, calib, options, work, progress, OnnxInt8Mode.DYNAMIC)


def forms(options: ConversionOptions) -> tuple[Form, ...]:
    dynamic = Form("dynamic-int8", "dynamic quantization (int8 weights, activations quantized at run time)",
                   build_dynamic)
    if options.onnx_int8 == OnnxInt8Mode.DYNAMIC:
        return (dynamic,)
    return (Form("int8", "static QDQ int8 (calibrated)", build_static), dynamic)


VARIANT = VariantKind("onnx-int8", "onnx", "int8", True, "ONNX, int8 (onnxruntime.quantization)", forms)
