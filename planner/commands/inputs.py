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

from planner.economics.bounds import BOUNDS, checked, flag
from planner.economics.options import (
    DEFAULT_APIS,
    DEFAULT_MODELS,
    DEFAULT_OPS_USD_PER_MONTH,
    DEFAULT_QUANTS,
    DEFAULT_SPOT_ALLOWANCE,
    DEFAULT_TARGET_UTILIZATION,
    REPLACED_APIS,
)
from planner.errors import PlannerError
from planner.vocab import SERVING_ENGINES

WORKLOAD_OPTIONS = [
    click.option(
        "--workload",
        "workload_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="A workload YAML file (see examples/workload.yaml). A flag overrides the same setting "
        "in the file (--output-tokens replaces the file's input_share, --peak-to-mean its "
        "hourly_weights); two flags for one setting are an error.",
    ),
    click.option("--tokens-per-day", help="Input + output tokens a day: 500k, 5M, 1.5B."),
    click.option(
        "--requests-per-day",
        "--queries-per-day",
        "requests_per_day",
        help="Requests a day (instead of --tokens-per-day): 10000, 2M.",
    ),
    click.option("--input-tokens", help="Prompt tokens per request. [default: 1500]"),
    click.option("--output-tokens", help="Output tokens per request (or --input-share). [default: 300]"),
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
        "--peak-to-mean",
        type=float,
        help="Busiest hour / mean hour (or --hourly-profile). [default: 2 (a business day)]",
    ),
    click.option(
        "--hourly-profile",
        type=click.Path(dir_okay=False, path_type=Path),
        help="File with 24 hourly traffic weights, one per line or comma-separated; '#' starts a comment "
        "(instead of --peak-to-mean).",
    ),
    click.option("--growth-per-month", type=float, help="Volume growth a month, 0.05 = 5%. [default: 0]"),
    click.option("--slo-ttft-ms", type=float, help="Time to first token SLO. [default: 1000 ms, chat-like]"),
    click.option(
        "--slo-tpot-ms", type=float, help="Time per output token SLO. [default: 50 ms = 20 tokens/s]"
    ),
]

