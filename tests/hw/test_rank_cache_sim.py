"""RankCache in the Amaranth simulator: random traffic against the model (the scoreboard
of the cocotb testbench), directed LRU and hazard cases, elaboration and parameter errors.

Fast (no Verilator); the long regression is ``tests/hw/test_rank_cache.py``.
"""

import collections
import gc
import random

import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from hw.ddr4 import line_address_layout
from hw.rank_cache import RankCache
from rtl_gen.generate import layout_fields
from verif.tb.rank_cache import COUNTERS, CycleSample, Fields, Scoreboard, Traffic


def fields_of(port) -> Fields:
    return Fields({f["name"]: (f["offset"], f["width"]) for f in layout_fields(port.payload.shape())})


class Harness:
    """Cycle-by-cycle driver of a RankCache in the Amaranth simulator, checked by the
    cocotb testbench's :class:`Scoreboard` (model, data, latency, ready rules, counters)."""

    def __init__(self, *, size_bytes, ways, seed=0, gap=0.0, stall=0.0, fill_gap=0.0):
        self.dut = RankCache(size_bytes=size_bytes, ways=ways)
        self.lookup_f = fields_of(self.dut.lookup)
        self.fill_f = fields_of(self.dut.fill)
        self.result_f = fields_of(self.dut.result)
        self.sb = Scoreboard(
            size_bytes=size_bytes, ways=ways, lookup=self.lookup_f, fill=self.fill_f, result=self.result_f
        )
        self.traffic = Traffic(
            sets=self.sb.sets,
            ways=ways,
            addr_bits=line_address_layout().size,
            line_bits=512,
            id_width=6,
            rng=random.Random(seed),
        )
        self.rng = random.Random(seed + 1)
        self.gap, self.stall, self.fill_gap = gap, stall, fill_gap
        self.lookup_q: collections.deque[int] = collections.deque()
        self.fill_q: collections.deque[int] = collections.deque()
        self.invalidate_at: set[int] = set()
        self.auto_fill = True

    def lookup(self, addr, allocate=1, ident=0):
        self.lookup_q.append(self.lookup_f.pack(addr=addr, allocate=allocate, id=ident))

    def fill(self, addr, data):
        self.fill_q.append(self.fill_f.pack(addr=addr, data=data))

    async def step(self, ctx, random_lookups=0):
        """One clock cycle: stimulus, sample into the scoreboard, handshakes, tick."""
        dut, sb, traffic = self.dut, self.sb, self.traffic
        cycle = sb.cycle_no
        while random_lookups and len(self.lookup_q) < 2:
            self.lookup_q.append(self.lookup_f.pack(**traffic.lookup(cycle)))
            random_lookups -= 1
            self.issued += 1
        if self.auto_fill:
            for addr in sb.to_fill:
                traffic.schedule_fill(cycle, addr)
        sb.to_fill.clear()
        for fill in traffic.due_fills(cycle):
            self.fill_q.append(self.fill_f.pack(**fill))
        offer_lookup = bool(self.lookup_q) and self.rng.random() >= self.gap
        offer_fill = bool(self.fill_q) and self.rng.random() >= self.fill_gap
        ctx.set(dut.lookup.valid, offer_lookup)
        if offer_lookup:
            ctx.set(dut.lookup.payload.as_value(), self.lookup_q[0])
        ctx.set(dut.fill.valid, offer_fill)
        if offer_fill:
            ctx.set(dut.fill.payload.as_value(), self.fill_q[0])
        ctx.set(dut.result.ready, self.rng.random() >= self.stall)
        ctx.set(dut.invalidate, cycle in self.invalidate_at)
        sample = CycleSample(
            lookup_valid=int(offer_lookup),
            lookup_ready=ctx.get(dut.lookup.ready),
            lookup_payload=self.lookup_q[0] if offer_lookup else None,
            fill_valid=int(offer_fill),
            fill_ready=ctx.get(dut.fill.ready),
            fill_payload=self.fill_q[0] if offer_fill else None,
            result_valid=ctx.get(dut.result.valid),
            result_ready=ctx.get(dut.result.ready),
            result_payload=ctx.get(dut.result.payload.as_value()),
            invalidate=int(cycle in self.invalidate_at),
            busy=ctx.get(dut.busy),
            counters=tuple(ctx.get(getattr(dut, name)) for name in COUNTERS),
        )
        if not sample.result_valid:
            sample.result_payload = None
        sb.cycle(sample)
        if offer_lookup and sample.lookup_ready:
            self.lookup_q.popleft()
        if offer_fill and sample.fill_ready:
            self.fill_q.popleft()
        await ctx.tick()

    async def idle(self, ctx):
        """Run until every queued operation is done and the cache is not busy."""
        while self.lookup_q or self.fill_q or self.traffic.pending_fills or self.sb.expected or self.sb._busy_run:
            await self.step(ctx)
        for _ in range(3):
            await self.step(ctx)

    def run(self, bench):
        self.issued = 0
        sim = Simulator(self.dut)
        sim.add_clock(1e-8)
        sim.add_testbench(bench)
        sim.run()


