"""Formatting shared by pages: money, ratios, percentages; no value shows as '–'."""

from __future__ import annotations

import math
from typing import Any

from core.metrics import CATALOGUE

NO_VALUE = "–"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def money(value: Any, currency: str = "") -> str:
    if _missing(value):
        return NO_VALUE
    return f"{float(value):,.2f} {currency}".strip()


def metric(key: str, value: Any, currency: str = "") -> str:
    """A catalogue metric as people read it: percent, money or a plain ratio."""
    if _missing(value):
        return NO_VALUE
    kind = CATALOGUE[key].kind
    if kind == "percent":
        return f"{float(value) * 100:.2f}%"
    if kind == "money":
        return money(value, currency)
    return f"{float(value):.2f}"


def count(value: Any) -> str:
    return NO_VALUE if _missing(value) else f"{float(value):,.0f}"
