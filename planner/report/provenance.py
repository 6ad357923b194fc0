"""Provenance of what the report shows: every price (API and cloud offer) and every throughput,
collected from the options the report renders, not from a top-N of the ranking."""

from __future__ import annotations

import platform
from collections.abc import Iterable
from importlib import metadata
from typing import Any

from planner.catalog.catalog import Catalog
from planner.economics.analysis import Analysis
from planner.economics.breakeven import price_spread
from planner.economics.capacity import Candidate
from planner.report.economics import price_basis


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("selfhost-planner", "genai-prices", "numpy", "scipy", "matplotlib", "click", "pydantic"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def offer_key(c: Candidate) -> tuple[str, str, str, str]:
    return (c.provider, c.instance, c.region, c.pricing)


def spread_offers(a: Analysis, shown: Iterable[Candidate]) -> list[Candidate]:
    """The offers behind the price spreads the report quotes for each shown option (the GPU-price
    row of the tornado, the low/high break-evens): the cheapest and dearest provider per GPU-hour
    for the same GPU and pricing model."""
    by_gpu: dict[tuple[str, str], list[Candidate]] = {}
    for p in a.plans:
        c = p.candidate
        if c.provider != "owned":
            by_gpu.setdefault((c.gpu, c.pricing), []).append(c)
    out = []
    for c in {offer_key(c): c for c in shown}.values():
        same = by_gpu.get((c.gpu, c.pricing), [])
        if not same:
            continue
        cheap, dear = price_spread(c, [x.usd_per_hour / x.gpus_per_instance for x in same])
        for target in (cheap, dear):
            per_gpu = target / c.gpus_per_instance
            out.append(min(same, key=lambda x: abs(x.usd_per_hour / x.gpus_per_instance - per_gpu)))
    return out


def offer_row(c: Candidate) -> dict[str, Any]:
    published = c.usd_per_hour / (1 + c.spot_allowance) if c.provider != "owned" else None
    return {
        "provider": c.provider,
        "instance": c.instance,
        "region": c.region,
        "gpu": c.gpu,
        "gpus": c.gpus_per_instance,
        "pricing": c.pricing,
        "usd_per_hour": published,
        "usd_per_gpu_hour": c.usd_per_hour / c.gpus_per_instance,
        "price_basis": price_basis(c),
        "checked_at": c.price_checked_at.isoformat() if c.price_checked_at else None,
        "source": c.price_source,
    }


def throughput_row(c: Candidate) -> dict[str, Any]:
    cap = c.capacity
    est = cap.output_tokens_per_s
    return {
        "configuration": f"{c.model} {c.quant} on {c.tp} x {c.gpu} ({c.engine})",
        "output_tokens_per_s": est.value,
        "low": est.low,
        "high": est.high,
        "concurrency": cap.concurrency,
        "basis": est.basis,
        "calibration": cap.calibration,
        "band_pct": round(cap.band * 100, 1),
        "records": len(est.record_ids),
    }


def provenance(
    catalog: Catalog, a: Analysis, priced: list[Candidate], throughputs: list[Candidate], curves: list[Any]
) -> dict[str, Any]:
    """`priced`: every self-hosted option whose price (and so throughput) the report shows;
    `throughputs`: options whose throughput alone it shows; `curves`: the performance section's
    panels (a curve per configuration, listed here when no option stands for it)."""
    offers: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for c in [*priced, *spread_offers(a, priced)]:
        offers.setdefault(offer_key(c), offer_row(c))
    configs: dict[tuple[str, str, str, str, int], dict[str, Any]] = {}
    for c in [*priced, *throughputs]:
        configs.setdefault((c.model, c.quant, c.engine, c.gpu, c.tp), throughput_row(c))
    engine = a.policy.engine
    for p in curves:  # a configuration shown only as a curve (section 4)
        configs.setdefault(
            (p.model, p.quant, engine, p.gpu, p.tp),
            {
                "configuration": f"{p.model} {p.quant} on {p.tp} x {p.gpu} ({engine})",
                "basis": p.basis.split(":")[0],
                "calibration": p.basis.partition(": ")[2],
                "band_pct": round(p.band * 100, 1),
                "records": p.records,
            },
        )
    apis = [
        {
            "api": f"{x.price.provider}/{x.price.model}",
            "pinned_version": x.price.pinned_version,
            "input_usd_per_mtok": x.price.input_usd_per_mtok,
            "cached_input_usd_per_mtok": x.price.cached_input_usd_per_mtok,
            "output_usd_per_mtok": x.price.output_usd_per_mtok,
            "price_date": x.price.price_date,
            "checked_at": x.price.checked_at,
            "source": x.price.source,
        }
        for x in a.all_apis
    ]
    return {
        "catalog_digest": a.catalog_digest,
        "catalog_files": [str(f) for f in catalog.files()],
        "api_prices": apis,
        "offers": sorted(offers.values(), key=lambda r: (r["gpu"], r["pricing"], r["usd_per_gpu_hour"])),
        "throughput": sorted(configs.values(), key=lambda r: r["configuration"]),
        "versions": _versions(),
    }
