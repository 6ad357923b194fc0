"""The serving benchmark against servers the tests start: faults from a small SSE server, and a
capacity search that must find a limit the test controls; the measured window, time bounds, server
detection, signals and the CLI's records."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import statistics
from pathlib import Path

import pytest

from gpu_bench.serving.bench import Probe, find_capacity, meets_slo
from gpu_bench.serving.client import OpenAIClient, RequestResult, RequestSpec
from gpu_bench.serving.launcher import MetricsScraper, parse_prometheus
from gpu_bench.serving.loadgen import arrival_gaps, run_load
from gpu_bench.serving.metrics import Slo, calculate_metrics, measured_window, phase
from tests.gpu_bench.conftest import gpu_bench
from tests.gpu_bench.fake_server import FakeServer


def load(
    url: str,
    model: str,
    n: int = 12,
    concurrency: int = 4,
    timeout: float = 30.0,
    tokens: int = 8,
    warmup: int = 0,
    max_duration: float = 3600.0,
):
    async def go():
        client = OpenAIClient(url, model, timeout_s=timeout)
        try:
            specs = [RequestSpec("hello", tokens, 5) for _ in range(n + warmup)]
            return await run_load(
                client, specs, concurrency=concurrency, warmup=warmup, max_duration_s=max_duration
            )
        finally:
            await client.aclose()

    return asyncio.run(go())


def metrics_of(result, slo: Slo | None = None):
    return calculate_metrics(result.results, slo, result.load_end)


def test_usage_tokens_timings_and_both_stream_endings() -> None:
    with FakeServer(tokens=8) as server:
        for model in ("ok", "nodone"):
            result = load(server.url, model)
            m = metrics_of(result, Slo(ttft_ms=1000, tpot_ms=1000))
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
        m = metrics_of(load(server.url, "nousage"))
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
    m = metrics_of(result)
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
    m = metrics_of(result)
    assert m.completed == 25  # warm-up excluded from the metrics
    assert result.health.loop_lag_p99_ms < 200


def test_capacity_search_finds_a_known_limit() -> None:
    """Every token takes 10 ms, and 4x more once over 12 requests run: a 25 ms SLO holds up to 12.
    (Wide margins: the test machine's two cores are shared.)"""
    probes_seen = []
    with FakeServer(tpot_s=0.01, capacity=12) as server:

        def probe(level: float) -> Probe:
            result = load(server.url, "capacity", n=int(level) * 3, concurrency=int(level), tokens=10)
            m = metrics_of(result, Slo(tpot_ms=25.0, percentile=95))
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
        (("--gpu", "h900"), "h900"),
        (("--launch", "sleep 60", "--gpu", "h900"), "h900"),  # refused before anything starts
    ],
)
def test_serve_bad_input_exits_2(args: tuple[str, ...], expected: str) -> None:
    result = gpu_bench("serve", "--model", "ok", "--endpoint", "http://127.0.0.1:9/v1", *args)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


# -- the measured window (warm-up and cool-down excluded) ----------------------------------------


@pytest.mark.parametrize("warmup", [0, 8, 16])
def test_closed_loop_throughput_is_the_true_rate_whatever_the_warmup(warmup: int) -> None:
    """16 streams of exactly 50 tokens/s each: 800 tokens/s, with warm-up requests overlapping the
    first measured ones (warm-up 8) or not, and the last requests draining at lower concurrency."""
    with FakeServer(tpot_s=0.02) as server:
        result = load(server.url, "ok", n=48, concurrency=16, tokens=32, warmup=warmup)
    m = metrics_of(result)
    assert m.window_steady
    assert m.output_tokens_per_s == pytest.approx(16 / 0.02, rel=0.04)
    assert m.requests_per_s == pytest.approx(16 / (32 * 0.02), rel=0.15)
    phases = m.phases
    assert phases.get("warmup", 0) == warmup
    assert phases["cooldown"] >= 1  # the last requests, finishing while the load drained
    assert m.latency_requests == phases["steady"] < 48
    assert m.e2e_ms["p50"] == pytest.approx(32 * 20, rel=0.1)


