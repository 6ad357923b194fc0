#!/usr/bin/env python3
"""Rebuild one provider's rows of catalogs/cloud_offers.yaml from a SkyPilot catalog vms.csv (offline).

    python scripts/refresh_cloud_offers.py vms.csv --provider aws \\
        --source-url https://github.com/skypilot-org/skypilot-catalog/blob/<commit>/catalogs/v7/aws/vms.csv \\
        --checked-at 2026-11-29 --merge [--keep-history]

Rows whose accelerator has no catalog GPU id, rows without a price and rows with an empty InstanceType
are skipped and counted on stderr.
Without --merge the output holds only this provider's rows; with --merge the provider's current rows in
--out are replaced and every other row is kept (--keep-history keeps replaced rows whose price changed,
marked history: true). Bad input exits 2 with one line naming the file, line and column.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

import yaml
from pydantic import ValidationError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner.catalog.files import CatalogFileError, read_yaml_rows  # noqa: E402
from planner.catalog.loader import describe_error, loc_text  # noqa: E402
from planner.records import CloudOffer  # noqa: E402

HEADER = """\
# Cloud GPU offers: what one instance with GPUs costs per hour (the WHOLE instance, not per GPU), by
# pricing model: on_demand, spot, reserved_1y, reserved_3y (absent: not published). Every row says where
# the price can be read (source_url) and the date the source shows it (checked_at); notes say when a
# per-GPU list price was multiplied out. history: true rows are old prices kept for reference, never
# used for planning. Schema: catalogs/schemas/cloud_offers.schema.json
# Refresh one provider from a SkyPilot catalog vms.csv, keeping every other row:
#   python scripts/refresh_cloud_offers.py vms.csv --provider aws --source-url URL \\
#       --checked-at YYYY-MM-DD --merge
"""

REQUIRED_COLUMNS = ("InstanceType", "AcceleratorName", "AcceleratorCount", "Price", "Region")

# SkyPilot AcceleratorName (upper-cased) -> catalog GPU id. A bare "A100" is resolved by GpuInfo memory
# (SkyPilot means the 40 GB part); an H100 is the PCIe part when the instance or GpuInfo says so (Lambda's
# gpu_1x_h100_pcie). Names not listed (T4, V100, L40, A6000, H100-NVL, GH200, B300, ...) have no catalog id.
_NAMES_BY_GPU = {
    "h200": "H200 H200-SXM",
    "h100-sxm": "H100 H100-SXM H100-80G-SXM5",
    "h100-pcie": "H100-PCIE H100-80G-PCIE H100-80G-PCIE-NVLINK",
    "a100-40gb": "A100 A100-40GB",
    "a100-80gb": "A100-80GB A100-80GB-SXM A100-80G-PCIE A100-80G-PCIE-NVLINK",
    "l40s": "L40S",
    "l4": "L4",
    "a10g": "A10G",
    "a10": "A10",
    "rtx-4090": "RTX4090 RTX-4090",
    "mi300x": "MI300X",
    "b200": "B200",
}
ACCELERATOR_TO_GPU: dict[str, str] = {
    name: gpu for gpu, names in _NAMES_BY_GPU.items() for name in names.split()
}
_GPU_NAME = re.compile(r"'Name':\s*'([^']*)'")
_GPU_MIB = re.compile(r"'SizeInMiB':\s*(\d+(?:\.\d+)?)")


class InputError(Exception):
    """Bad input: the message names the file, line and column."""


def catalog_gpu(accelerator: str, instance: str, gpu_info: str) -> str | None:
    """The catalog GPU id for a SkyPilot accelerator, or None when the catalog has no such GPU."""
    gpu = ACCELERATOR_TO_GPU.get(accelerator.upper())
    named = _GPU_NAME.search(gpu_info)
    info_name = named.group(1) if named else gpu_info  # RunPod v7 writes the bare name
    if gpu is None or re.search(r"\bNVL\b", info_name, re.IGNORECASE):
        return None  # H100 NVL (94 GB) has no catalog id
    if accelerator.upper() == "A100" and (mib := _GPU_MIB.search(gpu_info)):
        memory = float(mib.group(1))  # RunPod writes GB into the SizeInMiB field
        gpu = "a100-80gb" if (memory / 1024 if memory >= 1024 else memory) >= 60 else "a100-40gb"
    pcie = "pcie" in instance.lower() or "pcie" in info_name.lower()
    return "h100-pcie" if gpu == "h100-sxm" and pcie else gpu


def _number(raw: str, where: str, column: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"{where}: column {column}: cannot read {raw!r} as a number") from None
    if value < 0:
        raise InputError(f"{where}: column {column}: negative value {raw!r}")
    return value


def read_offers(path: Path, provider: str, source_url: str, checked_at: dt.date) -> list[CloudOffer]:
    """Parse vms.csv into offers, one per (instance, region) with the lowest price across its zones."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    skipped: Counter[str] = Counter()
    no_price = no_instance = 0
    best: dict[tuple[str, str], CloudOffer] = {}
    with handle:
        reader = csv.DictReader(handle)
        try:
            rows = list(reader)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError(f"{path}:{reader.line_num + 1}: not readable as CSV: {exc}") from None
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            header = ", ".join(reader.fieldnames or [])
            raise InputError(f"{path}:1: missing column {missing[0]!r} (header: {header})")
        for line, row in enumerate(rows, start=2):
            where = f"{path}:{line}"
            accelerator = (row.get("AcceleratorName") or "").strip()
            if not accelerator:
                continue  # a CPU-only instance
            instance, gpu_info = (row.get("InstanceType") or "").strip(), (row.get("GpuInfo") or "").strip()
            if not instance:
                no_instance += 1  # nothing to name the offer by
                continue
            gpu = catalog_gpu(accelerator, instance, gpu_info)
            count = _number(row["AcceleratorCount"] or "0", where, "AcceleratorCount")
            if gpu is None or not count or not count.is_integer():
                skipped[accelerator if gpu is None else f"{accelerator} (GPU count {count:g})"] += 1
                continue
            prices = {
                model: _number(raw, where, column)
                for model, column in (("on_demand", "Price"), ("spot", "SpotPrice"))
                if (raw := (row.get(column) or "").strip())
            }
            prices = {k: v for k, v in prices.items() if v > 0}
            if not prices:
                no_price += 1
                continue
            vcpus = _number(row.get("vCPUs") or "0", where, "vCPUs")
            memory = _number(row.get("MemoryGiB") or "0", where, "MemoryGiB")
            pcie_a100 = gpu == "a100-80gb" and "pcie" in f"{accelerator} {gpu_info} {instance}".lower()
            try:
                offer = CloudOffer(
                    provider=provider,
                    instance=instance,
                    region=(row.get("Region") or "").strip() or "global",
                    gpu=gpu,
                    gpu_count=int(count),
                    vcpus=int(vcpus) if vcpus and vcpus.is_integer() else None,
                    memory_gib=memory or None,
                    usd_per_hour=prices,
                    checked_at=checked_at,
                    source_url=source_url,
                    note=f"SkyPilot accelerator {accelerator}" + ("; PCIe form factor" if pcie_a100 else ""),
                )
            except ValidationError as exc:
                err = exc.errors()[0]
                raise InputError(f"{where}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
            old = best.setdefault((offer.instance, offer.region), offer)
            for model in ("on_demand", "spot"):  # zones of one region: the cheapest zone's price
                ours, theirs = getattr(offer.usd_per_hour, model), getattr(old.usd_per_hour, model)
                if ours is not None and (theirs is None or ours < theirs):
                    setattr(old.usd_per_hour, model, ours)
    if skipped:
        listed = ", ".join(f"{name} x{n}" for name, n in sorted(skipped.items()))
        print(f"skipped {sum(skipped.values())} rows with no catalog GPU id: {listed}", file=sys.stderr)
    if no_price:
        print(f"skipped {no_price} rows without a price", file=sys.stderr)
    if no_instance:
        print(f"skipped {no_instance} rows with an empty InstanceType", file=sys.stderr)
    return sorted(best.values(), key=lambda o: (o.instance, o.region))


def load_existing(path: Path) -> list[CloudOffer]:
    """The offers already in --out, validated as the planner validates them (strict, with lines)."""
    if not path.exists():
        return []
    try:
        header, rows = read_yaml_rows(path, "offers")
    except CatalogFileError as exc:
        raise InputError(f"{exc}") from None
    problems: list[str] = []
    if header.get("schema_version") != 1:
        problems.append(f"{path}:1: schema_version: expected 1, got {header.get('schema_version')!r}")
    offers = []
    for row in rows:
        if "__not_a_mapping__" in row.data:
            problems.append(f"{path}: offers[{row.index}]: expected a mapping of fields")
            continue
        try:
            offers.append(CloudOffer.model_validate(row.data, strict=True))
        except ValidationError as exc:
            for err in exc.errors():
                loc, msg = describe_error(dict(err), CloudOffer)
                at = f"{path}:{row.line_of(loc)}" if row.line_of(loc) else str(path)
                problems.append(f"{at}: offers[{row.index}] {loc_text(loc)}: {msg}")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InputError(f"not a valid cloud offers file: {problems[0]}{more}")
    return offers


def merge(
    existing: list[CloudOffer], new: list[CloudOffer], provider: str, keep_history: bool
) -> list[CloudOffer]:
    """Replace the provider's current rows; keep history rows and every other provider's rows."""
    fresh = {(o.instance, o.region): o for o in new}
    kept = [o for o in existing if o.provider != provider or o.history]
    for old in existing:
        if old.provider != provider or old.history or not keep_history:
            continue
        replacement = fresh.get((old.instance, old.region))
        if replacement is not None and replacement.usd_per_hour != old.usd_per_hour:
            kept.append(old.model_copy(update={"history": True}))
    rows = {o.key: o for o in kept + new}  # an identical history row already kept is not duplicated
    return list(rows.values())


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)  # lists indented under their key, as in models.yaml

    def ignore_aliases(self, data: object) -> bool:
        return True  # repeated dates stay dates, not &id001 anchors


