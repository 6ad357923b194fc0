"""Parameter counts from an architecture, by component.

Components matter because quantization formats treat them differently: linear layers are packed,
embeddings, lm_head, norms, biases and MoE routers usually stay in 16-bit.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from planner.records import Architecture


@dataclass(frozen=True)
class ParamCounts:
    embedding: int
    lm_head: int  # 0 when tied to the embedding
    attention_linear: int  # q, k, v, o projections, all layers
    mlp_linear: int  # gate, up, down projections, all layers and all experts
    router: int  # MoE gate, all layers
    small: int  # norms and biases: vectors that no format quantizes
    mlp_linear_active: int  # the experts one token runs through

    @property
    def linear(self) -> int:
        """Weights of the quantizable linear layers in the decoder blocks."""
        return self.attention_linear + self.mlp_linear

    @property
    def total(self) -> int:
        return self.embedding + self.lm_head + self.linear + self.router + self.small

    @property
    def active(self) -> int:
        """Parameters one token touches (MoE: only its top-k experts)."""
        return self.total - self.mlp_linear + self.mlp_linear_active

    @property
    def decode_read(self) -> int:
        """Weights one decode step reads per token: all but the embedding table (a lookup)."""
        lm_head = self.lm_head if self.lm_head else self.embedding
        return self.active - self.embedding + lm_head


_FIELDS = (
    "num_layers", "hidden_size", "intermediate_size", "num_attention_heads", "num_kv_heads", "head_dim",
    "vocab_size", "tie_word_embeddings", "attention_bias", "qk_norm", "norms_per_layer", "num_experts",
    "experts_per_token",
)  # fmt: skip


_KEYS: dict[int, tuple[object, tuple]] = {}


def arch_key(arch: Architecture) -> tuple:
    """What the counts depend on, hashable: the cache key of everything computed from a shape.

    Remembered per architecture object (catalog rows live as long as the process).
    """
    hit = _KEYS.get(id(arch))
    if hit is not None and hit[0] is arch:
        return hit[1]
    key = tuple(getattr(arch, f) for f in _FIELDS)
    _KEYS[id(arch)] = (arch, key)
    return key


def param_counts(arch: Architecture) -> ParamCounts:
    return _param_counts(arch_key(arch))


def arch_from_key(key: tuple) -> SimpleNamespace:
    """The fields the counts need, back from a key (for functions cached on the key)."""
    return SimpleNamespace(**dict(zip(_FIELDS, key, strict=True)))


@functools.lru_cache(maxsize=512)
def _param_counts(key: tuple) -> ParamCounts:
    arch = arch_from_key(key)
    h, hd = arch.hidden_size, arch.head_dim
    q_width = arch.num_attention_heads * hd
    kv_width = arch.num_kv_heads * hd
    layers = arch.num_layers

    attention = layers * (h * q_width + 2 * h * kv_width + q_width * h)
    per_expert_mlp = 3 * h * arch.intermediate_size  # gated MLP: gate, up, down
    mlp = layers * arch.num_experts * per_expert_mlp
    mlp_active = layers * arch.experts_per_token * per_expert_mlp
    router = layers * h * arch.num_experts if arch.num_experts > 1 else 0

    per_layer_small = arch.norms_per_layer * h
    if arch.attention_bias:
        per_layer_small += q_width + 2 * kv_width
    if arch.qk_norm:
        per_layer_small += 2 * hd
    small = layers * per_layer_small + h  # + the final norm

    embedding = arch.vocab_size * h
    lm_head = 0 if arch.tie_word_embeddings else arch.vocab_size * h
    return ParamCounts(
        embedding=embedding,
        lm_head=lm_head,
        attention_linear=attention,
        mlp_linear=mlp,
        router=router,
        small=small,
        mlp_linear_active=mlp_active,
    )
