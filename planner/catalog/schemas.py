"""JSON Schema files for the catalog formats, generated from the record types (one schema, not two)."""

from __future__ import annotations

import json

from planner.records import CATALOG_FILE_TYPES, MeasurementRecord, QualityRecord

SCHEMA_FILES = {
    "models.schema.json": CATALOG_FILE_TYPES["models"],
    "gpus.schema.json": CATALOG_FILE_TYPES["gpus"],
    "cloud_offers.schema.json": CATALOG_FILE_TYPES["cloud_offers"],
    "api_prices.schema.json": CATALOG_FILE_TYPES["api_prices"],
    "checkpoint_sizes.schema.json": CATALOG_FILE_TYPES["checkpoint_sizes"],
    "measurement.schema.json": MeasurementRecord,
    "quality.schema.json": QualityRecord,
}


def schema_texts() -> dict[str, str]:
    """File name -> JSON Schema text, stable (sorted keys) so a diff shows real changes only."""
    out = {}
    for name, model in SCHEMA_FILES.items():
        schema = model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://selfhost-planner/schemas/{name}"
        out[name] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out
