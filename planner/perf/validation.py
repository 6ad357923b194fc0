"""How wrong is the performance model? Every record predicted with itself left out, and whether it
lands inside the band the planner would have stated without it.

The band a record is checked against never contains that record's own error: it is the split-
conformal band of the other members of the group that predicted it (their own leave-one-out
errors), so the share inside is an honest coverage, not a circular one. GPUs without records are
validated apart: every record of a GPU predicted by a calibration that never saw the GPU, against
the band made of the other GPUs' such errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from planner.perf.calibrate import (
    FitCache,
    LooResult,
    calibrate_groups,
    leave_one_gpu_out,
    leave_one_out,
    loo_by_group,
)
from planner.perf.calibration import ROOFLINE_BAND, clustered_band, conformal_band
from planner.perf.predict import Setup


@dataclass(frozen=True)
class Checked:
    """One record's left-out prediction and the band it is checked against."""

    result: LooResult
    basis: str  # the record's basis: published | measured | imported
    band: float  # relative half-width, without this record's own error

    @property
    def inside(self) -> bool:
        ratio = self.result.predicted / self.result.observed
        return 1 / (1 + self.band) <= ratio <= 1 + self.band


@dataclass(frozen=True)
class Summary:
    group: str
    records: int
    mape_pct: float
    max_error_pct: float
    inside_pct: float


@dataclass(frozen=True)
class Validation:
    checked: list[Checked]  # each record, its own group
    groups: list[Summary]  # per group, then "all"
    unseen_gpu: list[Checked]  # leave-one-GPU-out
    unseen_gpu_groups: list[Summary]  # per GPU left out, then "all"


def summarize(label: str, rows: Sequence[Checked]) -> Summary:
    errors = [abs(r.result.error) * 100 for r in rows]
    return Summary(
        label,
        len(rows),
        sum(errors) / len(errors),
        max(errors),
        100 * sum(r.inside for r in rows) / len(rows),
    )


def by_group(rows: Sequence[Checked]) -> list[Summary]:
    """A summary per group that predicted the rows, then one for all of them."""
    groups: dict[str, list[Checked]] = {}
    for row in rows:
        groups.setdefault(row.result.group, []).append(row)
    return [summarize(g, rs) for g, rs in sorted(groups.items())] + [summarize("all", rows)]


def validate(setups: Sequence[Setup]) -> Validation:
    """Leave-one-out and leave-one-GPU-out predictions of every record, with honest band checks."""
    fits = FitCache()
    full = calibrate_groups(setups, fits=fits)
    own = loo_by_group(setups, full, fits)
    basis = {s.record.id: s.record.basis for s in setups}
    checked = []
    for r in leave_one_out(setups, full, own):
        if r.key is None:
            band = ROOFLINE_BAND
        else:  # the group's other members' own left-out errors: never this record's
            band = conformal_band([o.log_error for i, o in own[r.key].items() if i != r.record_id])
        checked.append(Checked(r, basis[r.record_id], band))
    gpu_of = {s.record.id: s.record.gpu or "" for s in setups}
    gpu_out = leave_one_gpu_out(setups, full, fits)
    unseen = []
    for r in gpu_out:  # the band an unseen GPU gets, from the other GPUs' leave-one-GPU-out errors
        others = [o for o in gpu_out if gpu_of[o.record_id] != gpu_of[r.record_id]]
        band = clustered_band([o.log_error for o in others], [gpu_of[o.record_id] for o in others])
        unseen.append(Checked(r, basis[r.record_id], band))
    return Validation(checked, by_group(checked), unseen, by_group(unseen) if unseen else [])
