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
    grid = np.unique(np.round(np.geomspace(1, max_concurrency, 96)))[None, :]
    max_running = np.array([m[0].max_concurrent_seqs for m in meta], dtype=float)[:, None]
    batched = (engine_memory or EngineMemory()).max_num_batched_tokens
    pts = serving(hw, eff_arr, grid, input_tokens, output_tokens, max_running, batched, prefill_fraction)
    conc = np.broadcast_to(grid, pts.tpot_s.shape)
    last, any_ok, reasons = capacity_index(
        conc, pts.ttft_s * 1e3, pts.tpot_s * 1e3, max_running, slo_ttft_ms, slo_tpot_ms
    )
    idx = np.arange(len(rows))
    tok = pts.output_tokens_per_s[idx, last]
    for r, cfg in enumerate(rows):
        mem, band, label, ids = meta[r]
        v = float(tok[r])
        basis: Basis = "calibrated" if ids else "roofline"
        out[cfg] = ReplicaCapacity(
            model=cfg[0],
            quant=cfg[1],
            gpu=cfg[2],
            engine=engine,
            tp=cfg[3],
            output_tokens_per_s=Estimate(v, basis, v / (1 + band), v * (1 + band), ids),
            concurrency=float(conc[r, last[r]]),
            ttft_ms=float(pts.ttft_s[r, last[r]] * 1e3),
            tpot_ms=float(pts.tpot_s[r, last[r]] * 1e3),
            limited_by=memory_reason(reasons[r], mem),
            meets_slo=bool(any_ok[r]),
            calibration=label,
            band=band,
            max_concurrent_seqs=mem.max_concurrent_seqs,
        )
    return out