def result_at(due: float, end: float, warmup: bool = False, tokens: int = 4, **kw) -> RequestResult:
    """A finished request that streamed `tokens` chunks evenly from due + 10% to its end."""
    chunks = [min(end, due + (end - due) * (0.1 + 0.9 * (i + 1) / tokens)) for i in range(tokens)]
    return RequestResult(
        ok=True,
        sent_at=due,
        first_token_at=chunks[0],
        done_at=end,
        ended_at=end,
        chunk_times=chunks,
        output_tokens=tokens,
        prompt_tokens=3,
        tokens_source="usage",
        warmup=warmup,
        **kw,
    )


def test_the_window_opens_after_warmup_and_closes_when_the_load_drains() -> None:
    results = [
        result_at(0.0, 1.0, warmup=True),
        result_at(0.0, 1.0),  # ramp: sent beside the warm-up
        result_at(1.0, 2.0),
        result_at(1.0, 2.0),
        result_at(2.0, 3.0),  # the last send
        result_at(2.0, 3.5),  # cool-down: the first slot went idle at 3.0
    ]
    w = measured_window(results, load_end=3.0)
    assert (w.start, w.end, w.steady) == (1.0, 3.0, True)
    assert [phase(r, w) for r in results] == ["warmup", "ramp", "steady", "steady", "steady", "cooldown"]
    m = calculate_metrics(results, load_end=3.0)
    assert m.latency_requests == 3
    assert m.duration_s == pytest.approx(2.0)
    # Tokens count where they were produced: all of the 3 steady requests', and the chunks of the
    # ramp and cool-down requests that arrived inside [1, 3]; requests by the same shares.
    shares = [sum(1.0 <= t <= 3.0 for t in r.chunk_times) / 4 for r in results[1:]]
    assert shares[0] < 0.5
    assert shares[1:4] == [1, 1, 1]
    assert 0 < shares[4] < 1
    assert m.output_tokens_per_s == pytest.approx(4 * sum(shares) / 2.0)
    assert m.requests_per_s == pytest.approx(sum(shares) / 2.0)


def test_a_level_that_never_reaches_steady_state_says_so() -> None:
    results = [result_at(0.0, 1.0 + i / 10) for i in range(4)]  # 4 requests, all sent at once
    m = calculate_metrics(results, load_end=0.0)  # a slot was idle from the start
    assert not m.window_steady
    assert m.latency_requests == 4
    assert m.output_tokens_per_s == pytest.approx(16 / 1.3)


def test_open_loop_latency_keeps_the_requests_that_queued_past_the_last_arrival() -> None:
    """Arrivals faster than the server: each request waits longer than the one before, and all but
    the first end after the last arrival. They arrived under the load: their latency counts."""
    results = [result_at(i / 10, 1.0 + i, scheduled_at=i / 10) for i in range(10)]
    m = calculate_metrics(results, load_end=0.9)
    assert m.window_steady
    assert m.latency_requests == 10
    assert m.e2e_ms["p50"] == pytest.approx(statistics.median(r.e2e_s * 1000 for r in results))


def test_requests_cancelled_at_the_deadline_count_against_the_slo_as_lower_bounds() -> None:
    done = [result_at(0.0, 0.5), result_at(0.0, 0.6)]
    stuck = [RequestResult(ok=False, sent_at=0.0, ended_at=5.0, error_type="cancelled") for _ in range(3)]
    m = calculate_metrics(done + stuck, Slo(e2e_ms=1000), load_end=5.0)
    assert m.cancelled == 3
    assert m.errors == {}
    assert m.latency_requests == 2  # the statistics: completed requests only
    assert m.e2e_ms["p95"] < 1000
    assert m.meets_slo is False  # but 3 of 5 had waited 5 s when the level was cut
    assert m.at_slo_percentile["e2e_ms"] >= 5000 * 0.99


# -- metric definitions (DESIGN.md) ---------------------------------------------------------------


def test_ttft_and_e2e_count_from_the_scheduled_arrival_in_open_loop() -> None:
    r = result_at(0.5, 2.5, scheduled_at=0.0)  # due at 0.0, the client only sent it at 0.5
    assert r.ttft_s == pytest.approx(r.first_token_at - 0.0)
    assert r.e2e_s == pytest.approx(2.5)
    m = calculate_metrics([r])
    assert m.ttft_ms["p50"] == pytest.approx(r.first_token_at * 1000)


