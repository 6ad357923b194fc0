"""The JSON Schema files are generated from the record types and validate the bundled catalogs."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from planner.catalog.schemas import schema_texts
from tests.conftest import CATALOGS


def test_schema_files_are_up_to_date() -> None:
    for name, text in schema_texts().items():
        assert (CATALOGS / "schemas" / name).read_text() == text, (
            f"run scripts/gen_schemas.py ({name} is stale)"
        )


@pytest.mark.parametrize(
    ("data_file", "schema_file"),
    [
        ("models.yaml", "models.schema.json"),
        ("gpus.yaml", "gpus.schema.json"),
        ("cloud_offers.yaml", "cloud_offers.schema.json"),
        ("api_overrides.yaml", "api_prices.schema.json"),
        ("api_prices.json", "api_prices.schema.json"),
    ],
)
def test_bundled_files_validate_against_their_schema(data_file: str, schema_file: str) -> None:
    schema = json.loads((CATALOGS / "schemas" / schema_file).read_text())
    text = (CATALOGS / data_file).read_text()
    data = json.loads(text) if data_file.endswith(".json") else yaml.safe_load(text)
    data = json.loads(json.dumps(data, default=str))  # YAML dates -> ISO strings, as an editor sees them
    jsonschema.validate(data, schema)


def test_schema_rejects_unknown_fields() -> None:
    schema = json.loads((CATALOGS / "schemas" / "gpus.schema.json").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"schema_version": 1, "gpus": [{"id": "x", "colour": "green"}]}, schema)
