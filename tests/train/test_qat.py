"""Quantization-aware training for Keras 3 (`edgekit.train.qat`, `edgekit qat`, `train --qat`).

One tiny MobileNet v2-style model (ReLU6, depthwise convolution, linear bottleneck, a
residual sum, BatchNorm after every convolution) is trained for one epoch in a module
fixture, made fake-quantized and fine-tuned for one epoch; the tests then check what the
real converters make of it: a full-int8 TFLite model whose tensors carry the learnt
ranges (not a calibration of its own), a QDQ ONNX model with int8 weights, both computing
what the fake-quantized model computes. The CLI end to end is a ``long`` test.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.support.cli import run_cli

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from edgekit.train import qat

    keras, tf = qat.keras, qat.tf
    layers = keras.layers
    keras.utils.set_random_seed(0)
    # named layers: Keras numbers unnamed ones per process, and other tests made layers before
    inputs = keras.Input((12, 12, 3), name="image")
    x = layers.ReLU(6.0, name="re_lu")(layers.BatchNormalization(name="batch_normalization")(
        layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="conv2d")(inputs)))
    y = layers.ReLU(6.0, name="re_lu_1")(layers.BatchNormalization(name="batch_normalization_1")(
        layers.Conv2D(16, 1, use_bias=False, name="conv2d_1")(x)))
    y = layers.ReLU(6.0, name="re_lu_2")(layers.BatchNormalization(name="batch_normalization_2")(
        layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="depthwise_conv2d")(y)))
    y = layers.BatchNormalization(name="batch_normalization_3")(layers.Conv2D(8, 1, use_bias=False, name="conv2d_2")(y))
    x = layers.Add(name="add")([x, y])
    x = layers.GlobalAveragePooling2D(name="global_average_pooling2d")(x)
    outputs = layers.Dense(3, activation="softmax", name="dense")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 240)
    images = (rng.normal(size=(240, 12, 12, 3)) + labels[:, None, None, None] * 0.7).astype(np.float32)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(images, labels, epochs=1, batch_size=32, verbose=0)
    float_out = model.predict(images[:64], verbose=0)
    built = qat.quantize_model(model)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(32)
    qat.calibrate(built.model, dataset, 4)
    before = built.model.predict(images[:64], verbose=0)
    built.model.compile(keras.optimizers.Adam(1e-4), "sparse_categorical_crossentropy")
    built.model.fit(images, labels, epochs=1, batch_size=32, verbose=0)
    folder = tmp_path_factory.mktemp("qat") / "model-qat"
    qat.export_saved_model(built.model, folder)
    return {"model": model, "built": built, "images": images, "float_out": float_out, "before": before,
            "folder": folder, "qat_out": built.model.predict(images[:64], verbose=0),
            "ranges": qat.activation_ranges(built.model)}


def _tflite(folder: Path, calibration: np.ndarray) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(folder))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([calibration[i : i + 1]] for i in range(len(calibration)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return bytes(converter.convert())


def test_batchnorm_folded_and_fake_quantization_placed(trained: dict) -> None:
    built = trained["built"]
    assert len(built.folded) == 4  # every BatchNorm sits after a convolution
    names = [type(layer).__name__ for layer in built.model.layers[-1].layers] if hasattr(
        built.model.layers[-1], "layers") else []
    assert "BatchNormalization" not in names
    # inputs, three ReLU6 outputs, the projection, the sum, the pooling, the logits; none between
    # a convolution and its ReLU6 (the converters fuse them)
    assert sorted(built.activation_ranges) == sorted(["input", "re_lu", "re_lu_1", "re_lu_2", "batch_normalization_3",
                                                      "add", "global_average_pooling2d", "dense"])
    # before fine-tuning the folded, fake-quantized model computes what the float model does, to int8 precision
    assert np.abs(trained["before"] - trained["float_out"]).max() < 0.05
    assert (trained["before"].argmax(1) == trained["float_out"].argmax(1)).mean() >= 0.95
    low, high = trained["ranges"]["re_lu_quant"]
    assert low == 0.0 and 0.0 < high <= 6.0  # a ReLU6 output's range


def test_tflite_full_int8_from_the_learnt_ranges(trained: dict) -> None:
    from edgekit.runtime.backends import tflite_interpreter_class

    # calibrate on inputs ten times larger: a range taken from calibration would show it
    data = _tflite(trained["folder"], trained["images"][:16] * 10)
    interpreter_class, _ = tflite_interpreter_class()
    interpreter = interpreter_class(model_content=data)
    interpreter.allocate_tensors()
    details = interpreter.get_tensor_details()
    assert {np.dtype(t["dtype"]) for t in details} <= {np.dtype(np.int8), np.dtype(np.int32)}
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    low, high = trained["ranges"]["input_quant"]
    assert inp["quantization"][0] == pytest.approx((high - low) / 255, rel=1e-3)
    scale, zero = inp["quantization"]
    out_scale, out_zero = out["quantization"]
    results = []
    for sample in trained["images"][:64]:
        interpreter.set_tensor(inp["index"], np.clip(np.round(sample[None] / scale + zero), -128, 127).astype(np.int8))
        interpreter.invoke()
        results.append((interpreter.get_tensor(out["index"]).astype(np.float32) - out_zero) * out_scale)
    results = np.concatenate(results)
    assert np.abs(results - trained["qat_out"]).max() < 0.05
    assert (results.argmax(1) == trained["qat_out"].argmax(1)).mean() >= 0.95


def test_onnx_qdq_with_int8_weights(trained: dict) -> None:
    import onnx
    import onnxruntime as ort

    from edgekit.convert.qat import is_qat_graph, qdq_model

    tf = pytest.importorskip("tensorflow")
    tf2onnx = pytest.importorskip("tf2onnx")
    loaded = tf.saved_model.load(str(trained["folder"]))
    signature = loaded.signatures["serving_default"]
    assert is_qat_graph(signature)
    _, kwargs = signature.structured_input_signature
    name = next(iter(kwargs))
    spec = tf.TensorSpec(kwargs[name].shape, tf.float32, name="image")

    @tf.function(input_signature=[spec])
    def serve(x: object) -> object:
        return signature(**{name: x})

    proto, _ = tf2onnx.convert.from_function(serve, input_signature=[spec], opset=17)
    model, converted = qdq_model(proto)
    assert len(converted) == 5  # four convolutions and the dense layer
    int8 = [i for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT8 and i.name.endswith("_int8")]
    assert len(int8) == 5
    assert sum(n.op_type == "QuantizeLinear" for n in model.graph.node) == 8  # the activation ranges
    session = ort.InferenceSession(model.SerializeToString())
    out = session.run(None, {session.get_inputs()[0].name: trained["images"][:64]})[0]
    assert np.abs(out - trained["qat_out"]).max() < 0.02


def test_qat_needs_a_recipe_one_line(tmp_path: Path) -> None:
    model = tmp_path / "m.keras"
    model.write_bytes(b"not a model")
    result = run_cli("qat", str(model), "--data", str(tmp_path))
    assert result.code == 1
    assert "report.json" in result.stderr and "--recipe" in result.stderr
    assert "Traceback" not in result.stderr


def test_qat_refuses_float_variants(tmp_path: Path) -> None:
    model = tmp_path / "m.keras"
    model.write_bytes(b"x")
    result = run_cli("qat", str(model), "--variants", "tflite-fp32")
    assert result.code == 1 and "int8 variants" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.long
def test_train_qat_export_end_to_end(tmp_path: Path) -> None:
    """`edgekit train ic-mobilenetv2 --qat --export`: the bundle's provenance names the QAT step
    (or post-training int8, where QAT was worse on the validation split)."""
    out, bundle = tmp_path / "run", tmp_path / "m.edgekit"
    result = run_cli("-q", "train", "ic-mobilenetv2", "-o", str(out), "--epochs", "1", "--samples", "40",
                     "--set", "qat.epochs=1", "--qat", "--export", str(bundle))
    assert result.code == 0, result.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["qat"]["quantization"]["method"] == "qat"
    from edgekit.bundle import open_bundle

    text = open_bundle(bundle).manifest_raw.decode()
    choice = report["qat"]["export"]["choice"]["quantization"]
    assert f'"quantization": {json.dumps(choice)}' in text  # QAT, or post-training where QAT was worse
    assert ('"quantization": "qat"' in text and "moving average" in text) == (choice == "qat")


@pytest.fixture(scope="module")
def tab_qat(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A tab-mlp trained one epoch, then `edgekit qat --export` (one QAT epoch, tflite-int8)."""
    from edgekit.train.config import QatConfig, TrainConfig
    from edgekit.train.qat_run import qat
    from edgekit.train.run import train

    folder = tmp_path_factory.mktemp("tab-qat")
    train(TrainConfig(recipe="tab-mlp", output=folder, epochs=1, synth_samples=60, progress_bar=False),
          log=lambda _m: None)
    model = folder / "tab-mlp.keras"
    bundle = folder / "qat.edgekit"
    result = qat(QatConfig(model=model, epochs=1, progress_bar=False, export=bundle, variants=("tflite-int8",)),
                 log=lambda _m: None)
    return {"model": model, "bundle": bundle, "result": result, "folder": folder}


