"""Per-bank DDR4 state of one rank: the open-row table and every timing window."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .ddr4 import DDR4Geometry, DDR4Timing, DramCommand, line_address_layout
from .params import check_mutation

__all__ = ["BankTimers"]


class BankTimers(wiring.Component):
    """Open rows and DDR4 timing windows of one rank, fed with the command issued each cycle.

    Every DDR4 timing rule of the rank scheduler lives here. Each window is a down-counter
    of the cycles left before a command is legal, loaded with ``gap - 1`` when a command is
    issued (keeping the larger of the load and what is left):

    ========================  ===============  ===============================================
    counter                   per              loaded by
    ========================  ===============  ===============================================
    ``act_wait``              bank             ACT: tRC; PRE: tRP
    ``rd_wait``               bank             ACT: tRCD
    ``pre_wait``              bank             ACT: tRAS; RD: tRTP
    ``act_wait_bg``           bank group       ACT: tRRD_L
    ``rd_wait_bg``            bank group       RD: tCCD_L
    ``act_wait_rank``         rank             ACT: tRRD_S
    ``rd_wait_rank``          rank             RD: tCCD_S
    ``faw[0..3]``             rank             the ages of the last four ACTs (tFAW)
    ``pre_to_ref``            rank             any PRE: tRP (REF legal when 0)
    ``rfc_wait``              rank             REF: tRFC (no command until 0)
    ========================  ===============  ===============================================

    The open-row table holds, per bank, an open flag and the row: ACT opens ``cmd_row``,
    PRE closes the bank (a PRE to a closed bank is legal and changes nothing but tRP).
    After reset every bank is closed and every window expired: the owner must make that
    true of the DRAM (:class:`hw.refresh_control.RefreshControl` does).

    Banks are numbered by *slot*, ``Cat(bank, bank_group)`` of
    :func:`hw.ddr4.line_address_layout`: ``2**(bank bits + bank group bits)`` slots.

    Parameters
    ----------
    timing : DDR4Timing
    geometry : DDR4Geometry

    Attributes
    ----------
    cmd : In(DramCommand)
        The command issued in this cycle (``NOP``: none).
    cmd_bank : In(slot bits)
        The slot it addresses (ACT, RD, PRE).
    cmd_row : In(row bits)
        The row an ACT opens.
    open_valid : Out(slots)
        Bit ``b``: slot ``b`` has a row open.
    open_row : Out(ArrayLayout(row bits, slots))
        The open row of each slot (meaningless when closed).
    act_ok, rd_ok, pre_ok : Out(slots)
        Bit ``b``: an ACT / RD / PRE to slot ``b`` is legal in this cycle by timing
        (tRC, tRP, tRRD_S/L, tFAW, tRFC / tRCD, tCCD_S/L, tRFC / tRAS, tRTP, tRFC). They
        do not look at the open-row table: RD to a closed bank or ACT to an open one is the
        caller's to avoid.
    rd_keeps_pre : Out(slots)
        Bit ``b``: a RD to slot ``b`` now would not delay its earliest PRE (``pre_wait >=
        tRTP``: tRAS still dominates).
    ref_ok : Out(1)
        REF is legal: every bank closed, tRP since the last PRE, tRFC since the last REF.

    Latency: combinational outputs of registered state. A command on ``cmd`` in cycle
    ``c`` is reflected from cycle ``c + 1`` (a command's own window never affects the
    cycle it is issued in).

    ``registers`` (set by :meth:`elaborate`, for the formal specs of ``verif/formal``): the
    counters by the names above (lists per bank / bank group, ``faw`` a list of 4) and
    ``open_valid`` / ``open_row`` per slot. ``mutation`` (tests only, default ``None``:
    the design as documented) breaks one rule on purpose, one of :attr:`MUTATIONS`:
    ``"ref_ignores_trp"`` (no tRP from the last PRE to REF).
    """

    #: Test-only deliberate bugs (``mutation``), to show that the formal properties bite.
    MUTATIONS = ("ref_ignores_trp",)

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
        self._bank_bits = layout["bank"].width
        self._slot_bits = layout["bank"].width + layout["bank_group"].width
        slots = 1 << self._slot_bits
        row_bits = layout["row"].width
        super().__init__(
            {
                "cmd": In(DramCommand),
                "cmd_bank": In(self._slot_bits),
                "cmd_row": In(row_bits),
                "open_valid": Out(slots),
                "open_row": Out(data.ArrayLayout(row_bits, slots)),
                "act_ok": Out(slots),
                "rd_ok": Out(slots),
                "pre_ok": Out(slots),
                "rd_keeps_pre": Out(slots),
                "ref_ok": Out(1),
            }
        )

    @property
    def timing(self) -> DDR4Timing:
        return self._timing

    @property
    def geometry(self) -> DDR4Geometry:
        return self._geometry

    @property
    def slots(self) -> int:
        """Bank slots: ``2**(bank bits + bank group bits)``."""
        return 1 << self._slot_bits

    def elaborate(self, platform):
        m = Module()
        t = self._timing
        banks = self.slots
        groups = 1 << (self._slot_bits - self._bank_bits)
        bank_bits = self._bank_bits

        def counter(name, *gaps):
            return Signal(range(max(gaps) + 1), name=name)

        loads = {}  # id(counter) -> (counter, [(condition, gap)])

        def load(ctr, cond, gap):
            loads.setdefault(id(ctr), (ctr, []))[1].append((cond, gap))

        act_wait = [counter(f"act_wait_{b}", t.tRC, t.tRP) for b in range(banks)]
        rd_wait = [counter(f"rd_wait_{b}", t.tRCD) for b in range(banks)]
        pre_wait = [counter(f"pre_wait_{b}", t.tRAS, t.tRTP) for b in range(banks)]
        act_wait_bg = [counter(f"act_wait_bg_{k}", t.tRRD_L) for k in range(groups)]
        rd_wait_bg = [counter(f"rd_wait_bg_{k}", t.tCCD_L) for k in range(groups)]
        act_wait_rank = counter("act_wait_rank", t.tRRD_S)
        rd_wait_rank = counter("rd_wait_rank", t.tCCD_S)
        faw = [counter(f"faw_{k}", t.tFAW) for k in range(4)]  # ages of the last 4 ACTs
        pre_to_ref = counter("pre_to_ref", t.tRP)
        rfc_wait = counter("rfc_wait", t.tRFC)

        open_valid = [Signal(name=f"open_valid_{b}") for b in range(banks)]
        open_row = [Signal(len(self.cmd_row), name=f"open_row_{b}") for b in range(banks)]
        m.d.comb += [
            self.open_valid.eq(Cat(open_valid)),
            *[self.open_row[b].eq(open_row[b]) for b in range(banks)],
        ]

        rfc_done = rfc_wait == 0
        act_ok_rank = (act_wait_rank == 0) & (faw[3] == 0) & rfc_done
        rd_ok_rank = (rd_wait_rank == 0) & rfc_done
        for b in range(banks):
            grp = b >> bank_bits
            m.d.comb += [
                self.act_ok[b].eq((act_wait[b] == 0) & (act_wait_bg[grp] == 0) & act_ok_rank),
                self.rd_ok[b].eq((rd_wait[b] == 0) & (rd_wait_bg[grp] == 0) & rd_ok_rank),
                self.pre_ok[b].eq((pre_wait[b] == 0) & rfc_done),
                self.rd_keeps_pre[b].eq(pre_wait[b] >= t.tRTP),
            ]
        pre_to_ref_done = (pre_to_ref == 0) if self._mutation != "ref_ignores_trp" else 1
        m.d.comb += self.ref_ok.eq(~Cat(open_valid).any() & pre_to_ref_done & rfc_done)

        is_act = self.cmd == DramCommand.ACT
        is_rd = self.cmd == DramCommand.RD
        is_pre = self.cmd == DramCommand.PRE
        is_ref = self.cmd == DramCommand.REF
        group = self.cmd_bank[bank_bits:]
        for b in range(banks):
            here = self.cmd_bank == b
            with m.If(is_act & here):
                m.d.sync += [open_valid[b].eq(1), open_row[b].eq(self.cmd_row)]
            with m.If(is_pre & here):
                m.d.sync += open_valid[b].eq(0)
            load(act_wait[b], is_act & here, t.tRC)
            load(act_wait[b], is_pre & here, t.tRP)
            load(rd_wait[b], is_act & here, t.tRCD)
            load(pre_wait[b], is_act & here, t.tRAS)
            load(pre_wait[b], is_rd & here, t.tRTP)
        for k in range(groups):
            load(act_wait_bg[k], is_act & (group == k), t.tRRD_L)
            load(rd_wait_bg[k], is_rd & (group == k), t.tCCD_L)
        load(act_wait_rank, is_act, t.tRRD_S)
        load(rd_wait_rank, is_rd, t.tCCD_S)
        load(pre_to_ref, is_pre, t.tRP)
        load(rfc_wait, is_ref, t.tRFC)
        for ctr, conditions in loads.values():
            nxt = Mux(ctr == 0, 0, ctr - 1)
            for cond, gap in conditions:
                if gap > 1:
                    nxt = Mux(cond & (nxt < gap - 1), gap - 1, nxt)
            m.d.sync += ctr.eq(nxt)

        def dec(ctr):
            return Mux(ctr == 0, 0, ctr - 1)

        with m.If(is_act):
            m.d.sync += faw[0].eq(t.tFAW - 1)
            m.d.sync += [faw[k].eq(dec(faw[k - 1])) for k in range(1, 4)]
        with m.Else():
            m.d.sync += [faw[k].eq(dec(faw[k])) for k in range(4)]
        self.registers = SimpleNamespace(
            act_wait=act_wait,
            rd_wait=rd_wait,
            pre_wait=pre_wait,
            act_wait_bg=act_wait_bg,
            rd_wait_bg=rd_wait_bg,
            act_wait_rank=act_wait_rank,
            rd_wait_rank=rd_wait_rank,
            faw=faw,
            pre_to_ref=pre_to_ref,
            rfc_wait=rfc_wait,
            open_valid=open_valid,
            open_row=open_row,
        )
        return m
