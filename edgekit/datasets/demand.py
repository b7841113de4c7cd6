"""Synthetic hourly electricity demand and temperature for several sites.

Each site has its own base level, a daily profile of its own kind (residential,
commercial, industrial) with site-specific timing and amplitude that differs on
weekdays, Saturdays and Sundays (holidays count as Sundays), a slow trend, a load
that rises with heating below and cooling above a comfort band (a U-shape in a
thermally lagged temperature), occasional unannounced events (a dip or a surge for a
few hours), and multiplicative AR(1) noise. Temperature is synthetic too: a seasonal
cycle, a daily cycle, multi-day weather (partly shared by all sites) and sensor noise.

Fully offline and deterministic for a given generator. numpy only.
"""

from __future__ import annotations

import dataclasses

import numpy as np

SITE_KINDS = ("residential", "commercial", "industrial")
DAY_TYPES = ("weekday", "saturday", "sunday")
# the comfort band of the thermally lagged temperature: heating below, cooling above (degrees C)
HEATING_BELOW = 15.0
COOLING_ABOVE = 21.0
NOISE_PHI = 0.85  # AR(1) coefficient of the multiplicative noise, per hour
NOISE_STEP = 0.025  # its innovation standard deviation (fraction of demand)


@dataclasses.dataclass(frozen=True)
class Calendar:
    """When hour 0 is, and which days are holidays (shared by every site).

    Attributes:
        start_day_of_year: day of the year (0-364) of hour 0; midnight.
        start_weekday: weekday of hour 0 (0 Monday .. 6 Sunday).
        holidays: day indices (from hour 0) that are public holidays.
    """

    start_day_of_year: int
    start_weekday: int
    holidays: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Site:
    """One site's hidden parameters."""

    kind: str
    base_kw: float
    trend_per_year: float
    profile: dict[str, np.ndarray]  # day type -> 24 hourly multipliers (mean ~1 on weekdays)
    heating_kw_per_c: float
    cooling_kw_per_c: float
    climate_mean_c: float
    climate_swing_c: float
    daily_swing_c: float


@dataclasses.dataclass(frozen=True)
class Series:
    """One site's hourly series.

    Attributes:
        demand: kW, observed.
        temperature: degrees C, observed.
        expected: kW, demand without the AR(1) noise (events included).
        noise: the AR(1) noise (demand = expected * (1 + noise)).
        events: ``(start hour, hours, factor)`` of each dip or surge.
    """

    demand: np.ndarray
    temperature: np.ndarray
    expected: np.ndarray
    noise: np.ndarray
    events: tuple[tuple[int, int, float], ...]


def calendar(rng: np.random.Generator, days: int) -> Calendar:
    """A random start date and about one public holiday a month (some as a long weekend or a week)."""
    start_weekday = int(rng.integers(0, 7))
    holidays: set[int] = set()
    for _ in range(int(rng.poisson(days / 30.0))):
        day = int(rng.integers(0, max(1, days)))
        length = int(rng.choice([1, 1, 1, 2, 4]))
        holidays.update(range(day, min(days, day + length)))
    return Calendar(int(rng.integers(0, 365)), start_weekday, tuple(sorted(holidays)))


def _bump(hours: np.ndarray, centre: float, width: float) -> np.ndarray:
    """A Gaussian bump on the 24-hour circle."""
    distance = (hours - centre + 12.0) % 24.0 - 12.0
    return np.exp(-0.5 * (distance / width) ** 2)


def _plateau(hours: np.ndarray, start: float, end: float, edge: float) -> np.ndarray:
    """Smooth on between `start` and `end` (hours of the day), ramps `edge` hours wide."""
    return 1.0 / (1.0 + np.exp(-(hours - start) / edge)) - 1.0 / (1.0 + np.exp(-(hours - end) / edge))


