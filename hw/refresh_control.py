"""Refresh bookkeeping of one rank: the tREFI interval, owed refreshes, recovery after reset."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Array, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .ddr4 import DDR4Geometry, DDR4Timing, line_address_layout
from .params import check_mutation

__all__ = ["RefreshControl", "recovery_cycles", "recovery_wait"]


def recovery_wait(timing: DDR4Timing) -> int:
    """``W``: the command-free cycles after reset, the longest window an earlier command can
    impose: max of tRCD, tRP, tRAS, tRC, tCCD_S, tCCD_L, tRRD_S, tRRD_L, tFAW, tRTP, tRFC
    and tCL + tBL (read data in flight)."""
    t = timing
    return max(
        t.tRCD, t.tRP, t.tRAS, t.tRC, t.tCCD_S, t.tCCD_L, t.tRRD_S, t.tRRD_L, t.tFAW, t.tRTP, t.tRFC, t.tCL + t.tBL
    )


def recovery_cycles(timing: DDR4Timing, geometry: DDR4Geometry) -> int:
    """Cycles from reset until requests are served: ``W + banks - 1 + tRP + tRFC`` (871 at
    DDR4-2400 with 16 banks)."""
    return recovery_wait(timing) + geometry.banks - 1 + timing.tRP + timing.tRFC


class RefreshControl(wiring.Component):
    """When a REF is owed, and the command-free recovery after a reset.

    **Periodic refresh.** A counter raises one owed refresh every ``tREFI`` cycles
    (``pending`` while at least one is owed; up to 8 are counted); each ``ref_issued``
    pays one back. Issuing the REF (every bank closed, tRP, tRFC) is the caller's.

    **Recovery after reset.** A synchronous reset may come at any cycle while the DRAM keeps
    running: rows may be open and any timing window of a command issued just before the
    reset may still run. The controller knows neither, so from reset (cycle 0 = the first
    cycle in the reset state):

    1. cycles ``0 .. W - 1``: ``hold``, no command at all. ``W`` (:attr:`recovery_wait`)
       is the longest window an earlier command can impose: the maximum of tRCD, tRP,
       tRAS, tRC, tCCD_S, tCCD_L, tRRD_S, tRRD_L, tFAW, tRTP, tRFC and tCL + tBL (read
       data in flight); tRFC = 420 at DDR4-2400;
    2. cycles ``W .. W + B - 1``: ``hold`` and ``sweep``: PRE to every one of the
       ``B = geometry.banks`` banks, one per cycle, in (bank group, bank) order
       (``sweep_bank_group``, ``sweep_bank``); a PRE to a closed bank is legal;
    3. one refresh is owed from reset (``pending``): the caller issues it by its normal
       rule, tRP after the last PRE, in cycle ``W + B - 1 + tRP``;
    4. ``recovering`` stays high until that REF's tRFC has passed, through cycle
       ``W + B - 2 + tRP + tRFC`` (:attr:`recovery_cycles` cycles in all: 871 at
       DDR4-2400). The tREFI counter starts when it drops.

    Parameters
    ----------
    timing : DDR4Timing
    geometry : DDR4Geometry

    Attributes
    ----------
    ref_issued : In(1)
        A REF is issued in this cycle.
    pending : Out(1)
        At least one refresh is owed.
    hold : Out(1)
        Recovery steps 1-2: issue no command but the sweep's PRE.
    sweep : Out(1)
        Issue PRE to (``sweep_bank_group``, ``sweep_bank``) in this cycle.
    sweep_bank_group, sweep_bank : Out(bank group bits), Out(bank bits)
    recovering : Out(1)
        Recovery in progress (reset until the recovery REF's tRFC has passed).

    Latency: outputs are registered state (``pending`` rises the cycle after the interval
    expires and falls the cycle after ``ref_issued``).

    ``registers`` (set by :meth:`elaborate`, for the formal specs of ``verif/formal``):
    ``left`` (recovery cycles left), ``refi`` (the tREFI down-counter), ``owed``.
    ``mutation`` (tests only, default ``None``): ``"no_recovery_wait"`` starts the PRE sweep
    right after reset, without waiting out the earlier commands' windows;
    ``"no_precharge_sweep"`` issues no PRE in the recovery (the REF finds rows open);
    ``"restart_recovery"`` starts the recovery again whenever it ends (no request is ever
    served).
    """

    #: Owed refreshes counted (DDR4 allows 8 to be postponed).
    MAX_OWED = 8

    #: Test-only deliberate bugs (``mutation``), to show that the formal properties bite.
    MUTATIONS = ("no_recovery_wait", "no_precharge_sweep", "restart_recovery")

    def __init__(
        self,
        *,
        timing: DDR4Timing = DDR4Timing(),
        geometry: DDR4Geometry = DDR4Geometry(),
        mutation: str | None = None,
    ):
        self._mutation = check_mutation(mutation, self.MUTATIONS)
        if not isinstance(timing, DDR4Timing):
            raise TypeError(f"timing must be a DDR4Timing, got {timing!r}")
        if not isinstance(geometry, DDR4Geometry):
            raise TypeError(f"geometry must be a DDR4Geometry, got {geometry!r}")
        self._timing = timing
        self._geometry = geometry
        layout = line_address_layout(geometry)
        super().__init__(
            {
                "ref_issued": In(1),
                "pending": Out(1),
                "hold": Out(1),
                "sweep": Out(1),
                "sweep_bank_group": Out(layout["bank_group"].width),
                "sweep_bank": Out(layout["bank"].width),
                "recovering": Out(1),
            }
        )

    @property
    def timing(self) -> DDR4Timing:
        return self._timing

    @property
    def geometry(self) -> DDR4Geometry:
        return self._geometry

    @property
    def recovery_wait(self) -> int:
        """``W`` (:func:`recovery_wait`)."""
        return recovery_wait(self._timing)

    @property
    def recovery_cycles(self) -> int:
        """Cycles from reset until requests may be served (:func:`recovery_cycles`)."""
        return recovery_cycles(self._timing, self._geometry)

    def elaborate(self, platform):
        m = Module()
        t, g = self._timing, self._geometry
        banks = g.banks
        total = self.recovery_cycles
        if self._mutation == "no_recovery_wait":
            total -= recovery_wait(t)
        # ``left`` is ``total - k`` in cycle k after reset, 0 once recovered.
        left = Signal(range(total + 1), init=total)
        m.d.sync += left.eq(Mux(left == 0, 0 if self._mutation != "restart_recovery" else total, left - 1))
        sweep_end = t.tRP + t.tRFC  # left in the last sweep cycle
        m.d.comb += [
            self.recovering.eq(left != 0),
            self.hold.eq(left >= sweep_end),
            self.sweep.eq(
                (left >= sweep_end) & (left < sweep_end + banks) if self._mutation != "no_precharge_sweep" else 0
            ),
        ]
        index = Signal(range(max(banks, 2)))
        m.d.comb += index.eq(sweep_end + banks - 1 - left)
        groups = Array(Const(j // g.banks_per_group, len(self.sweep_bank_group)) for j in range(banks))
        in_group = Array(Const(j % g.banks_per_group, len(self.sweep_bank)) for j in range(banks))
        with m.If(self.sweep):
            m.d.comb += [self.sweep_bank_group.eq(groups[index]), self.sweep_bank.eq(in_group[index])]

        # Refresh interval (held while recovering) and owed refreshes (one owed from reset).
        refi = Signal(range(t.tREFI), init=t.tREFI - 1)
        owed = Signal(range(self.MAX_OWED + 1), init=1)
        due = (refi == 0) & ~self.recovering
        with m.If(~self.recovering):
            m.d.sync += refi.eq(Mux(due, t.tREFI - 1, refi - 1))
        with m.If(due & ~self.ref_issued):
            with m.If(owed != self.MAX_OWED):
                m.d.sync += owed.eq(owed + 1)
        with m.Elif(~due & self.ref_issued):
            m.d.sync += owed.eq(owed - 1)
        m.d.comb += self.pending.eq(owed != 0)
        self.registers = SimpleNamespace(left=left, refi=refi, owed=owed)
        return m
