"""Models that carry code are refused (exit 3) before Keras reads them, unless
--trust-model-code; each plants a canary (a file its code would create) and the tests
prove it was not created.

Run with ``-s`` to print the list of refused models with their exit codes.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edgekit.inspection.keras import find_code
from tests.support.cli import assert_one_line_error, run_cli

pytestmark = [pytest.mark.tf, pytest.mark.slow]

CANARY_MODULE = "edgekit_canary_module"


def _edit_keras(src: Path, dst: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            zout.writestr(item, data)
    return dst


def _edit_h5(src: Path, dst: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    import h5py

    shutil.copyfile(src, dst)
    with h5py.File(dst, "r+") as handle:
        raw = handle.attrs["model_config"]
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        edit(config)
        handle.attrs["model_config"] = json.dumps(config)
    return dst


def _dense(config: dict[str, Any]) -> dict[str, Any]:
    return next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")["config"]


@pytest.fixture(scope="module")
def hostile(model_files, tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """name -> (model file, the canary its code would create)."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "secret.txt").write_text("not for you\n")
    # A module whose import creates its canary: module injection that Keras would import.
    (root / f"{CANARY_MODULE}.py").write_text(
        "import pathlib\n"
        f"pathlib.Path({str(root / 'imported')!r}).touch()\n"
        "import keras\n"
        "class Evil(keras.layers.Layer):\n"
        "    def call(self, x):\n"
        "        return x\n")
    injected = {"module": CANARY_MODULE, "class_name": "Evil", "config": {"name": "evil"}, "registered_name": "Evil"}

    def inject_layer(config: dict[str, Any]) -> None:
        layers = config["config"]["layers"]
        layers.insert(len(layers) - 1, {**injected, "name": "evil", "inbound_nodes": []})

    def get_file(config: dict[str, Any]) -> None:  # copies a file where the config says (CVE-2025-8747's gadget)
        _dense(config)["kernel_initializer"] = {
            "module": "keras.utils", "class_name": "get_file", "registered_name": None,
            "config": {"fname": "copied.txt", "origin": f"file://{root / 'secret.txt'}", "cache_dir": str(root / "getfile")}}

    def unsafe_toggle(config: dict[str, Any]) -> None:  # turns safe mode off, then a Lambda would run (CVE-2025-1550)
        config["config"]["layers"].insert(1, {"module": "keras.config", "class_name": "function",
                                              "config": "enable_unsafe_deserialization", "registered_name": None})

    def os_system(config: dict[str, Any]) -> None:
        _dense(config)["activation"] = {"module": "os", "class_name": "function", "config": "system",
                                        "registered_name": None}

    models = {
        "keras-lambda": (model_files.lambda_keras, model_files.canary),
        "h5-lambda": (model_files.lambda_h5, model_files.canary),
        "keras-module-import": (_edit_keras(model_files.keras, root / "module.keras", inject_layer), root / "imported"),
        "h5-module-import": (_edit_h5(model_files.h5, root / "module.h5", inject_layer), root / "imported"),
        "keras-get-file": (_edit_keras(model_files.keras, root / "getfile.keras", get_file),
                           root / "getfile" / "datasets" / "copied.txt"),
        "keras-unsafe-toggle": (_edit_keras(model_files.keras, root / "toggle.keras", unsafe_toggle), root / "none"),
        "keras-os-system": (_edit_keras(model_files.keras, root / "system.keras", os_system), root / "none"),
    }
    return models


def _env(models: dict[str, tuple[Path, Path]]) -> dict[str, str]:
    """The canary module importable, as an attacker's package installed next to edgekit would be."""
    folder = str(models["keras-module-import"][0].parent)
    return {"PYTHONPATH": os.pathsep.join(filter(None, [folder, os.environ.get("PYTHONPATH")]))}


@pytest.mark.parametrize("name", ["keras-lambda", "h5-lambda", "keras-module-import", "h5-module-import",
                                  "keras-get-file", "keras-unsafe-toggle", "keras-os-system"])
def test_convert_refuses_models_with_code(hostile, name, tmp_path):
    model, canary = hostile[name]
    canary.unlink(missing_ok=True)
    out = tmp_path / "out.edgekit"
    result = run_cli("-q", "convert", str(model), "-o", str(out), "--allow-random-calibration", env=_env(hostile))
    assert_one_line_error(result, 3, "refused", "--trust-model-code")
    assert not out.exists() and not list(tmp_path.iterdir())
    assert not canary.exists(), f"{name}: its code ran"
    print(f"refused: {name} by convert, exit {result.code}")


@pytest.mark.parametrize("name", ["keras-module-import", "keras-get-file"])
def test_prune_refuses_models_with_code(hostile, name, tmp_path):
    model, canary = hostile[name]
    canary.unlink(missing_ok=True)
    out = tmp_path / "out.keras"
    result = run_cli("-q", "prune", str(model), "--sparsity", "0.5", "-o", str(out), env=_env(hostile))
    assert_one_line_error(result, 3, "refused", "--trust-model-code")
    assert not list(tmp_path.iterdir())
    assert not canary.exists(), f"{name}: its code ran"
    print(f"refused: {name} by prune, exit {result.code}")


def test_trust_hands_the_injected_module_to_keras(hostile, tmp_path):
    """With --trust-model-code the exit 3 above does not happen: edgekit's check, not a
    Keras error, is what stopped the file. (Keras 3.15 itself then refuses to import an
    unregistered class; older Keras 3 releases imported it. The Lambda's canary appearing
    when trusted is in test_convert.)"""
    model, _canary = hostile["keras-module-import"]
    result = run_cli("-q", "convert", str(model), "-o", str(tmp_path / "out.edgekit"), "--trust-model-code",
                     "--allow-random-calibration", "--variants", "tflite-fp32", env=_env(hostile))
    assert result.code != 3 and "refused" not in result.stderr, result.stderr


def test_keras_utilities_named_in_a_config_are_code():
    """Only modeling namespaces pass; ``keras.src.X`` is judged by X."""
    def entry(module: str, class_name: str = "X") -> dict[str, Any]:
        return {"module": module, "class_name": class_name, "config": {}}

    clean = ["keras", "keras.layers", "keras.src.models.functional", "keras.src.ops.numpy", "keras.optimizers.schedules",
             "keras.initializers", "keras.dtype_policies"]
    code = ["keras.utils", "keras.config", "keras.saving", "keras.src.utils.file_utils", "keras.src.saving",
            "keras.backend", "kerasx.layers", "os", "builtins"]
    assert [m for m in clean if find_code(entry(m))] == []
    assert [m for m in code if not find_code(entry(m))] == []
    assert find_code({"module": "os", "class_name": "function", "config": "system"}) == [
        "object 'system' from module 'os'"]
