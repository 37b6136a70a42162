"""Validation of component parameters: one wording for every block's errors."""

from __future__ import annotations

__all__ = ["check_choice", "check_int", "check_latency", "check_mutation", "check_power_of_two"]


def check_int(name: str, value, low: int, high: int) -> int:
    """``value`` if it is an ``int`` (not a ``bool``) in ``low..high``, else ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    return value


def check_latency(name: str, value) -> int:
    """A pipeline latency: 1 to 8 cycles."""
    return check_int(name, value, 1, 8)


def check_choice(name: str, value, choices) -> int:
    """``value`` if it is an ``int`` (not a ``bool`` nor ``4.0``) among ``choices``."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


def check_mutation(mutation, choices) -> str | None:
    """``mutation`` if it is ``None`` or one of ``choices`` (a part's test-only
    ``MUTATIONS``, which the formal proofs use to show that their properties bite)."""
    if mutation is not None and mutation not in choices:
        raise ValueError(f"mutation must be None or one of {choices}, got {mutation!r}")
    return mutation


def check_power_of_two(name: str, value, low: int, high: int) -> int:
    """``value`` if it is a power-of-two ``int`` in ``low..high``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high or value & (value - 1):
        raise ValueError(f"{name} must be a power of two from {low} to {high}, got {value!r}")
    return value
