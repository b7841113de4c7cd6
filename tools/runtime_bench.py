"""Runtime figures: predict overhead against a raw interpreter loop, and the audio front end
against tf.signal.

Usage: .venv/bin/python tools/runtime_bench.py [--runs 2000]

1. For three models of different sizes (the demo CNN at 32x32, a DS-CNN-like model on
   49x10 MFCC, a MobileNet-style model at 96x96), converted to tflite-fp32 in one run:
   median time of `model.predict_tensor(x)` against a raw `set_tensor`/`invoke`/
   `get_tensor` loop on the same kind of interpreter, interleaved in blocks.
2. Log-mel and MFCC of 1 s of 16 kHz audio: ms per clip in numpy (edgekit) and in
   tf.signal run eagerly, in the same process.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def build_models(keras, root: Path) -> dict[str, Path]:
    from edgekit.convert.run import ConvertConfig, convert

    def save(model, name):
        path = root / f"{name}.keras"
        with contextlib.redirect_stdout(sys.stderr):
            model.save(path)
        bundle = root / f"{name}.edgekit"
        convert(ConvertConfig(model=path, output=bundle, variants=("tflite-fp32",), allow_random_calibration=True))
        return bundle

    layers = keras.layers
    small = keras.Sequential([keras.Input((32, 32, 3)), layers.Conv2D(16, 3, activation="relu"),
                              layers.DepthwiseConv2D(3, strides=2), layers.Conv2D(32, 1, activation="relu"),
                              layers.GlobalAveragePooling2D(), layers.Dense(4, activation="softmax")])
    kws = keras.Sequential([keras.Input((49, 10, 1)), layers.Conv2D(64, (10, 4), strides=2, padding="same",
                                                                     activation="relu")]
                           + sum(([layers.DepthwiseConv2D(3, padding="same", activation="relu"),
                                   layers.Conv2D(64, 1, activation="relu")] for _ in range(4)), [])
                           + [layers.GlobalAveragePooling2D(), layers.Dense(12, activation="softmax")])
    inputs = keras.Input((96, 96, 3))
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    for filters, stride in ((16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (256, 2)):
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same", activation="relu")(x)
        x = layers.Conv2D(filters, 1, activation="relu")(x)
    mobile = keras.Model(inputs, layers.Dense(2, activation="softmax")(layers.GlobalAveragePooling2D()(x)))
    return {"cnn-32x32": save(small, "cnn"), "ds-cnn-49x10": save(kws, "dscnn"), "mobilenet-96x96": save(mobile, "mobilenet")}


def overhead(bundles: dict[str, Path], runs: int) -> list[dict]:
    from ai_edge_litert.interpreter import Interpreter

    from edgekit.runtime import load

    rows = []
    for name, path in bundles.items():
        model = load(path, variant="tflite-fp32", threads=1)
        raw = Interpreter(model_content=model.bundle.variant_bytes("tflite-fp32"), num_threads=1)
        raw.allocate_tensors()
        inp, out = raw.get_input_details()[0], raw.get_output_details()[0]
        x = np.random.default_rng(0).random(tuple(inp["shape"])).astype(np.float32)
        for _ in range(50):  # warm-up
            model.predict_tensor(x)
            raw.set_tensor(inp["index"], x)
            raw.invoke()
            raw.get_tensor(out["index"])
        edgekit_times, raw_times = [], []
        block = 50
        for _ in range(runs // block):  # interleaved blocks: same conditions for both
            for _ in range(block):
                t = time.perf_counter()
                model.predict_tensor(x)
                edgekit_times.append(time.perf_counter() - t)
            for _ in range(block):
                t = time.perf_counter()
                raw.set_tensor(inp["index"], x)
                raw.invoke()
                raw.get_tensor(out["index"])
                raw_times.append(time.perf_counter() - t)
        e, r = statistics.median(edgekit_times) * 1e6, statistics.median(raw_times) * 1e6
        rows.append({"model": name, "predict_us": e, "raw_us": r, "ratio": e / r, "overhead_us": e - r})
    return rows


def audio(runs: int) -> dict:
    import tensorflow as tf

    from edgekit.features.audio import features
    from edgekit.spec import AudioPreprocess

    clip = (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
    out = {}
    for feature in ("log_mel", "mfcc"):
        spec = AudioPreprocess(feature=feature)
        weights = tf.signal.linear_to_mel_weight_matrix(spec.num_mel_bins, spec.fft_length // 2 + 1, spec.sample_rate,
                                                        spec.lower_edge_hz, spec.upper_edge_hz)

        def tf_features(signal, spec=spec, weights=weights, feature=feature):
            stft = tf.signal.stft(signal, spec.frame_length, spec.frame_step, spec.fft_length)
            mel = tf.math.log(tf.tensordot(tf.abs(stft), weights, 1) + spec.log_offset)
            return tf.signal.mfccs_from_log_mel_spectrograms(mel)[..., : spec.num_mfcc] if feature == "mfcc" else mel

        for _ in range(20):
            features(clip, spec)
            tf_features(clip)
        ours, theirs = [], []
        for _ in range(runs // 10):
            t = time.perf_counter()
            features(clip, spec)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            tf_features(clip).numpy()
            theirs.append(time.perf_counter() - t)
        out[feature] = {"numpy_ms": statistics.median(ours) * 1e3, "tf_signal_ms": statistics.median(theirs) * 1e3}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    from edgekit.keras_env import import_keras

    keras = import_keras()
    with tempfile.TemporaryDirectory() as tmp:
        bundles = build_models(keras, Path(tmp))
        rows = overhead(bundles, args.runs)
    print("| model | predict_tensor median | raw set/invoke/get median | ratio | overhead |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['predict_us']:.1f} us | {r['raw_us']:.1f} us | {r['ratio']:.3f}x | {r['overhead_us']:.1f} us |")
    figures = audio(args.runs)
    print("\n| 1 s of 16 kHz audio | edgekit numpy | tf.signal eager | ratio |")
    print("|---|---|---|---|")
    for feature, f in figures.items():
        print(f"| {feature} | {f['numpy_ms']:.3f} ms | {f['tf_signal_ms']:.3f} ms | {f['tf_signal_ms'] / f['numpy_ms']:.2f}x faster |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
