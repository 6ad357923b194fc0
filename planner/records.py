"""Persisted record types shared by the planner and gpu_bench.

Every type is strict (unknown fields are rejected), carries its units in field names and,
for files, a ``schema_version``. Every number says where it came from: catalog rows carry a
``Source`` (citation, url, checked_at); measurement records carry ``basis`` and ``measured_at``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from planner.record_methods import ApiPriceMethods, MeasurementMethods, OfferMethods
from planner.vocab import KV_CACHE_DTYPES, PRICING_MODELS, QUANT_FORMATS, SCHEMA_VERSION

CatalogId = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=120),
]
"""Lowercase, hyphenated, close to the vendor's own name (``llama-3.1-8b-instruct``, ``h100-sxm``)."""

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _date_from_text(value: object) -> object:
    """YAML gives a date as a date object, JSON as "YYYY-MM-DD" text: accept both, and nothing else.

    A date and time is refused rather than truncated; text that is not a real date says why not.
    """
    if isinstance(value, dt.datetime):
        raise ValueError(f"expected a date (YYYY-MM-DD), got a date and time ({value.isoformat()})")
    if not isinstance(value, str):
        return value  # a date passes; anything else fails the date check that follows
    text = value.strip()
    if _ISO_DATE.match(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a valid date ({exc}); write YYYY-MM-DD") from None
    try:
        dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid date ({exc}); write YYYY-MM-DD") from None
    raise ValueError(f"expected a date (YYYY-MM-DD), got a date and time ({value!r})")


def _datetime_from_text(value: object) -> object:
    """A date and time from a datetime object (YAML, Python) or ISO 8601 text (JSON, JSONL)."""
    if not isinstance(value, str):
        return value
    try:
        return dt.datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValueError(
            f"{value!r} is not a valid date and time ({exc}); write e.g. 2026-11-29T10:00:00Z"
        ) from None


Date = Annotated[dt.date, BeforeValidator(_date_from_text)]
"""A calendar date: a YAML date or "YYYY-MM-DD" text (JSON); never a number or a date and time."""
DateTime = Annotated[dt.datetime, BeforeValidator(_datetime_from_text)]
"""A date and time: a datetime object or ISO 8601 text."""

QuantFormat = Literal[QUANT_FORMATS]  # type: ignore[valid-type]
KvCacheDtype = Literal[KV_CACHE_DTYPES]  # type: ignore[valid-type]
PricingModel = Literal[PRICING_MODELS]  # type: ignore[valid-type]


class Strict(BaseModel):
    """Base for every persisted type: unknown fields are errors, values are validated on assignment."""

    # defer_build: a validator is built the first time a type validates something, not at import,
    # so a command that reads the catalog from its cache never pays for building ~20 of them.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False, defer_build=True)


class Source(Strict):
    """Where a row's numbers come from."""

    citation: str = Field(min_length=3, description="What was read: document, file and version.")
    url: str | None = Field(default=None, description="Where it can be read.")
    checked_at: Date = Field(description="When the numbers were read from the source.")
    note: str | None = None


# ---------------------------------------------------------------------------------------------
# Models


class Architecture(Strict):
    """The shape of a transformer, as in its Hugging Face ``config.json``."""

    model_type: str = Field(description="config.json model_type: llama, mistral, mixtral, qwen2, ...")
    num_layers: int = Field(gt=0, description="num_hidden_layers")
    hidden_size: int = Field(gt=0)
    intermediate_size: int = Field(gt=0, description="MLP width (per expert for MoE)")
    num_attention_heads: int = Field(gt=0)
    num_kv_heads: int = Field(gt=0, description="num_key_value_heads (GQA)")
    head_dim: int = Field(gt=0)
    vocab_size: int = Field(gt=0)
    tie_word_embeddings: bool
    max_context_tokens: int = Field(gt=0, description="max_position_embeddings")
    attention_bias: bool = Field(default=False, description="q/k/v projections carry biases (Qwen2)")
    qk_norm: bool = Field(default=False, description="per-head RMSNorm on q and k (Qwen3)")
    norms_per_layer: int = Field(default=2, ge=1, description="RMSNorm weight vectors per layer")
    num_experts: int = Field(default=1, ge=1, description="MoE experts per layer (1 = dense)")
    experts_per_token: int = Field(default=1, ge=1, description="MoE top-k routing")
    sliding_window_tokens: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> Architecture:
        if self.num_attention_heads % self.num_kv_heads:
            raise ValueError(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of "
                f"num_kv_heads ({self.num_kv_heads})"
            )
        if self.experts_per_token > self.num_experts:
            raise ValueError(
                f"experts_per_token ({self.experts_per_token}) exceeds num_experts ({self.num_experts})"
            )
        return self


class ModelSpec(Strict):
    id: CatalogId
    name: str
    hf_repo: str | None = Field(
        default=None,
        description="The Hugging Face repository the architecture was read from; None: not from one "
        "(a local fine-tune whose config.json names none).",
    )
    architecture: Architecture
    license: str
    published_params_b: float | None = Field(
        default=None, gt=0, description="Parameter count the publisher states, billions (a check)."
    )
    source: Source


# ---------------------------------------------------------------------------------------------
# GPUs and cloud offers


class Interconnect(Strict):
    kind: Literal["nvlink", "pcie", "infinity-fabric", "none"]
    bandwidth_gb_per_s: float = Field(gt=0, description="Per GPU, both directions together.")


class GpuSpec(Strict):
    id: CatalogId
    name: str
    vendor: Literal["nvidia", "amd"]
    memory_gib: float = Field(
        gt=0,
        description="Memory the device exposes, in GiB (2^30 bytes): the driver's total (nvidia-smi / "
        "rocm-smi), which the fit uses. Not the datasheet's nominal GB.",
    )
    memory_total_mib: float | None = Field(
        default=None,
        gt=0,
        description="The driver-reported total in MiB that memory_gib is computed from (None: estimated).",
    )
    datasheet_memory_gb: float = Field(gt=0, description="Nominal memory as the vendor's datasheet says.")
    memory_source: Source = Field(description="Where the driver's total was read, or why it is estimated.")
    bandwidth_gb_per_s: float = Field(gt=0, description="Peak memory bandwidth.")
    bf16_dense_tflops: float = Field(gt=0, description="Dense (no sparsity) BF16 tensor rate.")
    fp8_dense_tflops: float | None = Field(default=None, gt=0, description="None: no FP8 tensor cores.")
    int8_dense_tops: float | None = Field(default=None, gt=0)
    interconnect: Interconnect
    tdp_w: float = Field(gt=0)
    purchase_usd: float | None = Field(
        default=None, gt=0, description="Street price of one GPU, for owned-hardware TCO."
    )
    source: Source

    @model_validator(mode="after")
    def _memory_coherent(self) -> GpuSpec:
        if self.memory_total_mib is not None and abs(self.memory_gib - self.memory_total_mib / 1024) > 0.006:
            raise ValueError(
                f"memory_gib {self.memory_gib} must be memory_total_mib / 1024 = "
                f"{self.memory_total_mib / 1024:.3f}"
            )
        return self


class OfferPrices(Strict):
    """$ per hour for the whole instance, by pricing model. None: not offered or not published."""

    on_demand: float | None = Field(default=None, gt=0)
    spot: float | None = Field(default=None, gt=0)
    reserved_1y: float | None = Field(default=None, gt=0)
    reserved_3y: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _some_price(self) -> OfferPrices:
        if all(getattr(self, p) is None for p in PRICING_MODELS):
            raise ValueError("an offer needs at least one price (on_demand, spot, reserved_1y, reserved_3y)")
        return self


class CloudOffer(Strict, OfferMethods):
    provider: CatalogId
    instance: str = Field(min_length=1)
    region: str = Field(min_length=1)
    gpu: CatalogId
    gpu_count: int = Field(gt=0)
    vcpus: int | None = Field(default=None, gt=0)
    memory_gib: float | None = Field(default=None, gt=0)
    usd_per_hour: OfferPrices
    checked_at: Date
    source_url: str = Field(min_length=8)
    history: bool = Field(
        default=False, description="An old price kept for reference; never used for planning."
    )
    note: str | None = None


# ---------------------------------------------------------------------------------------------
# API prices


class ApiPrice(Strict, ApiPriceMethods):
    provider: CatalogId
    model: str = Field(min_length=1, description="The name the provider uses, e.g. gpt-4o-mini.")
    name: str | None = None
    pinned_version: str | None = Field(
        default=None, description="The dated version the name resolves to, where the data knows it."
    )
    aliases: list[str] = Field(default_factory=list, description="Other names that resolve here.")
    name_prefixes: list[str] = Field(
        default_factory=list,
        description="Names that start with one of these resolve here (genai-prices starts_with rules: "
        "claude-3-haiku-20240307 under claude-3-haiku).",
    )
    name_patterns: list[str] = Field(
        default_factory=list,
        description="Names matching one of these regular expressions resolve here (genai-prices regex).",
    )
    input_usd_per_mtok: float = Field(ge=0)
    cached_input_usd_per_mtok: float | None = Field(default=None, ge=0)
    cache_write_usd_per_mtok: float | None = Field(default=None, ge=0)
    output_usd_per_mtok: float = Field(ge=0)
    batch_discount: float | None = Field(
        default=None, ge=0, lt=1, description="Fraction off input and output for batch jobs (0.5 = half)."
    )
    context_limit_tokens: int | None = Field(default=None, gt=0)
    long_context_threshold_tokens: int | None = Field(
        default=None,
        gt=0,
        description="Requests whose prompt exceeds this many tokens pay the long-context tier.",
    )
    long_context_input_usd_per_mtok: float | None = Field(default=None, ge=0)
    long_context_output_usd_per_mtok: float | None = Field(default=None, ge=0)
    open_model: CatalogId | None = Field(
        default=None, description="Catalog model id when this is a hosted open model."
    )
    deprecated: bool = False
    price_date: Date | None = Field(
        default=None, description="The date the price data itself carries (start or verification)."
    )
    checked_at: Date
    source: str = Field(min_length=3, description="genai-prices <version>, or who gave a negotiated price.")
    negotiated: bool = Field(
        default=False,
        description="A price agreed with the provider (not its list price): outputs label it negotiated.",
    )
    overrides: dict[str, str] = Field(
        default_factory=dict,
        description="Set by the loader, never written: when an api_overrides.yaml row is merged onto "
        "this one, each field it replaced -> where the new value comes from.",
    )
    base_source: str | None = Field(
        default=None,
        description="Set by the loader, never written: where the fields no override replaced come from.",
    )


# ---------------------------------------------------------------------------------------------
# Measurements

Basis = Literal["measured", "published", "imported"]
Status = Literal["ok", "oom", "error"]
Device = Literal["cuda", "rocm", "cpu"]
Mode = Literal["offline", "serving"]


class Percentiles(Strict):
    """A latency distribution; the unit is in the name of the field that holds it."""

    mean: float | None = Field(default=None, ge=0)
    p50: float | None = Field(default=None, ge=0)
    p90: float | None = Field(default=None, ge=0)
    p95: float | None = Field(default=None, ge=0)
    p99: float | None = Field(default=None, ge=0)
    stdev: float | None = Field(default=None, ge=0)


class EngineInfo(Strict):
    name: str = Field(
        min_length=1,
        description="transformers, vllm, sglang, tgi, llama.cpp, tensorrt-llm, transformers-serve",
    )
    version: str | None = None
    args: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, description="Engine or server settings that shape the result."
    )


