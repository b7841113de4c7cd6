"""``--meter rapl``: the powercap energy counters of Intel and AMD x86 CPUs under Linux.

``/sys/class/powercap/intel-rapl:*/energy_uj`` counters, read at the start and the end
of each window, with wraparound at ``max_energy_range_uj``; package zones and their DRAM
subzones are summed, the core and uncore subzones (inside the package) and ``psys``
(contains the packages) are not.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from pathlib import Path

from edgekit.bench.meters.base import EnergyReading, Meter, MeterConfig, read_int, read_text
from edgekit.errors import InputError

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
            name = read_text(entry / "name")
        except OSError:
            name = entry.name
        try:
            max_range = read_int(entry / "max_energy_range_uj")
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
    help = "RAPL energy counters of Intel and AMD x86 CPUs (/sys/class/powercap)"
    auto_rank = 10  # a counter: exact and free to read

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

    @classmethod
    def from_config(cls, config: MeterConfig) -> RaplMeter:
        return cls(config.root)

    def _read_all(self) -> dict[str, int]:
        values = {}
        for zone in self.zones:
            path = zone.path / "energy_uj"
            try:
                values[zone.zone] = read_int(path)
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

