"""RankScheduler: parameter checks and exact latencies in the Amaranth simulator (fast), and
the cocotb + Verilator regression against the DDR4 model (``verif.tb.rank_scheduler``)."""

import os
import random

import pytest
from amaranth.hdl import ResetInserter, Signal
from amaranth.sim import Simulator

from hw.ddr4 import DDR4Geometry, DDR4Timing, DramCommand
from hw.isa import expected_hint
from hw.rank_scheduler import RankScheduler
from hw.refresh_control import recovery_wait
from verif.ddr4_checker import DDR4ProtocolChecker

T = DDR4Timing()
#: Seed of the randomised tests (``RECNMP_SEED`` overrides it); failures name it.
SEED = int(os.environ.get("RECNMP_SEED", "20240611"))


def test_bad_parameters_are_rejected():
    for kwargs, words in [
        ({"depth": 1}, "depth"),
        ({"depth": 65}, "depth"),
        ({"id_width": 0}, "id_width"),
        ({"id_width": True}, "id_width"),
        ({"starvation_limit": 0}, "starvation_limit"),
        ({"timing": DDR4Timing(tBL=2)}, "tBL"),
        ({"geometry": "x"}, "geometry"),
    ]:
        with pytest.raises((ValueError, TypeError), match=words):
            RankScheduler(**kwargs)
    s = RankScheduler(depth=8, id_width=4, starvation_limit=10)
    s._MustUse__silence = True  # only the properties are looked at
    assert (s.depth, s.id_width, s.starvation_limit, s.timing, s.geometry) == (8, 4, 10, DDR4Timing(), DDR4Geometry())


def test_expected_hint_is_the_in_order_open_page_prediction():
    assert expected_hint(None, 5) == 0b110  # bank closed: ACT|RD
    assert expected_hint(5, 5) == 0b100  # same row: RD
    assert expected_hint(4, 5) == 0b111  # other row: PRE|ACT|RD


def simulate(dut, requests, *, timing=T, cycles=2000, serial=True, stop_when_done=False):
    """Drive ``requests`` ((gap, bank_group, bank, row, line, id, hint); with ``serial``, one
    at a time, ``gap`` idle cycles after the previous request's last beat; otherwise back
    to back) through ``dut`` with a DRAM stub checked by :class:`DDR4ProtocolChecker`
    (DRAM state unknown at the start: the scheduler must precharge every bank first). The
    first request is offered once ``idle`` is high (the recovery after reset is over),
    plus its gap. With ``stop_when_done``, stop once every request's last beat is back and
    ``idle`` is high. Returns (accept cycle, first beat cycle) per request, the commands,
    the counters, ``idle`` and ``cycles`` (simulated)."""
    checker = DDR4ProtocolChecker(timing=timing, initial_state="unknown")
    out = {"accepted": [], "first_beat": {}, "commands": [], "cycles": 0}

    async def bench(ctx):
        beats = {}
        pending = list(requests)
        wait = pending[0][0] if pending else 0
        busy = True  # until the recovery after reset is over
        done = 0
        for cycle in range(cycles):
            if busy and not out["accepted"] and ctx.get(dut.idle):
                busy = False
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
                if ctx.get(dut.rdata.payload.last):
                    done += 1
                    if serial:
                        busy = False
                        wait = pending[0][0] if pending else 0
            elif not busy and wait:
                wait -= 1
            if offer and ctx.get(dut.req.ready):
                out["accepted"].append(cycle)
                pending.pop(0)
                busy = serial
            out["cycles"] = cycle + 1
            if stop_when_done and done == len(requests) and ctx.get(dut.idle):
                break
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
        (0, 1, 2, 100, 3, 1, 0b110),  # closed: ACT, RD       (hint right)
        (60, 1, 2, 100, 9, 2, 0b100),  # open row: RD          (hint right)
        (60, 1, 2, 200, 0, 3, 0b100),  # other row: PRE ACT RD (hint wrong: expects 0b111)
    ]
    recovery = dut.recovery_cycles
    assert recovery == 871
    out = simulate(dut, requests, cycles=recovery + 400)
    assert out["accepted"][0] == recovery  # idle rises when the recovery is over
    latency = [out["first_beat"][rid] - acc for acc, (*_, rid, _h) in zip(out["accepted"], requests)]
    assert latency == [1 + T.tRCD + T.tCL + 1, 1 + T.tCL + 1, 1 + T.tRP + T.tRCD + T.tCL + 1]
    assert latency == [34, 18, 50]
    banks = DDR4Geometry().banks
    assert [c for cycle, c in out["commands"] if cycle < recovery] == [DramCommand.PRE] * banks + [DramCommand.REF]
    assert [c for cycle, c in out["commands"] if cycle >= recovery] == [
        DramCommand.ACT,
        DramCommand.RD,
        DramCommand.RD,
        DramCommand.PRE,
        DramCommand.ACT,
        DramCommand.RD,
    ]
    c = out["counters"]
    assert (c["acts"], c["pres"], c["reads"], c["refs"]) == (2, 1 + banks, 3, 1)
    assert (c["row_hits"], c["row_misses"], c["row_conflicts"], c["hint_mismatches"]) == (1, 1, 1, 1)
    assert out["idle"] == 1


