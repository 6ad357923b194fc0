"""Self-hosted candidates and the fleet each needs: replicas, instances, GPUs, cost, headroom.

A candidate is a model x quantization x engine on a priced offer (a cloud instance under one
pricing model, or owned GPUs) at a tensor-parallel degree. Its capacity per replica comes from
the performance model (tokens/s at the largest concurrency meeting the SLOs); the fleet is
sized for the peak hour at a target utilization, never below the minimum replicas.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from planner.catalog.catalog import Catalog
from planner.economics.cost import (
    FleetParams,
    autoscaled_instances,
    instance_usd_per_month,
)
from planner.economics.options import (  # noqa: F401 - the defaults are part of this module's interface
    DEFAULT_MODELS,
    DEFAULT_OPS_USD_PER_MONTH,
    DEFAULT_PRICING,
    DEFAULT_QUANTS,
    DEFAULT_SPOT_ALLOWANCE,
    DEFAULT_TARGET_UTILIZATION,
    PROVISIONING,
    Filters,
    Policy,
)
from planner.economics.workload import Workload
from planner.errors import PlannerError, UnknownIdError
from planner.perf.memory import TP_DEGREES, valid_tp_degrees
from planner.perf.model import PerfModel, ReplicaCapacity, batch_capacities
from planner.perf.quant import QUANTS
from planner.units import DAYS_PER_MONTH, SECONDS_PER_DAY
from planner.vocab import NVIDIA_ONLY_ENGINES, PRICING_MODELS


@dataclass(frozen=True)
class Candidate:
    model: str
    quant: str
    engine: str
    gpu: str
    tp: int
    provider: str
    instance: str
    region: str
    gpus_per_instance: int
    pricing: str  # on_demand | spot | reserved_1y | reserved_3y | owned
    provisioning: str  # always-on | autoscaled
    usd_per_hour: float  # one instance, spot allowance included
    price_checked_at: dt.date | None
    price_source: str
    capacity: ReplicaCapacity
    spot_allowance: float = 0.0  # share added to the published price for interruptions (spot)

    @property
    def replicas_per_instance(self) -> int:
        return self.gpus_per_instance // self.tp

    @property
    def label(self) -> str:
        return (
            f"{self.model} {self.quant} on {self.provider} {self.instance} "
            f"({self.pricing.replace('_', '-')}, {self.provisioning})"
        )

    @property
    def key(self) -> tuple[str, ...]:
        return (
            self.model,
            self.quant,
            self.provider,
            self.instance,
            self.region,
            self.pricing,
            self.provisioning,
        )

    def tokens_per_s_per_replica(self, workload: Workload) -> float:
        """Input and output tokens one replica serves per second at its SLO capacity."""
        return self.capacity.output_tokens_per_s.value * workload.tokens_per_request / workload.output_tokens


def fleet_params(
    c: Candidate,
    workload: Workload,
    policy: Policy,
    capacity_scale: float = 1.0,
    usd_per_hour: float | None = None,
) -> FleetParams:
    """The numbers of the candidate's cost curve; a capacity scale and an instance price may be varied."""
    per_replica_day = c.tokens_per_s_per_replica(workload) * capacity_scale * SECONDS_PER_DAY
    return FleetParams(
        tokens_per_day_per_instance=per_replica_day * c.replicas_per_instance * policy.target_utilization,
        instance_usd_per_month=instance_usd_per_month(
            c.usd_per_hour if usd_per_hour is None else usd_per_hour
        ),
        min_instances=math.ceil(policy.min_replicas / c.replicas_per_instance),
        fixed_usd_per_month=policy.ops_usd_per_month,
    )


