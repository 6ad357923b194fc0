"""Calibrations as the planner uses them: efficiencies per group of records, their error bands,
and the defaults where no record exists. Fitting them (scipy) lives in calibrate.py and runs only
when the measurement records change.

Error bands are split-conformal: a group's band is the ceil((n + 1) x 0.8)-th smallest of its n
records' leave-one-out errors (each record predicted by the group's calibration fitted without it),
which covers at least 80% of new configurations like those records. A GPU without records is
estimated from all GPU records, and its band comes from leave-one-GPU-out errors (every record of a
GPU predicted by a calibration that never saw that GPU), since that is the situation estimated.
Those errors cluster by GPU (a GPU is off as a whole), so pooling them under-covers; the band is
also no narrower than any one GPU's own conformal band (`clustered_band`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from planner.perf.roofline import Efficiency

MIN_RECORDS = 3
BAND_COVERAGE = 0.8
"""The error band holds this share of true values (the target: 80% inside)."""
MIN_BAND = 0.05
ROOFLINE_BAND = 0.5
"""Without any record to calibrate on, a roofline with default efficiencies can be off by half."""

# ---------------------------------------------------------------------------------------------
# Defaults without records (and the priors fits are pulled towards)

MAMF_FRACTION = {
    ("h100-sxm", "bf16"): 794.5 / 989.5,
    ("a100-80gb", "bf16"): 271.2 / 312,
    ("a100-40gb", "bf16"): 271.2 / 312,
    ("b200", "bf16"): 1745 / 2250,
    ("mi300x", "bf16"): 668.4 / 1300,
    ("h100-sxm", "fp8"): 1402.6 / 1979,
    ("h200", "fp8"): 1453.4 / 1979,
    ("b200", "fp8"): 3432.5 / 4500,
}
"""Measured maximum achievable matmul FLOPS over the dense peak, from stas00/ml-engineering
compute/accelerator/README.md (file changed 7bc7c305, 2026-08-10; FACTS.md section 3, read
2026-11-29): BF16 H100 SXM 794.5 (80.3%), A100 SXM 271.2 (86.9%, taken for both A100 SXM parts),
B200 1745 (77.6%), MI300X 668.4 (51.4%, ROCm 6.3); FP8 H100 SXM 1402.6 (70.9%), H200 1453.4 (73.4%),
B200 3432.5 (76.3%). The fraction of peak a large GEMM reaches: the prior for achieved FLOPs."""

MAMF_FALLBACK = float(np.median(list(MAMF_FRACTION.values())))
"""For a GPU and precision without a MAMF measurement: the median of the measured ones (about 0.77)."""

DEFAULT_BANDWIDTH = 0.75
"""Achieved share of peak memory bandwidth. No sourced prior: an estimate that calibration moves
(fits on H100/H200 records land between 0.65 and 1.0)."""
DEFAULT_STEP_OVERHEAD_MS = 4.0
"""Fixed CPU cost of a step (scheduling, sampling, launch). No sourced prior: an estimate. The vLLM
v0.6.0 blog (2024-09-05) shows it is of this order: before v0.6 the API server and scheduler took
62% of a Llama 3 8B step on an H100, the GPU 38%."""

# Weight-only formats pay for dequantization; bitsandbytes most of all (estimates, no source).
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


def mamf_fraction(gpu: str, quant: str) -> float:
    precision = "fp8" if quant == "fp8" else "bf16"
    return MAMF_FRACTION.get((gpu, precision), MAMF_FALLBACK)


def default_efficiency(engine: str, quant: str, gpu: str = "") -> Efficiency:
    """The efficiencies assumed where no record calibrates a configuration, and every fit's prior."""
    if quant in QUANT_DEFAULTS:
        eff = QUANT_DEFAULTS[quant]
    else:
        eff = Efficiency(DEFAULT_BANDWIDTH, mamf_fraction(gpu, quant), DEFAULT_STEP_OVERHEAD_MS)
    if engine in ENGINE_DEFAULT_OVERHEAD_MS:
        eff = replace(eff, step_overhead_ms=max(eff.step_overhead_ms, ENGINE_DEFAULT_OVERHEAD_MS[engine]))
    return eff


