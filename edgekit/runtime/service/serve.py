"""`edgekit serve`: `edgekit run` as a supervised service (README, ``edgekit serve``).

The inference loop is `edgekit.runtime.run.run` in a thread, with a `RunControl`: the
main thread waits for signals (SIGTERM/SIGINT stop, SIGHUP reloads), the `Updater` thread
prepares new models, the HTTP thread answers /healthz and /metrics. The loop sends
READY=1 after its first result; the main thread sends WATCHDOG=1 while the loop works or
waits for input, not once one input hangs (`ServiceState.stalled`).

The source is checked (spec, options) before anything starts, and opened and checked
against the bundle (`open_input`: the kind of input it takes) before the "serving" line.
A service runs until it is stopped: a source that ends (a file without ``?loop=1``, a
camera that gave up) is a failure (exit 1), so that ``Restart=on-failure`` restarts it.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgekit.errors import InputError
from edgekit.runtime.model import Model
from edgekit.runtime.results import Result
from edgekit.runtime.run import RunConfig, RunControl, RunSummary, open_input, run
from edgekit.runtime.service.http import start_http
from edgekit.runtime.service.notify import Notifier
from edgekit.runtime.service.state import ServiceState
from edgekit.runtime.service.update import (
    LoadOptions,
    Target,
    Updater,
    current_target,
    prepare,
    reason_of,
)
from edgekit.runtime.sinks import open_sink
from edgekit.runtime.sources import parse_source
from edgekit.runtime.sources.base import LOOP

DEFAULT_PORT = 8780
STOP_GRACE_S = 5.0  # how long a stop waits for the source to yield before closing it
STATUS_EVERY_S = 5.0


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    """Options of `edgekit serve` (see the README)."""

    target: Path  # a bundle file, or an app directory with a `current` link
    source: str
    sink: str = "stdout"
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    variant: str | None = None
    backend: str | None = None
    threads: int | None = None
    hop_ms: float | None = None  # None: run's default (250 ms)
    public_key: Path | None = None
    skip_self_check: bool = False
    state_file: Path | None = None  # serve.json; default APP_DIR/serve.json for an app directory


def _log(message: str) -> None:
    print(f"edgekit serve: {message}", file=sys.stderr, flush=True)


class _Rate:
    """Results per second over the last STATUS interval."""

    def __init__(self) -> None:
        self.at, self.count = time.monotonic(), 0

    def update(self, count: int) -> float:
        now = time.monotonic()
        rate = (count - self.count) / (now - self.at) if now > self.at else 0.0
        self.at, self.count = now, count
        return rate


def serve(config: ServeConfig, log: Callable[[str], None] = _log) -> RunSummary | None:
    """Serve until SIGTERM/SIGINT; returns the run's summary (None when a stop found the
    source blocking: the loop was left behind after the sink was closed).

    Raises:
        InputError: a bad target, source, sink or address, a source of another kind than the
            bundle takes, or a source that ended (exit 1: a service's source runs until it is
            stopped; a file source needs ``?loop=1``).
        IntegrityError: the bundle fails its hashes, signature or self-check at start (exit 3).
    """
    app_dir = config.target if config.target.is_dir() else None
    if app_dir is not None:
        find: Callable[[], Target] = lambda: current_target(app_dir)  # noqa: E731
    elif config.target.exists():
        find = lambda: Target(config.target)  # noqa: E731
    else:
        raise InputError(f"serve {config.target}", expected="a bundle file or an app directory with a 'current' "
                         "link", found="nothing there")
    parsed = parse_source(config.source)  # a bad spec or option fails before anything starts
    target = find()
    state_file = config.state_file or (app_dir / "serve.json" if app_dir is not None else None)
    state = ServiceState(state_file, config.host)
    notifier = Notifier()
    if notifier.watchdog_s is not None:  # a hang is declared (and pings stop) after half the interval
        state.stall_s = notifier.watchdog_s / 2
    server = start_http(state, config.host, config.port)
    state.set_port(server.server_address[1])
    options = LoadOptions(variant=config.variant, backend=config.backend, threads=config.threads,
                          public_key=config.public_key, skip_self_check=config.skip_self_check)
    opened: list[Any] = []
    try:
        notifier.status(f"loading {target.label}")
        model, checked = prepare(target, options)
        opened.append(open_sink(config.sink))
        opened.append(open_input(parsed, model))  # before "serving": a source that fails, fails first
    except BaseException as exc:
        for thing in opened:
            thing.close()
        state.set_failing(reason_of(exc))
        notifier.status(f"not serving: {reason_of(exc)}")
        server.shutdown()
        raise
    sink, source = opened
    state.serving(model, target.release, target.path)
    log(f"serving {target.label}: {model.variant.name} on {model.package} ({model.reason}); {checked}; "
        f"/healthz and /metrics on http://{config.host}:{state.port}")
    service = _Service(config, state, notifier, model, target, find, options, app_dir is not None, log,
                       can_loop=LOOP in parsed.plugin.options)
    service.control.source, service.control.sink = source, sink
    return service.run(server)


class _Service:
    def __init__(self, config: ServeConfig, state: ServiceState, notifier: Notifier, model: Model, target: Target,
                 find: Callable[[], Target], options: LoadOptions, poll: bool, log: Callable[[str], None],
                 can_loop: bool = False) -> None:
        self.config = config
        self.can_loop = can_loop  # the source's form takes ?loop=1 (a file): what to say when it ends
        self.state = state
        self.notifier = notifier
        self.log = log
        self.stop = threading.Event()
        self.updater = Updater(find, target, model, options, poll=poll, on_taken=self._taken,
                               on_refused=self._refused)
        self.control = RunControl(swap=self.updater.take)
        state.control = self.control
        self.model = model
        self.summary: RunSummary | None = None
        self.error: BaseException | None = None
        self.rate = _Rate()

    # -- the inference loop's thread --------------------------------------------------------

    def _on_result(self, result: Result) -> None:
        if self.state.result(result.latency.total_ms):
            self.notifier.ready(self._status())
            self.log(f"ready: first result after {self.state.uptime():.2f} s")

    def _ping(self) -> None:
        """WATCHDOG=1 (when due) unless the loop hangs: waiting for input is alive (a quiet
        sensor or an event source must not be restarted), one input processing for longer
        than half the watchdog interval is not (a hung model is restarted by systemd)."""
        if self.state.stalled() is None:
            self.notifier.watchdog()

    def _loop(self) -> None:
        config = self.config
        run_config = RunConfig(bundle=self.updater.serving.path, source=config.source, sink=config.sink,
                               variant=config.variant, backend=config.backend, threads=config.threads,
                               hop_ms=config.hop_ms, public_key=config.public_key)
        try:
            self.summary = run(run_config, self._on_result, model=self.model, control=self.control)
        except BaseException as exc:  # handed to the main thread, which raises it
            self.error = exc
        finally:
            self.stop.set()

    # -- the updater's thread ---------------------------------------------------------------

    def _taken(self, target: Target, model: Model, old: Model) -> None:
        self.state.serving(model, target.release, target.path)
        self.state.update(target.release, "taken", None)
        old.close()
        self.log(f"update: took {target.label}: {model.variant.name} on {model.package}; {self.updater.checked}")
        self.notifier.status(self._status())

    def _refused(self, target: Target, reason: str) -> None:
        self.state.update(target.release, "refused", reason)
        self.log(f"update: refused {target.label}, still serving {self.updater.serving.label}: {reason}")
        self.notifier.status(self._status())

    # -- the main thread --------------------------------------------------------------------

    def _status(self) -> str:
        fields = self.state.fields()
        serving = fields["release"] or Path(fields["bundle"] or "").name
        text = (f"serving {serving}: {fields['variant']} on {fields['backend']}, "
                f"{self.rate.update(self.state.results):.1f} results/s, {self.state.results} results")
        last = fields["last_update"]
        if last is not None and last["outcome"] == "refused":
            text += f"; update {last['release'] or 'reload'} refused: {last['reason']}"
        return text

    def run(self, server: Any) -> RunSummary | None:
        requested: list[str] = []

        def on_stop(signum: int, _frame: Any) -> None:
            requested.append(signal.Signals(signum).name)
            self.control.stop.set()
            self.stop.set()

        previous = {sig: signal.signal(sig, on_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, lambda *_: self.updater.request())
        loop = threading.Thread(target=self._loop, name="edgekit-serve-loop", daemon=True)
        try:
            self.updater.start()
            loop.start()
            next_status = time.monotonic() + STATUS_EVERY_S
            tick = 0.25 if self.notifier.watchdog_s is None else min(0.25, self.notifier.watchdog_s / 4)
            while not self.stop.wait(tick):
                if loop.is_alive():
                    self._ping()
                if time.monotonic() >= next_status and self.state.ready:
                    next_status = time.monotonic() + STATUS_EVERY_S
                    self.notifier.status(self._status())
            why = requested[0] if requested else "the source ended"
            self.notifier.stopping(f"stopping ({why})")
            self.state.set_failing(f"stopping ({why})")
            self.updater.stop()
            self._join(loop)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            server.shutdown()
            self.notifier.close()
        if self.summary is None and requested:  # a source that kept blocking, left behind (or failed on close)
            if self.control.sink is not None:
                self.control.sink.close()
            self.log(f"stopped ({requested[0]}); the source was still blocking, its loop was left behind")
            return None
        if self.error is not None:
            raise self.error
        if not requested and self.summary is not None:  # the source ended on its own
            self.log(f"the source ended: {self.summary.render()}")
            looping = self.can_loop
            raise InputError(f"source {self.config.source} ended after {self.summary.results} results",
                             expected="a source that runs until the service is stopped (SIGTERM)",
                             found="the end of the file" if looping else "its end (the log above says why)",
                             hint="a service's file source replays with ?loop=1; to go through a file once, use "
                                  "edgekit run" if looping else
                                  "under systemd, Restart=on-failure starts the service again")
        return self.summary

    def _join(self, loop: threading.Thread) -> None:
        """Wait for the loop to end between two inputs; a source that blocks is closed."""
        loop.join(STOP_GRACE_S)
        if loop.is_alive() and self.control.source is not None:
            self.log(f"the source did not yield within {STOP_GRACE_S:g} s; closing it")
            try:
                self.control.source.close()
            except Exception:  # noqa: BLE001 - closing from another thread is best effort
                pass
            loop.join(2.0)
