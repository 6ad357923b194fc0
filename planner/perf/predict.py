"""Predict what a measurement record saw, from the roofline and a set of efficiencies.

One function per kind of run, shared by calibration (fit the efficiencies to records), validation
(leave one out) and the planner's estimates, so what is validated is what is used.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from planner.perf.memory import EngineMemory, fit
from planner.perf.roofline import Efficiency, Hardware, offline_saturated, serving, static_batch

if TYPE_CHECKING:
    from planner.records import Architecture, GpuSpec, MeasurementRecord

STATIC_BATCH_ENGINES = ("transformers",)
SLO_SEARCH_CONCURRENCY = np.unique(np.round(np.geomspace(1, 4096, 160))).astype(float)


RESERVING_ENGINES = ("tensorrt-llm",)
"""Engines that reserve KV for a sequence's full length up front (TensorRT-LLM's default
GUARANTEED_NO_EVICT policy). vLLM and SGLang allocate blocks as tokens arrive, so a running
sequence holds on average its prompt plus half its output."""


def occupied_output(engine: str, output_tokens: float) -> float:
    return output_tokens if engine in RESERVING_ENGINES else output_tokens / 2


def kv_dtype_of(record_kv: str, quant: str) -> str:
    """'auto' means the model's activation dtype: bf16 (fp32 for fp32 runs)."""
    if record_kv != "auto":
        return record_kv
    return "fp32" if quant == "fp32" else "bf16"


