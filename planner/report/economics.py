"""Presenting a break-even analysis: the verdict first, then the ranked options, then assumptions.

Every number says what it rests on: prices are published (with their date and source),
throughputs are measured or estimated (calibrated on published records, with an error band).
"""

from __future__ import annotations

from typing import Any

from planner.economics.analysis import Analysis, headline
from planner.economics.breakeven import BreakEven, Crossing
from planner.economics.capacity import DEFAULT_OPS_USD_PER_MONTH, Candidate, CapacityPlan
from planner.economics.cost import ApiCost, api_price_basis
from planner.economics.crossing import MAX_VOLUME
from planner.perf.capacity import MEASURED_BAND
from planner.perf.estimate import band_text
from planner.report.render import Column, render_csv, render_markdown, render_table
from planner.units import HOURS_PER_MONTH, format_count


def usd(value: float) -> str:
    """$3,248 / $34.22 / $0.0246: whole dollars for bills, enough digits for per-token prices."""
    if abs(value) >= 100:
        return f"${value:,.0f}"
    if abs(value) >= 0.1 or value == 0:
        return f"${value:,.2f}"
    return f"${value:.3g}"


def usd_pair(a: float, b: float) -> tuple[str, str]:
    """Two per-token prices with enough digits to tell them apart ($0.121 vs $0.117, not $0.12 twice)."""
    for digits in (3, 4, 5, 6):
        pa, pb = f"${a:.{digits}g}", f"${b:.{digits}g}"
        if pa != pb or a == b:
            return pa, pb
    return pa, pb


def tokens(value: float | None) -> str:
    return "-" if value is None else format_count(value)


def throughput_basis(plan: CapacityPlan) -> str:
    cap = plan.candidate.capacity
    est = cap.output_tokens_per_s
    mine = len(cap.measured_ids)
    if est.basis == "measured":
        at = f"concurrency {cap.concurrency:g}"
        return f"measured (your serving record at {at}, {band_text(MEASURED_BAND)})"
    if est.basis == "interpolated":
        return f"interpolated between {mine} of your serving records ({band_text(MEASURED_BAND)})"
    if est.basis == "roofline":
        return f"estimated (roofline defaults, {band_text(cap.band)})"
    calibrated = len(est.record_ids) - mine
    text = f"estimated (calibrated on {calibrated} records: {cap.calibration}, {band_text(cap.band)})"
    if mine:
        text += f", held to {mine} of your serving records at the nearest measured concurrency"
    return text


def crossing_text(c: Crossing) -> str:
    if c.verdict == "never-below":
        return f"over {tokens(MAX_VOLUME)}"
    if c.verdict == "never" or c.tokens_per_day is None:
        return "never"
    return tokens(c.tokens_per_day)


def estimate_label(c: Candidate) -> str:
    """Break-evens rest on the replica's throughput: measured, or estimated by the model."""
    basis = c.capacity.output_tokens_per_s.basis
    return "from measured throughput" if basis in ("measured", "interpolated") else "estimated"


def breakeven_text(be: BreakEven) -> str:
    """'28M tokens/day (estimated; low 21M, high 39M)', 'never below 10T ...' or 'never: ...'."""
    band = f"low {crossing_text(be.low)}, high {crossing_text(be.high)}"
    if be.likely.verdict == "never":
        fleet, api = usd_pair(be.self_usd_per_mtok_at_scale, be.api.usd_per_mtok)
        text = f"never: at any volume the fleet costs at least {fleet}/1M vs the API's {api}/1M"
        if be.low.verdict != "never" or be.high.verdict != "never":
            text += f" (likely; {band})"
        return text
    if be.likely.verdict == "never-below":
        return f"never below {tokens(MAX_VOLUME)} tokens/day ({band}; the search stops there)"
    text = f"{tokens(be.likely.tokens_per_day)} tokens/day ({estimate_label(be.candidate)}; {band})"
    if be.likely.verdict == "within-smallest-fleet":
        text += ", within the smallest fleet"
    elif be.likely.first_tokens_per_day and be.likely.first_tokens_per_day < 0.95 * (
        be.likely.tokens_per_day or 0
    ):
        text += f"; first cheaper at {tokens(be.likely.first_tokens_per_day)} but not for good (cost steps)"
    return text


