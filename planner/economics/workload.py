"""The workload: how many tokens a day, in what shape, under which latency objectives."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from planner.errors import PlannerError

DEFAULT_INPUT_TOKENS = 1500
DEFAULT_OUTPUT_TOKENS = 300
"""A typical support chat turn: a system prompt with context and history, a short answer."""
DEFAULT_PEAK_TO_MEAN = 2.0
"""Business-day traffic: the busiest hour carries about twice the daily mean. Measure yours."""
DEFAULT_SLO_TTFT_MS = 1000.0
DEFAULT_SLO_TPOT_MS = 50.0
"""Chat-like: first token within a second, then at least 20 tokens/s (faster than people read)."""
PEAK_HOUR = 14  # the profile's busiest hour (local time); only its shape matters for cost


@dataclass(frozen=True)
class Workload:
    tokens_per_day: float  # input + output
    input_tokens: float = DEFAULT_INPUT_TOKENS  # per request
    output_tokens: float = DEFAULT_OUTPUT_TOKENS  # per request
    cached_input_share: float = 0.0  # of input tokens: prompt cache (API) / prefix cache (self-hosted)
    batch_share: float = 0.0  # of traffic that can wait for a batch API (discounted)
    hourly_weights: tuple[float, ...] = field(default_factory=tuple)  # 24 values, mean 1
    growth_per_month: float = 0.0  # 0.05 = +5% a month, for horizons
    slo_ttft_ms: float = DEFAULT_SLO_TTFT_MS
    slo_tpot_ms: float = DEFAULT_SLO_TPOT_MS

    def __post_init__(self) -> None:
        if not self.hourly_weights:
            object.__setattr__(self, "hourly_weights", diurnal_profile(DEFAULT_PEAK_TO_MEAN))

    @property
    def tokens_per_request(self) -> float:
        return self.input_tokens + self.output_tokens

    @property
    def requests_per_day(self) -> float:
        return self.tokens_per_day / self.tokens_per_request

    @property
    def input_share(self) -> float:
        return self.input_tokens / self.tokens_per_request

    @property
    def peak_to_mean(self) -> float:
        return max(self.hourly_weights)

    def at_volume(self, tokens_per_day: float) -> Workload:
        return replace(self, tokens_per_day=tokens_per_day)


def diurnal_profile(peak_to_mean: float) -> tuple[float, ...]:
    """24 hourly weights (mean 1) with the given peak-to-mean ratio: a smooth day peaking at 14:00.

    The shape is exp(k cos(2 pi (h - 14) / 24)), k solved so that max / mean equals the ratio:
    1 is flat traffic; 2 a business day; 6 a service used only a few hours a day.
    """
    if not 1.0 <= peak_to_mean < 24.0:
        raise PlannerError(f"--peak-to-mean must be at least 1 and below 24, got {peak_to_mean:g}")
    hours = np.arange(24)
    phase = np.cos(2 * np.pi * (hours - PEAK_HOUR) / 24)

    def ratio(k: float) -> float:
        w = np.exp(k * phase)
        return float(w.max() / w.mean())

    lo, hi = 0.0, 60.0
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ratio(mid) < peak_to_mean else (lo, mid)
    w = np.exp(lo * phase)
    return tuple(float(x) for x in w / w.mean())


def read_hourly_profile(path: Path) -> tuple[float, ...]:
    """24 relative weights, one per line or comma-separated (any scale); normalised to mean 1."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlannerError(f"{path}: cannot read the hourly profile ({exc.strerror})") from None
    lines = (line.split("#", 1)[0] for line in text.splitlines())  # '#' starts a comment
    parts = [p for line in lines for p in line.replace(",", " ").split()]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise PlannerError(f"{path}: the hourly profile must hold 24 numbers (one per hour)") from None
    if len(values) != 24:
        raise PlannerError(f"{path}: expected 24 hourly weights, found {len(values)}")
    if any(v < 0 or not math.isfinite(v) for v in values) or sum(values) <= 0:
        raise PlannerError(f"{path}: hourly weights must be non-negative and not all zero")
    mean = sum(values) / 24
    return tuple(v / mean for v in values)
