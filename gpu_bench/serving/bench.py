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
from gpu_bench.serving.metrics import ServingMetrics, Slo, calculate_metrics
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
    engine: str  # server kind: vllm, transformers-serve, ...
    engine_version: str | None = None
    launch: str | None = None
    device: str = "cpu"
    gpu: str | None = None
    gpu_count: int = 1
    tp: int = 1
    quant: str = "bf16"
    burstiness: float = 1.0
    slo: Slo = field(default_factory=Slo)
    server_args: dict[str, Any] = field(default_factory=dict)

    def key(self, level_kind: str, level: float) -> str:
        data = {k: v for k, v in asdict(self).items() if k not in ("engine_version", "server_args", "slo")}
        data.update({"level_kind": level_kind, "level": level})
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def measure_level(
    loop: asyncio.AbstractEventLoop,
    client: OpenAIClient,
    requests: list[RequestSpec],
    setup: ServeSetup,
    concurrency: int | None = None,
    rate: float | None = None,
    max_duration_s: float = 3600.0,
) -> tuple[ServingMetrics, LoadResult]:
    async def go() -> LoadResult:
        return await run_load(
            client,
            requests,
            concurrency=concurrency,
            rate=rate,
            burstiness=setup.burstiness,
            warmup=setup.warmup,
            max_duration_s=max_duration_s,
        )

    load = loop.run_until_complete(go())
    return calculate_metrics(load.results, setup.slo), load


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
    notes = []
    if metrics.tokens_source == "tokenizer":
        notes.append("the server gave no usage: output tokens counted with the local tokenizer")
    elif metrics.tokens_source == "chunks":
        notes.append("the server gave no usage and no tokenizer was given: output tokens are content chunks")
    if load.health.saturated:
        notes.append(
            f"client saturated (event-loop lag p99 {load.health.loop_lag_p99_ms:.1f} ms, "
            f"CPU {load.health.cpu_share:.0%}): latencies include client delay"
        )
    status = "ok" if metrics.completed else "error"
    pct = lambda d: Percentiles(**d) if d else None  # noqa: E731
    args = {
        "config_key": key,
        "endpoint": setup.endpoint,
        "served_model": setup.model,
        "api": setup.api,
        "launch": setup.launch,
        "client_loop_lag_p99_ms": round(load.health.loop_lag_p99_ms, 2),
        "client_cpu_share": round(load.health.cpu_share, 3),
        **setup.server_args,
        **server_metrics,
    }
    return MeasurementRecord(
        id=f"serve-{key}-{now.strftime('%Y%m%dT%H%M%S%f')}",
        basis="measured",
        status=status,
        error=None if metrics.completed else f"no request completed; errors: {metrics.errors}",
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
        num_requests=metrics.completed + metrics.failed,
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
        output_tokens_source=metrics.tokens_source
        if metrics.tokens_source in ("usage", "tokenizer")
        else None,
        client_saturated=load.health.saturated,
        measured_at=now,
        env=env,
        notes="; ".join(notes) or None,
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


def stored_probe(store: RecordStore, key: str) -> dict[str, Any] | None:
    """A probe recorded by an earlier (interrupted) search: reused instead of measured again."""
    for row in store.rows():
        if row.get("engine", {}).get("args", {}).get("config_key") == key:
            return row
    return None


def meets_slo(row: dict[str, Any], slo: Slo) -> bool:
    """The same test as calculate_metrics' meets_slo, from a stored record (at the SLO percentile)."""
    if row.get("status") != "ok" or row.get("errors"):
        return False
    q = f"p{int(slo.percentile)}"
    for name, limit in (("ttft_ms", slo.ttft_ms), ("tpot_ms", slo.tpot_ms), ("e2e_ms", slo.e2e_ms)):
        if limit is None:
            continue
        value = (row.get(name) or {}).get(q)
        if value is None or value > limit:
            return False
    return True


def save(store: RecordStore, record: Any) -> dict[str, Any]:
    data = record.model_dump(mode="json", exclude_none=True)
    store.append(data)
    return data


def raw_rows(load: LoadResult) -> list[dict[str, Any]]:
    """Per-request timestamps, relative to the run's first send (optional raw output)."""
    t0 = min((r.sent_at for r in load.results), default=0.0)
    return [
        {
            "sent_s": r.sent_at - t0,
            "first_token_s": None if r.first_token_at is None else r.first_token_at - t0,
            "done_s": None if r.done_at is None else r.done_at - t0,
            "output_tokens": r.output_tokens,
            "prompt_tokens": r.prompt_tokens,
            "ok": r.ok,
            "error_type": r.error_type,
            "warmup": r.warmup,
            "chunk_s": [t - t0 for t in r.chunk_times],
        }
        for r in load.results
    ]


def write_raw(path: Path, load: LoadResult, level: float) -> None:
    from planner.catalog.files import append_jsonl

    append_jsonl(path, [{"level": level, **row} for row in raw_rows(load)])