def plan_row(rank: int, p: CapacityPlan) -> dict[str, Any]:
    c = p.candidate
    return {
        "rank": rank,
        "kind": "self-hosted",
        "option": c.label,
        "model": c.model,
        "quant": c.quant,
        "engine": c.engine,
        "gpu": c.gpu,
        "provider": c.provider,
        "instance": c.instance,
        "region": c.region,
        "pricing": c.pricing,
        "provisioning": c.provisioning,
        "tp": c.tp,
        "gpus": p.gpus,
        "replicas": p.replicas,
        "instances": p.instances,
        "usd_per_month": p.usd_per_month,
        "gpu_usd_per_month": p.gpu_usd_per_month,
        "ops_usd_per_month": p.ops_usd_per_month,
        "usd_per_mtok": p.usd_per_mtok,
        "utilization": p.utilization,
        "headroom": p.headroom,
        "instance_usd_per_hour": c.usd_per_hour,
        "published_usd_per_hour": c.usd_per_hour / (1 + c.spot_allowance) if c.provider != "owned" else None,
        "price_basis": price_basis(c),
        "price_checked_at": c.price_checked_at.isoformat() if c.price_checked_at else None,
        "price_source": c.price_source,
        "replica_output_tokens_per_s": c.capacity.output_tokens_per_s.value,
        "replica_output_tokens_per_s_low": c.capacity.output_tokens_per_s.low,
        "replica_output_tokens_per_s_high": c.capacity.output_tokens_per_s.high,
        "throughput_basis": throughput_basis(p),
        "replica_concurrency": c.capacity.concurrency,
        "ttft_ms": c.capacity.ttft_ms,
        "tpot_ms": c.capacity.tpot_ms,
        "limited_by": c.capacity.limited_by,
    }


def price_basis(c: Candidate) -> str:
    if c.provider == "owned":
        return "owned (your inputs)"
    if c.spot_allowance:
        return f"published + {c.spot_allowance:.0%} interruption allowance"
    return "published"


def api_row(rank: int, a: ApiCost) -> dict[str, Any]:
    p = a.price
    return {
        "rank": rank,
        "kind": "api",
        "option": f"{p.provider}/{p.model}",
        "model": p.model,
        "provider": p.provider,
        "pinned_version": p.pinned_version,
        "open_model": p.open_model,
        "gpus": None,
        "usd_per_month": a.usd_per_month,
        "usd_per_mtok": a.usd_per_mtok,
        "input_usd_per_mtok": a.applied_input_usd_per_mtok,  # as billed: a long-context tier's if it applies
        "cached_input_usd_per_mtok": a.applied_cached_input_usd_per_mtok
        if p.cached_input_usd_per_mtok is not None
        else None,
        "output_usd_per_mtok": a.applied_output_usd_per_mtok,
        "batch_savings_usd_per_month": a.batch_savings_usd_per_month,
        "long_context_tier": a.long_context,
        "price_basis": api_price_basis(p),
        "price_date": p.price_date.isoformat() if p.price_date else None,
        "price_checked_at": p.checked_at.isoformat(),
        "price_source": p.source,
    }


def ranked_rows(a: Analysis, top: int | None) -> list[dict[str, Any]]:
    """APIs and self-hosted options in one ranking by monthly cost."""
    entries: list[tuple[float, Any]] = [(x.usd_per_month, x) for x in a.all_apis]
    plans = a.plans if top is None else a.plans[:top]
    entries += [(p.usd_per_month, p) for p in plans]
    entries.sort(key=lambda e: e[0])
    rows = []
    for i, (_, item) in enumerate(entries, start=1):
        rows.append(api_row(i, item) if isinstance(item, ApiCost) else plan_row(i, item))
    return rows


