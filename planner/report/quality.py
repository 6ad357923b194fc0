"""Quality records as rows: one per model (ranked by quality per dollar) and one per model and tag.
Shared by gpu-bench eval's output and planner report's quality section."""

from __future__ import annotations

from typing import Any

from planner.report.render import Column

SUMMARY_COLUMNS = [
    Column("group", "ranked among"),
    Column("rank", "#"),
    Column("model", "model"),
    Column("hosting", "hosting"),
    Column("served_model", "served as"),
    Column("scored", "scored"),
    Column("unscored", "unscored"),
    Column("errors", "failed"),
    Column("mean_score", "mean", ".3f"),
    Column("ci", "95% CI"),
    Column("pass_rate", "pass", ".0%"),
    Column("latency_p50_ms", "p50 ms", ",.0f"),
    Column("latency_p95_ms", "p95 ms", ",.0f"),
    Column("cost_per_case_usd", "$/case", ".6f"),
    Column("score_per_usd_text", "score/$"),
    Column("judge_cost_usd", "judge $ (all cases)", ".4f"),
    Column("price", "price"),
]
TAG_COLUMNS = [
    Column("model", "model"),
    Column("tag", "tag"),
    Column("cases", "cases"),
    Column("mean_score", "mean", ".3f"),
    Column("ci", "95% CI"),
    Column("pass_rate", "pass", ".0%"),
    Column("cost_per_case_usd", "$/case", ".6f"),
]


def _ci(summary: dict[str, Any]) -> str | None:
    if summary.get("ci_low") is None:
        return None
    return f"{summary['ci_low']:.3f}-{summary['ci_high']:.3f}"


def _price_label(price: dict[str, Any]) -> str:
    basis = price.get("basis")
    if basis == "catalog":
        return f"{price['api']} ({price.get('checked_at')})"
    if basis == "given":
        return f"given {price['input_usd_per_mtok']:g}/{price['output_usd_per_mtok']:g} $/1M"
    if basis == "self-hosted":
        return "self-hosted: planner route sizes it"
    return "unpriced"


GROUPS = ("free", "priced", "self-hosted", "unpriced")
"""How summary rows are ranked, group by group: free models (cost $0 per case: score per dollar
is undefined, so by mean score), priced ones by score per dollar, then self-hosted models (their
cost depends on volume: planner route prices them) and unpriced ones, each by mean score."""


def _group(hosting: str, cost_per_case_usd: float | None) -> str:
    if cost_per_case_usd is not None:
        return "free" if cost_per_case_usd == 0 else "priced"
    return "self-hosted" if hosting == "self-hosted" else "unpriced"


def _score_per_usd_text(group: str, value: float | None) -> str:
    if group == "free":
        return "free"
    if group == "self-hosted":
        return "by volume"
    return "-" if value is None else f"{value:,.0f}"


def summary_rows(records: list[Any]) -> list[dict[str, Any]]:
    """One row per model, ranked within its group (GROUPS, in that order): free by mean score,
    priced by quality per dollar, self-hosted and unpriced by mean score."""
    from planner.quality.stats import quality_per_dollar

    rows = []
    for r in records:
        s = r.summary.model_dump()
        group = _group(r.hosting, s["cost_per_case_usd"])
        per_usd = quality_per_dollar(s["mean_score"], s["cost_per_case_usd"])
        rows.append(
            {
                "model": r.model,
                "hosting": r.hosting,
                "served_model": r.served_model,
                **s,
                "ci": _ci(s),
                "group": group,
                "score_per_usd": per_usd,
                "score_per_usd_text": _score_per_usd_text(group, per_usd),
                "price": _price_label(r.price.model_dump(mode="json")),
                "pass_threshold": r.pass_threshold,
                "record_id": r.id,
            }
        )
    rows.sort(
        key=lambda x: (
            GROUPS.index(x["group"]),
            x["mean_score"] is None,
            -(x["score_per_usd"] or 0.0) if x["group"] == "priced" else 0.0,
            -(x["mean_score"] or 0.0),
            x["model"],
        )
    )
    rank: dict[str, int] = {}
    for row in rows:
        rank[row["group"]] = rank.get(row["group"], 0) + 1
        row["rank"] = rank[row["group"]]
    return rows


