"""planner route's output: the options table, the classes, the verdict and the assumptions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from planner.errors import PlannerError
from planner.report.render import Column, render_rows, to_json

if TYPE_CHECKING:
    from planner.commands.inputs import Inputs
    from planner.commands.route import Setup

OPTION_COLUMNS = [
    Column("option", "option"),
    Column("to_large", "to large", ".0%"),
    Column("quality", "quality", ".3f"),
    Column("ci", "95% CI"),
    Column("quality_vs_large", "vs large", "+.3f"),
    Column("usd_per_month", "$/month", ",.0f"),
    Column("saving_vs_large", "saving", ".0%"),
    Column("router_usd_per_month", "router $/mo", ",.0f"),
    Column("latency_p50_ms", "p50 ms", ",.0f"),
    Column("latency_p95_ms", "p95 ms", ",.0f"),
    Column("marks", ""),
]
CLASS_COLUMNS = [
    Column("class", "class"),
    Column("share", "traffic", ".0%"),
    Column("cases", "cases"),
]


def _mean(ev_scores: dict[str, float | None], ids: tuple[str, ...]) -> float | None:
    vals = [s for c in ids if (s := ev_scores.get(c)) is not None]
    return sum(vals) / len(vals) if vals else None


def route_payload(setup: Setup, inputs: Inputs, max_drop: float) -> dict[str, Any]:
    from planner.quality import route as R

    opts = setup.options
    large_opt = next(x for x in opts if x.kind == "baseline" and x.groups[0].model == setup.large)
    small_opt = next(x for x in opts if x.kind == "baseline" and x.groups[0].model == setup.small)
    routed = next((x for x in opts if x.kind == "routed"), None)
    best = R.recommend(opts, large_opt, max_drop)
    ev = R.evidence(setup.records)
    rows = []
    for x in opts:
        marks = [
            m
            for m, on in (("routed", x is routed), ("recommended", x is best), ("frontier", x.frontier))
            if on
        ]
        rows.append(
            {
                "option": x.name,
                "kind": x.kind,
                "setting": x.setting,
                "to_large": x.share_of(setup.large),
                "quality": x.quality,
                "ci_low": x.ci[0] if x.ci else None,
                "ci_high": x.ci[1] if x.ci else None,
                "ci": f"{x.ci[0]:.3f}-{x.ci[1]:.3f}" if x.ci else None,
                "unmeasured": x.unmeasured,
                "quality_vs_large": None
                if x.quality is None or large_opt.quality is None
                else x.quality - large_opt.quality,
                "usd_per_month": x.usd_per_month,
                "saving_vs_large": 1 - x.usd_per_month / large_opt.usd_per_month
                if large_opt.usd_per_month
                else None,
                "router_usd_per_month": x.router_usd_per_month,
                "latency_p50_ms": x.latency_p50_ms,
                "latency_p95_ms": x.latency_p95_ms,
                "frontier": x.frontier,
                "marks": ", ".join(marks),
                "tiers": [t.__dict__ for t in x.tiers],
            }
        )
    classes = []
    for c in setup.classes:
        row = {k: v for k, v in c.items() if k != "cases"}
        row["cases"] = len(c["cases"])
        for m in setup.records:
            row[f"quality:{m}"] = _mean(ev.scores[m], c["cases"])
        classes.append(row)
    w = inputs.workload
    assumptions = [
        f"volume {w.tokens_per_day:,.0f} tokens/day = {w.requests_per_day:,.0f} requests/day x "
        f"({w.input_tokens:,.0f} in + {w.output_tokens:,.0f} out); each group's volume is its share of "
        "requests (requests assumed alike in length across classes)",
        f"quality: mean score on your cases ({setup.records[setup.small].cases_file}), per class, weighted "
        f"by the traffic shares ({setup.traffic_source}); interval: stratified bootstrap over cases",
        "self-hosted tiers: the cheapest fleet for their share within the SLOs "
        f"(TTFT <= {w.slo_ttft_ms:g} ms, TPOT <= {w.slo_tpot_ms:g} ms), ops included per fleet; "
        "API tiers: published (or given) prices x tokens",
        f"router: {setup.router.note}" if setup.router is not None else "router: none",
        "latency: the cases' measured end-to-end latencies, mixed by traffic share (the serving "
        "endpoints' latency when evaluated, not under your load)",
        *setup.notes,
    ]
    return {
        "small": setup.small,
        "large": setup.large,
        "classify": setup.mode,
        "routing": setup.setting,
        "traffic": setup.traffic_source,
        "tiers": {
            m: {**t, "record_id": setup.records[m].id, "served_model": setup.records[m].served_model}
            for m, t in setup.tiers.items()
        },
        "classes": classes,
        "options": rows,
        "routed": routed.name if routed else None,
        "recommended": best.name if best else None,
        "max_quality_drop": max_drop,
        "all_small": small_opt.name,
        "all_large": large_opt.name,
        "assumptions": assumptions,
        "workload": {"tokens_per_day": w.tokens_per_day, "requests_per_day": w.requests_per_day},
    }


def render(payload: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        click.echo(to_json(payload))
        return
    rows = payload["options"]
    if fmt == "csv":  # one scalar per cell: the tiers as text
        flat = [{**r, "tiers": "; ".join(_tier_text(t) for t in r["tiers"])} for r in rows]
        extra = [Column("kind", "kind"), Column("setting", "setting"), Column("tiers", "tiers")]
        click.echo(render_rows(flat, [*OPTION_COLUMNS, *extra], fmt))
        return
    click.echo(render_rows(rows, OPTION_COLUMNS, fmt))
    if fmt != "table" and fmt != "markdown":
        return
    class_cols = [*CLASS_COLUMNS, Column("tier", "served by")]
    class_cols += [Column(f"quality:{m}", f"q {m}", ".3f") for m in (payload["small"], payload["large"])]
    click.echo("")
    click.echo(render_rows(payload["classes"], class_cols, fmt))
    by_name = {r["option"]: r for r in rows}
    small, large = by_name[payload["all_small"]], by_name[payload["all_large"]]
    click.echo("")
    if payload["routed"]:
        r = by_name[payload["routed"]]
        click.echo(
            f"Routed ({payload['routing']}): {r['to_large']:.0%} of requests to {payload['large']}; quality "
            f"{_q(r)} vs {_q(large)} for {payload['large']} alone and {_q(small)} for {payload['small']} "
            f"alone; ${r['usd_per_month']:,.0f}/month vs ${large['usd_per_month']:,.0f} and "
            f"${small['usd_per_month']:,.0f}."
        )
    rec = payload["recommended"]
    if rec is None:
        click.echo("No option is measured well enough to recommend (the large model's quality is unknown).")
    else:
        b = by_name[rec]
        within = f"within {payload['max_quality_drop']:g} of {payload['large']}'s quality"
        if rec == payload["all_large"]:
            click.echo(f"Routing does not pay here: no cheaper option stays {within}.")
        elif rec == payload["all_small"]:
            click.echo(f"{payload['small']} alone stays {within} and is cheapest: routing is not needed.")
        else:
            click.echo(
                f"Cheapest option {within}: {rec} ({b['to_large']:.0%} to {payload['large']}), "
                f"quality {_q(b)}, ${b['usd_per_month']:,.0f}/month "
                f"({b['saving_vs_large']:.0%} less than {payload['large']} alone)."
            )
    shown = [n for n in (payload["routed"], rec) if n]
    for name in dict.fromkeys(shown):
        click.echo(f"  {name}:")
        for t in by_name[name]["tiers"]:
            click.echo(f"    {_tier_text(t)}")
        if by_name[name]["router_usd_per_month"]:
            click.echo(f"    router: ${by_name[name]['router_usd_per_month']:,.2f}/month")
    click.echo("")
    for line in payload["assumptions"]:
        click.echo(f"- {line}")


def _q(row: dict[str, Any]) -> str:
    if row["quality"] is None:
        return "unmeasured"
    return f"{row['quality']:.3f} [{row['ci']}]"


def _tier_text(t: dict[str, Any]) -> str:
    return f"{t['model']} {t['share']:.0%}: ${t['usd_per_month']:,.2f}/month ({t['how']})"


# -- the quality-cost curve (--plot) ----------------------------------------------------------


def plot_png(payload: dict[str, Any]) -> bytes:
    """Blended quality against monthly cost for every routing option: the Pareto frontier, the
    all-small and all-large baselines, the routed and recommended options marked. PNG bytes.

    matplotlib (the `report` extra, Agg backend) is imported here only."""
    import io

    try:
        import matplotlib
    except ImportError:
        raise PlannerError("--plot needs matplotlib: pip install 'selfhost-planner[report]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def text(s: str) -> str:  # shown literally: matplotlib reads "$...$" as mathematics
        return s.replace("$", r"\$")

    rows = [r for r in payload["options"] if r["quality"] is not None and r["usd_per_month"] is not None]
    by_name = {r["option"]: r for r in rows}
    fig, ax = plt.subplots(figsize=(8.5, 5.2))
    ax.grid(True, alpha=0.3)
    for r in rows:
        err = None
        if r["ci_low"] is not None:
            err = [[r["quality"] - r["ci_low"]], [r["ci_high"] - r["quality"]]]
        ax.errorbar([r["usd_per_month"]], [r["quality"]], yerr=err, fmt="o", color="#7f7f7f",
                    markersize=4, elinewidth=0.8, capsize=2, alpha=0.8, zorder=2)  # fmt: skip
    frontier = sorted((r for r in rows if r["frontier"]), key=lambda r: (r["usd_per_month"], r["quality"]))
    if frontier:
        xs, ys = [r["usd_per_month"] for r in frontier], [r["quality"] for r in frontier]
        ax.plot(xs, ys, "-", color="#1f77b4", linewidth=1.6, zorder=3,
                label="Pareto frontier (no option cheaper and better)")  # fmt: skip
        for r in frontier:
            ax.annotate(f"{r['to_large']:.0%}", (r["usd_per_month"], r["quality"]), xytext=(4, -11),
                        textcoords="offset points", fontsize=7, color="#1f77b4")  # fmt: skip
    drop = payload["max_quality_drop"]
    marks = [
        (payload["all_small"], "s", "#2ca02c", f"all small: {payload['small']}"),
        (payload["all_large"], "s", "#d62728", f"all large: {payload['large']}"),
        (payload["routed"], "*", "#ff7f0e", f"routed: {payload['routing']}"),
        (payload["recommended"], "o", "none", f"recommended (within {drop:g} of large)"),
    ]
    for name, marker, color, label in marks:
        if name is None or name not in by_name:
            continue
        r = by_name[name]
        style: dict[str, Any] = {"markerfacecolor": "none", "markeredgecolor": "black", "markersize": 15}
        if color != "none":
            style = {"color": color, "markersize": 13 if marker == "*" else 9, "markeredgecolor": "black"}
        ax.plot([r["usd_per_month"]], [r["quality"]], marker, linestyle="none", label=text(label[:80]),
                zorder=4, **style)  # fmt: skip
    costs = [r["usd_per_month"] for r in rows if r["usd_per_month"] > 0]
    if costs and max(costs) / min(costs) > 20:
        from matplotlib.ticker import LogLocator, NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_minor_formatter(NullFormatter())
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 10 else f"{v:,.2g}"))
    ax.margins(x=0.08, y=0.1)
    w = payload["workload"]
    ax.set_xlabel(f"monthly cost (USD per month, at {w['tokens_per_day']:,.0f} tokens/day; router included)")
    ax.set_ylabel("blended quality (mean score on your cases, 0-1)")
    ax.set_title(text(f"Routing {payload['small']} / {payload['large']}: quality vs cost "
                      "(bars: bootstrap interval; % = share sent to large)"), fontsize=9)  # fmt: skip
    unmeasured = [r["option"] for r in payload["options"] if r["quality"] is None]
    if unmeasured:
        ax.text(0.01, 0.01, text(f"not drawn (quality unmeasured): {len(unmeasured)} option(s)"),
                transform=ax.transAxes, fontsize=7)  # fmt: skip
    ax.legend(fontsize=7, loc="lower right")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", dpi=130)
    plt.close(fig)
    return buf.getvalue()