@dataclass(frozen=True)
class Setup:
    """Everything fixed about a record's configuration: built once, evaluated many times in a fit."""

    record: MeasurementRecord
    hw: Hardware
    replicas: int
    max_running: float  # sequences one replica can run (KV cache, scheduler cap)
    observed: float  # output tokens/s of the whole system
    tail_ratios: tuple[float, float] = (1.0, 1.0)  # (TTFT, TPOT) SLO percentile over mean (with_tail_ratios)

    @classmethod
    def of(cls, record: MeasurementRecord, arch: Architecture, gpu: GpuSpec) -> Setup | None:
        observed = observed_output_tokens_per_s(record)
        if record.status != "ok" or observed is None or record.device == "cpu":
            return None
        tp, pp = record.tensor_parallel, record.pipeline_parallel
        kv = kv_dtype_of(record.kv_cache_dtype, record.quant)
        double_quant = bool(record.double_quant)
        hw = Hardware.build(arch, record.quant, gpu, tp, kv, pp, double_quant)
        cap = max(int(record.batch_size or 0), int(record.concurrency or 0), 256)
        engine = EngineMemory(max_num_seqs=cap)
        seq = int(record.input_tokens + occupied_output(record.engine.name, record.output_tokens))
        room = fit(record.model, arch, record.quant, gpu, seq, 1, tp, pp, kv, engine, double_quant)
        if record.kv_cache_tokens:
            room_seqs = record.kv_cache_tokens / seq
        else:
            room_seqs = max(room.max_concurrent_seqs, 1)
        replicas = max(1, record.gpu_count // (tp * pp))
        return cls(record, hw, replicas, float(room_seqs), observed)


def unpredictable_reason(record: MeasurementRecord) -> str | None:
    """Why a usable record cannot be predicted honestly (so neither calibrates nor validates), or None.

    A request-rate run produces what it is offered until the server saturates. With SLOs (MLPerf
    server) the record's rate is the highest that met them, which the model can predict; without
    SLOs, a concurrency or a statement that the server was saturated, the observed rate may be just
    the offered load, and predicting it would repeat the record's own number.
    """
    if record.client_saturated:
        return (
            "the load generator saturated during the run (client_saturated): it measured the client, "
            "not the server; measure again with fewer clients per process or a faster client machine"
        )
    if _kind(record) == "rate" and not record.slo:
        return (
            "request-rate run without SLOs, concurrency or saturation: its throughput may be the offered "
            "load, which the record itself gives, so no honest prediction exists"
        )
    return None


def observed_output_tokens_per_s(record: MeasurementRecord) -> float | None:
    if record.output_tokens_per_s:
        return record.output_tokens_per_s
    if record.total_tokens_per_s:
        return record.total_tokens_per_s * record.output_tokens / (record.input_tokens + record.output_tokens)
    return None


def _kind(rec: MeasurementRecord) -> str:
    if rec.engine.name in STATIC_BATCH_ENGINES and rec.mode == "offline":
        return "static"
    if rec.mode == "offline":
        return "offline"
    return "concurrency" if rec.concurrency is not None else "rate"


class PredictionBatch:
    """Predictions for many records in a few vectorised calls: what a calibration fit evaluates
    hundreds of times. Records of the same kind share one stacked Hardware."""

    def __init__(self, setups: list[Setup]):
        self.setups = setups
        self.observed = np.array([s.observed for s in setups])
        self.groups: dict[str, tuple[np.ndarray, Hardware, dict[str, np.ndarray]]] = {}
        for kind in ("static", "offline", "concurrency"):
            idx = np.array([i for i, s in enumerate(setups) if _kind(s.record) == kind], dtype=int)
            if not len(idx):
                continue
            members = [setups[i] for i in idx]
            cols = {
                "input": np.array([s.record.input_tokens for s in members]),
                "output": np.array([s.record.output_tokens for s in members]),
                "replicas": np.array([float(s.replicas) for s in members]),
                "max_running": np.array([s.max_running for s in members]),
                "load": np.array([float(s.record.batch_size or s.record.concurrency or 1) for s in members]),
            }
            self.groups[kind] = (idx, Hardware.stack([s.hw for s in members]), cols)
        self.rate_idx = np.array([i for i, s in enumerate(setups) if _kind(s.record) == "rate"], dtype=int)
        rate_members = [setups[i] for i in self.rate_idx]
        self.rate_setups = rate_members
        self.rate_hw = Hardware.stack([s.hw for s in rate_members], column=True) if rate_members else None

    def __call__(self, eff: Efficiency) -> np.ndarray:
        out = np.empty(len(self.setups))
        for kind, (idx, hw, c) in self.groups.items():
            if kind == "static":
                _, _, tok_s = static_batch(hw, eff, c["load"], c["input"], c["output"])
            elif kind == "offline":
                tok_s = offline_saturated(
                    hw, eff, np.minimum(c["load"], c["max_running"]), c["input"], c["output"]
                )
            else:
                per_replica = c["load"] / c["replicas"]
                tok_s = serving(
                    hw, eff, per_replica, c["input"], c["output"], c["max_running"]
                ).output_tokens_per_s
            out[idx] = tok_s * c["replicas"]
        if self.rate_hw is not None:
            out[self.rate_idx] = _rate_predictions(self.rate_setups, self.rate_hw, eff)
        return out


def predict_output_tokens_per_s(setup: Setup, eff: Efficiency) -> float:
    """What the record's whole system should produce, per the model with these efficiencies."""
    return float(PredictionBatch([setup])(eff)[0])


def slo_limits(slo: dict[str, float]) -> tuple[float | None, float | None]:
    """(TTFT ms, TPOT ms) limits from a record's SLO dict (keys like ttft_ms, ttft_ms_p99)."""
    ttft = next((v for k, v in slo.items() if k.startswith("ttft_ms")), None)
    tpot = next((v for k, v in slo.items() if k.startswith("tpot_ms")), None)
    return ttft, tpot


def _slo_percentile(slo: dict[str, float], metric: str) -> str | None:
    """'p99' for a limit on ttft_ms_p99, None for a limit on the mean or no limit."""
    key = next((k for k in slo if k.startswith(metric)), None)
    if key is None:
        return None
    suffix = key[len(metric) :].lstrip("_")
    return suffix if suffix in ("p50", "p90", "p95", "p99") else None


def _tail_ratio(rec: MeasurementRecord, metric: str, percentile: str) -> float | None:
    dist = getattr(rec, metric)
    if dist is None or not dist.mean or getattr(dist, percentile) is None:
        return None
    return getattr(dist, percentile) / dist.mean


def with_tail_ratios(setups: list[Setup]) -> list[Setup]:
    """Give each SLO-bound rate record the ratio of its SLO percentile to the mean, for TTFT and TPOT.

    The model predicts mean latencies, while MLPerf's server limits are on the p99. The ratio is the
    median p99/mean of the *other* records that report both (never the record's own: its tail would
    give away how close to the limit it ran); 1.0 when no other record reports them.
    """
    out = []
    for i, s in enumerate(setups):
        rec = s.record
        if _kind(rec) != "rate" or not rec.slo:
            out.append(s)
            continue
        ratios = []
        for metric in ("ttft_ms", "tpot_ms"):
            pct = _slo_percentile(rec.slo, metric)
            seen = [
                r
                for j, other in enumerate(setups)
                if j != i and pct and (r := _tail_ratio(other.record, metric, pct)) is not None
            ]
            ratios.append(float(np.median(seen)) if seen else 1.0)
        out.append(replace(s, tail_ratios=(ratios[0], ratios[1])))
    return out


def _rate_predictions(setups: list[Setup], hw: Hardware, eff: Efficiency) -> np.ndarray:
    """What a request-rate run can sustain: its capacity, not what it was offered.

    A run with SLOs (MLPerf server: TTFT p99 <= 2 s, TPOT p99 <= 200 ms; its submitter searched for
    the highest rate that passes) is predicted as the highest throughput whose predicted mean
    latencies, scaled by the tail ratios, stay within the limits; one without SLOs (a server driven
    as hard as it goes) as its saturated throughput. Neither uses the record's offered rate, which
    would give the answer away. All records at once: rows are records, columns the concurrency
    levels searched.
    """
    col = lambda values: np.array(values, dtype=float)[:, None]  # noqa: E731
    inp = col([s.record.input_tokens for s in setups])
    out = col([s.record.output_tokens for s in setups])
    max_running = col([s.max_running for s in setups])
    pts = serving(hw, eff, SLO_SEARCH_CONCURRENCY[None, :], inp, out, max_running)
    ok = pts.concurrency <= np.maximum(max_running, 1.0)  # beyond what the engine runs only the queue grows
    limits = [slo_limits(s.record.slo) for s in setups]
    ttft = col([t / s.tail_ratios[0] if t else np.inf for (t, _), s in zip(limits, setups, strict=True)])
    tpot = col([t / s.tail_ratios[1] if t else np.inf for (_, t), s in zip(limits, setups, strict=True)])
    ok &= (pts.ttft_s * 1e3 <= ttft) & (pts.tpot_s * 1e3 <= tpot)
    capacity = np.where(ok, pts.output_tokens_per_s, 0.0).max(axis=1)
    capacity = np.where(ok.any(axis=1), capacity, pts.output_tokens_per_s[:, 0])
    replicas = np.array([s.replicas for s in setups], dtype=float)
    return capacity * replicas


def slo_capacity(setup: Setup, eff: Efficiency, ttft_ms: float | None, tpot_ms: float | None) -> float:
    """Largest per-replica output tokens/s over concurrency levels whose mean latencies meet the SLOs."""
    rec = setup.record
    pts = serving(
        setup.hw, eff, SLO_SEARCH_CONCURRENCY, rec.input_tokens, rec.output_tokens, setup.max_running
    )
    ok = pts.concurrency <= setup.max_running
    if ttft_ms:
        ok &= pts.ttft_s * 1e3 <= ttft_ms
    if tpot_ms:
        ok &= pts.tpot_s * 1e3 <= tpot_ms
    return float(pts.output_tokens_per_s[ok].max()) if ok.any() else float(pts.output_tokens_per_s[0])
