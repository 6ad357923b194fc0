"""Render rows as a console table, JSON, CSV or Markdown. No computing here, only presentation."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

FORMATS = ("table", "json", "csv", "markdown")
Format = Literal["table", "json", "csv", "markdown"]


@dataclass(frozen=True)
class Column:
    key: str  # a dotted path into nested rows ("ttft_ms.p50"); with path=False, one key as it is
    header: str
    fmt: str | Callable[[Any], str] = ""  # a format spec for numbers, or a function
    path: bool = True  # False for keys that are names (an option label may hold dots: "llama-3.1")
    missing: str = "-"  # shown for None: "never" where None means a break-even that never comes

    def text(self, row: Mapping[str, Any]) -> str:
        value = lookup(row, self.key) if self.path else row.get(self.key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return self.missing
        if callable(self.fmt):
            return self.fmt(value)
        if self.fmt and isinstance(value, int | float) and not isinstance(value, bool):
            return format(value, self.fmt)
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, list | tuple):
            return ", ".join(str(v) for v in value)
        return str(value)


def lookup(row: Mapping[str, Any], dotted: str) -> Any:
    """row['a.b'] if the row has that key (labels such as 'llama-3.1-8b' contain dots), else row['a']['b']."""
    if dotted in row:
        return row[dotted]
    value: Any = row
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def flatten(row: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'ttft_ms': {'p50': 1}} -> {'ttft_ms.p50': 1}, so CSV cells hold scalars, never structures."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, list | tuple) and all(not isinstance(v, Mapping | list) for v in value):
            out[name] = ";".join(str(v) for v in value)
        else:
            out[name] = value
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


def to_json(payload: Any) -> str:
    return json.dumps(payload, indent=2, default=_json_default, allow_nan=False)


def _is_numeric(texts: Sequence[str]) -> bool:
    seen = [t for t in texts if t != "-"]
    return bool(seen) and all(_looks_numeric(t) for t in seen)


def _looks_numeric(text: str) -> bool:
    stripped = text.replace(",", "").replace("%", "").replace("$", "").replace("x", "").strip()
    try:
        float(stripped)
    except ValueError:
        return False
    return True


def render_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> str:
    cells = [[c.text(r) for c in columns] for r in rows]
    headers = [c.header for c in columns]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    right = [_is_numeric([row[i] for row in cells]) for i in range(len(columns))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(row) for row in cells)
    return "\n".join(out)


def render_markdown(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    cells = [[esc(c.text(r)) for c in columns] for r in rows]
    right = [_is_numeric([row[i] for row in cells]) for i in range(len(columns))]
    out = ["| " + " | ".join(esc(c.header) for c in columns) + " |"]
    out.append("|" + "|".join("---:" if r else "---" for r in right) + "|")
    out.extend("| " + " | ".join(row) + " |" for row in cells)
    return "\n".join(out)


def render_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column] | None = None) -> str:
    """Raw values (not display text), one column per scalar; nested values flattened with dots."""
    flat = [flatten(r) for r in rows]
    if columns is not None:
        keys = [c.key for c in columns]
    else:
        keys = []
        for r in flat:
            keys.extend(k for k in r if k not in keys)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(keys)
    for r in flat:
        writer.writerow(["" if r.get(k) is None else _csv_value(r.get(k)) for k in keys])
    return buf.getvalue().rstrip("\n")


def _csv_value(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def render_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], fmt: str) -> str:
    """The one entry point commands use for lists: table and markdown show columns, json/csv all fields."""
    if fmt == "json":
        return to_json(list(rows))
    if fmt == "csv":
        return render_csv(rows)
    if fmt == "markdown":
        return render_markdown(rows, columns)
    return render_table(rows, columns)


def render_mapping(pairs: Sequence[tuple[str, str]], fmt: str, payload: Any = None) -> str:
    """A key-value view of one thing (catalog show); json renders the payload itself."""
    if fmt == "json":
        return to_json(payload)
    rows = [{"field": k, "value": v} for k, v in pairs]
    cols = [Column("field", "field"), Column("value", "value")]
    if fmt == "csv":
        return render_csv(rows, cols)
    if fmt == "markdown":
        return render_markdown(rows, cols)
    width = max(len(k) for k, _ in pairs) if pairs else 0
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in pairs)
