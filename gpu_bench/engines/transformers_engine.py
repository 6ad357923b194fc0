"""HF transformers (+ bitsandbytes) in process: batched `generate` with a fixed output length.

Weights: a checkpoint directory loaded with `from_pretrained` (bitsandbytes quantizes on load),
or random weights built in memory from the config at full size, layer by layer, each linear
quantized as it is created, so a 70B model in nf4 never exists in 16-bit as a whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gpu_bench.config import RunConfig
from gpu_bench.engines.common import EngineOOM, Measurement, NvmlPeak, timed
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
    """Give every parameter left on the meta device random values, quantizing bnb linears as built."""
    import bitsandbytes as bnb
    import torch

    gen = torch.Generator(device=device).manual_seed(config.seed)
    dtype = torch_dtype(config.dtype)
    for module in model.modules():
        for name, param in list(module.named_parameters(recurse=False)):
            if param.device.type != "meta":
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


def measure(config: RunConfig, model_dir: Path) -> Measurement:
    import torch
    import transformers

    device = config.device
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    try:
        with NvmlPeak() as nvml:
            hf = json.loads((model_dir / "config.json").read_text())
            context = hf.get("max_position_embeddings")
            if context and config.input_len + config.output_len > context:
                raise ValueError(
                    f"prompt + output = {config.input_len + config.output_len} tokens exceed the model's "
                    f"context of {context} (max_position_embeddings)"
                )
            model = load_model(config, model_dir)
            weights = param_bytes(model)
            gen = torch.Generator(device="cpu").manual_seed(config.seed)
            ids = torch.randint(
                3, min(hf["vocab_size"], 512), (config.batch_size, config.input_len), generator=gen
            )
            ids = ids.to(device)
            mask = torch.ones_like(ids)

            def generate(new_tokens: int) -> Any:
                with torch.inference_mode():
                    return model.generate(
                        input_ids=ids,
                        attention_mask=mask,
                        max_new_tokens=new_tokens,
                        min_new_tokens=new_tokens,  # EOS cannot end a sequence early
                        do_sample=False,
                        pad_token_id=0,
                    )

            for _ in range(config.warmup):
                generate(min(config.output_len, 8))
            prefill, e2e = [], []
            produced = config.output_len
            for _ in range(config.repeats):
                _, t_first = timed(lambda: generate(1), device)
                out, t_all = timed(lambda: generate(config.output_len), device)
                prefill.append(t_first)
                e2e.append(t_all)
                produced = int(out.shape[1] - ids.shape[1])
    except torch.OutOfMemoryError as exc:
        raise EngineOOM(str(exc).splitlines()[0]) from None
    notes = []
    if produced != config.output_len:
        notes.append(f"asked for {config.output_len} new tokens, the engine produced {produced}")
    m = Measurement(
        prefill_s=prefill,
        e2e_s=e2e,
        output_tokens=produced,
        engine_version=transformers.__version__,
        engine_args={
            "dtype": config.dtype,
            "quant": config.quant,
            "double_quant": config.double_quant,
            "attn_implementation": getattr(model.config, "_attn_implementation", None),
        },
        weights_memory_gib=weights / 1024**3,
        peak_vram_gib=nvml.peak_gib,
        notes=notes,
    )
    if device.startswith("cuda"):
        m.torch_max_reserved_gib = torch.cuda.max_memory_reserved() / 1024**3
        m.torch_max_allocated_gib = torch.cuda.max_memory_allocated() / 1024**3
    return m
