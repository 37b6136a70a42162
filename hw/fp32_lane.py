"""One Rank-NMP datapath lane: ``result = acc + ((a * b) + c)`` in binary32."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .fp32_add import FP32Adder
from .fp32_mul import FP32Multiplier
from .params import check_latency
from .pipeline import delay

__all__ = ["FP32Lane"]


class FP32Lane(wiring.Component):
    """``result = acc + ((a * b) + c)``: one multiply and two adds, each rounded (no FMA).

    Every operator of docs/design.md ("Operators and their exact arithmetic") is this one expression, which is why the
    lane has the shape it has:

    * sum, ``acc + x``: ``a = 1.0``, ``b = x``, ``c = -0.0``;
    * weighted, ``acc + (w * x)``: ``a = w``, ``b = x``, ``c = -0.0``;
    * 8-bit rows, ``acc + ((s' * float(q)) + b')``: ``a = s' = w * scale``,
      ``b = float(q)``, ``c = b' = w * bias``.

    ``c = -0.0`` is the exact identity of round-to-nearest-even addition (``y + -0 == y``
    for every ``y``, -0 included), so those operators are bit-exact. ``+0.0`` would not be:
    ``-0 + +0 = +0``. ``1.0 * x`` is exact for every ``x`` (NaNs become the quiet NaN).

    Built from one :class:`hw.fp32_mul.FP32Multiplier` and two :class:`hw.fp32_add.FP32Adder`
    chained by their streams: ``mul = a * b``, ``inner = mul + c``, ``result = acc + inner``.
    ``c`` and ``acc`` travel alongside in delay lines that load on the ``i.ready`` (the
    ``advance``) of the unit they run beside, so they stay with their operation through
    stalls and bubbles.

    Parameters
    ----------
    mul_latency : int
        Latency of the multiplier, 1..8.
    add_latency : int
        Latency of each adder, 1..8.

    Attributes
    ----------
    i : In(stream.Signature(StructLayout({"acc": 32, "a": 32, "b": 32, "c": 32})))
    o : Out(stream.Signature(StructLayout({"result": 32})))

    Latency is ``mul_latency + 2 * add_latency`` cycles (default 4 + 3 + 3 = 10); one
    operation per cycle when ``o`` is never stalled.
    """

    def __init__(self, *, mul_latency: int = 4, add_latency: int = 3):
        check_latency("mul_latency", mul_latency)
        check_latency("add_latency", add_latency)
        self._mul_latency = mul_latency
        self._add_latency = add_latency
        super().__init__(
            {
                "i": In(stream.Signature(data.StructLayout({"acc": 32, "a": 32, "b": 32, "c": 32}))),
                "o": Out(stream.Signature(data.StructLayout({"result": 32}))),
            }
        )

    @property
    def mul_latency(self) -> int:
        return self._mul_latency

    @property
    def add_latency(self) -> int:
        return self._add_latency

    @property
    def latency(self) -> int:
        return self._mul_latency + 2 * self._add_latency

    def elaborate(self, platform):
        m = Module()
        m.submodules.mul = mul = FP32Multiplier(latency=self._mul_latency)
        m.submodules.add_c = add_c = FP32Adder(latency=self._add_latency)
        m.submodules.add_acc = add_acc = FP32Adder(latency=self._add_latency)

        c = delay(m, self.i.payload.c, mul.latency, enable=mul.i.ready, name="c")
        acc = delay(m, self.i.payload.acc, mul.latency, enable=mul.i.ready, name="acc_mul")
        acc = delay(m, acc, add_c.latency, enable=add_c.i.ready, name="acc_add")

        m.d.comb += [
            mul.i.valid.eq(self.i.valid),
            mul.i.payload.a.eq(self.i.payload.a),
            mul.i.payload.b.eq(self.i.payload.b),
            self.i.ready.eq(mul.i.ready),
            add_c.i.valid.eq(mul.o.valid),
            add_c.i.payload.a.eq(mul.o.payload.result),
            add_c.i.payload.b.eq(c),
            mul.o.ready.eq(add_c.i.ready),
            add_acc.i.valid.eq(add_c.o.valid),
            add_acc.i.payload.a.eq(acc),
            add_acc.i.payload.b.eq(add_c.o.payload.result),
            add_c.o.ready.eq(add_acc.i.ready),
            self.o.valid.eq(add_acc.o.valid),
            self.o.payload.result.eq(add_acc.o.payload.result),
            add_acc.o.ready.eq(self.o.ready),
        ]
        return m
