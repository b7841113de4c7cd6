"""Energy meters for the benchmark: counters, sampled power sensors and a labelled estimate.

Meters sit in a small registry keyed by name (`METERS`); `open_meter` builds one from a
frozen `MeterConfig`, and ``auto`` tries them in `AUTO_ORDER`, recording why each
unusable one was skipped. A meter is used around each measurement window::

    meter = open_meter("auto", MeterConfig(profile=profile))
    baseline = meter.idle_baseline(3.0)          # before the windows, machine idle
    readings = []
    for window in windows:
        meter.start(); run(window); readings.append(meter.stop())
    result = energy_per_inference(readings, baseline, inferences=total_runs)

- ``rapl``: ``/sys/class/powercap/intel-rapl:*/energy_uj`` counters, with wraparound at
  ``max_energy_range_uj``; package zones and their DRAM subzones are summed, the core
  and uncore subzones (inside the package) and ``psys`` (contains the packages) are not.
- ``hwmon``: INA219/INA226/INA3221-style sensors under ``/sys/class/hwmon`` (Jetson
  included): ``power*_input`` in µW, or ``curr*_input`` mA x ``in*_input`` mV.
- ``rpi5``: the Raspberry Pi 5 PMIC via ``vcgencmd pmic_read_adc`` (sum of V x I per rail).
- ``android``: ``/sys/class/power_supply/battery/{current,voltage}_now`` with unit and
  sign detection.
- ``estimate``: a device profile's idle and active power with the process's CPU time;
  always labelled as an estimate (``measured=False``).
- ``none``: no energy figures.

Sampled meters (hwmon, rpi5, android) read power in a background thread and integrate
with the trapezoid rule. Every sysfs path is resolved under `MeterConfig.root` and
``vcgencmd`` is looked up on ``PATH``, so tests can point meters at fixture trees.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import itertools
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.errors import InputError

if TYPE_CHECKING:
    from edgekit.devices import DeviceProfile


class MeterName(str, enum.Enum):
    """The values of ``--meter``."""

    AUTO = "auto"
    NONE = "none"
    RAPL = "rapl"
    HWMON = "hwmon"
    RPI5 = "rpi5"
    ANDROID = "android"
    ESTIMATE = "estimate"


AUTO_ORDER = ("rapl", "hwmon", "rpi5", "android", "estimate")
"""Order of ``--meter auto``: counters first, then external/on-board sensors, then the estimate."""


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


@dataclasses.dataclass(frozen=True)
class EnergyResult:
    """Energy per inference over all windows of one variant.

    Gross is everything the meter saw; net subtracts the idle baseline power times the
    window time, i.e. the energy the inference added. ``label`` is ``"measured"`` or
    ``"estimated"``; show it next to every figure.
    """

    meter: str
    method: str
    measured: bool
    sample_rate_hz: float | None
    windows: int
    seconds: float
    inferences: int
    gross_joules: float
    idle_watts: float | None
    idle_method: str | None
    net_joules: float | None
    gross_j_per_inference: float
    net_j_per_inference: float | None
    notes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return "measured" if self.measured else "estimated"

    @property
    def mean_watts(self) -> float:
        return self.gross_joules / self.seconds if self.seconds > 0 else 0.0

    @property
    def gross_mj_per_inference(self) -> float:
        return self.gross_j_per_inference * 1000.0

    @property
    def net_mj_per_inference(self) -> float | None:
        return None if self.net_j_per_inference is None else self.net_j_per_inference * 1000.0

    def to_dict(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "notes": list(self.notes),
            "label": self.label,
            "mean_watts": self.mean_watts,
            "gross_mj_per_inference": self.gross_mj_per_inference,
            "net_mj_per_inference": self.net_mj_per_inference,
        }


def energy_per_inference(readings: Sequence[EnergyReading], baseline: IdleBaseline | None,
                         inferences: int) -> EnergyResult | None:
    """Gross and net joules per inference from the windows' readings.

    Args:
        readings: one reading per measurement window (all from the same meter).
        baseline: the idle power to subtract; None gives gross figures only.
        inferences: the number of inferences run in those windows.

    Returns:
        The result, or None when the meter measured nothing (``--meter none``).
    """
    if inferences <= 0:
        raise ValueError(f"inferences must be positive, got {inferences}")
    if not readings or any(r.joules is None for r in readings):
        return None
    gross = sum(r.joules for r in readings if r.joules is not None)
    seconds = sum(r.seconds for r in readings)
    notes = list(dict.fromkeys(n for r in readings for n in r.notes))
    idle_w = baseline.watts if baseline is not None else None
    net = None
    if idle_w is not None:
        net = gross - idle_w * seconds
        notes += baseline.notes if baseline is not None else ()
        if net < 0:
            notes.append(f"net energy {net:.4g} J is below zero: the inference's energy is within the "
                         "meter's noise at this idle baseline; use longer windows or a finer meter")
    else:
        notes.append("no idle baseline: net energy not computed")
    rates = [r.sample_rate_hz for r in readings if r.sample_rate_hz]
    measured = all(r.measured for r in readings) and (baseline is None or baseline.measured)
    if not measured:
        notes.insert(0, "ESTIMATED from device-profile power figures, not measured")
    return EnergyResult(
        meter=readings[0].meter, method=readings[0].method, measured=measured,
        sample_rate_hz=min(rates) if rates else None, windows=len(readings), seconds=seconds,
        inferences=inferences, gross_joules=gross, idle_watts=idle_w,
        idle_method=baseline.method if baseline is not None else None, net_joules=net,
        gross_j_per_inference=gross / inferences,
        net_j_per_inference=None if net is None else net / inferences,
        notes=tuple(dict.fromkeys(notes)),
    )


def integrate_trapezoid(samples: Sequence[tuple[float, float]]) -> float:
    """Energy in joules from (seconds, watts) samples, by the trapezoid rule."""
    return sum((t1 - t0) * (w0 + w1) / 2.0 for (t0, w0), (t1, w1) in itertools.pairwise(samples))


# ---------------------------------------------------------------------------
# the meter base classes


class Meter(abc.ABC):
    """A running energy meter: ``start()``, then ``stop()`` returns the window's reading.

    `method` names what is read; `notes` holds meter-level assumptions (and, after
    ``auto``, why other meters were skipped). Both are copied into every reading.
    """

    name: str = ""
    measured: bool = True

    def __init__(self) -> None:
        self.method = self.name
        self.notes: list[str] = []

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


class NoneMeter(Meter):
    """``--meter none``: windows are timed, no energy is reported."""

    name = "none"
    measured = False

    def __init__(self) -> None:
        super().__init__()
        self.method = "none: energy not measured"
        self._t0: float | None = None

    def start(self) -> None:
        self._t0 = time.perf_counter()

    def stop(self) -> EnergyReading:
        seconds = time.perf_counter() - (self._t0 if self._t0 is not None else time.perf_counter())
        return self._reading(None, seconds, None, 0)

    def idle_baseline(self, seconds: float = 3.0, sleep: Callable[[float], None] = time.sleep) -> IdleBaseline:
        return IdleBaseline(None, 0.0, self.method, False)


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


def _read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace").strip()


def _read_int(path: Path) -> int:
    return int(_read_text(path))


# ---------------------------------------------------------------------------
# rapl


RAPL_PERMISSION_HINT = (
    "RAPL energy counters are readable only by root since Linux 5.10 (CVE-2020-8694): run as root, "
    "or grant read access until the next reboot with "
    "`sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj` (a udev rule or a systemd-tmpfiles "
    "line `z /sys/class/powercap/intel-rapl:*/energy_uj 0444 - - -` makes it permanent), "
    "or use --meter estimate --device NAME"
)


@dataclasses.dataclass(frozen=True)
class RaplZone:
    """One powercap zone: ``intel-rapl:0`` (package-0), ``intel-rapl:0:2`` (dram), ..."""

    zone: str
    name: str
    path: Path
    max_range_uj: int | None

    @property
    def depth(self) -> int:
        return self.zone.count(":")


def rapl_zones(root: str | os.PathLike[str] = "/") -> list[RaplZone]:
    """Every powercap zone with an energy counter under `root`, sorted by zone id."""
    base = Path(root) / "sys" / "class" / "powercap"
    zones = []
    if not base.is_dir():
        return zones
    def order(path: Path) -> tuple[str, tuple[int, ...]]:
        prefix, *numbers = path.name.split(":")
        return prefix, tuple(int(n) if n.isdigit() else -1 for n in numbers)

    for entry in sorted(base.iterdir(), key=order):
        if ":" not in entry.name or not (entry / "energy_uj").exists():
            continue
        try:
            name = _read_text(entry / "name")
        except OSError:
            name = entry.name
        try:
            max_range = _read_int(entry / "max_energy_range_uj")
        except (OSError, ValueError):
            max_range = None
        zones.append(RaplZone(entry.name, name, entry, max_range))
    return zones


def counted_rapl_zones(zones: Sequence[RaplZone]) -> tuple[list[RaplZone], list[str]]:
    """The zones to sum without double counting, and a note for each zone left out.

    Package zones are counted; their DRAM subzones too (DRAM energy is outside the
    package domain); core/uncore subzones are inside their package and are not; ``psys``
    contains the packages and is used only when there is no package zone;
    ``intel-rapl-mmio`` zones repeat the package counter through MMIO.
    """
    counted: list[RaplZone] = []
    skipped: list[str] = []
    msr = [z for z in zones if z.zone.startswith("intel-rapl:")]
    top = [z for z in msr if z.depth == 1 and z.name != "psys"]
    psys = [z for z in msr if z.depth == 1 and z.name == "psys"]
    if top:
        counted += top
        skipped += [f"{z.zone} ({z.name}) not counted: it contains the package zones" for z in psys]
    else:
        counted += psys
    counted_ids = {z.zone for z in counted}
    for z in msr:
        if z.depth < 2:
            continue
        parent = z.zone.rsplit(":", 1)[0]
        if z.name == "dram" and parent in counted_ids and top:
            counted.append(z)
        else:
            skipped.append(f"{z.zone} ({z.name}) not counted: nested in {parent}")
    skipped += [f"{z.zone} ({z.name}) not counted: the MMIO view of a package counter"
                for z in zones if not z.zone.startswith("intel-rapl:")]
    return counted, skipped


def rapl_delta_uj(start: int, end: int, max_range_uj: int | None) -> tuple[int, bool]:
    """Energy between two readings of one counter, and whether it wrapped.

    The counter counts up to ``max_energy_range_uj`` and restarts at zero; one
    wraparound per window is assumed (hundreds of kJ: hours at package power).
    """
    if end >= start:
        return end - start, False
    if not max_range_uj:
        raise InputError("RAPL counter", expected="max_energy_range_uj to undo a wraparound",
                         found=f"a counter that went from {start} to {end} with no range")
    return end + max_range_uj - start, True


class RaplMeter(Meter):
    """Reads powercap energy counters at the start and the end of each window."""

    name = "rapl"

    def __init__(self, root: str | os.PathLike[str] = "/") -> None:
        super().__init__()
        all_zones = rapl_zones(root)
        if not all_zones:
            raise InputError("rapl meter", expected="energy counters in /sys/class/powercap/intel-rapl:*",
                             found="no RAPL zones", hint="RAPL exists on Intel and recent AMD x86 CPUs under Linux")
        self.zones, skipped = counted_rapl_zones(all_zones)
        self._start: dict[str, int] | None = None
        self._t0 = 0.0
        self._read_all()  # permission check now, not in the first window
        self.method = "rapl: " + " + ".join(f"{z.zone} ({z.name})" for z in self.zones) + " energy counters"
        self.notes += skipped

    def _read_all(self) -> dict[str, int]:
        values = {}
        for zone in self.zones:
            path = zone.path / "energy_uj"
            try:
                values[zone.zone] = _read_int(path)
            except PermissionError as exc:
                raise InputError(f"RAPL energy counter {path}", expected="read access",
                                 found="permission denied", hint=RAPL_PERMISSION_HINT) from exc
            except (OSError, ValueError) as exc:
                raise InputError(f"RAPL energy counter {path}", expected="an integer in µJ",
                                 found=str(exc)) from exc
        return values

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._start = self._read_all()

    def stop(self) -> EnergyReading:
        if self._start is None:
            raise RuntimeError("rapl meter stopped before it was started")
        end = self._read_all()
        seconds = time.perf_counter() - self._t0
        total = 0
        notes = []
        for zone in self.zones:
            delta, wrapped = rapl_delta_uj(self._start[zone.zone], end[zone.zone], zone.max_range_uj)
            total += delta
            if wrapped:
                notes.append(f"{zone.zone} counter wrapped at max_energy_range_uj={zone.max_range_uj}; corrected")
        self._start = None
        return self._reading(total / 1e6, seconds, None, 2, notes)


# ---------------------------------------------------------------------------
# hwmon

POWER_MONITOR_CHIPS = frozenset({
    "ina209", "ina219", "ina220", "ina226", "ina230", "ina231", "ina233", "ina237", "ina238",
    "ina260", "ina3221",
})
"""hwmon chip names trusted by ``auto``; any chip can still be chosen with `MeterConfig.rail`."""

_TOTAL_RAIL = re.compile(r"(^|_)(VDD_IN|VIN|IN|SYS|TOTAL|INPUT|5V0?)($|_)", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class HwmonChannel:
    """One measurable rail of a hwmon device."""

    device: str  # hwmon2
    chip: str  # contents of ``name``: ina3221
    channel: int
    label: str | None
    power: Path | None  # power*_input in µW
    current: Path | None  # curr*_input in mA
    voltage: Path | None  # in*_input in mV

    @property
    def key(self) -> str:
        return f"{self.device}/{self.channel}"

    def describe(self) -> str:
        label = f" {self.label!r}" if self.label else ""
        how = (f"{self.power.name} µW" if self.power is not None
               else f"{self.current.name if self.current else '?'} mA x {self.voltage.name if self.voltage else '?'} mV")
        return f"{self.chip} ({self.device}) channel {self.channel}{label}: {how}"

    def read_watts(self) -> float:
        if self.power is not None:
            return abs(_read_int(self.power)) / 1e6
        if self.current is None or self.voltage is None:
            raise ValueError(f"hwmon channel {self.key} has neither power nor current and voltage")
        return abs(_read_int(self.current) * _read_int(self.voltage)) / 1e6


def hwmon_channels(root: str | os.PathLike[str] = "/", known_only: bool = True) -> list[HwmonChannel]:
    """Power rails of the hwmon devices under `root`.

    A rail is ``powerN_input`` (µW), or ``currN_input`` (mA) paired with the bus voltage
    ``inN_input`` (mV) on INA chips (INA219/226: in1 is the bus, in0 the shunt; INA3221:
    in1..in3 are the bus voltages of channels 1..3). Attributes may sit in the hwmon
    directory or, on older drivers, in its ``device/`` subdirectory.
    """
    base = Path(root) / "sys" / "class" / "hwmon"
    channels: list[HwmonChannel] = []
    if not base.is_dir():
        return channels
    entries = sorted((p for p in base.iterdir() if p.name.startswith("hwmon")),
                     key=lambda p: int(p.name[5:]) if p.name[5:].isdigit() else 1 << 30)
    for entry in entries:
        folder = next((d for d in (entry, entry / "device") if (d / "name").is_file()), None)
        if folder is None:
            continue
        chip = _read_text(folder / "name")
        known = chip in POWER_MONITOR_CHIPS
        if known_only and not known:
            continue
        indices: set[int] = set()
        for path in folder.iterdir():
            match = re.fullmatch(r"(power|curr)(\d+)_input", path.name)
            if match:
                indices.add(int(match.group(2)))
        for index in sorted(indices):
            power = folder / f"power{index}_input"
            current = folder / f"curr{index}_input"
            voltage = folder / f"in{index}_input"
            label = None
            for label_file in (f"power{index}_label", f"curr{index}_label", f"in{index}_label"):
                if (folder / label_file).is_file():
                    label = _read_text(folder / label_file) or None
                    break
            if power.is_file():
                channels.append(HwmonChannel(entry.name, chip, index, label, power, None, None))
            elif current.is_file() and voltage.is_file() and known and not (chip == "ina3221" and index > 3):
                # ina3221's curr4 is the summation channel; in4 is channel 1's shunt voltage.
                channels.append(HwmonChannel(entry.name, chip, index, label, None, current, voltage))
    return channels


def choose_hwmon_channel(channels: Sequence[HwmonChannel], rail: str | None = None
                         ) -> tuple[HwmonChannel, str]:
    """The rail to measure, and why it was chosen.

    With `rail`, the channel whose label, ``hwmonN/K`` or ``CHIP/K`` matches. Otherwise a
    rail labelled as the board input (VDD_IN, VIN, ...), else the only rail, else the rail
    with the highest power now (the input rail carries the sum of the others).

    Raises:
        InputError: no channel, or `rail` matches none (listing the available ones).
    """
    if not channels:
        raise InputError("hwmon meter", expected=f"a power monitor ({', '.join(sorted(POWER_MONITOR_CHIPS))}) "
                         "under /sys/class/hwmon", found="no INA-family power monitor",
                         hint="wire an INA219/INA226 on the supply and load its driver, or use another meter")
    available = [f"{c.label or c.key} ({c.chip} {c.key})" for c in channels]
    if rail is not None:
        wanted = rail.strip().lower()
        for c in channels:
            if wanted in {(c.label or "").lower(), c.key.lower(), f"{c.chip}/{c.channel}".lower()}:
                return c, f"rail {rail!r} as requested"
        raise InputError(f"hwmon rail {rail!r}", expected=f"one of {available}", found="no such rail")
    labelled = [c for c in channels if c.label and _TOTAL_RAIL.search(c.label)]
    exact = [c for c in labelled if c.label and c.label.upper() in ("VDD_IN", "VIN", "POM_5V_IN", "VIN_SYS_5V0")]
    if exact or labelled:
        chosen = (exact or labelled)[0]
        return chosen, f"the board-input rail {chosen.label!r} of {len(channels)} ({', '.join(available)})"
    if len(channels) == 1:
        return channels[0], "the only power rail found"
    readings = []
    for c in channels:
        try:
            readings.append((c.read_watts(), c))
        except (OSError, ValueError):
            continue
    if not readings:
        return channels[0], "the first rail (none could be read to compare)"
    watts, chosen = max(readings, key=lambda pair: pair[0])
    return chosen, (f"the rail with the highest power now ({watts:.3g} W) of {len(channels)} "
                    f"({', '.join(available)}); pass a rail name to choose another")


class HwmonMeter(SampledMeter):
    """Samples one hwmon power rail."""

    name = "hwmon"
    default_interval_s = 0.05

    def __init__(self, root: str | os.PathLike[str] = "/", rail: str | None = None,
                 interval_s: float | None = None) -> None:
        super().__init__(interval_s)
        channels = hwmon_channels(root, known_only=rail is None)
        self.channel, why = choose_hwmon_channel(channels, rail)
        try:
            self.channel.read_watts()
        except PermissionError as exc:
            raise InputError(f"hwmon rail {self.channel.describe()}", expected="read access",
                             found="permission denied", hint="run as root or add read permission") from exc
        except (OSError, ValueError) as exc:
            raise InputError(f"hwmon rail {self.channel.describe()}", expected="a readable integer",
                             found=str(exc)) from exc
        self.method = f"hwmon: {self.channel.describe()}"
        self.notes.append(f"hwmon rail: {why}")

    def read_watts(self) -> float:
        return self.channel.read_watts()


# ---------------------------------------------------------------------------
# rpi5

_PMIC_LINE = re.compile(
    r"^\s*(?P<rail>\S+)_(?P<kind>[AV])\s+(?:current|volt)\(\d+\)=(?P<value>[-+0-9.eE]+)[AV]\s*$")


def parse_pmic_adc(text: str) -> dict[str, dict[str, float]]:
    """Rails of ``vcgencmd pmic_read_adc`` output: ``{"VDD_CORE": {"A": 2.84, "V": 0.88}, ...}``.

    Lines look like ``   VDD_CORE_A current(7)=2.84163000A`` and
    ``   VDD_CORE_V volt(15)=0.87968000V``.
    """
    rails: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        match = _PMIC_LINE.match(line)
        if match:
            rails.setdefault(match["rail"], {})[match["kind"]] = float(match["value"])
    return rails


def pmic_power(rails: dict[str, dict[str, float]], only: Sequence[str] | None = None) -> tuple[float, list[str]]:
    """Sum of V x I over the rails that have both (optionally only the named ones)."""
    used = [name for name, values in rails.items()
            if "A" in values and "V" in values and (not only or name in only)]
    return sum(rails[name]["A"] * rails[name]["V"] for name in used), used


def vcgencmd_path(explicit: str | None = None) -> str | None:
    """``vcgencmd`` as given, or found on ``PATH`` (None when absent)."""
    if explicit:
        return explicit
    return shutil.which("vcgencmd")


def run_vcgencmd(executable: str, *args: str, timeout: float = 5.0) -> str:
    """Run vcgencmd and return its stdout.

    Raises:
        InputError: it could not run or exited non-zero.
    """
    try:
        proc = subprocess.run([executable, *args], capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise InputError(f"`vcgencmd {' '.join(args)}`", expected="it to run", found=str(exc)) from exc
    if proc.returncode != 0:
        detail = (proc.stderr.strip() or proc.stdout.strip() or f"exit code {proc.returncode}").splitlines()[0]
        raise InputError(f"`vcgencmd {' '.join(args)}`", expected="exit code 0", found=detail,
                         hint="vcgencmd needs access to /dev/vcio: add the user to the video group")
    return proc.stdout


class Rpi5Meter(SampledMeter):
    """Samples the Raspberry Pi 5 PMIC rails through ``vcgencmd pmic_read_adc``."""

    name = "rpi5"
    default_interval_s = 0.2

    def __init__(self, vcgencmd: str | None = None, rails: str | None = None,
                 interval_s: float | None = None) -> None:
        super().__init__(interval_s)
        executable = vcgencmd_path(vcgencmd)
        if executable is None:
            raise InputError("rpi5 meter", expected="vcgencmd on PATH", found="no vcgencmd",
                             hint="on Raspberry Pi OS install it with: sudo apt install raspi-utils")
        self.executable = executable
        self.only = [r.strip() for r in rails.split(",") if r.strip()] if rails else None
        parsed = parse_pmic_adc(run_vcgencmd(executable, "pmic_read_adc"))
        watts, used = pmic_power(parsed, self.only)
        if not used:
            raise InputError("rpi5 meter: `vcgencmd pmic_read_adc`",
                             expected="rail lines like 'VDD_CORE_A current(7)=0.69A' with matching _V lines"
                             + (f" for rails {self.only}" if self.only else ""),
                             found=f"{len(parsed)} rails, none with both current and voltage",
                             hint="pmic_read_adc exists only on the Raspberry Pi 5 (and CM5/Pi 500)")
        self.rails = used
        self.method = f"rpi5: PMIC rails via vcgencmd pmic_read_adc, sum of V x I over {len(used)} rails"
        self.notes.append("PMIC rails only: excludes the 5 V input's USB, fan and conversion losses "
                          "(a USB power meter reads higher)")
        self.notes.append("each sample runs vcgencmd, which costs a few ms of CPU on one core")

    def read_watts(self) -> float:
        watts, used = pmic_power(parse_pmic_adc(run_vcgencmd(self.executable, "pmic_read_adc")), self.only)
        if not used:
            raise InputError("rpi5 meter", expected="PMIC rail readings", found="none in vcgencmd output")
        return watts


# ---------------------------------------------------------------------------
# android

_CHARGING = {"charging", "full", "not charging"}


class AndroidMeter(SampledMeter):
    """Samples a battery's ``current_now`` x ``voltage_now`` (or ``power_now``).

    The kernel ABI says µA and µV with negative current while discharging; devices
    differ. Units are decided once, at start-up, from the magnitudes (|current| >= 10000
    is µA, else mA; voltage > 100000 is µV, > 1000 mV, else V) unless given, and the sign
    from ``status`` (or, without it, from the sign of the first reading); the notes say
    what was assumed.
    """

    name = "android"
    default_interval_s = 0.1

    def __init__(self, root: str | os.PathLike[str] = "/", supply: str = "battery",
                 current_unit: str | None = None, interval_s: float | None = None) -> None:
        super().__init__(interval_s)
        self.base = Path(root) / "sys" / "class" / "power_supply" / supply
        where = f"power_supply {supply!r}"
        if not self.base.is_dir():
            raise InputError(f"android meter: {where}", expected=f"the folder /sys/class/power_supply/{supply}",
                             found=f"no power_supply {supply!r}")
        status = self._status()
        if status is not None and status.lower() in _CHARGING:
            raise InputError(f"android meter: {where}", expected="status Discharging",
                             found=f"status {status}",
                             hint="on external power the battery current does not measure the device; unplug USB "
                                  "and run over adb on Wi-Fi (adb tcpip 5555; adb connect PHONE:5555)")
        current = self.base / "current_now"
        voltage = self.base / "voltage_now"
        power = self.base / "power_now"
        self._power_only = not current.is_file() and power.is_file()
        try:
            if self._power_only:
                self.method = f"android: {where} power_now (µW)"
                self.read_watts()
                return
            if not current.is_file() or not voltage.is_file():
                raise InputError(f"android meter: {where}", expected="current_now and voltage_now (or power_now)",
                                 found="missing")
            raw_i = _read_int(current)
            raw_v = _read_int(voltage)
        except PermissionError as exc:
            raise InputError(f"android meter: {where}", expected="read access", found="permission denied",
                             hint="run through `adb shell` or as root") from exc
        except (OSError, ValueError) as exc:
            raise InputError(f"android meter: {where}", expected="integer readings", found=str(exc)) from exc

        if current_unit is not None:
            if current_unit not in ("uA", "mA"):
                raise InputError("android current unit", expected="uA or mA", found=repr(current_unit))
            self.amps_per_unit = 1e-6 if current_unit == "uA" else 1e-3
            self.notes.append(f"current_now in {current_unit} as configured")
        elif abs(raw_i) >= 10_000 or raw_i == 0:
            self.amps_per_unit = 1e-6
            self.notes.append(f"current_now read as µA (first reading {raw_i}" +
                              ("; zero, so the kernel ABI's µA is assumed)" if raw_i == 0 else ")"))
        else:
            self.amps_per_unit = 1e-3
            self.notes.append(f"current_now read as mA (first reading {raw_i} is too small for µA)")
        if abs(raw_v) > 100_000:
            self.volts_per_unit = 1e-6
        elif abs(raw_v) > 1_000:
            self.volts_per_unit = 1e-3
            self.notes.append(f"voltage_now read as mV (first reading {raw_v})")
        else:
            self.volts_per_unit = 1.0
            self.notes.append(f"voltage_now read as V (first reading {raw_v})")

        # discharge_sign * current_now is the discharge current.
        if status is not None and status.lower() == "discharging":
            self.discharge_sign = -1 if raw_i < 0 else 1
            if raw_i > 0:
                self.notes.append("current_now is positive while discharging (sign inverted against the kernel "
                                  "ABI, as on many vendor kernels); normalised")
        else:
            self.discharge_sign = -1 if raw_i < 0 else 1
            self.notes.append(f"battery status {'unknown' if status is None else status!r}: assumed discharging, "
                              f"with current_now {'negative' if raw_i < 0 else 'positive'} meaning discharge")
        self.notes.append("battery fuel gauges often update about once a second; use windows of several seconds")
        self.method = f"android: {where} current_now x voltage_now"

    def _status(self) -> str | None:
        try:
            return _read_text(self.base / "status") or None
        except OSError:
            return None

    def read_watts(self) -> float:
        if self._power_only:
            return abs(_read_int(self.base / "power_now")) / 1e6
        amps = self.discharge_sign * _read_int(self.base / "current_now") * self.amps_per_unit
        volts = _read_int(self.base / "voltage_now") * self.volts_per_unit
        return amps * volts

    def _window_notes(self, samples: Sequence[tuple[float, float]]) -> list[str]:
        negative = sum(1 for _t, w in samples if w < 0)
        return [f"{negative} of {len(samples)} samples show charging current"] if negative else []


# ---------------------------------------------------------------------------
# estimate


def process_cpu_seconds(pid: int | None = None, root: str | os.PathLike[str] = "/") -> float:
    """User + system CPU time of `pid` from ``/proc/PID/stat`` (this process when None)."""
    if pid is None:
        return time.process_time()
    text = (Path(root) / "proc" / str(pid) / "stat").read_text(encoding="utf-8")
    fields = text[text.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15, in clock ticks.
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class EstimateMeter(Meter):
    """Estimated energy: idle power x time + (active - idle) x CPU-seconds / cores.

    A linear utilisation model of the device profile's figures; it is never a
    measurement, and every reading says so (``measured=False``).
    """

    name = "estimate"
    measured = False

    def __init__(self, profile: DeviceProfile | None = None, *, idle_w: float | None = None,
                 active_w: float | None = None, cores: int | None = None, pid: int | None = None,
                 root: str | os.PathLike[str] = "/") -> None:
        super().__init__()
        if profile is not None:
            idle_w = profile.idle.watts if idle_w is None else idle_w
            active_w = profile.active.watts if active_w is None else active_w
            cores = profile.cores if cores is None else cores
        if idle_w is None or active_w is None or cores is None:
            from edgekit.devices import profile_names

            raise InputError("estimate meter", expected="a device profile for its power figures",
                             found="no --device", hint=f"pass --device with one of {profile_names()}")
        self.idle_w: float = idle_w
        self.active_w: float = active_w
        self.cores: int = cores
        self.pid = pid
        self.root = root
        self.last_cpu_seconds = 0.0
        self._t0 = 0.0
        self._cpu0 = 0.0
        origin = f"device profile {profile.name}" if profile is not None else "given figures"
        self.method = (f"estimate (not measured): {origin}, idle {self.idle_w:g} W + "
                       f"({self.active_w:g} - {self.idle_w:g}) W x CPU-seconds / {self.cores} cores")
        self.notes.append("ESTIMATED from device-profile power figures, not measured")
        if profile is not None:
            for label, fig in (("idle", profile.idle), ("active", profile.active)):
                self.notes.append(f"{label} {fig.watts:g} W{' (uncertain)' if fig.uncertain else ''}: {fig.source}")
        self.process_cpu_seconds()  # fail now if the process is not readable

    def process_cpu_seconds(self) -> float:
        try:
            return process_cpu_seconds(self.pid, self.root)
        except (OSError, ValueError, IndexError) as exc:
            raise InputError(f"estimate meter: CPU time of process {self.pid}", expected="a readable /proc/PID/stat",
                             found=str(exc)) from exc

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._cpu0 = self.process_cpu_seconds()

    def stop(self) -> EnergyReading:
        cpu = self.process_cpu_seconds() - self._cpu0
        seconds = time.perf_counter() - self._t0
        joules = self.idle_w * seconds + (self.active_w - self.idle_w) * cpu / self.cores
        self.last_cpu_seconds = cpu
        return self._reading(joules, seconds, None, 2)

    def idle_baseline(self, seconds: float = 3.0, sleep: Callable[[float], None] = time.sleep) -> IdleBaseline:
        """The profile's idle power; nothing to measure, so no waiting."""
        return IdleBaseline(self.idle_w, 0.0, "estimate: the device profile's idle power", False,
                            ("ESTIMATED from device-profile power figures, not measured",))


