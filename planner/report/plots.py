"""The report's plots (matplotlib, Agg; imported only here). Each returns PNG bytes."""

from __future__ import annotations

import io
from typing import Any

from planner.report.build import ReportData
from planner.units import format_count

LABEL_BOX = {"facecolor": "white", "edgecolor": "none", "pad": 0.6, "alpha": 0.85}
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "figure.dpi": 110})
    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", dpi=130)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _tokens_axis(ax: Any) -> None:
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: format_count(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _text(s: str) -> str:
    """Catalog text shown literally: matplotlib would read "$...$" as mathematics."""
    return s.replace("$", r"\$")


def cost_vs_volume(data: ReportData) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 5.2))
    for i, c in enumerate(data.curves):
        if c.kind == "api":
            style = {"linestyle": "--", "linewidth": 1.4}
        else:
            style = {"drawstyle": "steps-post", "linewidth": 2}
        label = _text(f"{c.label} ({c.kind})")
        ax.plot(c.volumes, c.usd_per_month, color=COLORS[i % len(COLORS)], label=label, **style)
    rows = data.breakeven["breakeven"]
    rates = {row["api"]: row["api_usd_per_mtok"] for row in rows}
    points = sorted((row["tokens_per_day"], row["api"]) for row in rows if row["tokens_per_day"])
    for k, (v, api) in enumerate(points):
        usd = v * rates[api] / 1e6 * 365 / 12
        ax.plot([v], [usd], marker="o", color="black", markersize=5)
        ax.annotate(
            _text(f"vs {api.split('/')[-1]}: {format_count(v)}"),
            (v, usd),
            textcoords="offset points",
            xytext=(10, -14 - 11 * (k % 4)),  # staggered: nearby break-evens stay readable
            fontsize=7,
            arrowprops={"arrowstyle": "-", "color": "grey", "linewidth": 0.5},
        )
    target = data.analysis.workload.tokens_per_day
    ax.axvline(target, color="grey", linestyle=":", linewidth=1)
    ax.annotate(  # x in data, y in axes units: the label stays at the bottom whatever the scale
        f"target {format_count(target)}/day",
        (target, 0.0),
        xycoords=ax.get_xaxis_transform(),
        textcoords="offset points",
        xytext=(4, 6),
        fontsize=8,
        color="dimgrey",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    hosted = [float(c.usd_per_month.min()) for c in data.curves if c.kind == "self-hosted"]
    if hosted:  # the API lines far below any fleet's floor say nothing: start two decades under it
        ax.set_ylim(bottom=max(ax.get_ylim()[0], min(hosted) / 100))
    _tokens_axis(ax)
    ax.set_xlabel("tokens per day (input + output)")
    ax.set_ylabel(_text("$ per month"))
    if any(c.kind == "self-hosted" for c in data.curves):
        ax.set_title(
            "Monthly cost vs daily volume: APIs (dashed), self-hosted fleets (steps); dots: break-even"
        )
    else:
        ax.set_title("Monthly cost vs daily volume: APIs (no self-hosted option meets the SLOs)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    return _png(fig)


def performance(data: ReportData) -> bytes | None:
    panels = data.perf or []
    if not panels:
        return None
    plt = _plt()
    from matplotlib.ticker import FuncFormatter

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for i, p in enumerate(panels):
        color = COLORS[i % len(COLORS)]
        label = f"{p.gpu} (TP {p.tp})"
        axes[0].plot(p.concurrency, p.output_tokens_per_s, color=color, label=label)
        axes[0].fill_between(
            p.concurrency,
            p.output_tokens_per_s / (1 + p.band),
            p.output_tokens_per_s * (1 + p.band),
            color=color,
            alpha=0.12,
        )
        if p.measured:
            xs = [m["concurrency"] for m in p.measured]
            ys = [m["output_tokens_per_s"] for m in p.measured]
            axes[0].scatter(xs, ys, color=color, marker="x", s=40, zorder=3, label=f"{p.gpu} measured")
        axes[1].plot(p.concurrency, p.tpot_ms, color=color, label=f"{label} TPOT")
        axes[1].plot(p.concurrency, p.ttft_ms, color=color, linestyle="--", label=f"{label} TTFT")
    w = data.analysis.workload
    axes[1].axhline(w.slo_tpot_ms, color="black", linewidth=0.8, linestyle=":")
    axes[1].axhline(w.slo_ttft_ms, color="black", linewidth=0.8, linestyle="-.")
    for ax in axes:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel("concurrent requests per replica")
    axes[0].set_ylabel("output tokens/s per replica (band: error of the calibration)")
    axes[1].set_yscale("log")
    axes[1].set_ylabel("ms (dotted: TPOT SLO, dash-dot: TTFT SLO)")
    title = (
        f"{panels[0].model} {panels[0].quant}, {w.input_tokens:g} in / {w.output_tokens:g} out"
        if panels
        else ""
    )
    fig.suptitle(f"Throughput and latency vs concurrency: {title}")
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=6, ncol=2)
    return _png(fig)


def vram(data: ReportData) -> bytes | None:
    rows = data.vram_chart
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, max(3.0, 0.28 * len(rows) + 1.2)))
    labels = [f"{r['model']} {r['quant']} on {r['gpus']} x {r['gpu']}" for r in rows]
    y = range(len(rows))
    left = [0.0] * len(rows)
    for key, color, name in (
        ("weights_gib", "#1f77b4", "weights"),
        ("overhead_gib", "#ff7f0e", "activations + CUDA"),
        ("kv_pool_gib", "#2ca02c", "KV cache pool"),
        ("unusable_gib", "#c7c7c7", "held back (gpu_memory_utilization)"),
    ):
        values = [r[key] for r in rows]
        ax.barh(list(y), values, left=left, color=color, label=name)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_yticks(list(y))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("GiB per GPU")
    ax.set_title("Memory per GPU at the workload's sequence length (smallest GPU count that fits)", pad=22)
    # Above the bars, outside the axes: a legend inside would cover the longest (largest-GPU) bars.
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, frameon=False)
    return _png(fig)


