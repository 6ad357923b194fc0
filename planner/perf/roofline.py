"""Step times from physics: bytes moved over achieved bandwidth, FLOPs over achieved compute.

A scheduler step of a continuous-batching engine (vLLM, TensorRT-LLM, SGLang) runs every running
sequence's next decode token plus, in some steps, a chunk of a new prompt's prefill, in one forward
pass:

- memory: the weights are read once per step (MoE: only the experts that step's tokens route to),
  plus every decoding sequence's KV cache;
- compute: 2 FLOPs per active weight per token, plus attention (4 x layers x heads x head_dim per
  token per context position), plus the lm_head for each sequence that samples;
- tensor parallelism splits both over TP GPUs and adds two all-reduces per layer;
- pipeline parallelism splits the layers over PP stages: a step's micro-batch passes through every
  stage in turn (a stage's time times PP, plus the activation sends between stages), while up to
  PP micro-batches are in flight, one per stage. Below PP running sequences the stages idle (the
  pipeline bubble), so PP buys memory, not latency.

Prefill is not smeared over decode steps: a prompt is prefilled in chunks of at most
``max_batched_tokens``, each chunk sharing one step with the other sequences' decodes, and all other
steps are pure decode. TPOT averages the steps a request sees while it decodes, which hold the
chunks of the *other* requests' prompts; its own prefill is in TTFT only. So at concurrency 1 TPOT
is a pure decode step, and a MoE decode step reads the experts of its own few tokens.

The step time is a smooth maximum of the memory and compute times plus the all-reduce time and a
fixed per-step overhead. From step times come TTFT, TPOT and tokens/s at a concurrency
(``serving``), when kept full (``offline_saturated``), or at a fixed batch in-process
(``static_batch``, HF transformers ``generate``).

All functions take numpy arrays for the load so that a whole concurrency sweep is one call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from planner.perf.memory import kv_bytes_per_token, weight_bytes_per_gpu
from planner.perf.params import param_counts
from planner.perf.quant import QuantSpec, linear_bytes, quant_spec

if TYPE_CHECKING:
    from planner.records import Architecture, GpuSpec

SMOOTH_MAX_POWER = 3.0
"""Memory and compute overlap imperfectly near the ridge point; a p-norm (p=3) models that."""

ALLREDUCE_LATENCY_S = {"nvlink": 8e-6, "infinity-fabric": 12e-6, "pcie": 25e-6, "none": 25e-6}
"""Fixed cost of one small all-reduce (NCCL ring/tree launch and sync), by link kind (estimate)."""

GPUS_PER_NODE = 8
INTER_NODE_BYTES_PER_S = 50e9
"""Pipeline stages on different nodes send activations over the cluster network: one 400 Gb/s NIC per
GPU (50 GB/s), the usual H100/H200 cluster build (estimate; no catalog field holds it)."""
STAGE_SEND_LATENCY_S = {"intra-node": 10e-6, "inter-node": 25e-6}
"""Fixed cost of one point-to-point activation send between pipeline stages (estimate)."""

CONTINUOUS_ENGINES = ("vllm", "tensorrt-llm", "sglang", "tgi", "lmdeploy", "llama.cpp", "transformers-serve")


@dataclass(frozen=True)
class Efficiency:
    """Achieved fractions of peak, and the fixed cost of a step (fitted by calibrate.py).

    The field defaults are a neutral starting point for tests and benchmarks; the planner's own
    defaults where no record exists, with their sources, are calibration.default_efficiency.
    """

    bandwidth: float = 0.75
    flops: float = 0.55
    step_overhead_ms: float = 4.0
    comm: float = 1.0  # multiplier on the modelled all-reduce time (TP > 1)


@dataclass(frozen=True)
class Hardware:
    """The per-GPU constants one configuration needs, precomputed once (cheap to evaluate after).

    With pipeline parallelism every per-GPU figure is the most loaded stage's (its ceil(layers/PP)
    layers plus the lm_head): each stage is timed as that one, a slight overestimate.
    """

    # Scalars for one configuration, or arrays of them (Hardware.stack) for many at once.
    dense_weight_bytes: float  # per GPU: attention, lm_head, norms (read every step)
    expert_bytes: float  # per GPU: one expert's MLP over the stage's layers (MoE), else the dense MLP
    num_experts: int
    experts_per_token: int
    kv_bytes_per_token: float  # per GPU (its stage's layers)
    linear_flops_per_token: float  # per GPU
    lm_head_flops_per_seq: float  # per GPU
    attn_flops_per_token_ctx: float  # per GPU, per context position
    peak_flops: float  # FLOP/s of the compute precision on this GPU
    bandwidth: float  # bytes/s
    tp: int
    layers: int  # on one stage
    hidden: int
    link_bytes_per_s: float  # one direction
    allreduce_latency_s: float
    pp: int = 1
    stage_link_bytes_per_s: float = INTER_NODE_BYTES_PER_S
    stage_send_latency_s: float = 0.0

    @classmethod
    def build(
        cls,
        arch: Architecture,
        quant: str | QuantSpec,
        gpu: GpuSpec,
        tp: int = 1,
        kv_dtype: str = "bf16",
        pp: int = 1,
        double_quant: bool = False,
    ) -> Hardware:
        spec = quant if isinstance(quant, QuantSpec) else quant_spec(quant)
        p = param_counts(arch)
        stage_layers = math.ceil(arch.num_layers / pp)
        share = stage_layers / arch.num_layers
        per_gpu = weight_bytes_per_gpu(arch, spec, tp, pp, double_quant)
        h, inter = arch.hidden_size, arch.intermediate_size
        one_expert = stage_layers * (2 * linear_bytes(spec, inter, h) + linear_bytes(spec, h, inter)) / tp
        all_mlp = one_expert * arch.num_experts
        embedding = p.embedding * spec.dense_bytes / tp  # looked up, not read in full
        # One stage holds both tables only without PP; a tied table is read as the lm_head.
        looked_up = embedding if (p.lm_head and pp == 1) else 0.0
        dense = per_gpu - all_mlp - looked_up
        q_heads = arch.num_attention_heads / tp
        linear_active = (p.attention_linear + p.mlp_linear_active) * share / tp
        if spec.compute == "fp8" and gpu.fp8_dense_tflops:
            peak = gpu.fp8_dense_tflops
        else:
            peak = gpu.bf16_dense_tflops
        link = gpu.interconnect
        one_node = tp * pp <= GPUS_PER_NODE
        return cls(
            dense_weight_bytes=dense,
            expert_bytes=one_expert,
            num_experts=arch.num_experts,
            experts_per_token=arch.experts_per_token,
            kv_bytes_per_token=kv_bytes_per_token(arch, kv_dtype, tp) * share,
            linear_flops_per_token=2.0 * linear_active,
            lm_head_flops_per_seq=2.0 * arch.vocab_size * h / tp,
            attn_flops_per_token_ctx=4.0 * stage_layers * q_heads * arch.head_dim,
            peak_flops=peak * 1e12,
            bandwidth=gpu.bandwidth_gb_per_s * 1e9,
            tp=tp,
            layers=stage_layers,
            hidden=h,
            link_bytes_per_s=link.bandwidth_gb_per_s * 1e9 / 2,
            allreduce_latency_s=ALLREDUCE_LATENCY_S[link.kind],
            pp=pp,
            stage_link_bytes_per_s=link.bandwidth_gb_per_s * 1e9 / 2 if one_node else INTER_NODE_BYTES_PER_S,
            stage_send_latency_s=STAGE_SEND_LATENCY_S["intra-node" if one_node else "inter-node"]
            if pp > 1
            else 0.0,
        )

    @classmethod
    def stack(cls, items: list[Hardware], column: bool = False) -> Hardware:
        """One Hardware whose fields are arrays: evaluates many configurations in one call.

        column=True gives shape (n, 1), to broadcast against a row of loads (n configs x m loads).
        """
        shape = (-1, 1) if column else (-1,)
        return cls(
            **{
                f: np.array([getattr(h, f) for h in items], dtype=float).reshape(shape)
                for f in cls.__dataclass_fields__
            }
        )


def experts_touched(hw: Hardware, tokens: np.ndarray) -> np.ndarray:
    """Expected distinct experts per layer that `tokens` tokens route to (uniform top-k routing).

    Dense models are the case of one expert chosen by every token: the result is 1.
    """
    miss = (1.0 - hw.experts_per_token / hw.num_experts) ** np.maximum(tokens, 1.0)
    return hw.num_experts * (1.0 - miss)


def step_time(
    hw: Hardware,
    eff: Efficiency,
    decode_seqs: np.ndarray,
    prefill_tokens: np.ndarray,
    prefill_seqs: np.ndarray,
    decode_ctx: np.ndarray,
    prefill_ctx: np.ndarray,
) -> np.ndarray:
    """Seconds for one micro-batch to pass the whole model: `decode_seqs` decode tokens at mean
    context `decode_ctx` plus `prefill_tokens` prompt tokens (from `prefill_seqs` prompts) at mean
    causal context `prefill_ctx`. With PP that is PP stage times plus the sends between stages."""
    decode_seqs = np.asarray(decode_seqs, dtype=float)
    prefill_tokens = np.asarray(prefill_tokens, dtype=float)
    tokens = decode_seqs + prefill_tokens
    weights = hw.dense_weight_bytes + experts_touched(hw, tokens) * hw.expert_bytes
    kv = hw.kv_bytes_per_token * (decode_seqs * decode_ctx + prefill_tokens)
    t_mem = (weights + kv) / (hw.bandwidth * eff.bandwidth)
    flops = (
        tokens * hw.linear_flops_per_token
        + (decode_seqs + prefill_seqs) * hw.lm_head_flops_per_seq
        + hw.attn_flops_per_token_ctx * (decode_seqs * decode_ctx + prefill_tokens * prefill_ctx)
    )
    t_cmp = flops / (hw.peak_flops * eff.flops)
    p = SMOOTH_MAX_POWER
    t = (t_mem**p + t_cmp**p) ** (1.0 / p)
    message = tokens * hw.hidden * 2.0
    ring = 2.0 * (hw.tp - 1) / hw.tp * message / hw.link_bytes_per_s
    comm = np.where(hw.tp > 1, 2 * hw.layers * (ring + hw.allreduce_latency_s), 0.0)
    stage = t + eff.comm * comm
    send = np.where(hw.pp > 1, hw.stage_send_latency_s + message / hw.stage_link_bytes_per_s, 0.0)
    return hw.pp * stage + (hw.pp - 1) * send + eff.step_overhead_ms / 1e3


def mean_step_time(
    hw: Hardware,
    eff: Efficiency,
    decode_seqs: np.ndarray,
    steps: np.ndarray,
    prefill_tokens: np.ndarray,
    chunk_tokens: np.ndarray,
    prompt_tokens: np.ndarray,
    decode_ctx: np.ndarray,
    prefill_ctx: np.ndarray,
) -> np.ndarray:
    """Mean time of `steps` micro-batch steps of `decode_seqs` sequences during which
    `prefill_tokens` prompt tokens are also computed, in chunks of `chunk_tokens` per step.

    A chunk shares its step with the other sequences' decodes; the remaining steps are pure decode.
    When the prompts need more than one chunk per step (a prefill-heavy load), every step carries
    an equal share of them.
    """
    steps = np.maximum(steps, 1.0)
    mixed = np.clip(prefill_tokens / np.maximum(chunk_tokens, 1.0), 0.0, steps)
    per_mixed = np.where(mixed > 0, prefill_tokens / np.maximum(mixed, 1e-12), 0.0)
    t_mixed = step_time(
        hw,
        eff,
        np.maximum(decode_seqs - 1.0, 0.0),  # one slot is the prompt being prefilled
        per_mixed,
        per_mixed / np.maximum(prompt_tokens, 1.0),
        decode_ctx,
        prefill_ctx,
    )
    t_decode = step_time(hw, eff, decode_seqs, 0.0, 0.0, decode_ctx, prefill_ctx)
    return (mixed * t_mixed + (steps - mixed) * t_decode) / steps


@dataclass(frozen=True)
class ServingPoint:
    """Closed-loop load at `concurrency` clients; every field is an array over concurrency."""

    concurrency: np.ndarray
    running: np.ndarray  # sequences the engine runs at once (KV and max_num_seqs permitting)
    ttft_s: np.ndarray
    tpot_s: np.ndarray
    e2e_s: np.ndarray
    output_tokens_per_s: np.ndarray  # per replica
    requests_per_s: np.ndarray


def _computed_prompt(input_tokens: np.ndarray, prefill_fraction: float | np.ndarray) -> np.ndarray:
    """Prompt tokens a prefill computes: prefix-cached ones are skipped, but the last is always run."""
    share = np.clip(np.asarray(prefill_fraction, dtype=float), 0.0, 1.0)
    return np.minimum(input_tokens, np.maximum(input_tokens * share, 1.0))


def serving(
    hw: Hardware,
    eff: Efficiency,
    concurrency: np.ndarray,
    input_tokens: float,
    output_tokens: float,
    max_running: float,
    max_batched_tokens: int = 8192,
    prefill_fraction: float = 1.0,
) -> ServingPoint:
    """Steady state of a continuous-batching server with `concurrency` clients sending back to back.

    Each client's request is prefilled in chunks of at most `max_batched_tokens` (TTFT), then
    decoded one token per step (TPOT); while it decodes, the other running clients' new prompts are
    prefilled in some of its steps. Clients beyond what the engine runs at once (KV cache,
    max_num_seqs) wait in the queue (Little's law). With prefix caching only `prefill_fraction` of
    each prompt is computed (attending to the cached rest); the whole prompt still occupies the KV
    cache and is read by every decode step.
    """
    c = np.asarray(concurrency, dtype=float)
    running = np.minimum(c, np.maximum(max_running, 1.0))
    inp = np.asarray(input_tokens, dtype=float)
    out = np.maximum(output_tokens, 1.0)
    computed = _computed_prompt(inp, prefill_fraction)
    prefill_ctx = inp - computed / 2  # computed tokens attend to the cached prefix and to each other
    decode_ctx = inp + out / 2
    chunks = np.maximum(1.0, np.ceil(computed / max_batched_tokens))
    chunk = computed / chunks
    in_flight = np.minimum(running, hw.pp)  # micro-batches (one per pipeline stage at most)
    micro = running / in_flight
    # While one request decodes its out - 1 tokens, the other running - 1 slots turn over once each.
    tpot = mean_step_time(
        hw,
        eff,
        micro,
        in_flight * (out - 1),
        (running - 1) * computed,
        chunk,
        computed,
        decode_ctx,
        prefill_ctx,
    )
    prefill_step = step_time(hw, eff, np.maximum(micro - 1, 0), chunk, 1.0 / chunks, decode_ctx, prefill_ctx)
    ttft_running = chunks * prefill_step + 0.5 * tpot  # an arrival waits for the current step
    e2e_running = ttft_running + (out - 1) * tpot
    queue_wait = np.maximum(c - running, 0) / running * e2e_running
    ttft = ttft_running + queue_wait
    e2e = e2e_running + queue_wait
    req_s = c / e2e
    return ServingPoint(c, running, ttft, tpot, e2e, req_s * out, req_s)


def static_batch(
    hw: Hardware, eff: Efficiency, batch: np.ndarray, input_tokens: float, output_tokens: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HF `generate` on a fixed batch: (prefill seconds, seconds per decode step, output tokens/s)."""
    b = np.asarray(batch, dtype=float)
    inp = np.asarray(input_tokens, dtype=float)
    zero = np.zeros_like(b)
    prefill = step_time(hw, eff, zero, b * inp, b, zero, inp / 2)
    decode = step_time(hw, eff, b, zero, zero, inp + output_tokens / 2, zero)
    e2e = prefill + (output_tokens - 1) * decode
    return prefill, decode, b * output_tokens / e2e


def offline_saturated(
    hw: Hardware,
    eff: Efficiency,
    batch: np.ndarray,
    input_tokens: np.ndarray,
    output_tokens: np.ndarray,
    max_batched_tokens: int = 8192,
) -> np.ndarray:
    """Throughput (output tokens/s per replica) of a continuous-batching engine kept full at `batch`.

    Offline runs are throughput-bound: no client waits, so in steady state every step emits one
    token per running sequence while, in some steps, new prompts are prefilled (in chunks) as old
    ones finish: over one generation of `output_tokens` steps, `batch` prompts.
    """
    b = np.asarray(batch, dtype=float)
    inp = np.asarray(input_tokens, dtype=float)
    out = np.maximum(output_tokens, 1.0)
    chunks = np.maximum(1.0, np.ceil(inp / max_batched_tokens))
    in_flight = np.minimum(b, hw.pp)
    step = mean_step_time(
        hw, eff, b / in_flight, in_flight * out, b * inp, inp / chunks, inp, inp + out / 2, inp / 2
    )
    return b / step


__all__ = [
    "CONTINUOUS_ENGINES",
    "Efficiency",
    "Hardware",
    "ServingPoint",
    "mean_step_time",
    "offline_saturated",
    "serving",
    "static_batch",
    "step_time",
]
