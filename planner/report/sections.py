"""The report's sections, in order: each a title, its text, its tables (with captions) and its
plot. Presentation only: the numbers come from ReportData (build.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from planner.report.build import ReportData, measured_match_text
from planner.report.economics import (
    BREAKEVEN_COLUMNS,
    FLEET_COLUMNS,
    TORNADO_COLUMNS,
    api_row,
    assumption_lines,
    breakeven_rows,
    usd,
    verdict_lines,
)
from planner.report.render import Column
from planner.units import format_count


@dataclass(frozen=True)
class Table:
    name: str  # tables/NAME.csv, and the HTML table's id
    rows: list[dict[str, Any]]
    columns: list[Column]
    caption: str


@dataclass(frozen=True)
class Section:
    title: str
    intro: str
    tables: list[Table] = field(default_factory=list)
    plot: str | None = None
    verdict: bool = False  # the intro is the recommendation's box


VRAM_COLUMNS = [
    Column("model", "model"),
    Column("quant", "quant"),
    Column("gpu", "GPU"),
    Column("gpus", "GPUs"),
    Column("fits", "fits"),
    Column("memory_gib", "GiB/GPU", ".0f"),
    Column("weights_gib", "weights", ".1f"),
    Column("overhead_gib", "activations + CUDA", ".1f"),
    Column("kv_pool_gib", "KV pool", ".1f"),
    Column("unusable_gib", "held back", ".1f"),
    Column("max_concurrent_seqs", "max seqs", ","),
]
REPORT_FLEET_COLUMNS = [
    *(c for c in FLEET_COLUMNS if c.key != "throughput_basis"),
    Column("throughput_short", "throughput"),
    Column("listed", "listed as"),
]
CLASS_COLUMNS = [
    Column("class", "class"),
    Column("cheapest", "cheapest self-hosted"),
    Column("usd_per_mtok", "$/1M tokens", ",.3f"),
    Column("usd_per_month", "$/month", usd),
    Column("ttft_ms", "TTFT ms", ",.0f"),
    Column("tpot_ms", "TPOT ms", ",.1f"),
    Column("gpus", "GPUs", "g"),
    Column("context_tokens", "context", ","),
    Column("note", "note"),
]
PRICE_COLUMNS = [
    Column("api", "API"),
    Column("pinned_version", "version"),
    Column("input_usd_per_mtok", "input $/1M", ",.3f"),
    Column("cached_input_usd_per_mtok", "cached input $/1M", ",.3f"),
    Column("output_usd_per_mtok", "output $/1M", ",.3f"),
    Column("price_date", "price date"),
    Column("checked_at", "checked"),
    Column("source", "source"),
]
OFFER_COLUMNS = [
    Column("provider", "provider"),
    Column("instance", "instance"),
    Column("region", "region"),
    Column("gpu", "GPU"),
    Column("gpus", "GPUs"),
    Column("pricing", "pricing"),
    Column("usd_per_hour", "$/hour (published)", ",.2f"),
    Column("usd_per_gpu_hour", "$/GPU-hour as priced", ",.2f"),
    Column("price_basis", "price"),
    Column("checked_at", "checked"),
    Column("source", "source"),
]
BASIS_COLUMNS = [
    Column("configuration", "configuration"),
    Column("output_tokens_per_s", "out tok/s/replica", ",.0f", missing="curve only"),
    Column("low", "low", ",.0f"),
    Column("high", "high", ",.0f"),
    Column("concurrency", "at concurrency", "g"),
    Column("basis", "basis"),
    Column("calibration", "calibrated on"),
    Column("band_pct", "error band %", ".0f"),
    Column("records", "records"),
]
MEASURED_COLUMNS = [
    Column("configuration", "configuration"),
    Column("concurrency", "concurrency", "g"),
    Column("output_tokens_per_s", "out tok/s (measured)", ",.0f"),
    Column("input_tokens", "in", ",.0f"),
    Column("output_tokens", "out", ",.0f"),
    Column("basis", "basis"),
    Column("engine_version", "engine version"),
    Column("measured_at", "measured"),
    Column("record", "record"),
]
CLOSEST_COLUMNS = [
    Column("model", "model"),
    Column("quant", "quant"),
    Column("gpu", "GPU"),
    Column("tp", "TP"),
    Column("ttft_ms", "TTFT ms", ",.0f"),
    Column("tpot_ms", "TPOT ms", ",.1f"),
    Column("misses", "misses"),
]
API_COLUMNS = [
    Column("option", "API"),
    Column("usd_per_month", "$/month", usd),
    Column("usd_per_mtok", "$/1M tokens", ",.3f"),
    Column("input_usd_per_mtok", "input $/1M", ",.3f"),
    Column("output_usd_per_mtok", "output $/1M", ",.3f"),
    Column("price_basis", "price"),
]
TCO_COLUMNS = [
    Column("option", "option"),
    Column("kind", "kind"),
    Column("one_time_usd", "one-time $", usd),
    Column("total_usd", "total", usd),
    Column("payback", "self-hosting pays back"),
]


def payback_text(month: int | None, horizon: int) -> str:
    return f"month {month}" if month else f"not within {horizon} months"


def tco_rows(data: ReportData) -> list[dict[str, Any]]:
    """The APIs self-hosting pays back against first (soonest first), then the rest, then the
    self-hosted option itself."""
    t = data.tco
    hosted = t.self_hosted
    rows = []
    for s in t.apis_by_payback():
        rows.append(
            {
                "option": s.option,
                "kind": s.kind,
                "one_time_usd": s.one_time_usd,
                "total_usd": s.total_usd,
                "payback_month": t.paybacks.get(s.option),
                "payback": payback_text(t.paybacks.get(s.option), data.horizon_months) if hosted else None,
            }
        )
    if hosted is not None:
        rows.append(
            {
                "option": hosted.option,
                "kind": hosted.kind,
                "one_time_usd": hosted.one_time_usd,
                "total_usd": hosted.total_usd,
                "payback_month": None,
                "payback": None,
            }
        )
    return rows


def _recommendation(data: ReportData) -> Section:
    a = data.analysis
    lines = [line.strip() for line in verdict_lines(a)]
    if data.no_self_hosted is not None:
        lines = [line for line in lines if not line.startswith("=>")]
        lines += ["=> no self-hosted option qualifies: use an API.", *data.no_self_hosted.lines]
        apis = [api_row(i, x) for i, x in enumerate(a.all_apis, start=1)]
        table = Table(
            "apis", apis, API_COLUMNS, f"The APIs at {format_count(a.workload.tokens_per_day)} tokens/day"
        )
        return Section("Recommendation", "\n".join(lines), [table], verdict=True)
    caption = "Break-even against each API: the self-hosted option that pays soonest, from its last crossing"
    return Section(
        "Recommendation",
        "\n".join(lines),
        [Table("breakeven", breakeven_rows(a), BREAKEVEN_COLUMNS, caption)],
        verdict=True,
    )


def _fleet(data: ReportData) -> Section:
    a = data.analysis
    at = f"At {format_count(a.workload.tokens_per_day)} tokens/day, sized for the busiest hour"
    if data.no_self_hosted is not None:
        return Section(
            "The fleet per option at the target volume",
            f"{at}: no self-hosted option meets the SLOs. The configurations closest to them, serving "
            "one request at a time (their fastest):",
            [Table("closest", data.no_self_hosted.closest, CLOSEST_COLUMNS, "Closest configurations")],
        )
    intro = (
        f"{at}: the cheapest fleet of each candidate model and format (and of each model and pricing "
        f"model), cheapest first, then the next cheapest options: {len(data.fleet)} of the "
        f"{len(a.plans)} options (`planner capacity` lists them all). # is the rank by monthly cost "
        "among all of them."
    )
    caption = "Fleets at the target volume"
    return Section(
        "The fleet per option at the target volume",
        intro,
        [Table("fleet", data.fleet, REPORT_FLEET_COLUMNS, caption)],
    )


def _performance(data: ReportData) -> Section:
    a = data.analysis
    match = measured_match_text(a)
    measured = data.measured_points
    intro = (
        "The performance model's curve per GPU (band: its error), with the measured points the model "
        f"itself uses ({match}). " + "; ".join(f"{x.gpu}: {x.basis}" for x in data.perf) + "."
    )
    tables = []
    if measured:
        tables.append(Table("measured", measured, MEASURED_COLUMNS, "Measured points drawn (crosses)"))
    else:
        configs = ", ".join(f"{p.model} {p.quant} on {p.tp} x {p.gpu}" for p in data.perf) or "-"
        intro += (
            f"\nNo measured point: the catalog holds no such record for {configs}; the curves are estimates."
        )
    return Section("Throughput and latency vs concurrency", intro, tables, "performance")


def _sensitivity(data: ReportData) -> Section:
    base = data.breakeven["verdict"]["headline_breakeven"]
    if data.no_self_hosted is not None or base is None or not data.tornado:
        why = "no self-hosted option meets the SLOs" if data.no_self_hosted else "no break-even was found"
        return Section("Sensitivity", f"No break-even to vary: {why}.")
    now = format_count(base["tokens_per_day"]) if base.get("tokens_per_day") else "never"
    intro = (
        f"The break-even of {base['option']} against {base['api']} (now {now}) when one input changes "
        "and the rest stay. Favourable: the setting from which self-hosting pays sooner; never: it "
        "does not pay at that setting."
    )
    caption = "One input at a time, widest swing first"
    return Section(
        "Sensitivity", intro, [Table("sensitivity", data.tornado, TORNADO_COLUMNS, caption)], "sensitivity"
    )


def _tco(data: ReportData) -> Section:
    a, t, horizon = data.analysis, data.tco, data.horizon_months
    costs = (
        f"Cumulative cost over {horizon} months with {a.workload.growth_per_month:.0%} monthly growth; "
        f"switching costs {usd(data.switching.one_time_usd)} once (month 1), monitoring "
        f"{usd(data.switching.monitoring_usd_per_month)}/month."
    )
    hosted = t.self_hosted
    if hosted is None:
        text = costs + " No self-hosted option meets the SLOs: the APIs alone."
    else:
        pays = [s.option for s in t.apis_by_payback() if t.paybacks.get(s.option)]
        paid = "; ".join(f"vs {o}: month {t.paybacks[o]}" for o in pays)
        never = [s.option for s in t.apis if not t.paybacks.get(s.option)]
        text = costs + f" Self-hosted: {hosted.option}, the option cheapest over the horizon."
        text += f"\nPayback of self-hosting {paid}." if pays else ""
        if never:
            text += f"\nNo payback within {horizon} months vs {', '.join(never)}."
    table = Table(
        "tco", tco_rows(data), TCO_COLUMNS, f"Total over {horizon} months and payback against each API"
    )
    return Section("Total cost of ownership", text, [table], "tco")


def _provenance(data: ReportData) -> Section:
    a, p = data.analysis, data.provenance
    text = (
        "\n".join(f"- {line}" for line in assumption_lines(a))
        + "\nSoftware: "
        + ", ".join(f"{k} {v}" for k, v in p["versions"].items())
    )
    return Section(
        "Assumptions and provenance",
        text,
        [
            Table("api_prices", p["api_prices"], PRICE_COLUMNS, "API prices (published), per 1M tokens"),
            Table(
                "offers",
                p["offers"],
                OFFER_COLUMNS,
                "Cloud offers behind every self-hosted price shown (and the price spreads quoted)",
            ),
            Table(
                "throughput_basis",
                p["throughput"],
                BASIS_COLUMNS,
                "Throughput per replica of every configuration shown: basis, calibration and error band",
            ),
        ],
    )


def _quality(data: ReportData) -> Section:
    from planner.report.quality import QUALITY_COST_COLUMNS, TAG_COLUMNS

    q = data.quality
    assert q is not None
    w = data.analysis.workload
    intro = (
        "Measured with gpu-bench eval on your own cases: the mean score with its bootstrap interval, "
        f"next to what each model costs for {format_count(w.tokens_per_day)} tokens/day (an API at its "
        "published or given price; a self-hosted model as its cheapest fleet within the SLOs). Scores "
        "from different case files are not comparable. Whether routing easy queries to a small model "
        "pays: planner route."
    )
    tables = [Table("quality", q["models"], QUALITY_COST_COLUMNS, "Quality and cost per model")]
    if q["tags"]:
        tables.append(Table("quality_by_tag", q["tags"], TAG_COLUMNS, "Quality per tag"))
    return Section("Quality on your cases", intro, tables, "quality-vs-cost")


def sections(data: ReportData) -> list[Section]:
    """The report's sections in order, numbered."""
    hosted = data.no_self_hosted is None
    out = [
        _recommendation(data),
        Section(
            "Cost vs daily volume",
            "APIs bill linearly; a self-hosted fleet is a staircase of whole instances on top of its "
            "operations cost. Dots mark where self-hosting stays cheaper from (the last crossing)."
            if hosted
            else "APIs bill linearly. No self-hosted fleet meets the SLOs, so none is drawn.",
            [],
            "cost-vs-volume",
        ),
        _fleet(data),
        _performance(data),
        Section(
            "Memory fit",
            "Per GPU (GiB): weights, activations and CUDA overheads, the KV cache pool, and what "
            "gpu_memory_utilization holds back, at the smallest GPU count that fits the workload's "
            "sequence length, for every GPU an option shown runs on.",
            [Table("vram", data.vram, VRAM_COLUMNS, "Memory per GPU, GiB")],
            "vram",
        ),
        _sensitivity(data),
        _tco(data),
        Section(
            "The size classes, recomputed",
            "Small, mid and large models: the cheapest way to self-host each class at this volume, "
            "from the same catalogs.",
            [Table("classes", data.classes, CLASS_COLUMNS, "Cheapest self-hosted option per size class")],
        ),
        _provenance(data),
    ]
    if data.quality:
        out.insert(-1, _quality(data))
    return [
        Section(f"{i}. {s.title}", s.intro, s.tables, s.plot, s.verdict) for i, s in enumerate(out, start=1)
    ]
