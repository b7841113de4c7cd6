"""Probing untrusted model bytes in a child process before this process parses them.

The flatbuffer verifier and ONNX Runtime's checks do not stop every malformed model, and
a model that crashes the interpreter (a segmentation fault while it is built or its
tensors are allocated, found by fuzzing) would take the calling process with it.
`probe_model` loads the bytes once, and runs them once on zeros, in a child process
(`child_main`, started through `edgekit.runtime.backends._probe_main`, which opens the
bytes with `open_backend`); a crash there becomes an `InputError`. Bytes that passed are
remembered by hash (``~/.cache/edgekit/probed``), so a device pays for the child process
once per model, not at every start.

Backends call it as ``probe.probe_model(...)``, through this module, so that a test
harness can replace it (the fuzzing worker, which is itself the child process).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import InputError
from edgekit.runtime.backends.base import first_line, format_title

PROBE_TIMEOUT_S = 300.0
PROBE_MAX_ELEMENTS = 1 << 24  # inputs larger than this are loaded but not run by the probe
_PROBE_VERSION = "1"  # part of the cache key: bump when the probe does more


def _probe_key(fmt: str, data: bytes, package: str) -> str:
    from importlib import metadata

    version = "?"
    for dist in (package, "tensorflow-cpu"):  # the package names are their distributions' names
        try:
            version = metadata.version(dist)
            break
        except metadata.PackageNotFoundError:
            continue
    digest = hashlib.sha256(f"{_PROBE_VERSION}:{fmt}:{package}:{version}:".encode())
    digest.update(data)
    return digest.hexdigest()


def _probe_cache() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "edgekit" / "probed"


def probe_model(fmt: str, data: bytes, package: str, folder: Path | None = None,
                timeout: float | None = None) -> None:
    """Load `data` once and run it once on zeros in a child process, unless these bytes
    passed before with this interpreter version.

    Raises:
        InputError: the interpreter crashed or hung on the bytes (contained in the child),
            or refused them (the child's own error, e.g. the verifier's).
    """
    timeout = PROBE_TIMEOUT_S if timeout is None else timeout
    key = _probe_key(fmt, data, package)
    marker = _probe_cache() / key
    if marker.exists():
        return
    what = f"{format_title(fmt)} model"
    code = "import sys; from edgekit.runtime.backends import _probe_main; sys.exit(_probe_main(sys.argv[1:]))"
    argv = [sys.executable, "-c", code, fmt, package, str(folder) if folder is not None else ""]
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    package_root = str(Path(__file__).resolve().parents[3])  # so a source checkout works without an install
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    try:
        proc = subprocess.run(argv, input=bytes(data), capture_output=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        raise InputError(what, expected=f"the interpreter to load it within {timeout:g} s",
                         found="it hung and was killed (in a child process)",
                         hint="the file is corrupt or malicious; do not deploy it") from exc
    except OSError:
        return  # no child processes here (embedded interpreters): load without the probe
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        raise InputError(what, expected="the interpreter to load it and run it once without crashing",
                         found=f"it crashed with {name} (contained in a child process)",
                         hint="the file is corrupt or malicious; do not deploy it")
    reply = None
    for line in reversed(proc.stdout.decode("utf-8", "replace").splitlines()):
        if line.startswith("{"):
            try:
                reply = json.loads(line)
            except ValueError:
                reply = None
            break
    if not isinstance(reply, dict) or not ("ok" in reply or "error" in reply):
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise InputError(what, expected="the interpreter to load it in a child process",
                         found=f"exit code {proc.returncode}: {tail[0][:300]}")
    if "error" in reply:
        from edgekit.errors import EdgekitError

        raise EdgekitError.from_dict(reply["error"])
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        pass  # a read-only home: probe again next time


def zeros(specs: list[tuple[tuple[int, ...], Any]]) -> list[np.ndarray] | None:
    """Zero arrays for inputs of these shapes (open dimensions as 1); None when one is
    larger than `PROBE_MAX_ELEMENTS`."""
    arrays = []
    for shape, dtype in specs:
        shape = tuple(max(1, int(d)) for d in shape)
        if int(np.prod(shape, dtype=np.float64)) > PROBE_MAX_ELEMENTS:
            return None
        arrays.append(np.zeros(shape, dtype))
    return arrays


def child_main(argv: list[str], open_backend: Callable[..., Any]) -> int:
    """The probe's child: model bytes on stdin, one JSON line on stdout.

    Args:
        argv: the model format, the interpreter package and the model's folder ("" for none).
        open_backend: the registry's (`edgekit.runtime.backends.open_backend`), passed in
            because this module sits below the registry.
    """
    from edgekit.errors import EdgekitError

    fmt, package, folder = argv[0], argv[1], argv[2] if len(argv) > 2 else ""
    reply_fd = os.dup(1)
    os.dup2(2, 1)  # interpreters print; keep the reply channel clean
    sys.stdout = sys.stderr
    data = sys.stdin.buffer.read()
    try:
        backend = open_backend(fmt, data, threads=1, package=package or None,
                               folder=Path(folder) if folder else None, probe=False)
        inputs = zeros(backend.input_specs())
        if inputs is not None:
            try:
                backend.run(inputs)
            except EdgekitError:
                pass  # a model that loads but refuses zeros: `run` reports that when it happens
        reply: dict[str, Any] = {"ok": True}
    except EdgekitError as exc:
        reply = {"error": exc.to_dict()}
    except Exception as exc:  # noqa: BLE001 - anything else the interpreter raised is bad input
        reply = {"error": InputError("model", expected="a model the interpreter accepts",
                                     found=first_line(exc)).to_dict()}
    with os.fdopen(reply_fd, "w") as out:
        out.write(json.dumps(reply) + "\n")
    return 0
