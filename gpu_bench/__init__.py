"""gpu_bench: measure real engines and servers, and write MeasurementRecords the planner trusts."""

__version__ = "0.1.0"