def test_tpot_uses_usage_tokens_and_itl_every_chunk_gap() -> None:
    """A server that sends 12 tokens in 4 chunks: TPOT divides by 11 tokens, ITL has 3 gaps."""
    r = RequestResult(
        ok=True,
        sent_at=0.0,
        first_token_at=0.1,
        done_at=1.2,
        ended_at=1.2,
        chunk_times=[0.1, 0.4, 0.8, 1.2],
        output_tokens=12,
        prompt_tokens=3,
        tokens_source="usage",
    )
    m = calculate_metrics([r])
    assert m.tpot_ms["p50"] == pytest.approx((1200 - 100) / 11)
    assert m.itl_ms["mean"] == pytest.approx((300 + 400 + 400) / 3)
    assert m.output_tokens_mean == 12
    assert m.tokens_source == "usage"


def test_a_level_is_as_good_as_its_weakest_token_count() -> None:
    a = result_at(0.0, 1.0)
    b = result_at(0.0, 1.0)
    b.tokens_source = "tokenizer"
    m = calculate_metrics([a, b])
    assert m.tokens_source == "tokenizer"
    assert m.tokens_sources == {"usage": 1, "tokenizer": 1}


def test_faults_mixed_with_successes_are_counted_by_type_and_kept_out_of_latency() -> None:
    """One request in three fails (HTTP 500 at once, or dropped mid-stream)."""
    with FakeServer(tpot_s=0.01, tokens=8) as server:
        result = load(server.url, "flaky", n=12, concurrency=3)
    m = metrics_of(result, Slo(e2e_ms=10_000))
    assert m.errors == {"http_500": 2, "disconnected": 2}
    assert m.completed == 8
    assert m.failed == 4
    assert not m.meets_slo  # failures fail the SLOs, whatever the latencies
    ok_e2e = [r.e2e_s * 1000 for r in result.results if r.ok]
    assert len(ok_e2e) == 8
    assert m.e2e_ms["p50"] >= 8 * 10 * 0.9  # only complete streams: a 500 takes no time at all
    assert m.latency_requests <= 8
    assert m.goodput_requests_per_s <= m.requests_per_s


# -- time bounds -------------------------------------------------------------------------------


def test_timeout_bounds_a_whole_request_not_one_read() -> None:
    """Tokens every 0.3 s never leave a read idle for 1 s, but the request would take 3 s."""
    with FakeServer(tpot_s=0.3, tokens=10) as server:
        result = load(server.url, "ok", n=2, concurrency=2, timeout=1.0, tokens=10)
    m = metrics_of(result)
    assert m.errors == {"timeout": 2}
    for r in result.results:
        assert r.ended_at - r.sent_at == pytest.approx(1.0, abs=0.4)
        assert "1 s" in r.error
    assert result.wall_s < 2.0


def test_max_duration_cancels_requests_in_flight() -> None:
    """0.4 s requests, 2 at a time, 20 of them, 1 s allowed: 4 done, 2 cancelled, 14 never sent."""
    with FakeServer(tpot_s=0.05) as server:
        result = load(server.url, "ok", n=20, concurrency=2, tokens=8, max_duration=1.0)
    assert result.wall_s < 1.4
    assert result.cut
    assert result.cancelled == 2
    assert result.not_sent == 14
    m = metrics_of(result)
    assert m.completed == 4
    assert m.cancelled == 2
    assert m.errors == {}
    assert m.latency_requests <= 4
    assert all(r.e2e_s is None for r in result.results if r.cancelled)


# -- arrivals, the client's health, /metrics --------------------------------------------------------


@pytest.mark.parametrize("burstiness", [0.25, 1.0, 4.0])
def test_gamma_arrival_gaps_have_the_asked_variation(burstiness: float) -> None:
    gaps = arrival_gaps(20_000, rate=10.0, burstiness=burstiness, rng=random.Random(1))
    assert statistics.fmean(gaps) == pytest.approx(0.1, rel=0.05)
    cv = statistics.pstdev(gaps) / statistics.fmean(gaps)
    assert cv == pytest.approx(1 / burstiness**0.5, rel=0.07)


