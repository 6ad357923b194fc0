"""Which server answers, from what it exposes: kind, version, and what it says of its hardware.

The planner matches measured points on the engine name (`vllm`), so a record of an already-running
vLLM server must say `vllm`, not `openai-compatible`. Each server has a tell:

- vLLM: GET /version -> {"version": ...}, with `vllm:` series on /metrics or owned_by "vllm" on
  /v1/models; its KV capacity from `vllm:cache_config_info`. A version with +cpu (+rocm) is a CPU
  (ROCm) build, but the CPU build on PyPI reports a bare version: its device stays unknown.
- SGLang: GET /get_server_info -> its server arguments (tp_size, dp_size, device) and version.
- TGI: GET /info -> model_id, version, model_device_type.
- llama.cpp: GET /props -> build_info, default_generation_settings; owned_by "llamacpp".
- transformers serve: its OpenAPI routes (/load_model, /reset); it states no version.

Every probe is one GET with a short timeout; a server that answers none of them is
`openai-compatible`. Nothing here is trusted over what the user states (--server-kind, --device,
--gpu, --gpu-count, --tp).
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

KINDS = ("vllm", "sglang", "tgi", "llama.cpp", "transformers-serve", "openai-compatible")
Get = Callable[[str], tuple[int, str]]  # path -> (status, body); status 0 when unreachable


@dataclass
class ServerInfo:
    kind: str
    version: str | None = None
    how: str = "nothing it exposes named it"  # what told us: goes into the record
    device: str | None = None  # cuda, rocm or cpu, as the server says
    gpu_count: int | None = None
    tp: int | None = None
    details: dict[str, str | int | float | bool] = field(default_factory=dict)


def check_endpoint(url: str, what: str) -> str:
    """The base URL without a trailing /, or a PlannerError: httpx's own error for a URL without
    a scheme is a 100-line traceback (UnsupportedProtocol)."""
    import urllib.parse

    from planner.errors import PlannerError

    refusal = f"{what} must be an http(s) URL such as http://127.0.0.1:8000/v1, got {url!r}"
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise PlannerError(refusal) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PlannerError(refusal)
    return url.rstrip("/")


def unreachable(endpoint: str, timeout_s: float = 10.0) -> str | None:
    """Why nothing answers at the endpoint (GET {endpoint}/models, then /health at its root), or
    None when anything answers, whatever its status: a 401 or 404 is a server that is there."""
    import httpx

    root = endpoint.rstrip("/").removesuffix("/v1")
    why = ""
    for url in (endpoint.rstrip("/") + "/models", root + "/health"):
        try:
            httpx.get(url, timeout=timeout_s)
            return None
        except httpx.HTTPError as exc:
            detail = (str(exc).strip() or type(exc).__name__).splitlines()[0][:120]
            why = why or f"GET {url}: {detail}"
    return why


def http_get(root_url: str, timeout_s: float = 3.0) -> Get:
    import httpx

    def get(path: str) -> tuple[int, str]:
        try:
            response = httpx.get(root_url.rstrip("/") + path, timeout=timeout_s)
            return response.status_code, response.text
        except httpx.HTTPError:
            return 0, ""

    return get


def _json(get: Get, path: str) -> dict[str, Any] | None:
    status, text = get(path)
    if status != 200:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _owned_by(get: Get) -> str | None:
    models = _json(get, "/v1/models") or {}
    for m in models.get("data") or []:
        if isinstance(m, dict) and isinstance(m.get("owned_by"), str):
            return m["owned_by"].lower()
    return None


def _device_of_build(version: str) -> str | None:
    """Some vLLM builds say what they run on after a +: +cpu, +rocm. Most say nothing (the CPU
    build from PyPI reports a bare 0.32.0 too): unknown, then."""
    local = version.partition("+")[2]
    return next((d for d in ("cpu", "rocm") if local.startswith(d)), None)


_LABEL = re.compile(r'(\w+)="([^"]*)"')


def _vllm_cache_config(metrics: str) -> dict[str, str | int | float | bool]:
    """KV capacity and prefix caching from vLLM's `vllm:cache_config_info{...} 1` series."""
    for line in metrics.splitlines():
        if line.startswith("vllm:cache_config_info{"):
            labels = dict(_LABEL.findall(line))
            out: dict[str, str | int | float | bool] = {}
            for key, name, cast in (
                ("kv_cache_size_tokens", "kv_cache_tokens", int),
                ("kv_cache_max_concurrency", "kv_cache_max_concurrency", float),
                ("block_size", "kv_block_size", int),
            ):
                with contextlib.suppress(KeyError, ValueError):
                    out[name] = cast(float(labels[key]))
            if labels.get("enable_prefix_caching") in ("True", "False"):
                out["prefix_caching"] = labels["enable_prefix_caching"] == "True"
            return out
    return {}


