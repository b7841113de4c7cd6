"""Energy per inference from the meters' window readings (`edgekit.bench.meters`).

Gross is everything the meter saw over the windows; net subtracts the idle baseline's
power times the window time, i.e. the energy the inference added. An estimate is
labelled as one next to every figure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from edgekit.bench.meters.base import EnergyReading, IdleBaseline


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

