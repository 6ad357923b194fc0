"""Load: fixed concurrency (closed loop) or an arrival rate (Poisson, or gamma for burstiness),
bounded in requests and time, with warm-up excluded, and a watch on the client itself.

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

    @property
    def saturated(self) -> bool:
        return self.loop_lag_p99_ms > LAG_LIMIT_MS or self.cpu_share > CPU_LIMIT


@dataclass
class LoadResult:
    results: list[RequestResult]
    health: ClientHealth
    wall_s: float


async def _monitor(stop: asyncio.Event, lags: list[float], interval: float = 0.01) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(interval)
        lags.append(max(0.0, (loop.time() - t - interval) * 1000))


def _health(lags: list[float], cpu_s: float, wall_s: float) -> ClientHealth:
    s = sorted(lags) or [0.0]
    return ClientHealth(
        loop_lag_p99_ms=s[min(len(s) - 1, int(0.99 * len(s)))],
        loop_lag_max_ms=s[-1],
        cpu_share=cpu_s / wall_s if wall_s > 0 else 0.0,
    )


async def run_load(
    client: OpenAIClient,
    requests: Sequence[RequestSpec],
    concurrency: int | None = None,
    rate: float | None = None,
    burstiness: float = 1.0,
    warmup: int = 0,
    max_duration_s: float = 3600.0,
    seed: int = 0,
) -> LoadResult:
    """Send `requests` (the first `warmup` of them are warm-up) at a concurrency or a rate."""
    if (concurrency is None) == (rate is None):
        raise ValueError("give a concurrency or a rate")
    stop = asyncio.Event()
    lags: list[float] = []
    monitor = asyncio.create_task(_monitor(stop, lags))
    cpu0, t0 = time.process_time(), time.perf_counter()
    deadline = t0 + max_duration_s
    results: list[RequestResult] = []
    if concurrency is not None:
        queue: asyncio.Queue[tuple[int, RequestSpec]] = asyncio.Queue()
        for i, spec in enumerate(requests):
            queue.put_nowait((i, spec))

        async def worker() -> None:
            while time.perf_counter() < deadline:
                try:
                    i, spec = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                results.append(await client.send(spec, warmup=i < warmup))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    else:
        rng = random.Random(seed)
        assert rate is not None
        tasks = []
        due = time.perf_counter()
        for i, spec in enumerate(requests):
            # Gamma-distributed gaps with mean 1/rate: shape 1 is Poisson; below 1 burstier.
            due += rng.gammavariate(burstiness, 1.0 / (rate * burstiness))
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if time.perf_counter() >= deadline:
                break
            tasks.append(asyncio.create_task(client.send(spec, warmup=i < warmup, scheduled_at=due)))
        results.extend(await asyncio.gather(*tasks))
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    stop.set()
    await monitor
    return LoadResult(results, _health(lags, cpu, wall), wall)
