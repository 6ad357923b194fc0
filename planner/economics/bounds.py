"""The allowed range of every workload and fleet input, written once: the command-line flags and
the workload file's schema both check against this table, so they cannot drift apart."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from planner.errors import PlannerError


@dataclass(frozen=True)
class Bound:
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    why: str = ""  # what the range means, for the message

    def field_kwargs(self) -> dict[str, float]:
        """The same range as pydantic Field(...) constraints."""
        return {
            k: v
            for k, v in (("ge", self.ge), ("gt", self.gt), ("le", self.le), ("lt", self.lt))
            if v is not None
        }

    def text(self) -> str:
        if self.ge is not None and self.le is not None:
            return f"between {self.ge:g} and {self.le:g}"
        if self.gt is not None and self.lt is not None:
            return f"strictly between {self.gt:g} and {self.lt:g}"
        parts = []
        if self.ge is not None:
            parts.append(f"at least {self.ge:g}")
        if self.gt is not None:
            parts.append("positive" if self.gt == 0 else f"above {self.gt:g}")
        if self.le is not None:
            parts.append(f"at most {self.le:g}")
        if self.lt is not None:
            parts.append(f"below {self.lt:g}")
        return " and ".join(parts)

    def check(self, value: Any, what: str) -> float:
        try:
            x = float(value)
        except (TypeError, ValueError):
            raise PlannerError(f"{what} must be a number, got {value!r}") from None
        ok = math.isfinite(x) and not (
            (self.ge is not None and x < self.ge)
            or (self.gt is not None and x <= self.gt)
            or (self.le is not None and x > self.le)
            or (self.lt is not None and x >= self.lt)
        )
        if not ok:
            why = f" ({self.why})" if self.why else ""
            raise PlannerError(f"{what} must be {self.text()}{why}, got {value!r}")
        return x


SHARE = Bound(ge=0, le=1)
USD = Bound(ge=0, why="a cost cannot be negative")

BOUNDS: dict[str, Bound] = {
    "input_share": Bound(gt=0, lt=1),
    "cached_input_share": SHARE,
    "batch_share": SHARE,
    "peak_to_mean": Bound(ge=1, lt=24, why="the busiest hour is at least the mean, and below a whole day"),
    "growth_per_month": Bound(gt=-1, le=2, why="0.1 is 10% a month; 2 triples the volume every month"),
    "slo_ttft_ms": Bound(gt=0),
    "slo_tpot_ms": Bound(gt=0),
    "target_utilization": Bound(gt=0, le=1),
    "min_replicas": Bound(ge=1),
    "ops_usd_per_month": USD,
    "spot_interruption_allowance": Bound(ge=0, le=1),
    "amortize_months": Bound(ge=1),
    "usd_per_kwh": USD,
    "pue": Bound(ge=1, why="power usage effectiveness: total facility power / IT power"),
    "hosting_usd_per_gpu_month": USD,
    "power_share_of_tdp": Bound(gt=0, le=1.5, why="average draw while serving, as a share of TDP"),
    "horizon_months": Bound(ge=1, le=120),
    "prompt_migration_usd": USD,
    "evaluation_usd": USD,
    "integration_usd": USD,
    "monitoring_usd_per_month": USD,
}


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def checked(values: dict[str, Any], name: str, default: float) -> float:
    """values[name] (or the default) within its bound; the message names the flag."""
    if name not in values:
        return default
    return BOUNDS[name].check(values[name], flag(name))
