"""selfhost-planner: self-host an open LLM or buy API tokens? Size the fleet, find the break-even."""

__version__ = "0.1.0"
