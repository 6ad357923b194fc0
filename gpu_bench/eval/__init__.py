"""gpu-bench eval: quality on the user's own cases, against any OpenAI-compatible endpoint."""
