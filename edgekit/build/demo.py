"""`edgekit demo`: the pipeline end to end on built-in synthetic data.

Today: synthetic shapes images -> a small CNN trained in Keras 3 -> TFLite and ONNX
exports -> every export checked against the Keras model on held-out images -> a
verified bundle carrying the exact preprocessing -> inspected. Later stages
(quantization, pruning, runtime streaming, benchmarks) join as they land.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.build.keras_env import import_keras, stdout_to_stderr
from edgekit.bundle import (
    Manifest,
    Variant,
    atomic_write_bytes,
    make_provenance,
    open_bundle,
    sha256_file,
    write_bundle,
)
from edgekit.datasets import shapes
from edgekit.errors import InputError
from edgekit.features.image import normalize
from edgekit.inspection import InspectConfig, inspect_path, render_report
from edgekit.inspection.isolate import describe_isolated
from edgekit.runtime import open_backend
from edgekit.spec import ImagePreprocess, PostprocessKind, PostprocessSpec


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """Options of the demo.

    Attributes:
        output_dir: where the dataset preview, model, bundle and reports go.
        epochs: training epochs.
        seed: seed for data generation and weight initialization.
        samples: number of synthetic images (split 70/15/15).
        image_size: height and width of the images.
    """

    output_dir: Path = Path("out/demo")
    epochs: int = 10
    seed: int = 0
    samples: int = 2400
    image_size: int = 32


@dataclasses.dataclass(frozen=True)
class VariantCheck:
    name: str
    size_bytes: int
    top1_agreement: float
    accuracy: float
    max_abs_error: float


@dataclasses.dataclass(frozen=True)
class DemoResult:
    bundle_path: Path
    keras_path: Path
    keras_test_accuracy: float
    test_samples: int
    variants: tuple[VariantCheck, ...]
    seconds: dict[str, float]

    def summary(self) -> str:
        lines = [
            f"bundle: {self.bundle_path} (verified)",
            f"keras model: {self.keras_path}  test accuracy {self.keras_test_accuracy:.1%} on {self.test_samples} held-out images",
            f"{'variant':<14} {'size':>9} {'agreement':>10} {'accuracy':>9} {'max |err|':>10}",
        ]
        for v in self.variants:
            lines.append(f"{v.name:<14} {v.size_bytes:>9,} {v.top1_agreement:>10.1%} {v.accuracy:>9.1%} {v.max_abs_error:>10.2e}")
        lines.append("time: " + ", ".join(f"{k} {s:.1f} s" for k, s in self.seconds.items()))
        return "\n".join(lines)


def _EpochLog(keras: Any, log: Callable[[str], None], epochs: int) -> Any:
    """A Keras callback that reports each epoch through `log` (Keras prints to stdout)."""

    class EpochLog(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            logs = logs or {}
            log(f"      epoch {epoch + 1}/{epochs}: loss {logs.get('loss', float('nan')):.3f}, "
                f"accuracy {logs.get('accuracy', float('nan')):.1%}, "
                f"validation accuracy {logs.get('val_accuracy', float('nan')):.1%}")

    return EpochLog()


def _build_model(keras: Any, input_shape: tuple[int, int, int], classes: int) -> Any:
    layers = keras.layers
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    # Depthwise-separable stack: (layer, then BatchNorm and ReLU) as on MobileNet-style edge models.
    for block in (
        layers.Conv2D(16, 3, padding="same", use_bias=False),
        layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False),
        layers.Conv2D(32, 1, use_bias=False),
        layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False),
        layers.Conv2D(48, 1, use_bias=False),
    ):
        x = layers.ReLU()(layers.BatchNormalization(momentum=0.9)(block(x)))
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="shapes_cnn")


def _check(backend_outputs: np.ndarray, reference: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    agreement = float(np.mean(backend_outputs.argmax(-1) == reference.argmax(-1)))
    accuracy = float(np.mean(backend_outputs.argmax(-1) == labels))
    max_err = float(np.max(np.abs(backend_outputs.astype(np.float64) - reference)))
    return agreement, accuracy, max_err


def run_demo(config: DemoConfig, log: Callable[[str], None] = print) -> DemoResult:
    """Run the demo and return what it measured.

    Raises:
        MissingDependencyError: TensorFlow, ai-edge-litert or onnxruntime is missing.
        InputError: the output directory cannot be created or written.
    """
    out = config.output_dir
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"output directory {out}", expected="a directory edgekit can create",
                         found=exc.strerror or str(exc)) from exc
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    log(f"[1/6] generating {config.samples} synthetic shape images ({config.image_size}x{config.image_size})")
    images, labels, class_names = shapes.generate(config.samples, config.image_size, config.seed)
    n_train = int(0.7 * len(images))
    n_val = int(0.15 * len(images))
    spec = ImagePreprocess(height=config.image_size, width=config.image_size, channels=3, scale=1 / 255.0,
                           mean=(0.5,), std=(0.25,))
    x = normalize(images, spec)
    x_train, y_train = x[:n_train], labels[:n_train]
    x_val, y_val = x[n_train : n_train + n_val], labels[n_train : n_train + n_val]
    x_test, y_test = x[n_train + n_val :], labels[n_train + n_val :]
    seconds["data"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    log(f"[2/6] training a small CNN for {config.epochs} epoch(s) on {len(x_train)} images (CPU/GPU as available)")
    keras = import_keras()
    keras.utils.set_random_seed(config.seed)
    model = _build_model(keras, x_train.shape[1:], len(class_names))
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=config.epochs, batch_size=64,
              verbose=0, shuffle=True, callbacks=[_EpochLog(keras, log, config.epochs)])
    reference = np.asarray(model.predict(x_test, batch_size=256, verbose=0), dtype=np.float64)
    keras_accuracy = float(np.mean(reference.argmax(-1) == y_test))
    keras_path = out / "shapes.keras"
    staged = out / f".shapes.{os.getpid()}.keras"  # Keras writes in place; stage it, then rename
    try:
        model.save(staged)
        os.replace(staged, keras_path)
    finally:
        staged.unlink(missing_ok=True)
    seconds["train"] = time.perf_counter() - t0
    log(f"      Keras test accuracy {keras_accuracy:.1%}")

    t0 = time.perf_counter()
    log("[3/6] exporting tflite-fp32 (model.export litert) and onnx-fp32 (model.export onnx)")
    payloads: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="edgekit-demo-") as tmp, stdout_to_stderr():
        model.export(str(Path(tmp) / "model.tflite"), format="litert")
        model.export(str(Path(tmp) / "model.onnx"), format="onnx")
        payloads["models/tflite-fp32.tflite"] = (Path(tmp) / "model.tflite").read_bytes()
        payloads["models/onnx-fp32.onnx"] = (Path(tmp) / "model.onnx").read_bytes()
    seconds["export"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    log(f"[4/6] checking each export against Keras on {len(x_test)} held-out images, one image at a time")
    variants = []
    checks = []
    for name, fmt, file in (("tflite-fp32", "tflite", "models/tflite-fp32.tflite"),
                            ("onnx-fp32", "onnx", "models/onnx-fp32.onnx")):
        data = payloads[file]
        info = describe_isolated(fmt, data=data, label=file)
        backend = open_backend(fmt, data, threads=1)
        outputs = np.concatenate([backend.run([x_test[i : i + 1]])[0] for i in range(len(x_test))])
        agreement, accuracy, max_err = _check(outputs, reference, y_test)
        checks.append(VariantCheck(name, len(data), agreement, accuracy, max_err))
        metrics = {"top1_agreement": agreement, "accuracy": accuracy, "max_abs_error": max_err,
                   "validation_samples": int(len(x_test)), "reference": "keras float32"}
        variants.append(Variant(name=name, format=fmt, file=file, precision="fp32", inputs=info.inputs,
                                outputs=info.outputs, metrics=metrics))
        log(f"      {name}: agreement {agreement:.1%}, accuracy {accuracy:.1%}, max |error| {max_err:.2e}")
    seconds["check"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    bundle_path = out / "shapes.edgekit"
    log(f"[5/6] writing the bundle {bundle_path} (atomic) and verifying it")
    manifest = Manifest(
        name="shapes",
        variants=tuple(variants),
        preprocess=spec,
        labels=class_names,
        postprocess=PostprocessSpec(kind=PostprocessKind.CLASSIFICATION, apply_softmax=False, top_k=3),
        provenance=make_provenance(
            source={"path": keras_path.name, "sha256": sha256_file(keras_path), "format": "keras"},
            command="edgekit demo",
            steps=[{"step": "train", "recipe": "demo shapes CNN", "epochs": config.epochs, "seed": config.seed,
                    "train_samples": int(len(x_train)), "validation_samples": int(len(x_val))}],
        ),
        metrics={"keras_test_accuracy": keras_accuracy, "test_samples": int(len(x_test))},
    )
    write_bundle(bundle_path, manifest, payloads)
    open_bundle(bundle_path)
    seconds["bundle"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    log("[6/6] inspecting the bundle")
    report = inspect_path(InspectConfig(path=bundle_path))
    atomic_write_bytes(out / "inspect.json", (json.dumps(report, indent=2, sort_keys=True) + "\n").encode())
    atomic_write_bytes(out / "inspect.txt", (render_report(report) + "\n").encode())
    log(render_report(report))
    seconds["inspect"] = time.perf_counter() - t0

    return DemoResult(bundle_path=bundle_path, keras_path=keras_path, keras_test_accuracy=keras_accuracy,
                      test_samples=int(len(x_test)), variants=tuple(checks), seconds=seconds)
