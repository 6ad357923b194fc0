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

from planner.catalog.catalog import Catalog, bundled_catalog_dir
from planner.errors import PlannerError
from planner.perf.calibration import (
    ROOFLINE_BAND,
    Calibration,
    GroupKey,
    default_efficiency,
    group_label,
    lookup,
)
from planner.perf.capacity import (
    MEASURED_BAND,
    ReplicaCapacity,
    batch_capacities,
    capacity_index,
    memory_reason,
    with_measured,
)
from planner.perf.estimate import Estimate
from planner.perf.memory import EngineMemory, FitResult, fit, smallest_fit
from planner.perf.predict import Setup, kv_dtype_of, occupied_output, unpredictable_reason, with_tail_ratios
from planner.perf.roofline import Efficiency, Hardware, serving

if TYPE_CHECKING:
    from planner.records import MeasurementRecord

_MODEL_SOURCES = (
    "roofline.py",
    "calibrate.py",
    "calibration.py",
    "predict.py",
    "memory.py",
    "quant.py",
    "params.py",
)
CALIBRATION_KINDS = ("measurements", "models", "gpus")
SHIPPED_CALIBRATION = "calibration.json"
"""The bundled catalogs' calibration, computed by scripts/gen_calibration.py and checked current by
a test: it spares a fresh install the fit (scipy and ~0.5 s) on its first command."""
MATCH_TOLERANCE = 0.1  # input/output lengths within 10% count as the same workload
_CALIBRATED: dict[str, dict[GroupKey, Calibration]] = {}
"""Calibrations computed in this process, by cache key (model code + catalog files): a pure function
of those, so a second PerfModel over the same catalog reuses them."""


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
    basis: np.ndarray  # per point, of output tok/s: measured | interpolated | calibrated | roofline
    band: float  # relative half-width of the throughput error band
    calibration: str  # which group of records calibrated it, or "roofline defaults"
    efficiency: Efficiency
    record_ids: tuple[str, ...]
    memory: FitResult
    ttft_basis: np.ndarray  # per point, of TTFT (measured only where the records give a mean TTFT)
    tpot_basis: np.ndarray  # per point, of TPOT

    @property
    def pp(self) -> int:
        return self.memory.pp

    def estimate_at(self, i: int) -> Estimate:
        v = float(self.output_tokens_per_s[i])
        band = MEASURED_BAND if self.basis[i] in ("measured", "interpolated") else self.band
        return Estimate(v, str(self.basis[i]), v / (1 + band), v * (1 + band), self.record_ids)  # type: ignore[arg-type]


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


def _unusable_reason(record: MeasurementRecord, catalog: Catalog) -> str:
    if record.device == "cpu":
        return "device=cpu: CPU measurements are never used for GPU planning"
    if record.model_scale != "full":
        return f"model_scale={record.model_scale}: a scaled-down model says nothing about the real one"
    if record.gpu not in catalog.gpus:
        return f"gpu {record.gpu!r} is not in the GPU catalog"
    return f"model {record.model!r} is not in the model catalog"


