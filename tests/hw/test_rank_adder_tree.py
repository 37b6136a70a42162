"""RankAdderTree in the Amaranth simulator: the pairwise fp32 tree over rank index, bit for
bit, with random gaps on every input and random backpressure on the output."""

import os

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hw.rank_adder_tree import RankAdderTree
from verif.fp32_vectors import INF, MAX_NORMAL, MAX_SUBNORMAL, MIN_SUBNORMAL, NEG_ZERO, QNAN, SIGN, SNAN

SEED = int(os.environ.get("RECNMP_SEED", "20261202"))


def with_clock(dut):
    """``dut`` inside a design that has a ``sync`` domain (a one-rank tree is combinational)."""
    m = Module()
    m.submodules.dut = dut
    tick = Signal()
    m.d.sync += tick.eq(~tick)
    return m


def tree(partials):
    while len(partials) > 1:
        partials = [partials[n] + partials[n + 1] for n in range(0, len(partials), 2)]
    return partials[0]


def simulate(dut, beats, *, seed, gap=0.3, stall=0.3, max_cycles=5000):
    """Offer ``beats[r]`` (lists of (tag, beat, last, uint32 lanes)) on every input with random
    gaps, take ``o`` with random stalls; return what came out."""
    rng = np.random.default_rng(seed)
    inputs = dut.inputs()
    pending = [list(b) for b in beats]
    out = []

    async def bench(ctx):
        for _ in range(max_cycles):
            offers = []
            for port, queue in zip(inputs, pending):
                offer = bool(queue) and rng.random() >= gap
                ctx.set(port.valid, offer)
                if offer:
                    tag, beat, last, data = queue[0]
                    ctx.set(port.payload.tag, tag)
                    ctx.set(port.payload.beat, beat)
                    ctx.set(port.payload.last, last)
                    for k, v in enumerate(data):
                        ctx.set(port.payload.data[k], int(v))
                offers.append(offer)
            ready = rng.random() >= stall
            ctx.set(dut.o.ready, ready)
            await ctx.delay(1e-10)
            taken = [offer and ctx.get(port.ready) for port, offer in zip(inputs, offers)]
            assert len(set(taken)) == 1, f"seed {seed}: inputs taken {taken}: they must move together"
            emitted = ready and ctx.get(dut.o.valid)
            if emitted:
                out.append(
                    (
                        ctx.get(dut.o.payload.tag),
                        ctx.get(dut.o.payload.beat),
                        ctx.get(dut.o.payload.last),
                        [ctx.get(dut.o.payload.data[k]) for k in range(dut.lanes)],
                    )
                )
            for queue, took in zip(pending, taken):
                if took:
                    queue.pop(0)
            # Beats taken before this cycle and not out before it: what `busy` reports.
            inside = len(beats[0]) - len(pending[0]) - taken[0] - (len(out) - emitted)
            if dut.ranks > 1:
                assert ctx.get(dut.busy) == (inside > 0), f"seed {seed}: busy with {inside} beats inside"
            await ctx.tick()
            if not any(pending) and len(out) == len(beats[0]):
                return

    sim = Simulator(with_clock(dut))
    sim.add_clock(1e-9)
    sim.add_testbench(bench)
    sim.run()
    return out


@pytest.mark.parametrize("ranks,lanes", [(1, 4), (2, 4), (4, 4), (4, 1), (2, 8)])
def test_pairwise_tree_is_bit_exact_under_gaps_and_backpressure(ranks, lanes):
    seed = SEED + 10 * ranks + lanes
    rng = np.random.default_rng(seed)
    special = np.array(
        [0, NEG_ZERO, INF, INF | SIGN, QNAN, SNAN, MAX_NORMAL, MAX_NORMAL | SIGN, MIN_SUBNORMAL, MAX_SUBNORMAL | SIGN],
        np.uint32,
    ).view(np.float32)
    pool = np.concatenate([special, rng.standard_normal(200).astype(np.float32) * 1e3])
    count = 60
    values = rng.choice(pool, (ranks, count, lanes)).astype(np.float32)
    meta = [(int(rng.integers(0, 16)), n % 7, int(n == count - 1)) for n in range(count)]
    beats = [[(*meta[n], values[r, n].view(np.uint32)) for n in range(count)] for r in range(ranks)]
    dut = RankAdderTree(ranks=ranks, lanes=lanes, beat_width=3)
    out = simulate(dut, beats, seed=seed)
    assert len(out) == count, f"seed {seed}: {len(out)} of {count} beats came out"
    with np.errstate(all="ignore"):
        want = tree([values[r] for r in range(ranks)])
    for n, (tag, beat, last, data) in enumerate(out):
        assert (tag, beat, last) == meta[n], f"seed {seed} beat {n}"
        got = np.array(data, np.uint32)
        nan = np.isnan(got.view(np.float32)) & np.isnan(want[n])
        assert ((got == want[n].view(np.uint32)) | nan).all(), (
            f"seed {seed} beat {n}: got {[hex(x) for x in got]}, want {[hex(x) for x in want[n].view(np.uint32)]}"
        )


def test_latency_is_log2_ranks_adder_latencies():
    for ranks, latency in ((1, 0), (2, 3), (4, 6)):
        dut = RankAdderTree(ranks=ranks, lanes=4, beat_width=2, add_latency=3)
        assert dut.latency == latency
        seen = {}

        async def bench(ctx, dut=dut, seen=seen):
            for port in dut.inputs():
                ctx.set(port.valid, 1)
            ctx.set(dut.o.ready, 1)
            for cycle in range(12):
                await ctx.delay(1e-10)
                if ctx.get(dut.o.valid) and "first" not in seen:
                    seen["first"] = cycle
                await ctx.tick()
                for port in dut.inputs():
                    ctx.set(port.valid, 0)

        sim = Simulator(with_clock(dut))
        sim.add_clock(1e-9)
        sim.add_testbench(bench)
        sim.run()
        assert seen["first"] == latency, (ranks, seen)


def test_bad_parameters_are_rejected():
    for kwargs, words in [
        ({"ranks": 3}, "ranks"),
        ({"ranks": 2.0}, "ranks"),
        ({"lanes": 3}, "lanes"),
        ({"add_latency": 0}, "add_latency"),
    ]:
        with pytest.raises(ValueError, match=words):
            RankAdderTree(**{"ranks": 2, "lanes": 4, "beat_width": 2, **kwargs})
