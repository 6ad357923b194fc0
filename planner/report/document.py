"""Write a capacity report: index.html (self-contained), report.md, plots, CSV tables, inputs,
the catalog digest and the command that reproduces it. Every catalog text is HTML-escaped."""

from __future__ import annotations

import base64
import hashlib
import html
import json
from pathlib import Path
from typing import Any

from planner.catalog.files import atomic_write_text
from planner.report.build import ReportData
from planner.report.economics import (
    BREAKEVEN_COLUMNS,
    FLEET_COLUMNS,
    TORNADO_COLUMNS,
    assumption_lines,
    breakeven_rows,
    usd,
    verdict_lines,
)
from planner.report.render import Column, render_csv, render_markdown, to_json
from planner.units import format_count

VRAM_COLUMNS = [
    Column("model", "model"),
    Column("quant", "quant"),
    Column("gpu", "GPU"),
    Column("gpus", "GPUs"),
    Column("fits", "fits"),
    Column("weights_gib", "weights GiB/GPU", ".1f"),
    Column("kv_pool_gib", "KV pool GiB/GPU", ".1f"),
    Column("max_concurrent_seqs", "max seqs", ","),
]
CLASS_COLUMNS = [
    Column("class", "class"),
    Column("cheapest", "cheapest self-hosted"),
    Column("usd_per_mtok", "$/1M tokens", ",.3f"),
    Column("usd_per_month", "$/month", usd),
    Column("ttft_ms", "TTFT ms", ",.0f"),
    Column("gpus", "GPUs", "g"),
    Column("context_tokens", "context", ","),
    Column("note", "note"),
]
PRICE_COLUMNS = [
    Column("api", "API"),
    Column("input_usd_per_mtok", "input $/1M", ",.3f"),
    Column("output_usd_per_mtok", "output $/1M", ",.3f"),
    Column("price_date", "price date"),
    Column("checked_at", "checked"),
    Column("source", "source"),
]
OFFER_COLUMNS = [
    Column("provider", "provider"),
    Column("instance", "instance"),
    Column("gpu", "GPU"),
    Column("pricing", "pricing"),
    Column("usd_per_hour", "$/hour", ",.2f"),
    Column("checked_at", "checked"),
    Column("source", "source"),
]
BASIS_COLUMNS = [
    Column("option", "option"),
    Column("basis", "basis"),
    Column("calibration", "calibrated on"),
    Column("band_pct", "error band %", ".0f"),
    Column("records", "records"),
]

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1180px;margin:2em auto;
padding:0 1em;color:#1b1f23;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
.verdict{background:#f4f8ff;border-left:4px solid #1f77b4;padding:.6em 1em;white-space:pre-wrap;
font-size:.95em}
table{border-collapse:collapse;font-size:.82em;margin:.6em 0;width:100%}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}th{background:#f6f8fa}
td.num{text-align:right;font-variant-numeric:tabular-nums}img{max-width:100%;border:1px solid #eee}
.meta{color:#666;font-size:.85em}code{background:#f6f8fa;padding:.1em .3em;border-radius:3px}
"""


def _html_table(rows: list[dict[str, Any]], columns: list[Column]) -> str:
    head = "".join(f"<th>{html.escape(c.header)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            text = c.text(r)
            cls = ' class="num"' if _numeric(text) else ""
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _html_intro(text: str, verdict: bool) -> str:
    """A section's text: the verdict as a box, '- ' lines as a list, the rest as paragraphs."""
    if verdict:
        return f"<div class='verdict'>{html.escape(text)}</div>"
    out, items = [], []
    for line in text.splitlines():
        if line.startswith("- "):
            items.append(f"<li>{html.escape(line[2:])}</li>")
            continue
        if items:
            out.append("<ul>" + "".join(items) + "</ul>")
            items = []
        out.append(f"<p>{html.escape(line)}</p>")
    if items:
        out.append("<ul>" + "".join(items) + "</ul>")
    return "\n".join(out)


def _numeric(text: str) -> bool:
    stripped = text.replace(",", "").replace("$", "").replace("%", "").strip()
    try:
        float(stripped)
    except ValueError:
        return False
    return True


def _sections(
    data: ReportData,
) -> list[tuple[str, str, list[tuple[str, list[dict[str, Any]], list[Column]]], str | None]]:
    """(title, intro text, [(table name, rows, columns)], plot name) in the report's order."""
    a = data.analysis
    p = data.provenance
    payback = (
        f"month {data.payback_month}" if data.payback_month else f"not within {data.horizon_months} months"
    )
    tco_rows = [
        {"option": s.option, "kind": s.kind, "one_time_usd": s.one_time_usd, "total_usd": s.total_usd}
        for s in data.tco
    ]
    tco_cols = [
        Column("option", "option"),
        Column("kind", "kind"),
        Column("one_time_usd", "one-time $", usd),
        Column("total_usd", f"total over {data.horizon_months} months", usd),
    ]
    sections = [
        (
            "Recommendation",
            "\n".join(line.strip() for line in verdict_lines(a)),
            [("breakeven", breakeven_rows(a), BREAKEVEN_COLUMNS)],
            None,
        ),
        (
            "Cost vs daily volume",
            "APIs bill linearly; a self-hosted fleet is a staircase of whole instances on top of "
            "its operations cost. Dots mark where self-hosting stays cheaper from (the last crossing).",
            [],
            "cost-vs-volume",
        ),
        (
            "The fleet per option at the target volume",
            f"At {format_count(a.workload.tokens_per_day)} tokens/day, sized for the busiest hour.",
            [("fleet", data.fleet, FLEET_COLUMNS)],
            None,
        ),
        (
            "Throughput and latency vs concurrency",
            "The performance model's curve per GPU (band: its error), with "
            "measured points where the catalog has them. "
            + "; ".join(f"{x.gpu}: {x.basis}" for x in data.perf),
            [],
            "performance",
        ),
        (
            "Memory fit",
            "Weights, activations and CUDA overheads, the KV cache pool, and what "
            "gpu_memory_utilization holds back, per GPU.",
            [("vram", data.vram, VRAM_COLUMNS)],
            "vram",
        ),
        (
            "Sensitivity",
            "The break-even when one input changes and the rest stay.",
            [("sensitivity", data.tornado, TORNADO_COLUMNS)],
            "sensitivity",
        ),
        (
            "Total cost of ownership",
            f"Cumulative cost with {a.workload.growth_per_month:.0%} monthly growth; switching "
            f"costs {usd(data.switching.one_time_usd)} once, monitoring "
            f"{usd(data.switching.monitoring_usd_per_month)}/month. Payback vs the cheapest API: {payback}.",
            [("tco", tco_rows, tco_cols)],
            "tco",
        ),
        (
            "The size classes, recomputed",
            "Small, mid and large models: the cheapest way to self-host each class at "
            "this volume, from the same catalogs.",
            [("classes", data.classes, CLASS_COLUMNS)],
            None,
        ),
        (
            "Assumptions and provenance",
            "\n".join(f"- {line}" for line in assumption_lines(a))
            + "\nSoftware: "
            + ", ".join(f"{k} {v}" for k, v in p["versions"].items()),
            [
                ("api_prices", p["api_prices"], PRICE_COLUMNS),
                ("offers", p["offers"], OFFER_COLUMNS),
                ("throughput_basis", p["throughput"], BASIS_COLUMNS),
            ],
            None,
        ),
    ]
    if data.quality:
        sections.insert(-1, _quality_section(data))
    return [(f"{i}. {title}", *rest) for i, (title, *rest) in enumerate(sections, start=1)]


def _quality_section(data: ReportData) -> tuple[str, str, list, str | None]:
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
    tables = [("quality", q["models"], QUALITY_COST_COLUMNS)]
    if q["tags"]:
        tables.append(("quality_by_tag", q["tags"], TAG_COLUMNS))
    return ("Quality on your cases", intro, tables, "quality-vs-cost")


def write_report(data: ReportData, out: Path, plots: dict[str, bytes], inputs: dict[str, Any]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "plots").mkdir(exist_ok=True)
    (out / "tables").mkdir(exist_ok=True)
    (out / "inputs").mkdir(exist_ok=True)
    written: list[Path] = []
    for name, png in plots.items():
        path = out / "plots" / f"{name}.png"
        path.write_bytes(png)
        written.append(path)
    sections = _sections(data)
    for _, _, tables, _ in sections:
        for name, rows, columns in tables:
            path = out / "tables" / f"{name}.csv"
            atomic_write_text(path, render_csv(rows, columns) + "\n")
            written.append(path)
    # The same numbers as `planner breakeven --format json` for this input, and the inputs.
    atomic_write_text(out / "breakeven.json", to_json(data.breakeven) + "\n")
    atomic_write_text(out / "inputs" / "workload.json", to_json(inputs) + "\n")
    digests = [
        f"{hashlib.sha256(Path(f).read_bytes()).hexdigest()[:16]}  {f}"
        for f in data.provenance["catalog_files"]
    ]
    atomic_write_text(
        out / "inputs" / "catalog-digest.txt",
        f"digest {data.provenance['catalog_digest']}\n" + "\n".join(digests) + "\n",
    )
    atomic_write_text(
        out / "reproduce.sh", f"#!/bin/sh\n# Regenerates this report from its inputs.\n{data.command}\n"
    )
    atomic_write_text(out / "report.md", _markdown(data, sections))
    atomic_write_text(out / "index.html", _html(data, sections, plots))
    written += [out / n for n in ("breakeven.json", "report.md", "index.html", "reproduce.sh")]
    return written


def _markdown(data: ReportData, sections: list) -> str:
    lines = [
        f"# {data.name}",
        "",
        data.description,
        "",
        f"Generated {data.generated_at:%Y-%m-%d %H:%M} UTC; "
        f"catalog digest `{data.provenance['catalog_digest']}`; reproduce with `{data.command}`.",
        "",
    ]
    for title, intro, tables, plot in sections:
        lines += [f"## {title}", "", intro, ""]
        if plot:
            lines += [f"![{title}](plots/{plot}.png)", ""]
        for _, rows, columns in tables:
            lines += [render_markdown(rows, columns) if rows else "(none)", ""]
    return "\n".join(lines)


def _html(data: ReportData, sections: list, plots: dict[str, bytes]) -> str:
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(data.name)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{html.escape(data.name)}</h1>",
        f"<p>{html.escape(data.description)}</p>",
        f"<p class='meta'>Generated {data.generated_at:%Y-%m-%d %H:%M} UTC &middot; catalog digest "
        f"<code>{html.escape(data.provenance['catalog_digest'])}</code> &middot; reproduce: "
        f"<code>{html.escape(data.command)}</code></p>",
    ]
    for i, (title, intro, tables, plot) in enumerate(sections):
        parts.append(f"<h2 id='s{i + 1}'>{html.escape(title)}</h2>")
        parts.append(_html_intro(intro, verdict=i == 0))
        if plot and plot in plots:
            b64 = base64.b64encode(plots[plot]).decode()
            parts.append(f"<p><img alt='{html.escape(title)}' src='data:image/png;base64,{b64}'></p>")
        for _, rows, columns in tables:
            parts.append(_html_table(rows, columns) if rows else "<p>(none)</p>")
    parts.append(
        "<p class='meta'>Prices are published (with their dates and sources); throughputs are measured, "
        "published or estimated as each row says. Data: "
        + html.escape(json.dumps(data.provenance["versions"]))
        + "</p></body></html>"
    )
    return "\n".join(parts)
