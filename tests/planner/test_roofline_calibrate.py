"""Roofline properties and calibration: known efficiencies are recovered from synthetic records."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.catalog import Catalog
from planner.perf.calibrate import calibrate_groups, leave_one_out, lookup, with_loo_bands
from planner.perf.predict import PredictionBatch, Setup
from planner.perf.roofline import Efficiency, Hardware, offline_saturated, serving, static_batch
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
):
    return Hardware.build(cat.model(model).architecture, quant, cat.gpu(gpu), tp)


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
            for mode, load in (("offline", 512), ("serving", 32)):
                rec = MeasurementRecord(
                    id=f"syn-{model}-{tp}-{i}-{o}-{mode}",
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


def test_leave_one_out_on_exact_data_has_tiny_errors_and_a_minimum_band(cat) -> None:
    setups = synthetic_records(cat, TRUE)[:14]
    full = calibrate_groups(setups)
    loo = leave_one_out(setups, full)
    assert max(abs(r.error) for r in loo) < 0.03
    cal = lookup(with_loo_bands(full, loo), "h100-sxm", "vllm", "fp8")
    assert cal.band == pytest.approx(0.05)  # floored: a model is never claimed better than +-5%


def test_too_few_records_fit_nothing(cat) -> None:
    setups = synthetic_records(cat, TRUE)[:2]
    assert calibrate_groups(setups) == {}
