"""`gpu-bench`: measure engines and servers, write MeasurementRecords. Heavy imports stay in engines/."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from gpu_bench import __version__
from planner.commands.common import PlannerGroup, format_option
from planner.report.render import Column, render_mapping, render_rows, to_json


@click.group(
    cls=PlannerGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(__version__, prog_name="gpu-bench")
def main() -> None:
    """Measure throughput, latency and VRAM of open models on this machine's hardware.

    Results are MeasurementRecords (JSONL) the planner reads from a catalog directory.
    """


@main.command("env")
@format_option
def env_cmd(fmt: str) -> None:
    """GPUs, driver, CUDA, library versions, CPU and memory of this machine (works without a GPU)."""
    from gpu_bench.env import capture

    env = capture()
    data = env.model_dump(mode="json")
    pairs = [
        ("hostname", env.hostname or "-"),
        ("os", env.os or "-"),
        ("python", env.python or "-"),
        ("cpu", f"{env.cpu or '-'} ({env.cpu_count} cores)"),
        ("memory", f"{env.memory_gib} GiB"),
        (
            "gpus",
            ", ".join(f"{n} ({m} GiB)" for n, m in zip(env.gpus, env.gpu_memory_gib, strict=False))
            or "none found (NVML and nvidia-smi see no GPU)",
        ),
        ("driver", env.driver or "-"),
        ("cuda", env.cuda or "-"),
    ] + [(name, version) for name, version in env.libraries.items()]
    click.echo(render_mapping(pairs, fmt, data))


# Options run and sweep share (serve's --timeout is per request, its own).
config_timeout_option = click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0, min_open=True),
    default=3600.0,
    show_default=True,
    help="Seconds one configuration may take (model load included) before it is recorded as an error.",
)
retry_failed_option = click.option(
    "--retry-failed", is_flag=True, help="Run again the configurations recorded as oom or error."
)


RUN_COLUMNS = [
    Column("batch_size", "batch"),
    Column("status", "status"),
    Column("ttft_ms.p50", "prefill ms", ",.1f"),
    Column("tpot_ms.p50", "TPOT ms", ",.2f"),
    Column("decode_tokens_per_s", "decode tok/s", ",.1f"),
    Column("output_tokens_per_s", "output tok/s", ",.1f"),
    Column("e2e_ms.p50", "E2E ms", ",.0f"),
    Column("spread_pct", "spread %", ".1f"),
    Column("peak_vram_gib", "peak VRAM GiB", ".2f"),
    Column("weights_memory_gib", "weights GiB", ".3f"),
    Column("kv_cache_tokens", "KV tokens", ","),
    Column("error", "error", lambda e: e.splitlines()[0][:60]),
]


def _workdir(path: Path | None) -> Path:
    if path is not None:
        return path
    from planner.catalog.snapshot import cache_dir

    return cache_dir() / "gpu-bench"


def _default_out() -> Path:
    return Path("gpu-bench-results.jsonl")


@main.command("run")
@click.option("--model", required=True, help="Catalog model id, or a local checkpoint directory.")
@click.option(
    "--quant",
    default="none",
    show_default=True,
    help="none (the dtype), bnb-int8, bnb-nf4, bnb-fp4 (transformers); fp8, awq-int4, gptq-int4 (vllm).",
)
@click.option(
    "--engine", type=click.Choice(["transformers", "vllm"]), default="transformers", show_default=True
)
@click.option("--batch-sizes", default="1,8,32", show_default=True, help="Comma-separated batch sizes.")
@click.option("--input-len", default="512", show_default=True)
@click.option("--output-len", default="128", show_default=True)
@click.option(
    "--weights", default="dummy", show_default=True, help="dummy (random, from the architecture) or PATH."
)
@click.option(
    "--scale",
    type=click.Choice(["full", "tiny"]),
    default="full",
    show_default=True,
    help="tiny: the architecture scaled down to run on a CPU in seconds (tests).",
)
@click.option(
    "--device",
    type=click.Choice(["cuda", "cpu"]),
    default=None,
    help="[default: cuda if torch sees a CUDA device, else cpu]",
)
@click.option(
    "--dtype",
    type=click.Choice(["bf16", "fp16", "fp32"]),
    default=None,
    help="[default: bf16 on GPU, fp32 on CPU (as in sweeps)]",
)
@click.option(
    "--tp",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Tensor parallel GPUs (--engine vllm only).",
)
@click.option("--double-quant", is_flag=True, help="bitsandbytes 4-bit nested quantization.")
@click.option("--repeats", type=click.IntRange(1), default=3, show_default=True)
@click.option("--warmup", type=click.IntRange(0), default=1, show_default=True)
@click.option(
    "--gpu-memory-utilization",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.9,
    show_default=True,
    help="vllm: the share of device memory it may take.",
)
@click.option(
    "--max-num-seqs", type=click.IntRange(1), default=None, help="vllm [default: the largest batch]"
)
@click.option("--enforce-eager", is_flag=True, help="vllm: no CUDA graphs (always on CPU).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSONL to append records to. [default: ./gpu-bench-results.jsonl]",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where model directories and worker logs go. [default: ~/.cache/selfhost-planner/gpu-bench]",
)
@config_timeout_option
@click.option("--no-resume", is_flag=True, help="Measure again what the output file already holds.")
@retry_failed_option
@format_option
def run_cmd(**opts: Any) -> None:
    """Measure one model at several batch sizes: prefill/TTFT, decode tokens/s, E2E, peak VRAM.

    Warm-up excluded, repeats reported as median and spread, fixed output length (EOS ignored,
    the tokens produced counted on the output). The batch sizes run in a worker process that loads
    the model once; an OOM is recorded as a result and the others go on. Each record is appended
    as it finishes; Ctrl-C keeps them. Example: gpu-bench run --model llama-3.1-8b-instruct --quant
    bnb-nf4 --batch-sizes 1,8,32 --input-len 512 --output-len 128
    """
    from gpu_bench.config import RunConfig, default_dtype, tp_problem
    from gpu_bench.runner import Runner, expand
    from gpu_bench.store import RecordStore
    from gpu_bench.sweep import check, share_vllm_engines
    from planner.catalog.files import check_writable
    from planner.errors import PlannerError
    from planner.units import parse_int_count, parse_int_list

    if tp_problem(opts["engine"], opts["tp"]):
        raise PlannerError(
            f"--tp {opts['tp']}: tensor parallelism needs --engine vllm (transformers loads the model "
            "on one device)"
        )
    device = opts["device"] or _default_device()
    dtype = opts["dtype"] or default_dtype(device)
    base = RunConfig(
        model=opts["model"],
        quant=opts["quant"],
        engine=opts["engine"],
        batch_size=1,
        input_len=parse_int_count(opts["input_len"], "--input-len"),
        output_len=parse_int_count(opts["output_len"], "--output-len"),
        weights=opts["weights"],
        scale=opts["scale"],
        device=device,
        dtype=dtype,
        tp=opts["tp"],
        double_quant=opts["double_quant"],
        repeats=opts["repeats"],
        warmup=opts["warmup"],
        gpu_memory_utilization=opts["gpu_memory_utilization"],
        max_num_seqs=opts["max_num_seqs"],
        enforce_eager=opts["enforce_eager"] or device == "cpu",
    )
    configs = share_vllm_engines(expand(base, parse_int_list(opts["batch_sizes"], "--batch-sizes")))
    for c in configs:
        check(c)
    _check_model(base)
    if device == "cuda":
        _require_cuda("--device cuda", "use --device cpu")
    out, workdir = opts["out"] or _default_out(), _workdir(opts["workdir"])
    check_writable(out, "--out")
    check_writable(workdir, "--workdir", directory=True)
    store = RecordStore(out)
    runner = Runner(store, workdir, timeout_s=opts["timeout_s"])
    resume, retry = not opts["no_resume"], opts["retry_failed"]
    code = _measure(configs, store, runner, "gpu-bench run", resume=resume, retry_failed=retry)
    if code not in (0, 2):
        raise SystemExit(code)
    keys = {c.key() for c in configs}
    rows = [r for r in store.rows() if r.get("engine", {}).get("args", {}).get("config_key") in keys]
    rows.sort(key=lambda r: r.get("batch_size", 0))
    if opts["fmt"] == "json":
        click.echo(to_json(rows))
        return
    if rows:
        click.echo(render_rows(rows, RUN_COLUMNS, opts["fmt"]))
        if opts["fmt"] == "table":
            click.echo(
                f"\nrecords in {store.path} (device={device}; CPU records are never used for GPU planning)"
            )
    raise SystemExit(code)


def _measure(
    configs: list[Any], store: Any, runner: Any, what: str, resume: bool = True, retry_failed: bool = False
) -> int:
    """Run what is not recorded yet and can run here; the exit code: 0, 2 if some configurations
    wait for a package (one line each on stderr, nothing recorded for them), 128+N if stopped by
    signal N (the records reported before it are kept)."""
    from gpu_bench.requirements import split_by_requirements
    from gpu_bench.runner import Interrupted

    done = store.done(retry_failed) if resume else set()
    runnable, lines = split_by_requirements([c for c in configs if c.key() not in done], what)
    for line in lines:
        click.echo(f"error: {line}", err=True)
    waiting = {c.key() for c in configs if c.key() not in done} - {c.key() for c in runnable}
    try:
        runner.run([c for c in configs if c.key() not in waiting], resume=resume, retry_failed=retry_failed)
    except Interrupted as exc:
        return exc.exit_code
    return 2 if lines else 0


def _check_model(config: Any) -> None:
    from gpu_bench.sweep import source_problem
    from planner.errors import PlannerError

    found = source_problem(config.model, config.weights)
    if found is None:
        return
    field, why = found
    if why.startswith("unknown model"):
        raise PlannerError(why.removesuffix("; or a local checkpoint directory"))
    raise PlannerError(f"--{field} {getattr(config, field)}: {why}")


def _has_gpu() -> bool:
    from gpu_bench.env import capture

    return bool(capture().gpus)


def _default_device() -> str:
    """cuda where torch sees a CUDA device; without torch (its engine will say so), where NVML does."""
    from gpu_bench.env import torch_cuda_devices

    seen = torch_cuda_devices()
    if seen is None:
        return "cuda" if _has_gpu() else "cpu"
    return "cuda" if seen[0] else "cpu"


def _require_cuda(what: str, fix: str) -> None:
    """Refuse a CUDA run where torch sees no CUDA device: its records would all be errors, and
    resume would skip them later on a machine with a GPU."""
    from gpu_bench.env import torch_cuda_devices
    from planner.errors import PlannerError

    seen = torch_cuda_devices()
    if seen is not None and not seen[0]:
        raise PlannerError(f"{what}: no CUDA device visible to torch ({seen[1]}); {fix}")


@main.command("sweep")
@click.argument("sweep_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSONL to append to. [default: the file's out:, else SWEEP.jsonl beside it]",
)
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None)
@config_timeout_option
@retry_failed_option
@click.option("--dry-run", is_flag=True, help="List the configurations and exit.")
def sweep_cmd(
    sweep_file: Path,
    out: Path | None,
    workdir: Path | None,
    timeout_s: float,
    retry_failed: bool,
    dry_run: bool,
) -> None:
    """Run the matrix in SWEEP_FILE (YAML; see examples/sweep-h200.yaml), resumably.

    The file is checked first, include entries like the matrix: every problem is listed
    (file:line: field: problem) and nothing runs. Unset, dtype is bf16 on cuda and fp32 on cpu,
    as in gpu-bench run. Every configuration runs in a worker process: an OOM, a CUDA error, a
    segfault or a timeout is recorded (status oom or error, with the message) and the sweep goes
    on. Each record is appended as it finishes; Ctrl-C (or SIGTERM) stops the worker and keeps
    them; re-running skips what is recorded. Configurations whose engine lacks a package are
    skipped with the install that fixes it, the rest run, and the exit code is 2.
    """
    from gpu_bench.results import failed_record
    from gpu_bench.runner import Runner
    from gpu_bench.store import RecordStore
    from gpu_bench.sweep import check, expand, read_sweep
    from planner.catalog.files import check_writable
    from planner.errors import PlannerError

    spec = read_sweep(sweep_file)
    configs = expand(spec)
    target = out or (Path(spec.out) if spec.out else sweep_file.with_suffix(".jsonl"))
    if dry_run:
        for c in configs:
            click.echo(
                f"{c.model} {c.record_quant} {c.engine} batch {c.batch_size} {c.input_len}/{c.output_len}"
            )
        click.echo(f"{len(configs)} configurations -> {target}")
        return
    check_writable(target, "--out" if out else f"the sweep's out ({target})")
    check_writable(_workdir(workdir), "--workdir", directory=True)
    store = RecordStore(target)
    runnable = []
    done = store.done(retry_failed)
    if any(c.device == "cuda" and c.key() not in done for c in configs):
        _require_cuda(
            f"{sweep_file}: device cuda",
            "set device: cpu in its defaults (and includes), or run it on a machine with a GPU",
        )
    for c in configs:
        try:
            check(c)
            runnable.append(c)
        except PlannerError as exc:
            if c.key() in done:
                continue
            from gpu_bench.env import capture

            store.append(failed_record(c, "error", f"invalid configuration: {exc}", capture(), None))
            click.echo(f"invalid configuration recorded as error: {exc}", err=True)
    runner = Runner(store, _workdir(workdir), timeout_s=timeout_s)
    code = _measure(runnable, store, runner, "gpu-bench sweep", retry_failed=retry_failed)
    rows = store.rows()
    ok = sum(1 for r in rows if r.get("status", "ok") == "ok")
    click.echo(f"{len(rows)} records in {target}: {ok} ok, {len(rows) - ok} oom or error")
    raise SystemExit(code)


SERVE_COLUMNS = [
    Column("level", "level"),
    Column("status", "status"),
    Column("requests_per_s", "req/s", ",.2f"),
    Column("output_tokens_per_s", "output tok/s", ",.1f"),
    Column("ttft_ms.p50", "TTFT p50", ",.0f"),
    Column("ttft_ms.p95", "TTFT p95", ",.0f"),
    Column("tpot_ms.p50", "TPOT p50", ",.1f"),
    Column("tpot_ms.p95", "TPOT p95", ",.1f"),
    Column("itl_ms.p95", "ITL p95", ",.1f"),
    Column("e2e_ms.p95", "E2E p95", ",.0f"),
    Column("goodput_requests_per_s", "goodput req/s", ",.2f"),
    Column("errors", "errors", lambda e: ", ".join(f"{k}={v}" for k, v in e.items()) or "-"),
    Column("client_saturated", "client busy"),
]


@main.command("serve")
@click.option(
    "--endpoint",
    default="http://127.0.0.1:8000/v1",
    show_default=True,
    help="Base URL of an OpenAI-compatible API.",
)
@click.option("--model", required=True, help="The model name the server serves.")
@click.option("--catalog-model", help="Catalog model id for the record. [default: --model if in the catalog]")
@click.option("--api", type=click.Choice(["completions", "chat"]), default="completions", show_default=True)
@click.option("--concurrency", help="Comma-separated concurrency levels (closed loop), e.g. 1,4,16.")
@click.option("--request-rate", help="Comma-separated arrival rates in requests/s (open loop).")
@click.option(
    "--burstiness",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Gamma shape of arrival gaps: 1 is Poisson, below 1 burstier.",
)
@click.option("--input-len", default="512", show_default=True)
@click.option("--output-len", default="128", show_default=True)
@click.option("--num-requests", type=click.IntRange(1), default=200, show_default=True, help="Per level.")
@click.option(
    "--warmup",
    type=click.IntRange(0),
    default=None,
    help="Requests excluded per level. [default: min(10, 10%)]",
)
@click.option(
    "--max-duration",
    type=click.FloatRange(min=0, min_open=True),
    default=900.0,
    show_default=True,
    help="Seconds one level may take: then requests in flight are cancelled (counted apart, kept out "
    "of the latency statistics) and the rest not sent.",
)
@click.option(
    "--dataset",
    default="random",
    show_default=True,
    help="random, jsonl:PATH (prompt or messages per line) or sharegpt:PATH. Fresh prompts every level.",
)
@click.option(
    "--tokenizer", help="Local tokenizer directory: sizes random prompts, counts tokens if no usage."
)
@click.option("--seed", type=int, help="Seed of the prompts and arrivals. [default: random, recorded]")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0, min_open=True),
    default=600.0,
    show_default=True,
    help="Seconds one request may take in all (connect to last byte); longer is an error of type timeout.",
)
@click.option("--api-key-env", help="Environment variable holding the API key (never stored).")
@click.option(
    "--launch", help='Start this server first, e.g. "vllm serve MODEL --port 8000"; torn down after.'
)
@click.option(
    "--ready-timeout", type=click.FloatRange(min=0, min_open=True), default=600.0, show_default=True
)
@click.option(
    "--find-capacity", is_flag=True, help="Search the largest concurrency (or rate) meeting the SLOs."
)
@click.option("--slo-ttft-ms", type=click.FloatRange(min=0, min_open=True))
@click.option("--slo-tpot-ms", type=click.FloatRange(min=0, min_open=True))
@click.option("--slo-e2e-ms", type=click.FloatRange(min=0, min_open=True))
@click.option("--slo-percentile", type=click.FloatRange(1, 100), default=95.0, show_default=True)
@click.option(
    "--max-concurrency",
    type=click.IntRange(1),
    default=512,
    show_default=True,
    help="Upper bound of the capacity search.",
)
@click.option(
    "--server-kind",
    type=click.Choice(["vllm", "sglang", "tgi", "llama.cpp", "transformers-serve", "openai-compatible"]),
    help="What the server is. [default: detected from what it exposes (/version, /metrics, /info...)]",
)
@click.option(
    "--device",
    type=click.Choice(["cuda", "rocm", "cpu"]),
    help="What the SERVER runs on. [default: what the server says, else this machine's if it runs here]",
)
@click.option("--gpu", help="Catalog GPU id of the SERVER (needed for the planner to use remote records).")
@click.option("--gpu-count", type=click.IntRange(1), help="GPUs the server uses. [default: its TP]")
@click.option(
    "--tp", type=click.IntRange(1), help="The server's tensor parallelism. [default: detected, else 1]"
)
@click.option("--quant", default="bf16", show_default=True, help="The served model's format.")
@click.option(
    "--client-lag-limit-ms",
    type=click.FloatRange(min=0),
    default=25.0,
    show_default=True,
    help="Event-loop lag (p99) above which the client is called saturated and the record marked.",
)
@click.option(
    "--raw-out", type=click.Path(dir_okay=False, path_type=Path), help="Per-request timestamps (JSONL)."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSONL to append one record per level to. [default: ./gpu-bench-serve.jsonl]",
)
@format_option
def serve_cmd(**o: Any) -> None:
    """Measure an OpenAI-compatible server under load: TTFT, TPOT, ITL, E2E percentiles, tokens/s,
    goodput, errors; or find the most load it carries within SLOs (--find-capacity).

    Example: gpu-bench serve --endpoint http://127.0.0.1:8000/v1 --model NAME --concurrency 1,4,16
    --input-len 512 --output-len 128 --num-requests 200 --out FILE.jsonl
    """
    from gpu_bench.requirements import require_tokenizer
    from gpu_bench.serving.runner import serve_main

    require_tokenizer(o["tokenizer"], "gpu-bench serve")
    serve_main(o)


def _register_eval() -> None:
    from gpu_bench.eval.command import eval_cmd  # its options are many; its work is imported lazily

    main.add_command(eval_cmd)


_register_eval()


def run(argv: Sequence[str] | None = None) -> int:
    try:
        main.main(args=list(argv) if argv is not None else sys.argv[1:], prog_name="gpu-bench")
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    raise SystemExit(run())
