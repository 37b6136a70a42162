"""The DIMM-NMP decoder: checks each NMP-Inst and dispatches it to its rank, or to all ranks."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .isa import LOOKUP_OPCODES, NMP_INST_LAYOUT, Opcode
from .logic import count_events
from .params import check_choice, check_mutation

__all__ = ["DimmDecoder"]

RANKS = (1, 2, 4)
_CONTROL = (Opcode.EOP, Opcode.INVALIDATE, Opcode.CONFIG)


def _is_one_of(opcode, opcodes):
    return Cat(opcode == op for op in sorted(opcodes)).any()


class DimmDecoder(wiring.Component):
    """Route the host's instruction stream to the ranks' instruction streams, in order.

    * A lookup (``SUM``, ``WSUM``, ``SUM_Q8``, ``WSUM_Q8``) goes to the rank in its daddr
      ``rank`` field; one naming a rank the DIMM does not have (``rank >= ranks``) is
      dropped and counted in ``bad_rank``.
    * A control instruction (``EOP``, ``INVALIDATE``, ``CONFIG``) goes to every rank: it is
      offered to all ranks at once and held, rank by rank, until each has taken it, so the
      ranks see the control instructions in the same order relative to their lookups.
    * An undefined opcode is dropped and counted in ``illegal``.

    Other fields are not checked here: each Rank-NMP drops and counts malformed lookups
    (``docs/rank_nmp_semantics.md``). Nothing is dropped under backpressure: the
    instruction waits until its rank (every rank, for control) has taken it.

    Parameters
    ----------
    ranks : int
        Ranks of the DIMM: 1, 2 or 4.

    Attributes
    ----------
    i : In(stream.Signature(NMP_INST_LAYOUT))
    o0 .. o{ranks-1} : Out(stream.Signature(NMP_INST_LAYOUT))
    illegal, bad_rank, packets : Out(32)
        Undefined opcodes, lookups to a missing rank, EOPs dispatched (wrapping counters).

    Latency: combinational (an instruction is on its rank's port in the cycle it is
    offered). Throughput: one instruction per cycle while the ranks are ready.
    """

    COUNTERS = ("illegal", "bad_rank", "packets")

    #: Test-only deliberate bugs (``mutation``), to show that the formal properties bite:
    #: ``"redeliver_control"`` (a control instruction is offered again to ranks that took
    #: it), ``"ready_from_any_rank"`` (a lookup is taken when any rank is ready),
    #: ``"mark_untaken_ranks"`` (a rank offered a control instruction counts as having taken
    #: it, ready or not), ``"illegal_uncounted"``, ``"bad_rank_uncounted"``,
    #: ``"illegal_to_rank_0"`` (an undefined opcode is offered to rank 0),
    #: ``"valid_without_input"`` (outputs offer with no instruction offered).
    MUTATIONS = (
        "redeliver_control",
        "ready_from_any_rank",
        "mark_untaken_ranks",
        "illegal_uncounted",
        "bad_rank_uncounted",
        "illegal_to_rank_0",
        "valid_without_input",
    )

    def __init__(self, *, ranks: int, mutation: str | None = None):
        check_choice("ranks", ranks, RANKS)
        self._mutation = check_mutation(mutation, self.MUTATIONS)
        self._ranks = ranks
        super().__init__(
            {
                "i": In(stream.Signature(NMP_INST_LAYOUT)),
                **{f"o{r}": Out(stream.Signature(NMP_INST_LAYOUT)) for r in range(ranks)},
                **{name: Out(32) for name in self.COUNTERS},
            }
        )

    @property
    def ranks(self) -> int:
        return self._ranks

    def outputs(self) -> list:
        return [getattr(self, f"o{r}") for r in range(self._ranks)]

    def elaborate(self, platform):
        m = Module()
        outputs = self.outputs()
        inst = self.i.payload
        lookup = _is_one_of(inst.opcode, LOOKUP_OPCODES)
        control = _is_one_of(inst.opcode, _CONTROL)
        rank = inst.daddr.rank
        bad_rank = lookup & (rank >= self._ranks)

        taken = Signal(self._ranks)  # ranks that already took the control instruction offered
        done = Signal()
        for r, o in enumerate(outputs):
            wanted = (lookup & (rank == r)) | (
                (control & ~taken[r]) if self._mutation != "redeliver_control" else control
            )
            if self._mutation == "illegal_to_rank_0" and r == 0:
                wanted = wanted | (~lookup & ~control)
            m.d.comb += [
                o.payload.eq(inst),
                o.valid.eq(self.i.valid & wanted if self._mutation != "valid_without_input" else wanted),
            ]
        m.d.comb += done.eq(Cat((taken[r] | o.ready) for r, o in enumerate(outputs)).all())
        with m.If(self.i.valid & control):
            with m.If(done):
                m.d.sync += taken.eq(0)
            with m.Else():
                if self._mutation != "mark_untaken_ranks":
                    handshakes = Cat(o.valid & o.ready for o in outputs)
                else:
                    handshakes = Cat(o.valid for o in outputs)
                m.d.sync += taken.eq(taken | handshakes)

        with m.If(lookup & ~bad_rank):
            if self._mutation != "ready_from_any_rank":
                m.d.comb += self.i.ready.eq(Cat(o.ready & (rank == r) for r, o in enumerate(outputs)).any())
            else:
                m.d.comb += self.i.ready.eq(Cat(o.ready for o in outputs).any())
        with m.Elif(control):
            m.d.comb += self.i.ready.eq(done)
        with m.Else():  # undefined opcode or missing rank: dropped
            m.d.comb += self.i.ready.eq(1)

        accepted = self.i.valid & self.i.ready
        count_events(
            m,
            {
                "illegal": accepted & ~lookup & ~control if self._mutation != "illegal_uncounted" else 0,
                "bad_rank": accepted & bad_rank if self._mutation != "bad_rank_uncounted" else 0,
                "packets": accepted & (inst.opcode == Opcode.EOP),
            },
            self,
        )
        self.registers = SimpleNamespace(taken=taken)
        return m
