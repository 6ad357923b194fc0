#!/usr/bin/env python3
"""Cost and break-even evaluations per second over volumes x offers x models (target: >= 1,000,000).

One evaluation is a self-hosted fleet's monthly cost at one volume next to an API's, or one
option's break-even against one API. Candidates and capacities come from the bundled catalogs
(the same code `planner breakeven` runs); the grid is then evaluated in vectorised passes.
Prints a table; run: python scripts/bench_economics.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner.catalog import Catalog  # noqa: E402
from planner.economics.breakeven import always_on_crossings  # noqa: E402
from planner.economics.capacity import candidates, fleet_params  # noqa: E402
from planner.economics.cost import FleetParams, always_on_usd_per_month, api_cost, api_usd_per_month  # noqa: E402
from planner.economics.options import Filters, Policy  # noqa: E402
from planner.economics.workload import Workload  # noqa: E402
from planner.perf.model import PerfModel  # noqa: E402
from planner.units import DAYS_PER_MONTH  # noqa: E402

TARGET = 1_000_000


def timed(fn, repeats: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    cat = Catalog([ROOT / "catalogs"])
    workload, policy = Workload(tokens_per_day=5e6), Policy()
    all_models = tuple(cat.models)
    cands, _ = candidates(cat, PerfModel(cat), workload, Filters(models=all_models), policy)
    params = [fleet_params(c, workload, policy) for c in cands]
    stack = FleetParams(
        tokens_per_day_per_instance=np.array([float(p.tokens_per_day_per_instance) for p in params])[:, None],
        instance_usd_per_month=np.array([float(p.instance_usd_per_month) for p in params])[:, None],
        min_instances=np.array([float(p.min_instances) for p in params])[:, None],
        fixed_usd_per_month=np.array([float(p.fixed_usd_per_month) for p in params])[:, None],
    )
    apis = [api_cost(p, workload) for p in cat.api_prices[:200]]
    api_rates = np.array([a.usd_per_token for a in apis])
    volumes = np.geomspace(1e5, 1e11, 2000)[None, :]
    n = len(params)

    def costs() -> None:
        self_hosted = always_on_usd_per_month(stack, volumes, workload.peak_to_mean)
        api = api_usd_per_month(api_rates[:50, None], volumes[0][None, :])
        np.minimum(self_hosted.min(axis=0), api.min(axis=0))

    def breakevens() -> None:
        d = stack.tokens_per_day_per_instance / workload.peak_to_mean
        always_on_crossings(
            d, stack.instance_usd_per_month, stack.fixed_usd_per_month, stack.min_instances,
            api_rates[None, :] * DAYS_PER_MONTH,
        )  # fmt: skip

    cost_evals = n * volumes.size + 50 * volumes.size
    rows = [
        (f"monthly cost: {n} options x {volumes.size:,} volumes (+50 APIs)", cost_evals, timed(costs)),
        (f"break-even: {n} options x {len(apis)} APIs", n * len(apis), timed(breakevens)),
    ]
    print(f"{'benchmark':<62} {'evaluations':>12} {'seconds':>9} {'per second':>13}")
    print("-" * 99)
    ok = True
    for name, count, seconds in rows:
        rate = count / seconds
        ok &= rate >= TARGET
        print(f"{name:<62} {count:>12,} {seconds:>9.4f} {rate:>13,.0f}")
    print(f"\ntarget: >= {TARGET:,} evaluations per second: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
