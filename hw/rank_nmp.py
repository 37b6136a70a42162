"""Rank-NMP: one rank's near-memory unit, from NMP-Insts to partial sums."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .ddr4 import DDR4Geometry, DDR4Timing, DramPortSignature, line_address_layout
from .fp32_mul import FP32Multiplier
from .isa import (
    CONFIG_LAYOUT,
    DDR_CMD_RD,
    EOP_LAYOUT,
    LOOKUP_OPCODES,
    NMP_INST_LAYOUT,
    Q8_HEADER_BYTES,
    ConfigRegister,
    Opcode,
)
from .rank_cache import COUNTERS as CACHE_COUNTERS
from .rank_cache import RankCache
from .rank_datapath import RankDatapath
from .rank_scheduler import RankScheduler

__all__ = ["RankNMP", "uint8_to_fp32"]

_ONE = 0x3F800000  # 1.0f
_MINUS_ZERO = 0x80000000  # -0.0f: the exact identity of addition
_QUANTISED = (Opcode.SUM_Q8, Opcode.WSUM_Q8)
_WEIGHTED = (Opcode.WSUM, Opcode.WSUM_Q8)
RANK_COUNTERS = ("lookups", "lines", "illegal")


def uint8_to_fp32(q) -> Cat:
    """The binary32 value of an 8-bit unsigned integer (exact), as combinational logic."""
    result = Const(0, 32)
    for msb in range(8):  # the highest set bit decides the exponent
        mantissa = (q << (23 - msb))[:23]
        result = Mux(q[msb:].any() & ~q[msb + 1:].any() if msb < 7 else q[7],
                     Cat(mantissa, Const(127 + msb, 8), Const(0, 1)), result)
    return result


class RankNMP(wiring.Component):
    """One rank's NMP unit: instruction queue, RankCache, DDR4 scheduler, reorder buffer,
    fp32 datapath and the 16-tag partial-sum register file.

    Flow. Instructions arrive in order on ``inst`` (the DIMM-NMP sends this rank its
    lookups and every control instruction). The *issue* stage splits a lookup of ``vsize``
    bursts into ``vsize`` 64 B line reads, gives each a reorder-buffer (ROB) slot in
    instruction order, and probes the :class:`~hw.rank_cache.RankCache` with it. A hit
    writes the line into its slot; a miss goes to the :class:`~hw.rank_scheduler.RankScheduler`,
    whose DRAM read data is written into the slot beat by beat and, when the lookup had
    ``locality=1``, filled into the cache. The *retire* stage takes operations in
    instruction order, waits for each line's slot, and streams the line to the
    :class:`~hw.rank_datapath.RankDatapath` ``lanes`` values per cycle; so the order of
    accumulation is the instruction order, whatever the DRAM and cache timing.

    Operators (ARCHITECTURE.md section 2) as ``acc + ((a * b) + c)`` per element:
    ``SUM`` a = 1.0, c = -0.0; ``WSUM`` a = weight, c = -0.0; 8-bit ``a = w * scale``,
    ``b = float(q)``, ``c = w * bias`` (w = 1.0 for ``SUM_Q8``). 8-bit rows are stored in
    device memory as fp32 scale, fp32 bias, then D bytes (the driver moves FBGEMM's trailing
    scale/bias to the front, so they arrive first); D is set by ``CONFIG Q8_ELEMENTS``
    (values above ``max_elements`` are clamped, and so is a D whose row would not fit in
    ``vsize`` bursts); a ``WSUM_Q8`` row first computes ``w*scale`` and ``w*bias``
    (``mul_latency`` cycles; ``SUM_Q8`` needs none: ``1.0*x == x``), then streams one beat
    per ``lanes`` elements.

    Control: ``EOP`` makes the retire stage, once every earlier lookup is accumulated,
    drain the tags of its ``tag_mask`` (``elements`` values each, see ``docs/isa.md``) on
    ``psum`` and clear them; lookups after it are already being fetched meanwhile, so the
    next packet overlaps the drain but never mixes with it. ``INVALIDATE`` waits until
    every earlier lookup has retired, then empties the cache. ``CONFIG`` sets registers
    for the lookups after it. Undefined opcodes and lookups with ``vsize = 0`` are dropped
    and counted in ``illegal`` (the DIMM-NMP filters them before they get here).

    A lookup's lines are ``column/8 .. column/8 + vsize - 1`` of its row (the rank bits of
    daddr are ignored: dispatch is the DIMM-NMP's job); line numbers past the end of the row
    wrap around within it. The ``ddr_cmd`` hint goes with the first line's DRAM request;
    later lines of the same vector are hinted RD (same row).

    Parameters
    ----------
    timing, geometry : DDR4Timing, DDR4Geometry
        The rank's DRAM (defaults DDR4-2400, 8 Gb x8).
    cache_size_bytes, cache_ways : int
        RankCache size and associativity (default 128 KiB, 4 ways).
    lanes : int
        fp32 lanes (1, 2, 4 or 8; default 4 = a rank's 16 B per cycle).
    max_elements : int
        fp32 values per partial sum (default 256: 8-bit rows of up to 256 B).
    rob_lines : int
        Reorder-buffer slots (64 B lines in flight), a power of two 8..256 (default 64).
    scheduler_depth : int
        DRAM request buffer entries (default 16).
    mul_latency, add_latency : int
        fp32 unit latencies (default 4 and 3).

    Latency (default parameters, no backpressure): a lookup's line is in the reorder buffer
    about 4 cycles after the instruction is accepted on a cache hit, and on a miss about 25
    cycles (row hit), 40 (closed bank) or 55 (row conflict) (the scheduler's part is in
    ``docs/rank_scheduler.md``);
    it then enters the datapath as soon as every earlier lookup has, and is in the partial
    sum ``mul_latency + 2 * add_latency`` cycles later. The first ``psum`` beat of a packet
    follows the EOP by that pipeline depth plus one cycle once the last lookup is in.
    Throughput: one 64 B line per 4 cycles (a rank's data rate) for fp32 rows.

    Attributes
    ----------
    inst : In(stream.Signature(NMP_INST_LAYOUT))
    dram : Out(DramPortSignature(geometry))
    psum : Out(stream.Signature(StructLayout({"data": ArrayLayout(32, lanes), "tag": 4, "beat": B, "last": 1})))
        Partial sums at end of packet, tag by tag, ``lanes`` values per beat.
    idle : Out(1)
        No instruction or line in flight.
    lookups, lines, illegal, cache_*, and the scheduler's counters : Out(32)
    """

    def __init__(self, *, timing: DDR4Timing = DDR4Timing(), geometry: DDR4Geometry = DDR4Geometry(),
                 cache_size_bytes: int = 128 * 1024, cache_ways: int = 4, lanes: int = 4,
                 max_elements: int = 256, rob_lines: int = 64, scheduler_depth: int = 16,
                 mul_latency: int = 4, add_latency: int = 3):
        if isinstance(lanes, bool) or lanes not in (1, 2, 4, 8):
            raise ValueError(f"lanes must be 1, 2, 4 or 8, got {lanes!r}")
        if (isinstance(rob_lines, bool) or not isinstance(rob_lines, int)
                or rob_lines < 8 or rob_lines > 256 or rob_lines & (rob_lines - 1)):
            raise ValueError(f"rob_lines must be a power of two from 8 to 256, got {rob_lines!r}")
        id_width = rob_lines.bit_length() - 1
        # Build the parts now: they validate their own parameters.
        self._cache = RankCache(size_bytes=cache_size_bytes, ways=cache_ways,
                                id_width=id_width, geometry=geometry)
        self._scheduler = RankScheduler(timing=timing, geometry=geometry,
                                        depth=scheduler_depth, id_width=id_width)
        self._datapath = RankDatapath(lanes=lanes, max_elements=max_elements,
                                      mul_latency=mul_latency, add_latency=add_latency)
        self._timing = timing
        self._geometry = geometry
        self._cache_size_bytes = cache_size_bytes
        self._cache_ways = cache_ways
        self._scheduler_depth = scheduler_depth
        self._add_latency = add_latency
        self._lanes = lanes
        self._max_elements = max_elements
        self._rob_lines = rob_lines
        self._id_width = id_width
        self._mul_latency = mul_latency
        counters = (RANK_COUNTERS + tuple(f"cache_{n}" for n in CACHE_COUNTERS)
                    + RankScheduler.COUNTERS)
        self._counters = counters
        super().__init__({
            "inst": In(stream.Signature(NMP_INST_LAYOUT)),
            "dram": Out(DramPortSignature(geometry)),
            "psum": Out(self._datapath.signature.members["o"].signature),
            "idle": Out(1),
            **{name: Out(32) for name in counters},
        })

    @property
    def timing(self) -> DDR4Timing:
        return self._timing

    @property
    def geometry(self) -> DDR4Geometry:
        return self._geometry

    @property
    def cache_size_bytes(self) -> int:
        return self._cache_size_bytes

    @property
    def cache_ways(self) -> int:
        return self._cache_ways

    @property
    def scheduler_depth(self) -> int:
        return self._scheduler_depth

    @property
    def mul_latency(self) -> int:
        return self._mul_latency

    @property
    def add_latency(self) -> int:
        return self._add_latency

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def max_elements(self) -> int:
        return self._max_elements

    @property
    def rob_lines(self) -> int:
        return self._rob_lines

    @property
    def counters(self) -> tuple[str, ...]:
        return self._counters

    def elaborate(self, platform):
        m = Module()
        g = self._geometry
        lanes, rob_lines, id_width = self._lanes, self._rob_lines, self._id_width
        addr_layout = line_address_layout(g)
        line_bits = 8 * g.burst_bytes
        beat_bits = 8 * g.beat_bytes
        beats_per_line = g.burst_bytes // (4 * lanes)  # datapath beats of fp32 per line

        m.submodules.cache = cache = self._cache
        m.submodules.scheduler = sched = self._scheduler
        m.submodules.datapath = dp = self._datapath
        wiring.connect(m, wiring.flipped(self.dram), sched.dram)
        wiring.connect(m, dp.o, wiring.flipped(self.psum))

        # ---- queues --------------------------------------------------------------------
        m.submodules.inst_fifo = inst_fifo = SyncFIFOBuffered(width=NMP_INST_LAYOUT.size, depth=4)
        m.d.comb += [
            inst_fifo.w_data.eq(self.inst.payload.as_value()),
            inst_fifo.w_en.eq(self.inst.valid),
            self.inst.ready.eq(inst_fifo.w_rdy),
        ]
        inst = data.View(NMP_INST_LAYOUT, inst_fifo.r_data)

        op_layout = data.StructLayout({
            "eop": 1, "opcode": Opcode, "weight": 32, "tag": 4, "vsize": 3,
            "first": id_width, "q8_elements": 10, "drain": EOP_LAYOUT,
        })
        # One entry per lookup in flight (each holds at least one ROB slot) plus EOPs, so
        # that the operation queue never limits the lines in flight below the ROB's size.
        m.submodules.op_fifo = op_fifo = SyncFIFOBuffered(width=op_layout.size, depth=rob_lines + 8)
        op_in = Signal(op_layout)
        op = data.View(op_layout, op_fifo.r_data)
        m.d.comb += op_fifo.w_data.eq(op_in)

        # ---- reorder buffer: slots in instruction order --------------------------------
        head = Signal(id_width + 1)  # next slot to allocate (with a wrap bit)
        tail = Signal(id_width + 1)  # oldest slot not yet retired
        in_flight = Signal(id_width + 1)
        m.d.comb += in_flight.eq(head - tail)
        rob_free = Signal()
        m.d.comb += rob_free.eq(in_flight < rob_lines)
        ready = Signal(rob_lines)  # the slot's line is in the ROB
        ready_set = Signal(rob_lines)
        ready_clear = Signal(rob_lines)
        m.d.sync += ready.eq((ready | ready_set) & ~ready_clear)

        m.submodules.rob = rob = Memory(shape=line_bits, depth=rob_lines, init=[])
        rob_wr = rob.write_port(granularity=beat_bits)
        rob_rd = rob.read_port(domain="comb")

        meta_layout = data.StructLayout({"addr": addr_layout, "allocate": 1, "hint": 3})
        m.submodules.meta = meta = Memory(shape=meta_layout, depth=rob_lines, init=[])
        meta_wr = meta.write_port()
        meta_miss = meta.read_port(domain="comb")  # at cache-miss time
        meta_fill = meta.read_port(domain="comb")  # at DRAM data time

        # ---- counters ------------------------------------------------------------------
        count = {name: Signal(32, name=f"{name}_count") for name in RANK_COUNTERS}
        for name in RANK_COUNTERS:
            m.d.comb += getattr(self, name).eq(count[name])
        for name in CACHE_COUNTERS:
            m.d.comb += getattr(self, f"cache_{name}").eq(getattr(cache, name))
        for name in RankScheduler.COUNTERS:
            m.d.comb += getattr(self, name).eq(getattr(sched, name))

        # ---- issue ---------------------------------------------------------------------
        q8_elements = Signal(10, init=min(self._max_elements, 64))
        line_k = Signal(3)
        opcode = inst.opcode
        is_lookup = Signal()
        m.d.comb += is_lookup.eq(Cat(opcode == o for o in sorted(LOOKUP_OPCODES)).any())
        first_line = inst.daddr.column >> 3
        m.d.comb += [
            op_in.eop.eq(opcode == Opcode.EOP),
            op_in.opcode.eq(opcode),
            op_in.weight.eq(inst.weight),
            op_in.tag.eq(inst.psum_tag),
            op_in.vsize.eq(inst.vsize),
            op_in.first.eq(head[:id_width]),
            op_in.q8_elements.eq(q8_elements),
            op_in.drain.eq(inst.daddr.as_value()),
            cache.lookup.payload.addr.bank_group.eq(inst.daddr.bank_group),
            cache.lookup.payload.addr.bank.eq(inst.daddr.bank),
            cache.lookup.payload.addr.row.eq(inst.daddr.row),
            cache.lookup.payload.addr.line.eq(first_line + line_k),
            cache.lookup.payload.allocate.eq(inst.locality),
            cache.lookup.payload.id.eq(head[:id_width]),
            meta_wr.addr.eq(head[:id_width]),
            meta_wr.data.addr.eq(cache.lookup.payload.addr),
            meta_wr.data.allocate.eq(inst.locality),
            meta_wr.data.hint.eq(Mux(line_k == 0, inst.ddr_cmd, DDR_CMD_RD)),
        ]
        with m.FSM(name="issue"):
            with m.State("DECODE"):
                with m.If(inst_fifo.r_rdy):
                    with m.If(is_lookup & (inst.vsize != 0)):
                        m.d.comb += op_fifo.w_en.eq(1)
                        with m.If(op_fifo.w_rdy):
                            m.d.sync += [line_k.eq(0), count["lookups"].eq(count["lookups"] + 1)]
                            m.next = "LINES"
                    with m.Elif(opcode == Opcode.EOP):
                        m.d.comb += [op_fifo.w_en.eq(1), inst_fifo.r_en.eq(op_fifo.w_rdy)]
                    with m.Elif(opcode == Opcode.CONFIG):
                        config = data.View(CONFIG_LAYOUT, inst.daddr.as_value())
                        with m.If(config.register == ConfigRegister.Q8_ELEMENTS):
                            m.d.sync += q8_elements.eq(
                                Mux(config.value > self._max_elements, self._max_elements,
                                    config.value))
                        m.d.comb += inst_fifo.r_en.eq(1)
                    with m.Elif(opcode == Opcode.INVALIDATE):
                        m.next = "INVALIDATE_WAIT"
                    with m.Else():
                        m.d.comb += inst_fifo.r_en.eq(1)
                        m.d.sync += count["illegal"].eq(count["illegal"] + 1)
            with m.State("LINES"):
                m.d.comb += cache.lookup.valid.eq(rob_free)
                with m.If(cache.lookup.valid & cache.lookup.ready):
                    m.d.comb += meta_wr.en.eq(1)
                    m.d.sync += [
                        head.eq(head + 1),
                        line_k.eq(line_k + 1),
                        count["lines"].eq(count["lines"] + 1),
                    ]
                    with m.If(line_k + 1 == inst.vsize):
                        m.d.comb += inst_fifo.r_en.eq(1)
                        m.next = "DECODE"
            with m.State("INVALIDATE_WAIT"):
                with m.If((in_flight == 0) & ~cache.busy):
                    m.d.comb += cache.invalidate.eq(1)
                    m.next = "INVALIDATE_SWEEP"
            with m.State("INVALIDATE_SWEEP"):
                with m.If(~cache.busy):
                    m.d.comb += inst_fifo.r_en.eq(1)
                    m.next = "DECODE"

        # ---- cache results: hits into the ROB, misses to DRAM ------------------------------
        dram_beat = sched.rdata.valid
        result = cache.result.payload
        m.d.comb += [
            meta_miss.addr.eq(result.id),
            sched.req.payload.addr.eq(result.addr),
            sched.req.payload.id.eq(result.id),
            sched.req.payload.hint.eq(meta_miss.data.hint),
            sched.req.valid.eq(cache.result.valid & ~result.hit),
            cache.result.ready.eq(Mux(result.hit, ~dram_beat, sched.req.ready)),
        ]
        hit_write = Signal()
        m.d.comb += hit_write.eq(cache.result.valid & result.hit & ~dram_beat)

        # DRAM beats go straight into their slot (they cannot wait); a hit uses the
        # write port in the other cycles.
        rdata = sched.rdata.payload
        line_buf = Signal(line_bits - beat_bits)  # the burst's earlier beats, for the fill
        m.d.comb += meta_fill.addr.eq(rdata.id)
        with m.If(dram_beat):
            m.d.comb += [
                rob_wr.addr.eq(rdata.id),
                rob_wr.data.eq(rdata.data.replicate(line_bits // beat_bits)),
                rob_wr.en.eq(1 << rdata.beat),
            ]
            with m.If(~rdata.last):
                m.d.sync += line_buf.word_select(rdata.beat, beat_bits).eq(rdata.data)
            with m.Else():
                m.d.comb += [
                    ready_set.eq(1 << rdata.id),
                    cache.fill.valid.eq(meta_fill.data.allocate),
                ]
        with m.Elif(hit_write):
            m.d.comb += [
                rob_wr.addr.eq(result.id),
                rob_wr.data.eq(result.data),
                rob_wr.en.eq(-1),
                ready_set.eq(1 << result.id),
            ]
        m.d.comb += [
            cache.fill.payload.addr.eq(meta_fill.data.addr),
            cache.fill.payload.data.eq(Cat(line_buf, rdata.data)),
        ]

        # ---- retire: operations in order into the datapath ------------------------------------
        k = Signal(3)  # line of the lookup
        j = Signal(range(max(beats_per_line, 2)))  # beat within the line (fp32)
        slot = Signal(id_width)
        m.d.comb += [slot.eq(op.first + k), rob_rd.addr.eq(slot)]
        line = rob_rd.data
        weighted = Cat(op.opcode == o for o in _WEIGHTED).any()
        quantised = Cat(op.opcode == o for o in _QUANTISED).any()
        weight = Mux(weighted, op.weight, _ONE)
        vsize = op.vsize
        free_slot = Signal()
        with m.If(free_slot):
            m.d.comb += ready_clear.eq(1 << tail[:id_width])
            m.d.sync += tail.eq(tail + 1)

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
        pos = Signal(range(8 * 64 + 64), init=Q8_HEADER_BYTES)  # byte offset of the next 8-bit group
        group = Signal(range(1024))  # datapath beat of the 8-bit row
        groups = Signal(range(1024))  # beats of the row: ceil(D / lanes), within the row's bursts
        wanted = (op.q8_elements + lanes - 1) >> (lanes.bit_length() - 1)
        fits = ((op.vsize << 6) - Q8_HEADER_BYTES) >> (lanes.bit_length() - 1)
        m.d.comb += groups.eq(Mux(wanted > fits, fits, wanted))
        # pos is a multiple of lanes (8 + n * lanes, lanes <= 8), so a group never
        # straddles two lines.
        q_bytes = line.word_select(pos[:6] >> (lanes.bit_length() - 1), 8 * lanes)

        dp_in = dp.i.payload
        m.d.comb += dp_in.tag.eq(op.tag)
        with m.FSM(name="retire"):
            with m.State("RUN"):
                # fp32 lookups and EOPs are handled in this state, so that one operation
                # follows another with no bubble: the datapath takes a beat every cycle.
                with m.If(op_fifo.r_rdy & op.eop):
                    m.d.comb += [dp.drain.valid.eq(1), dp.drain.payload.eq(op.drain)]
                    with m.If(dp.drain.ready):
                        m.d.comb += op_fifo.r_en.eq(1)
                with m.Elif(op_fifo.r_rdy & quantised & ready.bit_select(slot, 1)):
                    with m.If(weighted):  # s' = w * scale, b' = w * bias
                        m.d.comb += [mul_scale.i.valid.eq(1), mul_bias.i.valid.eq(1)]
                        m.next = "PROLOGUE_WAIT"
                    with m.Else():
                        # w = 1.0: s' and b' are scale and bias exactly (1.0 * x == x;
                        # a NaN stays a NaN), so the row streams without a prologue.
                        m.d.sync += [scale_w.eq(line[0:32]), bias_w.eq(line[32:64])]
                        m.next = "STREAM_Q8"
                        with m.If(groups == 0):
                            m.next = "FREE"
                with m.Elif(op_fifo.r_rdy):
                    m.d.comb += [
                        dp.i.valid.eq(ready.bit_select(slot, 1)),
                        dp_in.beat.eq(k * beats_per_line + j),
                    ]
                    for n in range(lanes):
                        m.d.comb += [
                            dp_in.a[n].eq(weight),
                            dp_in.b[n].eq(line.word_select(j * lanes + n, 32)),
                            dp_in.c[n].eq(_MINUS_ZERO),
                        ]
                    with m.If(dp.i.valid & dp.i.ready):
                        m.d.sync += j.eq(j + 1)
                        with m.If(j == beats_per_line - 1):
                            m.d.comb += free_slot.eq(1)
                            m.d.sync += [j.eq(0), k.eq(k + 1)]
                            with m.If(k + 1 == vsize):
                                m.d.comb += op_fifo.r_en.eq(1)
                                m.d.sync += k.eq(0)
            with m.State("PROLOGUE_WAIT"):
                with m.If(mul_scale.o.valid):
                    m.d.sync += [scale_w.eq(mul_scale.o.payload.result),
                                 bias_w.eq(mul_bias.o.payload.result)]
                    m.next = "STREAM_Q8"
                    with m.If(groups == 0):
                        m.next = "FREE"
            with m.State("STREAM_Q8"):
                m.d.comb += [
                    slot.eq(op.first + (pos >> 6)),
                    dp.i.valid.eq(ready.bit_select(slot, 1)),
                    dp_in.beat.eq(group),
                ]
                for n in range(lanes):
                    m.d.comb += [
                        dp_in.a[n].eq(scale_w),
                        dp_in.b[n].eq(uint8_to_fp32(q_bytes.word_select(n, 8))),
                        dp_in.c[n].eq(bias_w),
                    ]
                with m.If(dp.i.valid & dp.i.ready):
                    m.d.sync += [pos.eq(pos + lanes), group.eq(group + 1)]
                    with m.If((pos + lanes)[6:] != pos[6:]):  # leaving this line
                        m.d.comb += free_slot.eq(1)
                    with m.If(group + 1 >= groups):
                        m.next = "FREE"
            with m.State("FREE"):
                # Release the row's lines not released while streaming.
                with m.If(tail[:id_width] == (op.first + vsize)[:id_width]):
                    m.d.comb += op_fifo.r_en.eq(1)
                    m.d.sync += [pos.eq(Q8_HEADER_BYTES), group.eq(0)]
                    m.next = "RUN"
                with m.Else():
                    # Only once its data is in: the slot is reused as soon as it is free.
                    m.d.comb += free_slot.eq(ready.bit_select(tail[:id_width], 1))

        m.d.comb += self.idle.eq(
            ~inst_fifo.r_rdy & ~op_fifo.r_rdy & (in_flight == 0) & sched.idle & ~dp.busy)
        return m
