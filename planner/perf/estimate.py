"""An estimate and what it rests on: the value, its basis, its error band, the records behind it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Basis = Literal["measured", "interpolated", "calibrated", "roofline"]


@dataclass(frozen=True)
class Estimate:
    value: float
    basis: Basis
    low: float
    high: float
    record_ids: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "value": self.value,
            "basis": self.basis,
            "low": self.low,
            "high": self.high,
            "records": list(self.record_ids),
        }


def band_text(band: float) -> str:
    """A band is a factor (value / (1 + band) to value x (1 + band)), so it reads '-25%/+33%', not '+-33%'."""
    return f"-{1 - 1 / (1 + band):.0%}/+{band:.0%}"
