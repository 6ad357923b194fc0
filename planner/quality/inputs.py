"""What planner route reads: quality records, the evaluated case file's texts, a traffic sample."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.errors import PlannerError, UnknownIdError


def read_quality_files(paths: tuple[Path, ...]) -> list[Any]:
    from pydantic import ValidationError

    from planner.records import QualityRecord

    out = []
    for path in paths:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise PlannerError(f"cannot read --quality {path}: {exc.strerror or exc}") from None
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                out.append(QualityRecord.model_validate_json(line))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first.get("loc", ()))
                raise PlannerError(
                    f"{path}:{n}: not a QualityRecord ({where}: {first.get('msg')}); "
                    "write it with gpu-bench eval"
                ) from None
    return out


def pick(records: list[Any], name: str, cases_sha: str | None) -> Any:
    found = [r for r in records if name in (r.model, r.id)]
    if cases_sha is not None:
        found = [r for r in found if r.cases_sha256 == cases_sha] or found
    if not found:
        raise UnknownIdError(
            "evaluated model", name, {r.model for r in records}, "models in the quality records"
        )
    return max(found, key=lambda r: r.measured_at)


@dataclass(frozen=True)
class CaseFile:
    sha256: str
    texts: dict[str, str]  # case id -> the user's words


def read_case_texts(path: Path) -> CaseFile:
    """Ids and prompt texts of a case file (as gpu-bench eval reads them: id default line-N)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PlannerError(f"cannot read --cases {path}: {exc.strerror or exc}") from None
    texts = {}
    for n, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            raise PlannerError(f"{path}:{n}: not JSON; check it with gpu-bench eval") from None
        texts[case_id(obj, n)] = prompt_text(obj.get("input"))
    return CaseFile(hashlib.sha256(data).hexdigest(), texts)


def read_queries(path: Path) -> list[str]:
    """A traffic sample: JSONL with `input` (or `text`/`prompt`/`messages`), or one query per line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise PlannerError(f"cannot read --queries {path}: {exc.strerror or exc}") from None
    out = []
    for line in lines:
        if not line.strip():
            continue
        obj: Any = None
        if line.lstrip().startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                obj = None
        if isinstance(obj, dict):
            value = next((obj[k] for k in ("input", "text", "prompt", "messages") if k in obj), None)
            out.append(prompt_text(value))
        else:
            out.append(line)
    if not out:
        raise PlannerError(f"--queries {path} holds no queries")
    return out


def case_id(obj: dict[str, Any], lineno: int) -> str:
    """A case's id: its own, or `line-N` (what gpu-bench eval records and planner route matches)."""
    return str(obj.get("id", f"line-{lineno}"))


def prompt_text(value: Any) -> str:
    """The user's words of an input: the prompt, or the last user message of a chat."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        users = [m.get("content", "") for m in value if isinstance(m, dict) and m.get("role") == "user"]
        return (
            users[-1] if users else " ".join(str(m.get("content", "")) for m in value if isinstance(m, dict))
        )
    return ""


def parse_mix(text: str) -> dict[str, float]:
    """`simple=0.7,complex=0.3` -> {class: share} as given (checked against the classes by mix_shares)."""
    mix = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            share = float(value)
        except ValueError:
            share = -1.0
        if not sep or not name.strip() or not share >= 0 or share == float("inf"):
            raise PlannerError(f"--mix {text!r}: expected CLASS=SHARE,..., e.g. simple=0.7,complex=0.3")
        if name.strip() in mix:
            raise PlannerError(f"--mix {text!r}: class {name.strip()!r} is given twice")
        mix[name.strip()] = share
    if sum(mix.values()) <= 0:
        raise PlannerError(f"--mix {text!r}: the shares must not all be zero")
    return mix


MIX_TOLERANCE = 1e-6


def mix_shares(mix: dict[str, float], classes: list[str], text: str) -> tuple[dict[str, float], list[str]]:
    """Traffic shares per class from --mix: shares that sum to 1 (a class left out gets none, and
    the output says so), or a weight for every class (normalised, and said). -> (shares, notes)."""
    unknown = sorted(set(mix) - set(classes))
    if unknown:
        raise PlannerError(f"--mix names unknown class(es) {unknown}; the classes: {sorted(classes)}")
    total = sum(mix.values())
    missing = [c for c in classes if c not in mix]
    if abs(total - 1.0) <= MIX_TOLERANCE:
        notes = [f"--mix {text}: no traffic for {', '.join(missing)}"] if missing else []
        return {c: mix.get(c, 0.0) for c in classes}, notes
    if not missing:
        shares = {c: mix[c] / total for c in classes}
        shown = ", ".join(f"{c} {v:.1%}" for c, v in shares.items())
        return shares, [f"--mix {text}: weights (sum {total:g}) taken as shares: {shown}"]
    example = ",".join(f"{c}={1 / len(classes):.2g}" for c in classes)
    raise PlannerError(
        f"--mix {text!r}: the shares sum to {total:g}, not 1, and it leaves out {', '.join(missing)}: "
        f"give shares that sum to 1 (e.g. {example}), or a weight for every class ({', '.join(classes)})"
    )
