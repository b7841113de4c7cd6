"""Did a benchmark run on the device its ``--device`` profile names?

`match_host` compares the profile's ``match`` block (architecture, core count, CPU
names; see `edgekit.devices.HostMatch`) with the environment the run recorded (its own
machine's, or the remote host's for ``--remote``). A run on another machine keeps its
latencies, labelled as that host's; the report then says so in its first line, and the
device's budgets and energy estimates are marked "not measured on the device"
(`edgekit.bench.report`). `choose_threads` keeps the thread counts within the host's
cores, or says why not.

Only the standard library: remote reports are matched on the machine that reads them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgekit.devices import DeviceProfile

ARCH_NAMES = {"arm64": "aarch64", "amd64": "x86_64", "x64": "x86_64"}
"""Other spellings of an architecture (macOS and Windows), mapped to Linux's ``uname -m``."""

ARM32 = ("armv7l", "armv8l")
"""``uname -m`` of a 32-bit Arm kernel or userland, also on 64-bit Arm hardware."""

NOT_ON_DEVICE = "not measured on the device"
"""The budget verdict, and the label of figures, of a run on another host."""


def normalize_arch(machine: str | None) -> str | None:
    """``arm64`` -> ``aarch64``, ``AMD64`` -> ``x86_64``; None stays None."""
    if not machine:
        return None
    lower = machine.lower()
    return ARCH_NAMES.get(lower, lower)


@dataclasses.dataclass(frozen=True)
class DeviceMatch:
    """The outcome of `match_host`.

    Attributes:
        device: the profile's name.
        matches: True when every compared key agrees (a host that does not say counts as
            another host: its figures are never passed off as the device's).
        host: what the host is: ``arch``, ``cores``, ``cpu`` (as recorded).
        expected: the profile's ``match`` block (keys left out were not compared).
        differences: one phrase per key that differs, e.g. ``"2 cores, not 4"``.
        notes: what matched with a caveat (a 32-bit OS on the 64-bit device).
    """

    device: str
    matches: bool
    host: dict[str, Any]
    expected: dict[str, Any]
    differences: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    device_text: str = ""

    @property
    def summary(self) -> str | None:
        """The report's first line on another host; None on the device."""
        if self.matches:
            return None
        host = ", ".join(filter(None, (self.host.get("arch") or "unknown arch",
                                       f"{self.host['cores']} cores" if self.host.get("cores") else "unknown cores")))
        if self.host.get("cpu"):
            host += f" ({self.host['cpu']})"
        return (f"ran on {host}, not on {self.device} ({self.device_text}): latencies are this host's; "
                f"budgets and energy {NOT_ON_DEVICE}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{device, matches, host, expected, differences, notes, summary}``."""
        return {"device": self.device, "matches": self.matches, "host": dict(self.host),
                "expected": dict(self.expected), "differences": list(self.differences), "notes": list(self.notes),
                "summary": self.summary}


def _cpu_agrees(names: Sequence[str], environment: Mapping[str, Any]) -> bool | None:
    """Whether the host's CPU is one of `names`: each Arm core type must be one of them,
    or (no core types: x86) the model name must contain one. None when the host does not say."""
    wanted = [n.lower() for n in names]
    types = environment.get("core_types")
    if types:
        return all(str(t).lower() in wanted for t in types)
    model = environment.get("cpu_model")
    if not model:
        return None
    return any(name in str(model).lower() for name in wanted)


def match_host(profile: DeviceProfile, environment: Mapping[str, Any]) -> DeviceMatch:
    """Compare the profile's ``match`` block with a run's recorded environment
    (`edgekit.bench.environment.Environment.to_dict`, local or from a remote host).

    A 32-bit Arm OS (``armv7l``) on hardware whose CPU is the profile's counts as the
    device, with a note: it is the device, running slower code.
    """
    want = profile.match
    arch = normalize_arch(environment.get("machine"))
    cores = environment.get("cores")
    types = environment.get("core_types")
    cpu_text = environment.get("cpu_model") or ("/".join(types) if types else None)
    host = {"arch": arch, "cores": cores, "cpu": cpu_text}
    differences: list[str] = []
    notes: list[str] = []
    cpu_ok = _cpu_agrees(want.cpu, environment) if want.cpu else True
    if want.arch is not None and arch != want.arch:
        if want.arch == "aarch64" and arch in ARM32 and want.cpu and cpu_ok:
            notes.append(f"a 32-bit OS ({arch}) on the device: figures are the 32-bit OS's, "
                         "usually slower than a 64-bit OS's")
        else:
            differences.append(f"arch {arch}, not {want.arch}" if arch else f"arch unknown (the profile's is "
                                                                           f"{want.arch})")
    elif want.arch == "aarch64" and environment.get("python_bits") == 32:
        notes.append("a 32-bit Python on a 64-bit kernel: figures are the 32-bit build's")
    if want.cores is not None and cores != want.cores:
        differences.append(f"{cores} cores, not {want.cores}" if cores else
                           f"cores unknown (the profile's are {want.cores})")
    if want.cpu and not cpu_ok:
        differences.append(f"CPU {cpu_text}, not {'/'.join(want.cpu)}" if cpu_text
                           else f"CPU unknown (the profile's is {'/'.join(want.cpu)})")
    return DeviceMatch(device=profile.name, matches=not differences, host=host, expected=want.to_dict(),
                       differences=tuple(differences), notes=tuple(notes), device_text=want.describe())


def choose_threads(requested: Sequence[int], profile: DeviceProfile | None,
                   host_cores: int | None) -> tuple[tuple[int, ...], list[str]]:
    """The thread counts to run, and a warning for each that exceeds the host's cores.

    A profile's recommendation is capped at the host's cores (more threads than cores
    share them: latencies rise and scatter, and tell nothing about the device); thread
    counts given with ``--threads`` are the user's and are run as asked, with a warning.

    Returns:
        ``(threads, warnings)``.
    """
    warnings: list[str] = []
    if requested:
        over = [t for t in requested if host_cores and t > host_cores]
        if over:
            warnings.append(f"--threads {','.join(str(t) for t in over)} is more than this host's {host_cores} "
                            "cores: the threads share cores, so latencies rise and scatter")
        return tuple(requested), warnings
    if profile is None:
        return (1,), warnings
    if host_cores and profile.threads > host_cores:
        warnings.append(f"threads: {profile.name}'s {profile.threads} capped at this host's {host_cores} cores "
                        f"(--threads {profile.threads} runs them anyway)")
        return (host_cores,), warnings
    return (profile.threads,), warnings
