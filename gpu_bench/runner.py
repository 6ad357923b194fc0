"""Run configurations in worker processes: every outcome becomes a record, nothing is lost.

Configurations that share a model (everything but the batch size) go to one worker, smallest
batch first, so the model loads once. If the worker dies (segfault, the kernel's OOM killer, a
CUDA error that poisons the process) the configuration it was running is recorded as an error
with the end of its log, and a fresh worker takes the rest. Records are appended as they arrive;
re-running skips what is recorded (resume); Ctrl-C stops the worker and keeps every record.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from gpu_bench.config import RunConfig
from gpu_bench.store import RecordStore

DEFAULT_TIMEOUT_S = 3600.0


@dataclass
class Progress:
    total: int
    done: int = 0
    started_at: float = field(default_factory=time.monotonic)
    stream: Any = sys.stderr

    def step(self, config: RunConfig, outcome: str) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.started_at
        eta = elapsed / self.done * (self.total - self.done)
        width = 24
        filled = int(width * self.done / max(self.total, 1))
        bar = "#" * filled + "-" * (width - filled)
        print(
            f"[{bar}] {self.done}/{self.total} {config.model} {config.record_quant} {config.engine} "
            f"batch {config.batch_size} {config.input_len}/{config.output_len}: {outcome} "
            f"(elapsed {_hms(elapsed)}, ETA {_hms(eta)})",
            file=self.stream,
            flush=True,
        )


def _hms(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def group_key(c: RunConfig) -> str:
    return json.dumps({k: v for k, v in asdict(c).items() if k != "batch_size"}, sort_keys=True)


def groups(configs: Iterable[RunConfig]) -> list[list[RunConfig]]:
    by: dict[str, list[RunConfig]] = {}
    for c in configs:
        by.setdefault(group_key(c), []).append(c)
    return [sorted(g, key=lambda c: c.batch_size) for g in by.values()]


def _crash_record(config: RunConfig, how: str, log_tail: str) -> Any:
    from gpu_bench.env import capture, catalog_gpu_id
    from gpu_bench.results import failed_record

    env = capture()
    gpu = catalog_gpu_id(env.gpus[0]) if env.gpus else None
    oom_killed = "SIGKILL" in how  # the kernel's OOM killer; a segfault or an abort is an error
    status = "oom" if oom_killed or "out of memory" in log_tail.lower() else "error"
    return failed_record(config, status, f"{how}; last log lines:\n{log_tail}", env, gpu)


class Runner:
    def __init__(
        self,
        store: RecordStore,
        workdir: Path,
        catalog_dirs: list[str] | None = None,
        python: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        env: dict[str, str] | None = None,
        on_record: Callable[[dict[str, Any]], None] | None = None,
    ):
        self.store = store
        self.workdir = workdir
        self.catalog_dirs = catalog_dirs or []
        self.python = python or sys.executable
        self.timeout_s = timeout_s
        self.env = env
        self.on_record = on_record
        self.proc: subprocess.Popen[str] | None = None

    def run(self, configs: list[RunConfig], resume: bool = True, retry_failed: bool = False) -> list[dict]:
        done = self.store.done(retry_failed) if resume else set()
        todo = [c for c in configs if c.key() not in done]
        progress = Progress(total=len(todo))
        if len(todo) < len(configs):
            print(f"resuming: {len(configs) - len(todo)} configuration(s) already recorded", file=sys.stderr)
        results: list[dict] = []
        try:
            for group in groups(todo):
                results.extend(self._run_group(group, progress))
        except KeyboardInterrupt:
            self._stop()
            print(
                f"\ninterrupted: {len(results)} new record(s) kept in {self.store.path}; run again to resume",
                file=sys.stderr,
            )
            raise
        return results

    def _stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def _run_group(self, group: list[RunConfig], progress: Progress) -> list[dict]:
        pending = list(group)
        out: list[dict] = []
        while pending:
            recorded, started, how, log_tail = self._launch(pending)
            for row in recorded:
                self.store.append(row)
                out.append(row)
                config = next(c for c in pending if c.key() == row["engine"]["args"]["config_key"])
                progress.step(config, _outcome(row))
                if self.on_record:
                    self.on_record(row)
            keys = {r["engine"]["args"]["config_key"] for r in recorded}
            remaining = [c for c in pending if c.key() not in keys]
            crashed = [c for c in remaining if c.key() == started] or remaining[:1]
            if remaining and how:
                record = _crash_record(crashed[0], how, log_tail).model_dump(mode="json", exclude_none=True)
                self.store.append(record)
                out.append(record)
                progress.step(crashed[0], _outcome(record))
                remaining = [c for c in remaining if c.key() != crashed[0].key()]
            pending = remaining
        return out

    def _launch(self, configs: list[RunConfig]) -> tuple[list[dict], str | None, str | None, str]:
        """One worker over configs: (records, key started last, how it ended if abnormally, log tail)."""
        job = {
            "configs": [asdict(c) for c in configs],
            "workdir": str(self.workdir),
            "catalog_dirs": self.catalog_dirs,
        }
        log_path = self.workdir / "logs" / f"worker-{int(time.time() * 1000)}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **(self.env or {})}
        with log_path.open("w") as log:
            self.proc = subprocess.Popen(
                [self.python, "-m", "gpu_bench.worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env,
                start_new_session=True,  # its own process group: Ctrl-C and timeouts end it all
            )
            assert self.proc.stdin is not None
            assert self.proc.stdout is not None
            self.proc.stdin.write(json.dumps(job))
            self.proc.stdin.close()
            records: list[dict] = []
            started: str | None = None
            timer = threading.Timer(self.timeout_s * len(configs), self._stop)
            timer.start()
            try:
                for line in self.proc.stdout:
                    if line.startswith("START "):
                        started = line.split(maxsplit=1)[1].strip()
                    elif line.startswith("RECORD "):
                        records.append(json.loads(line[len("RECORD ") :]))
                code = self.proc.wait()
            finally:
                timer.cancel()
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
        how = None
        if len(records) < len(configs):
            if code < 0:
                how = f"the worker was killed by signal {signal.Signals(-code).name}" + (
                    " (the kernel's OOM killer sends SIGKILL)" if code == -signal.SIGKILL else ""
                )
            elif code != 0:
                how = f"the worker exited with code {code}"
            else:
                how = "the worker stopped before recording"
        return records, started, how, tail


def _outcome(row: dict) -> str:
    if row.get("status", "ok") != "ok":
        first = (row.get("error") or "").splitlines()[0][:80]
        return f"{row['status']} ({first})"
    return f"ok, {row.get('output_tokens_per_s', 0):,.1f} output tok/s"


def expand(base: RunConfig, batch_sizes: Iterable[int]) -> list[RunConfig]:
    return [replace(base, batch_size=b) for b in batch_sizes]
