"""RefreshControl in the Amaranth simulator: the recovery schedule after reset (hold, the PRE
sweep over every bank, one refresh owed), then one refresh owed every tREFI."""

from amaranth.hdl import ResetInserter, Signal
from amaranth.sim import Simulator

from hw.ddr4 import DDR4Geometry, DDR4Timing
from hw.refresh_control import RefreshControl, recovery_cycles, recovery_wait

T = DDR4Timing(tREFI=300, tRFC=60, tFAW=70)  # W = tFAW here


def test_recovery_wait_is_the_longest_window():
    assert recovery_wait(DDR4Timing()) == 420 and recovery_cycles(DDR4Timing(), DDR4Geometry()) == 871
    assert recovery_wait(T) == 70
    assert recovery_wait(DDR4Timing(tCL=60, tRFC=30, tREFI=400)) == 64  # read data in flight
    assert recovery_wait(DDR4Timing(tRC=80, tRFC=30, tREFI=400)) == 80


def test_schedule_after_reset_and_periodic_refresh():
    dut = RefreshControl(timing=T)
    rst = Signal()
    top = ResetInserter({"sync": rst})(dut)
    w, banks = dut.recovery_wait, 16
    total = dut.recovery_cycles
    assert total == w + banks - 1 + T.tRP + T.tRFC
    ref_at = w + banks - 1 + T.tRP
    log = []

    async def bench(ctx):
        for rep in range(2):  # from power-up, then after a reset in the middle
            for k in range(total + 2 * T.tREFI + 5):
                ctx.set(dut.ref_issued, k in (ref_at, total + T.tREFI + 7))
                log.append(
                    (
                        rep,
                        k,
                        ctx.get(dut.hold),
                        ctx.get(dut.sweep),
                        ctx.get(dut.sweep_bank_group),
                        ctx.get(dut.sweep_bank),
                        ctx.get(dut.pending),
                        ctx.get(dut.recovering),
                    )
                )
                await ctx.tick()
            ctx.set(rst, 1)
            await ctx.tick()
            ctx.set(rst, 0)

    sim = Simulator(top)
    sim.add_clock(1e-9)
    sim.add_testbench(bench)
    sim.run()
    for rep in range(2):
        rows = [r[2:] for r in log if r[0] == rep]
        hold = [k for k, r in enumerate(rows) if r[0]]
        sweep = [(k, r[2], r[3]) for k, r in enumerate(rows) if r[1]]
        assert hold == list(range(w + banks))
        assert sweep == [(w + j, j // 4, j % 4) for j in range(banks)]
        recovering = [k for k, r in enumerate(rows) if r[5]]
        assert recovering == list(range(total))
        pending = [k for k, r in enumerate(rows) if r[4]]
        # owed from reset until the REF; then due tREFI after recovery (REF 7 cycles later),
        # and again tREFI later (not paid in this test)
        due = total + T.tREFI
        assert pending == list(range(ref_at + 1)) + list(range(due, due + 8)) + list(range(due + T.tREFI, len(rows)))


def test_owed_refreshes_saturate_at_eight():
    t = DDR4Timing(tREFI=700, tRFC=120)
    dut = RefreshControl(timing=t)

    async def bench(ctx):
        await ctx.tick().repeat(dut.recovery_cycles + 12 * t.tREFI)
        for n in range(8):  # 1 from reset + 12 due, saturated at 8: 8 REFs pay them back
            assert ctx.get(dut.pending), n
            ctx.set(dut.ref_issued, 1)
            await ctx.tick()
        ctx.set(dut.ref_issued, 0)
        assert not ctx.get(dut.pending)

    sim = Simulator(dut)
    sim.add_clock(1e-9)
    sim.add_testbench(bench)
    sim.run()
