"""Validation of component parameters: one wording for every block's errors."""

from __future__ import annotations

__all__ = ["check_int", "check_latency"]


def check_int(name: str, value, low: int, high: int) -> int:
    """``value`` if it is an ``int`` (not a ``bool``) in ``low..high``, else ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    return value


def check_latency(name: str, value) -> int:
    """A pipeline latency: 1 to 8 cycles."""
    return check_int(name, value, 1, 8)
