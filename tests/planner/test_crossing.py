"""The crossings of fleet staircases with API lines: exact, vectorised, checked against the cost
functions themselves (not against a second copy of the same formula)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from planner.economics.cost import FleetParams, autoscaled_usd_per_month
from planner.economics.crossing import (
    BREAKS_EVEN,
    MAX_VOLUME,
    NEVER,
    NEVER_BELOW,
    WITHIN_SMALLEST,
    Profile,
    always_on_crossings,
    autoscaled_first_crossings,
    autoscaled_last_crossings,
    last_crossings,
)
from planner.economics.workload import diurnal_profile
from planner.units import DAYS_PER_MONTH

profiles = st.one_of(
    st.floats(1.0, 6.0).map(diurnal_profile),
    st.lists(st.one_of(st.just(0.0), st.floats(0.01, 10.0)), min_size=24, max_size=24)
    .filter(lambda w: sum(w) > 0)
    .map(lambda w: tuple(x * 24 / sum(w) for x in w)),
)


def _jumps(D: float, m0: int, weights: tuple[float, ...], hi: float) -> np.ndarray:
    """Every volume at which some hour's instance count steps up, below hi (where the cost
    functions step: their whole-instance tolerance of 1e-9 included)."""
    out = []
    for w in weights:
        if w > 0:
            k = np.arange(m0, int(hi * w / D) + 2)
            out.append((k + 1e-9) * D / w)
    return np.unique(np.concatenate(out)) if out else np.array([])


@settings(max_examples=300, deadline=None)
@given(
    D=st.floats(1e5, 1e9),
    u=st.floats(10, 1e5),
    f=st.floats(0, 2e4),
    m0=st.integers(1, 3),
    ratio=st.floats(1.02, 30.0),
    weights=profiles,
)
def test_autoscaled_last_crossing_is_exact(D, u, f, m0, ratio, weights) -> None:
    """At the reported volume the fleet is not dearer, just below it is, and beyond it never is
    again: checked at every stair of every hour up to far past the crossing."""
    a = ratio * u / D  # the API's $/month per token/day, ratio times a full instance's
    p = FleetParams(D, u, m0, f)
    last, code = autoscaled_last_crossings(D, u, f, m0, a, Profile(weights), max_volume=np.inf)
    last, code = float(last), int(code)
    assert code in (WITHIN_SMALLEST, BREAKS_EVEN)

    def gap(v: np.ndarray) -> np.ndarray:  # fleet minus API, $/month
        return autoscaled_usd_per_month(p, v, weights) - a * v

    tol = 1e-7 * a * last + 1e-9
    assert gap(np.array([last * (1 + 1e-9)]))[0] <= tol
    hi = min(3 * last + 10 * D, 50 * D + last)
    jumps = _jumps(D, m0, weights, hi)
    after = jumps[jumps > last * (1 + 1e-9)]
    assert np.all(gap(after * (1 + 1e-12)) <= 1e-7 * a * after + 1e-9)
    stair = jumps[jumps < last * (1 - 1e-12)]  # the stair the crossing is on starts here
    just_below = (stair[-1] + last) / 2 if stair.size else last / 2
    assert gap(np.array([just_below]))[0] > 0
    first = float(autoscaled_first_crossings(D, u, f, m0, a, Profile(weights)))
    assert first <= last * (1 + 1e-12)
    assert gap(np.array([first]))[0] <= 1e-7 * a * first + 1e-9
    below = np.concatenate([jumps[jumps < first], np.geomspace(first * 1e-3, first, 50)[:-1]])
    assert np.all(gap(below * (1 - 1e-9)) > -1e-7 * a * first)


@settings(max_examples=200, deadline=None)
@given(
    D=st.floats(1e5, 1e9),
    u=st.floats(10, 1e5),
    f=st.floats(0, 2e4),
    m0=st.integers(1, 4),
    ratio=st.floats(0.5, 20.0),
)
def test_a_flat_profile_autoscaled_is_always_on(D, u, f, m0, ratio) -> None:
    a = ratio * u / D
    stairs = (f + u) / (a * D - u) if ratio > 1 else 0.5
    assume(abs(stairs - round(stairs)) > 1e-6)  # a stair starting on the API line: rounding decides
    flat = Profile((1.0,) * 24)
    auto, auto_code = autoscaled_last_crossings(D, u, f, m0, a, flat, max_volume=np.inf)
    on, _, on_code = always_on_crossings(D, u, f, m0, a)
    assert int(auto_code) == int(on_code)
    if int(on_code) != NEVER:
        assert float(auto) == pytest.approx(float(on), rel=1e-9)


@settings(max_examples=200, deadline=None)
@given(D=st.floats(1e5, 1e9), u=st.floats(10, 1e5), f=st.floats(0, 2e4), ratio=st.floats(0.01, 0.999))
def test_never_when_a_full_fleet_costs_more_per_token(D, u, f, ratio) -> None:
    a = ratio * u / D
    weights = diurnal_profile(2.0)
    _, code = autoscaled_last_crossings(D, u, f, 1, a, Profile(weights))
    assert int(code) == NEVER
    v = np.geomspace(1e3, 1e14, 2000)
    assert np.all(autoscaled_usd_per_month(FleetParams(D, u, 1, f), v, weights) >= a * v * (1 - 1e-12))


def test_never_below_the_search_bound() -> None:
    # API 0.1% dearer than a full instance: the crossing is near f / (A - u) = 3e6 instances.
    D, u, f = 1e7, 1000.0, 3e6
    a = 1.001 * u / D
    last, code = autoscaled_last_crossings(D, u, f, 1, a, Profile(diurnal_profile(2.0)))
    assert int(code) == NEVER_BELOW
    assert np.isnan(last)
    # Always on, sized for the busiest hour (2x the mean): the same bound applies.
    _, code2 = last_crossings(D, u, f, 1, 2 * a, False, Profile(diurnal_profile(2.0)))
    assert int(code2) == NEVER_BELOW
    found, code3 = autoscaled_last_crossings(D, u, f, 1, a, Profile(diurnal_profile(2.0)), max_volume=1e15)
    assert int(code3) == BREAKS_EVEN
    assert MAX_VOLUME < float(found) < 1e15


def test_arrays_broadcast_options_by_apis() -> None:
    D = np.array([1e7, 3e7, 1e8])[:, None]
    u = np.array([500.0, 1500.0, 4000.0])[:, None]
    a = np.array([0.2e-6, 0.6e-6, 4e-6])[None, :] * DAYS_PER_MONTH
    prof = Profile(diurnal_profile(2.0))
    auto = np.array([True, False, True])[:, None]
    last, code = last_crossings(D, u, 3000.0, 1, a, auto, prof)
    assert last.shape == code.shape == (3, 3)
    for i in range(3):
        for j in range(3):
            one, c = last_crossings(D[i, 0], u[i, 0], 3000.0, 1, a[0, j], auto[i, 0], prof)
            assert int(c) == int(code[i, j])
            assert np.isnan(one) == np.isnan(last[i, j])
            if not np.isnan(one):
                assert float(one) == pytest.approx(float(last[i, j]), rel=1e-12)
