"""`planner fit`, `planner estimate`: the performance model on the command line (validate: validate.py)."""

from __future__ import annotations

from typing import Any

import click

from planner.commands.common import AppContext, format_option
from planner.errors import PlannerError, UnknownIdError
from planner.perf.estimate import band_text
from planner.report.render import Column, render_mapping, render_rows, to_json
from planner.units import parse_context, parse_int_count, parse_int_list

DEFAULT_CONCURRENCY = "1,2,4,8,16,32,64,128,256"

max_num_seqs_option = click.option(
    "--max-num-seqs",
    default=256,
    show_default=True,
    type=click.IntRange(1, 65536),
    help="The engine's cap on running sequences (vLLM --max-num-seqs); more clients queue.",
)


def _check_quant(quant: str) -> None:
    from planner.perf.quant import QUANTS

    if quant not in QUANTS:
        raise UnknownIdError("quantization format", quant, QUANTS)


def _check_engine(engine: str) -> None:
    from planner.perf.roofline import CONTINUOUS_ENGINES

    if engine not in CONTINUOUS_ENGINES:
        raise UnknownIdError(
            "serving engine", engine, CONTINUOUS_ENGINES, "estimate models continuous-batching servers"
        )


def _check_kv(kv_dtype: str) -> None:
    from planner.perf.memory import KV_DTYPE_BYTES

    if kv_dtype not in KV_DTYPE_BYTES:
        raise UnknownIdError("KV cache dtype", kv_dtype, KV_DTYPE_BYTES)


def _fit_row(r: Any) -> dict[str, Any]:
    return {
        "gpu": r.gpu,
        "gpus": r.gpus,
        "tp": r.tp,
        "pp": r.pp,
        "fits": r.fits,
        "gpu_memory_gib": r.gpu_memory_gib,
        "usable_gib": round(r.usable_gib, 2),
        "weights_gib": round(r.weights_gib, 2),
        "activation_gib": round(r.activation_gib, 2),
        "overhead_gib": round(r.overhead_gib, 2),
        "kv_pool_gib": round(r.kv_pool_gib, 2),
        "kv_bytes_per_token": r.kv_bytes_per_token,
        "kv_tokens": r.kv_tokens,
        "max_concurrent_seqs": r.max_concurrent_seqs,
        "kv_max_seqs": r.kv_max_seqs,
        "max_num_seqs": r.max_num_seqs,
        "queued": r.queued,
        "reason": r.reason,
        "notes": list(r.notes),
    }


FIT_COLUMNS = [
    Column("gpu", "gpu"),
    Column("gpus", "GPUs"),
    Column("tp", "TP"),
    Column("fits", "fits"),
    Column("weights_gib", "weights GiB/GPU", ".1f"),
    Column("kv_pool_gib", "KV pool GiB/GPU", ".1f"),
    Column("kv_tokens", "KV tokens", ","),
    Column("max_concurrent_seqs", "max seqs", ","),
    Column("reason", "verdict"),
]


