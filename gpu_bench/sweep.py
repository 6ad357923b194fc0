"""Sweep files: the matrix models x quants x engines x batch sizes x lengths, strict YAML."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gpu_bench.config import DTYPES, ENGINES, QUANT_ENGINES, SCALES, RunConfig
from planner.errors import PlannerError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Defaults(_Strict):
    device: str = "cuda"
    weights: str = "dummy"
    scale: Literal["full", "tiny"] = "full"
    dtype: Literal["bf16", "fp16", "fp32"] = "bf16"
    tp: int = Field(default=1, ge=1)
    double_quant: bool = False
    repeats: int = Field(default=3, ge=1)
    warmup: int = Field(default=1, ge=0)
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    max_num_seqs: int | None = Field(default=None, ge=1)
    enforce_eager: bool = False
    kv_cache_dtype: str = "auto"


Quant = Literal["none", "bnb-int8", "bnb-nf4", "bnb-fp4", "fp8", "awq-int4", "gptq-int4", "gptq-int8"]


class Matrix(_Strict):
    models: list[str] = Field(min_length=1)
    quants: list[Quant] = Field(default=["none"], min_length=1)
    engines: list[Literal["transformers", "vllm"]] = Field(default=["transformers"], min_length=1)
    batch_sizes: list[int] = Field(min_length=1)
    input_lens: list[int] = Field(default=[512], min_length=1)
    output_lens: list[int] = Field(default=[128], min_length=1)


class SweepFile(_Strict):
    schema_version: Literal[1]
    name: str | None = None
    out: str | None = None
    defaults: Defaults = Field(default_factory=Defaults)
    matrix: Matrix
    exclude: list[dict[str, Any]] = Field(default_factory=list)
    include: list[dict[str, Any]] = Field(default_factory=list)


def read_sweep(path: Path) -> SweepFile:
    from planner.catalog.files import CatalogFileError, read_yaml_mapping
    from planner.catalog.loader import describe_error, loc_text

    try:
        row = read_yaml_mapping(path)
    except CatalogFileError as exc:
        raise PlannerError(f"sweep file {exc}") from None
    try:
        return SweepFile.model_validate(row.data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc, msg = describe_error(dict(err), SweepFile)
            problems.append(f"{path}:{row.line_of(loc) or 1}: {loc_text(loc)}: {msg}")
        raise PlannerError("the sweep file has problems:\n  " + "\n  ".join(problems)) from None


def _matches(config: RunConfig, pattern: dict[str, Any]) -> bool:
    return all(getattr(config, k, None) == v for k, v in pattern.items())


def expand(spec: SweepFile) -> list[RunConfig]:
    """Every configuration of the matrix (and the includes), minus the excludes, in a stable order."""
    base = spec.defaults.model_dump()
    m = spec.matrix
    configs = [
        RunConfig(model=model, quant=quant, engine=engine, batch_size=b, input_len=i, output_len=o, **base)
        for model, quant, engine, i, o, b in itertools.product(
            m.models, m.quants, m.engines, m.input_lens, m.output_lens, m.batch_sizes
        )
    ]
    for extra in spec.include:
        extra = dict(extra)
        batches = extra.pop("batch_sizes", None) or [extra.pop("batch_size", 1)]
        for b in batches:
            fields = {"input_len": m.input_lens[0], "output_len": m.output_lens[0], "engine": m.engines[0]}
            try:
                configs.append(RunConfig(**{**base, **fields, "quant": "none", **extra, "batch_size": b}))
            except TypeError as exc:
                raise PlannerError(f"include entry {extra}: {exc}") from None
    configs = [c for c in configs if not any(_matches(c, pat) for pat in spec.exclude)]
    configs = share_vllm_engines(configs)
    seen, unique = set(), []
    for c in configs:
        if c.key() not in seen:
            seen.add(c.key())
            unique.append(c)
    return unique


def share_vllm_engines(configs: list[RunConfig]) -> list[RunConfig]:
    """vLLM configurations that differ only in batch size get the same max_num_seqs (the largest
    batch), so one engine serves them all instead of one engine start per batch size."""
    from dataclasses import replace

    from gpu_bench.runner import group_key

    largest: dict[str, int] = {}
    for c in configs:
        if c.engine == "vllm" and c.max_num_seqs is None:
            largest[group_key(c)] = max(largest.get(group_key(c), 1), c.batch_size)
    return [
        replace(c, max_num_seqs=largest[group_key(c)]) if c.engine == "vllm" and c.max_num_seqs is None else c
        for c in configs
    ]


def check(config: RunConfig) -> None:
    """Refuse what cannot run before any process starts (a typo should not cost a GPU hour)."""
    if config.engine not in ENGINES:
        raise PlannerError(f"unknown engine {config.engine!r}; use one of {', '.join(ENGINES)}")
    if config.quant not in QUANT_ENGINES[config.engine]:
        raise PlannerError(
            f"{config.engine} does not run quant {config.quant!r} here; use one of "
            f"{', '.join(QUANT_ENGINES[config.engine])}"
        )
    if config.scale not in SCALES or config.dtype not in DTYPES:
        raise PlannerError(f"scale must be one of {SCALES} and dtype one of {DTYPES}")
    if config.quant in ("awq-int4", "gptq-int4", "gptq-int8") and config.weights == "dummy":
        raise PlannerError(f"{config.quant} needs a real quantized checkpoint: give --weights PATH")
    if (
        config.engine == "vllm"
        and config.quant.startswith("bnb-")
        and config.weights == "dummy"
        and config.scale == "full"
    ):
        raise PlannerError(
            f"vLLM's bitsandbytes ({config.quant}) quantizes a checkpoint as it reads it "
            '(load_format="bitsandbytes"), so it cannot run random dummy weights at full size: give '
            "--weights PATH (a 16-bit checkpoint), or measure bitsandbytes with --engine transformers"
        )
    for name in ("batch_size", "input_len", "output_len"):
        if getattr(config, name) < 1:
            raise PlannerError(f"{name} must be at least 1")
