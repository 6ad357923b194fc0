"""Build the API price catalog from the genai-prices package (pydantic/genai-prices), offline.

Prices are taken from the package's bundled data, never retyped. genai-prices is imported only
here, by ``scripts/refresh_api_prices.py`` and its test; the planner reads the JSON it writes.
A row's prices are the normal tier; where the data has a long-context tier, its start and prices
are kept apart (``long_context_*``), and only a workload whose prompts exceed the threshold pays them.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from planner.catalog.api_names import dated_versions, pinned_version
from planner.records import SCHEMA_VERSION, ApiPrice, ApiPricesFile

__all__ = ["dated_versions", "dump_api_prices", "match_open_model", "snapshot_api_prices"]

# Aggregators that re-list other providers' prices, per-seat tools, and non-LLM APIs.
EXCLUDED_PROVIDERS = (
    "openrouter",
    "github-copilot",
    "cursor",
    "openai-decisions",
    "typesafe",
    "voyageai",
    "elevenlabs",
)
EXCLUDED_PREFIXES = ("huggingface_",)

_CHECKED_DATE = re.compile(r"(?:verified|checked|updated|as of)[^.]*?(\d{4}-\d{2}-\d{2})", re.IGNORECASE)


def _clauses(clause: Any, kind: str) -> list[str]:
    """The values of one kind of clause (equals, starts_with, regex, contains) a genai-prices match
    accepts on its own: directly or inside ClauseOr, never inside ClauseAnd (only part of a rule)."""
    if hasattr(clause, kind):
        return [getattr(clause, kind)]
    values: list[str] = []
    for child in getattr(clause, "or_", None) or []:
        values.extend(_clauses(child, kind))
    return values


def _equals_names(clause: Any) -> list[str]:
    """Exact names a genai-prices match clause accepts (ClauseEquals, possibly inside ClauseOr)."""
    return _clauses(clause, "equals")


_DATED_IN_TEXT = r"(?:-|@)(?:\d{8}|\d{4}-\d{2}-\d{2})"


def _dated_names_in_data(rule_texts: Iterable[str], prefixes: Iterable[str]) -> list[str]:
    """Dated names that start with one of `prefixes`, wherever the data writes them.

    Anthropic's rows match by prefix (starts_with claude-3-haiku) and never name a dated version;
    other providers' rules do (Bedrock's contains 'claude-3-haiku-20240307'). A name one of our
    prefixes accepts is a version of this model, so the data does know which dated versions exist.
    """
    prefixes = [p for p in prefixes if len(p) >= 4]
    if not prefixes:
        return []
    pattern = re.compile(
        r"(?:^|[./])((?:" + "|".join(map(re.escape, prefixes)) + ")" + _DATED_IN_TEXT + r")(?=$|[-:@])"
    )
    found = set()
    for text in rule_texts:
        found.update(m.group(1) for m in pattern.finditer(text))
    return sorted(found)


def _all_rule_texts(providers: Iterable[Any]) -> list[str]:
    """Every model id and every equals/starts_with/contains value in the data."""
    texts: set[str] = set()
    for provider in providers:
        for model in provider.models:
            texts.add(model.id)
            for kind in ("equals", "starts_with", "contains"):
                texts.update(_clauses(model.match, kind))
    return sorted(texts)


def _base(value: Any) -> tuple[float | None, int | None]:
    """(normal-tier price, start of the first higher tier) of a Decimal or TieredPrices value."""
    if value is None:
        return None, None
    if isinstance(value, Decimal | int | float):
        return float(value), None
    tiers = getattr(value, "tiers", None) or []
    return float(value.base), (min(t.start for t in tiers) if tiers else None)


def _tier_price(value: Any, threshold: int | None) -> float | None:
    """The price of the tier that starts at `threshold` (the first higher tier), if the value has it."""
    if threshold is None or isinstance(value, Decimal | int | float) or value is None:
        return float(value) if isinstance(value, Decimal | int | float) and threshold is not None else None
    for tier in getattr(value, "tiers", None) or []:
        if tier.start == threshold:
            return float(tier.price)
    return float(value.base)


def _price_date(model: Any, today: dt.date) -> dt.date | None:
    """The date the data carries: start of the active conditional price, or a verification date.

    `today` is the snapshot's date, not the clock's: a price that starts later is not yet active."""
    dates: list[dt.date] = []
    if isinstance(model.prices, list):
        for cond in model.prices:
            start = getattr(getattr(cond, "constraint", None), "start_date", None)
            if isinstance(start, dt.date):
                dates.append(start)
    for found in _CHECKED_DATE.findall(model.price_comments or ""):
        try:
            dates.append(dt.date.fromisoformat(found))
        except ValueError:
            continue
    dates = [d for d in dates if d <= today]
    return max(dates) if dates else None


def _batch_discount(model: Any, standard: Any) -> float | None:
    for variant in model.price_variants or []:
        if variant.when == {"processing": "batch"}:
            ratios = []
            for key in ("input_mtok", "output_mtok"):
                base, _ = _base(getattr(standard, key, None))
                batch, _ = _base(getattr(variant.prices, key, None))
                if base and batch is not None:
                    ratios.append(batch / base)
            if ratios and max(ratios) - min(ratios) < 1e-6 and 0 < ratios[0] < 1:
                return round(1 - ratios[0], 6)
    return None


def _norm(name: str) -> str:
    """A comparable open-model name: 'meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo' -> 'llama-3.1-70b'."""
    name = name.lower().rsplit("/", 1)[-1]
    name = re.sub(r"v(\d)p(\d)", r"\1.\2", name)  # fireworks: llama-v3p1-8b
    name = re.sub(r"(\d)p(\d)", r"\1.\2", name)  # qwen2p5
    name = name.replace("meta-llama-", "llama-").replace("meta-", "")
    for suffix in ("-fp8", "-turbo", "-instruct", "-it", "-versatile", "-instant", "-chat", "-reference"):
        name = name.replace(suffix, "")
    return name.replace("_", "-")


def match_open_model(names: Iterable[str], catalog_ids: Iterable[str]) -> str | None:
    """The catalog model a hosted model name denotes, when its normalised name equals one exactly."""
    wanted = {_norm(i): i for i in catalog_ids}
    for name in names:
        hit = wanted.get(_norm(name))
        if hit:
            return hit
    return None


def snapshot_api_prices(catalog_model_ids: Iterable[str] = (), today: dt.date | None = None) -> ApiPricesFile:
    """Every token-priced LLM in the installed genai-prices data, at its normal tier, as ApiPrice rows."""
    import genai_prices
    from genai_prices import data

    today = today or dt.date.today()
    now = dt.datetime.combine(today, dt.time(12), tzinfo=dt.UTC)
    catalog_model_ids = list(catalog_model_ids)
    source = f"genai-prices {genai_prices.__version__} (bundled data)"
    rows: dict[tuple[str, str], ApiPrice] = {}
    rule_texts = _all_rule_texts(data.providers)
    for provider in data.providers:
        if provider.id in EXCLUDED_PROVIDERS or provider.id.startswith(EXCLUDED_PREFIXES):
            continue
        for model in provider.models:
            standard = model.get_prices(now)
            input_price, input_tier = _base(getattr(standard, "input_mtok", None))
            output_price, output_tier = _base(getattr(standard, "output_mtok", None))
            if input_price is None or output_price is None:
                continue  # embeddings, images, audio: not priced per input and output token
            prefixes = list(dict.fromkeys(_clauses(model.match, "starts_with")))  # rule order kept
            patterns = list(dict.fromkeys(_clauses(model.match, "regex")))
            aliases = [n for n in _equals_names(model.match) if n != model.id]
            derived = [n for n in _dated_names_in_data(rule_texts, prefixes) if n not in aliases]
            aliases += [n for n in derived if n != model.id]
            tiers = [t for t in (input_tier, output_tier) if t]
            threshold = min(tiers) if tiers else None
            row = ApiPrice(
                provider=provider.id.replace("_", "-").lower(),
                model=model.id,
                name=model.name,
                pinned_version=pinned_version(model.id, aliases, prefixes),
                aliases=aliases,
                name_prefixes=prefixes,
                name_patterns=patterns,
                input_usd_per_mtok=input_price,
                cached_input_usd_per_mtok=_base(getattr(standard, "cache_read_mtok", None))[0],
                cache_write_usd_per_mtok=_base(getattr(standard, "cache_write_mtok", None))[0],
                output_usd_per_mtok=output_price,
                batch_discount=_batch_discount(model, standard),
                context_limit_tokens=model.context_window or None,
                long_context_threshold_tokens=threshold,
                long_context_input_usd_per_mtok=_tier_price(getattr(standard, "input_mtok", None), threshold),
                long_context_output_usd_per_mtok=_tier_price(
                    getattr(standard, "output_mtok", None), threshold
                ),
                open_model=match_open_model([model.id, *aliases], catalog_model_ids),
                deprecated=bool(model.deprecated),
                price_date=_price_date(model, today),
                checked_at=today,
                source=source,
            )
            rows.setdefault(row.key, row)
    return ApiPricesFile(
        schema_version=SCHEMA_VERSION,
        generated_from=source,
        generated_at=today,
        prices=sorted(rows.values(), key=lambda r: r.key),
    )


def dump_api_prices(snapshot: ApiPricesFile) -> str:
    """JSON with one price per line: small diffs on refresh, and an error's row is easy to find."""
    header = snapshot.model_dump(mode="json", exclude={"prices"})
    lines = [json.dumps(p.model_dump(mode="json", exclude_defaults=True)) for p in snapshot.prices]
    head = json.dumps(header)[:-1]
    return head + ', "prices": [\n' + ",\n".join(lines) + "\n]}\n"
