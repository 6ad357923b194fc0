"""The fixed vocabularies of the record types, importable without pydantic (the fast paths use them)."""

from __future__ import annotations

SCHEMA_VERSION = 1
QUANT_FORMATS: tuple[str, ...] = (
    "fp32",
    "bf16",
    "fp16",
    "fp8",
    "bnb-int8",
    "bnb-nf4",
    "bnb-fp4",
    "awq-int4",
    "gptq-int4",
    "gptq-int8",
)
PRICING_MODELS: tuple[str, ...] = ("on_demand", "spot", "reserved_1y", "reserved_3y")
KV_CACHE_DTYPES: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16", "fp8")
ENGINES: tuple[str, ...] = (
    "vllm",
    "sglang",
    "tensorrt-llm",
    "tgi",
    "lmdeploy",
    "llama.cpp",
    "transformers-serve",
    "transformers",
)
"""Serving engines the performance model knows (continuous batching, and HF generate's static
batches); tests/planner/test_units.py checks this list against planner.perf's."""
SERVING_ENGINES: tuple[str, ...] = tuple(e for e in ENGINES if e != "transformers")
"""What a self-hosted fleet can run: a server with continuous batching. HF `generate` in a loop
(`transformers`, what gpu-bench run measures) serves no traffic; `transformers-serve` does."""
NVIDIA_ONLY_ENGINES: tuple[str, ...] = ("tensorrt-llm",)
"""Engines that run on NVIDIA GPUs only (TensorRT-LLM is built on CUDA and TensorRT)."""
