"""Bad input to every gpu-bench command: one clear line naming what, where and the fix, exit
code 2, no traceback, and nothing recorded (README: "Bad input ... gives one clear message")."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_bench.env import torch_cuda_devices
from tests.gpu_bench.conftest import gpu_bench

UNWRITABLE = "/proc/x/y.jsonl"  # /proc takes no new entries, even as root


def refused(result: object, expected: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    [line] = [x for x in result.stderr.splitlines() if x.strip()]  # one line
    assert line.startswith("error: ")


RUN = ("run", "--model", "phi-4", "--scale", "tiny", "--device", "cpu", "--batch-sizes", "1")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--tp", "2"), "--tp 2: tensor parallelism needs --engine vllm"),
        (("--device", "tpu"), "Invalid value for '--device': 'tpu' is not one of 'cuda', 'cpu'"),
        (("--device", "rocm"), "Invalid value for '--device'"),
        (("--out", UNWRITABLE), f"--out {UNWRITABLE}: cannot create anything in /proc"),
        (("--workdir", "/proc/x"), "--workdir /proc/x: cannot create anything in /proc"),
        (("--out", "/tmp"), "File '/tmp' is a directory"),
        (("--input-len", "-5"), "--input-len"),
        (("--output-len", "0"), "--output-len"),
        (("--batch-sizes", "1,x"), "--batch-sizes"),
        (("--quant", "int3"), "does not run quant 'int3'"),
        (("--weights", "/nonexistent"), "--weights /nonexistent: not a checkpoint directory"),
        (("--model", "llama-3-8b"), "did you mean"),
        (("--model", "/tmp"), "--model /tmp: a folder without config.json: not a checkpoint directory"),
        (("--weights", "/tmp"), "--weights /tmp: not a checkpoint directory"),
        (("--timeout", "0"), "Invalid value for '--timeout'"),  # every configuration a timeout
        (("--gpu-memory-utilization", "2"), "Invalid value for '--gpu-memory-utilization'"),
    ],
)
def test_run_refuses_bad_input_before_anything_runs(
    tmp_path: Path, args: tuple[str, ...], expected: str
) -> None:
    out = tmp_path / "r.jsonl"
    result = gpu_bench(*RUN, "--out", str(out), *args)
    refused(result, expected)
    assert not out.exists()


def test_run_on_cuda_is_refused_where_torch_sees_no_cuda_device(tmp_path: Path) -> None:
    seen = torch_cuda_devices()
    if seen is None or seen[0]:
        pytest.skip("needs torch without a visible CUDA device")
    out = tmp_path / "r.jsonl"
    result = gpu_bench(*RUN, "--device", "cuda", "--out", str(out))
    refused(result, "--device cuda: no CUDA device visible to torch (")
    assert "; use --device cpu" in result.stderr
    assert not out.exists()  # no error records that a later GPU run would skip


SWEEP = """\
schema_version: 1
defaults: {device: cpu, scale: tiny}
matrix: {models: [phi-4], batch_sizes: [1], input_lens: [8], output_lens: [2]}
"""


@pytest.mark.parametrize(
    ("text", "args", "expected"),
    [
        (SWEEP, ("--out", UNWRITABLE), f"--out {UNWRITABLE}: cannot create anything in /proc"),
        (SWEEP + f"out: {UNWRITABLE}\n", (), f"the sweep's out ({UNWRITABLE})"),
        (SWEEP, ("--workdir", "/proc/x"), "--workdir /proc/x: cannot create anything"),
        ("schema_version: 1\nmatrix: [oops\n", (), "sweep file"),
        ("- just a list\n", (), "sweep file"),
        (SWEEP, ("--timeout", "0"), "Invalid value for '--timeout'"),
    ],
)
def test_sweep_refuses_bad_input_before_anything_runs(
    tmp_path: Path, text: str, args: tuple[str, ...], expected: str
) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(text)
    result = gpu_bench("sweep", str(spec), *args)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "s.jsonl").exists()


def test_sweep_of_a_missing_file_is_one_line(tmp_path: Path) -> None:
    refused(gpu_bench("sweep", str(tmp_path / "nope.yaml")), "nope.yaml")


SERVE = ("serve", "--model", "x", "--concurrency", "1", "--num-requests", "2", "--input-len", "8")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("--endpoint", "127.0.0.1:8911/v1"),
            "--endpoint must be an http(s) URL such as http://127.0.0.1:8000/v1",
        ),
        (("--endpoint", "notaurl"), "got 'notaurl'"),
        (("--endpoint", "http://127.0.0.1:abc/v1"), "--endpoint must be an http(s) URL"),
        (("--endpoint", "http://127.0.0.1:1/v1"), "nothing answers at --endpoint http://127.0.0.1:1/v1 (GET"),
        (("--endpoint", "http://127.0.0.1:1/v1", "--out", UNWRITABLE), f"--out {UNWRITABLE}: cannot create"),
        (("--endpoint", "http://127.0.0.1:1/v1", "--raw-out", UNWRITABLE), f"--raw-out {UNWRITABLE}"),
        (("--endpoint", "http://127.0.0.1:1/v1", "--input-len", "-1"), "--input-len"),
        (("--endpoint", "http://127.0.0.1:1/v1", "--dataset", "jsonl:/nonexistent"), "/nonexistent"),
        (("--tokenizer", "/proc/self"), "--tokenizer /proc/self: no tokenizer loads from it"),
        (("--launch", "no-such-server-xyz"), "'no-such-server-xyz' is not a command on PATH"),
        (("--launch", 'vllm serve "m'), "cannot split it into words"),
        (("--launch", "true", "--ready-timeout", "-1"), "Invalid value for '--ready-timeout'"),
        (("--find-capacity", "--slo-ttft-ms", "-5"), "Invalid value for '--slo-ttft-ms'"),
        (
            ("--api-key-env", "GPU_BENCH_UNSET_KEY"),
            "--api-key-env GPU_BENCH_UNSET_KEY: the variable is not set",
        ),
    ],
)
def test_serve_refuses_bad_input_and_a_server_that_is_not_there(
    tmp_path: Path, args: tuple[str, ...], expected: str
) -> None:
    out = tmp_path / "s.jsonl"
    result = gpu_bench(*SERVE, "--out", str(out), *args)
    refused(result, expected)
    assert not out.exists()  # nothing recorded


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--endpoint", "notaurl"), "--endpoint must be an http(s) URL such as http://127.0.0.1:8000/v1"),
        (("--judge-model", "j", "--judge-endpoint", "x"), "--judge-endpoint must be"),
        (("--out", UNWRITABLE), f"--out {UNWRITABLE}: cannot create anything in /proc"),
    ],
)
def test_eval_refuses_bad_input(tmp_path: Path, args: tuple[str, ...], expected: str) -> None:
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"id": "a", "input": "hi", "expected": "hi"}\n')
    refused(gpu_bench("eval", str(cases), "--model", "m", *args), expected)


def test_eval_of_a_missing_cases_file_is_one_line(tmp_path: Path) -> None:
    refused(gpu_bench("eval", str(tmp_path / "nope.jsonl"), "--model", "m"), "nope.jsonl")
