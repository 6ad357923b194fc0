"""Units and their parsing: "5M" tokens, "8k" context, hours in a month."""

from __future__ import annotations

import math
import re

from planner.errors import PlannerError

HOURS_PER_MONTH = 730.0
"""365 days x 24 h / 12 months, the convention cloud providers bill by."""
DAYS_PER_MONTH = 365.0 / 12.0
SECONDS_PER_DAY = 86_400.0
GIB = 1024**3
GB = 1e9

_SUFFIXES = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
_COUNT = re.compile(r"^\s*([+-]?[0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmbgt]?)\s*$", re.IGNORECASE)


def parse_count(text: str | float | int, what: str = "value", *, allow_zero: bool = False) -> float:
    """Parse a human count: 500k, 5M, 1.5B, 2e6, 1200. Raises PlannerError naming what was wrong."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        value = float(text)
    else:
        match = _COUNT.match(str(text).replace("_", "").replace(",", ""))
        if not match:
            raise PlannerError(
                f"{what}: cannot read {text!r} as a number; use digits with an optional k, M, B suffix "
                "(e.g. 500k, 5M, 1.5B)"
            )
        value = float(match.group(1)) * _SUFFIXES[match.group(2).lower()]
    if math.isnan(value):
        raise PlannerError(f"{what}: {text!r} is not a number")
    if math.isinf(value):
        raise PlannerError(f"{what}: {text!r} is too large (not a finite number)")
    if value < 0 or (value == 0 and not allow_zero):
        raise PlannerError(f"{what}: must be {'zero or ' if allow_zero else ''}positive, got {text!r}")
    return value


def parse_int_count(text: str | int, what: str = "value") -> int:
    """parse_count for whole numbers of tokens, GPUs, requests ("8k" -> 8000; "8Ki" is not accepted)."""
    value = parse_count(text, what)
    if value != int(value):
        raise PlannerError(f"{what}: must be a whole number, got {text!r}")
    return int(value)


def parse_context(text: str | int, what: str = "--context") -> int:
    """Context lengths count in powers of two, as models state them: '8k' -> 8192, '8.5k' -> 8704,
    '128k' -> 131072, '1M' -> 1048576; plain digits as given."""
    raw = str(text).strip().lower()
    scale = {"k": 1024, "m": 1024**2}.get(raw[-1:]) if raw else None
    if scale and raw[:-1].replace(".", "", 1).isdigit():
        value = float(raw[:-1]) * scale
        if value != int(value) or value <= 0:
            raise PlannerError(f"{what}: {text!r} is not a whole, positive number of tokens")
        return int(value)
    return parse_int_count(text, what)


def parse_int_list(text: str, what: str = "list") -> list[int]:
    """'1,8,32' -> [1, 8, 32]; each entry may use a suffix ('1k')."""
    parts = [p for p in str(text).split(",") if p.strip()]
    if not parts:
        raise PlannerError(f"{what}: empty list; give comma-separated numbers like 1,8,32")
    return [parse_int_count(p.strip(), what) for p in parts]


def format_count(value: float) -> str:
    """5_000_000 -> '5M', 1_500_000_000 -> '1.5B', 512 -> '512'."""
    for suffix, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"
