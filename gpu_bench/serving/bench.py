"""A serving benchmark: load levels against one endpoint, each a MeasurementRecord; and the SLO
capacity search (bracket, then bisect, over concurrency or rate), resumable from its records."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gpu_bench.serving.client import OpenAIClient, RequestSpec
from gpu_bench.serving.loadgen import LoadResult, run_load
from gpu_bench.serving.metrics import ServingMetrics, Slo, calculate_metrics, measured_window, phase
from gpu_bench.serving.workloads import PROMPT_WORDS
from gpu_bench.store import RecordStore


@dataclass
class ServeSetup:
    """What a serving record says about the run besides the metrics."""

    endpoint: str
    model: str  # the name the server serves
    catalog_model: str  # catalog id (or the served name when not in the catalog)
    api: str
    input_len: int
    output_len: int
    num_requests: int
    warmup: int
    dataset: str
    engine: str  # server kind: vllm, sglang, tgi, llama.cpp, transformers-serve, openai-compatible
    engine_version: str | None = None
    launch: str | None = None
    device: str = "cpu"  # the server's, as are gpu, gpu_count and tp (the client's machine is env)
    gpu: str | None = None
    gpu_count: int = 1
    tp: int = 1
    quant: str = "bf16"
    burstiness: float = 1.0
    slo: Slo = field(default_factory=Slo)
    max_duration_s: float = 3600.0
    lag_limit_ms: float = 25.0
    kv_cache_tokens: int | None = None  # as the server reports them (vLLM's cache_config_info)
    max_concurrency_engine: float | None = None
    server_args: dict[str, Any] = field(default_factory=dict)  # recorded, not part of the key

    def key(self, level_kind: str, level: float) -> str:
        skip = ("engine_version", "server_args", "slo", "max_duration_s", "lag_limit_ms")
        skip += ("kv_cache_tokens", "max_concurrency_engine")
        data = {k: v for k, v in asdict(self).items() if k not in skip}
        data.update({"level_kind": level_kind, "level": level})
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def measure_level(
    runner: asyncio.Runner,
    client: OpenAIClient,
    requests: list[RequestSpec],
    setup: ServeSetup,
    concurrency: int | None = None,
    rate: float | None = None,
    seed: int = 0,
) -> tuple[ServingMetrics, LoadResult]:
    load = runner.run(
        run_load(
            client,
            requests,
            concurrency=concurrency,
            rate=rate,
            burstiness=setup.burstiness,
            warmup=setup.warmup,
            max_duration_s=setup.max_duration_s,
            seed=seed,
            lag_limit_ms=setup.lag_limit_ms,
        )
    )
    return calculate_metrics(load.results, setup.slo, load.load_end), load


def _notes(metrics: ServingMetrics, load: LoadResult, setup: ServeSetup) -> list[str]:
    notes = []
    sources = metrics.tokens_sources
    if metrics.tokens_source == "tokenizer":
        notes.append(
            f"{sources.get('tokenizer', 0)} of {metrics.completed} requests came without usage: "
            "their output tokens were counted with the local tokenizer"
        )
    elif metrics.tokens_source == "chunks":
        notes.append(
            f"{sources.get('chunks', 0)} of {metrics.completed} requests came without usage and no "
            "tokenizer was given: their output tokens are content chunks"
        )
    if setup.server_args.get("prompts_sized_by") == "words":
        notes.append(
            f"prompt lengths sized by words ({len(PROMPT_WORDS)} common ones, about a token each), no "
            "--tokenizer: input_tokens is the server's count where its usage gives one"
        )
    if not metrics.window_steady:
        notes.append(
            "no steady state (no request ran wholly between the end of warm-up and the first idle "
            "client slot): the window is the whole measured run, cool-down included"
        )
    if metrics.completed and metrics.latency_requests < min(10, metrics.completed):
        notes.append(
            f"latency statistics over {metrics.latency_requests} requests only (the others were "
            "warm-up, ramp or cool-down): give --num-requests several times the concurrency"
        )
    if load.cut:
        notes.append(
            f"level cut at --max-duration {setup.max_duration_s:g} s: {load.cancelled} requests in "
            f"flight cancelled (not in the latency statistics), {load.not_sent} not sent"
        )
    if load.health.saturated:
        notes.append(
            f"client saturated (event-loop lag p99 {load.health.loop_lag_p99_ms:.1f} ms, limit "
            f"{load.health.lag_limit_ms:g}; CPU {load.health.cpu_share:.0%}): latencies include client delay"
        )
    return notes


def to_record(
    metrics: ServingMetrics,
    load: LoadResult,
    setup: ServeSetup,
    kind: str,
    level: float,
    env: Any,
    server_metrics: dict[str, Any],
) -> Any:
    from planner.records import EngineInfo, MeasurementRecord, Percentiles

    now = dt.datetime.now(dt.UTC)
    key = setup.key(kind, level)
    status = "ok" if metrics.completed else "error"
    pct = lambda d: Percentiles(**d) if d else None  # noqa: E731
    slo_given = bool(setup.slo.as_dict())
    args = {
        "config_key": key,
        "endpoint": setup.endpoint,
        "served_model": setup.model,
        "api": setup.api,
        "launch": setup.launch,
        "window": "steady" if metrics.window_steady else "whole-run",
        "window_s": round(metrics.duration_s, 4),
        "latency_requests": metrics.latency_requests,
        **{f"requests_{p}": n for p, n in sorted(metrics.phases.items())},
        "level_wall_s": round(load.wall_s, 4),
        "max_duration_s": setup.max_duration_s,
        "cut_at_max_duration": load.cut,
        "cancelled_requests": load.cancelled,
        "unsent_requests": load.not_sent,
        "slo_percentile": setup.slo.percentile if slo_given else None,
        "slo_met": metrics.meets_slo if slo_given else None,
        **{f"{name}_at_slo_percentile": round(v, 4) for name, v in metrics.at_slo_percentile.items()},
        "client_loop_lag_p99_ms": round(load.health.loop_lag_p99_ms, 2),
        "client_lag_limit_ms": load.health.lag_limit_ms,
        "client_cpu_share": round(load.health.cpu_share, 3),
        **setup.server_args,
        **server_metrics,
    }
    error = None
    if not metrics.completed:
        error = f"no request completed; errors: {metrics.errors}; cancelled: {load.cancelled}"
    return MeasurementRecord(
        id=f"serve-{key}-{now.strftime('%Y%m%dT%H%M%S%f')}",
        basis="measured",
        status=status,
        error=error,
        model=setup.catalog_model,
        quant=setup.quant,  # type: ignore[arg-type]
        engine=EngineInfo(
            name=setup.engine,
            version=setup.engine_version,
            args={k: v for k, v in args.items() if v is not None},
        ),
        weights="unknown",
        device=setup.device,  # type: ignore[arg-type]
        gpu=setup.gpu,
        gpu_count=setup.gpu_count,
        tensor_parallel=setup.tp,
        mode="serving",
        concurrency=int(level) if kind == "concurrency" else None,
        request_rate_per_s=float(level) if kind == "rate" else None,
        input_tokens=metrics.input_tokens_mean or setup.input_len,
        output_tokens=metrics.output_tokens_mean or setup.output_len,
        num_requests=(metrics.completed + metrics.failed) or None,
        dataset=setup.dataset,
        output_tokens_per_s=metrics.output_tokens_per_s if metrics.completed else None,
        input_tokens_per_s=metrics.input_tokens_per_s,
        total_tokens_per_s=metrics.total_tokens_per_s if metrics.completed else None,
        requests_per_s=metrics.requests_per_s,
        goodput_requests_per_s=metrics.goodput_requests_per_s,
        slo=setup.slo.as_dict(),
        ttft_ms=pct(metrics.ttft_ms),
        tpot_ms=pct(metrics.tpot_ms),
        itl_ms=pct(metrics.itl_ms),
        e2e_ms=pct(metrics.e2e_ms),
        errors=metrics.errors,
        kv_cache_tokens=setup.kv_cache_tokens,
        max_concurrency_engine=setup.max_concurrency_engine,
        output_tokens_source=metrics.tokens_source
        if metrics.tokens_source in ("usage", "tokenizer")
        else None,
        client_saturated=load.health.saturated,
        measured_at=now,
        env=env,
        notes="; ".join(_notes(metrics, load, setup)) or None,
    )


@dataclass
class Probe:
    level: float
    meets: bool
    output_tokens_per_s: float
    record: dict[str, Any]


def find_capacity(
    probe: Callable[[float], Probe],
    start: float = 1,
    limit: float = 1024,
    integer: bool = True,
    resolution: float = 0.1,
) -> tuple[Probe | None, list[Probe]]:
    """The largest level meeting the SLOs: double from `start` until a level fails (or `limit`),
    then bisect between the last level that met them and the first that did not. Few probes:
    about log2(limit) to bracket plus log2(1/resolution) to refine."""
    probes: list[Probe] = []
    good: Probe | None = None
    bad: Probe | None = None
    level = start
    while level <= limit:
        p = probe(level)
        probes.append(p)
        if not p.meets:
            bad = p
            break
        good = p
        if level == limit:
            break
        level = min(limit, level * 2)
    if good is None or bad is None:
        return good, probes
    lo, hi = good.level, bad.level
    while hi - lo > (1 if integer else max(resolution * lo, 1e-3)):
        mid = (lo + hi) // 2 if integer else (lo + hi) / 2
        if mid in (lo, hi):
            break
        p = probe(mid)
        probes.append(p)
        if p.meets:
            lo, good = mid, p
        else:
            hi = mid
    return good, probes


def stored_probes(store: RecordStore, key: str) -> list[dict[str, Any]]:
    """Probes recorded by earlier (interrupted) searches, oldest first: reused, not measured again."""
    return [r for r in store.rows() if r.get("engine", {}).get("args", {}).get("config_key") == key]


STORED_PERCENTILES = (50.0, 90.0, 95.0, 99.0)  # what a record's latency distributions hold


def meets_slo(row: dict[str, Any], slo: Slo) -> bool | None:
    """The verdict of calculate_metrics, from a stored record: its own verdict when it was judged
    against these SLOs at this percentile, else its values at the percentile (those it stored for
    its SLO percentile, or p50/p90/p95/p99). None when the record cannot tell."""
    args = row.get("engine", {}).get("args", {})
    if row.get("status") != "ok" or row.get("errors"):
        return False
    same_q = args.get("slo_percentile") == slo.percentile
    if same_q and row.get("slo") == slo.as_dict() and isinstance(args.get("slo_met"), bool):
        return args["slo_met"]
    for name, limit in (("ttft_ms", slo.ttft_ms), ("tpot_ms", slo.tpot_ms), ("e2e_ms", slo.e2e_ms)):
        if limit is None:
            continue
        if row.get(name) is None:  # no distribution: one-token outputs have no TPOT, as in metrics
            if name == "tpot_ms":
                continue
            return False
        if same_q and f"{name}_at_slo_percentile" in args:
            value = args[f"{name}_at_slo_percentile"]
        elif slo.percentile in STORED_PERCENTILES:
            value = row[name].get(f"p{int(slo.percentile)}")
        else:
            return None
        if value is None or value > limit:
            return False
    return True


def save(store: RecordStore, record: Any) -> dict[str, Any]:
    data = record.model_dump(mode="json", exclude_none=True)
    store.append(data)
    return data


def raw_rows(load: LoadResult) -> list[dict[str, Any]]:
    """Per-request timestamps, relative to the level's first send, and each request's phase as
    the measured window sees it (optional raw output)."""
    window = measured_window(load.results, load.load_end)
    t0 = min((r.due_at for r in load.results), default=0.0)
    rel = lambda t: None if t is None else t - t0  # noqa: E731
    return [
        {
            "scheduled_s": rel(r.scheduled_at),
            "sent_s": r.sent_at - t0,
            "first_token_s": rel(r.first_token_at),
            "done_s": rel(r.done_at),
            "ended_s": rel(r.ended_at),
            "output_tokens": r.output_tokens,
            "prompt_tokens": r.prompt_tokens,
            "tokens_source": r.tokens_source,
            "ok": r.ok,
            "error_type": r.error_type,
            "warmup": r.warmup,
            "phase": phase(r, window),
            "chunk_s": [t - t0 for t in r.chunk_times],
        }
        for r in load.results
    ]


def write_raw(path: Path, load: LoadResult, kind: str, level: float) -> None:
    from planner.catalog.files import append_jsonl

    append_jsonl(path, [{"level_kind": kind, "level": level, **row} for row in raw_rows(load)])