class Citation(Strict):
    title: str = Field(min_length=3)
    url: str | None = None
    accessed_at: Date
    note: str | None = None


class Environment(Strict):
    """Where a measurement ran (gpu_bench.env captures it)."""

    hostname: str | None = None
    os: str | None = None
    python: str | None = None
    cpu: str | None = None
    cpu_count: int | None = None
    memory_gib: float | None = None
    gpus: list[str] = Field(default_factory=list, description="Device names as the driver reports them.")
    gpu_memory_gib: list[float] = Field(default_factory=list)
    driver: str | None = None
    cuda: str | None = None
    libraries: dict[str, str] = Field(default_factory=dict, description="package -> version")


class MeasurementRecord(Strict, MeasurementMethods):
    """One configuration's result: measured here, published elsewhere, or imported from a tool."""

    schema_version: Literal[1] = SCHEMA_VERSION
    id: str = Field(min_length=4, description="Unique and stable; published records use a readable slug.")
    basis: Basis
    status: Status = "ok"
    error: str | None = Field(default=None, description="What went wrong, for status oom or error.")

    # What was run
    model: str = Field(min_length=1, description="Catalog model id, or a name/path for other models.")
    quant: QuantFormat
    double_quant: bool | None = Field(default=None, description="bitsandbytes 4-bit nested quantization.")
    kv_cache_dtype: KvCacheDtype = "auto"
    engine: EngineInfo
    weights: Literal["real", "dummy", "unknown"] = "unknown"
    model_scale: Literal["full", "tiny"] = Field(
        default="full",
        description="tiny: the architecture scaled down for CPU tests; never used for planning.",
    )
    device: Device
    gpu: CatalogId | None = Field(default=None, description="Catalog GPU id; None on CPU or unknown GPUs.")
    gpu_count: int = Field(default=1, ge=1)
    tensor_parallel: int = Field(default=1, ge=1)
    pipeline_parallel: int = Field(default=1, ge=1)
    mode: Mode
    batch_size: int | None = Field(default=None, ge=1, description="Offline: sequences per generate call.")
    concurrency: int | None = Field(default=None, ge=1, description="Serving: requests in flight.")
    request_rate_per_s: float | None = Field(default=None, gt=0, description="Serving: arrival rate.")
    input_tokens: float = Field(gt=0, description="Prompt tokens per request (mean if variable).")
    output_tokens: float = Field(gt=0, description="Output tokens per request (mean if variable).")
    num_requests: int | None = Field(default=None, ge=1)
    dataset: str | None = Field(default=None, description="random, sharegpt, a file, a benchmark name.")

    # What was seen
    output_tokens_per_s: float | None = Field(default=None, ge=0)
    input_tokens_per_s: float | None = Field(default=None, ge=0)
    total_tokens_per_s: float | None = Field(default=None, ge=0)
    requests_per_s: float | None = Field(default=None, ge=0)
    decode_tokens_per_s: float | None = Field(default=None, ge=0, description="Offline: decode phase only.")
    prefill_ms: float | None = Field(default=None, ge=0, description="Offline: one prefill of the batch.")
    ttft_ms: Percentiles | None = None
    tpot_ms: Percentiles | None = None
    itl_ms: Percentiles | None = None
    e2e_ms: Percentiles | None = None
    goodput_requests_per_s: float | None = Field(default=None, ge=0)
    slo: dict[str, float] = Field(default_factory=dict, description="SLOs goodput was counted against.")
    peak_vram_gib: float | None = Field(default=None, ge=0, description="NVML device peak.")
    torch_max_reserved_gib: float | None = Field(default=None, ge=0)
    torch_max_allocated_gib: float | None = Field(default=None, ge=0)
    weights_memory_gib: float | None = Field(default=None, ge=0)
    kv_cache_tokens: int | None = Field(default=None, ge=0, description="KV capacity the engine reports.")
    max_concurrency_engine: float | None = Field(default=None, ge=0)
    errors: dict[str, int] = Field(default_factory=dict, description="Failed requests by error type.")
    repeats: int | None = Field(default=None, ge=1)
    spread_pct: float | None = Field(
        default=None, ge=0, description="(max - min) / median of the repeats' throughput, in percent."
    )
    output_tokens_source: Literal["engine", "usage", "tokenizer", "published"] | None = None
    client_saturated: bool | None = None

    # Provenance
    measured_at: DateTime
    env: Environment | None = None
    citation: Citation | None = None
    notes: str | None = None

    @model_validator(mode="after")
    def _coherent(self) -> MeasurementRecord:
        problems = []
        if self.basis == "published" and self.citation is None:
            problems.append("basis=published needs a citation")
        if self.basis == "measured" and self.env is None:
            problems.append("basis=measured needs env (gpu_bench.env.capture())")
        if self.status != "ok" and not self.error:
            problems.append(f"status={self.status} needs an error message")
        if self.device == "cpu" and self.gpu is not None:
            problems.append("device=cpu cannot name a gpu")
        if self.tensor_parallel * self.pipeline_parallel > self.gpu_count:
            problems.append("tensor_parallel x pipeline_parallel exceeds gpu_count")
        if self.mode == "offline" and self.batch_size is None:
            problems.append("mode=offline needs batch_size")
        if self.mode == "serving" and self.concurrency is None and self.request_rate_per_s is None:
            problems.append("mode=serving needs concurrency or request_rate_per_s")
        if self.status == "ok" and self.output_tokens_per_s is None and self.total_tokens_per_s is None:
            problems.append("status=ok needs output_tokens_per_s or total_tokens_per_s")
        if problems:
            raise ValueError("; ".join(problems))
        return self


