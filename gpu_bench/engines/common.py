"""What every engine returns, and the measuring tools they share (device sync, memory peaks)."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Measurement:
    """Raw timings of one configuration: one entry per repeat (warm-up excluded)."""

    prefill_s: list[float]  # a generate of 1 new token: prompt processing + first token
    e2e_s: list[float]  # a generate of output_len new tokens
    output_tokens: float  # new tokens per sequence (mean), counted on the engine's output
    engine_version: str | None
    engine_args: dict[str, Any] = field(default_factory=dict)
    weights_memory_gib: float | None = None
    peak_vram_gib: float | None = None  # NVML: the fullest visible device's used memory at its peak
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


def visible_devices(cuda_visible: str | None, uuids: list[str]) -> list[int | str]:
    """The devices CUDA may use, as NVML indices (or MIG UUIDs), from CUDA_VISIBLE_DEVICES.

    Entries are indices or (prefixes of) GPU UUIDs; as in CUDA, an unset variable means every
    device and the list ends at the first entry that names none ("-1", "" or a bad index). An
    index is read as NVML's (PCI bus) order, which is CUDA's with CUDA_DEVICE_ORDER=PCI_BUS_ID.
    """
    if cuda_visible is None:
        return list(range(len(uuids)))
    out: list[int | str] = []
    for raw in cuda_visible.split(","):
        entry = raw.strip()
        if entry.isdigit():
            if int(entry) >= len(uuids):
                break
            found: int | str = int(entry)
        elif entry.startswith("MIG-"):
            found = entry  # a MIG instance: NVML resolves its UUID to its own handle
        elif entry.startswith("GPU-"):
            matches = [i for i, u in enumerate(uuids) if u.startswith(entry)]
            if len(matches) != 1:
                break
            found = matches[0]
        else:
            break
        if found not in out:
            out.append(found)
    return out


class NvmlPeak:
    """Samples the used memory of every visible device in a thread (every 5 ms), in GiB.

    torch's own counters miss what lives outside its allocator (CUDA context, cuBLAS workspace,
    NCCL, other processes such as vLLM's engine core); NVML sees the whole device. The devices are
    those CUDA_VISIBLE_DEVICES leaves visible (all of them under tensor parallelism), each peak
    kept apart. Does nothing where NVML is absent.
    """

    def __init__(self, interval_s: float = 0.005):
        self.peaks: dict[str, int] = {}  # device label (nvml0, or a MIG UUID) -> peak used bytes
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handles: dict[str, Any] = {}
        try:
            import pynvml

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            uuids = [_text(pynvml.nvmlDeviceGetUUID(h)) for h in handles]
            for device in visible_devices(os.environ.get("CUDA_VISIBLE_DEVICES"), uuids):
                if isinstance(device, int):
                    self._handles[f"nvml{device}"] = handles[device]
                else:
                    self._handles[device] = pynvml.nvmlDeviceGetHandleByUUID(device)
            self._nvml = pynvml
        except Exception:  # noqa: BLE001 - no NVML, no driver, no GPU: nothing to sample
            self._handles = {}

    def _sample(self) -> None:
        while not self._stop.is_set():
            for label, handle in self._handles.items():
                used = self._nvml.nvmlDeviceGetMemoryInfo(handle).used
                self.peaks[label] = max(self.peaks.get(label, 0), used)
            time.sleep(self._interval)

    def __enter__(self) -> NvmlPeak:
        if self._handles:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def peak_gib(self) -> float | None:
        """The largest device peak (under tensor parallelism: the fullest GPU)."""
        return max(self.peaks.values()) / 1024**3 if self.peaks and max(self.peaks.values()) else None

    def per_device_args(self) -> dict[str, float]:
        """Engine-args entries naming each device sampled and its peak: peak_vram_gib_nvml0 = 71.2."""
        return {f"peak_vram_gib_{label}": round(b / 1024**3, 3) for label, b in sorted(self.peaks.items())}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def new_token_counts(new_tokens: list[list[int]], eos_ids: set[int]) -> list[int]:
    """Tokens each sequence produced: up to and including its first EOS (what follows is padding),
    else all of them. With EOS suppressed every count is the length asked for; a shorter one is
    an early stop the record must note."""
    counts = []
    for row in new_tokens:
        n = len(row)
        for i, token in enumerate(row):
            if token in eos_ids:
                n = i + 1
                break
        counts.append(n)
    return counts


def count_notes(asked: int, counts: list[int], prompts_sent: int) -> list[str]:
    """Notes for a record whose engine output differs from what was asked (empty when it matches).

    counts: new tokens of every sequence of every measured repeat; prompts_sent: how many there were.
    """
    notes = []
    if len(counts) != prompts_sent:
        notes.append(f"sent {prompts_sent} prompts, the engine returned {len(counts)} outputs")
    if any(n != asked for n in counts):
        notes.append(
            f"asked for {asked} new tokens per sequence, the engine produced {min(counts, default=0)}"
            f"-{max(counts, default=0)} (the record's output_tokens is the mean produced)"
        )
    return notes


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
