"""Serving metrics from per-request results: a pure function, tested on its own.

Definitions (fixed; see ../shared/DESIGN.md and the README):
- TTFT: request due -> first content token received, client-side queueing included (in open-loop
  runs a request is due at its scheduled arrival, not when the client got round to sending it).
- TPOT: (E2E - TTFT) / (output tokens - 1), per request. ITL: every gap between content chunks.
- Output tokens: the server's usage (else a local tokenizer, and the record says so).
- Throughput: output tokens produced inside the measured window / the window's wall time.
- Requests/s and goodput: successful requests (those that met every SLO given, for goodput) per
  second of the window, each counted by the share of its output that came inside the window.

The measured window is the steady state: it opens when the system is loaded and warm (every
warm-up request has ended, and the first measured request is due, whichever is later) and closes
when the offered load stops being full (the first client slot with nothing left to send, the last
arrival, or the level's deadline; the load generator says when). Tokens count where they were
produced: a request's usage tokens are spread over its content chunks and those that arrived inside
the window count. Latency statistics are over the measured requests that belong to the window:
in a closed loop those wholly inside it (not warm-up, not ramp (due before it opened), not
cool-down (ended after it closed, as concurrency drained)); in an open loop those that arrived
inside it, whenever they ended (under overload most end after the last arrival, and their queueing
is the point). Cancelled requests are never in them; the SLO verdict counts how long they had
waited, as lower bounds. When no request belongs to the window (a level of fewer requests than its
concurrency never reaches steady state) the window is the whole measured run, and says so.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field

from gpu_bench.serving.client import RequestResult

SOURCE_RANK = {"usage": 0, "tokenizer": 1, "chunks": 2}  # a level is as good as its weakest count


@dataclass(frozen=True)
class Slo:
    ttft_ms: float | None = None
    tpot_ms: float | None = None
    e2e_ms: float | None = None
    percentile: float = 95.0  # the percentile a capacity search holds to the SLOs

    def as_dict(self) -> dict[str, float]:
        out = {
            f"{k}": v
            for k, v in (("ttft_ms", self.ttft_ms), ("tpot_ms", self.tpot_ms), ("e2e_ms", self.e2e_ms))
        }
        return {k: v for k, v in out.items() if v is not None}


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), without numpy."""
    if not values:
        return math.nan
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def distribution(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "mean": statistics.fmean(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "stdev": statistics.pstdev(values) if len(values) > 1 else 0.0,
    }


@dataclass(frozen=True)
class Window:
    start: float
    end: float
    steady: bool  # False: no steady state was reached; the window is the whole measured run
    by_arrival: bool = False  # open loop: a request belongs to the window it arrived in

    @property
    def duration_s(self) -> float:
        return max(self.end - self.start, 1e-9)

    def holds(self, r: RequestResult) -> bool:
        """Closed loop: the request lies wholly inside the window. Open loop: it arrived inside it."""
        if self.by_arrival:
            return self.start <= r.due_at <= self.end
        return r.due_at >= self.start and (r.ended_at or r.due_at) <= self.end


def measured_window(results: list[RequestResult], load_end: float | None = None) -> Window:
    """The steady-state window (see the module's docstring). `load_end`: when the offered load
    stopped being full; without it, the first request end at or after the last send."""
    measured = [r for r in results if not r.warmup]
    if not measured:
        return Window(0.0, 0.0, False)
    warm = [r.ended_at for r in results if r.warmup and r.ended_at is not None]
    start = max([min(r.due_at for r in measured), *warm])
    open_loop = any(r.scheduled_at is not None for r in measured)
    if load_end is None:
        last = max(r.due_at for r in results)
        ends = [r.ended_at for r in results if r.ended_at is not None and r.ended_at >= last]
        load_end = last if open_loop else min(ends, default=last)
    window = Window(start, load_end, True, open_loop)
    if any(r.ok and window.holds(r) for r in measured):
        return window
    end = max((r.ended_at or r.due_at) for r in measured)
    return Window(min(r.due_at for r in measured), end, False, open_loop)


def phase(r: RequestResult, w: Window) -> str:
    """warmup, cancelled, failed, ramp, steady or cooldown (the last three as the window sees them)."""
    if r.warmup:
        return "warmup"
    if r.cancelled:
        return "cancelled"
    if not r.ok:
        return "failed"
    if not w.steady or w.holds(r):
        return "steady"
    return "ramp" if r.due_at < w.start else "cooldown"


@dataclass
class ServingMetrics:
    completed: int
    failed: int
    duration_s: float
    input_tokens_mean: float
    output_tokens_mean: float
    output_tokens_per_s: float
    input_tokens_per_s: float
    total_tokens_per_s: float
    requests_per_s: float
    goodput_requests_per_s: float | None
    ttft_ms: dict[str, float] | None
    tpot_ms: dict[str, float] | None
    itl_ms: dict[str, float] | None
    e2e_ms: dict[str, float] | None
    errors: dict[str, int] = field(default_factory=dict)
    tokens_source: str | None = None  # the weakest source among the successful requests
    tokens_sources: dict[str, int] = field(default_factory=dict)
    meets_slo: bool | None = None  # at the SLO percentile, when SLOs were given
    at_slo_percentile: dict[str, float] = field(default_factory=dict)  # ttft_ms/tpot_ms/e2e_ms at q
    cancelled: int = 0
    window_steady: bool = True
    latency_requests: int = 0  # the requests the latency statistics are over
    phases: dict[str, int] = field(default_factory=dict)


def _share_inside(r: RequestResult, w: Window) -> float:
    """The share of a request's output that arrived inside the window (by its chunks)."""
    if not r.chunk_times:
        return 1.0 if w.start <= (r.ended_at or -math.inf) <= w.end else 0.0
    return sum(1 for t in r.chunk_times if w.start <= t <= w.end) / len(r.chunk_times)


def _tokens_inside(r: RequestResult, w: Window, per_chunk: float) -> float:
    """Output tokens of one request produced inside the window: usage spread over its chunks."""
    if r.ok:
        return (r.output_tokens or 0) * _share_inside(r, w)
    return sum(1 for t in r.chunk_times if w.start <= t <= w.end) * per_chunk  # cancelled: no usage


def _tpot_ms(r: RequestResult) -> float | None:
    if not r.output_tokens or r.output_tokens < 2 or r.e2e_s is None or r.ttft_s is None:
        return None
    return (r.e2e_s - r.ttft_s) * 1000 / (r.output_tokens - 1)


def calculate_metrics(
    results: list[RequestResult], slo: Slo | None = None, load_end: float | None = None
) -> ServingMetrics:
    measured = [r for r in results if not r.warmup]
    ok = [r for r in measured if r.ok]
    cancelled = [r for r in measured if r.cancelled]
    failed = [r for r in measured if not r.ok and not r.cancelled]
    w = measured_window(results, load_end)
    steady = [r for r in ok if not w.steady or w.holds(r)]
    chunks = sum(len(r.chunk_times) for r in ok)
    per_chunk = sum(r.output_tokens or 0 for r in ok) / chunks if chunks else 1.0
    duration = w.duration_s
    out_tokens = sum(_tokens_inside(r, w, per_chunk) for r in ok + cancelled)
    prefilled = [r for r in ok + cancelled if r.first_token_at is not None]
    in_tokens = sum(r.prompt_tokens or 0 for r in prefilled if w.start <= r.first_token_at <= w.end)
    # Requests count as tokens do, by the share of their output that came inside the window:
    # counting whole completions would swing with where the window's edges fall.
    share = {id(r): _share_inside(r, w) for r in ok}

    ttft = [r.ttft_s * 1000 for r in steady if r.ttft_s is not None]
    e2e = [r.e2e_s * 1000 for r in steady if r.e2e_s is not None]
    tpot_of = {id(r): v for r in ok if (v := _tpot_ms(r)) is not None}
    tpot = [tpot_of[id(r)] for r in steady if id(r) in tpot_of]
    itl = [(b - a) * 1000 for r in steady for a, b in zip(r.chunk_times, r.chunk_times[1:], strict=False)]
    goodput = None
    meets = None
    at_q: dict[str, float] = {}
    if slo is not None and slo.as_dict():

        def good(r: RequestResult) -> bool:
            checks = []
            if slo.ttft_ms is not None:
                checks.append(r.ttft_s is not None and r.ttft_s * 1000 <= slo.ttft_ms)
            if slo.tpot_ms is not None:
                checks.append(tpot_of.get(id(r), 0.0) <= slo.tpot_ms)
            if slo.e2e_ms is not None:
                checks.append(r.e2e_s is not None and r.e2e_s * 1000 <= slo.e2e_ms)
            return all(checks)

        goodput = sum(share[id(r)] for r in ok if good(r)) / duration
        q = slo.percentile
        meets = bool(ok) and not failed
        # A request cancelled at the deadline had waited at least this long: lower bounds the
        # verdict counts, so that a level cut while requests queue cannot pass by leaving its
        # slowest requests out.
        cut_short = [r for r in cancelled if not w.steady or r.due_at >= w.start]
        waited = [((r.ended_at or r.due_at) - r.due_at) * 1000 for r in cut_short]
        no_token = [v for r, v in zip(cut_short, waited, strict=True) if r.first_token_at is None]
        for name, values, limit in (
            ("ttft_ms", ttft + no_token, slo.ttft_ms),
            ("tpot_ms", tpot, slo.tpot_ms),
            ("e2e_ms", e2e + waited, slo.e2e_ms),
        ):
            if values:
                at_q[name] = percentile(values, q)  # all three: a later search may ask for others
            if limit is None:
                continue
            if values:
                meets = meets and at_q[name] <= limit
            elif name != "tpot_ms":  # one-token outputs have no TPOT: nothing to hold to it
                meets = False
    sources = Counter(r.tokens_source for r in ok if r.tokens_source)
    weakest = max(sources, key=SOURCE_RANK.__getitem__) if sources else None
    return ServingMetrics(
        completed=len(ok),
        failed=len(failed),
        duration_s=duration,
        input_tokens_mean=sum(r.prompt_tokens or 0 for r in ok) / len(ok) if ok else 0.0,
        output_tokens_mean=sum(r.output_tokens or 0 for r in ok) / len(ok) if ok else 0.0,
        output_tokens_per_s=out_tokens / duration,
        input_tokens_per_s=in_tokens / duration,
        total_tokens_per_s=(out_tokens + in_tokens) / duration,
        requests_per_s=sum(share.values()) / duration,
        goodput_requests_per_s=goodput,
        ttft_ms=distribution(ttft),
        tpot_ms=distribution(tpot),
        itl_ms=distribution(itl),
        e2e_ms=distribution(e2e),
        errors=dict(Counter(r.error_type or "unknown" for r in failed)),
        tokens_source=weakest,
        tokens_sources=dict(sources),
        meets_slo=meets,
        at_slo_percentile=at_q,
        cancelled=len(cancelled),
        window_steady=w.steady,
        latency_requests=len(steady),
        phases=dict(Counter(phase(r, w) for r in results)),
    )
