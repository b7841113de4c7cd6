"""``--backend litert``: LiteRT (ai-edge-litert), Google's TFLite interpreter package; the
first choice for .tflite models."""

from __future__ import annotations

from typing import Any

from edgekit.runtime.backends.tflite import tflite_plugin


def _interpreter_class() -> Any:
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter


PLUGIN = tflite_plugin("ai-edge-litert", "ai_edge_litert", _interpreter_class,
                       help="LiteRT (pip ai-edge-litert), the TFLite interpreter edgekit prefers")
