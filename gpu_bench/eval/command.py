"""`gpu-bench eval`: options -> cases, targets, settings -> run -> tables (or JSON/CSV)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

from planner.errors import PlannerError
from planner.report.render import Column, render_rows, to_json

SUMMARY_COLUMNS = [
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
    Column("score_per_usd", "score/$", ",.0f"),
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


def summary_rows(records: list[Any]) -> list[dict[str, Any]]:
    """One row per model, ranked by quality per dollar (priced first), then by mean score."""
    from planner.quality.stats import quality_per_dollar

    rows = []
    for r in records:
        s = r.summary.model_dump()
        rows.append(
            {
                "model": r.model,
                "hosting": r.hosting,
                "served_model": r.served_model,
                **s,
                "ci": _ci(s),
                "score_per_usd": quality_per_dollar(s["mean_score"], s["cost_per_case_usd"]),
                "price": _price_label(r.price.model_dump(mode="json")),
                "pass_threshold": r.pass_threshold,
                "record_id": r.id,
            }
        )
    rows.sort(
        key=lambda x: (
            x["score_per_usd"] is None,
            -(x["score_per_usd"] or 0.0),
            -(x["mean_score"] or 0.0),
        )
    )
    for i, row in enumerate(rows, start=1):
        row["rank"] = i
    return rows


def tag_rows(records: list[Any]) -> list[dict[str, Any]]:
    out = []
    for r in records:
        for tag, summary in r.by_tag.items():
            s = summary.model_dump()
            out.append({"model": r.model, "tag": tag, **s, "ci": _ci(s)})
    return out


def eval_main(o: dict[str, Any]) -> None:
    from gpu_bench.eval.cases import read_cases
    from gpu_bench.eval.runner import EvalSettings, evaluate, progress_path
    from gpu_bench.eval.targets import check_endpoint, resolve_targets
    from planner.catalog import Catalog
    from planner.quality.pricing import resolve_price

    cases = read_cases(o["cases"], o["default_scorer"])
    catalog = Catalog.default(o["catalog"])
    targets = resolve_targets(catalog, o["endpoint"], o["model"], o["api_key_env"], o["price"])
    judge = None
    if o["judge_model"] or o["judge_endpoint"]:
        if not o["judge_model"]:
            raise PlannerError("--judge-endpoint needs --judge-model (the judge's model name)")
        from gpu_bench.eval.targets import Target

        endpoint = check_endpoint(o["judge_endpoint"] or targets[0].endpoint, "--judge-endpoint")
        hosting, catalog_model, quant, price = resolve_price(catalog, o["judge_model"], o["judge_price"])
        judge = Target(
            endpoint, o["judge_model"], o["judge_api_key_env"], hosting, catalog_model, quant, price
        )
    rubric = None
    if o["rubric"]:
        try:
            rubric = Path(o["rubric"]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise PlannerError(f"cannot read --rubric {o['rubric']}: {exc.strerror or exc}") from None
        if not rubric:
            raise PlannerError(f"--rubric {o['rubric']} is empty")
    settings = EvalSettings(
        max_tokens=o["max_tokens"],
        concurrency=o["concurrency"],
        judge_concurrency=o["judge_concurrency"],
        max_rps=o["max_rps"],
        max_retries=o["max_retries"],
        backoff_base_s=o["backoff_base"],
        timeout_s=o["timeout_s"],
        judge_retries=o["judge_retries"],
        pass_threshold=o["pass_threshold"],
        confidence=o["confidence"],
        resamples=o["bootstrap"],
    )
    if rubric:
        settings.rubric = rubric
    out: Path = o["out"] or Path("gpu-bench-eval.jsonl")
    n_judge = sum(c.scorer["type"] == "judge" for c in cases.cases)
    click.echo(
        f"{len(cases.cases)} cases ({n_judge} judged) x {len(targets)} model(s) -> {out} "
        f"(progress in {progress_path(out).name}; Ctrl-C keeps it, run again to resume)",
        err=True,
    )
    try:
        written, stopped = asyncio.run(evaluate(cases, targets, judge, settings, out, o["force"]))
    except KeyboardInterrupt:
        raise PlannerError(
            f"interrupted: finished cases are kept in {progress_path(out)}; run the same command to resume"
        ) from None
    fmt = o["fmt"]
    rows = summary_rows(written)
    tags = tag_rows(written)
    if fmt == "json":
        click.echo(to_json({"models": rows, "by_tag": tags, "stopped": stopped, "out": str(out)}))
    elif written:
        click.echo(render_rows(rows, SUMMARY_COLUMNS, fmt))
        if tags and fmt == "table":
            click.echo("\nBy tag:")
            click.echo(render_rows(tags, TAG_COLUMNS, fmt))
        if fmt == "table":
            threshold = written[0].pass_threshold
            click.echo(
                f"\nmean: of scored cases (unscored and failed cases left out, counted apart); "
                f"95% CI: bootstrap over cases; pass: score >= {threshold:g}; score/$: mean score per "
                "dollar of one case, the ranking (priced models first). Quality is measured on your "
                f"cases; prices are the catalog's or given. Records: {out}"
            )
    for message in stopped:
        click.echo(f"stopped: {message}", err=True)
    if stopped:
        raise PlannerError(
            f"{len(stopped)} model(s) stopped (see above); fix the endpoint, model name or key and run "
            "again: finished cases are kept"
        )
