"""What every energy meter shares: its configuration, its readings, the base classes.

A meter is a class with a registry `name`, a one-line `help`, an `auto_rank` (its place
in ``--meter auto``'s order; None keeps ``auto`` away from it) and a `from_config`
constructor. `Meter` reads around each window (counters: at its start and end);
`SampledMeter` reads instantaneous power in a background thread and integrates it with
the trapezoid rule. Every sysfs path is resolved under `MeterConfig.root`, so tests can
point meters at fixture trees.
"""

from __future__ import annotations

import abc
import dataclasses
import itertools
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.errors import InputError

if TYPE_CHECKING:
    from edgekit.devices import DeviceProfile



@dataclasses.dataclass(frozen=True)
class MeterConfig:
    """Everything a meter may need; each meter reads only its own fields.

    Args:
        root: filesystem root under which ``sys/`` and ``proc/`` are read (tests use fixtures).
        interval_s: sampling interval of sampled meters; None for each meter's default.
        rail: hwmon rail to use (its label, e.g. ``VDD_IN``, or ``hwmonN/K`` / ``CHIP/K``);
            rpi5: comma-separated PMIC rails to sum (default all). None chooses automatically.
        supply: power_supply name for the android meter.
        current_unit: android ``current_now`` unit, ``"uA"`` or ``"mA"``; None detects it.
        vcgencmd: path of ``vcgencmd``; None looks it up on ``PATH``.
        profile: device profile for the estimate meter's power figures.
        pid: process whose CPU time the estimate counts; None for this process.
    """

    root: str | os.PathLike[str] = "/"
    interval_s: float | None = None
    rail: str | None = None
    supply: str = "battery"
    current_unit: str | None = None
    vcgencmd: str | None = None
    profile: DeviceProfile | None = None
    pid: int | None = None


@dataclasses.dataclass(frozen=True)
class EnergyReading:
    """Energy over one window.

    Attributes:
        joules: gross energy (whole device or domain, idle included); None for ``none``.
        seconds: length of the window.
        meter: registry name of the meter.
        method: what was read, e.g. ``"rapl: package-0 + dram energy counters"``.
        sample_rate_hz: achieved sampling rate (None for counters and estimates).
        measured: False for an estimate.
        samples: number of power samples (2 reads for a counter).
        notes: assumptions and anomalies (wraparound, unit detection, ...).
    """

    joules: float | None
    seconds: float
    meter: str
    method: str
    sample_rate_hz: float | None
    measured: bool
    samples: int = 0
    notes: tuple[str, ...] = ()

    @property
    def watts(self) -> float | None:
        """Mean power over the window."""
        if self.joules is None or self.seconds <= 0:
            return None
        return self.joules / self.seconds

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "notes": list(self.notes), "watts": self.watts}


@dataclasses.dataclass(frozen=True)
class IdleBaseline:
    """Power of the idle machine, subtracted to get the energy the inference added."""

    watts: float | None
    seconds: float
    method: str
    measured: bool
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "notes": list(self.notes)}


def integrate_trapezoid(samples: Sequence[tuple[float, float]]) -> float:
    """Energy in joules from (seconds, watts) samples, by the trapezoid rule."""
    return sum((t1 - t0) * (w0 + w1) / 2.0 for (t0, w0), (t1, w1) in itertools.pairwise(samples))


def read_text(path: Path) -> str:
    """A sysfs attribute's text, stripped."""
    return path.read_text(encoding="utf-8", errors="replace").strip()


def read_int(path: Path) -> int:
    """A sysfs attribute holding one integer."""
    return int(read_text(path))


# ---------------------------------------------------------------------------
# the meter base classes


