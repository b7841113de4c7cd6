"""``--meter estimate``: a device profile's idle and active power with the process's CPU time.

Always labelled as an estimate (``measured=False``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from edgekit.bench.meters.base import EnergyReading, IdleBaseline, Meter, MeterConfig
from edgekit.errors import InputError

if TYPE_CHECKING:
    from edgekit.devices import DeviceProfile

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
    help = "an ESTIMATE from the --device profile's idle and active power and the CPU time"
    auto_rank = 90  # last: not a measurement
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

    @classmethod
    def from_config(cls, config: MeterConfig) -> EstimateMeter:
        return cls(config.profile, pid=config.pid, root=config.root)

    @classmethod
    def unavailable(cls, config: MeterConfig) -> str | None:
        return None if config.profile is not None else "no --device profile"

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

