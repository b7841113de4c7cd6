"""ONNX external data: references that leave the model's folder or the bundle are refused
(exit 3) before ONNX Runtime sees the model; legitimate ones next to a bare file work."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgekit.errors import InputError, UnsafeModelError
from edgekit.runtime.backends import open_backend
from edgekit.runtime.onnxdata import ExternalRef, external_refs
from tests.support.cli import assert_one_line_error, run_cli
from tests.support.env import need_module

WEIGHTS = np.arange(4, dtype=np.float32).reshape(2, 2)


def model_bytes(location: str | None = None, *, where: str = "initializer") -> bytes:
    """y = x @ W, with W inside the file, or in an external file at `location`: as an
    initializer, as a Constant node's value, or inside an If node's branch."""
    need_module("onnx", 'pip install "edgekit-ml[onnx]"')
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(WEIGHTS, "W")
    if location is not None:
        weights.ClearField("raw_data")
        weights.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", "0"), ("length", str(WEIGHTS.nbytes))):
            entry = weights.external_data.add()
            entry.key, entry.value = key, value
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])
    if where == "initializer":
        graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g", [x], [y], [weights])
    elif where == "constant":
        graph = helper.make_graph([helper.make_node("Constant", [], ["W"], value=weights),
                                   helper.make_node("MatMul", ["x", "W"], ["y"])], "g", [x], [y])
    else:  # a subgraph
        branch = helper.make_graph([helper.make_node("Constant", [], ["W"], value=weights)], "branch", [],
                                   [helper.make_tensor_value_info("W", TensorProto.FLOAT, [2, 2])])
        cond = numpy_helper.from_array(np.array(True), "cond")
        graph = helper.make_graph([helper.make_node("If", ["cond"], ["W"], then_branch=branch, else_branch=branch),
                                   helper.make_node("MatMul", ["x", "W"], ["y"])], "g", [x], [y], [cond])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    return model.SerializeToString()


def write_model(folder: Path, location: str | None, **kwargs) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    path.write_bytes(model_bytes(location, **kwargs))
    return path


@pytest.mark.parametrize("where", ["initializer", "constant", "subgraph"])
def test_every_external_reference_is_found(where):
    need_module("onnx", 'pip install "edgekit-ml[onnx]"')
    import onnx
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    data = model_bytes("w.bin", where=where)
    theirs = [t.name for t in _get_all_tensors(onnx.load_from_string(data)) if uses_external_data(t)]
    expected = [ExternalRef("W", "w.bin")] * (2 if where == "subgraph" else 1)  # then and else branches
    assert external_refs(data) == expected
    assert theirs == ["W"] * len(expected)  # what onnx's own walker finds
    assert external_refs(model_bytes(None, where=where)) == []


def test_external_data_next_to_a_bare_file_is_read_by_edgekit(tmp_path):
    need_module("onnxruntime", 'pip install "edgekit-ml[onnx]"')
    path = write_model(tmp_path / "model", "weights/w.bin")
    (tmp_path / "model" / "weights").mkdir()
    (tmp_path / "model" / "weights" / "w.bin").write_bytes((2 * WEIGHTS).tobytes())
    backend = open_backend("onnx", path.read_bytes(), folder=path.parent)
    x = np.array([[1.0, 1.0]], np.float32)
    np.testing.assert_allclose(backend.run([x])[0], x @ (2 * WEIGHTS))
    result = run_cli("bench", str(path), "--warmup", "1", "--warmup-seconds", "0", "--runs", "5", "--windows", "1",
                     "--format", "json")
    assert result.code == 0, result.stderr


@pytest.mark.parametrize("case", ["dotdot", "absolute", "symlink", "missing", "directory"])
def test_external_data_that_leaves_the_folder_is_refused(tmp_path, case):
    need_module("onnxruntime", 'pip install "edgekit-ml[onnx]"')
    secret = tmp_path / "secret.bin"
    secret.write_bytes(WEIGHTS.tobytes())
    folder = tmp_path / "model"
    folder.mkdir()
    location = {"dotdot": "../secret.bin", "absolute": str(secret), "symlink": "link.bin", "missing": "nothing.bin",
                "directory": "sub"}[case]
    if case == "symlink":
        os.symlink(secret, folder / "link.bin")
    if case == "directory":
        (folder / "sub").mkdir()
    path = write_model(folder, location)
    reason = {"dotdot": "a path with '..'", "absolute": "an absolute path", "symlink": "a symbolic link out",
              "missing": "no such file", "directory": "not a regular file"}[case]
    with pytest.raises(UnsafeModelError, match=reason):
        open_backend("onnx", path.read_bytes(), folder=path.parent)
    assert_one_line_error(run_cli("bench", str(path), "--runs", "5"), 3, reason)


def onnx_bundle(tmp_path: Path, data: bytes) -> Path:
    from edgekit.bundle import Manifest, Variant, write_bundle
    from edgekit.spec import TensorSpec

    variant = Variant(name="onnx-fp32", format="onnx", file="models/onnx-fp32.onnx", precision="fp32",
                      inputs=(TensorSpec("x", (1, 2), "float32"),), outputs=(TensorSpec("y", (1, 2), "float32"),))
    path = tmp_path / "model.edgekit"
    write_bundle(path, Manifest(name="external", variants=(variant,)), {variant.file: data})
    return path


@pytest.mark.parametrize("location", ["w.bin", "../w.bin", "/etc/passwd"])
def test_a_bundle_variant_with_external_data_is_refused(tmp_path, location, monkeypatch):
    """From bytes, ONNX Runtime would resolve the location against the working directory:
    outside the bundle, whatever the location says. A self-contained variant loads."""
    need_module("onnxruntime", 'pip install "edgekit-ml[onnx]"')
    from edgekit.runtime import load

    monkeypatch.chdir(tmp_path)
    (tmp_path / "w.bin").write_bytes(WEIGHTS.tobytes())  # what the working directory would have offered
    bundle = onnx_bundle(tmp_path, model_bytes(location))
    with pytest.raises(UnsafeModelError, match="read from outside the bundle"):
        load(bundle)
    (tmp_path / "rows.csv").write_text("1,1\n")
    assert_one_line_error(run_cli("run", str(bundle), "--source", f"csv:{tmp_path / 'rows.csv'}"), 3, "external data")
    assert_one_line_error(run_cli("bench", str(bundle), "--runs", "5"), 3, "external data")
    (tmp_path / "good").mkdir()
    assert load(onnx_bundle(tmp_path / "good", model_bytes(None))).variant.name == "onnx-fp32"


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.data())
def test_mangled_bytes_give_input_errors_only(data):
    """The pure-Python reader walks untrusted bytes: anything but a list or InputError is a bug."""
    original = bytearray(model_bytes("w.bin", where="subgraph"))
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(original) - 1))
        original[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(original)))
    try:
        refs = external_refs(bytes(original[:cut]))
    except InputError:
        return
    assert all(isinstance(ref, ExternalRef) for ref in refs)
