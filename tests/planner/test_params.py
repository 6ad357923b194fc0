from __future__ import annotations

import pytest

from planner.catalog import Catalog
from planner.perf.params import param_counts
from tests.conftest import CATALOGS

# Totals computed by hand from the published architectures (see reference FACTS, section 1).
EXPECTED_B = {
    "llama-3.1-8b-instruct": 8.030,
    "llama-3.1-70b-instruct": 70.554,
    "llama-3.1-405b-instruct": 405.853,
    "mistral-7b-instruct-v0.3": 7.248,
    "mixtral-8x7b-instruct": 46.703,
    "qwen2.5-7b-instruct": 7.616,
    "qwen2.5-72b-instruct": 72.706,
    "qwen3-8b": 8.191,
    "qwen3-32b": 32.762,
    "phi-3-mini-4k-instruct": 3.821,
    "phi-4": 14.660,
    "gemma-2-9b-it": 9.242,
    "gemma-2-27b-it": 27.227,
}


@pytest.fixture(scope="module")
def models():
    return Catalog([CATALOGS]).models


@pytest.mark.parametrize(("model_id", "billions"), EXPECTED_B.items())
def test_param_counts_match_hand_computed_totals(models, model_id: str, billions: float) -> None:
    assert param_counts(models[model_id].architecture).total / 1e9 == pytest.approx(billions, abs=5e-4)


def test_llama_8b_components_by_hand(models) -> None:
    p = param_counts(models["llama-3.1-8b-instruct"].architecture)
    assert p.embedding == p.lm_head == 128256 * 4096
    assert p.attention_linear == 32 * (4096 * 4096 * 2 + 2 * 4096 * 1024)
    assert p.mlp_linear == 32 * 3 * 4096 * 14336
    assert p.small == 32 * 2 * 4096 + 4096


def test_mixtral_active_params_count_two_of_eight_experts(models) -> None:
    p = param_counts(models["mixtral-8x7b-instruct"].architecture)
    assert p.active / 1e9 == pytest.approx(12.880, abs=5e-4)
    assert p.router == 32 * 4096 * 8


def test_tied_embeddings_have_no_separate_lm_head(models) -> None:
    p = param_counts(models["gemma-2-9b-it"].architecture)
    assert p.lm_head == 0
    assert p.decode_read == p.total  # the tied table is read once per step, as the lm_head