@click.command("fit")
@click.option("--model", required=True, help="Catalog model id (planner catalog list models).")
@click.option(
    "--quant", default="bf16", show_default=True, help="bf16, fp8, awq-int4, gptq-int4, bnb-nf4, ..."
)
@click.option("--gpu", required=True, help="Catalog GPU id, or 'all' to rank every GPU.")
@click.option(
    "--context", default="8k", show_default=True, help="Tokens per sequence, prompt + output (8k = 8,192)."
)
@click.option("--concurrency", default="1", show_default=True, help="Sequences that must fit at once.")
@click.option(
    "--tp", type=click.IntRange(1, 64), help="Tensor parallel degree (default: the smallest that fits)."
)
@click.option("--pp", type=click.IntRange(1, 16), help="Pipeline stages (with --tp; default 1).")
@click.option("--kv-dtype", default="bf16", show_default=True, help="KV cache dtype: bf16 or fp8.")
@click.option("--gpu-memory-utilization", default=0.9, show_default=True, type=click.FloatRange(0.05, 1.0))
@max_num_seqs_option
@click.option("--double-quant", is_flag=True, help="bitsandbytes 4-bit with nested quantization.")
@format_option
@click.pass_obj
def fit_cmd(
    app: AppContext,
    model: str,
    quant: str,
    gpu: str,
    context: str,
    concurrency: str,
    tp: int | None,
    pp: int | None,
    kv_dtype: str,
    gpu_memory_utilization: float,
    max_num_seqs: int,
    double_quant: bool,
    fmt: str,
) -> None:
    """Does a model fit on a GPU? Weights, KV cache and overheads in GiB, and the fewest GPUs that fit.

    Memory follows vLLM: gpu_memory_utilization of the device, minus weights, activation peak and
    CUDA context / graphs, is the KV cache pool.
    """
    from planner.perf.memory import EngineMemory, fit, smallest_fit

    _check_quant(quant)
    _check_kv(kv_dtype)
    cat = app.catalog
    spec = cat.model(model)
    ctx = parse_context(context)
    conc = parse_int_count(concurrency, "--concurrency")
    if pp is not None and tp is None:
        raise PlannerError("--pp needs --tp: give both, or neither to find the fewest GPUs that fit")
    engine = EngineMemory(gpu_memory_utilization=gpu_memory_utilization, max_num_seqs=max_num_seqs)
    gpus = list(cat.gpus.values()) if gpu == "all" else [cat.gpu(gpu)]
    results = []
    for g in gpus:
        if tp is None:
            r = smallest_fit(model, spec.architecture, quant, g, ctx, conc, kv_dtype, engine, double_quant)
        else:
            arch = spec.architecture
            r = fit(model, arch, quant, g, ctx, conc, tp, pp or 1, kv_dtype, engine, double_quant)
        results.append(r)
    rows = [_fit_row(r) for r in results]
    if gpu == "all":
        rows.sort(key=lambda r: (not r["fits"], r["gpus"], r["gpu_memory_gib"]))
        click.echo(render_rows(rows, FIT_COLUMNS, fmt))
        if fmt == "table":
            click.echo(f"\n{model} {quant}, {ctx:,} tokens x {conc} sequences; fewest GPUs first")
        return
    r, row = results[0], rows[0]
    if fmt == "json":
        click.echo(
            to_json({"model": model, "quant": quant, "context_tokens": ctx, "concurrency": conc, **row})
        )
        return
    pairs = [
        ("verdict", ("FITS: " if r.fits else "DOES NOT FIT: ") + r.reason),
        ("GPUs", f"{r.gpus} x {r.gpu} (TP {r.tp}, PP {r.pp})"),
        (
            "device memory",
            f"{r.gpu_memory_gib:.2f} GiB exposed (datasheet {gpus[0].datasheet_memory_gb:g} GB), "
            f"usable {r.usable_gib:.1f} GiB at {gpu_memory_utilization:g}",
        ),
        ("weights per GPU", f"{r.weights_gib:.2f} GiB ({quant})"),
        ("activation peak", f"{r.activation_gib:.2f} GiB (estimate)"),
        ("CUDA context, graphs", f"{r.overhead_gib:.2f} GiB (estimate)"),
        ("KV cache pool per GPU", f"{r.kv_pool_gib:.2f} GiB"),
        ("KV bytes per token", f"{r.kv_bytes_per_token:,} per GPU ({kv_dtype})"),
        ("KV tokens available", f"{r.kv_tokens:,}"),
        ("max concurrent seqs", f"{r.max_concurrent_seqs:,} of {ctx:,} tokens" + _cap_text(r)),
    ] + [("note", n) for n in r.notes]
    if tp is not None and not r.fits:
        best = smallest_fit(
            model, spec.architecture, quant, gpus[0], ctx, conc, kv_dtype, engine, double_quant
        )
        pairs.append(
            (
                "smallest that fits",
                f"{best.gpus} x {best.gpu} (TP {best.tp}, PP {best.pp})" if best.fits else "none",
            )
        )
    click.echo(render_mapping(pairs, fmt))


