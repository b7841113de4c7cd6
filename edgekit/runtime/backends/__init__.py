"""Inference backends: one registry of the interpreters edgekit runs models with, keyed by
the name ``--backend`` takes.

    from edgekit.runtime.backends import BACKENDS, open_backend
    backend = open_backend("tflite", data)           # the best interpreter installed here
    outputs = backend.run([array])
    for name, plugin in BACKENDS.items():            # what the command line offers
        print(name, plugin.format, plugin.help)

One file per interpreter: `litert` (ai-edge-litert), `tflite_runtime`, `tf_lite` (tf.lite,
the last resort and the one place allowed to import TensorFlow), `onnxruntime`; the TFLite
ones share `tflite`. Each imports its library only when a model is opened. Model bytes
are probed in a child process before this process parses them (`probe`).

Several interpreters for one format are tried in registry order (the first that imports
wins) unless a package is forced. Adding a backend: a module beside these with a
`BackendPlugin` (shared types come from `edgekit.runtime.backends.base`), and one line
in `BACKENDS`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgekit._optional import install_hint
from edgekit.errors import InputError, MissingDependencyError
from edgekit.runtime.backends import litert, onnxruntime, tf_lite, tflite_runtime
from edgekit.runtime.backends.base import Backend, BackendPlugin, format_title, output_order
from edgekit.runtime.backends.probe import child_main, probe_model

# --backend NAME -> plugin; within a format, the order interpreters are tried in
BACKENDS: dict[str, BackendPlugin] = {
    "litert": litert.PLUGIN,
    "tflite-runtime": tflite_runtime.PLUGIN,
    "tf-lite": tf_lite.PLUGIN,
    "onnxruntime": onnxruntime.PLUGIN,
}
FORMATS = tuple(dict.fromkeys(plugin.format for plugin in BACKENDS.values()))  # ("tflite", "onnx")


def _plugins(fmt: str) -> list[BackendPlugin]:
    return [plugin for plugin in BACKENDS.values() if plugin.format == fmt]


TFLITE_PACKAGES = tuple(plugin.package for plugin in _plugins("tflite"))
# --backend NAME -> (model format, interpreter package it forces; None where one interpreter runs the format)
BACKEND_NAMES: dict[str, tuple[str, str | None]] = {
    name: (plugin.format, plugin.package if len(_plugins(plugin.format)) > 1 else None)
    for name, plugin in BACKENDS.items()
}

__all__ = ["BACKENDS", "BACKEND_NAMES", "FORMATS", "TFLITE_PACKAGES", "Backend", "BackendPlugin",
           "installed_backends", "open_backend", "output_order", "probe_model", "tflite_interpreter_class"]


def _first_importable(fmt: str, package: str | None) -> tuple[BackendPlugin, Any]:
    """The plugin of `package` (forced), else the first of the format whose library imports,
    and what its `load` returned.

    Raises:
        MissingDependencyError: none of them (or not the forced one) imports.
    """
    plugins = _plugins(fmt)
    packages = [plugin.package for plugin in plugins]
    errors = []
    for name in (package,) if package else packages:
        try:
            if name not in packages:
                raise ImportError(f"unknown {format_title(fmt)} package {name!r}; expected one of {packages}")
            plugin = plugins[packages.index(name)]
            return plugin, plugin.load()
        except (ImportError, AttributeError) as exc:  # includes numpy-ABI failures
            errors.append(f"{name}: {exc}")
    raise MissingDependencyError(
        f"running .{fmt} models needs a {format_title(fmt)} interpreter",
        expected=", ".join(packages[:-1]) + " or " + packages[-1] if len(packages) > 1 else packages[0],
        found="none importable (" + "; ".join(errors) + ")",
        hint=f"install it with: {install_hint(plugins[0].module)}",
    )


def tflite_interpreter_class(package: str | None = None) -> tuple[Any, str]:
    """The best available TFLite interpreter class and the name of its package.

    Order: ai-edge-litert, tflite-runtime (which fails with numpy 2), then tf.lite as
    a last resort (only when TensorFlow is installed anyway). `package` forces one.

    Raises:
        MissingDependencyError: none of them (or not the forced one) imports.
    """
    plugin, interpreter_class = _first_importable("tflite", package)
    return interpreter_class, plugin.package


def open_backend(fmt: str, data: bytes, threads: int | None = None, package: str | None = None,
                 outputs: Sequence[str] | None = None, folder: Path | None = None, probe: bool = True) -> Backend:
    """Open verified model bytes of format `fmt` (``tflite`` or ``onnx``), optionally with
    a forced interpreter package (see `TFLITE_PACKAGES`).

    Args:
        outputs: output tensor names in the order `run` returns them (a variant's
            manifest outputs); default: the model file's order.
        folder: the folder of a bare model file, where ONNX external data may live; None
            for bytes from a bundle.
        probe: load the bytes in a child process first (`probe_model`); False only for
            bytes known to be safe (the probe's own child process).

    Raises:
        InputError: unknown format, bytes the interpreter refuses or crashes on, or
            `outputs` names that are not the model's.
        MissingDependencyError: no interpreter for the format imports.
        UnsafeModelError: ONNX external data in a bundle, or leaving `folder`.
    """
    plugins = _plugins(fmt)
    if not plugins:
        raise InputError(f"unrecognized model format={fmt!r}", expected=f"one of {sorted(FORMATS)}",
                         found=repr(fmt))
    # One interpreter for the format: it reports a missing library itself, after its own
    # checks of the bytes. Several: the forced one, else the first that imports.
    plugin = plugins[0] if len(plugins) == 1 else _first_importable(fmt, package)[0]
    return plugin.open(data, threads=threads, outputs=outputs, folder=folder, probe=probe)


def installed_backends() -> dict[str, str | None]:
    """Which model formats can run here, and with which package (None: cannot); found
    without importing any interpreter."""
    found: dict[str, str | None] = dict.fromkeys(FORMATS)
    for plugin in BACKENDS.values():
        if found[plugin.format] is None and importlib.util.find_spec(plugin.module) is not None:
            found[plugin.format] = plugin.package
    return found


def _probe_main(argv: list[str]) -> int:
    """The probe's child process (started by `probe_model`): see `child_main`."""
    return child_main(argv, open_backend)
