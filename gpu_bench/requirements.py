"""What each gpu-bench command needs installed, checked before anything runs or is recorded.

Without this a missing package surfaces deep inside a worker as ModuleNotFoundError, is recorded
as a failed configuration, and is then skipped on resume even after the install. Checked with
importlib.util.find_spec: nothing heavy is imported to find out.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

from planner.errors import PlannerError

BENCH = ("torch", "transformers", "tokenizers", "accelerate")
BNB = ("bitsandbytes",)
SERVE = ("httpx",)
INSTALL = {
    "bench": "on a CPU-only machine `pip install torch==2.13.0` first (else pip pulls a CUDA build), "
    "then `pip install 'selfhost-planner[bench]'`",
    "serve": "`pip install 'selfhost-planner[serve]'`",
    "vllm": "`pip install 'selfhost-planner[vllm]'` on a CUDA machine; on a CPU one, "
    "scripts/setup_vllm_cpu.sh builds a venv with vLLM's CPU build",
}


def missing(modules: Iterable[str]) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def require(modules: Iterable[str], extra: str, what: str) -> None:
    gone = missing(modules)
    if gone:
        raise PlannerError(f"{what} needs {', '.join(gone)} (not installed): {INSTALL[extra]}")


def require_engines(configs: Iterable[object], what: str) -> None:
    """The packages the configurations' engines and quantizations need."""
    configs = list(configs)
    engines = {getattr(c, "engine", "transformers") for c in configs}
    if "transformers" in engines:
        require(BENCH, "bench", f"{what} with the transformers engine")
        quants = {
            getattr(c, "quant", "") or "" for c in configs if getattr(c, "engine", "") == "transformers"
        }
        if any(q.startswith("bnb") for q in quants):
            require(BNB, "bench", f"{what} with bitsandbytes quantization")
    if "vllm" in engines:
        require(("vllm",), "vllm", f"{what} with the vllm engine")
