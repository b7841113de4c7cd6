"""The command line shell: exit codes, one-line errors, import isolation, crash containment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from edgekit import __version__
from edgekit.bundle import MANIFEST_NAME, write_bundle
from tests.support.bundles import rewrite, simple_manifest
from tests.support.cli import assert_one_line_error, run_cli
from tests.support.env import REPO

HEAVY = ("tensorflow", "keras", "onnxruntime", "onnx", "cv2", "tf2onnx", "h5py", "ai_edge_litert")


def test_version():
    result = run_cli("--version")
    assert result.code == 0
    assert result.stdout.strip() == f"edgekit, version {__version__}"


@pytest.mark.parametrize("argv", [["--help"], ["inspect", "--help"], ["demo", "--help"], ["convert", "--help"],
                                  ["run", "--help"]])
def test_help_imports_no_heavy_library(argv):
    code = textwrap.dedent(
        f"""
        import json, sys, contextlib, io
        from edgekit.cli import main
        with contextlib.redirect_stdout(io.StringIO()) as out:
            rc = main({argv!r})
        print(json.dumps({{"rc": rc, "heavy": [m for m in {HEAVY!r} if m in sys.modules],
                          "help": out.getvalue()}}))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    report = json.loads(proc.stdout)
    assert report["rc"] == 0
    assert report["heavy"] == []
    assert "Usage: edgekit" in report["help"]


