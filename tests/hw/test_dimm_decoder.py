"""DimmDecoder in the Amaranth simulator: every word reaches exactly the ranks it should, in
order, under random backpressure on every rank; dropped words are counted exactly."""

import os

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.dimm_decoder import DimmDecoder
from hw.isa import LOOKUP_OPCODES, Opcode, daddr_compose, pack, words_to_ints

SEED = int(os.environ.get("RECNMP_SEED", "20261203"))
CONTROL = (Opcode.EOP, Opcode.INVALIDATE, Opcode.CONFIG)
UNDEFINED = sorted(set(range(16)) - {int(op) for op in Opcode})


def random_words(rng, count):
    """(word, kind, rank): kind 'lookup', 'control', 'illegal' or 'bad_rank' (for 4 ranks max)."""
    words = []
    for _ in range(count):
        kind = rng.choice(["lookup"] * 6 + ["control"] * 2 + ["illegal"])
        rank = int(rng.integers(0, 4))
        opcode = (
            int(rng.choice(sorted(LOOKUP_OPCODES)))
            if kind == "lookup"
            else int(rng.choice(CONTROL))
            if kind == "control"
            else 0
        )
        daddr = int(
            daddr_compose(
                rank=rank,
                bank_group=int(rng.integers(0, 4)),
                bank=int(rng.integers(0, 4)),
                row=int(rng.integers(0, 1 << 16)),
                column=int(rng.integers(0, 1024)),
            )
        )
        word = words_to_ints(
            pack(
                {
                    "opcode": opcode or 1,
                    "ddr_cmd": int(rng.integers(0, 8)),
                    "daddr": daddr,
                    "vsize": int(rng.integers(0, 8)),
                    "weight": float(rng.standard_normal()),
                    "locality": int(rng.integers(0, 2)),
                    "psum_tag": int(rng.integers(0, 16)),
                }
            )
        )[0]
        if kind == "illegal":
            word = (word & ~0xF) | int(rng.choice(UNDEFINED))
        words.append((word, kind, rank))
    return words


def simulate(dut, words, *, seed, gap=0.2, stall=0.4):
    rng = np.random.default_rng(seed)
    pending = list(words)
    received = [[] for _ in range(dut.ranks)]
    limit = 20 * len(words) + 100

    async def bench(ctx):
        for _ in range(limit):
            offer = bool(pending) and rng.random() >= gap
            ctx.set(dut.i.valid, offer)
            if offer:
                ctx.set(dut.i.payload.as_value(), pending[0][0])
            readies = [rng.random() >= stall for _ in range(dut.ranks)]
            for o, ready in zip(dut.outputs(), readies):
                ctx.set(o.ready, ready)
            await ctx.delay(1e-10)
            for r, (o, ready) in enumerate(zip(dut.outputs(), readies)):
                if ready and ctx.get(o.valid):
                    received[r].append(ctx.get(o.payload.as_value()))
            if offer and ctx.get(dut.i.ready):
                pending.pop(0)
            await ctx.tick()
            if not pending:
                break
        counters = {name: ctx.get(getattr(dut, name)) for name in DimmDecoder.COUNTERS}
        received.append(counters)

    sim = Simulator(dut)
    sim.add_clock(1e-9)
    sim.add_testbench(bench)
    sim.run()
    assert not pending, f"seed {seed}: {len(pending)} of {len(words)} words never accepted"
    return received[:-1], received[-1]


@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_words_reach_their_ranks_in_order_and_drops_are_counted(ranks):
    seed = SEED + ranks
    words = random_words(np.random.default_rng(seed), 400)
    dut = DimmDecoder(ranks=ranks)
    received, counters = simulate(dut, words, seed=seed)
    for r in range(ranks):
        want = [w for w, kind, rank in words if kind == "control" or (kind == "lookup" and rank == r)]
        assert received[r] == want, f"seed {seed}: rank {r} got {len(received[r])} words, expected {len(want)}"
    assert counters == {
        "illegal": sum(kind == "illegal" for _, kind, _ in words),
        "bad_rank": sum(kind == "lookup" and rank >= ranks for _, kind, rank in words),
        "packets": sum(kind == "control" and w & 0xF == Opcode.EOP for w, kind, _ in words),
    }, f"seed {seed}"


def test_a_control_word_is_held_for_a_rank_that_is_not_ready():
    """Rank 1 is never ready: the EOP stays offered to it, rank 0 takes it once, and the
    next word waits."""
    dut = DimmDecoder(ranks=2)
    eop = words_to_ints(
        pack({"opcode": Opcode.EOP, "ddr_cmd": 0, "daddr": 1, "vsize": 0, "weight": 0.0, "locality": 0, "psum_tag": 0})
    )[0]
    seen = {"o0": 0, "ready": []}

    async def bench(ctx):
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.i.payload.as_value(), eop)
        ctx.set(dut.o0.ready, 1)
        for _ in range(10):
            await ctx.delay(1e-10)
            seen["o0"] += ctx.get(dut.o0.valid)
            seen["ready"].append(ctx.get(dut.i.ready))
            assert ctx.get(dut.o1.valid) == 1
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-9)
    sim.add_testbench(bench)
    sim.run()
    assert seen == {"o0": 1, "ready": [0] * 10}


def test_bad_parameters_are_rejected():
    for ranks in (0, 3, 8, 2.0, True):
        with pytest.raises(ValueError, match="ranks"):
            DimmDecoder(ranks=ranks)
