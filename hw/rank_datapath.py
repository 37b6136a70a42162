"""Rank-NMP datapath: ``lanes`` fp32 lanes accumulating into the partial-sum register file."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .fp32_add import FP32Adder
from .fp32_mul import FP32Multiplier
from .isa import EOP_LAYOUT
from .logic import COUNTER_WIDTH, lowest_one_index
from .params import check_choice, check_latency, check_mutation
from .pipeline import delay, wire

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

    **Partial-sum marks.** The register file (``16 x max_elements`` fp32 values, a memory)
    is never cleared. Per tag a register holds a *mark*: how many beats of the tag the
    packet has written (one more than the highest beat written back). An entry at or beyond
    its tag's mark reads as ``+0.0``, both when a beat is accumulated into it and when it is
    drained. A drain resets every mark in one cycle, so every tag starts the next packet at
    ``+0.0`` over its whole length, whatever the drain's mask and length; after reset the
    marks are zero, so the datapath takes beats in the first cycle. This needs the beats of
    a tag within a packet to be written as a prefix: a beat ``b`` of a tag may only come
    after beats ``0 .. b - 1`` of that tag in the same packet (every row starts at beat 0
    and sends its beats in order, which the Rank-NMP's retire stage does). A beat with
    ``beat >= max_beats`` is accepted and discarded.

    **Drain.** A ``drain`` request (an EOP's operands) waits until every accepted beat has
    been accumulated; no beat is accepted on ``i`` while it is pending, so beats sent after
    it go to the next packet. A malformed request (``reserved != 0``, ``elements == 0`` or
    ``elements > max_elements``, as in ``docs/rank_nmp_semantics.md``) returns nothing.
    Otherwise the tags of ``tag_mask`` stream on ``o`` in ascending order,
    ``ceil(elements / lanes)`` beats each, ``last`` on the final beat of the drain (an empty
    mask returns nothing), and ``eop_mismatches`` is increased by the number of tags the
    packet wrote that are not in ``tag_mask`` or were written beyond
    ``ceil(elements / lanes)`` beats. ``drain`` is acknowledged with the last beat (in the
    cycle it is seen when nothing is returned), and every mark is reset then.

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
        Beats are in flight in the arithmetic pipeline, or a drain is streaming.
    eop_mismatches : Out(32)
        Tags written in a packet but missing from its drain's mask or longer than its
        ``elements`` (counted once per drain and tag; wraps around).

    Latency from a beat on ``i`` to its register-file write: ``mul_latency + 2 * add_latency``
    cycles. Drain: the first beat is valid the cycle after the pipeline empties; then one
    beat per cycle while ``o`` is ready, with no gap between tags. Throughput one beat per
    cycle on ``i`` (a beat waits only on the interlock).

    ``registers`` (set by :meth:`elaborate`, for the formal specs of ``verif/formal``):
    ``marks`` (per tag), ``pending``, ``draining``, ``written_valid`` (a write-back in this
    cycle), ``clear_marks``, ``lane0_units`` (lane 0's multiplier and adders) and
    ``accumulate_stages`` (valid bits of the operations in the accumulate adder).
    """

    #: Test-only deliberate bugs (``mutation``), to show that the formal properties bite:
    #: ``"accept_during_drain"`` (beats are taken while a drain waits), ``"drain_before_writeback"``
    #: (a drain starts with beats still in the pipeline), ``"keep_marks"`` (the marks survive
    #: a drain), ``"drain_reads_stale"`` (the drain returns entries past the mark),
    #: ``"drain_ignores_ready"`` (the drain moves on while ``o`` is not ready).
    MUTATIONS = (
        "accept_during_drain",
        "drain_before_writeback",
        "keep_marks",
        "drain_reads_stale",
        "drain_ignores_ready",
    )

    def __init__(
        self,
        *,
        lanes: int = 4,
        max_elements: int = 128,
        mul_latency: int = 4,
        add_latency: int = 3,
        mutation: str | None = None,
    ):
        self._mutation = check_mutation(mutation, self.MUTATIONS)
        check_choice("lanes", lanes, _LANES)
        if (
            not isinstance(max_elements, int)
            or isinstance(max_elements, bool)
            or not lanes <= max_elements <= 1023
            or max_elements % lanes
        ):
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
        super().__init__(
            {
                "i": In(
                    stream.Signature(data.StructLayout({"a": vector, "b": vector, "c": vector, "tag": 4, "beat": beat}))
                ),
                "drain": In(stream.Signature(EOP_LAYOUT)),
                "o": Out(stream.Signature(data.StructLayout({"data": vector, "tag": 4, "beat": beat, "last": 1}))),
                "busy": Out(1),
                "eop_mismatches": Out(COUNTER_WIDTH),
            }
        )

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
        beat_width = len(self.i.payload.beat)

        m.submodules.psums = psums = Memory(shape=data.ArrayLayout(32, lanes), depth=_TAGS * max_beats, init=[])
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

        # The entry of each operation, (tag, beat), travels beside the units, moving when
        # the unit beside it moves.
        pos_layout = data.StructLayout({"tag": 4, "beat": beat_width})
        pos_in = Signal(pos_layout)
        m.d.comb += [pos_in.tag.eq(self.i.payload.tag), pos_in.beat.eq(self.i.payload.beat)]
        c = delay(m, self.i.payload.c, mul.latency, enable=mul.i.ready, name="c")
        pos_mul = delay(m, pos_in, mul.latency, enable=mul.i.ready, name="pos_mul")
        pos_acc = data.View(pos_layout, delay(m, pos_mul, add_c.latency, enable=add_c.i.ready, name="pos_acc"))

        # Interlock: the entry an operation would read is being updated by one of the
        # operations in the accumulate adders (their entries, by stage).
        in_flight = []
        valid_d, pos_d = add_acc.i.valid & add_acc.i.ready, pos_acc
        for k in range(self._add_latency):
            valid_q = Signal(name=f"acc_valid_d{k}")
            pos_q = Signal(pos_layout, name=f"acc_pos_d{k}")
            m.d.sync += [valid_q.eq(valid_d), pos_q.eq(pos_d)]
            in_flight.append((valid_q, pos_q))
            valid_d, pos_d = valid_q, pos_q
        hazard = Signal()
        m.d.comb += hazard.eq(add_c.o.valid & Cat(v & (p.as_value() == pos_acc.as_value()) for v, p in in_flight).any())
        written_valid, written_pos = in_flight[-1]

        # Marks: beats of each tag written in this packet (the written entries are a prefix).
        marks = Array(Signal(range(max_beats + 1), name=f"mark{t}") for t in range(_TAGS))
        clear_marks = Signal()
        with m.If(clear_marks if self._mutation != "keep_marks" else 0):
            m.d.sync += [marks[t].eq(0) for t in range(_TAGS)]
        with m.Elif(written_valid & (written_pos.beat < max_beats) & (written_pos.beat >= marks[written_pos.tag])):
            m.d.sync += marks[written_pos.tag].eq(written_pos.beat + 1)
        acc_fresh = wire(m, "acc_fresh", pos_acc.beat >= marks[pos_acc.tag])

        pending = Signal(range(self.latency * 2 + 2))  # beats accepted, not yet written back
        draining = Signal()
        accept = Signal()
        m.d.comb += [
            self.busy.eq((pending != 0) | draining),
            accept.eq(self.i.valid & self.i.ready),
        ]
        with m.If(accept & ~written_valid):
            m.d.sync += pending.eq(pending + 1)
        with m.Elif(~accept & written_valid):
            m.d.sync += pending.eq(pending - 1)

        for k in range(lanes):
            m.d.comb += [
                muls[k].i.valid.eq(
                    self.i.valid & ~self.drain.valid if self._mutation != "accept_during_drain" else self.i.valid
                ),
                muls[k].i.payload.a.eq(self.i.payload.a[k]),
                muls[k].i.payload.b.eq(self.i.payload.b[k]),
                adds_c[k].i.valid.eq(muls[k].o.valid),
                adds_c[k].i.payload.a.eq(muls[k].o.payload.result),
                adds_c[k].i.payload.b.eq(c[k * 32 : (k + 1) * 32]),
                muls[k].o.ready.eq(adds_c[k].i.ready),
                adds_acc[k].i.valid.eq(adds_c[k].o.valid & ~hazard),
                adds_acc[k].i.payload.a.eq(Mux(acc_fresh, 0, rd.data[k])),  # +0.0 past the mark
                adds_acc[k].i.payload.b.eq(adds_c[k].o.payload.result),
                adds_c[k].o.ready.eq(adds_acc[k].i.ready & ~hazard),
                adds_acc[k].o.ready.eq(1),  # the register file always takes the sum
                wr.data[k].eq(adds_acc[k].o.payload.result),
            ]
        m.d.comb += [
            self.i.ready.eq(
                mul.i.ready & ~self.drain.valid if self._mutation != "accept_during_drain" else mul.i.ready
            ),
            wr.addr.eq(entry(written_pos.tag, written_pos.beat)),
            wr.en.eq(written_valid & (written_pos.beat < max_beats)),
        ]

        # Drain: the request's checks and mismatches, then the tags of the mask.
        request = self.drain.payload
        elements = request.elements
        wanted = wire(m, "drain_beats", (elements + lanes - 1) >> (lanes.bit_length() - 1))
        well_formed = wire(
            m, "drain_well_formed", (request.reserved == 0) & (elements != 0) & (elements <= self._max_elements)
        )
        mismatch = Signal(_TAGS)
        for t in range(_TAGS):
            m.d.comb += mismatch[t].eq((marks[t] != 0) & (~request.tag_mask[t] | (marks[t] > wanted)))
        mismatches = Signal(32)
        m.d.comb += self.eop_mismatches.eq(mismatches)

        tag = Signal(4)
        beat = Signal(beat_width)
        mask = Signal(_TAGS)  # the drain's mask, held while it runs
        beats = Signal(range(max_beats + 1))
        later = wire(m, "drain_later", mask & ~((Const(2, _TAGS + 1) << tag) - 1)[:_TAGS])  # mask tags above tag
        next_tag = lowest_one_index(m, later, "drain_next_tag")
        first_tag = lowest_one_index(m, request.tag_mask, "drain_first_tag")
        last_beat = wire(m, "drain_last_beat", beat + 1 >= beats)
        with m.FSM(name="drain"):
            with m.State("ACCUMULATE"):
                m.d.comb += rd.addr.eq(entry(pos_acc.tag, pos_acc.beat))
                with m.If(
                    self.drain.valid & (pending == 0)
                    if self._mutation != "drain_before_writeback"
                    else self.drain.valid
                ):
                    with m.If(well_formed):
                        m.d.sync += mismatches.eq(mismatches + sum(mismatch[t] for t in range(_TAGS)))
                    with m.If(well_formed & (request.tag_mask != 0)):
                        m.d.sync += [tag.eq(first_tag), beat.eq(0), mask.eq(request.tag_mask), beats.eq(wanted)]
                        m.next = "DRAIN"
                    with m.Else():  # nothing to return
                        m.d.comb += [self.drain.ready.eq(1), clear_marks.eq(1)]
            with m.State("DRAIN"):
                last_tag = wire(m, "drain_last_tag", later == 0)
                m.d.comb += [
                    draining.eq(1),
                    rd.addr.eq(entry(tag, beat)),
                    self.o.valid.eq(1),
                    self.o.payload.data.eq(Mux(beat >= marks[tag], 0, rd.data.as_value())),
                    self.o.payload.tag.eq(tag),
                    self.o.payload.beat.eq(beat),
                    self.o.payload.last.eq(last_tag & last_beat),
                ]
                with m.If(self.o.ready if self._mutation != "drain_ignores_ready" else 1):
                    m.d.sync += beat.eq(beat + 1)
                    with m.If(last_beat):
                        m.d.sync += [beat.eq(0), tag.eq(next_tag)]
                        with m.If(last_tag):
                            m.d.comb += [self.drain.ready.eq(1), clear_marks.eq(1)]
                            m.next = "ACCUMULATE"
        self.registers = SimpleNamespace(
            marks=list(marks),
            pending=pending,
            draining=draining,
            written_valid=written_valid,
            clear_marks=clear_marks,
            lane0_units=(mul, add_c, add_acc),
            accumulate_stages=[valid for valid, _ in in_flight],
        )
        return m
