"""Device profiles: what a target board is, what runs well on it and what it may cost.

A profile is one YAML file named after the device (``devices/raspberry-pi-4.yaml``):
CPU, cores, RAM, architecture, recommended threads and variants, the energy meters
that work there, idle and active power figures for energy estimates (each with its
source), and default budgets for ``edgekit bench --device NAME``. Optional: short
``aliases`` (``rpi4``), accepted wherever a profile name is, and ``match``, what a host
must be to count as this device (``edgekit bench`` compares it with the machine it runs
on; see `HostMatch`).

Profiles are looked up, first match wins, in: directories passed by the caller, the
directories in ``EDGEKIT_DEVICES`` (``os.pathsep``-separated), the ``devices/`` folder
of a source checkout, and the copy installed with the package (``share/edgekit/devices``
in the installation's data directory, declared as data-files in ``pyproject.toml``).

This module needs only the standard library and PyYAML; it never imports the bench or
the build layers.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from edgekit import _datafiles
from edgekit.errors import EdgekitError, ExitCode, InputError

SCHEMA_VERSION = 1
ENV_VAR = "EDGEKIT_DEVICES"
BUDGET_KEYS = ("latency_ms", "size_kb", "memory_mb", "energy_mj")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_VARIANT = re.compile(r"^(tflite|onnx)-[a-z0-9]+$")
_METER = re.compile(r"^[a-z0-9]+$")
_TOP_KEYS = {
    "schema": False, "name": True, "title": True, "cpu": True, "cores": True, "ram_mb": True,
    "arch": True, "threads": True, "variants": True, "meters": True, "power": True,
    "budgets": True, "notes": False, "aliases": False, "match": False,
}
_MATCH_KEYS = {"arch": False, "cores": False, "cpu": False}
_FIGURE_KEYS = {"value": True, "source": True, "uncertain": False}


@dataclasses.dataclass(frozen=True)
class PowerFigure:
    """One power figure used by the ``estimate`` meter.

    Args:
        watts: the figure in watts.
        source: where it comes from (datasheet, product brief, published measurement).
        uncertain: True when the figure is an approximation rather than a published value.
    """

    watts: float
    source: str
    uncertain: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.watts, "source": self.source, "uncertain": self.uncertain}


@dataclasses.dataclass(frozen=True)
class Budgets:
    """Per-variant limits for bench gates; None means no limit on that key.

    Keys match ``--budget``: ``latency_ms`` (median invoke latency), ``size_kb`` (model
    file size), ``memory_mb`` (peak resident memory), ``energy_mj`` (energy per inference).
    """

    latency_ms: float | None = None
    size_kb: float | None = None
    memory_mb: float | None = None
    energy_mj: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return {key: getattr(self, key) for key in BUDGET_KEYS}

    def overridden(self, other: Budgets) -> Budgets:
        """These budgets with every key that `other` sets replaced by its value."""
        return Budgets(**{key: getattr(other, key) if getattr(other, key) is not None else getattr(self, key)
                          for key in BUDGET_KEYS})

    @classmethod
    def parse(cls, text: str) -> Budgets:
        """Parse ``--budget`` text: ``latency_ms=50,size_kb=300``.

        Raises:
            InputError: an unknown key (listing the valid ones) or a value that is not a
                positive number.
        """
        values: dict[str, float] = {}
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or key not in BUDGET_KEYS:
                raise InputError(f"budget {item!r}", expected=f"KEY=VALUE with KEY one of {list(BUDGET_KEYS)}",
                                 found=repr(item))
            values[key] = _positive(value.strip(), f"budget {key}")
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class HostMatch:
    """What a host must be to count as the device: the profile's ``match`` block.

    A key left out of the block is not compared. A profile without the block compares
    its ``arch`` and ``cores``; a device class (``x86-64-linux``) states only ``arch``.

    Args:
        arch: the machine architecture (``uname -m``), e.g. ``aarch64``.
        cores: the number of cores.
        cpu: CPU names, one of which the host's must be: Arm core types as ``/proc/cpuinfo``
            names them (``Cortex-A72``), or a part of an x86 model name (``N100``).
    """

    arch: str | None = None
    cores: int | None = None
    cpu: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"arch": self.arch, "cores": self.cores, "cpu": list(self.cpu)}
        return {key: value for key, value in data.items() if value not in (None, [])}

    def describe(self) -> str:
        """``aarch64, 4 cores Cortex-A72``: the device as a host would have to be."""
        parts = [self.arch] if self.arch else []
        if self.cores is not None or self.cpu:
            cores = f"{self.cores} cores" if self.cores is not None else ""
            parts.append(" ".join(filter(None, (cores, "/".join(self.cpu)))))
        return ", ".join(parts) or "any host"


class UnknownProfileError(EdgekitError):
    """A device name that is neither a profile nor an alias: a usage error (exit 2), like
    an unknown choice of any option; the message lists the names and their aliases."""

    exit_code = ExitCode.USAGE


@dataclasses.dataclass(frozen=True)
class DeviceProfile:
    """A target device, as described by its YAML file (see the module docstring)."""

    name: str
    title: str
    cpu: str
    cores: int
    ram_mb: tuple[int, ...]
    arch: str
    threads: int
    variants: tuple[str, ...]
    meters: tuple[str, ...]
    idle: PowerFigure
    active: PowerFigure
    budgets: Budgets
    notes: tuple[str, ...] = ()
    path: str | None = None
    aliases: tuple[str, ...] = ()
    match: HostMatch = HostMatch()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with the same keys as the YAML file (plus ``path``)."""
        return {
            "schema": SCHEMA_VERSION,
            "name": self.name,
            "title": self.title,
            "cpu": self.cpu,
            "cores": self.cores,
            "ram_mb": list(self.ram_mb),
            "arch": self.arch,
            "threads": self.threads,
            "variants": list(self.variants),
            "meters": list(self.meters),
            "power": {"idle_w": self.idle.to_dict(), "active_w": self.active.to_dict()},
            "budgets": self.budgets.to_dict(),
            "notes": list(self.notes),
            "aliases": list(self.aliases),
            "match": self.match.to_dict(),
            "path": self.path,
        }

    def summary(self) -> str:
        """One line for ``edgekit devices list``."""
        ram = "/".join(_mb_text(mb) for mb in self.ram_mb)
        also = f"; {'aliases' if len(self.aliases) > 1 else 'alias'} {', '.join(self.aliases)}" if self.aliases else ""
        return f"{self.name:<18} {self.title} ({self.cores} cores, {ram} RAM, {self.arch}){also}"

    def describe(self) -> str:
        """Readable multi-line text for ``edgekit devices show NAME``."""

        def figure(label: str, fig: PowerFigure) -> str:
            mark = " (uncertain)" if fig.uncertain else ""
            return f"  {label:<7} {fig.watts:g} W{mark}\n          source: {fig.source}"

        budgets = ", ".join(f"{k}={v:g}" for k, v in self.budgets.to_dict().items() if v is not None) or "none"
        lines = [
            f"{self.name}: {self.title}",
            *([f"aliases:  {', '.join(self.aliases)}"] if self.aliases else []),
            f"cpu:      {self.cpu}",
            f"cores:    {self.cores}",
            f"ram:      {', '.join(_mb_text(mb) for mb in self.ram_mb)}",
            f"arch:     {self.arch}",
            f"threads:  {self.threads} (recommended)",
            f"variants: {', '.join(self.variants)} (in order of preference)",
            f"meters:   {', '.join(self.meters)}",
            "power (for --meter estimate):",
            figure("idle", self.idle),
            figure("active", self.active),
            f"budgets:  {budgets}",
            f"match:    {self.match.describe()} (edgekit bench marks figures from other hosts)",
        ]
        lines += [f"note:     {note}" for note in self.notes]
        if self.path:
            lines.append(f"file:     {self.path}")
        return "\n".join(lines)


