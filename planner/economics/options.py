"""Options of the economics: which candidates, and how fleets are run. Light to import (the
commands resolve them before deciding what else they need)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from planner.economics.cost import OwnedHardware

DEFAULT_MODELS = ("llama-3.1-8b-instruct", "qwen3-32b", "llama-3.3-70b-instruct")
"""Small (8B), mid (32B) and large (70B) open models: the seed's three classes."""
DEFAULT_QUANTS = ("bf16", "fp8", "awq-int4")
DEFAULT_PRICING = ("on_demand", "reserved_1y", "reserved_3y")
DEFAULT_OPS_USD_PER_MONTH = 3000.0
"""0.2 of an infra engineer's time (on-call, upgrades, monitoring, capacity work) at a loaded
cost of $180k a year. Self-hosting is never free to run; set yours with --ops-usd-per-month."""
DEFAULT_TARGET_UTILIZATION = 0.7
"""Size replicas so the peak hour uses 70% of their SLO capacity: room for bursts within the hour."""
DEFAULT_SPOT_ALLOWANCE = 0.15
"""Spot instances get interrupted: provision 15% more of them than the traffic needs."""
PROVISIONING = ("always-on", "autoscaled")


@dataclass(frozen=True)
class Policy:
    engine: str = "vllm"
    kv_dtype: str = "bf16"
    target_utilization: float = DEFAULT_TARGET_UTILIZATION
    min_replicas: int = 1
    ops_usd_per_month: float = DEFAULT_OPS_USD_PER_MONTH
    autoscale: bool = False
    spot_allowance: float = DEFAULT_SPOT_ALLOWANCE
    owned: dict[str, OwnedHardware] = field(default_factory=dict)  # gpu id -> purchase terms


@dataclass(frozen=True)
class Filters:
    models: tuple[str, ...] = DEFAULT_MODELS
    quants: tuple[str, ...] = DEFAULT_QUANTS
    gpus: tuple[str, ...] = ()  # empty: every GPU with an offer
    providers: tuple[str, ...] = ()
    pricing: tuple[str, ...] = DEFAULT_PRICING


DEFAULT_APIS = ("gpt-4o-mini", "gpt-4o", "claude-3-haiku", "gemini-2.5-flash-lite")
"""A small and a large OpenAI model, Anthropic's and Google's low-cost models: the comparisons a
team considering self-hosting starts from. Each resolves to a price the catalog does not mark
deprecated (tests/planner/test_economics.py checks)."""
REPLACED_APIS = {"gemini-2.0-flash": "gemini-2.5-flash-lite"}
"""Defaults the catalog marks deprecated -> the current model at the same price tier."""
