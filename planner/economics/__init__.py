"""Economics: workloads, API and self-hosted costs, capacity, break-even, TCO (pure functions)."""
