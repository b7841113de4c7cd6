"""The on-device runtime. Never imports TensorFlow (a test checks `sys.modules`).

Model bytes given to a backend have already been verified (see `edgekit.bundle`);
TFLite bytes always go through the verifying loader (``model_content=``).
"""

from edgekit.runtime.backends import BACKENDS, Backend, open_backend, tflite_interpreter_class

__all__ = ["BACKENDS", "Backend", "open_backend", "tflite_interpreter_class"]
