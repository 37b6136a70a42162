"""RankDatapath in the Amaranth simulator: accumulation order, interlock, marks and drain, bit-exact."""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.hdl import ResetInserter, Signal
from amaranth.sim import Simulator

from hw.rank_datapath import RankDatapath

F32 = np.float32


class Model:
    """psum[tag][element] = psum + ((a * b) + c), each op rounded to fp32, in beat order;
    a drain returns the mask's tags and clears every tag (docs/rank_nmp_semantics.md)."""

    def __init__(self, lanes, max_elements):
        self.lanes = lanes
        self.max_elements = max_elements
        self.psum = np.zeros((16, max_elements), np.float32)
        self.written = [0] * 16  # beats written per tag in this packet
        self.mismatches = 0

    def beat(self, tag, beat, a, b, c):
        sl = slice(beat * self.lanes, (beat + 1) * self.lanes)
        with np.errstate(all="ignore"):
            self.psum[tag, sl] = self.psum[tag, sl] + ((a * b) + c)
        self.written[tag] = max(self.written[tag], beat + 1)

    def drain(self, mask, elements, reserved=0):
        out = []
        if not reserved and 1 <= elements <= self.max_elements:
            beats = -(-elements // self.lanes)
            self.mismatches += sum(
                1 for t in range(16) if self.written[t] and (not mask >> t & 1 or self.written[t] > beats)
            )
            for tag in range(16):
                if mask >> tag & 1:
                    for b in range(beats):
                        sl = slice(b * self.lanes, (b + 1) * self.lanes)
                        out.append((tag, b, self.psum[tag, sl].view(np.uint32).tolist()))
        self.psum[:] = 0
        self.written = [0] * 16
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


def bits(values):
    return [int(v) for v in np.asarray(values, F32).view(np.uint32)]


def run(dut, program, *, stall=0.0, seed=0, garbage=False):
    """program: list of ("beat", tag, beat, a, b, c) and ("drain", mask, elements, reserved).

    With ``garbage``, every register-file entry is first written with a non-zero value and
    the datapath is reset (memories keep their contents), so that the program must not see
    any of it. Returns (beats on ``o``, eop_mismatches, cycles)."""
    lanes = dut.lanes
    outputs = []
    rng = random.Random(seed)
    expected_beats = sum(
        len([t for t in range(16) if op[1] >> t & 1]) * -(-op[2] // lanes)
        for op in program
        if op[0] == "drain" and not op[3] and 1 <= op[2] <= dut.max_elements
    )
    reset = Signal()
    result = {}

    async def testbench(ctx):
        ctx.set(dut.o.ready, 1)
        if garbage:
            ctx.set(dut.i.valid, 1)
            for tag in range(16):
                for beat in range(dut.max_beats):
                    ctx.set(
                        dut.i.payload,
                        {
                            "tag": tag,
                            "beat": beat,
                            "a": bits([1.0] * lanes),
                            "b": bits([3.5 + beat] * lanes),
                            "c": bits([-0.0] * lanes),
                        },
                    )
                    while not ctx.get(dut.i.ready):
                        await ctx.tick()
                    await ctx.tick()
            ctx.set(dut.i.valid, 0)
            await ctx.tick().repeat(dut.latency + 2)
            ctx.set(reset, 1)
            await ctx.tick()
            ctx.set(reset, 0)
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
                ctx.set(dut.drain.payload, {"tag_mask": op[1], "elements": op[2], "reserved": op[3]})
            ready = rng.random() >= stall
            ctx.set(dut.o.ready, ready)
            _, _, i_ready, d_ready, o_valid, o_payload = await ctx.tick().sample(
                dut.i.ready, dut.drain.ready, dut.o.valid, dut.o.payload
            )
            if offer and ((op[0] == "beat" and i_ready) or (op[0] == "drain" and d_ready)):
                pos += 1
                offered = False
            if ready and o_valid:
                outputs.append((o_payload.tag, o_payload.beat, list(o_payload.data), o_payload.last))
            cycle += 1
            assert cycle < 50 * len(program) + 1000, (
                f"the datapath stopped: {pos} of {len(program)} operations taken, "
                f"{len(outputs)} of {expected_beats} beats out"
            )
        ctx.set(dut.i.valid, 0)
        ctx.set(dut.drain.valid, 0)
        await ctx.tick().repeat(dut.latency + 2)
        assert not ctx.get(dut.busy) and not ctx.get(dut.o.valid)
        result["mismatches"] = ctx.get(dut.eop_mismatches)
        result["cycles"] = cycle

    sim = Simulator(ResetInserter({"sync": reset})(dut))
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return outputs, result["mismatches"], result["cycles"]


def random_program(rng, lanes, max_elements, packets, beats_per_packet, tags=4):
    """Random packets whose beats of each tag form a prefix (beat b only after beat b - 1
    of the same tag in the packet: the datapath's contract), in random order with repeats,
    and drains of every kind: short, long, empty mask, missing tags, malformed."""
    model = Model(lanes, max_elements)
    program, expected = [], []
    max_beats = max_elements // lanes
    for _ in range(packets):
        used = rng.choice(16, tags, replace=False)
        sent = {int(t): 0 for t in used}  # beats of the tag sent so far (the prefix)
        mask = 0
        for _ in range(beats_per_packet):
            tag = int(rng.choice(used))
            beat = int(rng.integers(0, min(sent[tag] + 1, max_beats)))
            sent[tag] = max(sent[tag], beat + 1)
            a, b, c = (random_f32(rng, lanes) for _ in range(3))
            program.append(("beat", tag, beat, a, b, c))
            model.beat(tag, beat, a, b, c)
            if rng.random() < 0.8:
                mask |= 1 << tag  # sometimes a written tag is left out of the mask
        mask |= 1 << int(rng.integers(0, 16))  # sometimes a tag with no beats: zeros
        kind = rng.random()
        reserved = 0
        if kind < 0.1:
            mask = 0
        if kind > 0.9:
            elements, reserved = int(rng.integers(1, max_elements + 1)), int(rng.integers(1, 64))
        elif kind > 0.8:
            elements = int(rng.choice([0, max_elements + 1, 1023]))
        else:
            elements = int(rng.integers(1, max_elements + 1))
        program.append(("drain", mask, elements, reserved))
        drained = model.drain(mask, elements, reserved)
        expected.extend((t, b, d, int(n == len(drained) - 1)) for n, (t, b, d) in enumerate(drained))
    return program, expected, model.mismatches


@pytest.mark.parametrize("stall,garbage", [(0.0, True), (0.3, False), (0.3, True)])
def test_random_accumulation_and_drain_bit_exact(stall, garbage):
    seed = 7
    rng = np.random.default_rng(seed)
    dut = RankDatapath(lanes=2, max_elements=8)
    # Few tags and beats: many back-to-back hits on one entry exercise the interlock.
    program, expected, mismatches = random_program(rng, 2, 8, packets=12, beats_per_packet=30, tags=2)
    got, got_mismatches, _ = run(dut, program, stall=stall, seed=3, garbage=garbage)
    assert len(got) == len(expected) > 50, (seed, len(got), len(expected))
    assert got == expected, seed
    assert got_mismatches == mismatches > 0, (seed, got_mismatches, mismatches)


def test_drain_clears_every_tag_over_its_whole_length():
    """An EOP with an empty mask, a short ``elements`` or a missing tag, and a malformed
    one, still start every tag of the next packet at +0.0 (and count the mismatches)."""
    dut = RankDatapath(lanes=4, max_elements=16)
    ones, zeros, mz = np.ones(4, F32), np.zeros(4, F32), np.full(4, -0.0, F32)
    row = [("beat", t, b, ones, ones * F32(b + 1), mz) for t in (2, 9) for b in range(4)]
    one_beat = [("beat", t, 0, ones, ones, mz) for t in (2, 9)]
    program = (
        row
        + [("drain", 0, 16, 0)]  # empty mask: 2 mismatches
        + row
        + [("drain", 1 << 2, 8, 0)]  # short, 9 missing: 2 mismatches
        + row
        + [("drain", 1 << 2, 16, 1)]  # malformed: nothing, no mismatch count
        + row
        + [("drain", 0b11 << 8, 0, 0)]  # malformed (elements 0)
        + one_beat
        + [("drain", 1 << 2 | 1 << 9, 16, 0)]
    )
    got, mismatches, _ = run(dut, program)
    b1, z = bits(ones), bits(zeros)
    s = lambda b: bits(ones * F32(b + 1))  # noqa: E731
    want = [(2, 0, s(0), 0), (2, 1, s(1), 1)]  # the short drain: tag 2, 2 beats
    want += [(t, b, b1 if b == 0 else z, int(t == 9 and b == 3)) for t in (2, 9) for b in range(4)]
    assert got == want
    assert mismatches == 4


def test_rows_of_four_beats_accumulate_without_stalls():
    """Default 4 lanes: consecutive 64 B rows into one tag never wait on the interlock."""
    dut = RankDatapath()
    one = np.ones(4, F32)
    rows = 8
    program = [("beat", 5, b, one, one * F32(b + 1), np.full(4, -0.0, F32)) for _ in range(rows) for b in range(4)]
    waits, out = [], []

    async def testbench(ctx):
        ctx.set(dut.o.ready, 1)
        for _ in range(10):  # the datapath is ready at once after reset
            if ctx.get(dut.i.ready):
                break
            await ctx.tick()
        assert ctx.get(dut.i.ready), "not ready 10 cycles after reset"
        for _, tag, beat, a, b, c in program:
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, {"tag": tag, "beat": beat, "a": bits(a), "b": bits(b), "c": bits(c)})
            cycle = 0
            while True:
                _, _, ready = await ctx.tick().sample(dut.i.ready)
                if ready:
                    break
                cycle += 1
                assert cycle < 100, "a beat was never accepted"
            waits.append(cycle)
        ctx.set(dut.i.valid, 0)
        ctx.set(dut.drain.valid, 1)
        ctx.set(dut.drain.payload, {"tag_mask": 1 << 5, "elements": 16, "reserved": 0})
        for _ in range(100):
            _, _, valid, payload, d_ready = await ctx.tick().sample(dut.o.valid, dut.o.payload, dut.drain.ready)
            if valid:
                out.append(list(payload.data))
            if d_ready:
                break
        ctx.set(dut.drain.valid, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    assert len(waits) == len(program) == 32, len(waits)
    assert waits == [0] * len(program), f"a beat waited: {waits}"
    assert out == [bits(one * F32(rows * (b + 1))) for b in range(4)], out


def test_parameters_are_validated():
    with pytest.raises(ValueError, match="lanes must be one of 1, 2, 4, 8, 16, got 3"):
        RankDatapath(lanes=3)
    with pytest.raises(ValueError, match="lanes must be one of 1, 2, 4, 8, 16, got 4.0"):
        RankDatapath(lanes=4.0)
    with pytest.raises(ValueError, match=r"max_elements must be a multiple of lanes \(4\) from 4 to 1023, got 30"):
        RankDatapath(max_elements=30)
    dut = RankDatapath(lanes=4, max_elements=20)  # any multiple of lanes: 5 beats per tag
    assert dut.max_beats == 5
    with pytest.raises(AttributeError):
        dut.lanes = 8


def test_reset_in_the_middle_clears_the_partial_sums():
    """Memories keep their contents through reset: after it, every entry reads +0.0 until
    written (the marks are reset), and the datapath takes beats in the first cycle."""
    dut = RankDatapath(lanes=2, max_elements=4)
    reset = Signal()
    two = bits(np.full(2, 2.0, F32))
    one = bits(np.ones(2, F32))
    minus_zero = bits(np.full(2, -0.0, F32))
    out = []
    waited = []

    async def send_beat(ctx, tag, beat, b):
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.i.payload, {"tag": tag, "beat": beat, "a": one, "b": b, "c": minus_zero})
        n = 0
        while True:
            _, _, ready = await ctx.tick().sample(dut.i.ready)
            if ready:
                break
            n += 1
        waited.append(n)
        ctx.set(dut.i.valid, 0)

    async def testbench(ctx):
        ctx.set(dut.o.ready, 1)
        for tag in range(16):  # leave non-zero partial sums everywhere
            for beat in range(2):
                await send_beat(ctx, tag, beat, two)
        await ctx.tick().repeat(5)  # in the middle of the last beats' accumulation
        ctx.set(reset, 1)
        await ctx.tick()
        ctx.set(reset, 0)
        waited.clear()
        await send_beat(ctx, 3, 0, one)  # reads +0.0, not the 2.0 left in the memory
        ctx.set(dut.drain.valid, 1)
        ctx.set(dut.drain.payload, {"tag_mask": 1 << 3 | 1 << 15, "elements": 4, "reserved": 0})
        while len(out) < 4:
            _, _, valid, payload, d_ready = await ctx.tick().sample(dut.o.valid, dut.o.payload, dut.drain.ready)
            if valid:
                out.append(list(payload.data))
            if d_ready:
                ctx.set(dut.drain.valid, 0)

    sim = Simulator(ResetInserter({"sync": reset})(dut))
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    assert waited == [0], waited
    assert out == [one, [0, 0], [0, 0], [0, 0]], out