def _log_ticks(ax: Any, lo: float, hi: float) -> None:
    """Readable ticks on a log axis that may span less than a decade: 1, 2 and 5 per decade."""
    import math

    from matplotlib.ticker import FixedLocator, NullLocator

    ticks = [
        m * 10**e
        for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
        for m in (1, 2, 5)
        if lo <= m * 10**e <= hi
    ]
    if len(ticks) < 3:  # a narrow range: every integer multiple of its decade
        ticks = [
            m * 10**e
            for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
            for m in range(1, 10)
            if lo <= m * 10**e <= hi
        ]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    _tokens_axis(ax)


def tornado(data: ReportData) -> bytes | None:
    """Each input's bar from its favourable setting's break-even (left, labelled) to its
    unfavourable one's (right); 'never' bars run to the right edge."""
    rows = [r for r in data.tornado if r["tokens_per_day_low"] or r["tokens_per_day_high"]]
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9.5, 0.5 * len(rows) + 1.6))
    base = data.breakeven["verdict"]["headline_breakeven"]
    center = base["tokens_per_day"] if base and base["tokens_per_day"] else None
    known = [v for r in rows for v in (r["tokens_per_day_low"], r["tokens_per_day_high"]) if v]
    lo_x, hi_x = min(known + ([center] if center else [])), max(known + ([center] if center else []))
    # Room either side for the setting labels (a log axis: factors, not offsets).
    left_edge, right_edge = lo_x / 1.9, hi_x * 1.9
    never = any(r["tokens_per_day_high"] is None for r in rows)
    if never:
        right_edge *= 1.6
    for i, r in enumerate(rows):
        lo = r["tokens_per_day_low"] or right_edge
        hi = r["tokens_per_day_high"] or right_edge / 1.25
        ax.barh(i, hi - lo, left=lo, color="#1f77b4" if r["tokens_per_day_high"] else "#9ecae1")
        ax.annotate(_text(r["low_setting"]), (lo, i), xytext=(-4, 0), textcoords="offset points",
                    ha="right", va="center", fontsize=7, bbox=LABEL_BOX)  # fmt: skip
        high_label = r["high_setting"] + ("" if r["tokens_per_day_high"] else ": never")
        ax.annotate(_text(high_label), (hi, i), xytext=(4, 0), textcoords="offset points",
                    ha="left", va="center", fontsize=7, bbox=LABEL_BOX)  # fmt: skip
    if center:
        ax.axvline(center, color="black", linewidth=1)
        ax.annotate(f"now {format_count(center)}", (center, 1.0), xycoords=ax.get_xaxis_transform(),
                    xytext=(3, -10), textcoords="offset points", fontsize=7)  # fmt: skip
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([r["factor"] for r in rows])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(left_edge / 1.4, right_edge * (1.8 if never else 1.4))
    _log_ticks(ax, left_edge / 1.4, right_edge * (1.8 if never else 1.4))
    ax.set_xlabel("break-even, tokens per day (left end: favourable setting, right end: unfavourable)")
    pair = f"{base['option']} vs {base['api']}" if base else ""
    ax.set_title(_text(f"What moves the break-even\n{pair}"), fontsize=8)
    return _png(fig)