def test_device_side_modules_import_without_tensorflow():
    code = ("import sys, json, edgekit, edgekit.runtime, edgekit.runtime.run, edgekit.runtime.sources, "
            "edgekit.runtime.sinks, edgekit.runtime.select, edgekit.bundle, edgekit.spec, edgekit.features.image, "
            "edgekit.features.audio, edgekit.features.sensor, edgekit.datasets.loaders, edgekit.inspection, edgekit.cli, "
            "edgekit.devices, edgekit.bench.energy, edgekit.bench.environment, edgekit.bench.harness, edgekit.bench.report, "
            "edgekit.bench.run, edgekit.bench.worker, edgekit.runtime.sources.mic; "
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert json.loads(proc.stdout) == []


def test_help_lists_exit_codes():
    result = run_cli("--help")
    assert result.code == 0
    assert "3 refused for integrity or safety" in " ".join(result.stdout.split())


def test_usage_errors_exit_2():
    assert run_cli("inspect").code == 2
    assert run_cli("no-such-command").code == 2
    assert run_cli("inspect", "x.tflite", "--timeout", "0").code == 2


# ---------------------------------------------------------------------------
# bad input: one line, documented exit code, no traceback


def test_missing_path(tmp_path):
    assert_one_line_error(run_cli("inspect", str(tmp_path / "absent.tflite")), 1, "no such path")


def test_directory_where_a_file_is_expected(tmp_path):
    assert_one_line_error(run_cli("inspect", str(tmp_path)), 1, "a directory without saved_model.pb")


@pytest.mark.parametrize("suffix", [".tflite", ".onnx", ".keras", ".h5"])
def test_zero_byte_model(tmp_path, suffix):
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    assert_one_line_error(run_cli("inspect", str(path)), 1, "0 bytes")


def test_zero_byte_bundle(tmp_path):
    path = tmp_path / "empty.edgekit"
    path.write_bytes(b"")
    assert_one_line_error(run_cli("inspect", str(path)), 1, "error", "expected an edgekit bundle", "empty file")


@pytest.mark.parametrize(("suffix", "fragment"), [
    (".tflite", "TFL3"),
    (".onnx", "ONNX"),
    (".keras", ".keras archive"),
    (".h5", "HDF5"),
    (".edgekit", "not a zip archive"),
])
def test_random_bytes_with_a_model_extension(tmp_path, suffix, fragment):
    path = tmp_path / f"noise{suffix}"
    path.write_bytes(os.urandom(8192))
    result = run_cli("inspect", str(path))
    assert_one_line_error(result, 1, fragment)


def test_unsupported_file_type(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"not supported")
    assert_one_line_error(run_cli("inspect", str(path)), 1, "expected one of ['.tflite', '.onnx'", ".pt")


@pytest.fixture
def fake_bundle(tmp_path) -> Path:
    manifest, payloads = simple_manifest()
    path = tmp_path / "fake.edgekit"
    write_bundle(path, manifest, payloads)
    return path


def test_bundle_manifest_not_json(fake_bundle, tmp_path):
    bad = rewrite(fake_bundle, tmp_path / "bad.edgekit", manifest=b"\x00\x01 not json")
    assert_one_line_error(run_cli("inspect", str(bad)), 3, "refused", "manifest.json is not valid JSON")


def test_bundle_model_file_swapped(fake_bundle, tmp_path):
    original = zipfile.ZipFile(fake_bundle).read("models/tflite-fp32.tflite")
    swapped = bytes(reversed(original))
    bad = rewrite(fake_bundle, tmp_path / "bad.edgekit", members={"models/tflite-fp32.tflite": swapped})
    assert_one_line_error(run_cli("inspect", str(bad)), 3, "refused", "models/tflite-fp32.tflite has sha256")


def test_bundle_truncated(fake_bundle, tmp_path):
    bad = tmp_path / "trunc.edgekit"
    bad.write_bytes(fake_bundle.read_bytes()[:-200])
    assert_one_line_error(run_cli("inspect", str(bad)), 1, "error", "zip archive cut short", "copy it again")


def test_bundle_unknown_schema(fake_bundle, tmp_path):
    document = json.loads(zipfile.ZipFile(fake_bundle).read(MANIFEST_NAME))
    document["schema_version"] = 7
    bad = rewrite(fake_bundle, tmp_path / "bad.edgekit", manifest=json.dumps(document).encode())
    assert_one_line_error(run_cli("inspect", str(bad)), 3, "unknown bundle schema", "upgrade edgekit")


def test_bundle_extra_and_renamed_files(fake_bundle, tmp_path):
    extra = rewrite(fake_bundle, tmp_path / "extra.edgekit", members={"run.sh": b"echo hi"})
    assert_one_line_error(run_cli("inspect", str(extra)), 3, "present but not listed ['run.sh']")
    renamed = rewrite(fake_bundle, tmp_path / "renamed.edgekit",
                      rename={"models/onnx-fp32.onnx": "models/renamed.onnx"})
    assert_one_line_error(run_cli("inspect", str(renamed)), 3, "listed but absent ['models/onnx-fp32.onnx']")


def test_verified_bundle_with_invalid_model_bytes_is_an_input_error(fake_bundle):
    # Hashes match (the bundle is what its author wrote) but the bytes are no TFLite model.
    assert_one_line_error(run_cli("inspect", str(fake_bundle)), 1, "fake.edgekit:models/tflite-fp32.tflite")


def test_verbose_shows_the_traceback(tmp_path):
    result = run_cli("--verbose", "inspect", str(tmp_path / "absent.onnx"))
    assert result.code == 1
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("edgekit: error:")


def test_quiet_flag_is_accepted(tmp_path):
    result = run_cli("-q", "inspect", str(tmp_path / "absent.onnx"))
    assert result.code == 1


# ---------------------------------------------------------------------------
# a native crash while parsing is contained in the child process


CRASHER = textwrap.dedent(
    """
    import os, sys
    # Stand-in for a parser that dies on hostile input: crash the parsing child only.
    if os.environ.get("EDGEKIT_TEST_CRASH_PARSER") and "edgekit.inspection.isolate" in " ".join(sys.orig_argv):
        import faulthandler, signal
        faulthandler.disable()
        os.kill(os.getpid(), signal.SIGSEGV)
    """
)


def test_native_crash_in_parser_is_contained(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(CRASHER)
    model = tmp_path / "hostile.tflite"
    model.write_bytes(b"\x1c\x00\x00\x00TFL3" + os.urandom(512))
    env = {"PYTHONPATH": f"{site}{os.pathsep}{REPO}", "EDGEKIT_TEST_CRASH_PARSER": "1"}
    result = run_cli("inspect", str(model), env=env)
    assert_one_line_error(result, 1, "crashed with SIGSEGV", "contained in a child process")


def test_hung_parser_is_killed(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import os, sys, time\n"
        "if 'edgekit.inspection.isolate' in ' '.join(sys.orig_argv):\n"
        "    time.sleep(60)\n"
    )
    model = tmp_path / "slow.onnx"
    model.write_bytes(b"\x08\x07" + os.urandom(64))
    result = run_cli("inspect", str(model), "--timeout", "3",
                     env={"PYTHONPATH": f"{site}{os.pathsep}{REPO}"})
    assert_one_line_error(result, 1, "hung and was killed")
