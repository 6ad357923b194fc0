"""`gpu-bench serve`: options checked, the server launched (if asked) and identified, levels
measured or the capacity searched, one record per level appended as soon as it is measured.

Ctrl-C and SIGTERM end a run the same way: the level in flight is cancelled (its requests
closed, nothing of it recorded), the client closed, a launched server torn down (also while it is
still starting), finished levels kept; exit code 130 (SIGINT) or 143 (SIGTERM), no traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import signal
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
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
    stored_probes,
    to_record,
    write_raw,
)
from gpu_bench.serving.metrics import Slo
from gpu_bench.store import RecordStore
from planner.catalog.files import check_writable
from planner.errors import PlannerError
from planner.units import parse_int_count

GPU_SERVERS = ("vllm", "sglang", "tgi")  # kinds that run on a GPU unless they say otherwise


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


def level_seed(seed: int, kind: str, level: float) -> int:
    """A seed of its own for every level: fresh prompts each, the same ones again for the same seed."""
    digest = hashlib.sha256(f"{seed}:{kind}:{level:g}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass
class Hardware:
    device: str
    gpu: str | None
    gpu_count: int
    tp: int
    source: str  # where each came from: goes into the record


def _is_local(endpoint: str) -> bool:
    host = urllib.parse.urlsplit(endpoint).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def server_hardware(o: dict[str, Any], info: Any, env: Any, local: bool, launch_tp: int | None) -> Hardware:
    """The SERVER's device, GPU, GPU count and TP: stated > what the server says > this machine
    (when the server runs here) > a guess from the server's kind; each field says which."""
    from gpu_bench.env import catalog_gpu_id

    here_device = "cuda" if env.gpus else "cpu"
    here_gpu = catalog_gpu_id(env.gpus[0]) if env.gpus else None
    pick = [
        ("stated", o["device"] or ("cuda" if o["gpu"] else None)),
        ("server", info.device),
        ("this machine", here_device if local else None),
        ("guessed", "cuda" if info.kind in GPU_SERVERS else "cpu"),
    ]
    device_from, device = next((w, v) for w, v in pick if v)
    gpu_from, gpu = ("stated", o["gpu"]) if o["gpu"] else (None, None)
    if gpu is None and local and device != "cpu" and here_gpu:
        gpu_from, gpu = "this machine", here_gpu
    if device == "cpu" and gpu:
        raise PlannerError(f"--device cpu with --gpu {gpu}: a CPU server has no GPU; drop one of them")
    tp_from, tp = next(
        (w, v)
        for w, v in (("stated", o["tp"]), ("server", info.tp), ("launch", launch_tp), ("default", 1))
        if v
    )
    count_from, count = next(
        (w, v) for w, v in (("stated", o["gpu_count"]), ("server", info.gpu_count), ("tp", tp)) if v
    )
    if tp > count:
        if count_from == "stated":
            raise PlannerError(f"--tp {tp} needs at least {tp} GPUs, but --gpu-count is {count}")
        count_from, count = "tp", tp
    source = f"device: {device_from}; gpu: {gpu_from or 'unknown'}; gpu_count: {count_from}; tp: {tp_from}"
    return Hardware(device, gpu, count, tp, source)


def _number(value: Any, cast: type) -> Any:
    return cast(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _catalog_model(o: dict[str, Any]) -> str:
    """The catalog id of --catalog-model (checked), else the served name."""
    if o["catalog_model"]:
        from planner.catalog import Catalog

        return Catalog.default().model(o["catalog_model"]).id
    return o["model"]


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[list[int]]:
    """SIGTERM does what Ctrl-C does, wherever it lands: in the event loop (asyncio's handler
    cancels the run), or in plain code (a KeyboardInterrupt). Yields the signals received."""
    got: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield got
        return

    def on_term(signum: int, frame: Any) -> None:
        got.append(signum)
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):
            handler(signal.SIGINT, frame)
        else:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield got
    finally:
        signal.signal(signal.SIGTERM, previous)


def _check(o: dict[str, Any]) -> tuple[list[float], list[float], Slo]:
    from gpu_bench.serving.detect import check_endpoint
    from planner.records import QUANT_FORMATS

    check_endpoint(o["endpoint"], "--endpoint")
    if o["launch"] is not None:
        from gpu_bench.serving.launcher import launch_argv

        launch_argv(o["launch"])
    if o["api_key_env"] and not os.environ.get(o["api_key_env"]):
        raise PlannerError(
            f"--api-key-env {o['api_key_env']}: the variable is not set; export {o['api_key_env']}=... first"
        )
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
    if o["device"] == "cpu" and o["gpu"]:
        raise PlannerError(f"--device cpu with --gpu {o['gpu']}: a CPU server has no GPU; drop one of them")
    if o["tp"] and o["gpu_count"] and o["tp"] > o["gpu_count"]:
        raise PlannerError(
            f"--tp {o['tp']} needs at least {o['tp']} GPUs, but --gpu-count is {o['gpu_count']}"
        )
    return conc, rates, slo