# ---------------------------------------------------------------------------------------------
# Quality on the user's own cases (gpu-bench eval)


class PriceRef(Strict):
    """The per-token price a case's cost was computed with, and where it came from."""

    basis: Literal["catalog", "given", "self-hosted", "none"] = Field(
        description="catalog: an API price row; given: --price IN/OUT; self-hosted: sized by planner "
        "route at the user's volume (no per-case cost); none: no price known."
    )
    api: str | None = Field(default=None, description="provider/model of the catalog row.")
    input_usd_per_mtok: float | None = Field(default=None, ge=0)
    output_usd_per_mtok: float | None = Field(default=None, ge=0)
    checked_at: Date | None = None
    source: str | None = None


class JudgeInfo(Strict):
    endpoint: str
    model: str
    served_model: str | None = Field(
        default=None, description="The judge's pinned version, as its endpoint said."
    )
    rubric_sha256: str = Field(description="Of the default rubric text; cases may carry their own.")
    price: PriceRef | None = None


class CaseResult(Strict):
    """One case, one model: what came back, how it scored, what it took and cost."""

    case_id: str = Field(min_length=1)
    tags: list[str] = Field(default_factory=list)
    scorer: str
    output: str | None = Field(default=None, description="The model's answer; None when the request failed.")
    score: float | None = Field(default=None, ge=0, le=1, description="None: unscored (see unscored_reason).")
    passed: bool | None = Field(default=None, description="score >= the record's pass threshold.")
    unscored_reason: str | None = None
    detail: str | None = Field(default=None, description="What the scorer saw, e.g. the judge's reason.")
    error: str | None = Field(default=None, description="The request failed after every retry.")
    attempts: int = Field(default=1, ge=1, description="Requests sent, retries after 429/5xx included.")
    latency_ms: float | None = Field(default=None, ge=0, description="E2E of the successful request.")
    ttft_ms: float | None = Field(default=None, ge=0)
    input_tokens: int | None = Field(default=None, ge=0)
    output_tokens: int | None = Field(default=None, ge=0)
    tokens_source: Literal["usage", "tokenizer", "chunks"] | None = None
    cost_usd: float | None = Field(default=None, ge=0, description="Tokens x the record's price.")
    judge_cost_usd: float | None = Field(
        default=None, ge=0, description="The judge's tokens x its price (every try): evaluation overhead."
    )
    judge_attempts: int = Field(default=0, ge=0)
    judge_input_tokens: int | None = Field(default=None, ge=0, description="The judge's usage, every try.")
    judge_output_tokens: int | None = Field(default=None, ge=0)
    served_model: str | None = None

    @model_validator(mode="after")
    def _coherent(self) -> CaseResult:
        if self.score is None and not (self.unscored_reason or self.error):
            raise ValueError("a case without a score needs unscored_reason or error")
        return self