@dataclass(frozen=True)
class CapacityPlan:
    candidate: Candidate
    tokens_per_day: float
    instances: float  # always-on: instances held; autoscaled: average over the day
    peak_instances: float
    replicas: float
    gpus: float
    gpu_usd_per_month: float
    ops_usd_per_month: float
    utilization: float  # mean share of the fleet's SLO capacity in use over the day
    headroom: float  # SLO capacity at the peak hour beyond the peak load (0.4 = 40% spare)

    @property
    def usd_per_month(self) -> float:
        return self.gpu_usd_per_month + self.ops_usd_per_month

    @property
    def usd_per_mtok(self) -> float:
        return self.usd_per_month / (self.tokens_per_day * DAYS_PER_MONTH) * 1e6


def plan(c: Candidate, workload: Workload, policy: Policy) -> CapacityPlan:
    """The fleet a candidate needs for the workload's volume, and what it costs."""
    p = fleet_params(c, workload, policy)
    if c.provisioning == "autoscaled":
        hourly = autoscaled_instances(p, np.array([workload.tokens_per_day]), workload.hourly_weights)[0]
        instances, peak = float(hourly.mean()), float(hourly.max())
    else:  # the scalar form of always_on_instances: this runs for every candidate
        need = math.ceil(
            workload.tokens_per_day * workload.peak_to_mean / p.tokens_per_day_per_instance - 1e-9
        )
        instances = peak = float(max(need, p.min_instances))
    rpi = c.replicas_per_instance
    full_day = c.tokens_per_s_per_replica(workload) * SECONDS_PER_DAY  # one replica, flat out
    capacity_at_peak = peak * rpi * full_day
    return CapacityPlan(
        candidate=c,
        tokens_per_day=workload.tokens_per_day,
        instances=instances,
        peak_instances=peak,
        replicas=peak * rpi,
        gpus=peak * c.gpus_per_instance,
        gpu_usd_per_month=instances * float(p.instance_usd_per_month),
        ops_usd_per_month=policy.ops_usd_per_month,
        utilization=workload.tokens_per_day / (instances * rpi * full_day),
        headroom=capacity_at_peak / (workload.tokens_per_day * workload.peak_to_mean) - 1.0,
    )


def _check_ids(catalog: Catalog, filters: Filters, policy: Policy) -> None:
    for m in filters.models:
        catalog.model(m)
    for q in filters.quants:
        if q not in QUANTS:
            raise UnknownIdError("quantization format", q, QUANTS)
    for g in (*filters.gpus, *policy.owned):
        gpu = catalog.gpu(g)
        if policy.engine in NVIDIA_ONLY_ENGINES and gpu.vendor != "nvidia":
            raise PlannerError(
                f"--engine {policy.engine} runs on NVIDIA GPUs only, not {g}; use vllm or sglang there"
            )
    for p in filters.pricing:
        if p not in (*PRICING_MODELS, "owned"):
            raise UnknownIdError("pricing model", p, (*PRICING_MODELS, "owned"))
    providers = {o.provider for o in catalog.current_offers()} | {"owned"}
    for p in filters.providers:
        if p not in providers:
            raise UnknownIdError("provider", p, providers, "planner catalog list offers")


class PricedOffer(NamedTuple):
    gpu: str
    provider: str
    instance: str
    region: str
    gpu_count: int
    pricing: str
    provisioning: str
    usd_per_hour: float
    checked_at: dt.date | None
    source: str
    allowance: float = 0.0


