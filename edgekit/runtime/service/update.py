"""Hot model updates: which release to serve, and a new model loaded and checked beside the
running one before the inference loop switches to it.

A release is ``APP_DIR/releases/ID/bundle.edgekit`` and ``APP_DIR/current`` a relative
link to ``releases/ID`` (written by ``edgekit deploy``). The `Updater` polls the link
(about every 0.5 s) and wakes on SIGHUP; a new target is loaded (hashes, the signature
with ``--public-key``, the native-parser probe in a child process: `edgekit.runtime.load`),
self-checked (`edgekit.runtime.selfcheck`, unless ``--skip-self-check``), and run once on
zeros (the health inference). Only then is it offered to the loop, which takes it between two results. A model that
fails a step is refused: the running one keeps serving, and the refusal is logged and
shown in serve.json, /healthz, /metrics and ``STATUS=``.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError, InputError
from edgekit.runtime.model import Model, load
from edgekit.runtime.selfcheck import self_check

BUNDLE_NAME = "bundle.edgekit"
POLL_S = 0.5


@dataclasses.dataclass(frozen=True)
class Target:
    """A bundle to serve: its file and, in an app directory, its release ID."""

    path: Path
    release: str | None = None

    @property
    def label(self) -> str:
        return self.release or self.path.name


@dataclasses.dataclass(frozen=True)
class LoadOptions:
    variant: str | None = None
    backend: str | None = None
    threads: int | None = None
    public_key: Path | None = None
    skip_self_check: bool = False


def current_target(app_dir: Path) -> Target:
    """The release ``APP_DIR/current`` points at.

    Raises:
        InputError: no ``current`` link, or a link that is not ``releases/ID``.
    """
    link = app_dir / "current"
    try:
        target = os.readlink(link)
    except OSError as exc:
        raise InputError(f"app directory {app_dir}", expected="a 'current' link to releases/ID (edgekit deploy "
                         "writes it)", found=exc.strerror or str(exc),
                         hint="serve a bundle file, or deploy one with edgekit deploy") from exc
    release_dir = Path(os.path.normpath(app_dir / target))
    return Target(release_dir / BUNDLE_NAME, release_dir.name)


def health_inference(model: Model) -> None:
    """Run the model once on zeros of its input shape; its outputs must be finite.

    Raises:
        InputError: the interpreter failed, or gave NaN or infinite outputs.
    """
    shape = tuple(1 if d < 0 else d for d in model.input.shape)
    try:
        result = model.predict_tensor(np.zeros(shape, np.float32))
    except EdgekitError:
        raise
    except Exception as exc:  # the interpreter's own errors on this model
        raise InputError(f"health inference of {model.variant.name}", expected="one inference on zeros",
                         found=f"{type(exc).__name__}: {str(exc).strip()[:200]}") from exc
    values = [v for v in (result.score, result.anomaly_score, *(result.values or ())) if v is not None]
    if not np.all(np.isfinite(np.asarray(values, np.float64))):
        raise InputError(f"health inference of {model.variant.name}", expected="finite outputs",
                         found=f"{values}")


def prepare(target: Target, options: LoadOptions, running: Model | None = None) -> tuple[Model, str]:
    """Load and check a bundle: hashes, signature, probe, self-check, health inference;
    with `running`, also that it takes the same input as the running model's source.

    Returns:
        The model, and one line about its self-check.

    Raises:
        EdgekitError: the step that failed (IntegrityError for hashes, signature, a failed
            self-check; InputError for a bundle without one, unless `skip_self_check`).
    """
    model = load(target.path, variant=options.variant, backend=options.backend, threads=options.threads,
                 public_key=options.public_key)
    try:
        if running is not None:
            _same_input(model, running)
        checked = "self-check skipped" if options.skip_self_check else f"self-check {self_check(model).summary()}"
        health_inference(model)
    except BaseException:
        model.close()
        raise
    return model, checked


def _same_input(model: Model, running: Model) -> None:
    differs = running.same_windows(model)
    if differs is not None:
        spec = running.manifest.preprocess
        raise InputError(f"release {model.manifest.name}", expected=f"a model that windows the running stream as "
                         f"{running.manifest.name} does ({type(spec).__name__})", found=differs,
                         hint="restart the service to serve it (systemctl restart)")


def reason_of(exc: BaseException) -> str:
    """One line for the log, serve.json and STATUS=."""
    text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    return text if isinstance(exc, EdgekitError) else f"{type(exc).__name__}: {text}"


class Updater:
    """A thread that prepares new models and hands them to the inference loop.

    Args:
        find: the target to serve now (the ``current`` link's release, or the one bundle).
        poll: look for a new target every `POLL_S` (an app directory); else only on `request`.
        on_taken / on_refused: called in this thread after the loop switched, or a target was
            refused (the old model keeps serving).
    """

    def __init__(self, find: Callable[[], Target], serving: Target, running: Model, options: LoadOptions, *,
                 poll: bool, on_taken: Callable[[Target, Model, Model], None],
                 on_refused: Callable[[Target, str], None]) -> None:
        self.find = find
        self.serving = serving
        self.running = running
        self.options = options
        self.poll = poll
        self.on_taken = on_taken
        self.checked = ""  # the self-check line of the last model prepared
        self.on_refused = on_refused
        self.seen = serving  # the last target tried (a refused one is tried again only on request)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pending: Model | None = None
        self._taken = threading.Event()
        self._thread = threading.Thread(target=self._main, name="edgekit-serve-update", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request(self) -> None:
        """Look again now (SIGHUP): a new target, or the same one reloaded."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._taken.set()

    def take(self) -> Model | None:
        """The inference loop's swap point: the prepared model, once."""
        with self._lock:
            model, self._pending = self._pending, None
        if model is not None:
            self._taken.set()
        return model

    def _main(self) -> None:
        if sys.platform.startswith("linux"):  # a thread's own nice value: loading yields the CPU to inference
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
            except OSError:
                pass
        while not self._stop.is_set():
            forced = self._wake.wait(POLL_S if self.poll else None)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                target = self.find()
            except EdgekitError as exc:
                if forced:
                    self.on_refused(self.seen, reason_of(exc))
                continue
            if target == self.seen and not forced:
                continue
            self.seen = target
            self._try(target)

    def _try(self, target: Target) -> None:
        try:
            model, self.checked = prepare(target, self.options, self.running)
        except Exception as exc:  # any failure: not taken, the old model keeps serving
            self.on_refused(target, reason_of(exc))
            return
        self._taken.clear()
        with self._lock:
            self._pending = model
        self._taken.wait()
        if self._stop.is_set() and self._pending is model:
            return
        old, self.running, self.serving = self.running, model, target
        self.on_taken(target, model, old)
