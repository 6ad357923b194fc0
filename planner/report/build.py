"""What a capacity report shows, computed once: the break-even analysis and everything around it
(cost curves, fleets, performance curves, memory fit, sensitivity, TCO, the seed's criterion
table, provenance). Rendering (plots, HTML, Markdown) reads this and computes nothing."""

from __future__ import annotations

import datetime as dt
import platform
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import Any

import numpy as np

from planner.catalog.catalog import Catalog
from planner.economics.analysis import Analysis, analyze, headline
from planner.economics.capacity import plan
from planner.economics.options import Filters
from planner.economics.tco import SwitchingCosts, TcoSeries, compare
from planner.perf.memory import smallest_fit
from planner.perf.model import PerfModel
from planner.perf.params import param_counts
from planner.report.economics import breakeven_payload, breakeven_rows, plan_row, tornado_rows
from planner.report.quality import quality_section

CLASSES = (("small (up to 8B)", 0, 8.5e9), ("mid (8B-70B)", 8.5e9, 65e9), ("large (70B and up)", 65e9, 1e15))


@dataclass
class CostCurve:
    label: str
    kind: str  # api | self-hosted
    volumes: np.ndarray
    usd_per_month: np.ndarray


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
    measured: list[tuple[float, float, str]] = field(default_factory=list)  # (concurrency, tok/s, record id)


@dataclass
class ReportData:
    name: str
    description: str
    generated_at: dt.datetime
    command: str
    analysis: Analysis
    breakeven: dict[str, Any]  # exactly `planner breakeven --format json`
    curves: list[CostCurve]
    fleet: list[dict[str, Any]]
    perf: list[PerfPanel]
    vram: list[dict[str, Any]]
    tornado: list[dict[str, Any]]
    tco: list[TcoSeries]
    payback_month: int | None
    horizon_months: int
    switching: SwitchingCosts
    classes: list[dict[str, Any]]
    provenance: dict[str, Any]
    quality: dict[str, Any] | None = None  # gpu-bench eval records: quality next to cost

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


def _cost_curves(a: Analysis, volumes: np.ndarray, n_self: int = 4) -> list[CostCurve]:
    curves = [
        CostCurve(f"{x.price.provider}/{x.price.model}", "api", volumes, volumes * x.usd_per_token * 365 / 12)
        for x in a.all_apis
    ]
    chosen, gpus = [], set()
    for p in a.plans:  # the cheapest option on each of a few GPUs: small and big fleets both show
        if p.candidate.gpu not in gpus:
            chosen.append(p)
            gpus.add(p.candidate.gpu)
        if len(chosen) == n_self:
            break
    for p in chosen:
        c = p.candidate
        costs = np.array([plan(c, a.workload.at_volume(float(v)), a.policy).usd_per_month for v in volumes])
        curves.append(
            CostCurve(f"{c.model} {c.quant} on {c.gpu} ({c.provider})", "self-hosted", volumes, costs)
        )
    return curves


def _perf_panels(a: Analysis, perf: PerfModel, n: int = 4) -> list[PerfPanel]:
    be = headline(a)
    lead = be.candidate if be else a.plans[0].candidate
    panels, gpus = [], []
    for p in a.plans:
        if (
            p.candidate.model == lead.model
            and p.candidate.quant == lead.quant
            and p.candidate.gpu not in gpus
        ):
            gpus.append(p.candidate.gpu)
            panels.append((p.candidate.gpu, p.candidate.tp))
        if len(panels) == n:
            break
    w = a.workload
    grid = np.unique(np.round(np.geomspace(1, 512, 40)))
    out = []
    for gpu, tp in panels:
        curve = perf.serving_curve(
            lead.model,
            lead.quant,
            gpu,
            w.input_tokens,
            w.output_tokens,
            grid,
            a.policy.engine,
            tp,
            a.policy.kv_dtype,
            prefill_fraction=1.0 - w.cached_input_share,  # as the capacities the plan rests on
        )
        measured = [
            (float(r.concurrency), float(r.output_tokens_per_s), r.id)
            for r in perf.gpu_records()
            if r.gpu == gpu
            and r.model == lead.model
            and r.mode == "serving"
            and r.concurrency
            and r.output_tokens_per_s
        ]
        basis = "calibrated" if curve.record_ids else "roofline"
        out.append(
            PerfPanel(
                gpu,
                lead.model,
                lead.quant,
                curve.tp,
                curve.concurrency,
                curve.output_tokens_per_s,
                curve.band,
                curve.ttft_ms,
                curve.tpot_ms,
                f"{basis}: {curve.calibration}",
                measured,
            )
        )
    return out


