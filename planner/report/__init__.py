"""Renderers: console table, JSON, CSV, Markdown (and the HTML report, which imports matplotlib)."""
