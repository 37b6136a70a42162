"""Rank-NMP retire stage: operations in instruction order into the datapath."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .ddr4 import DDR4Geometry
from .fp32_mul import FP32Multiplier
from .isa import EOP_LAYOUT, Q8_HEADER_BYTES, Opcode
from .params import check_choice, check_int, check_latency, check_mutation
from .pipeline import wire
from .rank_issue import LANES, op_layout

__all__ = ["RankRetire", "uint8_to_fp32"]

_ONE = 0x3F800000  # 1.0f
_MINUS_ZERO = 0x80000000  # -0.0f: the exact identity of addition
_QUANTISED = (Opcode.SUM_Q8, Opcode.WSUM_Q8)
_WEIGHTED = (Opcode.WSUM, Opcode.WSUM_Q8)


def uint8_to_fp32(q) -> Cat:
    """The binary32 value of an 8-bit unsigned integer (exact), as combinational logic."""
    result = Const(0, 32)
    for msb in range(8):  # the highest set bit decides the exponent
        mantissa = (q << (23 - msb))[:23]
        result = Mux(
            q[msb:].any() & ~q[msb + 1 :].any() if msb < 7 else q[7],
            Cat(mantissa, Const(127 + msb, 8), Const(0, 1)),
            result,
        )
    return result


class RankRetire(wiring.Component):
    """Take operations in instruction order and feed their lines to the datapath.

    The head of ``op`` (:func:`hw.rank_issue.op_layout`) is handled when its data is in the
    reorder buffer (``line_ready`` of ``slot``):

    * ``SUM`` / ``WSUM``: each line of the lookup streams into the datapath as soon as its
      slot is ready, ``lanes`` values per cycle (``64 / (4 * lanes)`` beats per line; beat
      ``k * beats_per_line + j`` for line ``k``), ``a = weight`` (``1.0`` for ``SUM``,
      whatever the weight bits), ``b = x``, ``c = -0.0``. The slot is freed with the line's
      last beat, and the next operation follows with no bubble.
    * ``SUM_Q8`` / ``WSUM_Q8``: the first line holds scale and bias. A weighted row first
      computes ``s' = w * scale``, ``b' = w * bias`` with two multipliers
      (``mul_latency`` cycles); an unweighted one uses scale and bias as they are
      (``1.0 * x == x``, the weight bits ignored). Then ``q8_beats`` beats of
      ``lanes`` bytes each stream from byte 8 on, ``a = s'``, ``b = float(q)``, ``c = b'``;
      a slot is freed as the stream leaves it, and the lines past the last beat once they
      are in (a slot is reused only when no write to it is pending). Cost: one cycle to
      start, one to release the last slot, plus the prologue.
    * ``EOP``: the drain request goes to the datapath's ``drain`` when the operation
      reaches the head (every earlier lookup has entered the datapath; the datapath waits
      for them to be accumulated). The operation leaves the queue when the drain is done.

    Parameters
    ----------
    lanes : int
        fp32 lanes: 1, 2, 4 or 8.
    max_elements : int
        fp32 values per partial sum (sets the width of the datapath's ``beat``).
    id_width : int
        Width of a reorder-buffer slot number, 3..8.
    mul_latency : int
        Latency of the prologue's fp32 multipliers.
    geometry : DDR4Geometry
        The rank's shape (64 B lines).

    Attributes
    ----------
    op : In(stream.Signature(op_layout(id_width)))
    slot : Out(id_width)
        The reorder-buffer slot read this cycle.
    line : In(8 * burst_bytes)
    line_ready : In(1)
        ``slot``'s line is in the reorder buffer.
    free : Out(1)
        Release the oldest reorder-buffer slot.
    tail : In(id_width)
        The oldest reorder-buffer slot.
    beat : Out(stream.Signature(StructLayout({"a", "b", "c": ArrayLayout(32, lanes), "tag": 4, "beat": B})))
        To ``RankDatapath.i``.
    drain : Out(stream.Signature(EOP_LAYOUT))
        To ``RankDatapath.drain``.
    busy : Out(1)
        An 8-bit row is being handled (prologue, stream or release).

    Latency: a ready line's first beat is on ``beat`` in the cycle its operation is at the
    head of ``op``; a weighted 8-bit row's first beat ``mul_latency + 1`` cycles after.

    ``registers`` (set by :meth:`elaborate`, for the formal specs of ``verif/formal``):
    ``k`` (line of a fp32 lookup), ``j`` (beat within the line), ``group`` (beat of an 8-bit
    row), ``pos`` and the state flags ``running``, ``streaming_q8`` and ``releasing``. ``mutation`` (tests
    only, default ``None``): ``"eop_ignores_drain_ready"`` takes an EOP off ``op`` whether or
    not ``drain`` took it; ``"skip_last_line"`` ends a fp32 lookup one line early;
    ``"q8_one_beat_short"`` ends an 8-bit row one beat early; ``"beat_without_op"`` offers
    fp32 beats with no operation at the head; ``"tag_zero"`` sends every beat to tag 0.
    """

    #: Test-only deliberate bugs (``mutation``), to show that the formal properties bite.
    MUTATIONS = ("eop_ignores_drain_ready", "skip_last_line", "q8_one_beat_short", "beat_without_op", "tag_zero")

    def __init__(
        self,
        *,
        lanes: int = 4,
        max_elements: int = 256,
        id_width: int = 6,
        mul_latency: int = 4,
        geometry: DDR4Geometry = DDR4Geometry(),
        mutation: str | None = None,
    ):
        self._mutation = check_mutation(mutation, self.MUTATIONS)
        check_choice("lanes", lanes, LANES)
        check_int("max_elements", max_elements, lanes, 1023)
        if max_elements % lanes:
            raise ValueError(f"max_elements must be a multiple of lanes ({lanes}), got {max_elements!r}")
        check_int("id_width", id_width, 3, 8)
        check_latency("mul_latency", mul_latency)
        if not isinstance(geometry, DDR4Geometry):
            raise TypeError(f"geometry must be a DDR4Geometry, got {geometry!r}")
        self._lanes = lanes
        self._max_elements = max_elements
        self._id_width = id_width
        self._mul_latency = mul_latency
        self._geometry = geometry
        vector = data.ArrayLayout(32, lanes)
        beat = max(1, (max_elements // lanes - 1).bit_length())
        super().__init__(
            {
                "op": In(stream.Signature(op_layout(id_width))),
                "slot": Out(id_width),
                "line": In(8 * geometry.burst_bytes),
                "line_ready": In(1),
                "free": Out(1),
                "tail": In(id_width),
                "beat": Out(
                    stream.Signature(data.StructLayout({"a": vector, "b": vector, "c": vector, "tag": 4, "beat": beat}))
                ),
                "drain": Out(stream.Signature(EOP_LAYOUT)),
                "busy": Out(1),
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
    def mul_latency(self) -> int:
        return self._mul_latency

    @property
    def geometry(self) -> DDR4Geometry:
        return self._geometry

    def elaborate(self, platform):
        m = Module()
        g = self._geometry
        lanes = self._lanes
        shift = lanes.bit_length() - 1
        line_bytes = g.burst_bytes
        beats_per_line = line_bytes // (4 * lanes)  # datapath beats of fp32 per line
        op = self.op.payload
        line = self.line
        out = self.beat.payload

        k = Signal(3)  # line of the fp32 lookup
        j = Signal(range(max(beats_per_line, 2)))  # beat within the line
        slot = self.slot
        m.d.comb += slot.eq(op.first + k)
        weighted = wire(m, "weighted", Cat(op.opcode == o for o in _WEIGHTED).any())
        quantised = wire(m, "quantised", Cat(op.opcode == o for o in _QUANTISED).any())
        weight = wire(m, "weight", Mux(weighted, op.operand.weight, _ONE))

        # 8-bit rows: s' = w * scale and b' = w * bias, once per row.
        m.submodules.mul_scale = mul_scale = FP32Multiplier(latency=self._mul_latency)
        m.submodules.mul_bias = mul_bias = FP32Multiplier(latency=self._mul_latency)
        scale_w = Signal(32)
        bias_w = Signal(32)
        m.d.comb += [
            mul_scale.i.payload.a.eq(weight),
            mul_scale.i.payload.b.eq(line[0:32]),
            mul_bias.i.payload.a.eq(weight),
            mul_bias.i.payload.b.eq(line[32:64]),
            mul_scale.o.ready.eq(1),
            mul_bias.o.ready.eq(1),
        ]
        # Byte offset of the next 8-bit group in the row: a multiple of lanes (8 + n * lanes,
        # lanes <= 8), so a group never straddles two lines.
        pos = Signal(range(Q8_HEADER_BYTES + 1024 + line_bytes), init=Q8_HEADER_BYTES)
        group = Signal(10)  # datapath beat of the 8-bit row
        line_bits_of_pos = (line_bytes - 1).bit_length()
        q_bytes = line.word_select(pos[:line_bits_of_pos] >> shift, 8 * lanes)
        m.d.comb += out.tag.eq(op.tag if self._mutation != "tag_zero" else 0)

        with m.FSM(name="retire") as fsm:
            with m.State("RUN"):
                # fp32 lookups and EOPs are handled in this state, so that one operation
                # follows another with no bubble: the datapath takes a beat every cycle.
                with m.If(self.op.valid & op.eop):
                    m.d.comb += [self.drain.valid.eq(1), self.drain.payload.eq(op.operand.drain)]
                    taken = self.drain.ready if self._mutation != "eop_ignores_drain_ready" else 1
                    with m.If(taken):
                        m.d.comb += self.op.ready.eq(1)
                with m.Elif(self.op.valid & quantised & self.line_ready):
                    with m.If(weighted):  # s' = w * scale, b' = w * bias
                        m.d.comb += [mul_scale.i.valid.eq(1), mul_bias.i.valid.eq(1)]
                        m.next = "PROLOGUE_WAIT"
                    with m.Else():
                        # w = 1.0: s' and b' are scale and bias exactly (1.0 * x == x;
                        # a NaN stays a NaN), so the row streams without a prologue.
                        m.d.sync += [scale_w.eq(line[0:32]), bias_w.eq(line[32:64])]
                        m.next = "STREAM_Q8"
                with m.Elif((self.op.valid if self._mutation != "beat_without_op" else 1) & ~quantised):
                    m.d.comb += [
                        self.beat.valid.eq(self.line_ready),
                        out.beat.eq(k * beats_per_line + j),
                    ]
                    for n in range(lanes):
                        m.d.comb += [
                            out.a[n].eq(weight),
                            out.b[n].eq(line.word_select(j * lanes + n, 32)),
                            out.c[n].eq(_MINUS_ZERO),
                        ]
                    with m.If(self.beat.valid & self.beat.ready):
                        m.d.sync += j.eq(j + 1)
                        with m.If(j == beats_per_line - 1):
                            m.d.comb += self.free.eq(1)
                            m.d.sync += [j.eq(0), k.eq(k + 1)]
                            last_line = k + 1 == op.vsize if self._mutation != "skip_last_line" else k + 2 >= op.vsize
                            with m.If(last_line):
                                m.d.comb += self.op.ready.eq(1)
                                m.d.sync += k.eq(0)
            with m.State("PROLOGUE_WAIT"):
                m.d.comb += self.busy.eq(1)
                with m.If(mul_scale.o.valid):
                    m.d.sync += [scale_w.eq(mul_scale.o.payload.result), bias_w.eq(mul_bias.o.payload.result)]
                    m.next = "STREAM_Q8"
            with m.State("STREAM_Q8"):
                m.d.comb += [
                    self.busy.eq(1),
                    slot.eq(op.first + (pos >> line_bits_of_pos)),
                    self.beat.valid.eq(self.line_ready),
                    out.beat.eq(group),
                ]
                for n in range(lanes):
                    m.d.comb += [
                        out.a[n].eq(scale_w),
                        out.b[n].eq(uint8_to_fp32(q_bytes.word_select(n, 8))),
                        out.c[n].eq(bias_w),
                    ]
                with m.If(self.beat.valid & self.beat.ready):
                    m.d.sync += [pos.eq(pos + lanes), group.eq(group + 1)]
                    with m.If((pos + lanes)[line_bits_of_pos:] != pos[line_bits_of_pos:]):
                        m.d.comb += self.free.eq(1)  # leaving this line
                    with m.If(group + (1 if self._mutation != "q8_one_beat_short" else 2) >= op.q8_beats):
                        m.next = "FREE"
            with m.State("FREE"):
                # Release the row's lines not released while streaming.
                m.d.comb += [self.busy.eq(1), slot.eq(self.tail)]
                with m.If(self.tail == (op.first + op.vsize)[: self._id_width]):
                    m.d.comb += self.op.ready.eq(1)
                    m.d.sync += [pos.eq(Q8_HEADER_BYTES), group.eq(0)]
                    m.next = "RUN"
                with m.Else():
                    # Only once its data is in: the slot is reused as soon as it is free.
                    m.d.comb += self.free.eq(self.line_ready)
        self.registers = SimpleNamespace(
            k=k,
            j=j,
            group=group,
            pos=pos,
            running=fsm.ongoing("RUN"),
            streaming_q8=fsm.ongoing("STREAM_Q8"),
            releasing=fsm.ongoing("FREE"),
        )
        return m
