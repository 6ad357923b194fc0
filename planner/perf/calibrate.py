"""Fit efficiency factors (achieved bandwidth and FLOPs fractions, step overhead, all-reduce cost)
to measurement records, per group of records, with scipy.

Groups go from specific to general: (GPU, engine, quant), (GPU, engine), (GPU), and all GPU
records. A configuration is predicted with the most specific group that has enough records. Each
group's error band comes from its own leave-one-out errors: every member predicted by that group's
calibration refitted without it (calibration.py turns them into a split-conformal band). The
all-GPU group also gets leave-one-GPU-out errors, the band for a GPU without records. CPU records
are never used for GPU planning.

Every fit is pulled towards the group's default efficiencies (its prior), never towards a fit that
saw the left-out record.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
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
from planner.perf.predict import PredictionBatch, Setup, predict_output_tokens_per_s, with_tail_ratios
from planner.perf.roofline import Efficiency

__all__ = [
    "Calibration",
    "calibrate_groups",
    "calibrate_with_bands",
    "group_label",
    "leave_one_gpu_out",
    "leave_one_out",
    "loo_by_group",
    "lookup",
    "with_loo_bands",
]

BOUNDS = {
    "bandwidth": (0.15, 0.9),
    "flops": (0.08, 1.0),
    "step_overhead_ms": (0.05, 8.0),
    "comm": (0.25, 8.0),
}
"""What the hardware and a modern engine allow, so a fit cannot explain one effect with another:
- bandwidth: a device-to-device copy on an H200 moves about 4.3 TB/s of its 4.8 TB/s peak (this
  workplace's device notes, 2026-10-28: 8.6 GB read and written in 2.0 ms), about 90%; no kernel
  that also computes reads faster. Unbounded, H200 fits ran to 100%.
- step overhead: before vLLM v0.6 the CPU took 62% of a 13 ms Llama 3 8B step on an H100 under
  light load (vLLM blog, 2024-09-05), about 8 ms, which v0.6 and later engines cut; a larger fixed
  cost is not a modern engine's. A configuration whose default overhead is larger (bitsandbytes'
  dequantization, transformers' eager generate: see calibration.py) may fit up to
  OWN_OVERHEAD_FACTOR times its own default."""
OWN_OVERHEAD_FACTOR = 4.0

LOW_LOAD = 8
"""The fixed step cost is fitted only on groups with a record at this load or below (batch or
concurrency), where it is a large share of a step; at high batch it is a few percent of one and
any fitted value stands in for something else. Unidentified, it stays at its default: fitted on
the bundled records (all high-batch throughput runs) it came out at 2.9 ms on H100 and 12 ms on
H200, which ranked an H200 slower than an H100 for a lone request."""


def _log_bounds(names: Sequence[str], prior: Efficiency) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = [], []
    for n in names:
        low, high = BOUNDS[n]
        if n == "step_overhead_ms" and prior.step_overhead_ms * OWN_OVERHEAD_FACTOR > high:
            high = OWN_OVERHEAD_FACTOR * prior.step_overhead_ms
        lo.append(math.log(low))
        hi.append(math.log(high))
    return np.array(lo), np.array(hi)


PRIOR_WEIGHT = 0.1
"""Pull each fitted efficiency towards its default, in log space: a parameter the records cannot
identify (bandwidth, when every record is compute-bound) stays near its default instead of
running to a bound, while one the records do pin moves freely (30 records outweigh the prior)."""

TOLERANCE = 1e-5
"""Stop when the log residuals move less than this: 1e-5 in log space is a 0.001% change, far
below any error that matters, and about halves the evaluations of scipy's default 1e-8."""

StartFor = Callable[[GroupKey], Efficiency]


def _default_for(key: GroupKey) -> Efficiency:
    return default_efficiency(key[1] or "", key[2] or "", key[0] or "")


def _in_group(setup: Setup, key: GroupKey) -> bool:
    rec = setup.record
    return all(
        want is None or want == have
        for want, have in zip(key, (rec.gpu, rec.engine.name, rec.quant), strict=True)
    )


def _load(setup: Setup) -> float:
    """The batch or concurrency a record ran at; 0 when it states neither (a max-throughput run)."""
    rec = setup.record
    return float(rec.batch_size or rec.concurrency or 0)


def _free_params(setups: Sequence[Setup]) -> list[str]:
    n = len(setups)
    if n < MIN_RECORDS:
        return []
    names = ["bandwidth", "flops"]
    if any(0 < _load(s) <= LOW_LOAD for s in setups):
        names.append("step_overhead_ms")
    if n >= 5 and any(s.hw.tp > 1 for s in setups) and any(s.hw.tp == 1 for s in setups):
        names.append("comm")
    return names


def fit_efficiency(
    setups: Sequence[Setup], start: Efficiency, prior: Efficiency | None = None
) -> tuple[Efficiency, tuple[str, ...], np.ndarray]:
    """Least squares on log(predicted / observed) over the free parameters, in log space, bounded,
    from `start`, pulled towards `prior` (default: `start`). Too few records: `prior` unchanged."""
    from scipy.optimize import least_squares

    prior = prior or start
    names = _free_params(setups)
    batch = PredictionBatch(list(setups))

    def efficiency_of(x: np.ndarray) -> Efficiency:
        return replace(prior, **{n: float(math.exp(v)) for n, v in zip(names, x, strict=True)})

    def data_residuals(x: np.ndarray) -> np.ndarray:
        return np.log(batch(efficiency_of(x)) / batch.observed)

    if not names:
        return prior, (), data_residuals(np.array([]))
    x_prior = np.array([math.log(getattr(prior, n)) for n in names])
    x0 = np.array([math.log(getattr(start, n)) for n in names])

    def residuals(x: np.ndarray) -> np.ndarray:
        return np.concatenate([data_residuals(x), PRIOR_WEIGHT * (x - x_prior)])

    lo, hi = _log_bounds(names, prior)
    result = least_squares(
        residuals,
        np.clip(x0, lo + 1e-9, hi - 1e-9),
        bounds=(lo, hi),
        x_scale=1.0,
        diff_step=1e-3,
        ftol=TOLERANCE,
        xtol=TOLERANCE,
        gtol=TOLERANCE,
    )
    eff = efficiency_of(result.x)
    return eff, tuple(names), data_residuals(result.x)


class FitCache:
    """Fits remembered by (records, start, prior): nested groups often hold the same records."""

    def __init__(self) -> None:
        self.done: dict[tuple, tuple[Efficiency, tuple[str, ...], np.ndarray]] = {}

    def __call__(
        self, members: Sequence[Setup], start: Efficiency, prior: Efficiency
    ) -> tuple[Efficiency, tuple[str, ...], np.ndarray]:
        key = (tuple((s.record.id, s.tail_ratios) for s in members), start, prior)
        if key not in self.done:
            self.done[key] = fit_efficiency(members, start, prior)
        return self.done[key]


def _keys_of(setups: Sequence[Setup]) -> list[GroupKey]:
    keys: set[GroupKey] = set()
    for s in setups:
        rec = s.record
        keys.update(group_keys(rec.gpu or "", rec.engine.name, rec.quant))
    return sorted(keys, key=lambda k: tuple(part or "" for part in k))


def calibrate_groups(
    setups: Sequence[Setup], start_for: StartFor | None = None, fits: FitCache | None = None
) -> dict[GroupKey, Calibration]:
    """A calibration for every group (at every level) that has enough records."""
    start_for = start_for or _default_for
    fits = fits or FitCache()
    out = {}
    for key in _keys_of(setups):
        members = [s for s in setups if _in_group(s, key)]
        if len(members) < MIN_RECORDS:
            continue
        eff, names, res = fits(members, start_for(key), start_for(key))
        out[key] = Calibration(
            key,
            eff,
            tuple(s.record.id for s in members),
            names,
            tuple(float(r) for r in res),
            quants=tuple(sorted({s.record.quant for s in members})),
            gpus=tuple(sorted({s.record.gpu or "" for s in members})),
        )
    return out


@dataclass(frozen=True)
class LooResult:
    record_id: str
    group: str  # the group that predicted it (fitted without it)
    observed: float
    predicted: float
    key: GroupKey | None = None  # that group's key; None: roofline defaults or leave-one-GPU-out

    @property
    def error(self) -> float:
        return self.predicted / self.observed - 1.0

    @property
    def log_error(self) -> float:
        return math.log(self.predicted / self.observed)


def _predict_left_out(
    target: Setup,
    others: list[Setup],
    key: GroupKey,
    start: Efficiency,
    fits: FitCache,
    label: str | None = None,
) -> LooResult:
    """`target` predicted by group `key`'s calibration fitted on `others` (its own tail ratios,
    like the training records', derived without the left-out records)."""
    train = with_tail_ratios(others)
    eff, _, _ = fits(train, start, _default_for(key))
    pred = predict_output_tokens_per_s(target, eff)
    return LooResult(target.record.id, label or group_label(key), target.observed, pred, key)


def loo_by_group(
    setups: Sequence[Setup], full: dict[GroupKey, Calibration], fits: FitCache | None = None
) -> dict[GroupKey, dict[str, LooResult]]:
    """For every calibrated group, each member predicted by the group's calibration refitted
    without it (below MIN_RECORDS left, the refit is the group's defaults: nothing to fit)."""
    fits = fits or FitCache()
    out: dict[GroupKey, dict[str, LooResult]] = {}
    done: dict[tuple[str, ...], dict[str, LooResult]] = {}
    for key, cal in full.items():
        if cal.record_ids in done:  # same records as a nested group: the same refits
            out[key] = {i: replace(r, group=cal.label, key=key) for i, r in done[cal.record_ids].items()}
            continue
        members = [s for s in setups if s.record.id in set(cal.record_ids)]
        results = {}
        for target in members:
            others = [s for s in members if s is not target]
            results[target.record.id] = _predict_left_out(target, others, key, cal.efficiency, fits)
        out[key] = done[cal.record_ids] = results
    return out


def leave_one_out(
    setups: Sequence[Setup],
    full: dict[GroupKey, Calibration] | None = None,
    by_group: dict[GroupKey, dict[str, LooResult]] | None = None,
) -> list[LooResult]:
    """Each record predicted by the calibration it would get if it were not in the catalog: the
    most specific group still holding enough records without it, refitted without it."""
    full = full if full is not None else calibrate_groups(setups)
    by_group = by_group if by_group is not None else loo_by_group(setups, full)
    out = []
    for target in setups:
        rec = target.record
        for key in group_keys(rec.gpu or "", rec.engine.name, rec.quant):
            if key in full and len(full[key].record_ids) - 1 >= MIN_RECORDS:
                out.append(by_group[key][rec.id])
                break
        else:
            eff = default_efficiency(rec.engine.name, rec.quant, rec.gpu or "")
            pred = predict_output_tokens_per_s(target, eff)
            out.append(LooResult(rec.id, "roofline defaults", target.observed, pred))
    return out


def leave_one_gpu_out(
    setups: Sequence[Setup], full: dict[GroupKey, Calibration], fits: FitCache | None = None
) -> list[LooResult]:
    """Every record of a GPU predicted by the all-GPU calibration fitted on the other GPUs' records:
    how wrong an estimate for a GPU without any record is."""
    fits = fits or FitCache()
    key: GroupKey = (None, None, None)
    start = full[key].efficiency if key in full else _default_for(key)
    out = []
    for gpu in sorted({s.record.gpu or "" for s in setups}):
        others = [s for s in setups if s.record.gpu != gpu]
        if len(others) < MIN_RECORDS:
            continue
        train = with_tail_ratios(others)
        eff, _, _ = fits(train, start, _default_for(key))
        for target in (s for s in setups if s.record.gpu == gpu):
            target = with_tail_ratios([*others, target])[-1]  # tail ratios not from its own GPU either
            pred = predict_output_tokens_per_s(target, eff)
            out.append(LooResult(target.record.id, f"without {gpu}", target.observed, pred))
    return out


def with_loo_bands(
    calibrations: dict[GroupKey, Calibration],
    by_group: dict[GroupKey, dict[str, LooResult]],
    gpu_out: Sequence[LooResult] = (),
    gpu_of: dict[str, str] | None = None,
) -> dict[GroupKey, Calibration]:
    """Attach to each group its own leave-one-out residuals (its honest error band), and to the
    all-GPU group the leave-one-GPU-out residuals (the band for a GPU without records)."""
    out = {}
    for key, cal in calibrations.items():
        mine = by_group.get(key, {})
        loo = tuple(mine[i].log_error for i in cal.record_ids if i in mine)
        if key == (None, None, None) and gpu_out:
            gpu_of = gpu_of or {}
            extra = tuple(r.log_error for r in gpu_out)
            extra_gpus = tuple(gpu_of.get(r.record_id, "") for r in gpu_out)
        else:
            extra, extra_gpus = (), ()
        out[key] = replace(cal, loo_residuals=loo, gpu_out_residuals=extra, gpu_out_gpus=extra_gpus)
    return out


def calibrate_with_bands(setups: Sequence[Setup]) -> dict[GroupKey, Calibration]:
    """Everything the planner needs from the records: fitted groups with their honest bands."""
    fits = FitCache()
    full = calibrate_groups(setups, fits=fits)
    if not full:
        return {}
    by_group = loo_by_group(setups, full, fits)
    gpu_of = {s.record.id: s.record.gpu or "" for s in setups}
    return with_loo_bands(full, by_group, leave_one_gpu_out(setups, full, fits), gpu_of)


def efficiency_fields() -> list[str]:
    return [f.name for f in fields(Efficiency)]
