"""Detection end to end, and the output order of multi-output models.

A two-output SSD-style detector (boxes, then class scores) is trained on synthetic
scenes with known boxes, converted by the `edgekit convert` command line with the
detection spec in its ``--preprocess`` YAML, loaded with `edgekit.runtime.load` and run
on images: its detections must agree with the Keras model's in every variant. The two
outputs have different shapes, and their Keras order (``regression``,
``classification``) is not the alphabetical order of their names, while the TFLite
converter lays them out in an order of its own: a variant that swapped them fails here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from edgekit.spec import DType, PostprocessKind, PostprocessSpec, Quantization, TensorSpec
from tests.support.cli import assert_one_line_error, run_cli
from tests.support.env import need_module
from tests.support.models import save_keras

SIZE, GRID = 32, 4  # 32x32 images, a 4x4 grid of 8-pixel cells: 16 candidate boxes
SHAPES = ("square", "disc", "triangle", "cross")
LABELS = ("background", *SHAPES)  # scores (16, 5) vs boxes (16, 4): different shapes on purpose
VARIANTS = ("tflite-fp32", "tflite-int8", "onnx-fp32")
SPEC_YAML = f"""\
preprocess: {{kind: image, height: {SIZE}, width: {SIZE}, scale: 0.00392156862745098}}
postprocess:
  kind: detection
  detection_format: ssd
  score_threshold: 0.3
  iou_threshold: 0.45
  max_detections: 5
  background_labels: [background]
labels: [{", ".join(LABELS)}]
"""


# ---------------------------------------------------------------------------
# synthetic scenes: one shape per image, with its exact box


def _mask(kind: str, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5
    dx, dy = xx - cx, yy - cy
    if kind == "square":
        return (np.abs(dx) <= r) & (np.abs(dy) <= r)
    if kind == "disc":
        return dx**2 + dy**2 <= r**2
    if kind == "triangle":  # apex up
        return (np.abs(dy) <= r) & (np.abs(dx) <= (dy + r) / 2)
    arm = r / 3  # cross
    return ((np.abs(dx) <= arm) & (np.abs(dy) <= r)) | ((np.abs(dy) <= arm) & (np.abs(dx) <= r))


def scenes(count: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(uint8 images (N, 32, 32, 3), boxes (N, 4) normalized ymin, xmin, ymax, xmax, shape indices)``.

    Colours as in `edgekit.datasets.shapes`: a random background, a contrasting shape, noise.
    """
    rng = np.random.default_rng(seed)
    images = np.empty((count, SIZE, SIZE, 3), np.uint8)
    boxes = np.empty((count, 4), np.float32)
    classes = rng.integers(0, len(SHAPES), count)
    for i in range(count):
        r = rng.uniform(4.5, 8.0)
        cx, cy = rng.uniform(r + 1, SIZE - r - 1, 2)
        mask = _mask(SHAPES[classes[i]], cx, cy, r)
        ys, xs = np.nonzero(mask)
        boxes[i] = (ys.min() / SIZE, xs.min() / SIZE, (ys.max() + 1) / SIZE, (xs.max() + 1) / SIZE)
        background = rng.uniform(0, 255, 3)
        foreground = (background + rng.uniform(90, 165, 3)) % 255
        image = np.where(mask[..., None], foreground, background) + rng.normal(0, 6, (SIZE, SIZE, 3))
        images[i] = np.clip(image, 0, 255).astype(np.uint8)
    return images, boxes, classes


