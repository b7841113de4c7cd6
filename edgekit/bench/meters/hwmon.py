"""``--meter hwmon``: an INA219/INA226/INA3221-style power monitor under ``/sys/class/hwmon``.

Jetson boards included: ``power*_input`` in µW, or ``curr*_input`` mA x ``in*_input`` mV,
sampled in a background thread.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from pathlib import Path

from edgekit.bench.meters.base import MeterConfig, SampledMeter, read_int, read_text
from edgekit.errors import InputError

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
            return abs(read_int(self.power)) / 1e6
        if self.current is None or self.voltage is None:
            raise ValueError(f"hwmon channel {self.key} has neither power nor current and voltage")
        return abs(read_int(self.current) * read_int(self.voltage)) / 1e6


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
        chip = read_text(folder / "name")
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
                    label = read_text(folder / label_file) or None
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
    help = "an INA219/INA226/INA3221-style power monitor under /sys/class/hwmon (Jetson included)"
    auto_rank = 20  # a sensor on the supply
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

    @classmethod
    def from_config(cls, config: MeterConfig) -> HwmonMeter:
        return cls(config.root, config.rail, config.interval_s)

    def read_watts(self) -> float:
        return self.channel.read_watts()

