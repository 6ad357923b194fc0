"""The workload and candidate options shared by breakeven, capacity, cost, tco and report.

Options default to None so a workload file can fill what the command line leaves out; the
documented defaults apply last. Every value is checked here, before any computing, so bad input
is one clear line and exit code 2.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from planner.errors import PlannerError

WORKLOAD_OPTIONS = [
    click.option(
        "--workload",
        "workload_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="A workload YAML file (see examples/workload.yaml); flags override it.",
    ),
    click.option("--tokens-per-day", help="Input + output tokens a day: 500k, 5M, 1.5B."),
    click.option(
        "--requests-per-day",
        "--queries-per-day",
        "requests_per_day",
        help="Requests a day (instead of --tokens-per-day): 10000, 2M.",
    ),
    click.option("--input-tokens", help="Prompt tokens per request. [default: 1500]"),
    click.option("--output-tokens", help="Output tokens per request. [default: 300]"),
    click.option(
        "--input-share", type=float, help="Share of tokens that are input (sets output tokens per request)."
    ),
    click.option(
        "--cached-input-share",
        type=float,
        help="Share of input tokens served from a prompt/prefix cache. [default: 0]",
    ),
    click.option(
        "--batch-share", type=float, help="Share of traffic a batch API may serve (discounted). [default: 0]"
    ),
    click.option(
        "--peak-to-mean", type=float, help="Busiest hour / mean hour. [default: 2 (a business day)]"
    ),
    click.option(
        "--hourly-profile",
        type=click.Path(dir_okay=False, path_type=Path),
        help="File with 24 hourly traffic weights (instead of --peak-to-mean).",
    ),
    click.option("--growth-per-month", type=float, help="Volume growth a month, 0.05 = 5%. [default: 0]"),
    click.option("--slo-ttft-ms", type=float, help="Time to first token SLO. [default: 1000 ms, chat-like]"),
    click.option(
        "--slo-tpot-ms", type=float, help="Time per output token SLO. [default: 50 ms = 20 tokens/s]"
    ),
]

MODEL_OPTIONS = [
    click.option(
        "--model",
        help="Self-hosted models, comma-separated catalog ids. "
        "[default: llama-3.1-8b-instruct,qwen3-32b,llama-3.3-70b-instruct]",
    ),
    click.option("--quant", help="Quantization formats, comma-separated. [default: bf16,fp8,awq-int4]"),
    click.option(
        "--api",
        help="API models to compare, comma-separated ('provider/model' to pick a provider). "
        "[default: gpt-4o-mini,gpt-4o,claude-3-haiku,gemini-2.0-flash, plus the "
        "cheapest hosted API of each candidate open model]",
    ),
]

FLEET_OPTIONS = [
    click.option("--gpu", help="Only these GPUs, comma-separated catalog ids. [default: all with an offer]"),
    click.option("--provider", help="Only these cloud providers (or 'owned'), comma-separated."),
    click.option(
        "--pricing",
        help="Pricing models: on_demand, spot, reserved_1y, reserved_3y, owned. "
        "[default: on_demand,reserved_1y,reserved_3y]",
    ),
    click.option("--engine", help="Serving engine of the self-hosted fleet. [default: vllm]"),
    click.option(
        "--ops-usd-per-month",
        type=float,
        help="Engineering and operations of a self-hosted fleet, $/month. [default: 3000 = 0.2 of "
        "an infra engineer at $180k/year loaded]",
    ),
    click.option(
        "--target-utilization",
        type=float,
        help="Share of a replica's SLO capacity the peak hour may use. [default: 0.7]",
    ),
    click.option("--min-replicas", type=int, help="Replicas kept up at least. [default: 1]"),
    click.option("--ha", is_flag=True, default=None, help="High availability: at least 2 replicas."),
    click.option(
        "--autoscale",
        is_flag=True,
        default=None,
        help="Also price on-demand fleets scaled hour by hour along the traffic profile.",
    ),
    click.option(
        "--owned",
        multiple=True,
        help="Owned GPUs: GPU=USD purchase price per GPU, e.g. h100-sxm=30000 (repeatable).",
    ),
    click.option(
        "--amortize-months", type=int, help="Owned GPUs: months to amortise the purchase. [default: 36]"
    ),
    click.option("--usd-per-kwh", type=float, help="Owned GPUs: electricity price. [default: 0.12]"),
    click.option("--pue", type=float, help="Owned GPUs: data-centre power overhead. [default: 1.3]"),
]
"""Where and how a self-hosted fleet runs (route sizes its self-hosted tiers with these)."""

CANDIDATE_OPTIONS = [*MODEL_OPTIONS[:2], *FLEET_OPTIONS[:3], MODEL_OPTIONS[2], *FLEET_OPTIONS[3:]]

TCO_OPTIONS = [
    click.option("--horizon-months", type=int, help="Months to sum over. [default: 12]"),
    click.option("--prompt-migration-usd", type=float, help="One-time: re-tuning prompts. [default: 5000]"),
    click.option("--evaluation-usd", type=float, help="One-time: evaluation runs. [default: 2000]"),
    click.option(
        "--integration-usd", type=float, help="One-time: serving stack, rollout, dashboards. [default: 10000]"
    ),
    click.option("--monitoring-usd-per-month", type=float, help="Monitoring of the fleet. [default: 300]"),
]


INPUT_NAMES = {
    "workload_file",
    "tokens_per_day",
    "requests_per_day",
    "input_tokens",
    "output_tokens",
    "input_share",
    "cached_input_share",
    "batch_share",
    "peak_to_mean",
    "hourly_profile",
    "growth_per_month",
    "slo_ttft_ms",
    "slo_tpot_ms",
    "model",
    "quant",
    "gpu",
    "provider",
    "pricing",
    "api",
    "engine",
    "ops_usd_per_month",
    "target_utilization",
    "min_replicas",
    "ha",
    "autoscale",
    "owned",
    "amortize_months",
    "usd_per_kwh",
    "pue",
    "horizon_months",
    "prompt_migration_usd",
    "evaluation_usd",
    "integration_usd",
    "monitoring_usd_per_month",
}
"""Options `resolve` consumes; a command's own options (--format, --top, --explain) pass through."""