@pytest.mark.parametrize(
    "size_bytes,ways,lookups,gap,stall",
    [
        (1024, 2, 500, 0.0, 0.0),  # 8 sets: evictions everywhere, full rate
        (1024, 2, 400, 0.2, 0.4),
        (8192, 4, 400, 0.1, 0.3),
        (8192, 1, 300, 0.0, 0.2),  # direct-mapped
        (2048, 8, 300, 0.2, 0.2),  # 4 sets of 8 ways
    ],
)
def test_random_traffic_against_model(size_bytes, ways, lookups, gap, stall):
    h = Harness(size_bytes=size_bytes, ways=ways, seed=size_bytes + ways, gap=gap, stall=stall, fill_gap=0.2)
    sets = h.sb.sets
    h.invalidate_at = {sets + 40 + lookups}  # in the middle of the traffic

    async def bench(ctx):
        while h.issued < lookups:
            await h.step(ctx, random_lookups=lookups - h.issued)
        await h.idle(ctx)
        h.sb.finish(tuple(ctx.get(getattr(h.dut, name)) for name in COUNTERS))

    h.run(bench)
    sb = h.sb
    assert sb.results == lookups
    assert sb.busy_runs == [sets, sets]  # reset sweep + the invalidate
    for event in (
        "lookup.outcome:hit",
        "lookup.outcome:miss",
        "lookup.outcome:bypass",
        "hazard:lookup_lookup_same_set",
        "hazard:fill_lookup_same_set",
        "invalidate:invalidate",
    ):
        assert sb.events[event], f"{event} never happened"
    if ways > 1:
        assert sb.events["fill.outcome:eviction"]


def test_back_to_back_same_set_lru():
    """2 ways, one set: A, B filled; lookups B, A, B, A, B back to back (each sees the
    previous one's LRU update); then fill C evicts A, the LRU line; A misses, B and C hit."""
    h = Harness(size_bytes=1024, ways=2)
    sets = h.sb.sets
    a, b, c = (t * sets + 3 for t in (5, 6, 7))
    data = {x: random.Random(x).getrandbits(512) for x in (a, b, c)}

    async def bench(ctx):
        while h.sb._busy_run or h.sb.cycle_no == 0:
            await h.step(ctx)
        h.fill(a, data[a])
        h.fill(b, data[b])
        for n, x in enumerate((b, a, b, a, b)):
            h.lookup(x, ident=n)
        await h.idle(ctx)
        h.fill(c, data[c])
        await h.idle(ctx)
        for n, x in enumerate((a, b, c)):
            h.lookup(x, allocate=0, ident=10 + n)
        await h.idle(ctx)

    h.run(bench)
    assert h.sb.model.lru_order(3) == [c, b]
    assert h.sb.events["hazard:lookup_lookup_same_set"] >= 4
    assert h.sb.events["fill.outcome:eviction"] == 1
    assert h.sb.model.counters() == {"hits": 7, "misses": 1, "bypasses": 1, "fills": 3, "evictions": 1}


def test_fill_then_lookup_same_line_next_cycle():
    """A lookup accepted the cycle after the fill of its line hits with the new data
    (transparent read ports), and a fill offered with a lookup goes first."""
    h = Harness(size_bytes=8192, ways=4)
    x = 12345

    async def bench(ctx):
        while h.sb._busy_run or h.sb.cycle_no == 0:
            await h.step(ctx)
        h.fill(x, 0xABCDEF)
        h.lookup(x)  # offered together with the fill: waits one cycle, then hits
        h.lookup(x + 1)
        await h.idle(ctx)

    h.run(bench)
    assert h.sb.events["hazard:fill_lookup_same_line_hit"] == 1
    assert h.sb.events["flow:lookup_blocked_by_fill"] == 1
    assert h.sb.model.counters()["hits"] == 1


@pytest.mark.parametrize("size_bytes", [8 * 1024, 128 * 1024, 1024 * 1024])
@pytest.mark.parametrize("ways", [1, 2, 4, 8])
def test_elaborates(size_bytes, ways):
    dut = RankCache(size_bytes=size_bytes, ways=ways)
    assert dut.sets == size_bytes // (64 * ways)
    assert dut.set_bits + dut.tag_bits == 27
    assert dut.invalidate_cycles == dut.sets
    Fragment.get(dut, None)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_interface_layouts():
    dut = RankCache(id_width=5)
    addr = line_address_layout()
    assert [n for n, _ in dut.lookup.payload.shape()] == ["addr", "allocate", "id"]
    assert [n for n, _ in dut.result.payload.shape()] == ["id", "addr", "allocate", "hit", "data"]
    assert dut.result.payload.shape()["addr"].shape == addr
    assert dut.result.payload.shape()["data"].width == 512
    assert dut.result.payload.shape()["id"].width == 5
    assert [n for n, _ in dut.fill.payload.shape()] == ["addr", "data"]
    for name in COUNTERS:
        assert len(getattr(dut, name)) == 32
    del dut
    gc.collect()


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"size_bytes": 3000}, "size_bytes must be a power of two, got 3000"),
        ({"size_bytes": True}, "size_bytes must be a power of two"),
        ({"ways": 3}, "ways must be a power of two from 1 to 16, got 3"),
        ({"ways": 32}, "ways must be a power of two from 1 to 16, got 32"),
        ({"ways": 0}, "ways must be a power of two from 1 to 16, got 0"),
        ({"size_bytes": 128, "ways": 4}, r"size_bytes \(128\) must hold at least one set of 4 ways"),
        (
            {"size_bytes": 256, "ways": 4},
            r"gives a single set; the hardware needs at least 2 sets \(size_bytes >= 512\)",
        ),
        ({"size_bytes": 1 << 34, "ways": 1}, "more than the 134217728 lines"),
        ({"id_width": 0}, "id_width must be an integer from 1 to 32, got 0"),
        ({"geometry": "ddr4"}, "geometry must be a DDR4Geometry"),
    ],
)
def test_parameter_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RankCache(**kwargs)
    gc.collect()  # the half-built component warns when collected: here, under the filter