class QualitySummary(Strict):
    """Scores of a set of cases: the mean with its bootstrap interval, the pass rate, latency, cost."""

    cases: int = Field(ge=0)
    scored: int = Field(ge=0)
    unscored: int = Field(ge=0, description="Judge output unusable: left out of the mean, never 0 or 1.")
    errors: int = Field(ge=0, description="Requests that failed after every retry (no output).")
    mean_score: float | None = Field(default=None, ge=0, le=1)
    ci_low: float | None = Field(default=None, ge=0, le=1)
    ci_high: float | None = Field(default=None, ge=0, le=1)
    pass_rate: float | None = Field(default=None, ge=0, le=1)
    latency_p50_ms: float | None = Field(default=None, ge=0)
    latency_p95_ms: float | None = Field(default=None, ge=0)
    mean_input_tokens: float | None = Field(default=None, ge=0)
    mean_output_tokens: float | None = Field(default=None, ge=0)
    cost_per_case_usd: float | None = Field(
        default=None,
        ge=0,
        description="The model's own tokens x its price, per case; the judge's not included.",
    )
    judge_cost_usd: float | None = Field(
        default=None,
        ge=0,
        description="What the judge cost over these cases, in total: the evaluation's overhead, "
        "not part of cost_per_case_usd. None: no judged case, or the judge unpriced.",
    )