def test_refresh_and_random_traffic_in_the_amaranth_simulator():
    """Short tREFI, back-to-back random requests: the protocol checker passes and every
    refresh is issued within tRAS + tRP + a few cycles of falling due (tREFI after the
    recovery after reset, whose REF is the first)."""
    timing = DDR4Timing(tREFI=300, tRFC=60)
    dut = RankScheduler(timing=timing, depth=4, id_width=3)
    rng = random.Random(7)
    requests = [
        (0, rng.randrange(4), rng.randrange(4), rng.randrange(3), rng.randrange(128), k % 8, 0) for k in range(40)
    ]
    recovery = dut.recovery_cycles
    out = simulate(dut, requests, timing=timing, cycles=recovery + 1300, serial=False)
    refs = [cycle for cycle, cmd in out["commands"] if cmd == DramCommand.REF]
    assert len(refs) == 5
    banks = DDR4Geometry().banks  # at most one PRE per open bank, one per cycle
    assert refs[0] == recovery - timing.tRFC
    for k, cycle in enumerate(refs[1:], start=1):
        assert 0 <= cycle - (recovery + k * timing.tREFI) <= timing.tRAS + timing.tRP + banks, refs
    assert out["counters"]["reads"] == len(requests) and out["idle"] == 1


@pytest.mark.rtl
@pytest.mark.parametrize("build", ["default", "short_refresh"])
def test_rank_scheduler_rtl(build):
    from verif.tb import rank_scheduler as tb

    tb.run(build, seed=20240611, extra_env={"RECNMP_GAP": "0.3"})


def _beat_value(bg, bank, row, column, beat):
    return ((((bg * 4 + bank) << 16 | row) << 10 | column) << 2) | beat


