"""`planner report`: a publishable capacity report (HTML, Markdown, plots, CSV tables)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from planner.catalog.files import check_writable
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

if TYPE_CHECKING:
    from planner.report.document import Reproduction

RESERVED_INPUTS = {"workload.json", "catalog-digest.txt"}
"""Names in inputs/ the report writes itself; a given file of that name is copied as given-NAME."""
NOT_REPRODUCED = {
    "workload_arg",
    "workload_file",
    "out_dir",
    "expected_digest",
    "hourly_profile",
    "quality_files",
}
"""Options reproduce.sh sets itself: the files point to their copies in inputs/, --out to its argument."""


def _copy_name(path: Path, taken: dict[str, Path]) -> str:
    name = f"given-{path.name}" if path.name in RESERVED_INPUTS else path.name
    stem, n = name, 2
    while name in taken and taken[name].resolve() != path.resolve():
        name, n = f"{n}-{stem}", n + 1
    return name


def reproduction(
    ctx: click.Context, app: AppContext, workload: Path | None, inputs: Inputs, name: str, description: str
) -> Reproduction:
    """The arguments that regenerate the report from its folder: the given files as their copies
    in inputs/, the catalog directories absolute (the bundled one is the planner's own)."""
    from planner.report.document import Reproduction

    args: list[str] = []
    for d in app.catalog.directories[1:]:  # $SELFHOST_PLANNER_CATALOG, then --catalog
        args += ["--catalog", str(Path(d).resolve())]
    args.append("report")
    copies: dict[str, Path] = {}

    def copy(path: Path) -> str:
        key = _copy_name(path, copies)
        copies[key] = path
        return f"inputs/{key}"

    if workload is not None:
        args.append(copy(workload))
    given = given_params(ctx)
    if "hourly_profile" in given and ctx.params.get("hourly_profile"):
        args += ["--hourly-profile", copy(Path(ctx.params["hourly_profile"]))]
    for q in ctx.params.get("quality_files") or ():
        args += ["--quality", copy(Path(q))]
    for param in ctx.command.params:
        if param.name not in given or param.name in NOT_REPRODUCED or not isinstance(param, click.Option):
            continue
        value = ctx.params[param.name]
        flag = max(param.opts, key=len)
        if param.is_flag:
            args.append(flag)
        elif isinstance(value, tuple | list):
            for v in value:
                args += [flag, str(v)]
        else:
            args += [flag, str(value)]
    return Reproduction(args, copies, resolved_workload(inputs, name, description))


def _profile_numbers(path: Path) -> list[float]:
    """The 24 numbers of an --hourly-profile file as written (read_hourly_profile checked them)."""
    lines = (line.split("#", 1)[0] for line in path.read_text(encoding="utf-8").splitlines())
    return [float(p) for line in lines for p in line.replace(",", " ").split()]


def resolved_workload(inputs: Inputs, name: str | None, description: str | None) -> dict[str, Any]:
    """Every input the report used, resolved, as a workload file (`planner report inputs/workload.json`
    reads it back): flags and the file merged, defaults applied."""
    from planner.economics.bounds import checked
    from planner.economics.workload import DEFAULT_PEAK_TO_MEAN
    from planner.economics.workload_file import WorkloadFile

    w, f, pol, sw, v = inputs.workload, inputs.filters, inputs.policy, inputs.switching, inputs.values
    # The numbers as given, not the normalised weights: normalised again they would drift by an ulp.
    traffic: dict[str, Any] = {"growth_per_month": w.growth_per_month}
    if v.get("hourly_profile"):
        traffic["hourly_weights"] = _profile_numbers(Path(v["hourly_profile"]))
    elif v.get("hourly_weights"):
        traffic["hourly_weights"] = list(v["hourly_weights"])
    else:
        traffic["peak_to_mean"] = checked(v, "peak_to_mean", DEFAULT_PEAK_TO_MEAN)
    candidates: dict[str, Any] = {
        "models": list(f.models),
        "quants": list(f.quants),
        "pricing": list(f.pricing),
        "engine": pol.engine,
    }
    if f.gpus:
        candidates["gpus"] = list(f.gpus)
    if f.providers:
        candidates["providers"] = list(f.providers)
    if not inputs.include_hosted:  # named APIs only; without the key the hosted versions are added
        candidates["apis"] = list(inputs.apis)
    fleet: dict[str, Any] = {
        "target_utilization": pol.target_utilization,
        "min_replicas": pol.min_replicas,
        "ops_usd_per_month": pol.ops_usd_per_month,
        "autoscale": pol.autoscale,
        "spot_interruption_allowance": pol.spot_allowance,
    }
    if pol.owned:
        terms = next(iter(pol.owned.values()))
        fleet["owned_usd_per_gpu"] = {gpu: t.usd_per_gpu for gpu, t in pol.owned.items()}
        for key in (
            "amortize_months",
            "usd_per_kwh",
            "pue",
            "hosting_usd_per_gpu_month",
            "power_share_of_tdp",
        ):
            fleet[key] = getattr(terms, key)
    payload: dict[str, Any] = {
        "schema_version": 1,
        "name": name,
        "description": description,
        "volume": {
            "tokens_per_day": w.tokens_per_day,
            "input_tokens": int(w.input_tokens),
            "output_tokens": int(w.output_tokens),
            "cached_input_share": w.cached_input_share,
            "batch_share": w.batch_share,
        },
        "traffic": traffic,
        "slo": {"ttft_ms": w.slo_ttft_ms, "tpot_ms": w.slo_tpot_ms},
        "candidates": candidates,
        "fleet": fleet,
        "tco": {"horizon_months": inputs.horizon_months, **vars(sw)},
    }
    payload = {k: val for k, val in payload.items() if val is not None}
    WorkloadFile.model_validate(payload)  # what is written must read back
    return payload


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
@click.option(
    "--catalog-digest",
    "expected_digest",
    metavar="DIGEST",
    help="Stop unless the catalogs in use have this digest (reproduce.sh passes the report's own).",
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
    expected_digest: str | None,
    **opts: Any,
) -> None:
    """Write a capacity report for a workload: the recommendation and break-evens first, then cost
    curves, fleets, performance, memory fit, sensitivity, TCO, size classes, quality on your cases
    (when gpu-bench eval records exist), and every assumption with its source. One self-contained
    index.html, report.md, the plots and every table as CSV, the inputs and reproduce.sh.

    Example: planner report examples/workload.yaml --out report/
    """
    from planner.commands.inputs import resolve
    from planner.perf.model import PerfModel

    started = time.perf_counter()
    app: AppContext = ctx.obj
    check_writable(out_dir, "--out", directory=True)
    if workload_arg is not None:
        if opts.get("workload_file"):
            raise PlannerError("give the workload file as the argument or as --workload, not both")
        opts["workload_file"] = workload_arg
    workload_path = workload_arg or opts.get("workload_file")
    given = given_params(ctx) | ({"workload_file"} if workload_arg is not None else set())
    inputs: Inputs = resolve(opts, given)
    if expected_digest and app.catalog.digest() != expected_digest:
        raise PlannerError(
            f"the catalogs changed since this report was made: their digest is {app.catalog.digest()}, "
            f"the report's {expected_digest} (inputs/catalog-digest.txt lists each file's hash then). To "
            "reproduce it exactly, restore those catalog files (or the planner version that bundled "
            "them); to regenerate it from today's catalogs, run ANY_CATALOG=1 sh reproduce.sh"
        )
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:  # plots import it only when they draw
        raise PlannerError("the report needs matplotlib: pip install 'selfhost-planner[report]'")
    from planner.report import plots as plot_module
    from planner.report.build import build_report_data
    from planner.report.document import write_report

    horizon, switching = inputs.horizon_months, inputs.switching
    name, description, spec_name = title or "Capacity report", "", None
    if workload_path:
        from planner.economics.workload_file import read_workload_file

        spec = read_workload_file(Path(workload_path))
        spec_name = spec.name
        name = title or (f"Capacity report: {spec.name}" if spec.name else name)
        description = spec.description or ""
    if quality_files:
        from planner.quality.inputs import read_quality_files

        quality_records = read_quality_files(quality_files)
    else:
        quality_records = list(app.catalog.quality)
    repro = reproduction(
        ctx, app, Path(workload_path) if workload_path else None, inputs, spec_name, description or None
    )
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
        repro.command,
        name,
        description,
        quality_records,
    )
    pngs = {key: png for key, fn in plot_module.PLOTS.items() if (png := fn(data)) is not None}
    files = write_report(data, out_dir, pngs, repro)
    note = " (API only: no self-hosted option meets the SLOs)" if data.no_self_hosted else ""
    click.echo(
        f"wrote {len(files)} files to {out_dir} in {time.perf_counter() - started:.1f} s{note}: "
        f"{out_dir / 'index.html'}, {out_dir / 'report.md'}"
    )