def _targets(boxes: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SSD targets: the cell holding a box's centre predicts it; every other cell is background."""
    cy = (boxes[:, 0] + boxes[:, 2]) / 2
    cx = (boxes[:, 1] + boxes[:, 3]) / 2
    cell = np.minimum((cy * GRID).astype(int), GRID - 1) * GRID + np.minimum((cx * GRID).astype(int), GRID - 1)
    rows = np.arange(len(boxes))
    labels = np.zeros((len(boxes), GRID * GRID), np.int32)
    labels[rows, cell] = classes + 1
    targets = np.zeros((len(boxes), GRID * GRID, 4), np.float32)
    targets[rows, cell] = boxes
    return labels, targets


@dataclasses.dataclass
class Detector:
    model: Path
    spec_file: Path
    data: Path  # a flat folder of unlabelled PNGs (calibration and validation)
    images: np.ndarray  # held-out scenes
    boxes: np.ndarray
    classes: np.ndarray
    keras_outputs: list[np.ndarray]  # the Keras model on the held-out scenes, in its output order


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> Detector:
    need_module("tensorflow", 'pip install "edgekit-ml[train]"')
    import cv2
    import keras
    import tensorflow as tf

    root = tmp_path_factory.mktemp("detector")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    h = inputs
    for filters in (16, 24, 32):
        h = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(h)
        h = keras.layers.MaxPooling2D()(h)
    boxes = keras.layers.Dense(GRID * GRID * 4, activation="sigmoid")(keras.layers.Flatten()(h))
    regression = keras.layers.Reshape((GRID * GRID, 4), name="regression")(boxes)
    logits = keras.layers.Reshape((GRID * GRID, len(LABELS)))(keras.layers.Conv2D(len(LABELS), 1)(h))
    classification = keras.layers.Softmax(name="classification")(logits)
    model = keras.Model(inputs, [regression, classification])
    assert model.output_names == ["regression", "classification"] != sorted(model.output_names)

    images, true_boxes, classes = scenes(2000, seed=1)
    x = images.astype(np.float32) / 255.0
    labels, targets = _targets(true_boxes, classes)
    optimizer = keras.optimizers.Adam(3e-3)

    @tf.function
    def step(xb: tf.Tensor, lb: tf.Tensor, tb: tf.Tensor) -> None:
        with tf.GradientTape() as tape:
            predicted_boxes, scores = model(xb, training=True)
            positive = tf.cast(lb > 0, tf.float32)
            ce = keras.losses.sparse_categorical_crossentropy(lb, scores)
            class_loss = tf.reduce_mean(ce * (1.0 + 4.0 * positive))
            box_loss = tf.reduce_sum(tf.reduce_sum(tf.abs(predicted_boxes - tb), -1) * positive) / tf.reduce_sum(positive)
            loss = class_loss + 10.0 * box_loss
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))

    rng = np.random.default_rng(0)
    for _epoch in range(30):
        order = rng.permutation(len(x))
        for start in range(0, len(x), 32):
            batch = order[start : start + 32]
            step(x[batch], labels[batch], targets[batch])
    path = root / "detector.keras"
    save_keras(model, path)

    data = root / "scenes"
    data.mkdir()
    calibration_images, _, _ = scenes(150, seed=2)
    for i, image in enumerate(calibration_images):
        cv2.imwrite(str(data / f"{i:03d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    spec_file = root / "detector.yaml"
    spec_file.write_text(SPEC_YAML)
    test_images, test_boxes, test_classes = scenes(40, seed=3)
    outputs = [np.asarray(o) for o in model.predict(test_images.astype(np.float32) / 255.0, verbose=0)]
    return Detector(path, spec_file, data, test_images, test_boxes, test_classes, outputs)


@pytest.fixture(scope="module")
def detector_bundle(detector: Detector, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("detector-bundle") / "detector.edgekit"
    result = run_cli("convert", str(detector.model), "-o", str(out), "--data", str(detector.data),
                     "--preprocess", str(detector.spec_file), "--variants", ",".join(VARIANTS), "--json")
    assert result.code == 0, result.stderr
    return out, result.json()


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return w * h / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h)


def _keras_detections(detector: Detector, spec: PostprocessSpec, i: int) -> tuple:
    from edgekit.runtime.postprocess import detect

    return detect([o[i : i + 1] for o in detector.keras_outputs], spec, LABELS, (SIZE, SIZE))["detections"]


@pytest.mark.tf
@pytest.mark.slow
def test_the_detector_detects(detector):
    """The float model finds the known shapes, so agreeing with it means something."""
    spec = PostprocessSpec.from_dict({"kind": "detection", "score_threshold": 0.3, "background_labels": ["background"]})
    hits = 0
    for i in range(len(detector.images)):
        found = _keras_detections(detector, spec, i)
        ymin, xmin, ymax, xmax = detector.boxes[i]
        hits += bool(found) and found[0].label == SHAPES[detector.classes[i]] and \
            _iou(found[0].box, (xmin, ymin, xmax, ymax)) >= 0.5
    assert hits >= 0.8 * len(detector.images)


@pytest.mark.tf
@pytest.mark.slow
def test_every_variant_lists_outputs_in_the_keras_order(detector_bundle):
    from edgekit.bundle import open_bundle
    from edgekit.convert.outputs import output_keys

    out, report = detector_bundle
    bundle = open_bundle(out)
    manifest = bundle.manifest
    assert manifest.variant_names == list(VARIANTS), report["failed"]
    assert manifest.labels == LABELS
    assert manifest.postprocess.kind is PostprocessKind.DETECTION and manifest.postprocess.max_detections == 5
    assert report["reference"]["task"] == "detection"
    for variant in manifest.variants:
        shapes = [tuple(max(d, 1) for d in o.shape) for o in variant.outputs]
        assert shapes == [(1, GRID * GRID, 4), (1, GRID * GRID, len(LABELS))], variant.name
        # The file itself is in the Keras order, for any interpreter that opens it.
        assert output_keys(variant.format, bundle.variant_bytes(variant.name)) == ["output_0", "output_1"]
        m = variant.metrics
        assert m["drop_basis"] == "detection_agreement", variant.name
        if variant.precision == "fp32":
            assert m["max_abs_error"] < 1e-4 and m["detection_agreement"] == 1.0, (variant.name, m)
        else:
            assert m["detection_agreement"] >= 0.85 and m["max_abs_error"] < 0.25, (variant.name, m)


@pytest.mark.tf
@pytest.mark.slow
def test_runtime_detections_agree_with_keras_in_every_variant(detector, detector_bundle):
    import edgekit.runtime
    from edgekit.runtime.tensors import dequantize, quantize

    out, _report = detector_bundle
    same_labels = {}
    for name in VARIANTS:
        model = edgekit.runtime.load(out, variant=name)
        spec = model.postprocess_spec
        tolerance = 1e-4 if name.endswith("fp32") else 0.06
        agree = 0
        for i, image in enumerate(detector.images):
            result = model.predict(image)
            assert result.kind == "detection" and result.variant == name
            want = _keras_detections(detector, spec, i)
            got = result.detections
            assert got is not None
            # Raw outputs, dequantized, in the manifest order = the Keras order.
            raw = model.backend.run([quantize(image[None].astype(np.float32) / 255.0, model.input)])
            for k, (value, tensor) in enumerate(zip(raw, model.outputs, strict=True)):
                np.testing.assert_allclose(dequantize(value, tensor), detector.keras_outputs[k][i : i + 1],
                                           atol=1e-4 if name.endswith("fp32") else 0.25, err_msg=f"{name} output {k}")
            if name.endswith("fp32"):
                assert [d.label for d in got] == [d.label for d in want], (name, i)
                for g, w in zip(got, want, strict=True):
                    assert g.box == pytest.approx(w.box, abs=tolerance) and g.score == pytest.approx(w.score, abs=tolerance)
            elif want and want[0].score >= 0.5:  # int8: the confident detection survives quantization
                assert got and got[0].label == want[0].label, (name, i, got, want)
                assert got[0].box == pytest.approx(want[0].box, abs=tolerance), (name, i)
            agree += [d.label for d in got] == [d.label for d in want]
        same_labels[name] = agree / len(detector.images)
    assert same_labels["tflite-fp32"] == same_labels["onnx-fp32"] == 1.0
    assert same_labels["tflite-int8"] >= 0.85, same_labels


@pytest.mark.tf
@pytest.mark.slow
def test_edgekit_run_prints_detections(detector, detector_bundle, tmp_path):
    import cv2

    out, _report = detector_bundle
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), cv2.cvtColor(detector.images[i], cv2.COLOR_RGB2BGR))
    result = run_cli("run", str(out), "--source", f"images:{folder}", "--variant", "tflite-int8")
    assert result.code == 0, result.stderr
    import json

    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 3 and all(line["kind"] == "detection" for line in lines)
    first = lines[0]["detections"][0]
    assert first["label"] in SHAPES and len(first["box"]) == 4 and 0.0 <= min(first["box"]) <= max(first["box"]) <= 1.0