def run_with_resets(timing, *, seed, resets, depth=8, id_width=4, rows=3, tail=40):
    """Random back-to-back traffic over every bank (``rows`` rows each: row conflicts), with
    ``resets`` synchronous resets of the scheduler (``ResetInserter``) at random moments:
    just after a REF, just after an ACT, in the middle of a burst on ``rdata``, or at a
    random cycle; 0-3 cycles after the event, for 1-2 cycles. The DRAM stub and its
    protocol checker are never reset (``checker.controller_reset`` at each reset). Checked
    every cycle: the checker; idle low and nothing but PRE/REF during each recovery;
    every beat on ``rdata`` belongs to a request accepted since the last reset, in order,
    with its data. After the last reset ``tail`` more requests are sent, and every one
    must complete. Returns a summary."""
    dut = RankScheduler(timing=timing, depth=depth, id_width=id_width)
    rst = Signal()
    top = ResetInserter({"sync": rst})(dut)
    checker = DDR4ProtocolChecker(timing=timing, initial_state="unknown")
    rng = random.Random(seed)
    recovery = dut.recovery_cycles
    summary = {"resets": [], "triggers": [], "completed": 0, "abandoned": 0}

    async def bench(ctx):
        beats = {}
        free = list(range(1 << id_width))
        outstanding = {}  # id -> [(bank_group, bank, row, line), next beat]
        reset_left = 0  # reset cycles still to assert after this one
        recovered_at = 0  # first cycle the scheduler serves requests again
        trigger, delay, armed_at = None, 0, rng.randrange(recovery + 50, recovery + 400)
        after_last = 0  # requests accepted after the last reset
        offered = None
        cycle = 0
        while True:
            fail = f"seed {seed}, cycle {cycle}, resets at {summary['resets']}"
            if trigger is None and not reset_left and len(summary["resets"]) < resets and cycle >= armed_at:
                trigger = rng.choice(["REF", "ACT", "burst", "now"])
                delay = rng.randrange(4)
                summary["triggers"].append(trigger)
                if trigger == "now":
                    trigger = "go"
            if trigger == "go" and delay == 0:
                trigger = None
                reset_left = rng.choice([1, 1, 2])
                summary["resets"].append(cycle)
            elif trigger == "go":
                delay -= 1
            in_reset = reset_left > 0
            ctx.set(rst, in_reset)
            beat = beats.pop(cycle, None)
            ctx.set(dut.dram.rd_data, beat or 0)
            ctx.set(dut.dram.rd_valid, beat is not None)
            last_phase = len(summary["resets"]) == resets and not in_reset
            if offered is None and free and not (last_phase and after_last >= tail) and rng.random() < 0.9:
                offered = (
                    free.pop(rng.randrange(len(free))),
                    rng.randrange(4),
                    rng.randrange(4),
                    rng.randrange(rows),
                    rng.randrange(128),
                )
            ctx.set(dut.req.valid, offered is not None)
            if offered is not None:
                rid, bg, bank, row, line = offered
                for field, value in (("bank_group", bg), ("bank", bank), ("row", row), ("line", line)):
                    ctx.set(getattr(dut.req.payload.addr, field), value)
                ctx.set(dut.req.payload.id, rid)
            cmd = DramCommand(ctx.get(dut.dram.cmd))
            recovering = summary["resets"] and summary["resets"][-1] < cycle < recovered_at
            if cmd == DramCommand.NOP:
                checker.check_refresh(cycle)
            else:
                addr = {f: ctx.get(getattr(dut.dram, f)) for f in ("bank_group", "bank", "row", "column")}
                if recovering and not in_reset:
                    assert cmd in (DramCommand.PRE, DramCommand.REF), f"{fail}: {cmd.name} during the recovery"
                row = checker.command(cycle, cmd, **addr)
                if cmd == DramCommand.RD:
                    for k in range(timing.tBL):
                        beats[cycle + timing.tCL + k] = _beat_value(
                            addr["bank_group"], addr["bank"], row, addr["column"], k
                        )
                if trigger == cmd.name:
                    trigger = "go"
            if recovering and not in_reset:
                assert not ctx.get(dut.idle), f"{fail}: idle high during the recovery"
            if in_reset:
                pass  # outputs of the state before the reset
            elif ctx.get(dut.rdata.valid):
                rid, beat_no = ctx.get(dut.rdata.payload.id), ctx.get(dut.rdata.payload.beat)
                assert rid in outstanding, f"{fail}: beat {beat_no} for id {rid}, not outstanding"
                (bg, bank, row, line), want = outstanding[rid]
                assert beat_no == want, f"{fail}: id {rid} beat {beat_no}, expected {want}"
                data = ctx.get(dut.rdata.payload.data)
                assert data == _beat_value(bg, bank, row, line * 8, beat_no), f"{fail}: id {rid} wrong data"
                assert ctx.get(dut.rdata.payload.last) == (beat_no == timing.tBL - 1), fail
                outstanding[rid][1] += 1
                if beat_no == 1 and trigger == "burst":
                    trigger = "go"
                if beat_no == timing.tBL - 1:
                    del outstanding[rid]
                    free.append(rid)
                    summary["completed"] += 1
            if offered is not None and ctx.get(dut.req.ready) and not in_reset:
                rid, *address = offered
                outstanding[rid] = [tuple(address), 0]
                offered = None
                after_last += last_phase
            if reset_left:
                reset_left -= 1
                if not reset_left:  # cycle + 1 is the first cycle after the reset
                    summary["abandoned"] += len(outstanding)
                    free.extend(outstanding)
                    outstanding.clear()
                    if offered is not None:
                        free.append(offered[0])
                        offered = None
                    recovered_at = cycle + 1 + recovery
                    armed_at = recovered_at + rng.randrange(20, 300)
            if last_phase and after_last >= tail and not outstanding and ctx.get(dut.idle):
                break
            assert cycle < 100 * recovery * (resets + 2), f"{fail}: no end ({len(outstanding)} outstanding)"
            cycle += 1
            await ctx.tick()
        summary["cycles"] = cycle
        summary["counters"] = {n: ctx.get(getattr(dut, n)) for n in RankScheduler.COUNTERS}

    sim = Simulator(top)
    sim.add_clock(1e-9)
    sim.add_testbench(bench)
    sim.run()
    summary["commands"] = dict(checker.counts)
    return summary


