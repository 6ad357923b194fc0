"""Start a server (`--launch "vllm serve MODEL ..."` or any command), wait until it answers, keep
its log, and tear it down on exit or Ctrl-C; scrape its Prometheus /metrics while it is measured."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.errors import PlannerError

# The Prometheus series worth keeping from vLLM (others servers expose theirs under other names).
SCRAPED = {
    "vllm:kv_cache_usage_perc": "kv_cache_usage",
    "vllm:gpu_cache_usage_perc": "kv_cache_usage",
    "vllm:num_requests_running": "requests_running",
    "vllm:num_requests_waiting": "requests_waiting",
}
_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eEinfa]+)")


def server_kind(command: str) -> str:
    c = command.lower()
    for needle, kind in (
        ("vllm", "vllm"),
        ("transformers serve", "transformers-serve"),
        ("sglang", "sglang"),
        ("text-generation-launcher", "tgi"),
        ("llama-server", "llama.cpp"),
        ("llama_cpp", "llama.cpp"),
    ):
        if needle in c:
            return kind
    return "openai-compatible"


class ServerProcess:
    def __init__(
        self,
        command: str,
        base_url: str,
        log_path: Path,
        ready_timeout_s: float = 600.0,
        env: dict[str, str] | None = None,
    ):
        self.command = command
        self.base_url = base_url.rstrip("/")
        self.log_path = log_path
        self.ready_timeout_s = ready_timeout_s
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def root(self) -> str:
        return self.base_url.removesuffix("/v1")

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        import httpx

        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            shlex.split(self.command),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: torn down whole, even its workers
            env={**os.environ, **(self.env or {})},
        )
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise PlannerError(
                    f"the server exited with code {self.proc.returncode} before answering; its log "
                    f"({self.log_path}) ends with:\n{self.log_tail()}"
                )
            for path in ("/health", "/v1/models"):
                try:
                    if httpx.get(self.root + path, timeout=2.0).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.5)
        self.stop()
        raise PlannerError(
            f"the server did not answer within {self.ready_timeout_s:g} s; log: {self.log_path}"
        )

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def version(self) -> str | None:
        import httpx

        try:
            response = httpx.get(self.root + "/version", timeout=2.0)
            if response.status_code == 200:
                return str(response.json().get("version"))
        except (httpx.HTTPError, ValueError):
            pass
        return None


def parse_prometheus(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m and m.group(1) in SCRAPED:
            name = SCRAPED[m.group(1)]
            try:
                out[name] = out.get(name, 0.0) + float(m.group(3))
            except ValueError:
                continue
    return out


@dataclass
class MetricsScraper:
    """Samples /metrics once a second in a thread; keeps the peak and mean of each series."""

    root_url: str
    interval_s: float = 1.0
    samples: list[dict[str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import httpx

        while not self._stop.is_set():
            try:
                response = httpx.get(self.root_url + "/metrics", timeout=2.0)
                if response.status_code == 200:
                    parsed = parse_prometheus(response.text)
                    if parsed:
                        self.samples.append(parsed)
            except httpx.HTTPError:
                pass
            self._stop.wait(self.interval_s)

    def __enter__(self) -> MetricsScraper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in {k for s in self.samples for k in s}:
            values = [s[name] for s in self.samples if name in s]
            out[f"server_{name}_max"] = round(max(values), 4)
            out[f"server_{name}_mean"] = round(sum(values) / len(values), 4)
        return out
