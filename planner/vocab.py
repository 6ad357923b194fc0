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
