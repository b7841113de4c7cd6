"""The environment record of a benchmark: what machine, clocks, heat and software it ran on.

`collect_environment` reads ``/proc``, ``/sys``, ``/etc/os-release`` and (on a
Raspberry Pi) ``vcgencmd``; every field is optional and missing means None, never an
exception. Files are read under `root` (tests point it at fixture trees); facts about
the running interpreter (Python version, installed library versions, uname) come from
the process itself. Library versions come from package metadata: nothing heavy is
imported.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import re
import struct
import subprocess
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from edgekit._optional import DISTRIBUTION
from edgekit.bench.vcgencmd import run_vcgencmd, vcgencmd_path
from edgekit.errors import InputError

LIBRARIES = ("numpy", "ai-edge-litert", "tflite-runtime", "onnxruntime", DISTRIBUTION)
"""Distributions whose versions are recorded (None when not installed)."""

THROTTLE_FLAGS = {
    0: "under_voltage",
    1: "arm_frequency_capped",
    2: "throttled",
    3: "soft_temperature_limit",
}
"""Bits of ``vcgencmd get_throttled``: bit N is happening now, bit N+16 has happened since boot."""

# Arm Ltd (implementer 0x41) CPU part numbers, as /proc/cpuinfo reports them on arm64.
ARM_PARTS = {
    0xD03: "Cortex-A53", 0xD04: "Cortex-A35", 0xD05: "Cortex-A55", 0xD07: "Cortex-A57",
    0xD08: "Cortex-A72", 0xD09: "Cortex-A73", 0xD0A: "Cortex-A75", 0xD0B: "Cortex-A76",
    0xD0C: "Neoverse-N1", 0xD0D: "Cortex-A77", 0xD40: "Neoverse-V1", 0xD41: "Cortex-A78",
    0xD42: "Cortex-A78AE", 0xD44: "Cortex-X1", 0xD46: "Cortex-A510", 0xD47: "Cortex-A710",
    0xD48: "Cortex-X2", 0xD49: "Neoverse-N2", 0xD4B: "Cortex-A78C", 0xD4D: "Cortex-A715",
    0xD4E: "Cortex-X3", 0xD80: "Cortex-A520", 0xD81: "Cortex-A720", 0xD82: "Cortex-X4",
}

_EXPECTED = (OSError, ValueError, IndexError, KeyError, UnicodeDecodeError, InputError,
             subprocess.SubprocessError)
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class CpuFreqPolicy:
    """One cpufreq policy (a cluster of cores that share a clock)."""

    policy: str
    cpus: str | None
    governor: str | None
    cur_mhz: float | None
    max_mhz: float | None


@dataclasses.dataclass(frozen=True)
class Environment:
    """What a benchmark ran on. Every field may be None when it could not be read."""

    cpu_model: str | None = None
    core_types: tuple[str, ...] | None = None
    board_model: str | None = None
    hardware: str | None = None
    cores: int | None = None
    governor: str | None = None
    cur_freq_mhz: float | None = None
    max_freq_mhz: float | None = None
    cpufreq: tuple[CpuFreqPolicy, ...] | None = None
    temperatures_c: dict[str, float] | None = None
    throttled: dict[str, Any] | None = None
    throttle_counts: dict[str, int] | None = None
    os_name: str | None = None
    os_id: str | None = None
    os_version: str | None = None
    kernel: str | None = None
    machine: str | None = None
    python_version: str | None = None
    python_implementation: str | None = None
    python_bits: int | None = None
    libraries: dict[str, str | None] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (policies become dicts, tuples become lists)."""
        data = dataclasses.asdict(self)
        if data["cpufreq"] is not None:
            data["cpufreq"] = list(data["cpufreq"])
        if data["core_types"] is not None:
            data["core_types"] = list(data["core_types"])
        return data


def _safe(read: Callable[[], T]) -> T | None:
    """Run one reader; an unreadable or malformed source means None, not an exception."""
    try:
        return read()
    except _EXPECTED:
        return None


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


# ---------------------------------------------------------------------------
# CPU


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """CPU model, board model, hardware and core count from ``/proc/cpuinfo`` text.

    x86 names the CPU in ``model name``; 32-bit Arm in ``model name`` too (``ARMv7
    Processor rev 3 (v7l)``); arm64 gives only implementer/part numbers, which are
    named here (``4x Cortex-A72``, or ``4x Cortex-A55 + 4x Cortex-A78`` on big.LITTLE).
    A Raspberry Pi adds ``Hardware`` and ``Model`` lines.
    """
    processors: list[dict[str, str]] = []
    extra: dict[str, str] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "processor" and value.isdigit():
            current = {}
            processors.append(current)
        elif current is not None and key in ("model name", "CPU implementer", "CPU part", "Processor"):
            current[key] = value
        else:
            extra.setdefault(key, value)
    model = extra.get("model name") or extra.get("Processor")
    named = [p["model name"] for p in processors if p.get("model name")]
    if named:
        model = named[0]
    else:
        # arm64: count the cores of each kind, e.g. "4x Cortex-A55 + 4x Cortex-A78".
        counts: dict[str, int] = {}
        for name in filter(None, (_arm_name(p) for p in processors)):
            counts[name] = counts.get(name, 0) + 1
        if counts:
            model = " + ".join(f"{n}x {name}" for name, n in counts.items())
    return {
        "cpu_model": model,
        "board_model": extra.get("Model"),
        "hardware": extra.get("Hardware"),
        "cores": len(processors) or None,
    }


