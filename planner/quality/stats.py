"""Summaries of scored cases: mean with a percentile-bootstrap interval, pass rate, latency, cost.

Unscored cases (a judge reply that could not be read) and failed requests are counted and left
out of the mean: they are neither 0 nor 1. Pure numpy; the same code summarises a whole record,
each tag, and each routed class in `planner route`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_PASS_THRESHOLD = 0.7
DEFAULT_CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 2000
SEED = 20261129  # fixed: the same scores give the same interval on every run


def bootstrap_ci(
    scores: Sequence[float], confidence: float = DEFAULT_CONFIDENCE, resamples: int = DEFAULT_RESAMPLES
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean (resampling cases with replacement)."""
    x = np.asarray(scores, dtype=float)
    if x.size == 0:
        return None
    if x.size == 1 or np.all(x == x[0]):
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(SEED)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def summarize(
    results: Sequence[Any],
    pass_threshold: float = DEFAULT_PASS_THRESHOLD,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
) -> dict[str, Any]:
    """A QualitySummary's fields from CaseResults (or objects with the same attributes)."""
    scored = [r.score for r in results if r.score is not None]
    errors = sum(1 for r in results if r.error is not None)
    answered = [r for r in results if r.error is None]
    latencies = [r.latency_ms for r in answered if r.latency_ms is not None]
    costs = [r.cost_usd for r in answered]
    out: dict[str, Any] = {
        "cases": len(results),
        "scored": len(scored),
        "unscored": len(results) - len(scored) - errors,
        "errors": errors,
    }
    if scored:
        ci = bootstrap_ci(scored, confidence, resamples)
        assert ci is not None
        out |= {
            "mean_score": round(float(np.mean(scored)), 6),
            "ci_low": round(ci[0], 6),
            "ci_high": round(ci[1], 6),
            "pass_rate": round(sum(s >= pass_threshold for s in scored) / len(scored), 6),
        }
    if latencies:
        p50, p95 = np.percentile(latencies, [50, 95])
        out |= {"latency_p50_ms": round(float(p50), 3), "latency_p95_ms": round(float(p95), 3)}
    ins = [r.input_tokens for r in answered if r.input_tokens is not None]
    outs = [r.output_tokens for r in answered if r.output_tokens is not None]
    if ins:
        out["mean_input_tokens"] = round(float(np.mean(ins)), 3)
    if outs:
        out["mean_output_tokens"] = round(float(np.mean(outs)), 3)
    if costs and all(c is not None for c in costs):
        out["cost_per_case_usd"] = float(np.mean(costs))
    judge_costs = [c for r in results if (c := getattr(r, "judge_cost_usd", None)) is not None]
    if judge_costs:  # the evaluation's overhead: kept apart from what the model costs per case
        out["judge_cost_usd"] = float(np.sum(judge_costs))
    return out


def by_tag(results: Sequence[Any], **kw: Any) -> dict[str, dict[str, Any]]:
    tags = sorted({t for r in results for t in r.tags})
    return {t: summarize([r for r in results if t in r.tags], **kw) for t in tags}


def quality_per_dollar(mean_score: float | None, cost_per_case_usd: float | None) -> float | None:
    """Mean score per dollar of a case: the ranking key (higher is better).

    None when unscored, unpriced, or free: score per dollar is undefined at zero cost (not
    infinite); rankings put free models in a group of their own (see planner.report.quality)."""
    if mean_score is None or cost_per_case_usd is None or cost_per_case_usd <= 0:
        return None
    return mean_score / cost_per_case_usd
