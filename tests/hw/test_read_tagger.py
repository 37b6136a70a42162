"""ReadTagger in the Amaranth simulator: beats tagged tCL + 1 cycles after the RD, and
nothing reported for a RD issued before a reset."""

import pytest
from amaranth.hdl import ResetInserter, Signal
from amaranth.sim import Simulator

from hw.ddr4 import DDR4Timing
from hw.read_tagger import ReadTagger


@pytest.mark.parametrize("timing", [DDR4Timing(), DDR4Timing(tCL=1, tREFI=9360)], ids=["tCL16", "tCL1"])
def test_beats_are_tagged_and_a_reset_drops_reads_in_flight(timing):
    dut = ReadTagger(timing=timing, id_width=4)
    rst = Signal()
    top = ResetInserter({"sync": rst})(dut)
    rds = {3: 5, 3 + timing.tCCD_S: 6, 60: 7}  # cycle -> id; the RD at 60 is cut by a reset
    reset_at = 61
    seen, busy = [], []

    async def bench(ctx):
        for cycle in range(120):
            ctx.set(rst, cycle == reset_at)
            ctx.set(dut.rd, cycle in rds)
            ctx.set(dut.id, rds.get(cycle, 0))
            ctx.set(dut.rd_data, 1000 + cycle)
            if ctx.get(dut.rdata.valid):
                p = dut.rdata.payload
                seen.append((cycle, ctx.get(p.id), ctx.get(p.beat), ctx.get(p.last), ctx.get(p.data)))
            busy.append(ctx.get(dut.busy))
            await ctx.tick()

    sim = Simulator(top)
    sim.add_clock(1e-9)
    sim.add_testbench(bench)
    sim.run()
    want = []
    for rd, rid in sorted(rds.items()):
        if rd < reset_at - timing.tCL:
            want += [(rd + timing.tCL + 1 + k, rid, k, k == 3, 1000 + rd + timing.tCL + k) for k in range(4)]
    assert seen == want
    last = max(c for c, *_ in want)
    assert busy[4 : last + 1] == [1] * (last - 3) and not any(busy[last + 1 : 60]) and not any(busy[62:])


def test_parameters():
    with pytest.raises(ValueError, match="id_width"):
        ReadTagger(id_width=0)
    dut = ReadTagger(id_width=3)
    assert (dut.id_width, dut.timing.tCL) == (3, 16)
