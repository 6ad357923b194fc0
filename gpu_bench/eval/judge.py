"""The LLM judge: any OpenAI-compatible model grades an answer against a rubric with a 0-1 score.

The judge is asked for one JSON object, `{"score": <0..1>, "reason": "..."}`; its reply is read
robustly (a JSON object anywhere in it, code fences, "score: 0.8", "8/10", "80%"). A reply that
cannot be read is asked again with the parse error stated; after the last retry the case is
recorded as *unscored* with the judge's reply quoted: never silently as 0 or 1.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

DEFAULT_RUBRIC = (
    "Grade the answer for correctness and helpfulness. If a reference answer is given, an answer "
    "that agrees with it in substance deserves full marks even when worded differently; an answer "
    "that contradicts it deserves 0. Otherwise judge whether the answer fully and correctly "
    "addresses the request. Give partial credit for partially correct or incomplete answers."
)
SYSTEM = "You are a strict, consistent grader. You reply with one JSON object and nothing else."
TEMPLATE = """Rubric:
{rubric}

Request:
<<<
{request}
>>>
{reference}
Answer to grade:
<<<
{answer}
>>>

Reply with exactly one JSON object: {{"score": <a number from 0 to 1>, "reason": "<one sentence>"}}"""
RETRY = (
    "Your reply could not be read: {problem}. Reply again with only one JSON object such as "
    '{{"score": 0.7, "reason": "..."}}, where score is a number from 0 to 1.'
)


def rubric_sha256(rubric: str = DEFAULT_RUBRIC) -> str:
    return hashlib.sha256(rubric.encode()).hexdigest()


def judge_messages(
    case_messages: list[dict[str, str]], answer: str, expected: Any, rubric: str
) -> list[dict[str, str]]:
    request = (
        "\n".join(f"[{m['role']}] {m['content']}" for m in case_messages)
        if len(case_messages) > 1
        else case_messages[0]["content"]
    )
    reference = ""
    if expected is not None:
        ref = expected if isinstance(expected, str) else json.dumps(expected, ensure_ascii=False)
        reference = f"\nReference answer:\n<<<\n{ref}\n>>>\n"
    prompt = TEMPLATE.format(rubric=rubric.strip(), request=request, reference=reference, answer=answer)
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]


def retry_message(problem: str) -> dict[str, str]:
    return {"role": "user", "content": RETRY.format(problem=problem)}


@dataclass(frozen=True)
class Verdict:
    score: float | None
    reason: str  # the judge's reason, or why its reply could not be read


_SCORE_KEYS = ("score", "rating", "grade")
_SCALE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*(?:/|out of)\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
_LABELLED = re.compile(
    r"\b(?:score|rating|grade)\b[\"']?\s*[:=]\s*[\"']?(-?\d+(?:\.\d+)?)\s*(%)?", re.IGNORECASE
)
_PERCENT = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*%")


def parse_verdict(text: str) -> Verdict:
    """The judge's 0-1 score from its reply, or score=None and what was wrong with it."""
    text = text.strip()
    if not text:
        return Verdict(None, "empty reply")
    found: list[tuple[float, str]] = []
    for obj in _json_objects(text):
        for key in _SCORE_KEYS:
            if key in obj:
                value = _number(obj[key])
                if value is None:
                    return Verdict(None, f"{key!r} is not a number: {obj[key]!r}")
                found.append((value, str(obj.get("reason", obj.get("explanation", ""))).strip()))
                break
    if not found:
        for m in _LABELLED.finditer(text):
            value = float(m.group(1))
            found.append((value / 100 if m.group(2) else _after_scale(text, m), ""))
    if not found:
        for m in _SCALE.finditer(text):
            found.append((float(m.group(1)) / float(m.group(2)) if float(m.group(2)) else -1.0, ""))
    if not found:
        found = [(float(m.group(1)) / 100, "") for m in _PERCENT.finditer(text)]
    if not found:
        return Verdict(None, f"no score in the reply: {_quote(text)}")
    values = {round(v, 6) for v, _ in found}
    if len(values) > 1:
        return Verdict(
            None, f"several different scores in the reply ({', '.join(f'{v:g}' for v in sorted(values))})"
        )
    value, reason = found[0]
    if not 0.0 <= value <= 1.0:
        return Verdict(None, f"score {value:g} is outside 0..1")
    return Verdict(value, reason or _quote(text))


def _after_scale(text: str, m: re.Match[str]) -> float:
    """'score: 8/10' -> 0.8 (the labelled number followed by its scale); else the number itself."""
    rest = re.match(r"\s*(?:/|out of)\s*(\d+(?:\.\d+)?)", text[m.end() :], re.IGNORECASE)
    value = float(m.group(1))
    return value / float(rest.group(1)) if rest and float(rest.group(1)) else value


def _json_objects(text: str) -> list[dict[str, Any]]:
    """Every JSON object in the text (fenced or bare), outermost first."""
    out: list[dict[str, Any]] = []
    decoder = json.JSONDecoder()
    i = 0
    while (i := text.find("{", i)) >= 0:
        try:
            obj, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            i += 1
            continue
        if isinstance(obj, dict):
            out.append(obj)
        i = end
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:(%)|/\s*(\d+(?:\.\d+)?))?\s*", value)
        if m:
            v = float(m.group(1))
            if m.group(2):
                return v / 100
            if m.group(3) and float(m.group(3)):
                return v / float(m.group(3))
            return v
    return None


def _quote(text: str, n: int = 160) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= n else flat[: n - 3] + "...")
