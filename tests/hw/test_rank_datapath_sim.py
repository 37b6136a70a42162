"""RankDatapath in the Amaranth simulator: accumulation order, interlock and drain, bit-exact."""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.rank_datapath import RankDatapath

F32 = np.float32


class Model:
    """psum[tag][element] = psum + ((a * b) + c), each op rounded to fp32, in beat order."""

    def __init__(self, lanes, max_elements):
        self.lanes = lanes
        self.psum = np.zeros((16, max_elements), np.float32)

    def beat(self, tag, beat, a, b, c):
        sl = slice(beat * self.lanes, (beat + 1) * self.lanes)
        with np.errstate(all="ignore"):
            self.psum[tag, sl] = self.psum[tag, sl] + ((a * b) + c)

    def drain(self, mask, elements):
        beats = -(-elements // self.lanes)
        out = []
        for tag in range(16):
            if mask >> tag & 1:
                for b in range(beats):
                    sl = slice(b * self.lanes, (b + 1) * self.lanes)
                    out.append((tag, b, self.psum[tag, sl].view(np.uint32).tolist()))
                    self.psum[tag, sl] = 0
        return out


def random_f32(rng, n):
    """Mostly ordinary values, some zeros of both signs and large/small magnitudes."""
    kind = rng.integers(0, 10, n)
    values = rng.standard_normal(n).astype(F32) * F32(4)
    values[kind == 0] = F32(-0.0)
    values[kind == 1] = F32(0.0)
    values[kind == 2] *= F32(1e30)
    values[kind == 3] *= F32(1e-38)
    return values


def run(dut, program, *, stall=0.0, seed=0):
    """program: list of ("beat", tag, beat, a, b, c) and ("drain", mask, elements)."""
    lanes = dut.lanes
    outputs = []
    rng = random.Random(seed)
    expected_beats = sum(
        len([t for t in range(16) if op[1] >> t & 1]) * -(-op[2] // lanes)
        for op in program if op[0] == "drain")

    def bits(values):
        return [int(v) for v in np.asarray(values, F32).view(np.uint32)]

    async def testbench(ctx):
        pos, cycle, offered = 0, 0, False
        while len(outputs) < expected_beats or pos < len(program):
            op = program[pos] if pos < len(program) else None
            # A stream keeps valid (and its payload) until the transfer.
            offer = op is not None and (offered or rng.random() >= stall)
            offered = offer
            ctx.set(dut.i.valid, offer and op[0] == "beat")
            ctx.set(dut.drain.valid, offer and op[0] == "drain")
            if offer and op[0] == "beat":
                _, tag, beat, a, b, c = op
                ctx.set(dut.i.payload, {"tag": tag, "beat": beat, "a": bits(a), "b": bits(b), "c": bits(c)})
            if offer and op[0] == "drain":
                ctx.set(dut.drain.payload, {"tag_mask": op[1], "elements": op[2], "reserved": 0})
            ready = rng.random() >= stall
            ctx.set(dut.o.ready, ready)
            _, _, i_ready, d_ready, o_valid, o_payload = await ctx.tick().sample(
                dut.i.ready, dut.drain.ready, dut.o.valid, dut.o.payload)
            if offer and ((op[0] == "beat" and i_ready) or (op[0] == "drain" and d_ready)):
                pos += 1
                offered = False
            if ready and o_valid:
                outputs.append((o_payload.tag, o_payload.beat, list(o_payload.data), o_payload.last))
            cycle += 1
            assert cycle < 50 * len(program) + 1000, "the datapath stopped"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return outputs


def random_program(rng, lanes, max_elements, packets, beats_per_packet, tags=4):
    model = Model(lanes, max_elements)
    program, expected = [], []
    max_beats = max_elements // lanes
    for _ in range(packets):
        elements = int(rng.integers(1, max_elements + 1))
        beats = -(-elements // lanes)
        used = rng.choice(16, tags, replace=False)
        mask = 0
        for _ in range(beats_per_packet):
            tag = int(rng.choice(used))
            beat = int(rng.integers(0, min(beats, max_beats)))
            a, b, c = (random_f32(rng, lanes) for _ in range(3))
            program.append(("beat", tag, beat, a, b, c))
            model.beat(tag, beat, a, b, c)
            mask |= 1 << tag
        mask |= 1 << int(rng.integers(0, 16))  # sometimes a tag with no beats: zeros
        program.append(("drain", mask, elements))
        drained = model.drain(mask, elements)
        expected.extend((t, b, d, int(n == len(drained) - 1)) for n, (t, b, d) in enumerate(drained))
    return program, expected


@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_random_accumulation_and_drain_bit_exact(stall):
    rng = np.random.default_rng(7)
    dut = RankDatapath(lanes=2, max_elements=8)
    # Few tags and beats: many back-to-back hits on one entry exercise the interlock.
    program, expected = random_program(rng, 2, 8, packets=4, beats_per_packet=40, tags=2)
    got = run(dut, program, stall=stall, seed=3)
    assert got == expected


def test_rows_of_four_beats_accumulate_without_stalls():
    """Default 4 lanes: consecutive 64 B rows into one tag never wait on the interlock."""
    dut = RankDatapath()
    one = np.ones(4, F32)
    rows = 8
    program = [("beat", 5, b, one, one * F32(b + 1), np.full(4, -0.0, F32))
               for _ in range(rows) for b in range(4)]
    program.append(("drain", 1 << 5, 16))
    accepted = []

    async def testbench(ctx):
        ctx.set(dut.o.ready, 1)
        for n, op in enumerate(program[:-1]):
            _, tag, beat, a, b, c = op
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, {"tag": tag, "beat": beat,
                                     "a": [int(x) for x in a.view(np.uint32)],
                                     "b": [int(x) for x in b.view(np.uint32)],
                                     "c": [int(x) for x in c.view(np.uint32)]})
            cycle = 0
            while True:
                _, _, ready = await ctx.tick().sample(dut.i.ready)
                if ready:
                    break
                cycle += 1
            accepted.append(cycle)
        ctx.set(dut.i.valid, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run_until(1e-8 * 200)
    assert accepted == [0] * len(accepted), "a beat waited"


def test_parameters_are_validated():
    with pytest.raises(ValueError, match="lanes must be one of 1, 2, 4, 8, 16, got 3"):
        RankDatapath(lanes=3)
    with pytest.raises(ValueError, match=r"max_elements must be a multiple of lanes \(4\) from 4 to 1023, got 30"):
        RankDatapath(max_elements=30)


def test_reset_in_the_middle_clears_the_partial_sums():
    """Memories keep their contents through reset: the datapath must zero them itself."""
    from amaranth.hdl import ResetInserter, Signal

    dut = RankDatapath(lanes=2, max_elements=4)
    reset = Signal()
    two = [int(x) for x in np.full(2, 2.0, F32).view(np.uint32)]
    one = [int(x) for x in np.ones(2, F32).view(np.uint32)]
    minus_zero = [int(x) for x in np.full(2, -0.0, F32).view(np.uint32)]
    out = []

    async def send_beat(ctx, tag, beat, b):
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.i.payload, {"tag": tag, "beat": beat, "a": one, "b": b, "c": minus_zero})
        while True:
            _, _, ready = await ctx.tick().sample(dut.i.ready)
            if ready:
                break
        ctx.set(dut.i.valid, 0)

    async def testbench(ctx):
        ctx.set(dut.o.ready, 1)
        for tag in range(16):  # leave non-zero partial sums everywhere
            for beat in range(2):
                await send_beat(ctx, tag, beat, two)
        await ctx.tick().repeat(20)
        ctx.set(reset, 1)
        await ctx.tick()
        ctx.set(reset, 0)
        await send_beat(ctx, 3, 1, one)
        ctx.set(dut.drain.valid, 1)
        ctx.set(dut.drain.payload, {"tag_mask": 1 << 3, "elements": 4, "reserved": 0})
        while len(out) < 2:
            _, _, valid, payload, d_ready = await ctx.tick().sample(dut.o.valid, dut.o.payload, dut.drain.ready)
            if valid:
                out.append(list(payload.data))
            if d_ready:
                ctx.set(dut.drain.valid, 0)

    sim = Simulator(ResetInserter({"sync": reset})(dut))
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    assert out == [[0, 0], one], out
