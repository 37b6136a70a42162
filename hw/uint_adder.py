"""A pipelined unsigned adder with stream interfaces: the toolchain smoke-test block."""

from types import SimpleNamespace

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .params import check_int, check_latency, check_mutation

__all__ = ["UIntAdder"]


class UIntAdder(wiring.Component):
    """``result = a + b`` on unsigned integers, through a stallable pipeline.

    Exists so that CI proves the generate -> Verilator -> cocotb path on a block small
    enough to build in seconds. It uses the same stall rule as the arithmetic units: the
    whole pipeline advances when its last stage is empty or being read.

    Parameters
    ----------
    width : int
        Operand width in bits, 1..64. The result is ``width + 1`` bits.
    latency : int
        Cycles from an accepted input to its valid output, 1..8.

    Attributes
    ----------
    i : In(stream.Signature(StructLayout({"a": width, "b": width})))
    o : Out(stream.Signature(StructLayout({"result": width + 1})))

    Latency is ``latency`` cycles; one operation per cycle when ``o`` is never stalled.
    """

    #: Test-only deliberate bugs (``mutation``), to show that the formal properties bite:
    #: ``"advance_ignores_ready"`` (the pipeline moves while ``o`` stalls).
    MUTATIONS = ("advance_ignores_ready",)

    def __init__(self, *, width: int = 8, latency: int = 1, mutation: str | None = None):
        self._mutation = check_mutation(mutation, self.MUTATIONS)
        check_int("width", width, 1, 64)
        check_latency("latency", latency)
        self._width = width
        self._latency = latency
        super().__init__(
            {
                "i": In(stream.Signature(data.StructLayout({"a": width, "b": width}))),
                "o": Out(stream.Signature(data.StructLayout({"result": width + 1}))),
            }
        )

    @property
    def width(self) -> int:
        return self._width

    @property
    def latency(self) -> int:
        return self._latency

    def elaborate(self, platform):
        m = Module()
        valid = [Signal(name=f"valid_{k}") for k in range(self._latency)]
        value = [Signal(self._width + 1, name=f"result_{k}") for k in range(self._latency)]
        advance = Signal()
        m.d.comb += [
            advance.eq(~valid[-1] | self.o.ready if self._mutation != "advance_ignores_ready" else 1),
            self.i.ready.eq(advance),
            self.o.valid.eq(valid[-1]),
            self.o.payload.result.eq(value[-1]),
        ]
        with m.If(advance):
            m.d.sync += [
                valid[0].eq(self.i.valid),
                value[0].eq(self.i.payload.a + self.i.payload.b),
            ]
            for k in range(1, self._latency):
                m.d.sync += [valid[k].eq(valid[k - 1]), value[k].eq(value[k - 1])]
        self.registers = SimpleNamespace(valid=valid, value=value)  # for the formal specs
        return m
