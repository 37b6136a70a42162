"""RankIssue in the Amaranth simulator: checks, line splitting, operation entries, counters."""

from __future__ import annotations

import pytest
from amaranth.sim import Simulator

from hw.isa import DDR_CMD_RD, Opcode
from hw.rank_issue import RankIssue
from tests.hw.test_rank_nmp_sim import addr, config, eop, word


def run_issue(dut, words, *, cycles=200, line_ready=lambda c: True):
    ops, lines, strobes = [], [], []
    result = {}

    async def bench(ctx):
        pending = list(words)
        head = 0
        ctx.set(dut.op.ready, 1)
        ctx.set(dut.rob_empty, 1)
        for cycle in range(cycles):
            ctx.set(dut.inst.valid, bool(pending))
            if pending:
                ctx.set(dut.inst.payload.as_value(), pending[0])
            ctx.set(dut.line.ready, line_ready(cycle))
            ctx.set(dut.head, head % 2**dut.id_width)
            if ctx.get(dut.op.valid):
                ops.append(ctx.get(dut.op.payload))
            if ctx.get(dut.line.valid) and line_ready(cycle):
                p = ctx.get(dut.line.payload)
                lines.append((p.addr.row, p.addr.line, p.hint, p.allocate))
                head += 1
            if ctx.get(dut.invalidate):
                strobes.append(cycle)
            if pending and ctx.get(dut.inst.ready):
                pending.pop(0)
            await ctx.tick()
        result.update({n: ctx.get(getattr(dut, n)) for n in ("lookups", "lines", "illegal", "malformed")})
        result["busy"] = ctx.get(dut.busy)

    sim = Simulator(dut)
    sim.add_clock(1e-9)
    sim.add_testbench(bench)
    sim.run()
    return ops, lines, strobes, result


def test_lookup_lines_hints_and_entries():
    dut = RankIssue(lanes=4, max_elements=64, id_width=3)
    words = [
        word(
            Opcode.WSUM, daddr=addr(1, 2, 7, 8 * 5), vsize=3, weight_bits=0x40000000, tag=9, ddr_cmd=0b111, locality=1
        ),
        config(20),
        word(Opcode.SUM_Q8, daddr=addr(0, 0, 3, 0), vsize=1, tag=2),
        eop(0x204, 48),
    ]
    ops, lines, strobes, counters = run_issue(dut, words, line_ready=lambda c: c % 3 != 1)
    assert lines == [(7, 5, 0b111, 1), (7, 6, DDR_CMD_RD, 1), (7, 7, DDR_CMD_RD, 1), (3, 0, 0, 0)]
    assert [(o.eop, o.opcode, o.tag, o.vsize, o.first) for o in ops] == [
        (0, Opcode.WSUM, 9, 3, 0),
        (0, Opcode.SUM_Q8, 2, 1, 3),
        (1, Opcode.EOP, 0, 0, 4),
    ]
    assert ops[0].operand.weight == 0x40000000
    assert ops[1].q8_beats == 5  # ceil(20 / 4)
    assert (ops[2].operand.drain.tag_mask, ops[2].operand.drain.elements) == (0x204, 48)
    assert counters == {"lookups": 2, "lines": 4, "illegal": 0, "malformed": 0, "busy": 0}


@pytest.mark.parametrize(
    "bad",
    [
        word(Opcode.SUM, daddr=addr(0, 0, 1, 0), vsize=0),
        word(Opcode.SUM, daddr=addr(0, 0, 1, 3), vsize=1),
        word(Opcode.SUM, daddr=addr(0, 0, 1, 8 * 126), vsize=3),
        word(Opcode.WSUM, daddr=addr(0, 0, 1, 0), vsize=5),  # 80 > 64
        word(Opcode.WSUM_Q8, daddr=addr(0, 0, 1, 0), vsize=1),  # after D = 57: 65 > 64 bytes
        config(0),
        config(65),
        config(3, register=1),
        eop(1, 0),
        eop(1, 65),
        eop(1, 4, reserved=2),
    ],
    ids=[
        "vsize0",
        "unaligned",
        "row_end",
        "fp32_long",
        "q8_long",
        "config0",
        "config_big",
        "config_register",
        "eop_elements0",
        "eop_elements_big",
        "eop_reserved",
    ],
)
def test_each_malformed_rule_is_counted_once(bad):
    dut = RankIssue(lanes=4, max_elements=64, id_width=3)
    ops, lines, _, counters = run_issue(dut, [config(57), bad, config(7)], cycles=30)
    assert counters["malformed"] == 1 and counters["illegal"] == 0 and lines == []
    is_eop = (bad & 0xF) == Opcode.EOP
    assert len(ops) == int(is_eop)  # a malformed EOP still ends the packet


def test_illegal_words_and_invalidate():
    dut = RankIssue(lanes=2, max_elements=16, id_width=4)
    ops, lines, strobes, counters = run_issue(dut, [word(0xC), word(0), word(Opcode.INVALIDATE), word(0xF)], cycles=40)
    assert len(strobes) == 1 and counters["illegal"] == 3 and counters["malformed"] == 0
    assert ops == [] and lines == []


def test_parameters_are_validated():
    with pytest.raises(ValueError, match="lanes must be one of 1, 2, 4, 8, got 4.0"):
        RankIssue(lanes=4.0)
    with pytest.raises(ValueError, match="max_elements must be a multiple of lanes"):
        RankIssue(lanes=8, max_elements=20)
    dut = RankIssue(max_elements=40, lanes=4)
    assert (dut.max_elements, dut.default_q8_elements) == (40, 40)
    with pytest.raises(AttributeError):
        dut.lanes = 2
