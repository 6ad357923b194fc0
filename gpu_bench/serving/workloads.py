"""Request workloads: random prompts of an exact token length, a JSONL of prompts, or ShareGPT.

Every load level (and capacity probe) gets requests of its own, drawn with a seed of its own, so
that no prompt is sent twice: a server with prefix caching (vLLM's is on by default) would answer a
repeat from its cache and understate TTFT. Random prompts are new random tokens; prompts from a
file are drawn afresh for each level and each starts with a unique tag ("[1f0c9a3e] ...": a few
tokens), since a file may hold fewer prompts than a run sends.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from gpu_bench.serving.client import RequestSpec
from planner.errors import PlannerError


def load_tokenizer(name_or_path: str | None) -> Any:
    """A local tokenizer (a directory); None when not given. Never downloads."""
    if not name_or_path:
        return None
    path = Path(name_or_path)
    if not path.is_dir():
        raise PlannerError(f"--tokenizer {name_or_path}: not a local directory (nothing is downloaded)")
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        why = (str(exc).strip() or type(exc).__name__).splitlines()[0][:200]
        raise PlannerError(
            f"--tokenizer {name_or_path}: no tokenizer loads from it ({why}); give the folder of a "
            "saved tokenizer (tokenizer.json or tokenizer_config.json)"
        ) from None


def random_prompt(tokenizer: Any, length: int, rng: random.Random) -> str:
    """Text that the tokenizer encodes to exactly `length` tokens (re-encoded and trimmed to check)."""
    vocab = tokenizer.vocab_size
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    ids = [i for i in (rng.randrange(vocab) for _ in range(length * 2)) if i not in special][: length + 8]
    text = tokenizer.decode(ids, skip_special_tokens=True)
    for _ in range(8):
        enc = tokenizer.encode(text, add_special_tokens=False)
        if len(enc) == length:
            return text
        if len(enc) > length:
            text = tokenizer.decode(enc[:length], skip_special_tokens=True)
        else:
            text = text + tokenizer.decode(ids[: length - len(enc)], skip_special_tokens=True)
    return tokenizer.decode(
        tokenizer.encode(text, add_special_tokens=False)[:length], skip_special_tokens=True
    )


def random_requests(
    n: int, input_len: int, output_len: int, tokenizer: Any, seed: int = 0
) -> list[RequestSpec]:
    """Random prompts sized with the model's tokenizer; without one, words (about a token each)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        if tokenizer is not None:
            prompt = random_prompt(tokenizer, input_len, rng)
        else:
            prompt = " ".join(rng.choice(PROMPT_WORDS) for _ in range(input_len))
        out.append(RequestSpec(prompt=prompt, max_tokens=output_len, input_tokens=input_len))
    return out


PROMPT_WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
]


class Workload:
    """What to send: `requests(n, seed)` gives n requests, different for every seed."""

    def __init__(self, dataset: str, tokenizer: Any, input_len: int, output_len: int):
        kind, _, path = dataset.partition(":")
        self.tokenizer, self.input_len, self.output_len = tokenizer, input_len, output_len
        self.pool: list[RequestSpec] = []
        self.sized_by: str | None = None  # random prompts: by the tokenizer, or by words without one
        if kind == "random":
            self.name = "random"
            self.sized_by = "tokenizer" if tokenizer is not None else "words"
        elif kind == "jsonl" and path:
            self.pool, self.name = (
                jsonl_requests(Path(path), output_len, tokenizer),
                f"jsonl:{Path(path).name}",
            )
        elif kind == "sharegpt" and path:
            self.pool, self.name = sharegpt_requests(Path(path), tokenizer), f"sharegpt:{Path(path).name}"
        else:
            raise PlannerError(f"--dataset {dataset!r}: use random, jsonl:PATH or sharegpt:PATH")

    def requests(self, n: int, seed: int) -> list[RequestSpec]:
        if not self.pool:
            return random_requests(n, self.input_len, self.output_len, self.tokenizer, seed)
        rng = random.Random(seed)
        order = list(range(len(self.pool)))
        out = []
        while len(out) < n:
            rng.shuffle(order)
            out.extend(self.pool[i] for i in order[: n - len(out)])
        return [tagged(spec, f"[{rng.getrandbits(32):08x}]", self.tokenizer) for spec in out]


def tagged(spec: RequestSpec, tag: str, tokenizer: Any) -> RequestSpec:
    """The request with `tag` at the very start of its prompt (its first message, for chat)."""
    if isinstance(spec.prompt, str):
        prompt: str | list[dict[str, str]] = f"{tag} {spec.prompt}"
    else:
        first = {**spec.prompt[0], "content": f"{tag} {spec.prompt[0].get('content', '')}"}
        prompt = [first, *spec.prompt[1:]]
    return RequestSpec(prompt, spec.max_tokens, _count(prompt, tokenizer))


def jsonl_requests(path: Path, output_len: int, tokenizer: Any) -> list[RequestSpec]:
    """One prompt per line: {"prompt": "..."} or {"messages": [...]}, optional "max_tokens"."""
    rows = []
    for lineno, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PlannerError(f"{path}:{lineno}: not JSON ({exc.msg})") from None
        prompt = obj.get("messages") or obj.get("prompt")
        if not prompt:
            raise PlannerError(f"{path}:{lineno}: expected a 'prompt' or 'messages' field")
        rows.append(RequestSpec(prompt, int(obj.get("max_tokens", output_len)), _count(prompt, tokenizer)))
    if not rows:
        raise PlannerError(f"{path}: no prompts")
    return rows


def sharegpt_requests(path: Path, tokenizer: Any, max_output: int = 1024) -> list[RequestSpec]:
    """ShareGPT conversations: the first human turn is the prompt, the reply's length the output length."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise PlannerError(f"{path}: cannot read a ShareGPT JSON file ({exc})") from None
    pairs = []
    for conv in data if isinstance(data, list) else []:
        turns = conv.get("conversations") or conv.get("conversation") or []
        if len(turns) >= 2 and turns[0].get("value") and turns[1].get("value"):
            reply = turns[1]["value"]
            out_len = _count(reply, tokenizer) or max(1, len(reply.split()))
            pairs.append(
                RequestSpec(turns[0]["value"], min(max_output, out_len), _count(turns[0]["value"], tokenizer))
            )
    if not pairs:
        raise PlannerError(f"{path}: no conversations with a prompt and a reply (ShareGPT format)")
    return pairs


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise PlannerError(f"{path}: cannot read ({exc.strerror})") from None


def _count(prompt: Any, tokenizer: Any) -> int | None:
    if tokenizer is None:
        return None
    text = prompt if isinstance(prompt, str) else " ".join(m.get("content", "") for m in prompt)
    return len(tokenizer.encode(text, add_special_tokens=False))