def summary_footer(rows: list[dict[str, Any]], threshold: float, out: Any) -> str:
    """What the summary table's columns mean and how each group is ranked (and priced)."""
    groups = {r["group"] for r in rows}
    lines = [
        "mean: of scored cases (unscored and failed cases left out, counted apart); 95% CI: bootstrap "
        f"over cases; pass: score >= {threshold:g}; $/case: the model's own tokens x its price.",
        "score/$: mean score per dollar of one case, the ranking among priced models.",
    ]
    if "free" in groups:
        lines.append("free: $0 per case, ranked first, by mean score (score per dollar is undefined).")
    if "self-hosted" in groups:
        lines.append(
            "self-hosted: not priced per case (its cost depends on volume), ranked apart by mean score; "
            "to rank it by score/$ give --price IN/OUT ($ per 1M tokens, your own cost), or compare it "
            "at your volume with planner route --quality FILE."
        )
    if "unpriced" in groups:
        lines.append("unpriced: ranked apart by mean score; give --price IN/OUT or --price PROVIDER/MODEL.")
    if any(r.get("judge_cost_usd") is not None for r in rows):
        lines.append("judge $: what judging cost over all cases: evaluation overhead, not in $/case.")
    lines.append(f"Quality is measured on your cases; prices are the catalog's or given. Records: {out}")
    return "\n".join(lines)


def tag_rows(records: list[Any]) -> list[dict[str, Any]]:
    out = []
    for r in records:
        for tag, summary in r.by_tag.items():
            s = summary.model_dump()
            out.append({"model": r.model, "tag": tag, **s, "ci": _ci(s)})
    return out


QUALITY_COST_COLUMNS = [
    Column("model", "model"),
    Column("cases_file", "cases"),
    Column("mean_score", "mean", ".3f"),
    Column("ci", "95% CI"),
    Column("pass_rate", "pass", ".0%"),
    Column("latency_p95_ms", "p95 ms", ",.0f"),
    Column("usd_per_month", "$/month at this volume", ",.0f"),
    Column("serving", "served by"),
]


def latest(records: list[Any]) -> list[Any]:
    """The newest record per (model, case file)."""
    best: dict[tuple[str, str], Any] = {}
    for r in records:
        key = (r.model, r.cases_sha256)
        if key not in best or r.measured_at > best[key].measured_at:
            best[key] = r
    return sorted(best.values(), key=lambda r: (r.cases_file, r.model))


def quality_section(
    catalog: Any, workload: Any, filters: Any, policy: Any, records: list[Any]
) -> dict[str, Any]:
    """Per evaluated model: its quality on the user's cases next to what it costs at this volume
    (an API at its price; a self-hosted model as its cheapest fleet within the SLOs)."""
    from planner.errors import PlannerError
    from planner.quality.pricing import tier_pricer

    records = latest(records)
    tiers = {
        r.id: {
            "hosting": r.hosting,
            "catalog_model": r.catalog_model,
            "quant": r.quant,
            "price": r.price.model_dump(mode="json"),
        }
        for r in records
    }
    price = tier_pricer(catalog, workload, filters, policy, tiers)
    rows = summary_rows(records)
    by_id = {r.id: r for r in records}
    for row in rows:
        r = by_id[row["record_id"]]
        row["cases_file"] = r.cases_file
        try:
            row["usd_per_month"], row["serving"] = price(r.id, workload.tokens_per_day)
        except PlannerError as exc:
            row["usd_per_month"], row["serving"] = None, f"not priced: {str(exc).split(':')[0]}"
    return {"models": rows, "tags": tag_rows(records)}
