"""``--meter none``: windows are timed, no energy is reported."""

from __future__ import annotations

import time
from collections.abc import Callable

from edgekit.bench.meters.base import EnergyReading, IdleBaseline, Meter, MeterConfig


class NoneMeter(Meter):
    """``--meter none``: windows are timed, no energy is reported."""

    name = "none"
    help = "no energy figures; windows are only timed"
    measured = False

    def __init__(self) -> None:
        super().__init__()
        self.method = "none: energy not measured"
        self._t0: float | None = None

    @classmethod
    def from_config(cls, config: MeterConfig) -> NoneMeter:
        return cls()

    def start(self) -> None:
        self._t0 = time.perf_counter()

    def stop(self) -> EnergyReading:
        seconds = time.perf_counter() - (self._t0 if self._t0 is not None else time.perf_counter())
        return self._reading(None, seconds, None, 0)

    def idle_baseline(self, seconds: float = 3.0, sleep: Callable[[float], None] = time.sleep) -> IdleBaseline:
        return IdleBaseline(None, 0.0, self.method, False)