@pytest.mark.tf
@pytest.mark.slow  # the detector fixture trains for about 20 s
def test_a_detection_spec_that_does_not_fit_the_outputs_is_refused(detector, tmp_path):
    spec = tmp_path / "yolo.yaml"
    spec.write_text(SPEC_YAML.replace("detection_format: ssd", "detection_format: yolo"))
    result = run_cli("-q", "convert", str(detector.model), "-o", str(tmp_path / "x.edgekit"), "--data", str(detector.data),
                     "--preprocess", str(spec), "--variants", "tflite-fp32")
    assert_one_line_error(result, 1, "yolo detection output", "(N, 5 + classes)", "(16, 4)")
    swapped = tmp_path / "labels.yaml"
    swapped.write_text(SPEC_YAML.replace("labels: [background, ", "labels: ["))
    result = run_cli("-q", "convert", str(detector.model), "-o", str(tmp_path / "x.edgekit"), "--data", str(detector.data),
                     "--preprocess", str(swapped), "--variants", "tflite-fp32")
    assert_one_line_error(result, 1, "expected 5 labels (the classes in the ssd detection outputs), found 4 labels")


@pytest.mark.tf
def test_many_outputs_keep_their_numeric_order(tmp_path):
    """Twelve outputs: string order would put output_10 and output_11 before output_2."""
    need_module("tensorflow", 'pip install "edgekit-ml[train]"')
    import keras

    import edgekit.runtime

    keras.utils.set_random_seed(5)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    model = keras.Model(inputs, [keras.layers.Dense(k + 1, name=f"head{k}")(hidden) for k in range(12)])
    path = tmp_path / "heads.keras"
    save_keras(model, path)
    out = tmp_path / "heads.edgekit"
    result = run_cli("convert", str(path), "-o", str(out), "--variants", "tflite-fp32,onnx-fp32",
                     "--allow-random-calibration")
    assert result.code == 0, result.stderr
    x = np.linspace(-1, 1, 6, dtype=np.float32)[None]
    expected = [np.asarray(o) for o in model(x)]
    for name in ("tflite-fp32", "onnx-fp32"):
        loaded = edgekit.runtime.load(out, variant=name)
        assert [o.shape[-1] for o in loaded.outputs] == list(range(1, 13)), name
        assert loaded.variant.metrics["max_abs_error"] < 1e-4
        for k, value in enumerate(loaded.backend.run([x])):
            np.testing.assert_allclose(value, expected[k], atol=1e-5, err_msg=f"{name} output {k}")


