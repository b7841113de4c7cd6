"""Frame stacking: a clip of many stacked-frame vectors through a model that takes one vector.

Real ONNX models (built with onnx.helper, run by onnxruntime) in real bundles.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit.bundle import Manifest, Variant, write_bundle
from edgekit.features import audio
from edgekit.presets import preset_spec
from edgekit.spec import PostprocessKind, PostprocessSpec, TensorSpec
from tests.support.frontend_parity import parity_clip

SPEC = preset_spec("dcase2020-t2-logmel", clip_samples=16000)  # 1 s: 28 vectors of 640
WEIGHTS = np.random.default_rng(0).standard_normal((640, 3)).astype(np.float32) / 100


def onnx_model(kind: str) -> bytes:
    """anomaly: y = 0.5 x (a poor autoencoder); classification: logits = x W."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    if kind == "anomaly":
        nodes, out, init = [helper.make_node("Mul", ["x", "half"], ["y"])], [1, 640], [
            numpy_helper.from_array(np.array(0.5, np.float32), "half")]
    else:
        nodes, out, init = [helper.make_node("MatMul", ["x", "w"], ["y"])], [1, 3], [
            numpy_helper.from_array(WEIGHTS, "w")]
    graph = helper.make_graph(nodes, kind, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 640])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)], init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def make_bundle(path: Path, kind: str) -> Path:
    pytest.importorskip("onnxruntime")
    out = (1, 640) if kind == "anomaly" else (1, 3)
    variant = Variant(name="onnx-fp32", format="onnx", file="models/onnx-fp32.onnx", precision="fp32",
                      inputs=(TensorSpec("x", (1, 640), "float32"),), outputs=(TensorSpec("y", out, "float32"),))
    post = PostprocessSpec(kind=PostprocessKind.ANOMALY) if kind == "anomaly" else PostprocessSpec(
        kind=PostprocessKind.CLASSIFICATION, apply_softmax=True, top_k=3)
    manifest = Manifest(name=kind, variants=(variant,), preprocess=SPEC, postprocess=post,
                        labels=() if kind == "anomaly" else ("a", "b", "c"))
    write_bundle(path, manifest, {variant.file: onnx_model(kind)})
    return path


def test_anomaly_score_is_the_mean_of_per_vector_errors(tmp_path):
    from edgekit.runtime import load

    model = load(make_bundle(tmp_path / "ae.edgekit", "anomaly"))
    clip = parity_clip(1.0)
    result = model.predict(clip)
    vectors = audio.features(clip, SPEC).astype(np.float64)
    assert vectors.shape == (28, 640)
    errors = np.mean(np.square(vectors - 0.5 * vectors), axis=1)  # the DCASE baseline's per-vector errors
    assert result.anomaly_score == pytest.approx(float(np.mean(errors)), rel=1e-5)


def test_classification_is_the_mean_of_per_vector_probabilities(tmp_path):
    from edgekit.runtime import load

    model = load(make_bundle(tmp_path / "cls.edgekit", "classification"))
    clip = parity_clip(1.0, seed=3)
    result = model.predict(clip)
    logits = audio.features(clip, SPEC).astype(np.float64) @ WEIGHTS
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = (probabilities / probabilities.sum(axis=1, keepdims=True)).mean(axis=0)
    assert result.label == "abc"[int(np.argmax(probabilities))]
    assert result.score == pytest.approx(float(probabilities.max()), rel=1e-5)
    # a stream runs the same reduction on each window
    streamed = next(iter(model.stream([clip], hop_ms=1000)))
    assert streamed.score == pytest.approx(result.score, rel=1e-5)



def test_a_one_vector_autoencoder_converts_with_its_stacked_front_end_and_runs(tmp_path):
    """The DCASE 2020 task 2 baseline shape, end to end: a foreign .onnx taking one 640-value
    vector is packed with ``preset: dcase2020-t2-logmel``; convert validates and calibrates
    on every vector of every clip (not on clips, which no longer fit the model input), and
    `edgekit run` on a WAV scores the clip as the mean of its vectors' errors."""
    pytest.importorskip("onnxruntime")
    from edgekit.runtime import load
    from tests.support.cli import run_cli

    model = tmp_path / "ae.onnx"
    model.write_bytes(onnx_model("anomaly"))
    (tmp_path / "spec.yaml").write_text("preprocess:\n  preset: dcase2020-t2-logmel\n  clip_samples: 16000\n"
                                        "postprocess:\n  kind: anomaly\n")
    data = tmp_path / "data" / "normal"
    data.mkdir(parents=True)
    for seed in range(3):
        audio.write_wav(data / f"clip{seed}.wav", parity_clip(1.0, seed=seed), 16000)
    bundle = tmp_path / "ae.edgekit"
    result = run_cli("convert", str(model), "--preprocess", str(tmp_path / "spec.yaml"), "--data",
                     str(tmp_path / "data"), "--variants", "onnx-fp32,onnx-int8", "-o", str(bundle), "--json")
    assert result.code == 0, result.stderr
    report = __import__("json").loads(result.stdout)
    assert {v["name"] for v in report["variants"]} == {"onnx-fp32", "onnx-int8"}
    assert report["data"]["calibration_samples"] + report["data"]["validation_samples"] == 3 * 28  # vectors, not clips
    clip, _ = audio.read_wav(data / "clip1.wav")
    vectors = audio.features(clip, SPEC).astype(np.float64)
    expected = float(np.mean(np.square(vectors - 0.5 * vectors)))
    assert load(bundle, variant="onnx-fp32").predict(clip).anomaly_score == pytest.approx(expected, rel=1e-5)
