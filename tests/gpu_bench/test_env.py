from __future__ import annotations

import json

from click.testing import CliRunner

from gpu_bench.cli import main
from gpu_bench.env import capture
from planner.records import Environment


def test_env_captures_this_machine_without_a_gpu() -> None:
    env = capture()
    assert isinstance(env, Environment)
    assert env.cpu_count
    assert env.cpu_count >= 1
    assert env.python
    assert env.libraries.get("selfhost-planner")
    assert len(env.gpus) == len(env.gpu_memory_gib)


def test_gpu_bench_env_json_and_table() -> None:
    result = CliRunner().invoke(main, ["env", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    Environment.model_validate(data)
    table = CliRunner().invoke(main, ["env"]).stdout
    assert "python" in table
    assert "gpus" in table
