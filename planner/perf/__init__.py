"""Performance model: memory fit, roofline step times, calibration. No torch/transformers/vLLM imports."""