class QualityRecord(Strict):
    """One model's answers to one case set, scored. Written by gpu-bench eval; read by planner route."""

    schema_version: Literal[1] = SCHEMA_VERSION
    id: str = Field(min_length=4)
    run_key: str = Field(
        min_length=8, description="Same cases, endpoint, model and settings -> same key (resume skips it)."
    )
    basis: Literal["measured"] = "measured"
    cases_file: str
    cases_sha256: str = Field(min_length=64, max_length=64, description="Of the case file's bytes.")
    endpoint: str = Field(description="Base URL, credentials removed.")
    model: str = Field(min_length=1, description="The name sent to the endpoint.")
    served_model: str | None = Field(
        default=None, description="The model (pinned version) the endpoint said answered."
    )
    system_fingerprint: str | None = None
    hosting: Literal["api", "self-hosted", "unknown"]
    catalog_model: CatalogId | None = Field(default=None, description="Self-hosted: the catalog model.")
    quant: QuantFormat | None = None
    price: PriceRef
    judge: JudgeInfo | None = None
    max_tokens: int = Field(gt=0)
    temperature: float = Field(ge=0)
    pass_threshold: float = Field(ge=0, le=1)
    confidence: float = Field(gt=0, lt=1, description="Of the bootstrap interval.")
    bootstrap_resamples: int = Field(gt=0)
    summary: QualitySummary
    by_tag: dict[str, QualitySummary] = Field(default_factory=dict)
    results: list[CaseResult]
    measured_at: DateTime
    env: Environment | None = None
    gpu_bench_version: str | None = None
    notes: str | None = None

    @model_validator(mode="after")
    def _coherent(self) -> QualityRecord:
        if self.summary.cases != len(self.results):
            raise ValueError(f"summary.cases={self.summary.cases} but {len(self.results)} results")
        if self.price.basis == "self-hosted" and self.hosting != "self-hosted":
            raise ValueError("price.basis=self-hosted needs hosting=self-hosted")
        return self


