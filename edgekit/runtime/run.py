"""`edgekit run`: a bundle on a source, results to a sink, and a summary at the end.

Before the source is opened, its kind (images, audio, rows) is checked against what the
bundle's preprocessing takes (`open_input`): one line and exit 1, never a stream of
pixels read as audio samples. A `--hop-ms` that does nothing (an image or sensor bundle)
or that leaves audio unheard between windows (longer than the window) is said once.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import InputError
from edgekit.runtime.model import Model, load
from edgekit.runtime.results import Result
from edgekit.runtime.sinks import open_sink
from edgekit.runtime.sources import ParsedSource, Source, check_kind, parse_source
from edgekit.spec import AudioPreprocess, ImagePreprocess, SensorPreprocess

log = logging.getLogger("edgekit.run")

DEFAULT_HOP_MS = 250.0


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Options of `edgekit run` (see the README)."""

    bundle: Path
    source: str
    sink: str = "stdout"
    variant: str | None = None
    backend: str | None = None
    threads: int | None = None
    limit: int | None = None
    hop_ms: float | None = None  # audio: None is DEFAULT_HOP_MS (a value given for another kind is said to do nothing)
    public_key: Path | None = None  # require a signature by this key (KEY.pub)


class Reservoir:
    """A uniform sample of at most `capacity` values from a stream of any length (Vitter's
    algorithm R), so that a run that lasts for months keeps percentiles in fixed memory."""

    def __init__(self, capacity: int = 10_000, seed: int = 0) -> None:
        self.capacity = capacity
        self.values: list[float] = []
        self.seen = 0
        self._rng = np.random.default_rng(seed)

    def add(self, value: float) -> None:
        self.seen += 1
        if len(self.values) < self.capacity:
            self.values.append(value)
            return
        slot = int(self._rng.integers(self.seen))
        if slot < self.capacity:
            self.values[slot] = value


@dataclasses.dataclass
class RunSummary:
    results: int
    seconds: float
    variant: str
    backend: str
    reason: str
    latencies_ms: list[float]  # a uniform sample of at most 10,000 (`Reservoir`)
    dropped: int
    malformed: int
    reconnects: int
    overruns: int
    sink_dropped: int
    interrupted: bool
    signed_by: str | None = None  # the key whose signature was checked (--public-key)
    unit: str = "items"  # what one of the source's items is (`Source.unit`), as the summary counts malformed ones

    def to_dict(self) -> dict[str, Any]:
        lat = np.asarray(self.latencies_ms) if self.latencies_ms else np.zeros(1)
        return {
            "results": self.results,
            "seconds": round(self.seconds, 3),
            "results_per_second": round(self.results / self.seconds, 3) if self.seconds > 0 else None,
            "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 3), "p99": round(float(np.percentile(lat, 99)), 3)},
            "variant": self.variant,
            "backend": self.backend,
            "dropped_frames": self.dropped,
            "malformed_lines": self.malformed,
            "reconnects": self.reconnects,
            "audio_overruns": self.overruns,
            "sink_dropped": self.sink_dropped,
            "interrupted": self.interrupted,
        }

    def render(self) -> str:
        d = self.to_dict()
        return (f"{d['results']} results in {d['seconds']:.2f} s ({d['results_per_second'] or 0:.1f}/s) with "
                f"{self.variant} on {self.backend}; end-to-end latency p50 {d['latency_ms']['p50']:.2f} ms, "
                f"p99 {d['latency_ms']['p99']:.2f} ms; dropped frames {self.dropped}, malformed {self.unit} {self.malformed}, "
                f"reconnects {self.reconnects}" + (f", audio overruns {self.overruns}" if self.overruns else "")
                + (f"; {self.sink_dropped} results not delivered by the sink" if self.sink_dropped else "")
                + (" (interrupted)" if self.interrupted else ""))


@dataclasses.dataclass
class RunControl:
    """Hooks for the service form of `run` (`edgekit serve`).

    Attributes:
        stop: set it to end the run between two inputs (the source is then closed and the
            sink flushed as at the end of any run).
        swap: called before each inference; returns a model to switch to, or None. The new
            model runs the same stream's next windows (`Model.stream`'s `switch`: it must
            window the stream as the running one does, `Model.same_windows`), so no input is
            lost and sequence numbers go on.
        source / sink: the open source and sink (counters for /metrics), opened by the service
            before `run` (`open_input`) and taken by it.
        busy_since: `time.monotonic()` when the input being processed arrived (the front end,
            the model and the sink are working on it); None while the loop waits for input.
            A value that grows old is a hung model, not a quiet source (the watchdog).
        last_input: `time.monotonic()` of the last input the source delivered (None: none yet).
    """

    stop: threading.Event = dataclasses.field(default_factory=threading.Event)
    swap: Callable[[], Model | None] = lambda: None
    source: Any = None
    sink: Any = None
    busy_since: float | None = None
    last_input: float | None = None

    def busy_s(self) -> float:
        """Seconds the current input has been processing (0 while waiting for input)."""
        since = self.busy_since
        return 0.0 if since is None else time.monotonic() - since


def _until(source: Iterable[Any], control: RunControl) -> Iterator[Any]:
    """The source's items until `control.stop` is set (checked before each item is read),
    marking `control.busy_since` from each item's arrival until the loop asks for the next."""
    items = iter(source)
    try:
        while not control.stop.is_set():
            control.busy_since = None
            try:
                item = next(items)
            except StopIteration:
                return
            control.busy_since = control.last_input = time.monotonic()
            yield item
    finally:
        control.busy_since = None


