"""`edgekit demo`: the pipeline end to end on built-in synthetic data.

Today: synthetic shapes images -> a small CNN trained in Keras 3 -> `edgekit convert`
(TFLite fp32/fp16/dynamic/int8 and ONNX fp32/int8, each measured against the Keras
model on held-out images read from PNG files through the bundle's preprocessing spec,
behind an accuracy gate) -> a verified bundle -> inspected. Later stages (pruning,
runtime streaming, benchmarks) join as they land.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from edgekit.build.convert import ConvertConfig, ConvertReport, convert, sidecar_path
from edgekit.build.keras_env import import_keras
from edgekit.bundle import atomic_write_bytes
from edgekit.datasets import shapes
from edgekit.datasets.loaders import Progress, no_progress
from edgekit.errors import GateError, InputError
from edgekit.features.image import normalize
from edgekit.inspection import InspectConfig, inspect_path, render_report
from edgekit.spec import ImagePreprocess, PostprocessKind, PostprocessSpec


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """Options of the demo.

    Attributes:
        output_dir: where the data, model, bundle and reports go.
        epochs: training epochs.
        seed: seed for data generation and weight initialization.
        samples: number of synthetic images (70% train, 10% validation, 20% held out as PNG files).
        image_size: height and width of the images.
        max_accuracy_drop: the gate every quantized variant must pass, in points.
    """

    output_dir: Path = Path("out/demo")
    epochs: int = 10
    seed: int = 0
    samples: int = 2400
    image_size: int = 32
    max_accuracy_drop: float = 2.0


@dataclasses.dataclass(frozen=True)
class DemoResult:
    bundle_path: Path
    keras_path: Path
    keras_accuracy: float
    convert: ConvertReport
    seconds: dict[str, float]

    def summary(self) -> str:
        lines = [
            f"keras model: {self.keras_path} (held-out accuracy {self.keras_accuracy:.1%})",
            self.convert.render(),
            "time: " + ", ".join(f"{k} {s:.1f} s" for k, s in self.seconds.items()),
        ]
        return "\n".join(lines)


def _epoch_log(keras: Any, log: Callable[[str], None], epochs: int) -> Any:
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


def _write_pngs(folder: Path, images: np.ndarray, labels: np.ndarray, names: tuple[str, ...]) -> None:
    from edgekit._optional import require

    cv2 = require("cv2", "writing the demo's PNG files")
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        target = folder / names[label]
        target.mkdir(parents=True, exist_ok=True)
        ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not ok:
            raise InputError("demo image", expected="PNG encoding to succeed", found="cv2.imencode failed")
        (target / f"{index:05d}.png").write_bytes(encoded.tobytes())


def run_demo(config: DemoConfig, log: Callable[[str], None] = print, progress: Progress = no_progress) -> DemoResult:
    """Run the demo and return what it measured.

    Raises:
        MissingDependencyError: TensorFlow, ai-edge-litert, onnxruntime or OpenCV is missing.
        InputError: the output directory cannot be created or written.
        GateError: a quantized variant lost more than `max_accuracy_drop` points.
    """
    out = config.output_dir
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"output directory {out}", expected="a directory edgekit can create",
                         found=exc.strerror or str(exc)) from exc
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    log(f"[1/4] generating {config.samples} synthetic shape images ({config.image_size}x{config.image_size})")
    images, labels, class_names = shapes.generate(config.samples, config.image_size, config.seed)
    n_train, n_val = int(0.7 * len(images)), int(0.1 * len(images))
    spec = ImagePreprocess(height=config.image_size, width=config.image_size, channels=3, scale=1 / 255.0,
                           mean=(0.5,), std=(0.25,))
    held_out = out / "data" / "held_out"
    if held_out.exists():
        import shutil

        shutil.rmtree(held_out)
    _write_pngs(held_out, images[n_train + n_val :], labels[n_train + n_val :], class_names)
    x = normalize(images, spec)
    seconds["data"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    log(f"[2/4] training a small CNN for {config.epochs} epoch(s) on {n_train} images")
    keras = import_keras()
    keras.utils.set_random_seed(config.seed)
    model = _build_model(keras, x.shape[1:], len(class_names))
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:n_train], labels[:n_train], validation_data=(x[n_train : n_train + n_val], labels[n_train : n_train + n_val]),
              epochs=config.epochs, batch_size=64, verbose=0, shuffle=True, callbacks=[_epoch_log(keras, log, config.epochs)])
    held_x, held_y = x[n_train + n_val :], labels[n_train + n_val :]
    keras_accuracy = float(np.mean(model.predict(held_x, batch_size=256, verbose=0).argmax(-1) == held_y))
    keras_path = out / "shapes.keras"
    staged = out / f".shapes.{os.getpid()}.keras"  # Keras writes in place; stage it, then rename
    try:
        model.save(staged)
        os.replace(staged, keras_path)
    finally:
        staged.unlink(missing_ok=True)
    contract = {"preprocess": spec.to_dict(), "labels": list(class_names),
                "postprocess": PostprocessSpec(kind=PostprocessKind.CLASSIFICATION, top_k=3).to_dict()}
    atomic_write_bytes(sidecar_path(keras_path), yaml.safe_dump(contract, sort_keys=False).encode())
    seconds["train"] = time.perf_counter() - t0
    log(f"      Keras held-out accuracy {keras_accuracy:.1%}")

    t0 = time.perf_counter()
    bundle_path = out / "shapes.edgekit"
    log(f"[3/4] edgekit convert {keras_path} -o {bundle_path} --data {held_out} "
        f"--max-accuracy-drop {config.max_accuracy_drop:g}")
    report = convert(ConvertConfig(model=keras_path, output=bundle_path, data=held_out,
                                   max_accuracy_drop=config.max_accuracy_drop, auto_fallback=True, seed=config.seed,
                                   command="edgekit demo"),
                     progress=progress, log=log)
    atomic_write_bytes(out / "convert.json", (json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n").encode())
    seconds["convert"] = time.perf_counter() - t0
    if not report.gate_passed:
        log(report.render())
        failed = [v.name for v in report.variants if v.gate == "fail"]
        raise GateError(f"demo accuracy gate failed for {', '.join(failed)}",
                        expected=f"a drop of at most {config.max_accuracy_drop:g} points",
                        found="; ".join(f"{v.name} {v.metrics.get('drop_pts', 0):.2f}" for v in report.variants
                                        if v.gate == "fail"),
                        hint=f"see {out / 'convert.json'}")

    t0 = time.perf_counter()
    log("[4/4] inspecting the bundle")
    inspected = inspect_path(InspectConfig(path=bundle_path))
    atomic_write_bytes(out / "inspect.json", (json.dumps(inspected, indent=2, sort_keys=True) + "\n").encode())
    atomic_write_bytes(out / "inspect.txt", (render_report(inspected) + "\n").encode())
    seconds["inspect"] = time.perf_counter() - t0
    return DemoResult(bundle_path=bundle_path, keras_path=keras_path, keras_accuracy=keras_accuracy, convert=report,
                      seconds=seconds)
