"""Break-even volumes: from how many tokens a day does self-hosting stay cheaper than an API?

For each API the answer is the soonest over EVERY candidate option (model x quant x offer x
pricing x provisioning): the crossings of all options with all APIs are computed at once
(`planner.economics.crossing`), likely and in the optimistic (low) and pessimistic (high)
corner of the throughput band and the same GPU's price spread, and the minimum is taken per API.
Cost curves are steps, so a crossing is the LAST one: from there on self-hosting stays cheaper.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from planner.economics.crossing import (
    BREAKS_EVEN,
    MAX_VOLUME,
    NEVER,
    NEVER_BELOW,
    VERDICTS,
    Profile,
    always_on_crossings,
    autoscaled_first_crossings,
    last_crossings,
)
from planner.economics.workload import Workload
from planner.units import DAYS_PER_MONTH, HOURS_PER_MONTH, SECONDS_PER_DAY

if TYPE_CHECKING:
    from planner.economics.capacity import Candidate, CapacityPlan, Policy
    from planner.economics.cost import ApiCost

Verdict = Literal["breaks-even", "within-smallest-fleet", "never", "never-below"]
SCENARIOS = ("likely", "low", "high")


@dataclass(frozen=True)
class Crossing:
    tokens_per_day: float | None  # the last crossing; None when never (below MAX_VOLUME)
    first_tokens_per_day: float | None  # where the fleet is first cheaper (may be cheaper only briefly)
    verdict: Verdict

    @property
    def pays(self) -> bool:
        return self.tokens_per_day is not None


def _crossing(last: float, code: int, first: float | None = None) -> Crossing:
    verdict: Verdict = VERDICTS[int(code)]  # type: ignore[assignment]
    if int(code) in (NEVER, NEVER_BELOW):
        return Crossing(None, None, verdict)
    first = None if first is None or math.isnan(first) else min(float(first), float(last))
    return Crossing(float(last), first, verdict)


@dataclass(frozen=True)
class BreakEven:
    api: ApiCost
    candidate: Candidate  # the option that pays soonest (likely); when none pays, the cheapest at scale
    likely: Crossing
    low: Crossing  # optimistic: the soonest any option pays with throughput high and GPUs cheap
    high: Crossing  # pessimistic: throughput at the bottom of its band, the dearest provider's price
    self_usd_per_mtok_at_scale: float  # what the option's fleet costs per 1M tokens when full, without
    # ops: never less at any volume (always-on fleets are sized for the busiest hour)
    low_candidate: Candidate | None = None
    high_candidate: Candidate | None = None
    plan: CapacityPlan | None = None  # the option's fleet at the workload's volume

    @property
    def api_label(self) -> str:
        return f"{self.api.price.provider}/{self.api.price.model}"

    @property
    def provably_never(self) -> bool:
        return self.likely.verdict == "never"


@dataclass(frozen=True)
class OptionArrays:
    """The cost curves of many options as arrays; D and u per scenario (likely, low, high)."""

    tokens_per_day_per_instance: np.ndarray  # (3, n): mean traffic one instance carries, at the
    # target utilization of its SLO capacity
    instance_usd_per_month: np.ndarray  # (3, n)
    fixed_usd_per_month: np.ndarray  # (n,)
    min_instances: np.ndarray  # (n,)
    autoscaled: np.ndarray  # (n,) bool
    peak_to_mean: float

    @property
    def usd_per_mtok_at_scale(self) -> np.ndarray:
        """Likely cost per 1M tokens of a full fleet, ops aside: a floor at any volume. An
        always-on fleet is sized for the busiest hour, so it costs peak-to-mean times more."""
        sized = np.where(self.autoscaled, 1.0, self.peak_to_mean)
        per_day = self.tokens_per_day_per_instance[0] / sized
        return self.instance_usd_per_month[0] / (per_day * DAYS_PER_MONTH) * 1e6


def price_spread(c: Candidate, same_gpu_prices: Sequence[float]) -> tuple[float, float]:
    """(lowest, highest) instance price for the same GPU and pricing across providers, per GPU x count."""
    per_gpu = [p for p in same_gpu_prices if p > 0] or [c.usd_per_hour / c.gpus_per_instance]
    return min(per_gpu) * c.gpus_per_instance, max(per_gpu) * c.gpus_per_instance


def option_arrays(
    cands: Sequence[Candidate],
    workload: Workload,
    policy: Policy,
    same_gpu_prices: dict[tuple[str, str], list[float]],
) -> OptionArrays:
    """Each candidate's staircase: capacity and price, likely and at the ends of their spreads."""
    n = len(cands)
    per_replica = np.empty(n)
    band = np.empty(n)
    rpi = np.empty(n)
    price = np.empty((3, n))
    for i, c in enumerate(cands):
        per_replica[i] = c.capacity.output_tokens_per_s.value
        band[i] = c.capacity.band
        rpi[i] = c.replicas_per_instance
        cheap, dear = price_spread(c, same_gpu_prices.get((c.gpu, c.pricing), ()))
        price[:, i] = (c.usd_per_hour, min(cheap, c.usd_per_hour), max(dear, c.usd_per_hour))
    day = per_replica * (workload.tokens_per_request / workload.output_tokens) * SECONDS_PER_DAY
    base = day * rpi * policy.target_utilization
    auto = np.array([c.provisioning == "autoscaled" for c in cands], dtype=bool)
    capacity = np.stack([base, base * (1 + band), base / (1 + band)])
    m0 = np.array([math.ceil(policy.min_replicas / c.replicas_per_instance) for c in cands], dtype=float)
    fixed = np.full(n, policy.ops_usd_per_month)
    return OptionArrays(capacity, price * HOURS_PER_MONTH, fixed, m0, auto, workload.peak_to_mean)


