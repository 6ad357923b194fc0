"""What each gpu-bench command needs installed, checked before anything runs or is recorded.

Without this a missing package surfaces deep inside a worker as ModuleNotFoundError and is
recorded as a failed configuration. Checked with importlib.util.find_spec: nothing heavy is
imported to find out. A sweep refuses only the configurations whose engine lacks a package (one
line per package, with the install that fixes it) and runs the rest.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from planner.errors import PlannerError

BENCH = ("torch", "transformers", "tokenizers", "accelerate")
BNB = ("bitsandbytes",)
SERVE = ("httpx",)
TOKENIZER = ("transformers", "tokenizers")
VLLM_BNB_PLUGIN = "vllm_bnb_plugin"
INSTALL = {
    "bench": "on a CPU-only machine `pip install torch==2.13.0` first (else pip pulls a CUDA build), "
    "then `pip install 'selfhost-planner[bench]'`",
    "serve": "`pip install 'selfhost-planner[serve]'`",
    "vllm": "`pip install 'selfhost-planner[vllm]'` on a CUDA machine; on a CPU one, "
    "scripts/setup_vllm_cpu.sh builds a venv with vLLM's CPU build",
    "vllm-bnb": "`pip install bitsandbytes` and, where vLLM has no bitsandbytes of its own (its CPU "
    "build), `pip install --no-deps vllm-bnb-plugin` in vLLM's environment",
}


def missing(modules: Iterable[str]) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def require(modules: Iterable[str], extra: str, what: str) -> None:
    gone = missing(modules)
    if gone:
        raise PlannerError(f"{what} needs {', '.join(gone)} (not installed): {INSTALL[extra]}")


def require_tokenizer(path: str | None, what: str) -> None:
    """A local tokenizer directory is read with transformers (`--tokenizer`)."""
    if path:
        require(TOKENIZER, "bench", f"{what} --tokenizer")


def vllm_has_bitsandbytes() -> bool:
    """Whether the installed vLLM ships bitsandbytes itself (found on disk, vLLM not imported)."""
    spec = importlib.util.find_spec("vllm")
    if spec is None or not spec.submodule_search_locations:
        return False
    return any(
        (Path(loc) / "model_executor" / "layers" / "quantization" / "bitsandbytes.py").exists()
        for loc in spec.submodule_search_locations
    )


def needs(config: Any) -> list[tuple[str, str, str]]:
    """(module, install key, for what) a configuration's engine and quantization need."""
    engine = getattr(config, "engine", "transformers")
    bnb = (getattr(config, "quant", "") or "").startswith("bnb")
    out: list[tuple[str, str, str]] = []
    if engine == "transformers":
        out += [(m, "bench", "with the transformers engine") for m in BENCH]
        if bnb:
            out += [(m, "bench", "with bitsandbytes quantization") for m in BNB]
    elif engine == "vllm":
        out.append(("vllm", "vllm", "with the vllm engine"))
        if bnb:
            out += [(m, "vllm-bnb", "with vLLM's bitsandbytes quantization") for m in BNB]
            if importlib.util.find_spec("vllm") is not None and not vllm_has_bitsandbytes():
                out.append((VLLM_BNB_PLUGIN, "vllm-bnb", "with vLLM's bitsandbytes quantization"))
    return out


def split_by_requirements(configs: Iterable[Any], what: str) -> tuple[list[Any], list[str]]:
    """(the configurations that can run here, one message per missing package naming its install
    and how many configurations wait for it)."""
    runnable: list[Any] = []
    waiting: dict[tuple[str, str, str], int] = {}
    found: dict[str, bool] = {}
    for config in configs:
        gone = []
        for module, extra, purpose in needs(config):
            if module not in found:
                found[module] = importlib.util.find_spec(module) is not None
            if not found[module]:
                gone.append((module, extra, purpose))
        if not gone:
            runnable.append(config)
        for item in {g[0]: g for g in gone}.values():
            waiting[item] = waiting.get(item, 0) + 1
    lines = [
        f"{what} {purpose} needs {module} (not installed): {INSTALL[extra]}; "
        f"{n} configuration(s) skipped, nothing recorded for them"
        for (module, extra, purpose), n in waiting.items()
    ]
    return runnable, lines


def require_engines(configs: Iterable[Any], what: str) -> None:
    """Every configuration's packages, or a PlannerError naming each missing one."""
    _, lines = split_by_requirements(configs, what)
    if lines:
        raise PlannerError("\n".join(lines))
