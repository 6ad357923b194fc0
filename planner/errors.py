"""User-facing errors: what went wrong, where, and how to fix it. The CLI turns them into exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PlannerError(Exception):
    """An error the user can fix (bad input, bad catalog row, unknown id). Never a traceback."""

    exit_code = 2


def close_matches(word: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """Up to n choices that look like word, best first (difflib, as SkyPilot's catalog does)."""
    choices = list(choices)
    word_l = word.lower()
    found = difflib.get_close_matches(word_l, choices, n=n, cutoff=0.6)
    # Also offer ids that contain what was typed ("70b" -> every 70B model), or all of its parts
    # ("llama-8b" -> "llama-3.1-8b-instruct").
    parts = [p for p in word_l.replace("_", "-").replace("/", "-").split("-") if p]
    for choice in choices:
        if len(found) >= n:
            break
        if choice in found or len(word_l) < 3:
            continue
        if word_l in choice or (len(parts) > 1 and all(p in choice for p in parts)):
            found.append(choice)
    return found


class UnknownIdError(PlannerError):
    def __init__(self, kind: str, wanted: str, known: Iterable[str], hint: str | None = None):
        known = sorted(set(known))
        matches = close_matches(wanted, known)
        msg = f"unknown {kind} {wanted!r}"
        if matches:
            msg += f"; did you mean {', '.join(repr(m) for m in matches)}?"
        else:
            msg += f"; known: {', '.join(known[:12])}{' ...' if len(known) > 12 else ''}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)
        self.kind = kind
        self.wanted = wanted
        self.matches = matches
