"""Rank-NMP: one rank's near-memory unit, from NMP-Insts to partial sums."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .ddr4 import DDR4Geometry, DDR4Timing, DramPortSignature
from .isa import NMP_INST_LAYOUT
from .logic import COUNTER_WIDTH
from .params import check_choice, check_power_of_two
from .queue import Queue
from .rank_cache import COUNTERS as CACHE_COUNTERS
from .rank_cache import RankCache
from .rank_datapath import RankDatapath
from .rank_issue import COUNTERS as ISSUE_COUNTERS
from .rank_issue import LANES, RankIssue, op_layout
from .rank_retire import RankRetire, uint8_to_fp32
from .rank_scheduler import RankScheduler
from .reorder_buffer import ReorderBuffer

__all__ = ["RANK_COUNTERS", "RankNMP", "uint8_to_fp32"]

#: The Rank-NMP's own counters (``docs/rank_nmp_semantics.md``), before the cache's and
#: the scheduler's.
RANK_COUNTERS = ISSUE_COUNTERS + ("eop_mismatches",)
#: Depth of the instruction queue in front of the issue stage.
INST_QUEUE_DEPTH = 4


class RankNMP(wiring.Component):
    """One rank's NMP unit: instruction queue, issue, RankCache, DDR4 scheduler, reorder
    buffer, retire, and the fp32 datapath with the 16-tag partial-sum register file.

    What each instruction does, and every error counter, is ``docs/rank_nmp_semantics.md``;
    this class wires the parts (``docs/rank_nmp.md``)::

        inst -> inst queue -> RankIssue -> op queue ----------------> RankRetire -> RankDatapath -> psum
                                  | line                                 ^ slots
                                  v                                      |
                             ReorderBuffer -> RankCache -hit-> ReorderBuffer <- RankScheduler <-> dram
                                                        -miss-> RankScheduler

    * :class:`~hw.rank_issue.RankIssue` checks each instruction (``illegal``,
      ``malformed``), splits a lookup into ``vsize`` 64 B line reads, and writes one
      operation-queue entry per lookup or EOP.
    * :class:`~hw.reorder_buffer.ReorderBuffer` gives each line the next slot (so slots are
      in instruction order), probes the :class:`~hw.rank_cache.RankCache` with it, sends
      misses to the :class:`~hw.rank_scheduler.RankScheduler`, and collects hits and DRAM
      beats into the slots (filling the cache when ``locality = 1``).
    * :class:`~hw.rank_retire.RankRetire` takes operations in instruction order and streams
      their lines into the :class:`~hw.rank_datapath.RankDatapath`, ``lanes`` values per
      cycle; so accumulation follows the instruction order whatever the DRAM and cache
      timing. An EOP becomes the datapath's drain.

    Parameters
    ----------
    timing, geometry : DDR4Timing, DDR4Geometry
        The rank's DRAM (defaults DDR4-2400, 8 Gb x8).
    cache_size_bytes, cache_ways : int
        RankCache size and associativity (default 128 KiB, 4 ways).
    lanes : int
        fp32 lanes (1, 2, 4 or 8; default 4 = a rank's 16 B per cycle).
    max_elements : int
        fp32 values per partial sum, a multiple of ``lanes`` from ``lanes`` to 1023
        (default 256: 8-bit rows of up to 256 B). fp32 lookups of more than
        ``max_elements / 16`` bursts are malformed.
    rob_lines : int
        Reorder-buffer slots (64 B lines in flight), a power of two 8..256 (default 64).
    scheduler_depth : int
        DRAM request buffer entries (default 16).
    mul_latency, add_latency : int
        fp32 unit latencies (default 4 and 3).

    Latency (default parameters, no backpressure, measured): a lookup's line is in the
    reorder buffer 5 cycles after the instruction is accepted on a cache hit, and on a miss
    26 cycles (row hit), 42 (closed bank) or 58 (row conflict) (the scheduler's part is in
    ``docs/rank_scheduler.md``); it then enters the datapath as soon as every earlier
    lookup has, and is in the partial sum ``mul_latency + 2 * add_latency`` cycles later.
    The first ``psum`` beat of a packet comes 12 cycles after the last beat of its last
    lookup entered the datapath (that pipeline depth plus two). Throughput: one 64 B line per 4 cycles (a rank's data
    rate) for fp32 rows, with no bubble between lookups.

    Reset: a synchronous reset may come at any cycle with the DRAM not reset. Every queue,
    pointer, ready bit, mark and counter is a register and resets; memories are not reset
    and are read only once rewritten. ``idle`` stays low until the RankCache's sweep and
    the scheduler's recovery are over.

    Attributes
    ----------
    inst : In(stream.Signature(NMP_INST_LAYOUT))
    dram : Out(DramPortSignature(geometry))
    psum : Out(stream.Signature(StructLayout({"data": ArrayLayout(32, lanes), "tag": 4, "beat": B, "last": 1})))
        Partial sums at end of packet, tag by tag, ``lanes`` values per beat.
    idle : Out(1)
        No instruction, line, operation or drain is held anywhere (``docs/rank_nmp_semantics.md``).
    lookups, lines, illegal, malformed, eop_mismatches, cache_*, and the scheduler's counters : Out(32)
        In the order of :attr:`counters`.
    """

    def __init__(
        self,
        *,
        timing: DDR4Timing = DDR4Timing(),
        geometry: DDR4Geometry = DDR4Geometry(),
        cache_size_bytes: int = 128 * 1024,
        cache_ways: int = 4,
        lanes: int = 4,
        max_elements: int = 256,
        rob_lines: int = 64,
        scheduler_depth: int = 16,
        mul_latency: int = 4,
        add_latency: int = 3,
    ):
        check_choice("lanes", lanes, LANES)
        check_power_of_two("rob_lines", rob_lines, 8, 256)
        id_width = rob_lines.bit_length() - 1
        # Build the parts now: they validate their own parameters.
        self._datapath = RankDatapath(
            lanes=lanes, max_elements=max_elements, mul_latency=mul_latency, add_latency=add_latency
        )
        self._cache = RankCache(size_bytes=cache_size_bytes, ways=cache_ways, id_width=id_width, geometry=geometry)
        self._scheduler = RankScheduler(timing=timing, geometry=geometry, depth=scheduler_depth, id_width=id_width)
        self._issue = RankIssue(lanes=lanes, max_elements=max_elements, id_width=id_width, geometry=geometry)
        self._rob = ReorderBuffer(rob_lines=rob_lines, geometry=geometry)
        self._retire = RankRetire(
            lanes=lanes, max_elements=max_elements, id_width=id_width, mul_latency=mul_latency, geometry=geometry
        )
        self._inst_queue = Queue(shape=NMP_INST_LAYOUT, depth=INST_QUEUE_DEPTH)
        # One entry per lookup in flight (each holds at least one ROB slot) plus EOPs, so
        # that the operation queue never limits the lines in flight below the ROB's size.
        self._op_queue = Queue(shape=op_layout(id_width), depth=rob_lines + 8)
        self._timing = timing
        self._geometry = geometry
        self._cache_size_bytes = cache_size_bytes
        self._cache_ways = cache_ways
        self._scheduler_depth = scheduler_depth
        self._add_latency = add_latency
        self._lanes = lanes
        self._max_elements = max_elements
        self._rob_lines = rob_lines
        self._mul_latency = mul_latency
        self._counters = RANK_COUNTERS + tuple(f"cache_{n}" for n in CACHE_COUNTERS) + RankScheduler.COUNTERS
        super().__init__(
            {
                "inst": In(stream.Signature(NMP_INST_LAYOUT)),
                "dram": Out(DramPortSignature(geometry)),
                "psum": Out(self._datapath.signature.members["o"].signature),
                "idle": Out(1),
                **{name: Out(COUNTER_WIDTH) for name in self._counters},
            }
        )

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
        m.submodules.inst_queue = inst_q = self._inst_queue
        m.submodules.issue = issue = self._issue
        m.submodules.op_queue = op_q = self._op_queue
        m.submodules.rob = rob = self._rob
        m.submodules.cache = cache = self._cache
        m.submodules.scheduler = sched = self._scheduler
        m.submodules.retire = retire = self._retire
        m.submodules.datapath = dp = self._datapath

        # Instructions: queue, issue; lines to the ROB, operations to the retire stage.
        wiring.connect(m, wiring.flipped(self.inst), inst_q.i)
        wiring.connect(m, inst_q.o, issue.inst)
        wiring.connect(m, issue.op, op_q.i)
        wiring.connect(m, issue.line, rob.alloc)
        m.d.comb += [
            issue.head.eq(rob.head),
            issue.rob_empty.eq(rob.empty),
            issue.cache_busy.eq(cache.busy),
            cache.invalidate.eq(issue.invalidate),
        ]

        # Fetch: ROB <-> RankCache, ROB <-> RankScheduler <-> DRAM.
        wiring.connect(m, rob.lookup, cache.lookup)
        wiring.connect(m, cache.result, rob.result)
        wiring.connect(m, rob.fill, cache.fill)
        wiring.connect(m, wiring.flipped(self.dram), sched.dram)
        m.d.comb += [
            sched.req.valid.eq(rob.req.valid),
            sched.req.payload.addr.eq(rob.req.payload.addr),
            sched.req.payload.id.eq(rob.req.payload.id),
            sched.req.payload.hint.eq(rob.req.payload.hint),
            rob.req.ready.eq(sched.req.ready),
            rob.rdata.valid.eq(sched.rdata.valid),
            rob.rdata.payload.id.eq(sched.rdata.payload.id),
            rob.rdata.payload.beat.eq(sched.rdata.payload.beat),
            rob.rdata.payload.last.eq(sched.rdata.payload.last),
            rob.rdata.payload.data.eq(sched.rdata.payload.data),
        ]

        # Retire: operations in order, lines from the ROB, into the datapath.
        wiring.connect(m, op_q.o, retire.op)
        m.d.comb += [
            rob.read_slot.eq(retire.slot),
            retire.line.eq(rob.read_data),
            retire.line_ready.eq(rob.read_ready),
            rob.free.eq(retire.free),
            retire.tail.eq(rob.tail),
        ]
        wiring.connect(m, retire.beat, dp.i)
        wiring.connect(m, retire.drain, dp.drain)
        wiring.connect(m, dp.o, wiring.flipped(self.psum))

        # Counters.
        for name in ISSUE_COUNTERS:
            m.d.comb += getattr(self, name).eq(getattr(issue, name))
        m.d.comb += self.eop_mismatches.eq(dp.eop_mismatches)
        for name in CACHE_COUNTERS:
            m.d.comb += getattr(self, f"cache_{name}").eq(getattr(cache, name))
        for name in RankScheduler.COUNTERS:
            m.d.comb += getattr(self, name).eq(getattr(sched, name))

        # idle: nothing held anywhere (docs/rank_nmp_semantics.md).
        m.d.comb += self.idle.eq(
            (inst_q.level == 0)
            & ~issue.busy
            & (op_q.level == 0)
            & rob.empty
            & ~retire.busy
            & ~dp.busy
            & sched.idle
            & ~cache.busy
        )
        return m
