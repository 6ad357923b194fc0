"""What moves a break-even most: one input changed at a time, the rest held (a tornado)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from planner.economics.breakeven import crossing, price_spread
from planner.economics.capacity import Candidate, Policy
from planner.economics.cost import ApiCost, api_cost
from planner.economics.workload import Workload
from planner.perf.model import ReplicaCapacity


@dataclass(frozen=True)
class Sensitivity:
    factor: str
    low_setting: str  # the setting with the lower (favourable to self-hosting) break-even
    high_setting: str
    tokens_per_day_low: float | None  # None: never pays at that setting
    tokens_per_day_high: float | None

    @property
    def swing(self) -> float:
        vals = [v for v in (self.tokens_per_day_low, self.tokens_per_day_high) if v is not None]
        if len(vals) < 2:
            return math.inf if vals else 0.0
        return abs(math.log(vals[1] / vals[0]))


def _ordered(factor: str, a: tuple[str, float | None], b: tuple[str, float | None]) -> Sensitivity:
    """Label the settings by what they do: favourable is the one from which self-hosting pays sooner."""

    def key(item: tuple[str, float | None]) -> float:
        return math.inf if item[1] is None else item[1]

    lo, hi = sorted((a, b), key=key)
    return Sensitivity(factor, lo[0], hi[0], lo[1], hi[1])


def scaled_profile(weights: Sequence[float], peak_to_mean: float) -> tuple[float, ...]:
    """The same day with its busiest hour at `peak_to_mean` x the mean: deviations from the mean
    scaled, clipped at zero, renormalised to mean 1."""
    w = np.asarray(weights, dtype=float)
    peak = w.max()
    if peak <= 1.0:
        from planner.economics.workload import diurnal_profile

        return diurnal_profile(peak_to_mean)
    lo, hi = 0.0, 64.0  # scale s of the deviations: solve max / mean = peak_to_mean
    for _ in range(60):
        s = (lo + hi) / 2
        x = np.clip(1 + s * (w - 1), 0, None)
        lo, hi = (s, hi) if x.max() / x.mean() < peak_to_mean else (lo, s)
    x = np.clip(1 + lo * (w - 1), 0, None)
    return tuple(float(v) for v in x / x.mean())


def sensitivity(
    c: Candidate,
    workload: Workload,
    policy: Policy,
    api: ApiCost,
    same_gpu_prices: list[float],
    capacity_for: Callable[[Workload], ReplicaCapacity | None],
) -> list[Sensitivity]:
    """How the break-even of one option against one API moves when one input changes (widest first).

    `capacity_for` re-runs the performance model when the workload's shape changes (output
    length, cached share): the replica's capacity depends on both.
    """
    band = c.capacity.band
    cheap, dear = price_spread(c, same_gpu_prices)

    def v(
        workload_: Workload | None = None, policy_: Policy | None = None, api_scale: float = 1.0, **kw
    ) -> float | None:
        w = workload_ or workload
        cand = c
        if workload_ is not None and (
            w.output_tokens != workload.output_tokens or w.cached_input_share != workload.cached_input_share
        ):
            cap = capacity_for(w)
            if cap is None or not cap.meets_slo:
                return None
            cand = replace(c, capacity=cap)
        a = api_cost(api.price, w) if workload_ is not None else api
        if api_scale != 1.0:
            a = replace(a, usd_per_token=a.usd_per_token * api_scale)
        return crossing(cand, w, policy_ or policy, a, **kw).tokens_per_day

    ops = policy.ops_usd_per_month
    peak = workload.peak_to_mean
    peaks = (max(1.0, 1 + (peak - 1) / 2), min(12.0, 1 + max(peak - 1, 0.5) * 2))
    cached = workload.cached_input_share
    shares = (max(0.0, cached - 0.3), min(0.9, cached + 0.3))
    out_tokens = (workload.output_tokens / 2, workload.output_tokens * 2)
    rows = [
        _ordered(
            "throughput per replica",
            (f"+{band:.0%}", v(capacity_scale=1 + band)),
            (f"-{band:.0%}", v(capacity_scale=1 / (1 + band))),
        ),
        _ordered(
            "GPU price",
            (f"${cheap:,.2f}/h", v(usd_per_hour=cheap)),
            (f"${dear:,.2f}/h", v(usd_per_hour=dear)),
        ),
        _ordered(
            "ops cost",
            (f"${ops * 0.5:,.0f}/mo", v(policy_=replace(policy, ops_usd_per_month=ops * 0.5))),
            (f"${ops * 1.5:,.0f}/mo", v(policy_=replace(policy, ops_usd_per_month=ops * 1.5))),
        ),
        _ordered(
            "target utilization",
            ("0.9", v(policy_=replace(policy, target_utilization=0.9))),
            ("0.5", v(policy_=replace(policy, target_utilization=0.5))),
        ),
        _ordered(
            "output tokens per request",
            *(
                (f"{n:g} out", v(workload_=replace(workload, output_tokens=n)))  # tokens a day held
                for n in out_tokens
            ),
        ),
        _ordered(
            "peak-to-mean",
            *(
                (
                    f"{p:.2g}x",
                    v(workload_=replace(workload, hourly_weights=scaled_profile(workload.hourly_weights, p))),
                )
                for p in peaks
            ),
        ),
        _ordered(
            "cached input share",
            *((f"{s:.0%}", v(workload_=replace(workload, cached_input_share=s))) for s in shares),
        ),
        _ordered(
            "API price",
            ("+25%", v(api_scale=1.25)),
            ("-25%", v(api_scale=0.75)),
        ),
    ]
    return sorted(rows, key=lambda r: -r.swing)
