"""`planner validate`: how wrong the performance model is, record by record, and weights memory
against real checkpoints."""

from __future__ import annotations

from typing import Any

import click

from planner.commands.common import AppContext, format_option
from planner.errors import PlannerError
from planner.report.render import Column, render_rows, to_json

VALIDATE_COLUMNS = [
    Column("record", "record"),
    Column("group", "calibrated on"),
    Column("observed", "observed tok/s", ",.0f"),
    Column("predicted", "predicted tok/s", ",.0f"),
    Column("error_pct", "error %", "+.1f"),
    Column("band_pct", "band +%", ".0f"),  # a factor: value / (1 + b) to value x (1 + b)
    Column("in_band", "in band"),
]
GROUP_COLUMNS = [
    Column("group", "group"),
    Column("records", "records"),
    Column("mape_pct", "MAPE %", ".1f"),
    Column("max_error_pct", "max error %", ".1f"),
    Column("in_band_pct", "inside band %", ".0f"),
]


def _checked_row(c: Any) -> dict[str, Any]:
    r = c.result
    return {
        "record": r.record_id,
        "group": r.group,
        "basis": c.basis,
        "observed": r.observed,
        "predicted": r.predicted,
        "error_pct": r.error * 100,
        "band_pct": c.band * 100,
        "in_band": c.inside,
    }


def _summary_row(g: Any) -> dict[str, Any]:
    return {
        "group": g.group,
        "records": g.records,
        "mape_pct": g.mape_pct,
        "max_error_pct": g.max_error_pct,
        "in_band_pct": g.inside_pct,
    }


@click.command("validate")
@format_option
@click.pass_obj
def validate_cmd(app: AppContext, fmt: str) -> None:
    """How wrong is the model? Every GPU record predicted with itself left out of the calibration,
    checked against the band stated without it; MAPE per group; the same for a GPU without records
    (leave-one-GPU-out); and weights memory against real checkpoint sizes."""
    from planner.perf.memory import weight_bytes
    from planner.perf.model import PerfModel
    from planner.perf.validation import validate

    perf = PerfModel(app.catalog, use_cache=False)
    setups = perf.setups()
    if not setups:
        raise PlannerError("no GPU measurement records in the catalog to validate against")
    report = validate(setups)
    rows = [_checked_row(c) for c in report.checked]
    summary = [_summary_row(g) for g in report.groups]
    unseen_rows = [_checked_row(c) for c in report.unseen_gpu]
    unseen = [_summary_row(g) for g in report.unseen_gpu_groups]
    excluded = [{"record": rid, "why": why} for rid, why in perf.excluded()]
    weights = []
    for ck in app.catalog.checkpoints:
        arch = app.catalog.model(ck.model).architecture
        dq = ck.double_quant if ck.double_quant is not None else ck.quant in ("bnb-nf4", "bnb-fp4")
        predicted = weight_bytes(arch, ck.quant, dq).total
        err = predicted / ck.total_size_bytes - 1
        weights.append(
            {
                "checkpoint": ck.hf_repo,
                "model": ck.model,
                "quant": ck.quant
                + (" (dq)" if dq and ck.quant.startswith("bnb-") and ck.quant != "bnb-int8" else ""),
                "real_gb": ck.total_size_bytes / 1e9,
                "predicted_gb": predicted / 1e9,
                "error_pct": err * 100,
                "source_precision_pct": 100 * ck.precision_bytes / ck.total_size_bytes,
            }
        )
    if fmt == "json":
        click.echo(
            to_json(
                {
                    "throughput": rows,
                    "groups": summary,
                    "unseen_gpu": unseen_rows,
                    "unseen_gpu_groups": unseen,
                    "excluded": excluded,
                    "weights_memory": weights,
                }
            )
        )
        return
    click.echo(render_rows(rows, VALIDATE_COLUMNS, fmt))
    click.echo("")
    click.echo(render_rows(summary, GROUP_COLUMNS, fmt))
    if fmt == "table":
        click.echo(
            "\nin band: inside the split-conformal 80% band of the other records of the group that "
            "predicted it (never its own error)"
        )
    if unseen:
        click.echo("")
        if fmt == "table":
            click.echo("a GPU without records (every record of a GPU predicted by a calibration without it):")
        click.echo(render_rows(unseen, GROUP_COLUMNS, fmt))
    if excluded and fmt == "table":
        click.echo("")
        by_reason: dict[str, list[str]] = {}
        for row in excluded:
            by_reason.setdefault(row["why"], []).append(row["record"])
        for why, ids in by_reason.items():
            named = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
            click.echo(f"not validated: {named}: {why}")
    click.echo("")
    weight_cols = [
        Column("checkpoint", "checkpoint"),
        Column("quant", "format"),
        Column("real_gb", "real GB", ".3f"),
        Column("predicted_gb", "predicted GB", ".3f"),
        Column("error_pct", "error %", "+.2f"),
        Column("source_precision_pct", "source +- %", ".2f"),
    ]
    click.echo(render_rows(weights, weight_cols, fmt))
