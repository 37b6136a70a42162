"""Spec: the Rank-NMP retire stage's ``drain`` output keeps the stream rule.

:class:`hw.rank_retire.RankRetire` turns the EOP at the head of its operation queue into
the drain request of :class:`hw.rank_datapath.RankDatapath`. The packet-isolation proof
(``packet_isolation``) assumes that this source keeps the stream rule; with this proof the
rule on ``rank_nmp.psum`` follows from its parts (the datapath's ``o`` is wired to
``psum``, ``stream_valid_registered``).

Free inputs: the operations (any opcode, fields and EOP operand; the queue keeps the stream
rule, as Amaranth's FIFOs do), the reorder buffer's line, ``line_ready`` and ``tail``,
``beat.ready``, ``drain.ready`` and the reset. Parameters: 1 lane, ``max_elements`` 4,
multipliers of latency 1, id width 3.
"""

from __future__ import annotations

from amaranth.asserts import AnySeq
from amaranth.hdl import Module, Value

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

    def __init__(self, *, mutation: str | None = None):
        super().__init__()
        self.mutation = mutation

    def build(self, m: Module, platform) -> None:
        dut = RankRetire(lanes=1, max_elements=4, id_width=3, mul_latency=1, mutation=self.mutation)
        m.submodules.dut = self.elaborated(dut, platform)
        free = (dut.op.valid, dut.op.payload, dut.line, dut.line_ready, dut.tail, dut.beat.ready, dut.drain.ready)
        for port in free:
            m.d.comb += Value.cast(port).eq(AnySeq(len(Value.cast(port))))
        stream_contract(self, m, "stream.op_source", dut.op, obligation=False)
        stream_contract(self, m, "stream.retire_drain", dut.drain, obligation=True)
        self.cover(m, "cover.drain_waits", dut.drain.valid & ~dut.drain.ready)
        self.cover(m, "cover.drain_taken", dut.drain.valid & dut.drain.ready)
