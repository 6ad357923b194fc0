"""Fit efficiency factors (achieved bandwidth and FLOPs fractions, step overhead, all-reduce cost)
to measurement records, per group of records, with scipy.

Groups go from specific to general: (GPU, engine, quant), (GPU, engine), (GPU), and all GPU
records. A configuration is predicted with the most specific group that has enough records,
and its error band comes from that group's leave-one-out residuals. CPU records are never used
for GPU planning.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields, replace

import numpy as np

from planner.perf.calibration import (
    MIN_RECORDS,
    Calibration,
    GroupKey,
    default_efficiency,
    group_keys,
    group_label,
    lookup,
)
from planner.perf.predict import PredictionBatch, Setup, predict_output_tokens_per_s
from planner.perf.roofline import Efficiency

__all__ = ["Calibration", "calibrate_groups", "group_label", "leave_one_out", "lookup", "with_loo_bands"]

BOUNDS = {
    "bandwidth": (0.15, 1.0),
    "flops": (0.08, 1.0),
    "step_overhead_ms": (0.05, 200.0),
    "comm": (0.25, 8.0),
}
PRIOR_WEIGHT = 0.1
"""Pull each fitted efficiency towards its default, in log space: a parameter the records cannot
identify (bandwidth, when every record is compute-bound) stays near its default instead of
running to a bound, while one the records do pin moves freely (30 records outweigh the prior)."""


def _in_group(setup: Setup, key: GroupKey) -> bool:
    rec = setup.record
    return all(
        want is None or want == have
        for want, have in zip(key, (rec.gpu, rec.engine.name, rec.quant), strict=True)
    )


def _free_params(setups: Sequence[Setup]) -> list[str]:
    n = len(setups)
    if n < MIN_RECORDS:
        return []
    names = ["bandwidth", "flops", "step_overhead_ms"]
    if n >= 5 and any(s.hw.tp > 1 for s in setups) and any(s.hw.tp == 1 for s in setups):
        names.append("comm")
    return names


def fit_efficiency(
    setups: Sequence[Setup], start: Efficiency
) -> tuple[Efficiency, tuple[str, ...], np.ndarray]:
    """Least squares on log(predicted / observed) over the free parameters, in log space, bounded."""
    from scipy.optimize import least_squares

    names = _free_params(setups)
    batch = PredictionBatch(list(setups))

    def efficiency_of(x: np.ndarray) -> Efficiency:
        return replace(start, **{n: float(math.exp(v)) for n, v in zip(names, x, strict=True)})

    def data_residuals(x: np.ndarray) -> np.ndarray:
        return np.log(batch(efficiency_of(x)) / batch.observed)

    if not names:
        return start, (), data_residuals(np.array([]))
    x0 = np.array([math.log(getattr(start, n)) for n in names])

    def residuals(x: np.ndarray) -> np.ndarray:
        return np.concatenate([data_residuals(x), PRIOR_WEIGHT * (x - x0)])

    lo = np.array([math.log(BOUNDS[n][0]) for n in names])
    hi = np.array([math.log(BOUNDS[n][1]) for n in names])
    result = least_squares(
        residuals, np.clip(x0, lo + 1e-9, hi - 1e-9), bounds=(lo, hi), x_scale=1.0, diff_step=1e-3
    )
    eff = efficiency_of(result.x)
    return eff, tuple(names), data_residuals(result.x)


def calibrate_groups(
    setups: Sequence[Setup], start_for: Callable[[GroupKey], Efficiency] | None = None
) -> dict[GroupKey, Calibration]:
    """A calibration for every group (at every level) that has enough records."""
    start_for = start_for or (lambda key: default_efficiency(key[1] or "", key[2] or ""))
    keys: set[GroupKey] = set()
    for s in setups:
        rec = s.record
        keys.update(group_keys(rec.gpu or "", rec.engine.name, rec.quant))
    out = {}
    fitted: dict[tuple[tuple[str, ...], Efficiency], tuple[Efficiency, tuple[str, ...], np.ndarray]] = {}
    for key in sorted(keys, key=lambda k: tuple(part or "" for part in k)):
        members = [s for s in setups if _in_group(s, key)]
        if len(members) < MIN_RECORDS:
            continue
        ids = tuple(s.record.id for s in members)
        start = start_for(key)
        if (ids, start) not in fitted:  # nested groups often hold the same records: fit once
            fitted[(ids, start)] = fit_efficiency(members, start)
        eff, names, res = fitted[(ids, start)]
        quants = tuple(sorted({s.record.quant for s in members}))
        out[key] = Calibration(key, eff, ids, names, tuple(float(r) for r in res), quants=quants)
    return out


@dataclass(frozen=True)
class LooResult:
    record_id: str
    group: str  # the group that predicted it (fitted without it)
    observed: float
    predicted: float

    @property
    def error(self) -> float:
        return self.predicted / self.observed - 1.0


def leave_one_out(
    setups: Sequence[Setup], full: dict[GroupKey, Calibration] | None = None
) -> list[LooResult]:
    """Each record predicted by the calibration it would get if it were not in the catalog.

    Only the group that would predict the left-out record is refitted (the most specific one
    still holding enough records without it), starting from the fit on all records.
    """
    full = full if full is not None else calibrate_groups(setups)
    out = []
    for i, target in enumerate(setups):
        rec = target.record
        others = [s for j, s in enumerate(setups) if j != i]
        cal = None
        for key in group_keys(rec.gpu or "", rec.engine.name, rec.quant):
            members = [s for s in others if _in_group(s, key)]
            if len(members) >= MIN_RECORDS:
                start = (
                    full[key].efficiency if key in full else default_efficiency(rec.engine.name, rec.quant)
                )
                eff, names, res = fit_efficiency(members, start)
                cal = Calibration(
                    key, eff, tuple(s.record.id for s in members), names, tuple(map(float, res))
                )
                break
        eff = cal.efficiency if cal else default_efficiency(rec.engine.name, rec.quant)
        pred = predict_output_tokens_per_s(target, eff)
        out.append(LooResult(rec.id, cal.label if cal else "roofline defaults", target.observed, pred))
    return out


def with_loo_bands(
    calibrations: dict[GroupKey, Calibration], loo: Iterable[LooResult]
) -> dict[GroupKey, Calibration]:
    """Attach to each group the leave-one-out residuals of its members (the honest error band)."""
    by_id = {r.record_id: math.log(r.predicted / r.observed) for r in loo}
    return {
        key: replace(cal, loo_residuals=tuple(by_id[i] for i in cal.record_ids if i in by_id))
        for key, cal in calibrations.items()
    }


def efficiency_fields() -> list[str]:
    return [f.name for f in fields(Efficiency)]
