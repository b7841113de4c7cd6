"""The on-device runtime. Never imports TensorFlow (a test checks `sys.modules`).

    from edgekit.runtime import load
    model = load("kws.edgekit")          # verifies hashes, picks variant and backend
    model = load("kws.edgekit", public_key="signing.key.pub")  # and requires its signature
    result = model.predict(raw)          # raw image / audio clip / sensor window -> Result
    result = model.predict("clip.wav")   # a path to an image or an audio file
    samples, rate = read_audio("clip.flac", sample_rate=16000)  # mono float32, resampled
    for result in model.stream(source):  # continuous inference
        ...

Model bytes given to a backend have been verified (see `edgekit.bundle`); TFLite bytes
always go through the verifying loader (``model_content=``).
"""

from edgekit.features.audio import read_audio
from edgekit.runtime.backends import BACKENDS, Backend, open_backend, tflite_interpreter_class
from edgekit.runtime.model import Model, load
from edgekit.runtime.results import ClassScore, Detection, Latency, Result

__all__ = ["BACKENDS", "Backend", "ClassScore", "Detection", "Latency", "Model", "Result", "load", "open_backend",
           "read_audio", "tflite_interpreter_class"]