def _mb_text(mb: int) -> str:
    return f"{mb // 1024} GB" if mb >= 1024 and mb % 1024 == 0 else f"{mb} MB"


def _positive(value: Any, field: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
        raise InputError(field, expected="a positive number", found=repr(value))
    return number


# ---------------------------------------------------------------------------
# validation


def parse_profile(data: Any, source: str = "<profile>") -> DeviceProfile:
    """Validate a profile mapping (as read from YAML) and build a `DeviceProfile`.

    Args:
        data: the parsed YAML document.
        source: where it came from, named in error messages.

    Raises:
        InputError: naming the offending field, what was expected and what was found.
    """
    where = f"device profile {source}"
    if not isinstance(data, Mapping):
        raise InputError(where, expected="a YAML mapping", found=type(data).__name__)
    _check_keys(data, _TOP_KEYS, where)
    schema = data.get("schema", SCHEMA_VERSION)
    if schema != SCHEMA_VERSION:
        raise InputError(f"{where}: schema", expected=str(SCHEMA_VERSION), found=repr(schema),
                         hint="this edgekit reads profile schema 1; upgrade edgekit for newer profiles")

    def text(key: str, mapping: Mapping = data, prefix: str = "") -> str:
        value = mapping[key]
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{where}: {prefix}{key}", expected="a non-empty string", found=repr(value))
        return value.strip()

    def count(key: str) -> int:
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{where}: {key}", expected="a positive integer", found=repr(value))
        return value

    def names(key: str, pattern: re.Pattern[str]) -> tuple[str, ...]:
        value = data[key]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and pattern.match(v)
                                                              for v in value):
            raise InputError(f"{where}: {key}", expected=f"a non-empty list of names matching {pattern.pattern}",
                             found=repr(value))
        return tuple(value)

    name = text("name")
    if not _NAME.match(name):
        raise InputError(f"{where}: name", expected="lowercase letters, digits and dashes", found=repr(name))
    ram = data["ram_mb"]
    ram_list = ram if isinstance(ram, list) else [ram]
    if not ram_list or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in ram_list):
        raise InputError(f"{where}: ram_mb", expected="a positive integer or a list of them (one per model)",
                         found=repr(ram))
    cores = count("cores")
    threads = count("threads")
    if threads > cores:
        raise InputError(f"{where}: threads", expected=f"at most cores={cores}", found=str(threads))

    power = data["power"]
    if not isinstance(power, Mapping):
        raise InputError(f"{where}: power", expected="a mapping with idle_w and active_w", found=repr(power))
    _check_keys(power, {"idle_w": True, "active_w": True}, f"{where}: power")
    idle = _figure(power["idle_w"], f"{where}: power.idle_w")
    active = _figure(power["active_w"], f"{where}: power.active_w")
    if active.watts <= idle.watts:
        raise InputError(f"{where}: power.active_w", expected=f"more than idle_w={idle.watts:g} W",
                         found=f"{active.watts:g} W")

    budgets_data = data["budgets"]
    if not isinstance(budgets_data, Mapping):
        raise InputError(f"{where}: budgets", expected=f"a mapping with keys from {list(BUDGET_KEYS)}",
                         found=repr(budgets_data))
    _check_keys(budgets_data, dict.fromkeys(BUDGET_KEYS, False), f"{where}: budgets")
    budgets = Budgets(**{key: _positive(value, f"{where}: budgets.{key}")
                         for key, value in budgets_data.items() if value is not None})

    notes = data.get("notes") or []
    if isinstance(notes, str):
        notes = [notes]
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise InputError(f"{where}: notes", expected="a string or a list of strings", found=repr(notes))

    aliases = data.get("aliases") or []
    if isinstance(aliases, str):
        aliases = [aliases]
    if not isinstance(aliases, list) or not all(isinstance(a, str) and _NAME.match(a) and a != name
                                                for a in aliases):
        raise InputError(f"{where}: aliases", expected="a list of other names: lowercase letters, digits and dashes",
                         found=repr(aliases))
    arch = text("arch")

    return DeviceProfile(
        name=name, title=text("title"), cpu=text("cpu"), cores=cores, ram_mb=tuple(ram_list),
        arch=arch, threads=threads, variants=names("variants", _VARIANT),
        meters=names("meters", _METER), idle=idle, active=active, budgets=budgets,
        notes=tuple(n.strip() for n in notes), path=None, aliases=tuple(dict.fromkeys(aliases)),
        match=_host_match(data.get("match"), arch, cores, where),
    )


