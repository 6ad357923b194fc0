"""Import the JSON that `vllm bench serve --save-result` writes as MeasurementRecords (basis=imported)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from planner.errors import PlannerError
from planner.records import MeasurementRecord, Percentiles

_METRICS = {"ttft": "ttft_ms", "tpot": "tpot_ms", "itl": "itl_ms", "e2el": "e2e_ms"}
_PCT_KEY = re.compile(r"^p(\d+(?:\.\d+)?)_(ttft|tpot|itl|e2el)_ms$")


@dataclass(frozen=True)
class ImportContext:
    """What the vLLM file does not say and the user must: the hardware and the model's catalog id."""

    gpu: str | None
    gpu_count: int = 1
    tensor_parallel: int = 1
    quant: str = "bf16"
    model: str | None = None  # catalog id; else matched by hf_repo
    engine_version: str | None = None
    device: str = "cuda"


def _percentiles(doc: dict[str, Any], metric: str) -> Percentiles | None:
    values: dict[str, float] = {}
    for src, dst in (("mean", "mean"), ("median", "p50"), ("std", "stdev")):
        v = doc.get(f"{src}_{metric}_ms")
        if isinstance(v, int | float) and math.isfinite(v):
            values[dst] = float(v)
    for key, value in doc.items():
        m = _PCT_KEY.match(key)
        if m and m.group(2) == metric and isinstance(value, int | float):
            name = f"p{m.group(1)}"
            if name in ("p50", "p90", "p95", "p99"):
                values[name] = float(value)
    return Percentiles(**values) if values else None


def _measured_at(doc: dict[str, Any], path: Path) -> dt.datetime:
    raw = doc.get("date")
    if isinstance(raw, str):
        for fmt in ("%Y%m%d-%H%M%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"):
            try:
                return dt.datetime.strptime(raw, fmt).replace(tzinfo=dt.UTC)
            except ValueError:
                continue
    return dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC)


def _number(doc: dict[str, Any], key: str, path: Path) -> float:
    value = doc.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise PlannerError(
            f"{path}: field {key!r} missing or not a number; is this a `vllm bench serve --save-result` file?"
        )
    return float(value)


def _optional_number(doc: dict[str, Any], key: str, path: Path) -> float | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise PlannerError(f"{path}: field {key!r} must be a number, got {value!r}")
    return float(value)


def _optional_count(doc: dict[str, Any], key: str, path: Path) -> int | None:
    value = _optional_number(doc, key, path)
    if value is None:
        return None
    if not value.is_integer() or value < 0:
        raise PlannerError(f"{path}: field {key!r} must be a whole number >= 0, got {doc[key]!r}")
    return int(value)


def _request_rate(doc: dict[str, Any], path: Path) -> float | None:
    """vLLM writes "inf" (or Infinity) for 'all at once'; anything else must be a positive number."""
    rate = doc.get("request_rate")
    if rate is None or rate == "inf" or (isinstance(rate, float) and rate == math.inf):
        return None
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate) or rate <= 0:
        raise PlannerError(f"{path}: field 'request_rate' must be a number > 0 or \"inf\", got {rate!r}")
    return float(rate)


def record_from_vllm_bench(
    path: Path, ctx: ImportContext, model_ids_by_repo: dict[str, str]
) -> MeasurementRecord:
    try:
        text = path.read_text(encoding="utf-8")
        doc = json.loads(text)
    except FileNotFoundError:
        raise PlannerError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PlannerError(f"{path}: not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise PlannerError(f"{path}: expected a JSON object from `vllm bench serve --save-result`")
    completed = _number(doc, "completed", path)
    if completed <= 0:
        raise PlannerError(f"{path}: no completed requests; nothing to import")
    if not completed.is_integer():
        raise PlannerError(f"{path}: field 'completed' must be a whole number, got {doc['completed']!r}")
    repo = str(doc.get("model_id") or "")
    model = ctx.model or model_ids_by_repo.get(repo.lower())
    if model is None:
        raise PlannerError(
            f"{path}: model {repo!r} is not in the catalog by hf_repo; pass --model CATALOG_ID "
            "(or add it with planner catalog add-model)"
        )
    rate = _request_rate(doc, path)
    concurrency = _optional_count(doc, "max_concurrency", path)
    if concurrency is None and rate is None:
        concurrency = _optional_count(doc, "num_prompts", path) or int(completed)  # everything at once
    failed = _optional_count(doc, "failed", path) or 0
    engine = str(doc.get("backend") or doc.get("endpoint_type") or "vllm")
    record = {
        "id": "vllm-bench-" + hashlib.sha256(text.encode()).hexdigest()[:12],
        "basis": "imported",
        "model": model,
        "quant": ctx.quant,
        "engine": {"name": "vllm", "version": ctx.engine_version, "args": {"bench_backend": engine}},
        "weights": "real",
        "device": ctx.device,
        "gpu": ctx.gpu,
        "gpu_count": ctx.gpu_count,
        "tensor_parallel": ctx.tensor_parallel,
        "mode": "serving",
        "concurrency": concurrency or None,
        "request_rate_per_s": rate,
        "input_tokens": _number(doc, "total_input_tokens", path) / completed,
        "output_tokens": _number(doc, "total_output_tokens", path) / completed,
        "num_requests": int(completed) + failed,
        "dataset": str(doc.get("dataset_name") or doc.get("label") or "") or None,
        "output_tokens_per_s": _number(doc, "output_throughput", path),
        "total_tokens_per_s": _optional_number(doc, "total_token_throughput", path),
        "requests_per_s": _optional_number(doc, "request_throughput", path),
        "goodput_requests_per_s": _optional_number(doc, "request_goodput", path),
        "ttft_ms": _percentiles(doc, "ttft"),
        "tpot_ms": _percentiles(doc, "tpot"),
        "itl_ms": _percentiles(doc, "itl"),
        "e2e_ms": _percentiles(doc, "e2el"),
        "errors": {"failed": failed} if failed else {},
        "output_tokens_source": "usage",
        "measured_at": _measured_at(doc, path),
        "env": {"gpus": [ctx.gpu] * ctx.gpu_count if ctx.gpu else []},
        "notes": f"imported from {path.name} (vllm bench serve --save-result)",
    }
    try:
        return MeasurementRecord.model_validate(record, strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "record"
        raise PlannerError(f"{path}: {where}: {first['msg']}") from None
