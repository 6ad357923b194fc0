"""Run configurations in worker processes: every outcome becomes a record, nothing is lost.

Configurations that share a model (everything but the batch size) go to one worker, smallest
batch first, so the model loads once. Each record is appended to the store (fsync) the moment the
worker reports it. A worker that stops after an error (it does after any non-OOM error, which can
leave a CUDA context unusable) or dies (segfault, the kernel's OOM killer) is replaced by a fresh
one for the configurations still to run; the one it died on is recorded with the end of its log.
A configuration that gives no result within `timeout_s` is recorded as an error ("timed out")
and its worker's process group is killed. Re-running skips what is recorded (resume).

SIGINT, SIGTERM and SIGHUP kill the worker's process group and raise `Interrupted`; every record
already reported stays in the store. The worker watches its stdin, which the runner holds open:
if the runner dies, even by SIGKILL, the pipe closes and the worker kills its own process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from gpu_bench.config import RunConfig
from gpu_bench.store import RecordStore

DEFAULT_TIMEOUT_S = 3600.0
STOP_GRACE_S = 10.0  # SIGTERM, then this long, then SIGKILL for the whole process group
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(Exception):
    """The run was stopped by a signal; the records reported before it are in the store."""

    def __init__(self, signum: int, kept: int):
        self.signum = signum
        self.kept = kept
        super().__init__(f"stopped by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def describe(config: RunConfig) -> str:
    return (
        f"{config.model} {config.record_quant} {config.engine} "
        f"batch {config.batch_size} {config.input_len}/{config.output_len}"
    )


@dataclass
class Progress:
    """One line when a configuration starts, one when it ends, with the ETA over configurations."""

    total: int
    done: int = 0
    started_at: float = field(default_factory=time.monotonic)
    stream: Any = sys.stderr

    def start(self, config: RunConfig) -> None:
        print(f"  running {self.done + 1}/{self.total}: {describe(config)}", file=self.stream, flush=True)

    def step(self, config: RunConfig, outcome: str) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.started_at
        eta = elapsed / self.done * (self.total - self.done)
        width = 24
        filled = int(width * self.done / max(self.total, 1))
        bar = "#" * filled + "-" * (width - filled)
        print(
            f"[{bar}] {self.done}/{self.total} {describe(config)}: {outcome} "
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


@dataclass
class WorkerEnd:
    """How a worker ended: its exit code, whether gpu-bench stopped it, what it left unreported."""

    code: int
    timed_out: bool
    started: str | None  # key of the last START without a RECORD; None if every START was reported
    log_tail: str = ""


def _crash_record(config: RunConfig, end: WorkerEnd, timeout_s: float) -> dict[str, Any]:
    from gpu_bench.env import capture, catalog_gpu_id
    from gpu_bench.results import failed_record

    env = capture()
    gpu = catalog_gpu_id(env.gpus[0]) if env.gpus else None
    how, status = _how(end, timeout_s)
    if status == "error" and not end.timed_out and "out of memory" in end.log_tail.lower():
        status = "oom"
    # A Python that died importing (its traceback's last line): an install fixes it, so run it again.
    retryable = end.code > 0 and any(
        line.startswith(("ModuleNotFoundError", "ImportError")) for line in end.log_tail.splitlines()
    )
    record = failed_record(
        config, status, f"{how}; last log lines:\n{end.log_tail}", env, gpu, retryable=retryable
    )
    return record.model_dump(mode="json", exclude_none=True)


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


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
        self.kept: list[dict] = []
        self._deferred: int | None = None
        self._in_append = False

    def run(self, configs: list[RunConfig], resume: bool = True, retry_failed: bool = False) -> list[dict]:
        """Run what is not recorded yet; the new records, in the order they arrived."""
        done = self.store.done(retry_failed) if resume else set()
        todo = [c for c in configs if c.key() not in done]
        progress = Progress(total=len(todo))
        if len(todo) < len(configs):
            print(f"resuming: {len(configs) - len(todo)} configuration(s) already recorded", file=sys.stderr)
        self.kept = []
        try:
            with self._signals():
                for group in groups(todo):
                    self._run_group(group, progress)
        except (KeyboardInterrupt, Interrupted) as exc:
            signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
            with self._ignoring_signals():
                self._stop()
            print(
                f"\n{signal.Signals(signum).name}: stopped; {len(self.kept)} new record(s) kept in "
                f"{self.store.path}; run again to resume",
                file=sys.stderr,
            )
            raise Interrupted(signum, len(self.kept)) from None
        return self.kept

    # -- signals -------------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self._in_append:  # let the record line finish: it is one write + fsync
            self._deferred = signum
            return
        raise Interrupted(signum, len(self.kept))

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be set from the main thread
            return
        previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
        for s in STOP_SIGNALS:
            signal.signal(s, self._on_signal)
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    @contextlib.contextmanager
    def _ignoring_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {s: signal.signal(s, signal.SIG_IGN) for s in STOP_SIGNALS}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    # -- records -------------------------------------------------------------------------------

    def _keep(self, row: dict[str, Any], config: RunConfig, progress: Progress) -> None:
        self._in_append = True
        try:
            self.store.append(row)
            self.kept.append(row)
        finally:
            self._in_append = False
        progress.step(config, _outcome(row))
        if self.on_record:
            self.on_record(row)
        if self._deferred is not None:
            signum, self._deferred = self._deferred, None
            raise Interrupted(signum, len(self.kept))

    # -- workers -------------------------------------------------------------------------------

    def _stop(self) -> None:
        """End the worker and everything it started (its own process group): TERM, then KILL."""
        proc = self.proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_GRACE_S)
        # Also after the leader is gone: children it started (vLLM's engine core) stay in its group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        self.proc = None

    def _run_group(self, group: list[RunConfig], progress: Progress) -> None:
        pending = list(group)
        while pending:
            reported: set[str] = set()
            end = self._launch(pending, progress, reported)
            pending = [c for c in pending if c.key() not in reported]
            if pending and (end.started is not None or not reported):
                # It died on a configuration (or before any): that one is recorded, the rest go on.
                crashed = next((c for c in pending if c.key() == end.started), pending[0])
                self._keep(_crash_record(crashed, end, self.timeout_s), crashed, progress)
                pending = [c for c in pending if c.key() != crashed.key()]
            # Else it stopped after recording an error (a fresh process for the rest) or finished.

    def _launch(self, configs: list[RunConfig], progress: Progress, reported: set[str]) -> WorkerEnd:
        """One worker over configs; each record is kept as it arrives (its key added to reported)."""
        by_key = {c.key(): c for c in configs}
        job = {
            "configs": [asdict(c) for c in configs],
            "workdir": str(self.workdir),
            "catalog_dirs": self.catalog_dirs,
            "watch_parent": True,
        }
        log_path = self.workdir / "logs" / f"worker-{int(time.time() * 1000)}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **(self.env or {})}
        started: str | None = None
        timed_out = False
        with log_path.open("w") as log:
            self.proc = proc = subprocess.Popen(
                [self.python, "-m", "gpu_bench.worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env,
                start_new_session=True,  # its own process group: stopping it stops all it started
            )
            assert proc.stdin is not None
            assert proc.stdout is not None
            # One line; stdin then stays open: its end (EOF) tells the worker this process is gone.
            proc.stdin.write(json.dumps(job) + "\n")
            proc.stdin.flush()
            lines: queue.Queue[str | None] = queue.Queue()
            threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
            deadline: float | None = time.monotonic() + self.timeout_s
            while True:
                try:
                    wait = 30.0 if deadline is None else max(0.0, deadline - time.monotonic())
                    line = lines.get(timeout=wait)
                except queue.Empty:
                    if deadline is None:  # killed, yet its stdout stays open: give up on it
                        break
                    timed_out = True
                    self._stop()
                    deadline = None  # drain what it wrote before it was stopped
                    continue
                if line is None:
                    break
                if line.startswith("START "):
                    started = line.split(maxsplit=1)[1].strip()
                    if started in by_key:
                        progress.start(by_key[started])
                    if deadline is not None:
                        deadline = time.monotonic() + self.timeout_s  # per configuration
                elif line.startswith("RECORD "):
                    row = json.loads(line[len("RECORD ") :])
                    key = row["engine"]["args"]["config_key"]
                    reported.add(key)
                    if key == started:
                        started = None
                    if deadline is not None:
                        deadline = time.monotonic() + self.timeout_s
                    self._keep(row, by_key[key], progress)
            code = proc.wait()
            self._stop()  # reaps the group: nothing it started outlives it
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
        return WorkerEnd(code, timed_out, started, tail)


def _how(end: WorkerEnd, timeout_s: float) -> tuple[str, str]:
    """Why a worker left a configuration unreported, and the status that configuration gets.

    Only a SIGKILL that gpu-bench did not send is read as the kernel's OOM killer.
    """
    if end.timed_out:
        return (
            f"timed out after {timeout_s:g} s: no result in that time, so gpu-bench killed its worker "
            "(--timeout; not an out-of-memory)",
            "error",
        )
    if end.code == -signal.SIGKILL:
        return (
            "the worker was killed by SIGKILL, and not by gpu-bench: most likely the kernel's OOM "
            "killer (host memory)",
            "oom",
        )
    if end.code < 0:
        return f"the worker was killed by signal {signal.Signals(-end.code).name}", "error"
    if end.code != 0:
        return f"the worker exited with code {end.code}", "error"
    return "the worker stopped before recording", "error"


def _outcome(row: dict) -> str:
    if row.get("status", "ok") != "ok":
        first = (row.get("error") or "").splitlines()[0][:80]
        return f"{row['status']} ({first})"
    return f"ok, {row.get('output_tokens_per_s', 0):,.1f} output tok/s"


def expand(base: RunConfig, batch_sizes: Iterable[int]) -> list[RunConfig]:
    return [replace(base, batch_size=b) for b in batch_sizes]
