"""`edgekit convert` across model families: regression with float targets, a generator,
a Transformer encoder, recurrent layers, and ops the converters cannot handle.

Tiny models built here, real converters and interpreters; most conversions run
in-process (the CLI is exercised where a flag or the one-line error matters).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from edgekit.bundle import open_bundle
from tests.support.cli import assert_one_line_error, run_cli
from tests.support.models import save_keras

pytestmark = pytest.mark.tf


def _write(folder: Path, name: str, model, contract: str, **arrays: np.ndarray) -> Path:
    """MODEL.keras, MODEL.preprocess.yaml and heldout.npz, as `edgekit train` leaves them."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.keras"
    save_keras(model, path)
    (folder / f"{name}.preprocess.yaml").write_text(contract)
    if arrays:
        np.savez(folder / "heldout.npz", **arrays)
    return path


def _convert(model: Path, out: Path, data: Path | None, variants: tuple[str, ...], **options):
    from edgekit.convert.run import ConvertConfig, convert

    return convert(ConvertConfig(model=model, output=out, data=data, variants=variants,
                                 allow_random_calibration=data is None, **options))


# ---------------------------------------------------------------------------
# models


def _series(rng: np.random.Generator, n: int, steps: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy sines around 20 with a 5 amplitude: the next `horizon` values are the targets."""
    t = np.arange(steps + horizon)
    phase, freq = rng.uniform(0, 6.28, (n, 1)), rng.uniform(0.1, 0.4, (n, 1))
    s = 20 + 5 * np.sin(freq * t + phase) + rng.normal(0, 0.2, (n, t.size))
    return s[:, :steps, None].astype("float32"), s[:, steps:].astype("float32")


def _recurrent(keras, layer, steps: int, horizon: int, mean: float, std: float):
    """Conv1D, a recurrent layer, Dense, and a Rescaling back to the targets' units."""
    inp = keras.Input((steps, 1))
    h = keras.layers.Conv1D(8, 3, strides=2, activation="relu")(inp)
    h = layer(h)
    return keras.Model(inp, keras.layers.Rescaling(scale=std, offset=mean)(keras.layers.Dense(horizon)(h)))


@pytest.fixture(scope="module")
def forecasters(tmp_path_factory):
    """LSTM and GRU (unroll=True) forecasters, trained briefly, with float targets."""
    import keras

    root = tmp_path_factory.mktemp("forecast")
    rng = np.random.default_rng(0)
    steps, horizon = 24, 4
    x, y = _series(rng, 400, steps, horizon)
    mean, std = float(y.mean()), float(y.std())
    xn = (x - mean) / std
    paths = {}
    for name, layer in (("lstm", keras.layers.LSTM), ("gru", keras.layers.GRU)):
        keras.utils.set_random_seed(1)
        model = _recurrent(keras, layer(8, unroll=True), steps, horizon, mean, std)
        model.compile("adam", "mse")
        model.fit(xn[:300], y[:300], epochs=4, verbose=0)
        paths[name] = _write(root / name, name, model, "preprocess: {kind: none}\npostprocess: {kind: regression}\n",
                             x=xn[300:], y=y[300:])
    return paths


@pytest.fixture(scope="module")
def transformer(tmp_path_factory):
    """Dense projection + sinusoidal positions (a numpy constant), MultiHeadAttention (4
    heads, key_dim 8), LayerNormalization, FFN, GlobalAveragePooling1D, softmax."""
    import keras

    rng = np.random.default_rng(2)
    seq, dim = 12, 16
    pos = np.arange(seq)[:, None] / np.power(10000, (2 * (np.arange(dim)[None] // 2)) / dim)
    pe = np.where(np.arange(dim)[None] % 2 == 0, np.sin(pos), np.cos(pos)).astype("float32")
    y = rng.integers(0, 3, 360)
    x = rng.normal(0, 1, (360, seq, 4)).astype("float32")
    x[:, :, 0] += (y[:, None] - 1) * 1.0
    keras.utils.set_random_seed(2)
    inp = keras.Input((seq, 4))
    h = keras.layers.Dense(dim)(inp) + pe
    h = keras.layers.LayerNormalization()(h + keras.layers.MultiHeadAttention(4, 8)(h, h))
    f = keras.layers.Dense(dim)(keras.layers.Dense(32, activation="relu")(h))
    h = keras.layers.LayerNormalization()(h + f)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling1D()(h)))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x[:240], y[:240], epochs=4, verbose=0)
    return _write(tmp_path_factory.mktemp("transformer"), "encoder", model,
                  "preprocess: {kind: none}\npostprocess: {kind: classification}\nlabels: [a, b, c]\n",
                  x=x[240:], y=y[240:])


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    """A DCGAN-style generator: latent (8,) -> 16x16x3 in [0, 1] (tanh, then Rescaling)."""
    import keras

    keras.utils.set_random_seed(3)
    inp = keras.Input((8,))
    h = keras.layers.Dense(4 * 4 * 16, use_bias=False)(inp)
    h = keras.layers.LeakyReLU(0.2)(keras.layers.BatchNormalization()(h))
    h = keras.layers.Reshape((4, 4, 16))(h)
    h = keras.layers.Conv2DTranspose(8, 4, strides=2, padding="same", use_bias=False)(h)
    h = keras.layers.LeakyReLU(0.2)(keras.layers.BatchNormalization()(h))
    h = keras.layers.Conv2DTranspose(3, 4, strides=2, padding="same", activation="tanh")(h)
    model = keras.Model(inp, keras.layers.Rescaling(0.5, offset=0.5)(h))
    latents = np.random.default_rng(3).normal(0, 1, (90, 8)).astype("float32")
    return _write(tmp_path_factory.mktemp("generator"), "dcgan", model,
                  "preprocess: {kind: none}\npostprocess: {kind: generation}\n", x=latents)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """A small dense classifier with integer labels."""
    import keras

    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 240)
    x = (rng.normal(0, 1, (3, 10))[y] + rng.normal(0, 0.5, (240, 10))).astype("float32")
    keras.utils.set_random_seed(4)
    inp = keras.Input((10,))
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(keras.layers.Dense(16, activation="relu")(inp)))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=10, verbose=0)
    return _write(tmp_path_factory.mktemp("mlp"), "mlp", model,
                  "preprocess: {kind: none}\npostprocess: {kind: classification}\nlabels: [a, b, c]\n", x=x, y=y)


