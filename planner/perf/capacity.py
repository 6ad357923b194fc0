"""Capacity under SLOs: the largest concurrency whose predicted latencies meet them, for one
configuration or for hundreds at once (vectorised), with the same limit logic for both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from planner.perf.estimate import Basis, Estimate
from planner.perf.memory import EngineMemory, FitResult, fit
from planner.perf.predict import occupied_output
from planner.perf.roofline import Efficiency, Hardware, serving

if TYPE_CHECKING:
    from planner.perf.model import PerfModel
    from planner.records import MeasurementRecord


@dataclass(frozen=True)
class ReplicaCapacity:
    """The most one replica of a configuration serves within the SLOs (from `PerfModel.capacities`)."""

    model: str
    quant: str
    gpu: str
    engine: str
    tp: int
    output_tokens_per_s: Estimate
    concurrency: float
    ttft_ms: float
    tpot_ms: float
    limited_by: str
    meets_slo: bool
    calibration: str
    band: float
    max_concurrent_seqs: int
    measured_ids: tuple[str, ...] = ()  # the user's serving records this configuration's curve rests on


def capacity_index(
    conc: np.ndarray,
    ttft_ms: np.ndarray,
    tpot_ms: np.ndarray,
    max_running: np.ndarray,
    slo_ttft: float | None,
    slo_tpot: float | None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per row: the index of the largest concurrency meeting the SLOs, whether any does, and why it stops."""
    in_kv = conc <= np.maximum(max_running, 1)
    ttft_ok = ttft_ms <= slo_ttft if slo_ttft else np.ones_like(ttft_ms, dtype=bool)
    tpot_ok = tpot_ms <= slo_tpot if slo_tpot else np.ones_like(tpot_ms, dtype=bool)
    ok = in_kv & ttft_ok & tpot_ok
    any_ok = ok.any(axis=1)
    last = np.where(any_ok, ok.shape[1] - 1 - np.argmax(ok[:, ::-1], axis=1), 0)
    reasons = []
    for r, i in enumerate(last):
        if not any_ok[r]:
            reasons.append("nothing fits the SLOs")
        elif i == ok.shape[1] - 1:
            reasons.append("max-concurrency")
        elif not in_kv[r, i + 1]:
            reasons.append("kv-cache")
        elif not tpot_ok[r, i + 1]:
            reasons.append("tpot")
        elif not ttft_ok[r, i + 1]:
            reasons.append("ttft")
        else:
            reasons.append("max-concurrency")
    return last, any_ok, reasons


def memory_reason(reason: str, mem: FitResult) -> str:
    """'kv-cache' when the KV cache is the cap, 'max-num-seqs' when the scheduler's limit is."""
    if reason == "kv-cache" and mem.kv_max_seqs > mem.max_concurrent_seqs:
        return "max-num-seqs"
    return reason


MEASURED_BAND = 0.1
"""A measured point is one run of one server: its band is the run-to-run variation of a serving
benchmark, taken as +-10% (an estimate; repeat the run to see yours). Log-log interpolation
between two measured loads of a monotone curve adds little, so it carries the same band."""


def measured_metrics(records: list[MeasurementRecord]) -> dict[str, tuple[np.ndarray, np.ndarray] | None]:
    """(concurrency, value) per metric, sorted by concurrency; None where a point lacks the metric."""
    loads = np.array([r.concurrency for r in records], dtype=float)
    order = np.argsort(loads)

    def column(values: list[float | None]) -> tuple[np.ndarray, np.ndarray] | None:
        if any(v is None or v <= 0 for v in values):
            return None
        return loads[order], np.array(values, dtype=float)[order]

    return {
        "tok_s": column([r.output_tokens_per_s for r in records]),
        "ttft": column([r.ttft_ms.mean if r.ttft_ms else None for r in records]),
        "tpot": column([r.tpot_ms.mean if r.tpot_ms else None for r in records]),
    }


