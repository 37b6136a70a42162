"""Spec: the DIMM-NMP decoder delivers every instruction exactly once, or drops and counts it,
and keeps the stream rules on every port.

Free inputs: the instruction stream (any opcode, rank and fields; its source keeps the
stream rule), every rank's ``ready`` and the decoder's reset.

* A lookup to rank ``r < ranks`` is taken in the cycle rank ``r`` takes it, and only then;
  no other rank sees a transfer of it.
* A control instruction (EOP, INVALIDATE, CONFIG) is taken once every rank has taken it,
  and no rank takes it twice (the spec's own per-rank record, checked against the
  decoder's ``taken`` register as an invariant).
* An undefined opcode or a lookup to a missing rank is taken with no transfer to any rank
  and counted once in ``illegal`` / ``bad_rank`` (the spec's counters equal the decoder's).
* Every output keeps an offered, untaken instruction (stream rule) and only carries the
  instruction offered on the input.
"""

from __future__ import annotations

from amaranth.asserts import AnySeq
from amaranth.hdl import Cat, Module, Signal, Value

from hw.dimm_decoder import DimmDecoder
from hw.isa import LOOKUP_OPCODES, Opcode

from .spec import FormalSpec, stream_contract

__all__ = ["DimmDecoderSpec"]

_CONTROL = (Opcode.EOP, Opcode.INVALIDATE, Opcode.CONFIG)


class DimmDecoderSpec(FormalSpec):
    """No loss and no duplication through :class:`hw.dimm_decoder.DimmDecoder`.

    Parameters
    ----------
    ranks : int
        1, 2 or 4 (default 2: a missing rank exists).
    mutation : str, optional
        A test-only mutation of the decoder (:attr:`hw.dimm_decoder.DimmDecoder.MUTATIONS`).
    """

    def __init__(self, *, ranks: int = 2, mutation: str | None = None):
        super().__init__()
        self.ranks = ranks
        self.mutation = mutation

    def build(self, m: Module, platform) -> None:
        dut = DimmDecoder(ranks=self.ranks, mutation=self.mutation)
        m.submodules.dut = self.elaborated(dut, platform)
        outputs = dut.outputs()
        inst = dut.i.payload
        m.d.comb += [
            dut.i.valid.eq(AnySeq(1)),
            Value.cast(inst).eq(AnySeq(len(Value.cast(inst)))),
            *[o.ready.eq(AnySeq(1)) for o in outputs],
        ]
        in_stalled, in_held = stream_contract(self, m, "stream.decoder_input", dut.i, obligation=False)

        lookup = Cat(inst.opcode == op for op in LOOKUP_OPCODES).any()
        control = Cat(inst.opcode == op for op in _CONTROL).any()
        rank = inst.daddr.rank
        accepted = dut.i.valid & dut.i.ready
        took = [o.valid & o.ready for o in outputs]

        # Lookups: exactly the addressed rank, in the cycle the decoder takes it.
        for r, o in enumerate(outputs):
            self.check(m, f"dispatch.output_{r}_carries_the_input", ~o.valid | (dut.i.valid & (o.payload == inst)))
            self.check(
                m,
                f"dispatch.lookup_to_rank_{r}_exactly_once",
                ~lookup | (took[r] == (accepted & (rank == r))),
            )
            stream_contract(self, m, f"stream.decoder_output_{r}", o, obligation=True)

        # Control: every rank once, before the decoder takes it.
        got = Signal(self.ranks, name="control_taken_by")  # sync domain: cleared by the reset too
        with m.If(accepted):
            m.d.sync += got.eq(0)
        with m.Elif(dut.i.valid & control):
            m.d.sync += got.eq(got | Cat(took))
        for r in range(self.ranks):
            self.check(m, f"dispatch.control_to_rank_{r}_not_twice", ~(control & took[r] & got[r]))
        self.check(
            m,
            "dispatch.control_taken_only_when_every_rank_has_it",
            ~(accepted & control) | Cat(got[r] | took[r] for r in range(self.ranks)).all(),
        )
        self.check(m, "inv.dispatch.taken_register", dut.registers.taken == got)
        self.check(
            m,
            "inv.dispatch.partly_taken_control_is_still_offered",
            ~got.any() | (in_stalled & control & (in_held == Value.cast(inst))),
        )

        # Drops: no transfer, counted once.
        bad_rank = lookup & (rank >= self.ranks)
        dropped = ~lookup & ~control
        self.check(m, "dispatch.dropped_words_reach_no_rank", ~(dut.i.valid & (dropped | bad_rank)) | ~Cat(took).any())
        illegal = Signal(32, name="spec_illegal")
        bad = Signal(32, name="spec_bad_rank")
        with m.If(accepted & dropped):
            m.d.sync += illegal.eq(illegal + 1)
        with m.If(accepted & bad_rank):
            m.d.sync += bad.eq(bad + 1)
        self.check(m, "dispatch.illegal_counted", dut.illegal == illegal)
        self.check(m, "dispatch.bad_rank_counted", dut.bad_rank == bad)

        # Non-vacuity.
        self.cover(m, "cover.illegal_instruction_dropped", accepted & dropped)
        if self.ranks < 4:
            self.cover(m, "cover.lookup_to_a_missing_rank", accepted & bad_rank)
        self.cover(
            m,
            "cover.control_taken_by_ranks_in_different_cycles",
            accepted & control & got.any() & ~got.all(),
        )
        self.cover(m, "cover.lookup_waits_for_its_rank", dut.i.valid & lookup & ~dut.i.ready)
