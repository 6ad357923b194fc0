"""Eval cases: a JSONL file, one case a line, checked whole before anything is sent.

    {"id": "refund-1", "input": "Can I return shoes after 40 days?", "expected": "no",
     "scorer": "contains", "tags": ["simple"]}
    {"input": [{"role": "system", "content": "..."}, {"role": "user", "content": "..."}],
     "scorer": {"type": "json", "schema": {"type": "object", "required": ["city"]}}}
    {"input": "What is 17 * 23?", "expected": 391, "scorer": {"type": "numeric", "abs_tol": 0.5}}
    {"input": "Summarise ...", "scorer": {"type": "judge", "rubric": "Full marks if ..."}}

`input`: a prompt (sent as one user message) or chat messages. `expected`: what the scorer
compares with. `scorer`: a name or an object with `type` and options (see scorers.SCORERS);
without it, `exact` when the case has `expected`, else `judge`. `tags`: classes of the case
(e.g. complexity), used by per-tag summaries and `planner route`. `id`: stable name for resume
and reports (default: the line number). `max_tokens`: per-case output limit.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.errors import PlannerError, close_matches
from planner.quality.inputs import case_id, prompt_text

CASE_FIELDS = ("id", "input", "expected", "scorer", "tags", "max_tokens", "rubric", "metadata")


@dataclass(frozen=True)
class Case:
    id: str
    messages: list[dict[str, str]]
    expected: Any = None
    scorer: dict[str, Any] = field(default_factory=dict)  # {"type": ..., options}
    tags: tuple[str, ...] = ()
    max_tokens: int | None = None
    line: int = 0

    @property
    def prompt_text(self) -> str:
        """The user's words (last user message): what a router classifies."""
        return prompt_text(self.messages)


@dataclass(frozen=True)
class CaseSet:
    path: Path
    sha256: str
    cases: list[Case]

    @property
    def needs_judge(self) -> bool:
        return any(c.scorer["type"] == "judge" for c in self.cases)


def read_cases(path: Path, default_scorer: str | None = None) -> CaseSet:
    """Parse and check every line; every problem is reported at once (file:line: what, how to fix)."""
    from gpu_bench.eval.scorers import check_scorer

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PlannerError(f"cannot read the case file {path}: {exc.strerror or exc}") from None
    problems: list[str] = []
    cases: list[Case] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: not JSON ({exc.msg} at column {exc.colno}); one case per line")
            continue
        if not isinstance(obj, dict):
            problems.append(f"{where}: a case is a JSON object with at least 'input'")
            continue
        unknown = [k for k in obj if k not in CASE_FIELDS]
        for k in unknown:
            hint = close_matches(k, CASE_FIELDS)
            problems.append(
                f"{where}: unknown field {k!r}"
                + (f"; did you mean {hint[0]!r}?" if hint else f"; allowed: {', '.join(CASE_FIELDS)}")
            )
        try:
            case = _case(obj, lineno, default_scorer)
            check_scorer(case.scorer, case.expected)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if case.id in seen:
            problems.append(f"{where}: id {case.id!r} already used on line {seen[case.id]}; ids are unique")
            continue
        seen[case.id] = lineno
        cases.append(case)
    if problems:
        shown = "\n".join(f"  {p}" for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise PlannerError(f"the case file has {len(problems)} problem(s):\n{shown}{more}")
    if not cases:
        raise PlannerError(f"{path} holds no cases; write one JSON object per line with an 'input'")
    return CaseSet(path, hashlib.sha256(data).hexdigest(), cases)


def _case(obj: dict[str, Any], lineno: int, default_scorer: str | None) -> Case:
    raw_input = obj.get("input")
    if isinstance(raw_input, str):
        if not raw_input.strip():
            raise ValueError("'input' is empty")
        messages = [{"role": "user", "content": raw_input}]
    elif isinstance(raw_input, list) and raw_input:
        messages = []
        for i, m in enumerate(raw_input):
            if not (
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            ):
                raise ValueError(f"input[{i}] must be {{'role': ..., 'content': '...'}}")
            if m["role"] not in ("system", "user", "assistant"):
                raise ValueError(f"input[{i}].role {m['role']!r}: use system, user or assistant")
            messages.append({"role": m["role"], "content": m["content"]})
    else:
        raise ValueError("'input' must be a prompt string or a non-empty list of chat messages")
    raw_id = obj.get("id", "line")
    if not isinstance(raw_id, str | int) or isinstance(raw_id, bool) or not str(raw_id).strip():
        raise ValueError(f"'id' must be a non-empty string, got {raw_id!r}")
    tags = obj.get("tags", [])
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise ValueError("'tags' must be a list of strings, e.g. [\"simple\"]")
    max_tokens = obj.get("max_tokens")
    if max_tokens is not None and (
        not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1
    ):
        raise ValueError(f"'max_tokens' must be a positive integer, got {max_tokens!r}")
    scorer = obj.get("scorer")
    if scorer is None:
        scorer = default_scorer or ("exact" if "expected" in obj else "judge")
    if isinstance(scorer, str):
        scorer = {"type": scorer}
    if not isinstance(scorer, dict) or not isinstance(scorer.get("type"), str):
        raise ValueError("'scorer' must be a name (\"exact\") or an object with a 'type'")
    scorer = dict(scorer)
    if "rubric" in obj:
        if not isinstance(obj["rubric"], str):
            raise ValueError("'rubric' must be a string")
        scorer.setdefault("rubric", obj["rubric"])
    return Case(
        id=case_id(obj, lineno),
        messages=messages,
        expected=obj.get("expected"),
        scorer=scorer,
        tags=tuple(tags),
        max_tokens=max_tokens,
        line=lineno,
    )
