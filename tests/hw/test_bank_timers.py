"""BankTimers in the Amaranth simulator: every legality output equals what the DDR4
protocol checker would accept, cycle by cycle, over a random legal command stream."""

import copy
import os
import random

import pytest
from amaranth.sim import Simulator

from hw.bank_timers import BankTimers
from hw.ddr4 import DDR4Geometry, DDR4Timing, DramCommand
from verif.ddr4_checker import DDR4ProtocolChecker, ProtocolError

SEED = int(os.environ.get("RECNMP_SEED", "20240611"))
BANKS = [(bg, b) for bg in range(4) for b in range(4)]  # slot = bg * 4 + b


def _accepts(checker, cycle, cmd, bg, bank, row=0):
    trial = copy.deepcopy(checker)
    try:
        trial.command(cycle, cmd, bank_group=bg, bank=bank, row=row)
    except ProtocolError:
        return False
    return True


@pytest.mark.parametrize(
    "timing",
    [
        DDR4Timing(tRFC=40, tREFI=10_000),
        DDR4Timing(
            tRCD=3, tRTP=2, tRAS=5, tRP=2, tRC=9, tCCD_S=4, tCCD_L=5, tRRD_S=1, tRRD_L=2, tFAW=12, tRFC=7, tREFI=10_000
        ),
    ],
    ids=["ddr4_2400", "short"],
)
def test_legality_outputs_match_the_protocol_checker(timing):
    dut = BankTimers(timing=timing)
    assert dut.slots == 16
    rng = random.Random(SEED)
    checker = DDR4ProtocolChecker(timing=timing, max_pulled_in=10**6)  # REFs at will
    seen = {"ACT": 0, "RD": 0, "PRE": 0, "REF": 0}

    async def bench(ctx):
        for cycle in range(700):
            open_valid = ctx.get(dut.open_valid)
            act_ok, rd_ok, pre_ok = ctx.get(dut.act_ok), ctx.get(dut.rd_ok), ctx.get(dut.pre_ok)
            keeps = ctx.get(dut.rd_keeps_pre)
            legal = []
            for slot, (bg, b) in enumerate(BANKS):
                is_open = open_valid >> slot & 1
                assert is_open == (checker.open_row(bg, b) is not None), (cycle, slot)
                if is_open:
                    assert ctx.get(dut.open_row[slot]) == checker.open_row(bg, b)
                    ok_rd = _accepts(checker, cycle, DramCommand.RD, bg, b, checker.open_row(bg, b))
                    ok_pre = _accepts(checker, cycle, DramCommand.PRE, bg, b)
                    assert (rd_ok >> slot & 1, pre_ok >> slot & 1) == (ok_rd, ok_pre), (cycle, slot)
                    # a RD now keeps the earliest PRE iff that is at least tRTP away
                    st = checker._banks[(bg, b)]
                    earliest_pre = max(st.last_act + timing.tRAS, st.last_rd + timing.tRTP)
                    assert (keeps >> slot & 1) == (earliest_pre - cycle >= timing.tRTP), (cycle, slot)
                    if ok_rd:
                        legal.append((DramCommand.RD, slot))
                    if ok_pre:
                        legal.append((DramCommand.PRE, slot))
                else:
                    ok_act = _accepts(checker, cycle, DramCommand.ACT, bg, b, 1)
                    assert (act_ok >> slot & 1) == ok_act, (cycle, slot)
                    if ok_act:
                        legal.append((DramCommand.ACT, slot))
            ok_ref = _accepts(checker, cycle, DramCommand.REF, 0, 0)
            assert ctx.get(dut.ref_ok) == ok_ref, cycle
            if ok_ref:
                legal.append((DramCommand.REF, 0))
            if cycle % 200 >= 110:  # closing phase: precharge everything and refresh
                legal = [c for c in legal if c[0] in (DramCommand.PRE, DramCommand.REF)]
            cmd, slot = rng.choice(legal) if legal and rng.random() < 0.7 else (DramCommand.NOP, 0)
            row = rng.randrange(1 << 16)
            ctx.set(dut.cmd, cmd)
            ctx.set(dut.cmd_bank, slot)
            ctx.set(dut.cmd_row, row)
            if cmd != DramCommand.NOP:
                bg, b = BANKS[slot]
                checker.command(
                    cycle, cmd, bank_group=bg, bank=b, row=checker.open_row(bg, b) if cmd == DramCommand.RD else row
                )
                seen[cmd.name] += 1
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-9)
    sim.add_testbench(bench)
    sim.run()
    assert min(seen.values()) > 0, seen


def test_parameters():
    with pytest.raises(TypeError, match="timing"):
        BankTimers(timing=1)
    with pytest.raises(TypeError, match="geometry"):
        BankTimers(geometry=1)
    dut = BankTimers()
    assert (dut.timing, dut.geometry) == (DDR4Timing(), DDR4Geometry())