RANK_COLUMNS = [
    Column("rank", "#"),
    Column("option", "option"),
    Column("gpus", "GPUs", "g"),
    Column("usd_per_month", "$/month", usd),
    Column("gpu_usd_per_month", "GPU $/mo", usd),
    Column("ops_usd_per_month", "ops $/mo", usd),
    Column("usd_per_mtok", "$/1M tok", lambda v: f"{v:,.3f}" if v < 10 else f"{v:,.1f}"),
    Column("utilization", "util", lambda v: f"{v:.0%}" if v >= 0.01 else f"{v:.1%}"),
    Column("price_basis", "price"),
    Column("throughput_basis", "throughput"),
]
FLEET_COLUMNS = [  # plan_row fields: `planner capacity` and the report's fleet table
    Column("rank", "#"),
    Column("option", "option"),
    Column("tp", "TP"),
    Column("gpus", "GPUs", "g"),
    Column("replicas", "replicas", "g"),
    Column("utilization", "utilization", ".1%"),
    Column("headroom", "headroom", ".0%"),
    Column("usd_per_month", "$/month", usd),
    Column("gpu_usd_per_month", "GPU $/month", usd),
    Column("ops_usd_per_month", "ops $/month", usd),
    Column("usd_per_mtok", "$/1M tokens", ",.3f"),
    Column("replica_output_tokens_per_s", "out tok/s/replica", ",.0f"),
    Column("throughput_basis", "throughput basis"),
]

BREAKEVEN_COLUMNS = [
    Column("api", "API"),
    Column("api_usd_per_mtok", "API $/1M", lambda v: f"{v:,.3f}"),
    Column("self_usd_per_mtok_at_volume", "self $/1M now", lambda v: f"{v:,.3f}" if v < 10 else f"{v:,.1f}"),
    Column("utilization", "util now", lambda v: f"{v:.0%}" if v >= 0.01 else f"{v:.1%}"),
    Column("breakeven", "self-hosting stays cheaper from"),
    Column("option", "with"),
]


def breakeven_rows(a: Analysis) -> list[dict[str, Any]]:
    rows = []
    for api in a.all_apis:
        label = f"{api.price.provider}/{api.price.model}"
        be = a.best_breakeven.get(label)
        if be is None:
            continue
        plan = be.plan
        rows.append(
            {
                "api": label,
                "api_usd_per_mtok": api.usd_per_mtok,
                "api_usd_per_month": api.usd_per_month,
                "self_usd_per_mtok_at_volume": plan.usd_per_mtok if plan else None,
                "self_usd_per_month_at_volume": plan.usd_per_month if plan else None,
                "utilization": plan.utilization if plan else None,
                "breakeven": breakeven_text(be),
                "verdict": be.likely.verdict,
                "basis": estimate_label(be.candidate),
                "tokens_per_day": be.likely.tokens_per_day,
                "tokens_per_day_low": be.low.tokens_per_day,
                "tokens_per_day_high": be.high.tokens_per_day,
                "verdict_low": be.low.verdict,
                "verdict_high": be.high.verdict,
                "never_below_tokens_per_day": MAX_VOLUME if be.likely.verdict == "never-below" else None,
                "first_cheaper_tokens_per_day": be.likely.first_tokens_per_day,
                "self_usd_per_mtok_at_scale": be.self_usd_per_mtok_at_scale,
                "option": be.candidate.label,
                "option_low": be.low_candidate.label if be.low_candidate else None,
                "option_high": be.high_candidate.label if be.high_candidate else None,
                "same_model": api.price.open_model == be.candidate.model,
            }
        )
    return rows


