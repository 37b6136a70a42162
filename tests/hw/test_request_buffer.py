"""RequestBuffer in the Amaranth simulator: classification against the open rows, FR-FCFS
(oldest first) candidates, the starvation blocker, removal, classes and latency."""

import pytest
from amaranth.sim import Simulator

from hw.request_buffer import Issue, RequestBuffer, RequestClass

ALL = (1 << 16) - 1


def run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-9)
    sim.add_testbench(bench)
    sim.run()


async def push(ctx, dut, rid, bg, bank, row, line=0):
    ctx.set(dut.i.valid, 1)
    for field, value in (("bank_group", bg), ("bank", bank), ("row", row), ("line", line)):
        ctx.set(getattr(dut.i.payload.addr, field), value)
    ctx.set(dut.i.payload.id, rid)
    assert ctx.get(dut.i.ready)
    await ctx.tick()
    ctx.set(dut.i.valid, 0)


def test_candidates_pick_the_oldest_and_keep_a_wanted_row_open():
    dut = RequestBuffer(depth=4, id_width=3, starvation_limit=64)

    async def bench(ctx):
        ctx.set(dut.rd_allow, ALL)
        ctx.set(dut.act_allow, ALL)
        ctx.set(dut.pre_allow, ALL)
        ctx.set(dut.open_valid, 1 << 0)  # slot 0 (bank group 0, bank 0): row 2 open
        ctx.set(dut.open_row[0], 2)
        await push(ctx, dut, 1, 0, 0, 1)  # conflict
        assert ctx.get(dut.level) == 1 and ctx.get(dut.pre)  # a candidate the cycle after
        await push(ctx, dut, 2, 0, 0, 2)  # hit
        assert not ctx.get(dut.pre)  # bank 0's row is wanted by the hit
        await push(ctx, dut, 3, 1, 2, 5)  # closed bank (slot 6)
        await push(ctx, dut, 4, 1, 2, 6)  # closed bank, younger
        assert not ctx.get(dut.i.ready) and ctx.get(dut.level) == 4
        assert (ctx.get(dut.rd), ctx.get(dut.act), ctx.get(dut.pre)) == (1, 1, 0)
        for kind, rid in ((Issue.RD, 2), (Issue.ACT, 3), (Issue.NONE, 0)):
            ctx.set(dut.issue, kind)
            assert ctx.get(dut.chosen.id) == rid
        # ACT for id 3: its class becomes MISS; no ACT allowed to its bank: no candidate
        ctx.set(dut.issue, Issue.ACT)
        await ctx.tick()
        ctx.set(dut.act_allow, ALL & ~(1 << 6))
        ctx.set(dut.issue, Issue.NONE)
        assert not ctx.get(dut.act)
        # RD for the hit (id 2): removed, the younger entries move down
        ctx.set(dut.issue, Issue.RD)
        assert ctx.get(dut.chosen.cls) == RequestClass.NONE
        await ctx.tick()
        ctx.set(dut.issue, Issue.NONE)
        assert ctx.get(dut.level) == 3 and ctx.get(dut.i.ready)
        assert (ctx.get(dut.rd), ctx.get(dut.pre)) == (0, 1)  # the conflict may now close bank 0
        ctx.set(dut.issue, Issue.PRE)
        assert ctx.get(dut.chosen.id) == 1
        await ctx.tick()
        # bank 0 closed and slot 6 open with id 3's row: id 1 is closed, id 3 a hit (MISS)
        ctx.set(dut.issue, Issue.NONE)
        ctx.set(dut.open_valid, 1 << 6)
        ctx.set(dut.open_row[6], 5)
        ctx.set(dut.issue, Issue.RD)
        assert (ctx.get(dut.chosen.id), ctx.get(dut.chosen.cls)) == (3, RequestClass.MISS)
        ctx.set(dut.issue, Issue.ACT)
        assert (ctx.get(dut.chosen.id), ctx.get(dut.chosen.cls)) == (1, RequestClass.CONFLICT)

    run(dut, bench)


def test_an_aged_conflict_blocks_younger_hits_to_its_bank():
    limit = 5
    dut = RequestBuffer(depth=4, id_width=3, starvation_limit=limit)

    async def bench(ctx):
        ctx.set(dut.rd_allow, ALL)
        ctx.set(dut.pre_allow, ALL)
        ctx.set(dut.open_valid, 1)
        ctx.set(dut.open_row[0], 2)
        await push(ctx, dut, 1, 0, 0, 1)  # conflict, ages from here
        await push(ctx, dut, 2, 0, 0, 2)  # younger hit
        ages = []
        for _ in range(limit + 1):
            ages.append(ctx.get(dut.rd))
            await ctx.tick()
        # accepted at cycle a: age k in cycle a + 1 + k; blocking from age == limit
        assert ages == [1] * (limit - 1) + [0, 0]
        assert ctx.get(dut.pre)  # the row is no longer wanted: PRE for the old conflict

    run(dut, bench)


def test_parameters():
    for kwargs, word in [
        ({"depth": 1}, "depth"),
        ({"id_width": 17}, "id_width"),
        ({"starvation_limit": 0}, "starvation_limit"),
        ({"geometry": 3}, "geometry"),
    ]:
        with pytest.raises((ValueError, TypeError), match=word):
            RequestBuffer(**kwargs)
    dut = RequestBuffer(depth=3, id_width=2, starvation_limit=9)
    assert (dut.depth, dut.id_width, dut.starvation_limit) == (3, 2, 9)
