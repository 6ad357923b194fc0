"""Who is evaluated and at what price: endpoint + model + key variable + price spec -> a Target.

Price specs (`--price`, one per `--model`, default `auto`) are read by planner.quality.pricing.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

from gpu_bench.serving.detect import check_endpoint
from planner.errors import PlannerError
from planner.quality.pricing import resolve_price


@dataclass(frozen=True)
class Target:
    endpoint: str  # base URL as given (may hold credentials: never stored, see public_endpoint)
    model: str
    api_key_env: str | None
    hosting: str  # api | self-hosted | unknown
    catalog_model: str | None
    quant: str | None
    price: dict[str, Any]  # PriceRef fields

    @property
    def label(self) -> str:
        return self.model

    def cost_usd(self, input_tokens: int | None, output_tokens: int | None) -> float | None:
        p_in, p_out = self.price.get("input_usd_per_mtok"), self.price.get("output_usd_per_mtok")
        if p_in is None or p_out is None or input_tokens is None or output_tokens is None:
            return None
        return (input_tokens * p_in + output_tokens * p_out) / 1e6


def public_endpoint(url: str) -> str:
    """The URL without user:password@ or a query string: what a record may keep."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def pair(values: tuple[str, ...], n: int, what: str, default: Any) -> list[Any]:
    """Per-model values given once (for all), once per --model, or not at all."""
    if not values:
        return [default] * n
    if len(values) == 1:
        return list(values) * n
    if len(values) != n:
        raise PlannerError(
            f"{len(values)} {what} for {n} --model: give one for all, or one per --model, in order"
        )
    return list(values)


def resolve_targets(
    catalog: Any,
    endpoints: tuple[str, ...],
    models: tuple[str, ...],
    key_envs: tuple[str, ...],
    prices: tuple[str, ...],
) -> list[Target]:
    if not models:
        raise PlannerError("which model? give --model NAME (repeat it with --endpoint to compare models)")
    eps = pair(endpoints, len(models), "--endpoint", "http://127.0.0.1:8000/v1")
    keys = pair(key_envs, len(models), "--api-key-env", None)
    specs = pair(prices, len(models), "--price", "auto")
    out = []
    for ep, model, key, spec in zip(eps, models, keys, specs, strict=True):
        hosting, catalog_model, quant, price = resolve_price(catalog, model, spec)
        out.append(Target(check_endpoint(ep, "--endpoint"), model, key, hosting, catalog_model, quant, price))
    seen = set()
    for t in out:
        if (t.endpoint, t.model) in seen:
            raise PlannerError(f"{t.model} at {t.endpoint} is given twice; give each --model once")
        seen.add((t.endpoint, t.model))
    return out