def test_qat_export_keeps_the_better_int8_on_validation(tab_qat: dict) -> None:
    """The export compares QAT with post-training int8 on the validation split, keeps the
    better one (post-training on a tie) and records the choice in the report and the bundle."""
    from edgekit.bundle import open_bundle

    choice = tab_qat["result"].report["export"]["choice"]
    figures = choice["validation"]["tflite-int8"]
    assert choice["metric"] == "accuracy" and None not in figures.values()
    qat_won = figures["qat"] > figures["post_training"]
    assert (choice["quantization"] == "qat") == qat_won
    if not qat_won:
        assert choice["quantization"].startswith("post-training (QAT was " + (
            "worse" if figures["qat"] < figures["post_training"] else "no better") + " on validation: tflite-int8 accuracy")
    manifest = json.loads(open_bundle(tab_qat["bundle"]).manifest_raw)
    steps = manifest["provenance"]["steps"]
    picked = [s for s in steps if s.get("step") == "int8 choice"]
    assert len(picked) == 1 and picked[0]["quantization"] == choice["quantization"]
    assert any(s.get("step") == "qat" for s in steps) == qat_won  # the bundle's source is the kept model
    report = json.loads((tab_qat["result"].output.parent / f"{tab_qat['result'].output.name}.qat.json").read_text())
    assert report["export"]["choice"]["quantization"] == choice["quantization"]


