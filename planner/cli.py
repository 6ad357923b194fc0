"""`planner`: the command-line entry point. Commands parse, call a pure function, and render.

Nothing heavy is imported here: torch, transformers, vLLM, bitsandbytes never; scipy and
matplotlib only inside the commands that need them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import click

from planner import __version__
from planner.commands.common import AppContext, LazyGroup

COMMANDS = {
    "breakeven": ("planner.commands.economics", "breakeven_cmd"),
    "capacity": ("planner.commands.economics", "capacity_cmd"),
    "cost": ("planner.commands.economics", "cost_cmd"),
    "tco": ("planner.commands.economics", "tco_cmd"),
    "fit": ("planner.commands.perf", "fit_cmd"),
    "estimate": ("planner.commands.perf", "estimate_cmd"),
    "validate": ("planner.commands.validate", "validate_cmd"),
    "catalog": ("planner.commands.catalog", "catalog"),
    "report": ("planner.commands.report", "report_cmd"),
    "route": ("planner.commands.route", "route_cmd"),
}
"""Each command's module is imported only when that command runs: `planner breakeven` never
pays for the catalog commands' imports."""


def catalog_options_first(args: Sequence[str]) -> list[str]:
    """`--catalog DIR` belongs to `planner` itself; accept it after the command too
    (`planner catalog list --catalog DIR`) by moving it in front. Nothing after `--` is touched."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg == "--catalog" and i + 1 < len(args):
            front += args[i : i + 2]
            i += 2
            continue
        (front if arg.startswith("--catalog=") else rest).append(arg)
        i += 1
    return front + rest


class MainGroup(LazyGroup):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, catalog_options_first(args))


@click.group(
    cls=MainGroup,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--catalog",
    "catalog_dirs",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A catalog directory layered over the bundled one (repeatable; before or after the command); "
    "also $SELFHOST_PLANNER_CATALOG.",
)
@click.version_option(__version__, prog_name="planner")
@click.pass_context
def main(ctx: click.Context, catalog_dirs: tuple[Path, ...]) -> None:
    """Self-host an open LLM or buy API tokens? Size the GPU fleet and find the break-even.

    Every number is labelled measured, published or estimated, with its source and date.
    """
    ctx.obj = AppContext([str(d) for d in catalog_dirs])


def run(argv: Sequence[str] | None = None) -> int:
    """Console-script entry: returns the exit code instead of raising (testable as cli_logic(argv))."""
    try:
        main.main(
            args=list(argv) if argv is not None else sys.argv[1:], prog_name="planner", standalone_mode=True
        )
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    raise SystemExit(run())
