"""The LLM judge: any OpenAI-compatible model grades an answer against a rubric with a 0-1 score.

The judge is asked for one JSON object, `{"score": <0..1>, "reason": "..."}`; its reply is read
robustly but strictly (a JSON object anywhere in it, code fences; a labelled "Score: 0.8",
"score = 8/10", "Score: 80%"; a reply that is only "0.8", "8/10" or "80%"). Unlabelled numbers in
prose are not read as the score. A reply that cannot be read is asked again with the parse error
stated; after the last retry the case is recorded as *unscored* with the judge's reply quoted:
never silently as 0 or 1.
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
_NUM = r"(-?\d+(?:\.\d+)?)"
_SCALE_TAIL = r"\s*(?:(%)|(?:/|out\s+of)\s*(\d+(?:\.\d+)?))?"
# "Score: 0.8", "**Rating:** 8/10", "grade = 80%", "Score (0-1): 0.8": a label, ':' or '=', the number.
_LABELLED = re.compile(
    r"\b(?:score|rating|grade)\b(?:\s*\([^()]{0,20}\))?[\s\"'*_]*[:=][\s\"'*_]*" + _NUM + _SCALE_TAIL,
    re.IGNORECASE,
)
# The whole reply is the score: "0.8", "8/10", "80%", "4 out of 5" (quotes, fences, a full stop allowed).
_BARE = re.compile(r"\s*" + _NUM + _SCALE_TAIL + r"\s*", re.IGNORECASE)
_WRAPPING = "`*_\"' \n\t"


def parse_verdict(text: str) -> Verdict:
    """The judge's 0-1 score from its reply, or score=None and what was wrong with it.

    Read, in this order: a JSON object with "score" (or "rating", "grade"); a labelled score
    ("Score: 0.8", "rating = 8/10", "Score: 80%"); a reply that is only the score ("0.8", "8/10",
    "80%"). Numbers in prose without a label ("the answer is 100% correct", "2 of 3 steps") are
    never read as the score: such a reply is unreadable and the judge is asked again.
    """
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
        found = [(_scaled(m), "") for m in _LABELLED.finditer(text)]
    if not found:
        bare = _strip_wrapping(text)
        if m := _BARE.fullmatch(bare):
            found = [(_scaled(m), "")]
    if not found:
        return Verdict(
            None,
            f'no score in the reply (expected {{"score": 0.8}}, "Score: 0.8" or only the number): '
            f"{_quote(text)}",
        )
    values = {round(v, 6) for v, _ in found}
    if len(values) > 1:
        return Verdict(
            None, f"several different scores in the reply ({', '.join(f'{v:g}' for v in sorted(values))})"
        )
    value, reason = found[0]
    if not 0.0 <= value <= 1.0:
        return Verdict(None, f"score {value:g} is outside 0..1")
    return Verdict(value, reason or _quote(text))


def _scaled(m: re.Match[str]) -> float:
    """A matched number with its scale: '8' '/' '10' -> 0.8, '80' '%' -> 0.8, '0.8' -> 0.8."""
    value = float(m.group(1))
    if m.group(2):
        return value / 100
    if m.group(3) is not None:
        scale = float(m.group(3))
        return value / scale if scale else -1.0
    return value


def _strip_wrapping(text: str) -> str:
    """'`0.8`', '**0.8**', '"0.8".', a fenced 0.8 -> '0.8'."""
    text = re.sub(r"^```\w*\s*|\s*```$", "", text.strip())
    text = text.strip(_WRAPPING)
    if text.endswith("."):
        text = text[:-1]
    return text.strip(_WRAPPING)


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