def _cap_text(r: Any) -> str:
    if r.kv_max_seqs > r.max_concurrent_seqs:
        return f" (KV cache holds {r.kv_max_seqs:,}; the scheduler's max_num_seqs caps it)"
    return ""


ESTIMATE_COLUMNS = [
    Column("concurrency", "concurrency", "g"),
    Column("ttft_ms", "TTFT ms", ",.0f"),
    Column("tpot_ms", "TPOT ms", ",.1f"),
    Column("output_tokens_per_s", "output tok/s", ",.0f"),
    Column("low", "low", ",.0f"),
    Column("high", "high", ",.0f"),
    Column("basis", "basis"),
    Column("meets_slo", "meets SLO"),
]
METRIC_BASIS_COLUMNS = [Column("ttft_basis", "TTFT basis"), Column("tpot_basis", "TPOT basis")]


@click.command("estimate")
@click.option("--model", required=True)
@click.option("--quant", default="bf16", show_default=True)
@click.option("--gpu", required=True)
@click.option(
    "--engine", default="vllm", show_default=True, help="vllm, tensorrt-llm, sglang, tgi, lmdeploy, ..."
)
@click.option("--input-tokens", default="1500", show_default=True)
@click.option("--output-tokens", default="300", show_default=True)
@click.option("--concurrency", default=DEFAULT_CONCURRENCY, show_default=True, help="Comma-separated levels.")
@click.option(
    "--tp",
    type=click.IntRange(1, 64),
    help="Tensor parallel degree (default: the fewest GPUs that fit, pipeline stages included).",
)
@click.option("--pp", type=click.IntRange(1, 16), help="Pipeline stages (with --tp; default 1).")
@click.option("--kv-dtype", default="bf16", show_default=True)
@max_num_seqs_option
@click.option("--double-quant", is_flag=True, help="bitsandbytes 4-bit with nested quantization.")
@click.option(
    "--cached-input-share",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0.0, 1.0),
    help="Share of prompt tokens served from the prefix cache (not recomputed in prefill).",
)
@click.option(
    "--slo-ttft-ms", type=click.FloatRange(min=0, min_open=True), help="TTFT SLO for the capacity line."
)
@click.option(
    "--slo-tpot-ms", type=click.FloatRange(min=0, min_open=True), help="TPOT SLO for the capacity line."
)
@click.option("--explain", is_flag=True, help="Show the calibration: fitted efficiencies and residuals.")
@format_option
@click.pass_obj
def estimate_cmd(
    app: AppContext,
    model: str,
    quant: str,
    gpu: str,
    engine: str,
    input_tokens: str,
    output_tokens: str,
    concurrency: str,
    tp: int | None,
    pp: int | None,
    kv_dtype: str,
    max_num_seqs: int,
    double_quant: bool,
    cached_input_share: float,
    slo_ttft_ms: float | None,
    slo_tpot_ms: float | None,
    explain: bool,
    fmt: str,
) -> None:
    """TTFT, TPOT and output tokens/s of one replica at each concurrency, and the most it carries
    within the SLOs. Each value says whether it was measured, interpolated, calibrated on
    measurements, or a roofline with default efficiencies, with an error band."""
    import numpy as np

    from planner.perf.memory import EngineMemory
    from planner.perf.model import PerfModel

    _check_quant(quant)
    _check_kv(kv_dtype)
    _check_engine(engine)
    from planner.vocab import NVIDIA_ONLY_ENGINES

    if engine in NVIDIA_ONLY_ENGINES and app.catalog.gpu(gpu).vendor != "nvidia":
        raise PlannerError(f"--engine {engine} runs on NVIDIA GPUs only, not {gpu}; use vllm or sglang there")
    if pp is not None and tp is None:
        raise PlannerError("--pp needs --tp: give both, or neither to use the fewest GPUs that fit")
    perf = PerfModel(app.catalog)
    levels = np.array(parse_int_list(concurrency, "--concurrency"), dtype=float)
    inp = parse_int_count(input_tokens, "--input-tokens")
    out = parse_int_count(output_tokens, "--output-tokens")
    memory = EngineMemory(max_num_seqs=max_num_seqs)
    computed = 1.0 - cached_input_share
    curve = perf.serving_curve(
        model, quant, gpu, inp, out, levels, engine, tp, kv_dtype, memory, pp, double_quant, computed
    )
    cap = perf.capacity(
        model,
        quant,
        gpu,
        inp,
        out,
        slo_ttft_ms,
        slo_tpot_ms,
        engine,
        curve.tp,
        kv_dtype,
        memory,
        pp=curve.pp,
        double_quant=double_quant,
        prefill_fraction=computed,
    )
    rows = []
    for i, c in enumerate(curve.concurrency):
        est = curve.estimate_at(i)
        meets = bool(
            (not slo_ttft_ms or curve.ttft_ms[i] <= slo_ttft_ms)
            and (not slo_tpot_ms or curve.tpot_ms[i] <= slo_tpot_ms)
        )
        rows.append(
            {
                "concurrency": float(c),
                "running": float(min(c, curve.memory.max_concurrent_seqs)),
                "ttft_ms": float(curve.ttft_ms[i]),
                "tpot_ms": float(curve.tpot_ms[i]),
                "output_tokens_per_s": est.value,
                "low": est.low,
                "high": est.high,
                "basis": est.basis,
                "ttft_basis": str(curve.ttft_basis[i]),
                "tpot_basis": str(curve.tpot_basis[i]),
                "meets_slo": meets if (slo_ttft_ms or slo_tpot_ms) else None,
            }
        )
    summary = {
        "model": model,
        "quant": quant,
        "gpu": gpu,
        "engine": engine,
        "tp": curve.tp,
        "pp": curve.pp,
        "gpus": curve.memory.gpus,
        "cached_input_share": cached_input_share,
        "input_tokens": inp,
        "output_tokens": out,
        "max_concurrent_seqs": curve.memory.max_concurrent_seqs,
        "calibration": curve.calibration,
        "error_band_pct": round(curve.band * 100, 1),
        "records": list(curve.record_ids),
        "capacity": {
            "meets_slo": cap.limited_by != "nothing fits the SLOs",
            "concurrency": cap.concurrency,
            "output_tokens_per_s": cap.output_tokens_per_s.as_dict(),
            "ttft_ms": cap.ttft_ms,
            "tpot_ms": cap.tpot_ms,
            "limited_by": cap.limited_by,
            "slo_ttft_ms": slo_ttft_ms,
            "slo_tpot_ms": slo_tpot_ms,
        },
    }
    if fmt == "json":
        click.echo(to_json({**summary, "points": rows}))
        return
    mixed = any(r["ttft_basis"] != r["basis"] or r["tpot_basis"] != r["basis"] for r in rows)
    click.echo(render_rows(rows, ESTIMATE_COLUMNS + (METRIC_BASIS_COLUMNS if mixed else []), fmt))
    if fmt in ("csv",):
        return
    slo = ", ".join(
        s
        for s in (
            f"TTFT <= {slo_ttft_ms:g} ms" if slo_ttft_ms else "",
            f"TPOT <= {slo_tpot_ms:g} ms" if slo_tpot_ms else "",
        )
        if s
    )
    layout = f"TP {curve.tp}" + (f" x PP {curve.pp}" if curve.pp > 1 else "")
    mem = curve.memory
    held = f"KV cache runs up to {mem.max_concurrent_seqs} sequences"
    if mem.kv_max_seqs > mem.max_concurrent_seqs:
        held = (
            f"KV cache holds {mem.kv_max_seqs}, the scheduler runs {mem.max_concurrent_seqs} (max_num_seqs)"
        )
    click.echo(
        f"\n{model} {quant} on {mem.gpus} x {gpu} ({layout}, {engine}), {inp:,} in / {out:,} out; {held}"
    )
    if curve.pp > 1:
        click.echo(
            f"pipeline: {curve.pp} stages; a token passes every stage in turn and at most {curve.pp} "
            "micro-batches are in flight, so below that many running sequences stages idle"
        )
    tok = cap.output_tokens_per_s
    if cap.limited_by == "nothing fits the SLOs":
        click.echo(
            f"capacity under {slo}: none; no concurrency meets the SLOs (at concurrency 1: TTFT "
            f"{curve.ttft_ms[0]:,.0f} ms, TPOT {curve.tpot_ms[0]:,.1f} ms); relax them or try a faster "
            "GPU, more GPUs (--tp) or another --quant"
        )
    else:
        click.echo(
            f"capacity{' under ' + slo if slo else ''}: concurrency {cap.concurrency:g}, "
            f"{tok.value:,.0f} output tok/s per replica ({tok.low:,.0f} to {tok.high:,.0f}), "
            f"limited by {cap.limited_by}"
        )
    errors = "leave-one-GPU-out" if "(no records on" in curve.calibration else "that group's leave-one-out"
    click.echo(
        f"basis: {curve.calibration}; error band {band_text(curve.band)} of output tok/s "
        f"(split-conformal 80% band of {errors} errors)"
    )
    if mixed:
        click.echo(
            "TTFT and TPOT keep the model's values where the records do not measure them (their basis)"
        )
    if explain:
        _explain(app, perf, gpu, engine, quant)


