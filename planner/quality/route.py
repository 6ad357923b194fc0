"""Routing economics: send easy queries to a small model and hard ones to a large one; is the
blend worth it? Quality from QualityRecords (per case), cost through the planner's economics.

A routing option splits traffic into groups, each served by one model. For each option:

- **quality** = sum over groups of (the group's share of requests) x (the serving model's mean
  score on the group's cases). Cases are evidence of quality, traffic shares say how much each
  group matters: the two need not be drawn alike. The interval is a bootstrap that resamples
  each group's cases (stratified), at the record's confidence.
- **cost** = each model's bill for its share of the volume: an API at its catalog (or given)
  price, a self-hosted model as the cheapest fleet that carries its share within the SLOs
  (whole instances, ops included: planner capacity's sizing), plus the router's own cost.
- **latency** = the traffic-weighted mixture of the cases' end-to-end latencies (plus the
  classifier's when a model routes).

Volume per group = tokens/day x the group's share of requests (requests are assumed alike in
length across groups; the output says so).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from planner.errors import PlannerError
from planner.quality.stats import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, SEED
from planner.units import DAYS_PER_MONTH


@dataclass(frozen=True)
class Group:
    label: str
    share: float  # of requests
    cases: tuple[str, ...]  # case ids: the quality evidence for this group
    model: str


@dataclass(frozen=True)
class TierCost:
    model: str
    share: float
    tokens_per_day: float
    usd_per_month: float
    how: str  # "API openai/gpt-4o-mini", "2 x h100-sxm on aws p5... (on-demand)"


@dataclass(frozen=True)
class RouterCost:
    """What deciding the route costs per request (0 for rules)."""

    kind: str  # rules | model | tags
    usd_per_request: float = 0.0
    tokens_per_request: float = 0.0  # classifier tokens (a self-hosted classifier adds them to its tier)
    model: str | None = None  # the classifier, when it is one of the tiers (self-hosted: load, not price)
    latency_ms: float = 0.0  # added to every routed request (the classifier runs first)
    note: str = ""


@dataclass
class Option:
    name: str
    kind: str  # baseline | routed | curve
    groups: list[Group]
    setting: str = ""  # the threshold or the classes sent to the large model
    quality: float | None = None
    ci: tuple[float, float] | None = None
    unmeasured: list[str] = field(default_factory=list)
    tiers: list[TierCost] = field(default_factory=list)
    router_usd_per_month: float = 0.0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    frontier: bool = False

    @property
    def usd_per_month(self) -> float:
        return sum(t.usd_per_month for t in self.tiers) + self.router_usd_per_month

    def share_of(self, model: str) -> float:
        return sum(g.share for g in self.groups if g.model == model)


@dataclass(frozen=True)
class Evidence:
    """Per model: case id -> score (None: unscored or failed) and latency."""

    scores: dict[str, dict[str, float | None]]
    latency_ms: dict[str, dict[str, float | None]]


def evidence(records: dict[str, Any]) -> Evidence:
    scores = {m: {r.case_id: r.score for r in rec.results} for m, rec in records.items()}
    latency = {m: {r.case_id: r.latency_ms for r in rec.results} for m, rec in records.items()}
    return Evidence(scores, latency)


# -- quality and latency of an option ---------------------------------------------------------


def blend_quality(
    groups: Sequence[Group],
    ev: Evidence,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
) -> tuple[float | None, tuple[float, float] | None, list[str]]:
    parts = []
    unmeasured = []
    for g in groups:
        if g.share <= 0:
            continue
        values = np.array([s for c in g.cases if (s := ev.scores[g.model].get(c)) is not None], dtype=float)
        if values.size == 0:
            unmeasured.append(g.label)
            continue
        parts.append((g.share, values))
    if unmeasured or not parts:
        return None, None, unmeasured
    mean = float(sum(w * v.mean() for w, v in parts))
    rng = np.random.default_rng(SEED)
    boot = np.zeros(resamples)
    for w, v in parts:
        boot += w * v[rng.integers(0, v.size, size=(resamples, v.size))].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(boot, [alpha, 1 - alpha])
    return mean, (float(low), float(high)), []


def weighted_percentiles(values: np.ndarray, weights: np.ndarray, qs: Sequence[float]) -> list[float]:
    """Percentiles of a weighted sample (the inverse of its weighted CDF)."""
    order = np.argsort(values)
    v, w = values[order], weights[order]
    cum = np.cumsum(w) / w.sum()
    return [float(v[min(np.searchsorted(cum, q / 100 - 1e-12), v.size - 1)]) for q in qs]


def blend_latency(
    groups: Sequence[Group], ev: Evidence, extra_ms: float
) -> tuple[float | None, float | None]:
    values, weights = [], []
    for g in groups:
        lat = [x for c in g.cases if (x := ev.latency_ms[g.model].get(c)) is not None]
        if g.share <= 0 or not lat:
            continue
        values.extend(lat)
        weights.extend([g.share / len(lat)] * len(lat))
    if not values:
        return None, None
    p50, p95 = weighted_percentiles(np.array(values), np.array(weights), (50, 95))
    return p50 + extra_ms, p95 + extra_ms


# -- options ----------------------------------------------------------------------------------


def baseline(model: str, groups: Sequence[Group]) -> Option:
    """Every request to one model, with the same groups (so quality is weighted by the same traffic)."""
    return Option(f"all {model}", "baseline", [replace(g, model=model) for g in groups], setting="-")


def class_options(
    classes: dict[str, tuple[float, tuple[str, ...]]],  # class -> (share of requests, case ids)
    small: str,
    large: str,
    ev: Evidence,
) -> list[Option]:
    """The curve over classes: send to the large model first the classes where it gains most."""

    def mean(model: str, ids: tuple[str, ...]) -> float:
        vals = [s for c in ids if (s := ev.scores[model].get(c)) is not None]
        return float(np.mean(vals)) if vals else 0.0

    gain = {c: mean(large, ids) - mean(small, ids) for c, (_, ids) in classes.items()}
    order = sorted(classes, key=lambda c: (-gain[c], c))
    out = []
    for k in range(len(order) + 1):
        to_large = set(order[:k])
        groups = [
            Group(c, share, ids, large if c in to_large else small) for c, (share, ids) in classes.items()
        ]
        setting = ", ".join(sorted(to_large)) or "none"
        out.append(Option(f"classes to {large}: {setting}", "curve", groups, setting=setting))
    return out


def mapping_option(
    name: str, classes: dict[str, tuple[float, tuple[str, ...]]], tiers: dict[str, str]
) -> Option:
    groups = [Group(c, share, ids, tiers[c]) for c, (share, ids) in classes.items()]
    setting = "; ".join(f"{c}->{tiers[c]}" for c in classes)
    return Option(name, "routed", groups, setting=setting)


def threshold_option(
    case_scores: dict[str, float],  # case id -> rule score
    traffic_scores: Sequence[float],  # rule score of each query in the traffic sample
    small: str,
    large: str,
    t: float,
    name: str | None = None,
) -> Option:
    """A query scoring >= t goes to the large model; shares from the traffic, evidence from the cases."""
    traffic = np.asarray(traffic_scores, dtype=float)
    above = float((traffic >= t).mean()) if traffic.size else 0.0
    hi = tuple(c for c, s in case_scores.items() if s >= t)
    lo = tuple(c for c, s in case_scores.items() if s < t)
    groups = [Group(f"score < {t:g}", 1 - above, lo, small), Group(f"score >= {t:g}", above, hi, large)]
    kind = "curve" if name is None else "routed"
    return Option(name or f"threshold {t:g}", kind, groups, setting=f">= {t:g}")


def threshold_options(
    case_scores: dict[str, float], traffic_scores: Sequence[float], small: str, large: str
) -> list[Option]:
    """The curve over every threshold that changes the routing (and one that sends nothing)."""
    cuts = sorted({*case_scores.values(), *(float(x) for x in traffic_scores)})
    return [threshold_option(case_scores, traffic_scores, small, large, t) for t in [*cuts, math.inf]]


# -- pricing the options ----------------------------------------------------------------------

TierPricer = Callable[[str, float], tuple[float, str]]
"""(model, tokens per day) -> (USD a month, how it is served)."""


def price_option(option: Option, tokens_per_day: float, requests_per_day: float, price: TierPricer,
                 router: RouterCost | None) -> None:  # fmt: skip
    shares: dict[str, float] = {}
    for g in option.groups:
        shares[g.model] = shares.get(g.model, 0.0) + g.share
    routed = router is not None and option.kind != "baseline"
    extra: dict[str, float] = {}
    if routed and router.model is not None and router.tokens_per_request:
        extra[router.model] = router.tokens_per_request * requests_per_day
    tiers = []
    for model in sorted(set(shares) | set(extra)):
        share = shares.get(model, 0.0)
        volume = tokens_per_day * share + extra.get(model, 0.0)
        if volume <= 0:
            continue
        usd, how = price(model, volume)
        tiers.append(TierCost(model, share, volume, usd, how))
    option.tiers = tiers
    option.router_usd_per_month = (
        router.usd_per_request * requests_per_day * DAYS_PER_MONTH if routed and router is not None else 0.0
    )


def evaluate(
    options: list[Option],
    ev: Evidence,
    tokens_per_day: float,
    requests_per_day: float,
    price: TierPricer,
    router: RouterCost | None,
    confidence: float,
    resamples: int,
) -> list[Option]:
    for o in options:
        o.quality, o.ci, o.unmeasured = blend_quality(o.groups, ev, confidence, resamples)
        extra = router.latency_ms if router is not None and o.kind != "baseline" else 0.0
        o.latency_p50_ms, o.latency_p95_ms = blend_latency(o.groups, ev, extra)
        price_option(o, tokens_per_day, requests_per_day, price, router)
    mark_frontier(options)
    return options


def mark_frontier(options: list[Option]) -> None:
    """Pareto frontier: no other option is at least as good and as cheap, and better in one."""
    measured = [o for o in options if o.quality is not None]
    for o in measured:
        o.frontier = not any(
            p is not o
            and p.quality >= o.quality  # type: ignore[operator]
            and p.usd_per_month <= o.usd_per_month
            and (p.quality > o.quality or p.usd_per_month < o.usd_per_month)  # type: ignore[operator]
            for p in measured
        )


def recommend(options: list[Option], reference: Option, max_drop: float) -> Option | None:
    """The cheapest option whose quality is within max_drop of the reference's (the large model)."""
    if reference.quality is None:
        return None
    ok = [o for o in options if o.quality is not None and o.quality >= reference.quality - max_drop - 1e-12]
    return min(ok, key=lambda o: (o.usd_per_month, -(o.quality or 0))) if ok else None


def dedupe(options: list[Option]) -> list[Option]:
    """Drop curve points that route like an earlier option: the same share and cases for each model."""
    seen = set()
    out = []
    for o in options:
        per_model: dict[str, tuple[float, set[str]]] = {}
        for g in o.groups:
            share, cases = per_model.get(g.model, (0.0, set()))
            per_model[g.model] = (share + g.share, cases | set(g.cases))
        sig = tuple(
            sorted(
                (m, round(share, 12), tuple(sorted(c))) for m, (share, c) in per_model.items() if share > 0
            )
        )
        if sig in seen and o.kind == "curve":
            continue
        seen.add(sig)
        out.append(o)
    return out


def check_same_cases(records: dict[str, Any]) -> None:
    digests = {m: r.cases_sha256 for m, r in records.items()}
    if len(set(digests.values())) > 1:
        detail = ", ".join(f"{m}: {d[:12]}" for m, d in digests.items())
        raise PlannerError(
            f"the quality records were measured on different case files ({detail}); routing compares "
            "models on the same cases: run gpu-bench eval with one case file for every model"
        )
