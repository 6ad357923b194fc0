"""scripts/check_install.py: an installation check that an importable checkout cannot fool."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_ALL_VAR, ROOT, require

SCRIPT = ROOT / "scripts" / "check_install.py"


def _check(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # -P and a cwd outside the checkout: what scripts/test.sh does.
    return subprocess.run(
        [sys.executable, "-P", str(SCRIPT), *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_a_distribution_that_is_not_installed_fails(tmp_path: Path) -> None:
    result = _check("--dist", "no-such-distribution-xyz", cwd=tmp_path)
    assert result.returncode == 1
    assert "no-such-distribution-xyz is not installed" in result.stdout


def test_a_module_that_does_not_import_fails(tmp_path: Path) -> None:
    result = _check("--dist", "pytest", "--import", "pytest,no_such_module_xyz", cwd=tmp_path)
    assert result.returncode == 1
    assert "cannot import no_such_module_xyz" in result.stdout
    assert "cannot import pytest" not in result.stdout


def test_an_installed_distribution_with_its_requirements_passes(tmp_path: Path) -> None:
    result = _check("--dist", "pytest", "--import", "pytest", cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert "every requirement met" in result.stdout


def test_a_package_from_elsewhere_than_the_root_fails(tmp_path: Path) -> None:
    result = _check("--dist", "pytest", "--packages", "pytest", "--root", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    assert "pytest is imported from" in result.stdout


def test_test_sh_keeps_pip_failures_and_checks_the_installed_distribution() -> None:
    text = (ROOT / "scripts" / "test.sh").read_text()
    assert "set -euo pipefail" in text
    assert "| grep -v '^WARNING: Location' || true\n" not in text  # swallowed pip's status
    assert "check_install.py" in text
    assert f"{REQUIRE_ALL_VAR}=1" in text


def test_require_skips_or_fails_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_ALL_VAR, raising=False)
    with pytest.raises(pytest.skip.Exception):
        require("no_such_module_xyz")
    monkeypatch.setenv(REQUIRE_ALL_VAR, "1")
    with pytest.raises(ModuleNotFoundError):
        require("no_such_module_xyz")
    assert require("json").dumps([]) == "[]"
