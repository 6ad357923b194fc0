"""HF transformers (+ bitsandbytes) in process: batched `generate` with a fixed output length.

Weights: a checkpoint directory loaded with `from_pretrained` (bitsandbytes quantizes on load),
or random weights built in memory from the config at full size, layer by layer, each linear
quantized as it is created, so a 70B model in nf4 never exists in 16-bit as a whole. The model
loads once per worker and serves every batch size of its configuration; a failure drops it.
"""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path
from typing import Any

from gpu_bench.config import RunConfig
from gpu_bench.engines.common import EngineOOM, Measurement, NvmlPeak, count_notes, new_token_counts, timed
from gpu_bench.weights import param_bytes, torch_dtype


def _bnb_config(config: RunConfig) -> Any:
    import torch
    from transformers import BitsAndBytesConfig

    if config.quant == "bnb-int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    if config.quant in ("bnb-nf4", "bnb-fp4"):
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=config.quant.removeprefix("bnb-"),
            bnb_4bit_use_double_quant=config.double_quant,
            bnb_4bit_compute_dtype=torch_dtype(config.dtype) if config.dtype != "fp32" else torch.float32,
        )
    return None


def _materialize_random(model: Any, config: RunConfig, device: str) -> None:
    """Give every parameter left on the meta device random values, quantizing bnb linears as built.

    Tied parameters (embeddings shared with lm_head: gemma-2, small Llama and Qwen models) are
    tied first and filled once, so the model holds one matrix where the real one does.
    """
    import bitsandbytes as bnb
    import torch

    model.tie_weights()  # on meta: lm_head.weight becomes embed_tokens.weight where the config ties
    gen = torch.Generator(device=device).manual_seed(config.seed)
    dtype = torch_dtype(config.dtype)
    built: dict[int, Any] = {}  # id of a meta parameter -> what replaced it (shared by tied modules)
    for module in model.modules():
        for name, param in list(module.named_parameters(recurse=False)):
            if param.device.type != "meta":
                continue
            if id(param) in built:
                setattr(module, name, built[id(param)])
                continue
            # Drawn on the target device: a GPU fills an 8B model in seconds, a CPU would take minutes.
            data = torch.randn(param.shape, generator=gen, dtype=dtype, device=device).mul_(0.02)
            if isinstance(module, bnb.nn.Linear4bit) and name == "weight":
                new = bnb.nn.Params4bit(
                    data,
                    requires_grad=False,
                    quant_type=config.quant.removeprefix("bnb-"),
                    compress_statistics=config.double_quant,
                    module=module,
                )
                module.weight = new.to(device)  # quantized here, on the target device
            elif isinstance(module, bnb.nn.Linear8bitLt) and name == "weight":
                module.weight = bnb.nn.Int8Params(data, requires_grad=False, has_fp16_weights=False).to(
                    device
                )
            else:
                setattr(module, name, torch.nn.Parameter(data, requires_grad=False))
            built[id(param)] = getattr(module, name)
    model.tie_weights()


def load_model(config: RunConfig, model_dir: Path) -> Any:
    """The model on its device: from the checkpoint in model_dir, or random from its config."""
    from transformers import AutoConfig, AutoModelForCausalLM

    device = config.device
    dtype = torch_dtype(config.dtype)
    bnb_config = _bnb_config(config)
    has_weights = any(model_dir.glob("*.safetensors")) or any(model_dir.glob("*.bin"))
    if has_weights:
        kwargs: dict[str, Any] = {"dtype": dtype}
        if bnb_config is not None:
            kwargs["quantization_config"] = bnb_config
        kwargs["device_map"] = {"": device} if device != "cpu" else {"": "cpu"}
        return AutoModelForCausalLM.from_pretrained(model_dir, **kwargs).eval()
    import accelerate

    hf_config = AutoConfig.from_pretrained(model_dir)
    with accelerate.init_empty_weights(include_buffers=False):
        model = AutoModelForCausalLM.from_config(hf_config, dtype=dtype)
    if bnb_config is not None:
        from transformers.integrations.bitsandbytes import replace_with_bnb_linear

        model = replace_with_bnb_linear(
            model, quantization_config=bnb_config, modules_to_not_convert=["lm_head"]
        )
    _materialize_random(model, config, device)
    model.to(device)
    return model.eval()