_REPLACED = "; ".join(f"{new} for the deprecated {old}" for old, new in REPLACED_APIS.items())
MODEL_OPTIONS = [
    click.option(
        "--model",
        help=f"Self-hosted models, comma-separated catalog ids. [default: {','.join(DEFAULT_MODELS)}]",
    ),
    click.option(
        "--quant", help=f"Quantization formats, comma-separated. [default: {','.join(DEFAULT_QUANTS)}]"
    ),
    click.option(
        "--api",
        help="API models to compare, comma-separated ('provider/model' to pick a provider). "
        f"[default: {','.join(DEFAULT_APIS)} (current models: {_REPLACED}), plus the "
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
    click.option(
        "--engine",
        type=click.Choice(SERVING_ENGINES),
        help="Serving engine of the self-hosted fleet (a server; for HF transformers use "
        "transformers-serve). [default: vllm]",
    ),
    click.option(
        "--ops-usd-per-month",
        type=float,
        help=f"Engineering and operations of a self-hosted fleet, $/month. [default: "
        f"{DEFAULT_OPS_USD_PER_MONTH:g} = 0.2 of an infra engineer at $180k/year loaded]",
    ),
    click.option(
        "--target-utilization",
        type=float,
        help="Share of a replica's SLO capacity the peak hour may use. "
        f"[default: {DEFAULT_TARGET_UTILIZATION:g}: room for bursts within the hour]",
    ),
    click.option("--min-replicas", type=int, help="Replicas kept up at least. [default: 1; --ha: 2]"),
    click.option("--ha", is_flag=True, default=None, help="High availability: at least 2 replicas."),
    click.option(
        "--autoscale",
        is_flag=True,
        default=None,
        help="Also price on-demand fleets scaled hour by hour along the traffic profile.",
    ),
    click.option(
        "--spot-interruption-allowance",
        type=float,
        help="Spot: share of extra instance-hours for interruptions (restarts, lost warm-up), added to "
        f"the published spot price. [default: {DEFAULT_SPOT_ALLOWANCE:g}]",
    ),
    click.option(
        "--owned",
        multiple=True,
        help="Owned GPUs: GPU=USD purchase price per GPU, e.g. h100-sxm=30000 (repeatable).",
    ),
    click.option(
        "--amortize-months",
        type=int,
        help="Owned GPUs: months to amortise the purchase. [default: 36, the usual server depreciation]",
    ),
    click.option(
        "--usd-per-kwh", type=float, help="Owned GPUs: electricity price. [default: 0.12, US commercial]"
    ),
    click.option(
        "--pue",
        type=float,
        help="Owned GPUs: data-centre power overhead (>= 1). [default: 1.3, an ordinary colocation site]",
    ),
    click.option(
        "--hosting-usd-per-gpu-month",
        type=float,
        help="Owned GPUs: rack space, network and the server around each GPU, $/GPU-month. [default: 150, "
        "a colocation quote of about $1,200/month for an 8-GPU server]",
    ),
    click.option(
        "--power-share-of-tdp",
        type=float,
        help="Owned GPUs: average power draw while serving, as a share of TDP. [default: 0.7: decode is "
        "memory-bound and traffic has gaps]",
    ),
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
    "spot_interruption_allowance",
    "owned",
    "amortize_months",
    "usd_per_kwh",
    "pue",
    "hosting_usd_per_gpu_month",
    "power_share_of_tdp",
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
    switching: Any = None  # SwitchingCosts
    horizon_months: int = 12


def _csv(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = tuple(v.strip() for v in str(value).split(",") if v.strip())
    if not items:
        raise PlannerError(f"empty list {value!r}; give comma-separated values")
    return items


ALTERNATIVES = (
    ("tokens_per_day", "requests_per_day"),
    ("output_tokens", "input_share"),
    ("peak_to_mean", "hourly_profile", "hourly_weights"),
)
"""Settings given in one of several ways: the volume, the output length, the traffic shape."""


def _spelled(name: str) -> str:
    return "hourly_weights (workload file)" if name == "hourly_weights" else flag(name)


def merge(
    file_values: dict[str, Any], flags: dict[str, Any], source: str = "the workload file"
) -> dict[str, Any]:
    """The file's values under the flags: a flag replaces the same setting from the file, whichever
    way the file gave it; two ways of giving one setting, among the flags or within the file,
    are an error."""
    file_values = dict(file_values)
    for group in ALTERNATIVES:
        in_flags = [n for n in group if n in flags]
        in_file = [n for n in group if n in file_values]
        if len(in_flags) > 1:
            raise PlannerError(f"give {_spelled(in_flags[0])} or {_spelled(in_flags[1])}, not both")
        if in_flags:
            for n in in_file:
                del file_values[n]
        elif len(in_file) > 1:
            raise PlannerError(f"{source}: give {in_file[0]} or {in_file[1]}, not both")
    if flags.get("ha") and "min_replicas" in flags and int(flags["min_replicas"]) < 2:
        raise PlannerError(
            f"--ha keeps at least 2 replicas, --min-replicas {flags['min_replicas']} says fewer; give one"
        )
    return {**file_values, **flags}


def resolve(kwargs: dict[str, Any], given: set[str]) -> Inputs:
    """Merge the workload file (if any) under the flags given, apply defaults, check, build."""
    from planner.economics.cost import (
        DEFAULT_AMORTIZE_MONTHS,
        DEFAULT_HOSTING_USD_PER_GPU_MONTH,
        DEFAULT_POWER_SHARE_OF_TDP,
        DEFAULT_PUE,
        DEFAULT_USD_PER_KWH,
        OwnedHardware,
    )
    from planner.economics.options import DEFAULT_PRICING, Filters, Policy
    from planner.economics.tco import SwitchingCosts
    from planner.economics.workload import (
        DEFAULT_INPUT_TOKENS,
        DEFAULT_OUTPUT_TOKENS,
        DEFAULT_PEAK_TO_MEAN,
        DEFAULT_SLO_TPOT_MS,
        DEFAULT_SLO_TTFT_MS,
        Workload,
        diurnal_profile,
        read_hourly_profile,
    )
    from planner.units import parse_count, parse_int_count

    file_values: dict[str, Any] = {}
    source = "the workload file"
    if kwargs.get("workload_file"):
        from planner.economics.workload_file import file_values as read_values  # pydantic: only when used
        from planner.economics.workload_file import read_workload_file

        file_values = read_values(read_workload_file(kwargs["workload_file"]))
        source = str(kwargs["workload_file"])
    flags = {n: v for n, v in kwargs.items() if n in given and v is not None and v != ()}
    values = merge(file_values, flags, source)
    for name in BOUNDS.keys() & values.keys():  # every range checked, used by this command or not
        BOUNDS[name].check(values[name], flag(name))

    def num(name: str, default: float) -> float:
        return checked(values, name, default)

    inp = parse_int_count(values.get("input_tokens", DEFAULT_INPUT_TOKENS), "--input-tokens")
    if values.get("input_share") is not None:
        share = num("input_share", 0.5)
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
            raise PlannerError(f"{source}: hourly_weights must be non-negative and not all zero")
        weights = tuple(w / mean for w in ws)
    else:
        weights = diurnal_profile(num("peak_to_mean", DEFAULT_PEAK_TO_MEAN))

    workload = Workload(
        tokens_per_day=tokens,
        input_tokens=inp,
        output_tokens=out,
        cached_input_share=num("cached_input_share", 0.0),
        batch_share=num("batch_share", 0.0),
        hourly_weights=weights,
        growth_per_month=num("growth_per_month", 0.0),
        slo_ttft_ms=num("slo_ttft_ms", DEFAULT_SLO_TTFT_MS),
        slo_tpot_ms=num("slo_tpot_ms", DEFAULT_SLO_TPOT_MS),
    )
    pricing = _csv(values.get("pricing")) or DEFAULT_PRICING
    owned: dict[str, OwnedHardware] = {}
    for item in values.get("owned", ()) or ():
        gpu, sep, usd = str(item).partition("=")
        if not sep:
            raise PlannerError(f"--owned {item!r}: expected GPU=USD, e.g. h100-sxm=30000")
        owned[gpu.strip()] = OwnedHardware(
            usd_per_gpu=parse_count(usd, f"--owned {gpu}"),
            amortize_months=int(num("amortize_months", DEFAULT_AMORTIZE_MONTHS)),
            usd_per_kwh=num("usd_per_kwh", DEFAULT_USD_PER_KWH),
            pue=num("pue", DEFAULT_PUE),
            hosting_usd_per_gpu_month=num("hosting_usd_per_gpu_month", DEFAULT_HOSTING_USD_PER_GPU_MONTH),
            power_share_of_tdp=num("power_share_of_tdp", DEFAULT_POWER_SHARE_OF_TDP),
        )
    if "owned" in pricing and not owned:
        raise PlannerError("--pricing owned needs --owned GPU=USD (the purchase price per GPU)")
    if owned and "owned" not in pricing:
        pricing = (*pricing, "owned")
    min_replicas = int(num("min_replicas", 1))
    if values.get("ha"):
        min_replicas = max(min_replicas, 2)
    engine = values.get("engine") or "vllm"
    if engine not in SERVING_ENGINES:
        from planner.errors import UnknownIdError

        raise UnknownIdError("serving engine", engine, SERVING_ENGINES)
    filters = Filters(
        models=_csv(values.get("model")) or DEFAULT_MODELS,
        quants=_csv(values.get("quant")) or DEFAULT_QUANTS,
        gpus=_csv(values.get("gpu")) or (),
        providers=_csv(values.get("provider")) or (),
        pricing=pricing,
    )
    policy = Policy(
        engine=engine,
        target_utilization=num("target_utilization", DEFAULT_TARGET_UTILIZATION),
        min_replicas=min_replicas,
        ops_usd_per_month=num("ops_usd_per_month", DEFAULT_OPS_USD_PER_MONTH),
        autoscale=bool(values.get("autoscale")),
        spot_allowance=num("spot_interruption_allowance", DEFAULT_SPOT_ALLOWANCE),
        owned=owned,
    )
    defaults = SwitchingCosts()
    switching = SwitchingCosts(
        **{k: num(k, getattr(defaults, k)) for k in defaults.__dataclass_fields__}  # type: ignore[arg-type]
    )
    horizon = int(num("horizon_months", 12))
    apis = _csv(values.get("api"))
    resolved = {**values, "tokens_per_day": tokens, "input_tokens": inp, "output_tokens": out}
    return Inputs(workload, filters, policy, apis or DEFAULT_APIS, apis is None, resolved, switching, horizon)


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
