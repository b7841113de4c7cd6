"""A keyword-spotting model made the way someone outside edgekit makes one.

The front end is ``tf.signal`` (MFCC on 16 kHz clips), the model a small Keras CNN
trained on it, and the exports come from the exporters themselves: the TFLite
converter (``from_keras_model``) and tf2onnx's SavedModel route (``python -m
tf2onnx.convert --saved-model``). Nothing here calls edgekit's own export path, so
`edgekit convert MODEL.tflite` meets a file as a user would bring it. Shared by
`tests/convert/test_foreign.py` and `tools/byom_demo.py`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from pathlib import Path

import numpy as np

CLASSES = ("low", "mid", "high")
TONES_HZ = (350.0, 900.0, 2000.0)
RATE = 16000
# The front end, as the user describes it to edgekit (docs: the audio preprocess keys).
PREPROCESS_YAML = """\
kind: audio
sample_rate: 16000
clip_samples: 16000
frame_length: 640
frame_step: 320
fft_length: 1024
window: hann
feature: mfcc
spectrum: magnitude
num_mel_bins: 40
lower_edge_hz: 20
upper_edge_hz: 4000
log_offset: 1.0e-6
num_mfcc: 10
"""


@dataclasses.dataclass
class ForeignKws:
    """The files of the foreign model: its exports, its front end and its data."""

    tflite: Path
    onnx: Path
    preprocess: Path
    labels: Path
    data: Path  # WAV folders, one per class (held-out clips)
    wavs: dict[str, Path]  # one clip per class, for `edgekit run`
    test: Path | None = None  # more WAV folders, for `edgekit eval` on clips convert never saw


def clip(label: int, rng: np.random.Generator) -> np.ndarray:
    """One second of a tone (the "keyword") at a random onset, in noise."""
    t = np.arange(RATE) / RATE
    hz = TONES_HZ[label] * rng.uniform(0.92, 1.08)
    tone = np.sin(2 * np.pi * hz * t + rng.uniform(0, 2 * np.pi))
    envelope = np.zeros(RATE)
    start = int(rng.integers(0, RATE // 2))
    envelope[start : start + int(rng.integers(RATE // 4, RATE // 2))] = 1.0
    return (rng.uniform(0.2, 0.6) * envelope * tone + 0.03 * rng.standard_normal(RATE)).astype(np.float32)


def tf_mfcc(clips: np.ndarray) -> np.ndarray:
    """MFCC features with tf.signal: (N, 49, 10, 1) from (N, 16000)."""
    import tensorflow as tf

    stft = tf.signal.stft(tf.constant(clips, tf.float32), frame_length=640, frame_step=320, fft_length=1024,
                          window_fn=tf.signal.hann_window)
    magnitude = tf.abs(stft)
    mel = tf.signal.linear_to_mel_weight_matrix(40, 513, RATE, 20.0, 4000.0)
    log_mel = tf.math.log(tf.tensordot(magnitude, mel, 1) + 1e-6)
    mfcc = tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., :10]
    return mfcc.numpy()[..., None]


def write_wav(path: Path, samples: np.ndarray) -> None:
    import wave

    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(RATE)
        handle.writeframes(pcm.tobytes())


def build(root: Path, train_per_class: int = 40, heldout_per_class: int = 12, seed: int = 0,
          test_per_class: int = 0) -> ForeignKws:
    """Train the model on tf.signal MFCCs and export it to .tflite and .onnx under `root`."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(CLASSES)), train_per_class)
    rng.shuffle(labels)
    x = tf_mfcc(np.stack([clip(int(k), rng) for k in labels]))
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((49, 10, 1), name="mfcc")
    h = keras.layers.BatchNormalization()(inputs)
    h = keras.layers.Conv2D(8, 3, activation="relu")(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(16, 3, activation="relu")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inputs, keras.layers.Dense(len(CLASSES), activation="softmax")(h))
    # label smoothing: scores short of 1, so that comparing them means something
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.CategoricalCrossentropy(label_smoothing=0.3))
    model.fit(x, np.eye(len(CLASSES), dtype=np.float32)[labels], epochs=12, batch_size=16, verbose=0)

    root.mkdir(parents=True, exist_ok=True)
    tflite = root / "kws.tflite"
    with contextlib.redirect_stdout(sys.stderr):  # the converter prints the traced function
        tflite.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
        saved = root / "kws_savedmodel"
        model.export(str(saved), format="tf_saved_model", verbose=False)
    onnx = root / "kws.onnx"
    onnx.write_bytes(savedmodel_to_onnx(saved))

    preprocess = root / "kws.yaml"
    preprocess.write_text(PREPROCESS_YAML)
    labels_file = root / "labels.txt"
    labels_file.write_text("\n".join(CLASSES) + "\n")
    data = root / "data"
    for k, name in enumerate(CLASSES):
        for i in range(heldout_per_class):
            write_wav(data / name / f"{i:03d}.wav", clip(k, rng))
    wavs = {}
    for k, name in enumerate(CLASSES):
        wavs[name] = root / f"{name}.wav"
        write_wav(wavs[name], clip(k, rng))
    wavs["mixed"] = root / "mixed.wav"  # two keywords at once
    write_wav(wavs["mixed"], 0.5 * clip(0, rng) + 0.5 * clip(1, rng))
    test = root / "test" if test_per_class else None
    for k, name in enumerate(CLASSES):
        for i in range(test_per_class):
            write_wav(root / "test" / name / f"{i:03d}.wav", clip(k, rng))
    return ForeignKws(tflite, onnx, preprocess, labels_file, data, wavs, test)


def savedmodel_to_onnx(saved: Path, opset: int = 17) -> bytes:
    """tf2onnx's SavedModel route (what ``python -m tf2onnx.convert --saved-model`` runs),
    in this process: the frozen serving signature, then the graph converted."""
    from tf2onnx import convert, tf_loader

    with contextlib.redirect_stdout(sys.stderr):
        graph_def, inputs, outputs, renames = tf_loader.from_saved_model(str(saved), None, None,
                                                                         return_tensors_to_rename=True)
        proto, _ = convert.from_graph_def(graph_def, input_names=inputs, output_names=outputs, opset=opset,
                                          tensors_to_rename=renames)
    return proto.SerializeToString()


def read_wav(path: Path) -> np.ndarray:
    import wave

    with wave.open(str(path), "rb") as handle:
        pcm = np.frombuffer(handle.readframes(handle.getnframes()), "<i2")
    return pcm.astype(np.float32) / 32768.0


def run_directly(model: Path, wav: Path) -> np.ndarray:
    """The model's scores on a clip, with the tf.signal front end and the model's own
    interpreter (LiteRT or ONNX Runtime), as its maker runs it."""
    x = tf_mfcc(read_wav(wav)[None, :RATE]).astype(np.float32)
    if model.suffix == ".onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: x})[0][0]
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
