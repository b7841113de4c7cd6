"""``--backend tflite-runtime``: the older standalone TFLite interpreter package
(tflite-runtime), used when LiteRT is not installed; it fails to import with numpy 2."""

from __future__ import annotations

from typing import Any

from edgekit.runtime.backends.tflite import tflite_plugin


def _interpreter_class() -> Any:
    from tflite_runtime.interpreter import Interpreter

    return Interpreter


PLUGIN = tflite_plugin("tflite-runtime", "tflite_runtime", _interpreter_class,
                       help="the standalone tflite-runtime package (numpy 1 only)")
