"""GPU checks (skipped without CUDA): run by scripts/device_check.sh on a lent GPU machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import require
from tests.gpu_bench.conftest import gpu_bench

torch = require("torch")  # the bench extra; only a missing CUDA device skips
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_full_size_random_8b_bf16_and_nf4_on_the_gpu(tmp_path: Path, workdir: Path) -> None:
    out = tmp_path / "gpu.jsonl"
    for quant in ("none", "bnb-nf4"):
        result = gpu_bench(
            "run",
            "--model",
            "llama-3.1-8b-instruct",
            "--quant",
            quant,
            "--device",
            "cuda",
            "--batch-sizes",
            "1,8",
            "--input-len",
            "128",
            "--output-len",
            "32",
            "--repeats",
            "2",
            "--out",
            str(out),
            "--workdir",
            str(workdir),
        )
        assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(r["status"] == "ok" and r["device"] == "cuda" for r in rows)
    for r in rows:
        assert r["peak_vram_gib"], r
        assert r["torch_max_allocated_gib"], r
        assert r["gpu"], r
        assert r["output_tokens"] == 32
    bf16 = next(r for r in rows if r["quant"] == "bf16")
    nf4 = next(r for r in rows if r["quant"] == "bnb-nf4")
    assert bf16["weights_memory_gib"] == pytest.approx(16.06e9 / 1024**3, rel=0.03)  # 2 bytes x 8.03B
    assert nf4["weights_memory_gib"] < 0.4 * bf16["weights_memory_gib"]


def test_an_impossible_size_is_an_oom_record(tmp_path: Path, workdir: Path) -> None:
    out = tmp_path / "oom.jsonl"
    result = gpu_bench(
        "run",
        "--model",
        "llama-3.1-8b-instruct",
        "--device",
        "cuda",
        "--batch-sizes",
        "4096",
        "--input-len",
        "8000",
        "--output-len",
        "8",
        "--repeats",
        "1",
        "--out",
        str(out),
        "--workdir",
        str(workdir),
    )
    assert result.returncode == 0
    row = json.loads(out.read_text().splitlines()[-1])
    assert row["status"] == "oom"
