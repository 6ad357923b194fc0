"""What a volume of tokens costs: through an API (linear in volume) or on a self-hosted fleet
(steps: whole instances). Pure functions over numpy arrays of volumes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from planner.economics.workload import Workload
from planner.units import DAYS_PER_MONTH, HOURS_PER_MONTH

if TYPE_CHECKING:
    from planner.records import ApiPrice

MTOK = 1e6


@dataclass(frozen=True)
class ApiCost:
    """One API's price for a workload: per token (constant), and the parts of a month's bill."""

    price: ApiPrice
    usd_per_token: float  # blended over input, cached input, output, batch share
    input_usd_per_month: float
    cached_input_usd_per_month: float
    output_usd_per_month: float
    batch_savings_usd_per_month: float
    long_context: bool  # the workload's prompts pay the long-context tier
    applied_input_usd_per_mtok: float = (
        0.0  # the prices the bill uses (the long-context tier's if it applies)
    )
    applied_cached_input_usd_per_mtok: float = 0.0
    applied_output_usd_per_mtok: float = 0.0

    @property
    def usd_per_month(self) -> float:
        return (
            self.input_usd_per_month
            + self.cached_input_usd_per_month
            + self.output_usd_per_month
            - self.batch_savings_usd_per_month
        )

    @property
    def usd_per_mtok(self) -> float:
        return self.usd_per_token * MTOK

    def exceeds_context(self, workload: Workload) -> bool:
        """The API cannot take the workload's requests: prompt plus output over its context limit."""
        limit = self.price.context_limit_tokens
        return bool(limit and workload.input_tokens + workload.output_tokens > limit)


def api_price_basis(price: ApiPrice) -> str:
    """'negotiated' for a price agreed with the provider (api_overrides.yaml `negotiated: true`)."""
    return "negotiated" if getattr(price, "negotiated", False) else "published"


def api_cost(price: ApiPrice, workload: Workload) -> ApiCost:
    """Tokens x prices: input (uncached and cached), output, and the batch discount on the batch share.

    Long-context tiers apply per request (the whole request pays the tier) when the workload's
    prompts exceed the tier's threshold; otherwise the normal tier.
    """
    long_ctx = bool(
        price.long_context_threshold_tokens and workload.input_tokens > price.long_context_threshold_tokens
    )
    p_in = (price.long_context_input_usd_per_mtok if long_ctx else None) or price.input_usd_per_mtok
    p_out = (price.long_context_output_usd_per_mtok if long_ctx else None) or price.output_usd_per_mtok
    p_cached = price.cached_input_usd_per_mtok if price.cached_input_usd_per_mtok is not None else p_in
    tokens_month = workload.tokens_per_day * DAYS_PER_MONTH
    input_tokens = tokens_month * workload.input_share
    output_tokens = tokens_month - input_tokens
    cached = input_tokens * workload.cached_input_share
    input_usd = (input_tokens - cached) * p_in / MTOK
    cached_usd = cached * p_cached / MTOK
    output_usd = output_tokens * p_out / MTOK
    discount = price.batch_discount or 0.0
    savings = (input_usd + cached_usd + output_usd) * workload.batch_share * discount
    total = input_usd + cached_usd + output_usd - savings
    per_token = total / tokens_month if tokens_month else 0.0
    return ApiCost(
        price, per_token, input_usd, cached_usd, output_usd, savings, long_ctx, p_in, p_cached, p_out
    )


def api_usd_per_month(usd_per_token: np.ndarray, tokens_per_day: np.ndarray) -> np.ndarray:
    """API bills are linear in volume."""
    return np.asarray(usd_per_token) * np.asarray(tokens_per_day) * DAYS_PER_MONTH


