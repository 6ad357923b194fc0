#!/usr/bin/env python3
"""Check that a distribution is really installed with its extras, not just importable from a checkout.

    python -P scripts/check_install.py --dist selfhost-planner --extras bench,serve,report,test \\
        --import torch,transformers --root .

Run it from outside the repository (or with -P): `import planner` from the repository folder
succeeds without any install, which is what this check must not be fooled by. It checks:
1. the distribution's metadata is installed (importlib.metadata);
2. every requirement it declares for those extras (and the extras those name, e.g.
   transformers[serving]) is installed at a version the requirement allows;
3. each --import module imports (a package can be installed and still broken);
4. with --root, the packages of the distribution are imported from that checkout (editable install).
Exit 0 when all holds; else 1, with one line per problem.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import PackageNotFoundError, distribution, version
from pathlib import Path


def requirement_problems(dist: str, extras: set[str], seen: set[str] | None = None) -> list[str]:
    """Declared requirements of `dist` (with `extras`) that are missing or at a version it excludes."""
    from packaging.requirements import Requirement

    seen = set() if seen is None else seen
    if dist.lower() in seen:
        return []
    seen.add(dist.lower())
    problems = []
    for raw in distribution(dist).requires or []:
        req = Requirement(raw)
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in extras or {""}):
            continue
        try:
            installed = version(req.name)
        except PackageNotFoundError:
            problems.append(f"{req.name} is not installed ({dist} requires {req})")
            continue
        if req.specifier and not req.specifier.contains(installed, prereleases=True):
            problems.append(f"{req.name} {installed} is installed; {dist} requires {req}")
        if req.extras:
            problems.extend(requirement_problems(req.name, set(req.extras), seen))
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dist", required=True, help="distribution name, e.g. selfhost-planner")
    parser.add_argument("--extras", default="", help="comma-separated extras that must be installed")
    parser.add_argument("--import", dest="modules", default="", help="comma-separated modules to import")
    parser.add_argument("--packages", default="", help="comma-separated packages that must come from --root")
    parser.add_argument("--root", type=Path, help="the checkout an editable install must point at")
    args = parser.parse_args(argv)

    try:
        found = version(args.dist)
    except PackageNotFoundError:
        print(f"error: {args.dist} is not installed in {sys.prefix} (pip install failed or was skipped)")
        return 1
    extras = {e for e in args.extras.split(",") if e}
    problems = requirement_problems(args.dist, extras)
    for module in [m for m in args.modules.split(",") if m]:
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - any failure to import is the finding
            problems.append(f"cannot import {module}: {type(exc).__name__}: {exc}")
    for package in [p for p in args.packages.split(",") if p]:
        try:
            where = Path(importlib.import_module(package).__file__ or "").resolve()
        except Exception as exc:  # noqa: BLE001
            problems.append(f"cannot import {package}: {type(exc).__name__}: {exc}")
            continue
        if args.root is not None and args.root.resolve() not in where.parents:
            problems.append(f"{package} is imported from {where}, not from {args.root.resolve()}")
    for problem in problems:
        print(f"error: {problem}")
    if problems:
        return 1
    print(f"==> installed: {args.dist} {found} with [{','.join(sorted(extras))}]; every requirement met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
