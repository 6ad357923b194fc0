"""Turn an engine's raw timings into a MeasurementRecord (or a failed configuration into one)."""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Any

from gpu_bench.config import RunConfig
from gpu_bench.engines.common import Measurement
from planner.records import EngineInfo, Environment, MeasurementRecord, Percentiles


def _percentiles_ms(values_s: list[float]) -> Percentiles:
    ms = sorted(v * 1000 for v in values_s)

    def pct(q: float) -> float:
        if len(ms) == 1:
            return ms[0]
        k = (len(ms) - 1) * q
        lo, hi = int(k), min(int(k) + 1, len(ms) - 1)
        return ms[lo] + (ms[hi] - ms[lo]) * (k - lo)

    return Percentiles(
        mean=statistics.fmean(ms),
        p50=pct(0.5),
        p90=pct(0.9),
        p95=pct(0.95),
        p99=pct(0.99),
        stdev=statistics.pstdev(ms) if len(ms) > 1 else 0.0,
    )


def _common(config: RunConfig, env: Environment, gpu_id: str | None) -> dict[str, Any]:
    cpu = config.device == "cpu"
    return {
        "basis": "measured",
        "model": config.model,
        "model_scale": config.scale,
        "quant": config.record_quant,
        "double_quant": config.double_quant
        if config.quant.startswith("bnb-") and config.quant != "bnb-int8"
        else None,
        "kv_cache_dtype": config.kv_cache_dtype,
        "weights": "dummy" if config.weights == "dummy" else "real",
        "device": config.device,  # cuda or cpu: sweep.check refuses any other before a record
        "gpu": None if cpu else gpu_id,
        "gpu_count": max(1, config.tp),
        "tensor_parallel": config.tp,
        "mode": "offline",
        "batch_size": config.batch_size,
        "input_tokens": config.input_len,
        "output_tokens": config.output_len,
        "dataset": "random",
        "measured_at": dt.datetime.now(dt.UTC),
        "env": env,
    }


def record_id(config: RunConfig, when: dt.datetime) -> str:
    return f"gb-{config.key()}-{when.strftime('%Y%m%dT%H%M%S%f')}"


def ok_record(config: RunConfig, m: Measurement, env: Environment, gpu_id: str | None) -> MeasurementRecord:
    """Throughputs from medians over the repeats; the spread says how much the repeats agree.

    Output tokens are the engine's own count (mean per sequence), not the length asked for.
    """
    base = _common(config, env, gpu_id)
    base["output_tokens"] = m.output_tokens
    b, out = config.batch_size, m.output_tokens
    e2e = statistics.median(m.e2e_s)
    decode = [max(t - p, 1e-9) for t, p in zip(m.e2e_s, m.prefill_s, strict=True)]
    per_repeat = [b * out / t for t in m.e2e_s]
    spread = (max(per_repeat) - min(per_repeat)) / statistics.median(per_repeat) * 100
    args = {
        "config_key": config.key(),
        "scale": config.scale,
        **{k: v for k, v in m.engine_args.items() if v is not None},
    }
    tpot = [d / max(out - 1, 1) for d in decode]
    return MeasurementRecord(
        id=record_id(config, base["measured_at"]),
        engine=EngineInfo(name=config.engine, version=m.engine_version, args=args),
        output_tokens_per_s=b * out / e2e,
        total_tokens_per_s=b * (out + config.input_len) / e2e,
        requests_per_s=b / e2e,
        decode_tokens_per_s=b * max(out - 1, 1) / statistics.median(decode),
        prefill_ms=statistics.median(m.prefill_s) * 1000,
        ttft_ms=_percentiles_ms(m.prefill_s),
        tpot_ms=_percentiles_ms(tpot),
        e2e_ms=_percentiles_ms(m.e2e_s),
        peak_vram_gib=m.peak_vram_gib,
        torch_max_reserved_gib=m.torch_max_reserved_gib,
        torch_max_allocated_gib=m.torch_max_allocated_gib,
        weights_memory_gib=m.weights_memory_gib,
        kv_cache_tokens=m.kv_cache_tokens,
        max_concurrency_engine=m.max_concurrency_engine,
        repeats=len(m.e2e_s),
        spread_pct=spread,
        output_tokens_source="engine",
        notes="; ".join(m.notes) or None,
        **base,
    )


def failed_record(
    config: RunConfig,
    status: str,
    error: str,
    env: Environment,
    gpu_id: str | None,
    engine_version: str | None = None,
    retryable: bool = False,
    inferred: bool = False,
) -> MeasurementRecord:
    """A configuration that ran out of memory or failed: a result, kept like any other.

    retryable: the cause is this machine's environment (an import failed), so resume runs it
    again. inferred: not run, its status follows from another configuration (a smaller batch's OOM).
    """
    base = _common(config, env, gpu_id)
    args: dict[str, Any] = {"config_key": config.key(), "scale": config.scale}
    if retryable:
        args["retryable"] = True
    if inferred:
        args["not_run"] = True
    return MeasurementRecord(
        id=record_id(config, base["measured_at"]),
        engine=EngineInfo(name=config.engine, version=engine_version, args=args),
        status=status,  # type: ignore[arg-type]
        error=error[:2000],
        notes="not run: inferred from a smaller batch's out-of-memory" if inferred else None,
        **base,
    )