def existing_header(path: Path) -> str | None:
    """The comment block at the top of --out (what it says about its sources survives a refresh)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except OSError:
        return None
    head = "".join(line for line in _leading_comments(lines))
    return head or None


def _leading_comments(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        if not line.startswith("#"):
            break
        out.append(line)
    return out


def dump_offers(offers: list[CloudOffer], header: str = HEADER) -> str:
    """The catalog file text: header, schema_version, offers sorted by provider, instance, region."""
    ordered = sorted(offers, key=lambda o: (o.provider, o.instance, o.region, o.history, o.checked_at))
    rows = [o.model_dump(mode="python", exclude_none=True) for o in ordered]
    for row in rows:
        if not row["history"]:
            del row["history"]  # written only where true
    data = {"schema_version": 1, "offers": rows}
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=4096)
    body = body.replace("\n  - provider:", "\n\n  - provider:")  # a blank line between offers
    return header + body.replace("offers:\n\n", "offers:\n", 1)


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("vms_csv", type=Path, help="a SkyPilot catalog vms.csv")
    parser.add_argument("--provider", required=True, help="catalog provider id, e.g. aws, runpod")
    parser.add_argument("--source-url", required=True, help="where the prices can be read (pin a commit)")
    parser.add_argument("--checked-at", required=True, type=dt.date.fromisoformat, help="YYYY-MM-DD")
    parser.add_argument("--out", type=Path, default=ROOT / "catalogs" / "cloud_offers.yaml")
    parser.add_argument("--merge", action="store_true", help="replace only this provider's rows in --out")
    parser.add_argument("--keep-history", action="store_true", help="with --merge: keep changed prices")
    args = parser.parse_args(argv)
    try:
        new = read_offers(args.vms_csv, args.provider, args.source_url, args.checked_at)
        existing = load_existing(args.out)
        if args.merge:
            offers = merge(existing, new, args.provider, args.keep_history)
        else:
            others = sum(1 for o in existing if o.provider != args.provider)
            if others:
                raise InputError(
                    f"{args.out}: has {others} rows of other providers; use --merge to keep them"
                )
            offers = new
        atomic_write(args.out, dump_offers(offers, existing_header(args.out) or HEADER))
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {len(new)} {args.provider} offers, {len(offers)} rows in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
