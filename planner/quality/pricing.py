"""Prices of evaluated models: a spec (`auto`, `PROVIDER/MODEL`, `IN/OUT`, `self-hosted:MODEL[:QUANT]`,
`none`) -> hosting, catalog model, quant and a PriceRef's fields. Shared by gpu-bench eval (cost
per case) and planner route (`--price MODEL=SPEC` overrides).

- `auto`: a model name that is a catalog model id is self-hosted (planner route sizes its
  fleet); a name the API catalog knows (`gpt-4o-mini`, a dated version) is priced from it;
  anything else is unpriced.
- `PROVIDER/MODEL` or an API model name: that API catalog row.
- `self-hosted:CATALOG_MODEL[:QUANT]`: a self-hosted open model (QUANT default bf16).
- `IN/OUT`: given prices in USD per million input and output tokens, e.g. `0.15/0.60`.
- `none`: no price.
"""

from __future__ import annotations

import re
from typing import Any

from planner.errors import PlannerError

_GIVEN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)\s*$")


def resolve_price(catalog: Any, model: str, spec: str) -> tuple[str, str | None, str | None, dict[str, Any]]:
    """-> (hosting, catalog model, quant, PriceRef fields)."""
    from planner.errors import UnknownIdError
    from planner.vocab import QUANT_FORMATS

    spec = spec.strip()
    if spec == "none":
        return "unknown", None, None, {"basis": "none"}
    if m := _GIVEN.match(spec):
        return (
            "api",
            None,
            None,
            {
                "basis": "given",
                "input_usd_per_mtok": float(m.group(1)),
                "output_usd_per_mtok": float(m.group(2)),
                "source": "--price",
            },
        )
    if spec.startswith("self-hosted"):
        _, _, rest = spec.partition(":")
        catalog_id, _, quant = rest.partition(":")
        catalog_id = catalog_id or model
        quant = quant or "bf16"
        catalog.model(catalog_id)  # unknown id: a clear error with close matches
        if quant not in QUANT_FORMATS:
            raise UnknownIdError("quantization format", quant, QUANT_FORMATS)
        return "self-hosted", catalog_id, quant, {"basis": "self-hosted"}
    if spec == "auto":
        if model in catalog.models:
            return "self-hosted", model, "bf16", {"basis": "self-hosted"}
        try:
            row = catalog.api_price(model)
        except UnknownIdError:
            return "unknown", None, None, {"basis": "none"}
        return "api", row.open_model, None, _api_ref(row)
    try:
        row = catalog.api_price(spec)
    except UnknownIdError as exc:
        raise PlannerError(
            f"--price {spec!r}: {exc} (or give auto, IN/OUT in $ per 1M tokens, self-hosted:MODEL, none)"
        ) from None
    return "api", row.open_model, None, _api_ref(row)


def _api_ref(row: Any) -> dict[str, Any]:
    return {
        "basis": "catalog",
        "api": f"{row.provider}/{row.model}",
        "input_usd_per_mtok": row.input_usd_per_mtok,
        "output_usd_per_mtok": row.output_usd_per_mtok,
        "checked_at": row.checked_at,
        "source": row.source,
    }