def _host_match(value: Any, arch: str, cores: int, where: str) -> HostMatch:
    """The ``match`` block; absent: the profile's arch and cores. Its arch and cores, when
    given, must agree with the profile's own (they say which of them are compared)."""
    if value is None:
        return HostMatch(arch=arch, cores=cores)
    if not isinstance(value, Mapping):
        raise InputError(f"{where}: match", expected="a mapping with keys from ['arch', 'cores', 'cpu']",
                         found=repr(value))
    _check_keys(value, _MATCH_KEYS, f"{where}: match")
    if "arch" in value and value["arch"] != arch:
        raise InputError(f"{where}: match.arch", expected=f"the profile's arch {arch!r}", found=repr(value["arch"]))
    if "cores" in value and value["cores"] != cores:
        raise InputError(f"{where}: match.cores", expected=f"the profile's cores {cores}", found=repr(value["cores"]))
    cpu = value.get("cpu") or []
    if isinstance(cpu, str):
        cpu = [cpu]
    if not isinstance(cpu, list) or not all(isinstance(c, str) and c.strip() for c in cpu):
        raise InputError(f"{where}: match.cpu", expected="a list of CPU names, e.g. [Cortex-A72]", found=repr(cpu))
    return HostMatch(arch=arch if "arch" in value else None, cores=cores if "cores" in value else None,
                     cpu=tuple(c.strip() for c in cpu))


def _check_keys(mapping: Mapping, allowed: dict[str, bool], where: str) -> None:
    unknown = sorted(str(k) for k in mapping if k not in allowed)
    if unknown:
        raise InputError(f"{where}: unknown field {unknown[0]!r}", expected=f"fields from {sorted(allowed)}",
                         found=", ".join(unknown))
    missing = [k for k, required in allowed.items() if required and k not in mapping]
    if missing:
        raise InputError(f"{where}: missing field {missing[0]!r}", expected=f"all of {missing}",
                         found=f"fields {sorted(str(k) for k in mapping)}")