def verdict_lines(a: Analysis) -> list[str]:
    w = a.workload
    lines = [
        f"At {tokens(w.tokens_per_day)} tokens/day ({w.input_tokens:,.0f} in / "
        f"{w.output_tokens:,.0f} out per "
        f"request, {w.requests_per_day:,.0f} requests/day, busiest hour {w.peak_to_mean:.1f}x the mean):"
    ]
    api, plan = a.cheapest_api, a.cheapest_plan
    if api is not None:
        lines.append(
            f"  cheapest API: {api.price.provider}/{api.price.model} at {usd(api.usd_per_month)}/month "
            f"({usd(api.usd_per_mtok)} per 1M tokens; {api_price_basis(api.price)} price)"
        )
    if plan is not None:
        c = plan.candidate
        lines.append(
            f"  cheapest self-hosted: {c.model} {c.quant} on {plan.gpus:g} x {c.gpu} "
            f"({c.provider} {c.instance}, {c.pricing.replace('_', '-')}) at {usd(plan.usd_per_month)}/month "
            f"= {usd(plan.gpu_usd_per_month)} GPUs + "
            f"{usd(plan.ops_usd_per_month)} ops; the fleet is {plan.utilization:.1%} utilized"
        )
    if a.self_hosting_wins:
        lines.append("  => self-hosting is cheaper at this volume.")
    else:
        lines.append("  => the API is cheaper at this volume.")
    be = headline(a)
    if be is not None:
        lines.append(f"  self-hosting vs {be.api_label}: {breakeven_text(be)} ({be.candidate.label})")
        if be.api.price.open_model != be.candidate.model:
            lines.append(
                f"  Quality is not compared: {be.candidate.model} self-hosted is not the same model as "
                f"{be.api_label}. Measure both on your own cases before switching."
            )
    return lines


def provisioning_line(a: Analysis) -> str:
    """How each kind of option in the ranking runs: the line is true per option, not for the default."""
    kinds: dict[str, set[str]] = {}
    for p in a.plans:
        kinds.setdefault(p.candidate.pricing.replace("_", "-"), set()).add(p.candidate.provisioning)
    words = {"always-on": "always on (sized for the busiest hour)", "autoscaled": "autoscaled by the hour"}
    parts = [f"{k} {' and '.join(words[m] for m in sorted(v))}" for k, v in sorted(kinds.items())]
    return "provisioning: " + ("; ".join(parts) or "none (no self-hosted option meets the SLOs)")


def owned_lines(a: Analysis) -> list[str]:
    return [
        f"owned {gpu}: ${t.usd_per_gpu:,.0f} per GPU over {t.amortize_months} months; power at "
        f"{t.power_share_of_tdp:.0%} of TDP on average x PUE {t.pue:g} x ${t.usd_per_kwh:g}/kWh; "
        f"hosting ${t.hosting_usd_per_gpu_month:,.0f} per GPU-month"
        for gpu, t in sorted(a.policy.owned.items())
    ]


def calibration_summary(labels: list[str]) -> str:
    """The calibrations in use, once each: 'any / any / any (no records on a10)' for ten GPUs is one
    group naming the ten, and formats adjusted from the fitted ones are named once."""
    groups: dict[str, list[str]] = {}
    adjusted: set[str] = set()
    for label in labels:
        base, sep, fmt = label.partition(" (adjusted for ")
        if sep:
            adjusted.add(fmt.rstrip(")"))
        group, sep, gpu = base.partition(" (no records on ")
        groups.setdefault(group, [])
        if sep:
            groups[group].append(gpu.rstrip(")"))
    parts = [
        g + (f" (used for {', '.join(sorted(set(gpus)))}: no records of their own)" if gpus else "")
        for g, gpus in sorted(groups.items())
    ]
    if adjusted:
        parts.append(f"{', '.join(sorted(adjusted))} adjusted from the formats fitted")
    return "; ".join(parts)


