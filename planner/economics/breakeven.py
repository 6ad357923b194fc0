"""Break-even volumes: from how many tokens a day does a self-hosted fleet stay cheaper than an API?

The API bill is linear in volume; a fleet's is a staircase (whole instances) on top of a fixed
operations cost. On each stair the fleet's cost is flat while the API's grows, so the two
curves can cross several times: once where a stair ends below the API line, again where the next
instance pushes the fleet above it. The break-even reported is the LAST crossing: from that
volume on, self-hosting stays cheaper. Where the fleet's cost per token at full use exceeds the
API's, no volume pays: "never".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from planner.economics.capacity import Candidate, Policy, fleet_params
from planner.economics.cost import ApiCost, FleetParams, autoscaled_usd_per_month
from planner.economics.workload import Workload
from planner.perf.model import ReplicaCapacity
from planner.units import DAYS_PER_MONTH

MAX_VOLUME = 1e13
"""Tokens a day beyond which nothing is searched (10 trillion: beyond any single service)."""

Verdict = Literal["breaks-even", "within-smallest-fleet", "never"]


@dataclass(frozen=True)
class Crossing:
    tokens_per_day: float | None  # the last crossing; None when never
    first_tokens_per_day: float | None  # where the fleet is first cheaper (may be cheaper only briefly)
    verdict: Verdict


def always_on_crossings(
    d: np.ndarray, u: np.ndarray, f: np.ndarray, m0: np.ndarray, a: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact last and first crossings of f + u * max(m0, ceil(V / d)) with the API line a * V.

    d: volume one instance carries at the peak hour; u: an instance's $/month; f: fixed $/month;
    m0: minimum instances; a: the API's $/month per token/day. Arrays broadcast (many options x
    many APIs in one call). Returns (last crossing, first crossing, verdict code), the crossings
    NaN where the verdict is 0 (never); code 1: within the smallest fleet, 2: breaks even.

    Stair j (j >= m0) spans (j d, (j+1) d] at cost f + (j+1) u. On a stair the fleet's cost is
    flat while the API's grows, so the fleet is dearest just after a stair starts; it is dearer
    there than the API when f + (j+1) u > a j d, i.e. j < (f + u) / (a d - u). Past the last such
    stair it stays cheaper; the crossing on that stair is where a V reaches its cost.
    """
    d, u, f, m0, a = (np.asarray(x, dtype=float) for x in (d, u, f, m0, a))
    margin = a * d - u  # what one more instance's worth of volume saves once the fleet is full
    never = margin <= 0
    safe = np.where(never, 1.0, margin)
    last_bad = np.ceil((f + u) / safe) - 1
    last = np.where(last_bad >= m0, (f + (last_bad + 1) * u) / a, (f + m0 * u) / a)
    first = (f + m0 * u) / a
    j = np.maximum(m0, np.ceil(f / safe) - 1)
    first = np.where(first > m0 * d, np.maximum(j * d, (f + (j + 1) * u) / a), first)
    first = np.minimum(first, last)
    code = np.where(never, 0, np.where(last <= m0 * d, 1, 2))
    return np.where(never, np.nan, last), np.where(never, np.nan, first), code


_VERDICTS: tuple[Verdict, ...] = ("never", "within-smallest-fleet", "breaks-even")


def always_on_crossing(d: float, u: float, f: float, m0: float, a: float) -> tuple[float, float, int] | None:
    """always_on_crossings for one option and one API, in plain floats (the command-line path: a
    report computes ~1000 of these, and numpy's per-call overhead would be most of the time).
    None when never; else (last, first, code). tests/planner/test_economics.py checks both agree."""
    margin = a * d - u
    if margin <= 0:
        return None
    last_bad = math.ceil((f + u) / margin) - 1
    last = (f + (last_bad + 1) * u) / a if last_bad >= m0 else (f + m0 * u) / a
    first = (f + m0 * u) / a
    if first > m0 * d:
        j = max(m0, math.ceil(f / margin) - 1)
        first = max(j * d, (f + (j + 1) * u) / a)
    first = min(first, last)
    return last, first, 1 if last <= m0 * d else 2


def _always_on(p: FleetParams, peak: float, api_usd_per_token_day: float) -> Crossing:
    d = float(p.tokens_per_day_per_instance) / peak
    got = always_on_crossing(
        d,
        float(p.instance_usd_per_month),
        float(p.fixed_usd_per_month),
        float(p.min_instances),
        float(api_usd_per_token_day),
    )
    if got is None:
        return Crossing(None, None, "never")
    last, first, code = got
    return Crossing(last, first, _VERDICTS[code])


def _numeric(cost, api_usd_per_token_day: float) -> Crossing:
    """Last crossing of any non-decreasing cost curve with the API line, on a fine log grid then bisection."""
    vols = np.geomspace(1e3, MAX_VOLUME, 4001)
    diff = cost(vols) - api_usd_per_token_day * vols
    if diff[-1] > 0:
        return Crossing(None, None, "never")
    bad = np.flatnonzero(diff > 0)
    if not len(bad):
        return Crossing(float(vols[0]), float(vols[0]), "within-smallest-fleet")
    lo, hi = float(vols[bad[-1]]), float(vols[bad[-1] + 1])
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if cost(np.array([mid]))[0] > api_usd_per_token_day * mid else (lo, mid)
    first_ok = np.flatnonzero(diff <= 0)
    return Crossing(hi, float(vols[first_ok[0]]), "breaks-even")


