"""What one benchmark run is: the configuration a record describes and the key a sweep resumes by."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

ENGINES = ("transformers", "vllm")
SCALES = ("full", "tiny")
DTYPES = ("bf16", "fp16", "fp32")
DEVICES = ("cuda", "cpu")
"""Where an engine runs here. ROCm is not offered: the engines hand the device to torch as its
name, and no ROCm machine has run them."""
QUANT_ENGINES = {
    "transformers": ("none", "bnb-int8", "bnb-nf4", "bnb-fp4"),
    "vllm": ("none", "fp8", "awq-int4", "gptq-int4", "gptq-int8", "bnb-nf4"),
}
"""Quantization each engine runs here ('none' = the dtype). AWQ/GPTQ need real checkpoints."""


def default_dtype(device: str) -> str:
    """bf16 on a GPU; fp32 on a CPU, where bf16 is slower (MACHINE-NOTES) and the tiny tests run."""
    return "fp32" if device == "cpu" else "bf16"


def tp_problem(engine: str, tp: int) -> str | None:
    """Why a tensor parallelism cannot be asked of an engine, or None."""
    if tp > 1 and engine != "vllm":
        return (
            f"tensor parallelism needs engine vllm ({engine} loads the model on one device, so a "
            f"record of tp {tp} would be mislabelled)"
        )
    return None


@dataclass(frozen=True)
class RunConfig:
    model: str  # catalog model id, or a local checkpoint directory
    quant: str  # none | bnb-int8 | bnb-nf4 | bnb-fp4 | fp8 | awq-int4 | gptq-int4 | gptq-int8
    engine: str  # transformers | vllm
    batch_size: int
    input_len: int
    output_len: int
    weights: str = "dummy"  # dummy (random, built from the architecture) or a checkpoint path
    scale: str = "full"  # full: the catalog architecture; tiny: the same shape scaled down (CPU tests)
    device: str = "cuda"
    dtype: str = "bf16"
    tp: int = 1
    double_quant: bool = False
    repeats: int = 3
    warmup: int = 1
    gpu_memory_utilization: float = 0.9
    max_num_seqs: int | None = None
    enforce_eager: bool = False
    kv_cache_dtype: str = "auto"
    seed: int = 0
    extra: dict[str, str] = field(default_factory=dict)

    def key(self) -> str:
        """Stable identity of what is measured (repeats and warm-up are how, not what)."""
        data = asdict(self)
        for how in ("repeats", "warmup", "seed"):
            data.pop(how)
        blob = json.dumps(data, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def with_batch(self, batch_size: int) -> RunConfig:
        return replace(self, batch_size=batch_size)

    @property
    def record_quant(self) -> str:
        """The catalog's quantization name: the dtype when unquantized."""
        return self.dtype if self.quant == "none" else self.quant

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        return cls(**json.loads(text))
