"""Start a server (`--launch "vllm serve MODEL ..."` or any command), wait until it answers, keep
its log, and tear it down however the run ends: normally, on an error, on Ctrl-C or SIGTERM, even
while it is still starting. Scrape its Prometheus /metrics while it is measured."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.errors import PlannerError

# The Prometheus series worth keeping from vLLM (other servers expose theirs under other names).
GAUGES = {
    "vllm:kv_cache_usage_perc": "kv_cache_usage",
    "vllm:gpu_cache_usage_perc": "kv_cache_usage",
    "vllm:num_requests_running": "requests_running",
    "vllm:num_requests_waiting": "requests_waiting",
}
COUNTERS = {  # kept as their increase over a level
    "vllm:prefix_cache_queries_total": "prefix_cache_queries",
    "vllm:prefix_cache_hits_total": "prefix_cache_hits",
    "vllm:gpu_prefix_cache_queries_total": "prefix_cache_queries",
    "vllm:gpu_prefix_cache_hits_total": "prefix_cache_hits",
}
SCRAPED = {**GAUGES, **COUNTERS}
_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def launch_argv(command: str) -> list[str]:
    """The --launch command as argv (shell quoting, no shell), or a PlannerError."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise PlannerError(f"--launch {command!r}: cannot split it into words ({exc})") from None
    if not argv:
        raise PlannerError('--launch is empty; give the server\'s command, e.g. "vllm serve MODEL"')
    if shutil.which(argv[0]) is None:
        raise PlannerError(
            f"--launch {command!r}: {argv[0]!r} is not a command on PATH nor an executable file; "
            "give a command on PATH or its full path"
        )
    return argv


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
        try:
            self.start()
        except BaseException:  # Ctrl-C while it starts: __exit__ would never run
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        import httpx

        argv = launch_argv(self.command)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:  # the child holds its own copy of the descriptor
            try:
                self.proc = subprocess.Popen(
                    argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: torn down whole, even its workers
                    env={**os.environ, **(self.env or {})},
                )
            except OSError as exc:
                raise PlannerError(
                    f"--launch {self.command!r}: cannot start {argv[0]!r} ({exc.strerror or exc}); "
                    "give a command on PATH or its full path"
                ) from None
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
        raise PlannerError(
            f"the server did not answer within {self.ready_timeout_s:g} s; log: {self.log_path}"
        )

    def stop(self) -> None:
        """SIGTERM to its whole process group (its workers too), SIGKILL after 30 s or on a second
        Ctrl-C; whatever of the group outlived its leader is killed too."""
        if self.proc is None:
            return
        pid = self.proc.pid
        try:
            if self.proc.poll() is None:
                os.killpg(pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=30)
                except (subprocess.TimeoutExpired, KeyboardInterrupt):
                    os.killpg(pid, signal.SIGKILL)
                    self.proc.wait()
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def parse_prometheus(text: str) -> dict[str, float]:
    """The series of SCRAPED in a Prometheus text exposition, summed over their labels (engines)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m or m.group(1) not in SCRAPED:
            continue
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        if value == value:  # NaN: no sample
            name = SCRAPED[m.group(1)]
            out[name] = out.get(name, 0.0) + value
    return out


@dataclass
class MetricsScraper:
    """Samples /metrics before a level, once a second in a thread while it runs, and after it;
    keeps the peak and mean of each gauge and the increase of each counter over the level."""

    root_url: str
    interval_s: float = 1.0
    samples: list[dict[str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _scrape(self) -> None:
        import httpx

        try:
            response = httpx.get(self.root_url + "/metrics", timeout=2.0)
            if response.status_code == 200:
                parsed = parse_prometheus(response.text)
                if parsed:
                    self.samples.append(parsed)
        except httpx.HTTPError:
            pass

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._scrape()

    def __enter__(self) -> MetricsScraper:
        self._scrape()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if exc[0] is None:
            self._scrape()

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        gauges = set(GAUGES.values())
        for name in sorted({k for s in self.samples for k in s}):
            values = [s[name] for s in self.samples if name in s]
            if name in gauges:
                out[f"server_{name}_max"] = round(max(values), 4)
                out[f"server_{name}_mean"] = round(sum(values) / len(values), 4)
            else:
                out[f"server_{name}_delta"] = round(values[-1] - values[0], 4)
        queries = out.get("server_prefix_cache_queries_delta")
        if queries:
            hits = out.get("server_prefix_cache_hits_delta", 0.0)
            out["server_prefix_cache_hit_rate"] = round(hits / queries, 4)
        return out
