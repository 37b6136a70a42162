"""Rank-NMP issue stage: decode and check each instruction, split lookups into line reads."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .ddr4 import DDR4Geometry
from .isa import (
    CONFIG_LAYOUT,
    DDR_CMD_RD,
    EOP_LAYOUT,
    LOOKUP_OPCODES,
    MAX_VSIZE,
    NMP_INST_LAYOUT,
    Q8_HEADER_BYTES,
    ConfigRegister,
    Opcode,
)
from .logic import COUNTER_WIDTH, count_events
from .params import check_choice, check_int
from .pipeline import wire
from .reorder_buffer import line_request_layout

__all__ = ["COUNTERS", "LANES", "RankIssue", "op_layout"]

#: The issue stage's event counters (``docs/rank_nmp_semantics.md``).
COUNTERS = ("lookups", "lines", "illegal", "malformed")
#: fp32 lanes the Rank-NMP supports.
LANES = (1, 2, 4, 8)
_QUANTISED = (Opcode.SUM_Q8, Opcode.WSUM_Q8)


def op_layout(id_width: int) -> data.StructLayout:
    """One operation-queue entry: a well-formed lookup or an EOP, for the retire stage.

    ``first`` is the lookup's first reorder-buffer slot (its lines are ``first ..
    first + vsize - 1``), ``q8_beats`` the datapath beats of an 8-bit row
    (``ceil(D / lanes)``); ``operand`` holds the lookup's weight bits or the EOP's operands.
    """
    return data.StructLayout(
        {
            "eop": 1,
            "opcode": Opcode,
            "tag": 4,
            "vsize": 3,
            "first": id_width,
            "q8_beats": 10,
            "operand": data.UnionLayout({"weight": 32, "drain": EOP_LAYOUT}),
        }
    )


class RankIssue(wiring.Component):
    """Decode, check and issue the Rank-NMP's instructions, in order.

    Each instruction of ``inst`` is checked as ``docs/rank_nmp_semantics.md`` says (first
    rule that applies): an undefined opcode is dropped and counted in ``illegal``; a
    malformed lookup (``vsize == 0``, a column not a multiple of 8, a vector crossing the
    end of its DRAM row, a fp32 row longer than ``max_elements``, an 8-bit row of D values
    that does not fit in ``vsize`` bursts), a CONFIG to an undefined register or with a
    value outside ``1 .. max_elements``, and an EOP with reserved bits set or ``elements``
    outside ``1 .. max_elements`` are counted in ``malformed``. A malformed lookup or
    CONFIG is dropped (no memory read, D unchanged); a malformed EOP still goes to the
    operation queue, as the packet still ends (the datapath returns nothing for it).

    A well-formed lookup writes one entry on ``op`` (:func:`op_layout`: opcode, weight,
    tag, vsize, its first slot ``head``, and ``ceil(D / lanes)`` for 8-bit rows), counts
    in ``lookups``, then sends its ``vsize`` line reads on ``line`` (lines
    ``column / 8 ..`` of its row; the ``ddr_cmd`` hint on the first, RD on the others),
    one per cycle, each counted in ``lines``; the reorder buffer gives each line the slot
    ``head`` (so the lines of the entry are ``first .. first + vsize - 1``). An EOP writes
    an entry on ``op``. ``CONFIG Q8_ELEMENTS`` sets D (``min(max_elements, 64)`` after
    reset) for the lookups after it. ``INVALIDATE`` waits until the reorder buffer is
    empty (``rob_empty``: every earlier lookup retired) and the RankCache is not busy,
    raises ``invalidate`` for a cycle, and waits for the sweep to end.

    Parameters
    ----------
    lanes : int
        fp32 lanes of the datapath: 1, 2, 4 or 8.
    max_elements : int
        fp32 values per partial sum, a multiple of ``lanes`` up to 1023.
    id_width : int
        Width of a reorder-buffer slot number, 3..8.
    geometry : DDR4Geometry
        The rank's shape (lines per row).

    Attributes
    ----------
    inst : In(stream.Signature(NMP_INST_LAYOUT))
        An instruction is taken when it is done with (after its last line for a lookup).
    op : Out(stream.Signature(op_layout(id_width)))
    line : Out(stream.Signature(line_request_layout(geometry)))
    head : In(id_width)
        The reorder-buffer slot the next line will get.
    rob_empty, cache_busy : In(1)
    invalidate : Out(1)
        One-cycle strobe: empty the RankCache.
    busy : Out(1)
        An instruction is being issued (its lines, or an INVALIDATE).
    lookups, lines, illegal, malformed : Out(32)
        Event counters (wrap around).

    Latency and throughput: a lookup takes ``1 + vsize`` cycles (decode, then a line per
    cycle while ``line`` is ready), an EOP or CONFIG one cycle, a dropped instruction one
    cycle; its first line is on ``line`` the cycle after it is on ``inst``.
    """

    def __init__(
        self, *, lanes: int = 4, max_elements: int = 256, id_width: int = 6, geometry: DDR4Geometry = DDR4Geometry()
    ):
        check_choice("lanes", lanes, LANES)
        check_int("max_elements", max_elements, lanes, 1023)
        if max_elements % lanes:
            raise ValueError(f"max_elements must be a multiple of lanes ({lanes}), got {max_elements!r}")
        check_int("id_width", id_width, 3, 8)
        if not isinstance(geometry, DDR4Geometry):
            raise TypeError(f"geometry must be a DDR4Geometry, got {geometry!r}")
        self._lanes = lanes
        self._max_elements = max_elements
        self._id_width = id_width
        self._geometry = geometry
        super().__init__(
            {
                "inst": In(stream.Signature(NMP_INST_LAYOUT)),
                "op": Out(stream.Signature(op_layout(id_width))),
                "line": Out(stream.Signature(line_request_layout(geometry))),
                "head": In(id_width),
                "rob_empty": In(1),
                "cache_busy": In(1),
                "invalidate": Out(1),
                "busy": Out(1),
                **{name: Out(COUNTER_WIDTH) for name in COUNTERS},
            }
        )

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def max_elements(self) -> int:
        return self._max_elements

    @property
    def id_width(self) -> int:
        return self._id_width

    @property
    def geometry(self) -> DDR4Geometry:
        return self._geometry

    @property
    def default_q8_elements(self) -> int:
        """D after reset: ``min(max_elements, 64)``."""
        return min(self._max_elements, 64)

    def elaborate(self, platform):
        m = Module()
        g = self._geometry
        lanes, max_elements = self._lanes, self._max_elements
        inst = self.inst.payload
        opcode = inst.opcode
        column = inst.daddr.column
        vsize = inst.vsize

        q8_elements = Signal(10, init=self.default_q8_elements)  # D
        line_k = Signal(range(MAX_VSIZE + 1))  # line of the lookup being issued

        # ---- checks (docs/rank_nmp_semantics.md, in its order) ------------------------
        is_lookup = wire(m, "is_lookup", Cat(opcode == o for o in sorted(LOOKUP_OPCODES)).any())
        is_q8 = wire(m, "is_q8", Cat(opcode == o for o in _QUANTISED).any())
        first_line = wire(m, "first_line", column >> (g.burst_columns.bit_length() - 1))
        fp32_elements = (g.burst_bytes // 4) * vsize
        lookup_bad = wire(
            m,
            "lookup_malformed",
            (
                (vsize == 0)
                | (column[: g.burst_columns.bit_length() - 1] != 0)
                | (first_line + vsize > g.lines_per_row)
                | Mux(is_q8, Q8_HEADER_BYTES + q8_elements > g.burst_bytes * vsize, fp32_elements > max_elements)
            ),
        )
        config = data.View(CONFIG_LAYOUT, inst.daddr.as_value())
        config_ok = wire(
            m,
            "config_ok",
            (config.register == ConfigRegister.Q8_ELEMENTS) & (config.value >= 1) & (config.value <= max_elements),
        )
        eop = data.View(EOP_LAYOUT, inst.daddr.as_value())
        eop_ok = wire(m, "eop_ok", (eop.reserved == 0) & (eop.elements >= 1) & (eop.elements <= max_elements))

        events = {name: Signal(name=f"{name}_event") for name in COUNTERS}
        count_events(m, events, self)

        m.d.comb += [
            self.op.payload.eop.eq(opcode == Opcode.EOP),
            self.op.payload.opcode.eq(opcode),
            self.op.payload.tag.eq(inst.psum_tag),
            self.op.payload.vsize.eq(vsize),
            self.op.payload.first.eq(self.head),
            self.op.payload.q8_beats.eq((q8_elements + lanes - 1) >> (lanes.bit_length() - 1)),
            self.op.payload.operand.eq(Mux(opcode == Opcode.EOP, inst.daddr.as_value(), inst.weight)),
            self.line.payload.addr.bank_group.eq(inst.daddr.bank_group),
            self.line.payload.addr.bank.eq(inst.daddr.bank),
            self.line.payload.addr.row.eq(inst.daddr.row),
            self.line.payload.addr.line.eq(first_line + line_k),
            self.line.payload.allocate.eq(inst.locality),
            self.line.payload.hint.eq(Mux(line_k == 0, inst.ddr_cmd, DDR_CMD_RD)),
        ]
        with m.FSM(name="issue"):
            with m.State("DECODE"):
                with m.If(self.inst.valid):
                    with m.If(is_lookup):
                        with m.If(lookup_bad):
                            m.d.comb += [self.inst.ready.eq(1), events["malformed"].eq(1)]
                        with m.Else():
                            m.d.comb += self.op.valid.eq(1)
                            with m.If(self.op.ready):
                                m.d.comb += events["lookups"].eq(1)
                                m.d.sync += line_k.eq(0)
                                m.next = "LINES"
                    with m.Elif(opcode == Opcode.EOP):
                        m.d.comb += [
                            self.op.valid.eq(1),
                            self.inst.ready.eq(self.op.ready),
                            events["malformed"].eq(self.op.ready & ~eop_ok),
                        ]
                    with m.Elif(opcode == Opcode.CONFIG):
                        m.d.comb += [self.inst.ready.eq(1), events["malformed"].eq(~config_ok)]
                        with m.If(config_ok):
                            m.d.sync += q8_elements.eq(config.value)
                    with m.Elif(opcode == Opcode.INVALIDATE):
                        m.next = "INVALIDATE_WAIT"
                    with m.Else():
                        m.d.comb += [self.inst.ready.eq(1), events["illegal"].eq(1)]
            with m.State("LINES"):
                m.d.comb += [self.busy.eq(1), self.line.valid.eq(1)]
                with m.If(self.line.ready):
                    m.d.comb += events["lines"].eq(1)
                    m.d.sync += line_k.eq(line_k + 1)
                    with m.If(line_k + 1 == vsize):
                        m.d.comb += self.inst.ready.eq(1)
                        m.next = "DECODE"
            with m.State("INVALIDATE_WAIT"):
                m.d.comb += self.busy.eq(1)
                with m.If(self.rob_empty & ~self.cache_busy):
                    m.d.comb += self.invalidate.eq(1)
                    m.next = "INVALIDATE_SWEEP"
            with m.State("INVALIDATE_SWEEP"):
                m.d.comb += self.busy.eq(1)
                with m.If(~self.cache_busy):
                    m.d.comb += self.inst.ready.eq(1)
                    m.next = "DECODE"
        return m
