"""Shared fixtures. Tests never touch the network or the user's own catalogs."""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
CATALOGS = ROOT / "catalogs"
REQUIRE_ALL_VAR = "SELFHOST_PLANNER_REQUIRE_ALL"


def require(module: str) -> ModuleType:
    """Import a declared dependency (an extra: matplotlib, fastapi, torch) a test needs.

    Skipped where it is absent, for a partial developer install; but scripts/test.sh (and so CI)
    sets SELFHOST_PLANNER_REQUIRE_ALL=1, and there a missing dependency is a failure, not a skip.
    """
    if os.environ.get(REQUIRE_ALL_VAR) == "1":
        return importlib.import_module(module)
    return pytest.importorskip(module)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SELFHOST_PLANNER_CATALOG", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def bundled_copy(tmp_path: Path) -> Path:
    """A private copy of the bundled catalogs that a test may break."""
    dest = tmp_path / "catalogs"
    shutil.copytree(CATALOGS, dest)
    return dest


@pytest.fixture
def invoke():
    """Run `planner ARGS` in-process; returns click's Result (exit_code, stdout, stderr)."""
    from planner.cli import main

    def run(*args: str, **kwargs):
        return CliRunner().invoke(main, list(args), catch_exceptions=False, **kwargs)

    return run
