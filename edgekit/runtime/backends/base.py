"""What every inference backend shares: the `Backend` interface, the `BackendPlugin` a
registry entry holds, and helpers for the interpreters' outputs and messages.

A backend owns one interpreter or session. Calls are serialized with a lock, so one
interpreter is never used by two threads at once; for parallel inference open one
backend per thread.

Plugin modules import from here (and from `probe`), never from the package, so that the
registry (``edgekit.runtime.backends``) can import them without a cycle.
"""

from __future__ import annotations

import abc
import dataclasses
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from edgekit.errors import InputError

# How messages name a model format ("TFLite model", "running .tflite models needs a TFLite interpreter").
FORMAT_TITLES = {"tflite": "TFLite", "onnx": "ONNX"}


def format_title(fmt: str) -> str:
    return FORMAT_TITLES.get(fmt, fmt)


def output_order(what: str, available: Sequence[str], wanted: Sequence[str] | None) -> list[int]:
    """Positions in `available` (the model file's output names, in its order) of the
    `wanted` names (the manifest's order); the file's own order when `wanted` is None.

    Raises:
        InputError: a wanted name is missing or the counts differ.
    """
    if wanted is None or list(wanted) == list(available):
        return list(range(len(available)))
    positions = {name: i for i, name in enumerate(available)}
    if len(wanted) != len(available) or len(set(wanted)) != len(wanted) or any(n not in positions for n in wanted):
        raise InputError(f"{what} outputs", expected=f"the outputs the manifest lists, {list(wanted)}",
                         found=f"{list(available)}", hint="the bundle's manifest does not describe this model file")
    return [positions[name] for name in wanted]


def first_line(exc: BaseException) -> str:
    """An interpreter's message on one line (they often span several), with its type."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


class Backend(abc.ABC):
    """One loaded model. `run` takes input arrays in model order and returns outputs in
    the order given when it was opened (the manifest's), else in the file's order."""

    name: str = "backend"
    package: str = ""  # the interpreter's distribution (results and bench reports name it)

    def __init__(self) -> None:
        self._lock = threading.Lock()

    input_count: int = 0
    # What the interpreter raises when a model that loaded cannot run (a node fails to
    # prepare or invoke, an input the file's graph refuses); turned into `InputError`.
    _run_failures: tuple[type[BaseException], ...] = (RuntimeError, ValueError)

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run one inference; serialized per backend.

        Raises:
            ValueError: the number of input arrays differs from the model's inputs.
            InputError: the interpreter failed to run the model (a corrupt or
                inconsistent model file; a bundle whose manifest does not describe it).
        """
        if len(inputs) != self.input_count:
            raise ValueError(f"{self.name}: expected {self.input_count} input array(s), got {len(inputs)}")
        with self._lock:
            try:
                return self._run(inputs)
            except self._run_failures as exc:
                raise self._failed(inputs, exc) from exc

    def _failed(self, inputs: Sequence[np.ndarray], exc: BaseException) -> InputError:
        """The error of a model the interpreter failed to run (`run`)."""
        shapes = ", ".join(f"{tuple(a.shape)} {a.dtype}" for a in inputs) or "none"
        return InputError(f"{self.name}: running the model", expected="a model the interpreter can run on "
                          f"inputs {shapes}", found=first_line(exc),
                          hint="the model file is corrupt, or the bundle's manifest does not describe it; "
                          "rebuild it with edgekit convert")

    @abc.abstractmethod
    def _run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One invocation, called with the backend's lock held."""

    @abc.abstractmethod
    def input_specs(self) -> list[tuple[tuple[int, ...], np.dtype]]:
        """Shape and dtype of each input, in model order (a dimension the file leaves
        open is reported as 1 or below): what the probe feeds zeros to."""


@dataclasses.dataclass(frozen=True)
class BackendPlugin:
    """One interpreter edgekit can run models with; the registry keys it by the name
    ``--backend`` takes.

    Attributes:
        format: the model format it runs (``tflite``, ``onnx``): which variants it can run.
        package: its distribution, as results report it and ``open_backend(package=...)``
            forces it.
        module: its top-level module, looked for without importing it (`installed_backends`).
        help: one line for the command line.
        load: imports the library and returns what `open` builds on (the Interpreter
            class, the module); raises ImportError or AttributeError when it cannot.
        open: ``open(data, *, threads, outputs, folder, probe)`` -> an open `Backend`;
            imports the library itself, so a missing one is reported by the backend.
    """

    format: str
    package: str
    module: str
    help: str
    load: Callable[[], Any]
    open: Callable[..., Backend]
