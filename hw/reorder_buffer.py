"""Rank-NMP reorder buffer: 64 B line slots in instruction order, filled by cache hits and DRAM."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .ddr4 import DDR4Geometry, line_address_layout
from .params import check_mutation, check_power_of_two

__all__ = ["ReorderBuffer", "line_request_layout"]


def line_request_layout(geometry: DDR4Geometry = DDR4Geometry()) -> data.StructLayout:
    """One line read of a lookup: its address, whether the cache keeps it, its DRAM hint."""
    return data.StructLayout({"addr": line_address_layout(geometry), "allocate": 1, "hint": 3})


class ReorderBuffer(wiring.Component):
    """Slots for the 64 B lines in flight, allocated in instruction order.

    A line read on ``alloc`` gets the next slot (``head``) and goes on to the RankCache as
    ``lookup`` with the slot as id, in the same cycle (``alloc.ready`` needs a free slot
    and ``lookup.ready``); its address, ``allocate`` and hint are kept per slot. The cache's
    ``result``: a hit writes the line into its slot; a miss becomes a DRAM request on
    ``req`` (``result.ready`` follows ``req.ready``). The scheduler's ``rdata`` beats are
    written into their slot as they arrive (they cannot wait, so a hit waits a cycle when
    it collides with a beat); with the last beat the assembled line goes to the cache on
    ``fill`` when its lookup had ``allocate`` set. A slot is *ready* once its whole line is
    written. The retire stage reads any slot combinationally (``read_slot`` ->
    ``read_data``, ``read_ready``) and frees the oldest slot (``tail``) with ``free``.

    The ready bits and the head and tail pointers are registers (reset: empty); the line
    and address memories are not reset, and a slot's contents count only once it is ready
    again. ``fill`` is not flow-controlled: the RankCache takes a fill whenever it is not
    sweeping, and it sweeps only when this buffer is empty (after reset or an INVALIDATE).

    Parameters
    ----------
    rob_lines : int
        Slots, a power of two from 8 to 256.
    geometry : DDR4Geometry
        The rank's shape (64 B lines, 16 B DRAM beats).

    Attributes
    ----------
    alloc : In(stream.Signature(line_request_layout(geometry)))
    head : Out(id_width)
        The slot the next ``alloc`` gets.
    lookup : Out(stream.Signature(StructLayout({"addr", "allocate", "id"})))
        To ``RankCache.lookup``.
    result : In(stream.Signature(StructLayout({"id", "addr", "allocate", "hit", "data"})))
        From ``RankCache.result``.
    req : Out(stream.Signature(StructLayout({"addr", "id", "hint"})))
        To ``RankScheduler.req``.
    rdata : In(stream.Signature(StructLayout({"id", "beat", "last", "data"}), always_ready=True))
        From ``RankScheduler.rdata``.
    fill : Out(stream.Signature(StructLayout({"addr", "data"})))
        To ``RankCache.fill``.
    read_slot : In(id_width)
    read_data : Out(8 * burst_bytes)
    read_ready : Out(1)
        The line of ``read_slot`` is in its slot.
    free : In(1)
        Release slot ``tail`` (the oldest) at the end of this cycle.
    tail : Out(id_width)
    empty : Out(1)
        No slot allocated.

    Latency: a hit's line is ready the cycle after ``result`` is taken, a DRAM line the
    cycle after its last beat; ``read_data`` is combinational. Throughput one allocation,
    one write and one free per cycle.
    ``registers`` (set by :meth:`elaborate`, for the formal specs of ``verif/formal``):
    ``head`` and ``tail`` (with their wrap bit) and ``ready`` (one bit per slot).
    """

    #: Test-only deliberate bugs (``mutation``), to show that the formal properties bite:
    #: ``"no_room_check"`` (allocates into a full buffer), ``"keep_ready_on_free"`` (a freed
    #: slot stays ready), ``"hit_ignores_beat"`` (a hit is taken while a DRAM beat uses the
    #: write port, and lost), ``"yield_to_beats"`` (``lookup`` and ``req`` withdraw their
    #: offer while a DRAM beat arrives), ``"empty_with_one_left"``, ``"free_keeps_tail"``,
    #: ``"lookup_names_tail"``, ``"request_names_head"``, ``"fill_every_beat"``.
    MUTATIONS = (
        "no_room_check",
        "keep_ready_on_free",
        "hit_ignores_beat",
        "yield_to_beats",
        "empty_with_one_left",
        "free_keeps_tail",
        "lookup_names_tail",
        "request_names_head",
        "fill_every_beat",
    )

    def __init__(self, *, rob_lines: int = 64, geometry: DDR4Geometry = DDR4Geometry(), mutation: str | None = None):
        self._mutation = check_mutation(mutation, self.MUTATIONS)
        check_power_of_two("rob_lines", rob_lines, 8, 256)
        if not isinstance(geometry, DDR4Geometry):
            raise TypeError(f"geometry must be a DDR4Geometry, got {geometry!r}")
        self._rob_lines = rob_lines
        self._geometry = geometry
        id_width = self.id_width
        addr = line_address_layout(geometry)
        line_bits = 8 * geometry.burst_bytes
        super().__init__(
            {
                "alloc": In(stream.Signature(line_request_layout(geometry))),
                "head": Out(id_width),
                "lookup": Out(stream.Signature(data.StructLayout({"addr": addr, "allocate": 1, "id": id_width}))),
                "result": In(
                    stream.Signature(
                        data.StructLayout({"id": id_width, "addr": addr, "allocate": 1, "hit": 1, "data": line_bits})
                    )
                ),
                "req": Out(stream.Signature(data.StructLayout({"addr": addr, "id": id_width, "hint": 3}))),
                "rdata": In(
                    stream.Signature(
                        data.StructLayout(
                            {
                                "id": id_width,
                                "beat": max(1, (geometry.beats_per_burst - 1).bit_length()),
                                "last": 1,
                                "data": 8 * geometry.beat_bytes,
                            }
                        ),
                        always_ready=True,
                    )
                ),
                "fill": Out(stream.Signature(data.StructLayout({"addr": addr, "data": line_bits}))),
                "read_slot": In(id_width),
                "read_data": Out(line_bits),
                "read_ready": Out(1),
                "free": In(1),
                "tail": Out(id_width),
                "empty": Out(1),
            }
        )

    @property
    def rob_lines(self) -> int:
        return self._rob_lines

    @property
    def geometry(self) -> DDR4Geometry:
        return self._geometry

    @property
    def id_width(self) -> int:
        return self._rob_lines.bit_length() - 1

    def elaborate(self, platform):
        m = Module()
        g = self._geometry
        rob_lines, id_width = self._rob_lines, self.id_width
        line_bits = 8 * g.burst_bytes
        beat_bits = 8 * g.beat_bytes

        head = Signal(id_width + 1)  # next slot to allocate (with a wrap bit)
        tail = Signal(id_width + 1)  # oldest slot not yet freed
        in_flight = Signal(id_width + 1)
        m.d.comb += [
            in_flight.eq(head - tail),
            self.head.eq(head[:id_width]),
            self.tail.eq(tail[:id_width]),
            self.empty.eq(in_flight == 0 if self._mutation != "empty_with_one_left" else in_flight <= 1),
        ]
        ready = Signal(rob_lines)  # the slot's line is in the buffer
        ready_set = Signal(rob_lines)
        ready_clear = Signal(rob_lines)
        m.d.sync += ready.eq((ready | ready_set) & ~ready_clear)
        with m.If(self.free):
            if self._mutation != "keep_ready_on_free":
                m.d.comb += ready_clear.eq(1 << tail[:id_width])
            if self._mutation != "free_keeps_tail":
                m.d.sync += tail.eq(tail + 1)

        m.submodules.lines = lines = Memory(shape=line_bits, depth=rob_lines, init=[])
        wr = lines.write_port(granularity=beat_bits)
        rd = lines.read_port(domain="comb")
        m.d.comb += [
            rd.addr.eq(self.read_slot),
            self.read_data.eq(rd.data),
            self.read_ready.eq(ready.bit_select(self.read_slot, 1)),
        ]

        meta_layout = line_request_layout(g)
        m.submodules.meta = meta = Memory(shape=meta_layout, depth=rob_lines, init=[])
        meta_wr = meta.write_port()
        meta_miss = meta.read_port(domain="comb")  # at cache-miss time
        meta_fill = meta.read_port(domain="comb")  # at DRAM data time

        # ---- allocate: the next slot, and the cache lookup with it --------------------
        has_room = Signal()
        m.d.comb += [
            has_room.eq(in_flight < rob_lines if self._mutation != "no_room_check" else 1),
            self.lookup.valid.eq(
                self.alloc.valid & has_room
                if self._mutation != "yield_to_beats"
                else self.alloc.valid & has_room & ~self.rdata.valid
            ),
            self.alloc.ready.eq(has_room & self.lookup.ready),
            self.lookup.payload.addr.eq(self.alloc.payload.addr),
            self.lookup.payload.allocate.eq(self.alloc.payload.allocate),
            self.lookup.payload.id.eq(head[:id_width] if self._mutation != "lookup_names_tail" else tail[:id_width]),
            meta_wr.addr.eq(head[:id_width]),
            meta_wr.data.eq(self.alloc.payload),
        ]
        with m.If(self.alloc.valid & self.alloc.ready):
            m.d.comb += meta_wr.en.eq(1)
            m.d.sync += head.eq(head + 1)

        # ---- cache results: hits into their slot, misses to DRAM ----------------------
        dram_beat = self.rdata.valid
        result = self.result.payload
        m.d.comb += [
            meta_miss.addr.eq(result.id),
            self.req.payload.addr.eq(result.addr),
            self.req.payload.id.eq(result.id if self._mutation != "request_names_head" else head[:id_width]),
            self.req.payload.hint.eq(meta_miss.data.hint),
            self.req.valid.eq(
                self.result.valid & ~result.hit
                if self._mutation != "yield_to_beats"
                else self.result.valid & ~result.hit & ~dram_beat
            ),
            self.result.ready.eq(
                Mux(result.hit, ~dram_beat if self._mutation != "hit_ignores_beat" else 1, self.req.ready)
            ),
        ]
        hit_write = Signal()
        m.d.comb += hit_write.eq(self.result.valid & result.hit & ~dram_beat)

        # DRAM beats go straight into their slot (they cannot wait); a hit uses the write
        # port in the other cycles.
        rdata = self.rdata.payload
        line_buf = Signal(line_bits - beat_bits)  # the burst's earlier beats, for the fill
        m.d.comb += meta_fill.addr.eq(rdata.id)
        with m.If(dram_beat):
            m.d.comb += [
                wr.addr.eq(rdata.id),
                wr.data.eq(rdata.data.replicate(line_bits // beat_bits)),
                wr.en.eq(1 << rdata.beat),
            ]
            with m.If(~rdata.last):
                m.d.sync += line_buf.word_select(rdata.beat, beat_bits).eq(rdata.data)
            with m.Else():
                m.d.comb += [
                    ready_set.eq(1 << rdata.id),
                    self.fill.valid.eq(meta_fill.data.allocate),
                ]
            if self._mutation == "fill_every_beat":
                m.d.comb += self.fill.valid.eq(meta_fill.data.allocate)
        with m.Elif(hit_write):
            m.d.comb += [
                wr.addr.eq(result.id),
                wr.data.eq(result.data),
                wr.en.eq(-1),
                ready_set.eq(1 << result.id),
            ]
        m.d.comb += [
            self.fill.payload.addr.eq(meta_fill.data.addr),
            self.fill.payload.data.eq(Cat(line_buf, rdata.data)),
        ]
        self.registers = SimpleNamespace(head=head, tail=tail, ready=ready)
        return m
