"""What happens when a later catalog directory has a row with the key of an earlier one.

The default is plain replacement. Two kinds do more, so that nothing a user did not restate is lost:

- Cloud offers: a current row replaces the current row of the same provider, instance and region.
  The replaced row is not dropped: it stays in the merged view as a history row (never planned
  with, listed by ``catalog list offers --history``), its note saying which file replaced it and,
  when it is newer than its replacement, that too. Rows with equal prices are simply replaced.
- API prices: a row of an ``api_overrides.yaml`` is merged onto the row it overrides (the
  genai-prices row, or an earlier override): the fields it states replace, every other field
  (pinned version, aliases, cached-input price, batch discount, context limit, ...) is kept, and
  ``overrides`` records the source of each replaced field. A whole ``api_prices.json`` in a user
  directory replaces rows wholesale, as a regenerated file would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

OVERRIDES_FILE = "api_overrides.yaml"
_IDENTITY = ("provider", "model")
_PROVENANCE = ("source", "checked_at")
PRICE_FIELDS = (
    "input_usd_per_mtok",
    "cached_input_usd_per_mtok",
    "cache_write_usd_per_mtok",
    "output_usd_per_mtok",
    "batch_discount",
    "long_context_threshold_tokens",
    "long_context_input_usd_per_mtok",
    "long_context_output_usd_per_mtok",
)
API_LOADER_FIELDS = ("overrides", "base_source")
"""ApiPrice fields the loader sets when it merges an override; a file may not state them."""


def replace_offer(old: Any, new: Any, path: Path, line: int | None) -> list[Any]:
    """[the row to keep under the key, the replaced row kept as history (if any)]."""
    if old.history or new.history or old.usd_per_hour == new.usd_per_hour:
        return [new]
    newer = "; it is newer than the row that replaced it" if old.checked_at > new.checked_at else ""
    note = f"replaced by {path}{f':{line}' if line else ''}{newer}"
    if old.note:
        note += f" (was: {old.note})"
    return [new, old.model_copy(update={"history": True, "note": note})]


def merge_api_price(old: Any, new: Any, path: Path, line: int | None) -> list[Any]:
    """The override's stated fields over the row it overrides, with where each one came from."""
    if path.name != OVERRIDES_FILE:
        return [new]
    stated = [
        f for f in type(new).model_fields if f in new.model_fields_set and f not in _IDENTITY + _PROVENANCE
    ]
    stated = [f for f in stated if f not in API_LOADER_FIELDS]
    update: dict[str, Any] = {f: getattr(new, f) for f in stated}
    if "price_date" not in stated and any(f in PRICE_FIELDS for f in stated):
        # The overridden row's price date dated its prices, not these.
        update["price_date"] = new.checked_at
        stated.append("price_date")
    where = f"{new.source} (checked {new.checked_at}; {path}{f':{line}' if line else ''})"
    update["overrides"] = {**(old.overrides or {}), **dict.fromkeys(stated, where)}
    update["base_source"] = old.base_source or f"{old.source}, checked {old.checked_at}"
    update["source"], update["checked_at"] = new.source, new.checked_at
    return [old.model_copy(update=update)]