def _profiles(kind: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    h = np.arange(24, dtype=np.float64)
    shift = rng.normal(0.0, 0.7)  # the site's clock: earlier or later than others
    gain = rng.uniform(0.8, 1.25)
    if kind == "residential":
        def day(morning: float, evening: float, midday: float, late: float) -> np.ndarray:
            return (0.55 + gain * (0.35 * _bump(h, morning + shift, 1.3) + 0.55 * _bump(h, evening + shift, 2.4)
                                   + midday * _plateau(h, 10 + shift, 16 + shift, 1.0))
                    + 0.1 * _plateau(h, 7 + shift + late, 23 + shift, 1.0))
        out = {"weekday": day(7.3, 19.0, 0.08, 0.0), "saturday": day(9.0, 19.3, 0.22, 1.5),
               "sunday": day(9.5, 18.8, 0.25, 2.0)}
    elif kind == "commercial":
        open_at, close_at = 8.0 + shift, rng.uniform(17.0, 20.0) + shift
        weekend_open = rng.uniform(0.25, 0.6)
        def day(level: float) -> np.ndarray:
            return 0.45 + gain * level * (0.9 * _plateau(h, open_at, close_at, 0.7)
                                          + 0.1 * _bump(h, 13.0 + shift, 1.5))
        out = {"weekday": day(1.0), "saturday": day(weekend_open), "sunday": day(0.6 * weekend_open)}
    else:  # industrial: two shifts, a lunch dip, a half Saturday
        start, end = 6.0 + shift, rng.uniform(20.0, 23.0) + shift
        def day(level: float) -> np.ndarray:
            return 0.6 + gain * level * (0.55 * _plateau(h, start, end, 0.5) - 0.12 * _bump(h, 12.5 + shift, 0.7)
                                         - 0.08 * _bump(h, 14.0 + shift, 0.4))
        out = {"weekday": day(1.0), "saturday": day(rng.uniform(0.3, 0.7)), "sunday": day(0.15)}
    norm = float(out["weekday"].mean())
    return {name: profile / norm for name, profile in out.items()}


def site(rng: np.random.Generator, kind: str | None = None) -> Site:
    """A random site (of `kind`, or a random one)."""
    kind = kind or str(rng.choice(SITE_KINDS))
    base = float(rng.uniform(200.0, 900.0))
    return Site(kind=kind, base_kw=base, trend_per_year=float(rng.uniform(-0.08, 0.15)),
                profile=_profiles(kind, rng), heating_kw_per_c=base * float(rng.uniform(0.008, 0.025)),
                cooling_kw_per_c=base * float(rng.uniform(0.015, 0.04)),
                climate_mean_c=float(rng.uniform(7.0, 16.0)), climate_swing_c=float(rng.uniform(7.0, 12.0)),
                daily_swing_c=float(rng.uniform(3.0, 6.0)))


def _ar1(rng: np.random.Generator, length: int, phi: float, step: float) -> np.ndarray:
    """AR(1) with coefficient `phi` and innovations of std `step`, started stationary."""
    out = np.empty(length)
    value = rng.normal(0.0, step / np.sqrt(1.0 - phi * phi))
    shocks = rng.normal(0.0, step, length)
    for t in range(length):
        value = phi * value + shocks[t]
        out[t] = value
    return out


def regional_weather(rng: np.random.Generator, hours: int) -> np.ndarray:
    """The weather shared by every site: multi-day swings, unit standard deviation."""
    return _ar1(rng, hours, 0.985, np.sqrt(1 - 0.985**2))


def temperature(place: Site, cal: Calendar, hours: int, shared: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Hourly temperature (degrees C) at `place`: season, day, weather (shared and local), noise."""
    t = np.arange(hours)
    day_of_year = cal.start_day_of_year + t / 24.0
    season = place.climate_mean_c - place.climate_swing_c * np.cos(2 * np.pi * (day_of_year - 20.0) / 365.0)
    clouds = np.repeat(np.clip(1.0 + 0.35 * rng.standard_normal(hours // 24 + 1), 0.3, 1.6), 24)[:hours]
    daily = place.daily_swing_c * clouds * np.cos(2 * np.pi * ((t % 24) - 15.0) / 24.0)
    local = _ar1(rng, hours, 0.97, np.sqrt(1 - 0.97**2))
    weather = 2.8 * (0.75 * shared + 0.66 * local)
    return season + daily + weather + rng.normal(0.0, 0.3, hours)


def series(place: Site, cal: Calendar, hours: int, shared: np.ndarray, rng: np.random.Generator) -> Series:
    """`hours` hours of demand and temperature at `place` from midnight of day 0 of `cal`."""
    temp = temperature(place, cal, hours, shared, rng)
    t = np.arange(hours)
    day = t // 24
    weekday = (cal.start_weekday + day) % 7
    holiday = np.isin(day, np.array(cal.holidays, dtype=np.int64))
    kind_index = np.where(holiday | (weekday == 6), 2, np.where(weekday == 5, 1, 0))
    table = np.stack([place.profile[name] for name in DAY_TYPES])
    profile = table[kind_index, t % 24]
    # buildings lag the air: heating and cooling follow a 6-hour moving average
    lagged = np.empty(hours)
    alpha, value = 1.0 / 6.0, float(temp[0])
    for k in range(hours):
        value += alpha * (temp[k] - value)
        lagged[k] = value
    occupied = 0.6 + 0.4 * profile / table.max()
    weather_kw = (place.heating_kw_per_c * np.maximum(0.0, HEATING_BELOW - lagged)
                  + place.cooling_kw_per_c * np.maximum(0.0, lagged - COOLING_ABOVE) ** 1.2) * occupied
    trend = 1.0 + place.trend_per_year * t / (365.0 * 24.0)
    expected = place.base_kw * trend * profile + weather_kw
    events = []
    for _ in range(int(rng.poisson(hours / (24.0 * 14.0)))):  # about one a fortnight
        start, length = int(rng.integers(0, hours)), int(rng.integers(2, 9))
        factor = float(rng.uniform(0.45, 0.8) if rng.random() < 0.5 else rng.uniform(1.15, 1.4))
        ramp = np.ones(min(length, hours - start))
        expected[start:start + ramp.size] *= 1.0 + (factor - 1.0) * ramp
        events.append((start, int(ramp.size), round(factor, 3)))
    noise = _ar1(rng, hours, NOISE_PHI, NOISE_STEP)
    demand = expected * (1.0 + noise)
    return Series(demand=demand, temperature=temp, expected=expected, noise=noise, events=tuple(events))
