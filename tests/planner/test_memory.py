"""Memory: hand-computed KV and weights, formats against real checkpoints, fit and TP choices."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.catalog import Catalog
from planner.perf.memory import (
    EngineMemory,
    fit,
    kv_bytes_per_token,
    smallest_fit,
    tp_problem,
    valid_tp_degrees,
    weight_bytes,
    weight_bytes_per_gpu,
)
from planner.perf.params import param_counts
from planner.perf.quant import QUANTS, linear_bytes, quant_spec
from planner.records import QUANT_FORMATS, Architecture
from tests.conftest import CATALOGS


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return Catalog([CATALOGS])


def test_every_record_quant_format_has_a_storage_layout() -> None:
    assert set(QUANTS) == set(QUANT_FORMATS)


def test_llama_8b_kv_bytes_per_token_by_hand(cat) -> None:
    arch = cat.model("llama-3.1-8b-instruct").architecture
    assert kv_bytes_per_token(arch, "bf16") == 2 * 32 * 8 * 128 * 2 == 131_072
    assert kv_bytes_per_token(arch, "fp8") == 65_536
    assert kv_bytes_per_token(arch, "bf16", tp=8) == 16_384
    assert kv_bytes_per_token(arch, "bf16", tp=16) == 16_384  # 8 KV heads: replicated beyond TP 8


def test_bf16_weights_are_two_bytes_per_parameter(cat) -> None:
    for model in cat.models.values():
        assert weight_bytes(model.architecture, "bf16").total == 2 * param_counts(model.architecture).total


def test_weights_match_every_real_checkpoint_within_3_percent(cat) -> None:
    assert len(cat.checkpoints) >= 10
    for ck in cat.checkpoints:
        dq = ck.double_quant if ck.double_quant is not None else ck.quant in ("bnb-nf4", "bnb-fp4")
        predicted = weight_bytes(cat.model(ck.model).architecture, ck.quant, dq).total
        tolerance = 0.03 * ck.total_size_bytes + ck.precision_bytes
        assert abs(predicted - ck.total_size_bytes) <= tolerance, ck.hf_repo


def test_fp8_and_moe_checkpoints_are_covered_and_within_3_percent(cat) -> None:
    rows = {(ck.model, ck.quant): ck for ck in cat.checkpoints}
    fp8 = rows[("llama-3.1-8b-instruct", "fp8")]
    predicted = weight_bytes(cat.model("llama-3.1-8b-instruct").architecture, "fp8").total
    assert fp8.total_size_bytes == 9_081_202_432  # neuralmagic FP8, per-tensor scales
    # By hand: fp8 weights + two fp32 scalars per linear + bf16 embeddings, lm_head and norms.
    linear = param_counts(cat.model("llama-3.1-8b-instruct").architecture).linear
    assert linear + 224 * 8 + 2 * (2 * 128256 * 4096 + 65 * 4096) == fp8.total_size_bytes
    assert 0 < predicted / fp8.total_size_bytes - 1 < 0.001  # per-channel scales: +0.06%
    moe = rows[("mixtral-8x7b-instruct", "bf16")]
    mixtral = cat.model("mixtral-8x7b-instruct").architecture
    assert weight_bytes(mixtral, "bf16").total == moe.total_size_bytes  # every expert stored


def test_unsourced_formats_by_hand() -> None:
    # GPTQ int8 g128: int8 weights, fp16 scales and int8 zeros per 128 inputs, int32 g_idx.
    assert linear_bytes(quant_spec("gptq-int8"), 4096, 4096) == 4096 * 4096 + 32 * 4096 * (2 + 1) + 4096 * 4
    # bitsandbytes fp4 stores exactly like nf4 (another 16-entry code book).
    n = 4096 * 14336
    assert linear_bytes(quant_spec("bnb-fp4"), 14336, 4096) == n / 2 + n / 64 * 4
    assert (
        linear_bytes(quant_spec("bnb-fp4"), 14336, 4096, double_quant=True)
        == n / 2 + n / 64 + n / 64 / 256 * 4
    )


def test_layouts_by_hand() -> None:
    # AWQ g128 on a 4096 x 4096 matrix: 4-bit weights, fp16 scales and 4-bit zeros per 128 inputs.
    awq = linear_bytes(quant_spec("awq-int4"), 4096, 4096)
    assert awq == 4096 * 4096 / 2 + 32 * 4096 * 2 + 32 * 4096 / 2
    # GPTQ adds g_idx: one int32 per input channel.
    assert linear_bytes(quant_spec("gptq-int4"), 4096, 4096) == awq + 4096 * 4
    # bnb nf4: 64-weight blocks with a float32 absmax; double quant stores int8 absmax + fp32 per 256 blocks.
    n = 4096 * 4096
    assert linear_bytes(quant_spec("bnb-nf4"), 4096, 4096) == n / 2 + n / 64 * 4
    assert (
        linear_bytes(quant_spec("bnb-nf4"), 4096, 4096, double_quant=True)
        == n / 2 + n / 64 + n / 64 / 256 * 4
    )
    # LLM.int8: int8 weights and a float32 scale per output row.
    assert linear_bytes(quant_spec("bnb-int8"), 4096, 1024) == 4096 * 1024 + 4096 * 4


archs = st.builds(
    lambda layers, heads, kv_div, hd, mult, vocab, tied: Architecture(
        model_type="llama",
        num_layers=layers,
        hidden_size=heads * hd,
        intermediate_size=heads * hd * mult,
        num_attention_heads=heads,
        num_kv_heads=heads // kv_div,
        head_dim=hd,
        vocab_size=vocab,
        tie_word_embeddings=tied,
        max_context_tokens=8192,
    ),
    st.integers(1, 96),
    st.sampled_from([8, 16, 32, 64]),
    st.sampled_from([1, 2, 4, 8]),
    st.sampled_from([64, 128]),
    st.integers(2, 4),
    st.integers(1000, 200_000),
    st.booleans(),
)


@settings(max_examples=60, deadline=None)
@given(archs)
def test_more_bits_never_less_memory(arch: Architecture) -> None:
    by_bits: dict[int, list[float]] = {}
    for name, spec in QUANTS.items():
        by_bits.setdefault(spec.weight_bits, []).append(weight_bytes(arch, name).total)
    bits = sorted(by_bits)
    for fewer, more in itertools.pairwise(bits):
        assert max(by_bits[fewer]) < min(by_bits[more]), (fewer, more)
    assert weight_bytes(arch, "bnb-nf4", double_quant=True).total < weight_bytes(arch, "bnb-nf4").total


@settings(max_examples=40, deadline=None)
@given(archs, st.sampled_from([1, 2, 4, 8]))
def test_tensor_parallel_splits_weights(arch: Architecture, tp: int) -> None:
    if arch.num_attention_heads % tp:
        return
    whole = weight_bytes_per_gpu(arch, "bf16", 1)
    split = weight_bytes_per_gpu(arch, "bf16", tp)
    assert split <= whole / tp * 1.01 + 2 * arch.num_layers * arch.head_dim * arch.hidden_size * 2


def test_70b_bf16_needs_more_than_one_h100(cat) -> None:
    m, g = cat.model("llama-3.1-70b-instruct"), cat.gpu("h100-sxm")
    one = fit(m.id, m.architecture, "bf16", g, 8192, 1, tp=1)
    assert not one.fits
    assert "weights" in one.reason
    best = smallest_fit(m.id, m.architecture, "bf16", g, 8192, 32)
    assert best.fits
    assert best.tp == 4
    assert best.max_concurrent_seqs >= 32


def test_kv_pool_follows_gpu_memory_utilization(cat) -> None:
    m, g = cat.model("llama-3.1-8b-instruct"), cat.gpu("h100-sxm")
    low = fit(m.id, m.architecture, "bf16", g, 8192, 1, engine=EngineMemory(gpu_memory_utilization=0.5))
    high = fit(m.id, m.architecture, "bf16", g, 8192, 1, engine=EngineMemory(gpu_memory_utilization=0.9))
    assert high.kv_pool_gib - low.kv_pool_gib == pytest.approx(0.4 * g.memory_gib)
    assert g.memory_gib == pytest.approx(81559 / 1024, abs=1e-3)  # nvidia-smi MiB, not 80 GB
    assert high.kv_tokens == int(high.kv_pool_gib * 1024**3 // 131_072)


def test_max_concurrency_is_kv_tokens_over_context_in_blocks(cat) -> None:
    m, g = cat.model("llama-3.1-8b-instruct"), cat.gpu("l4")
    r = fit(m.id, m.architecture, "bf16", g, 4000, 1)
    assert r.kv_max_seqs == (r.kv_tokens // 16) // 250
    too_many = fit(m.id, m.architecture, "bf16", g, 4000, r.kv_max_seqs + 1)
    assert not too_many.fits
    assert "not" in too_many.reason


def test_fp8_on_a_gpu_without_fp8_is_noted(cat) -> None:
    m = cat.model("llama-3.1-8b-instruct")
    r = fit(m.id, m.architecture, "fp8", cat.gpu("a100-80gb"), 4096)
    assert any("no FP8" in n for n in r.notes)


def test_moe_expert_weights_all_resident(cat) -> None:
    m = cat.model("mixtral-8x7b-instruct")
    assert weight_bytes(m.architecture, "bf16").total == 2 * 46_702_792_704


def test_fit_uses_the_memory_the_device_exposes_not_the_datasheet(cat) -> None:
    for gpu in cat.gpus.values():
        assert gpu.memory_gib <= gpu.datasheet_memory_gb, gpu.id  # never more than the nominal figure
        if gpu.memory_total_mib:
            assert gpu.memory_gib == pytest.approx(gpu.memory_total_mib / 1024, abs=0.006)
    l40s = cat.gpu("l40s")
    assert l40s.memory_total_mib == 46068  # nvidia-smi, not the datasheet's 48 GB
    m = cat.model("llama-3.1-8b-instruct")
    r = fit(m.id, m.architecture, "bf16", l40s, 8192)
    assert r.usable_gib == pytest.approx(0.9 * 46068 / 1024, abs=1e-3)


def test_tp_must_split_attention_and_kv_heads_as_vllm_does(cat) -> None:
    phi4 = cat.model("phi-4").architecture  # 40 heads, 10 KV heads
    assert (phi4.num_attention_heads, phi4.num_kv_heads) == (40, 10)
    assert valid_tp_degrees(phi4) == (1, 2)
    assert "10 KV heads" in tp_problem(phi4, 4)  # 10 % 4: neither split nor replicated
    assert "10 KV heads" in tp_problem(phi4, 8)
    llama = cat.model("llama-3.1-8b-instruct").architecture  # 32 heads, 8 KV heads
    assert valid_tp_degrees(llama, (1, 2, 4, 8, 16)) == (1, 2, 4, 8, 16)  # 16: KV heads replicated
    g = cat.gpu("l4")
    at_tp4 = fit("phi-4", phi4, "bf16", g, 4096, 1, tp=4)
    assert not at_tp4.fits
    assert "KV heads" in at_tp4.reason
    best = smallest_fit("phi-4", phi4, "bf16", g, 4096, 1)
    assert best.tp in (1, 2)  # never offered at TP 4 or 8


def test_phi4_is_never_offered_at_tp4_or_tp8_by_the_economics(cat) -> None:
    from planner.economics.capacity import valid_tp_degrees as used_by_economics

    assert 4 not in used_by_economics(cat.model("phi-4").architecture)


def test_activation_memory_does_not_grow_with_context(cat) -> None:
    m, g = cat.model("llama-3.1-8b-instruct"), cat.gpu("h200")
    short = fit(m.id, m.architecture, "bf16", g, 4096)
    long = fit(m.id, m.architecture, "bf16", g, 131_072)
    assert long.activation_gib == short.activation_gib  # chunked prefill: one 8192-token pass at most
    assert long.kv_tokens == short.kv_tokens  # the pool is the same; only sequences per pool differ
    assert long.kv_max_seqs < short.kv_max_seqs
    chunk_16k = EngineMemory(max_num_batched_tokens=16384)
    bigger_chunks = fit(m.id, m.architecture, "bf16", g, 4096, engine=chunk_16k)
    assert bigger_chunks.activation_gib > short.activation_gib


def test_scheduler_cap_is_not_a_memory_limit(cat) -> None:
    m, g = cat.model("llama-3.1-8b-instruct"), cat.gpu("h200")
    r = smallest_fit(m.id, m.architecture, "bf16", g, 1024, 512)
    assert r.fits
    assert r.gpus == 1  # 512 sequences of 1k tokens fit in one H200's KV cache
    assert r.kv_max_seqs >= 512
    assert r.max_concurrent_seqs == 256  # vLLM's default max_num_seqs
    assert r.queued == 256
    assert any("max_num_seqs" in n and "queue" in n for n in r.notes)
    raised = fit(m.id, m.architecture, "bf16", g, 1024, 512, engine=EngineMemory(max_num_seqs=512))
    assert raised.max_concurrent_seqs == 512
    assert raised.queued == 0
