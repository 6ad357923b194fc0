"""The process that measures: `python -m gpu_bench.worker` reads a job (JSON) on stdin, runs its
configurations in order, and reports each on stdout as `START <key>` then `RECORD <json>`.

It runs apart from the sweep so that a CUDA error, an out-of-memory kill or a segfault ends this
process only: the sweep records what happened and goes on. Heavy imports happen here.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any

from gpu_bench.config import RunConfig


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


def main() -> int:
    job = json.loads(sys.stdin.read())
    workdir = Path(job["workdir"])
    catalog_dirs = job.get("catalog_dirs", [])
    from gpu_bench.env import capture, catalog_gpu_id
    from gpu_bench.results import failed_record, ok_record

    env = None
    for raw in job["configs"]:
        config = RunConfig(**raw)
        print(f"START {config.key()}", flush=True)
        engine = None
        try:
            engine = _engine(config.engine)
            model_dir = _model_dir(config, workdir, catalog_dirs)
            measurement = engine.measure(config, model_dir)
            env = env or capture()
            record = ok_record(config, measurement, env, catalog_gpu_id(env.gpus[0]) if env.gpus else None)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a record; the sweep goes on
            env = env or capture()
            gpu = catalog_gpu_id(env.gpus[0]) if env.gpus else None
            status = "oom" if _is_oom(exc) else "error"
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            print(traceback.format_exc(), file=sys.stderr, flush=True)
            record = failed_record(config, status, detail, env, gpu)
            if engine is not None and hasattr(engine, "release"):
                engine.release()
        print("RECORD " + record.model_dump_json(exclude_none=True), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
