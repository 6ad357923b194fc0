"""Load: fixed concurrency (closed loop) or an arrival rate (Poisson, or gamma for burstiness),
bounded in requests and in time, with warm-up marked, and a watch on the client itself.

A level ends when every request has been sent and answered, or at `max_duration_s`, whichever
comes first: at the deadline the requests still in flight are cancelled (marked `cancelled`, kept
out of the latency statistics) and those not yet sent are not sent. The load generator also says
when the offered load stopped being full (`load_end`): the first client slot that found nothing
left to send (closed loop), the last arrival (open loop), or the deadline. The measured window
ends there (metrics.py); what finishes after it is cool-down.

The client must never be the bottleneck it measures: a monitor task samples the event loop's
lag and the process's CPU share during the run; when either says the client was saturated the
run is marked, and the record says so.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

from gpu_bench.serving.client import OpenAIClient, RequestResult, RequestSpec

LAG_LIMIT_MS = 25.0  # event-loop lag (p99) above which timestamps are no longer trustworthy
CPU_LIMIT = 0.9  # share of one core the client process used over the run


@dataclass
class ClientHealth:
    loop_lag_p99_ms: float
    loop_lag_max_ms: float
    cpu_share: float
    lag_limit_ms: float = LAG_LIMIT_MS
    cpu_limit: float = CPU_LIMIT

    @property
    def saturated(self) -> bool:
        return self.loop_lag_p99_ms > self.lag_limit_ms or self.cpu_share > self.cpu_limit


@dataclass
class LoadResult:
    results: list[RequestResult]  # every request sent, in the order sent
    health: ClientHealth
    wall_s: float
    load_end: float | None = None  # perf_counter when the offered load stopped being full
    cut: bool = False  # the level ran into max_duration_s: in-flight requests were cancelled
    not_sent: int = 0  # requests never sent because the level's time was up

    @property
    def cancelled(self) -> int:
        return sum(1 for r in self.results if r.cancelled)


def arrival_gaps(n: int, rate: float, burstiness: float, rng: random.Random) -> list[float]:
    """Gaps between arrivals, gamma-distributed with mean 1/rate: shape (burstiness) 1 is Poisson,
    below 1 burstier, above 1 more regular; the gaps' coefficient of variation is 1/sqrt(shape)."""
    return [rng.gammavariate(burstiness, 1.0 / (rate * burstiness)) for _ in range(n)]


async def _monitor(stop: asyncio.Event, lags: list[float], interval: float = 0.01) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(interval)
        lags.append(max(0.0, (loop.time() - t - interval) * 1000))


def _health(lags: list[float], cpu_s: float, wall_s: float, lag_limit_ms: float) -> ClientHealth:
    s = sorted(lags) or [0.0]
    return ClientHealth(
        loop_lag_p99_ms=s[min(len(s) - 1, int(0.99 * len(s)))],
        loop_lag_max_ms=s[-1],
        cpu_share=cpu_s / wall_s if wall_s > 0 else 0.0,
        lag_limit_ms=lag_limit_ms,
    )


async def _one(
    client: OpenAIClient, spec: RequestSpec, result: RequestResult, results: list[RequestResult]
) -> None:
    results.append(result)
    try:
        await client.fill(spec, result)
    except asyncio.CancelledError:
        result.error_type, result.error = "cancelled", "still in flight when the level's time was up"
        if result.prompt_tokens is None:
            result.prompt_tokens = spec.input_tokens
        raise


async def run_load(
    client: OpenAIClient,
    requests: Sequence[RequestSpec],
    concurrency: int | None = None,
    rate: float | None = None,
    burstiness: float = 1.0,
    warmup: int = 0,
    max_duration_s: float = 3600.0,
    seed: int = 0,
    lag_limit_ms: float = LAG_LIMIT_MS,
) -> LoadResult:
    """Send `requests` (the first `warmup` of them are warm-up) at a concurrency or a rate."""
    if (concurrency is None) == (rate is None):
        raise ValueError("give a concurrency or a rate")
    stop = asyncio.Event()
    lags: list[float] = []
    monitor = asyncio.create_task(_monitor(stop, lags))
    cpu0, t0 = time.process_time(), time.perf_counter()
    results: list[RequestResult] = []
    marks: list[float] = []  # closed loop: when slots went idle; open loop: the last arrival
    pending = list(enumerate(requests))
    pending.reverse()  # popped from the end: sent in order

    async def worker() -> None:
        while pending:
            i, spec = pending.pop()
            result = RequestResult(ok=False, sent_at=time.perf_counter(), warmup=i < warmup)
            await _one(client, spec, result, results)
        marks.append(time.perf_counter())

    async def arrivals(tg: asyncio.TaskGroup) -> None:
        assert rate is not None
        due = time.perf_counter()
        for gap in arrival_gaps(len(pending), rate, burstiness, random.Random(seed)):
            due += gap
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            i, spec = pending.pop()
            result = RequestResult(ok=False, sent_at=time.perf_counter(), warmup=i < warmup, scheduled_at=due)
            tg.create_task(_one(client, spec, result, results))
        marks.append(due)

    cut = False
    try:
        async with asyncio.timeout(max_duration_s):
            async with asyncio.TaskGroup() as tg:
                if concurrency is not None:
                    for _ in range(concurrency):
                        tg.create_task(worker())
                else:
                    tg.create_task(arrivals(tg))
    except TimeoutError:
        cut = True
    finally:
        stop.set()
        monitor.cancel()
    await asyncio.gather(monitor, return_exceptions=True)
    end = time.perf_counter()
    wall = end - t0
    cpu = time.process_time() - cpu0
    load_end = min(marks) if marks else min(end, t0 + max_duration_s)  # the deadline ended it
    return LoadResult(
        results, _health(lags, cpu, wall, lag_limit_ms), wall, load_end, cut, not_sent=len(pending)
    )