def apply(options: list[Callable]) -> Callable:
    def decorate(f: Callable) -> Callable:
        for opt in reversed(options):
            f = opt(f)
        return f

    return decorate


@dataclass(frozen=True)
class Inputs:
    workload: Any  # Workload
    filters: Any  # Filters
    policy: Any  # Policy
    apis: tuple[str, ...]
    include_hosted: bool
    values: dict[str, Any]  # every resolved value, for the report's reproduction line


def _csv(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = tuple(v.strip() for v in str(value).split(",") if v.strip())
    if not items:
        raise PlannerError(f"empty list {value!r}; give comma-separated values")
    return items


def _positive(value: float | None, what: str, upper: float | None = None) -> float | None:
    if value is None:
        return None
    if not value > 0 or (upper is not None and value > upper):
        bound = f" and at most {upper:g}" if upper is not None else ""
        raise PlannerError(f"{what} must be positive{bound}, got {value:g}")
    return value


def resolve(kwargs: dict[str, Any], given: set[str]) -> Inputs:
    """Merge the workload file (if any) under the flags given, apply defaults, check, build."""
    from planner.economics.cost import OwnedHardware
    from planner.economics.options import (
        DEFAULT_APIS,
        DEFAULT_MODELS,
        DEFAULT_PRICING,
        DEFAULT_QUANTS,
        Filters,
        Policy,
    )
    from planner.economics.workload import (
        DEFAULT_INPUT_TOKENS,
        DEFAULT_OUTPUT_TOKENS,
        DEFAULT_PEAK_TO_MEAN,
        DEFAULT_SLO_TPOT_MS,
        DEFAULT_SLO_TTFT_MS,
        Workload,
        check_share,
        diurnal_profile,
        read_hourly_profile,
    )
    from planner.units import parse_count, parse_int_count

    values: dict[str, Any] = {}
    if kwargs.get("workload_file"):
        from planner.economics.workload_file import (
            file_values,
            read_workload_file,
        )  # pydantic: only when used

        values.update(file_values(read_workload_file(kwargs["workload_file"])))
    for name, value in kwargs.items():
        if name in given and value is not None and value != ():
            values[name] = value
    if "tokens_per_day" in given and "requests_per_day" not in given:
        values.pop("requests_per_day", None)
    if "requests_per_day" in given and "tokens_per_day" not in given:
        values.pop("tokens_per_day", None)
    if "hourly_profile" in given:
        values.pop("peak_to_mean", None)
    if "peak_to_mean" in given:
        values.pop("hourly_weights", None)

    if values.get("tokens_per_day") is not None and values.get("requests_per_day") is not None:
        raise PlannerError("give --tokens-per-day or --requests-per-day, not both")
    if (
        values.get("input_share") is not None
        and values.get("output_tokens") is not None
        and "input_share" in given
    ):
        raise PlannerError(
            "give --output-tokens or --input-share, not both (the share sets the output length)"
        )
    if values.get("hourly_profile") and values.get("peak_to_mean") is not None:
        raise PlannerError("give --peak-to-mean or --hourly-profile, not both")

    inp = parse_int_count(values.get("input_tokens", DEFAULT_INPUT_TOKENS), "--input-tokens")
    if values.get("input_share") is not None:
        share = check_share(float(values["input_share"]), "--input-share")
        if not 0 < share < 1:
            raise PlannerError("--input-share must be strictly between 0 and 1")
        out = max(1, round(inp * (1 - share) / share))
    else:
        out = parse_int_count(values.get("output_tokens", DEFAULT_OUTPUT_TOKENS), "--output-tokens")
    if values.get("tokens_per_day") is not None:
        tokens = parse_count(values["tokens_per_day"], "--tokens-per-day")
    elif values.get("requests_per_day") is not None:
        tokens = parse_count(values["requests_per_day"], "--requests-per-day") * (inp + out)
    else:
        raise PlannerError(
            "how much traffic? give --tokens-per-day (e.g. 5M) or --requests-per-day (e.g. 10000)"
        )

    if values.get("hourly_profile"):
        weights = read_hourly_profile(Path(values["hourly_profile"]))
    elif values.get("hourly_weights"):
        ws = values["hourly_weights"]
        mean = sum(ws) / 24
        if mean <= 0 or min(ws) < 0:
            raise PlannerError("hourly_weights must be non-negative and not all zero")
        weights = tuple(w / mean for w in ws)
    else:
        weights = diurnal_profile(float(values.get("peak_to_mean", DEFAULT_PEAK_TO_MEAN)))

    growth = float(values.get("growth_per_month", 0.0))
    if growth <= -1:
        raise PlannerError(f"--growth-per-month must be above -1, got {growth:g}")
    workload = Workload(
        tokens_per_day=tokens,
        input_tokens=inp,
        output_tokens=out,
        cached_input_share=check_share(float(values.get("cached_input_share", 0.0)), "--cached-input-share"),
        batch_share=check_share(float(values.get("batch_share", 0.0)), "--batch-share"),
        hourly_weights=weights,
        growth_per_month=growth,
        slo_ttft_ms=_positive(float(values.get("slo_ttft_ms", DEFAULT_SLO_TTFT_MS)), "--slo-ttft-ms"),
        slo_tpot_ms=_positive(float(values.get("slo_tpot_ms", DEFAULT_SLO_TPOT_MS)), "--slo-tpot-ms"),
    )
    pricing = _csv(values.get("pricing")) or DEFAULT_PRICING
    owned: dict[str, OwnedHardware] = {}
    for item in values.get("owned", ()) or ():
        gpu, sep, usd = str(item).partition("=")
        if not sep:
            raise PlannerError(f"--owned {item!r}: expected GPU=USD, e.g. h100-sxm=30000")
        owned[gpu.strip()] = OwnedHardware(
            usd_per_gpu=parse_count(usd, f"--owned {gpu}"),
            amortize_months=int(_positive(values.get("amortize_months", 36), "--amortize-months") or 36),
            usd_per_kwh=float(values.get("usd_per_kwh", 0.12)),
            pue=float(values.get("pue", 1.3)),
        )
    if "owned" in pricing and not owned:
        raise PlannerError("--pricing owned needs --owned GPU=USD (the purchase price per GPU)")
    if owned and "owned" not in pricing:
        pricing = (*pricing, "owned")
    min_replicas = int(values.get("min_replicas", 1))
    if values.get("ha"):
        min_replicas = max(min_replicas, 2)
    if min_replicas < 1:
        raise PlannerError(f"--min-replicas must be at least 1, got {min_replicas}")
    util = _positive(float(values.get("target_utilization", 0.7)), "--target-utilization", 1.0)
    ops = float(values.get("ops_usd_per_month", 3000.0))
    if ops < 0:
        raise PlannerError(f"--ops-usd-per-month must be zero or positive, got {ops:g}")
    models = _csv(values.get("model")) or DEFAULT_MODELS
    filters = Filters(
        models=models,
        quants=_csv(values.get("quant")) or DEFAULT_QUANTS,
        gpus=_csv(values.get("gpu")) or (),
        providers=_csv(values.get("provider")) or (),
        pricing=pricing,
    )
    policy = Policy(
        engine=values.get("engine") or "vllm",
        target_utilization=util or 0.7,
        min_replicas=min_replicas,
        ops_usd_per_month=ops,
        autoscale=bool(values.get("autoscale")),
        owned=owned,
    )
    apis = _csv(values.get("api"))
    resolved = {**values, "tokens_per_day": tokens, "input_tokens": inp, "output_tokens": out}
    return Inputs(workload, filters, policy, apis or DEFAULT_APIS, apis is None, resolved)


def given_params(ctx: click.Context) -> set[str]:
    """Names of the options the user gave on the command line (or through the environment)."""
    from click.core import ParameterSource

    return {
        name
        for name in ctx.params
        if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    }


def with_inputs(f: Callable) -> Callable:
    """Decorate a command: workload + candidate options, resolved into `inputs` before it runs."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        opts = {k: kwargs.pop(k) for k in list(kwargs) if k in INPUT_NAMES}
        inputs = resolve(opts, given_params(ctx))
        return f(*args, inputs=inputs, **kwargs)

    return wrapper
