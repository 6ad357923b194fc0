"""gpu-bench serve against `vllm serve` from vLLM's CPU build (run from .venv-vllm by scripts/test.sh)."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest

from tests.gpu_bench.conftest import gpu_bench

pytest.importorskip("vllm")
pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_vllm_serve_load_levels_with_metrics_scraped(tmp_path: Path, workdir: Path, monkeypatch) -> None:
    from gpu_bench.weights import prepare_model_dir
    from planner.catalog import Catalog
    from tests.conftest import CATALOGS

    model = prepare_model_dir(
        Catalog([CATALOGS]).model("qwen2.5-7b-instruct").architecture, "tiny", workdir, "fp32"
    )
    scratch = tmp_path / "vllm"
    for name, value in {
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "TMPDIR": str(scratch),
        "VLLM_CACHE_ROOT": str(scratch / "cache"),
    }.items():
        monkeypatch.setenv(name, value)
    scratch.mkdir()
    port = free_port()
    # The `vllm` console script of the CPU build needs the +cpu metadata fix; the module always works.
    launch = (
        f"{sys.executable} -m vllm.entrypoints.openai.api_server --model {model} --served-model-name tiny "
        f"--host 127.0.0.1 --port {port} --dtype float32 --enforce-eager --max-model-len 512"
    )
    out = tmp_path / "vllm.jsonl"
    result = gpu_bench(
        "serve",
        "--launch",
        launch,
        "--endpoint",
        f"http://127.0.0.1:{port}/v1",
        "--model",
        "tiny",
        "--tokenizer",
        str(model),
        "--concurrency",
        "1,8",
        "--num-requests",
        "16",
        "--warmup",
        "2",
        "--input-len",
        "64",
        "--output-len",
        "16",
        "--out",
        str(out),
        "--slo-tpot-ms",
        "1000",
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["concurrency"] for r in rows] == [1, 8]
    for r in rows:
        assert r["status"] == "ok", r
        assert not r["errors"], r
        assert r["engine"]["name"] == "vllm"
        assert r["engine"]["version"]
        assert r["output_tokens_source"] == "usage"
        assert r["output_tokens"] == 16  # ignore_eos and min_tokens are honoured by vLLM
        assert r["input_tokens"] == pytest.approx(64, abs=2)  # sized with the model's tokenizer
        assert r["engine"]["args"]["ignore_eos_sent"] is True
        assert "server_kv_cache_usage_max" in r["engine"]["args"]  # scraped from /metrics
    assert rows[1]["output_tokens_per_s"] > rows[0]["output_tokens_per_s"]  # batching helps
    assert os.path.exists(out.with_suffix(".server.log"))
