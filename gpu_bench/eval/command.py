"""`gpu-bench eval`: options -> cases, targets, settings -> run -> tables (or JSON/CSV).

Imported by gpu_bench.cli at start-up: only click and planner's light modules at module level;
the runner, the catalog and pydantic are imported when the command runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from planner.commands.common import format_option
from planner.errors import PlannerError
from planner.report.quality import SUMMARY_COLUMNS, TAG_COLUMNS, summary_footer, summary_rows, tag_rows
from planner.report.render import render_rows, to_json


class CasesFailed(PlannerError):
    """Some cases failed after every retry: the records are written, the run is resumable (exit 1)."""

    exit_code = 1


def failed_lines(records: list[Any]) -> list[str]:
    """Per record with failed cases: how many, and the most common reason."""
    from collections import Counter

    from gpu_bench.eval.runner import failed

    out = []
    for r in records:
        bad = [c for c in r.results if failed(c.model_dump())]
        if bad:
            reasons = Counter((c.error or c.unscored_reason or "").split(":")[0] for c in bad)
            why = reasons.most_common(1)[0][0]
            out.append(f"{r.model}: {len(bad)} of {len(r.results)} case(s) failed (mostly {why})")
    return out


def eval_main(o: dict[str, Any]) -> None:
    import asyncio

    from gpu_bench.requirements import SERVE, require

    require(SERVE, "serve", "gpu-bench eval")

    from gpu_bench.eval.cases import read_cases
    from gpu_bench.eval.runner import EvalSettings, evaluate, progress_path
    from gpu_bench.eval.targets import resolve_targets
    from gpu_bench.serving.detect import check_endpoint
    from planner.catalog import Catalog
    from planner.catalog.files import check_writable
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
    check_writable(out, "--out")  # its progress file goes beside it
    new_folder = not out.parent.exists()
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
    failures = failed_lines(written)
    if fmt == "json":
        payload = {"models": rows, "by_tag": tags, "stopped": stopped, "failed": failures, "out": str(out)}
        click.echo(to_json(payload))
    elif written:
        click.echo(render_rows(rows, SUMMARY_COLUMNS, fmt))
        if tags and fmt == "table":
            click.echo("\nBy tag:")
            click.echo(render_rows(tags, TAG_COLUMNS, fmt))
        if fmt == "table":
            click.echo("\n" + summary_footer(rows, written[0].pass_threshold, out))
    if written:
        where = f" (created {out.parent})" if new_folder else ""
        click.echo(f"wrote {len(written)} QualityRecord(s) to {out}{where}", err=True)
    for message in stopped:
        click.echo(f"stopped: {message}", err=True)
    for message in failures:
        click.echo(f"failed: {message}", err=True)
    if stopped:
        kept = progress_path(out)
        raise PlannerError(
            f"{len(stopped)} model(s) stopped (see above): fix the endpoint, model name or key and run "
            "the same command again" + (f"; answered cases are kept in {kept}" if kept.exists() else "")
        )
    if failures:
        raise CasesFailed(
            f"{len(failures)} model(s) have failed cases (see above; their records are written, failed "
            "cases counted apart): run the same command again to try only those cases again"
        )


@click.command("eval")
@click.argument("cases", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--endpoint",
    multiple=True,
    help="Base URL of an OpenAI-compatible API; one for all models or one per --model, in order. "
    "[default: http://127.0.0.1:8000/v1]",
)
@click.option("--model", multiple=True, required=True, help="Model name at the endpoint (repeatable).")
@click.option(
    "--api-key-env",
    multiple=True,
    help="Environment variable holding an endpoint's API key (never stored); one for all or one per --model.",
)
@click.option(
    "--price",
    multiple=True,
    help="Per --model: auto, PROVIDER/MODEL (API catalog), IN/OUT ($ per 1M tokens), "
    "self-hosted:CATALOG_MODEL[:QUANT] or none. [default: auto]",
)
@click.option("--judge-endpoint", help="The judge's base URL. [default: the first --endpoint]")
@click.option("--judge-model", help="The judge's model name (needed by cases scored with 'judge').")
@click.option("--judge-api-key-env", help="Environment variable holding the judge's API key.")
@click.option("--judge-price", default="auto", show_default=True, help="The judge's price, as --price.")
@click.option(
    "--rubric",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A file with the judge's rubric (cases may carry their own). [default: correctness vs reference]",
)
@click.option(
    "--judge-retries",
    type=click.IntRange(0),
    default=2,
    show_default=True,
    help="Times an unreadable judge reply is asked again before the case is recorded unscored.",
)
@click.option(
    "--default-scorer",
    type=click.Choice(["exact", "contains", "regex", "json", "numeric", "judge"]),
    help="For cases without a scorer. [default: exact with 'expected', else judge]",
)
@click.option("--max-tokens", type=click.IntRange(1), default=512, show_default=True, help="Per answer.")
@click.option(
    "--concurrency",
    type=click.IntRange(1),
    default=4,
    show_default=True,
    help="Requests in flight per model (each --model has its own limit, the judge --judge-concurrency).",
)
@click.option("--judge-concurrency", type=click.IntRange(1), default=4, show_default=True)
@click.option(
    "--max-rps",
    type=click.FloatRange(min=0, min_open=True),
    help="At most this many requests/s per model (and for the judge).",
)
@click.option(
    "--max-retries",
    type=click.IntRange(0),
    default=6,
    show_default=True,
    help="Retries after 429, 5xx, timeouts and dropped connections (with backoff); a 429 pauses every "
    "request to that model at that URL (providers limit per model and key). Cases that still fail "
    "are recorded failed, exit code 1, and are tried again by the next run.",
)
@click.option(
    "--backoff-base",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Seconds before the first retry when the server gives no Retry-After; doubles, capped at 60.",
)
@click.option("--timeout", "timeout_s", type=float, default=300.0, show_default=True, help="Per request.")
@click.option(
    "--pass-threshold", type=click.FloatRange(0, 1), default=0.7, show_default=True, help="Score that passes."
)
@click.option(
    "--confidence",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.95,
    show_default=True,
    help="Of the bootstrap interval.",
)
@click.option("--bootstrap", type=click.IntRange(100), default=2000, show_default=True, help="Resamples.")
@click.option(
    "--catalog",
    multiple=True,
    help="Extra catalog directory for prices (layered over the bundled one; repeatable).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSONL to append one QualityRecord per model to; put it in a catalog's quality/ folder "
    "for planner route. [default: ./gpu-bench-eval.jsonl]",
)
@click.option("--force", is_flag=True, help="Evaluate again models already in --out with these settings.")
@format_option
def eval_cmd(**o: Any) -> None:
    """Score models on your own cases (JSONL: input, expected, scorer, tags): exact, contains,
    regex, JSON/JSON Schema, numeric tolerance or an LLM judge. Per model: mean score with a
    bootstrap interval, pass rate, latency, cost per case, ranked by quality per dollar (free,
    self-hosted and unpriced models ranked apart, by mean score).

    Limits are per model: --concurrency, --max-rps and the 429 pause apply to each (URL, model,
    key) on its own, as providers limit requests per model and key. An endpoint nothing listens
    on, a refused key or an unknown model stops that model at once.

    Exit code: 0 every case answered; 1 some cases failed after every retry (records written,
    run again to retry only those); 2 bad input, or a model stopped (unreachable, key, model name).

    Example: gpu-bench eval cases.jsonl --endpoint http://127.0.0.1:8000/v1 --model
    llama-3.1-8b-instruct --endpoint https://api.openai.com/v1 --model gpt-4o-mini
    --api-key-env '' --api-key-env OPENAI_API_KEY --out quality/support.jsonl
    """
    o["api_key_env"] = tuple(v or None for v in o["api_key_env"])
    eval_main(o)
