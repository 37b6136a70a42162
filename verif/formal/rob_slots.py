"""Spec: every reorder-buffer slot of the Rank-NMP is filled once and released once, no line
is lost between the RankCache, the scheduler and the retire stage, and the buffer keeps the
stream rules.

The spec follows each slot through FREE -> LOOKUP (allocated; the cache's answer is due)
-> DRAM (a miss, requested from the scheduler) -> FILLED -> FREE (released by the retire
stage), with its own head and tail. The environment is free within its contracts: the
cache answers only outstanding lookups (any order, any delay, hit or miss), the scheduler
returns each requested line once as ``tBL`` consecutive beats (any delay, one burst at a
time), and the retire stage frees the oldest slot only once its line is in. Every ``ready``
is free, and so is the reset.
"""

from __future__ import annotations

from amaranth.asserts import AnySeq
from amaranth.hdl import Array, Cat, Module, Signal, Value

from hw.reorder_buffer import ReorderBuffer

from .params import FORMAL_GEOMETRY
from .spec import FormalSpec, stream_contract

__all__ = ["ReorderBufferSpec"]

FREE, LOOKUP, DRAM, FILLED = range(4)


def _free(m: Module, target) -> None:
    m.d.comb += Value.cast(target).eq(AnySeq(len(Value.cast(target))))


