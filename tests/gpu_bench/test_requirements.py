"""A missing package is refused before anything runs or is recorded, with the install that fixes it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

from gpu_bench.requirements import missing, require, require_engines
from planner.errors import PlannerError
from tests.gpu_bench.conftest import gpu_bench

ABSENT = "selfhost_planner_no_such_module"


def test_missing_lists_only_the_modules_that_cannot_be_found() -> None:
    assert missing(["json", ABSENT, "click"]) == [ABSENT]


def test_require_names_the_module_and_the_install_that_fixes_it() -> None:
    with pytest.raises(PlannerError) as exc:
        require(["json", ABSENT], "serve", "gpu-bench serve")
    message = str(exc.value)
    assert message.startswith(f"gpu-bench serve needs {ABSENT} (not installed)")
    assert "pip install 'selfhost-planner[serve]'" in message


def test_bitsandbytes_is_asked_for_only_by_bnb_quantizations(monkeypatch: pytest.MonkeyPatch) -> None:
    import gpu_bench.requirements as requirements

    monkeypatch.setattr(requirements, "BNB", (ABSENT,))
    plain = SimpleNamespace(engine="transformers", quant="none")
    require_engines([plain], "gpu-bench run")  # no bitsandbytes needed
    with pytest.raises(PlannerError, match="with bitsandbytes quantization needs"):
        require_engines([plain, SimpleNamespace(engine="transformers", quant="bnb-nf4")], "gpu-bench run")


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_vllm_engine_without_vllm_is_refused_and_nothing_is_recorded(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    result = gpu_bench(
        "run",
        "--model",
        "llama-3.1-8b-instruct",
        "--engine",
        "vllm",
        "--scale",
        "tiny",
        "--device",
        "cpu",
        "--batch-sizes",
        "1",
        "--out",
        str(out),
    )
    assert result.returncode == 2
    assert "with the vllm engine needs vllm (not installed)" in result.stderr
    assert "scripts/setup_vllm_cpu.sh" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_vllm_bitsandbytes_needs_bitsandbytes_and_the_plugin_where_vllm_lacks_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gpu_bench.requirements as requirements

    present = {"vllm"}
    monkeypatch.setattr(
        requirements.importlib.util,
        "find_spec",
        lambda name: SimpleNamespace(submodule_search_locations=[]) if name in present else None,
    )
    bnb = SimpleNamespace(engine="vllm", quant="bnb-nf4")
    plain = SimpleNamespace(engine="vllm", quant="none")
    runnable, lines = requirements.split_by_requirements([bnb, plain], "gpu-bench sweep")
    assert runnable == [plain]
    assert [line.split(" (not installed)")[0] for line in lines] == [
        "gpu-bench sweep with vLLM's bitsandbytes quantization needs bitsandbytes",
        "gpu-bench sweep with vLLM's bitsandbytes quantization needs vllm_bnb_plugin",
    ]
    assert all("vllm-bnb-plugin" in line and "1 configuration(s) skipped" in line for line in lines)
    monkeypatch.setattr(requirements, "vllm_has_bitsandbytes", lambda: True)
    present.add("bitsandbytes")
    assert requirements.split_by_requirements([bnb], "x") == ([bnb], [])  # no plugin needed


def test_missing_packages_are_counted_per_package_not_per_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gpu_bench.requirements as requirements

    monkeypatch.setattr(requirements, "BENCH", (ABSENT,))
    configs = [SimpleNamespace(engine="transformers", quant="none") for _ in range(3)]
    runnable, [line] = requirements.split_by_requirements(configs, "gpu-bench sweep")
    assert runnable == []
    assert "3 configuration(s) skipped, nothing recorded for them" in line


def test_a_tokenizer_needs_transformers(monkeypatch: pytest.MonkeyPatch) -> None:
    import gpu_bench.requirements as requirements

    requirements.require_tokenizer(None, "gpu-bench serve")  # no --tokenizer: nothing needed
    monkeypatch.setattr(requirements, "TOKENIZER", (ABSENT,))
    with pytest.raises(PlannerError, match=f"gpu-bench serve --tokenizer needs {ABSENT}"):
        requirements.require_tokenizer("./tok", "gpu-bench serve")
