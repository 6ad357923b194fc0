"""What every command shares: the app context (the catalog, loaded lazily) and common options."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from planner.errors import PlannerError
from planner.report.render import FORMATS

if TYPE_CHECKING:
    from planner.catalog import Catalog


class PlannerGroup(click.Group):
    """Turns PlannerError anywhere below into one clear line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except PlannerError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)


class AppContext:
    def __init__(self, catalog_dirs: Sequence[str]):
        self.catalog_dirs = list(catalog_dirs)
        self._catalog: Catalog | None = None

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            from planner.catalog import Catalog  # lazily, so `planner --help` stays instant

            self._catalog = Catalog.default(self.catalog_dirs)
        return self._catalog


format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output as a console table, JSON, CSV or Markdown.",
)
