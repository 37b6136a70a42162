"""What every formal spec shares: named properties, the spec's own clock domains, export.

A spec is an Amaranth elaboratable that instantiates the design under test, drives its
inputs from free values (``AnySeq``), constrains them with ``Assume`` and states the
design's obligations with ``Assert``; ``Cover`` statements show that the interesting
behaviour is reachable (non-vacuity). Each property gets a *name*: it becomes the source
location of its statement (``<name>:1``), so SymbiYosys reports a failed assertion or an
unreached cover by that name.

Domains: ``sync`` (the design's clock and its reset, a free input unless the spec
constrains it) and ``model``, a reset-less domain on the same clock for the spec's shadow
state (the DRAM keeps its state across a controller reset). Registers whose name starts
with :data:`FREE_INIT_PREFIX` have no initial value in the proof (any power-up state).
"""

from __future__ import annotations

from amaranth.back import rtlil
from amaranth.hdl import (
    Assert,
    Assume,
    ClockDomain,
    ClockSignal,
    Cover,
    Elaboratable,
    Fragment,
    Module,
    ResetSignal,
    Signal,
    Value,
)

__all__ = ["FREE_INIT_PREFIX", "FormalSpec", "free_init_signal", "stream_contract"]

#: Registers named with this prefix start in any state (``setattr -unset init`` in the script).
FREE_INIT_PREFIX = "anyinit_"


def free_init_signal(shape, *, name: str) -> Signal:
    """A register of the ``model`` domain whose power-up value is free in the proof."""
    return Signal(shape, name=FREE_INIT_PREFIX + name)


class FormalSpec(Elaboratable):
    """Base of the specs: named ``Assert``/``Assume``/``Cover``, domains, RTLIL export.

    Subclasses implement :meth:`build`, which fills a :class:`Module` (``self.m``) with
    the design and the properties, using :meth:`check`, :meth:`assume` and :meth:`cover`.
    """

    def __init__(self):
        self.asserts: list[str] = []
        self.covers: list[str] = []
        self._names: set[str] = set()
        #: When set to an assertion's name, the spec is built to *reach* its violation: that
        #: assertion becomes ``Cover(~condition)`` (named ``violation:<name>``) and every other
        #: assertion and cover is left out (mutation tests run it in cover mode).
        self.violation_of: str | None = None

    # -- properties -------------------------------------------------------------------------
    def _named(self, stmt, name: str):
        if name in self._names:
            raise ValueError(f"property name {name!r} used twice")
        self._names.add(name)
        stmt.src_loc = (name, 1)
        return stmt

    def check(self, m: Module, name: str, condition: Value) -> None:
        """``Assert(condition)`` in every cycle, reported as ``name``."""
        if self.violation_of is not None:
            if name == self.violation_of:
                m.d.comb += self._named(Cover(~condition), f"violation:{name}")
                self.covers.append(f"violation:{name}")
            self.asserts.append(name)
            return
        m.d.comb += self._named(Assert(condition), name)
        self.asserts.append(name)

    def assume(self, m: Module, name: str, condition: Value) -> None:
        """``Assume(condition)`` in every cycle (a constraint on the free inputs)."""
        m.d.comb += self._named(Assume(condition), name)

    def cover(self, m: Module, name: str, condition: Value) -> None:
        """``Cover(condition)``: the proof is vacuous unless this is reachable."""
        if self.violation_of is not None:
            return
        m.d.comb += self._named(Cover(condition), name)
        self.covers.append(name)

    # -- structure -------------------------------------------------------------------------
    def build(self, m: Module, platform) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        m.domains.model = ClockDomain("model", reset_less=True)
        m.d.comb += ClockSignal("model").eq(ClockSignal("sync"))
        self.build(m, platform)
        return m

    def to_rtlil(self) -> str:
        """The spec as RTLIL (top module ``top``), ready for SymbiYosys."""
        self.asserts.clear()
        self.covers.clear()
        self._names.clear()
        text = rtlil.convert(self, name="top", ports=[ClockSignal("sync"), ResetSignal("sync")], platform="formal")
        if self.violation_of is not None and self.violation_of not in self.asserts:
            raise ValueError(f"no assertion named {self.violation_of!r} in {type(self).__name__}")
        return text

    @staticmethod
    def elaborated(design, platform) -> Fragment:
        """Elaborate ``design`` now, so that the internal registers its parts expose
        (set by their ``elaborate``) can be used by the spec."""
        return Fragment.get(design, platform)


def stream_contract(
    spec: FormalSpec, m: Module, name: str, port, *, obligation: bool, payload: Value | None = None
) -> tuple[Signal, Signal]:
    """The ``lib.stream`` rule on ``port`` (with ``valid``, ``ready``, ``payload``): a
    transfer offered and not taken is offered again in the next cycle with the same
    payload. ``obligation=True`` asserts it (an output of the design), ``False`` assumes it
    (a source of the spec's environment). A reset of the design in between waives it.
    ``payload`` replaces the port's payload in the comparison (a part of it, to keep wide
    data out of the proof). Returns the registers ``(stalled, held)``: last cycle's offer was not taken, and its
    payload (for invariants).
    """
    payload = Value.cast(port.payload if payload is None else payload)
    stalled = Signal(name=f"{name}_stalled".replace(".", "_"))
    held = Signal(len(payload), name=f"{name}_held".replace(".", "_"))
    m.d.model += [stalled.eq(port.valid & ~port.ready & ~ResetSignal()), held.eq(payload)]
    kept = ~stalled | (port.valid & (payload == held))
    if obligation:
        spec.check(m, name, kept)
    else:
        spec.assume(m, name, kept)
    return stalled, held
