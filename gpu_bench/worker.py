"""The process that measures: `python -m gpu_bench.worker` reads a job (one JSON line) on stdin,
runs its configurations in order, and reports each on stdout as `START <key>` then `RECORD <json>`.

It runs apart from the sweep so that a CUDA error, an out-of-memory kill or a segfault ends this
process only: the sweep records what happened and goes on. Heavy imports happen here.

- After an out-of-memory the worker frees the device and goes on; a larger batch of the same
  configuration is then recorded as oom without running (it needs more memory), and says so.
- After any other error it stops (exit code 3): a CUDA error can leave the process's context
  unusable and fail every later configuration the same way; the runner starts a fresh worker.
- With `watch_parent` in the job, stdin stays open after the job line, and its end (the runner
  died, even by SIGKILL) makes the worker kill its own process group, so nothing is orphaned.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from gpu_bench.config import RunConfig

EXIT_AFTER_ERROR = 3


def _engine(name: str) -> Any:
    if name == "transformers":
        from gpu_bench.engines import transformers_engine

        return transformers_engine
    if name == "vllm":
        from gpu_bench.engines import vllm_engine

        return vllm_engine
    raise ValueError(f"unknown engine {name!r}")


def _model_dir(config: RunConfig, workdir: Path, catalog_dirs: list[str]) -> Path:
    if config.weights != "dummy":
        return Path(config.weights)
    candidate = Path(config.model)
    if candidate.is_dir() and (candidate / "config.json").exists():
        return candidate
    from gpu_bench.weights import prepare_model_dir
    from planner.catalog import Catalog

    arch = Catalog.default(catalog_dirs).model(config.model).architecture
    return prepare_model_dir(arch, config.scale, workdir, config.dtype)


def _is_oom(exc: BaseException) -> bool:
    from gpu_bench.engines.common import EngineOOM

    text = f"{type(exc).__name__}: {exc}".lower()
    return isinstance(exc, EngineOOM | MemoryError) or any(
        needle in text for needle in ("out of memory", "outofmemory", "can't allocate memory")
    )


def is_environment_problem(exc: BaseException) -> bool:
    """An import that failed (a package missing or broken here): fixed by an install, not by the
    configuration, so its record is marked retryable and a re-run measures it again."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ImportError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _watch_parent() -> None:
    """Block on stdin; at its end the runner is gone: end this process group (vLLM's too)."""

    def watch() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except (OSError, ValueError):
            pass
        print("the runner is gone (stdin closed): stopping this worker", file=sys.stderr, flush=True)
        if os.getpgrp() == os.getpid():
            os.killpg(os.getpgrp(), signal.SIGKILL)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="watch-parent").start()


def _free_device() -> None:
    if "torch" in sys.modules:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.empty_cache()


def run_job(job: dict[str, Any]) -> int:
    workdir = Path(job["workdir"])
    catalog_dirs = job.get("catalog_dirs", [])
    from gpu_bench.env import capture, catalog_gpu_id
    from gpu_bench.results import failed_record, ok_record

    captured: list[Any] = []

    def where() -> tuple[Any, str | None]:
        """The environment, captured once, after the engine's imports (torch's CUDA version)."""
        if not captured:
            captured.append(capture())
        env = captured[0]
        return env, catalog_gpu_id(env.gpus[0]) if env.gpus else None

    oom_at: int | None = None  # smallest batch that ran out of memory in this worker
    for raw in job["configs"]:
        config = RunConfig(**raw)
        print(f"START {config.key()}", flush=True)
        if oom_at is not None and config.batch_size > oom_at:
            env, gpu = where()
            record = failed_record(
                config,
                "oom",
                f"not run: batch {oom_at} of the same configuration ran out of memory in this worker, "
                f"and batch {config.batch_size} needs more (run again with --retry-failed to measure it)",
                env,
                gpu,
                inferred=True,
            )
            print("RECORD " + record.model_dump_json(exclude_none=True), flush=True)
            continue
        engine = None
        try:
            engine = _engine(config.engine)
            model_dir = _model_dir(config, workdir, catalog_dirs)
            measurement = engine.measure(config, model_dir)
            record = ok_record(config, measurement, *where())
        except Exception as exc:  # noqa: BLE001 - every failure becomes a record; the sweep goes on
            oom = _is_oom(exc)
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            print(traceback.format_exc(), file=sys.stderr, flush=True)
            if engine is not None and hasattr(engine, "release"):
                engine.release()
            env, gpu = where()
            record = failed_record(
                config, "oom" if oom else "error", detail, env, gpu, retryable=is_environment_problem(exc)
            )
            print("RECORD " + record.model_dump_json(exclude_none=True), flush=True)
            if not oom:
                print(
                    "a non-OOM error can leave the device unusable in this process: stopping, "
                    "a fresh worker takes the configurations left",
                    file=sys.stderr,
                    flush=True,
                )
                return EXIT_AFTER_ERROR
            oom_at = config.batch_size if oom_at is None else min(oom_at, config.batch_size)
            _free_device()
            continue
        print("RECORD " + record.model_dump_json(exclude_none=True), flush=True)
    return 0


def main() -> int:
    job = json.loads(sys.stdin.readline())
    if job.get("watch_parent"):
        _watch_parent()
    return run_job(job)


if __name__ == "__main__":
    raise SystemExit(main())