def hop_for(model: Model, hop_ms: float | None) -> float:
    """The hop `Model.stream` runs audio windows at; says once (a log warning) what a hop does
    not do: nothing for images or sensor rows, and, longer than an audio window, leave the
    audio between windows unheard."""
    spec = model.manifest.preprocess
    hop = DEFAULT_HOP_MS if hop_ms is None else hop_ms
    if not isinstance(spec, AudioPreprocess):
        if hop_ms is not None:
            log.warning("--hop-ms %g does nothing here: it sets the step between audio windows, and this bundle "
                        "takes %s (preprocess: %s); every input gives one result", hop_ms,
                        "images" if isinstance(spec, ImagePreprocess) else "rows" if isinstance(spec, SensorPreprocess)
                        else "ready tensors", spec.kind.value)
        return hop
    window_ms = 1000.0 * spec.clip_samples / spec.sample_rate
    if hop > window_ms:
        log.warning("--hop-ms %g is longer than the model's %g ms window: %g ms of audio between two windows is never "
                    "heard (a keyword there is missed); use --hop-ms %g or less to hear all of it",
                    hop, window_ms, hop - window_ms, window_ms)
    return hop


def open_input(parsed: ParsedSource, model: Model) -> Source:
    """Open the source for `model`: what it gives is checked against what the bundle's
    preprocessing takes before it is opened (no device opened for nothing), then the
    source is told the preprocessing (`Source.expect`: a short WAV file is padded to one window).

    Raises:
        InputError: a source of another kind than the bundle takes (one line
            naming the sources that fit), or one that does not open.
    """
    spec = model.manifest.preprocess
    check_kind(parsed.spec, parsed.plugin.kind, spec, model.bundle.path.name)
    opened = parsed.open()
    try:
        opened.expect(spec)
    except BaseException:
        opened.close()
        raise
    return opened


def _expected_input(model: Any) -> str:
    spec = model.manifest.preprocess
    if isinstance(spec, SensorPreprocess):
        return f"at least {spec.window} rows with the channels {list(spec.channels)} (by name under a header)"
    if isinstance(spec, ImagePreprocess):
        return "at least one image that decodes"
    if isinstance(spec, AudioPreprocess):
        return f"at least {spec.clip_samples} audio samples"
    return "at least one input the model takes"


def run(config: RunConfig, on_result: Callable[[Result], None] | None = None, *, model: Model | None = None,
        control: RunControl | None = None) -> RunSummary:
    """Stream the source through the model into the sink until the source ends, `limit`
    results, Ctrl-C or `control.stop`; returns the summary either way.

    Args:
        model: an already loaded model (the service loads and checks it first); default:
            `load` the config's bundle.
        control: the service's hooks (stop, model switch; see `RunControl`); a source and a
            sink it holds (opened by the service with `open_input`) are the ones run.

    Raises:
        InputError: a bad source or sink, a source of another kind than the bundle takes, or
            a source that ends without one result.
    """
    if control is not None:
        source, sink = control.source, control.sink
        if model is None or source is None or sink is None:
            raise ValueError("run: a control needs the source and sink the service opened, and its model")
    else:
        parsed = parse_source(config.source)  # a bad spec fails before the model is loaded
        sink = open_sink(config.sink)
        try:
            if model is None:
                model = load(config.bundle, variant=config.variant, backend=config.backend, threads=config.threads,
                             public_key=config.public_key)
            source = open_input(parsed, model)  # after the load: no frame or block dropped while it loads
        except BaseException:
            sink.close()
            raise
    hop_ms = hop_for(model, config.hop_ms)
    items = source if control is None else _until(source, control)
    latencies = Reservoir()
    count = 0
    interrupted = False
    started = time.perf_counter()

    def switch() -> Model | None:
        nonlocal model
        new = control.swap() if control is not None else None
        if new is not None:
            model = new  # the summary names the model that served last
        return new

    try:
        for result in model.stream(items, hop_ms=hop_ms, switch=switch if control is not None else None):
            sink.write(result)
            if on_result is not None:
                on_result(result)
            latencies.add(result.latency.total_ms)
            count += 1
            if config.limit is not None and count >= config.limit:
                break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        seconds = time.perf_counter() - started
        source.close()
        sink.close()
    stopped = control is not None and control.stop.is_set()
    if count == 0 and not interrupted and not stopped:  # never "0 results, exit 0": nothing could be read
        counters = source.counters
        raise InputError(f"source {config.source} gave no results", expected=_expected_input(model),
                         found=f"nothing usable ({counters.malformed} malformed {source.unit}, "
                               f"{counters.dropped} dropped" + (f"; the last: {source.problem}" if source.problem
                                                                 else "") + ")",
                         hint="check the source against the bundle's preprocessing (edgekit inspect BUNDLE)")
    return RunSummary(results=count, seconds=seconds, variant=model.variant.name, backend=model.package,
                      reason=model.reason, latencies_ms=latencies.values, dropped=source.counters.dropped,
                      malformed=source.counters.malformed, reconnects=source.counters.reconnects,
                      overruns=source.counters.overruns, sink_dropped=sink.dropped, interrupted=interrupted,
                      signed_by=model.bundle.signed_by, unit=source.unit)