class ReorderBufferSpec(FormalSpec):
    """Slot accounting of :class:`hw.reorder_buffer.ReorderBuffer`.

    Parameters
    ----------
    rob_lines : int
        Slots (default 8, the smallest).
    mutation : str, optional
        A test-only mutation (:attr:`hw.reorder_buffer.ReorderBuffer.MUTATIONS`).
    """

    def __init__(self, *, rob_lines: int = 8, mutation: str | None = None):
        super().__init__()
        self.rob_lines = rob_lines
        self.mutation = mutation

    def build(self, m: Module, platform) -> None:
        g = FORMAL_GEOMETRY
        n = self.rob_lines
        dut = ReorderBuffer(rob_lines=n, geometry=g, mutation=self.mutation)
        m.submodules.dut = self.elaborated(dut, platform)
        regs = dut.registers
        idw = dut.id_width
        beats = g.beats_per_burst

        for port in (dut.alloc.valid, dut.alloc.payload, dut.lookup.ready, dut.result.valid, dut.result.payload):
            _free(m, port)
        for port in (dut.req.ready, dut.rdata.valid, dut.rdata.payload, dut.fill.ready, dut.read_slot, dut.free):
            _free(m, port)

        state = [Signal(2, name=f"slot_state_{s}") for s in range(n)]  # sync: reset with the buffer
        a_state = Array(state)
        head = Signal(idw + 1, name="spec_head")
        tail = Signal(idw + 1, name="spec_tail")
        burst_on = Signal(name="burst_on")
        burst_id = Signal(idw, name="burst_id")
        burst_beat = Signal(range(beats), name="burst_beat")

        alloc = dut.alloc.valid & dut.alloc.ready
        result = dut.result.valid & dut.result.ready
        hit = dut.result.payload.hit
        beat = dut.rdata.payload
        tail_slot = tail[:idw]

        # ---- environment contracts ----------------------------------------------------------
        stream_contract(self, m, "stream.rob_alloc_source", dut.alloc, obligation=False)
        stream_contract(self, m, "stream.cache_result_source", dut.result, obligation=False)
        self.assume(
            m, "env.cache_answers_outstanding_lookups", ~dut.result.valid | (a_state[dut.result.payload.id] == LOOKUP)
        )
        burst_ok = Signal(name="burst_ok")
        with m.If(burst_on):
            m.d.comb += burst_ok.eq(dut.rdata.valid & (beat.id == burst_id) & (beat.beat == burst_beat))
        with m.Else():
            m.d.comb += burst_ok.eq(~dut.rdata.valid | ((beat.beat == 0) & (a_state[beat.id] == DRAM)))
        self.assume(
            m, "env.bursts_of_requested_lines", burst_ok & (~dut.rdata.valid | (beat.last == (beat.beat == beats - 1)))
        )
        self.assume(
            m, "env.retire_frees_the_oldest_filled_slot", ~dut.free | ((head != tail) & (a_state[tail_slot] == FILLED))
        )

        # ---- the spec's slot model ------------------------------------------------------------
        with m.If(dut.rdata.valid):
            m.d.sync += [burst_on.eq(~beat.last), burst_id.eq(beat.id), burst_beat.eq(beat.beat + 1)]
        for s in range(n):
            with m.If(alloc & (head[:idw] == s)):
                m.d.sync += state[s].eq(LOOKUP)
            with m.If(result & (dut.result.payload.id == s)):
                with m.If(hit):
                    m.d.sync += state[s].eq(FILLED)
                with m.Else():
                    m.d.sync += state[s].eq(DRAM)
            with m.If(dut.rdata.valid & beat.last & (beat.id == s)):
                m.d.sync += state[s].eq(FILLED)
            with m.If(dut.free & (tail_slot == s)):
                m.d.sync += state[s].eq(FREE)
        with m.If(alloc):
            m.d.sync += head.eq(head + 1)
        with m.If(dut.free):
            m.d.sync += tail.eq(tail + 1)

        # ---- properties -------------------------------------------------------------------------
        self.check(m, "rob.allocates_only_a_free_slot", ~alloc | (a_state[head[:idw]] == FREE))
        self.check(m, "rob.lookup_names_the_allocated_slot", ~dut.lookup.valid | (dut.lookup.payload.id == head[:idw]))
        self.check(m, "rob.lookup_with_every_allocation", alloc == (dut.lookup.valid & dut.lookup.ready))
        self.check(
            m,
            "rob.every_miss_requested_once",
            (dut.req.valid & dut.req.ready) == (result & ~hit),
        )
        self.check(
            m, "rob.request_names_the_missed_slot", ~dut.req.valid | (dut.req.payload.id == dut.result.payload.id)
        )
        for s in range(n):
            self.check(m, f"rob.slot_{s}_ready_exactly_when_filled", regs.ready[s] == (state[s] == FILLED))
        self.check(m, "rob.read_ready_of_the_slot_read", dut.read_ready == (a_state[dut.read_slot] == FILLED))
        # (Whether a fill is due depends on the slot's ``allocate`` bit, kept in a memory the
        # spec cannot name; the flag itself is checked in simulation.)
        self.check(m, "rob.fill_only_with_the_last_beat", ~dut.fill.valid | (dut.rdata.valid & beat.last))
        self.check(m, "rob.pointers_follow_allocation_and_release", (regs.head == head) & (regs.tail == tail))
        self.check(m, "rob.empty_flag", dut.empty == (head == tail))
        stream_contract(self, m, "stream.rob_lookup", dut.lookup, obligation=True)
        stream_contract(self, m, "stream.rob_request", dut.req, obligation=True)

        # Invariant: a slot is in use exactly when it is between tail and head.
        in_flight = Signal(idw + 1, name="spec_in_flight")
        m.d.comb += in_flight.eq(head - tail)
        self.check(m, "inv.rob.at_most_all_slots_in_use", in_flight <= n)
        for s in range(n):
            offset = Signal(idw, name=f"slot_offset_{s}")
            m.d.comb += offset.eq(s - tail_slot)
            self.check(m, f"inv.rob.slot_{s}_in_use_between_tail_and_head", (state[s] != FREE) == (offset < in_flight))
        self.check(m, "inv.rob.burst_for_a_requested_slot", ~burst_on | (a_state[burst_id] == DRAM))

        # Non-vacuity.
        self.cover(m, "cover.rob_full", in_flight == n)
        self.cover(m, "cover.hit_waits_for_a_dram_beat", dut.result.valid & hit & dut.rdata.valid)
        self.cover(m, "cover.fill_of_a_missed_line", dut.fill.valid)
        self.cover(m, "cover.slot_reused", alloc & (head[idw] != 0) & Cat(state).any())
