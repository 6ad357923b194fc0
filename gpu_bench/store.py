"""Append-only, crash-safe JSONL of MeasurementRecords; resume = skip configurations already recorded.

Each record is one line written in a single fsynced append, so a crash or Ctrl-C leaves whole
lines only; a torn last line from an earlier crash is skipped on reading and never rewritten.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from planner.catalog.files import append_jsonl


class RecordStore:
    def __init__(self, path: Path):
        self.path = path

    def append(self, record: Any) -> None:
        """Record a MeasurementRecord (or its dict) at once."""
        data = record.model_dump(mode="json", exclude_none=True) if hasattr(record, "model_dump") else record
        append_jsonl(self.path, [data])

    def rows(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a crash: the configuration runs again
            if isinstance(row, dict):
                out.append(row)
        return out

    def done(self, retry_failed: bool = False) -> set[str]:
        """Configuration keys already recorded: ok ones, and failed ones unless they should be
        retried (retry_failed, or a failure caused by this machine's environment)."""
        keys = set()
        for row in self.rows():
            key = row.get("engine", {}).get("args", {}).get("config_key")
            if not key:
                continue
            if row.get("status", "ok") == "ok" or not (retry_failed or is_retryable(row)):
                keys.add(key)
        return keys


ENVIRONMENT_ERRORS = ("ModuleNotFoundError", "ImportError")


def is_retryable(row: dict[str, Any]) -> bool:
    """A failure an install can fix: marked so by the worker, or (records written before that
    mark existed) an error that starts with an import failure."""
    if row.get("status", "ok") == "ok":
        return False
    if row.get("engine", {}).get("args", {}).get("retryable"):
        return True
    return (row.get("error") or "").startswith(ENVIRONMENT_ERRORS)