def _explain(app: AppContext, perf: Any, gpu: str, engine: str, quant: str) -> None:
    import numpy as np

    from planner.perf.calibrate import lookup
    from planner.perf.predict import PredictionBatch

    eff, band, label, _ids = perf.calibration_for(gpu, engine, quant)
    click.echo("\nefficiencies used:")
    click.echo(
        f"  achieved bandwidth {eff.bandwidth:.0%} of peak, achieved FLOPs {eff.flops:.0%} of peak, "
        f"step overhead {eff.step_overhead_ms:.2f} ms, all-reduce cost x{eff.comm:.2f}"
    )
    cal = lookup(perf.calibrations(), gpu, engine, quant)
    if cal is None:
        click.echo(
            "  no measurement records for this GPU or engine: documented defaults "
            "(planner/perf/calibration.py: MAMF priors for FLOPs, estimates for bandwidth and overhead)"
        )
        return
    fitted = ", ".join(cal.fitted) or "nothing: too few records"
    click.echo(f"  fitted ({fitted}) on {len(cal.record_ids)} records: {label}")
    click.echo(
        "  residual: in-sample (this group fitted on all its records); left-out: the same group "
        "refitted without that record (the band is made of these)"
    )
    if cal.key[0] is None and gpu not in cal.gpus:
        click.echo(
            f"  {gpu} has no records: the band ({band_text(band)}) comes from leave-one-GPU-out errors "
            f"({len(cal.gpu_out_residuals)} records, each predicted without its GPU)"
        )
    by_id = {s.record.id: s for s in perf.setups()}
    setups = [by_id[i] for i in cal.record_ids if i in by_id]
    pred = PredictionBatch(setups)(cal.efficiency)
    loo = dict(zip(cal.record_ids, cal.loo_residuals, strict=True))
    rows = [
        {
            "record": s.record.id,
            "observed": s.observed,
            "fitted": float(p),
            "residual_pct": (float(p) / s.observed - 1) * 100,
            "loo_pct": (float(np.exp(loo[s.record.id])) - 1) * 100 if s.record.id in loo else None,
        }
        for s, p in zip(setups, pred, strict=True)
    ]
    cols = [
        Column("record", "record"),
        Column("observed", "observed tok/s", ",.0f"),
        Column("fitted", "fitted tok/s", ",.0f"),
        Column("residual_pct", "residual %", "+.1f"),
        Column("loo_pct", "left-out %", "+.1f"),
    ]
    click.echo(render_rows(rows, cols, "table"))
