"""GPU checks (skipped without CUDA): run by scripts/device_check.sh on a lent GPU machine; and
how NVML's devices are chosen, checked here on any machine with a fake NVML."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from gpu_bench.engines.common import NvmlPeak, visible_devices
from tests.conftest import ROOT

HAS_CUDA = importlib.util.find_spec("torch") is not None and __import__("torch").cuda.is_available()


def gpu_bench(*args: str) -> subprocess.CompletedProcess[str]:
    """`gpu-bench ARGS` in a fresh process, keeping PYTHONPATH: on the device machine the carried
    wheels are installed into a folder on it (scripts/device_check.sh)."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": path}
    return subprocess.run(
        [sys.executable, "-m", "gpu_bench.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )


UUIDS = ["GPU-aaaa-1111", "GPU-bbbb-2222", "GPU-cccc-3333", "GPU-dddd-4444"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, [0, 1, 2, 3]),  # unset: every device
        ("2", [2]),
        ("3,1", [3, 1]),
        ("1,1", [1]),
        ("GPU-cccc", [2]),  # a unique UUID prefix, as CUDA accepts
        ("GPU-bbbb-2222,0", [1, 0]),
        ("0,7,1", [0]),  # CUDA stops at the first entry that names no device
        ("-1", []),
        ("", []),
        ("GPU-", []),  # ambiguous prefix
        ("MIG-0f1e", ["MIG-0f1e"]),
    ],
)
def test_visible_devices_follow_cuda_visible_devices(value: str | None, expected: list) -> None:
    assert visible_devices(value, UUIDS) == expected


def _fake_nvml(used: dict[int, list[int]]) -> types.ModuleType:
    """pynvml over len(used) devices; each call for a device's memory returns its next sample."""
    nvml = types.ModuleType("pynvml")
    samples = {i: iter(v) for i, v in used.items()}
    last = {i: v[-1] for i, v in used.items()}
    nvml.nvmlInit = lambda: None
    nvml.nvmlDeviceGetCount = lambda: len(used)
    nvml.nvmlDeviceGetHandleByIndex = lambda i: i
    nvml.nvmlDeviceGetUUID = lambda h: UUIDS[h]
    nvml.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=next(samples[h], last[h]))
    return nvml


def test_nvml_peak_samples_every_visible_device_and_keeps_each_peak(monkeypatch: pytest.MonkeyPatch) -> None:
    gib = 1024**3
    monkeypatch.setitem(
        sys.modules,
        "pynvml",
        _fake_nvml({0: [1 * gib], 1: [2 * gib, 9 * gib, 3 * gib], 2: [5 * gib, 4 * gib]}),
    )
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,1")  # device 0 is someone else's
    with NvmlPeak(interval_s=0.001) as peak:
        import time

        time.sleep(0.05)
    assert peak.peaks == {"nvml1": 9 * gib, "nvml2": 5 * gib}
    assert peak.peak_gib == 9
    assert peak.per_device_args() == {"peak_vram_gib_nvml1": 9.0, "peak_vram_gib_nvml2": 5.0}


def test_nvml_peak_is_none_without_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    with NvmlPeak() as peak:
        pass
    assert peak.peak_gib is None
    assert peak.per_device_args() == {}


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
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
        assert r["output_tokens"] == 32  # counted on the output
        assert not r.get("notes"), r["notes"]
        assert r["engine"]["args"]["peak_vram_gib_nvml0"] == pytest.approx(r["peak_vram_gib"], abs=1e-3)
    bf16 = next(r for r in rows if r["quant"] == "bf16")
    nf4 = next(r for r in rows if r["quant"] == "bnb-nf4")
    assert bf16["weights_memory_gib"] == pytest.approx(16.06e9 / 1024**3, rel=0.03)  # 2 bytes x 8.03B
    assert nf4["weights_memory_gib"] < 0.4 * bf16["weights_memory_gib"]


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
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
