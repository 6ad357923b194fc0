"""What a capacity report shows, computed once: the break-even analysis and everything around it
(cost curves, fleets, performance curves, memory fit, sensitivity, TCO, the seed's criterion
table, provenance). Rendering (plots, HTML, Markdown) reads this and computes nothing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from planner.catalog.catalog import Catalog
from planner.economics.analysis import Analysis, analyze, headline
from planner.economics.capacity import Candidate, CapacityPlan, plan
from planner.economics.options import Filters
from planner.economics.tco import SwitchingCosts, TcoComparison, compare
from planner.errors import PlannerError
from planner.perf.estimate import band_text
from planner.perf.memory import smallest_fit
from planner.perf.model import MATCH_TOLERANCE, PerfModel
from planner.perf.params import param_counts
from planner.report.economics import breakeven_payload, breakeven_rows, plan_row, tornado_rows
from planner.report.no_fit import NoSelfHosted, api_only_analysis
from planner.report.provenance import provenance
from planner.report.quality import quality_section

CLASSES = (("small (up to 8B)", 0, 8.5e9), ("mid (8B-70B)", 8.5e9, 65e9), ("large (70B and up)", 65e9, 1e15))
FLEET_ROWS = 25
"""Rows of the fleet table: the best per model and format (and per model and pricing) always, then
the next cheapest up to this many."""
SELF_HOSTED_CURVES = 5


@dataclass
class CostCurve:
    label: str
    kind: str  # api | self-hosted
    volumes: np.ndarray
    usd_per_month: np.ndarray
    candidate: Candidate | None = None


@dataclass
class PerfPanel:
    gpu: str
    model: str
    quant: str
    tp: int
    concurrency: np.ndarray
    output_tokens_per_s: np.ndarray
    band: float
    ttft_ms: np.ndarray
    tpot_ms: np.ndarray
    basis: str
    measured: list[dict[str, Any]] = field(default_factory=list)  # one row per measured point drawn
    records: int = 0  # records the curve rests on (measured points and the calibration's)


@dataclass
class ReportData:
    name: str
    description: str
    generated_at: dt.datetime
    command: str
    analysis: Analysis
    breakeven: dict[str, Any]  # exactly `planner breakeven --format json --all`
    curves: list[CostCurve]
    fleet: list[dict[str, Any]]
    perf: list[PerfPanel]
    vram: list[dict[str, Any]]
    tornado: list[dict[str, Any]]
    tco: TcoComparison
    horizon_months: int
    switching: SwitchingCosts
    classes: list[dict[str, Any]]
    provenance: dict[str, Any]
    quality: dict[str, Any] | None = None  # gpu-bench eval records: quality next to cost
    no_self_hosted: NoSelfHosted | None = None  # set when no self-hosted option meets the SLOs

    @property
    def payback_month(self) -> int | None:
        """Against the cheapest API (`planner tco`'s payback)."""
        return self.tco.payback_month

    @property
    def measured_points(self) -> list[dict[str, Any]]:
        return [m for p in self.perf for m in p.measured]

    @property
    def vram_chart(self) -> list[dict[str, Any]]:
        """Per model and format: the GPU its cheapest option uses, and the largest GPU that fits."""
        cheapest: dict[tuple[str, str], str] = {}
        for p in self.analysis.plans:
            cheapest.setdefault((p.candidate.model, p.candidate.quant), p.candidate.gpu)
        rows = []
        for key in dict.fromkeys((r["model"], r["quant"]) for r in self.vram):
            mine = [r for r in self.vram if (r["model"], r["quant"]) == key and r["fits"]]
            picks = [r for r in mine if r["gpu"] == cheapest.get(key)]
            if mine:
                picks.append(max(mine, key=lambda r: r["memory_gib"]))
            rows.extend({id(r): r for r in picks}.values())
        return rows


def _cost_curves(a: Analysis, volumes: np.ndarray) -> list[CostCurve]:
    """Every API; the options the break-evens name (so each dot lies on a drawn curve), then the
    cheapest option on other GPUs: small and big fleets both show."""
    curves = [
        CostCurve(f"{x.price.provider}/{x.price.model}", "api", volumes, volumes * x.usd_per_token * 365 / 12)
        for x in a.all_apis
    ]
    chosen: dict[tuple[str, ...], Candidate] = {}
    for be in a.best_breakeven.values():
        chosen.setdefault(be.candidate.key, be.candidate)
    gpus = {c.gpu for c in chosen.values()}
    for p in a.plans:
        if len(chosen) >= SELF_HOSTED_CURVES:
            break
        if p.candidate.gpu not in gpus:
            chosen.setdefault(p.candidate.key, p.candidate)
            gpus.add(p.candidate.gpu)
    for c in chosen.values():
        costs = np.array([plan(c, a.workload.at_volume(float(v)), a.policy).usd_per_month for v in volumes])
        label = f"{c.model} {c.quant} on {c.gpu} ({c.provider}, {c.pricing.replace('_', '-')})"
        curves.append(CostCurve(label, "self-hosted", volumes, costs, c))
    return curves


def _fleet(a: Analysis) -> list[tuple[int, CapacityPlan, str]]:
    """(rank by monthly cost, plan, why listed): the cheapest fleet of every model and format and
    of every model and pricing model, cheapest first; then the next cheapest, up to FLEET_ROWS."""
    rank = {id(p): i for i, p in enumerate(a.plans, start=1)}
    chosen: dict[int, tuple[CapacityPlan, str]] = {}
    for key, why in (
        (lambda c: (c.model, c.quant), "best for its model and format"),
        (lambda c: (c.model, c.pricing), "best for its model and pricing"),
    ):
        seen: set[tuple[str, str]] = set()
        for p in a.plans:
            k = key(p.candidate)
            if k not in seen:
                seen.add(k)
                chosen.setdefault(id(p), (p, why))
    best = sorted(chosen.values(), key=lambda pw: rank[id(pw[0])])
    rest = [(p, "next cheapest") for p in a.plans if id(p) not in chosen][: max(0, FLEET_ROWS - len(best))]
    return [(rank[id(p)], p, why) for p, why in [*best, *rest]]


def _panel_configs(a: Analysis, no_fit: NoSelfHosted | None, n: int = 4) -> list[tuple[str, str, str, int]]:
    """(model, quant, gpu, tp): the headline option's model and format on up to n GPUs (the cheapest
    option on each); with no option meeting the SLOs, the closest configurations instead."""
    if not a.plans:
        rows = no_fit.closest if no_fit else []
        lead = rows[0] if rows else None
        pool = [(r["model"], r["quant"], r["gpu"], r["tp"]) for r in rows]
    else:
        be = headline(a)
        c = be.candidate if be else a.plans[0].candidate
        lead = {"model": c.model, "quant": c.quant}
        pool = [(p.candidate.model, p.candidate.quant, p.candidate.gpu, p.candidate.tp) for p in a.plans]
    out: list[tuple[str, str, str, int]] = []
    for m, q, g, tp in pool:
        if lead and (m, q) == (lead["model"], lead["quant"]) and g not in {x[2] for x in out}:
            out.append((m, q, g, tp))
        if len(out) == n:
            break
    return out


def _perf_panels(a: Analysis, perf: PerfModel, configs: list[tuple[str, str, str, int]]) -> list[PerfPanel]:
    w = a.workload
    grid = np.unique(np.round(np.geomspace(1, 512, 40)))
    out = []
    for model, quant, gpu, tp in configs:
        curve = perf.serving_curve(
            model,
            quant,
            gpu,
            w.input_tokens,
            w.output_tokens,
            grid,
            a.policy.engine,
            tp,
            a.policy.kv_dtype,
            prefill_fraction=1.0 - w.cached_input_share,  # as the capacities the plan rests on
        )
        # The points the performance model itself takes as measured for this configuration.
        records = perf.measured_points(
            model, quant, gpu, a.policy.engine, curve.tp, curve.pp, w.input_tokens, w.output_tokens
        )
        measured = [
            {
                "gpu": gpu,
                "configuration": f"{model} {quant} on {curve.tp} x {gpu} ({a.policy.engine})",
                "concurrency": float(r.concurrency or 0),
                "output_tokens_per_s": float(r.output_tokens_per_s or 0),
                "input_tokens": r.input_tokens,
                "output_tokens": r.output_tokens,
                "basis": r.basis,
                "engine_version": r.engine.version,
                "measured_at": r.measured_at.date().isoformat(),
                "record": r.id,
            }
            for r in sorted(records, key=lambda r: r.concurrency or 0)
        ]
        basis = "measured + calibrated" if measured else ("calibrated" if curve.record_ids else "roofline")
        out.append(
            PerfPanel(
                gpu,
                model,
                quant,
                curve.tp,
                curve.concurrency,
                curve.output_tokens_per_s,
                curve.band,
                curve.ttft_ms,
                curve.tpot_ms,
                f"{basis}: {curve.calibration}",
                measured,
                len(curve.record_ids),
            )
        )
    return out


def measured_match_text(a: Analysis) -> str:
    w = a.workload
    return (
        f"serving records of the same model, format, GPU, engine ({a.policy.engine}), TP and PP, "
        f"{w.input_tokens:,.0f} in / {w.output_tokens:,.0f} out within {MATCH_TOLERANCE:.0%}, "
        "client not saturated"
    )


def _vram(catalog: Catalog, a: Analysis, gpus: list[str]) -> list[dict[str, Any]]:
    w = a.workload
    context = int(w.input_tokens + w.output_tokens)
    gpus = sorted(set(gpus)) or sorted(catalog.gpus)[:4]
    rows = []
    for model in a.filters.models:
        arch = catalog.model(model).architecture
        for quant in a.filters.quants:
            for gpu in gpus:
                r = smallest_fit(model, arch, quant, catalog.gpu(gpu), context, 8, a.policy.kv_dtype)
                rows.append(
                    {
                        "model": model,
                        "quant": quant,
                        "gpu": gpu,
                        "gpus": r.gpus,
                        "tp": r.tp,
                        "fits": r.fits,
                        "memory_gib": r.gpu_memory_gib,
                        "weights_gib": r.weights_gib,
                        "overhead_gib": r.activation_gib + r.overhead_gib,
                        "kv_pool_gib": max(r.kv_pool_gib, 0.0),
                        "unusable_gib": r.gpu_memory_gib - r.usable_gib,
                        "max_concurrent_seqs": r.max_concurrent_seqs,
                    }
                )
    return rows


def _classes(
    catalog: Catalog, perf: PerfModel, a: Analysis
) -> tuple[list[dict[str, Any]], list[CapacityPlan]]:
    """The seed's criterion table, recomputed: per model size class, the cheapest self-hosted option."""
    rows, plans = [], []
    for label, lo, hi in CLASSES:
        models = tuple(
            m.id for m in catalog.models.values() if lo <= param_counts(m.architecture).active < hi
        )
        models = tuple(m for m in models if m in a.filters.models) or models[:3]
        row: dict[str, Any] = {"class": label, "models": ", ".join(models)}
        try:
            sub = analyze(
                catalog,
                perf,
                a.workload,
                replace(a.filters, models=models),
                a.policy,
                tuple(f"{x.price.provider}/{x.price.model}" for x in a.apis),
                False,
                with_sensitivity=False,
            )
        except Exception as exc:  # noqa: BLE001 - a class without a fitting option is a row that says so
            rows.append({**row, "note": str(exc).split(";")[0]})
            continue
        p = sub.plans[0]
        c = p.candidate
        plans.append(p)
        rows.append(
            {
                **row,
                "cheapest": f"{c.model} {c.quant} on {p.gpus:g} x {c.gpu} ({c.provider} {c.instance}, "
                f"{c.pricing.replace('_', '-')})",
                "usd_per_mtok": p.usd_per_mtok,
                "usd_per_month": p.usd_per_month,
                "ttft_ms": c.capacity.ttft_ms,
                "tpot_ms": c.capacity.tpot_ms,
                "gpus": p.gpus,
                "context_tokens": catalog.model(c.model).architecture.max_context_tokens,
                "throughput_basis": c.capacity.output_tokens_per_s.basis,
            }
        )
    return rows, plans


def _priced_options(
    a: Analysis,
    fleet: list[tuple[int, CapacityPlan, str]],
    class_plans: list[CapacityPlan],
    curves: list[CostCurve],
    comparison: TcoComparison,
) -> list[Candidate]:
    """Every self-hosted option whose price any section shows (its offer and throughput then
    belong in the provenance): the fleet table, the size classes, each break-even (likely, low
    and high), the cost curves, the TCO's option and the verdict's cheapest."""
    out = [p.candidate for _, p, _ in fleet] + [p.candidate for p in class_plans]
    for be in a.best_breakeven.values():
        out += [c for c in (be.candidate, be.low_candidate, be.high_candidate) if c]
    out += [c.candidate for c in curves if c.candidate]
    out += [comparison.candidate] if comparison.candidate else []
    out += [a.cheapest_plan.candidate] if a.cheapest_plan else []
    return out


def _analysis(
    catalog: Catalog,
    perf: PerfModel,
    workload: Any,
    filters: Filters,
    policy: Any,
    apis: tuple[str, ...],
    include_hosted: bool,
) -> tuple[Analysis, NoSelfHosted | None]:
    try:
        return analyze(catalog, perf, workload, filters, policy, apis, include_hosted, True), None
    except PlannerError as exc:  # no self-hosted option meets the SLOs: an API-only report
        return api_only_analysis(catalog, perf, workload, filters, policy, apis, include_hosted, exc)


def build_report_data(
    catalog: Catalog,
    perf: PerfModel,
    workload: Any,
    filters: Filters,
    policy: Any,
    apis: tuple[str, ...],
    include_hosted: bool,
    horizon_months: int,
    switching: SwitchingCosts,
    command: str,
    name: str = "capacity report",
    description: str = "",
    quality_records: list[Any] | None = None,
) -> ReportData:
    a, no_fit = _analysis(catalog, perf, workload, filters, policy, apis, include_hosted)
    v0 = workload.tokens_per_day
    volumes = np.geomspace(max(1e5, v0 / 1000), max(v0 * 1000, 1e9), 160)
    comparison = compare(a, switching, horizon_months)
    curves = _cost_curves(a, volumes)
    fleet = _fleet(a)
    classes, class_plans = _classes(catalog, perf, a)
    panels = _perf_panels(a, perf, _panel_configs(a, no_fit))
    priced = _priced_options(a, fleet, class_plans, curves, comparison)
    cheapest_of: dict[tuple[str, str, str, int], Candidate] = {}
    for p in a.plans:
        c = p.candidate
        cheapest_of.setdefault((c.model, c.quant, c.gpu, c.tp), c)
    # The curves' own configurations: section 4 shows their throughput.
    throughputs = [
        cheapest_of[k] for k in sorted((p.model, p.quant, p.gpu, p.tp) for p in panels) if k in cheapest_of
    ]
    gpus = [c.gpu for c in priced] + [p.gpu for p in panels]
    fleet_rows = []
    for rank, p, why in fleet:
        cap = p.candidate.capacity
        short = f"{cap.output_tokens_per_s.basis} {band_text(cap.band)}"  # the calibration in full: section 9
        fleet_rows.append({**plan_row(rank, p), "listed": why, "throughput_short": short})
    return ReportData(
        name=name,
        description=description,
        generated_at=dt.datetime.now(dt.UTC),
        command=command,
        analysis=a,
        breakeven=breakeven_payload(a, None),
        curves=curves,
        fleet=fleet_rows,
        perf=panels,
        vram=_vram(catalog, a, gpus),
        tornado=tornado_rows(a),
        tco=comparison,
        horizon_months=horizon_months,
        switching=switching,
        classes=classes,
        provenance=provenance(catalog, a, priced, throughputs, panels),
        quality=quality_section(catalog, workload, filters, policy, quality_records)
        if quality_records
        else None,
        no_self_hosted=no_fit,
    )


__all__ = ["CostCurve", "PerfPanel", "ReportData", "breakeven_rows", "build_report_data"]