# ---------------------------------------------------------------------------
# matching and ordering, on specs and arrays


def _spec(name: str, *shape: int, quantized: bool = False) -> TensorSpec:
    if quantized:
        return TensorSpec(name, shape, DType.INT8, Quantization((0.1,), (0,)))
    return TensorSpec(name, shape, DType.FLOAT32)


def test_outputs_match_by_name_then_by_shape():
    from edgekit.convert.outputs import match_outputs

    reference = [_spec("output_0", -1, 16, 4), _spec("output_1", -1, 16, 5)]
    swapped = [_spec("StatefulPartitionedCall:1", 1, 16, 5, quantized=True), _spec("StatefulPartitionedCall:0", 1, 16, 4)]
    assert match_outputs(reference, swapped, ["output_1", "output_0"], "v") == [1, 0]
    assert match_outputs(reference, swapped, [None, None], "v") == [1, 0]  # no names: shapes decide


def test_ambiguous_outputs_are_a_clear_conversion_error():
    from edgekit.convert.outputs import match_outputs
    from edgekit.convert.variants import ConversionError

    reference = [_spec("output_0", -1, 4), _spec("output_1", -1, 4)]
    candidates = [_spec("a", -1, 4), _spec("b", -1, 4)]
    with pytest.raises(ConversionError, match=r"tflite-int8: cannot tell which output is the source's 'output_0' "
                                              r"\(\?, 4\) float: expected one output named 'output_0' or exactly one"):
        match_outputs(reference, candidates, [None, None], "tflite-int8")
    assert match_outputs(reference, candidates, ["output_1", "output_0"], "v") == [1, 0]  # names settle it
    with pytest.raises(ConversionError, match="expected 2 outputs like the source model, found 1"):
        match_outputs(reference, candidates[:1], [None], "v")
    with pytest.raises(ConversionError, match=r"output 'output_0' is 'a' \(\?, 5\) float in the converted model"):
        match_outputs(reference, [_spec("a", -1, 5), _spec("b", -1, 4)], ["output_0", "output_1"], "v")


