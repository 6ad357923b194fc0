"""Roofline properties and calibration: known efficiencies are recovered from synthetic records."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.catalog import Catalog
from planner.perf.calibrate import (
    calibrate_groups,
    calibrate_with_bands,
    fit_efficiency,
    leave_one_out,
    loo_by_group,
    lookup,
    with_loo_bands,
)
from planner.perf.calibration import ROOFLINE_BAND, conformal_band, default_efficiency
from planner.perf.predict import PredictionBatch, Setup, predict_output_tokens_per_s, with_tail_ratios
from planner.perf.roofline import (
    Efficiency,
    Hardware,
    experts_touched,
    offline_saturated,
    serving,
    static_batch,
    step_time,
)
from planner.records import Citation, EngineInfo, MeasurementRecord
from tests.conftest import CATALOGS


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return Catalog([CATALOGS])


def hw(
    cat: Catalog,
    model: str = "llama-3.1-8b-instruct",
    quant: str = "bf16",
    gpu: str = "h100-sxm",
    tp: int = 1,
    pp: int = 1,
):
    return Hardware.build(cat.model(model).architecture, quant, cat.gpu(gpu), tp, "bf16", pp)


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(["llama-3.1-8b-instruct", "mixtral-8x7b-instruct", "qwen2.5-72b-instruct"]),
    st.integers(16, 4096),
    st.integers(16, 2048),
)
def test_more_concurrency_never_less_throughput_before_saturation(model: str, inp: int, out: int) -> None:
    c = Catalog([CATALOGS])
    tp = 1 if model == "llama-3.1-8b-instruct" else 4
    h = hw(c, model, "fp8" if tp > 1 else "bf16", tp=tp)
    levels = np.arange(1, 257, dtype=float)
    pts = serving(h, Efficiency(), levels, inp, out, max_running=256)
    assert np.all(np.diff(pts.output_tokens_per_s) >= -1e-9 * pts.output_tokens_per_s[1:])
    assert np.all(np.diff(pts.tpot_s) >= 0)  # and each token takes no less time


def test_decode_at_batch_one_is_memory_bound(cat) -> None:
    h = hw(cat)
    eff = Efficiency(bandwidth=1.0, flops=1.0, step_overhead_ms=0.0)
    _, decode, _ = static_batch(h, eff, np.array([1.0]), 1.0, 2.0)
    embedding = 128256 * 4096 * 2  # a lookup: the table is not read in full
    ideal = (16_060_522_496 - embedding) / 3.35e12  # the other weights over peak bandwidth
    assert decode[0] == pytest.approx(ideal, rel=0.02)


def test_prefill_of_a_long_prompt_is_compute_bound(cat) -> None:
    h = hw(cat)
    eff = Efficiency(bandwidth=1.0, flops=1.0, step_overhead_ms=0.0)
    prefill, _, _ = static_batch(h, eff, np.array([1.0]), 8192.0, 2.0)
    flops = 2 * (8.03e9 - 0.525e9 * 2) * 8192 + 4 * 32 * 32 * 128 * 8192 * 4096
    assert prefill[0] == pytest.approx(flops / 989.5e12, rel=0.1)


def test_tensor_parallel_adds_allreduce_time(cat) -> None:
    eff = Efficiency()
    one = offline_saturated(hw(cat, "llama-3.1-70b-instruct", "fp8", tp=2), eff, 64.0, 512.0, 128.0)
    pcie = offline_saturated(
        hw(cat, "llama-3.1-70b-instruct", "fp8", "h100-pcie", tp=2), eff, 64.0, 512.0, 128.0
    )
    assert pcie < one  # slower link and less bandwidth


def test_moe_reads_only_routed_experts_at_small_batch(cat) -> None:
    h = hw(cat, "mixtral-8x7b-instruct", tp=2)
    eff = Efficiency(step_overhead_ms=0.0)
    _, d1, _ = static_batch(h, eff, np.array([1.0]), 1.0, 2.0)
    _, d64, _ = static_batch(h, eff, np.array([64.0]), 1.0, 2.0)
    assert d64[0] > 1.8 * d1[0]  # one token reads 2 of 8 experts, 64 tokens read all 8


TRUE = Efficiency(bandwidth=0.62, flops=0.41, step_overhead_ms=3.0, comm=1.6)
SHAPES = [(128, 128), (512, 512), (2048, 128), (1000, 1000), (128, 2048), (4096, 512), (20000, 1000)]


def synthetic_records(cat: Catalog, eff: Efficiency) -> list[Setup]:
    setups = []
    for model, tp in (
        ("llama-3.1-8b-instruct", 1),
        ("llama-3.1-70b-instruct", 2),
        ("llama-3.1-70b-instruct", 4),
    ):
        for i, o in SHAPES:
            for mode, load in (("offline", 512), ("serving", 32), ("serving", 4)):
                rec = MeasurementRecord(
                    id=f"syn-{model}-{tp}-{i}-{o}-{mode}-{load}",
                    basis="published",
                    model=model,
                    quant="fp8",
                    engine=EngineInfo(name="vllm"),
                    device="cuda",
                    gpu="h100-sxm",
                    gpu_count=tp,
                    tensor_parallel=tp,
                    mode=mode,
                    batch_size=load if mode == "offline" else None,
                    concurrency=load if mode == "serving" else None,
                    input_tokens=i,
                    output_tokens=o,
                    output_tokens_per_s=1.0,
                    measured_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                    citation=Citation(title="synthetic", accessed_at=dt.date(2026, 1, 1)),
                )
                setup = Setup.of(rec, cat.model(model).architecture, cat.gpu("h100-sxm"))
                setups.append(setup)
    truth = PredictionBatch(setups)(eff)
    return [replace(s, observed=float(v)) for s, v in zip(setups, truth, strict=True)]


def test_calibration_recovers_known_efficiencies(cat) -> None:
    setups = synthetic_records(cat, TRUE)
    cal = lookup(calibrate_groups(setups), "h100-sxm", "vllm", "fp8")
    assert cal is not None
    assert set(cal.fitted) == {"bandwidth", "flops", "step_overhead_ms", "comm"}
    for name in ("bandwidth", "flops", "step_overhead_ms", "comm"):
        assert getattr(cal.efficiency, name) == pytest.approx(getattr(TRUE, name), rel=0.05), name
    assert max(abs(r) for r in cal.residuals) < 0.01


def test_step_overhead_stays_at_its_default_without_a_low_load_record(cat) -> None:
    """High-batch records cannot tell a fixed step cost from anything else: it is not fitted."""
    from planner.perf.calibration import default_efficiency

    high_batch = [s for s in synthetic_records(cat, TRUE) if (s.record.concurrency or 512) > 8]
    cal = lookup(calibrate_groups(high_batch), "h100-sxm", "vllm", "fp8")
    assert "step_overhead_ms" not in cal.fitted
    default = default_efficiency("vllm", "fp8", "h100-sxm").step_overhead_ms
    assert cal.efficiency.step_overhead_ms == default


def test_leave_one_out_on_exact_data_has_tiny_errors_and_a_minimum_band(cat) -> None:
    setups = synthetic_records(cat, TRUE)[:14]
    full = calibrate_groups(setups)
    own = loo_by_group(setups, full)
    loo = leave_one_out(setups, full, own)
    assert max(abs(r.error) for r in loo) < 0.03
    cal = lookup(with_loo_bands(full, own), "h100-sxm", "vllm", "fp8")
    assert cal.band == pytest.approx(0.05)  # floored: a model is never claimed better than +-5%


def test_too_few_records_fit_nothing(cat) -> None:
    setups = synthetic_records(cat, TRUE)[:2]
    assert calibrate_groups(setups) == {}


# -- the step model: prefill in its own steps, experts of the step's own tokens, pipeline stages ----


def test_moe_decode_at_concurrency_one_reads_two_experts_not_six(cat) -> None:
    h = hw(cat, "mixtral-8x7b-instruct", tp=2)
    assert experts_touched(h, np.array([1.0]))[0] == pytest.approx(2.0)  # top-2 of 8
    eff = Efficiency()
    pts = serving(h, eff, np.array([1.0]), 1500, 300, max_running=256)
    pure = step_time(h, eff, 1.0, 0.0, 0.0, 1500 + 150, 0.0)
    assert pts.tpot_s[0] == pytest.approx(pure)  # a pure decode step of one token
    smeared = step_time(h, eff, 1.0, 1500 / 300, 1 / 300, 1500 + 150, 750)  # the old averaged step
    assert pts.tpot_s[0] < smeared / 1.5  # 6.6 experts' reads were charged to every step


def test_prefill_is_counted_in_ttft_not_in_tpot_at_concurrency_one(cat) -> None:
    h, eff = hw(cat), Efficiency()
    short = serving(h, eff, np.array([1.0]), 500, 300, max_running=256)
    long = serving(h, eff, np.array([1.0]), 8000, 300, max_running=256)
    decode_long = step_time(h, eff, 1.0, 0.0, 0.0, 8000 + 150, 0.0)
    assert long.tpot_s[0] == pytest.approx(decode_long)  # only the longer KV read is in TPOT
    assert long.tpot_s[0] / short.tpot_s[0] < 1.05
    assert long.ttft_s[0] > 10 * short.ttft_s[0] / 2  # the 8000-token prefill is all in TTFT


def test_other_clients_prefills_slow_my_decode(cat) -> None:
    h, eff = hw(cat), Efficiency()
    pts = serving(h, eff, np.array([1.0, 2.0]), 8000, 300, max_running=256)
    alone = step_time(h, eff, 2.0, 0.0, 0.0, 8150, 0.0)
    assert pts.tpot_s[1] > alone  # the other client's 8000-token prompt shares one of my steps


def test_pipeline_parallel_splits_weights_over_stages(cat) -> None:
    one = hw(cat, "llama-3.1-70b-instruct", tp=4)
    two = hw(cat, "llama-3.1-70b-instruct", tp=4, pp=2)
    assert two.dense_weight_bytes + 8 * two.expert_bytes < 0.6 * (
        one.dense_weight_bytes + 8 * one.expert_bytes
    )
    assert two.layers == 40
    assert two.pp == 2
    eff = Efficiency()
    a = serving(one, eff, np.array([1.0, 64.0]), 1000, 200, max_running=256)
    b = serving(two, eff, np.array([1.0, 64.0]), 1000, 200, max_running=256)
    # A token passes both stages: no faster than the unsplit model at concurrency 1 (the bubble) ...
    assert b.tpot_s[0] >= 0.95 * a.tpot_s[0]
    # ... while two micro-batches keep both stages busy under load.
    assert b.output_tokens_per_s[1] > 0.9 * a.output_tokens_per_s[1]


def test_prefix_caching_shortens_ttft_and_raises_throughput(cat) -> None:
    h, eff = hw(cat), Efficiency()
    levels = np.array([1.0, 32.0])
    full = serving(h, eff, levels, 4000, 200, 256, prefill_fraction=1.0)
    cached = serving(h, eff, levels, 4000, 200, 256, prefill_fraction=0.25)
    assert np.all(cached.ttft_s < 0.5 * full.ttft_s)
    assert np.all(cached.output_tokens_per_s > full.output_tokens_per_s)
    # Decode still reads the whole cached prompt's KV: at concurrency 1 TPOT is unchanged.
    assert cached.tpot_s[0] == pytest.approx(full.tpot_s[0])


# -- error bands: each group's own left-out errors, conformal, never a record's own error ------------


def test_conformal_band_takes_the_right_rank_and_refuses_too_few() -> None:
    errors = [np.log1p(e) for e in (0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09)]
    assert conformal_band(errors) == pytest.approx(0.08)  # ceil(10 x 0.8) = 8th smallest of 9
    assert conformal_band(errors[:4]) == pytest.approx(0.05, abs=1e-9)  # 4th of 4 (floored at 5%)
    assert conformal_band(errors[:3]) == ROOFLINE_BAND  # no honest 80% rank among 3
    assert conformal_band([np.log1p(0.9)] * 3) == pytest.approx(0.9)  # never below the worst seen


def test_every_group_band_comes_from_its_own_left_out_errors(cat) -> None:
    from planner.perf.model import PerfModel

    perf = PerfModel(cat, use_cache=False)
    setups = perf.setups()
    cals = calibrate_with_bands(setups)
    general, specific = cals[("h100-sxm", None, None)], cals[("h100-sxm", "tensorrt-llm", "fp8")]
    assert len(general.loo_residuals) == len(general.record_ids) > len(specific.record_ids)
    # Recompute one of the general group's left-out errors by hand: refit it without the record.
    target = next(s for s in setups if s.record.id == specific.record_ids[0])
    others = with_tail_ratios([s for s in setups if s.record.id in general.record_ids and s is not target])
    eff, _, _ = fit_efficiency(others, general.efficiency, default_efficiency("", "", "h100-sxm"))
    by_hand = np.log(predict_output_tokens_per_s(target, eff) / target.observed)
    assert general.loo_residuals[general.record_ids.index(target.record.id)] == pytest.approx(
        by_hand, abs=1e-3
    )
    assert specific.loo_residuals[0] != pytest.approx(by_hand, abs=1e-3)  # not the specific group's
    assert general.band == pytest.approx(conformal_band(general.loo_residuals))


def test_a_gpu_without_records_gets_the_leave_one_gpu_out_band(cat) -> None:
    from planner.perf.model import PerfModel

    perf = PerfModel(cat, use_cache=False)
    _, band, label, _ = perf.calibration_for("l40s", "vllm", "fp8")
    cal = perf.calibrations()[(None, None, None)]
    assert "no records on l40s" in label
    assert len(cal.gpu_out_residuals) == len(cal.record_ids)
    assert band == max(cal.band, cal.unseen_gpu_band)
    assert cal.unseen_gpu_band > cal.band  # a GPU never measured is less certain than one measured


def test_validation_checks_each_record_against_a_band_without_its_own_error(cat) -> None:
    from planner.perf.validation import validate

    setups = synthetic_records(cat, TRUE)
    bad = setups[3]
    setups[3] = replace(bad, observed=bad.observed * 2.0)  # one record far off the others
    report = validate(setups)
    row = next(c for c in report.checked if c.result.record_id == bad.record.id)
    assert row.result.error == pytest.approx(-0.5, abs=0.05)
    assert not row.inside  # its own 50% error did not widen the band it is checked against
    assert row.band < 0.3
