"""A given .tflite's labels, front end and int8 calibration, on the session's tiny model
(`model_files`, 5 softmax outputs): no training, no --data where none is needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit.bundle import open_bundle
from tests.support.cli import assert_one_line_error, run_cli
from tests.support.env import need_module

pytestmark = pytest.mark.tf

NAMES = ("circle", "square", "star", "triangle", "cross")  # the tiny model's 5 outputs, in order


def pack(model: Path, out: Path, *extra: str):
    return run_cli("-q", "convert", str(model), "-o", str(out), *extra)


def test_a_labels_file_names_the_outputs_without_data(model_files, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(NAMES) + "\n")
    out = tmp_path / "tiny.edgekit"
    result = pack(model_files.tflite, out, "--labels", str(labels))
    assert result.code == 0, result.stderr
    assert open_bundle(out).manifest.labels == NAMES
    # --labels comes before the YAML's labels
    spec = tmp_path / "spec.yaml"
    spec.write_text("preprocess:\n  kind: none\nlabels: [a, b, c, d, e]\n")
    result = pack(model_files.tflite, out, "--preprocess", str(spec), "--labels", str(labels))
    assert result.code == 0, result.stderr
    assert open_bundle(out).manifest.labels == NAMES


@pytest.mark.parametrize("count", [3, 6])
def test_a_labels_file_of_the_wrong_length_is_refused_without_data(model_files, tmp_path, count):
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"c{i}" for i in range(count)) + "\n")
    out = tmp_path / "tiny.edgekit"
    result = pack(model_files.tflite, out, "--labels", str(labels))
    assert_one_line_error(result, 1, f"labels file {labels}", "expected 5 labels", f"found {count} labels", "--labels")
    assert not out.exists()


def front_end_warnings(model: Path, out: Path, *extra: str) -> list[str]:
    result = pack(model, out, "--json", *extra)
    assert result.code == 0, result.stderr
    return [w for w in result.json()["warnings"] if "raw input tensors" in w]


def test_a_bundle_without_a_front_end_is_said_so_unless_asked_for(model_files, tmp_path):
    out = tmp_path / "tiny.edgekit"
    (warning,) = front_end_warnings(model_files.tflite, out)
    assert warning.startswith("no --preprocess: the bundle takes raw input tensors ([12, 12, 3] float32, no "
                              "preprocessing)")
    assert "--preprocess FILE.yaml" in warning and "--preprocess none" in warning
    assert open_bundle(out).manifest.preprocess.kind.value == "none"
    # a YAML that leaves its preprocess section out is no front end said on purpose
    labels_only = tmp_path / "labels_only.yaml"
    labels_only.write_text("postprocess:\n  kind: classification\n")
    (warning,) = front_end_warnings(model_files.tflite, out, "--preprocess", str(labels_only))
    assert warning.startswith(f"{labels_only} has no preprocess section") and "kind: none" in warning
    # said on purpose: --preprocess none, or kind: none in the YAML (bare or in its section)
    assert front_end_warnings(model_files.tflite, out, "--preprocess", "none") == []
    for text in ("kind: none\n", "preprocess:\n  kind: none\npostprocess:\n  kind: classification\n"):
        spec = tmp_path / "none.yaml"
        spec.write_text(text)
        assert front_end_warnings(model_files.tflite, out, "--preprocess", str(spec)) == []


def test_int8_from_a_given_tflite_is_calibrated_on_the_whole_range(model_files):
    """ai-edge-quantizer's own calibration averages the samples' ranges (smoothing 0.95):
    the extremes of the last sample would be clipped."""
    need_module("ai_edge_quantizer", 'pip install "edgekit-ml[train]"')
    from edgekit.convert.foreign import ForeignConfig, ForeignModel
    from edgekit.convert.variants.foreign import quantize_tflite
    from edgekit.inspection.isolate import describe_in_process

    calib = np.random.default_rng(0).uniform(-1.0, 1.0, (12, 12, 12, 3)).astype(np.float32)
    calib[-1, 0, 0, 0], calib[-1, 5, 5, 1] = -6.0, 5.0
    with ForeignModel(ForeignConfig(model_files.tflite)) as model:
        data = quantize_tflite(model, "tflite-int8", calib)
    quantization = describe_in_process("tflite", data=data).inputs[0].quantization
    scale, zero_point = quantization.scale[0], quantization.zero_point[0]
    assert scale * (-128 - zero_point) == pytest.approx(-6.0, abs=2 * scale)
    assert scale * (127 - zero_point) == pytest.approx(5.0, abs=2 * scale)