def interpolate_measured(
    conc: np.ndarray, measured: tuple[np.ndarray, np.ndarray], predicted: np.ndarray, basis: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Measured values at measured loads, log-log interpolated between them; outside, the prediction
    scaled to meet the nearest measured point, so the curve never jumps back to the model's value
    (a TPOT measured over the SLO at 128 clients stays over it at 200). `conc` ascends."""
    loads, values = measured
    inside = (conc >= loads[0]) & (conc <= loads[-1])
    log_conc = np.log(conc)
    between = np.exp(np.interp(log_conc, np.log(loads), np.log(values)))
    edges = np.exp(np.interp(np.log(loads[[0, -1]]), log_conc, np.log(np.maximum(predicted, 1e-300))))
    low, high = values[0] / edges[0], values[-1] / edges[1]
    anchored = predicted * np.where(conc < loads[0], low, high)
    exact = np.isin(conc, loads)
    return (
        np.where(inside, between, anchored),
        np.where(exact, "measured", np.where(inside, "interpolated", basis)),
    )


def with_measured(
    conc: np.ndarray,
    points: list[MeasurementRecord],
    metrics: dict[str, np.ndarray],
    bases: dict[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Predicted curves ('tok_s', 'ttft', 'tpot' over ascending `conc`) with the measured points put
    in (log-log between them, held to them beyond), each metric with its own basis; a metric not
    every point reports keeps the prediction."""
    metrics, bases = dict(metrics), dict(bases)
    for name, values in measured_metrics(points).items():
        if values is not None:
            metrics[name], bases[name] = interpolate_measured(conc, values, metrics[name], bases[name])
    return metrics, bases


def batch_capacities(
    perf: PerfModel,
    configs: list[tuple[str, str, str, int]],
    input_tokens: float,
    output_tokens: float,
    slo_ttft_ms: float | None,
    slo_tpot_ms: float | None,
    engine: str = "vllm",
    kv_dtype: str = "bf16",
    prefill_fraction: float = 1.0,
    engine_memory: EngineMemory | None = None,
    max_concurrency: int = 1024,
) -> dict[tuple[str, str, str, int], ReplicaCapacity | None]:
    """Capacity under the SLOs of many (model, quant, gpu, tp) configurations in one vectorised pass.

    None for a configuration that does not fit in memory. The same physics and calibration as
    `PerfModel.capacity`, evaluated for all rows at once so the planner answers in well under a
    second for hundreds of candidates.
    """
    cat = perf.catalog
    seq = int(input_tokens + occupied_output(engine, output_tokens))
    rows, hws, effs, meta = [], [], [], []
    out: dict[tuple[str, str, str, int], ReplicaCapacity | None] = {}
    for cfg in configs:
        model, quant, gpu, tp = cfg
        arch, g = cat.model(model).architecture, cat.gpu(gpu)
        mem = fit(model, arch, quant, g, max(seq, 1), 1, tp, 1, kv_dtype, engine_memory)
        if not mem.fits:
            out[cfg] = None
            continue
        eff, band, label, ids = perf.calibration_for(gpu, engine, quant)
        rows.append(cfg)
        hws.append(Hardware.build(arch, quant, g, tp, kv_dtype))
        effs.append(eff)
        meta.append((mem, band, label, ids))
    if not rows:
        return out
    hw = Hardware.stack(hws, column=True)
    col = lambda name: np.array([getattr(e, name) for e in effs], dtype=float)[:, None]  # noqa: E731
    eff_arr = Efficiency(**{name: col(name) for name in ("bandwidth", "flops", "step_overhead_ms", "comm")})
    # The user's own serving records of a configuration replace the prediction where they reach.
    measured = [
        perf.measured_points(cfg[0], cfg[1], cfg[2], engine, cfg[3], 1, input_tokens, output_tokens)
        for cfg in rows
    ]
    loads = [r.concurrency for points in measured for r in points if r.concurrency <= max_concurrency]
    grid = np.unique(np.concatenate([np.round(np.geomspace(1, max_concurrency, 96)), loads]))[None, :]
    max_running = np.array([m[0].max_concurrent_seqs for m in meta], dtype=float)[:, None]
    batched = (engine_memory or EngineMemory()).max_num_batched_tokens
    pts = serving(hw, eff_arr, grid, input_tokens, output_tokens, max_running, batched, prefill_fraction)
    conc = np.broadcast_to(grid, pts.tpot_s.shape)
    tok_s, ttft_ms, tpot_ms = pts.output_tokens_per_s.copy(), pts.ttft_s * 1e3, pts.tpot_s * 1e3
    basis_of = np.array(["calibrated" if m[3] else "roofline" for m in meta], dtype=object)[:, None]
    bases = np.broadcast_to(basis_of, tok_s.shape).copy()
    for r, points in enumerate(measured):
        if points:
            row = {"tok_s": tok_s[r], "ttft": ttft_ms[r], "tpot": tpot_ms[r]}
            got, basis = with_measured(grid[0], points, row, dict.fromkeys(row, bases[r]))
            tok_s[r], ttft_ms[r], tpot_ms[r], bases[r] = (
                got["tok_s"],
                got["ttft"],
                got["tpot"],
                basis["tok_s"],
            )
    last, any_ok, reasons = capacity_index(conc, ttft_ms, tpot_ms, max_running, slo_ttft_ms, slo_tpot_ms)
    idx = np.arange(len(rows))
    tok = tok_s[idx, last]
    for r, cfg in enumerate(rows):
        mem, band, label, ids = meta[r]
        v = float(tok[r])
        basis: Basis = bases[r, last[r]]
        if basis in ("measured", "interpolated"):
            band = MEASURED_BAND
        ids = tuple(p.id for p in measured[r]) + tuple(ids) if measured[r] else ids
        out[cfg] = ReplicaCapacity(
            model=cfg[0],
            quant=cfg[1],
            gpu=cfg[2],
            engine=engine,
            tp=cfg[3],
            output_tokens_per_s=Estimate(v, basis, v / (1 + band), v * (1 + band), ids),
            concurrency=float(conc[r, last[r]]),
            ttft_ms=float(ttft_ms[r, last[r]]),
            tpot_ms=float(tpot_ms[r, last[r]]),
            limited_by=memory_reason(reasons[r], mem),
            meets_slo=bool(any_ok[r]),
            calibration=label,
            band=band,
            max_concurrent_seqs=mem.max_concurrent_seqs,
            measured_ids=tuple(p.id for p in measured[r]),
        )
    return out