_state: dict[str, Any] = {"model": None, "key": None, "weights_bytes": 0}


def _load_key(config: RunConfig, model_dir: Path) -> tuple[Any, ...]:
    """What a loaded model depends on: everything but the batch size and the lengths."""
    return (str(model_dir), config.quant, config.dtype, config.double_quant, config.device, config.seed)


def _model(config: RunConfig, model_dir: Path) -> tuple[Any, int]:
    """The model for a configuration, loaded once per worker for all the batch sizes that share it."""
    key = _load_key(config, model_dir)
    if _state["key"] != key:
        release()
        model = load_model(config, model_dir)
        _state.update(model=model, key=key, weights_bytes=param_bytes(model))
    return _state["model"], _state["weights_bytes"]


def release() -> None:
    """Drop the loaded model and give its memory back (after a failure, the next load is fresh)."""
    _state.update(model=None, key=None, weights_bytes=0)
    gc.collect()
    if "torch" in sys.modules:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.empty_cache()


def _eos_ids(model: Any) -> set[int]:
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), model.config):
        value = getattr(source, "eos_token_id", None)
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list | tuple):
            ids.update(int(v) for v in value)
    return ids


def measure(config: RunConfig, model_dir: Path) -> Measurement:
    """Warm-up, then per repeat a 1-token generate (prefill) and a full one, timed with the device
    synchronised. Peaks (NVML, torch) cover the generates, with the model already loaded."""
    import torch
    import transformers

    device = config.device
    hf = json.loads((model_dir / "config.json").read_text())
    context = hf.get("max_position_embeddings")
    if context and config.input_len + config.output_len > context:
        raise ValueError(
            f"prompt + output = {config.input_len + config.output_len} tokens exceed the model's "
            f"context of {context} (max_position_embeddings)"
        )
    try:
        model, weights = _model(config, model_dir)
        eos = _eos_ids(model)
        pad = min(eos) if eos else 0  # sequences ended early are padded with EOS: counted as ended
        gen = torch.Generator(device="cpu").manual_seed(config.seed)
        ids = torch.randint(
            3, min(hf["vocab_size"], 512), (config.batch_size, config.input_len), generator=gen
        ).to(device)
        mask = torch.ones_like(ids)

        def generate(new_tokens: int) -> Any:
            with torch.inference_mode():
                return model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    max_new_tokens=new_tokens,
                    min_new_tokens=new_tokens,  # EOS cannot end a sequence early
                    do_sample=False,
                    pad_token_id=pad,
                )

        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        with NvmlPeak() as nvml:
            for _ in range(config.warmup):
                generate(min(config.output_len, 8))
            prefill, e2e = [], []
            counts: list[int] = []
            for _ in range(config.repeats):
                _, t_first = timed(lambda: generate(1), device)
                out, t_all = timed(lambda: generate(config.output_len), device)
                prefill.append(t_first)
                e2e.append(t_all)
                counts += new_token_counts(out[:, ids.shape[1] :].tolist(), eos)
    except torch.OutOfMemoryError as exc:
        release()
        raise EngineOOM(str(exc).splitlines()[0]) from None
    m = Measurement(
        prefill_s=prefill,
        e2e_s=e2e,
        output_tokens=sum(counts) / len(counts),
        engine_version=transformers.__version__,
        engine_args={
            "dtype": config.dtype,
            "quant": config.quant,
            "double_quant": config.double_quant,
            "attn_implementation": getattr(model.config, "_attn_implementation", None),
            **nvml.per_device_args(),
        },
        weights_memory_gib=weights / 1024**3,
        peak_vram_gib=nvml.peak_gib,
        notes=count_notes(config.output_len, counts, config.batch_size * config.repeats),
    )
    if device.startswith("cuda"):
        m.torch_max_reserved_gib = torch.cuda.max_memory_reserved() / 1024**3
        m.torch_max_allocated_gib = torch.cuda.max_memory_allocated() / 1024**3
    return m
