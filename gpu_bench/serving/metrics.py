"""Serving metrics from per-request results: a pure function, tested on its own.

Definitions (fixed; see the README):
- TTFT: request sent -> first content token received, client-side queueing included.
- TPOT: (E2E - TTFT) / (output tokens - 1), per request. ITL: every gap between content chunks.
- Output tokens: the server's usage (else a local tokenizer, and the record says so).
- Throughput: tokens of the measured requests / wall time of the measured window (warm-up excluded).
- Goodput: measured requests per second that met every SLO given.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field

from gpu_bench.serving.client import RequestResult


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
    tokens_source: str | None = None
    meets_slo: bool | None = None  # at the SLO percentile, when SLOs were given


def calculate_metrics(results: list[RequestResult], slo: Slo | None = None) -> ServingMetrics:
    measured = [r for r in results if not r.warmup]
    ok = [r for r in measured if r.ok]
    failed = [r for r in measured if not r.ok]
    if measured:
        start = min(r.sent_at for r in measured)
        end = max((r.done_at or r.sent_at) for r in measured)
        duration = max(end - start, 1e-9)
    else:
        duration = 1e-9
    ttft = [r.ttft_s * 1000 for r in ok if r.ttft_s is not None]
    e2e = [r.e2e_s * 1000 for r in ok if r.e2e_s is not None]
    tpot_pairs = [
        (r, (r.e2e_s - r.ttft_s) * 1000 / (r.output_tokens - 1))
        for r in ok
        if r.output_tokens and r.output_tokens > 1 and r.e2e_s is not None and r.ttft_s is not None
    ]
    tpot = [t for _, t in tpot_pairs]
    itl = [(b - a) * 1000 for r in ok for a, b in zip(r.chunk_times, r.chunk_times[1:], strict=False)]
    out_tokens = sum(r.output_tokens or 0 for r in ok)
    in_tokens = sum(r.prompt_tokens or 0 for r in ok)
    goodput = None
    meets = None
    if slo is not None and slo.as_dict():
        tpot_of = {id(r): t for r, t in tpot_pairs}

        def good(r: RequestResult) -> bool:
            checks = []
            if slo.ttft_ms is not None:
                checks.append(r.ttft_s is not None and r.ttft_s * 1000 <= slo.ttft_ms)
            if slo.tpot_ms is not None:
                checks.append(tpot_of.get(id(r), 0.0) <= slo.tpot_ms)
            if slo.e2e_ms is not None:
                checks.append(r.e2e_s is not None and r.e2e_s * 1000 <= slo.e2e_ms)
            return all(checks)

        goodput = sum(1 for r in ok if good(r)) / duration
        q = slo.percentile
        meets = bool(ok) and not failed
        if slo.ttft_ms is not None:
            meets = meets and percentile(ttft, q) <= slo.ttft_ms
        if slo.tpot_ms is not None and tpot:
            meets = meets and percentile(tpot, q) <= slo.tpot_ms
        if slo.e2e_ms is not None:
            meets = meets and percentile(e2e, q) <= slo.e2e_ms
    sources = Counter(r.tokens_source for r in ok if r.tokens_source)
    return ServingMetrics(
        completed=len(ok),
        failed=len(failed),
        duration_s=duration,
        input_tokens_mean=in_tokens / len(ok) if ok else 0.0,
        output_tokens_mean=out_tokens / len(ok) if ok else 0.0,
        output_tokens_per_s=out_tokens / duration,
        input_tokens_per_s=in_tokens / duration,
        total_tokens_per_s=(out_tokens + in_tokens) / duration,
        requests_per_s=len(ok) / duration,
        goodput_requests_per_s=goodput,
        ttft_ms=distribution(ttft),
        tpot_ms=distribution(tpot),
        itl_ms=distribution(itl),
        e2e_ms=distribution(e2e),
        errors=dict(Counter(r.error_type or "unknown" for r in failed)),
        tokens_source=sources.most_common(1)[0][0] if sources else None,
        meets_slo=meets,
    )