def _vllm(get: Get) -> ServerInfo | None:
    data = _json(get, "/version")
    if not data or not isinstance(data.get("version"), str):
        return None
    status, metrics = get("/metrics")
    if status == 200 and "vllm:" in metrics:
        how = "GET /version, vllm: series on /metrics"
    elif _owned_by(get) == "vllm":
        how = "GET /version, owned_by vllm on /v1/models"
    else:
        return None
    version = data["version"]
    details = _vllm_cache_config(metrics) if status == 200 else {}
    return ServerInfo("vllm", version, how, device=_device_of_build(version), details=details)


def _sglang(get: Get) -> ServerInfo | None:
    data = _json(get, "/get_server_info")
    if not data or not ("tp_size" in data or "model_path" in data):
        return None
    tp = data.get("tp_size") if isinstance(data.get("tp_size"), int) else None
    dp = data.get("dp_size") if isinstance(data.get("dp_size"), int) else 1
    device = data.get("device") if data.get("device") in ("cuda", "cpu", "rocm") else None
    version = data.get("version")
    return ServerInfo(
        "sglang",
        str(version) if version else None,
        "GET /get_server_info",
        device=device,
        gpu_count=tp * dp if tp and device != "cpu" else None,
        tp=tp,
    )


def _tgi(get: Get) -> ServerInfo | None:
    data = _json(get, "/info")
    if not data or "model_id" not in data or "version" not in data:
        return None
    device = str(data.get("model_device_type") or "").lower() or None
    details = {
        k: data[k]
        for k in ("model_dtype", "max_concurrent_requests", "max_total_tokens")
        if isinstance(data.get(k), str | int | float)
    }
    return ServerInfo(
        "tgi",
        str(data["version"]),
        "GET /info",
        device=device if device in ("cuda", "cpu", "rocm") else None,
        details=details,
    )


def _llama_cpp(get: Get) -> ServerInfo | None:
    data = _json(get, "/props")
    if not data or not ("build_info" in data or "default_generation_settings" in data):
        return None
    version = data.get("build_info")
    return ServerInfo("llama.cpp", str(version) if version else None, "GET /props")


def _transformers(get: Get) -> ServerInfo | None:
    data = _json(get, "/openapi.json")
    paths = (data or {}).get("paths") or {}
    if "/load_model" in paths and "/reset" in paths:
        return ServerInfo("transformers-serve", None, "its OpenAPI routes (/load_model, /reset)")
    return None


def detect_server(get: Get) -> ServerInfo:
    for probe in (_vllm, _sglang, _tgi, _llama_cpp, _transformers):
        info = probe(get)
        if info is not None:
            return info
    owner = _owned_by(get)
    kind = {"vllm": "vllm", "sglang": "sglang", "llamacpp": "llama.cpp"}.get(owner or "")
    if kind:
        return ServerInfo(kind, None, f"owned_by {owner} on /v1/models")
    return ServerInfo("openai-compatible")


def kind_of_command(command: str) -> str:
    """A guess from a launch command, for a server that does not say what it is."""
    c = command.lower()
    for needle, kind in (
        ("vllm", "vllm"),
        ("transformers serve", "transformers-serve"),
        ("sglang", "sglang"),
        ("text-generation-launcher", "tgi"),
        ("llama-server", "llama.cpp"),
        ("llama_cpp", "llama.cpp"),
    ):
        if needle in c:
            return kind
    return "openai-compatible"


_TP_FLAGS = re.compile(r"^(--tensor-parallel-size|-tp|--tp|--tp-size|--num-shard)(=(\d+))?$")


def tp_of_command(command: str) -> int | None:
    """Tensor parallelism from a launch command (vLLM -tp, SGLang --tp, TGI --num-shard)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    for i, word in enumerate(words):
        m = _TP_FLAGS.match(word)
        if not m:
            continue
        value = m.group(3) or (words[i + 1] if i + 1 < len(words) else "")
        if value.isdigit() and int(value) >= 1:
            return int(value)
    return None