# ---------------------------------------------------------------------------
# regression


def test_float_targets_load_as_targets_and_integers_as_labels(tmp_path):
    from edgekit.datasets.loaders import load_arrays
    from edgekit.spec import NoPreprocess

    np.savez(tmp_path / "f.npz", x=np.zeros((5, 3), np.float32), y=np.linspace(0, 1, 10, dtype=np.float32).reshape(5, 2))
    samples = load_arrays(tmp_path / "f.npz", NoPreprocess(), (3,))
    assert samples.labels is None and samples.targets.dtype == np.float32 and samples.targets.shape == (5, 2)
    assert samples.subset(np.array([1, 3])).targets.tolist() == samples.targets[[1, 3]].tolist()
    np.savez(tmp_path / "i.npz", x=np.zeros((4, 3), np.float32), y=np.array([0, 2, 1, 2]))
    samples = load_arrays(tmp_path / "i.npz", NoPreprocess(), (3,))
    assert samples.labels.tolist() == [0, 2, 1, 2] and samples.targets is not None


def test_regression_fidelity_is_rmse_against_the_targets(forecasters, tmp_path):
    out = tmp_path / "lstm.edgekit"
    data = forecasters["lstm"].parent / "heldout.npz"
    report = _convert(forecasters["lstm"], out, data, ("tflite-fp32", "tflite-int8", "onnx-fp32", "onnx-int8"))
    ref = report.reference
    assert ref["task"] == "regression" and ref["metric"] == "rmse" and ref["value"] > 0 and ref["mae"] > 0
    assert not [v.error for v in report.variants if v.error]
    for v in report.variants:
        m = v.metrics
        assert m["drop_basis"] == "rmse_increase_pct", v.name
        assert math.isclose(m["drop_pts"], 100 * (m["rmse"] / ref["value"] - 1), rel_tol=1e-9, abs_tol=1e-9)
        assert m["mae"] > 0 and m["output_rmse"] >= 0
    fp32 = next(v for v in report.variants if v.name == "tflite-fp32").metrics
    assert abs(fp32["drop_pts"]) < 0.01  # the float variant reproduces the float model's RMSE
    assert next(v for v in report.variants if v.name == "tflite-int8").metrics["drop_pts"] < 10
    table = report.render()
    assert "float reference: rmse" in table and " RMSE " in table and "% above the float model's" in table
    manifest = open_bundle(out).manifest
    assert manifest.postprocess.kind.value == "regression"
    assert manifest.metrics["reference"]["metric"] == "rmse"
    assert manifest.variant("onnx-int8").metrics["drop_basis"] == "rmse_increase_pct"


