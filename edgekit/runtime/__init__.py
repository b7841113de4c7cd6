"""The on-device runtime. Never imports TensorFlow (a test checks `sys.modules`).

    from edgekit.runtime import load
    model = load("kws.edgekit")          # verifies hashes, picks variant and backend
    model = load("kws.edgekit", public_key="signing.key.pub")  # and requires its signature
    result = model.predict(raw)          # raw image / audio clip / sensor window -> Result
    for result in model.stream(source):  # continuous inference
        ...

Model bytes given to a backend have been verified (see `edgekit.bundle`); TFLite bytes
always go through the verifying loader (``model_content=``).
"""

from edgekit.runtime.backends import BACKENDS, Backend, open_backend, tflite_interpreter_class
from edgekit.runtime.model import Model, load
from edgekit.runtime.results import Latency, Result

__all__ = ["BACKENDS", "Backend", "Latency", "Model", "Result", "load", "open_backend", "tflite_interpreter_class"]