def tco(data: ReportData) -> bytes:
    """Cumulative cost of every API and of the self-hosted option; a dot and a label where
    self-hosting pays back against an API (the legend below the axes, clear of the lines)."""
    plt = _plt()
    t = data.tco
    fig, ax = plt.subplots(figsize=(9, 5.2))
    months = list(range(1, data.horizon_months + 1))
    ordered = [*t.apis_by_payback(), *([t.self_hosted] if t.self_hosted else [])]
    for i, s in enumerate(ordered):
        payback = t.paybacks.get(s.option) if s.kind == "api" else None
        tag = f", payback month {payback}" if payback else ""
        ax.plot(
            months,
            s.cumulative_usd,
            color=COLORS[i % len(COLORS)],
            marker="o",
            markersize=3,
            label=_text(f"{s.option} ({s.kind}{tag})"),
            linestyle="--" if s.kind == "api" else "-",
            linewidth=2.2 if s.kind == "self-hosted" else 1.4,
        )
    hosted = t.self_hosted
    paid = [(t.paybacks[s.option], s.option) for s in t.apis_by_payback() if t.paybacks.get(s.option)]
    if hosted is not None and paid:
        for month in sorted({m for m, _ in paid}):
            ax.plot([month], [float(hosted.cumulative_usd[month - 1])], "o", color="black", ms=6, zorder=4)
        lines = [f"vs {api.split('/')[-1]}: month {month}" for month, api in paid]
        # The upper left stays clear: every line climbs to the right.
        ax.text(0.015, 0.97, _text("self-hosting pays back (dots):\n" + "\n".join(lines)),
                transform=ax.transAxes, va="top", fontsize=8, bbox=LABEL_BOX)  # fmt: skip
    elif hosted is not None:
        ax.text(0.015, 0.97, f"self-hosting does not pay back within {data.horizon_months} months",
                transform=ax.transAxes, va="top", fontsize=8, bbox=LABEL_BOX)  # fmt: skip
    ends = [float(s.cumulative_usd[-1]) for s in ordered]
    if ends and max(ends) > 30 * max(min(ends), 1.0):  # lines 30x apart: a log scale keeps all readable
        ax.set_yscale("log")
    ax.set_xlabel("month")
    ax.set_ylabel(_text("cumulative $"))
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _text(f"${v:,.0f}")))
    ax.set_xticks(months)
    ax.set_title("Total cost of ownership over the horizon (switching costs in month 1)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    return _png(fig)


def quality_vs_cost(data: ReportData) -> bytes | None:
    """Mean score (with its interval) against the monthly cost at the workload's volume."""
    if not data.quality:
        return None
    rows = [r for r in data.quality["models"] if r.get("mean_score") is not None]
    priced = [r for r in rows if r.get("usd_per_month") is not None]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, r in enumerate(priced):
        lo, hi = r.get("ci_low"), r.get("ci_high")
        err = [[r["mean_score"] - lo], [hi - r["mean_score"]]] if lo is not None else None
        ax.errorbar([r["usd_per_month"]], [r["mean_score"]], yerr=err, fmt="o", capsize=4,
                    color=COLORS[i % len(COLORS)], label=_text(f"{r['model']} ({r['hosting']})"))  # fmt: skip
        ax.annotate(_text(r["model"]), (r["usd_per_month"], r["mean_score"]), xytext=(5, 4),
                    textcoords="offset points", fontsize=8)  # fmt: skip
    if priced:
        ax.set_xscale("log")
        ax.margins(x=0.25)
        ax.legend(fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(f"$ per month at {format_count(data.analysis.workload.tokens_per_day)} tokens/day")
    ax.set_ylabel("mean score on your cases")
    ax.set_title("Quality vs cost (bars: bootstrap interval)")
    unpriced = [r["model"] for r in rows if r.get("usd_per_month") is None]
    if unpriced:
        ax.text(0.01, 0.02, _text("not priced: " + ", ".join(unpriced)), transform=ax.transAxes, fontsize=7)
    return _png(fig)


PLOTS = {
    "cost-vs-volume": cost_vs_volume,
    "performance": performance,
    "vram": vram,
    "sensitivity": tornado,
    "tco": tco,
    "quality-vs-cost": quality_vs_cost,
}
"""Plot name -> function of the report's data; a function may return None (nothing to show)."""
