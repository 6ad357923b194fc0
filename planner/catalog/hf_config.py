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


def _whole(cfg: dict[str, Any], key: str, path: Path, *, default: int | None = None) -> int:
    """A positive whole number from config.json (JSON gives ints; "32", 32.5, true are refused)."""
    value = cfg.get(key)
    if value is None:
        if default is not None:
            return default
        value = _require(cfg, key, path)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PlannerError(f"{path}: config.json field {key!r} must be a whole number, got {value!r}")
    if value <= 0:
        raise PlannerError(f"{path}: config.json field {key!r} must be greater than 0, got {value}")
    return value


def _flag(cfg: dict[str, Any], key: str, path: Path, default: bool) -> bool:
    value = cfg.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise PlannerError(f"{path}: config.json field {key!r} must be true or false, got {value!r}")
    return value


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
    heads = _whole(cfg, "num_attention_heads", path)
    hidden = _whole(cfg, "hidden_size", path)
    if cfg.get("num_key_value_heads") is None:
        notes.append("num_key_value_heads absent: multi-head attention assumed")
    kv_heads = _whole(cfg, "num_key_value_heads", path, default=heads)
    if cfg.get("head_dim") is None and hidden % heads:
        raise PlannerError(
            f"{path}: config.json has no 'head_dim' and hidden_size ({hidden}) is not a multiple of "
            f"num_attention_heads ({heads}); add head_dim"
        )
    head_dim = _whole(cfg, "head_dim", path, default=hidden // heads)
    experts_key = next(
        (k for k in ("num_local_experts", "num_experts", "n_routed_experts") if cfg.get(k)), "num_experts"
    )
    num_experts = _whole(cfg, experts_key, path, default=1)
    intermediate_key = (
        "moe_intermediate_size"
        if num_experts > 1 and cfg.get("moe_intermediate_size") is not None
        else "intermediate_size"
    )
    tied_default = model_type in _TIED_BY_DEFAULT
    if cfg.get("tie_word_embeddings") is None:
        notes.append(f"tie_word_embeddings absent: {tied_default} assumed ({model_type} default)")
    tied = _flag(cfg, "tie_word_embeddings", path, tied_default)
    sliding = (
        _whole(cfg, "sliding_window", path, default=0) or None
        if cfg.get("sliding_window") and _flag(cfg, "use_sliding_window", path, True)
        else None
    )
    quant = cfg.get("quantization_config")
    if quant is not None and not isinstance(quant, dict):
        raise PlannerError(
            f"{path}: config.json field 'quantization_config' must be an object with a quant_method, "
            f"got {quant!r}"
        )
    try:
        arch = Architecture(
            model_type=model_type,
            num_layers=_whole(cfg, "num_hidden_layers", path),
            hidden_size=hidden,
            intermediate_size=_whole(cfg, intermediate_key, path),
            num_attention_heads=heads,
            num_kv_heads=kv_heads,
            head_dim=head_dim,
            vocab_size=_whole(cfg, "vocab_size", path),
            tie_word_embeddings=tied,
            max_context_tokens=_whole(cfg, "max_position_embeddings", path),
            attention_bias=_flag(cfg, "attention_bias", path, model_type in _QKV_BIAS),
            qk_norm=model_type in _QK_NORM,
            norms_per_layer=4 if model_type in _FOUR_NORMS else 2,
            num_experts=num_experts,
            experts_per_token=_whole(cfg, "num_experts_per_tok", path, default=1),
            sliding_window_tokens=sliding,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise PlannerError(f"{path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    if quant:
        method = quant.get("quant_method", "?")
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
    named = cfg.get("_name_or_path")
    named = named.strip() if isinstance(named, str) and named.strip() else None
    # The repository is what the config or the user says, never guessed from a folder name.
    hf_repo = hf_repo or named
    if hf_repo is None:
        notes.append("hf_repo unknown: config.json has no _name_or_path and no --hf-repo was given")
    origin = hf_repo or path.resolve().parent.name
    model_id = model_id or suggest_id(origin)
    try:
        return ModelSpec(
            id=model_id,
            name=name or origin,
            hf_repo=hf_repo,
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
