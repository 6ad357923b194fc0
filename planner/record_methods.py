"""Behaviour shared by the pydantic record types and their fast read-only snapshots.

The data shape is defined once, in planner/records.py; what can be computed from a row is
defined once, here, and mixed into both. (No class-level annotations here: pydantic would take
them for fields.)
"""

from __future__ import annotations

from typing import Any


class OfferMethods:
    @property
    def key(self) -> tuple[Any, ...]:
        """The current price of an instance in a region is one row; old prices are one row per date."""
        where = (self.provider, self.instance, self.region)
        return (*where, "history", self.checked_at) if self.history else where

    @property
    def sort_key(self) -> tuple[Any, ...]:
        return (self.provider, self.instance, self.region, self.history, self.checked_at)

    def usd_per_gpu_hour(self, pricing: str) -> float | None:
        price = getattr(self.usd_per_hour, pricing)
        return None if price is None else price / self.gpu_count


class ApiPriceMethods:
    @property
    def key(self) -> tuple[str, str]:
        return (self.provider, self.model)


class MeasurementMethods:
    @property
    def load(self) -> float:
        """The load level: batch size, concurrency or request rate."""
        for value in (self.batch_size, self.concurrency, self.request_rate_per_s):
            if value is not None:
                return float(value)
        raise AssertionError("validated records always have a load")
