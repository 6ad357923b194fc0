"""Sweep files: the matrix models x quants x engines x batch sizes x lengths, strict YAML."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gpu_bench.config import (
    DEVICES,
    DTYPES,
    ENGINES,
    QUANT_ENGINES,
    SCALES,
    RunConfig,
    default_dtype,
    tp_problem,
)
from planner.errors import PlannerError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


Quant = Literal["none", "bnb-int8", "bnb-nf4", "bnb-fp4", "fp8", "awq-int4", "gptq-int4", "gptq-int8"]
Engine = Literal["transformers", "vllm"]
Device = Literal["cuda", "cpu"]
Dtype = Literal["bf16", "fp16", "fp32"]
Count = Annotated[int, Field(ge=1)]


class Defaults(_Strict):
    device: Device = "cuda"
    weights: str = "dummy"
    scale: Literal["full", "tiny"] = "full"
    dtype: Dtype | None = None  # None: bf16 on cuda, fp32 on cpu (config.default_dtype), as in run
    tp: Count = 1
    double_quant: bool = False
    repeats: Count = 3
    warmup: int = Field(default=1, ge=0)
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    max_num_seqs: Count | None = None
    enforce_eager: bool = False
    kv_cache_dtype: str = "auto"


class Matrix(_Strict):
    models: list[str] = Field(min_length=1)
    quants: list[Quant] = Field(default=["none"], min_length=1)
    engines: list[Engine] = Field(default=["transformers"], min_length=1)
    batch_sizes: list[Count] = Field(min_length=1)
    input_lens: list[Count] = Field(default=[512], min_length=1)
    output_lens: list[Count] = Field(default=[128], min_length=1)


class Include(_Strict):
    """One more configuration (one per batch size), checked like the matrix: what it leaves out
    comes from the defaults, the lengths and engine from the matrix's first, quant none."""

    model: str
    quant: Quant = "none"
    engine: Engine | None = None
    batch_size: Count | None = None
    batch_sizes: list[Count] | None = Field(default=None, min_length=1)
    input_len: Count | None = None
    output_len: Count | None = None
    device: Device | None = None
    weights: str | None = None
    scale: Literal["full", "tiny"] | None = None
    dtype: Dtype | None = None
    tp: Count | None = None
    double_quant: bool | None = None
    repeats: Count | None = None
    warmup: int | None = Field(default=None, ge=0)
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1)
    max_num_seqs: Count | None = None
    enforce_eager: bool | None = None
    kv_cache_dtype: str | None = None
    seed: int | None = None

    @model_validator(mode="after")
    def _one_batch_field(self) -> Include:
        if self.batch_size is not None and self.batch_sizes is not None:
            raise ValueError("give batch_size or batch_sizes, not both")
        return self


class Exclude(_Strict):
    """A pattern: every configuration whose fields equal all of these is left out."""

    model: str | None = None
    quant: Quant | None = None
    engine: Engine | None = None
    batch_size: Count | None = None
    input_len: Count | None = None
    output_len: Count | None = None
    device: Device | None = None
    weights: str | None = None
    scale: Literal["full", "tiny"] | None = None
    dtype: Dtype | None = None
    tp: Count | None = None
    double_quant: bool | None = None
    gpu_memory_utilization: float | None = None
    max_num_seqs: Count | None = None
    enforce_eager: bool | None = None
    kv_cache_dtype: str | None = None


class SweepFile(_Strict):
    schema_version: Literal[1]
    name: str | None = None
    out: str | None = None
    defaults: Defaults = Field(default_factory=Defaults)
    matrix: Matrix
    exclude: list[Exclude] = Field(default_factory=list)
    include: list[Include] = Field(default_factory=list)


def read_sweep(path: Path) -> SweepFile:
    """The sweep file, or a PlannerError listing every problem as `file:line: field: problem`.

    Only what a file can get wrong is refused here (a field, a value, a combination no engine
    runs, a model no catalog knows); what is valid but cannot run on this machine (fp8 in
    transformers) becomes an error record when the sweep runs.
    """
    from planner.catalog.files import CatalogFileError, read_yaml_mapping
    from planner.catalog.loader import describe_error, loc_text

    try:
        row = read_yaml_mapping(path)
    except CatalogFileError as exc:
        raise PlannerError(f"sweep file {exc}") from None
    problems: list[tuple[tuple[Any, ...], str]] = []
    spec = None
    try:
        spec = SweepFile.model_validate(row.data)
    except ValidationError as exc:
        for err in exc.errors():
            loc, msg = describe_error(dict(err), SweepFile)
            problems.append((loc, _list_field_hint(loc, msg)))
    problems += _combination_problems(row.data)
    if problems:
        lines = [f"{path}:{row.line_of(loc) or 1}: {loc_text(loc)}: {msg}" for loc, msg in problems]
        raise PlannerError("the sweep file has problems:\n  " + "\n  ".join(lines))
    assert spec is not None
    return spec


