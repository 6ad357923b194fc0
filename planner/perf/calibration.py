"""Calibrations as the planner uses them: efficiencies per group of records, their error bands,
and the defaults where no record exists. Fitting them (scipy) lives in calibrate.py and runs only
when the measurement records change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from planner.perf.roofline import Efficiency

MIN_RECORDS = 3
BAND_QUANTILE = 0.8
"""The error band holds this share of leave-one-out errors (the target: 80% of true values inside)."""
MIN_BAND = 0.05
ROOFLINE_BAND = 0.5
"""Without any record to calibrate on, a roofline with default efficiencies can be off by half."""

# Defaults without records. Weight-only formats pay for dequantization; bitsandbytes most of all.
QUANT_DEFAULTS = {
    "bnb-nf4": Efficiency(bandwidth=0.3, flops=0.3, step_overhead_ms=8.0),
    "bnb-fp4": Efficiency(bandwidth=0.3, flops=0.3, step_overhead_ms=8.0),
    "bnb-int8": Efficiency(bandwidth=0.15, flops=0.15, step_overhead_ms=12.0),
    "awq-int4": Efficiency(bandwidth=0.6, flops=0.45),
    "gptq-int4": Efficiency(bandwidth=0.6, flops=0.45),
    "gptq-int8": Efficiency(bandwidth=0.65, flops=0.45),
}
ENGINE_DEFAULT_OVERHEAD_MS = {"transformers": 25.0}
"""HF generate runs eagerly from Python: tens of ms of launch overhead per step for a 7B model."""


def default_efficiency(engine: str, quant: str) -> Efficiency:
    eff = QUANT_DEFAULTS.get(quant, Efficiency())
    if engine in ENGINE_DEFAULT_OVERHEAD_MS:
        eff = replace(eff, step_overhead_ms=max(eff.step_overhead_ms, ENGINE_DEFAULT_OVERHEAD_MS[engine]))
    return eff


GroupKey = tuple[str | None, str | None, str | None]  # (gpu, engine, quant); None = any


def group_keys(gpu: str, engine: str, quant: str) -> list[GroupKey]:
    """Most specific first. There is no (engine on any GPU) level: an engine's records on one GPU
    say little about another GPU, while all GPU records together average over both."""
    return [(gpu, engine, quant), (gpu, engine, None), (gpu, None, None), (None, None, None)]


def group_label(key: GroupKey) -> str:
    return " / ".join(part or "any" for part in key)


@dataclass(frozen=True)
class Calibration:
    key: GroupKey
    efficiency: Efficiency
    record_ids: tuple[str, ...]
    fitted: tuple[str, ...]
    residuals: tuple[float, ...]  # in-sample log(predicted / observed)
    loo_residuals: tuple[float, ...] = field(default=())
    quants: tuple[str, ...] = field(default=())  # the formats of the records it was fitted on

    @property
    def label(self) -> str:
        return group_label(self.key)

    @cached_property
    def band(self) -> float:
        """Relative half-width of the error band (0.12 = the truth lies within +-12% for 80% of records)."""
        res = self.loo_residuals or self.residuals
        if not res:
            return ROOFLINE_BAND
        q = float(np.quantile(np.abs(res), BAND_QUANTILE))
        return max(MIN_BAND, math.expm1(q))


def lookup(
    calibrations: dict[GroupKey, Calibration], gpu: str, engine: str, quant: str
) -> Calibration | None:
    for key in group_keys(gpu, engine, quant):
        if key in calibrations:
            return calibrations[key]
    return None
