"""`planner fit`, `estimate`, `validate` end to end, and the measured > interpolated > calibrated order."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from planner.catalog import Catalog
from planner.perf.model import PerfModel
from planner.records import EngineInfo, Environment, MeasurementRecord
from tests.conftest import CATALOGS


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_fit_issue_example(invoke) -> None:
    r = invoke("fit", "--model", "llama-3.1-70b-instruct", "--quant", "awq-int4", "--gpu", "l40s",
               "--context", "8k", "--concurrency", "32", "--format", "json")  # fmt: skip
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["fits"]
    assert data["gpus"] == 4
    assert data["context_tokens"] == 8192
    assert data["max_concurrent_seqs"] >= 32
    assert data["kv_tokens"] > 32 * 8192
    args = ("--model", "llama-3.1-70b-instruct", "--quant", "awq-int4", "--gpu", "l40s")
    table = invoke("fit", *args, "--tp", "1", "--concurrency", "32").stdout
    assert "DOES NOT FIT" in table
    assert "smallest that fits" in table


def test_fit_above_max_num_seqs_queues_instead_of_escalating(invoke) -> None:
    args = ("fit", "--model", "llama-3.1-8b-instruct", "--gpu", "h200", "--context", "1k",
            "--concurrency", "512")  # fmt: skip
    data = json.loads(invoke(*args, "--format", "json").stdout)
    assert data["fits"]
    assert data["gpus"] == 1
    assert data["max_concurrent_seqs"] == 256
    assert data["queued"] == 256
    assert any("max_num_seqs" in n for n in data["notes"])
    table = invoke(*args).stdout
    assert "FITS" in table
    assert "scheduler" in table
    raised = json.loads(invoke(*args, "--max-num-seqs", "512", "--format", "json").stdout)
    assert raised["max_concurrent_seqs"] == 512
    assert raised["queued"] == 0


def test_fit_all_gpus_ranks_fewest_gpus_first(invoke) -> None:
    rows = json.loads(
        invoke("fit", "--model", "llama-3.1-70b-instruct", "--gpu", "all", "--format", "json").stdout
    )
    assert len(rows) == len(Catalog([CATALOGS]).gpus)
    fitting = [r for r in rows if r["fits"]]
    assert [r["gpus"] for r in fitting] == sorted(r["gpus"] for r in fitting)
    assert rows[0]["gpu"] in ("h200", "b200", "mi300x")  # 70B bf16 needs >80 GB


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("fit", "--model", "llama-70b", "--gpu", "l4"), "did you mean"),
        (("fit", "--model", "phi-4", "--gpu", "h1000"), "unknown GPU 'h1000'"),
        (("fit", "--model", "phi-4", "--gpu", "l4", "--quant", "int3"), "unknown quantization format 'int3'"),
        (("fit", "--model", "phi-4", "--gpu", "l4", "--context", "lots"), "--context"),
        (("estimate", "--model", "phi-4", "--gpu", "l4", "--concurrency", "1,x"), "--concurrency"),
        (("estimate", "--model", "phi-4", "--gpu", "l4", "--kv-dtype", "int2"), "unknown KV cache dtype"),
        (("estimate", "--model", "llama-3.1-405b-instruct", "--gpu", "l4", "--tp", "1"), "does not fit"),
        (("estimate", "--model", "phi-4", "--gpu", "l4", "--engine", "foo"), "unknown serving engine 'foo'"),
        (("estimate", "--model", "phi-4", "--gpu", "l4", "--pp", "2"), "--pp needs --tp"),
        (("estimate", "--model", "phi-4", "--gpu", "l4", "--tp", "4"), "KV heads"),
    ],
)
def test_perf_commands_reject_bad_input(invoke, args: tuple[str, ...], expected: str) -> None:
    r = invoke(*args)
    assert r.exit_code == 2
    assert expected in r.stderr
    assert "Traceback" not in r.output


def test_estimate_table_json_and_capacity(invoke) -> None:
    args = ("estimate", "--model", "llama-3.1-8b-instruct", "--gpu", "h100-sxm", "--slo-tpot-ms", "20")
    out = invoke(*args).stdout
    assert "TTFT ms" in out
    assert "capacity under TPOT <= 20 ms" in out
    assert "limited by tpot" in out
    data = json.loads(invoke(*args, "--format", "json").stdout)
    cap = data["capacity"]
    assert cap["tpot_ms"] <= 20
    assert cap["output_tokens_per_s"]["basis"] == "calibrated"
    assert (
        cap["output_tokens_per_s"]["low"]
        < cap["output_tokens_per_s"]["value"]
        < cap["output_tokens_per_s"]["high"]
    )
    assert data["records"], "a calibrated estimate names the records it rests on"
    explained = invoke(*args, "--explain").stdout
    assert "achieved bandwidth" in explained
    assert "left-out %" in explained


def test_estimate_without_any_record_is_a_labelled_roofline(invoke, tmp_path: Path) -> None:
    empty = tmp_path / "nothing"
    (empty / "measurements").mkdir(parents=True)
    cat = Catalog([CATALOGS])
    model = PerfModel(cat, use_cache=False)
    model._setups = []  # as if the catalog held no GPU records
    curve = model.serving_curve("phi-4", "bf16", "l4", 500, 100, np.array([1.0, 4.0]), tp=2)
    assert set(curve.basis) == {"roofline"}
    assert curve.band == 0.5
    assert curve.calibration == "roofline defaults"


def _serving_record(rid: str, concurrency: int, tok_s: float) -> dict:
    return MeasurementRecord(
        id=rid,
        basis="measured",
        model="llama-3.1-8b-instruct",
        quant="bf16",
        engine=EngineInfo(name="vllm", version="0.11.0"),
        weights="real",
        device="cuda",
        gpu="h100-sxm",
        mode="serving",
        concurrency=concurrency,
        input_tokens=1500,
        output_tokens=300,
        output_tokens_per_s=tok_s,
        measured_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        env=Environment(gpus=["NVIDIA H100 80GB HBM3"]),
    ).model_dump(mode="json")


def test_measured_latencies_replace_predictions_and_say_so(tmp_path: Path) -> None:
    user = tmp_path / "user"
    (user / "measurements").mkdir(parents=True)
    recs = [_serving_record("mine-c4", 4, 480.0), _serving_record("mine-c16", 16, 1500.0)]
    recs[0]["ttft_ms"], recs[0]["tpot_ms"] = {"mean": 90.0}, {"mean": 8.0}
    recs[1]["ttft_ms"], recs[1]["tpot_ms"] = {"mean": 160.0}, {"mean": 10.0}
    (user / "measurements" / "mine.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    model = PerfModel(Catalog([CATALOGS, user]), use_cache=False)
    curve = model.serving_curve(
        "llama-3.1-8b-instruct", "bf16", "h100-sxm", 1500, 300, np.array([4.0, 8.0, 64.0])
    )
    assert list(curve.ttft_basis) == ["measured", "interpolated", "calibrated"]
    assert list(curve.tpot_basis) == ["measured", "interpolated", "calibrated"]
    assert curve.ttft_ms[0] == 90.0
    assert curve.tpot_ms[1] == pytest.approx(np.sqrt(8.0 * 10.0))


def test_measured_points_win_and_are_interpolated_between(tmp_path: Path) -> None:
    user = tmp_path / "user"
    (user / "measurements").mkdir(parents=True)
    recs = [_serving_record("mine-c4", 4, 480.0), _serving_record("mine-c16", 16, 1500.0)]
    (user / "measurements" / "mine.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    model = PerfModel(Catalog([CATALOGS, user]), use_cache=False)
    curve = model.serving_curve(
        "llama-3.1-8b-instruct", "bf16", "h100-sxm", 1500, 300, np.array([4.0, 8.0, 16.0, 64.0])
    )
    assert list(curve.basis) == ["measured", "interpolated", "measured", "calibrated"]
    assert curve.output_tokens_per_s[0] == 480.0
    assert curve.output_tokens_per_s[2] == 1500.0
    assert curve.output_tokens_per_s[1] == pytest.approx(np.sqrt(480.0 * 1500.0))  # log-log midpoint
    assert curve.record_ids[:2] == ("mine-c4", "mine-c16")
    # These records report no latencies: TTFT and TPOT stay predictions, and are labelled so.
    assert set(curve.ttft_basis) == {"calibrated"}
    assert set(curve.tpot_basis) == {"calibrated"}


def test_validate_reports_loo_errors_and_weights(invoke) -> None:
    data = json.loads(invoke("validate", "--format", "json").stdout)
    overall = next(g for g in data["groups"] if g["group"] == "all")
    assert overall["records"] >= 60
    assert overall["mape_pct"] <= 15.0  # the accuracy target of the performance model
    assert overall["in_band_pct"] >= 80.0  # honest: each record against a band without its own error
    assert all(abs(w["error_pct"]) <= 3.0 + w["source_precision_pct"] for w in data["weights_memory"])
    unseen = next(g for g in data["unseen_gpu_groups"] if g["group"] == "all")
    assert unseen["records"] == overall["records"]  # every record, predicted without its GPU
    assert unseen["mape_pct"] > overall["mape_pct"]
    excluded = {row["record"]: row["why"] for row in data["excluded"]}
    assert "vllm-blog-2024-07-llama-3.1-405b-fp8-h100x8" in excluded  # no load stated: not predictable
    assert all(r["record"] not in excluded for r in data["throughput"])


def test_estimate_runs_pipeline_parallel_where_fit_says_so(invoke) -> None:
    args = ("--model", "llama-3.1-405b-instruct", "--quant", "bf16", "--gpu", "h100-sxm")
    fitted = json.loads(invoke("fit", *args, "--format", "json").stdout)
    assert (fitted["gpus"], fitted["tp"], fitted["pp"]) == (16, 8, 2)
    r = invoke("estimate", *args, "--concurrency", "1,64", "--format", "json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert (data["gpus"], data["tp"], data["pp"]) == (16, 8, 2)
    one, many = data["points"]
    assert many["output_tokens_per_s"] > 20 * one["output_tokens_per_s"]
    tp8_only = invoke("estimate", *args, "--tp", "8")
    assert tp8_only.exit_code == 2
    assert "does not fit on 8 x h100-sxm" in tp8_only.stderr


def test_estimate_max_num_seqs_and_prefix_cache(invoke) -> None:
    args = ("estimate", "--model", "llama-3.1-8b-instruct", "--gpu", "h200", "--input-tokens", "2000",
            "--output-tokens", "200", "--concurrency", "1,512", "--format", "json")  # fmt: skip
    base = json.loads(invoke(*args).stdout)
    assert base["max_concurrent_seqs"] == 256  # the scheduler's cap; the KV cache holds more
    raised = json.loads(invoke(*args, "--max-num-seqs", "512").stdout)
    assert 256 < raised["max_concurrent_seqs"] < 512  # now the KV cache is the limit
    assert raised["points"][1]["output_tokens_per_s"] > base["points"][1]["output_tokens_per_s"]
    cached = json.loads(invoke(*args, "--cached-input-share", "0.75").stdout)
    assert cached["points"][0]["ttft_ms"] < 0.6 * base["points"][0]["ttft_ms"]
    assert (
        cached["capacity"]["output_tokens_per_s"]["value"] > base["capacity"]["output_tokens_per_s"]["value"]
    )


def test_explain_shows_in_sample_and_left_out_errors_of_the_same_group(invoke) -> None:
    out = invoke("estimate", "--model", "llama-3.1-8b-instruct", "--quant", "fp8", "--gpu", "h100-sxm",
                 "--engine", "tensorrt-llm", "--explain").stdout  # fmt: skip
    assert "planner/perf/calibrate.py" not in out
    assert "refitted without that record" in out
    lines = [line.split() for line in out.splitlines() if line.startswith("trtllm-v1.0-h100")]
    assert len(lines) == 30
    for cells in lines:  # the left-out error of a record is close to its in-sample one, same group
        assert abs(float(cells[-1]) - float(cells[-2])) < 25


def test_rate_records_are_predicted_as_capacity_not_their_offered_rate(tmp_path: Path) -> None:
    from dataclasses import replace

    from planner.perf.predict import predict_output_tokens_per_s

    model = PerfModel(Catalog([CATALOGS]), use_cache=False)
    setups = {s.record.id: s for s in model.setups()}
    server = setups["mlperf-v4.1-h100x8-llama2-70b-server"]
    eff = model.calibration_for("h100-sxm", "tensorrt-llm-mlperf", "fp8")[0]
    asked = predict_output_tokens_per_s(server, eff)
    halved = replace(server, record=server.record.model_copy(update={"request_rate_per_s": 30.0}))
    assert predict_output_tokens_per_s(halved, eff) == asked  # the offered rate gives nothing away
    # The SLOs are p99 limits; the model's means are scaled by other records' p99/mean, never its own.
    own = server.record.tpot_ms.p99 / server.record.tpot_ms.mean
    assert server.tail_ratios[1] != pytest.approx(own, rel=1e-6)
    assert 1.0 < server.tail_ratios[1] < 1.5


def test_batch_capacities_use_the_prefix_cache_share() -> None:
    from planner.perf.model import batch_capacities

    perf = PerfModel(Catalog([CATALOGS]), use_cache=False)
    cfg = ("llama-3.1-8b-instruct", "bf16", "h100-sxm", 1)
    args = (perf, [cfg], 3000, 300, 2000.0, 50.0)
    cold = batch_capacities(*args, prefill_fraction=1.0)[cfg]
    warm = batch_capacities(*args, prefill_fraction=0.2)[cfg]  # 80% of each prompt cached
    assert warm.output_tokens_per_s.value > cold.output_tokens_per_s.value
    assert warm.concurrency >= cold.concurrency


def test_a_record_whose_client_saturated_neither_calibrates_nor_validates(tmp_path) -> None:
    from planner.catalog import Catalog
    from planner.perf.model import PerfModel
    from tests.conftest import CATALOGS

    base = Catalog([CATALOGS])
    record = next(r for r in base.measurements if r.id.startswith("trtllm-") and r.gpu == "h200")
    busy = record.model_copy(update={"id": record.id + "-busy-client", "client_saturated": True})
    user = tmp_path / "user"
    (user / "measurements").mkdir(parents=True)
    (user / "measurements" / "busy.jsonl").write_text(busy.model_dump_json(exclude_none=True) + "\n")
    perf = PerfModel(Catalog([CATALOGS, user]), use_cache=False)
    assert busy.id not in {s.record.id for s in perf.setups()}
    assert "client_saturated" in dict(perf.excluded())[busy.id]


def test_fleet_capacities_rest_on_measured_points_and_agree_with_capacity(tmp_path: Path) -> None:
    """batch_capacities (what breakeven and capacity size fleets with) uses the user's serving records
    exactly as PerfModel.capacity does: the SLO is checked on the measured latencies."""
    from planner.perf.capacity import MEASURED_BAND, batch_capacities

    user = tmp_path / "user"
    (user / "measurements").mkdir(parents=True)
    recs = []
    for c, tok_s, tpot in ((4, 480.0, 8.0), (16, 1500.0, 12.0), (64, 3000.0, 40.0), (128, 3600.0, 70.0)):
        rec = _serving_record(f"mine-c{c}", c, tok_s)
        rec["ttft_ms"], rec["tpot_ms"] = {"mean": 200.0}, {"mean": tpot}
        recs.append(rec)
    (user / "measurements" / "mine.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    model = PerfModel(Catalog([CATALOGS, user]), use_cache=False)
    cfg = ("llama-3.1-8b-instruct", "bf16", "h100-sxm", 1)
    fleet = batch_capacities(model, [cfg], 1500, 300, 1000, 50)[cfg]
    one = model.capacity("llama-3.1-8b-instruct", "bf16", "h100-sxm", 1500, 300, 1000, 50, tp=1)
    # TPOT 40 ms measured at 64 clients, 70 ms at 128: the SLO (50 ms) is crossed in between, and
    # beyond 128 the prediction is held to the measurement, so it never meets the SLO again.
    assert fleet.concurrency == one.concurrency
    assert 64 < fleet.concurrency < 128
    assert fleet.output_tokens_per_s.value == pytest.approx(one.output_tokens_per_s.value)
    assert 3000.0 < fleet.output_tokens_per_s.value < 3600.0
    assert fleet.output_tokens_per_s.basis == "interpolated"
    assert fleet.tpot_ms <= 50.0
    assert {"mine-c64", "mine-c128"} <= set(fleet.output_tokens_per_s.record_ids)
    measured_slo = batch_capacities(model, [cfg], 1500, 300, 1000, 40)[cfg]
    assert measured_slo.concurrency == 64
    assert measured_slo.output_tokens_per_s.basis == "measured"
    assert measured_slo.output_tokens_per_s.high == pytest.approx(3000.0 * (1 + MEASURED_BAND))


def test_breakeven_labels_a_fleet_sized_on_measurements(tmp_path: Path, invoke) -> None:
    user = tmp_path / "user"
    (user / "measurements").mkdir(parents=True)
    recs = []
    for c, tok_s in ((16, 1500.0), (64, 3000.0)):
        rec = _serving_record(f"mine-c{c}", c, tok_s)
        rec["ttft_ms"], rec["tpot_ms"] = {"mean": 200.0}, {"mean": 30.0}
        recs.append(rec)
    (user / "measurements" / "mine.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    args = ("--catalog", str(user), "breakeven", "--tokens-per-day", "500M")
    args += ("--model", "llama-3.1-8b-instruct")
    args += ("--quant", "bf16", "--gpu", "h100-sxm", "--format", "json", "--all")
    data = json.loads(invoke(*args).stdout)
    vllm = [o for o in data["options"] if o["kind"] == "self-hosted"]
    assert vllm
    basis = {o["throughput_basis"] for o in vllm}
    assert any("held to 2 of your serving records" in b or "your serving record" in b for b in basis), basis


def test_estimate_says_when_no_concurrency_meets_the_slo(invoke) -> None:
    args = ("estimate", "--model", "llama-3.1-8b-instruct", "--gpu", "h100-sxm", "--slo-tpot-ms", "2")
    out = invoke(*args).stdout
    assert "capacity under TPOT <= 2 ms: none; no concurrency meets the SLOs" in out
    data = json.loads(invoke(*args, "--format", "json").stdout)
    assert data["capacity"]["meets_slo"] is False
