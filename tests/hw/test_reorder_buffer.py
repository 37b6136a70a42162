"""ReorderBuffer in the Amaranth simulator: slots in order, hit and DRAM writes, fill, free."""

from __future__ import annotations

import pytest
from amaranth.sim import Simulator

from hw.reorder_buffer import ReorderBuffer


def test_slots_hits_dram_beats_fill_and_free():
    dut = ReorderBuffer(rob_lines=8)
    line = lambda k: int.from_bytes(bytes((k * 16 + i) & 0xFF for i in range(64)), "little")  # noqa: E731
    log = {}

    async def bench(ctx):
        ctx.set(dut.lookup.ready, 1)
        ctx.set(dut.req.ready, 1)
        # Allocate 8 lines: slots 0..7, then the buffer is full.
        for k in range(9):
            ctx.set(dut.alloc.valid, 1)
            ctx.set(
                dut.alloc.payload,
                {"addr": {"line": k, "row": 3, "bank": 1, "bank_group": 2}, "allocate": k % 2, "hint": 4},
            )
            assert ctx.get(dut.head) == k % 8
            assert ctx.get(dut.lookup.payload.id) == k % 8
            assert ctx.get(dut.alloc.ready) == (k < 8)
            await ctx.tick()
        ctx.set(dut.alloc.valid, 0)
        # Slot 1 hits; slot 0 misses and its request carries the stored hint.
        ctx.set(dut.result.valid, 1)
        ctx.set(dut.result.payload, {"id": 1, "hit": 1, "data": line(1)})
        await ctx.tick()
        ctx.set(dut.result.payload, {"id": 0, "hit": 0, "addr": {"line": 0, "row": 3, "bank": 1, "bank_group": 2}})
        assert ctx.get(dut.req.valid) and ctx.get(dut.req.payload.id) == 0
        assert ctx.get(dut.req.payload.hint) == 4
        await ctx.tick()
        ctx.set(dut.result.valid, 0)
        ctx.set(dut.read_slot, 1)
        assert ctx.get(dut.read_ready) and ctx.get(dut.read_data) == line(1)
        ctx.set(dut.read_slot, 0)
        assert not ctx.get(dut.read_ready)
        # Slot 0's four DRAM beats; a hit offered meanwhile waits.
        for b in range(4):
            ctx.set(dut.rdata.valid, 1)
            ctx.set(
                dut.rdata.payload,
                {"id": 0, "beat": b, "last": b == 3, "data": (line(0) >> (128 * b)) & ((1 << 128) - 1)},
            )
            ctx.set(dut.result.valid, 1)
            ctx.set(dut.result.payload, {"id": 2, "hit": 1, "data": line(2)})
            assert not ctx.get(dut.result.ready)
            log.setdefault("fill", []).append(ctx.get(dut.fill.valid))
            await ctx.tick()
        ctx.set(dut.rdata.valid, 0)
        assert ctx.get(dut.result.ready)
        await ctx.tick()
        ctx.set(dut.result.valid, 0)
        assert ctx.get(dut.read_ready) and ctx.get(dut.read_data) == line(0)
        # Free slots 0 and 1: the tail moves, a new slot can be allocated.
        assert ctx.get(dut.tail) == 0 and not ctx.get(dut.empty)
        ctx.set(dut.free, 1)
        await ctx.tick().repeat(2)
        ctx.set(dut.free, 0)
        assert ctx.get(dut.tail) == 2
        ctx.set(dut.read_slot, 0)
        assert not ctx.get(dut.read_ready)  # freed: not ready until rewritten
        ctx.set(dut.alloc.valid, 1)
        assert ctx.get(dut.alloc.ready)

    sim = Simulator(dut)
    sim.add_clock(1e-9)
    sim.add_testbench(bench)
    sim.run()
    assert log["fill"] == [0, 0, 0, 0]  # slot 0 had allocate = 0: no fill


def test_parameters_are_validated():
    with pytest.raises(ValueError, match="rob_lines must be a power of two from 8 to 256, got 48"):
        ReorderBuffer(rob_lines=48)
    assert ReorderBuffer(rob_lines=16).id_width == 4
