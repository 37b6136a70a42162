"""RankScheduler: parameter checks and exact latencies in the Amaranth simulator (fast), and
the cocotb + Verilator regression against the DDR4 model (``verif.tb.rank_scheduler``)."""

import random

import pytest
from amaranth.sim import Simulator

from hw.ddr4 import DDR4Geometry, DDR4Timing, DramCommand
from hw.rank_scheduler import RankScheduler, expected_hint
from verif.ddr4_checker import DDR4ProtocolChecker

T = DDR4Timing()


def test_bad_parameters_are_rejected():
    for kwargs, words in [
        ({"depth": 1}, "depth"), ({"depth": 65}, "depth"), ({"id_width": 0}, "id_width"),
        ({"id_width": True}, "id_width"), ({"starvation_limit": 0}, "starvation_limit"),
        ({"timing": DDR4Timing(tBL=2)}, "tBL"), ({"geometry": "x"}, "geometry"),
    ]:
        with pytest.raises((ValueError, TypeError), match=words):
            RankScheduler(**kwargs)
    s = RankScheduler(depth=8, id_width=4, starvation_limit=10)
    s._MustUse__silence = True  # only the properties are looked at
    assert (s.depth, s.id_width, s.starvation_limit, s.timing, s.geometry) == (
        8, 4, 10, DDR4Timing(), DDR4Geometry())


def test_expected_hint_is_the_in_order_open_page_prediction():
    assert expected_hint(None, 5) == 0b110  # bank closed: ACT|RD
    assert expected_hint(5, 5) == 0b100  # same row: RD
    assert expected_hint(4, 5) == 0b111  # other row: PRE|ACT|RD


def simulate(dut, requests, *, timing=T, cycles=2000, serial=True):
    """Drive ``requests`` ((gap, bank_group, bank, row, line, id, hint); with ``serial``, one
    at a time, ``gap`` idle cycles after the previous request's last beat; otherwise back
    to back) through ``dut`` with a
    DRAM stub checked by :class:`DDR4ProtocolChecker`. Returns (accept cycle, first beat
    cycle) per request, the commands and the counters."""
    checker = DDR4ProtocolChecker(timing=timing)
    out = {"accepted": [], "first_beat": {}, "commands": []}

    async def bench(ctx):
        beats = {}
        pending = list(requests)
        wait = pending[0][0] if pending else 0
        busy = False
        for cycle in range(cycles):
            beat = beats.pop(cycle, None)
            ctx.set(dut.dram.rd_valid, beat is not None)
            ctx.set(dut.dram.rd_data, beat or 0)
            offer = bool(pending) and not busy and wait == 0
            ctx.set(dut.req.valid, offer)
            if offer:
                _, bg, bank, row, line, rid, hint = pending[0]
                for field, value in (("bank_group", bg), ("bank", bank), ("row", row), ("line", line)):
                    ctx.set(getattr(dut.req.payload.addr, field), value)
                ctx.set(dut.req.payload.id, rid)
                ctx.set(dut.req.payload.hint, hint)
            cmd = DramCommand(ctx.get(dut.dram.cmd))
            if cmd == DramCommand.NOP:
                checker.check_refresh(cycle)
            else:
                addr = {f: ctx.get(getattr(dut.dram, f)) for f in ("bank_group", "bank", "row", "column")}
                checker.command(cycle, cmd, **addr)
                out["commands"].append((cycle, cmd))
                if cmd == DramCommand.RD:
                    for k in range(timing.tBL):
                        beats[cycle + timing.tCL + k] = (addr["column"] << 8) | k
            if ctx.get(dut.rdata.valid):
                rid, beat_no = ctx.get(dut.rdata.payload.id), ctx.get(dut.rdata.payload.beat)
                assert ctx.get(dut.rdata.payload.data) & 0xFF == beat_no
                if beat_no == 0:
                    out["first_beat"][rid] = cycle
                if ctx.get(dut.rdata.payload.last) and serial:
                    busy = False
                    wait = pending[0][0] if pending else 0
            elif not busy and wait:
                wait -= 1
            if offer and ctx.get(dut.req.ready):
                out["accepted"].append(cycle)
                pending.pop(0)
                busy = serial
            await ctx.tick()
        out["counters"] = {n: ctx.get(getattr(dut, n)) for n in RankScheduler.COUNTERS}
        out["idle"] = ctx.get(dut.idle)

    sim = Simulator(dut)
    sim.add_clock(1e-9)
    sim.add_testbench(bench)
    sim.run()
    return out


def test_latency_of_hit_miss_and_conflict_in_the_amaranth_simulator():
    """One request at a time: closed bank, same row (hit), other row (conflict), with
    time between them for every timing to expire: the docstring's 34 / 18 / 50 cycles."""
    dut = RankScheduler()
    requests = [  # (gap, bg, bank, row, line, id, hint)
        (0, 1, 2, 100, 3, 1, 0b110),   # closed: ACT, RD       (hint right)
        (60, 1, 2, 100, 9, 2, 0b100),  # open row: RD          (hint right)
        (60, 1, 2, 200, 0, 3, 0b100),  # other row: PRE ACT RD (hint wrong: expects 0b111)
    ]
    out = simulate(dut, requests, cycles=400)
    latency = [out["first_beat"][rid] - acc for acc, (*_, rid, _h) in zip(out["accepted"], requests)]
    assert latency == [1 + T.tRCD + T.tCL + 1, 1 + T.tCL + 1, 1 + T.tRP + T.tRCD + T.tCL + 1]
    assert latency == [34, 18, 50]
    assert [c for _, c in out["commands"]] == [
        DramCommand.ACT, DramCommand.RD, DramCommand.RD, DramCommand.PRE, DramCommand.ACT, DramCommand.RD]
    c = out["counters"]
    assert (c["acts"], c["pres"], c["reads"], c["refs"]) == (2, 1, 3, 0)
    assert (c["row_hits"], c["row_misses"], c["row_conflicts"], c["hint_mismatches"]) == (1, 1, 1, 1)
    assert out["idle"] == 1


def test_refresh_and_random_traffic_in_the_amaranth_simulator():
    """Short tREFI, back-to-back random requests: the protocol checker passes and every
    refresh is issued within tRAS + tRP + a few cycles of falling due."""
    timing = DDR4Timing(tREFI=300, tRFC=60)
    dut = RankScheduler(timing=timing, depth=4, id_width=3)
    rng = random.Random(7)
    requests = [(0, rng.randrange(4), rng.randrange(4), rng.randrange(3), rng.randrange(128), k % 8, 0)
                for k in range(40)]
    out = simulate(dut, requests, timing=timing, cycles=1300, serial=False)
    refs = [cycle for cycle, cmd in out["commands"] if cmd == DramCommand.REF]
    assert len(refs) == 4
    banks = DDR4Geometry().banks  # at most one PRE per open bank, one per cycle
    for k, cycle in enumerate(refs, start=1):
        assert 0 <= cycle - k * timing.tREFI <= timing.tRAS + timing.tRP + banks, refs
    assert out["counters"]["reads"] == len(requests) and out["idle"] == 1


@pytest.mark.rtl
@pytest.mark.parametrize("build", ["default", "short_refresh"])
def test_rank_scheduler_rtl(build):
    from verif.tb import rank_scheduler as tb

    tb.run(build, seed=20240611, extra_env={"RECNMP_GAP": "0.3"})
