"""``--meter rpi5``: the Raspberry Pi 5 PMIC via ``vcgencmd pmic_read_adc`` (sum of V x I per rail).

``vcgencmd`` is looked up on ``PATH``, so tests can put a stand-in first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from edgekit.bench.meters.base import MeterConfig, SampledMeter
from edgekit.bench.vcgencmd import run_vcgencmd, vcgencmd_path
from edgekit.errors import InputError

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


class Rpi5Meter(SampledMeter):
    """Samples the Raspberry Pi 5 PMIC rails through ``vcgencmd pmic_read_adc``."""

    name = "rpi5"
    help = "the Raspberry Pi 5 PMIC rails via vcgencmd pmic_read_adc"
    auto_rank = 30  # an on-board sensor that costs a process per sample
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

    @classmethod
    def from_config(cls, config: MeterConfig) -> Rpi5Meter:
        return cls(config.vcgencmd, config.rail, config.interval_s)

    def read_watts(self) -> float:
        watts, used = pmic_power(parse_pmic_adc(run_vcgencmd(self.executable, "pmic_read_adc")), self.only)
        if not used:
            raise InputError("rpi5 meter", expected="PMIC rail readings", found="none in vcgencmd output")
        return watts

