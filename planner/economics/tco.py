"""Total cost of ownership over a horizon: monthly and cumulative cost with growth, one-time
switching costs and monitoring, and the month self-hosting pays back."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from planner.economics.capacity import Candidate, Policy, plan
from planner.economics.cost import ApiCost
from planner.economics.workload import Workload

DEFAULT_PROMPT_MIGRATION_USD = 5_000.0
"""About a week of an engineer re-tuning prompts for the self-hosted model (loaded $180k a year)."""
DEFAULT_EVALUATION_USD = 2_000.0
"""Evaluation runs comparing the self-hosted model with the API on your own cases."""
DEFAULT_INTEGRATION_USD = 10_000.0
"""About three engineer-weeks: serving stack, autoscaling, rollout, dashboards and alerts."""
DEFAULT_MONITORING_USD_PER_MONTH = 300.0
"""Metrics, logs and tracing for the fleet (a managed observability plan)."""


@dataclass(frozen=True)
class SwitchingCosts:
    prompt_migration_usd: float = DEFAULT_PROMPT_MIGRATION_USD
    evaluation_usd: float = DEFAULT_EVALUATION_USD
    integration_usd: float = DEFAULT_INTEGRATION_USD
    monitoring_usd_per_month: float = DEFAULT_MONITORING_USD_PER_MONTH

    @property
    def one_time_usd(self) -> float:
        return self.prompt_migration_usd + self.evaluation_usd + self.integration_usd


@dataclass(frozen=True)
class TcoSeries:
    option: str
    kind: str  # api | self-hosted
    tokens_per_day: np.ndarray  # per month of the horizon
    monthly_usd: np.ndarray
    one_time_usd: float  # paid in month 1

    @property
    def cumulative_usd(self) -> np.ndarray:
        return np.cumsum(self.monthly_usd) + self.one_time_usd

    @property
    def total_usd(self) -> float:
        return float(self.cumulative_usd[-1])


def volumes(workload: Workload, horizon_months: int) -> np.ndarray:
    """Tokens a day in each month of the horizon, growing month on month."""
    return workload.tokens_per_day * (1.0 + workload.growth_per_month) ** np.arange(horizon_months)


def api_series(api: ApiCost, workload: Workload, horizon_months: int) -> TcoSeries:
    v = volumes(workload, horizon_months)
    monthly = v * api.usd_per_token * (365.0 / 12.0)
    return TcoSeries(f"{api.price.provider}/{api.price.model}", "api", v, monthly, 0.0)


def self_hosted_series(
    c: Candidate, workload: Workload, policy: Policy, switching: SwitchingCosts, horizon_months: int
) -> TcoSeries:
    """The fleet re-sized each month for that month's volume, plus monitoring; switching costs once."""
    v = volumes(workload, horizon_months)
    monthly = np.array([plan(c, replace(workload, tokens_per_day=x), policy).usd_per_month for x in v])
    monthly = monthly + switching.monitoring_usd_per_month
    return TcoSeries(c.label, "self-hosted", v, monthly, switching.one_time_usd)


def payback_month(self_hosted: TcoSeries, api: TcoSeries) -> int | None:
    """The first month (1-based) from which self-hosting's cumulative cost stays at or below the API's."""
    cheaper = self_hosted.cumulative_usd <= api.cumulative_usd
    if not cheaper[-1]:
        return None
    dear = np.flatnonzero(~cheaper)
    return int(dear[-1]) + 2 if len(dear) else 1


TCO_POOL = 15
"""Self-hosted options tried over the horizon: growth can make a bigger GPU cheaper in total."""


@dataclass(frozen=True)
class TcoComparison:
    series: list[TcoSeries]  # every API (cheapest first), then the best self-hosted option
    payback_month: int | None  # of the self-hosted option against the cheapest API
    paybacks: dict[str, int | None] = field(default_factory=dict)  # API label -> payback month
    candidate: Candidate | None = None  # the self-hosted option of the last series

    @property
    def self_hosted(self) -> TcoSeries | None:
        return next((s for s in self.series if s.kind == "self-hosted"), None)

    @property
    def apis(self) -> list[TcoSeries]:
        return [s for s in self.series if s.kind == "api"]

    def apis_by_payback(self) -> list[TcoSeries]:
        """The APIs self-hosting pays back against first (soonest first), then the rest, cheapest first."""

        def key(s: TcoSeries) -> tuple[bool, int]:
            month = self.paybacks.get(s.option)
            return (month is None, month or 0)

        return sorted(self.apis, key=key)


def compare(analysis: Any, switching: SwitchingCosts, horizon_months: int) -> TcoComparison:
    """The TCO series `planner tco` and the report show, from a break-even analysis: every API
    alternative (those named and the hosted versions of the candidate models), the self-hosted
    option cheapest over the horizon, and its payback month against each API."""
    w, policy = analysis.workload, analysis.policy
    series = [api_series(x, w, horizon_months) for x in analysis.all_apis]
    pool = [
        (self_hosted_series(p.candidate, w, policy, switching, horizon_months), p.candidate)
        for p in analysis.plans[:TCO_POOL]
    ]
    if not pool:
        return TcoComparison(series, None)
    best, candidate = min(pool, key=lambda sc: sc[0].total_usd)
    paybacks = {s.option: payback_month(best, s) for s in series}
    cheapest = min(series, key=lambda s: s.total_usd) if series else None
    payback = paybacks[cheapest.option] if cheapest else None
    return TcoComparison([*series, best], payback, paybacks, candidate)