def serve_main(o: dict[str, Any]) -> None:
    from gpu_bench.requirements import SERVE, require

    require(SERVE, "serve", "gpu-bench serve")
    from gpu_bench.serving.workloads import Workload, load_tokenizer

    conc, rates, slo = _check(o)
    if o["gpu"]:  # before anything is launched
        from planner.catalog import Catalog

        Catalog.default().gpu(o["gpu"])
    o = {**o, "catalog_model": _catalog_model(o)}
    input_len = parse_int_count(o["input_len"], "--input-len")
    output_len = parse_int_count(o["output_len"], "--output-len")
    tokenizer = load_tokenizer(o["tokenizer"])
    workload = Workload(str(o["dataset"]), tokenizer, input_len, output_len)
    out = o["out"] or Path("gpu-bench-serve.jsonl")
    check_writable(out, "--out")
    if o["raw_out"]:
        check_writable(o["raw_out"], "--raw-out")
    if not o["launch"]:
        _require_answer(o["endpoint"])
    store = RecordStore(out)
    recorded: list[dict[str, Any]] = []
    with sigterm_as_interrupt() as signals:
        try:
            rows, kind, summary = _run(o, conc, rates, slo, workload, input_len, output_len, store, recorded)
        except KeyboardInterrupt:
            how = "SIGTERM" if signals else "Ctrl-C"
            click.echo(
                f"\ninterrupted ({how}): {len(recorded)} level(s) measured in this run are in "
                f"{store.path}; the level in progress is not recorded"
                + ("; the launched server was stopped" if o["launch"] else ""),
                err=True,
            )
            click.get_current_context().exit(143 if signals else 130)
    _print(rows, kind, o["fmt"], summary, store.path)


def _require_answer(endpoint: str) -> None:
    """A server that is not there is a wrong --endpoint (or one not started), not a measurement:
    refused before the first level, nothing recorded. One that dies mid-run still ends its level
    as a record with its errors."""
    from gpu_bench.serving.detect import unreachable

    why = unreachable(endpoint)
    if why:
        raise PlannerError(
            f"nothing answers at --endpoint {endpoint} ({why}): start the server, check the URL, or "
            "give --launch to start one; nothing recorded"
        )


