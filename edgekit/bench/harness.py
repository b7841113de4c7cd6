"""The benchmark harness: variants side by side, each in its own worker process.

Protocol (``docs/DESIGN.md`` section 5): record the environment; load each variant in its own
worker and time load and first inference separately; warm up (at least `warmup_runs` and
`warmup_seconds`); then measure in `windows` windows, interleaved: in every window each
variant runs once, in an order shuffled per window, all on identical inputs. Energy is
read around each variant's window, an idle baseline is subtracted, and the figures say how
they were obtained. Failures of one variant are recorded and the others go on; the report
is then marked partial.

numpy is imported inside the functions that use it, so the CLI reads `BenchMode` for
``--help`` without it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edgekit._optional import DISTRIBUTION, extra_install
from edgekit.choices import Choice
from edgekit.devices import Budgets, DeviceProfile
from edgekit.errors import EdgekitError, InputError

REQUEST_TIMEOUT_S = 900.0


class BenchMode(Choice):
    """The values of ``edgekit bench --mode``: what the windows time."""

    BOTH = "both", "invoke, then e2e"
    INVOKE = "invoke", "interpreter only"
    E2E = "e2e", "with the bundle's pre- and postprocessing"

    @property
    def modes(self) -> tuple[str, ...]:
        """The modes measured (`BenchConfig.modes`): ``both`` is invoke, then e2e."""
        return MODES if self is BenchMode.BOTH else (self.value,)


MODES = (BenchMode.INVOKE.value, BenchMode.E2E.value)
"""The modes a run measures, in order (``both`` is not one: it names these two)."""


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """Options of `edgekit bench` (see the README).

    Args:
        targets: bundles, ``.tflite`` or ``.onnx`` files.
        variants: bundle variants to run (default: all that can run here).
        threads: interpreter thread counts to sweep, run as given (a warning when one
            exceeds the host's cores). Default: the device profile's recommendation,
            capped at the host's cores with a warning; without a profile, 1.
        warmup_runs / warmup_seconds: warm-up before measuring, both minimums.
        windows: measurement windows per variant and mode.
        runs: runs per variant and mode, split evenly over the windows.
        duration: seconds per variant and mode, split over the windows (used when `runs`
            is not given; default 2 s).
        modes: ``invoke`` (interpreter only) and/or ``e2e`` (bundle pre/postprocessing
            on a representative raw input; bundles only).
        baseline: variant name the ratios refer to (default: the fp32 variant).
        meter: energy meter name or ``auto``.
        device: device profile name, alias or file (recommended threads, power figures,
            budgets); a run on another host is labelled as such (`edgekit.bench.hostmatch`).
        budgets: limits that override the profile's.
        seed: seed of the inputs and of the window order.
        idle_seconds: length of the idle-power measurement before the windows.
        backend: force an interpreter (``litert``, ``tflite-runtime``, ``tf-lite``, ``onnxruntime``).
        meter_root: filesystem root the meters read (tests use fixture trees).
    """

    targets: tuple[str, ...]
    variants: tuple[str, ...] = ()
    threads: tuple[int, ...] = ()
    warmup_runs: int = 10
    warmup_seconds: float = 0.5
    windows: int = 5
    runs: int | None = None
    duration: float | None = None
    modes: tuple[str, ...] = MODES
    baseline: str | None = None
    meter: str = "auto"
    device: str | None = None
    budgets: Budgets | None = None
    seed: int = 0
    idle_seconds: float = 2.0
    backend: str | None = None
    meter_root: str = "/"


@dataclasses.dataclass
class Unit:
    """One worker: a target's variant at a thread count, and what was measured on it."""

    target: str
    variant: str | None
    threads: int
    label: str
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    times_ns: dict[str, list[list[int]]] = dataclasses.field(default_factory=dict)  # mode -> windows
    cpu_s: dict[str, float] = dataclasses.field(default_factory=dict)
    readings: dict[str, list[Any]] = dataclasses.field(default_factory=dict)
    warmup: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    memory: dict[str, Any] = dataclasses.field(default_factory=dict)
    error: str | None = None
    process: WorkerProcess | None = None


def latency_stats(windows_ns: Sequence[Sequence[int]]) -> dict[str, Any]:
    """Distribution of per-run latencies (ms) over all windows, plus the median of the
    window medians (MLPerf Tiny's figure) and the spread between windows."""
    import numpy as np

    runs = np.concatenate([np.asarray(w, np.float64) for w in windows_ns if len(w)]) / 1e6
    medians = [float(np.median(np.asarray(w, np.float64) / 1e6)) for w in windows_ns if len(w)]
    mean = float(runs.mean())
    std = float(runs.std(ddof=1)) if runs.size > 1 else 0.0
    return {
        "runs": int(runs.size), "windows": len(medians),
        "min_ms": float(runs.min()), "median_ms": float(np.median(runs)), "mean_ms": mean, "std_ms": std,
        "p1_ms": float(np.percentile(runs, 1)), "p25_ms": float(np.percentile(runs, 25)),
        "p75_ms": float(np.percentile(runs, 75)),
        "p90_ms": float(np.percentile(runs, 90)), "p99_ms": float(np.percentile(runs, 99)),
        "max_ms": float(runs.max()), "cv": std / mean if mean > 0 else 0.0,
        "throughput_per_s": 1000.0 / mean if mean > 0 else 0.0,
        "median_of_window_medians_ms": float(np.median(medians)),
        "window_medians_ms": medians,
        "window_spread": (max(medians) - min(medians)) / float(np.median(medians)) if medians else 0.0,
    }


class WorkerProcess:
    """A `edgekit.bench.worker` child process and its JSON-lines pipe."""

    def __init__(self, label: str) -> None:
        self.label = label
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        self.proc = subprocess.Popen([sys.executable, "-m", "edgekit.bench.worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self._selector = selectors.DefaultSelector()
        assert self.proc.stdout is not None  # noqa: S101 - set by Popen above
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def request(self, op: str, timeout: float = REQUEST_TIMEOUT_S, **args: Any) -> dict[str, Any]:
        """Send one request and wait for its answer.

        Raises:
            EdgekitError: the worker answered with an error (re-raised with its text).
            InputError: the worker died or did not answer within `timeout`.
        """
        assert self.proc.stdin is not None and self.proc.stdout is not None  # noqa: S101
        try:
            self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._died(op) from None
        if not self._selector.select(timeout):
            self.kill()
            raise InputError(f"bench worker for {self.label}", expected=f"an answer to {op!r} within {timeout:g} s",
                             found="no answer; the worker was killed")
        line = self.proc.stdout.readline()
        if not line:
            raise self._died(op)
        answer = json.loads(line)
        if not answer.pop("ok"):
            error = EdgekitError(answer["error"])
            error.exit_code = answer.get("exit_code", 1)  # type: ignore[assignment]
            raise error
        return answer

    def _died(self, op: str) -> InputError:
        code = self.proc.wait(timeout=10)
        tail = ""
        if self.proc.stderr is not None:
            lines = [x for x in self.proc.stderr.read().splitlines() if x.strip()]
            tail = lines[-1] if lines else ""
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        return InputError(f"bench worker for {self.label}", expected=f"an answer to {op!r}",
                          found=f"the worker ended with {how}" + (f": {tail}" if tail else ""))

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None  # noqa: S101
                self.proc.stdin.write('{"op": "quit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        self._selector.close()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:  # a dead worker: unflushed requests have nowhere to go
                    pass

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _bundle_variants(path: str, wanted: Sequence[str]) -> list[str | None]:
    """The variants of a bundle to run: `wanted` (checked) or every one that can run here."""
    from edgekit.bundle import open_bundle
    from edgekit.runtime.backends import installed_backends
    from edgekit.runtime.onnxdata import external_files

    bundle = open_bundle(Path(path))  # verifies before anything else
    names = [v.name for v in bundle.manifest.variants]
    if wanted:
        unknown = [w for w in wanted if w not in names]
        if unknown:
            raise InputError(f"variant(s) {', '.join(unknown)} of {path}", expected=f"one of {names}",
                             found=", ".join(unknown), hint="list them with: edgekit inspect BUNDLE")
    else:
        installed = installed_backends()
        wanted = [v.name for v in bundle.manifest.variants if installed.get(v.format)]
        if not wanted:
            raise InputError(f"bundle {path}", expected="a variant an installed interpreter can run",
                             found=f"variants {names}", hint=f"{extra_install('litert')} or \"{DISTRIBUTION}[onnx]\"")
    for variant in bundle.manifest.variants:
        if variant.name in wanted and variant.format == "onnx":  # refused here (exit 3), not in a worker
            external_files(bundle.variant_bytes(variant.name), None, f"variant {variant.name} of {path}")
    return list(wanted)


def plan_units(config: BenchConfig, threads: Sequence[int]) -> list[Unit]:
    """Every (target, variant, threads) to measure, checked before any worker starts.

    Raises:
        InputError: a missing target, a file that is not a model, an unknown variant.
        IntegrityError: a bundle that fails verification.
    """
    units = []
    several = len(config.targets) > 1
    for target in config.targets:
        path = Path(target)
        if not path.is_file():
            raise InputError(f"bench target {target}", expected="an existing .edgekit, .tflite or .onnx file",
                             found="no such file" if not path.exists() else "not a file")
        suffix = path.suffix.lower()
        if suffix == ".edgekit":
            variants = _bundle_variants(target, config.variants)
        elif suffix in (".tflite", ".onnx"):
            variants = [None]
            if suffix == ".onnx":  # external data leaving the folder: refused here (exit 3), not in a worker
                from edgekit.runtime.onnxdata import external_files

                external_files(path.read_bytes(), path.parent, f"bench target {target}")
        else:
            raise InputError(f"bench target {target}", expected="a .edgekit bundle, a .tflite or an .onnx file",
                             found=f"a {suffix or 'suffix-less'} file",
                             hint="convert a Keras model first: edgekit convert MODEL -o OUT.edgekit")
        for variant in variants:
            for count in threads:
                name = variant or path.name
                label = (f"{path.stem}:" if several and variant else "") + f"{name} @{count}t"
                units.append(Unit(target, variant, count, label))
    return units


@dataclasses.dataclass
class BenchResult:
    """Everything one `bench` run measured, ready for `edgekit.bench.report`."""

    config: BenchConfig
    environment: dict[str, Any]
    units: list[Unit]
    meter: dict[str, Any]
    idle: Any  # meters.IdleBaseline, or None before it is measured
    profile: DeviceProfile | None
    budgets: Budgets
    started: float
    seconds: float
    interrupted: bool = False
    host: str | None = None
    errors: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    device_match: dict[str, Any] | None = None  # hostmatch.DeviceMatch.to_dict(), with a profile

    @property
    def partial(self) -> bool:
        return self.interrupted or any(u.error for u in self.units)


UnitProgress = Callable[[int, int, str], None]
"""``progress(done, total, label)`` after each measured unit (a variant at a thread count and mode)."""


def _split(total: int | float | None, parts: int) -> list[Any]:
    if total is None:
        return [None] * parts
    if isinstance(total, int):
        return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]
    return [total / parts] * parts


def run_bench(config: BenchConfig, progress: UnitProgress | None = None,
              log: Callable[[str], None] | None = None) -> BenchResult:
    """Measure every variant of every target as configured; see the module docstring.

    Returns the result even when some variants failed or the run was interrupted
    (Ctrl-C): what was measured is kept and the result says it is partial.

    Raises:
        InputError / IntegrityError: bad targets, variants, meter or profile (before
            anything is measured).
    """
    import numpy as np

    from edgekit.bench.environment import collect_environment
    from edgekit.bench.hostmatch import choose_threads, match_host
    from edgekit.bench.meters import MeterConfig, open_meter
    from edgekit.devices import load_profile

    say = log or (lambda _m: None)
    if config.windows < 1:
        raise InputError("--windows", expected="at least 1", found=str(config.windows))
    for mode in config.modes:
        if mode not in MODES:
            raise InputError(f"bench mode {mode!r}", expected=f"one of {list(MODES)}", found=repr(mode))
    profile = load_profile(config.device) if config.device else None
    environment = collect_environment(config.meter_root).to_dict()
    threads, warnings = choose_threads(config.threads, profile, environment.get("cores"))
    budgets = (profile.budgets if profile else Budgets()).overridden(config.budgets or Budgets())
    units = plan_units(config, threads)
    meter_config = MeterConfig(root=config.meter_root, profile=profile)
    system_meter = open_meter(config.meter, meter_config)  # fails early on a bad --meter
    started = time.time()
    clock0 = time.perf_counter()
    environment["threads"] = list(threads)
    result = BenchResult(config, environment, units, system_meter.describe(), None, profile, budgets, started, 0.0,
                         warnings=warnings)
    if profile is not None:
        result.device_match = match_host(profile, environment).to_dict()
        if result.device_match["summary"]:
            say(result.device_match["summary"])
    for warning in warnings:
        say(f"warning: {warning}")

    runs = config.runs
    duration = None if runs is not None else (config.duration if config.duration is not None else 2.0)
    per_window_runs = _split(runs, config.windows)
    per_window_seconds = _split(duration, config.windows)
    total_steps = len(units) + sum(len(unit_modes(u, config.modes)) * (config.windows + 1) for u in units)
    step = 0

    def advance(label: str) -> None:
        nonlocal step
        step += 1
        if progress is not None:
            progress(step, total_steps, label)

    meters: dict[int, Any] = {}
    try:
        if config.idle_seconds > 0 and system_meter.measured:  # none and estimate do not measure idle power
            say(f"measuring idle power for {config.idle_seconds:g} s (keep the machine quiet)")
        result.idle = system_meter.idle_baseline(config.idle_seconds)
        for unit in units:
            try:
                unit.process = WorkerProcess(unit.label)
                unit.info = unit.process.request("load", target=unit.target, variant=unit.variant,
                                                 threads=unit.threads, seed=config.seed, backend=config.backend)
                meters[id(unit)] = open_meter(system_meter.name, dataclasses.replace(meter_config,
                                                                                     pid=unit.process.pid))
            except EdgekitError as exc:
                _fail(unit, exc)
            advance(f"loaded {unit.label}")
        order_rng = np.random.default_rng(config.seed)
        for mode in config.modes:
            active = [u for u in units if mode in unit_modes(u, config.modes)]
            for unit in active:
                if unit.error is None:
                    try:
                        unit.warmup[mode] = unit.process.request("warmup", mode=mode, min_runs=config.warmup_runs,
                                                                 min_seconds=config.warmup_seconds)
                    except EdgekitError as exc:
                        _fail(unit, exc)
                advance(f"warmed up {unit.label} ({mode})")
            for window in range(config.windows):
                for index in order_rng.permutation(len(active)):
                    unit = active[int(index)]
                    if unit.error is None:
                        _measure(unit, mode, meters[id(unit)], per_window_runs[window], per_window_seconds[window])
                    advance(f"{unit.label} {mode} window {window + 1}/{config.windows}")
        for unit in units:
            if unit.error is None:
                try:
                    unit.memory = unit.process.request("memory")
                except EdgekitError as exc:
                    _fail(unit, exc)
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        for unit in units:
            if unit.process is not None:
                unit.process.close()
                unit.process = None
        for meter in [system_meter, *meters.values()]:
            meter.close()
    result.seconds = time.perf_counter() - clock0
    result.errors = [f"{u.label}: {u.error}" for u in units if u.error]
    return result


def unit_modes(unit: Unit, modes: Sequence[str]) -> list[str]:
    """The modes a unit runs: end-to-end needs a bundle (it carries the preprocessing)."""
    return [m for m in modes if m == "invoke" or unit.variant is not None]


def _measure(unit: Unit, mode: str, meter: Any, runs: int | None, seconds: float | None) -> None:
    try:
        meter.start()
        answer = unit.process.request("window", mode=mode, runs=runs, seconds=seconds)
        reading = meter.stop()
    except EdgekitError as exc:
        _fail(unit, exc)
        return
    unit.times_ns.setdefault(mode, []).append(answer["times_ns"])
    unit.cpu_s[mode] = unit.cpu_s.get(mode, 0.0) + answer["cpu_s"]
    unit.readings.setdefault(mode, []).append(reading)


def _fail(unit: Unit, exc: EdgekitError) -> None:
    unit.error = str(exc)
    if unit.process is not None:
        unit.process.kill()
