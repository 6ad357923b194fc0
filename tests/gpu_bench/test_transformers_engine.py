"""gpu-bench on CPU with real engines: tiny random Llama, Qwen, Mistral and Phi models in
transformers (fp32, bf16, bitsandbytes nf4 and int8), sweeps that fail on purpose, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from planner.catalog import Catalog
from planner.catalog.hf_config import architecture_from_config
from planner.perf.memory import weight_bytes
from planner.perf.model import PerfModel
from planner.records import MeasurementRecord
from tests.conftest import CATALOGS, ROOT
from tests.gpu_bench.conftest import gpu_bench

pytestmark = pytest.mark.slow


def records(path: Path) -> list[MeasurementRecord]:
    return [
        MeasurementRecord.model_validate_json(line) for line in path.read_text().splitlines() if line.strip()
    ]


SWEEP = """\
schema_version: 1
defaults: {{device: cpu, scale: tiny, dtype: fp32, repeats: 2, warmup: 1}}
matrix:
  models: [llama-3.1-8b-instruct]
  quants: [none]
  engines: [transformers]
  batch_sizes: [1, 4]
  input_lens: [24]
  output_lens: [12]
include:
  - {{model: llama-3.1-8b-instruct, dtype: bf16, batch_sizes: [2]}}
  - {{model: qwen2.5-7b-instruct, quant: bnb-nf4, batch_sizes: [2]}}
  - {{model: mistral-7b-instruct-v0.3, quant: bnb-int8, batch_sizes: [2]}}
  - {{model: phi-4, quant: bnb-nf4, double_quant: true, batch_sizes: [2]}}
{extra}
"""


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory, workdir: Path) -> Path:
    """One sweep over the four families and formats, plus two configurations that fail on purpose:
    a prompt longer than the model's context (an impossible size) and a quant the engine lacks."""
    base = tmp_path_factory.mktemp("sweep")
    extra = textwrap.dedent("""\
      - {model: llama-3.1-8b-instruct, input_len: 5000, batch_sizes: [1]}
      - {model: llama-3.1-8b-instruct, quant: fp8, batch_sizes: [1]}
    """)
    spec = base / "sweep.yaml"
    spec.write_text(SWEEP.format(extra=textwrap.indent(extra, "  ")))
    result = gpu_bench("sweep", str(spec), "--workdir", str(workdir))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ETA" in result.stderr  # progress with an ETA
    return base / "sweep.jsonl"


def test_every_family_and_format_runs_and_is_recorded(swept: Path) -> None:
    ok = [r for r in records(swept) if r.status == "ok"]
    seen = {(r.model, r.quant, r.double_quant) for r in ok}
    assert ("llama-3.1-8b-instruct", "fp32", None) in seen
    assert ("llama-3.1-8b-instruct", "bf16", None) in seen
    assert ("qwen2.5-7b-instruct", "bnb-nf4", False) in seen
    assert ("mistral-7b-instruct-v0.3", "bnb-int8", None) in seen
    assert ("phi-4", "bnb-nf4", True) in seen
    for r in ok:
        assert r.device == "cpu"
        assert r.gpu is None
        assert r.model_scale == "tiny"
        assert r.basis == "measured"
        assert r.weights == "dummy"
        assert r.env
        assert r.env.libraries.get("torch")
        assert r.output_tokens == 12
        assert r.output_tokens_source == "engine"
        assert not r.notes
        assert r.repeats == 2
        assert r.spread_pct is not None
        assert r.output_tokens_per_s > 0
        assert r.decode_tokens_per_s > 0
        assert r.ttft_ms.p50 > 0
        assert r.engine.name == "transformers"
        assert r.engine.version
    batch = {r.batch_size: r for r in ok if r.model == "llama-3.1-8b-instruct" and r.quant == "fp32"}
    assert set(batch) == {1, 4}


def test_failures_are_records_and_the_sweep_finishes(swept: Path) -> None:
    failed = [r for r in records(swept) if r.status != "ok"]
    assert len(failed) == 2
    too_long = next(r for r in failed if r.input_tokens == 5000)
    assert too_long.status == "error"
    assert too_long.error
    bad_quant = next(r for r in failed if r.quant == "fp8")
    assert "does not run quant 'fp8'" in bad_quant.error


