"""Spec: the pipelined arithmetic blocks keep the stream rules; the integer adder loses,
duplicates and reorders nothing.

Free inputs: the operand stream (its source keeps the stream rule), ``o.ready`` and the
reset. For every block the output keeps an offered, untaken result (valid and payload).
For ``uint_adder`` the spec also keeps a queue of the expected sums in acceptance order
(no more than ``latency`` in flight) and asserts that every output is the oldest of them,
and that one leaves exactly when a result is taken: no loss, no duplication, in order.
The fp32 units (:func:`hw.pipeline.stream_pipeline`) are checked for the stream rule only;
their arithmetic is the fp32 tests' (``docs/fp32_units.md``).
"""

from __future__ import annotations

import contextlib
import functools
from unittest import mock

from amaranth.asserts import AnySeq
from amaranth.hdl import Array, Module, Signal, Value

import hw.fp32_add
import hw.fp32_mul
from hw.fp32_add import FP32Adder
from hw.fp32_mul import FP32Multiplier
from hw.pipeline import stream_pipeline
from hw.uint_adder import UIntAdder

from .spec import FormalSpec, stream_contract

__all__ = ["PipelineStreamSpec"]

BLOCKS = ("uint_adder", "fp32_add", "fp32_mul")


class PipelineStreamSpec(FormalSpec):
    """Stream rules of ``uint_adder``, ``fp32_add``, ``fp32_mul``; ordering of ``uint_adder``.

    Parameters
    ----------
    block : str
        One of :data:`BLOCKS`.
    latency : int
        Register stages (default 2).
    mutation : str, optional
        ``"advance_ignores_ready"`` (:data:`hw.pipeline.MUTATIONS`,
        :attr:`hw.uint_adder.UIntAdder.MUTATIONS`).
    """

    def __init__(self, *, block: str, latency: int = 2, mutation: str | None = None):
        super().__init__()
        if block not in BLOCKS:
            raise ValueError(f"block must be one of {BLOCKS}, got {block!r}")
        self.block = block
        self.latency = latency
        self.mutation = mutation

    def _design(self):
        if self.block == "uint_adder":
            return UIntAdder(width=4, latency=self.latency, mutation=self.mutation), contextlib.nullcontext()
        cls, module = {"fp32_add": (FP32Adder, hw.fp32_add), "fp32_mul": (FP32Multiplier, hw.fp32_mul)}[self.block]
        patch = (
            mock.patch.object(module, "stream_pipeline", functools.partial(stream_pipeline, mutation=self.mutation))
            if self.mutation
            else contextlib.nullcontext()
        )
        return cls(latency=self.latency), patch

    def build(self, m: Module, platform) -> None:
        dut, patch = self._design()
        with patch:
            m.submodules.dut = self.elaborated(dut, platform)
        for port in (dut.i.valid, dut.i.payload, dut.o.ready):
            m.d.comb += Value.cast(port).eq(AnySeq(len(Value.cast(port))))
        stream_contract(self, m, "stream.operand_source", dut.i, obligation=False)
        stream_contract(self, m, f"stream.{self.block}_output", dut.o, obligation=True)
        taken = dut.o.valid & dut.o.ready
        self.cover(m, "cover.result_held_under_backpressure", dut.o.valid & ~dut.o.ready)
        self.cover(m, "cover.result_taken", taken)
        if self.block != "uint_adder":
            return

        # The expected sums in acceptance order (a shift queue, oldest at 0).
        latency = self.latency
        width = len(dut.o.payload.result)
        expected = [Signal(width, name=f"expected_{k}") for k in range(latency)]
        count = Signal(range(latency + 1), name="expected_count")
        accept = dut.i.valid & dut.i.ready
        total = dut.i.payload.a + dut.i.payload.b
        remaining = Signal(range(latency + 1), name="expected_remaining")
        m.d.comb += remaining.eq(count - taken)
        m.d.sync += count.eq(remaining + accept)
        for k in range(latency):
            shifted = expected[k + 1] if k + 1 < latency else expected[k]
            with m.If(accept & (remaining == k)):
                m.d.sync += expected[k].eq(total)
            with m.Elif(taken):
                m.d.sync += expected[k].eq(shifted)
        self.check(m, "order.no_more_in_flight_than_stages", count <= latency)
        self.check(
            m, "order.result_is_the_oldest_sum", ~dut.o.valid | ((count != 0) & (dut.o.payload.result == expected[0]))
        )
        self.check(m, "order.nothing_taken_from_an_empty_pipeline", ~taken | (count != 0))
        # Invariant: the pipeline's valid stages are the spec's queue, oldest last.
        regs = dut.registers
        self.check(m, "inv.order.stages_hold_the_queue", sum(regs.valid) == count)
        for k in range(latency):
            # Stage latency - 1 is the output; a valid stage's place in the queue is the
            # number of valid stages after it (older operations).
            older = sum(regs.valid[j] for j in range(k + 1, latency))
            self.check(m, f"inv.order.stage_{k}_value", ~regs.valid[k] | (regs.value[k] == Array(expected)[older]))
