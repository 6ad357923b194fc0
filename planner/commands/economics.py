"""`planner breakeven`, `capacity`, `cost`, `tco`: the economics on the command line."""

from __future__ import annotations

from typing import Any

import click

from planner.commands.common import AppContext, format_option
from planner.commands.inputs import (
    CANDIDATE_OPTIONS,
    TCO_OPTIONS,
    WORKLOAD_OPTIONS,
    Inputs,
    apply,
    with_inputs,
)
from planner.economics.options import DEFAULT_APIS
from planner.report.render import Column, render_rows, to_json


def _perf(app: AppContext):  # -> PerfModel
    from planner.perf.model import PerfModel

    return PerfModel(app.catalog)


@click.command("breakeven")
@apply(WORKLOAD_OPTIONS)
@apply(CANDIDATE_OPTIONS)
@click.option(
    "--top", type=click.IntRange(1), default=12, show_default=True, help="Self-hosted options listed."
)
@click.option("--all", "all_rows", is_flag=True, help="List every self-hosted option.")
@click.option("--explain", is_flag=True, help="Show which input moves the break-even most.")
@format_option
@click.pass_obj
@with_inputs
def breakeven_cmd(app: AppContext, inputs: Inputs, top: int, all_rows: bool, explain: bool, fmt: str) -> None:
    """Self-host or buy tokens? The verdict at your volume, the volume from which self-hosting stays
    cheaper against each API (low / likely / high, the soonest over every option), every option
    ranked, and the assumptions.

    --format csv writes one table for spreadsheets: the column `section` is `breakeven` for the
    rows of break-even figures (one per API: tokens_per_day, tokens_per_day_low/_high, verdict,
    both sides' $/1M at your volume) and `option` for the ranked options; filter on it.

    Example: planner breakeven --tokens-per-day 5M
    """
    from planner.economics.analysis import analyze
    from planner.errors import PlannerError
    from planner.report.economics import breakeven_payload, render_breakeven

    perf = _perf(app)
    args = (app.catalog, perf, inputs.workload, inputs.filters, inputs.policy, inputs.apis)
    none = None
    try:
        a = analyze(*args, inputs.include_hosted, with_sensitivity=explain or fmt == "json")
    except PlannerError as exc:  # no self-hosted option meets the SLOs: the answer is the API side
        from planner.report.no_fit import api_only_analysis

        a, none = api_only_analysis(*args, inputs.include_hosted, exc)
    limit = None if all_rows else top
    if fmt == "json":
        payload = breakeven_payload(a, limit)
        if none is not None:
            payload["no_self_hosted"] = {"why": none.lines, "closest": none.closest}
        click.echo(to_json(payload))
        return
    if none is not None and fmt == "table":
        click.echo("\n".join(none.lines) + "\n")
    click.echo(render_breakeven(a, fmt, limit, explain))


@click.command("capacity")
@apply(WORKLOAD_OPTIONS)
@apply(CANDIDATE_OPTIONS)
@click.option("--top", type=click.IntRange(1), default=20, show_default=True)
@click.option("--all", "all_rows", is_flag=True, help="List every option.")
@format_option
@click.pass_obj
@with_inputs
def capacity_cmd(app: AppContext, inputs: Inputs, top: int, all_rows: bool, fmt: str) -> None:
    """The fleet each GPU offer needs for your volume: GPUs, TP, replicas, monthly cost and headroom,
    cheapest first.

    Example: planner capacity --tokens-per-day 200M --model llama-3.1-8b-instruct
    """
    from planner.economics.capacity import candidates, cheapest_per_offer
    from planner.report.economics import FLEET_COLUMNS, plan_row

    cands, failing = candidates(app.catalog, _perf(app), inputs.workload, inputs.filters, inputs.policy)
    plans = cheapest_per_offer(cands, inputs.workload, inputs.policy)
    rows = [plan_row(i, p) for i, p in enumerate(plans if all_rows else plans[:top], start=1)]
    if fmt == "json":
        click.echo(to_json({"options": rows, "cannot_meet_slo": [list(f) for f in failing]}))
        return
    click.echo(render_rows(rows, FLEET_COLUMNS, fmt))
    if fmt == "table":
        w = inputs.workload
        click.echo(
            f"\n{len(plans)} options for {w.tokens_per_day:,.0f} tokens/day within "
            f"TTFT <= {w.slo_ttft_ms:g} ms, "
            f"TPOT <= {w.slo_tpot_ms:g} ms; headroom = SLO capacity at the busiest hour beyond its load"
        )
        if failing:
            click.echo(
                f"{len(failing)} configurations fit in memory but cannot meet the SLOs (see --format json)"
            )


COST_COLUMNS = [
    Column("option", "API"),
    Column("pinned_version", "pinned version"),
    Column("input_usd_per_mtok", "in $/1M", ",.3f"),
    Column("output_usd_per_mtok", "out $/1M", ",.3f"),
    Column("usd_per_day", "$/day", ",.2f"),
    Column("usd_per_month", "$/month", ",.2f"),
    Column("usd_per_mtok", "blended $/1M", ",.3f"),
    Column("long_context_tier", "long-ctx tier"),
    Column("price_basis", "price"),
    Column("price_date", "price date"),
]