def _figure(value: Any, where: str) -> PowerFigure:
    if not isinstance(value, Mapping):
        raise InputError(where, expected="a mapping {value: WATTS, source: TEXT, uncertain: BOOL}",
                         found=repr(value), hint="every power figure needs a source")
    _check_keys(value, _FIGURE_KEYS, where)
    source = value["source"]
    if not isinstance(source, str) or not source.strip():
        raise InputError(f"{where}.source", expected="a non-empty string naming where the figure comes from",
                         found=repr(source))
    uncertain = value.get("uncertain", False)
    if not isinstance(uncertain, bool):
        raise InputError(f"{where}.uncertain", expected="true or false", found=repr(uncertain))
    return PowerFigure(_positive(value["value"], f"{where}.value"), " ".join(source.split()), uncertain)


# ---------------------------------------------------------------------------
# finding and loading


def search_path(dirs: Iterable[str | os.PathLike[str]] = ()) -> list[Path]:
    """The folders searched for profiles, in order (first match of a name wins)."""
    return _datafiles.search_path("devices", ENV_VAR, dirs)


def _profile_files(dirs: Sequence[str | os.PathLike[str]]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for folder in search_path(dirs):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.yaml")):
            files.setdefault(path.stem, path)
    return files


def profile_names(dirs: Sequence[str | os.PathLike[str]] = ()) -> list[str]:
    """Names of every profile found, sorted."""
    return sorted(_profile_files(dirs))


def read_profile(path: str | os.PathLike[str]) -> DeviceProfile:
    """Load and validate one profile file.

    Raises:
        InputError: unreadable file, invalid YAML, a failed validation, or a ``name``
            that differs from the file name.
    """
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"device profile {path}", expected="a readable YAML file",
                         found=exc.strerror or str(exc)) from exc
    except yaml.YAMLError as exc:
        raise InputError(f"device profile {path}", expected="valid YAML",
                         found=" ".join(str(exc).split())) from exc
    profile = parse_profile(data, str(path))
    if profile.name != path.stem:
        raise InputError(f"device profile {path}: name", expected=f"{path.stem!r} (the file name)",
                         found=repr(profile.name))
    return dataclasses.replace(profile, path=str(path))


def is_profile_path(name: str) -> bool:
    """True when `name` is a profile file's path rather than a profile name or alias."""
    return name.endswith((".yaml", ".yml")) or os.sep in name


def resolve_name(name: str, dirs: Sequence[str | os.PathLike[str]] = ()) -> str:
    """The profile name `name` stands for: itself (a profile name), the profile it is an
    alias of, or `name` unchanged when it is neither (or a path).

    Raises:
        InputError: two profiles claim the alias, or a profile file is invalid.
    """
    if is_profile_path(name):
        return name
    files = _profile_files(dirs)
    if name in files:
        return name  # a profile's own name wins over any alias
    owners = [p.name for p in (read_profile(path) for path in files.values()) if name in p.aliases]
    if len(owners) > 1:
        raise InputError(f"device alias {name!r}", expected="an alias of one profile",
                         found=f"an alias of {', '.join(owners)}", hint="use the profile's full name")
    return owners[0] if owners else name


def names_and_aliases(dirs: Sequence[str | os.PathLike[str]] = ()) -> str:
    """``android-midrange (android), ..., raspberry-pi-4 (rpi4), ...``: every name a
    profile answers to, for error messages."""
    return ", ".join(p.name + (f" ({', '.join(p.aliases)})" if p.aliases else "") for p in list_profiles(dirs))


def load_profile(name: str, dirs: Sequence[str | os.PathLike[str]] = ()) -> DeviceProfile:
    """The profile called `name` (a name or an alias), or the one in the file `name` if it
    is a path to a .yaml file.

    Raises:
        UnknownProfileError: no such profile or alias (exit 2; the message lists the names
            and aliases).
        InputError: an invalid or unreadable file.
    """
    if is_profile_path(name):
        return read_profile(name)
    files = _profile_files(dirs)
    canonical = resolve_name(name, dirs)
    if canonical not in files:
        raise UnknownProfileError(f"unknown device profile {name!r}", expected=f"one of {names_and_aliases(dirs)}",
                                  found=repr(name),
                                  hint="run `edgekit devices list`, or pass the path of a profile .yaml file")
    return read_profile(files[canonical])


def list_profiles(dirs: Sequence[str | os.PathLike[str]] = ()) -> list[DeviceProfile]:
    """Every profile found, validated, sorted by name.

    Raises:
        InputError: a profile file is invalid (so broken files are never silently skipped).
    """
    return [read_profile(path) for _name, path in sorted(_profile_files(dirs).items())]