def _vram(catalog: Catalog, a: Analysis) -> list[dict[str, Any]]:
    w = a.workload
    context = int(w.input_tokens + w.output_tokens)
    gpus = sorted({p.candidate.gpu for p in a.plans[:40]}) or sorted(catalog.gpus)[:4]
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


def _classes(catalog: Catalog, perf: PerfModel, a: Analysis) -> list[dict[str, Any]]:
    """The seed's criterion table, recomputed: per model size class, the cheapest self-hosted option."""
    rows = []
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
        rows.append(
            {
                **row,
                "cheapest": f"{c.model} {c.quant} on {p.gpus:g} x {c.gpu}",
                "usd_per_mtok": p.usd_per_mtok,
                "usd_per_month": p.usd_per_month,
                "ttft_ms": c.capacity.ttft_ms,
                "tpot_ms": c.capacity.tpot_ms,
                "gpus": p.gpus,
                "context_tokens": catalog.model(c.model).architecture.max_context_tokens,
                "throughput_basis": c.capacity.output_tokens_per_s.basis,
            }
        )
    return rows


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("selfhost-planner", "genai-prices", "numpy", "scipy", "matplotlib", "click", "pydantic"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _provenance(catalog: Catalog, a: Analysis) -> dict[str, Any]:
    offers = {}
    for p in a.plans[:30]:
        c = p.candidate
        offers[(c.provider, c.instance, c.pricing)] = {
            "provider": c.provider,
            "instance": c.instance,
            "gpu": c.gpu,
            "pricing": c.pricing,
            "usd_per_hour": c.usd_per_hour,
            "checked_at": c.price_checked_at.isoformat() if c.price_checked_at else None,
            "source": c.price_source,
        }
    apis = [
        {
            "api": f"{x.price.provider}/{x.price.model}",
            "input_usd_per_mtok": x.price.input_usd_per_mtok,
            "output_usd_per_mtok": x.price.output_usd_per_mtok,
            "price_date": x.price.price_date,
            "checked_at": x.price.checked_at,
            "source": x.price.source,
        }
        for x in a.all_apis
    ]
    throughput = [
        {
            "option": p.candidate.label,
            "basis": p.candidate.capacity.output_tokens_per_s.basis,
            "calibration": p.candidate.capacity.calibration,
            "band_pct": round(p.candidate.capacity.band * 100, 1),
            "records": len(p.candidate.capacity.output_tokens_per_s.record_ids),
        }
        for p in a.plans[:15]
    ]
    return {
        "catalog_digest": a.catalog_digest,
        "catalog_files": [str(f) for f in catalog.files()],
        "api_prices": apis,
        "offers": list(offers.values()),
        "throughput": throughput,
        "versions": _versions(),
    }


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
    a = analyze(catalog, perf, workload, filters, policy, apis, include_hosted, with_sensitivity=True)
    v0 = workload.tokens_per_day
    volumes = np.geomspace(max(1e5, v0 / 1000), max(v0 * 1000, 1e9), 160)
    comparison = compare(a, switching, horizon_months)
    return ReportData(
        name=name,
        description=description,
        generated_at=dt.datetime.now(dt.UTC),
        command=command,
        analysis=a,
        breakeven=breakeven_payload(a, None),
        curves=_cost_curves(a, volumes),
        fleet=[plan_row(i, p) for i, p in enumerate(a.plans[:15], start=1)],
        perf=_perf_panels(a, perf),
        vram=_vram(catalog, a),
        tornado=tornado_rows(a),
        tco=comparison.series,
        payback_month=comparison.payback_month,
        horizon_months=horizon_months,
        switching=switching,
        classes=_classes(catalog, perf, a),
        provenance=_provenance(catalog, a),
        quality=quality_section(catalog, workload, filters, policy, quality_records)
        if quality_records
        else None,
    )


__all__ = ["CostCurve", "PerfPanel", "ReportData", "breakeven_rows", "build_report_data"]