def test_recovery_after_reset_is_the_documented_sequence():
    """Reset just after an ACT with rows open (DRAM not reset): W command-free cycles, a PRE
    to every bank one per cycle, REF tRP after the last, idle low until tRFC after it; then
    a request is served as from a fresh start (34 cycles). Read data of a RD issued just
    before the reset is not reported."""
    dut = RankScheduler()
    rst = Signal()
    top = ResetInserter({"sync": rst})(dut)
    recovery = dut.recovery_cycles
    wait = recovery_wait(T)
    banks = [(bg, b) for bg in range(4) for b in range(4)]
    assert (wait, recovery) == (T.tRFC, wait + len(banks) - 1 + T.tRP + T.tRFC) == (420, 871)
    checker = DDR4ProtocolChecker(initial_state="unknown")
    log = {"commands": [], "idle": [], "rdata": []}
    reset_at = recovery + 22  # ACTs at recovery + 1 and + 5, RDs at + 17 and + 21

    async def bench(ctx):
        requests = {recovery: (0, 1, 2, 7, 3), recovery + 1: (1, 2, 0, 9, 0), reset_at + 2 + recovery: (2, 3, 3, 5, 1)}
        for cycle in range(reset_at + 2 * recovery + 60):
            ctx.set(rst, cycle == reset_at)
            req = requests.get(cycle)
            ctx.set(dut.req.valid, req is not None)
            if req:
                rid, bg, bank, row, line = req
                for field, value in (("bank_group", bg), ("bank", bank), ("row", row), ("line", line)):
                    ctx.set(getattr(dut.req.payload.addr, field), value)
                ctx.set(dut.req.payload.id, rid)
                assert ctx.get(dut.req.ready)
            cmd = DramCommand(ctx.get(dut.dram.cmd))
            if cmd != DramCommand.NOP:
                addr = {f: ctx.get(getattr(dut.dram, f)) for f in ("bank_group", "bank", "row", "column")}
                checker.command(cycle, cmd, **addr)
                log["commands"].append((cycle, cmd, addr["bank_group"], addr["bank"]))
            if cycle == reset_at:
                checker.controller_reset(cycle)
            log["idle"].append(ctx.get(dut.idle))
            if ctx.get(dut.rdata.valid):
                log["rdata"].append((cycle, ctx.get(dut.rdata.payload.id)))
            await ctx.tick()

    sim = Simulator(top)
    sim.add_clock(1e-9)
    sim.add_testbench(bench)
    sim.run()
    before = [(c, cmd) for c, cmd, *_ in log["commands"] if c <= reset_at]
    assert before[-4:] == [
        (recovery + 1, DramCommand.ACT),
        (recovery + 5, DramCommand.ACT),
        (recovery + 17, DramCommand.RD),
        (recovery + 21, DramCommand.RD),
    ]
    zero = reset_at + 1  # the first cycle after the reset
    after = [entry for entry in log["commands"] if zero <= entry[0] < zero + recovery]
    assert after == [(zero + wait + j, DramCommand.PRE, bg, b) for j, (bg, b) in enumerate(banks)] + [
        (zero + wait + len(banks) - 1 + T.tRP, DramCommand.REF, 0, 0)
    ]
    assert not any(log["idle"][zero : zero + recovery]) and log["idle"][zero + recovery] == 1
    # the RDs went out just before the reset: their beats (from + 33) are not reported
    assert [rid for _, rid in log["rdata"]] == [2] * 4
    first_beat = next(c for c, rid in log["rdata"] if rid == 2)
    assert first_beat - (reset_at + 2 + recovery) == 34


