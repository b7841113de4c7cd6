"""``onnx-fp32``: the tf2onnx export of the source's SavedModel, float32."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.convert.variants.base import ConversionOptions, VariantKind, single
from edgekit.convert.variants.onnx import onnx_export
from edgekit.progress import Progress, no_progress


def build(source: Any, _calib: np.ndarray | None, options: ConversionOptions, _work: Path,
          _progress: Progress = no_progress) -> bytes:
    return onnx_export(source, options.opset)


VARIANT = VariantKind("onnx-fp32", "onnx", "fp32", False, "ONNX, float32 (tf2onnx)", single("fp32", "float32", build))
