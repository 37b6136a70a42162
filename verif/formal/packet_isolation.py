"""Spec: packets are isolated in the Rank-NMP datapath: a drain (EOP) returns only what was
accumulated before it, and every tag starts the next packet at +0.0.

Free inputs: the beats (any operands, tag and beat number), the drain requests (any mask,
``elements``, reserved bits), ``o.ready`` and the reset; both sources keep the stream rule.
Properties:

* no beat is taken while a drain request waits or streams (a later packet's lookup never
  enters a drain);
* no write-back to the partial-sum file during a drain (every earlier beat was written
  before the drain started, so the drain returns whole sums of its own packet);
* after a drain is acknowledged every tag's mark is 0: every entry of every tag reads +0.0
  in the next packet, whatever the drain's mask and ``elements`` (a malformed drain too);
* the drain output keeps the stream rule (tag, beat, last; the data follows from them and
  from the previous property).

Not here: the values (the fp32 arithmetic is left out of the proof, as is the +0.0 that an
entry past its mark reads as: a multiplexer checked in simulation,
``tests/hw/test_rank_datapath_sim.py``).

Parameters of the datapath: 1 lane, ``max_elements`` 4, multiplier and adder latency 1
(the fp32 arithmetic is in the design but no property depends on its values).
"""

from __future__ import annotations

from amaranth.asserts import AnySeq
from amaranth.hdl import Cat, Module, ResetSignal, Signal, Value

from hw.rank_datapath import RankDatapath

from .spec import FormalSpec, stream_contract

__all__ = ["PacketIsolationSpec"]


class PacketIsolationSpec(FormalSpec):
    """Packet isolation of :class:`hw.rank_datapath.RankDatapath`.

    Parameters
    ----------
    mutation : str, optional
        A test-only mutation (:attr:`hw.rank_datapath.RankDatapath.MUTATIONS`).
    beat_rule : bool
        Assume that the beats keep the stream rule (default). ``False`` leaves them free:
        the properties do not need it, so ``psum``'s rule rests on the drain source only
        (the retire stage's ``drain``, proved by ``retire_drain_stream``).
    """

    def __init__(self, *, mutation: str | None = None, beat_rule: bool = True):
        super().__init__()
        self.mutation = mutation
        self.beat_rule = beat_rule

    def build(self, m: Module, platform) -> None:
        dut = RankDatapath(lanes=1, max_elements=4, mul_latency=1, add_latency=1, mutation=self.mutation)
        m.submodules.dut = self.elaborated(dut, platform)
        regs = dut.registers
        for port in (dut.i.valid, dut.i.payload, dut.drain.valid, dut.drain.payload, dut.o.ready):
            m.d.comb += Value.cast(port).eq(AnySeq(len(Value.cast(port))))
        if self.beat_rule:
            stream_contract(self, m, "stream.beat_source", dut.i, obligation=False)
        drain_held, _ = stream_contract(self, m, "stream.drain_source", dut.drain, obligation=False)
        # The drain's data is the register-file entry of (tag, beat), and the register file is
        # not written during a drain (below): holding tag, beat and last holds the data.
        out = dut.o.payload
        control = Cat(out.tag, out.beat, out.last)
        stream_contract(self, m, "stream.psum_output", dut.o, obligation=True, payload=control)

        accept = dut.i.valid & dut.i.ready
        drained = dut.drain.valid & dut.drain.ready
        self.check(m, "isolation.no_beat_taken_while_a_drain_waits", ~(accept & (dut.drain.valid | regs.draining)))
        self.check(m, "isolation.no_write_back_during_a_drain", ~(regs.draining & regs.written_valid))
        after_drain = Signal(name="after_drain")
        m.d.model += after_drain.eq(drained & ~ResetSignal())
        self.check(
            m,
            "isolation.every_tag_starts_the_next_packet_at_zero",
            ~after_drain | Cat(mark == 0 for mark in regs.marks).all(),
        )
        self.check(m, "inv.isolation.drain_request_held_while_streaming", ~regs.draining | drain_held)
        # Invariant: ``pending`` counts the beats in the pipeline (latency 1 per unit).
        mul, add_c, _ = regs.lane0_units
        in_pipeline = mul.o.valid + add_c.o.valid + sum(regs.accumulate_stages)
        self.check(m, "inv.isolation.pending_counts_the_pipeline", regs.pending == in_pipeline)
        # Invariant: the drain streams only once the pipeline is empty.
        self.check(m, "inv.isolation.nothing_pending_in_a_drain", ~regs.draining | (regs.pending == 0))

        self.cover(m, "cover.drain_under_backpressure", dut.o.valid & ~dut.o.ready & (out.beat != 0))
        self.cover(
            m, "cover.drain_after_accumulating", drained & regs.draining & Cat(mark != 0 for mark in regs.marks).any()
        )
        self.cover(m, "cover.beat_waits_for_a_drain", dut.i.valid & dut.drain.valid)
        mid_packet = regs.draining | Cat(mark != 0 for mark in regs.marks).any()
        self.cover(m, "cover.reset_mid_packet", ResetSignal() & mid_packet)
