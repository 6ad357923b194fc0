"""The break-even analysis behind `planner breakeven` (and the report): candidates, fleets, API
bills, break-even volumes with low/likely/high, the verdict, and every assumption used."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.catalog.catalog import Catalog
from planner.economics.breakeven import BreakEven, break_evens
from planner.economics.capacity import (
    CapacityPlan,
    Filters,
    Policy,
    candidates,
    cheapest_per_offer,
)
from planner.economics.cost import ApiCost, api_cost
from planner.economics.options import DEFAULT_APIS
from planner.economics.sensitivity import Sensitivity, sensitivity
from planner.economics.workload import Workload
from planner.errors import PlannerError
from planner.perf.model import PerfModel, ReplicaCapacity, batch_capacities


@dataclass(frozen=True)
class Analysis:
    workload: Workload
    filters: Filters
    policy: Policy
    apis: list[ApiCost]  # cheapest first
    hosted_apis: list[ApiCost]  # the candidate open models served by API providers (same model)
    plans: list[CapacityPlan]  # cheapest first
    failing: list[tuple[str, str, str, int, str]]  # configurations that cannot meet the SLOs
    best_breakeven: dict[str, BreakEven]  # api label -> the soonest over every eligible option
    tornado: list[Sensitivity]  # for the headline pair
    catalog_digest: str
    too_long: tuple[str, ...] = ()  # APIs left out: the workload's requests exceed their context

    @property
    def all_apis(self) -> list[ApiCost]:
        return sorted([*self.apis, *self.hosted_apis], key=lambda a: a.usd_per_month)

    @property
    def cheapest_api(self) -> ApiCost | None:
        return min(self.all_apis, key=lambda a: a.usd_per_month, default=None)

    @property
    def cheapest_plan(self) -> CapacityPlan | None:
        return self.plans[0] if self.plans else None

    @property
    def self_hosting_wins(self) -> bool:
        api, plan = self.cheapest_api, self.cheapest_plan
        return bool(plan and (api is None or plan.usd_per_month < api.usd_per_month))


def resolve_apis(catalog: Catalog, names: tuple[str, ...]) -> list[ApiCost] | list:
    return [catalog.api_price(n) for n in names]


def api_alternatives(
    catalog: Catalog, workload: Workload, filters: Filters, api_names: tuple[str, ...], include_hosted: bool
) -> tuple[list[ApiCost], list[ApiCost], tuple[str, ...]]:
    """(named APIs, hosted versions of the candidate models not named, labels of those left out
    because the workload's requests exceed their context limit), each priced for the workload."""
    apis = [api_cost(p, workload) for p in resolve_apis(catalog, api_names)]
    known = {(a.price.provider, a.price.model) for a in apis}
    hosted_prices = hosted_versions(catalog, filters.models) if include_hosted else []
    hosted = [api_cost(p, workload) for p in hosted_prices if (p.provider, p.model) not in known]
    too_long = tuple(
        f"{a.price.provider}/{a.price.model}" for a in [*apis, *hosted] if a.exceeds_context(workload)
    )
    return (
        [a for a in apis if not a.exceeds_context(workload)],
        [a for a in hosted if not a.exceeds_context(workload)],
        too_long,
    )


def hosted_versions(catalog: Catalog, models: tuple[str, ...]) -> list:
    """The cheapest API that serves each candidate open model itself (e.g. Llama 3.1 8B at a host)."""
    out = []
    for m in models:
        offers = [p for p in catalog.api_prices if p.open_model == m and not p.deprecated]
        if offers:
            out.append(min(offers, key=lambda p: p.input_usd_per_mtok * 5 + p.output_usd_per_mtok))
    return out


def eligible_options(plans: list[CapacityPlan], apis: list[ApiCost]) -> np.ndarray:
    """(options x APIs): which options each API is compared with. Against a hosted open model,
    only self-hosting that same model (the comparison a reader can act on) when it is a
    candidate; against any other API, every option."""
    models = np.array([p.candidate.model for p in plans])
    cols = []
    for a in apis:
        same = models == a.price.open_model
        cols.append(same if a.price.open_model and same.any() else np.ones(len(plans), dtype=bool))
    return np.stack(cols, axis=1) if cols else np.zeros((len(plans), 0), dtype=bool)


def _same_gpu_prices(plans: list[CapacityPlan]) -> dict[tuple[str, str], list[float]]:
    """Per (GPU, pricing model): every provider's $/GPU-hour, for the price spread."""
    out: dict[tuple[str, str], set[float]] = {}
    for p in plans:
        c = p.candidate
        if c.provider != "owned":
            out.setdefault((c.gpu, c.pricing), set()).add(c.usd_per_hour / c.gpus_per_instance)
    return {k: sorted(v) for k, v in out.items()}


def analyze(
    catalog: Catalog,
    perf: PerfModel,
    workload: Workload,
    filters: Filters,
    policy: Policy,
    api_names: tuple[str, ...] = DEFAULT_APIS,
    include_hosted: bool = True,
    with_sensitivity: bool = True,
) -> Analysis:
    apis, hosted, too_long = api_alternatives(catalog, workload, filters, api_names, include_hosted)
    cands, failing = candidates(catalog, perf, workload, filters, policy)
    plans = cheapest_per_offer(cands, workload, policy)
    if not plans:
        detail = "; ".join(f"{m} {q} on {g} (TP {tp}): {why}" for m, q, g, tp, why in failing[:5])
        raise PlannerError(
            "no self-hosted option meets the SLOs "
            f"(TTFT <= {workload.slo_ttft_ms:g} ms, TPOT <= {workload.slo_tpot_ms:g} ms): "
            f"{detail or 'nothing fits'}; "
            "relax --slo-ttft-ms/--slo-tpot-ms, or try other --model/--quant/--gpu"
        )
    spread = _same_gpu_prices(plans)
    all_apis = sorted([*apis, *hosted], key=lambda a: a.usd_per_month)
    found = break_evens(
        [p.candidate for p in plans],
        workload,
        policy,
        all_apis,
        spread,
        eligible_options(plans, all_apis),
        plans,
    )
    best = {f"{a.price.provider}/{a.price.model}": be for a, be in zip(all_apis, found, strict=True) if be}
    tornado: list[Sensitivity] = []
    headline = _headline(best, all_apis)
    if headline is not None and with_sensitivity:
        c = headline.candidate

        def capacity_for(w: Workload) -> ReplicaCapacity | None:
            got = batch_capacities(
                perf,
                [(c.model, c.quant, c.gpu, c.tp)],
                w.input_tokens,
                w.output_tokens,
                w.slo_ttft_ms,
                w.slo_tpot_ms,
                policy.engine,
                policy.kv_dtype,
                1.0 - w.cached_input_share,
            )
            return got[(c.model, c.quant, c.gpu, c.tp)]

        tornado = sensitivity(
            c, workload, policy, headline.api, spread.get((c.gpu, c.pricing), []), capacity_for
        )
    return Analysis(
        workload,
        filters,
        policy,
        sorted(apis, key=lambda a: a.usd_per_month),
        hosted,
        plans,
        failing,
        best,
        tornado,
        catalog.digest(),
        too_long,
    )


def _headline(best: dict[str, BreakEven], apis: list[ApiCost]) -> BreakEven | None:
    """The pair the verdict leads with: the cheapest API against which self-hosting can pay at all
    (else the cheapest API), with the option that pays soonest against it."""
    pairs = [best[label] for a in apis if (label := f"{a.price.provider}/{a.price.model}") in best]
    finite = [be for be in pairs if be.likely.tokens_per_day is not None]
    return (finite or pairs or [None])[0]


def headline(analysis: Analysis) -> BreakEven | None:
    return _headline(analysis.best_breakeven, analysis.all_apis)
