#!/usr/bin/env python3
"""Cold-process wall time of planner commands, with the planner's caches warm and cold (target:
`planner breakeven --tokens-per-day 5M` median under 0.5 s on a 2-core machine; aim 0.3 s).
Prints a table.

The planner caches a validated snapshot of the catalogs and the performance model's calibration
under $XDG_CACHE_HOME/selfhost-planner. Each command is timed in fresh processes:

- hit: both caches warm (every run after the first on an unchanged install);
- catalog miss: the catalog snapshot gone (a catalog file changed, or a new install);
- calibration miss: the calibration gone (measurements or performance-model code changed);
- full miss: an empty cache (the very first run).

The benchmark keeps its own cache directory (never the user's). Bytecode goes to a temporary
PYTHONPYCACHEPREFIX, compiled by warm-up runs along every path (what an installed planner finds:
pip compiles .pyc files at install), also when the environment sets PYTHONDONTWRITEBYTECODE.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODES = ("hit", "catalog miss", "calibration miss", "full miss")
COMMANDS: list[tuple[list[str], tuple[str, ...]]] = [
    (["breakeven", "--tokens-per-day", "5M"], MODES),
    (["breakeven", "--tokens-per-day", "5M", "--autoscale"], ("hit", "full miss")),
    (["breakeven", "--tokens-per-day", "500M", "--format", "json"], ("hit",)),
    (["capacity", "--tokens-per-day", "50M", "--model", "llama-3.1-8b-instruct"], ("hit",)),
    (
        ["cost", "--queries-per-day", "10000", "--api", "gpt-4o,gpt-4o-mini,claude-3-haiku"],
        ("hit", "full miss"),
    ),
    (["estimate", "--model", "llama-3.1-8b-instruct", "--gpu", "h100-sxm"], ("hit",)),
    (["fit", "--model", "llama-3.1-70b-instruct", "--gpu", "all"], ("hit",)),
    (["--help"], ("hit",)),
]
TARGET = ["breakeven", "--tokens-per-day", "5M"]
TARGET_S = 0.5

ROOT = Path(tempfile.mkdtemp(prefix="bench-cli-"))
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["PYTHONPYCACHEPREFIX"] = str(ROOT / "pyc")
WARM = ROOT / "warm"


def run(args: list[str], cache: Path) -> float:
    env = {**ENV, "XDG_CACHE_HOME": str(cache)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "planner.cli", *args], check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def cache_for(mode: str, n: int) -> Path:
    """A cache directory in the state `mode` names, fresh for run n."""
    path = ROOT / f"run-{mode.replace(' ', '-')}-{n}"
    if mode == "hit":
        return WARM
    shutil.rmtree(path, ignore_errors=True)
    if mode == "full miss":
        path.mkdir()
        return path
    shutil.copytree(WARM, path)
    pattern = "catalog-*" if mode == "catalog miss" else "calibration-*"
    for f in (path / "selfhost-planner").glob(pattern):
        f.unlink()
    return path


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", "--runs", type=int, default=7)
    opts = parser.parse_args()
    print(f"{'command':<66} {'caches':<17} {'median s':>9} {'min s':>7} {'max s':>7}")
    print("-" * 110)
    medians: dict[str, float] = {}
    try:
        for k, (args, modes) in enumerate(COMMANDS):
            run(args, ROOT / f"compile-{k}")  # warm-up: a full miss compiles the bytecode of every path
            run(args, WARM)  # fills the warm cache
            for mode in modes:
                times = [run(args, cache_for(mode, i)) for i in range(opts.runs)]
                median = statistics.median(times)
                name = "planner " + " ".join(args)
                print(f"{name:<66} {mode:<17} {median:>9.3f} {min(times):>7.3f} {max(times):>7.3f}")
                if args == TARGET:
                    medians[mode] = median
    finally:
        shutil.rmtree(ROOT, ignore_errors=True)
    print()
    for mode, median in medians.items():
        verdict = "met" if median < TARGET_S else "NOT met"
        print(f"target: planner {' '.join(TARGET)} median < {TARGET_S} s, caches {mode}: {verdict}")
    return 0 if medians.get("hit", 1e9) < TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
