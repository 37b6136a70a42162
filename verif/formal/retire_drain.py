"""Specs of the Rank-NMP retire stage: ``drain`` keeps the stream rule; every operation is
retired exactly once.

:class:`hw.rank_retire.RankRetire` turns the EOP at the head of its operation queue into
the drain request of :class:`hw.rank_datapath.RankDatapath`. The packet-isolation proof
(``packet_isolation``) assumes that this source keeps the stream rule; with this proof the
rule on ``rank_nmp.psum`` follows from its parts (the datapath's ``o`` is wired to
``psum``, ``stream_valid_registered``).

Free inputs: the operations (any opcode, fields and EOP operand; the queue keeps the stream
rule, as Amaranth's FIFOs do), the reorder buffer's line, ``line_ready`` and ``tail``,
``beat.ready``, ``drain.ready`` and the reset. Parameters: 1 lane, ``max_elements`` 4,
multipliers of latency 1, id width 3.

Exactly once (``exactly_once=True``, 4 lanes: 4 beats per 64 B line): with the operations
well formed as the issue stage makes them (a lookup opcode, ``vsize`` 1..7, an 8-bit row's
``q8_beats`` at least 1 and within its lines), each operation leaves the queue once all of
its beats were taken by the datapath: a fp32 lookup after exactly ``vsize x 4`` beats and
``vsize`` slot releases, an 8-bit row after exactly ``q8_beats`` beats, an EOP after no
beat and in the cycle its drain is taken; no beat is offered without its operation at the
head of the queue, and every beat carries that operation's tag.
"""

from __future__ import annotations

from amaranth.asserts import AnySeq
from amaranth.hdl import Cat, Module, Signal, Value

from hw.isa import LOOKUP_OPCODES, Q8_HEADER_BYTES, Opcode
from hw.rank_retire import RankRetire

from .spec import FormalSpec, stream_contract

__all__ = ["RetireDrainSpec"]


class RetireDrainSpec(FormalSpec):
    """Stream rule on :class:`hw.rank_retire.RankRetire`'s ``drain``.

    Parameters
    ----------
    mutation : str, optional
        A test-only mutation (:attr:`hw.rank_retire.RankRetire.MUTATIONS`).
    """

    def __init__(self, *, mutation: str | None = None, exactly_once: bool = False):
        super().__init__()
        self.mutation = mutation
        self.exactly_once = exactly_once

    def build(self, m: Module, platform) -> None:
        lanes = 4 if self.exactly_once else 1
        dut = RankRetire(lanes=lanes, max_elements=16, id_width=3, mul_latency=1, mutation=self.mutation)
        m.submodules.dut = self.elaborated(dut, platform)
        free = (dut.op.valid, dut.op.payload, dut.line, dut.line_ready, dut.tail, dut.beat.ready, dut.drain.ready)
        for port in free:
            m.d.comb += Value.cast(port).eq(AnySeq(len(Value.cast(port))))
        op_held, _ = stream_contract(self, m, "stream.op_source", dut.op, obligation=False)
        if self.exactly_once:
            self._exactly_once(m, dut, op_held)
            return
        stream_contract(self, m, "stream.retire_drain", dut.drain, obligation=True)
        self.cover(m, "cover.drain_waits", dut.drain.valid & ~dut.drain.ready)
        self.cover(m, "cover.drain_taken", dut.drain.valid & dut.drain.ready)

    def _exactly_once(self, m: Module, dut: RankRetire, op_held) -> None:
        op = dut.op.payload
        regs = dut.registers
        per_line = 64 // (4 * dut.lanes)  # datapath beats of a fp32 line
        quantised = ~op.eop & ((op.opcode == Opcode.SUM_Q8) | (op.opcode == Opcode.WSUM_Q8))
        lookup = Cat(op.opcode == o for o in LOOKUP_OPCODES).any()
        # Well formed, as RankIssue makes them (docs/rank_nmp_semantics.md).
        fits = Q8_HEADER_BYTES + op.q8_beats * dut.lanes <= op.vsize * 64
        well_formed = op.eop | (lookup & (op.vsize != 0) & (~quantised | ((op.q8_beats != 0) & fits)))
        self.assume(m, "well_formed_operations", ~dut.op.valid | well_formed)

        beat_taken = dut.beat.valid & dut.beat.ready
        retired = dut.op.valid & dut.op.ready
        beats = Signal(range(8 * per_line + 1024 + 1), name="beats_of_the_head")
        frees = Signal(range(8 + 1), name="frees_of_the_head")
        with m.If(retired):
            m.d.sync += [beats.eq(0), frees.eq(0)]
        with m.Else():
            m.d.sync += [beats.eq(beats + beat_taken), frees.eq(frees + dut.free)]
        beats_now = beats + beat_taken
        frees_now = frees + dut.free
        fp32 = ~op.eop & ~quantised
        self.check(m, "retire.no_beat_without_its_operation", ~dut.beat.valid | (dut.op.valid & ~op.eop))
        self.check(m, "retire.beat_carries_the_tag", ~dut.beat.valid | (dut.beat.payload.tag == op.tag))
        self.check(
            m,
            "retire.fp32_lookup_after_all_its_beats",
            ~(retired & fp32) | ((beats_now == op.vsize * per_line) & (frees_now == op.vsize)),
        )
        self.check(m, "retire.q8_row_after_all_its_beats", ~(retired & quantised) | (beats_now == op.q8_beats))
        self.check(
            m,
            "retire.eop_with_its_drain",
            ~(retired & op.eop) | ((beats_now == 0) & dut.drain.valid & dut.drain.ready),
        )
        # Invariants: the stage's counters are the spec's; an operation in progress is held.
        started = ~regs.running | (regs.k != 0) | (regs.j != 0)
        self.check(m, "inv.retire.started_operation_held", ~started | op_held)
        self.check(m, "inv.retire.fp32_counters", ~regs.running | (beats == regs.k * per_line + regs.j))
        self.check(m, "inv.retire.fp32_frees", ~regs.running | (frees == regs.k))
        self.check(m, "inv.retire.fp32_line_in_range", ~(regs.running & started) | (fp32 & (regs.k < op.vsize)))
        self.check(m, "inv.retire.q8_counters", regs.running | (beats == regs.group))
        self.check(m, "inv.retire.q8_only_for_q8_rows", regs.running | (dut.op.valid & quantised))
        self.check(m, "inv.retire.q8_group_in_range", ~regs.streaming_q8 | (regs.group < op.q8_beats))
        self.check(m, "inv.retire.q8_released_after_its_beats", ~regs.releasing | (regs.group == op.q8_beats))
        prologue = ~regs.running & ~regs.streaming_q8 & ~regs.releasing
        self.check(m, "inv.retire.q8_prologue_before_its_beats", ~prologue | (regs.group == 0))
        self.check(m, "inv.retire.idle_counters", ~regs.running | (regs.group == 0))
        self.check(m, "inv.retire.no_fp32_line_in_a_q8_row", regs.running | ((regs.k == 0) & (regs.j == 0)))
        self.check(m, "inv.retire.pos_follows_group", regs.pos == Q8_HEADER_BYTES + regs.group * dut.lanes)
        self.cover(m, "cover.fp32_lookup_of_two_lines_retired", retired & fp32 & (op.vsize == 2))
        self.cover(m, "cover.q8_row_retired", retired & quantised & (op.q8_beats > 1))
        self.cover(m, "cover.eop_retired", retired & op.eop)
