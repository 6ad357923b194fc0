"""Label queries `simple` or `complex` with a model (any OpenAI-compatible endpoint) as the router.

Only when asked for (`planner route --classifier model ...`): the one place the planner talks to
a server. Labels, token usage and latency are cached per (endpoint, model, prompt) and query
text under the user's cache directory, so a second `planner route` costs nothing. The usage is
what the router itself costs per request; a reply that names no class (or both) is `unlabeled`
and such queries go to the large tier (the safe side), counted in the output.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from planner.errors import PlannerError

CLASSES = ("simple", "complex")
PROMPT = """Classify the request below for routing. Reply with exactly one word: simple or complex.
simple: short factual questions, lookups, rewording, extraction, classification, small talk.
complex: multi-step reasoning, math, code, analysis, planning, long or multi-part requests.

Request:
<<<
{text}
>>>"""


@dataclass(frozen=True)
class Label:
    label: str  # simple | complex | unlabeled
    input_tokens: int | None
    output_tokens: int | None
    latency_ms: float | None
    reply: str


def parse_label(reply: str) -> str:
    words = {w.strip(".,:;!\"'`*()[]").lower() for w in reply.split()}
    found = [c for c in CLASSES if c in words]
    return found[0] if len(found) == 1 else "unlabeled"


class ModelClassifier:
    def __init__(self, endpoint: str, model: str, api_key_env: str | None, concurrency: int = 4,
                 timeout_s: float = 120.0, max_retries: int = 6, cache_dir: Path | None = None):  # fmt: skip
        self.url = endpoint.rstrip("/") + "/chat/completions"
        self.model = model
        self.key = None
        if api_key_env:
            self.key = os.environ.get(api_key_env)
            if not self.key:
                raise PlannerError(f"--classifier-api-key-env {api_key_env} is not set; export it first")
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        from planner.catalog.snapshot import cache_dir as default_cache

        ident = json.dumps([self.url, model, PROMPT]).encode()
        self.cache = (cache_dir or default_cache() / "route-labels") / (
            hashlib.sha256(ident).hexdigest()[:20] + ".jsonl"
        )

    def _cached(self) -> dict[str, Label]:
        out: dict[str, Label] = {}
        if self.cache.exists():
            for line in self.cache.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    key = row.pop("key")
                    out[key] = Label(**row)
                except (json.JSONDecodeError, TypeError, KeyError):
                    continue
        return out

    def label_all(self, texts: list[str]) -> list[Label]:
        from planner.catalog.files import append_jsonl

        cached = self._cached()
        keys = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
        todo = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in cached}.items())
        if todo:
            with ThreadPoolExecutor(self.concurrency) as pool:
                for (key, _), label in zip(todo, pool.map(lambda kt: self._ask(kt[1]), todo), strict=True):
                    cached[key] = label
                    if label.latency_ms is not None:  # answered (a failed request is asked again next time)
                        append_jsonl(self.cache, [{"key": key, **label.__dict__}])
        return [cached[k] for k in keys]

    def _ask(self, text: str) -> Label:
        body = json.dumps(
            {
                "model": self.model,
                "messages": [{"role": "user", "content": PROMPT.format(text=text)}],
                "max_tokens": 4,
                "temperature": 0.0,
            }
        ).encode()
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")  # noqa: S310
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
                    data = json.loads(response.read())
                latency = (time.perf_counter() - started) * 1000
                reply = (data.get("choices") or [{}])[0].get("message", {}).get("content") or ""
                usage = data.get("usage") or {}
                return Label(
                    parse_label(reply),
                    usage.get("prompt_tokens"),
                    usage.get("completion_tokens"),
                    round(latency, 3),
                    reply[:200],
                )
            except urllib.error.HTTPError as exc:
                if exc.code in (401, 403, 404):
                    raise PlannerError(
                        f"the classifier {self.model} at {self.url} answered HTTP {exc.code}; "
                        "check --classifier-endpoint, --classifier-model and --classifier-api-key-env"
                    ) from None
                if exc.code not in (429, 500, 502, 503, 504) or attempt == self.max_retries:
                    return Label("unlabeled", None, None, None, f"HTTP {exc.code}")
                wait = exc.headers.get("Retry-After")
                try:
                    delay = float(wait) if wait else min(30.0, 0.5 * 2**attempt)
                except ValueError:
                    delay = min(30.0, 0.5 * 2**attempt)
                time.sleep(delay)
            except (json.JSONDecodeError, AttributeError) as exc:  # a reply that is not a chat completion
                return Label("unlabeled", None, None, None, f"unreadable reply: {exc}"[:200])
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                if isinstance(getattr(exc, "reason", None), ConnectionRefusedError):
                    raise PlannerError(
                        f"cannot reach the classifier at {self.url} (connection refused); is it running?"
                    ) from None
                if attempt == self.max_retries:
                    return Label("unlabeled", None, None, None, f"{type(exc).__name__}: {exc}"[:200])
                time.sleep(min(30.0, 0.5 * 2**attempt))
        return Label("unlabeled", None, None, None, "no answer")
