"""Deterministic scorers: an output and the case's `expected` -> a score in [0, 1] and what was seen.

Outputs are compared after trimming surrounding whitespace; options say how much more to forgive.
The LLM judge (`judge`) is in judge.py: it needs a model, these do not.

| type     | expected                 | options                             | score                    |
|----------|--------------------------|-------------------------------------|--------------------------|
| exact    | a string (or number)     | ignore_case, normalize_whitespace   | 1 if equal               |
| contains | a string or list of them | ignore_case                         | share of them found      |
| regex    | a pattern                | ignore_case, full (whole output)    | 1 if it matches          |
| json     | optional: the value      | schema (a JSON Schema)              | 1 if it parses (and fits)|
| numeric  | a number                 | abs_tol, rel_tol (default abs 1e-6) | 1 if the last number is  |
|          |                          |                                     | within tolerance         |
| judge    | optional: a reference    | rubric                              | the judge's 0-1 score    |
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from planner.errors import close_matches

SCORERS = ("exact", "contains", "regex", "json", "numeric", "judge")
OPTIONS = {
    "exact": {"ignore_case", "normalize_whitespace"},
    "contains": {"ignore_case"},
    "regex": {"ignore_case", "full"},
    "json": {"schema"},
    "numeric": {"abs_tol", "rel_tol"},
    "judge": {"rubric"},
}
NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+")


@dataclass(frozen=True)
class Score:
    value: float
    detail: str


def check_scorer(spec: dict[str, Any], expected: Any) -> None:
    """Raise ValueError (what is wrong, how to fix) for a scorer the case cannot use."""
    kind = spec["type"]
    if kind not in SCORERS:
        hint = close_matches(kind, SCORERS)
        raise ValueError(
            f"unknown scorer {kind!r}"
            + (f"; did you mean {hint[0]!r}?" if hint else f"; use one of {SCORERS}")
        )
    for option in spec:
        if option != "type" and option not in OPTIONS[kind]:
            allowed = ", ".join(sorted(OPTIONS[kind])) or "none"
            raise ValueError(f"scorer {kind!r} has no option {option!r} (options: {allowed})")
    if kind in ("exact", "regex", "numeric", "contains") and expected is None:
        raise ValueError(f"scorer {kind!r} needs 'expected'")
    if kind == "exact" and not isinstance(expected, str | int | float):
        raise ValueError("scorer 'exact' needs 'expected' as a string or a number")
    if kind == "contains" and not (
        isinstance(expected, str)
        or (isinstance(expected, list) and expected and all(isinstance(e, str) for e in expected))
    ):
        raise ValueError("scorer 'contains' needs 'expected' as a string or a list of strings")
    if kind == "regex":
        if not isinstance(expected, str):
            raise ValueError("scorer 'regex' needs 'expected' as a pattern string")
        try:
            re.compile(expected)
        except re.error as exc:
            raise ValueError(f"'expected' is not a valid regular expression: {exc}") from None
    if kind == "numeric":
        if _as_number(expected) is None:
            raise ValueError(f"scorer 'numeric' needs a number as 'expected', got {expected!r}")
        for tol in ("abs_tol", "rel_tol"):
            value = spec.get(tol)
            if value is not None and (
                not isinstance(value, int | float) or isinstance(value, bool) or value < 0
            ):
                raise ValueError(f"{tol} must be a non-negative number, got {value!r}")
    if kind == "json" and "schema" in spec:
        if not isinstance(spec["schema"], dict):
            raise ValueError("the json scorer's 'schema' must be a JSON Schema object")
        try:
            from jsonschema import validators

            validators.validator_for(spec["schema"]).check_schema(spec["schema"])
        except ImportError:
            raise ValueError(
                "the json scorer's 'schema' needs jsonschema: pip install 'selfhost-planner[serve]'"
            ) from None
        except Exception as exc:  # noqa: BLE001 - jsonschema.SchemaError and what its checks raise
            raise ValueError(
                f"the json scorer's 'schema' is not a valid JSON Schema: {_first_line(exc)}"
            ) from None
    if kind == "judge" and "rubric" in spec and not isinstance(spec["rubric"], str):
        raise ValueError("the judge's 'rubric' must be a string")


def score(spec: dict[str, Any], output: str, expected: Any) -> Score:
    """Score a deterministic case (not `judge`)."""
    kind = spec["type"]
    text = output.strip()
    if kind == "exact":
        want, got = str(expected).strip(), text
        if spec.get("normalize_whitespace"):
            want, got = " ".join(want.split()), " ".join(got.split())
        if spec.get("ignore_case"):
            want, got = want.casefold(), got.casefold()
        return Score(1.0 if got == want else 0.0, "equal" if got == want else f"expected {_short(want)!r}")
    if kind == "contains":
        wanted = [expected] if isinstance(expected, str) else list(expected)
        hay = text.casefold() if spec.get("ignore_case") else text
        found = [w for w in wanted if (w.casefold() if spec.get("ignore_case") else w) in hay]
        missing = [w for w in wanted if w not in found]
        detail = f"found {len(found)}/{len(wanted)}" + (
            f"; missing {_short(missing[0])!r}" if missing else ""
        )
        return Score(len(found) / len(wanted), detail)
    if kind == "regex":
        flags = re.IGNORECASE if spec.get("ignore_case") else 0
        match = (re.fullmatch if spec.get("full") else re.search)(expected, text, flags)
        return Score(1.0 if match else 0.0, "matched" if match else "no match")
    if kind == "json":
        return _score_json(spec, text, expected)
    if kind == "numeric":
        return _score_numeric(spec, text, expected)
    raise ValueError(f"scorer {kind!r} is not deterministic")


def _score_json(spec: dict[str, Any], text: str, expected: Any) -> Score:
    body = _strip_fences(text)
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        return Score(0.0, f"not JSON: {exc.msg} at column {exc.colno}")
    if "schema" in spec:
        from jsonschema import validators

        validator = validators.validator_for(spec["schema"])(spec["schema"])
        error = next(iter(validator.iter_errors(value)), None)
        if error is not None:
            path = "/".join(str(p) for p in error.absolute_path) or "(root)"
            return Score(0.0, f"schema: {path}: {_short(error.message)}")
    if expected is not None and value != expected:
        return Score(0.0, "valid JSON, but not the expected value")
    return Score(1.0, "valid JSON" + (" matching the schema" if "schema" in spec else ""))


def _score_numeric(spec: dict[str, Any], text: str, expected: Any) -> Score:
    want = _as_number(expected)
    assert want is not None  # checked when the case was read
    numbers = NUMBER.findall(text)
    if not numbers:
        return Score(0.0, "no number in the output")
    got = float(numbers[-1].replace(",", ""))  # the last number: "... so the answer is 42"
    abs_tol = float(spec.get("abs_tol", 1e-6 if "rel_tol" not in spec else 0.0))
    rel_tol = float(spec.get("rel_tol", 0.0))
    ok = math.isclose(got, want, rel_tol=rel_tol, abs_tol=abs_tol)
    return Score(1.0 if ok else 0.0, f"got {got:g}, expected {want:g}")


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            return float(value.replace(",", "").strip())
        except ValueError:
            return None
    return None


def _strip_fences(text: str) -> str:
    """```json ... ``` around a JSON answer is how chat models write it: accept it."""
    m = re.fullmatch(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?```", text.strip(), re.DOTALL)
    return m.group(1).strip() if m else text.strip()


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