def test_qat_worse_than_post_training_is_not_kept(tab_qat: dict, tmp_path: Path) -> None:
    """`choose` on real conversions: a model with scrambled weights (surely worse than the
    float model) against post-training int8 of the float model, on the same validation file."""
    from edgekit.contract import sidecar_path
    from edgekit.convert.run import ConvertConfig, convert
    from edgekit.keras_env import import_keras
    from edgekit.train.qat_run import choose

    keras = import_keras()
    result = tab_qat["result"]
    validation, calibration = Path(result.report["outputs"]["validation"]), result.output.parent / (
        f"{result.output.name}.calibration.npz")
    model = keras.models.load_model(tab_qat["model"])
    rng = np.random.default_rng(0)
    model.set_weights([rng.permutation(w.ravel()).reshape(w.shape) for w in model.get_weights()])
    scrambled = tmp_path / "scrambled.keras"
    model.save(scrambled)
    sidecar_path(scrambled).write_bytes(sidecar_path(tab_qat["model"]).read_bytes())

    def report(path: Path) -> object:
        return convert(ConvertConfig(model=path, output=tmp_path / f"{path.stem}.edgekit", variants=("tflite-int8",),
                                     data=validation, calibration_data=calibration, validation_samples=10_000))

    worse, ptq = report(scrambled), report(tab_qat["model"])
    choice = choose(worse, ptq)
    q, p = choice["validation"]["tflite-int8"]["qat"], choice["validation"]["tflite-int8"]["post_training"]
    assert q < p, (q, p)
    assert choice["quantization"] == f"post-training (QAT was worse on validation: tflite-int8 accuracy {q:.4g} vs {p:.4g})"
    assert choose(ptq, worse)["quantization"] == "qat"
    assert choose(ptq, ptq)["quantization"].startswith("post-training (QAT was no better on validation: tflite-int8")
