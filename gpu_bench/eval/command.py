"""`gpu-bench eval`: options -> cases, targets, settings -> run -> tables (or JSON/CSV)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

from planner.errors import PlannerError
from planner.report.quality import SUMMARY_COLUMNS, TAG_COLUMNS, summary_rows, tag_rows
from planner.report.render import render_rows, to_json


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
    if cases.needs_judge and judge is None:
        n = sum(c.scorer["type"] == "judge" for c in cases.cases)
        raise PlannerError(
            f"{n} case(s) are scored by a judge: give --judge-model (and --judge-endpoint if it is "
            "elsewhere), or give those cases 'expected' and a scorer"
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