def test_regression_gate_on_the_command_line(forecasters, tmp_path):
    out = tmp_path / "lstm.edgekit"
    result = run_cli("convert", str(forecasters["lstm"]), "-o", str(out), "--data",
                     str(forecasters["lstm"].parent / "heldout.npz"), "--variants", "tflite-fp32,tflite-int8",
                     "--max-accuracy-drop", "50", "--json")
    assert result.code == 0, result.stderr
    report = result.json()
    assert report["reference"]["metric"] == "rmse" and report["data"]["targets"] is True
    int8 = next(v for v in report["variants"] if v["name"] == "tflite-int8")
    assert int8["gate"] == "pass" and int8["metrics"]["drop_basis"] == "rmse_increase_pct"
    assert report["gate"]["passed"] is True


def test_regression_without_targets_compares_with_the_float_outputs(forecasters, tmp_path):
    data = tmp_path / "x.npz"
    np.savez(data, x=np.load(forecasters["lstm"].parent / "heldout.npz")["x"])
    report = _convert(forecasters["lstm"], tmp_path / "x.edgekit", data, ("tflite-fp32", "tflite-int8"))
    assert report.reference["metric"] is None
    int8 = next(v for v in report.variants if v.name == "tflite-int8").metrics
    assert int8["drop_basis"] == "output_rmse_pct" and 0 < int8["drop_pts"] < 20
    assert "rmse" not in int8 and "of their standard deviation" in report.render()


def test_gru_shares_its_bias_across_steps_and_still_quantizes_in_onnx(forecasters, tmp_path):
    # onnxruntime.quantization names bias copies NAME + digits, which collided with tf2onnx
    # names in canonical form ("t47" + "8" == "t478"): "shared mode is not supported".
    out = tmp_path / "gru.edgekit"
    report = _convert(forecasters["gru"], out, forecasters["gru"].parent / "heldout.npz", ("onnx-fp32", "onnx-int8"))
    assert not [v.error for v in report.variants if v.error]
    assert open_bundle(out).manifest.variant("onnx-int8").precision == "int8"


def test_float_labels_for_a_classifier_are_refused(classifier, tmp_path):
    from edgekit.errors import InputError

    data = tmp_path / "float.npz"
    np.savez(data, x=np.zeros((20, 10), np.float32), y=np.zeros(20, np.float32))
    with pytest.raises(InputError, match=r"expected 20 integer labels, found 20 of float32.*postprocess kind: regression"):
        _convert(classifier, tmp_path / "x.edgekit", data, ("tflite-fp32",))
    assert not (tmp_path / "x.edgekit").exists()


def test_targets_that_do_not_fit_the_output_are_one_line_errors(forecasters, tmp_path):
    data = tmp_path / "bad.npz"
    np.savez(data, x=np.load(forecasters["lstm"].parent / "heldout.npz")["x"][:20], y=np.zeros((20, 3), np.float32))
    result = run_cli("-q", "convert", str(forecasters["lstm"]), "-o", str(tmp_path / "x.edgekit"), "--data", str(data),
                     "--variants", "tflite-fp32")
    assert_one_line_error(result, 1, "expected 4 value(s) per sample", "found 3")


# ---------------------------------------------------------------------------
# generation


