"""RankRetire in the Amaranth simulator: operations in order, beats, prologue, frees, drain."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.isa import Opcode
from hw.rank_retire import RankRetire

F32 = np.float32
ONE, MZ = 0x3F800000, 0x80000000


def f32(x):
    return int(np.array([x], F32).view(np.uint32)[0])


def line_of(words):
    return sum(int(w) << (32 * i) for i, w in enumerate(words))


def run_retire(dut, ops, slots, *, cycles=120, ready_at=lambda slot: 0):
    beats, drains, frees, busy = [], [], [], []

    async def bench(ctx):
        pending = list(ops)
        tail = 0
        ctx.set(dut.beat.ready, 1)
        ctx.set(dut.drain.ready, 1)
        for cycle in range(cycles):
            ctx.set(dut.op.valid, bool(pending))
            if pending:
                ctx.set(dut.op.payload, pending[0])
            ctx.set(dut.tail, tail % 8)
            slot = ctx.get(dut.slot)
            ctx.set(dut.line, slots.get(slot, 0))
            ctx.set(dut.line_ready, slot in slots and cycle >= ready_at(slot))
            if ctx.get(dut.beat.valid):
                p = ctx.get(dut.beat.payload)
                beats.append((p.tag, p.beat, list(p.a), list(p.b), list(p.c)))
            if ctx.get(dut.drain.valid):
                drains.append(ctx.get(dut.drain.payload).tag_mask)
            if ctx.get(dut.free):
                frees.append((cycle, tail))
                tail += 1
            busy.append(ctx.get(dut.busy))
            if pending and ctx.get(dut.op.ready):
                pending.pop(0)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-9)
    sim.add_testbench(bench)
    sim.run()
    return beats, drains, frees, busy


def op(opcode, *, tag=0, vsize=1, first=0, weight=ONE, q8_beats=0, drain=None):
    operand = {"drain": drain} if drain is not None else {"weight": weight}
    return {
        "eop": opcode == Opcode.EOP,
        "opcode": opcode,
        "tag": tag,
        "vsize": vsize,
        "first": first,
        "q8_beats": q8_beats,
        "operand": operand,
    }


def test_fp32_lookups_back_to_back_then_eop():
    dut = RankRetire(lanes=4, max_elements=64, id_width=3)
    slots = {k: line_of(range(16 * k, 16 * k + 16)) for k in range(3)}
    ops = [
        op(Opcode.WSUM, tag=3, vsize=2, first=0, weight=f32(2.0)),
        op(Opcode.SUM, tag=4, vsize=1, first=2, weight=0x7FC00000),  # SUM: weight ignored
        op(Opcode.EOP, drain={"tag_mask": 0x18, "elements": 32, "reserved": 0}),
    ]
    beats, drains, frees, _ = run_retire(dut, ops, slots, ready_at=lambda s: 5 * s)
    assert [(t, b) for t, b, *_ in beats] == [(3, b) for b in range(8)] + [(4, b) for b in range(4)]
    assert all(a == [f32(2.0)] * 4 for t, _, a, _, _ in beats if t == 3)
    assert all(a == [ONE] * 4 and c == [MZ] * 4 for t, _, a, _, c in beats if t == 4)
    assert beats[5][3] == list(range(20, 24))  # line 1, beat 1
    assert [t for _, t in frees] == [0, 1, 2]
    assert drains and drains[0] == 0x18


@pytest.mark.parametrize("weighted", [False, True])
def test_q8_row_prologue_stream_and_release(weighted):
    dut = RankRetire(lanes=4, max_elements=64, id_width=3, mul_latency=2)
    scale, bias = f32(0.5), f32(-1.0)
    row = bytes(np.array([scale, bias], np.uint32).view(np.uint8)) + bytes(range(1, 121))
    slots = {0: int.from_bytes(row[:64], "little"), 1: int.from_bytes(row[64:128], "little")}
    opcode = Opcode.WSUM_Q8 if weighted else Opcode.SUM_Q8
    w = f32(3.0) if weighted else 0xFF800000  # -inf: ignored by SUM_Q8
    beats, _, frees, busy = run_retire(dut, [op(opcode, tag=7, vsize=2, first=0, weight=w, q8_beats=3)], slots)
    s, b = (f32(1.5), f32(-3.0)) if weighted else (scale, bias)
    assert [x[1] for x in beats] == [0, 1, 2]
    assert all(a == [s] * 4 and c == [b] * 4 for _, _, a, _, c in beats)
    assert beats[2][3] == [f32(v) for v in range(9, 13)]
    assert [t for _, t in frees] == [0, 1]  # both slots freed (slot 1 after the stream)
    assert any(busy)


def test_parameters_are_validated():
    with pytest.raises(ValueError, match="lanes must be one of 1, 2, 4, 8, got 16"):
        RankRetire(lanes=16)
    with pytest.raises(ValueError, match="mul_latency"):
        RankRetire(mul_latency=0)