class Meter(abc.ABC):
    """A running energy meter: ``start()``, then ``stop()`` returns the window's reading.

    `method` names what is read; `notes` holds meter-level assumptions (and, after
    ``auto``, why other meters were skipped). Both are copied into every reading.

    Class attributes, read by the registry (`edgekit.bench.meters.METERS`):
        name: the ``--meter`` value.
        help: one line for ``--meter``'s help.
        auto_rank: ``--meter auto`` tries meters from the lowest rank up; None: never
            chosen by ``auto``.
        measured: False for a meter that does not measure (an estimate, ``none``).
    """

    name: str = ""
    help: str = ""
    auto_rank: int | None = None
    measured: bool = True

    def __init__(self) -> None:
        self.method = self.name
        self.notes: list[str] = []

    @classmethod
    @abc.abstractmethod
    def from_config(cls, config: MeterConfig) -> Meter:
        """The meter built from the fields of `config` it uses.

        Raises:
            InputError: it cannot work here (why, and what to do).
        """

    @classmethod
    def unavailable(cls, config: MeterConfig) -> str | None:
        """Why ``auto`` should not even try this meter with `config`, or None to try it."""
        return None

    @abc.abstractmethod
    def start(self) -> None:
        """Begin a window."""

    @abc.abstractmethod
    def stop(self) -> EnergyReading:
        """End the window and return its energy.

        Raises:
            InputError: the meter became unreadable during the window.
        """

    def idle_baseline(self, seconds: float = 3.0, sleep: Callable[[float], None] = time.sleep) -> IdleBaseline:
        """Measure the idle machine's power for `seconds` (call it while nothing runs)."""
        self.start()
        sleep(seconds)
        reading = self.stop()
        return IdleBaseline(reading.watts, reading.seconds, f"{reading.method}, idle for {reading.seconds:.1f} s",
                            reading.measured, reading.notes)

    def close(self) -> None:  # noqa: B027 - an optional hook, not abstract
        """Release threads or handles (meters that hold none need not override)."""

    def describe(self) -> dict[str, Any]:
        """JSON-ready description for the environment part of a report."""
        return {"meter": self.name, "method": self.method, "measured": self.measured, "notes": list(self.notes)}

    def _reading(self, joules: float | None, seconds: float, rate: float | None, samples: int,
                 extra: Sequence[str] = ()) -> EnergyReading:
        return EnergyReading(joules, seconds, self.name, self.method, rate, self.measured, samples,
                             tuple(dict.fromkeys([*self.notes, *extra])))


class SampledMeter(Meter):
    """A meter that reads instantaneous power in a background thread and integrates it."""

    default_interval_s = 0.1

    def __init__(self, interval_s: float | None = None) -> None:
        super().__init__()
        self.interval_s = interval_s if interval_s is not None else self.default_interval_s
        if self.interval_s <= 0:
            raise InputError(f"{self.name} meter sampling interval", expected="a positive number of seconds",
                             found=str(self.interval_s))
        self._samples: list[tuple[float, float]] = []
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures = 0
        self._error: BaseException | None = None

    @abc.abstractmethod
    def read_watts(self) -> float:
        """One instantaneous power reading in watts."""

    def _sample(self) -> tuple[float, float]:
        # Stamp the middle of the read: a vcgencmd call takes milliseconds.
        t0 = time.perf_counter()
        watts = self.read_watts()
        return ((t0 + time.perf_counter()) / 2.0, watts)

    def _checked_sample(self) -> tuple[float, float]:
        try:
            return self._sample()
        except (OSError, ValueError) as exc:
            raise InputError(f"{self.name} meter ({self.method})", expected="a readable power sensor",
                             found=str(exc)) from exc

    def _run(self) -> None:
        while not self._halt.wait(self.interval_s):
            try:
                sample = self._sample()
            except (OSError, ValueError, InputError) as exc:
                # An I2C sensor or vcgencmd can fail once; the trapezoid bridges the gap.
                with self._lock:
                    self._failures += 1
                    self._error = exc
                continue
            with self._lock:
                self._samples.append(sample)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} meter already started")
        self._error = None
        self._failures = 0
        self._samples = [self._checked_sample()]
        self._halt.clear()
        self._thread = threading.Thread(target=self._run, name=f"edgekit-{self.name}-meter", daemon=True)
        self._thread.start()

    def stop(self) -> EnergyReading:
        if self._thread is None:
            raise RuntimeError(f"{self.name} meter stopped before it was started")
        self._halt.set()
        self._thread.join()
        self._thread = None
        last = self._checked_sample()
        with self._lock:
            samples = [*self._samples, last]
            failures, error = self._failures, self._error
        if failures > len(samples):
            raise InputError(f"{self.name} meter ({self.method})", expected="readable power samples during the window",
                             found=f"{failures} failed reads against {len(samples)} good ones, last: {error}")
        seconds = samples[-1][0] - samples[0][0]
        rate = (len(samples) - 1) / seconds if seconds > 0 else None
        notes = self._window_notes(samples)
        if failures:
            notes.append(f"{failures} of {failures + len(samples)} samples could not be read and were skipped "
                         f"(last: {error})")
        return self._reading(integrate_trapezoid(samples), seconds, rate, len(samples), notes)

    def _window_notes(self, samples: Sequence[tuple[float, float]]) -> list[str]:
        return []

    def close(self) -> None:
        if self._thread is not None:
            self._halt.set()
            self._thread.join()
            self._thread = None

