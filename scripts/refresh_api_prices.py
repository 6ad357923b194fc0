#!/usr/bin/env python3
"""Rebuild catalogs/api_prices.json from the installed genai-prices package (offline).

    pip install -U genai-prices && python scripts/refresh_api_prices.py

Negotiated prices and models genai-prices lacks go in catalogs/api_overrides.yaml, not here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner.catalog.catalog import Catalog  # noqa: E402
from planner.catalog.files import atomic_write_text  # noqa: E402
from planner.catalog.genai_import import dump_api_prices, snapshot_api_prices  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "catalogs" / "api_prices.json")
    args = parser.parse_args(argv)
    model_ids = Catalog([ROOT / "catalogs"]).models.keys()
    snapshot = snapshot_api_prices(model_ids)
    atomic_write_text(args.out, dump_api_prices(snapshot))
    linked = sum(1 for p in snapshot.prices if p.open_model)
    providers = len({p.provider for p in snapshot.prices})
    print(
        f"wrote {args.out}: {len(snapshot.prices)} prices from {providers} providers "
        f"({snapshot.generated_from}); {linked} linked to catalog models"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
