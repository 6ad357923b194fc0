"""Break-even over a pool of options: the reported volume is the soonest over every option, the
named option is the one that pays it, and "never" names the option cheapest at scale."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.catalog import Catalog
from planner.economics.analysis import _same_gpu_prices, analyze, eligible_options
from planner.economics.breakeven import break_even, break_evens
from planner.economics.capacity import Candidate
from planner.economics.cost import api_cost
from planner.economics.options import Filters, Policy
from planner.economics.workload import Workload, diurnal_profile
from planner.perf.capacity import ReplicaCapacity
from planner.perf.estimate import Estimate
from planner.perf.model import PerfModel
from tests.conftest import CATALOGS


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return Catalog([CATALOGS])


def _key(v: float | None) -> float:
    return math.inf if v is None else v


@pytest.mark.parametrize(
    ("volume", "filters", "policy"),
    [
        (5e6, Filters(models=("qwen3-32b",)), Policy()),
        (5e6, Filters(), Policy()),
        (
            2e8,
            Filters(models=("llama-3.1-8b-instruct",), pricing=("on_demand", "spot")),
            Policy(autoscale=True),
        ),
        (5e7, Filters(models=("llama-3.3-70b-instruct",)), Policy(min_replicas=2, ops_usd_per_month=0.0)),
    ],
)
def test_reported_breakeven_is_the_exhaustive_minimum(cat, volume, filters, policy) -> None:
    """For every API: likely, low and high are the minimum over every eligible option, each
    computed on its own, and the option named pays at the likely volume."""
    w = Workload(tokens_per_day=volume)
    a = analyze(cat, PerfModel(cat), w, filters, policy, with_sensitivity=False)
    spread = _same_gpu_prices(a.plans)
    eligible = eligible_options(a.plans, a.all_apis)
    assert {p.candidate.provisioning for p in a.plans} >= (
        {"always-on", "autoscaled"} if policy.autoscale else {"always-on"}
    )
    for j, api in enumerate(a.all_apis):
        reported = a.best_breakeven[f"{api.price.provider}/{api.price.model}"]
        each = [
            break_even(p.candidate, w, a.policy, api, spread.get((p.candidate.gpu, p.candidate.pricing), []))
            for p, ok in zip(a.plans, eligible[:, j], strict=True)
            if ok
        ]
        for scenario in ("likely", "low", "high"):
            best = min(_key(getattr(be, scenario).tokens_per_day) for be in each)
            assert _key(getattr(reported, scenario).tokens_per_day) == pytest.approx(best, rel=1e-12), (
                scenario
            )
        mine = next(be for be in each if be.candidate == reported.candidate)
        assert _key(mine.likely.tokens_per_day) == pytest.approx(
            _key(reported.likely.tokens_per_day), rel=1e-12
        )
        if reported.likely.tokens_per_day is None:  # never: the option cheapest at scale is named
            cheapest = min(be.self_usd_per_mtok_at_scale for be in each)
            assert reported.self_usd_per_mtok_at_scale == pytest.approx(cheapest)
        if reported.likely.verdict == "never":
            assert reported.self_usd_per_mtok_at_scale >= api.usd_per_mtok


def _candidate(i: int, tokens_per_s: float, usd_per_hour: float, band: float, autoscaled: bool) -> Candidate:
    cap = ReplicaCapacity(
        "m", "bf16", "g", "vllm", 1, Estimate(tokens_per_s, "calibrated", tokens_per_s / (1 + band),
                                               tokens_per_s * (1 + band)),
        16, 100.0, 20.0, "tpot", True, "test", band, 64,
    )  # fmt: skip
    return Candidate(
        "m", "bf16", "vllm", "g", 1, f"p{i}", f"i{i}", "r", 1,
        "on_demand", "autoscaled" if autoscaled else "always-on", usd_per_hour, None, "test", cap,
    )  # fmt: skip


options = st.lists(
    st.tuples(st.floats(5.0, 5000.0), st.floats(0.2, 40.0), st.floats(0.0, 0.5), st.booleans()),
    min_size=1,
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(
    options,
    st.lists(st.floats(0.01, 20.0), min_size=1, max_size=5),
    st.floats(1.0, 5.0),
    st.integers(1, 3),
    st.floats(0.0, 1e4),
)
def test_pool_is_the_minimum_over_its_options(cat, opts, api_usd_per_mtok, peak, min_replicas, ops) -> None:
    w = Workload(tokens_per_day=1e7, hourly_weights=diurnal_profile(peak))
    policy = Policy(min_replicas=min_replicas, ops_usd_per_month=ops)
    cands = [_candidate(i, *o) for i, o in enumerate(opts)]
    base = api_cost(cat.api_price("gpt-4o-mini"), w)
    apis = [replace(base, usd_per_token=p / 1e6) for p in api_usd_per_mtok]
    prices = {("g", "on_demand"): sorted({c.usd_per_hour for c in cands})}
    pooled = break_evens(cands, w, policy, apis, prices)
    for api, got in zip(apis, pooled, strict=True):
        assert got is not None
        each = [break_even(c, w, policy, api, prices[("g", "on_demand")]) for c in cands]
        for scenario in ("likely", "low", "high"):
            best = min(_key(getattr(be, scenario).tokens_per_day) for be in each)
            assert _key(getattr(got, scenario).tokens_per_day) == pytest.approx(best, rel=1e-12)
        low, likely, high = (_key(x.tokens_per_day) for x in (got.low, got.likely, got.high))
        assert low <= likely * (1 + 1e-12)
        assert likely <= high * (1 + 1e-12)
        if got.likely.verdict == "never":
            assert got.self_usd_per_mtok_at_scale >= api.usd_per_mtok * (1 - 1e-12)
            assert got.self_usd_per_mtok_at_scale == pytest.approx(
                min(be.self_usd_per_mtok_at_scale for be in each)
            )


def test_an_always_on_fleet_costs_at_least_its_peak_sizing_per_token(cat) -> None:
    """The floor quoted by "never" includes the peak-to-mean factor and the target utilization."""
    w = Workload(tokens_per_day=1e7, hourly_weights=diurnal_profile(2.0))
    c = _candidate(0, 1000.0, 2.0, 0.2, autoscaled=False)
    api = api_cost(cat.api_price("gpt-4o-mini"), w)
    be = break_even(c, w, Policy(target_utilization=0.5), api, [])
    per_day = 1000.0 * (1800 / 300) * 86_400 * 0.5 / 2.0  # tokens a day per instance, sized for the peak
    assert be.self_usd_per_mtok_at_scale == pytest.approx(2.0 * 730 / (per_day * 365 / 12) * 1e6)
    volumes = np.geomspace(1e4, 1e13, 500)
    from planner.economics.capacity import plan

    floor = be.self_usd_per_mtok_at_scale
    for v in volumes[::25]:
        p = plan(c, w.at_volume(float(v)), Policy(target_utilization=0.5, ops_usd_per_month=0.0))
        assert p.usd_per_mtok >= floor * (1 - 1e-9)