def arm_core_types(text: str) -> list[str]:
    """The distinct Arm core types in ``/proc/cpuinfo`` text, from each processor's
    implementer and part numbers (``["Cortex-A72"]``); also on a 32-bit kernel, whose
    ``model name`` (``ARMv7 Processor rev 3 (v7l)``) does not name the core. Empty on x86."""
    types: list[str] = []
    current: dict[str, str] = {}
    for line in [*text.splitlines(), "processor: end"]:
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip()
        if key == "processor":
            name = _arm_name(current)
            if name is not None and name not in types:
                types.append(name)
            current = {}
        elif key in ("CPU implementer", "CPU part"):
            current[key] = value.strip()
    return types


def _arm_name(proc: dict[str, str]) -> str | None:
    implementer, part = proc.get("CPU implementer"), proc.get("CPU part")
    if implementer is None or part is None:
        return None
    try:
        impl, number = int(implementer, 16), int(part, 16)
    except ValueError:
        return None
    if impl == 0x41 and number in ARM_PARTS:
        return ARM_PARTS[number]
    return f"CPU implementer {implementer} part {part}"


def _online_cpus(root: Path) -> int | None:
    text = _text(root / "sys/devices/system/cpu/online").strip()
    count = 0
    for part in text.split(","):
        low, _, high = part.partition("-")
        count += int(high or low) - int(low) + 1
    return count or None


def read_cpufreq(root: Path) -> list[CpuFreqPolicy]:
    """cpufreq policies (``policy*``; older kernels: ``cpu0/cpufreq``)."""
    base = root / "sys/devices/system/cpu"
    folders = sorted((base / "cpufreq").glob("policy*"),
                     key=lambda p: int(p.name[6:]) if p.name[6:].isdigit() else 0)
    if not folders and (base / "cpu0/cpufreq").is_dir():
        folders = [base / "cpu0/cpufreq"]
    policies = []
    for folder in folders:
        def read(name: str, folder: Path = folder) -> str | None:
            return _safe(lambda: _text(folder / name).strip() or None)

        def mhz(*names: str, read: Callable[[str], str | None] = read) -> float | None:
            for name in names:
                value = read(name)
                if value is not None and value.isdigit():
                    return int(value) / 1000.0  # kHz
            return None

        policies.append(CpuFreqPolicy(
            policy=folder.name if folder.name.startswith("policy") else "cpu0",
            cpus=read("related_cpus") or read("affected_cpus"),
            governor=read("scaling_governor"),
            cur_mhz=mhz("scaling_cur_freq", "cpuinfo_cur_freq"),
            max_mhz=mhz("cpuinfo_max_freq", "scaling_max_freq"),
        ))
    return policies


def read_temperatures(root: Path) -> dict[str, float]:
    """``thermal_zone*``: {type: degrees C}; a repeated type is keyed ``type (thermal_zoneN)``."""
    base = root / "sys/class/thermal"
    temps: dict[str, float] = {}
    zones = sorted(base.glob("thermal_zone*"), key=lambda p: int(p.name[12:]) if p.name[12:].isdigit() else 0)
    for zone in zones:
        raw = _safe(lambda zone=zone: int(_text(zone / "temp").strip()))
        if raw is None:
            continue  # disabled zones fail to read (EINVAL, ENODATA)
        kind = _safe(lambda zone=zone: _text(zone / "type").strip()) or zone.name
        key = kind if kind not in temps else f"{kind} ({zone.name})"
        temps[key] = raw / 1000.0  # millidegrees Celsius
    return temps


def read_throttle_counts(root: Path) -> dict[str, int] | None:
    """x86 ``thermal_throttle`` counters, summed over CPUs (packages counted once)."""
    base = root / "sys/devices/system/cpu"
    core = 0
    packages: dict[str, int] = {}
    found = False
    for folder in base.glob("cpu[0-9]*/thermal_throttle"):
        found = True
        core += _safe(lambda folder=folder: int(_text(folder / "core_throttle_count"))) or 0
        package_id = _safe(lambda folder=folder: _text(folder.parent / "topology/physical_package_id").strip()) or "0"
        count = _safe(lambda folder=folder: int(_text(folder / "package_throttle_count")))
        if count is not None:
            packages[package_id] = count
    if not found:
        return None
    return {"core_throttle_count": core, "package_throttle_count": sum(packages.values())}


