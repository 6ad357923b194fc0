"""scripts/refresh_cloud_offers.py run as a user runs it, on small vms.csv files in SkyPilot's format."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from planner.records import CloudOffersFile

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "refresh_cloud_offers.py"
SOURCE = "https://github.com/skypilot-org/skypilot-catalog/blob/abc123/catalogs/v7/aws/vms.csv"


def _gpu_info(name: str, count: int, mib: int) -> str:
    return (
        f"\"{{'Gpus': [{{'Name': '{name}', 'Manufacturer': 'NVIDIA', 'Count': {count}, "
        f"'MemoryInfo': {{'SizeInMiB': {mib}}}}}], 'TotalGpuMemoryInMiB': {count * mib}}}\""
    )


# The column order of skypilot-catalog catalogs/v7/aws/vms.csv (AvailabilityZone included).
_COMMON = "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB"
AWS_HEADER = f"{_COMMON},GpuInfo,Price,SpotPrice,Region,AvailabilityZone"
AWS_ROWS = [
    "m5.large,,,2.0,8.0,,0.096,0.040000,us-east-1,use1-az1",
    f"p5.48xlarge,H100,8.0,192.0,2048.0,{_gpu_info('H100', 8, 81920)},55.04,21.500000,us-east-1,use1-az2",
    f"p5.48xlarge,H100,8.0,192.0,2048.0,{_gpu_info('H100', 8, 81920)},55.04,20.500000,us-east-1,use1-az4",
    f"p4d.24xlarge,A100,8.0,96.0,1152.0,{_gpu_info('A100', 8, 40960)},21.957642,,us-east-1,use1-az1",
    f"p4de.24xlarge,A100-80GB,8.0,96.0,1152.0,{_gpu_info('A100', 8, 81920)},27.44705,,us-east-1,use1-az1",
    f"g6e.xlarge,L40S,1.0,4.0,32.0,{_gpu_info('L40S', 1, 46068)},1.861,0.700000,us-east-1,use1-az1",
    f"g4dn.xlarge,T4,1.0,4.0,16.0,{_gpu_info('T4', 1, 15360)},0.526,0.200000,us-east-1,use1-az1",
    f"g4dn.2xlarge,T4,1.0,8.0,32.0,{_gpu_info('T4', 1, 15360)},0.752,0.300000,us-east-1,use1-az1",
    f"g5.xlarge,A10G,1.0,4.0,16.0,{_gpu_info('A10G', 1, 24576)},,,us-east-1,use1-az1",
]

# catalogs/v8/runpod/vms.csv: GpuInfo last, and GB written into the SizeInMiB field.
RUNPOD_HEADER = f"{_COMMON},Region,SpotPrice,Price,AvailabilityZone,GpuInfo"
RUNPOD_ROWS = [
    f"1x_A100-80GB_SECURE,A100-80GB,1.0,8.0,117.0,US,1.39,1.64,US-CA-1,{_gpu_info('A100 PCIe', 1, 80)}",
    f"1x_H100-SXM_SECURE,H100-SXM,1.0,16.0,125.0,US,,2.99,US-TX-3,{_gpu_info('H100 SXM', 1, 80)}",
    f"1x_H100-NVL_SECURE,H100-NVL,1.0,16.0,94.0,US,,2.79,US-TX-3,{_gpu_info('H100 NVL', 1, 94)}",
    f"1x_H100_COMMUNITY,H100,1.0,16.0,125.0,US,,1.99,US-TX-3,{_gpu_info('H100 PCIe', 1, 80)}",
]


def _write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _refresh(csv: Path, out: Path, provider: str = "aws", *extra: str) -> subprocess.CompletedProcess[str]:
    return _run(
        csv,
        "--provider",
        provider,
        "--source-url",
        SOURCE,
        "--checked-at",
        "2026-11-29",
        "--out",
        out,
        *extra,
    )


def _offers(out: Path) -> dict[tuple[str, str, bool], object]:
    catalog = CloudOffersFile.model_validate(yaml.safe_load(out.read_text(encoding="utf-8")))
    return {(o.provider, o.instance, o.history): o for o in catalog.offers}


def test_maps_skypilot_accelerators_to_catalog_gpu_ids(tmp_path: Path) -> None:
    out = tmp_path / "offers.yaml"
    result = _refresh(_write(tmp_path / "vms.csv", AWS_HEADER, AWS_ROWS), out)
    assert result.returncode == 0, result.stderr
    offers = _offers(out)
    assert offers["aws", "p5.48xlarge", False].gpu == "h100-sxm"
    assert offers["aws", "p4d.24xlarge", False].gpu == "a100-40gb"  # bare A100 with 40 GiB
    assert offers["aws", "p4de.24xlarge", False].gpu == "a100-80gb"
    assert offers["aws", "g6e.xlarge", False].gpu == "l40s"
    p5 = offers["aws", "p5.48xlarge", False]
    assert (p5.gpu_count, p5.vcpus, p5.memory_gib, p5.region) == (8, 192, 2048.0, "us-east-1")
    assert p5.source_url == SOURCE
    assert str(p5.checked_at) == "2026-11-29"


def test_bare_a100_resolved_by_gpu_memory(tmp_path: Path) -> None:
    rows = [
        f"a2-ultragpu-1g,A100,1.0,12.0,170.0,{_gpu_info('A100', 1, 81920)},5.0688,,us-central1,us-central1-a"
    ]
    out = tmp_path / "offers.yaml"
    assert _refresh(_write(tmp_path / "vms.csv", AWS_HEADER, rows), out, "gcp").returncode == 0
    assert _offers(out)["gcp", "a2-ultragpu-1g", False].gpu == "a100-80gb"


def test_runpod_format_pcie_and_nvl(tmp_path: Path) -> None:
    out = tmp_path / "offers.yaml"
    result = _refresh(_write(tmp_path / "vms.csv", RUNPOD_HEADER, RUNPOD_ROWS), out, "runpod")
    assert result.returncode == 0, result.stderr
    offers = _offers(out)
    a100 = offers["runpod", "1x_A100-80GB_SECURE", False]
    assert a100.gpu == "a100-80gb"
    assert "PCIe" in (a100.note or "")
    assert offers["runpod", "1x_H100-SXM_SECURE", False].gpu == "h100-sxm"
    assert offers["runpod", "1x_H100_COMMUNITY", False].gpu == "h100-pcie"  # GpuInfo says PCIe
    assert ("runpod", "1x_H100-NVL_SECURE", False) not in offers  # H100 NVL has no catalog id
    assert "H100-NVL x1" in result.stderr


def test_skipped_accelerators_and_missing_prices_are_reported_on_stderr(tmp_path: Path) -> None:
    out = tmp_path / "offers.yaml"
    result = _refresh(_write(tmp_path / "vms.csv", AWS_HEADER, AWS_ROWS), out)
    assert result.returncode == 0
    assert "skipped 2 rows with no catalog GPU id: T4 x2" in result.stderr
    assert "skipped 1 rows without a price" in result.stderr
    offers = _offers(out)
    assert not any(key[1].startswith(("g4dn", "m5", "g5")) for key in offers)


def test_spot_price_is_the_cheapest_zone_and_absent_spot_stays_absent(tmp_path: Path) -> None:
    out = tmp_path / "offers.yaml"
    assert _refresh(_write(tmp_path / "vms.csv", AWS_HEADER, AWS_ROWS), out).returncode == 0
    offers = _offers(out)
    assert offers["aws", "p5.48xlarge", False].usd_per_hour.spot == 20.5
    assert offers["aws", "p5.48xlarge", False].usd_per_hour.on_demand == 55.04
    assert offers["aws", "p4d.24xlarge", False].usd_per_hour.spot is None


def test_merge_replaces_only_this_provider_and_keeps_the_others(tmp_path: Path) -> None:
    out = tmp_path / "offers.yaml"
    assert (
        _refresh(_write(tmp_path / "runpod.csv", RUNPOD_HEADER, RUNPOD_ROWS), out, "runpod").returncode == 0
    )
    old_aws = [
        AWS_HEADER,
        f"p5.48xlarge,H100,8.0,192.0,2048.0,{_gpu_info('H100', 8, 81920)},98.32,,us-east-1,use1-az2",
        f"p3.2xlarge,V100,1.0,8.0,61.0,{_gpu_info('V100', 1, 16384)},3.06,,us-east-1,use1-az2",
        f"g6.xlarge,L4,1.0,4.0,16.0,{_gpu_info('L4', 1, 23034)},0.9,,us-east-1,use1-az2",
    ]
    assert (
        _refresh(_write(tmp_path / "old.csv", old_aws[0], old_aws[1:]), out, "aws", "--merge").returncode == 0
    )
    result = _refresh(_write(tmp_path / "vms.csv", AWS_HEADER, AWS_ROWS), out, "aws", "--merge")
    assert result.returncode == 0, result.stderr
    offers = _offers(out)
    assert sum(1 for key in offers if key[0] == "runpod") == 3
    assert offers["aws", "p5.48xlarge", False].usd_per_hour.on_demand == 55.04
    assert ("aws", "g6.xlarge", False) not in offers  # gone from the new file
    assert not any(key[2] for key in offers)  # no --keep-history: no history rows


def test_keep_history_marks_changed_prices_as_history(tmp_path: Path) -> None:
    out = tmp_path / "offers.yaml"
    old = [AWS_HEADER, f"p5.48xlarge,H100,8.0,192.0,2048.0,{_gpu_info('H100', 8, 81920)},98.32,,us-east-1,a"]
    args = ("--provider", "aws", "--source-url", SOURCE, "--checked-at", "2023-09-18", "--out", out)
    assert _run(_write(tmp_path / "old.csv", old[0], old[1:]), *args).returncode == 0
    new = _write(tmp_path / "vms.csv", AWS_HEADER, [*AWS_ROWS[1:3], AWS_ROWS[5]])  # p5 cheaper, g6e new
    result = _refresh(new, out, "aws", "--merge", "--keep-history")
    assert result.returncode == 0, result.stderr
    offers = _offers(out)
    history = offers["aws", "p5.48xlarge", True]
    assert history.usd_per_hour.on_demand == 98.32
    assert str(history.checked_at) == "2023-09-18"
    assert offers["aws", "p5.48xlarge", False].usd_per_hour.on_demand == 55.04
    assert ("aws", "g6e.xlarge", True) not in offers


def test_missing_column_exits_2_naming_file_line_and_column(tmp_path: Path) -> None:
    header = AWS_HEADER.replace(",Price,", ",Cost,")
    csv = _write(tmp_path / "vms.csv", header, AWS_ROWS[1:2])
    result = _refresh(csv, tmp_path / "offers.yaml")
    assert result.returncode == 2
    assert f"{csv}:1: missing column 'Price'" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "offers.yaml").exists()


def test_unreadable_price_exits_2_naming_file_line_and_column(tmp_path: Path) -> None:
    rows = [*AWS_ROWS[:2], AWS_ROWS[3].replace("21.957642", "n/a")]
    csv = _write(tmp_path / "vms.csv", AWS_HEADER, rows)
    result = _refresh(csv, tmp_path / "offers.yaml")
    assert result.returncode == 2
    assert f"{csv}:4: column Price: cannot read 'n/a'" in result.stderr
    assert "Traceback" not in result.stderr


def test_without_merge_refuses_to_drop_other_providers(tmp_path: Path) -> None:
    out = tmp_path / "offers.yaml"
    assert (
        _refresh(_write(tmp_path / "runpod.csv", RUNPOD_HEADER, RUNPOD_ROWS), out, "runpod").returncode == 0
    )
    before = out.read_text(encoding="utf-8")
    result = _refresh(_write(tmp_path / "vms.csv", AWS_HEADER, AWS_ROWS), out, "aws")
    assert result.returncode == 2
    assert "use --merge" in result.stderr
    assert out.read_text(encoding="utf-8") == before


def test_missing_input_file_exits_2(tmp_path: Path) -> None:
    result = _refresh(tmp_path / "nope.csv", tmp_path / "offers.yaml")
    assert result.returncode == 2
    assert "nope.csv: cannot read" in result.stderr


def test_an_invalid_date_in_the_existing_file_exits_2_with_its_line(tmp_path: Path) -> None:
    out = tmp_path / "offers.yaml"
    assert _refresh(_write(tmp_path / "vms.csv", AWS_HEADER, AWS_ROWS), out).returncode == 0
    text = out.read_text(encoding="utf-8")
    out.write_text(text.replace("checked_at: 2026-11-29", "checked_at: 2026-13-45", 1), encoding="utf-8")
    line = next(i for i, t in enumerate(out.read_text().splitlines(), 1) if "2026-13-45" in t)
    result = _refresh(_write(tmp_path / "vms.csv", AWS_HEADER, AWS_ROWS), out, "aws", "--merge")
    assert result.returncode == 2
    assert f"{out}:{line}: offers[0] checked_at: '2026-13-45' is not a valid date" in result.stderr
    assert "Traceback" not in result.stderr


def test_existing_file_with_strings_for_numbers_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "offers.yaml"
    assert _refresh(_write(tmp_path / "vms.csv", AWS_HEADER, AWS_ROWS), out).returncode == 0
    out.write_text(out.read_text().replace("gpu_count: 8", 'gpu_count: "8"', 1))
    result = _refresh(_write(tmp_path / "vms.csv", AWS_HEADER, AWS_ROWS), out, "aws", "--merge")
    assert result.returncode == 2
    assert "gpu_count: Input should be a valid integer" in result.stderr


def test_rows_with_an_empty_instance_type_are_skipped_and_counted(tmp_path: Path) -> None:
    rows = [*AWS_ROWS, f",H100,8.0,192.0,2048.0,{_gpu_info('H100', 8, 81920)},55.04,,us-east-1,use1-az2"]
    out = tmp_path / "offers.yaml"
    result = _refresh(_write(tmp_path / "vms.csv", AWS_HEADER, rows), out)
    assert result.returncode == 0, result.stderr
    assert "skipped 1 rows with an empty InstanceType" in result.stderr
    assert ("aws", "", False) not in _offers(out)


def test_the_existing_files_header_comment_survives_a_refresh(tmp_path: Path) -> None:
    out = tmp_path / "offers.yaml"
    assert _refresh(_write(tmp_path / "vms.csv", AWS_HEADER, AWS_ROWS), out).returncode == 0
    out.write_text("# Sourcing notes: reserved prices could not be sourced.\n" + out.read_text())
    assert _refresh(_write(tmp_path / "vms.csv", AWS_HEADER, AWS_ROWS), out, "aws", "--merge").returncode == 0
    assert out.read_text().startswith("# Sourcing notes: reserved prices could not be sourced.\n")
