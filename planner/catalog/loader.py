"""Load and validate catalog directories: every problem found at once, each with file, line and fix.

A catalog is a stack of directories: the bundled one first, then the user's (``--catalog DIR`` or
``SELFHOST_PLANNER_CATALOG``). A row in a later directory replaces the row with the same key in an
earlier one, so a user file with one negotiated price overrides just that price; how offers and
API overrides keep what they do not restate is in planner/catalog/layering.py.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.catalog.files import CatalogFileError, Row, read_json_rows, read_jsonl_rows, read_yaml_rows
from planner.catalog.layering import API_LOADER_FIELDS, merge_api_price, replace_offer
from planner.errors import close_matches
from planner.vocab import SCHEMA_VERSION


@dataclass(frozen=True)
class CatalogIssue:
    path: str
    line: int | None
    where: str
    message: str

    def __str__(self) -> str:
        at = f"{self.path}:{self.line}" if self.line else self.path
        return f"{at}: {self.where}: {self.message}" if self.where else f"{at}: {self.message}"


@dataclass(frozen=True)
class KindSpec:
    """One kind of catalog data: its files, row type, identity and how to name a row in messages."""

    name: str
    files: tuple[str, ...]  # file names or globs inside a catalog directory
    list_key: str | None  # None: JSONL, one row per line
    row_type_name: str  # in planner.records; imported when a file is validated, not before
    key: Callable[[Any], Hashable]
    label: Callable[[dict[str, Any]], str]
    # A later directory's row with an earlier row's key: the rows to keep (first under the key),
    # see planner/catalog/layering.py. None: plain replacement.
    combine: Callable[[Any, Any, Path, int | None], list[Any]] | None = None
    loader_fields: tuple[str, ...] = ()  # fields the loader sets; a file may not state them

    @property
    def row_type(self) -> Any:
        from planner import records

        return getattr(records, self.row_type_name)


def _label_id(data: dict[str, Any]) -> str:
    return f"id={data.get('id')!r}" if "id" in data else ""


KINDS: dict[str, KindSpec] = {
    "models": KindSpec("models", ("models.yaml",), "models", "ModelSpec", lambda r: r.id, _label_id),
    "gpus": KindSpec("gpus", ("gpus.yaml",), "gpus", "GpuSpec", lambda r: r.id, _label_id),
    "offers": KindSpec(
        "offers",
        ("cloud_offers.yaml",),
        "offers",
        "CloudOffer",
        lambda r: r.key,
        lambda d: f"{d.get('provider')}/{d.get('instance')}/{d.get('region')}",
        combine=replace_offer,
    ),
    "api": KindSpec(
        "api",
        ("api_prices.json", "api_overrides.yaml"),
        "prices",
        "ApiPrice",
        lambda r: r.key,
        lambda d: f"{d.get('provider')}/{d.get('model')}",
        combine=merge_api_price,
        loader_fields=API_LOADER_FIELDS,
    ),
    "checkpoints": KindSpec(
        "checkpoints",
        ("checkpoint_sizes.yaml",),
        "checkpoints",
        "CheckpointSize",
        lambda r: (r.hf_repo, r.quant),
        lambda d: str(d.get("hf_repo")),
    ),
    "measurements": KindSpec(
        "measurements", ("measurements/*.jsonl",), None, "MeasurementRecord", lambda r: r.id, _label_id
    ),
    "quality": KindSpec("quality", ("quality/*.jsonl",), None, "QualityRecord", lambda r: r.id, _label_id),
}


def describe_error(err: dict[str, Any], row_type: Any) -> tuple[tuple[Any, ...], str]:
    """A pydantic error as (location, message that says what was expected and how to fix it)."""
    loc = tuple(err.get("loc", ()))
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        field = str(loc[-1]) if loc else "?"
        model: Any = row_type
        for part in loc[:-1]:
            annotation = getattr(model, "model_fields", {}).get(part)
            inner = getattr(annotation, "annotation", None)
            inner = next(
                (a for a in getattr(inner, "__args__", (inner,)) if hasattr(a, "model_fields")), None
            )
            model = inner
        known = list(getattr(model, "model_fields", {}) or [])
        hint = close_matches(field, known)
        msg = f"unknown field {field!r}"
        msg += f"; did you mean {hint[0]!r}?" if hint else f"; allowed: {', '.join(known)}"
        return loc, msg
    if kind == "missing":
        return loc, f"missing required field {str(loc[-1]) if loc else ''!r}"
    if kind == "string_pattern_mismatch":
        return loc, (
            f"{err.get('input')!r} is not a valid id: use lowercase letters, digits, '-', '.' or '_' "
            "(e.g. 'llama-3.1-8b-instruct')"
        )
    msg = err.get("msg", "invalid")
    if kind == "value_error":
        msg = msg.removeprefix("Value error, ")
    elif kind in _STRICT_TYPES and "input" in err:
        # Strict: YAML's own types only; "8" is text, not a number, and yes/no need no quotes.
        msg = f"{msg}, got {type(err['input']).__name__} {err['input']!r}"
        if isinstance(err["input"], str):
            msg += " (write it without quotes)"
        return loc, msg
    if "input" in err and kind not in ("model_type", "dict_type", "value_error"):
        msg += f" (got {err['input']!r})"
    return loc, msg


_STRICT_TYPES = ("int_type", "float_type", "bool_type", "date_type", "datetime_type", "string_type")


def loc_text(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class KindLoad:
    """The result of loading one kind across the directory stack."""

    def __init__(self) -> None:
        self.rows: dict[Hashable, Any] = {}
        self.origin: dict[Hashable, tuple[str, int | None]] = {}
        self.issues: list[CatalogIssue] = []
        self.files: list[Path] = []


def _check_header(path: Path, header: dict[str, Any], issues: list[CatalogIssue]) -> bool:
    version = header.get("schema_version")
    if version is None:
        issues.append(
            CatalogIssue(str(path), 1, "", f"missing 'schema_version: {SCHEMA_VERSION}' at the top")
        )
        return False
    if version != SCHEMA_VERSION:
        issues.append(
            CatalogIssue(
                str(path),
                1,
                "schema_version",
                f"this file is schema version {version!r}; this planner reads version {SCHEMA_VERSION}. "
                "Upgrade selfhost-planner, or rewrite the file in version "
                f"{SCHEMA_VERSION} (see catalogs/schemas/)",
            )
        )
        return False
    return True


def kind_files(spec: KindSpec, directory: Path) -> list[Path]:
    found: list[Path] = []
    for pattern in spec.files:
        found.extend(sorted(directory.glob(pattern)) if "*" in pattern else [directory / pattern])
    return [p for p in found if p.is_file()]


def _read_rows(spec: KindSpec, path: Path, issues: list[CatalogIssue]) -> Iterable[Row]:
    try:
        if spec.list_key is None:
            return list(read_jsonl_rows(path))
        reader = read_json_rows if path.suffix == ".json" else read_yaml_rows
        header, rows = reader(path, spec.list_key)
    except CatalogFileError as exc:
        issues.append(CatalogIssue(str(exc.path), exc.line, "", exc.message))
        return []
    known_header = {"schema_version", "generated_from", "generated_at"}
    for extra in sorted(set(header) - known_header):
        issues.append(CatalogIssue(str(path), 1, extra, f"unknown top-level key; expected {spec.list_key}:"))
    return rows if _check_header(path, header, issues) else []


def load_kind(spec: KindSpec, directories: Iterable[Path]) -> KindLoad:
    """Validate every row of one kind in every directory; later directories override earlier ones."""
    from pydantic import ValidationError

    row_type = spec.row_type
    result = KindLoad()
    for directory in directories:
        for path in kind_files(spec, directory):
            result.files.append(path)
            seen_here: dict[Hashable, int | None] = {}
            for row in _read_rows(spec, path, result.issues):
                where = f"{spec.list_key or 'line'}[{row.index}]" if spec.list_key else ""
                label = spec.label(row.data)
                where = f"{where} ({label})" if where and label else (where or label)
                if "__bad_json__" in row.data:
                    result.issues.append(
                        CatalogIssue(str(path), row.line, "", f"not valid JSON: {row.data['__bad_json__']}")
                    )
                    continue
                if "__not_a_mapping__" in row.data:
                    result.issues.append(
                        CatalogIssue(str(path), row.line, where, "expected a mapping of fields")
                    )
                    continue
                if spec.list_key is None and row.data.get("schema_version") not in (None, SCHEMA_VERSION):
                    result.issues.append(
                        CatalogIssue(
                            str(path),
                            row.line,
                            where,
                            f"record schema_version {row.data['schema_version']!r}; this planner reads "
                            f"{SCHEMA_VERSION}: upgrade selfhost-planner to read it",
                        )
                    )
                    continue
                stated = [f for f in spec.loader_fields if f in row.data]
                if stated:
                    result.issues.append(
                        CatalogIssue(
                            str(path),
                            row.line_of((stated[0],)),
                            f"{where} {stated[0]}",
                            "set by the loader when it merges an override; remove it from the file",
                        )
                    )
                    continue
                try:
                    # strict: a quoted "8" is not a number, "yes" is not a bool (dates: see Date)
                    obj = row_type.model_validate(row.data, strict=True)
                except ValidationError as exc:
                    for err in exc.errors():
                        loc, msg = describe_error(dict(err), row_type)
                        field = loc_text(loc)
                        result.issues.append(
                            CatalogIssue(str(path), row.line_of(loc), f"{where} {field}".strip(), msg)
                        )
                    continue
                key = spec.key(obj)
                if key in seen_here:
                    first = seen_here[key]
                    result.issues.append(
                        CatalogIssue(
                            str(path),
                            row.line,
                            where,
                            f"duplicate {spec.name} entry (first at line {first}); keep one of them",
                        )
                    )
                    continue
                seen_here[key] = row.line
                placed = [obj]
                if key in result.rows and spec.combine is not None:
                    placed = spec.combine(result.rows[key], obj, path, row.line)
                replaced_origin = result.origin.get(key)
                result.rows[key] = placed[0]
                result.origin[key] = (str(path), row.line)
                for kept in placed[1:]:  # e.g. a replaced offer, kept as history
                    kept_key = spec.key(kept)
                    if kept_key not in result.rows and replaced_origin is not None:
                        result.rows[kept_key] = kept
                        result.origin[kept_key] = replaced_origin
    return result
