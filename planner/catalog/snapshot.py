"""A validated catalog kept as plain data, so the planner's commands start without pydantic or YAML.

After a kind's files pass every check, its rows are saved (pickled plain dicts, dates and lists:
nothing that needs pydantic to read back) under the user's cache directory, keyed by the files'
paths, sizes and modification times and by the code that validated them. The next command reads
them back as `Lite` rows: read-only attribute access with the same methods as the record types
(planner/record_methods.py). Any change to a file, or to the record code, misses the cache and
validates again. `planner catalog validate` always reads the files themselves.

The cache is the user's own (like pip's): a pickle there is trusted as much as the code itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import pickle
from collections.abc import Hashable, Iterable
from pathlib import Path
from typing import Any

from planner.record_methods import ApiPriceMethods, MeasurementMethods, OfferMethods

_FORMAT = "1"
_CODE = (
    "records.py",
    "record_methods.py",
    "vocab.py",
    "catalog/loader.py",
    "catalog/catalog.py",
    "catalog/files.py",
    "catalog/layering.py",
    "catalog/api_names.py",
)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "selfhost-planner"


def files_fingerprint(paths: Iterable[Path]) -> str:
    """Cheap identity of files: path, size and modification time (no reading)."""
    h = hashlib.sha256(_FORMAT.encode())
    package = Path(__file__).resolve().parent.parent
    for name in _CODE:
        st = (package / name).stat()
        h.update(f"{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    for p in paths:
        try:
            st = p.stat()
            h.update(f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode())
        except OSError:
            h.update(f"{p}:missing".encode())
    return h.hexdigest()[:24]


class Lite:
    """A read-only row: its fields as plain attributes (nested rows wrapped when loaded)."""

    def __init__(self, data: dict[str, Any], shape: dict[str, Any]):
        fields = {}
        for name, value in data.items():
            sub = shape.get(name)
            if sub is not None and value is not None:
                if "__values__" in sub:  # dict[str, Model]
                    value = {k: Lite(v, sub["__values__"]) for k, v in value.items()}
                elif isinstance(value, list):
                    value = [Lite(v, sub) for v in value]
                else:
                    value = Lite(value, sub)
            fields[name] = value
        self.__dict__.update(fields)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("catalog rows are read-only")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.__dict__!r})"

    def model_dump(self, mode: str = "python", exclude: set[str] | None = None, exclude_none: bool = False,
                   **_: Any) -> dict[str, Any]:  # fmt: skip
        """The subset of pydantic's model_dump the commands use."""
        data = {k: v for k, v in self.__dict__.items() if not exclude or k not in exclude}
        return _plain(data, mode == "json", exclude_none)


def _plain(value: Any, as_json: bool, exclude_none: bool) -> Any:
    if isinstance(value, Lite):
        value = value.__dict__
    if isinstance(value, dict):
        return {
            k: _plain(v, as_json, exclude_none) for k, v in value.items() if not (exclude_none and v is None)
        }
    if isinstance(value, list | tuple):
        return [_plain(v, as_json, exclude_none) for v in value]
    if as_json and isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


class LiteOffer(Lite, OfferMethods):
    pass


class LiteApiPrice(Lite, ApiPriceMethods):
    pass


class LiteMeasurement(Lite, MeasurementMethods):
    pass


ROW_CLASSES: dict[str, type[Lite]] = {
    "offers": LiteOffer,
    "api": LiteApiPrice,
    "measurements": LiteMeasurement,
}


def shape_of(model: Any) -> dict[str, Any]:
    """Which fields of a pydantic model hold nested models (recursively): how to wrap them back."""
    import typing

    from pydantic import BaseModel

    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        candidates = [field.annotation, *typing.get_args(field.annotation)]
        for arg in list(candidates):
            candidates.extend(typing.get_args(arg))
        nested = next((a for a in candidates if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if nested is not None:
            is_map = any(typing.get_origin(a) is dict for a in candidates)
            out[name] = {"__values__": shape_of(nested)} if is_map else shape_of(nested)
    return out


def save(kind: str, fingerprint: str, rows: dict[Hashable, Any], origin: dict[Hashable, Any],
         files: list[Path], row_type: Any) -> None:  # fmt: skip
    """Keep a validated kind for the next command (best effort: a read-only home only costs speed)."""
    payload = {
        "rows": [(k, r.model_dump()) for k, r in rows.items()],
        "origin": origin,
        "files": [str(f) for f in files],
        "shape": shape_of(row_type),
    }
    path = cache_dir() / f"catalog-{kind}-{fingerprint}.pickle"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(tmp, path)
    except OSError:
        return


def load(kind: str, fingerprint: str) -> tuple[dict[Hashable, Any], dict[Hashable, Any], list[Path]] | None:
    path = cache_dir() / f"catalog-{kind}-{fingerprint}.pickle"
    try:
        payload = pickle.loads(path.read_bytes())  # noqa: S301 - the user's own cache, written above
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError):
        return None
    cls = ROW_CLASSES.get(kind, Lite)
    shape = payload["shape"]
    rows = {k: cls(d, shape) for k, d in payload["rows"]}
    return rows, payload["origin"], [Path(f) for f in payload["files"]]
