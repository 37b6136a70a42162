"""Rank-NMP datapath: ``lanes`` fp32 lanes accumulating into the partial-sum register file."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .fp32_add import FP32Adder
from .fp32_mul import FP32Multiplier
from .isa import EOP_LAYOUT
from .pipeline import delay
from .params import check_latency

__all__ = ["RankDatapath"]

_TAGS = 16
_LANES = (1, 2, 4, 8, 16)


class RankDatapath(wiring.Component):
    """Accumulate ``psum[tag][beat] += (a * b) + c`` lane-wise, and drain the sums at end of packet.

    Each beat on ``i`` carries ``lanes`` operand triples; lane ``k`` of beat ``beat`` of
    ``tag`` holds element ``beat * lanes + k`` of the bag's vector. Every lookup operator
    is this expression (see :class:`hw.fp32_lane.FP32Lane`: sum ``a = 1.0, c = -0.0``;
    weighted ``a = w, c = -0.0``; 8-bit ``a = s', b = float(q), c = b'``), and the sum is
    ``acc = acc + ((a * b) + c)``, each operation rounded, in the order beats arrive.

    Organisation: per lane a multiplier and an adder compute ``y = (a * b) + c`` (not in
    any loop), then an accumulate adder computes ``acc + y`` with ``acc`` read from the
    register file in the cycle the operation enters it, and writes the sum back when it
    leaves. An interlock holds a beat whose register-file entry is still being updated by
    an earlier beat (fewer than ``add_latency`` cycles ahead of it), so any beat order is
    correct; beats of one entry ``add_latency + 1`` or more cycles apart (every fp32 row of
    the default 4 lanes, whose 64 B burst spans 4 beats) never wait.

    The register file holds ``16 x max_elements`` fp32 values. Memories keep their contents
    through reset, so after reset the datapath first writes ``+0.0`` to every entry
    (``16 * max_elements / lanes`` cycles, ``i`` not ready meanwhile).
    A drain asking for more than ``max_elements`` values returns ``max_elements``.
    A ``drain`` request waits until every accepted beat has been accumulated, then streams
    the tags of ``tag_mask`` in ascending order, ``ceil(elements / lanes)`` beats each, on
    ``o``, clearing each entry to ``+0.0`` as it leaves; ``drain`` is acknowledged with the
    last beat. No beat is accepted on ``i`` while a drain is pending, so beats sent after a
    drain go to the next packet.

    Parameters
    ----------
    lanes : int
        fp32 lanes: 1, 2, 4, 8 or 16 (default 4 = 16 B per cycle, a rank's peak).
    max_elements : int
        fp32 values per partial sum, a multiple of ``lanes`` (default 128 = 512 B).
    mul_latency, add_latency : int
        Latencies of the fp32 units (default 4 and 3, as in the paper).

    Attributes
    ----------
    i : In(stream.Signature(StructLayout({"a", "b", "c": ArrayLayout(32, lanes), "tag": 4, "beat": B})))
    drain : In(stream.Signature(EOP_LAYOUT))
    o : Out(stream.Signature(StructLayout({"data": ArrayLayout(32, lanes), "tag": 4, "beat": B, "last": 1})))
    busy : Out(1)
        Beats are in flight in the arithmetic pipeline, or the register file is being
        cleared after reset.

    Latency from a beat on ``i`` to its register-file write: ``mul_latency + 2 * add_latency``
    cycles. Drain: the first beat is valid the cycle after the pipeline empties; then one
    beat per cycle while ``o`` is ready.
    """

    def __init__(self, *, lanes: int = 4, max_elements: int = 128,
                 mul_latency: int = 4, add_latency: int = 3):
        if isinstance(lanes, bool) or lanes not in _LANES:
            raise ValueError(f"lanes must be one of {', '.join(map(str, _LANES))}, got {lanes!r}")
        if (not isinstance(max_elements, int) or isinstance(max_elements, bool)
                or not lanes <= max_elements <= 1023 or max_elements % lanes):
            raise ValueError(
                f"max_elements must be a multiple of lanes ({lanes}) from {lanes} to 1023, got {max_elements!r}"
            )
        check_latency("mul_latency", mul_latency)
        check_latency("add_latency", add_latency)
        self._lanes = lanes
        self._max_elements = max_elements
        self._mul_latency = mul_latency
        self._add_latency = add_latency
        vector = data.ArrayLayout(32, lanes)
        beat = max(1, (self.max_beats - 1).bit_length())
        super().__init__({
            "i": In(stream.Signature(data.StructLayout(
                {"a": vector, "b": vector, "c": vector, "tag": 4, "beat": beat}))),
            "drain": In(stream.Signature(EOP_LAYOUT)),
            "o": Out(stream.Signature(data.StructLayout(
                {"data": vector, "tag": 4, "beat": beat, "last": 1}))),
            "busy": Out(1),
        })

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def max_elements(self) -> int:
        return self._max_elements

    @property
    def max_beats(self) -> int:
        return self._max_elements // self._lanes

    @property
    def mul_latency(self) -> int:
        return self._mul_latency

    @property
    def add_latency(self) -> int:
        return self._add_latency

    @property
    def latency(self) -> int:
        return self._mul_latency + 2 * self._add_latency

    def elaborate(self, platform):
        m = Module()
        lanes, max_beats = self._lanes, self.max_beats
        vector = data.ArrayLayout(32, lanes)

        m.submodules.psums = psums = Memory(
            shape=vector, depth=_TAGS * max_beats, init=[])
        rd = psums.read_port(domain="comb")
        wr = psums.write_port()

        muls = [FP32Multiplier(latency=self._mul_latency) for _ in range(lanes)]
        adds_c = [FP32Adder(latency=self._add_latency) for _ in range(lanes)]
        adds_acc = [FP32Adder(latency=self._add_latency) for _ in range(lanes)]
        for k in range(lanes):
            m.submodules[f"mul{k}"] = muls[k]
            m.submodules[f"add_c{k}"] = adds_c[k]
            m.submodules[f"add_acc{k}"] = adds_acc[k]
        mul, add_c, add_acc = muls[0], adds_c[0], adds_acc[0]  # lane 0 speaks for all

        def entry(tag, beat):
            return tag * max_beats + beat

        # Operands travel beside the units, moving when the unit beside them moves.
        address = Signal(range(_TAGS * max_beats))
        m.d.comb += address.eq(entry(self.i.payload.tag, self.i.payload.beat))
        c = delay(m, self.i.payload.c, mul.latency, enable=mul.i.ready, name="c")
        addr_mul = delay(m, address, mul.latency, enable=mul.i.ready, name="addr_mul")
        addr_acc = delay(m, addr_mul, add_c.latency, enable=add_c.i.ready, name="addr_add")

        # Interlock: the entry an operation would read is being updated by one of the
        # operations in the accumulate adders (their addresses, by stage).
        in_flight = []
        valid_d, addr_d = add_acc.i.valid & add_acc.i.ready, addr_acc
        for k in range(self._add_latency):
            valid_q = Signal(name=f"acc_valid_d{k}")
            addr_q = Signal(range(_TAGS * max_beats), name=f"acc_addr_d{k}")
            m.d.sync += [valid_q.eq(valid_d), addr_q.eq(addr_d)]
            in_flight.append((valid_q, addr_q))
            valid_d, addr_d = valid_q, addr_q
        hazard = Signal()
        m.d.comb += hazard.eq(
            add_c.o.valid & Cat(v & (a == addr_acc) for v, a in in_flight).any())
        written_valid, written_addr = in_flight[-1]

        clearing = Signal()  # the register file is being zeroed after reset
        pending = Signal(range(self.latency * 2 + 2))  # beats accepted, not yet written back
        draining = Signal()
        accept = Signal()
        m.d.comb += [
            self.busy.eq((pending != 0) | clearing),
            accept.eq(self.i.valid & self.i.ready),
        ]
        with m.If(accept & ~written_valid):
            m.d.sync += pending.eq(pending + 1)
        with m.Elif(~accept & written_valid):
            m.d.sync += pending.eq(pending - 1)

        for k in range(lanes):
            m.d.comb += [
                muls[k].i.valid.eq(self.i.valid & ~self.drain.valid & ~clearing),
                muls[k].i.payload.a.eq(self.i.payload.a[k]),
                muls[k].i.payload.b.eq(self.i.payload.b[k]),
                adds_c[k].i.valid.eq(muls[k].o.valid),
                adds_c[k].i.payload.a.eq(muls[k].o.payload.result),
                adds_c[k].i.payload.b.eq(c[k * 32:(k + 1) * 32]),
                muls[k].o.ready.eq(adds_c[k].i.ready),
                adds_acc[k].i.valid.eq(adds_c[k].o.valid & ~hazard),
                adds_acc[k].i.payload.a.eq(rd.data[k]),
                adds_acc[k].i.payload.b.eq(adds_c[k].o.payload.result),
                adds_c[k].o.ready.eq(adds_acc[k].i.ready & ~hazard),
                adds_acc[k].o.ready.eq(1),  # the register file always takes the sum
                wr.data[k].eq(adds_acc[k].o.payload.result),
            ]
        m.d.comb += self.i.ready.eq(mul.i.ready & ~self.drain.valid & ~clearing)

        # Drain: walk the tags of the mask, clearing each beat as it leaves.
        tag = Signal(4)
        beat = Signal.like(self.o.payload.beat)
        mask = Signal(_TAGS)  # the drain request, held while it runs
        beats = Signal(range(max_beats + 1))
        later = Signal(_TAGS)  # tags of the mask above the current one
        m.d.comb += later.eq(mask & ~((Const(2, _TAGS + 1) << tag) - 1)[:_TAGS])
        last_beat = Signal()
        m.d.comb += last_beat.eq(beat + 1 >= beats)

        clear_addr = Signal(range(_TAGS * max_beats))
        with m.FSM():
            with m.State("CLEAR"):
                # Memories are not reset: zero every entry after reset before accepting work.
                m.d.comb += [clearing.eq(1), wr.addr.eq(clear_addr), wr.data.eq(0), wr.en.eq(1)]
                m.d.sync += clear_addr.eq(clear_addr + 1)
                with m.If(clear_addr == _TAGS * max_beats - 1):
                    m.next = "ACCUMULATE"
            with m.State("ACCUMULATE"):
                m.d.comb += [
                    rd.addr.eq(addr_acc),
                    wr.addr.eq(written_addr),
                    wr.en.eq(written_valid),
                ]
                with m.If(self.drain.valid & ~self.busy):
                    elements = self.drain.payload.elements
                    m.d.sync += [
                        tag.eq(0),
                        beat.eq(0),
                        mask.eq(self.drain.payload.tag_mask),
                        beats.eq(Mux(elements > self._max_elements, max_beats,
                                     (elements + lanes - 1) // lanes)),
                    ]
                    m.next = "FIND"
            with m.State("FIND"):
                # Move to the next tag of the mask (tag is the first candidate).
                with m.If((mask == 0) | (beats == 0)):
                    m.d.comb += self.drain.ready.eq(1)
                    m.next = "ACCUMULATE"
                with m.Elif(mask.bit_select(tag, 1)):
                    m.next = "DRAIN"
                with m.Else():
                    m.d.sync += tag.eq(tag + 1)
            with m.State("DRAIN"):
                last_tag = Signal()
                m.d.comb += [
                    last_tag.eq(later == 0),
                    rd.addr.eq(entry(tag, beat)),
                    self.o.valid.eq(1),
                    self.o.payload.data.eq(rd.data),
                    self.o.payload.tag.eq(tag),
                    self.o.payload.beat.eq(beat),
                    self.o.payload.last.eq(last_tag & last_beat),
                ]
                with m.If(self.o.ready):
                    m.d.comb += [
                        wr.addr.eq(entry(tag, beat)),
                        wr.data.eq(0),
                        wr.en.eq(1),
                    ]
                    m.d.sync += beat.eq(beat + 1)
                    with m.If(last_beat):
                        m.d.sync += beat.eq(0)
                        with m.If(last_tag):
                            m.d.comb += self.drain.ready.eq(1)
                            m.next = "ACCUMULATE"
                        with m.Else():
                            m.d.sync += tag.eq(tag + 1)
                            m.next = "FIND"
        return m
