"""Prices of evaluated models: a spec (`auto`, `PROVIDER/MODEL`, `IN/OUT`, `self-hosted:MODEL[:QUANT]`,
`none`) -> hosting, catalog model, quant and a PriceRef's fields. Shared by gpu-bench eval (cost
per case) and planner route (`--price MODEL=SPEC` overrides).

- `auto`: a model name that is a catalog model id is self-hosted (planner route sizes its
  fleet); a name the API catalog knows (`gpt-4o-mini`, a dated version) is priced from it;
  anything else is unpriced.
- `PROVIDER/MODEL` or an API model name: that API catalog row.
- `self-hosted:CATALOG_MODEL[:QUANT]`: a self-hosted open model (QUANT default bf16).
- `IN/OUT`: given prices in USD per million input and output tokens, e.g. `0.15/0.60`.
- `none`: no price.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from planner.errors import PlannerError

_GIVEN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)\s*$")


def resolve_price(catalog: Any, model: str, spec: str) -> tuple[str, str | None, str | None, dict[str, Any]]:
    """-> (hosting, catalog model, quant, PriceRef fields)."""
    from planner.errors import UnknownIdError
    from planner.vocab import QUANT_FORMATS

    spec = spec.strip()
    if spec == "none":
        return "unknown", None, None, {"basis": "none"}
    if m := _GIVEN.match(spec):
        return (
            "api",
            None,
            None,
            {
                "basis": "given",
                "input_usd_per_mtok": float(m.group(1)),
                "output_usd_per_mtok": float(m.group(2)),
                "source": "--price",
            },
        )
    if spec.startswith("self-hosted"):
        _, _, rest = spec.partition(":")
        catalog_id, _, quant = rest.partition(":")
        catalog_id = catalog_id or model
        quant = quant or "bf16"
        catalog.model(catalog_id)  # unknown id: a clear error with close matches
        if quant not in QUANT_FORMATS:
            raise UnknownIdError("quantization format", quant, QUANT_FORMATS)
        return "self-hosted", catalog_id, quant, {"basis": "self-hosted"}
    if spec == "auto":
        if model in catalog.models:
            return "self-hosted", model, "bf16", {"basis": "self-hosted"}
        try:
            row = catalog.api_price(model)
        except UnknownIdError:
            return "unknown", None, None, {"basis": "none"}
        return "api", row.open_model, None, _api_ref(row)
    try:
        row = catalog.api_price(spec)
    except UnknownIdError as exc:
        raise PlannerError(
            f"--price {spec!r}: {exc} (or give auto, IN/OUT in $ per 1M tokens, self-hosted:MODEL, none)"
        ) from None
    return "api", row.open_model, None, _api_ref(row)


def _api_ref(row: Any) -> dict[str, Any]:
    return {
        "basis": "catalog",
        "api": f"{row.provider}/{row.model}",
        "input_usd_per_mtok": row.input_usd_per_mtok,
        "output_usd_per_mtok": row.output_usd_per_mtok,
        "checked_at": row.checked_at,
        "source": row.source,
    }


def tier_pricer(catalog: Any, workload: Any, filters: Any, policy: Any, tiers: dict[str, dict[str, Any]]):
    """(model, tokens/day) -> ($/month, how), for API tiers (catalog or given prices) and
    self-hosted tiers (the cheapest fleet for that volume within the SLOs)."""
    from types import SimpleNamespace

    from planner.economics.capacity import candidates, cheapest_per_offer
    from planner.economics.cost import api_cost, api_price_basis
    from planner.perf.model import PerfModel

    perf: list[Any] = []
    fleets: dict[tuple[str, str], list[Any]] = {}

    def price(model: str, tokens_per_day: float) -> tuple[float, str]:
        t = tiers[model]
        w = workload.at_volume(tokens_per_day)
        basis = t["price"].get("basis")
        if basis == "catalog":
            row = catalog.api_price(t["price"]["api"])
            return (
                api_cost(row, w).usd_per_month,
                f"API {row.provider}/{row.model} ({api_price_basis(row)}, "
                f"price date {row.price_date or 'not stated'})",
            )
        if basis == "given":
            p = t["price"]
            row = SimpleNamespace(
                input_usd_per_mtok=p["input_usd_per_mtok"],
                output_usd_per_mtok=p["output_usd_per_mtok"],
                cached_input_usd_per_mtok=None,
                long_context_threshold_tokens=None,
                long_context_input_usd_per_mtok=None,
                long_context_output_usd_per_mtok=None,
                batch_discount=None,
            )
            return api_cost(row, w).usd_per_month, (  # type: ignore[arg-type]
                f"API at given ${p['input_usd_per_mtok']:g}/${p['output_usd_per_mtok']:g} per 1M"
            )
        if basis == "self-hosted" and t["catalog_model"]:
            key = (t["catalog_model"], t["quant"] or "bf16")
            if key not in fleets:
                if not perf:
                    perf.append(PerfModel(catalog))
                f = replace(filters, models=(key[0],), quants=(key[1],))
                cands, failing = candidates(catalog, perf[0], workload, f, policy)
                if not cands:
                    why = "; ".join(f"{g} TP{tp}: {r}" for _, _, g, tp, r in failing[:3]) or "nothing fits"
                    raise PlannerError(
                        f"self-hosted {key[0]} {key[1]} cannot meet the SLOs on the GPUs allowed ({why}); "
                        "relax --slo-ttft-ms/--slo-tpot-ms or allow other --gpu"
                    )
                fleets[key] = cands
            best = cheapest_per_offer(fleets[key], w, policy)[0]
            c = best.candidate
            how = (
                f"self-hosted {c.model} {c.quant}: {best.gpus:g} x {c.gpu} on {c.provider} {c.instance} "
                f"({c.pricing.replace('_', '-')}), ops ${best.ops_usd_per_month:,.0f}"
            )
            return best.usd_per_month, how
        raise PlannerError(
            f"{model} has no price: give --price {model}=IN/OUT ($ per 1M tokens), "
            f"--price {model}=PROVIDER/MODEL or --price {model}=self-hosted:CATALOG_MODEL[:QUANT]"
        )

    return price
