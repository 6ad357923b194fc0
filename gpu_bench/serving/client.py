"""An async streaming client for OpenAI-compatible servers (/v1/completions, /v1/chat/completions).

One connection pool for the run. Every content chunk is timestamped on arrival; output
tokens come from the server's `usage` (requested with stream_options.include_usage), falling back
to a local tokenizer only when the server gives none, and the result says which. Streams may end
with `data: [DONE]` (vLLM) or just close after the usage chunk (transformers serve): both end a
request. Failures are classified (HTTP status, timeout, disconnect, malformed chunk) and returned,
never raised: a run counts them and goes on. `timeout_s` bounds a whole request (connect to last byte),
not one read: a request still streaming after it is an error of type timeout.

Times are measured from when the request was due: its scheduled arrival in open-loop (rate) runs,
so that the client's own queueing is in TTFT and E2E, else the moment it was sent.

Streams over http:// (and https:// without a proxy) are read by a small HTTP/1.1 keep-alive client
on asyncio streams that de-chunks whole socket reads at once: httpx+h11 walk every HTTP chunk (one
per token) through some ten async layers and top out near 15k events/s on one core, a third of what
vLLM's own benchmark client absorbs (scripts/bench_client.py measures both). httpx serves the
URLs that go through a proxy.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from gpu_bench.serving.http import RAW_ERRORS, ConnectError, RawHttp

Api = Literal["completions", "chat"]
EXTRA_FIELDS = {"ignore_eos": True}
"""Sent so that output lengths are what was asked (min_tokens too); dropped for servers that refuse them."""


@dataclass
class RequestSpec:
    prompt: str | list[dict[str, str]]  # text for completions, messages for chat
    max_tokens: int
    input_tokens: int | None = None  # as sized by the workload (the server's usage wins when present)


@dataclass
class RequestResult:
    ok: bool
    sent_at: float  # perf_counter when the request was sent (queueing in the client included after)
    first_token_at: float | None = None
    done_at: float | None = None  # the stream ended normally
    ended_at: float | None = None  # the request ended, however (failures and cancellations too)
    chunk_times: list[float] = field(default_factory=list)  # arrival of every content chunk
    output_tokens: int | None = None
    prompt_tokens: int | None = None
    tokens_source: Literal["usage", "tokenizer", "chunks"] | None = None
    text: str = ""
    error_type: str | None = (
        None  # http_429, http_500, timeout, disconnected, malformed_chunk, cancelled, ...
    )
    error: str | None = None
    warmup: bool = False
    scheduled_at: float | None = None  # open-loop arrivals: when it was due (client lag = sent - scheduled)
    retry_after_s: float | None = None  # a 429/503's Retry-After header, in seconds
    served_model: str | None = None  # the `model` the server said answered (a pinned version for APIs)
    system_fingerprint: str | None = None

    @property
    def due_at(self) -> float:
        """When the request was due: its scheduled arrival (open loop), else when it was sent."""
        return self.sent_at if self.scheduled_at is None else self.scheduled_at

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_token_at is None else self.first_token_at - self.due_at

    @property
    def e2e_s(self) -> float | None:
        return None if self.done_at is None else self.done_at - self.due_at

    @property
    def cancelled(self) -> bool:
        return self.error_type == "cancelled"


class OpenAIClient:
    def __init__(
        self,
        base_url: str,
        model: str,
        api: Api = "completions",
        timeout_s: float = 600.0,
        first_byte_timeout_s: float | None = None,
        api_key_env: str | None = None,
        extra_body: dict[str, Any] | None = None,
        max_connections: int = 2048,
        tokenizer: Any = None,
    ):
        import httpx

        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api = api
        self.extra_body = dict(extra_body or {})
        self.send_extras = True
        self.tokenizer = tokenizer
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(api_key_env) if api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        read = first_byte_timeout_s if first_byte_timeout_s is not None else timeout_s
        self.total_timeout_s = timeout_s
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self.http = httpx.AsyncClient(
            headers=headers, timeout=httpx.Timeout(timeout_s, connect=30.0, read=read), limits=limits
        )
        self.raw = RawHttp.for_url(self.url, headers, max_connections, read, timeout_s)

    async def aclose(self) -> None:
        if self.raw is not None:
            await self.raw.aclose()
        await self.http.aclose()

    @property
    def url(self) -> str:
        return f"{self.base_url}/{'chat/completions' if self.api == 'chat' else 'completions'}"

    def body(self, spec: RequestSpec) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": spec.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": 0.0,
        }
        if self.api == "chat":
            body["messages"] = (
                spec.prompt if isinstance(spec.prompt, list) else [{"role": "user", "content": spec.prompt}]
            )
        else:
            body["prompt"] = spec.prompt if isinstance(spec.prompt, str) else spec.prompt[-1]["content"]
        if self.send_extras:
            body.update(EXTRA_FIELDS)
            body["min_tokens"] = spec.max_tokens
        body.update(self.extra_body)
        return body

    async def probe_extras(self) -> bool:
        """Does the server accept ignore_eos/min_tokens? (transformers serve refuses unknown fields.)"""
        import httpx

        body = {**self.body(RequestSpec(prompt="Hello", max_tokens=1)), "stream": False}
        try:
            if self.raw is not None:
                response = await self.raw.post(self.raw.path, json.dumps(body).encode())
                try:
                    status, text = response.status, (await response.read_all()).decode(errors="replace")
                finally:
                    response.release()
            else:
                reply = await self.http.post(self.url, json=body)
                status, text = reply.status_code, reply.text
        except (httpx.HTTPError, *RAW_ERRORS):
            return self.send_extras  # unreachable now: the run will say so
        if status in (400, 422) and any(k in text for k in ("ignore_eos", "min_tokens")):
            self.send_extras = False
        return self.send_extras

    async def send(
        self, spec: RequestSpec, warmup: bool = False, scheduled_at: float | None = None
    ) -> RequestResult:
        result = RequestResult(
            ok=False, sent_at=time.perf_counter(), warmup=warmup, scheduled_at=scheduled_at
        )
        await self.fill(spec, result)
        return result

    async def fill(self, spec: RequestSpec, result: RequestResult) -> None:
        """Stream one request into `result`: failures are classified there, never raised. A
        cancellation (the level's time is up, Ctrl-C) propagates, with `result.ended_at` set."""
        import httpx

        text_parts: list[str] = []
        try:
            async with asyncio.timeout(self.total_timeout_s):
                if self.raw is not None:
                    await self._stream_raw(spec, result, text_parts)
                else:
                    await self._stream_httpx(spec, result, text_parts)
            if result.error_type is not None:
                return
        except (httpx.TimeoutException, TimeoutError) as exc:
            result.error_type = "timeout"
            result.error = str(exc) or f"no complete response within {self.total_timeout_s:g} s"
            return
        except ConnectError as exc:
            result.error_type, result.error = "connect_error", str(exc)[:300]
            return
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            result.error_type = "connect_error" if isinstance(exc, httpx.ConnectError) else "disconnected"
            result.error = f"{type(exc).__name__}: {exc}"[:300]
            return
        except RAW_ERRORS as exc:
            result.error_type, result.error = "disconnected", f"{type(exc).__name__}: {exc}"[:300]
            return
        finally:
            result.ended_at = time.perf_counter()
        result.text = "".join(text_parts)
        if result.first_token_at is None and result.tokens_source != "usage":
            result.error_type, result.error = "no_output", "the stream ended without content or usage"
            return
        if result.output_tokens is None:
            if self.tokenizer is not None:
                result.output_tokens = len(self.tokenizer.encode(result.text, add_special_tokens=False))
                result.tokens_source = "tokenizer"
            else:
                result.output_tokens = len(result.chunk_times)
                result.tokens_source = "chunks"
        if result.prompt_tokens is None:
            result.prompt_tokens = spec.input_tokens
        result.ok = True

    async def _stream_raw(self, spec: RequestSpec, result: RequestResult, text_parts: list[str]) -> None:
        assert self.raw is not None
        response = await self.raw.post(self.raw.path, json.dumps(self.body(spec)).encode())
        try:
            if response.status != 200:
                detail = (await response.read_all()).decode(errors="replace")[:300]
                result.error_type, result.error = f"http_{response.status}", detail
                result.retry_after_s = retry_after(response.headers.get("retry-after"))
                return
            rest = b""
            while (data := await response.read_some()) is not None:
                now = time.perf_counter()  # every chunk of one socket read arrived together
                data = rest + data if rest else data
                cut = data.rfind(b"\n") + 1
                rest = data[cut:]
                for line in data[:cut].decode(errors="replace").split("\n"):
                    if line.startswith("data:") and self._event(line[5:].strip(), now, result, text_parts):
                        result.done_at = time.perf_counter()
                        if result.error_type is None:
                            await response.drain()  # to the end of the body: the connection is reused
                        return
            if rest.startswith(b"data:"):  # a last event without its line end
                self._event(
                    rest[5:].decode(errors="replace").strip(), time.perf_counter(), result, text_parts
                )
            result.done_at = time.perf_counter()
        finally:
            response.release()

    async def _stream_httpx(self, spec: RequestSpec, result: RequestResult, text_parts: list[str]) -> None:
        async with self.http.stream("POST", self.url, json=self.body(spec)) as response:
            if response.status_code != 200:
                detail = (await response.aread()).decode(errors="replace")[:300]
                result.error_type, result.error = f"http_{response.status_code}", detail
                result.retry_after_s = retry_after(response.headers.get("retry-after"))
                return
            async for line in response.aiter_lines():
                if line.startswith("data:") and self._event(
                    line[5:].strip(), time.perf_counter(), result, text_parts
                ):
                    break
        result.done_at = time.perf_counter()

    def _event(self, payload: str, now: float, result: RequestResult, text_parts: list[str]) -> bool:
        """One `data:` payload; True when the stream is over ([DONE]) or failed (result says so)."""
        if payload == "[DONE]":
            return True
        try:
            chunk = json.loads(payload)
        except json.JSONDecodeError:
            result.error_type, result.error = "malformed_chunk", payload[:200]
            return True
        if result.served_model is None and isinstance(chunk.get("model"), str):
            result.served_model = chunk["model"]
        if result.system_fingerprint is None and isinstance(chunk.get("system_fingerprint"), str):
            result.system_fingerprint = chunk["system_fingerprint"]
        content = _content(chunk, self.api)
        if content:
            if result.first_token_at is None:
                result.first_token_at = now
            result.chunk_times.append(now)
            text_parts.append(content)
        usage = chunk.get("usage")
        if isinstance(usage, dict) and usage.get("completion_tokens") is not None:
            result.output_tokens = int(usage["completion_tokens"])
            result.prompt_tokens = usage.get("prompt_tokens")
            result.tokens_source = "usage"
        if isinstance(chunk.get("error"), dict | str):
            result.error_type, result.error = "server_error", str(chunk["error"])[:300]
            return True
        return False


def retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (delta-seconds, fractional accepted, or an HTTP date); None if absent."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    import datetime as dt

    return max(0.0, (when - dt.datetime.now(when.tzinfo or dt.UTC)).total_seconds())


def _content(chunk: dict[str, Any], api: Api) -> str:
    choices = chunk.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return ""
    if api == "chat":
        delta = choices[0].get("delta") or {}
        return delta.get("content") or ""
    return choices[0].get("text") or ""
