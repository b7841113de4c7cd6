"""``--backend tf-lite``: ``tf.lite.Interpreter`` from TensorFlow, the last resort for .tflite
models when neither LiteRT nor tflite-runtime imports.

This is the one place on the device side allowed to import TensorFlow, and only inside
`_interpreter_class`, when no other interpreter is there (or this one is forced): the
runtime never installs or needs TensorFlow.
"""

from __future__ import annotations

from typing import Any

from edgekit.runtime.backends.tflite import tflite_plugin


def _interpreter_class() -> Any:
    import tensorflow as tf

    return tf.lite.Interpreter


PLUGIN = tflite_plugin("tensorflow", "tensorflow", _interpreter_class,
                       help="tf.lite from an installed TensorFlow (last resort)")
