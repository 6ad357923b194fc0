#!/usr/bin/env python3
"""How many performance estimates per second the model makes (target: at least 100,000).

An estimate is one (configuration, concurrency) point: TTFT, TPOT and output tokens/s of a
replica. Prints a table; run: python scripts/bench_perf.py
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
from planner.perf.memory import weight_bytes  # noqa: E402
from planner.perf.roofline import Efficiency, Hardware, serving  # noqa: E402

TARGET = 100_000


def timed(fn, repeats: int = 7) -> float:
    fn()  # warm
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    cat = Catalog([ROOT / "catalogs"])
    eff = Efficiency()
    models, gpus = list(cat.models.values()), list(cat.gpus.values())
    configs = [
        Hardware.build(m.architecture, q, g, 8)
        for m in models
        for g in gpus
        for q in ("bf16", "fp8", "awq-int4")
    ]
    stacked = Hardware.stack(configs, column=True)
    rows = []

    levels = np.geomspace(1, 1024, 1_000_000)
    one = configs[0]
    t = timed(lambda: serving(one, eff, levels, 1500.0, 300.0, 256.0))
    rows.append(("1 config x 1,000,000 concurrency levels", len(levels), t))

    grid = np.geomspace(1, 1024, 2000)[None, :]
    t = timed(lambda: serving(stacked, eff, grid, 1500.0, 300.0, 256.0))
    rows.append(
        (f"{len(configs)} configs x 2,000 levels (models x GPUs x quants)", len(configs) * grid.size, t)
    )

    def weights() -> None:
        for m in models:
            for q in ("bf16", "fp8", "awq-int4", "gptq-int4", "bnb-nf4"):
                weight_bytes(m.architecture, q)

    t = timed(weights)
    rows.append(("weights memory (model x format, scalar)", len(models) * 5, t))

    print(f"{'benchmark':<55} {'estimates':>11} {'seconds':>9} {'per second':>13}")
    print("-" * 91)
    ok = True
    for name, n, seconds in rows:
        rate = n / seconds
        print(f"{name:<55} {n:>11,} {seconds:>9.4f} {rate:>13,.0f}")
        if "levels" in name:
            ok &= rate >= TARGET
    print(f"\ntarget: >= {TARGET:,} estimates per second (vectorised rows): {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
