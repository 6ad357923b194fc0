"""Quantization formats: how each stores a linear layer's weights, and what it leaves in 16-bit.

Bytes come from the storage layout of each format (packed weights plus their scales, zeros and
indices at the format's group or block size), never from a bytes-per-parameter constant:

- bnb-nf4 / bnb-fp4 (bitsandbytes Params4bit): 4-bit codes, two per byte, over the flattened
  weight in blocks of 64; one float32 absmax per block. With double quantization the absmax
  values are themselves int8 in blocks of 256, with one float32 scale per block of blocks.
- bnb-int8 (LLM.int8, Int8Params): int8 weights and one float32 scale (SCB) per output row.
- awq-int4 (AutoAWQ GEMM): int4 weights and int4 zero points packed 8 per int32, one fp16
  scale per group of 128 input channels per output channel.
- gptq-int4 / gptq-int8 (AutoGPTQ / GPTQModel): packed weights, packed zeros and fp16 scales
  per group of 128, plus g_idx (one int32 per input channel).
- fp8 (compressed-tensors / vLLM W8A8): e4m3 weights, one float32 scale per output channel.

In every format here the embedding table, the lm_head, norms, biases and MoE routers stay in
16-bit (transformers skips lm_head for bitsandbytes; AWQ, GPTQ and FP8 checkpoints keep it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from planner.errors import UnknownIdError

Compute = Literal["fp32", "bf16", "fp8"]


@dataclass(frozen=True)
class QuantSpec:
    name: str
    weight_bits: int
    dense_bytes: int  # bytes per value of what stays unquantized (embeddings, lm_head, norms)
    compute: Compute  # the tensor-core precision matmuls run in
    group_size: int | None = None  # input channels per scale (awq, gptq)
    block_size: int | None = None  # flattened weights per absmax (bnb 4-bit)
    zero_point: bool = False
    g_idx: bool = False
    row_scale_bytes: int = 0  # per output channel scale (bnb-int8 SCB, fp8 per-channel)
    description: str = ""

    @property
    def quantized(self) -> bool:
        return self.weight_bits < 16


QUANTS: dict[str, QuantSpec] = {
    q.name: q
    for q in (
        QuantSpec("fp32", 32, 4, "fp32", description="full precision (CPU runs)"),
        QuantSpec("bf16", 16, 2, "bf16", description="bfloat16, unquantized"),
        QuantSpec("fp16", 16, 2, "bf16", description="float16, unquantized"),
        QuantSpec("fp8", 8, 2, "fp8", row_scale_bytes=4, description="FP8 e4m3 W8A8, per-channel scales"),
        QuantSpec("bnb-int8", 8, 2, "bf16", row_scale_bytes=4, description="bitsandbytes LLM.int8()"),
        QuantSpec("bnb-nf4", 4, 2, "bf16", block_size=64, description="bitsandbytes 4-bit NormalFloat"),
        QuantSpec("bnb-fp4", 4, 2, "bf16", block_size=64, description="bitsandbytes 4-bit float"),
        QuantSpec(
            "awq-int4", 4, 2, "bf16", group_size=128, zero_point=True, description="AWQ int4, group 128"
        ),
        QuantSpec(
            "gptq-int4",
            4,
            2,
            "bf16",
            group_size=128,
            zero_point=True,
            g_idx=True,
            description="GPTQ int4, group 128",
        ),
        QuantSpec(
            "gptq-int8",
            8,
            2,
            "bf16",
            group_size=128,
            zero_point=True,
            g_idx=True,
            description="GPTQ int8, group 128",
        ),
    )
}


def quant_spec(name: str) -> QuantSpec:
    if name not in QUANTS:
        raise UnknownIdError("quantization format", name, QUANTS, "one of " + ", ".join(QUANTS))
    return QUANTS[name]


def linear_bytes(spec: QuantSpec, out_features: int, in_features: int, double_quant: bool = False) -> float:
    """Bytes one linear layer's weight takes in this format, scales and indices included."""
    numel = out_features * in_features
    if not spec.quantized:
        return numel * spec.weight_bits / 8
    total = numel * spec.weight_bits / 8
    total += out_features * spec.row_scale_bytes
    if spec.block_size:  # bitsandbytes 4-bit: absmax per block of the flattened weight
        blocks = numel / spec.block_size
        if double_quant:
            total += blocks * 1 + blocks / 256 * 4  # int8 absmax + float32 per 256 blocks
        else:
            total += blocks * 4
    if spec.group_size:
        groups = in_features / spec.group_size * out_features
        total += groups * 2  # fp16 scales
        if spec.zero_point:
            total += groups * spec.weight_bits / 8  # packed zeros
        if spec.g_idx:
            total += in_features * 4
    return total