# ---------------------------------------------------------------------------------------------
# Checkpoint sizes (ground truth for the weights-memory model)


class CheckpointSize(Strict):
    hf_repo: str = Field(min_length=3)
    model: CatalogId = Field(description="Catalog model whose architecture the checkpoint has.")
    quant: QuantFormat
    total_size_bytes: int = Field(gt=0, description="Bytes of all tensors (safetensors index total_size).")
    precision_bytes: int = Field(
        default=0, ge=0, description="How far the size may be off when the source rounds it (0: exact)."
    )
    group_size: int | None = Field(default=None, gt=0)
    double_quant: bool | None = None
    lm_head_quantized: bool | None = None
    notes: str | None = None
    source: Source


# ---------------------------------------------------------------------------------------------
# Catalog files


class ModelsFile(Strict):
    schema_version: Literal[1]
    models: list[ModelSpec]


class GpusFile(Strict):
    schema_version: Literal[1]
    gpus: list[GpuSpec]


class CloudOffersFile(Strict):
    schema_version: Literal[1]
    offers: list[CloudOffer]


class ApiPricesFile(Strict):
    schema_version: Literal[1]
    generated_from: str | None = Field(default=None, description="Tool and version that wrote this file.")
    generated_at: Date | None = None
    prices: list[ApiPrice]


class CheckpointSizesFile(Strict):
    schema_version: Literal[1]
    checkpoints: list[CheckpointSize]


CATALOG_FILE_TYPES: dict[str, type[Strict]] = {
    "models": ModelsFile,
    "gpus": GpusFile,
    "cloud_offers": CloudOffersFile,
    "api_prices": ApiPricesFile,
    "api_overrides": ApiPricesFile,
    "checkpoint_sizes": CheckpointSizesFile,
}
"""Catalog file stem -> the schema of its contents."""