def test_weights_memory_matches_the_planner_format_model(swept: Path, workdir: Path) -> None:
    """Real bitsandbytes quantization of the tiny models against planner/perf/memory.py."""
    for r in records(swept):
        if r.status != "ok" or r.quant not in ("bnb-nf4", "bnb-int8", "fp32"):
            continue
        family = Catalog([CATALOGS]).model(r.model).architecture.model_type
        cfg_path = next(
            p for p in workdir.glob("*/config.json") if json.loads(p.read_text())["model_type"] == family
        )
        arch, _ = architecture_from_config(json.loads(cfg_path.read_text()), cfg_path)
        parts = weight_bytes(arch, r.quant, bool(r.double_quant))
        predicted = parts.total
        if r.quant.startswith("bnb-") and r.engine.args["dtype"] == "fp32":
            # bitsandbytes leaves embeddings, lm_head, norms and biases in the load dtype: fp32 here.
            predicted += parts.embedding + parts.lm_head + parts.small
        assert r.weights_memory_gib * 1024**3 == pytest.approx(predicted, rel=0.03), (r.model, r.quant)


def test_records_validate_and_calibration_keeps_them_out_of_gpu_planning(swept: Path, tmp_path: Path) -> None:
    user = tmp_path / "user"
    (user / "measurements").mkdir(parents=True)
    (user / "measurements" / "cpu.jsonl").write_text(swept.read_text())
    cat = Catalog([CATALOGS, user])
    assert cat.validate() == []
    ids = {r.id for r in cat.measurements}
    assert {r.id for r in records(swept)} <= ids
    perf = PerfModel(cat, use_cache=False)
    assert not {r.id for r in perf.gpu_records()} & {r.id for r in records(swept)}  # device=cpu: refused
    ok = {r.id for r in records(swept) if r.status == "ok"}
    reasons = dict(perf.excluded())
    assert ok <= set(reasons)  # refused visibly, not silently: validate lists them with the reason
    assert all(reasons[i].startswith("device=cpu") for i in ok)


def test_run_prints_a_table_and_resumes(tmp_path: Path, workdir: Path) -> None:
    out = tmp_path / "run.jsonl"
    args = (
        "run",
        "--model",
        "llama-3.1-8b-instruct",
        "--scale",
        "tiny",
        "--batch-sizes",
        "1,2",
        "--input-len",
        "16",
        "--output-len",
        "8",
        "--repeats",
        "1",
        "--out",
        str(out),
        "--workdir",
        str(workdir),
    )
    first = gpu_bench(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "decode tok/s" in first.stdout
    assert "device=cpu" in first.stdout
    again = gpu_bench(*args)
    assert "resuming: 2 configuration(s) already recorded" in again.stderr
    assert len(records(out)) == 2


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--model", "llama-3-8b"), "did you mean"),
        (("--model", "phi-4", "--quant", "fp8"), "does not run quant 'fp8'"),
        (
            ("--model", "phi-4", "--quant", "awq-int4", "--engine", "vllm"),
            "needs a real quantized checkpoint",
        ),
        (("--model", "phi-4", "--batch-sizes", "0"), "--batch-sizes"),
        (
            ("--model", "phi-4", "--quant", "bnb-nf4", "--engine", "vllm", "--scale", "full"),
            "cannot run random dummy weights at full size",
        ),
    ],
)
def test_run_bad_input_exits_2(args: tuple[str, ...], expected: str) -> None:
    result = gpu_bench("run", "--scale", "tiny", "--device", "cpu", *args)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_package_skips_only_its_configurations(tmp_path: Path, workdir: Path) -> None:
    """vLLM is not installed here: its configuration is refused with the install line, nothing is
    recorded for it, the transformers one runs, and the exit code (2) says something waits."""
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    spec = tmp_path / "mixed.yaml"
    spec.write_text(
        "schema_version: 1\ndefaults: {device: cpu, scale: tiny, dtype: fp32, repeats: 1, warmup: 0}\n"
        "matrix: {models: [llama-3.1-8b-instruct], engines: [transformers, vllm], batch_sizes: [1], "
        "input_lens: [16], output_lens: [4]}\n"
    )
    first = gpu_bench("sweep", str(spec), "--workdir", str(workdir))
    assert first.returncode == 2, first.stderr[-2000:]
    [line] = [x for x in first.stderr.splitlines() if "not installed" in x]
    assert "with the vllm engine needs vllm (not installed)" in line
    assert "scripts/setup_vllm_cpu.sh" in line
    assert "1 configuration(s) skipped" in line
    [row] = records(tmp_path / "mixed.jsonl")
    assert row.engine.name == "transformers"
    assert row.status == "ok"
    again = gpu_bench("sweep", str(spec), "--workdir", str(workdir))  # still waiting: still exit 2
    assert again.returncode == 2
    assert "resuming: 1 configuration(s) already recorded" in again.stderr
    assert len(records(tmp_path / "mixed.jsonl")) == 1


