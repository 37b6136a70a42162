"""Small combinational and counting helpers shared by the blocks (no components here)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from amaranth.hdl import Cat, Module, Signal, Value

__all__ = ["COUNTER_WIDTH", "count_events", "lowest_one", "lowest_one_index"]

#: Width of every event counter port (they wrap around).
COUNTER_WIDTH = 32


def lowest_one(m: Module, bits: Value | Sequence[Value], name: str) -> Signal:
    """One-hot of the lowest set bit of ``bits`` (zero when none is set): a priority encoder.

    ``bits`` is a value (bit 0 has priority) or a sequence of 1-bit values. Returns a
    ``len(bits)``-bit signal named ``name``.
    """
    value = Cat(*bits) if not isinstance(bits, Value) else bits
    sel = Signal(len(value), name=name)
    m.d.comb += sel.eq(value & ~(value - 1))
    return sel


def lowest_one_index(m: Module, bits: Value | Sequence[Value], name: str) -> Signal:
    """Index of the lowest set bit of ``bits`` (0 when none is set)."""
    value = Cat(*bits) if not isinstance(bits, Value) else bits
    index = Signal(range(max(len(value), 2)), name=name)
    for k in reversed(range(len(value))):
        with m.If(value[k]):
            m.d.comb += index.eq(k)
    return index


def count_events(
    m: Module, events: Mapping[str, Value], ports: object | None = None, *, width: int = COUNTER_WIDTH
) -> dict[str, Signal]:
    """One wrapping ``width``-bit counter per event, incremented in every cycle the event is 1.

    Returns the counter signals by name. When ``ports`` is given, its attribute of each
    event's name (an ``Out(width)`` port of a component) is driven with the counter.
    """
    counters = {}
    for name, event in events.items():
        counter = Signal(width, name=f"{name}_count")
        with m.If(event):
            m.d.sync += counter.eq(counter + 1)
        if ports is not None:
            m.d.comb += getattr(ports, name).eq(counter)
        counters[name] = counter
    return counters
