"""Energy meters for the benchmark: counters, sampled power sensors and a labelled estimate.

One file per meter, one registry (`METERS`, name -> class). Each class carries its
``--meter`` name, a one-line `help` and its `auto_rank`; the names ``--meter`` accepts
(`METER_NAMES`) and ``auto``'s order (`AUTO_ORDER`) are derived from them. `open_meter`
builds one from a frozen `MeterConfig`, and ``auto`` tries them in `AUTO_ORDER`,
recording why each unusable one was skipped. A meter is used around each measurement
window::

    meter = open_meter("auto", MeterConfig(profile=profile))
    baseline = meter.idle_baseline(3.0)          # before the windows, machine idle
    readings = []
    for window in windows:
        meter.start(); run(window); readings.append(meter.stop())
    result = energy_per_inference(readings, baseline, inferences=total_runs)  # edgekit.bench.energy

Adding a meter: a module here with a `Meter` (or `SampledMeter`) subclass, and its line
in `METERS`. Only the standard library is imported, so the CLI can read the registry for
``--help``.
"""

from __future__ import annotations

import enum

from edgekit.bench.meters.android import AndroidMeter
from edgekit.bench.meters.base import EnergyReading, IdleBaseline, Meter, MeterConfig, SampledMeter
from edgekit.bench.meters.estimate import EstimateMeter
from edgekit.bench.meters.hwmon import HwmonMeter
from edgekit.bench.meters.none import NoneMeter
from edgekit.bench.meters.rapl import RaplMeter
from edgekit.bench.meters.rpi5 import Rpi5Meter
from edgekit.errors import InputError

METERS: dict[str, type[Meter]] = {meter.name: meter for meter in (
    NoneMeter,
    RaplMeter,
    HwmonMeter,
    Rpi5Meter,
    AndroidMeter,
    EstimateMeter,
)}
"""The meters by ``--meter`` name, in the order ``--meter`` lists them."""

AUTO = "auto"
_AUTO_RANKS = {name: meter.auto_rank for name, meter in METERS.items() if meter.auto_rank is not None}
AUTO_ORDER: tuple[str, ...] = tuple(sorted(_AUTO_RANKS, key=_AUTO_RANKS.__getitem__))
"""Order of ``--meter auto``, by `Meter.auto_rank`: counters first, then external and
on-board sensors, then the estimate."""

AUTO_HELP = f"the first meter that works here, tried in this order: {', '.join(AUTO_ORDER)}; else none"
METER_NAMES: tuple[str, ...] = (AUTO, *METERS)
"""The values of ``--meter``."""

MeterName = enum.Enum("MeterName", [(name.upper(), name) for name in METER_NAMES], type=str)
"""The values of ``--meter`` as a str Enum (built from `METER_NAMES`)."""

__all__ = [
    "AUTO",
    "AUTO_HELP",
    "AUTO_ORDER",
    "METERS",
    "METER_NAMES",
    "EnergyReading",
    "IdleBaseline",
    "Meter",
    "MeterConfig",
    "MeterName",
    "SampledMeter",
    "meter_help",
    "open_meter",
]


def meter_help(name: str) -> str:
    """The one-line help of ``--meter NAME`` (``auto`` included)."""
    return AUTO_HELP if name == AUTO else METERS[name].help


def open_meter(name: str = AUTO, config: MeterConfig | None = None) -> Meter:
    """Build the meter `name` (``auto`` tries `AUTO_ORDER`, falling back to ``none``).

    With ``auto`` the meter's notes say which meter was chosen and why each earlier one
    was skipped (e.g. RAPL's permission hint), so the report can show it.

    Raises:
        InputError: an unknown name (listing the valid ones) or, for a named meter, why
            it cannot work here.
    """
    config = config or MeterConfig()
    if name != AUTO:
        if name not in METERS:
            raise InputError(f"unrecognized meter {name!r}", expected=f"one of {list(METER_NAMES)}",
                             found=repr(name))
        return METERS[name].from_config(config)
    skipped: list[str] = []
    for candidate in AUTO_ORDER:
        meter_class = METERS[candidate]
        why_not = meter_class.unavailable(config)
        if why_not is not None:
            skipped.append(f"{candidate} ({why_not})")
            continue
        try:
            meter = meter_class.from_config(config)
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
