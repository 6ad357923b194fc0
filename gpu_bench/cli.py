"""`gpu-bench`: measure engines and servers, write MeasurementRecords. Heavy imports stay in engines/."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from gpu_bench import __version__
from planner.commands.common import PlannerGroup, format_option
from planner.report.render import render_mapping


@click.group(
    cls=PlannerGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(__version__, prog_name="gpu-bench")
def main() -> None:
    """Measure throughput, latency and VRAM of open models on this machine's hardware.

    Results are MeasurementRecords (JSONL) the planner reads from a catalog directory.
    """


@main.command("env")
@format_option
def env_cmd(fmt: str) -> None:
    """GPUs, driver, CUDA, library versions, CPU and memory of this machine (works without a GPU)."""
    from gpu_bench.env import capture

    env = capture()
    data = env.model_dump(mode="json")
    pairs = [
        ("hostname", env.hostname or "-"),
        ("os", env.os or "-"),
        ("python", env.python or "-"),
        ("cpu", f"{env.cpu or '-'} ({env.cpu_count} cores)"),
        ("memory", f"{env.memory_gib} GiB"),
        (
            "gpus",
            ", ".join(f"{n} ({m} GiB)" for n, m in zip(env.gpus, env.gpu_memory_gib, strict=False))
            or "none found (NVML and nvidia-smi see no GPU)",
        ),
        ("driver", env.driver or "-"),
        ("cuda", env.cuda or "-"),
    ] + [(name, version) for name, version in env.libraries.items()]
    click.echo(render_mapping(pairs, fmt, data))


def run(argv: Sequence[str] | None = None) -> int:
    try:
        main.main(args=list(argv) if argv is not None else sys.argv[1:], prog_name="gpu-bench")
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    raise SystemExit(run())