class PerfModel:
    def __init__(self, catalog: Catalog, use_cache: bool = True):
        self.catalog = catalog
        self.use_cache = use_cache
        self._calibrations: dict[GroupKey, Calibration] | None = None
        self._setups: list[Setup] | None = None
        self._serving: dict[tuple, list[MeasurementRecord]] | None = None
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
        """The records calibration and validation use, ready to predict."""
        if self._setups is None:
            models, gpus = self.catalog.models, self.catalog.gpus
            usable = [r for r in self.gpu_records() if unpredictable_reason(r) is None]
            built = (Setup.of(r, models[r.model].architecture, gpus[r.gpu]) for r in usable)  # type: ignore[index]
            self._setups = with_tail_ratios([s for s in built if s is not None])
        return self._setups

    def excluded(self) -> list[tuple[str, str]]:
        """(record id, why) for ok records left out of calibration and validation: CPU and tiny runs
        (never used for GPU planning), records of GPUs or models the catalog lacks, and records the
        model cannot predict honestly."""
        usable = {r.id for r in self.gpu_records()}
        out = []
        for r in self.catalog.measurements:
            if r.status != "ok":
                continue
            why = unpredictable_reason(r) if r.id in usable else _unusable_reason(r, self.catalog)
            if why is not None:
                out.append((r.id, why))
        return out

    def _cache_key(self) -> str:
        """The model's code and the catalog files calibration reads: any change recalibrates."""
        h = hashlib.sha256()
        here = Path(__file__).resolve().parent
        for name in _MODEL_SOURCES:
            h.update((here / name).read_bytes())
        h.update(self.catalog.fingerprint(CALIBRATION_KINDS).encode())
        return h.hexdigest()[:20]

    def content_key(self) -> str:
        """What the calibration is a function of, by content (not paths or times): the model's code
        and the bytes of the catalog files calibration reads. Equal keys, equal calibrations."""
        h = hashlib.sha256()
        here = Path(__file__).resolve().parent
        for name in _MODEL_SOURCES:
            h.update(name.encode() + b"\0" + (here / name).read_bytes())
        for kind in CALIBRATION_KINDS:
            for path in self.catalog.kind_files(kind):
                h.update(f"{kind}/{path.name}".encode() + b"\0" + path.read_bytes())
        return h.hexdigest()[:24]

    def calibrations(self) -> dict[GroupKey, Calibration]:
        if self._calibrations is not None:
            return self._calibrations
        key = self._cache_key()
        if self.use_cache and key in _CALIBRATED:  # the same code and records in this process
            self._calibrations = _CALIBRATED[key]
            return self._calibrations
        path = _cache_dir() / f"calibration-{key}.json"
        cals = self._load_cached(path) if self.use_cache else None
        if cals is None:
            from planner.perf.calibrate import calibrate_with_bands  # fitting: scipy

            cals = calibrate_with_bands(self.setups())
        self._calibrations = cals
        if self.use_cache:
            _CALIBRATED[key] = cals
            if not path.is_file():
                with contextlib.suppress(OSError):  # a read-only home only costs speed
                    _save_calibrations(path, cals)
        return cals

    def _load_cached(self, path: Path) -> dict[GroupKey, Calibration] | None:
        """This machine's cache, else the calibration shipped with the package when it was computed
        from exactly these catalog files and this code (a fresh install then never fits)."""
        try:
            if path.is_file():
                return _load_calibrations(json.loads(path.read_text()))
            shipped = bundled_catalog_dir() / SHIPPED_CALIBRATION
            if shipped.is_file():
                data = json.loads(shipped.read_text())
                if data.get("content_key") == self.content_key():
                    return _load_calibrations(data["calibrations"])
        except (ValueError, KeyError, TypeError, OSError):
            pass  # a stale or damaged cache is recomputed
        return None

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
            return default_efficiency(engine, quant, gpu), ROOFLINE_BAND, "roofline defaults", ()
        band = cal.band_for(gpu)
        label = cal.label if gpu in cal.gpus else f"{cal.label} (no records on {gpu})"
        if quant not in cal.quants and quant not in ("bf16", "fp16"):
            # Fitted on other formats: this format's kernels differ (dequantization); carry over its
            # defaults' penalty relative to the formats fitted, and widen the band.
            base = default_efficiency(engine, quant, gpu)
            ref = (
                default_efficiency(engine, cal.quants[0], gpu)
                if len(cal.quants) == 1
                else default_efficiency(engine, "bf16", gpu)
            )
            eff = Efficiency(
                bandwidth=min(1.0, cal.efficiency.bandwidth * base.bandwidth / ref.bandwidth),
                flops=min(1.0, cal.efficiency.flops * base.flops / ref.flops),
                step_overhead_ms=max(cal.efficiency.step_overhead_ms, base.step_overhead_ms),
                comm=cal.efficiency.comm,
            )
            return eff, max(band, 0.25), label + f" (adjusted for {quant})", cal.record_ids
        return cal.efficiency, band, label, cal.record_ids

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
        pp: int | None = None,
        double_quant: bool = False,
    ) -> FitResult:
        """The fit at tp x pp GPUs, or (tp None) the fewest GPUs that fit, pipeline stages included."""
        spec, g = self.catalog.model(model), self.catalog.gpu(gpu)
        arch = spec.architecture
        if tp is None:
            return smallest_fit(
                model, arch, quant, g, context_tokens, concurrency, kv_dtype, engine, double_quant
            )
        return fit(
            model, arch, quant, g, context_tokens, concurrency, tp, pp or 1, kv_dtype, engine, double_quant
        )

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
        pp: int | None = None,
        double_quant: bool = False,
        prefill_fraction: float = 1.0,
    ) -> ServingCurve:
        """TTFT, TPOT and output tok/s of one replica over `concurrency`, on the fewest GPUs that fit
        (tensor, then pipeline parallel) unless `tp` (and `pp`) say otherwise."""
        spec, g = self.catalog.model(model), self.catalog.gpu(gpu)
        seq = int(input_tokens + occupied_output(engine, output_tokens))
        mem = self.memory(model, quant, gpu, max(seq, 1), 1, tp, kv_dtype, engine_memory, pp, double_quant)
        if not mem.fits:
            raise PlannerError(
                f"{model} {quant} does not fit on {mem.gpus} x {gpu} (TP {mem.tp}, PP {mem.pp}): "
                f"{mem.reason}; `planner fit --model {model} --quant {quant} --gpu {gpu}` "
                "shows the fewest GPUs that fit"
            )
        hw = Hardware.build(spec.architecture, quant, g, mem.tp, kv_dtype, mem.pp, double_quant)
        eff, band, label, ids = self.calibration_for(gpu, engine, quant)
        conc = np.asarray(concurrency, dtype=float)
        batched = (engine_memory or EngineMemory()).max_num_batched_tokens
        pts = serving(
            hw, eff, conc, input_tokens, output_tokens, mem.max_concurrent_seqs, batched, prefill_fraction
        )
        predicted = "calibrated" if ids else "roofline"
        metrics = {
            "tok_s": pts.output_tokens_per_s.copy(),
            "ttft": pts.ttft_s * 1e3,
            "tpot": pts.tpot_s * 1e3,
        }
        bases = {name: np.full(conc.shape, predicted, dtype=object) for name in metrics}
        used = list(ids)
        measured = self.measured_points(
            model, quant, gpu, engine, mem.tp, mem.pp, input_tokens, output_tokens
        )
        if measured:
            metrics, bases = with_measured(conc, measured, metrics, bases)
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
            metrics["ttft"],
            metrics["tpot"],
            metrics["tok_s"],
            bases["tok_s"],
            band,
            label,
            eff,
            tuple(used),
            mem,
            bases["ttft"],
            bases["tpot"],
        )

    def measured_points(
        self, model: str, quant: str, gpu: str, engine: str, tp: int, pp: int, inp: float, out: float
    ) -> list[MeasurementRecord]:
        def close(a: float, b: float) -> bool:
            return abs(a - b) <= MATCH_TOLERANCE * b

        if self._serving is None:  # asked once per configuration: index the records once
            self._serving = {}
            for r in self.gpu_records():
                if (
                    r.mode == "serving"
                    and r.concurrency is not None
                    and not r.client_saturated
                    and r.gpu_count == r.tensor_parallel * r.pipeline_parallel
                    and r.output_tokens_per_s
                ):
                    key = (r.model, r.quant, r.gpu, r.engine.name, r.tensor_parallel, r.pipeline_parallel)
                    self._serving.setdefault(key, []).append(r)
        candidates = self._serving.get((model, quant, gpu, engine, tp, pp), [])
        return [r for r in candidates if close(r.input_tokens, inp) and close(r.output_tokens, out)]

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
        pp: int | None = None,
        double_quant: bool = False,
        prefill_fraction: float = 1.0,
    ) -> Capacity:
        """The largest concurrency whose predicted TTFT and TPOT meet the SLOs, and its throughput."""
        grid = np.unique(np.round(np.geomspace(1, max_concurrency, 96)))
        curve = self.serving_curve(
            model,
            quant,
            gpu,
            input_tokens,
            output_tokens,
            grid,
            engine,
            tp,
            kv_dtype,
            engine_memory,
            pp,
            double_quant,
            prefill_fraction,
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


def calibration_rows(cals: dict[GroupKey, Calibration]) -> list[dict]:
    return [
        {
            "key": list(c.key),
            "efficiency": asdict(c.efficiency),
            "record_ids": list(c.record_ids),
            "fitted": list(c.fitted),
            "residuals": list(c.residuals),
            "loo_residuals": list(c.loo_residuals),
            "quants": list(c.quants),
            "gpu_out_residuals": list(c.gpu_out_residuals),
            "gpus": list(c.gpus),
            "gpu_out_gpus": list(c.gpu_out_gpus),
        }
        for c in cals.values()
    ]


def _save_calibrations(path: Path, cals: dict[GroupKey, Calibration]) -> None:
    from planner.catalog.files import atomic_write_text

    atomic_write_text(path, json.dumps(calibration_rows(cals)))


def _load_calibrations(rows: list[dict]) -> dict[GroupKey, Calibration]:
    out = {}
    for row in rows:
        key = tuple(row["key"])
        out[key] = Calibration(
            key,  # type: ignore[arg-type]
            Efficiency(**row["efficiency"]),
            tuple(row["record_ids"]),
            tuple(row["fitted"]),
            tuple(row["residuals"]),
            tuple(row["loo_residuals"]),
            tuple(row["quants"]),
            tuple(row["gpu_out_residuals"]),
            tuple(row["gpus"]),
            tuple(row["gpu_out_gpus"]),
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