def _all_crossings(opts: OptionArrays, a: np.ndarray, profile: Profile) -> tuple[np.ndarray, np.ndarray]:
    """(3, n options, m APIs) last crossings and verdict codes, in one vectorised pass."""
    return last_crossings(
        opts.tokens_per_day_per_instance[:, :, None],
        opts.instance_usd_per_month[:, :, None],
        opts.fixed_usd_per_month[None, :, None],
        opts.min_instances[None, :, None],
        a[None, None, :],
        opts.autoscaled[None, :, None],
        profile,
    )


def _soonest(last: np.ndarray, code: np.ndarray, eligible: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Per API (column): the option that pays soonest; ties and never go to the lowest `order`."""
    pays = eligible & ((code != NEVER) & (code != NEVER_BELOW))
    value = np.where(pays, last, np.inf)
    best = value.min(axis=0)
    any_pays = np.isfinite(best)
    below = eligible & (code == NEVER_BELOW)
    tie = np.where(any_pays, pays & (value == best), np.where(below.any(axis=0), below, eligible))
    return np.argmin(np.where(tie, order[:, None], np.iinfo(np.int64).max), axis=0)


def break_evens(
    cands: Sequence[Candidate],
    workload: Workload,
    policy: Policy,
    apis: Sequence[ApiCost],
    same_gpu_prices: dict[tuple[str, str], list[float]],
    eligible: np.ndarray | None = None,
    plans: Sequence[CapacityPlan] | None = None,
) -> list[BreakEven | None]:
    """For each API, the break-even over every eligible option (rows of `eligible`, n x m).

    The likely break-even names the option that pays soonest (ties: the one cheapest at scale,
    then at the workload's volume, then by label); low and high are the soonest any option pays
    in those corners. Where no option pays, the option cheapest at scale is named.
    """
    if not cands or not apis:
        return [None] * len(apis)
    profile = Profile(workload.hourly_weights)
    opts = option_arrays(cands, workload, policy, same_gpu_prices)
    a = np.array([x.usd_per_token for x in apis]) * DAYS_PER_MONTH
    last, code = _all_crossings(opts, a, profile)
    if eligible is None:
        eligible = np.ones((len(cands), len(apis)), dtype=bool)
    at_scale = opts.usd_per_mtok_at_scale
    at_volume = np.array([p.usd_per_month for p in plans]) if plans is not None else np.zeros(len(cands))
    labels = np.array([c.label for c in cands])
    order = np.empty(len(cands), dtype=np.int64)
    order[np.lexsort((labels, at_volume, at_scale))] = np.arange(len(cands))
    picks = [_soonest(last[s], code[s], eligible, order) for s in range(3)]
    firsts = _first_crossings(opts, picks[0], a, profile)
    out: list[BreakEven | None] = []
    for j, api in enumerate(apis):
        if not eligible[:, j].any():
            out.append(None)
            continue
        i, lo, hi = (int(p[j]) for p in picks)
        first = firsts[j] if code[0, i, j] != NEVER else None
        out.append(
            BreakEven(
                api=api,
                candidate=cands[i],
                likely=_crossing(last[0, i, j], code[0, i, j], first),
                low=_crossing(last[1, lo, j], code[1, lo, j]),
                high=_crossing(last[2, hi, j], code[2, hi, j]),
                self_usd_per_mtok_at_scale=float(at_scale[i]),
                low_candidate=cands[lo],
                high_candidate=cands[hi],
                plan=plans[i] if plans is not None else None,
            )
        )
    return out


def _first_crossings(opts: OptionArrays, i: np.ndarray, a: np.ndarray, profile: Profile) -> np.ndarray:
    """Where option i[j] is first not dearer than API j (NaN: never, or beyond the search)."""
    d = opts.tokens_per_day_per_instance[0, i]
    u, f, m0 = opts.instance_usd_per_month[0, i], opts.fixed_usd_per_month[i], opts.min_instances[i]
    auto = opts.autoscaled[i]
    first = always_on_crossings(d / profile.peak, u, f, m0, a)[1]
    if auto.any():
        first[auto] = autoscaled_first_crossings(d[auto], u[auto], f[auto], m0[auto], a[auto], profile)
    return np.where(first > MAX_VOLUME, np.nan, first)


def break_even(
    c: Candidate, workload: Workload, policy: Policy, api: ApiCost, same_gpu_prices: Sequence[float]
) -> BreakEven:
    """One option against one API (the pooled computation with a pool of one)."""
    got = break_evens([c], workload, policy, [api], {(c.gpu, c.pricing): list(same_gpu_prices)})[0]
    assert got is not None  # one eligible option
    return got


def crossing(
    c: Candidate,
    workload: Workload,
    policy: Policy,
    api: ApiCost,
    capacity_scale: float = 1.0,
    usd_per_hour: float | None = None,
) -> Crossing:
    """Where one candidate's fleet stays cheaper than the API, at a capacity scale and instance price."""
    opts = option_arrays([c], workload, policy, {})
    d = opts.tokens_per_day_per_instance[:1] * capacity_scale
    u = (
        opts.instance_usd_per_month[:1]
        if usd_per_hour is None
        else np.array([[usd_per_hour * HOURS_PER_MONTH]])
    )
    scaled = OptionArrays(
        d, u, opts.fixed_usd_per_month, opts.min_instances, opts.autoscaled, opts.peak_to_mean
    )
    profile = Profile(workload.hourly_weights)
    a = api.usd_per_token * DAYS_PER_MONTH
    last, code = _all_crossings(scaled, np.array([a]), profile)
    first = _first_crossings(scaled, np.array([0]), np.array([a]), profile)[0]
    return _crossing(last[0, 0, 0], code[0, 0, 0], first if code[0, 0, 0] == BREAKS_EVEN else None)