def test_generator_converts_and_runs(generator, tmp_path):
    from edgekit.runtime import load

    out = tmp_path / "dcgan.edgekit"
    report = _convert(generator, out, generator.parent / "heldout.npz",
                      ("tflite-fp32", "tflite-fp16", "tflite-int8", "onnx-fp32", "onnx-int8"), max_accuracy_drop=1.0)
    assert report.reference["task"] == "generation" and report.reference["metric"] is None
    assert not [v.error for v in report.variants if v.error]
    for v in report.variants:
        assert v.metrics["drop_pts"] is None and v.metrics["drop_basis"] is None and v.gate == "none"
        assert v.metrics["snr_db"] > (60 if v.precision in ("fp32", "fp16") else 20), v.name
    assert report.gate_passed and any("does not apply" in w for w in report.warnings)
    assert "no gate basis for this task" in report.render()
    manifest = open_bundle(out).manifest
    assert manifest.postprocess.kind.value == "generation"
    assert manifest.variant("tflite-int8").outputs[0].dtype.value == "int8"

    latent = np.load(generator.parent / "heldout.npz")["x"][0]
    results = [load(out, variant=name).predict(latent) for name in ("tflite-fp32", "tflite-int8")]
    for result in results:
        assert result.kind == "generation" and result.output.shape == (16, 16, 3)
        assert 0.0 <= result.output.min() and result.output.max() <= 1.0
    assert np.max(np.abs(results[0].output - results[1].output)) < 0.1
    line = json.loads(results[1].to_json())
    assert line["output"]["shape"] == [16, 16, 3] and len(line["output"]["values"]) == 16 * 16 * 3
    assert line["output"]["min"] <= line["output"]["mean"] <= line["output"]["max"]

    # `edgekit run` with latent vectors as CSV lines on stdin: one JSON line per vector
    import subprocess
    import sys

    from tests.support.env import REPO

    text = "\n".join(",".join(repr(float(v)) for v in z) for z in np.load(generator.parent / "heldout.npz")["x"][:2])
    proc = subprocess.run([sys.executable, "-m", "edgekit", "run", str(out), "--source", "stdin"], input=text + "\n",
                          capture_output=True, text=True, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [x["kind"] for x in lines] == ["generation", "generation"]
    assert lines[0]["output"]["values"] == line["output"]["values"]  # the same int8 variant, the same latent


# ---------------------------------------------------------------------------
# Transformer


def test_transformer_encoder_converts_to_every_default_form(transformer, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # onnxruntime's shape inference must not leave files here
    out = tmp_path / "encoder.edgekit"
    report = _convert(transformer, out, transformer.parent / "heldout.npz",
                      ("tflite-fp32", "tflite-int8", "tflite-int16x8", "onnx-fp32", "onnx-int8"))
    by_name = {v.name: v for v in report.variants}
    assert not [v.error for v in report.variants if v.error and v.name != "tflite-int16x8"], report.render()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["encoder.edgekit"]
    for v in report.variants:
        if v.data is not None:
            assert v.metrics["top1_agreement"] >= 0.9, v.name
    assert by_name["onnx-int8"].precision == "int8"  # static QDQ, not a substitute
    int8 = by_name["tflite-int8"]
    if int8.precision == "int8-float-ops":  # what this converter keeps in float (NEG in TF 2.21), stated
        assert int8.substitute["float_ops"] and "without an int8 kernel" in int8.substitute["reason"]
        assert open_bundle(out).manifest.variant("tflite-int8").metrics["substitute"]["produced"] == "int8-float-ops"
    else:
        assert int8.precision == "int8" and int8.substitute is None
    # TF 2.21: no int16x8 kernel for NEG, and with float fallback ops the file fails in the
    # interpreter (SQUARED_DIFFERENCE has no int16 kernel): reported, never written.
    int16 = by_name["tflite-int16x8"]
    if int16.error:
        assert int16.ops and "still possible: tflite-fp32, tflite-int8, onnx-fp32, onnx-int8" in int16.error
        assert "tflite-int16x8" not in open_bundle(out).manifest.variant_names


# ---------------------------------------------------------------------------
# ops a converter cannot handle


def test_converter_errors_name_the_op():
    from edgekit.convert.variants import op_reason, ops_in_error

    # Messages as TensorFlow 2.21's converter, tf2onnx and onnxruntime word them.
    select = ("loc(fused[\"Atan:\", \"f/Atan@__inference\"]): error: 'tf.Atan' op is neither a custom op nor a flex op\n"
              "Some ops are not supported by the native TFLite runtime\nTF Select ops: Atan, Cumprod\nDetails:")
    assert ops_in_error(select) == ("Atan", "Cumprod")
    assert op_reason(("Atan", "Cumprod"), select, "fp32") == "ops Atan, Cumprod are not a TFLite builtin (it would need TF Select)"
    assert ops_in_error("Quantization to 16x8-bit not yet supported for op: 'SIN'.") == ("SIN",)
    assert "has no int16x8 kernel" in op_reason(("SIN",), "Quantization to 16x8-bit not yet supported for op: 'SIN'.", "")
    legalize = "error: failed to legalize operation 'tf.TensorListReserve' that was explicitly marked illegal"
    assert ops_in_error(legalize) == ("TensorListReserve",)
    assert "unroll=True" in op_reason(("TensorListReserve",), legalize, "fp32")
    assert ops_in_error("Unsupported ops: Counter({'Bucketize': 1, 'Bitcast': 2})") == ("Bucketize", "Bitcast")
    assert ops_in_error("[ONNXRuntimeError] : 10 : INVALID_GRAPH : No Op registered for Bucketize with domain_version "
                        "of 17") == ("Bucketize",)
    assert ops_in_error("something else went wrong") == ()


@pytest.fixture(scope="module")
def rnn_loop(tmp_path_factory):
    """An LSTM without unroll=True: a TensorFlow loop the TFLite builtins cannot express."""
    import keras

    inp = keras.Input((10, 3))
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.LSTM(6)(inp)))
    x = np.random.default_rng(5).normal(0, 1, (30, 10, 3)).astype("float32")
    return _write(tmp_path_factory.mktemp("loop"), "loop", model,
                  "preprocess: {kind: none}\npostprocess: {kind: regression}\n", x=x)


