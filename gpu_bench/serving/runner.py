"""`gpu-bench serve`: options checked, the server launched (if asked), levels measured or the
capacity searched, one record per level appended as soon as it is measured."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import click

from gpu_bench.serving.bench import (
    Probe,
    ServeSetup,
    find_capacity,
    measure_level,
    meets_slo,
    save,
    stored_probe,
    to_record,
    write_raw,
)
from gpu_bench.serving.metrics import Slo
from gpu_bench.store import RecordStore
from planner.errors import PlannerError
from planner.units import parse_int_count


def _levels(text: str | None, what: str, integer: bool) -> list[float]:
    if not text:
        return []
    try:
        values = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise PlannerError(f"{what}: expected comma-separated numbers, got {text!r}") from None
    if not values or any(v <= 0 for v in values) or (integer and any(v != int(v) for v in values)):
        raise PlannerError(
            f"{what}: levels must be positive{' whole numbers' if integer else ''}, got {text!r}"
        )
    return values


def _requests(o: dict[str, Any], tokenizer: Any, n: int, input_len: int, output_len: int) -> tuple[list, str]:
    from gpu_bench.serving.workloads import jsonl_requests, random_requests, sharegpt_requests

    kind, _, path = str(o["dataset"]).partition(":")
    if kind == "random":
        return random_requests(n, input_len, output_len, tokenizer), "random"
    if kind == "jsonl" and path:
        return jsonl_requests(Path(path), n, output_len, tokenizer), f"jsonl:{Path(path).name}"
    if kind == "sharegpt" and path:
        return sharegpt_requests(Path(path), n, tokenizer), f"sharegpt:{Path(path).name}"
    raise PlannerError(f"--dataset {o['dataset']!r}: use random, jsonl:PATH or sharegpt:PATH")


def _where(o: dict[str, Any], env: Any) -> tuple[str, str | None]:
    from gpu_bench.env import catalog_gpu_id

    if o["gpu"]:
        from planner.catalog import Catalog

        Catalog.default().gpu(o["gpu"])
        return o["device"] or "cuda", o["gpu"]
    if o["device"] == "cpu" or not env.gpus:
        return "cpu", None
    return "cuda", catalog_gpu_id(env.gpus[0])


def _catalog_model(o: dict[str, Any]) -> str:
    if o["catalog_model"]:
        from planner.catalog import Catalog

        return Catalog.default().model(o["catalog_model"]).id
    return o["model"]


def serve_main(o: dict[str, Any]) -> None:
    from gpu_bench.requirements import SERVE, require

    require(SERVE, "serve", "gpu-bench serve")
    from gpu_bench.env import capture
    from gpu_bench.serving.client import OpenAIClient
    from gpu_bench.serving.launcher import MetricsScraper, ServerProcess, server_kind
    from gpu_bench.serving.workloads import load_tokenizer
    from planner.records import QUANT_FORMATS

    conc = _levels(o["concurrency"], "--concurrency", integer=True)
    rates = _levels(o["request_rate"], "--request-rate", integer=False)
    if conc and rates:
        raise PlannerError("give --concurrency or --request-rate, not both")
    if not conc and not rates and not o["find_capacity"]:
        conc = [1.0, 4.0, 16.0]
    slo = Slo(o["slo_ttft_ms"], o["slo_tpot_ms"], o["slo_e2e_ms"], o["slo_percentile"])
    if o["find_capacity"] and not slo.as_dict():
        raise PlannerError("--find-capacity needs at least one of --slo-ttft-ms, --slo-tpot-ms, --slo-e2e-ms")
    if o["quant"] not in QUANT_FORMATS:
        from planner.errors import UnknownIdError

        raise UnknownIdError("quantization format", o["quant"], QUANT_FORMATS)
    input_len = parse_int_count(o["input_len"], "--input-len")
    output_len = parse_int_count(o["output_len"], "--output-len")
    n = o["num_requests"]
    warmup = o["warmup"] if o["warmup"] is not None else min(10, n // 10)
    tokenizer = load_tokenizer(o["tokenizer"])
    requests, dataset = _requests(o, tokenizer, n + warmup, input_len, output_len)
    env = capture()
    device, gpu = _where(o, env)
    store = RecordStore(o["out"] or Path("gpu-bench-serve.jsonl"))
    launch = o["launch"]
    server = None
    with contextlib.ExitStack() as stack:
        if launch:
            log = store.path.with_suffix(".server.log")
            click.echo(f"starting: {launch} (log: {log})", err=True)
            server = stack.enter_context(ServerProcess(launch, o["endpoint"], log, o["ready_timeout"]))
        loop = asyncio.new_event_loop()
        stack.callback(loop.close)
        client = OpenAIClient(
            o["endpoint"],
            o["model"],
            o["api"],
            timeout_s=o["timeout_s"],
            api_key_env=o["api_key_env"],
            tokenizer=tokenizer,
        )
        stack.callback(lambda: loop.run_until_complete(client.aclose()))
        if not loop.run_until_complete(client.probe_extras()):
            click.echo(
                "note: the server refuses ignore_eos/min_tokens; output lengths may be shorter", err=True
            )
        setup = ServeSetup(
            endpoint=o["endpoint"],
            model=o["model"],
            catalog_model=_catalog_model(o),
            api=o["api"],
            input_len=input_len,
            output_len=output_len,
            num_requests=n,
            warmup=warmup,
            dataset=dataset,
            engine=server_kind(launch or "") if launch else "openai-compatible",
            engine_version=server.version() if server else None,
            launch=launch,
            device=device,
            gpu=gpu,
            gpu_count=o["gpu_count"],
            tp=o["tp"],
            quant=o["quant"],
            burstiness=o["burstiness"],
            slo=slo,
            server_args={"ignore_eos_sent": client.send_extras},
        )
        kind = "rate" if rates else "concurrency"

        def probe(level: float) -> Probe:
            key = setup.key(kind, level)
            old = stored_probe(store, key)
            if old is not None:
                click.echo(f"{kind} {level:g}: recorded before, reused", err=True)
                return Probe(level, meets_slo(old, slo), old.get("output_tokens_per_s") or 0.0, old)
            with MetricsScraper(setup.endpoint.removesuffix("/v1")) as scraper:
                metrics, load = measure_level(
                    loop,
                    client,
                    requests,
                    setup,
                    concurrency=int(level) if kind == "concurrency" else None,
                    rate=level if kind == "rate" else None,
                    max_duration_s=o["max_duration"],
                )
            record = to_record(metrics, load, setup, kind, level, env, scraper.summary())
            row = save(store, record)
            if o["raw_out"]:
                write_raw(o["raw_out"], load, level)
            if load.health.saturated:
                click.echo(
                    f"warning: the client was saturated at {kind} {level:g}; see the record's notes", err=True
                )
            meets = bool(metrics.meets_slo) if slo.as_dict() else True
            click.echo(
                f"{kind} {level:g}: {metrics.output_tokens_per_s:,.1f} output tok/s, {metrics.completed} ok, "
                f"{metrics.failed} failed" + (f", meets SLOs: {meets}" if slo.as_dict() else ""),
                err=True,
            )
            return Probe(level, meets, metrics.output_tokens_per_s, row)

        if o["find_capacity"]:
            best, probes = find_capacity(
                probe,
                start=rates[0] if rates else (conc[0] if conc else 1),
                limit=o["max_concurrency"]
                if kind == "concurrency"
                else (rates[-1] if len(rates) > 1 else 1024),
                integer=kind == "concurrency",
            )
            rows = [p.record for p in probes]
            summary = {
                "capacity": None
                if best is None
                else {
                    "level": best.level,
                    "kind": kind,
                    "output_tokens_per_s": best.output_tokens_per_s,
                    "record": best.record.get("id"),
                },
                "slo": {**slo.as_dict(), "percentile": slo.percentile},
                "probes": len(probes),
            }
        else:
            rows = [probe(level).record for level in (rates or conc)]
            summary = None
    _print(rows, kind, o["fmt"], summary, store.path)


def _print(
    rows: list[dict[str, Any]], kind: str, fmt: str, summary: dict[str, Any] | None, path: Path
) -> None:
    from gpu_bench.cli import SERVE_COLUMNS
    from planner.report.render import render_rows, to_json

    for r in rows:
        r["level"] = r.get("concurrency") if kind == "concurrency" else r.get("request_rate_per_s")
    if fmt == "json":
        click.echo(to_json({"records": rows, "capacity_search": summary}))
        return
    click.echo(render_rows(rows, SERVE_COLUMNS, fmt))
    if fmt != "table":
        return
    if summary is not None:
        cap = summary["capacity"]
        if cap is None:
            click.echo(f"\nno {kind} level met the SLOs {summary['slo']} ({summary['probes']} probes)")
        else:
            click.echo(
                f"\ncapacity: {kind} {cap['level']:g} meets the SLOs {summary['slo']} at "
                f"{cap['output_tokens_per_s']:,.1f} output tok/s ({summary['probes']} probes)"
            )
    click.echo(f"records appended to {path}")
