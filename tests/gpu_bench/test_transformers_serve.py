"""gpu-bench serve against a real server the test starts: `transformers serve --continuous-batching`
on a tiny local model, launched and torn down by --launch."""

from __future__ import annotations

import json
import shutil
import socket
import sys
from pathlib import Path

import pytest

from tests.conftest import require
from tests.gpu_bench.conftest import gpu_bench

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tiny_model(workdir: Path) -> Path:
    from gpu_bench.weights import prepare_model_dir
    from planner.catalog import Catalog
    from tests.conftest import CATALOGS

    arch = Catalog([CATALOGS]).model("llama-3.1-8b-instruct").architecture
    return prepare_model_dir(arch, "tiny", workdir, "fp32")


def transformers_cli() -> str:
    exe = Path(sys.executable).parent / "transformers"
    return str(exe) if exe.exists() else (shutil.which("transformers") or "transformers")


def test_transformers_serve_under_load(tmp_path: Path, tiny_model: Path) -> None:
    require("fastapi")  # transformers[serving], in the serve extra
    port = free_port()
    out = tmp_path / "ts.jsonl"
    launch = f"{transformers_cli()} serve {tiny_model} --device cpu --port {port} --continuous-batching"
    result = gpu_bench(
        "serve",
        "--launch",
        launch,
        "--endpoint",
        f"http://127.0.0.1:{port}/v1",
        "--model",
        str(tiny_model),
        "--api",
        "chat",
        "--tokenizer",
        str(tiny_model),
        "--concurrency",
        "1,4",
        "--num-requests",
        "8",
        "--warmup",
        "2",
        "--input-len",
        "32",
        "--output-len",
        "12",
        "--out",
        str(out),
        "--format",
        "json",
        "--slo-ttft-ms",
        "5000",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["concurrency"] for r in rows] == [1, 4]
    for r in rows:
        assert r["status"] == "ok", r
        assert r["engine"]["name"] == "transformers-serve"
        # Seen in what it exposes, not guessed from the --launch command.
        assert r["engine"]["args"]["server_detected_by"] == "its OpenAPI routes (/load_model, /reset)"
        assert launch in r["engine"]["args"]["launch"]
        assert r["engine"]["args"]["window"] in ("steady", "whole-run")
        assert r["output_tokens_source"] == "usage"
        assert r["num_requests"] == 8
        assert not r["errors"]
        assert r["ttft_ms"]["p50"] > 0
        assert r["tpot_ms"]["p50"] > 0
        assert r["goodput_requests_per_s"] is not None
        assert r["input_tokens"] > 0
        assert 0 < r["output_tokens"] <= 12
        assert r["engine"]["args"]["ignore_eos_sent"] is False  # it refuses unknown fields
    assert "refuses ignore_eos" in result.stderr
    # The launched server is gone: its port is free again.
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_a_server_that_dies_is_a_clear_error(tmp_path: Path) -> None:
    result = gpu_bench(
        "serve",
        "--launch",
        f"{sys.executable} -c 'import sys; print(\"boom\"); sys.exit(3)'",
        "--endpoint",
        "http://127.0.0.1:9/v1",
        "--model",
        "x",
        "--out",
        str(tmp_path / "x.jsonl"),
    )
    assert result.returncode == 2
    assert "exited with code 3" in result.stderr
    assert "boom" in result.stderr