# ---------------------------------------------------------------------------
# registry


def _estimate(config: MeterConfig) -> Meter:
    return EstimateMeter(config.profile, pid=config.pid, root=config.root)


METERS: dict[str, Callable[[MeterConfig], Meter]] = {
    "none": lambda c: NoneMeter(),
    "rapl": lambda c: RaplMeter(c.root),
    "hwmon": lambda c: HwmonMeter(c.root, c.rail, c.interval_s),
    "rpi5": lambda c: Rpi5Meter(c.vcgencmd, c.rail, c.interval_s),
    "android": lambda c: AndroidMeter(c.root, c.supply, c.current_unit, c.interval_s),
    "estimate": _estimate,
}
METER_NAMES = ("auto", *METERS)


def open_meter(name: str = "auto", config: MeterConfig | None = None) -> Meter:
    """Build the meter `name` (``auto`` tries `AUTO_ORDER`, falling back to ``none``).

    With ``auto`` the meter's notes say which meter was chosen and why each earlier one
    was skipped (e.g. RAPL's permission hint), so the report can show it.

    Raises:
        InputError: an unknown name (listing the valid ones) or, for a named meter, why
            it cannot work here.
    """
    config = config or MeterConfig()
    if name != "auto":
        if name not in METERS:
            raise InputError(f"unrecognized meter {name!r}", expected=f"one of {list(METER_NAMES)}",
                             found=repr(name))
        return METERS[name](config)
    skipped: list[str] = []
    for candidate in AUTO_ORDER:
        if candidate == "estimate" and config.profile is None:
            skipped.append("estimate (no --device profile)")
            continue
        try:
            meter = METERS[candidate](config)
        except InputError as exc:
            # Short reasons; a permission problem keeps its hint (how to grant access).
            reason = f"{candidate} ({exc.found or exc.what})"
            if exc.hint and "permission" in (exc.found or ""):
                reason += f": {exc.what}; {exc.hint}"
            skipped.append(reason)
            continue
        meter.notes.insert(0, f"auto: chose {candidate}" + (f"; skipped {'; '.join(skipped)}" if skipped else ""))
        return meter
    meter = NoneMeter()
    meter.notes.append("auto: no energy meter available here; skipped " + "; ".join(skipped))
    return meter
