#!/usr/bin/env python3
"""How many performance estimates per second the model makes (target: at least 100,000).

An estimate is one (configuration, concurrency) point: TTFT, TPOT and output tokens/s of a
replica. Two kinds of rows:

- the bare roofline (`roofline.serving` on prebuilt Hardware): the physics alone;
- the full path the CLI runs: `batch_capacities` (what `planner breakeven`, `capacity`, `tco` and
  `report` call: memory fit, calibration lookup, Hardware.build, serving and the SLO search for
  every model x quant x GPU x TP at once) and `PerfModel.serving_curve` (what `planner estimate`
  calls for one configuration). Calibration is computed once before timing, as the CLI reads it
  from its cache; its own time is printed apart.

Prints a table; run: python scripts/bench_perf.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner.catalog import Catalog  # noqa: E402
from planner.perf.memory import valid_tp_degrees, weight_bytes  # noqa: E402
from planner.perf.model import PerfModel, batch_capacities  # noqa: E402
from planner.perf.roofline import Efficiency, Hardware, serving  # noqa: E402

TARGET = 100_000
QUANTS = ("bf16", "fp8", "awq-int4")
GRID_LEVELS = 96  # the concurrency grid batch_capacities and PerfModel.capacity search


def timed(fn, repeats: int = 5) -> float:
    fn()  # warm
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    os.environ.setdefault("XDG_CACHE_HOME", tempfile.mkdtemp(prefix="bench-perf-"))
    cat = Catalog([ROOT / "catalogs"])
    eff = Efficiency()
    models, gpus = list(cat.models.values()), list(cat.gpus.values())
    rows: list[tuple[str, str, int, float]] = []

    # -- the bare roofline ---------------------------------------------------------------------
    configs = [Hardware.build(m.architecture, q, g, 8) for m in models for g in gpus for q in QUANTS]
    stacked = Hardware.stack(configs, column=True)
    levels = np.geomspace(1, 1024, 1_000_000)
    one = configs[0]
    t = timed(lambda: serving(one, eff, levels, 1500.0, 300.0, 256.0))
    rows.append(("roofline", "1 config x 1,000,000 concurrency levels", len(levels), t))
    grid = np.geomspace(1, 1024, 2000)[None, :]
    t = timed(lambda: serving(stacked, eff, grid, 1500.0, 300.0, 256.0))
    rows.append(("roofline", f"{len(configs)} configs x 2,000 levels", len(configs) * grid.size, t))

    # -- the full path the CLI runs ------------------------------------------------------------
    perf = PerfModel(cat)
    t0 = time.perf_counter()
    perf.calibrations()
    calibration_s = time.perf_counter() - t0
    full = [
        (m.id, q, g.id, tp)
        for m in models
        for q in QUANTS
        for g in gpus
        for tp in valid_tp_degrees(m.architecture)
    ]
    fitting = [c for c, cap in batch_capacities(perf, full, 1500, 300, 2000.0, 50.0).items() if cap]

    def capacities() -> None:
        batch_capacities(perf, full, 1500, 300, 2000.0, 50.0)

    t = timed(capacities, repeats=3)
    rows.append(
        (
            "full",
            f"batch_capacities: {len(full)} configs ({len(fitting)} fit) x {GRID_LEVELS} levels",
            len(fitting) * GRID_LEVELS,
            t,
        )
    )
    curve_levels = np.arange(1, 1025, dtype=float)

    def curve() -> None:
        perf.serving_curve("llama-3.1-8b-instruct", "fp8", "h100-sxm", 1500, 300, curve_levels)

    t = timed(curve)
    rows.append(("full", "serving_curve (planner estimate): 1 config x 1,024 levels", len(curve_levels), t))

    def weights() -> None:
        for m in models:
            for q in ("bf16", "fp8", "awq-int4", "gptq-int4", "bnb-nf4"):
                weight_bytes(m.architecture, q)

    t = timed(weights)
    rows.append(("memory", "weights memory (model x format, scalar)", len(models) * 5, t))

    print(f"{'path':<9} {'benchmark':<62} {'estimates':>11} {'seconds':>9} {'per second':>13}")
    print("-" * 108)
    ok = True
    for path, name, n, seconds in rows:
        rate = n / seconds
        print(f"{path:<9} {name:<62} {n:>11,} {seconds:>9.4f} {rate:>13,.0f}")
        if path == "roofline" or name.startswith("batch_capacities"):
            ok &= rate >= TARGET
    print(f"\ncalibration (once per change of the records or the model, then cached): {calibration_s:.2f} s")
    print(f"target: >= {TARGET:,} estimates per second (vectorised rows): {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