def assumption_lines(a: Analysis) -> list[str]:
    w, pol, f = a.workload, a.policy, a.filters
    ops_note = (
        " (default: 0.2 of an infra engineer at $180k/year loaded)"
        if (pol.ops_usd_per_month == DEFAULT_OPS_USD_PER_MONTH)
        else ""
    )
    offer_dates = sorted({p.candidate.price_checked_at for p in a.plans if p.candidate.price_checked_at})
    api_dates = sorted({x.price.price_date for x in a.all_apis if x.price.price_date})
    estimated = sorted({p.candidate.capacity.calibration for p in a.plans})
    spot = any(p.candidate.spot_allowance for p in a.plans)
    lines = [
        f"SLOs: TTFT <= {w.slo_ttft_ms:g} ms and TPOT <= {w.slo_tpot_ms:g} ms "
        "(predicted means per replica at "
        f"the chosen concurrency); engine {pol.engine}, KV cache {pol.kv_dtype}",
        f"fleet: replicas for the load at {pol.target_utilization:.0%} of SLO capacity, at least "
        f"{pol.min_replicas} replica(s); a month is {HOURS_PER_MONTH:g} hours",
        provisioning_line(a),
        *(
            [
                f"spot: published prices + {pol.spot_allowance:.0%} interruption allowance (instances "
                "re-started after interruptions; --spot-interruption-allowance)"
            ]
            if spot
            else []
        ),
        *owned_lines(a),
        f"operations: {usd(pol.ops_usd_per_month)}/month per self-hosted fleet{ops_note}, "
        "its own line in every cost",
        f"traffic: cached input share {w.cached_input_share:.0%} (prompt cache for APIs, prefix cache for "
        f"self-hosting), batch share {w.batch_share:.0%}",
        f"candidates: models {', '.join(f.models)}; quants {', '.join(f.quants)}; "
        f"pricing {', '.join(f.pricing)}; "
        f"{len(a.plans)} options meet the SLOs, {len({x[:4] for x in a.failing})} configurations cannot",
        "prices (published): API prices from "
        + ", ".join(sorted({x.price.source for x in a.all_apis}))
        + (f", price dates {api_dates[0]} to {api_dates[-1]}" if api_dates else "")
        + (f"; cloud offers checked {offer_dates[0]} to {offer_dates[-1]}" if offer_dates else ""),
        "throughput (estimated): roofline calibrated on " + calibration_summary(estimated)
        if estimated
        else "throughput: no self-hosted option meets the SLOs",
        f"break-even (estimated: it rests on the throughput estimates): per API the soonest over all "
        f"{len(a.plans)} options; low/high: throughput at the top/bottom of its error band and the "
        "cheapest/dearest provider's price for the same GPU; cost curves are steps, so the last crossing "
        f"is reported; volumes searched up to {tokens(MAX_VOLUME)} tokens/day",
        *(
            [
                f"left out: {', '.join(a.too_long)} (a request of {w.input_tokens + w.output_tokens:,.0f} "
                "tokens exceeds their context limit)"
            ]
            if a.too_long
            else []
        ),
        f"catalog digest {a.catalog_digest}",
    ]
    return lines


