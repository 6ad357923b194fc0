"""Sweep files: the matrix and every include entry checked at read time (file:line: field:
problem, all of them at once), defaults that agree with `gpu-bench run`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gpu_bench.sweep import expand, read_sweep
from planner.errors import PlannerError
from tests.gpu_bench.conftest import gpu_bench

HEAD = """\
schema_version: 1
defaults: {device: cpu, scale: tiny}
matrix:
  models: [llama-3.1-8b-instruct]
  batch_sizes: [1]
  input_lens: [16]
  output_lens: [4]
"""


AT_LEAST_1 = "Input should be greater than or equal to 1 (got 0)"


def sweep_file(tmp_path: Path, body: str, head: str = HEAD) -> Path:
    path = tmp_path / "s2.yaml"
    path.write_text(head + textwrap.dedent(body))
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(PlannerError) as info:
        read_sweep(path)
    first, *lines = str(info.value).splitlines()
    assert first == "the sweep file has problems:"
    return [line.strip() for line in lines]


def test_include_entries_are_checked_like_the_matrix_and_every_problem_is_listed(tmp_path: Path) -> None:
    path = sweep_file(
        tmp_path,
        """\
        include:
          - {model: phi-4, quant: int3}
          - {model: phi-4, dtype: int3}
          - {model: phi-4, batch_sizes: [0]}
          - {model: phi-4, qant: bnb-nf4}
        """,
    )
    found = problems(path)
    assert len(found) == 4, found
    assert found[0].startswith(f"{path}:9: include[0].quant: Input should be 'none'")
    assert "(got 'int3')" in found[0]
    assert found[1].startswith(f"{path}:10: include[1].dtype: Input should be 'bf16', 'fp16' or 'fp32'")
    assert found[2] == f"{path}:11: include[2].batch_sizes[0]: {AT_LEAST_1}"
    assert found[3] == f"{path}:12: include[3].qant: unknown field 'qant'; did you mean 'quant'?"


def test_the_matrix_refuses_a_zero_batch_too(tmp_path: Path) -> None:
    head = HEAD.replace("batch_sizes: [1]", "batch_sizes: [1, 0]")
    [line] = problems(sweep_file(tmp_path, "", head))
    assert line.endswith(f":5: matrix.batch_sizes[1]: {AT_LEAST_1}")


def test_dry_run_refuses_a_bad_include_with_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    path = sweep_file(tmp_path, "include:\n  - {model: phi-4, quant: int3, batch_sizes: [2]}\n")
    for extra in (("--dry-run",), ()):
        result = gpu_bench("sweep", str(path), *extra)
        assert result.returncode == 2, result.stderr
        assert "include[0].quant" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "s2.jsonl").exists()


def test_tensor_parallelism_needs_vllm_in_defaults_and_includes(tmp_path: Path) -> None:
    path = sweep_file(
        tmp_path,
        """\
        include:
          - {model: phi-4, tp: 2}
          - {model: phi-4, tp: 2, engine: vllm}
        """,
    )
    [line] = problems(path)
    assert line.startswith(f"{path}:9: include[0].tp: tensor parallelism needs engine vllm")
    head = HEAD.replace("scale: tiny}", "scale: tiny, tp: 2}")
    [line] = problems(sweep_file(tmp_path, "", head))
    assert ":2: defaults.tp: tensor parallelism needs engine vllm" in line
    assert line.endswith("matrix.engines has transformers")


def test_an_unknown_model_is_refused_with_close_matches(tmp_path: Path) -> None:
    head = HEAD.replace("[llama-3.1-8b-instruct]", "[llama-3-8b]")
    path = sweep_file(tmp_path, "include:\n  - {model: phi-5}\n", head)
    found = problems(path)
    assert found[0].startswith(f"{path}:4: matrix.models[0]: unknown model 'llama-3-8b'; did you mean")
    assert found[1].startswith(f"{path}:9: include[0].model: unknown model 'phi-5'; did you mean 'phi-4'")


def test_weights_that_are_not_a_checkpoint_are_refused_once(tmp_path: Path) -> None:
    head = HEAD.replace("models: [llama-3.1-8b-instruct]", "models: [llama-3.1-8b-instruct, phi-4]")
    head = head.replace("scale: tiny}", f"scale: tiny, weights: {tmp_path}}}")
    found = problems(sweep_file(tmp_path, "include:\n  - {model: phi-4, weights: /nonexistent}\n", head))
    assert found == [
        f"{tmp_path / 's2.yaml'}:2: defaults.weights: '{tmp_path}': not a checkpoint directory "
        "(a folder with config.json), nor dummy",
        f"{tmp_path / 's2.yaml'}:9: include[0].weights: '/nonexistent': not a checkpoint directory "
        "(a folder with config.json), nor dummy",
    ]


def test_a_misspelt_exclude_field_is_refused_instead_of_excluding_nothing(tmp_path: Path) -> None:
    [line] = problems(sweep_file(tmp_path, "exclude:\n  - {modle: llama-3.1-8b-instruct}\n"))
    assert line.endswith(":9: exclude[0].modle: unknown field 'modle'; did you mean 'model'?")


def test_unset_dtype_is_fp32_on_cpu_and_bf16_on_cuda_as_in_run(tmp_path: Path) -> None:
    path = sweep_file(
        tmp_path,
        """\
        include:
          - {model: phi-4, device: cuda}
          - {model: phi-4, dtype: bf16}
          - {model: phi-4, quant: fp8, batch_sizes: [2, 4]}
        exclude:
          - {model: phi-4, batch_size: 4}
        """,
    )
    got = [(c.model, c.quant, c.device, c.dtype, c.batch_size) for c in expand(read_sweep(path))]
    assert got == [
        ("llama-3.1-8b-instruct", "none", "cpu", "fp32", 1),
        ("phi-4", "none", "cuda", "bf16", 1),
        ("phi-4", "none", "cpu", "bf16", 1),
        ("phi-4", "fp8", "cpu", "fp32", 2),  # valid, cannot run in transformers: an error record
    ]


def test_a_device_other_than_cuda_or_cpu_is_refused(tmp_path: Path) -> None:
    [line] = problems(sweep_file(tmp_path, "", HEAD.replace("device: cpu", "device: tpu")))
    assert ":2: defaults.device: Input should be 'cuda' or 'cpu' (got 'tpu')" in line


def test_cuda_configurations_are_refused_where_torch_sees_no_cuda_device(tmp_path: Path) -> None:
    from gpu_bench.env import torch_cuda_devices

    seen = torch_cuda_devices()
    if seen is None or seen[0]:
        pytest.skip("needs torch without a visible CUDA device")
    path = sweep_file(tmp_path, "include:\n  - {model: phi-4, device: cuda}\n")
    result = gpu_bench("sweep", str(path), "--workdir", str(tmp_path / "work"))
    assert result.returncode == 2, result.stderr
    assert f"{path}: device cuda: no CUDA device visible to torch" in result.stderr
    assert "set device: cpu" in result.stderr
    assert not (tmp_path / "s2.jsonl").exists()  # nothing recorded: a GPU run later is not skipped