def crossing(
    c: Candidate,
    workload: Workload,
    policy: Policy,
    api: ApiCost,
    capacity_scale: float = 1.0,
    usd_per_hour: float | None = None,
) -> Crossing:
    """Where the candidate's fleet stays cheaper than the API, at a capacity scale and instance price."""
    p = fleet_params(c, workload, policy, capacity_scale, usd_per_hour)
    a = api.usd_per_token * DAYS_PER_MONTH
    if c.provisioning == "always-on":
        return _always_on(p, workload.peak_to_mean, a)
    if a * float(p.tokens_per_day_per_instance) <= float(p.instance_usd_per_month):
        return Crossing(None, None, "never")
    return _numeric(lambda v: autoscaled_usd_per_month(p, v, workload.hourly_weights), a)


@dataclass(frozen=True)
class BreakEven:
    api: ApiCost
    candidate: Candidate
    likely: Crossing
    low: Crossing  # optimistic: capacity at the top of its band, the cheapest provider's price
    high: Crossing  # pessimistic: capacity at the bottom of its band, the dearest provider's price
    self_marginal_usd_per_mtok: float  # the fleet's cost per 1M tokens at full use, without ops

    @property
    def api_label(self) -> str:
        return f"{self.api.price.provider}/{self.api.price.model}"


def price_spread(c: Candidate, same_gpu_prices: list[float]) -> tuple[float, float]:
    """(lowest, highest) instance price for the same GPU and pricing across providers, per GPU x count."""
    per_gpu = [p for p in same_gpu_prices if p > 0] or [c.usd_per_hour / c.gpus_per_instance]
    return min(per_gpu) * c.gpus_per_instance, max(per_gpu) * c.gpus_per_instance


def break_even(
    c: Candidate, workload: Workload, policy: Policy, api: ApiCost, same_gpu_prices: list[float]
) -> BreakEven:
    band = c.capacity.band
    cheap, dear = price_spread(c, same_gpu_prices)
    likely = crossing(c, workload, policy, api)
    low = crossing(c, workload, policy, api, 1 + band, min(cheap, c.usd_per_hour))
    high = crossing(c, workload, policy, api, 1 / (1 + band), max(dear, c.usd_per_hour))
    p = fleet_params(c, workload, policy)
    marginal = float(p.instance_usd_per_month) / (float(p.tokens_per_day_per_instance) * DAYS_PER_MONTH) * 1e6
    return BreakEven(api, c, likely, low, high, marginal)


@dataclass(frozen=True)
class Sensitivity:
    factor: str
    low_setting: str
    high_setting: str
    tokens_per_day_low: float | None
    tokens_per_day_high: float | None

    @property
    def swing(self) -> float:
        vals = [v for v in (self.tokens_per_day_low, self.tokens_per_day_high) if v is not None]
        if len(vals) < 2:
            return math.inf
        return abs(math.log(vals[1] / vals[0]))


def sensitivity(
    c: Candidate,
    workload: Workload,
    policy: Policy,
    api: ApiCost,
    same_gpu_prices: list[float],
    capacity_for: Callable[[Workload], ReplicaCapacity | None],
) -> list[Sensitivity]:
    """How the break-even moves when one input changes and the rest stay (a tornado, widest first).

    `capacity_for` re-runs the performance model when the workload's shape changes (output share).
    """
    from planner.economics.cost import api_cost

    band = c.capacity.band
    cheap, dear = price_spread(c, same_gpu_prices)

    def v(**kw) -> float | None:
        w = kw.pop("workload", workload)
        pol = kw.pop("policy", policy)
        cand = c
        if w is not workload:
            cap = capacity_for(w)
            if cap is None or not cap.meets_slo:
                return None
            cand = replace(c, capacity=cap)
        a = api_cost(api.price, w) if w is not workload else api
        return crossing(cand, w, pol, a, **kw).tokens_per_day

    rows = [
        Sensitivity(
            "throughput per replica",
            f"+{band:.0%}",
            f"-{band:.0%}",
            v(capacity_scale=1 + band),
            v(capacity_scale=1 / (1 + band)),
        ),
        Sensitivity(
            "GPU price", f"${cheap:,.2f}/h", f"${dear:,.2f}/h", v(usd_per_hour=cheap), v(usd_per_hour=dear)
        ),
        Sensitivity(
            "ops cost",
            f"${policy.ops_usd_per_month * 0.5:,.0f}/mo",
            f"${policy.ops_usd_per_month * 1.5:,.0f}/mo",
            v(policy=replace(policy, ops_usd_per_month=policy.ops_usd_per_month * 0.5)),
            v(policy=replace(policy, ops_usd_per_month=policy.ops_usd_per_month * 1.5)),
        ),
        Sensitivity(
            "target utilization",
            "0.9",
            "0.5",
            v(policy=replace(policy, target_utilization=0.9)),
            v(policy=replace(policy, target_utilization=0.5)),
        ),
        Sensitivity(
            "output share",
            f"{workload.output_tokens / 2:g} out",
            f"{workload.output_tokens * 2:g} out",
            _with_output(v, workload, 0.5),
            _with_output(v, workload, 2.0),
        ),
    ]
    return sorted(rows, key=lambda r: -r.swing if math.isfinite(r.swing) else -1e9)


def _with_output(v, workload: Workload, scale: float) -> float | None:
    """Change the output length per request, holding the prompt and the tokens a day."""
    return v(workload=replace(workload, output_tokens=workload.output_tokens * scale))
