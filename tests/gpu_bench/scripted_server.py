"""A scripted OpenAI-style chat server for eval tests: answers chosen by the test (streamed, or one
JSON reply when not streaming), usage that says exactly how many tokens were "used", 429 storms
with Retry-After, a concurrency limit that rejects the excess, 401 for a bad key, and 503 for the
models the test names in `unavailable` (while it names them).

Token counts are whitespace words: prompt_tokens = words of all messages, completion_tokens =
words of the answer; each word is one streamed chunk.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.gpu_bench.fake_server import FakeServer


def words(messages: list[dict[str, str]]) -> int:
    return sum(len(m["content"].split()) for m in messages)


@dataclass
class ScriptedServer(FakeServer):
    answer: Callable[[str, list[dict[str, str]]], str] = lambda model, messages: "ok"
    served_as: str = "scripted-2026-01-01"
    storm: int = 0  # the first `storm` requests get 429
    retry_after: str | None = "0.05"
    limit: int | None = None  # more requests in flight than this get 429
    delay_s: float = 0.0  # before the answer: keeps requests in flight
    unavailable: set[str] = field(default_factory=set)  # these models get 503 (no Retry-After)
    requests: int = 0
    rejected: int = 0
    bodies: list[dict] = field(default_factory=list)

    async def _complete(self, writer: asyncio.StreamWriter, request: dict) -> bool:
        self.requests += 1
        self.bodies.append(request)
        model = request.get("model", "")
        if model == "unauthorized":
            await self._send(writer, 401, b'{"error":{"message":"invalid api key"}}')
            return True
        if model in self.unavailable:
            self.rejected += 1
            await self._send(writer, 503, b'{"error":{"message":"overloaded"}}')
            return True
        if self.requests <= self.storm or (self.limit is not None and self.active >= self.limit):
            self.rejected += 1
            await self._send(writer, 429, b'{"error":{"message":"rate limited"}}', self.retry_after)
            return True
        self.active += 1
        self.peak_active = max(self.peak_active, self.active)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            messages = request.get("messages") or [{"role": "user", "content": request.get("prompt", "")}]
            text = self.answer(model, messages)
            usage = {"prompt_tokens": words(messages), "completion_tokens": len(text.split())}
            if not request.get("stream"):
                reply = {
                    "object": "chat.completion",
                    "model": self.served_as,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
                    "usage": usage,
                }
                await self._send(writer, 200, json.dumps(reply).encode())
                return True
            pieces = text.split(" ")
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
            )
            for i, piece in enumerate(pieces):
                delta = {"content": piece if i == 0 else " " + piece}
                chunk = {
                    "model": self.served_as,
                    "system_fingerprint": "fp_scripted",
                    "choices": [{"index": 0, "delta": delta}],
                }
                await self._chunk(writer, f"data: {json.dumps(chunk)}\n\n")
            last = {"model": self.served_as, "choices": [], "usage": usage}
            await self._chunk(writer, f"data: {json.dumps(last)}\n\n")
            await self._chunk(writer, "data: [DONE]\n\n")
            await self._chunk(writer, "")
            return True
        finally:
            self.active -= 1

    async def _send(
        self, writer: asyncio.StreamWriter, status: int, body: bytes, retry_after: str | None = None
    ) -> None:
        reasons = {200: "OK", 401: "Unauthorized", 429: "Too Many Requests", 503: "Service Unavailable"}
        reason = reasons[status]
        head = f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        if retry_after is not None:
            head += f"retry-after: {retry_after}\r\n"
        head += f"content-length: {len(body)}\r\n\r\n"
        writer.write(head.encode() + body)
        await writer.drain()
