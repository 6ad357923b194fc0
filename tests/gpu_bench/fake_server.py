"""A small asyncio OpenAI-style SSE server, only for what real servers will not do on demand:
drop a connection mid-stream, send a malformed chunk, answer 429/500, send its first byte after
the client's timeout, or slow down past a concurrency the test controls (a known capacity).

The model name picks the behaviour: "ok", "drop", "malformed", "http429", "http500", "slow",
"nodone" (no [DONE] line), "nousage" (no usage chunk), "capacity".
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field


@dataclass
class FakeServer:
    tokens: int = 8
    tpot_s: float = 0.002
    capacity: int = 8  # for "capacity": beyond this many concurrent requests every token slows down
    slow_first_byte_s: float = 3.0
    port: int = 0
    active: int = 0
    peak_active: int = 0
    seen: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FakeServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                method, _path, _ = lines[0].split(" ", 2)
                headers = {
                    k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                if method == "GET":
                    await self._respond(writer, 200, b'{"status":"ok","data":[{"id":"fake"}]}')
                    continue
                request = json.loads(body or b"{}")
                self.seen.append(request.get("model", ""))
                if not await self._complete(writer, request):
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _respond(self, writer: asyncio.StreamWriter, status: int, body: bytes) -> None:
        reason = {200: "OK", 429: "Too Many Requests", 500: "Internal Server Error"}[status]
        head = f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        head += f"content-length: {len(body)}\r\n\r\n"
        writer.write(head.encode() + body)
        await writer.drain()

    async def _chunk(self, writer: asyncio.StreamWriter, text: str) -> None:
        data = text.encode()
        writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        await writer.drain()

    async def _complete(self, writer: asyncio.StreamWriter, request: dict) -> bool:
        mode = request.get("model", "ok")
        if mode in ("http429", "http500"):
            await self._respond(writer, int(mode[4:]), b'{"error":{"message":"try later"}}')
            return True
        if not request.get("stream"):
            await self._respond(writer, 200, b'{"choices":[{"text":"x"}],"usage":{"completion_tokens":1}}')
            return True
        if mode == "slow":
            await asyncio.sleep(self.slow_first_byte_s)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        self.active += 1
        self.peak_active = max(self.peak_active, self.active)
        try:
            n = int(request.get("max_tokens", self.tokens))
            for i in range(n):
                delay = self.tpot_s
                if mode == "capacity" and self.active > self.capacity:
                    delay = self.tpot_s * 4 * self.active / self.capacity
                await asyncio.sleep(delay)
                if mode == "drop" and i == n // 2:
                    writer.transport.abort()
                    return False
                if mode == "malformed" and i == n // 2:
                    await self._chunk(writer, "data: {not json\n\n")
                    continue
                chunk = {"choices": [{"index": 0, "text": f" t{i}"}]}
                await self._chunk(writer, f"data: {json.dumps(chunk)}\n\n")
            if mode != "nousage":
                usage = {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": n}}
                await self._chunk(writer, f"data: {json.dumps(usage)}\n\n")
            if mode != "nodone":
                await self._chunk(writer, "data: [DONE]\n\n")
            await self._chunk(writer, "")
            return True
        finally:
            self.active -= 1