def test_unsupported_op_names_the_op_and_what_is_still_possible(rnn_loop, tmp_path):
    out = tmp_path / "loop.edgekit"
    report = _convert(rnn_loop, out, rnn_loop.parent / "heldout.npz", ("tflite-fp32", "tflite-int8", "onnx-fp32"))
    failed = {f["name"]: f for f in report.to_dict()["failed"]}
    assert sorted(failed) == ["tflite-fp32", "tflite-int8"]
    for f in failed.values():
        assert f["op"] == "TensorListReserve" and f["still_possible"] == ["onnx-fp32"]
        assert "unroll=True" in f["reason"] and f["reason"].endswith("still possible: onnx-fp32")
    # tflite-int8 tried its other forms before giving up, and says so
    assert "as int8-float-ops: the same" in failed["tflite-int8"]["reason"]
    assert "FAILED: tflite-fp32: op TensorListReserve" in report.render()
    assert open_bundle(out).manifest.variant_names == ["onnx-fp32"]



def test_a_variant_that_cannot_be_made_is_one_line_without_the_converters_diagnostics(rnn_loop, tmp_path):
    """The converter's MLIR errors (several long lines on fd 2) stay out of the user's stderr."""
    result = run_cli("-q", "convert", str(rnn_loop), "-o", str(tmp_path / "loop.edgekit"), "--variants", "tflite-fp32",
                     "--data", str(rnn_loop.parent / "heldout.npz"))
    assert_one_line_error(result, 1, "op TensorListReserve", "every variant failed")
    assert "loc(callsite" not in result.stderr and result.stderr.count("tflite-fp32:") == 1
    assert not (tmp_path / "loop.edgekit").exists()

LAMBDA_OPS = """
import sys, numpy as np, keras
keras.utils.set_random_seed(6)
inp = keras.Input((8,))
h = keras.layers.Dense(8)(inp)
s = keras.layers.Lambda(lambda t: __import__("keras").ops.sin(t), output_shape=(8,), name="sine")(h)
b = keras.layers.Lambda(lambda t: __import__("keras").ops.cast(__import__("keras").ops.digitize(t, [-0.5, 0.0, 0.5]), "float32"), output_shape=(8,),
                           name="bins")(h)
out = keras.layers.Dense(3, activation="softmax")(keras.layers.Concatenate()([s, b]))
keras.Model(inp, out).save(sys.argv[1])
"""


def test_ops_without_integer_kernels_and_without_onnx_equivalent(tmp_path):
    """SIN has no int8/int16x8 kernel; Bucketize (keras.ops.digitize) has no ONNX equivalent."""
    import subprocess
    import sys

    model = tmp_path / "ops.keras"
    subprocess.run([sys.executable, "-c", LAMBDA_OPS, str(model)], check=True, capture_output=True)
    out = tmp_path / "ops.edgekit"
    result = run_cli("convert", str(model), "-o", str(out), "--trust-model-code", "--allow-random-calibration",
                     "--variants", "tflite-fp32,tflite-int8,tflite-int16x8,onnx-fp32,onnx-int8", "--json")
    assert result.code == 0, result.stderr
    report = result.json()
    variants = {v["name"]: v for v in report["variants"]}
    int8 = variants["tflite-int8"]
    assert int8["precision"] == "int8-float-ops" and "SIN" in int8["substitute"]["float_ops"]
    assert "kept ops" in int8["substitute"]["reason"] and "in float" in int8["substitute"]["reason"]
    int16 = variants["tflite-int16x8"]
    assert int16["precision"] == "int16x8-float-ops"
    assert int16["substitute"]["tried"][0]["ops"] and "no int16x8 kernel" in int16["substitute"]["reason"]
    failed = {f["name"]: f for f in report["failed"]}
    assert sorted(failed) == ["onnx-fp32", "onnx-int8"]
    assert failed["onnx-fp32"]["op"] == "Bucketize"
    assert failed["onnx-int8"]["still_possible"] == ["tflite-fp32", "tflite-int8", "tflite-int16x8"]
    manifest = open_bundle(out).manifest
    assert manifest.variant_names == ["tflite-fp32", "tflite-int8", "tflite-int16x8"]
    assert manifest.variant("tflite-int8").precision == "int8-float-ops"
    assert manifest.metrics["failed_variants"]["onnx-fp32"].startswith("onnx-fp32: op Bucketize")


