"""`planner report`: a publishable capacity report (HTML, Markdown, plots, CSV tables)."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Any

import click

from planner.commands.common import AppContext
from planner.commands.inputs import (
    CANDIDATE_OPTIONS,
    TCO_OPTIONS,
    WORKLOAD_OPTIONS,
    Inputs,
    apply,
    given_params,
)
from planner.errors import PlannerError


def reproduce_command(ctx: click.Context, workload: Path | None) -> str:
    """The command line that regenerates the report: the options the user gave, as given."""
    parts = ["planner"]
    for d in ctx.find_root().params.get("catalog_dirs") or ():
        parts += ["--catalog", str(d)]
    parts.append("report")
    if workload is not None:
        parts.append(str(workload))
    given = given_params(ctx)
    for param in ctx.command.params:
        if param.name not in given or param.name == "workload_arg" or not isinstance(param, click.Option):
            continue
        value = ctx.params[param.name]
        flag = max(param.opts, key=len)
        if param.is_flag:
            parts.append(flag)
        elif isinstance(value, tuple | list):
            for v in value:
                parts += [flag, str(v)]
        else:
            parts += [flag, str(value)]
    return shlex.join(parts)


@click.command("report")
@click.argument(
    "workload_arg", metavar="[WORKLOAD.yaml]", required=False, type=click.Path(dir_okay=False, path_type=Path)
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for index.html, report.md, plots/, tables/, inputs/.",
)
@click.option("--title", help="Report title. [default: the workload's name]")
@click.option(
    "--quality",
    "quality_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="QualityRecords (gpu-bench eval) for a quality section. [default: the catalog's quality/]",
)
@apply(WORKLOAD_OPTIONS)
@apply(CANDIDATE_OPTIONS)
@apply(TCO_OPTIONS)
@click.pass_context
def report_cmd(
    ctx: click.Context,
    workload_arg: Path | None,
    out_dir: Path,
    title: str | None,
    quality_files: tuple[Path, ...],
    **opts: Any,
) -> None:
    """Write a capacity report for a workload: the recommendation and break-evens first, then cost
    curves, fleets, performance, memory fit, sensitivity, TCO, size classes, quality on your cases
    (when gpu-bench eval records exist), and every assumption with its source. One self-contained
    index.html, report.md, the plots and every table as CSV.

    Example: planner report examples/workload.yaml --out report/
    """
    from planner.commands.inputs import resolve
    from planner.perf.model import PerfModel

    started = time.perf_counter()
    app: AppContext = ctx.obj
    if workload_arg is not None:
        if opts.get("workload_file"):
            raise PlannerError("give the workload file as the argument or as --workload, not both")
        opts["workload_file"] = workload_arg
    given = given_params(ctx) | ({"workload_file"} if workload_arg is not None else set())
    inputs: Inputs = resolve(opts, given)
    try:
        from planner.report import plots as plot_module
    except ImportError:
        raise PlannerError("the report needs matplotlib: pip install 'selfhost-planner[report]'") from None
    from planner.report.build import build_report_data
    from planner.report.document import write_report

    horizon, switching = inputs.horizon_months, inputs.switching
    name, description = title or "Capacity report", ""
    if inputs.values.get("workload_file") or workload_arg:
        from planner.economics.workload_file import read_workload_file

        spec = read_workload_file(workload_arg or Path(opts["workload_file"]))
        name = title or (f"Capacity report: {spec.name}" if spec.name else name)
        description = spec.description or ""
    if quality_files:
        from planner.quality.inputs import read_quality_files

        quality_records = read_quality_files(quality_files)
    else:
        quality_records = list(app.catalog.quality)
    data = build_report_data(
        app.catalog,
        PerfModel(app.catalog),
        inputs.workload,
        inputs.filters,
        inputs.policy,
        inputs.apis,
        inputs.include_hosted,
        horizon,
        switching,
        reproduce_command(ctx, workload_arg),
        name,
        description,
        quality_records,
    )
    pngs = {key: png for key, fn in plot_module.PLOTS.items() if (png := fn(data)) is not None}
    record = {k: (str(val) if isinstance(val, Path) else val) for k, val in inputs.values.items()}
    files = write_report(data, out_dir, pngs, record)
    click.echo(
        f"wrote {len(files)} files to {out_dir} in {time.perf_counter() - started:.1f} s: "
        f"{out_dir / 'index.html'}, {out_dir / 'report.md'}"
    )
