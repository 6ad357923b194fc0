"""Turn a Hugging Face config.json into a catalog ModelSpec (`planner catalog add-model`)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from planner.errors import PlannerError
from planner.records import Architecture, ModelSpec, Source

# Where config.json leaves a field out, transformers' config class default applies.
_TIED_BY_DEFAULT = {"gemma", "gemma2", "gemma3", "gemma3_text"}
_QK_NORM = {"qwen3", "qwen3_moe", "olmo2", "gemma3", "gemma3_text"}
_FOUR_NORMS = {"gemma2", "gemma3", "gemma3_text"}
_QKV_BIAS = {"qwen2", "qwen2_moe"}


def _require(cfg: dict[str, Any], key: str, path: Path) -> Any:
    if cfg.get(key) is None:
        raise PlannerError(f"{path}: config.json has no {key!r}; is this a decoder-only transformer config?")
    return cfg[key]


def architecture_from_config(cfg: dict[str, Any], path: Path) -> tuple[Architecture, list[str]]:
    """The Architecture a config.json describes, and notes on every value that was assumed."""
    notes: list[str] = []
    if isinstance(cfg.get("text_config"), dict):  # multimodal wrappers keep the LLM here
        cfg = {
            **cfg["text_config"],
            "model_type": cfg["text_config"].get("model_type", cfg.get("model_type")),
        }
        notes.append("architecture read from text_config")
    model_type = str(cfg.get("model_type") or "unknown")
    if cfg.get("shared_expert_intermediate_size") or cfg.get("n_shared_experts"):
        raise PlannerError(f"{path}: MoE models with shared experts ({model_type}) are not supported yet")
    heads = int(_require(cfg, "num_attention_heads", path))
    hidden = int(_require(cfg, "hidden_size", path))
    kv_heads = cfg.get("num_key_value_heads")
    if kv_heads is None:
        kv_heads = heads
        notes.append("num_key_value_heads absent: multi-head attention assumed")
    head_dim = cfg.get("head_dim") or hidden // heads
    num_experts = int(
        cfg.get("num_local_experts") or cfg.get("num_experts") or cfg.get("n_routed_experts") or 1
    )
    intermediate = (
        cfg.get("moe_intermediate_size") if num_experts > 1 and cfg.get("moe_intermediate_size") else None
    )
    intermediate = intermediate or _require(cfg, "intermediate_size", path)
    tied = cfg.get("tie_word_embeddings")
    if tied is None:
        tied = model_type in _TIED_BY_DEFAULT
        notes.append(f"tie_word_embeddings absent: {tied} assumed ({model_type} default)")
    sliding = cfg.get("sliding_window") if cfg.get("use_sliding_window", True) else None
    try:
        arch = Architecture(
            model_type=model_type,
            num_layers=int(_require(cfg, "num_hidden_layers", path)),
            hidden_size=hidden,
            intermediate_size=int(intermediate),
            num_attention_heads=heads,
            num_kv_heads=int(kv_heads),
            head_dim=int(head_dim),
            vocab_size=int(_require(cfg, "vocab_size", path)),
            tie_word_embeddings=bool(tied),
            max_context_tokens=int(_require(cfg, "max_position_embeddings", path)),
            attention_bias=bool(cfg.get("attention_bias", model_type in _QKV_BIAS)),
            qk_norm=model_type in _QK_NORM,
            norms_per_layer=4 if model_type in _FOUR_NORMS else 2,
            num_experts=num_experts,
            experts_per_token=int(cfg.get("num_experts_per_tok") or 1),
            sliding_window_tokens=int(sliding) if sliding else None,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise PlannerError(f"{path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    except (TypeError, ValueError) as exc:
        raise PlannerError(f"{path}: a value is not a number: {exc}") from None
    if cfg.get("quantization_config"):
        method = cfg["quantization_config"].get("quant_method", "?")
        notes.append(f"checkpoint is quantized ({method}); the catalog row describes the architecture")
    return arch, notes


def suggest_id(name: str) -> str:
    """'meta-llama/Llama-3.1-8B-Instruct' -> 'llama-3.1-8b-instruct'."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", name.rsplit("/", 1)[-1].lower()).strip("-._")
    return slug or "my-model"


def model_from_config(
    config_path: Path,
    model_id: str | None = None,
    name: str | None = None,
    license: str = "unknown",
    hf_repo: str | None = None,
    today: dt.date | None = None,
) -> ModelSpec:
    path = config_path / "config.json" if config_path.is_dir() else config_path
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlannerError(f"{path}: no such file; give the path of a config.json or its folder") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PlannerError(f"{path}: not a JSON file ({exc})") from None
    if not isinstance(cfg, dict):
        raise PlannerError(f"{path}: expected a JSON object")
    arch, notes = architecture_from_config(cfg, path)
    origin = cfg.get("_name_or_path") or hf_repo or path.resolve().parent.name
    model_id = model_id or suggest_id(str(origin))
    try:
        return ModelSpec(
            id=model_id,
            name=name or str(origin),
            hf_repo=hf_repo or str(origin),
            architecture=arch,
            license=license,
            source=Source(
                citation=f"config.json at {path.resolve()}",
                checked_at=today or dt.date.today(),
                note="; ".join(["added by planner catalog add-model", *notes]),
            ),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise PlannerError(
            f"--id {model_id!r}: {first['msg']}; use lowercase letters, digits, '-', '.'"
        ) from None
