"""What every engine returns, and the measuring tools they share (device sync, memory peaks)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Measurement:
    """Raw timings of one configuration: one entry per repeat (warm-up excluded)."""

    prefill_s: list[float]  # a generate of 1 new token: prompt processing + first token
    e2e_s: list[float]  # a generate of output_len new tokens
    output_tokens: int  # new tokens per sequence, counted on the engine's output
    engine_version: str | None
    engine_args: dict[str, Any] = field(default_factory=dict)
    weights_memory_gib: float | None = None
    peak_vram_gib: float | None = None  # NVML: the device's used memory at its peak
    torch_max_reserved_gib: float | None = None
    torch_max_allocated_gib: float | None = None
    kv_cache_tokens: int | None = None
    max_concurrency_engine: float | None = None
    notes: list[str] = field(default_factory=list)


class EngineOOM(Exception):
    """The configuration does not fit in device memory (recorded as status oom, not a crash)."""


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


class NvmlPeak:
    """Samples the device's used memory in a thread (every 5 ms) and keeps the peak, in GiB.

    torch's own counters miss what lives outside its allocator (CUDA context, cuBLAS workspace,
    NCCL, other libraries); NVML sees the whole device. Does nothing where NVML is absent.
    """

    def __init__(self, index: int = 0, interval_s: float = 0.005):
        self.peak_bytes = 0
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handle = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            self._nvml = pynvml
        except Exception:  # noqa: BLE001 - no NVML, no driver, no GPU: nothing to sample
            self._handle = None

    def _sample(self) -> None:
        while not self._stop.is_set():
            used = self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used
            self.peak_bytes = max(self.peak_bytes, used)
            time.sleep(self._interval)

    def __enter__(self) -> NvmlPeak:
        if self._handle is not None:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def peak_gib(self) -> float | None:
        return self.peak_bytes / 1024**3 if self._handle is not None and self.peak_bytes else None


def random_prompts(batch: int, length: int, vocab: int, seed: int) -> list[list[int]]:
    """Token ids drawn uniformly from the vocabulary, avoiding the special ids 0-2."""
    import random

    rng = random.Random(seed)
    top = max(4, vocab - 1)
    return [[rng.randint(3, top) for _ in range(length)] for _ in range(batch)]


def timed(fn: Any, device: str) -> tuple[Any, float]:
    synchronize(device)
    start = time.perf_counter()
    result = fn()
    synchronize(device)
    return result, time.perf_counter() - start
