"""GPU memory: weights per format, KV cache per token, engine overheads, and whether a config fits.

vLLM semantics (`gpu_memory_utilization`, default 0.9): the engine may use that fraction of the
memory the device exposes (the driver's total, not the datasheet's GB); after loading weights and
profiling a forward pass at ``max_num_batched_tokens`` (activation peak) plus non-torch memory
(CUDA context, NCCL, CUDA graphs), what is left of the fraction becomes the KV cache pool. The pool
in tokens, divided by the sequence length, is how many sequences fit at once.

With chunked prefill (vLLM V1's default) no forward pass holds more than ``max_num_batched_tokens``
tokens, however long the context: a long context costs KV cache only, never activation memory.

``max_num_seqs`` is the scheduler's cap on running sequences, not a memory limit: clients beyond it
wait in the queue. A fit reports it, and never asks for more GPUs because of it.

Overheads are estimates with stated defaults (see ``EngineMemory``); weights and KV are exact
arithmetic on the architecture and the format's storage layout.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from planner.perf.params import arch_from_key, arch_key, param_counts
from planner.perf.quant import QuantSpec, linear_bytes, quant_spec
from planner.units import GIB

if TYPE_CHECKING:
    from planner.records import Architecture, GpuSpec

KV_DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp8": 1, "fp32": 4}
TP_DEGREES = (1, 2, 4, 8)
PP_DEGREES = (1, 2, 4)
BLOCK_TOKENS = 16  # vLLM's default KV block size on GPUs


@dataclass(frozen=True)
class EngineMemory:
    """What an engine holds besides weights and KV. Defaults: vLLM on CUDA, serving.

    ``non_torch_gib``: CUDA context, cuBLAS workspace and NCCL buffers (about 0.5 GiB per process
    on H100-class GPUs in vLLM's startup logs; more with TP). ``cuda_graph_gib``: captured graphs
    (0 with enforce_eager). ``max_num_batched_tokens``: tokens in the profiling forward pass that
    sets the activation peak (vLLM V1 serving default 8192). ``max_num_seqs``: scheduler cap on
    running sequences (vLLM default 256 for serving on large GPUs).
    """

    gpu_memory_utilization: float = 0.9
    non_torch_gib: float = 0.5
    nccl_gib_per_tp: float = 0.25
    cuda_graph_gib: float = 0.5
    max_num_batched_tokens: int = 8192
    max_num_seqs: int = 256


@dataclass(frozen=True)
class WeightBytes:
    linear: float
    embedding: float
    lm_head: float
    small: float

    @property
    def total(self) -> float:
        return self.linear + self.embedding + self.lm_head + self.small


def _linear_shapes(arch: Architecture, kv_heads: int) -> list[tuple[int, int, int]]:
    """(out_features, in_features, count) of every quantizable matrix in the decoder blocks."""
    h, hd, layers = arch.hidden_size, arch.head_dim, arch.num_layers
    q_width, kv_width = arch.num_attention_heads * hd, kv_heads * hd
    experts = arch.num_experts
    inter = arch.intermediate_size
    return [
        (q_width, h, layers),  # q_proj
        (kv_width, h, 2 * layers),  # k_proj, v_proj
        (h, q_width, layers),  # o_proj
        (inter, h, 2 * layers * experts),  # gate_proj, up_proj
        (h, inter, layers * experts),  # down_proj
    ]


def weight_bytes(
    arch: Architecture, quant: str | QuantSpec, double_quant: bool = False, kv_heads: int | None = None
) -> WeightBytes:
    """Bytes of the whole model in a format: what a checkpoint's tensors add up to.

    `kv_heads` counts K/V projection heads differently (tensor parallelism replicates them).
    """
    spec = quant if isinstance(quant, QuantSpec) else quant_spec(quant)
    return _weight_bytes(arch_key(arch), spec, double_quant, kv_heads or arch.num_kv_heads)


@functools.lru_cache(maxsize=1024)
def _weight_bytes(key: tuple, spec: QuantSpec, double_quant: bool, kv_heads: int) -> WeightBytes:
    arch = arch_from_key(key)
    p = param_counts(arch)
    linear = sum(
        count * linear_bytes(spec, out_f, in_f, double_quant)
        for out_f, in_f, count in _linear_shapes(arch, kv_heads)
    )
    dense = spec.dense_bytes
    return WeightBytes(linear, p.embedding * dense, p.lm_head * dense, (p.small + p.router) * dense)


def tp_problem(arch: Architecture, tp: int) -> str | None:
    """Why vLLM refuses this tensor-parallel degree for the model, or None when it accepts it.

    vLLM splits attention heads evenly (num_attention_heads % tp == 0) and KV heads either evenly
    (tp <= num_kv_heads: num_kv_heads % tp == 0) or by replication (tp > num_kv_heads:
    tp % num_kv_heads == 0), as in vllm/model_executor/layers/linear.py QKVParallelLinear.
    """
    heads, kv = arch.num_attention_heads, arch.num_kv_heads
    if heads % tp:
        return f"TP {tp} does not divide the {heads} attention heads (vLLM refuses it)"
    if tp <= kv and kv % tp:
        return f"TP {tp} does not divide the {kv} KV heads (vLLM refuses it)"
    if tp > kv and tp % kv:
        return f"TP {tp} is not a multiple of the {kv} KV heads to replicate (vLLM refuses it)"
    return None


def valid_tp_degrees(arch: Architecture, degrees: tuple[int, ...] = TP_DEGREES) -> tuple[int, ...]:
    return tuple(tp for tp in degrees if tp_problem(arch, tp) is None)


def kv_heads_per_gpu(arch: Architecture, tp: int) -> int:
    """KV heads each GPU holds: split when TP divides them, replicated when TP exceeds them."""
    return max(1, arch.num_kv_heads // tp)


def kv_bytes_per_token(arch: Architecture, kv_dtype: str = "bf16", tp: int = 1) -> int:
    """KV cache bytes one token takes on one GPU (K and V, every layer, this GPU's heads)."""
    return 2 * arch.num_layers * kv_heads_per_gpu(arch, tp) * arch.head_dim * KV_DTYPE_BYTES[kv_dtype]


def weight_bytes_per_gpu(
    arch: Architecture, quant: str | QuantSpec, tp: int = 1, pp: int = 1, double_quant: bool = False
) -> float:
    """Weights on the most loaded GPU: linear layers and the vocabulary split over TP, layers over PP."""
    spec = quant if isinstance(quant, QuantSpec) else quant_spec(quant)
    replicated = kv_heads_per_gpu(arch, tp) * tp  # heads replicated when tp > num_kv_heads
    whole = weight_bytes(arch, spec, double_quant, kv_heads=replicated)
    layers_on_stage = math.ceil(arch.num_layers / pp) / arch.num_layers
    vocab = max(whole.embedding, whole.lm_head) if pp > 1 else whole.embedding + whole.lm_head
    return (whole.linear * layers_on_stage + vocab) / tp + whole.small * layers_on_stage


def activation_bytes(arch: Architecture, tokens: int, tp: int, max_num_seqs: int) -> float:
    """Peak activation memory of one forward pass over ``tokens`` tokens (estimate).

    The widest live tensors in a decoder layer are the fused gate/up output (2 x intermediate)
    and the qkv projection, in 16-bit, plus the residual stream; the sampler holds float32
    logits and probabilities for every running sequence.
    """
    hd = arch.head_dim
    qkv = (arch.num_attention_heads + 2 * arch.num_kv_heads) * hd / tp
    inter = 2 * arch.intermediate_size * arch.experts_per_token / tp
    per_token = (inter + qkv + 2 * arch.hidden_size) * 2
    sampler = max_num_seqs * arch.vocab_size / tp * 4 * 2
    return tokens * per_token + sampler


@dataclass(frozen=True)
class FitResult:
    model: str
    quant: str
    gpu: str
    tp: int
    pp: int
    context_tokens: int
    concurrency: int
    gpu_memory_gib: float
    usable_gib: float  # gpu_memory_utilization x memory
    weights_gib: float  # per GPU
    activation_gib: float
    overhead_gib: float  # non-torch + CUDA graphs
    kv_pool_gib: float  # per GPU; negative: weights alone do not fit
    kv_bytes_per_token: int  # per GPU
    kv_tokens: int  # per replica (every GPU holds its share of every token)
    max_concurrent_seqs: int  # at context_tokens, capped by max_num_seqs
    kv_max_seqs: int  # what the KV cache alone allows
    fits: bool
    reason: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    max_num_seqs: int = 256  # the scheduler's cap on running sequences (not a memory limit)

    @property
    def queued(self) -> int:
        """Sequences of `concurrency` the memory holds but the scheduler cap makes wait."""
        return max(0, min(self.concurrency, self.kv_max_seqs) - self.max_num_seqs)

    @property
    def gpus(self) -> int:
        return self.tp * self.pp


def fit(
    model_id: str,
    arch: Architecture,
    quant: str,
    gpu: GpuSpec,
    context_tokens: int,
    concurrency: int = 1,
    tp: int = 1,
    pp: int = 1,
    kv_dtype: str = "bf16",
    engine: EngineMemory | None = None,
    double_quant: bool = False,
) -> FitResult:
    """Does model x quant fit on tp x pp GPUs with room for `concurrency` sequences of `context_tokens`?"""
    engine = engine or EngineMemory()
    spec = quant_spec(quant)
    notes: list[str] = []
    if spec.compute == "fp8" and gpu.fp8_dense_tflops is None:
        notes.append(f"{gpu.id} has no FP8 tensor cores: FP8 runs weight-only (Marlin), computing in BF16")
    too_long = context_tokens > arch.max_context_tokens
    if too_long:
        notes.append(f"context {context_tokens:,} exceeds the model's maximum {arch.max_context_tokens:,}")
    parallel_problem = tp_problem(arch, tp)
    if parallel_problem is None and pp > arch.num_layers:
        parallel_problem = f"PP {pp} exceeds the {arch.num_layers} layers"
    if parallel_problem:
        notes.append(parallel_problem)
    weights = weight_bytes_per_gpu(arch, spec, tp, pp, double_quant)
    # vLLM V1 profiles one forward pass of max_num_batched_tokens tokens; chunked prefill keeps every
    # later pass within it, so the context length does not enter (its cost is KV cache below).
    activation = activation_bytes(arch, engine.max_num_batched_tokens, tp, engine.max_num_seqs)
    overhead = (
        engine.non_torch_gib + engine.cuda_graph_gib + (engine.nccl_gib_per_tp if tp * pp > 1 else 0)
    ) * GIB
    usable = gpu.memory_gib * GIB * engine.gpu_memory_utilization
    pool = usable - weights - activation - overhead
    layers_share = math.ceil(arch.num_layers / pp) / arch.num_layers
    per_token = kv_bytes_per_token(arch, kv_dtype, tp) * layers_share  # this GPU's layers and heads
    kv_tokens = max(0, int(pool // per_token)) if pool > 0 else 0
    blocks_per_seq = math.ceil(context_tokens / BLOCK_TOKENS)
    seqs_by_kv = (kv_tokens // BLOCK_TOKENS) // blocks_per_seq if blocks_per_seq else 0
    max_seqs = min(seqs_by_kv, engine.max_num_seqs)
    if too_long:
        fits, reason = (
            False,
            f"a sequence of {context_tokens:,} tokens exceeds the model's maximum context of "
            f"{arch.max_context_tokens:,} (max_position_embeddings)",
        )
    elif pool <= 0:
        fits, reason = False, "weights and engine overheads alone exceed the usable memory"
    elif seqs_by_kv < 1:
        fits, reason = False, f"no room for one sequence of {context_tokens:,} tokens in the KV cache"
    elif seqs_by_kv < concurrency:
        fits, reason = (
            False,
            f"KV cache holds {seqs_by_kv:,} sequences of {context_tokens:,} tokens, not {concurrency:,}",
        )
    elif parallel_problem:
        fits, reason = False, parallel_problem
    else:
        fits, reason = True, f"fits with room for {seqs_by_kv:,} sequences of {context_tokens:,} tokens"
        if concurrency > engine.max_num_seqs:
            notes.append(
                f"memory holds all {concurrency:,} sequences, but the scheduler runs at most "
                f"{engine.max_num_seqs:,} at once (max_num_seqs); the other "
                f"{concurrency - engine.max_num_seqs:,} wait in the queue. Raise --max-num-seqs "
                "(vLLM --max-num-seqs) to run them all; more GPUs would not help"
            )
    return FitResult(
        model=model_id,
        quant=quant,
        gpu=gpu.id,
        tp=tp,
        pp=pp,
        context_tokens=context_tokens,
        concurrency=concurrency,
        gpu_memory_gib=gpu.memory_gib,
        usable_gib=usable / GIB,
        weights_gib=weights / GIB,
        activation_gib=activation / GIB,
        overhead_gib=overhead / GIB,
        kv_pool_gib=pool / GIB,
        kv_bytes_per_token=int(per_token),
        kv_tokens=kv_tokens,
        max_concurrent_seqs=max_seqs,
        kv_max_seqs=seqs_by_kv,
        fits=fits,
        reason=reason,
        notes=tuple(notes),
        max_num_seqs=engine.max_num_seqs,
    )


def smallest_fit(
    model_id: str,
    arch: Architecture,
    quant: str,
    gpu: GpuSpec,
    context_tokens: int,
    concurrency: int = 1,
    kv_dtype: str = "bf16",
    engine: EngineMemory | None = None,
    double_quant: bool = False,
    max_gpus: int = 32,
) -> FitResult:
    """The fewest GPUs that fit: tensor parallelism within a node (a degree vLLM accepts for the
    model's heads), then pipeline stages of the widest such TP; else the largest try.

    Only memory decides: a concurrency above the scheduler's max_num_seqs queues, it never asks for
    more GPUs.
    """
    last = None
    tps = valid_tp_degrees(arch) or (1,)
    for pp in PP_DEGREES:
        for tp in tps:
            if tp * pp > max_gpus or (pp > 1 and tp < max(tps)):
                continue
            last = fit(
                model_id,
                arch,
                quant,
                gpu,
                context_tokens,
                concurrency,
                tp,
                pp,
                kv_dtype,
                engine,
                double_quant,
            )
            if last.fits:
                return last
    assert last is not None
    return last
