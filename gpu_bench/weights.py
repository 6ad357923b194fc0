"""Model directories to benchmark: a real checkpoint, or random weights built from a catalog
architecture (the speed of a dense model does not depend on its weight values, so this is how
one measures a 70B model without downloading it).

- `hf_config(arch)`: the Hugging Face config.json of a catalog architecture.
- `tiny(arch)`: the same family and proportions, scaled down until it runs on a CPU in seconds.
- `build_tokenizer(dir)`: a byte-level BPE trained here on local text; never downloaded.
- `prepare_model_dir(...)`: a directory an engine can load: config, tokenizer and, for tiny
  models, random safetensors (so that loading, and quantizing on load, are the real code paths).

torch and transformers are imported inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import json
import math
import sysconfig
from pathlib import Path
from typing import Any

from planner.errors import PlannerError

ARCHITECTURES = {
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "mixtral": "MixtralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "phi3": "Phi3ForCausalLM",
    "gemma2": "Gemma2ForCausalLM",
}
TINY_VOCAB = 512
TINY_CONTEXT = 4096


def hf_config(arch: Any) -> dict[str, Any]:
    """config.json for a catalog Architecture (the inverse of planner.catalog.hf_config)."""
    if arch.model_type not in ARCHITECTURES:
        raise PlannerError(
            f"cannot build random weights for model_type {arch.model_type!r}; "
            f"supported: {', '.join(ARCHITECTURES)}"
        )
    cfg: dict[str, Any] = {
        "architectures": [ARCHITECTURES[arch.model_type]],
        "model_type": arch.model_type,
        "hidden_size": arch.hidden_size,
        "intermediate_size": arch.intermediate_size,
        "num_hidden_layers": arch.num_layers,
        "num_attention_heads": arch.num_attention_heads,
        "num_key_value_heads": arch.num_kv_heads,
        "head_dim": arch.head_dim,
        "vocab_size": arch.vocab_size,
        "max_position_embeddings": arch.max_context_tokens,
        "tie_word_embeddings": arch.tie_word_embeddings,
        "rms_norm_eps": 1e-5,
        "torch_dtype": "bfloat16",
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 0,
    }
    if arch.model_type == "mixtral":
        cfg["num_local_experts"] = arch.num_experts
        cfg["num_experts_per_tok"] = arch.experts_per_token
    if arch.model_type == "qwen2":
        cfg["use_sliding_window"] = False
    if arch.model_type == "gemma2":
        cfg["query_pre_attn_scalar"] = arch.head_dim
        cfg["sliding_window"] = arch.sliding_window_tokens or 4096
    if arch.model_type == "phi3":
        cfg["sliding_window"] = arch.sliding_window_tokens
    return cfg


def tiny(cfg: dict[str, Any]) -> dict[str, Any]:
    """The same family, GQA ratio and MLP ratio at hidden 256, 4 layers, vocab 512 (~4M params)."""
    out = dict(cfg)
    ratio = cfg["num_attention_heads"] // cfg["num_key_value_heads"]
    heads = 4
    out.update(
        hidden_size=256,
        head_dim=64,
        num_attention_heads=heads,
        num_key_value_heads=max(1, heads // min(ratio, heads)),
        num_hidden_layers=min(4, cfg["num_hidden_layers"]),
        # A multiple of 64: bitsandbytes' 4-bit CPU kernel (used where the CPU has AVX512-BF16)
        # packs weights in blocks of 32 output rows and fails on any other size.
        intermediate_size=int(256 * cfg["intermediate_size"] / cfg["hidden_size"]) // 64 * 64,
        vocab_size=TINY_VOCAB,
        max_position_embeddings=TINY_CONTEXT,
    )
    if "num_local_experts" in cfg:
        out["num_local_experts"] = min(4, cfg["num_local_experts"])
        out["num_experts_per_tok"] = min(2, cfg["num_experts_per_tok"])
    if out.get("sliding_window"):
        out["sliding_window"] = min(out["sliding_window"], TINY_CONTEXT)
    return out


def _training_text(limit_bytes: int = 2_000_000) -> list[str]:
    """Local text to train a tokenizer on: the standard library's own sources (always present)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    texts, size = [], 0
    for path in sorted(root.glob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        texts.append(text)
        size += len(text)
        if size >= limit_bytes:
            break
    return texts


def build_tokenizer(directory: Path, vocab_size: int = TINY_VOCAB) -> None:
    """A byte-level BPE tokenizer trained on local text, saved as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<s>", "</s>"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_training_text(), trainer=trainer)
    pad, bos, eos = specials
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=pad, bos_token=bos, eos_token=eos)
    fast.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    fast.save_pretrained(directory)


def save_random_checkpoint(directory: Path, cfg: dict[str, Any], dtype: str = "bf16", seed: int = 0) -> None:
    """Random weights (normal, std 0.02) for a config, saved as safetensors: a real checkpoint."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(seed)
    config = AutoConfig.for_model(**cfg)
    model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype(dtype))
    model.save_pretrained(directory, safe_serialization=True)


def torch_dtype(name: str) -> Any:
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]


def prepare_model_dir(
    architecture: Any, scale: str, workdir: Path, dtype: str = "bf16", with_weights: bool = True
) -> Path:
    """A directory with config.json and a tokenizer (and random weights when tiny or asked).

    Full-size models get no weights on disk: engines build them in memory (transformers) or with
    `load_format="dummy"` (vLLM). Directories are cached under `workdir` by their content.
    """
    cfg = hf_config(architecture)
    if scale == "tiny":
        cfg = tiny(cfg)
    digest = hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:12]
    directory = workdir / f"{cfg['model_type']}-{scale}-{dtype}-{digest}"
    marker = directory / ".complete"
    if marker.exists():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(cfg, indent=2))
    # A small vocabulary is enough: benchmarks send token ids below it, which every model accepts.
    build_tokenizer(directory, vocab_size=TINY_VOCAB)
    if scale == "tiny" and with_weights:
        save_random_checkpoint(directory, cfg, dtype)
    marker.write_text("ok")
    return directory


def param_bytes(model: Any) -> int:
    """Bytes of a loaded model's parameters and buffers (bitsandbytes' packed data included)."""
    total = 0
    for tensor in [*model.parameters(), *model.buffers()]:
        total += tensor.numel() * tensor.element_size()
        state = getattr(tensor, "quant_state", None)
        if state is not None:  # 4-bit absmax (and nested absmax) live beside the packed weight
            for part in (
                getattr(state, "absmax", None),
                getattr(getattr(state, "state2", None), "absmax", None),
            ):
                if part is not None:
                    total += part.numel() * part.element_size()
        scb = getattr(tensor, "SCB", None)
        if scb is not None:
            total += scb.numel() * scb.element_size()
    return total


def gib(n_bytes: float) -> float:
    return n_bytes / 1024**3 if n_bytes and math.isfinite(n_bytes) else 0.0
