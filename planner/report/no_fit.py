"""When no self-hosted option meets the SLOs: the API-only analysis the report still shows, and
why nothing qualifies (which SLO, the best TTFT and TPOT any configuration achieves)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from planner.catalog.catalog import Catalog
from planner.economics.analysis import Analysis, api_alternatives
from planner.economics.capacity import candidates
from planner.economics.options import Filters, Policy
from planner.economics.workload import Workload
from planner.errors import PlannerError
from planner.perf.model import PerfModel, batch_capacities

CLOSEST_ROWS = 10


@dataclass(frozen=True)
class NoSelfHosted:
    """Why the report is API-only: the statement, and the closest configurations (one request at a time)."""

    lines: list[str]
    closest: list[dict[str, Any]]  # model, quant, gpu, tp, ttft_ms, tpot_ms (at 1 request), misses


def api_only_analysis(
    catalog: Catalog,
    perf: PerfModel,
    workload: Workload,
    filters: Filters,
    policy: Policy,
    api_names: tuple[str, ...],
    include_hosted: bool,
    failure: PlannerError,
) -> tuple[Analysis, NoSelfHosted]:
    """The analysis with no self-hosted option, when that is why `analyze` failed; else `failure` again."""
    cands, failing = candidates(catalog, perf, workload, filters, policy)
    if cands:
        raise failure  # it failed for another reason (the candidates exist)
    apis, hosted, too_long = api_alternatives(catalog, workload, filters, api_names, include_hosted)
    apis.sort(key=lambda a: a.usd_per_month)
    analysis = Analysis(
        workload, filters, policy, apis, hosted, [], failing, {}, [], catalog.digest(), too_long
    )
    return analysis, why_none(perf, workload, policy, failing)


def why_none(
    perf: PerfModel, workload: Workload, policy: Policy, failing: list[tuple[str, str, str, int, str]]
) -> NoSelfHosted:
    """Which SLO is out of reach: the lowest TTFT and TPOT of any configuration that fits, serving
    one request at a time (where both are lowest)."""
    ttft_slo, tpot_slo = workload.slo_ttft_ms, workload.slo_tpot_ms
    slos = f"TTFT <= {ttft_slo:g} ms and TPOT <= {tpot_slo:g} ms"
    configs = sorted({(m, q, g, tp) for m, q, g, tp, _ in failing})
    if not configs:
        return NoSelfHosted(
            [
                "No self-hosted option qualifies: no candidate model and format fits a sequence of "
                f"{workload.input_tokens + workload.output_tokens:,.0f} tokens, in the memory of the GPUs "
                "offered or within the model's maximum context. Try other models (--model; `planner "
                "catalog list models` shows their context), formats (--quant) or GPUs (--gpu)."
            ],
            [],
        )
    caps = batch_capacities(
        perf,
        configs,
        workload.input_tokens,
        workload.output_tokens,
        ttft_slo,
        tpot_slo,
        policy.engine,
        policy.kv_dtype,
        1.0 - workload.cached_input_share,
    )
    rows = []
    for cfg, cap in caps.items():
        if cap is None:
            continue
        misses = [
            name
            for name, v, slo in (("TTFT", cap.ttft_ms, ttft_slo), ("TPOT", cap.tpot_ms, tpot_slo))
            if v > slo
        ]
        rows.append(
            {
                "model": cfg[0],
                "quant": cfg[1],
                "gpu": cfg[2],
                "tp": cfg[3],
                "ttft_ms": cap.ttft_ms,
                "tpot_ms": cap.tpot_ms,
                "misses": " and ".join(misses) or "-",
            }
        )
    rows.sort(key=lambda r: (max(r["tpot_ms"] / tpot_slo, r["ttft_ms"] / ttft_slo), r["tpot_ms"]))
    best_tpot = min(rows, key=lambda r: r["tpot_ms"])
    best_ttft = min(rows, key=lambda r: r["ttft_ms"])

    def name(r: dict[str, Any]) -> str:
        return f"{r['model']} {r['quant']} on {r['tp']} x {r['gpu']}"

    out_of_reach = [
        label
        for label, best, slo, flag in (
            ("TPOT", best_tpot["tpot_ms"], tpot_slo, "--slo-tpot-ms"),
            ("TTFT", best_ttft["ttft_ms"], ttft_slo, "--slo-ttft-ms"),
        )
        if best > slo
    ]
    lines = [
        f"No self-hosted option meets the SLOs ({slos}): of the {len(rows)} configurations that fit in "
        "memory, none meets them even serving one request at a time.",
        f"Best achievable TPOT: {best_tpot['tpot_ms']:.1f} ms ({name(best_tpot)}); best achievable TTFT: "
        f"{best_ttft['ttft_ms']:,.0f} ms ({name(best_ttft)}) (predicted means, one request at a time).",
    ]
    if out_of_reach:
        fixes = [
            f"--slo-tpot-ms {best_tpot['tpot_ms'] * 1.05:.3g}" if "TPOT" in out_of_reach else "",
            f"--slo-ttft-ms {best_ttft['ttft_ms'] * 1.05:.3g}" if "TTFT" in out_of_reach else "",
        ]
        lines.append(
            f"The {' and the '.join(out_of_reach)} SLO {'is' if len(out_of_reach) == 1 else 'are'} out of "
            "reach of every configuration; relax it (e.g. "
            + " ".join(f for f in fixes if f)
            + ") or add faster GPUs (--gpu). The API comparison below stands on its own."
        )
    else:
        lines.append(
            "Each SLO is met by some configuration, but none meets both at once; relax one of them or "
            "add faster GPUs (--gpu). The API comparison below stands on its own."
        )
    return NoSelfHosted(lines, rows[:CLOSEST_ROWS])