@click.command("cost")
@apply(WORKLOAD_OPTIONS)
@click.option("--api", help=f"API models, comma-separated. [default: {','.join(DEFAULT_APIS)}]")
@format_option
@click.pass_obj
@with_inputs
def cost_cmd(app: AppContext, inputs: Inputs, fmt: str) -> None:
    """What the APIs charge for your traffic, per day and month, from the catalog's prices.

    Example: planner cost --queries-per-day 10000 --input-tokens 1500 --output-tokens 300
    --api gpt-4o,gpt-4o-mini,claude-3-haiku
    """
    from planner.economics.cost import api_cost
    from planner.report.economics import api_row
    from planner.units import DAYS_PER_MONTH

    rows = []
    for i, name in enumerate(inputs.apis, start=1):
        c = api_cost(app.catalog.api_price(name), inputs.workload)
        row = api_row(i, c)
        row["usd_per_day"] = c.usd_per_month / DAYS_PER_MONTH
        rows.append(row)
    if fmt == "json":
        from planner.report.economics import workload_payload

        click.echo(to_json({"workload": workload_payload(inputs.workload), "apis": rows}))
        return
    click.echo(render_rows(rows, COST_COLUMNS, fmt))
    if fmt == "table":
        w = inputs.workload
        click.echo(
            f"\n{w.requests_per_day:,.0f} requests/day x ({w.input_tokens:,.0f} in + "
            f"{w.output_tokens:,.0f} out) = {w.tokens_per_day:,.0f} tokens/day; a month is 365/12 days; "
            f"cached input {w.cached_input_share:.0%}, "
            f"batch {w.batch_share:.0%}; prices as published by the providers unless marked negotiated "
            "(planner catalog show api NAME)"
        )
        if any(r["long_context_tier"] for r in rows):
            click.echo(
                "long-context tier: the prompts exceed the tier's threshold, so every request pays its "
                "prices (shown)"
            )


TCO_COLUMNS = [
    Column("month", "month"),
    Column("tokens_per_day", "tokens/day", lambda v: f"{v:,.0f}"),
]


def tco_rows(series: list[Any], horizon: int) -> list[dict[str, Any]]:
    """One row a month: each option's cost that month (month 1 includes one-time switching
    costs) and its cumulative cost. Keys are option names, which may hold dots."""
    rows: list[dict[str, Any]] = []
    for m in range(horizon):
        row: dict[str, Any] = {"month": m + 1, "tokens_per_day": float(series[0].tokens_per_day[m])}
        for s in series:
            row[f"{s.option}: monthly_usd"] = float(s.monthly_usd[m] + (s.one_time_usd if m == 0 else 0))
            row[f"{s.option}: cumulative_usd"] = float(s.cumulative_usd[m])
        rows.append(row)
    return rows


def tco_columns(series: list[Any]) -> list[Column]:
    cols = [*TCO_COLUMNS]
    for s in series:
        short = s.option if s.kind == "api" else "self-hosted"
        for key, header in (("monthly_usd", "$/month"), ("cumulative_usd", "cum. $")):
            cols.append(Column(f"{s.option}: {key}", f"{short} {header}", lambda x: f"{x:,.0f}", path=False))
    return cols


@click.command("tco")
@apply(WORKLOAD_OPTIONS)
@apply(CANDIDATE_OPTIONS)
@apply(TCO_OPTIONS)
@format_option
@click.pass_obj
@with_inputs
def tco_cmd(app: AppContext, inputs: Inputs, fmt: str) -> None:
    """Monthly and cumulative cost over a horizon, with growth, one-time switching costs and
    monitoring, for every API alternative and the self-hosted option cheapest over the horizon;
    the month self-hosting pays back against each API.

    Example: planner tco --tokens-per-day 50M --growth-per-month 0.1 --horizon-months 12
    """
    from planner.economics.analysis import analyze
    from planner.economics.tco import compare

    horizon, switching = inputs.horizon_months, inputs.switching
    a = analyze(
        app.catalog,
        _perf(app),
        inputs.workload,
        inputs.filters,
        inputs.policy,
        inputs.apis,
        inputs.include_hosted,
    )
    comparison = compare(a, switching, horizon)
    series, payback = comparison.series, comparison.payback_month
    api, plan = a.cheapest_api, a.cheapest_plan
    rows = tco_rows(series, horizon)
    if fmt == "json":
        click.echo(
            to_json(
                {
                    "horizon_months": horizon,
                    "series": [
                        {
                            "option": s.option,
                            "kind": s.kind,
                            "one_time_usd": s.one_time_usd,
                            "monthly_usd": s.monthly_usd.tolist(),
                            "cumulative_usd": s.cumulative_usd.tolist(),
                            "total_usd": s.total_usd,
                        }
                        for s in series
                    ],
                    "payback_month": payback,
                    "payback_month_by_api": comparison.paybacks,
                    "switching": switching.__dict__,
                    "months": rows,
                }
            )
        )
        return
    click.echo(render_rows(rows, tco_columns(series), fmt))
    if fmt != "table":
        return
    click.echo("")
    for s in series:
        click.echo(f"{s.kind:>11}: {s.option}: total ${s.total_usd:,.0f} over {horizon} months")
    click.echo(
        f"switching once: ${switching.one_time_usd:,.0f} (prompts ${switching.prompt_migration_usd:,.0f}, "
        f"evaluation ${switching.evaluation_usd:,.0f}, integration ${switching.integration_usd:,.0f}); "
        f"monitoring ${switching.monitoring_usd_per_month:,.0f}/month; ops "
        f"${inputs.policy.ops_usd_per_month:,.0f}/month; growth {inputs.workload.growth_per_month:.0%}/month"
    )
    if api is not None and plan is not None:
        for s in comparison.apis_by_payback():
            month = comparison.paybacks.get(s.option)
            when = f"month {month}" if month else f"not within {horizon} months"
            click.echo(f"payback vs {s.option}: {when}")
