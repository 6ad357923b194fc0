"""API model names: which dated versions a name has, and which row a name the user typed denotes.

Kept free of pydantic and genai-prices, so resolving a name costs nothing at start-up.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

_DATE = r"(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4})"
DATE_SUFFIX = rf"(?:-|@)({_DATE})(?:-v\d+(?::\d+)?)?"


def _spelling(name: str) -> list[str]:
    """claude-opus-4-5, claude-opus-4.5 and claude-4.5-opus are one name spelled three ways."""
    return sorted(t for t in re.split(r"[-.@_/]", name.lower()) if t and t != "latest")


def version_bases(model: str, prefixes: Sequence[str] = ()) -> list[str]:
    """The model id, then the starts_with prefixes that spell the same name (rule order kept).

    A prefix that names something else (deepseek-reasoner's 'deepseek-r1') is left out: a dated
    name under it says nothing about which version the model name points to.
    """
    bases = [model.lower()]
    for prefix in prefixes:
        base = prefix.lower().rstrip("-@.")
        if base not in bases and _spelling(base) == _spelling(model):
            bases.append(base)
    return bases


def dated_versions(model: str, names: Iterable[str], prefixes: Sequence[str] = ()) -> list[str]:
    """Names that are `model` (or a spelling of it) plus a release date:
    gpt-4o-mini -> gpt-4o-mini-2024-07-18; claude-3-haiku -> claude-3-haiku-20240307."""
    bases = "|".join(map(re.escape, version_bases(model, prefixes)))
    pattern = re.compile(f"(?:{bases}){DATE_SUFFIX}$")
    return sorted({n for n in names if pattern.match(n.lower())})


def pinned_version(model: str, names: Iterable[str], prefixes: Sequence[str] = ()) -> str | None:
    """The one dated version the names know, spelled as the model id where the data spells it so.

    Several spellings of one date are one version; two dates are two versions, and no pin.
    """
    bases = version_bases(model, prefixes)
    found: dict[str, tuple[int, str]] = {}
    for name in dated_versions(model, names, prefixes):
        lowered = name.lower()
        base = max((b for b in bases if lowered.startswith(b)), key=len)
        date = re.match(DATE_SUFFIX, lowered[len(base) :])
        found[name] = (bases.index(base), date.group(1) if date else "")
    if len({date for _, date in found.values()}) != 1:
        return None
    return min(found, key=lambda n: (found[n][0], n))


def matches_rules(price: Any, lowered: str) -> int:
    """How specifically a row's genai-prices rules accept a lower-cased name: the length of the
    longest matching prefix, a regex's length, or 0 when no rule accepts it."""
    best = 0
    for prefix in getattr(price, "name_prefixes", None) or ():
        if lowered.startswith(prefix.lower()):
            best = max(best, len(prefix))
    for pattern in getattr(price, "name_patterns", None) or ():
        try:
            if re.search(pattern, lowered, flags=re.IGNORECASE):  # as genai-prices' ClauseRegex
                best = max(best, len(pattern))
        except re.error:
            continue
    return best
