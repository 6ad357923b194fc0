#!/usr/bin/env python3
"""Regenerate catalogs/schemas/*.schema.json from planner/records.py (run after changing a record type).

Editors validate catalog YAML with them, e.g. VS Code's YAML extension with a first line
`# yaml-language-server: $schema=schemas/models.schema.json`.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner.catalog.files import atomic_write_text  # noqa: E402
from planner.catalog.schemas import schema_texts  # noqa: E402


def main() -> int:
    out = ROOT / "catalogs" / "schemas"
    for name, text in schema_texts().items():
        atomic_write_text(out / name, text)
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
