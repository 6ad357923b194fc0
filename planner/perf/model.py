"""The performance model the planner asks: measured > interpolated > calibrated > roofline.

Every answer is an Estimate (or arrays of them): the value, its basis, an error band from the
calibration's leave-one-out residuals, and the ids of the records it rests on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from planner.catalog.catalog import Catalog
from planner.errors import PlannerError
from planner.perf.calibration import (
    ROOFLINE_BAND,
    Calibration,
    GroupKey,
    default_efficiency,
    group_label,
    lookup,
)
from planner.perf.capacity import ReplicaCapacity, batch_capacities, capacity_index, memory_reason
from planner.perf.estimate import Estimate
from planner.perf.memory import EngineMemory, FitResult, fit, smallest_fit
from planner.perf.predict import Setup, kv_dtype_of, occupied_output
from planner.perf.roofline import Efficiency, Hardware, serving

if TYPE_CHECKING:
    from planner.records import MeasurementRecord

_MODEL_SOURCES = ("roofline.py", "calibrate.py", "predict.py", "memory.py", "quant.py", "params.py")
MATCH_TOLERANCE = 0.1  # input/output lengths within 10% count as the same workload


@dataclass(frozen=True)
class ServingCurve:
    """Per-replica predictions over concurrency levels, with what they rest on."""

    model: str
    quant: str
    gpu: str
    engine: str
    tp: int
    input_tokens: float
    output_tokens: float
    concurrency: np.ndarray
    ttft_ms: np.ndarray
    tpot_ms: np.ndarray
    output_tokens_per_s: np.ndarray
    basis: np.ndarray  # per point: measured | interpolated | calibrated | roofline
    band: float  # relative half-width of the throughput error band
    calibration: str  # which group of records calibrated it, or "roofline defaults"
    efficiency: Efficiency
    record_ids: tuple[str, ...]
    memory: FitResult

    def estimate_at(self, i: int) -> Estimate:
        v = float(self.output_tokens_per_s[i])
        return Estimate(v, str(self.basis[i]), v / (1 + self.band), v * (1 + self.band), self.record_ids)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Capacity:
    """The most load one replica carries within the SLOs."""

    concurrency: float
    output_tokens_per_s: Estimate
    ttft_ms: float
    tpot_ms: float
    limited_by: str  # "tpot", "ttft", "kv-cache", "max-concurrency", or "nothing fits the SLOs"
    curve: ServingCurve


def _cache_dir() -> Path:
    from planner.catalog.snapshot import cache_dir

    return cache_dir()


class PerfModel:
    def __init__(self, catalog: Catalog, use_cache: bool = True):
        self.catalog = catalog
        self.use_cache = use_cache
        self._calibrations: dict[GroupKey, Calibration] | None = None
        self._setups: list[Setup] | None = None
        self._for: dict[tuple[str, str, str], tuple[Efficiency, float, str, tuple[str, ...]]] = {}

    # -- calibration ---------------------------------------------------------------------------

    def gpu_records(self) -> list[MeasurementRecord]:
        """Records usable for GPU planning: ok, on a catalog GPU, a catalog model, not CPU."""
        models, gpus = self.catalog.models, self.catalog.gpus
        return [
            r
            for r in self.catalog.measurements
            if r.status == "ok"
            and r.device != "cpu"
            and r.model_scale == "full"
            and r.gpu in gpus
            and r.model in models
        ]

    def setups(self) -> list[Setup]:
        if self._setups is None:
            models, gpus = self.catalog.models, self.catalog.gpus
            built = (Setup.of(r, models[r.model].architecture, gpus[r.gpu]) for r in self.gpu_records())  # type: ignore[index]
            self._setups = [s for s in built if s is not None]
        return self._setups

    def _cache_key(self) -> str:
        """The model's code and the catalog files calibration reads: any change recalibrates."""
        h = hashlib.sha256()
        here = Path(__file__).resolve().parent
        for name in _MODEL_SOURCES:
            h.update((here / name).read_bytes())
        h.update(self.catalog.fingerprint(("measurements", "models", "gpus")).encode())
        return h.hexdigest()[:20]

    def calibrations(self) -> dict[GroupKey, Calibration]:
        if self._calibrations is not None:
            return self._calibrations
        path = _cache_dir() / f"calibration-{self._cache_key()}.json"
        if self.use_cache and path.is_file():
            try:
                self._calibrations = _load_calibrations(path)
                return self._calibrations
            except (ValueError, KeyError, TypeError, OSError):
                pass  # a stale or damaged cache is recomputed
        from planner.perf.calibrate import calibrate_groups, leave_one_out, with_loo_bands  # fitting: scipy

        setups = self.setups()
        full = calibrate_groups(setups) if setups else {}
        cals = with_loo_bands(full, leave_one_out(setups, full)) if setups else {}
        self._calibrations = cals
        if self.use_cache:
            with contextlib.suppress(OSError):  # a read-only home only costs speed
                _save_calibrations(path, cals)
        return cals

    def calibration_for(
        self, gpu: str, engine: str, quant: str
    ) -> tuple[Efficiency, float, str, tuple[str, ...]]:
        """(efficiency, band, which group, record ids) for a configuration (remembered per key)."""
        key = (gpu, engine, quant)
        if key not in self._for:
            self._for[key] = self._calibration_for(gpu, engine, quant)
        return self._for[key]

    def _calibration_for(
        self, gpu: str, engine: str, quant: str
    ) -> tuple[Efficiency, float, str, tuple[str, ...]]:
        cal = lookup(self.calibrations(), gpu, engine, quant)
        if cal is None:
            return default_efficiency(engine, quant), ROOFLINE_BAND, "roofline defaults", ()
        if quant not in cal.quants and quant not in ("bf16", "fp16"):
            # Fitted on other formats: this format's kernels differ (dequantization); carry over its
            # defaults' penalty relative to the formats fitted, and widen the band.
            base = default_efficiency(engine, quant)
            ref = default_efficiency(engine, cal.quants[0]) if len(cal.quants) == 1 else Efficiency()
            eff = Efficiency(
                bandwidth=min(1.0, cal.efficiency.bandwidth * base.bandwidth / ref.bandwidth),
                flops=min(1.0, cal.efficiency.flops * base.flops / ref.flops),
                step_overhead_ms=max(cal.efficiency.step_overhead_ms, base.step_overhead_ms),
                comm=cal.efficiency.comm,
            )
            return eff, max(cal.band, 0.25), cal.label + f" (adjusted for {quant})", cal.record_ids
        return cal.efficiency, cal.band, cal.label, cal.record_ids

    # -- predictions ---------------------------------------------------------------------------

    def memory(
        self,
        model: str,
        quant: str,
        gpu: str,
        context_tokens: int,
        concurrency: int = 1,
        tp: int | None = None,
        kv_dtype: str = "bf16",
        engine: EngineMemory | None = None,
    ) -> FitResult:
        spec, g = self.catalog.model(model), self.catalog.gpu(gpu)
        if tp is None:
            return smallest_fit(
                model, spec.architecture, quant, g, context_tokens, concurrency, kv_dtype, engine
            )
        return fit(model, spec.architecture, quant, g, context_tokens, concurrency, tp, 1, kv_dtype, engine)

    def serving_curve(
        self,
        model: str,
        quant: str,
        gpu: str,
        input_tokens: float,
        output_tokens: float,
        concurrency: np.ndarray,
        engine: str = "vllm",
        tp: int | None = None,
        kv_dtype: str = "bf16",
        engine_memory: EngineMemory | None = None,
    ) -> ServingCurve:
        spec, g = self.catalog.model(model), self.catalog.gpu(gpu)
        seq = int(input_tokens + occupied_output(engine, output_tokens))
        mem = self.memory(model, quant, gpu, max(seq, 1), 1, tp, kv_dtype, engine_memory)
        if not mem.fits:
            raise PlannerError(f"{model} {quant} does not fit on {mem.gpus} x {gpu}: {mem.reason}")
        hw = Hardware.build(spec.architecture, quant, g, mem.tp, kv_dtype)
        eff, band, label, ids = self.calibration_for(gpu, engine, quant)
        conc = np.asarray(concurrency, dtype=float)
        batched = (engine_memory or EngineMemory()).max_num_batched_tokens
        pts = serving(hw, eff, conc, input_tokens, output_tokens, mem.max_concurrent_seqs, batched)
        basis = np.full(conc.shape, "calibrated" if ids else "roofline", dtype=object)
        tok_s = pts.output_tokens_per_s.copy()
        ttft, tpot = pts.ttft_s * 1e3, pts.tpot_s * 1e3
        used = list(ids)
        measured = self._measured_points(model, quant, gpu, engine, mem.tp, input_tokens, output_tokens)
        if measured:
            loads = np.array([m.concurrency for m in measured], dtype=float)
            values = np.array([m.output_tokens_per_s for m in measured], dtype=float)
            order = np.argsort(loads)
            loads, values = loads[order], values[order]
            inside = (conc >= loads[0]) & (conc <= loads[-1])
            tok_s = np.where(inside, np.exp(np.interp(np.log(conc), np.log(loads), np.log(values))), tok_s)
            exact = np.isin(conc, loads)
            basis = np.where(exact, "measured", np.where(inside, "interpolated", basis))
            used = [m.id for m in measured] + used
        return ServingCurve(
            model,
            quant,
            gpu,
            engine,
            mem.tp,
            input_tokens,
            output_tokens,
            conc,
            ttft,
            tpot,
            tok_s,
            basis,
            band,
            label,
            eff,
            tuple(used),
            mem,
        )

    def _measured_points(
        self, model: str, quant: str, gpu: str, engine: str, tp: int, inp: float, out: float
    ) -> list[MeasurementRecord]:
        def close(a: float, b: float) -> bool:
            return abs(a - b) <= MATCH_TOLERANCE * b

        return [
            r
            for r in self.gpu_records()
            if (r.model, r.quant, r.gpu, r.engine.name, r.tensor_parallel) == (model, quant, gpu, engine, tp)
            and r.mode == "serving"
            and r.concurrency is not None
            and r.gpu_count == r.tensor_parallel
            and r.output_tokens_per_s
            and close(r.input_tokens, inp)
            and close(r.output_tokens, out)
        ]

    def capacity(
        self,
        model: str,
        quant: str,
        gpu: str,
        input_tokens: float,
        output_tokens: float,
        slo_ttft_ms: float | None,
        slo_tpot_ms: float | None,
        engine: str = "vllm",
        tp: int | None = None,
        kv_dtype: str = "bf16",
        engine_memory: EngineMemory | None = None,
        max_concurrency: int = 1024,
    ) -> Capacity:
        """The largest concurrency whose predicted TTFT and TPOT meet the SLOs, and its throughput."""
        grid = np.unique(np.round(np.geomspace(1, max_concurrency, 96)))
        curve = self.serving_curve(
            model, quant, gpu, input_tokens, output_tokens, grid, engine, tp, kv_dtype, engine_memory
        )
        mem = curve.memory
        last, _, reasons = capacity_index(
            curve.concurrency[None, :],
            curve.ttft_ms[None, :],
            curve.tpot_ms[None, :],
            np.array([[mem.max_concurrent_seqs]]),
            slo_ttft_ms,
            slo_tpot_ms,
        )
        i = int(last[0])
        return Capacity(
            float(curve.concurrency[i]),
            curve.estimate_at(i),
            float(curve.ttft_ms[i]),
            float(curve.tpot_ms[i]),
            memory_reason(reasons[0], mem),
            curve,
        )


def _save_calibrations(path: Path, cals: dict[GroupKey, Calibration]) -> None:
    from planner.catalog.files import atomic_write_text

    rows = [
        {
            "key": list(c.key),
            "efficiency": asdict(c.efficiency),
            "record_ids": list(c.record_ids),
            "fitted": list(c.fitted),
            "residuals": list(c.residuals),
            "loo_residuals": list(c.loo_residuals),
            "quants": list(c.quants),
        }
        for c in cals.values()
    ]
    atomic_write_text(path, json.dumps(rows))


def _load_calibrations(path: Path) -> dict[GroupKey, Calibration]:
    out = {}
    for row in json.loads(path.read_text()):
        key = tuple(row["key"])
        out[key] = Calibration(
            key,  # type: ignore[arg-type]
            Efficiency(**row["efficiency"]),
            tuple(row["record_ids"]),
            tuple(row["fitted"]),
            tuple(row["residuals"]),
            tuple(row["loo_residuals"]),
            tuple(row.get("quants", ())),
        )
    return out  # type: ignore[return-value]


__all__ = [
    "Capacity",
    "Estimate",
    "PerfModel",
    "ReplicaCapacity",
    "ServingCurve",
    "batch_capacities",
    "group_label",
    "kv_dtype_of",
]
