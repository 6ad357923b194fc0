"""The API price catalog is genai-prices' data, not retyped: check it against the package itself."""

from __future__ import annotations

import datetime as dt
import json

import genai_prices  # a core dependency: its absence is a failure, not a skip
import pytest

from planner.catalog import Catalog
from planner.catalog.api_names import pinned_version
from planner.catalog.genai_import import (
    dated_versions,
    dump_api_prices,
    match_open_model,
    snapshot_api_prices,
)
from tests.conftest import CATALOGS

# The bundled file's own date: prices that genai-prices starts later are not yet active on it.
SNAPSHOT_DATE = dt.date.fromisoformat(json.loads((CATALOGS / "api_prices.json").read_text())["generated_at"])


@pytest.fixture(scope="module")
def snapshot():
    return snapshot_api_prices(Catalog([CATALOGS]).models.keys(), today=SNAPSHOT_DATE)


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-4o-mini"),
        ("openai", "gpt-4o"),
        ("anthropic", "claude-3-haiku"),
        ("google", "gemini-2.0-flash"),
    ],
)
def test_rows_price_a_normal_request_exactly_as_genai_prices_does(
    snapshot, provider: str, model: str
) -> None:
    row = next(p for p in snapshot.prices if (p.provider, p.model) == (provider, model))
    usage = genai_prices.Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    when = dt.datetime.combine(SNAPSHOT_DATE, dt.time(12), tzinfo=dt.UTC)
    calc = genai_prices.calc_price(usage, model, provider_id=provider, genai_request_timestamp=when)
    assert float(calc.input_price) == pytest.approx(row.input_usd_per_mtok)
    assert float(calc.output_price) == pytest.approx(row.output_usd_per_mtok)


def test_bundled_file_is_what_the_installed_package_generates(snapshot) -> None:
    bundled = json.loads((CATALOGS / "api_prices.json").read_text())
    if bundled["generated_from"] != snapshot.generated_from:
        pytest.skip(
            f"bundled {bundled['generated_from']}, installed {snapshot.generated_from}: "
            "run scripts/refresh_api_prices.py"
        )
    regenerated = json.loads(dump_api_prices(snapshot))
    strip = lambda rows: [{k: v for k, v in r.items() if k != "checked_at"} for r in rows]  # noqa: E731
    assert strip(bundled["prices"]) == strip(regenerated["prices"])


def test_long_context_tiers_are_not_applied(snapshot) -> None:
    tiered = [p for p in snapshot.prices if p.long_context_threshold_tokens]
    assert tiered, (
        "genai-prices has tiered models (e.g. Gemini 1.5 Pro); the snapshot must keep the threshold"
    )
    row = tiered[0]
    model = next(
        m
        for pr in genai_prices.data.providers
        if pr.id.replace("_", "-") == row.provider
        for m in pr.models
        if m.id == row.model
    )
    prices = model.get_prices(dt.datetime.combine(SNAPSHOT_DATE, dt.time(12), tzinfo=dt.UTC))
    assert row.input_usd_per_mtok == pytest.approx(float(prices.input_mtok.base))


def test_batch_discount_from_batch_variant(snapshot) -> None:
    row = next(p for p in snapshot.prices if (p.provider, p.model) == ("openai", "gpt-4o-mini"))
    assert row.batch_discount == pytest.approx(0.5)


def test_prefix_rules_are_kept_and_give_the_pinned_version(snapshot) -> None:
    rows = {(p.provider, p.model): p for p in snapshot.prices}
    haiku = rows["anthropic", "claude-3-haiku"]
    assert haiku.name_prefixes == ["claude-3-haiku"]
    assert haiku.pinned_version == "claude-3-haiku-20240307"  # the data's only dated claude-3-haiku
    assert rows["anthropic", "claude-sonnet-4-5"].pinned_version == "claude-sonnet-4-5-20250929"
    # Two dated versions under one rule: no pin, both listed.
    sonnet = rows["anthropic", "claude-3-5-sonnet"]
    assert sonnet.pinned_version is None
    assert {"claude-3-5-sonnet-20240620", "claude-3-5-sonnet-20241022"} <= set(sonnet.aliases)


def test_a_prefix_that_names_another_model_does_not_pin() -> None:
    # deepseek-reasoner matches starts_with deepseek-r1; deepseek-r1-0528 is not its pinned version.
    assert pinned_version("deepseek-reasoner", ["deepseek-r1-0528"], ["deepseek-r1"]) is None
    assert pinned_version("claude-opus-4-5", ["claude-opus-4.5-20251124"], ["claude-opus-4.5"]) == (
        "claude-opus-4.5-20251124"
    )
    spellings = ["claude-sonnet-4.5-20250929", "claude-sonnet-4-5-20250929"]
    pinned = pinned_version("claude-sonnet-4-5", spellings, ["claude-sonnet-4.5"])
    assert pinned == "claude-sonnet-4-5-20250929"


def test_pinned_versions() -> None:
    assert dated_versions(
        "gpt-4o-mini", ["gpt-4o-mini-2024-07-18", "gpt-4o-mini-search-preview-2025-03-11"]
    ) == ["gpt-4o-mini-2024-07-18"]
    assert dated_versions("claude-3-haiku", ["claude-3-haiku-20240307"]) == ["claude-3-haiku-20240307"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo", "llama-3.1-70b-instruct"),
        ("accounts/fireworks/models/llama-v3p1-8b-instruct", "llama-3.1-8b-instruct"),
        ("llama-3.3-70b-versatile", "llama-3.3-70b-instruct"),
        ("qwen/qwen3-32b", "qwen3-32b"),
        ("meta-llama/Llama-3.2-3B-Instruct", None),
    ],
)
def test_hosted_open_models_link_to_catalog_models(name: str, expected: str | None) -> None:
    ids = Catalog([CATALOGS]).models.keys()
    assert match_open_model([name], ids) == expected
