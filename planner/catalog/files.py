"""Reading catalog files with line numbers, and writing them atomically.

Errors must point at a file and a line, so YAML is read through a loader that remembers where
each mapping and key started; JSONL is read line by line.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_LINE = "__line__"
_FIELD_LINES = "__field_lines__"


class CatalogFileError(Exception):
    """A file that cannot be read at all (syntax, encoding, wrong top-level shape)."""

    def __init__(self, path: Path, line: int | None, message: str):
        super().__init__(f"{path}{f':{line}' if line else ''}: {message}")
        self.path, self.line, self.message = path, line, message


@dataclass
class Row:
    """One list item of a catalog file, with where it was written."""

    data: dict[str, Any]
    index: int
    line: int | None = None
    raw: Any = None  # the YAML mapping with its line markers, for nested error locations

    def line_of(self, loc: tuple[Any, ...]) -> int | None:
        """The line of the deepest key of a pydantic error location that the file shows."""
        line, node = self.line, self.raw
        for part in loc:
            if isinstance(node, dict) and part in node:
                line = node.get(_FIELD_LINES, {}).get(str(part), line)
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
                if isinstance(node, dict):
                    line = node.get(_LINE, line)
            else:
                break
        return line


@functools.cache
def _line_loader() -> type:
    """A SafeLoader (the C one when present) whose mappings remember their own line and each key's.

    Built on first use, so commands that read the catalog from its snapshot never import yaml.
    """
    import yaml

    base: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class LineLoader(base):  # type: ignore[misc, valid-type]
        pass

    error = yaml.constructor.ConstructorError

    def construct_value(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        # PyYAML's constructors raise plain ValueError/TypeError for some bad scalars
        # (`!!int abc`): give them the node's line like any other YAML error.
        try:
            return loader.construct_object(node, deep=True)
        except (ValueError, TypeError, OverflowError) as exc:
            raise error(None, None, f"cannot read this value: {exc}", node.start_mark) from None

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[str, Any]:
        loader.flatten_mapping(node)
        mapping: dict[str, Any] = {}
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = construct_value(loader, key_node)
            try:
                hash(key)
            except TypeError:
                raise error(
                    None,
                    None,
                    "a key must be a plain value (a name), not a list or a mapping",
                    key_node.start_mark,
                ) from None
            if key in mapping:
                raise error(None, None, f"duplicate key {key!r}", key_node.start_mark)
            mapping[key] = construct_value(loader, value_node)
            lines[str(key)] = key_node.start_mark.line + 1
        mapping[_LINE] = node.start_mark.line + 1
        mapping[_FIELD_LINES] = lines
        return mapping

    def construct_timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
        # `2026-13-45` looks like a date to YAML but is none: keep the text, so the field that
        # expects a date reports it (with its row, field and line) beside every other problem.
        try:
            return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)
        except ValueError:
            return loader.construct_scalar(node)

    LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    LineLoader.add_constructor("tag:yaml.org,2002:timestamp", construct_timestamp)
    return LineLoader


def _strip_lines(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_lines(v) for k, v in value.items() if k not in (_LINE, _FIELD_LINES)}
    if isinstance(value, list):
        return [_strip_lines(v) for v in value]
    return value


def read_yaml_mapping(path: Path) -> Row:
    """A whole YAML file that must be one mapping (a workload file), as a Row with its lines."""
    doc = _load_yaml(path)
    if not isinstance(doc, dict):
        raise CatalogFileError(path, 1, "expected a mapping of fields")
    return Row(_strip_lines(doc), 0, doc.get(_LINE), doc)


def _load_yaml(path: Path) -> Any:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CatalogFileError(path, None, f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise CatalogFileError(path, None, f"cannot read: {exc.strerror}") from None
    try:
        doc = yaml.load(text, Loader=_line_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise CatalogFileError(path, line, f"YAML syntax: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise CatalogFileError(path, None, f"YAML syntax: {exc}") from None
    except (ValueError, TypeError, RecursionError) as exc:  # a constructor outside any mapping
        raise CatalogFileError(path, None, f"cannot read a value: {exc}") from None
    return doc


def read_yaml_rows(path: Path, list_key: str) -> tuple[dict[str, Any], list[Row]]:
    """Read a catalog YAML file: its header fields and the rows under list_key, with lines."""
    doc = _load_yaml(path)
    if not isinstance(doc, dict):
        raise CatalogFileError(path, 1, f"expected a mapping with schema_version and {list_key}:")
    items = doc.get(list_key)
    if not isinstance(items, list):
        raise CatalogFileError(
            path, doc.get(_FIELD_LINES, {}).get(list_key, 1), f"expected a list under {list_key}:"
        )
    header = {k: _strip_lines(v) for k, v in doc.items() if k not in (list_key, _LINE, _FIELD_LINES)}
    rows = []
    for index, item in enumerate(items):
        if isinstance(item, dict):
            rows.append(Row(_strip_lines(item), index, item.get(_LINE), item))
        else:
            rows.append(Row({"__not_a_mapping__": item}, index, None))
    return header, rows


def read_json_rows(path: Path, list_key: str) -> tuple[dict[str, Any], list[Row]]:
    """Read a JSON catalog file (a generated one: one row per line), each row with its line."""
    try:
        text = path.read_text(encoding="utf-8")
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogFileError(path, exc.lineno, f"JSON syntax: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogFileError(path, None, f"cannot read: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get(list_key), list):
        raise CatalogFileError(path, 1, f"expected an object with schema_version and a list {list_key!r}")
    header = {k: v for k, v in doc.items() if k != list_key}
    items = doc[list_key]
    lines = _json_item_lines(text, list_key, len(items))
    return header, [
        Row(item if isinstance(item, dict) else {"__not_a_mapping__": item}, i, lines[i])
        for i, item in enumerate(items)
    ]


def _json_item_lines(text: str, list_key: str, count: int) -> list[int | None]:
    """The line each item of the top-level list `list_key` starts on (None for all if not found)."""
    decoder = json.JSONDecoder()
    for match in re.finditer(rf'"{re.escape(list_key)}"\s*:\s*\[', text):
        pos, starts = match.end(), []
        try:
            while True:
                pos = _skip(text, pos)
                if text[pos] == "]":
                    break
                if starts:  # a comma between items
                    if text[pos] != ",":
                        raise ValueError("not a list")
                    pos = _skip(text, pos + 1)
                starts.append(pos)
                _, pos = decoder.raw_decode(text, pos)
        except (ValueError, IndexError):
            continue
        if len(starts) == count:
            return [text.count("\n", 0, s) + 1 for s in starts]
    return [None] * count


def _skip(text: str, pos: int) -> int:
    while text[pos] in " \t\r\n":
        pos += 1
    return pos


def read_jsonl_rows(path: Path) -> Iterator[Row]:
    """Rows of a JSONL file; a line that is not a JSON object becomes a row that fails validation."""
    try:
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    obj = {"__bad_json__": exc.msg}
                if not isinstance(obj, dict):
                    obj = {"__not_a_mapping__": obj}
                yield Row(obj, lineno - 1, lineno)
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogFileError(path, None, f"cannot read: {exc}") from None


def atomic_write_text(path: Path, text: str) -> None:
    """Write a whole file so a reader sees the old content or the new, never half of it."""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append_jsonl(path: Path, objects: list[dict[str, Any]]) -> None:
    """Append records as whole lines in one write, fsynced: a crash leaves whole lines only.

    A partial last line from an earlier crash is repaired by starting on a fresh line.
    """
    if not objects:
        return
    payload = "".join(json.dumps(o, separators=(",", ":"), sort_keys=False) + "\n" for o in objects)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size:
            with path.open("rb") as fh:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    payload = "\n" + payload
        os.write(fd, payload.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def check_writable(path: Path, option: str, directory: bool = False) -> None:
    """Refuse, before anything runs, a file (or folder) that cannot be written: nothing measured
    should be lost to a path. Creates nothing: a missing folder is judged by its nearest existing
    parent, which must take a new entry (tried with a temporary file, as root too)."""
    import tempfile

    from planner.errors import PlannerError

    def refuse(why: str) -> None:
        fix = "a folder you can write to" if directory else "a path in a folder you can write to"
        raise PlannerError(f"{option} {path}: {why}; give {fix}")

    try:
        exists = path.exists()
    except OSError as exc:  # a parent that cannot be searched
        refuse(f"cannot be reached ({exc.strerror or exc})")
    if exists:
        if directory != path.is_dir():
            refuse("is a folder" if path.is_dir() else "is not a folder")
        if not directory:
            try:
                with path.open("a", encoding="utf-8"):
                    pass  # appending nothing: the file is unchanged
            except OSError as exc:
                refuse(f"cannot append to it ({exc.strerror or exc})")
            return
    parent = path if exists else path.parent
    while not _exists(parent) and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        refuse(f"{parent} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        refuse(f"cannot create anything in {parent} ({exc.strerror or exc})")
    if not os.access(parent, os.W_OK | os.X_OK):
        refuse(f"{parent} is not writable")


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return False
