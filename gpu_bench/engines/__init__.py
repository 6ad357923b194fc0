"""Engines: heavy imports (torch, transformers, vLLM) live only in these modules, inside functions."""
