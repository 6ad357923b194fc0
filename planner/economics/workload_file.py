"""A workload file (YAML): the same inputs as the flags of `planner breakeven`, kept with a project.

Strict like every file the planner reads: an unknown or misspelled field is an error that names
the field and the close match. Flags given on the command line override the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from planner.economics.bounds import BOUNDS
from planner.errors import PlannerError


def _bound(name: str, **kw: Any) -> Any:
    """An optional field with the range the command-line flag of the same name checks."""
    return Field(default=None, **BOUNDS[name].field_kwargs(), **kw)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Volume(_Section):
    tokens_per_day: str | float | None = Field(
        default=None, description="Input + output tokens a day: 5M, 1.5B"
    )
    requests_per_day: str | float | None = None
    input_tokens: int | None = Field(default=None, gt=0)
    output_tokens: int | None = Field(default=None, gt=0)
    input_share: float | None = _bound("input_share")
    cached_input_share: float | None = _bound("cached_input_share")
    batch_share: float | None = _bound("batch_share")


class Traffic(_Section):
    peak_to_mean: float | None = _bound("peak_to_mean")
    hourly_weights: list[float] | None = Field(default=None, min_length=24, max_length=24)
    growth_per_month: float | None = _bound("growth_per_month")


class Slo(_Section):
    ttft_ms: float | None = _bound("slo_ttft_ms")
    tpot_ms: float | None = _bound("slo_tpot_ms")


class Candidates(_Section):
    models: list[str] | None = None
    quants: list[str] | None = None
    gpus: list[str] | None = None
    providers: list[str] | None = None
    pricing: list[str] | None = None
    apis: list[str] | None = None
    engine: str | None = None


class Fleet(_Section):
    target_utilization: float | None = _bound("target_utilization")
    min_replicas: int | None = _bound("min_replicas")
    ops_usd_per_month: float | None = _bound("ops_usd_per_month")
    autoscale: bool | None = None
    spot_interruption_allowance: float | None = _bound("spot_interruption_allowance")
    owned_usd_per_gpu: dict[str, float] | None = None
    amortize_months: int | None = _bound("amortize_months")
    usd_per_kwh: float | None = _bound("usd_per_kwh")
    pue: float | None = _bound("pue")
    hosting_usd_per_gpu_month: float | None = _bound("hosting_usd_per_gpu_month")
    power_share_of_tdp: float | None = _bound("power_share_of_tdp")


class Tco(_Section):
    horizon_months: int | None = _bound("horizon_months")
    prompt_migration_usd: float | None = _bound("prompt_migration_usd")
    evaluation_usd: float | None = _bound("evaluation_usd")
    integration_usd: float | None = _bound("integration_usd")
    monitoring_usd_per_month: float | None = _bound("monitoring_usd_per_month")


class WorkloadFile(_Section):
    schema_version: Literal[1]
    name: str | None = None
    description: str | None = None
    volume: Volume = Field(default_factory=Volume)
    traffic: Traffic = Field(default_factory=Traffic)
    slo: Slo = Field(default_factory=Slo)
    candidates: Candidates = Field(default_factory=Candidates)
    fleet: Fleet = Field(default_factory=Fleet)
    tco: Tco = Field(default_factory=Tco)


def read_workload_file(path: Path) -> WorkloadFile:
    """Read and validate a workload file: one line naming every problem (file:line: field:
    problem; fix), then exit code 2."""
    from planner.catalog.files import CatalogFileError, read_yaml_mapping
    from planner.catalog.loader import describe_error, loc_text

    try:
        row = read_yaml_mapping(path)
    except CatalogFileError as exc:
        hint = "" if path.exists() else " (no such file)"
        raise PlannerError(f"workload file {exc}{hint}") from None
    try:
        return WorkloadFile.model_validate(row.data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc, msg = describe_error(dict(err), WorkloadFile)
            problems.append(f"{path}:{row.line_of(loc) or 1}: {loc_text(loc)}: {msg}")
        raise PlannerError("; ".join(problems)) from None


def file_values(spec: WorkloadFile) -> dict[str, Any]:
    """The file's values under the names of the command-line options they correspond to."""
    v, t, s, c, f, x = spec.volume, spec.traffic, spec.slo, spec.candidates, spec.fleet, spec.tco
    out: dict[str, Any] = {
        "tokens_per_day": v.tokens_per_day,
        "requests_per_day": v.requests_per_day,
        "input_tokens": v.input_tokens,
        "output_tokens": v.output_tokens,
        "input_share": v.input_share,
        "cached_input_share": v.cached_input_share,
        "batch_share": v.batch_share,
        "peak_to_mean": t.peak_to_mean,
        "hourly_weights": tuple(t.hourly_weights) if t.hourly_weights else None,
        "growth_per_month": t.growth_per_month,
        "slo_ttft_ms": s.ttft_ms,
        "slo_tpot_ms": s.tpot_ms,
        "model": ",".join(c.models) if c.models else None,
        "quant": ",".join(c.quants) if c.quants else None,
        "gpu": ",".join(c.gpus) if c.gpus else None,
        "provider": ",".join(c.providers) if c.providers else None,
        "pricing": ",".join(c.pricing) if c.pricing else None,
        "api": ",".join(c.apis) if c.apis else None,
        "engine": c.engine,
        "target_utilization": f.target_utilization,
        "min_replicas": f.min_replicas,
        "ops_usd_per_month": f.ops_usd_per_month,
        "autoscale": f.autoscale,
        "spot_interruption_allowance": f.spot_interruption_allowance,
        "owned": tuple(f"{g}={usd}" for g, usd in (f.owned_usd_per_gpu or {}).items()) or None,
        "amortize_months": f.amortize_months,
        "usd_per_kwh": f.usd_per_kwh,
        "pue": f.pue,
        "hosting_usd_per_gpu_month": f.hosting_usd_per_gpu_month,
        "power_share_of_tdp": f.power_share_of_tdp,
        "horizon_months": x.horizon_months,
        "prompt_migration_usd": x.prompt_migration_usd,
        "evaluation_usd": x.evaluation_usd,
        "integration_usd": x.integration_usd,
        "monitoring_usd_per_month": x.monitoring_usd_per_month,
    }
    return {k: val for k, val in out.items() if val is not None}
