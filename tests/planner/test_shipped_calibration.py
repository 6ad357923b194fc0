"""The calibration shipped in catalogs/ is the one the bundled catalogs and this code produce."""

from __future__ import annotations

import json

import pytest

from planner.catalog import Catalog
from planner.perf.model import SHIPPED_CALIBRATION, PerfModel, calibration_rows
from tests.conftest import CATALOGS


def test_shipped_calibration_is_current() -> None:
    shipped = json.loads((CATALOGS / SHIPPED_CALIBRATION).read_text())
    fresh = PerfModel(Catalog([CATALOGS]), use_cache=False)
    assert shipped["content_key"] == fresh.content_key(), "run python scripts/gen_calibration.py"
    rows = calibration_rows(fresh.calibrations())  # equal to the fit tolerance (another scipy may differ)
    assert [r["key"] for r in shipped["calibrations"]] == [r["key"] for r in rows]
    for got, want in zip(shipped["calibrations"], rows, strict=True):
        for name, value in want["efficiency"].items():
            assert got["efficiency"][name] == pytest.approx(value, rel=1e-3), (want["key"], name)


def test_a_fresh_install_uses_it_without_fitting(monkeypatch: pytest.MonkeyPatch) -> None:
    import planner.perf.calibrate as calibrate

    def no_fit(*args, **kwargs):
        raise AssertionError("fitted although the shipped calibration matches")

    monkeypatch.setattr(calibrate, "calibrate_with_bands", no_fit)
    perf = PerfModel(Catalog([CATALOGS]))  # HOME is a fresh tmp dir: no cache of its own
    assert perf.calibrations()


def test_other_records_recalibrate(tmp_path) -> None:
    base = Catalog([CATALOGS])
    record = next(r for r in base.measurements if r.gpu == "h200")
    user = tmp_path / "user"
    (user / "measurements").mkdir(parents=True)
    extra = record.model_copy(update={"id": record.id + "-mine"})
    (user / "measurements" / "mine.jsonl").write_text(extra.model_dump_json(exclude_none=True) + "\n")
    layered = PerfModel(Catalog([CATALOGS, user]))
    assert layered.content_key() != PerfModel(base).content_key()
    assert any(extra.id in c.record_ids for c in layered.calibrations().values())