# ---------------------------------------------------------------------------
# the next form when one fails; produced files that do not run


def _failing(message: str):
    from edgekit.convert.variants import conversion_error

    def build(*_args, **_kwargs):
        raise conversion_error("tflite-int8", RuntimeError(message), "int8")
    return build


def test_int8_falls_back_to_float_ops_then_dynamic_range(classifier, tmp_path, monkeypatch):
    """Older converters reject an op in full-integer mode ("Quantization not yet supported
    for op"); this one keeps it in float instead, so the refusal is simulated for the first
    form and the forms after it run for real."""
    from edgekit.convert.variants import onnx_int8, tflite_int8

    monkeypatch.setattr(tflite_int8, "build_int8", _failing("Quantization not yet supported for op: 'SIN'."))
    monkeypatch.setattr(onnx_int8, "build_static", _failing("quantize_static: something it cannot quantize"))
    data = classifier.parent / "heldout.npz"
    out = tmp_path / "a.edgekit"
    report = _convert(classifier, out, data, ("tflite-fp32", "tflite-int8", "onnx-int8"))
    by_name = {v.name: v for v in report.variants}
    int8 = by_name["tflite-int8"]
    assert int8.precision == "int8-float-ops" and int8.inputs[0].dtype.value == "float32"
    assert int8.substitute["requested"] == "int8" and int8.substitute["ops"] == ["SIN"]
    assert "SIN has no int8 kernel" in int8.substitute["reason"]
    assert by_name["onnx-int8"].precision == "dynamic-int8" and by_name["onnx-int8"].substitute
    assert "is int8-float-ops, not int8: int8 failed (op SIN has no int8 kernel)" in report.render()
    manifest = open_bundle(out).manifest
    assert manifest.variant("tflite-int8").metrics["substitute"]["produced"] == "int8-float-ops"
    assert manifest.variant("onnx-int8").precision == "dynamic-int8"

    monkeypatch.setattr(tflite_int8, "build_float_ops", _failing("Quantization not yet supported for op: 'SIN'."))
    report = _convert(classifier, tmp_path / "b.edgekit", data, ("tflite-fp32", "tflite-int8"))
    int8 = next(v for v in report.variants if v.name == "tflite-int8")
    assert int8.precision == "dynamic-int8" and int8.substitute["produced"] == "dynamic-int8"

    # Next to tflite-dynamic the dynamic-range form would be a duplicate: not produced twice.
    report = _convert(classifier, tmp_path / "c.edgekit", data, ("tflite-dynamic", "tflite-int8"))
    failed = report.to_dict()["failed"]
    assert [f["name"] for f in failed] == ["tflite-int8"] and failed[0]["op"] == "SIN"
    assert "dynamic-int8 form is produced as tflite-dynamic" in failed[0]["reason"]
    assert failed[0]["still_possible"] == ["tflite-dynamic"]


def test_a_produced_file_that_does_not_run_is_reported_not_written(classifier, tmp_path, monkeypatch):
    """A converter that "succeeds" with a file the interpreter refuses. (The Transformer's
    tflite-int16x8 with float ops is a real one: it fails when invoked.)"""
    import dataclasses

    from edgekit.convert.variants import VARIANTS, Form

    def broken(*_args, **_kwargs):
        return b"\x1c\x00\x00\x00TFL3" + bytes(200)  # a TFLite header over nothing
    form = (Form("fp16", "float16 weights", broken),)
    monkeypatch.setitem(VARIANTS, "tflite-fp16", dataclasses.replace(VARIANTS["tflite-fp16"], forms=lambda _o: form))
    out = tmp_path / "x.edgekit"
    report = _convert(classifier, out, classifier.parent / "heldout.npz", ("tflite-fp32", "tflite-fp16"))
    fp16 = next(v for v in report.variants if v.name == "tflite-fp16")
    assert fp16.data is None and "the converter produced a model the runtime refuses" in fp16.error
    assert open_bundle(out).manifest.variant_names == ["tflite-fp32"]
