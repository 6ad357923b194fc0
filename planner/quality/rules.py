"""A rule-based query classifier: a complexity score from length, reasoning words and code markers.

Each rule that matches a query adds its weight to the query's score; a query whose score reaches
the threshold is `complex` (routed to the large tier), else `simple`. The rules are data: the
defaults below, or a YAML file (`--rules FILE`) of the same shape:

    threshold: 2
    rules:
      - name: long
        min_words: 120
        weight: 1
      - name: reasoning
        keywords: [why, explain, prove, derive, compare, step by step]
        weight: 1
      - name: code
        patterns: ['```', '\\bdef \\w+\\(', 'SELECT .* FROM']
        weight: 2

`keywords` match whole words, case-insensitively; `patterns` are regular expressions (case-
insensitive); `min_words` matches queries at least that long. A rule may combine them (any match).
Running the rules costs nothing per request that is worth counting (microseconds in the caller).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.errors import PlannerError

DEFAULT_RULES: dict[str, Any] = {
    "threshold": 2,
    "rules": [
        {"name": "long", "min_words": 120, "weight": 1},
        {
            "name": "reasoning",
            "keywords": [
                "why", "explain", "prove", "derive", "compare", "analyze", "analyse", "evaluate",
                "design", "trade-off", "tradeoff", "step by step", "plan", "justify", "debug",
            ],
            "weight": 1,
        },
        {
            "name": "code",
            "patterns": [
                "```", r"\bdef \w+\(", r"\bclass \w+", r"\bfunction\b", r"\bSELECT\b.*\bFROM\b",
                r"#include", r"=>", r"\bstack trace\b", r"Traceback \(most recent call last\)",
            ],
            "weight": 2,
        },
        {"name": "multi-part", "patterns": [r"(?s)(?:^|\n)\s*1[.)]\s.*\n\s*2[.)]\s"], "weight": 1},
    ],
}  # fmt: skip


@dataclass(frozen=True)
class Rule:
    name: str
    weight: float
    keywords: tuple[re.Pattern[str], ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()
    min_words: int | None = None

    def matches(self, text: str) -> bool:
        if self.min_words is not None and len(text.split()) >= self.min_words:
            return True
        return any(p.search(text) for p in (*self.keywords, *self.patterns))


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    threshold: float
    source: str  # "built-in rules" or the file

    def score(self, text: str) -> float:
        return sum(r.weight for r in self.rules if r.matches(text))

    def matched(self, text: str) -> list[str]:
        return [r.name for r in self.rules if r.matches(text)]

    def label(self, text: str, threshold: float | None = None) -> str:
        return (
            "complex"
            if self.score(text) >= (self.threshold if threshold is None else threshold)
            else "simple"
        )


def build(data: Any, source: str) -> RuleSet:
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list) or not data["rules"]:
        raise PlannerError(f"{source}: expected 'rules:' with a list of rules (and optionally 'threshold:')")
    unknown = set(data) - {"rules", "threshold"}
    if unknown:
        raise PlannerError(f"{source}: unknown key(s) {sorted(unknown)}; use 'rules' and 'threshold'")
    rules = []
    for i, raw in enumerate(data["rules"]):
        where = f"{source}: rules[{i}]"
        if not isinstance(raw, dict):
            raise PlannerError(
                f"{where}: a rule is a mapping with name, weight and keywords/patterns/min_words"
            )
        extra = set(raw) - {"name", "weight", "keywords", "patterns", "min_words"}
        if extra:
            raise PlannerError(f"{where}: unknown key(s) {sorted(extra)}")
        weight = raw.get("weight", 1)
        if not isinstance(weight, int | float) or isinstance(weight, bool):
            raise PlannerError(f"{where}: weight must be a number, got {weight!r}")
        keywords = raw.get("keywords", [])
        patterns = raw.get("patterns", [])
        min_words = raw.get("min_words")
        if not isinstance(keywords, list) or not all(isinstance(k, str) and k for k in keywords):
            raise PlannerError(f"{where}: keywords must be a list of words")
        if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
            raise PlannerError(f"{where}: patterns must be a list of regular expressions")
        if min_words is not None and (not isinstance(min_words, int) or min_words < 1):
            raise PlannerError(f"{where}: min_words must be a positive integer")
        if not keywords and not patterns and min_words is None:
            raise PlannerError(f"{where}: give keywords, patterns or min_words")
        compiled = []
        for p in patterns:
            try:
                compiled.append(re.compile(p, re.IGNORECASE))
            except re.error as exc:
                raise PlannerError(
                    f"{where}: pattern {p!r} is not a valid regular expression: {exc}"
                ) from None
        rules.append(
            Rule(
                name=str(raw.get("name", f"rule-{i}")),
                weight=float(weight),
                keywords=tuple(re.compile(rf"\b{re.escape(k)}\b", re.IGNORECASE) for k in keywords),
                patterns=tuple(compiled),
                min_words=min_words,
            )
        )
    threshold = data.get("threshold", 1)
    if not isinstance(threshold, int | float) or isinstance(threshold, bool):
        raise PlannerError(f"{source}: threshold must be a number, got {threshold!r}")
    return RuleSet(tuple(rules), float(threshold), source)


def load(path: Path | None) -> RuleSet:
    if path is None:
        return build(DEFAULT_RULES, "built-in rules")
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlannerError(f"cannot read --rules {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise PlannerError(yaml_problem(path, exc)) from None
    return build(data, str(path))


def yaml_problem(path: Path, exc: Exception) -> str:
    """One line, FILE:LINE: what is wrong (PyYAML's own message spans several, with a caret drawing)."""
    mark = getattr(exc, "problem_mark", None)
    problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
    if mark is None:
        return f"{path}: not valid YAML: {problem}"
    text = f"{path}:{mark.line + 1}: not valid YAML: {problem} (column {mark.column + 1})"
    context, started = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and started is not None:
        text += f", {' '.join(str(context).split())} that starts on line {started.line + 1}"
    return text