# ---------------------------------------------------------------------------
# Raspberry Pi firmware


def decode_throttled(value: int) -> dict[str, Any]:
    """Name the bits of ``vcgencmd get_throttled`` (e.g. 0x50005)."""
    return {
        "raw": f"0x{value:x}",
        "now": [name for bit, name in THROTTLE_FLAGS.items() if value & (1 << bit)],
        "since_boot": [name for bit, name in THROTTLE_FLAGS.items() if value & (1 << (bit + 16))],
    }


def parse_throttled(text: str) -> dict[str, Any] | None:
    """``throttled=0x50005`` -> decoded flags (None when the text has no such line)."""
    match = re.search(r"throttled=(0x[0-9a-fA-F]+|\d+)", text)
    return decode_throttled(int(match.group(1), 0)) if match else None


def parse_measure_temp(text: str) -> float | None:
    """``temp=48.3'C`` -> 48.3."""
    match = re.search(r"temp=([-0-9.]+)'C", text)
    return float(match.group(1)) if match else None


# ---------------------------------------------------------------------------
# operating system and software


def parse_os_release(text: str) -> dict[str, str]:
    """KEY=value lines of os-release, quotes removed."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            values[key] = value
    return values


def _android_release(root: Path) -> dict[str, str] | None:
    props = parse_os_release(_text(root / "system/build.prop"))
    release = props.get("ro.build.version.release")
    if release is None:
        return None
    return {"PRETTY_NAME": f"Android {release}", "ID": "android", "VERSION_ID": release}


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str | None]:
    """Installed version of each distribution, from its metadata (nothing is imported)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


# ---------------------------------------------------------------------------


def collect_environment(root: str | os.PathLike[str] = "/", vcgencmd: str | None = None,
                        libraries: tuple[str, ...] = LIBRARIES) -> Environment:
    """Read everything this machine will tell about itself; what it will not is None.

    Args:
        root: filesystem root for ``proc/``, ``sys/``, ``etc/`` (tests use fixtures).
        vcgencmd: path of ``vcgencmd``; None looks it up on ``PATH`` (absent off a Pi).
        libraries: distributions whose versions to record.
    """
    base = Path(root)
    cpu = _safe(lambda: parse_cpuinfo(_text(base / "proc/cpuinfo"))) or {}
    core_types = _safe(lambda: arm_core_types(_text(base / "proc/cpuinfo"))) or None
    board = cpu.get("board_model") or _safe(
        lambda: _text(base / "proc/device-tree/model").strip("\x00\n ") or None)
    cores = cpu.get("cores") or _safe(lambda: _online_cpus(base))
    if cores is None and Path(root).resolve() == Path("/"):
        cores = os.cpu_count()

    policies = _safe(lambda: read_cpufreq(base)) or []
    governors = list(dict.fromkeys(p.governor for p in policies if p.governor))
    cur = [p.cur_mhz for p in policies if p.cur_mhz is not None]
    top = [p.max_mhz for p in policies if p.max_mhz is not None]

    temperatures = _safe(lambda: read_temperatures(base)) or {}
    throttled = None
    executable = vcgencmd_path(vcgencmd)
    if executable is not None:
        throttled = _safe(lambda: parse_throttled(run_vcgencmd(executable, "get_throttled", timeout=2.0)))
        soc = _safe(lambda: parse_measure_temp(run_vcgencmd(executable, "measure_temp", timeout=2.0)))
        if soc is not None:
            temperatures["vcgencmd measure_temp"] = soc

    release = (_safe(lambda: parse_os_release(_text(base / "etc/os-release")))
               or _safe(lambda: parse_os_release(_text(base / "usr/lib/os-release")))
               or _safe(lambda: _android_release(base)) or {})
    uname = platform.uname()
    return Environment(
        cpu_model=cpu.get("cpu_model"),
        core_types=tuple(core_types) if core_types else None,
        board_model=board,
        hardware=cpu.get("hardware"),
        cores=cores,
        governor=",".join(governors) or None,
        cur_freq_mhz=max(cur) if cur else None,
        max_freq_mhz=max(top) if top else None,
        cpufreq=tuple(policies) or None,
        temperatures_c=temperatures or None,
        throttled=throttled,
        throttle_counts=_safe(lambda: read_throttle_counts(base)),
        os_name=release.get("PRETTY_NAME") or release.get("NAME"),
        os_id=release.get("ID"),
        os_version=release.get("VERSION_ID"),
        kernel=uname.release or None,
        machine=uname.machine or None,
        python_version=platform.python_version(),
        python_implementation=platform.python_implementation(),
        python_bits=struct.calcsize("P") * 8,
        libraries=library_versions(libraries),
    )
