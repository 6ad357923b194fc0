"""A small keep-alive HTTP/1.1 client on asyncio streams, for reading SSE streams fast.

httpx+h11 turn every HTTP chunk (one per token) into an event passed through some ten async
layers and top out near 15k events/s on one core, a third of what vLLM's benchmark client
absorbs (scripts/bench_client.py measures both). This reader de-chunks a whole socket read at once;
the client timestamps the events of one read together. Only what OpenAI-compatible streaming
needs: POST with a JSON body, chunked or content-length or close-delimited responses.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import urllib.parse
import urllib.request


class ConnectError(Exception):
    """The server could not be reached."""


class Disconnected(Exception):
    """The connection closed or broke before the response was complete."""


# What the raw path raises (send catches TimeoutError, an OSError, and ConnectError first).
RAW_ERRORS = (ConnectError, Disconnected, OSError, EOFError, ValueError, asyncio.LimitOverrunError)


class RawHttp:
    """HTTP/1.1 keep-alive POSTs on asyncio streams; bodies come a socket read at a time, de-chunked."""

    def __init__(
        self, url: str, headers: dict[str, str], max_connections: int, read_s: float, total_s: float
    ):
        parts = urllib.parse.urlsplit(url)
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (443 if self.ssl else 80)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        head = {"Host": parts.netloc.rpartition("@")[2], **headers, "Accept": "text/event-stream"}
        self.head = "".join(f"{k}: {v}\r\n" for k, v in head.items())
        self.read_s, self.total_s = read_s, total_s
        self.max_connections = max_connections
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.slots: asyncio.Semaphore | None = None

    @classmethod
    def for_url(
        cls, url: str, headers: dict[str, str], max_connections: int, read_s: float, total_s: float
    ) -> RawHttp | None:
        """The fast path, except where a proxy applies (httpx honours the proxy variables)."""
        parts = urllib.parse.urlsplit(url)
        proxies = urllib.request.getproxies_environment()
        proxied = (proxies.get(parts.scheme) or proxies.get("all")) and not urllib.request.proxy_bypass(
            parts.hostname or ""
        )
        if parts.scheme not in ("http", "https") or proxied:
            return None
        return cls(url, headers, max_connections, read_s, total_s)

    async def aclose(self) -> None:
        idle, self.idle = self.idle, []
        for _, writer in idle:
            writer.close()
        for _, writer in idle:
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def post(self, path: str, body: bytes) -> Response:
        if self.slots is None:
            self.slots = asyncio.Semaphore(self.max_connections)
        async with asyncio.timeout(self.total_s):  # waiting for a connection slot, as httpx's pool timeout
            await self.slots.acquire()
        request = f"POST {path} HTTP/1.1\r\n{self.head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        try:
            for attempt in range(2):
                reader, writer, reused = await self._connection()
                try:
                    writer.write(request)
                    await writer.drain()
                    return await Response.start(self, reader, writer)
                except (Disconnected, ConnectionError):
                    writer.close()
                    if not reused or attempt:  # a kept-alive connection the server had closed: once more
                        raise
                except BaseException:
                    writer.close()
                    raise
            raise AssertionError("unreachable")
        except BaseException:
            self.slots.release()
            raise

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        while self.idle:
            reader, writer = self.idle.pop()
            if not (reader.at_eof() or writer.is_closing()):
                return reader, writer, True
            writer.close()
        try:
            async with asyncio.timeout(30.0):
                reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self.ssl)
        except TimeoutError:
            raise TimeoutError("ConnectTimeout") from None
        except OSError as exc:
            raise ConnectError(f"{type(exc).__name__}: {exc}") from exc
        return reader, writer, False


class Response:
    def __init__(self, pool: RawHttp, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.pool, self.reader, self.writer = pool, reader, writer
        self.status = 0
        self.chunked = False
        self.left: int | None = None  # bytes of a content-length body still to come
        self.keep_alive = True
        self.complete = False
        self.released = False
        self.buffer = b""  # undecoded chunked bytes
        self.headers: dict[str, str] = {}  # lower-cased names

    @classmethod
    async def start(cls, pool: RawHttp, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self = cls(pool, reader, writer)
        while self.status < 200:  # 1xx interim responses are skipped
            try:
                async with asyncio.timeout(pool.read_s):
                    head = await reader.readuntil(b"\r\n\r\n")
            except TimeoutError:
                raise TimeoutError("ReadTimeout") from None
            except asyncio.IncompleteReadError as exc:
                raise Disconnected("the server closed the connection without a response") from exc
            lines = head.decode("latin-1").split("\r\n")
            version, status = lines[0].split(" ", 2)[:2]
            self.status = int(status)
        headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
        self.headers = headers
        self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if self.status in (204, 304):
            self.left = 0
        elif not self.chunked and "content-length" in headers:
            self.left = int(headers["content-length"])
        connection = headers.get("connection", "").lower()
        self.keep_alive = version == "HTTP/1.1" and "close" not in connection
        return self

    async def _read(self) -> bytes:
        try:
            async with asyncio.timeout(self.pool.read_s):
                return await self.reader.read(1 << 20)
        except TimeoutError:
            raise TimeoutError("ReadTimeout") from None

    async def read_some(self) -> bytes | None:
        """The body bytes that have arrived (waiting for some), or None at the end of the body."""
        while not self.complete:
            if self.left is not None and self.left <= 0:
                self.complete = True
                break
            data = await self._read()
            if not data:
                if self.chunked or self.left is not None:
                    raise Disconnected("the server closed the connection mid-response")
                self.complete, self.keep_alive = True, False  # a body delimited by closing
                break
            if self.left is not None:
                self.left -= len(data)
                return data
            if not self.chunked:
                return data
            if out := self._dechunk(data):
                return out
        return None

    def _dechunk(self, data: bytes) -> bytes:
        buf, pos, out = self.buffer + data if self.buffer else data, 0, []
        while (eol := buf.find(b"\r\n", pos)) >= 0:
            size = int(buf[pos:eol].split(b";", 1)[0], 16)
            if size == 0:
                end = buf.find(b"\r\n\r\n", eol)  # past any trailers
                if end < 0:
                    break
                self.complete, pos = True, end + 4
                break
            end = eol + 2 + size
            if len(buf) < end + 2:
                break
            out.append(buf[eol + 2 : end])
            pos = end + 2
        self.buffer = buf[pos:]
        return b"".join(out)

    async def read_all(self) -> bytes:
        parts = []
        while (data := await self.read_some()) is not None:
            parts.append(data)
        return b"".join(parts)

    async def drain(self) -> None:
        """Read to the end of the body after [DONE] so that the connection can be reused."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                while await self.read_some() is not None:
                    pass

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        if self.complete and self.keep_alive and not self.buffer and not self.writer.is_closing():
            self.pool.idle.append((self.reader, self.writer))
        else:
            self.writer.close()
        assert self.pool.slots is not None
        self.pool.slots.release()