def _run(
    o: dict[str, Any],
    conc: list[float],
    rates: list[float],
    slo: Slo,
    workload: Any,
    input_len: int,
    output_len: int,
    store: RecordStore,
    recorded: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], str, dict[str, Any] | None]:
    from gpu_bench.env import capture
    from gpu_bench.serving.client import OpenAIClient
    from gpu_bench.serving.detect import ServerInfo, detect_server, http_get, kind_of_command, tp_of_command
    from gpu_bench.serving.launcher import MetricsScraper, ServerProcess

    n = o["num_requests"]
    warmup = o["warmup"] if o["warmup"] is not None else min(10, n // 10)
    seed = o["seed"] if o["seed"] is not None else random.SystemRandom().randrange(2**31)
    env = capture()  # the client's machine: where gpu-bench runs
    launch = o["launch"]
    root = o["endpoint"].rstrip("/").removesuffix("/v1")
    with contextlib.ExitStack() as stack:
        runner = stack.enter_context(asyncio.Runner())
        if launch:
            log = store.path.with_suffix(".server.log")
            click.echo(f"starting: {launch} (log: {log})", err=True)
            stack.enter_context(ServerProcess(launch, o["endpoint"], log, o["ready_timeout"]))
        info = detect_server(http_get(root))
        if o["server_kind"]:
            if o["server_kind"] != info.kind:
                info = ServerInfo(o["server_kind"], None, "stated (--server-kind)")
            else:
                info.how = f"stated (--server-kind), confirmed by {info.how}"
        elif info.kind == "openai-compatible" and launch and kind_of_command(launch) != info.kind:
            info = ServerInfo(kind_of_command(launch), None, "guessed from the --launch command")
        hw = server_hardware(
            o, info, env, bool(launch) or _is_local(o["endpoint"]), tp_of_command(launch or "")
        )
        click.echo(
            f"server: {info.kind} {info.version or '(version unknown)'} ({info.how}); "
            f"device {hw.device}, gpu {hw.gpu or 'unknown'} x{hw.gpu_count}, tp {hw.tp} ({hw.source})",
            err=True,
        )
        if hw.device != "cpu" and hw.gpu is None:
            click.echo(
                "warning: the server's GPU is unknown; state --gpu ID (and --gpu-count N) so that the "
                "planner can use these records",
                err=True,
            )
        client = OpenAIClient(
            o["endpoint"],
            o["model"],
            o["api"],
            timeout_s=o["timeout_s"],
            api_key_env=o["api_key_env"],
            tokenizer=workload.tokenizer,
        )
        stack.callback(lambda: runner.run(client.aclose()))
        if not runner.run(client.probe_extras()):
            click.echo(
                "note: the server refuses ignore_eos/min_tokens; output lengths may be shorter", err=True
            )
        server_args: dict[str, Any] = {
            "ignore_eos_sent": client.send_extras,
            "server_detected_by": info.how,
            **{f"server_{k}": v for k, v in info.details.items()},
            "hardware_from": hw.source,
            "env_describes": "the client machine (device, gpu, gpu_count and tp describe the server)",
            "seed": seed,
            "prompts": "fresh per level" if workload.name == "random" else "fresh per level, uniquely tagged",
            "prompts_sized_by": workload.sized_by,
            "timeout_s": o["timeout_s"],
        }
        setup = ServeSetup(
            endpoint=o["endpoint"],
            model=o["model"],
            catalog_model=o["catalog_model"],
            api=o["api"],
            input_len=input_len,
            output_len=output_len,
            num_requests=n,
            warmup=warmup,
            dataset=workload.name,
            engine=info.kind,
            engine_version=info.version,
            launch=launch,
            device=hw.device,
            gpu=hw.gpu,
            gpu_count=hw.gpu_count,
            tp=hw.tp,
            quant=o["quant"],
            burstiness=o["burstiness"],
            slo=slo,
            max_duration_s=o["max_duration"],
            lag_limit_ms=o["client_lag_limit_ms"],
            kv_cache_tokens=_number(info.details.get("kv_cache_tokens"), int),
            max_concurrency_engine=_number(info.details.get("kv_cache_max_concurrency"), float),
            server_args=server_args,
        )
        kind = "rate" if rates else "concurrency"

        def probe(level: float) -> Probe:
            key = setup.key(kind, level)
            for old in reversed(stored_probes(store, key)):
                verdict = meets_slo(old, slo) if slo.as_dict() else True
                if verdict is not None:
                    click.echo(f"{kind} {level:g}: recorded before, reused", err=True)
                    return Probe(level, verdict, old.get("output_tokens_per_s") or 0.0, old)
                click.echo(
                    f"{kind} {level:g}: recorded before, but not at p{slo.percentile:g}; measuring again",
                    err=True,
                )
                break
            requests = workload.requests(n + warmup, level_seed(seed, kind, level))
            with MetricsScraper(root) as scraper:
                metrics, load = measure_level(
                    runner,
                    client,
                    requests,
                    setup,
                    concurrency=int(level) if kind == "concurrency" else None,
                    rate=level if kind == "rate" else None,
                    seed=level_seed(seed, "arrivals", level),
                )
            record = to_record(metrics, load, setup, kind, level, env, scraper.summary())
            row = save(store, record)
            recorded.append(row)
            if o["raw_out"]:
                write_raw(o["raw_out"], load, kind, level)
            if load.health.saturated:
                click.echo(
                    f"warning: the client was saturated at {kind} {level:g}; see the record's notes", err=True
                )
            meets = bool(metrics.meets_slo) if slo.as_dict() else True
            cut = f", cut at {setup.max_duration_s:g} s ({load.cancelled} cancelled)" if load.cut else ""
            click.echo(
                f"{kind} {level:g}: {metrics.output_tokens_per_s:,.1f} output tok/s, {metrics.completed} ok, "
                f"{metrics.failed} failed{cut}" + (f", meets SLOs: {meets}" if slo.as_dict() else ""),
                err=True,
            )
            return Probe(level, meets, metrics.output_tokens_per_s, row)

        if not o["find_capacity"]:
            return [probe(level).record for level in (rates or conc)], kind, None
        best, probes = find_capacity(
            probe,
            start=rates[0] if rates else (conc[0] if conc else 1),
            limit=o["max_concurrency"] if kind == "concurrency" else (rates[-1] if len(rates) > 1 else 1024),
            integer=kind == "concurrency",
        )
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
        return [p.record for p in probes], kind, summary


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
