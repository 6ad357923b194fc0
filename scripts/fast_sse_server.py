#!/usr/bin/env python3
"""An OpenAI-compatible token server as fast as Python can serve, for load-generator benchmarks.

Every streamed request gets `max_tokens` content chunks (one token each, no delay, each its own
write, other streams interleaved between them as on a real server), then a usage chunk with the exact
completion_tokens, then `data: [DONE]`. /v1/completions and /v1/chat/completions; any extra field
(ignore_eos, min_tokens, logprobs, ...) is accepted and ignored. GET /v1/models and /health answer
200, anything else 404. Chunks are vLLM-shaped and pre-encoded; the HTTP/1.1 parsing is minimal
(keep-alive, content-length bodies). uvloop when importable.

Run: python scripts/fast_sse_server.py --port 8000 [--model fast]  (prints "READY <port>")
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
STATUS = {200: "OK", 400: "Bad Request", 404: "Not Found"}


def _frame(event: dict[str, Any] | str) -> bytes:
    """One SSE event as one HTTP chunk."""
    data = b"data: " + (event if isinstance(event, str) else json.dumps(event)).encode() + b"\n\n"
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _events(chat: bool, model: str) -> tuple[bytes, bytes]:
    """(a content chunk, the last content chunk with finish_reason) for an api."""
    kind, key = ("chat.completion.chunk", "delta") if chat else ("text_completion", "text")

    def chunk(finish: str | None) -> bytes:
        choice: dict[str, Any] = {"index": 0, key: {"content": " tok"} if chat else " tok"}
        choice.update(logprobs=None, finish_reason=finish)
        return _frame({"id": "cmpl-0", "object": kind, "created": 0, "model": model, "choices": [choice]})

    return chunk(None), chunk("length")


class Server:
    def __init__(self, model: str):
        self.model = model
        self.events = {chat: _events(chat, model) for chat in (False, True)}
        self.models = json.dumps({"object": "list", "data": [{"id": model, "object": "model"}]}).encode()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                length = 0
                for line in lines[1:]:
                    if line[:15].lower() == "content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length) if length else b""
                path = path.split("?", 1)[0]
                if method == "GET" and path in ("/v1/models", "/health"):
                    await self.respond(writer, 200, self.models if path == "/v1/models" else b"{}")
                elif method == "POST" and path in ("/v1/completions", "/v1/chat/completions"):
                    await self.complete(writer, json.loads(body or b"{}"), path.endswith("chat/completions"))
                else:
                    await self.respond(writer, 404, b'{"error":"not found"}')
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    async def respond(self, writer: asyncio.StreamWriter, status: int, body: bytes) -> None:
        head = f"HTTP/1.1 {status} {STATUS[status]}\r\ncontent-type: application/json\r\n"
        writer.write(head.encode() + f"content-length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()

    async def complete(self, writer: asyncio.StreamWriter, request: dict[str, Any], chat: bool) -> None:
        n = max(1, int(request.get("max_tokens") or request.get("max_completion_tokens") or 16))
        prompt = request.get("messages") if chat else request.get("prompt")
        prompt_tokens = max(1, len(json.dumps(prompt)) // 4)
        if not request.get("stream"):
            key = "message" if chat else "text"
            text: Any = {"role": "assistant", "content": " tok" * n} if chat else " tok" * n
            out = {"choices": [{"index": 0, key: text, "finish_reason": "length"}]}
            out["usage"] = {"prompt_tokens": prompt_tokens, "completion_tokens": n}
            await self.respond(writer, 200, json.dumps(out).encode())
            return
        content, last = self.events[chat]
        writer.write(SSE_HEAD)
        for _ in range(n - 1):
            writer.write(content)
            await writer.drain()  # waits only when the client is behind
            await asyncio.sleep(0)  # let the other streams have their token too
        writer.write(last)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": n, "total_tokens": prompt_tokens + n}
        writer.write(_frame({"id": "cmpl-0", "model": self.model, "choices": [], "usage": usage}))
        writer.write(_frame("[DONE]") + b"0\r\n\r\n")
        await writer.drain()


async def serve(port: int, model: str) -> None:
    server = await asyncio.start_server(Server(model).handle, "127.0.0.1", port, backlog=4096)
    print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--model", default="fast")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(args.port, args.model))


if __name__ == "__main__":
    main()
