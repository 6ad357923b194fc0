"""Serving benchmarks: the OpenAI-compatible client, load generator, metrics and server launcher."""
