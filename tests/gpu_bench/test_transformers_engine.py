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
    ],
)
def test_run_bad_input_exits_2(args: tuple[str, ...], expected: str) -> None:
    result = gpu_bench("run", "--scale", "tiny", "--device", "cpu", *args)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_killed_sweep_resumes_without_losing_or_repeating(tmp_path: Path, workdir: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "schema_version: 1\ndefaults: {device: cpu, scale: tiny, dtype: fp32, repeats: 1, warmup: 0}\n"
        "matrix: {models: [llama-3.1-8b-instruct, qwen3-8b], batch_sizes: [1, 2, 3], input_lens: [16], "
        "output_lens: [8]}\n"
    )
    out = tmp_path / "s.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
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
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its worker die mid-run
    proc.wait()
    kept = records(out)
    assert 2 <= len(kept) < 6
    result = gpu_bench("sweep", str(spec), "--workdir", str(workdir))
    assert result.returncode == 0, result.stderr[-2000:]
    final = records(out)
    keys = [r.engine.args["config_key"] for r in final]
    assert len(keys) == len(set(keys)) == 6  # every configuration once
    assert [r.id for r in final[: len(kept)]] == [r.id for r in kept]  # nothing written before was lost


CRASHING_WORKER = """\
import io, json, os, signal, sys
from gpu_bench.config import RunConfig
from gpu_bench.worker import main
job = json.loads(sys.stdin.read())
for config in job["configs"]:
    if config["batch_size"] == 2:
        print("START " + RunConfig(**config).key(), flush=True)
        print("simulated crash", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGSEGV)
    sys.stdin = io.StringIO(json.dumps({**job, "configs": [config]}))
    main()
"""


def test_a_segfaulting_worker_is_recorded_and_the_rest_runs(tmp_path: Path, workdir: Path) -> None:
    from gpu_bench.config import RunConfig
    from gpu_bench.runner import Runner
    from gpu_bench.store import RecordStore

    fake = tmp_path / "fakepython"
    (tmp_path / "crash_worker.py").write_text(CRASHING_WORKER)
    fake.write_text(f"#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} {tmp_path / 'crash_worker.py'}\n")
    fake.chmod(0o755)

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
    configs = [RunConfig(**{**base.__dict__, "batch_size": b}) for b in (1, 2, 3)]
    store = RecordStore(tmp_path / "crash.jsonl")
    Runner(store, workdir, python=str(fake)).run(configs)  # the fake python ignores -m and runs the script
    rows = store.rows()
    by_batch = {r["batch_size"]: r for r in rows}
    assert by_batch[1]["status"] == "ok"
    assert by_batch[3]["status"] == "ok"
    assert by_batch[2]["status"] == "error"
    assert "SIGSEGV" in by_batch[2]["error"]
    assert "simulated crash" in by_batch[2]["error"]