# -- self-hosted ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FleetParams:
    """The numbers a self-hosted cost curve needs, per deployment; fields may be arrays (many at once).

    ``tokens_per_day_per_instance``: what one instance serves in a day running flat out at the
    target utilization (capacity per replica x replicas per instance x utilization x 86,400 s).
    """

    tokens_per_day_per_instance: np.ndarray | float
    instance_usd_per_month: np.ndarray | float
    min_instances: np.ndarray | float
    fixed_usd_per_month: np.ndarray | float  # engineering and operations, monitoring


def always_on_instances(p: FleetParams, tokens_per_day: np.ndarray, peak_to_mean: float) -> np.ndarray:
    """Instances to carry the peak hour, never fewer than the minimum (1, or 2 for HA)."""
    need = np.ceil(np.asarray(tokens_per_day) * peak_to_mean / p.tokens_per_day_per_instance - 1e-9)
    return np.maximum(need, p.min_instances)


def always_on_usd_per_month(p: FleetParams, tokens_per_day: np.ndarray, peak_to_mean: float) -> np.ndarray:
    return (
        p.fixed_usd_per_month
        + always_on_instances(p, tokens_per_day, peak_to_mean) * p.instance_usd_per_month
    )


def autoscaled_instances(
    p: FleetParams, tokens_per_day: np.ndarray, hourly_weights: tuple[float, ...]
) -> np.ndarray:
    """Instances each hour of the day (last axis: 24 hours), scaled along the traffic profile."""
    w = np.asarray(hourly_weights)
    v = np.asarray(tokens_per_day)[..., None] * w
    per_instance = np.asarray(p.tokens_per_day_per_instance)[..., None]
    need = np.ceil(v / per_instance - 1e-9)
    return np.maximum(need, np.asarray(p.min_instances)[..., None])


def autoscaled_usd_per_month(
    p: FleetParams, tokens_per_day: np.ndarray, hourly_weights: tuple[float, ...]
) -> np.ndarray:
    """Pay for each hour what that hour needs (on-demand or spot instances started and stopped)."""
    hours = autoscaled_instances(p, tokens_per_day, hourly_weights)
    return p.fixed_usd_per_month + hours.mean(axis=-1) * p.instance_usd_per_month


def instance_usd_per_month(usd_per_hour: float) -> float:
    return usd_per_hour * HOURS_PER_MONTH


DEFAULT_AMORTIZE_MONTHS = 36
"""Three years: the usual depreciation schedule for servers, and about a GPU generation."""
DEFAULT_USD_PER_KWH = 0.12
"""A typical US commercial electricity rate."""
DEFAULT_PUE = 1.3
"""Power usage effectiveness of an ordinary colocation data centre (cooling, conversion)."""
DEFAULT_HOSTING_USD_PER_GPU_MONTH = 150.0
"""Rack space, network and the share of the server around each GPU (a colocation quote of about
$1,200 a month for an 8-GPU server)."""
DEFAULT_POWER_SHARE_OF_TDP = 0.7
"""Serving GPUs average well below their TDP (memory-bound decode, idle gaps): about 70%."""


@dataclass(frozen=True)
class OwnedHardware:
    """Buying GPUs: the purchase amortised, the power drawn (with cooling), and hosting."""

    usd_per_gpu: float
    amortize_months: int = DEFAULT_AMORTIZE_MONTHS
    usd_per_kwh: float = DEFAULT_USD_PER_KWH
    pue: float = DEFAULT_PUE  # data-centre overhead on power (cooling, conversion)
    hosting_usd_per_gpu_month: float = DEFAULT_HOSTING_USD_PER_GPU_MONTH
    power_share_of_tdp: float = DEFAULT_POWER_SHARE_OF_TDP

    def usd_per_gpu_hour(self, tdp_w: float) -> float:
        purchase = self.usd_per_gpu / self.amortize_months / HOURS_PER_MONTH
        power = tdp_w / 1000 * self.power_share_of_tdp * self.pue * self.usd_per_kwh
        hosting = self.hosting_usd_per_gpu_month / HOURS_PER_MONTH
        return purchase + power + hosting