def test_signature_keys_in_model_order():
    from edgekit.convert.outputs import signature_order

    keys = [f"output_{k}" for k in (5, 11, 0, 10, 2, 1, 3, 4, 6, 7, 8, 9)]
    assert signature_order(keys) == [f"output_{k}" for k in range(12)]
    assert signature_order(["scores", "boxes"]) == ["boxes", "scores"]  # Keras orders dict outputs by key


def test_backends_return_outputs_in_the_requested_order():
    from edgekit.errors import InputError
    from edgekit.runtime.backends import output_order

    assert output_order("m", ["b", "a"], None) == [0, 1]
    assert output_order("m", ["b", "a"], ["a", "b"]) == [1, 0]
    with pytest.raises(InputError, match=r"expected the outputs the manifest lists, \['a', 'c'\]"):
        output_order("m", ["b", "a"], ["a", "c"])


def test_two_output_ssd_detections_with_background_and_nms():
    from edgekit.runtime.postprocess import detect

    spec = PostprocessSpec(kind=PostprocessKind.DETECTION, detection_format="ssd", score_threshold=0.5,
                           iou_threshold=0.5, background_labels=("bg",))
    boxes = np.array([[0.1, 0.2, 0.5, 0.6],   # ymin, xmin, ymax, xmax
                      [0.12, 0.2, 0.5, 0.6],  # overlaps the first, same class: suppressed
                      [0.0, 0.0, 1.0, 1.0],   # background wins
                      [0.6, 0.6, 0.9, 0.9]], np.float32)[None]
    scores = np.array([[0.1, 0.9, 0.0], [0.2, 0.8, 0.0], [0.9, 0.05, 0.05], [0.3, 0.1, 0.6]], np.float32)[None]
    found = detect([boxes, scores], spec, ("bg", "cat", "dog"))["detections"]
    assert [(d.label, round(d.score, 2)) for d in found] == [("cat", 0.9), ("dog", 0.6)]
    assert found[0].box == pytest.approx((0.2, 0.1, 0.6, 0.5))
    with pytest.raises(ValueError, match=r"boxes \(N, 4\) as ymin, xmin, ymax, xmax, then class scores"):
        detect([scores, boxes], spec, ("bg", "cat", "dog"))
