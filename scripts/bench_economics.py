#!/usr/bin/env python3
"""Cost and break-even evaluations per second over volumes x offers x models (target: >= 1,000,000).

Candidates and capacities come from the bundled catalogs for every model on every offer
(on-demand always on and autoscaled, reserved, spot), the same code `planner breakeven` runs; the
APIs are the first 200 catalog prices. Timed, after one warm-up, median of 7:

- monthly cost: each option's fleet cost at each volume (autoscaled: hour by hour) next to the
  API's; one evaluation = one option at one volume;
- break-even, the path `planner breakeven` runs (`break_evens`): every option's last crossing with
  every API, likely, low and high (throughput band, price spread), then the soonest per API;
  one evaluation = one option against one API, all three corners.

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
from planner.economics.breakeven import break_evens  # noqa: E402
from planner.economics.capacity import candidates, fleet_params  # noqa: E402
from planner.economics.cost import (  # noqa: E402
    FleetParams,
    always_on_usd_per_month,
    api_cost,
    api_usd_per_month,
    autoscaled_usd_per_month,
)
from planner.economics.options import Filters, Policy  # noqa: E402
from planner.economics.workload import Workload  # noqa: E402
from planner.perf.model import PerfModel  # noqa: E402

TARGET = 1_000_000


def timed(fn, repeats: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def stacked(cands, workload, policy) -> FleetParams:
    params = [fleet_params(c, workload, policy) for c in cands]
    return FleetParams(
        tokens_per_day_per_instance=np.array([float(p.tokens_per_day_per_instance) for p in params])[:, None],
        instance_usd_per_month=np.array([float(p.instance_usd_per_month) for p in params])[:, None],
        min_instances=np.array([float(p.min_instances) for p in params])[:, None],
        fixed_usd_per_month=np.array([float(p.fixed_usd_per_month) for p in params])[:, None],
    )


def main() -> int:
    cat = Catalog([ROOT / "catalogs"])
    workload, policy = Workload(tokens_per_day=5e6), Policy(autoscale=True)
    filters = Filters(models=tuple(cat.models), pricing=("on_demand", "spot", "reserved_1y", "reserved_3y"))
    cands, _ = candidates(cat, PerfModel(cat), workload, filters, policy)
    by_mode = {m: [c for c in cands if c.provisioning == m] for m in ("always-on", "autoscaled")}
    apis = [api_cost(p, workload) for p in cat.api_prices[:200]]
    rates = np.array([a.usd_per_token for a in apis])
    spread: dict[tuple[str, str], set[float]] = {}  # as analysis._same_gpu_prices, over candidates
    for c in cands:
        if c.provider != "owned":
            spread.setdefault((c.gpu, c.pricing), set()).add(c.usd_per_hour / c.gpus_per_instance)
    prices = {k: sorted(v) for k, v in spread.items()}
    volumes = np.geomspace(1e5, 1e11, 1000)

    rows = []
    for mode, group in by_mode.items():
        stack = stacked(group, workload, policy)
        n = len(group)

        def costs(stack=stack, mode=mode) -> None:
            if mode == "always-on":
                fleet = always_on_usd_per_month(stack, volumes[None, :], workload.peak_to_mean)
            else:
                fleet = autoscaled_usd_per_month(stack, volumes[None, :], workload.hourly_weights)
            api = api_usd_per_month(rates[:50, None], volumes[None, :])
            np.minimum(fleet.min(axis=0), api.min(axis=0))

        def pooled(group=group) -> None:
            break_evens(group, workload, policy, apis, prices)

        rows.append(
            (
                f"monthly cost, {mode}: {n:,} options x {volumes.size:,} volumes",
                n * volumes.size,
                timed(costs),
            )
        )
        rows.append((f"break-even low/likely/high, {mode}: {n:,} options x {len(apis)} APIs", n * len(apis),
                     timed(pooled, repeats=5)))  # fmt: skip

    print(f"{'benchmark':<72} {'evaluations':>12} {'seconds':>9} {'per second':>13}")
    print("-" * 109)
    ok = True
    for name, count, seconds in rows:
        rate = count / seconds
        ok &= rate >= TARGET
        print(f"{name:<72} {count:>12,} {seconds:>9.4f} {rate:>13,.0f}")
    print(f"\ntarget: >= {TARGET:,} evaluations per second in every row: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