RESET_TIMINGS = {
    "tRFC_longest": DDR4Timing(tREFI=700, tRFC=120),  # W = tRFC
    "tRC_longest": DDR4Timing(tRC=70, tRFC=30, tREFI=400),  # W = tRC, tRAS > tRFC
}


@pytest.mark.parametrize("name", sorted(RESET_TIMINGS))
def test_reset_at_random_moments_of_random_traffic(name):
    """Resets just after REFs, ACTs, mid-burst and at random cycles of back-to-back random
    traffic; the DRAM and its checker are not reset: the checker stays green and every
    request accepted after a reset completes with its data (``run_with_resets``)."""
    timing = RESET_TIMINGS[name]
    seed = SEED + len(name)
    summary = run_with_resets(timing, seed=seed, resets=12)
    assert len(summary["resets"]) == 12, summary
    assert {"REF", "ACT", "burst", "now"} <= set(summary["triggers"]), (seed, summary["triggers"])
    assert summary["abandoned"] > 0 and summary["completed"] >= 40, (seed, summary)


def random_legal_timing(rng):
    """A random timing set that DDR4Timing accepts, often at the boundaries of its rules:
    tRC == tRAS + tRP, tRAS == tRCD + tRTP, tCCD_L == tCCD_S, tRRD_L == tRRD_S, gaps of 1,
    tREFI at its minimum."""

    def edge(low, high):
        return rng.choice([low, low, rng.randint(low, high)])

    kw = dict(
        tRCD=edge(1, 24),
        tRTP=edge(1, 20),
        tRP=edge(1, 20),
        tCL=edge(1, 20),
        tCCD_S=edge(4, 8),
        tRRD_S=edge(1, 10),
        tFAW=edge(1, 60),
        tRFC=edge(1, 80),
    )
    kw["tRAS"] = kw["tRCD"] + kw["tRTP"] + rng.choice([0, 0, 1, rng.randint(1, 20)])
    kw["tRC"] = kw["tRAS"] + kw["tRP"] + rng.choice([0, 0, 1, rng.randint(1, 20)])
    kw["tCCD_L"] = kw["tCCD_S"] + rng.choice([0, 0, 1, rng.randint(1, 6)])
    kw["tRRD_L"] = kw["tRRD_S"] + rng.choice([0, 0, 1, rng.randint(1, 6)])
    probe = DDR4Timing(**kw, tREFI=10**6)
    kw["tREFI"] = probe.min_tREFI + rng.choice([0, 0, 1, rng.randint(1, 300)])
    return DDR4Timing(**kw)


def completion_bound(dut, n):
    """Cycles by which ``n`` back-to-back requests have all completed. Every refresh
    interval serves at least the request that is oldest when the refresh's tRFC ends
    (``DDR4Timing.min_tREFI``), the first interval starts when the recovery after reset
    ends, and a request accepted just after a tRFC ended waits one more interval, so the
    last RD is issued by ``recovery + (n + 1) * tREFI``; its last beat leaves
    ``tCL + tBL`` cycles later."""
    t = dut.timing
    return dut.recovery_cycles + (n + 1) * t.tREFI + t.tCL + t.tBL + 1


def test_random_legal_timing_sets_serve_every_request():
    """No timing set DDR4Timing accepts starves a request: random legal sets (boundaries
    included), random depth 2..8, back-to-back requests over all banks and bank groups
    with row conflicts, against the protocol checker."""
    rng = random.Random(SEED)
    worst = 0.0
    for trial in range(24):
        timing = random_legal_timing(rng)
        depth = rng.randint(2, 8)
        n = 40
        requests = [
            (0, rng.randrange(4), rng.randrange(4), rng.randrange(3), rng.randrange(128), k % 8, 0) for k in range(n)
        ]
        dut = RankScheduler(timing=timing, depth=depth, id_width=3)
        bound = completion_bound(dut, n)
        where = f"seed {SEED} trial {trial}: {timing}, depth {depth}"
        out = simulate(dut, requests, timing=timing, cycles=bound + 1, serial=False, stop_when_done=True)
        assert out["counters"]["reads"] == n and out["idle"] == 1, (
            f"{where}: {out['counters']['reads']} of {n} reads in {out['cycles']} cycles (bound {bound})"
        )
        worst = max(worst, (out["cycles"] - dut.recovery_cycles) / (bound - dut.recovery_cycles))
    assert worst < 1