def test_a_recorded_configuration_is_not_checked_for_packages(tmp_path: Path) -> None:
    """A configuration recorded already needs nothing installed: no complaint, exit 0."""
    from gpu_bench.env import capture
    from gpu_bench.results import failed_record
    from gpu_bench.store import RecordStore
    from gpu_bench.sweep import expand, read_sweep

    spec = tmp_path / "v.yaml"
    spec.write_text(
        "schema_version: 1\ndefaults: {device: cpu, scale: tiny, dtype: fp32}\n"
        "matrix: {models: [llama-3.1-8b-instruct], engines: [vllm], batch_sizes: [1], "
        "input_lens: [16], output_lens: [4]}\n"
    )
    [config] = expand(read_sweep(spec))
    RecordStore(tmp_path / "v.jsonl").append(
        failed_record(config, "oom", "recorded elsewhere", capture(), None)
    )
    result = gpu_bench("sweep", str(spec))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "not installed" not in result.stderr


def test_run_retry_failed_runs_recorded_errors_again(tmp_path: Path, workdir: Path) -> None:
    out = tmp_path / "r.jsonl"
    args = ("run", "--model", "llama-3.1-8b-instruct", "--scale", "tiny", "--batch-sizes", "1")
    args += ("--input-len", "5000", "--output-len", "4", "--out", str(out), "--workdir", str(workdir))
    first = gpu_bench(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    assert [r.status for r in records(out)] == ["error"]
    assert "resuming: 1" in gpu_bench(*args).stderr  # skipped: recorded
    again = gpu_bench(*args, "--retry-failed")
    assert "resuming" not in again.stderr
    assert [r.status for r in records(out)] == ["error", "error"]


def _procs_with(marker: str) -> list[int]:
    """Processes whose environment holds marker (the sweep's and its workers')."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                stat = (proc / "stat").read_text()
                if stat.rsplit(")", 1)[1].split()[0] != "Z":  # zombies hold nothing
                    found.append(int(proc.name))
        except OSError:
            continue
    return found


def _gone(marker: str, within_s: float = 15) -> bool:
    deadline = time.time() + within_s
    while _procs_with(marker) and time.time() < deadline:
        time.sleep(0.2)
    return not _procs_with(marker)


def test_sigint_keeps_finished_records_stops_the_worker_and_resumes_the_rest(
    tmp_path: Path, workdir: Path
) -> None:
    """Two groups: output 8 (batch 1, 2), then a slow one, output 1000 (batch 1, 2). Ctrl-C while
    the slow group's batch 2 runs, after its batch 1 finished in the same worker."""
    import uuid

    spec = tmp_path / "slow.yaml"
    spec.write_text(
        "schema_version: 1\ndefaults: {device: cpu, scale: tiny, dtype: fp32, repeats: 1, warmup: 0}\n"
        "matrix: {models: [llama-3.1-8b-instruct], batch_sizes: [1, 2], input_lens: [16], "
        "output_lens: [8, 1000]}\n"
    )
    out = tmp_path / "slow.jsonl"
    marker = f"GPU_BENCH_TEST_MARK={uuid.uuid4().hex}"
    name, value = marker.split("=")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", name: value}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gpu_bench.cli", "sweep", str(spec), "--workdir", str(workdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "running 4/4" in line:
            break
    assert "running 4/4" in seen[-1], "".join(seen)[-3000:]
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 130, rest[-2000:]
    assert "SIGINT: stopped; 3 new record(s) kept" in rest
    kept = records(out)
    assert sorted((r.output_tokens, r.batch_size) for r in kept) == [(8, 1), (8, 2), (1000, 1)]
    assert all(r.status == "ok" for r in kept)
    assert _gone(value), "a worker outlived the interrupted sweep"
    again = gpu_bench("sweep", str(spec), "--workdir", str(workdir))
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming: 3 configuration(s) already recorded" in again.stderr
    assert again.stderr.count("  running ") == 1
    final = records(out)
    assert [r.id for r in final[:3]] == [r.id for r in kept]
    assert (final[3].output_tokens, final[3].batch_size, final[3].status) == (1000, 2, "ok")


def test_sigterm_stops_the_sweep_and_its_worker_and_keeps_records(tmp_path: Path, workdir: Path) -> None:
    import uuid

    spec = tmp_path / "t.yaml"
    spec.write_text(
        "schema_version: 1\ndefaults: {device: cpu, scale: tiny, dtype: fp32, repeats: 1, warmup: 0}\n"
        "matrix: {models: [llama-3.1-8b-instruct], batch_sizes: [1, 2], input_lens: [16], "
        "output_lens: [1000]}\n"
    )
    value = uuid.uuid4().hex
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "GPU_BENCH_TEST_MARK": value}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gpu_bench.cli", "sweep", str(spec), "--workdir", str(workdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "running 2/2" in line:
            break
    proc.send_signal(signal.SIGTERM)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 143, rest[-2000:]
    assert "SIGTERM: stopped; 1 new record(s) kept" in rest
    assert [r.batch_size for r in records(tmp_path / "t.jsonl")] == [1]
    assert _gone(value)


def test_killed_sweep_resumes_without_losing_or_repeating(tmp_path: Path, workdir: Path) -> None:
    """SIGKILL for the sweep (nothing it could catch): its worker sees its stdin close and exits."""
    import uuid

    spec = tmp_path / "s.yaml"
    spec.write_text(
        "schema_version: 1\ndefaults: {device: cpu, scale: tiny, dtype: fp32, repeats: 1, warmup: 0}\n"
        "matrix: {models: [llama-3.1-8b-instruct, qwen3-8b], batch_sizes: [1, 2, 3], input_lens: [16], "
        "output_lens: [8]}\n"
    )
    out = tmp_path / "s.jsonl"
    value = uuid.uuid4().hex
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GPU_BENCH_TEST_MARK": value}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gpu_bench.cli", "sweep", str(spec), "--workdir", str(workdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 2):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep dies mid-run; its worker is in another group
    proc.wait()
    assert _gone(value), "the worker outlived the killed sweep"
    kept = records(out)
    assert 2 <= len(kept) < 6
    result = gpu_bench("sweep", str(spec), "--workdir", str(workdir))
    assert result.returncode == 0, result.stderr[-2000:]
    final = records(out)
    keys = [r.engine.args["config_key"] for r in final]
    assert len(keys) == len(set(keys)) == 6  # every configuration once
    assert [r.id for r in final[: len(kept)]] == [r.id for r in kept]  # nothing written before was lost


def _fake_python(tmp_path: Path, script: str) -> str:
    """A python that runs script instead of `-m gpu_bench.worker` (the runner's command)."""
    (tmp_path / "fake_worker.py").write_text(script)
    fake = tmp_path / "fakepython"
    fake.write_text(f"#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} {tmp_path / 'fake_worker.py'}\n")
    fake.chmod(0o755)
    return str(fake)


def _tiny_configs(*batches: int) -> list:
    from gpu_bench.config import RunConfig

    base = RunConfig(
        model="llama-3.1-8b-instruct",
        quant="none",
        engine="transformers",
        batch_size=1,
        input_len=16,
        output_len=8,
        scale="tiny",
        device="cpu",
        dtype="fp32",
        repeats=1,
        warmup=0,
    )
    return [RunConfig(**{**base.__dict__, "batch_size": b}) for b in batches]


CRASHING_WORKER = """\
import json, os, signal, sys
from gpu_bench.config import RunConfig
from gpu_bench.worker import run_job
job = json.loads(sys.stdin.readline())
for config in job["configs"]:
    if config["batch_size"] == 2:
        print("START " + RunConfig(**config).key(), flush=True)
        print("simulated crash", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGSEGV)
    run_job({**job, "configs": [config]})
"""


def test_a_segfaulting_worker_is_recorded_and_the_rest_runs(tmp_path: Path, workdir: Path) -> None:
    from gpu_bench.runner import Runner
    from gpu_bench.store import RecordStore

    store = RecordStore(tmp_path / "crash.jsonl")
    fake = _fake_python(tmp_path, CRASHING_WORKER)
    Runner(store, workdir, python=fake).run(_tiny_configs(1, 2, 3))  # the fake ignores -m
    by_batch = {r["batch_size"]: r for r in store.rows()}
    assert by_batch[1]["status"] == "ok"
    assert by_batch[3]["status"] == "ok"
    assert by_batch[2]["status"] == "error"
    assert "SIGSEGV" in by_batch[2]["error"]
    assert "simulated crash" in by_batch[2]["error"]


HANGING_WORKER = """\
import json, sys, time
from gpu_bench.config import RunConfig
from gpu_bench.worker import run_job
job = json.loads(sys.stdin.readline())
for config in job["configs"]:
    if config["batch_size"] == 2:
        print("START " + RunConfig(**config).key(), flush=True)
        time.sleep(3600)
    run_job({**job, "configs": [config]})
"""


def test_a_hung_configuration_is_a_timeout_error_not_an_oom(tmp_path: Path, workdir: Path) -> None:
    """The timeout is per configuration: batch 1 and 3 take their time, batch 2 never ends."""
    from gpu_bench.runner import Runner
    from gpu_bench.store import RecordStore

    store = RecordStore(tmp_path / "hang.jsonl")
    fake = _fake_python(tmp_path, HANGING_WORKER)
    started = time.monotonic()
    Runner(store, workdir, python=fake, timeout_s=20).run(_tiny_configs(1, 2, 3))
    by_batch = {r["batch_size"]: r for r in store.rows()}
    assert by_batch[1]["status"] == by_batch[3]["status"] == "ok"
    assert by_batch[2]["status"] == "error"
    assert by_batch[2]["error"].startswith("timed out after 20 s")
    assert time.monotonic() - started < 3 * 20  # not timeout x configurations


FAILING_WORKER = """\
import json, os, sys
import torch
from gpu_bench.engines import transformers_engine
from gpu_bench.worker import main
real = transformers_engine.measure

def measure(config, model_dir):
    with open(os.environ["PID_LOG"], "a") as log:
        log.write(f"{config.batch_size} {os.getpid()}\\n")
    if config.batch_size == 2:
        raise RuntimeError("CUDA error: an illegal memory access was encountered")
    if config.batch_size == 3:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    if config.batch_size == 5:
        raise ModuleNotFoundError("No module named 'flash_attn'")
    return real(config, model_dir)

transformers_engine.measure = measure
raise SystemExit(main())
"""


def test_an_error_gets_a_fresh_worker_and_an_oom_skips_larger_batches(tmp_path: Path, workdir: Path) -> None:
    """Batch 2 fails with a (simulated) CUDA error: its worker stops and a fresh one runs batch 3,
    which runs out of memory; batch 4 is then recorded oom without running."""
    from gpu_bench.runner import Runner
    from gpu_bench.store import RecordStore

    store = RecordStore(tmp_path / "fail.jsonl")
    pids = tmp_path / "pids.txt"
    fake = _fake_python(tmp_path, FAILING_WORKER)
    Runner(store, workdir, python=fake, env={"PID_LOG": str(pids)}).run(_tiny_configs(1, 2, 3, 4))
    by_batch = {r["batch_size"]: r for r in store.rows()}
    assert by_batch[1]["status"] == "ok"
    assert by_batch[2]["status"] == "error"
    assert "illegal memory access" in by_batch[2]["error"]
    assert by_batch[3]["status"] == "oom"
    assert by_batch[4]["status"] == "oom"
    assert by_batch[4]["error"].startswith("not run: batch 3 of the same configuration ran out of memory")
    assert by_batch[4]["engine"]["args"]["not_run"] is True
    ran = dict(line.split() for line in pids.read_text().splitlines())
    assert set(ran) == {"1", "2", "3"}  # batch 4 never reached the engine
    assert ran["1"] == ran["2"] != ran["3"]


def test_an_import_error_is_recorded_and_run_again_on_resume(tmp_path: Path, workdir: Path) -> None:
    from gpu_bench.runner import Runner
    from gpu_bench.store import RecordStore

    store = RecordStore(tmp_path / "env.jsonl")
    pids = tmp_path / "pids.txt"
    fake = _fake_python(tmp_path, FAILING_WORKER)
    runner = Runner(store, workdir, python=fake, env={"PID_LOG": str(pids)})
    runner.run(_tiny_configs(5))
    [row] = store.rows()
    assert row["status"] == "error"
    assert "No module named 'flash_attn'" in row["error"]
    assert row["engine"]["args"]["retryable"] is True
    assert store.done() == set()  # resume runs it again (after the install)
    runner.run(_tiny_configs(5))
    assert len(store.rows()) == 2


def _key(key: str) -> dict:
    return {"args": {"config_key": key}}


def test_old_import_error_records_are_retried_too(tmp_path: Path) -> None:
    from gpu_bench.store import RecordStore

    store = RecordStore(tmp_path / "old.jsonl")
    rows = [
        {
            "status": "error",
            "error": "ModuleNotFoundError: No module named 'x'",
            "engine": {"args": {"config_key": "a"}},
        },
        {"status": "error", "error": "ValueError: bad", "engine": {"args": {"config_key": "b"}}},
        {"status": "ok", "engine": {"args": {"config_key": "c"}}},
    ]
    for row in rows:
        store.append(row)
    assert store.done() == {"b", "c"}
    assert store.done(retry_failed=True) == {"c"}


def test_the_model_loads_once_for_all_batch_sizes(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gpu_bench.engines import transformers_engine
    from gpu_bench.weights import prepare_model_dir

    arch = Catalog([CATALOGS]).model("llama-3.1-8b-instruct").architecture
    model_dir = prepare_model_dir(arch, "tiny", workdir, "fp32")
    loads = []
    real = transformers_engine.load_model
    monkeypatch.setattr(
        transformers_engine, "load_model", lambda c, d: loads.append(c.batch_size) or real(c, d)
    )
    transformers_engine.release()
    try:
        first, second = (transformers_engine.measure(c, model_dir) for c in _tiny_configs(1, 3))
        assert loads == [1]
        assert first.weights_memory_gib == second.weights_memory_gib
        assert second.output_tokens == 8
        assert not second.notes
        from dataclasses import replace

        transformers_engine.measure(replace(_tiny_configs(1)[0], quant="bnb-nf4"), model_dir)
        assert loads == [1, 1]  # another quantization: another model
    finally:
        transformers_engine.release()


def test_tied_embeddings_stay_tied_in_random_full_size_weights(tmp_path: Path) -> None:
    """gemma-2 ties lm_head to the embeddings: the random (no checkpoint) path must hold one matrix."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from gpu_bench.config import RunConfig
    from gpu_bench.engines.transformers_engine import load_model
    from gpu_bench.weights import hf_config, param_bytes, tiny

    cfg = tiny(hf_config(Catalog([CATALOGS]).model("gemma-2-9b-it").architecture))
    assert cfg["tie_word_embeddings"] is True
    (tmp_path / "config.json").write_text(json.dumps(cfg))  # no weights: the full-size random path
    reference = AutoModelForCausalLM.from_config(AutoConfig.for_model(**cfg), dtype=torch.float32)
    for quant in ("none", "bnb-nf4"):
        config = RunConfig(
            model="gemma-2-9b-it",
            quant=quant,
            engine="transformers",
            batch_size=1,
            input_len=8,
            output_len=4,
            device="cpu",
            dtype="fp32",
        )
        model = load_model(config, tmp_path)
        assert model.lm_head.weight is model.get_input_embeddings().weight, quant
        assert model.lm_head.weight.device.type == "cpu"
        if quant == "none":
            assert param_bytes(model) == param_bytes(reference)


def test_produced_tokens_are_counted_up_to_an_early_eos() -> None:
    from gpu_bench.engines.common import count_notes, new_token_counts

    counts = new_token_counts([[5, 6, 7, 8], [5, 2, 2, 2], [2, 9, 9, 9]], eos_ids={2})
    assert counts == [4, 2, 1]
    [note] = count_notes(4, counts, prompts_sent=3)
    assert "the engine produced 1-4" in note
    assert count_notes(4, [4, 4, 4], prompts_sent=3) == []
    assert "returned 2 outputs" in count_notes(4, [4, 4], prompts_sent=3)[0]


def test_the_record_holds_the_measured_output_count() -> None:
    from gpu_bench.engines.common import Measurement
    from gpu_bench.env import capture
    from gpu_bench.results import ok_record

    [config] = _tiny_configs(2)
    m = Measurement(prefill_s=[0.01], e2e_s=[0.1], output_tokens=6.5, engine_version="x", notes=["short"])
    record = ok_record(config, m, capture(), None)
    assert record.output_tokens == 6.5
    assert record.output_tokens_per_s == pytest.approx(2 * 6.5 / 0.1)
    assert record.notes == "short"
