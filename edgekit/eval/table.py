"""The cells and fixed-width tables of eval's report, as in the bench and convert tables."""

from __future__ import annotations

import math
from typing import Any


def percent(figure: dict[str, Any] | None) -> str:
    """``97.3% [94.8, 98.6]`` of a proportion figure."""
    if not figure or figure["value"] is None:
        return "-"
    low, high = figure["ci95"]
    return f"{100 * figure['value']:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


def number(figure: dict[str, Any] | None, digits: int | None = 3) -> str:
    """``0.973 [0.955, 0.988]`` with `digits` decimals, or (None) the decimals that give the
    value 4 significant digits, for errors in the data's units (RMSE, MAE)."""
    if not figure or figure["value"] is None:
        return "-"
    low, high = figure["ci95"]
    value = figure["value"]
    if digits is None:
        digits = max(0, 3 - math.floor(math.log10(abs(value)))) if value else 3
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Fixed-width columns as in the bench and convert tables: the first left-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths,
                                                                                               strict=True)))
    return [line(header), *(line(r) for r in rows)]
