"""What a running `edgekit serve` knows about itself: serve.json, /healthz and /metrics
are views of one `ServiceState` (fields as in the README's ``edgekit serve`` section)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from edgekit.bundle.atomic import atomic_write_bytes
from edgekit.errors import EdgekitError
from edgekit.runtime.model import Model

DEFAULT_STALL_S = 30.0  # one input processing longer than this is a hang (without a systemd watchdog)
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ServiceState:
    """The service's fields, updated by the inference loop and the updater, read by the
    HTTP thread; `state_file` (serve.json) is rewritten atomically on every change."""

    def __init__(self, state_file: Path | None, host: str) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.state_file = state_file
        self.lock = threading.Lock()
        self.pid = os.getpid()
        self.host = host
        self.port: int | None = None
        self.started = time.time()
        self._started_mono = time.monotonic()
        self.ready = False
        self.failing: str | None = None  # why the service does not serve (a stalled source, a stop)
        self.release: str | None = None
        self.bundle: str | None = None
        self.model_sha256: str | None = None
        self.variant: str | None = None
        self.backend: str | None = None
        self.last_update: dict[str, Any] | None = None
        self.results = 0
        self.control: Any = None  # the run's RunControl: the open source's and sink's counters
        self.stall_s = DEFAULT_STALL_S  # serve sets half the systemd watchdog interval when there is one
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram("edgekit_latency_seconds", "End-to-end latency of one inference (pre- and "
                                 "postprocessing included)", buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self.updates = Counter("edgekit_updates", "Model updates tried, by outcome", ["outcome"],
                               registry=self.registry)
        for outcome in ("taken", "refused"):
            self.updates.labels(outcome)

    # -- changes -------------------------------------------------------------------------

    def serving(self, model: Model, release: str | None, bundle: Path) -> None:
        """The model now serving (at start, and after an update was taken)."""
        with self.lock:
            self.release = release
            self.bundle = str(bundle)
            self.model_sha256 = model.manifest.files[model.variant.file].sha256
            self.variant = model.variant.name
            self.backend = model.package
        self.save()

    def update(self, release: str | None, outcome: str, reason: str | None) -> None:
        with self.lock:
            self.last_update = {"release": release, "outcome": outcome, "reason": reason, "time": round(time.time(), 3)}
            self.updates.labels(outcome).inc()
        self.save()

    def result(self, total_ms: float) -> bool:
        """Count one result; True for the first (the service is now ready)."""
        self.latency.observe(total_ms / 1e3)
        with self.lock:
            self.results += 1
            first = not self.ready
            self.ready = True
        if first:
            self.save()
        return first

    def set_port(self, port: int) -> None:
        with self.lock:
            self.port = port
        self.save()

    def set_failing(self, reason: str | None) -> None:
        with self.lock:
            self.failing = reason
        self.save()

    # -- views ---------------------------------------------------------------------------

    def uptime(self) -> float:
        return time.monotonic() - self._started_mono

    def fields(self) -> dict[str, Any]:
        """serve.json's fields."""
        with self.lock:
            return {"pid": self.pid, "host": self.host, "port": self.port, "started": round(self.started, 3),
                    "ready": self.ready and self.failing is None, "release": self.release, "bundle": self.bundle,
                    "model_sha256": self.model_sha256, "variant": self.variant, "backend": self.backend,
                    "last_update": self.last_update}

    def busy_s(self) -> float:
        """Seconds the current input has been processing (0 while the loop waits for input)."""
        return self.control.busy_s() if self.control is not None else 0.0

    def idle_s(self) -> float | None:
        """Seconds since the source last delivered an input (None: nothing yet)."""
        last = getattr(self.control, "last_input", None)
        return None if last is None else time.monotonic() - last

    def stalled(self, busy: float | None = None) -> str | None:
        """Why the inference loop counts as hung: one input processing longer than `stall_s`
        (a model or a sink that does not return); None when it works or waits for input.
        `busy`: `busy_s()` when the caller has it."""
        busy = self.busy_s() if busy is None else busy
        if busy <= self.stall_s:
            return None
        return (f"one input has been processing for {busy:.1f} s (over {self.stall_s:g} s): "
                "the model or the sink does not return")

    def health(self) -> tuple[int, dict[str, Any]]:
        """/healthz: 200 and the fields once serving, else 503 with the reason ("failing",
        "starting", or "stalled": a hung model). A source that delivers nothing is not a
        failure of the service (its reconnects are counted): ``idle_s`` says how long it has
        been quiet."""
        fields = self.fields()
        with self.lock:
            ready, failing, results = self.ready, self.failing, self.results
        if failing is not None:
            return 503, {"status": "failing", "reason": failing, **fields}
        if not ready:
            return 503, {"status": "starting", "reason": "no inference has completed yet", **fields}
        idle, busy = self.idle_s(), self.busy_s()
        timing = {"uptime_s": round(self.uptime(), 3), "results": results,
                  "busy_s": round(busy, 3), "idle_s": None if idle is None else round(idle, 3)}
        stalled = self.stalled(busy)
        if stalled is not None:
            return 503, {"status": "stalled", "reason": stalled, **fields, **timing}
        return 200, {"status": "ok", **fields, **timing}

    def save(self) -> None:
        if self.state_file is None:
            return
        data = json.dumps(self.fields(), indent=2, sort_keys=True).encode() + b"\n"
        try:
            atomic_write_bytes(self.state_file, data)
        except (OSError, EdgekitError):
            pass  # a full or read-only disk must not stop inference; /healthz still answers