def _list_field_hint(loc: tuple[Any, ...], msg: str) -> str:
    """describe_error finds no allowed fields below a list index (include[0]): name them here."""
    kinds = {"include": Include, "exclude": Exclude}
    if msg.startswith("unknown field") and msg.endswith("allowed: ") and loc and loc[0] in kinds:
        from planner.errors import close_matches

        known = list(kinds[loc[0]].model_fields)
        hint = close_matches(str(loc[-1]), known)
        return msg.removesuffix("; allowed: ") + (
            f"; did you mean {hint[0]!r}?" if hint else f"; allowed: {', '.join(known)}"
        )
    return msg


def _valid(kind: type[BaseModel], data: Any) -> Any:
    """data as a kind, or None where it is not one (its problems are reported already)."""
    try:
        return kind.model_validate(data)
    except ValidationError:
        return None


def _combination_problems(data: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """Fields valid one by one that no engine runs together, and models nothing knows: checked
    in every part that is valid on its own, so that one run lists every problem of the file."""
    defaults = _valid(Defaults, data.get("defaults", {}))
    matrix = _valid(Matrix, data.get("matrix"))
    raw_includes = data.get("include")
    includes = list(enumerate(raw_includes)) if isinstance(raw_includes, list) else []
    out: list[tuple[tuple[Any, ...], str]] = []
    default_weights = defaults.weights if defaults else "dummy"
    first_engine = matrix.engines[0] if matrix else "transformers"
    default_tp = defaults.tp if defaults else 1
    for engine in matrix.engines if matrix and defaults else []:
        problem = tp_problem(engine, defaults.tp)
        if problem:
            out.append((("defaults", "tp"), f"{problem}; matrix.engines has {engine}"))
    sources = [
        (("matrix", "models", j), ("defaults", "weights"), m, default_weights)
        for j, m in enumerate(matrix.models if matrix else [])
    ]
    for i, raw in includes:
        inc = _valid(Include, raw)
        if inc is None:
            continue
        problem = tp_problem(inc.engine or first_engine, inc.tp or default_tp)
        if problem:
            out.append((("include", i, "tp" if inc.tp else "engine"), problem))
        weights_loc = ("include", i, "weights") if inc.weights else ("defaults", "weights")
        sources.append((("include", i, "model"), weights_loc, inc.model, inc.weights or default_weights))
    seen = set()
    for model_loc, weights_loc, model, weights in sources:
        found = source_problem(model, weights)
        if found:
            loc = model_loc if found[0] == "model" else weights_loc
            if (loc, found[1]) not in seen:  # the defaults' weights once, not once per model
                seen.add((loc, found[1]))
                out.append((loc, f"{weights!r}: {found[1]}" if found[0] == "weights" else found[1]))
    return out


def source_problem(model: str, weights: str) -> tuple[str, str] | None:
    """(the field, what is wrong) when a configuration's weights cannot be found: a checkpoint
    directory (with its config.json) for real weights, else a catalog id or such a directory."""
    if weights != "dummy":
        if not (Path(weights) / "config.json").is_file():
            return "weights", "not a checkpoint directory (a folder with config.json), nor dummy"
        return None
    if Path(model).is_dir():
        if (Path(model) / "config.json").is_file():
            return None
        return "model", "a folder without config.json: not a checkpoint directory"
    from planner.catalog import Catalog

    try:
        Catalog.default().model(model)
    except PlannerError as exc:
        return "model", f"{exc}; or a local checkpoint directory"
    return None


def _matches(config: RunConfig, pattern: dict[str, Any]) -> bool:
    return all(getattr(config, k, None) == v for k, v in pattern.items())


def expand(spec: SweepFile) -> list[RunConfig]:
    """Every configuration of the matrix (and the includes), minus the excludes, in a stable order."""
    base = spec.defaults.model_dump()
    base["dtype"] = base["dtype"] or default_dtype(base["device"])
    m = spec.matrix
    configs = [
        RunConfig(model=model, quant=quant, engine=engine, batch_size=b, input_len=i, output_len=o, **base)
        for model, quant, engine, i, o, b in itertools.product(
            m.models, m.quants, m.engines, m.input_lens, m.output_lens, m.batch_sizes
        )
    ]
    for inc in spec.include:
        given = inc.model_dump(exclude_none=True, exclude={"batch_size", "batch_sizes"})
        fields = {**spec.defaults.model_dump(), **given}
        fields.setdefault("engine", m.engines[0])
        fields.setdefault("input_len", m.input_lens[0])
        fields.setdefault("output_len", m.output_lens[0])
        fields["dtype"] = fields["dtype"] or default_dtype(fields["device"])
        for b in inc.batch_sizes or [inc.batch_size or 1]:
            configs.append(RunConfig(**fields, batch_size=b))
    patterns = [p.model_dump(exclude_none=True) for p in spec.exclude]
    configs = [c for c in configs if not any(_matches(c, pat) for pat in patterns)]
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
    if config.scale not in SCALES or config.dtype not in DTYPES or config.device not in DEVICES:
        raise PlannerError(
            f"scale must be one of {SCALES}, dtype one of {DTYPES} and device one of {DEVICES}"
        )
    problem = tp_problem(config.engine, config.tp)
    if problem:
        raise PlannerError(problem)
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