# ---------------------------------------------------------------------------------------------
# Groups and bands

GroupKey = tuple[str | None, str | None, str | None]  # (gpu, engine, quant); None = any


def group_keys(gpu: str, engine: str, quant: str) -> list[GroupKey]:
    """Most specific first. There is no (engine on any GPU) level: an engine's records on one GPU
    say little about another GPU, while all GPU records together average over both."""
    return [(gpu, engine, quant), (gpu, engine, None), (gpu, None, None), (None, None, None)]


def group_label(key: GroupKey) -> str:
    return " / ".join(part or "any" for part in key)


def conformal_band(log_errors: Sequence[float], coverage: float = BAND_COVERAGE) -> float:
    """Relative half-width that holds a new error with probability >= `coverage` (split conformal).

    The ceil((n + 1) x coverage)-th smallest absolute error of n. With too few errors for that rank
    (n < 4 at 80%) no honest quantile exists: then at least the roofline's +-50%, and never less than
    the largest error seen.
    """
    errors = sorted(abs(e) for e in log_errors)
    n = len(errors)
    rank = math.ceil((n + 1) * coverage)
    if n == 0:
        return ROOFLINE_BAND
    if rank > n:
        return max(ROOFLINE_BAND, math.expm1(errors[-1]))
    return max(MIN_BAND, math.expm1(errors[rank - 1]))


def clustered_band(log_errors: Sequence[float], clusters: Sequence[str]) -> float:
    """A band for errors that come in clusters (one per GPU): the widest of the pooled band and each
    cluster's own band, so it would cover at least 80% of any one cluster like those seen."""
    if not log_errors:
        return ROOFLINE_BAND
    bands = [conformal_band(log_errors)]
    for name in set(clusters):
        bands.append(conformal_band([e for e, c in zip(log_errors, clusters, strict=True) if c == name]))
    return max(bands)


@dataclass(frozen=True)
class Calibration:
    key: GroupKey
    efficiency: Efficiency
    record_ids: tuple[str, ...]
    fitted: tuple[str, ...]
    residuals: tuple[float, ...]  # in-sample log(predicted / observed), one per record_ids
    loo_residuals: tuple[float, ...] = field(default=())  # this group's, each record left out
    quants: tuple[str, ...] = field(default=())  # the formats of the records it was fitted on
    gpu_out_residuals: tuple[float, ...] = field(default=())  # any-GPU group: leave-one-GPU-out
    gpus: tuple[str, ...] = field(default=())  # the GPUs of the records it was fitted on
    gpu_out_gpus: tuple[str, ...] = field(default=())  # the GPU each gpu_out_residual's record ran on

    @property
    def label(self) -> str:
        return group_label(self.key)

    @cached_property
    def band(self) -> float:
        """Relative half-width of the error band (0.12: the truth lies within +-12% for 80% of cases)."""
        return conformal_band(self.loo_residuals) if self.loo_residuals else ROOFLINE_BAND

    @cached_property
    def unseen_gpu_band(self) -> float:
        """The band for a GPU none of the records ran on (from leave-one-GPU-out errors)."""
        return clustered_band(self.gpu_out_residuals, self.gpu_out_gpus)

    def band_for(self, gpu: str) -> float:
        if self.key[0] is None and gpu not in self.gpus:
            return max(self.band, self.unseen_gpu_band)
        return self.band


def lookup(
    calibrations: dict[GroupKey, Calibration], gpu: str, engine: str, quant: str
) -> Calibration | None:
    for key in group_keys(gpu, engine, quant):
        if key in calibrations:
            return calibrations[key]
    return None
