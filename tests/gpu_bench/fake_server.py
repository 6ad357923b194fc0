"""A small asyncio OpenAI-style SSE server, only for what real servers will not do on demand:
drop a connection mid-stream, send a malformed chunk, answer 429/500, send its first byte after
the client's timeout, fail one request in three, slow down past a concurrency the test controls (a
known capacity), or stream at an exactly known rate (token i of a request at start + (i+1) * tpot).

The model name picks the behaviour: "ok", "drop", "malformed", "http429", "http500", "slow",
"nodone" (no [DONE] line), "nousage" (no usage chunk), "capacity", "flaky" (of every six requests
the third gets HTTP 500 and the sixth is dropped mid-stream; the others are "ok").

`kind` picks what its GET endpoints say, to look like a known server: "plain" (only /health and
/v1/models), "vllm" (/version, /metrics with vllm: series), "sglang" (/get_server_info), "tgi"
(/info), "llama.cpp" (/props) or "transformers-serve" (its /openapi.json routes). The shapes follow
those servers' documented responses, reduced to the fields detection reads.

Run on its own (a server for --launch): python tests/gpu_bench/fake_server.py --port P
[--tpot 0.01] [--kind vllm] [--pid-file F]; it prints "READY <port>" and serves until killed.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field

KIND_GETS: dict[str, dict[str, dict]] = {
    "plain": {},
    "vllm": {"/version": {"version": "0.99.0+cpu"}},
    "sglang": {
        "/get_server_info": {
            "version": "0.5.1",
            "model_path": "fake/model",
            "tp_size": 2,
            "dp_size": 1,
            "device": "cuda",
        }
    },
    "tgi": {
        "/info": {
            "model_id": "fake/model",
            "model_dtype": "torch.bfloat16",
            "model_device_type": "cuda",
            "max_concurrent_requests": 128,
            "max_total_tokens": 4096,
            "version": "3.3.4",
        }
    },
    "llama.cpp": {"/props": {"build_info": "b5000-abc1234", "default_generation_settings": {"n_ctx": 4096}}},
    "transformers-serve": {
        "/openapi.json": {
            "openapi": "3.1.0",
            "info": {"title": "FastAPI", "version": "0.1.0"},
            "paths": {p: {} for p in ("/v1/chat/completions", "/v1/models", "/load_model", "/reset")},
        }
    },
}
OWNED_BY = {"vllm": "vllm", "sglang": "sglang", "llama.cpp": "llamacpp"}


@dataclass
class FakeServer:
    tokens: int = 8
    tpot_s: float = 0.002
    capacity: int = 8  # for "capacity": beyond this many concurrent requests every token slows down
    slow_first_byte_s: float = 3.0
    port: int = 0
    kind: str = "plain"
    active: int = 0
    peak_active: int = 0
    streamed: int = 0  # streamed requests so far ("flaky" counts them)
    seen: list[str] = field(default_factory=list)  # the model of every POST
    prompts: list[str] = field(default_factory=list)  # the prompt (or last message) of every stream

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
                method, path, _ = lines[0].split(" ", 2)
                headers = {
                    k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                if method == "GET":
                    await self._get(writer, path)
                    continue
                request = json.loads(body or b"{}")
                self.seen.append(request.get("model", ""))
                if not await self._complete(writer, request):
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _get(self, writer: asyncio.StreamWriter, path: str) -> None:
        if path in ("/health", "/v1/models"):
            model = {"id": "fake", "object": "model", "owned_by": OWNED_BY.get(self.kind, "fake")}
            await self._respond(writer, 200, json.dumps({"status": "ok", "data": [model]}).encode())
        elif path == "/metrics" and self.kind == "vllm":
            labels = '{engine="0",model_name="fake"}'
            text = (
                "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
                "# TYPE vllm:num_requests_running gauge\n"
                f"vllm:num_requests_running{labels} {self.active}.0\n"
                f"vllm:num_requests_waiting{labels} 0.0\n"
                f"vllm:kv_cache_usage_perc{labels} {min(1.0, self.active / 64)}\n"
                f"vllm:prefix_cache_queries_total{labels} {self.streamed * 16}.0\n"
                f"vllm:prefix_cache_hits_total{labels} 0.0\n"
                'vllm:cache_config_info{block_size="16",enable_prefix_caching="True",engine="0",'
                'kv_cache_max_concurrency="12.5",kv_cache_size_tokens="51200"} 1.0\n'
            )
            await self._respond(writer, 200, text.encode(), "text/plain; version=0.0.4")
        elif path in KIND_GETS.get(self.kind, {}):
            await self._respond(writer, 200, json.dumps(KIND_GETS[self.kind][path]).encode())
        else:
            await self._respond(writer, 404, b'{"detail":"Not Found"}')

    async def _respond(
        self, writer: asyncio.StreamWriter, status: int, body: bytes, ctype: str = "application/json"
    ) -> None:
        reason = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error"}
        head = f"HTTP/1.1 {status} {reason[status]}\r\ncontent-type: {ctype}\r\n"
        head += f"content-length: {len(body)}\r\n\r\n"
        writer.write(head.encode() + body)
        await writer.drain()

    async def _chunk(self, writer: asyncio.StreamWriter, text: str) -> None:
        data = text.encode()
        writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        await writer.drain()

    async def _complete(self, writer: asyncio.StreamWriter, request: dict) -> bool:
        mode = request.get("model", "ok")
        if not request.get("stream"):
            if mode in ("http429", "http500"):
                await self._respond(writer, int(mode[4:]), b'{"error":{"message":"try later"}}')
                return True
            await self._respond(writer, 200, b'{"choices":[{"text":"x"}],"usage":{"completion_tokens":1}}')
            return True
        self.streamed += 1
        messages = request.get("messages")
        self.prompts.append(messages[-1]["content"] if messages else request.get("prompt", ""))
        if mode == "flaky":
            mode = {3: "http500", 0: "drop"}.get(self.streamed % 6, "ok")
        if mode in ("http429", "http500"):
            await self._respond(writer, int(mode[4:]), b'{"error":{"message":"try later"}}')
            return True
        if mode == "slow":
            await asyncio.sleep(self.slow_first_byte_s)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        self.active += 1
        self.peak_active = max(self.peak_active, self.active)
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            n = int(request.get("max_tokens", self.tokens))
            for i in range(n):
                if mode == "capacity":
                    delay = self.tpot_s
                    if self.active > self.capacity:
                        delay = self.tpot_s * 4 * self.active / self.capacity
                    await asyncio.sleep(delay)
                else:  # paced: the rate is exactly 1 / tpot_s per stream, however late a wake-up
                    await asyncio.sleep(max(0.0, start + (i + 1) * self.tpot_s - loop.time()))
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


def main() -> None:
    import argparse
    import os
    import time

    parser = argparse.ArgumentParser(description="the fake SSE server, on its own (for --launch)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tpot", type=float, default=0.01)
    parser.add_argument("--kind", default="plain", choices=sorted(KIND_GETS))
    parser.add_argument("--pid-file")
    args = parser.parse_args()
    if args.pid_file:
        with open(args.pid_file, "w") as f:
            f.write(str(os.getpid()))
    with FakeServer(port=args.port, tpot_s=args.tpot, kind=args.kind) as server:
        print(f"READY {server.port}", flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main()