def csv_rows(be_rows: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One table for spreadsheets: `section` says what a row is, breakeven (one per API: the
    break-even volumes) or option (the ranked options at the volume); a column a section does
    not use is empty."""
    return [{"section": "breakeven", **r} for r in be_rows] + [{"section": "option", **r} for r in rows]


def render_breakeven(a: Analysis, fmt: str, top: int | None, explain: bool) -> str:
    rows = ranked_rows(a, top)
    be_rows = breakeven_rows(a)
    if fmt == "csv":
        return render_csv(csv_rows(be_rows, rows))
    if fmt == "markdown":
        out = ["## Verdict", "", *[line.strip() for line in verdict_lines(a)], "", "## Break-even", ""]
        out += [render_markdown(be_rows, BREAKEVEN_COLUMNS), "", "## Options by monthly cost", ""]
        out += [render_markdown(rows, RANK_COLUMNS), "", "## Assumptions", ""]
        out += [f"- {line}" for line in assumption_lines(a)]
        if explain:
            out += ["", "## What moves the break-even", "", tornado_subject(a), ""]
            out += [render_markdown(tornado_rows(a), TORNADO_COLUMNS)]
        return "\n".join(out)
    shown = len([r for r in rows if r["kind"] == "self-hosted"])
    out = [*verdict_lines(a), "", "Break-even (the self-hosted option that pays soonest against each API):"]
    out += [render_table(be_rows, BREAKEVEN_COLUMNS) if be_rows else "  none: no self-hosted option", ""]
    out += [
        f"Options at {tokens(a.workload.tokens_per_day)} tokens/day, cheapest first "
        f"({shown} of {len(a.plans)} self-hosted options; --top N or --all for more):"
    ]
    out += [render_table(rows, RANK_COLUMNS), "", "Assumptions:"]
    out += [f"  - {line}" for line in assumption_lines(a)]
    if explain:
        out += [
            "",
            "What moves the break-even most (one input at a time): " + tornado_subject(a),
            render_table(tornado_rows(a), TORNADO_COLUMNS),
        ]
    return "\n".join(out)


TORNADO_COLUMNS = [  # favourable: the setting from which self-hosting pays sooner (sensitivity.py)
    Column("factor", "input"),
    Column("low_setting", "favourable"),
    Column("tokens_per_day_low", "break-even (favourable)", tokens, missing="never"),
    Column("high_setting", "unfavourable"),
    Column("tokens_per_day_high", "break-even (unfavourable)", tokens, missing="never"),
]


def tornado_pair(a: Analysis) -> dict[str, str] | None:
    """The break-even the sensitivity is computed for: the headline API and its option."""
    be = headline(a)
    return None if be is None else {"api": be.api_label, "option": be.candidate.label}


def tornado_subject(a: Analysis) -> str:
    pair = tornado_pair(a)
    return "-" if pair is None else f"self-hosting {pair['option']} vs {pair['api']}"


def tornado_rows(a: Analysis) -> list[dict[str, Any]]:
    return [
        {
            "factor": s.factor,
            "low_setting": s.low_setting,
            "tokens_per_day_low": s.tokens_per_day_low,
            "high_setting": s.high_setting,
            "tokens_per_day_high": s.tokens_per_day_high,
        }
        for s in a.tornado
    ]


def workload_payload(w: Any) -> dict[str, Any]:
    """The workload as numbers (never the strings typed on the command line)."""
    return {
        "tokens_per_day": w.tokens_per_day,
        "requests_per_day": w.requests_per_day,
        "input_tokens": w.input_tokens,
        "output_tokens": w.output_tokens,
        "cached_input_share": w.cached_input_share,
        "batch_share": w.batch_share,
        "peak_to_mean": w.peak_to_mean,
        "hourly_weights": list(w.hourly_weights),
        "slo_ttft_ms": w.slo_ttft_ms,
        "slo_tpot_ms": w.slo_tpot_ms,
    }


def breakeven_payload(a: Analysis, top: int | None) -> dict[str, Any]:
    """Everything the table shows, as data (planner breakeven --format json)."""
    w = a.workload
    be = headline(a)
    return {
        "workload": workload_payload(w),
        "verdict": {
            "cheaper": "self-hosted" if a.self_hosting_wins else "api",
            "cheapest_api": api_row(0, a.cheapest_api) if a.cheapest_api else None,
            "cheapest_self_hosted": plan_row(0, a.cheapest_plan) if a.cheapest_plan else None,
            "headline_breakeven": next(
                (r for r in breakeven_rows(a) if be and r["api"] == be.api_label), None
            ),
            "text": [line.strip() for line in verdict_lines(a)],
        },
        "breakeven": breakeven_rows(a),
        "options": ranked_rows(a, top),
        "cannot_meet_slo": [
            {"model": m, "quant": q, "gpu": g, "tp": tp, "limited_by": why} for m, q, g, tp, why in a.failing
        ],
        "sensitivity": tornado_rows(a),
        "sensitivity_of": tornado_pair(a),
        "assumptions": assumption_lines(a),
        "policy": {
            "engine": a.policy.engine,
            "target_utilization": a.policy.target_utilization,
            "min_replicas": a.policy.min_replicas,
            "ops_usd_per_month": a.policy.ops_usd_per_month,
            "autoscale": a.policy.autoscale,
            "spot_interruption_allowance": a.policy.spot_allowance,
            "owned": {gpu: vars(t) for gpu, t in sorted(a.policy.owned.items())},
        },
        "catalog_digest": a.catalog_digest,
    }
