"""``--meter android``: a battery's ``current_now`` x ``voltage_now`` under ``/sys/class/power_supply``.

With unit and sign detection; phones, and Linux laptops on battery.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from edgekit.bench.meters.base import MeterConfig, SampledMeter, read_int, read_text
from edgekit.errors import InputError

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
    help = "the battery's current_now x voltage_now (/sys/class/power_supply; phones, laptops on battery)"
    auto_rank = 40  # a fuel gauge: coarse, about one update a second
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
            raw_i = read_int(current)
            raw_v = read_int(voltage)
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

    @classmethod
    def from_config(cls, config: MeterConfig) -> AndroidMeter:
        return cls(config.root, config.supply, config.current_unit, config.interval_s)

    def _status(self) -> str | None:
        try:
            return read_text(self.base / "status") or None
        except OSError:
            return None

    def read_watts(self) -> float:
        if self._power_only:
            return abs(read_int(self.base / "power_now")) / 1e6
        amps = self.discharge_sign * read_int(self.base / "current_now") * self.amps_per_unit
        volts = read_int(self.base / "voltage_now") * self.volts_per_unit
        return amps * volts

    def _window_notes(self, samples: Sequence[tuple[float, float]]) -> list[str]:
        negative = sum(1 for _t, w in samples if w < 0)
        return [f"{negative} of {len(samples)} samples show charging current"] if negative else []

