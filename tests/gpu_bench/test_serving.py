"""The serving benchmark against servers the tests start: faults from a small SSE server, and a
capacity search that must find a limit the test controls."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from gpu_bench.serving.bench import Probe, find_capacity
from gpu_bench.serving.client import OpenAIClient, RequestSpec
from gpu_bench.serving.loadgen import run_load
from gpu_bench.serving.metrics import Slo, calculate_metrics
from tests.gpu_bench.conftest import gpu_bench
from tests.gpu_bench.fake_server import FakeServer


def load(url: str, model: str, n: int = 12, concurrency: int = 4, timeout: float = 30.0, tokens: int = 8):
    async def go():
        client = OpenAIClient(url, model, timeout_s=timeout)
        try:
            specs = [RequestSpec("hello", tokens, 5) for _ in range(n)]
            return await run_load(client, specs, concurrency=concurrency)
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_usage_tokens_timings_and_both_stream_endings() -> None:
    with FakeServer(tokens=8) as server:
        for model in ("ok", "nodone"):
            result = load(server.url, model)
            m = calculate_metrics(result.results, Slo(ttft_ms=1000, tpot_ms=1000))
            assert m.completed == 12
            assert m.failed == 0
            assert m.tokens_source == "usage"
            assert m.output_tokens_mean == 8
            assert m.ttft_ms["p50"] > 0
            assert m.tpot_ms["p50"] >= 1.5
            assert m.itl_ms["p50"] >= 1.5
            assert m.goodput_requests_per_s == pytest.approx(m.requests_per_s)
            assert m.meets_slo


def test_no_usage_falls_back_and_says_so() -> None:
    with FakeServer() as server:
        m = calculate_metrics(load(server.url, "nousage").results)
    assert m.completed == 12
    assert m.tokens_source == "chunks"


@pytest.mark.parametrize(
    ("model", "error_type"),
    [
        ("drop", "disconnected"),
        ("malformed", "malformed_chunk"),
        ("http429", "http_429"),
        ("http500", "http_500"),
        ("slow", "timeout"),
    ],
)
def test_each_fault_is_counted_and_the_run_finishes(model: str, error_type: str) -> None:
    with FakeServer(slow_first_byte_s=2.0) as server:
        result = load(server.url, model, n=6, concurrency=3, timeout=0.5 if model == "slow" else 30.0)
    m = calculate_metrics(result.results)
    assert m.failed == 6
    assert m.completed == 0
    assert m.errors == {error_type: 6}


def test_open_loop_rate_and_warmup_exclusion() -> None:
    async def go():
        with FakeServer() as server:
            client = OpenAIClient(server.url, "ok")
            specs = [RequestSpec("hi", 4, 2) for _ in range(30)]
            out = await run_load(client, specs, rate=50.0, warmup=5)
            await client.aclose()
            return out

    result = asyncio.run(go())
    assert sum(r.warmup for r in result.results) == 5
    m = calculate_metrics(result.results)
    assert m.completed == 25  # warm-up excluded from the metrics
    assert result.health.loop_lag_p99_ms < 200


def test_capacity_search_finds_a_known_limit() -> None:
    """Every token takes 10 ms, and 4x more once over 12 requests run: a 25 ms SLO holds up to 12.
    (Wide margins: the test machine's two cores are shared.)"""
    probes_seen = []
    with FakeServer(tpot_s=0.01, capacity=12) as server:

        def probe(level: float) -> Probe:
            result = load(server.url, "capacity", n=int(level) * 3, concurrency=int(level), tokens=10)
            m = calculate_metrics(result.results, Slo(tpot_ms=25.0, percentile=95))
            probes_seen.append(level)
            return Probe(level, bool(m.meets_slo), m.output_tokens_per_s, {})

        best, probes = find_capacity(probe, start=1, limit=64)
    assert best is not None
    assert best.level == 12
    assert len(probes) <= 10  # bracketing and bisection, not a scan


def test_find_capacity_pure_logic() -> None:
    def probe(level: float) -> Probe:
        return Probe(level, level <= 37, level, {})

    best, probes = find_capacity(probe, start=1, limit=1024)
    assert best.level == 37
    assert len(probes) <= 14
    best, _ = find_capacity(lambda lv: Probe(lv, True, lv, {}), start=1, limit=100)
    assert best.level == 100
    best, _ = find_capacity(lambda lv: Probe(lv, False, lv, {}), start=1, limit=100)
    assert best is None


def test_cli_serve_records_a_level_each_and_resumes_a_capacity_search(tmp_path: Path) -> None:
    out = tmp_path / "serve.jsonl"
    with FakeServer(tpot_s=0.01, capacity=6) as server:
        args = (
            "serve",
            "--endpoint",
            server.url,
            "--model",
            "ok",
            "--concurrency",
            "1,4",
            "--num-requests",
            "12",
            "--input-len",
            "16",
            "--output-len",
            "8",
            "--out",
            str(out),
            "--format",
            "json",
        )
        result = gpu_bench(*args)
        assert result.returncode == 0, result.stderr[-2000:]
        data = json.loads(result.stdout)
        assert [r["concurrency"] for r in data["records"]] == [1, 4]
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == 2
        for r in rows:
            assert r["mode"] == "serving"
            assert r["basis"] == "measured"
            assert r["output_tokens_source"] == "usage"
            assert r["ttft_ms"]["p99"] >= r["ttft_ms"]["p50"] > 0
            assert r["num_requests"] == 12
        cap_args = (
            "serve",
            "--endpoint",
            server.url,
            "--model",
            "capacity",
            "--find-capacity",
            "--slo-tpot-ms",
            "25",
            "--num-requests",
            "24",
            "--input-len",
            "8",
            "--output-len",
            "10",
            "--max-concurrency",
            "32",
            "--out",
            str(out),
        )
        first = gpu_bench(*cap_args)
        assert first.returncode == 0, first.stderr[-2000:]
        assert "capacity: concurrency 6 meets the SLOs" in first.stdout
        again = gpu_bench(*cap_args)
        assert "recorded before, reused" in again.stderr
        assert "capacity: concurrency 6" in again.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--concurrency", "1,x"), "--concurrency"),
        (("--concurrency", "1", "--request-rate", "2"), "not both"),
        (("--find-capacity",), "needs at least one of"),
        (("--dataset", "csv:foo"), "--dataset"),
        (("--tokenizer", "/nonexistent"), "not a local directory"),
        (("--quant", "int3"), "unknown quantization format"),
    ],
)
def test_serve_bad_input_exits_2(args: tuple[str, ...], expected: str) -> None:
    result = gpu_bench("serve", "--model", "ok", "--endpoint", "http://127.0.0.1:9/v1", *args)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
