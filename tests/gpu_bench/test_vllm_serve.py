"""gpu-bench serve against `vllm serve` from vLLM's CPU build (run from .venv-vllm by scripts/test.sh):
an already-running server (the common case) is recorded as vllm, with its version and KV capacity,
and never answers from its prefix cache; a launched one is torn down after."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.gpu_bench.conftest import gpu_bench

pytest.importorskip("vllm")
pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tiny_model(workdir: Path) -> Path:
    from gpu_bench.weights import prepare_model_dir
    from planner.catalog import Catalog
    from tests.conftest import CATALOGS

    return prepare_model_dir(
        Catalog([CATALOGS]).model("qwen2.5-7b-instruct").architecture, "tiny", workdir, "fp32"
    )


@pytest.fixture(scope="module")
def vllm_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    scratch = tmp_path_factory.mktemp("vllm")
    return {
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "TMPDIR": str(scratch),
        "VLLM_CACHE_ROOT": str(scratch / "cache"),
        "HF_HUB_OFFLINE": "1",
    }


def vllm_command(model: Path, port: int) -> str:
    # The `vllm` console script of the CPU build needs the +cpu metadata fix; the module always works.
    return (
        f"{sys.executable} -m vllm.entrypoints.openai.api_server --model {model} --served-model-name tiny "
        f"--host 127.0.0.1 --port {port} --dtype float32 --enforce-eager --max-model-len 512"
    )


@pytest.fixture(scope="module")
def running_vllm(tiny_model: Path, vllm_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory):
    """A vLLM server started outside gpu-bench, as users usually have one."""
    import httpx

    port = free_port()
    log = (tmp_path_factory.mktemp("vllm-log") / "server.log").open("wb")
    proc = subprocess.Popen(
        vllm_command(tiny_model, port).split(),
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **vllm_env},
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, f"vllm exited with {proc.returncode}; log: {log.name}"
            assert time.monotonic() < deadline, "vllm did not start"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
        log.close()


# Prompts of more than one KV block (128 tokens on CPU): vLLM caches only whole blocks, so a shorter
# prompt could never be served from its prefix cache, fresh or not.
INPUT_LEN = 300


def serve_args(port: int, model: Path, out: Path, *extra: str) -> list[str]:
    return [
        "serve", "--endpoint", f"http://127.0.0.1:{port}/v1", "--model", "tiny", "--tokenizer", str(model),
        "--input-len", str(INPUT_LEN), "--output-len", "16", "--out", str(out), *extra,
    ]  # fmt: skip


def rows_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_an_already_running_vllm_server_is_recorded_as_vllm(
    tmp_path: Path, tiny_model: Path, running_vllm: int
) -> None:
    out = tmp_path / "running.jsonl"
    args = serve_args(
        running_vllm, tiny_model, out, "--concurrency", "1,8", "--num-requests", "64", "--warmup", "4",
        "--seed", "11", "--slo-tpot-ms", "1000",
    )  # fmt: skip
    result = gpu_bench(*args, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    rows = rows_of(out)
    assert [r["concurrency"] for r in rows] == [1, 8]
    for r in rows:
        assert r["status"] == "ok", r
        assert not r["errors"], r
        assert r["engine"]["name"] == "vllm"  # what the planner matches measured points on
        assert r["engine"]["version"]
        args_ = r["engine"]["args"]
        assert "GET /version" in args_["server_detected_by"]
        assert "launch" not in args_
        assert r["kv_cache_tokens"] > 0  # from vllm:cache_config_info
        assert args_["server_kv_block_size"] < INPUT_LEN
        assert args_["server_prefix_caching"] is True
        assert args_["server_prefix_cache_queries_delta"] > 0
        assert args_["server_prefix_cache_hits_delta"] == 0  # fresh prompts: nothing from the cache
        assert r["output_tokens_source"] == "usage"
        assert r["output_tokens"] == 16  # ignore_eos and min_tokens are honoured by vLLM
        assert r["input_tokens"] == pytest.approx(INPUT_LEN, abs=2)  # sized with the model's tokenizer
        assert args_["ignore_eos_sent"] is True
        assert args_["window"] == "steady"
        if not r["env"].get("gpus"):  # the server runs here, and here is a CPU
            assert r["device"] == "cpu"
            assert args_["hardware_from"].startswith("device: this machine")
    batching = [(r["output_tokens_per_s"], r["engine"]["args"], r.get("notes")) for r in rows]
    assert rows[1]["output_tokens_per_s"] > rows[0]["output_tokens_per_s"], batching  # batching helps

    # The same seed again sends the same prompts: the prefix cache answers them. So the zero above
    # is the fresh prompts' doing, and a repeat would have been seen.
    again = tmp_path / "again.jsonl"
    repeat = serve_args(
        running_vllm, tiny_model, again, "--concurrency", "1", "--num-requests", "32", "--warmup", "2",
        "--seed", "11",
    )  # fmt: skip
    result = gpu_bench(*repeat, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    (r,) = rows_of(again)
    assert r["engine"]["args"]["server_prefix_cache_hits_delta"] > 0


def test_a_launched_vllm_server_is_measured_and_torn_down(
    tmp_path: Path, tiny_model: Path, vllm_env: dict[str, str], monkeypatch
) -> None:
    for name, value in vllm_env.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    launch = vllm_command(tiny_model, port)
    out = tmp_path / "vllm.jsonl"
    args = serve_args(port, tiny_model, out, "--launch", launch, "--concurrency", "4", "--num-requests", "16")
    result = gpu_bench(*args, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    (r,) = rows_of(out)
    assert r["status"] == "ok", r
    assert r["engine"]["name"] == "vllm"
    assert "GET /version" in r["engine"]["args"]["server_detected_by"]  # seen, not guessed from --launch
    assert r["engine"]["args"]["launch"] == launch
    assert "server_kv_cache_usage_max" in r["engine"]["args"]  # scraped from /metrics
    assert os.path.exists(out.with_suffix(".server.log"))
    with socket.socket() as s:  # the launched server is gone: its port is free again
        s.bind(("127.0.0.1", port))
