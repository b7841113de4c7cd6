"""Parse untrusted model files in a child process.

Native parsers (the TFLite interpreter, protobuf, HDF5, TensorFlow) can crash the
process on malicious input even behind their verifiers. `describe_isolated` runs the
describer in ``python -m edgekit.inspection.isolate`` and turns a crash, a hang or a
garbled reply into an `InputError`; the calling process never dies with the parser.

Protocol: argv ``KIND [PATH]``; model bytes on stdin when PATH is absent; one JSON
object on stdout: ``{"ok": info}`` or ``{"error": EdgekitError.to_dict()}``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError, InputError
from edgekit.inspection.report import ModelInfo

KINDS = ("tflite", "onnx", "keras", "savedmodel")
DEFAULT_TIMEOUT_S = 600.0


def describe_in_process(kind: str, *, path: Path | None = None, data: bytes | None = None) -> ModelInfo:
    """Run the describer for `kind` in this process (trusted input, or inside the child)."""
    if kind == "tflite":
        from edgekit.inspection.tflite import describe_tflite

        return describe_tflite(data if data is not None else Path(path).read_bytes())  # type: ignore[arg-type]
    if kind == "onnx":
        from edgekit.inspection.onnx import describe_onnx

        if data is not None:  # a bundle's member: no folder, external data refused
            return describe_onnx(data)
        return describe_onnx(Path(path).read_bytes(), folder=Path(path).parent)  # type: ignore[arg-type]
    if kind == "keras":
        from edgekit.inspection.keras import describe_keras

        return describe_keras(Path(path))  # type: ignore[arg-type]
    if kind == "savedmodel":
        from edgekit.inspection.savedmodel import describe_savedmodel

        return describe_savedmodel(Path(path))  # type: ignore[arg-type]
    raise ValueError(f"unknown describer kind {kind!r}; expected one of {KINDS}")


def describe_isolated(kind: str, *, path: Path | None = None, data: bytes | None = None,
                      label: str | None = None, timeout: float = DEFAULT_TIMEOUT_S) -> ModelInfo:
    """Run the describer for `kind` in a child process.

    Args:
        kind: one of `KINDS`.
        path: file or directory to describe (path-based describers).
        data: model bytes, sent on stdin (used for verified bundle members, so that the
            bytes parsed are the bytes that were hashed).
        label: how to name the input in messages.
        timeout: seconds before the child is killed.

    Raises:
        EdgekitError: whatever the describer raised, or `InputError` when the child
            crashed, hung or replied with garbage.
    """
    label = label or str(path)
    argv = [sys.executable, "-m", "edgekit.inspection.isolate", kind]
    if path is not None:
        argv.append(str(path))
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("KERAS_BACKEND", "tensorflow")
    env.setdefault("CUDA_VISIBLE_DEVICES", "-1")
    try:
        proc = subprocess.run(argv, input=data if data is not None else b"", capture_output=True,
                              timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        raise InputError(f"reading {label}", expected=f"the parser to finish within {timeout:g} s",
                         found="it hung and was killed", hint="the file is corrupt or malicious") from exc
    if proc.returncode < 0:
        try:
            sig = signal.Signals(-proc.returncode).name
        except ValueError:
            sig = f"signal {-proc.returncode}"
        raise InputError(f"reading {label}", expected="the native parser to reject bad input cleanly",
                         found=f"it crashed with {sig} (contained in a child process)",
                         hint="the file is corrupt or malicious; do not deploy it")
    reply = _last_json_line(proc.stdout)
    if reply is None:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise InputError(f"reading {label}", expected="a description from the parser process",
                         found=f"exit code {proc.returncode}: {tail[0][:300]}")
    if "error" in reply:
        error = dict(reply["error"])
        name = Path(label).name
        if name and name not in str(error.get("what")):
            error["what"] = f"{label}: {error.get('what')}"
        raise EdgekitError.from_dict(error)
    return ModelInfo.from_dict(reply["ok"])


def _last_json_line(stdout: bytes) -> dict[str, Any] | None:
    for line in reversed(stdout.decode("utf-8", "replace").splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


def _child_main(argv: list[str]) -> int:
    kind = argv[0]
    path = Path(argv[1]) if len(argv) > 1 else None
    # Libraries print to stdout; keep the reply channel clean by moving them to stderr.
    reply_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        data = None if path is not None else sys.stdin.buffer.read()
        info = describe_in_process(kind, path=path, data=data)
        reply: dict[str, Any] = {"ok": info.to_dict()}
    except EdgekitError as exc:
        reply = {"error": exc.to_dict()}
    except Exception as exc:  # an unexpected parser exception on untrusted bytes is bad input
        import traceback

        traceback.print_exc()
        reply = {"error": InputError(f"reading {path or kind + ' bytes'}", expected="a well-formed model file",
                                     found=f"{type(exc).__name__}: {str(exc)[:300]}").to_dict()}
    with os.fdopen(reply_fd, "w") as out:
        out.write(json.dumps(reply) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
