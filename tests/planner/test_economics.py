"""Economics: hand-computed bills, properties of the cost curves, and exact break-evens."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from planner.catalog import Catalog
from planner.economics.cost import (
    FleetParams,
    OwnedHardware,
    always_on_usd_per_month,
    api_cost,
    autoscaled_usd_per_month,
)
from planner.economics.crossing import always_on_crossings
from planner.economics.tco import SwitchingCosts, TcoSeries, payback_month
from planner.economics.workload import Workload, diurnal_profile
from planner.units import DAYS_PER_MONTH, HOURS_PER_MONTH
from tests.conftest import CATALOGS


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return Catalog([CATALOGS])


def test_api_bill_by_hand(cat) -> None:
    # 10,000 requests a day of 1,500 in + 300 out on gpt-4o-mini at $0.15 / $0.60 per 1M tokens.
    w = Workload(tokens_per_day=10_000 * 1800)
    c = api_cost(cat.api_price("gpt-4o-mini"), w)
    per_day = 15e6 * 0.15 / 1e6 + 3e6 * 0.60 / 1e6
    assert c.usd_per_month == pytest.approx(per_day * DAYS_PER_MONTH)
    assert c.usd_per_mtok == pytest.approx(per_day / 18)


def test_cached_input_and_batch_discount_by_hand(cat) -> None:
    w = Workload(tokens_per_day=18e6, cached_input_share=0.5, batch_share=0.4)
    c = api_cost(cat.api_price("gpt-4o-mini"), w)  # cached input 0.075, batch 50% off
    full = (7.5e6 * 0.15 + 7.5e6 * 0.075 + 3e6 * 0.60) / 1e6
    assert c.usd_per_month == pytest.approx(full * (1 - 0.4 * 0.5) * DAYS_PER_MONTH)
    assert c.batch_savings_usd_per_month == pytest.approx(full * 0.2 * DAYS_PER_MONTH)


def test_long_context_tier_applies_only_to_long_prompts(cat) -> None:
    price = cat.api_price("google/gemini-1.5-pro")
    short = api_cost(price, Workload(tokens_per_day=1e6, input_tokens=2000, output_tokens=500))
    long = api_cost(price, Workload(tokens_per_day=1e6, input_tokens=200_000, output_tokens=500))
    assert not short.long_context
    assert long.long_context  # prompts over 128k tokens: the whole request pays 2.50 / 10.00
    assert short.usd_per_mtok == pytest.approx((2000 * 1.25 + 500 * 5.0) / 2500)
    assert long.usd_per_mtok == pytest.approx((200_000 * 2.5 + 500 * 10.0) / 200_500)


def test_diurnal_profile_has_the_requested_peak() -> None:
    for ratio in (1.0, 1.5, 2.0, 4.0):
        w = np.array(diurnal_profile(ratio))
        assert w.mean() == pytest.approx(1.0)
        assert w.max() == pytest.approx(ratio, rel=1e-6)


fleets = st.builds(
    FleetParams,
    tokens_per_day_per_instance=st.floats(1e5, 1e10),
    instance_usd_per_month=st.floats(10, 1e5),
    min_instances=st.integers(1, 4),
    fixed_usd_per_month=st.floats(0, 2e4),
)


@settings(max_examples=200, deadline=None)
@given(fleets, st.floats(1, 5), st.lists(st.floats(1e3, 1e12), min_size=2, max_size=20))
def test_costs_never_decrease_with_volume(p: FleetParams, peak: float, vols: list[float]) -> None:
    v = np.sort(np.array(vols))
    assert np.all(np.diff(always_on_usd_per_month(p, v, peak)) >= 0)
    weights = diurnal_profile(peak)
    auto = autoscaled_usd_per_month(p, v, weights)
    assert np.all(np.diff(auto) >= -1e-9)
    assert np.all(auto <= always_on_usd_per_month(p, v, max(weights)) + 1e-6)  # scaling never costs more


@settings(max_examples=300, deadline=None)
@given(fleets, st.floats(1, 4), st.floats(1e-9, 1e-4))
def test_breakeven_is_the_last_crossing(p: FleetParams, peak: float, api_usd_per_token: float) -> None:
    a = api_usd_per_token * DAYS_PER_MONTH
    last, first, code = always_on_crossings(
        p.tokens_per_day_per_instance / peak,
        p.instance_usd_per_month,
        p.fixed_usd_per_month,
        p.min_instances,
        a,
    )

    def gap(v: np.ndarray) -> np.ndarray:  # self-hosted minus API
        return always_on_usd_per_month(p, v, peak) - a * v

    if code == 0:  # never: self-hosting costs more than the API at every volume
        assert np.all(gap(np.geomspace(1e3, 1e14, 5000)) > 0)
        return
    assume(last > 1.0)
    # At the break-even self-hosting is not dearer; beyond it, it never is again.
    assert gap(np.array([last * (1 + 1e-9)]))[0] <= 1e-6 * max(1.0, a * last)
    beyond = last * np.geomspace(1 + 1e-9, 1e4, 3000)
    assert np.all(gap(beyond) <= 1e-6 * np.maximum(1.0, a * beyond))
    # Just below it, self-hosting is dearer (the curves cross there).
    assert gap(np.array([last * (1 - 1e-6)]))[0] > 0
    assert first <= last
    assert gap(np.array([first * (1 + 1e-9)]))[0] <= 1e-6 * max(1.0, a * first)


def test_breakeven_by_hand() -> None:
    # $1,000 ops, $2,000 per instance, 10M tokens/day per instance, API $0.50 per 1M tokens.
    a = 0.5e-6 * DAYS_PER_MONTH
    last, _, code = always_on_crossings(10e6, 2000.0, 1000.0, 1, a)
    # Each instance costs 2,000 a month and carries 10M tokens a day, which the API bills 152:
    # more instances never catch up with the API, whatever the volume.
    assert code == 0
    assert math.isnan(last)
    a = 5e-6 * DAYS_PER_MONTH  # $5 per 1M tokens: 10M tokens cost the API 1,520.8 a month
    last, _, code = always_on_crossings(10e6, 1000.0, 3000.0, 1, a)
    # margin = 1520.8 - 1000 = 520.8; last dear stair j < 4000 / 520.8 = 7.68 -> j = 7;
    # on it the fleet costs 3000 + 8 x 1000 = 11,000 = a V -> V = 72.3M tokens/day.
    assert code == 2
    assert last == pytest.approx(11_000 / a)


def test_owned_hardware_hourly_cost_by_hand() -> None:
    owned = OwnedHardware(usd_per_gpu=30_000, amortize_months=36, usd_per_kwh=0.12, pue=1.3)
    per_hour = owned.usd_per_gpu_hour(700)
    expected = 30_000 / 36 / HOURS_PER_MONTH + 0.7 * 0.7 * 1.3 * 0.12 + 150 / HOURS_PER_MONTH
    assert per_hour == pytest.approx(expected)


def test_payback_month() -> None:
    api = TcoSeries("api", "api", np.ones(6), np.full(6, 1000.0), 0.0)
    self_hosted = TcoSeries("self", "self-hosted", np.ones(6), np.full(6, 400.0), 2000.0)
    assert payback_month(self_hosted, api) == 4  # 2,400/2,800/3,200 vs 1,000/2,000/3,000 ... 3,600 <= 4,000
    never = TcoSeries("self", "self-hosted", np.ones(6), np.full(6, 1200.0), 0.0)
    assert payback_month(never, api) is None
    assert SwitchingCosts().one_time_usd == 17_000


def test_every_printed_api_label_resolves_to_itself(cat) -> None:
    """The tool prints APIs as provider/model; model ids may hold slashes of their own."""
    for p in cat.api_prices:
        got = cat.api_price(f"{p.provider}/{p.model}")
        assert (got.provider, got.model) == (p.provider, p.model)
    got = cat.api_price("deepinfra/meta-llama/Llama-3.3-70B-Instruct-Turbo")
    assert (got.provider, got.model) == ("deepinfra", "meta-llama/Llama-3.3-70B-Instruct-Turbo")
    assert (
        cat.api_price("meta-llama/Llama-3.3-70B-Instruct-Turbo").model
        == "meta-llama/Llama-3.3-70B-Instruct-Turbo"
    )


def test_default_apis_are_current_models(cat) -> None:
    from planner.economics.options import DEFAULT_APIS, REPLACED_APIS

    for name in DEFAULT_APIS:
        assert not cat.api_price(name).deprecated, name
    for old, new in REPLACED_APIS.items():
        assert cat.api_price(old).deprecated
        assert new in DEFAULT_APIS