def _priced_offers(catalog: Catalog, filters: Filters, policy: Policy) -> list[PricedOffer]:
    """Every (offer, pricing model, provisioning) the filters admit, with its instance price."""
    rows = []
    nvidia_only = policy.engine in NVIDIA_ONLY_ENGINES
    for o in catalog.current_offers():
        if (filters.gpus and o.gpu not in filters.gpus) or (
            filters.providers and o.provider not in filters.providers
        ):
            continue
        if nvidia_only and catalog.gpu(o.gpu).vendor != "nvidia":
            continue  # the engine does not run there
        for pricing in filters.pricing:
            if pricing == "owned":
                continue
            price = getattr(o.usd_per_hour, pricing)
            if price is None:
                continue
            modes, allowance = ["always-on"], 0.0
            if pricing == "spot":
                modes, allowance = ["autoscaled"], policy.spot_allowance
                price *= 1 + allowance
            elif pricing == "on_demand" and policy.autoscale:
                modes.append("autoscaled")
            for mode in modes:
                rows.append(
                    PricedOffer(
                        o.gpu,
                        o.provider,
                        o.instance,
                        o.region,
                        o.gpu_count,
                        pricing,
                        mode,
                        price,
                        o.checked_at,
                        o.source_url,
                        allowance,
                    )
                )
    if "owned" in filters.pricing or policy.owned:
        for gpu, terms in policy.owned.items():
            if filters.gpus and gpu not in filters.gpus:
                continue
            per_gpu = terms.usd_per_gpu_hour(catalog.gpu(gpu).tdp_w)
            for tp in TP_DEGREES:
                months = terms.amortize_months
                source = f"owned: ${terms.usd_per_gpu:,.0f}/GPU over {months} months, power and hosting"
                rows.append(
                    PricedOffer(
                        gpu,
                        "owned",
                        f"{tp}x-{gpu}",
                        "on-premises",
                        tp,
                        "owned",
                        "always-on",
                        per_gpu * tp,
                        None,
                        source,
                    )
                )
    return rows


def candidates(
    catalog: Catalog, perf: PerfModel, workload: Workload, filters: Filters, policy: Policy
) -> tuple[list[Candidate], list[tuple[str, str, str, int, str]]]:
    """Every way to self-host within the filters, and the configurations that cannot meet the SLOs.

    For each offer and pricing model every tensor-parallel degree that fits is tried; the caller
    keeps the cheapest per offer (`cheapest_per_offer`).
    """
    _check_ids(catalog, filters, policy)
    offers = _priced_offers(catalog, filters, policy)
    if not offers:
        raise PlannerError(
            "no priced offer matches --gpu, --provider and --pricing; see planner catalog list offers"
        )
    tps = {m: valid_tp_degrees(catalog.model(m).architecture) for m in filters.models}  # vLLM's head rules
    configs = {
        (m, q, o.gpu, tp)
        for o in offers
        for m in filters.models
        for q in filters.quants
        for tp in tps[m]
        if o.gpu_count % tp == 0
    }
    ordered = sorted(configs)
    caps = batch_capacities(
        perf,
        ordered,
        workload.input_tokens,
        workload.output_tokens,
        workload.slo_ttft_ms,
        workload.slo_tpot_ms,
        policy.engine,
        policy.kv_dtype,
        1.0 - workload.cached_input_share,
    )
    out, failing = [], []
    for o in offers:
        for m in filters.models:
            for q in filters.quants:
                for tp in tps[m]:
                    cap = caps.get((m, q, o.gpu, tp))
                    if cap is None or o.gpu_count % tp:
                        continue
                    if not cap.meets_slo:
                        failing.append((m, q, o.gpu, tp, cap.limited_by))
                        continue
                    out.append(
                        Candidate(
                            m,
                            q,
                            policy.engine,
                            o.gpu,
                            tp,
                            o.provider,
                            o.instance,
                            o.region,
                            o.gpu_count,
                            o.pricing,
                            o.provisioning,
                            o.usd_per_hour,
                            o.checked_at,
                            o.source,
                            cap,
                            o.allowance,
                        )
                    )
    return out, sorted(set(failing))


def cheapest_per_offer(cands: list[Candidate], workload: Workload, policy: Policy) -> list[CapacityPlan]:
    """Per (model, quant, offer, pricing, provisioning): the TP degree that costs least; cheapest first."""
    best: dict[tuple[str, ...], CapacityPlan] = {}
    for c in cands:
        p = plan(c, workload, policy)
        if c.key not in best or p.usd_per_month < best[c.key].usd_per_month:
            best[c.key] = p
    return sorted(best.values(), key=lambda p: (p.usd_per_month, p.candidate.label))