def test_bursty_open_loop_schedules_and_times_from_arrivals() -> None:
    async def go():
        with FakeServer(tpot_s=0.001, tokens=2) as server:
            client = OpenAIClient(server.url, "ok")
            try:
                specs = [RequestSpec("hi", 2, 2) for _ in range(400)]
                return await run_load(client, specs, rate=400.0, burstiness=0.25, seed=3)
            finally:
                await client.aclose()

    result = asyncio.run(go())
    due = sorted(r.scheduled_at for r in result.results)
    gaps = [b - a for a, b in itertools.pairwise(due)]
    assert statistics.pstdev(gaps) / statistics.fmean(gaps) == pytest.approx(2.0, rel=0.3)
    for r in result.results:
        assert r.sent_at >= r.scheduled_at - 1e-6
        if r.ok:
            assert r.ttft_s == pytest.approx(r.first_token_at - r.scheduled_at)


def test_parse_prometheus_sums_engines_and_skips_the_rest() -> None:
    text = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
vllm:num_requests_running{engine="1",model_name="m"} 2.0
vllm:num_requests_waiting{engine="0",model_name="m"} 0.0
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
vllm:prefix_cache_queries_total{engine="0",model_name="m"} 1.5e3
vllm:prefix_cache_hits_total{engine="0",model_name="m"} NaN
vllm:time_to_first_token_seconds_bucket{le="0.1"} 7.0
process_cpu_seconds_total 12.5
"""
    assert parse_prometheus(text) == {
        "requests_running": 5.0,
        "requests_waiting": 0.0,
        "kv_cache_usage": 0.25,
        "prefix_cache_queries": 1500.0,
    }
    assert parse_prometheus("garbage\n{}\n") == {}


def test_the_scraper_keeps_gauge_peaks_and_counter_increases() -> None:
    with (
        FakeServer(kind="vllm", tpot_s=0.01) as server,
        MetricsScraper(server.url.removesuffix("/v1"), interval_s=0.05) as scraper,
    ):
        load(server.url, "ok", n=8, concurrency=4)
    summary = scraper.summary()
    assert summary["server_requests_running_max"] >= 1
    assert summary["server_prefix_cache_queries_delta"] == 8 * 16
    assert summary["server_prefix_cache_hit_rate"] == 0.0


# -- resuming a capacity search -----------------------------------------------------------------


def stored(q: float, met: bool | None = None, **values: float) -> dict:
    args = {"slo_percentile": q, **{f"{k}_at_slo_percentile": v for k, v in values.items()}}
    if met is not None:
        args["slo_met"] = met
    return {
        "status": "ok",
        "errors": {},
        "slo": {"tpot_ms": 25.0},
        "tpot_ms": {"p50": 10.0, "p90": 30.0, "p95": 40.0, "p99": 50.0},
        "engine": {"args": args},
    }


def test_a_stored_probe_is_judged_at_the_percentile_asked() -> None:
    assert meets_slo(stored(80, True, tpot_ms=20.0), Slo(tpot_ms=25.0, percentile=80)) is True
    assert meets_slo(stored(80, tpot_ms=20.0), Slo(tpot_ms=15.0, percentile=80)) is False
    assert meets_slo(stored(80, tpot_ms=20.0), Slo(tpot_ms=25.0, percentile=90)) is False  # p90 30
    assert meets_slo(stored(95, True), Slo(tpot_ms=25.0, percentile=80)) is None  # cannot tell
    assert meets_slo(stored(95), Slo(tpot_ms=45.0, percentile=95)) is True  # p95 40


# -- the command: records, bounds, prompts, datasets, detection -------------------------------------


def serve(url: str, out: Path, *args: str) -> tuple[object, list[dict]]:
    result = gpu_bench(
        "serve", "--endpoint", url, "--input-len", "8", "--output-len", "8", "--out", str(out), *args
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return result, rows


def test_cli_max_duration_cuts_a_level_and_the_record_says_so(tmp_path: Path) -> None:
    with FakeServer(tpot_s=0.05) as server:
        result, rows = serve(
            server.url, tmp_path / "cut.jsonl", "--model", "ok", "--concurrency", "2",
            "--num-requests", "20", "--warmup", "0", "--max-duration", "1",
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    (r,) = rows
    args = r["engine"]["args"]
    assert args["cut_at_max_duration"] is True
    assert args["cancelled_requests"] == 2
    assert args["unsent_requests"] == 14
    assert args["level_wall_s"] < 1.5
    assert r["num_requests"] == 4  # answered: the cancelled are counted apart
    assert r["status"] == "ok"
    assert not r["errors"]
    assert "cut at --max-duration 1 s" in r["notes"]
    assert "cut at 1 s (2 cancelled)" in result.stderr


def test_cli_timeout_is_per_request_in_all(tmp_path: Path) -> None:
    with FakeServer(tpot_s=0.3) as server:
        result, rows = serve(
            server.url, tmp_path / "timeout.jsonl", "--model", "ok", "--concurrency", "2",
            "--num-requests", "2", "--warmup", "0", "--output-len", "10", "--timeout", "1",
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    (r,) = rows
    assert r["errors"] == {"timeout": 2}
    assert r["status"] == "error"
    assert r["engine"]["args"]["level_wall_s"] < 2.0


def test_cli_resumes_a_capacity_search_at_any_percentile(tmp_path: Path) -> None:
    out = tmp_path / "cap80.jsonl"
    args = (
        "--model", "capacity", "--find-capacity", "--slo-tpot-ms", "25", "--slo-percentile", "80",
        "--num-requests", "24", "--output-len", "10", "--max-concurrency", "16",
    )  # fmt: skip
    with FakeServer(tpot_s=0.01, capacity=6) as server:
        first, rows = serve(server.url, out, *args)
        assert first.returncode == 0, first.stderr[-2000:]
        assert "capacity: concurrency 6 meets the SLOs" in first.stdout
        for r in rows:
            assert r["engine"]["args"]["slo_percentile"] == 80
            assert isinstance(r["engine"]["args"]["slo_met"], bool)
            assert "tpot_ms_at_slo_percentile" in r["engine"]["args"]
        sent = len(server.seen)
        again, rows_again = serve(server.url, out, *args)
        assert again.returncode == 0, again.stderr[-2000:]
        assert "capacity: concurrency 6 meets the SLOs" in again.stdout
        assert "measuring again" not in again.stderr
        assert again.stderr.count("recorded before, reused") == len(rows)
        assert len(rows_again) == len(rows)  # nothing measured twice
        assert len(server.seen) - sent <= 1  # the ignore_eos probe only


def test_cli_never_sends_a_prompt_twice(tmp_path: Path) -> None:
    """Fresh prompts for every level and probe: a prefix cache never answers a repeat."""
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "tell me a story", "max_tokens": 3}\n{"prompt": "count to ten"}\n')
    with FakeServer() as server:
        result, _ = serve(
            server.url, tmp_path / "a.jsonl", "--model", "ok", "--concurrency", "1,2",
            "--num-requests", "5", "--warmup", "1",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        result, _ = serve(
            server.url, tmp_path / "b.jsonl", "--model", "capacity", "--find-capacity",
            "--slo-tpot-ms", "1000", "--max-concurrency", "4", "--num-requests", "4", "--warmup", "0",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        assert len(server.prompts) == 2 * 6 + 3 * 4  # levels 1, 2; probes 1, 2, 4
        assert len(set(server.prompts)) == len(server.prompts)
        server.prompts.clear()
        result, rows = serve(
            server.url, tmp_path / "c.jsonl", "--model", "ok", "--concurrency", "1,2",
            "--num-requests", "4", "--warmup", "0", "--dataset", f"jsonl:{prompts}",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
    assert len(server.prompts) == 8
    assert len(set(server.prompts)) == 8
    for text in server.prompts:
        tag, _, rest = text.partition(" ")
        assert len(tag) == 10
        assert tag.startswith("[")
        assert rest in ("tell me a story", "count to ten")
    for r in rows:
        assert r["dataset"] == "jsonl:prompts.jsonl"
        assert r["output_tokens"] == pytest.approx((3 + 8) / 2)  # max_tokens from the file, else 8
        assert r["engine"]["args"]["prompts"] == "fresh per level, uniquely tagged"


def test_cli_sharegpt_dataset(tmp_path: Path) -> None:
    data = [
        {"conversations": [{"from": "human", "value": "hi there"}, {"from": "gpt", "value": "a b c"}]},
        {"conversations": [{"from": "human", "value": "why"}, {"from": "gpt", "value": "a b c d e f g"}]},
        {"conversations": [{"from": "human", "value": "only one turn"}]},
    ]
    path = tmp_path / "share.json"
    path.write_text(json.dumps(data))
    with FakeServer() as server:
        result, rows = serve(
            server.url, tmp_path / "s.jsonl", "--model", "ok", "--concurrency", "2",
            "--num-requests", "4", "--warmup", "0", "--dataset", f"sharegpt:{path}",
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    (r,) = rows
    assert r["dataset"] == "sharegpt:share.json"
    assert r["output_tokens"] == pytest.approx((3 + 7) / 2)  # the replies' lengths, each twice
    assert {p.partition(" ")[2] for p in server.prompts} == {"hi there", "why"}


def test_cli_raw_out_and_a_saturated_client_is_marked(tmp_path: Path) -> None:
    raw = tmp_path / "raw.jsonl"
    with FakeServer() as server:
        result, rows = serve(
            server.url, tmp_path / "r.jsonl", "--model", "ok", "--concurrency", "1,3",
            "--num-requests", "6", "--warmup", "1", "--raw-out", str(raw), "--client-lag-limit-ms", "0",
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    for r in rows:
        assert r["client_saturated"] is True  # any lag at all is over a limit of 0 ms
        assert "client saturated" in r["notes"]
    assert "warning: the client was saturated at concurrency 1" in result.stderr
    lines = [json.loads(line) for line in raw.read_text().splitlines()]
    assert [x["level"] for x in lines] == [1] * 7 + [3] * 7
    assert sum(x["warmup"] for x in lines) == 2
    for x in lines:
        assert x["level_kind"] == "concurrency"
        assert x["ok"]
        assert x["output_tokens"] == 8
        assert len(x["chunk_s"]) == 8
        assert x["sent_s"] <= x["first_token_s"] <= x["done_s"] <= x["ended_s"]
        assert x["phase"] in ("warmup", "ramp", "steady", "cooldown")
    assert {x["phase"] for x in lines} >= {"warmup", "steady"}


@pytest.mark.parametrize(
    ("kind", "expected", "version", "device"),
    [
        ("vllm", "vllm", "0.99.0+cpu", "cpu"),
        ("sglang", "sglang", "0.5.1", "cuda"),
        ("tgi", "tgi", "3.3.4", "cuda"),
        ("llama.cpp", "llama.cpp", "b5000-abc1234", None),
        ("transformers-serve", "transformers-serve", None, None),
        ("plain", "openai-compatible", None, None),
    ],
)
def test_detect_the_server_from_what_it_exposes(kind: str, expected: str, version, device) -> None:
    from gpu_bench.serving.detect import detect_server, http_get

    with FakeServer(kind=kind) as server:
        info = detect_server(http_get(server.url.removesuffix("/v1")))
    assert (info.kind, info.version, info.device) == (expected, version, device)
    if kind == "sglang":
        assert (info.tp, info.gpu_count) == (2, 2)


def test_tp_and_kind_from_a_launch_command() -> None:
    from gpu_bench.serving.detect import kind_of_command, tp_of_command

    assert tp_of_command("vllm serve m --tensor-parallel-size 4 --port 1") == 4
    assert tp_of_command("vllm serve m -tp=2") == 2
    assert tp_of_command("python -m sglang.launch_server --tp 8") == 8
    assert tp_of_command("text-generation-launcher --num-shard 2") == 2
    assert tp_of_command("vllm serve m") is None
    assert kind_of_command("python -m vllm.entrypoints.openai.api_server") == "vllm"
    assert kind_of_command("./server") == "openai-compatible"


def test_cli_records_an_already_running_server_as_what_it_is(tmp_path: Path) -> None:
    """No --launch: a vLLM server (CPU build) is recorded as vllm, with its version and device."""
    with FakeServer(kind="vllm") as server:
        result, rows = serve(
            server.url, tmp_path / "v.jsonl", "--model", "ok", "--concurrency", "2", "--num-requests", "4"
        )
    assert result.returncode == 0, result.stderr[-2000:]
    (r,) = rows
    assert (r["engine"]["name"], r["engine"]["version"]) == ("vllm", "0.99.0+cpu")
    assert r["device"] == "cpu"
    assert "gpu" not in r
    args = r["engine"]["args"]
    assert "vllm: series on /metrics" in args["server_detected_by"]
    assert args["hardware_from"].startswith("device: server")
    assert args["server_prefix_cache_hits_delta"] == 0
    assert args["env_describes"].startswith("the client machine")
    assert (r["kv_cache_tokens"], r["max_concurrency_engine"]) == (51200, 12.5)  # cache_config_info
    assert args["server_prefix_caching"] is True


def test_a_vllm_build_says_its_device_only_sometimes() -> None:
    from gpu_bench.serving.detect import _device_of_build

    assert _device_of_build("0.8.5+cpu") == "cpu"
    assert _device_of_build("0.6.3+rocm624") == "rocm"
    assert _device_of_build("0.32.0") is None  # the CPU build from PyPI, and the CUDA one
    assert _device_of_build("0.9.1+cu126") is None


def test_cli_server_hardware_is_stated_not_taken_from_the_client(tmp_path: Path) -> None:
    """This machine has no GPU (or another one): the server's hardware is what the user states."""
    with FakeServer(kind="tgi") as server:
        result, rows = serve(
            server.url, tmp_path / "h.jsonl", "--model", "ok", "--concurrency", "1", "--num-requests", "2",
            "--gpu", "h100-sxm", "--gpu-count", "2", "--tp", "2",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        (r,) = rows
        assert (r["device"], r["gpu"], r["gpu_count"], r["tensor_parallel"]) == ("cuda", "h100-sxm", 2, 2)
        assert (r["engine"]["name"], r["engine"]["version"]) == ("tgi", "3.3.4")
        assert (
            r["engine"]["args"]["hardware_from"]
            == "device: stated; gpu: stated; gpu_count: stated; tp: stated"
        )
        assert r["engine"]["args"]["server_max_concurrent_requests"] == 128
        result, rows = serve(
            server.url, tmp_path / "d.jsonl", "--model", "ok", "--concurrency", "1", "--num-requests", "2",
            "--device", "cuda", "--server-kind", "sglang",
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    (r,) = rows
    assert r["device"] == "cuda"  # as stated, whatever this machine has
    assert r["engine"]["name"] == "sglang"
    assert r["engine"]["args"]["server_detected_by"] == "stated (--server-kind)"
    if not r["env"].get("gpus"):
        assert "gpu" not in r
        assert "the server's GPU is unknown; state --gpu ID" in result.stderr


def test_cli_refuses_a_cpu_server_with_a_gpu(tmp_path: Path) -> None:
    result = gpu_bench(
        "serve", "--model", "x", "--endpoint", "http://127.0.0.1:9/v1", "--device", "cpu", "--gpu", "h100-sxm"
    )
    assert result.returncode == 2
    assert "a CPU server has no GPU" in result.stderr


# -- Ctrl-C and SIGTERM: finished levels kept, the launched server gone, no traceback ---------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def start_serve(tmp_path: Path, launch: str, port: int, *args: str):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    cmd = [
        sys.executable, "-m", "gpu_bench.cli", "serve", "--launch", launch,
        "--endpoint", f"http://127.0.0.1:{port}/v1", "--model", "ok", "--input-len", "8",
        "--out", str(tmp_path / "sig.jsonl"), *args,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(check, timeout: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


NOISE = ("Traceback", "Event loop is closed", "Task was destroyed", "Exception ignored", "never awaited")


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_mid_run_keeps_finished_levels_and_stops_the_server(tmp_path: Path, sig: str) -> None:
    import signal
    import sys

    port, pid_file, out = free_port(), tmp_path / "server.pid", tmp_path / "sig.jsonl"
    launch = f"{sys.executable} tests/gpu_bench/fake_server.py --port {port} --tpot 0.1 --pid-file {pid_file}"
    # Level 8: 8 requests at once, ~1 s. Level 1: the same 8 one after another, ~8 s: cut short.
    proc = start_serve(
        tmp_path, launch, port, "--concurrency", "8,1", "--num-requests", "8", "--warmup", "0",
        "--output-len", "10",
    )  # fmt: skip
    try:
        wait_for(lambda: out.exists() and out.read_text().count("\n") == 1)
        server_pid = int(pid_file.read_text())
        assert alive(server_pid)
        import time

        time.sleep(1.0)  # well inside the second level
        proc.send_signal(getattr(signal, sig))
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == (130 if sig == "SIGINT" else 143), stderr[-3000:]
    assert f"interrupted ({'Ctrl-C' if sig == 'SIGINT' else 'SIGTERM'}): 1 level(s)" in stderr
    assert "the launched server was stopped" in stderr
    for noise in NOISE:
        assert noise not in stderr, stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["concurrency"] for r in rows] == [8]
    assert rows[0]["status"] == "ok"
    wait_for(lambda: not alive(server_pid), timeout=10)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_while_the_server_starts_stops_it(tmp_path: Path, sig: str) -> None:
    import signal
    import sys

    port, pid_file = free_port(), tmp_path / "starting.pid"
    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(600)"
    launch = f'{sys.executable} -c "{code}"'
    proc = start_serve(tmp_path, launch, port, "--concurrency", "1", "--ready-timeout", "120")
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text())
        server_pid = int(pid_file.read_text())
        proc.send_signal(getattr(signal, sig))
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == (130 if sig == "SIGINT" else 143), stderr[-3000:]
    for noise in NOISE:
        assert noise not in stderr, stderr[-3000:]
    assert "0 level(s)" in stderr
    wait_for(lambda: not alive(server_pid), timeout=10)
    assert not (tmp_path / "sig.jsonl").exists()


def test_cli_flags_output_tokens_counted_without_usage(tmp_path: Path) -> None:
    from gpu_bench.weights import build_tokenizer

    tokenizer = tmp_path / "tok"
    build_tokenizer(tokenizer)
    with FakeServer() as server:
        counted, rows = serve(
            server.url, tmp_path / "t.jsonl", "--model", "nousage", "--concurrency", "2",
            "--num-requests", "4", "--tokenizer", str(tokenizer),
        )  # fmt: skip
        assert counted.returncode == 0, counted.stderr[-2000:]
        (r,) = rows
        assert r["output_tokens_source"] == "tokenizer"
        assert "counted with the local tokenizer" in r["notes"]
        assert r["engine"]["args"]["prompts_sized_by"] == "tokenizer"
        assert "prompt lengths sized by words" not in r["notes"]
        chunks, rows = serve(
            server.url,
            tmp_path / "c.jsonl",
            "--model",
            "nousage",
            "--concurrency",
            "2",
            "--num-requests",
            "4",
        )
    assert chunks.returncode == 0, chunks.stderr[-2000:]
    (r,) = rows
    assert "output_tokens_source" not in r  # neither usage nor a tokenizer: not a token count
    assert "their output tokens are content chunks" in r["notes"]
    assert r["engine"]["args"]["prompts_sized_by"] == "words"
    assert "prompt lengths sized by words (23 common ones, about a token each), no --tokenizer" in r["notes"]


def test_cli_a_server_that_fails_every_request_still_ends_the_level_as_a_record(tmp_path: Path) -> None:
    """It answers (so it is there), then drops every stream: a measurement with its errors, exit 0."""
    with FakeServer() as server:
        result, rows = serve(
            server.url, tmp_path / "d.jsonl", "--model", "drop", "--concurrency", "2",
            "--num-requests", "4", "--warmup", "0",
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    (r,) = rows
    assert r["status"] == "error"
    assert r["errors"] == {"disconnected": 4}
    assert "no request completed" in r["error"]
