"""What every command shares: the app context (the catalog, loaded lazily) and common options."""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

import click

from planner.errors import PlannerError
from planner.report.render import FORMATS

if TYPE_CHECKING:
    from planner.catalog import Catalog


class OneLineUsageError(click.ClickException):
    """click's usage error (usage, blank line, 'Try --help', the error: four lines) as one line."""

    exit_code = 2

    def __init__(self, exc: click.UsageError):
        command = exc.ctx.command_path if exc.ctx is not None else "planner"
        super().__init__(f"{exc.format_message().rstrip('.')}. Try '{command} --help'.")

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


def _one_line(exc: click.UsageError) -> click.ClickException:
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        return exc  # `planner catalog` alone: the help is the answer
    return OneLineUsageError(exc)


class PlannerGroup(click.Group):
    """Turns PlannerError anywhere below, and click's usage errors, into one clear line on
    stderr and exit code 2."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            raise _one_line(exc) from None

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except PlannerError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except click.UsageError as exc:
            raise _one_line(exc) from None


class LazyGroup(PlannerGroup):
    """A group whose subcommands are imported on first use (name -> (module, attribute))."""

    def __init__(
        self, *args: object, lazy_commands: dict[str, tuple[str, str]] | None = None, **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy_commands and name not in self.commands:
            import importlib

            module, attribute = self.lazy_commands[name]
            self.add_command(getattr(importlib.import_module(module), attribute), name)
        return super().get_command(ctx, name)


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
