"""``lanes`` Rank-NMP lanes side by side: one vector operation per cycle on one stream."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .fp32_lane import FP32Lane
from .params import check_choice, check_latency

__all__ = ["FP32VectorLane"]

LANES = (1, 2, 4, 8, 16)


class FP32VectorLane(wiring.Component):
    """``result[k] = acc[k] + ((a[k] * b[k]) + c[k])`` for every lane ``k``, one valid/ready.

    ``lanes`` copies of :class:`hw.fp32_lane.FP32Lane` (see it for the arithmetic and why
    every RecNMP operator is this expression) fed from one stream. The copies are identical
    and always receive the same ``valid`` and ``ready``, so their pipelines hold the same
    operations in the same stages: the vector stream's ``i.ready`` and ``o.valid`` are those
    of lane 0 (the other copies' equal signals are left unused; synthesis merges the
    duplicated control registers).

    Parameters
    ----------
    lanes : int
        Number of fp32 lanes: 1, 2, 4, 8 or 16 (default 4, the rank's 16 B per cycle).
    mul_latency, add_latency : int
        Latencies of each lane's multiplier and adders, 1..8.

    Attributes
    ----------
    i : In(stream.Signature(StructLayout({"acc", "a", "b", "c": ArrayLayout(32, lanes)})))
    o : Out(stream.Signature(StructLayout({"result": ArrayLayout(32, lanes)})))

    Element ``k`` of each array is bits ``32k .. 32k+31`` of its field. Latency is
    ``mul_latency + 2 * add_latency`` cycles; one vector per cycle when ``o`` never stalls.
    """

    def __init__(self, *, lanes: int = 4, mul_latency: int = 4, add_latency: int = 3):
        check_choice("lanes", lanes, LANES)
        check_latency("mul_latency", mul_latency)
        check_latency("add_latency", add_latency)
        self._lanes = lanes
        self._mul_latency = mul_latency
        self._add_latency = add_latency
        vector = data.ArrayLayout(32, lanes)
        super().__init__(
            {
                "i": In(stream.Signature(data.StructLayout({"acc": vector, "a": vector, "b": vector, "c": vector}))),
                "o": Out(stream.Signature(data.StructLayout({"result": vector}))),
            }
        )

    @property
    def lanes(self) -> int:
        return self._lanes

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
        units = []
        for k in range(self._lanes):
            lane = FP32Lane(mul_latency=self._mul_latency, add_latency=self._add_latency)
            m.submodules[f"lane{k}"] = lane
            units.append(lane)
            m.d.comb += [
                lane.i.valid.eq(self.i.valid),
                lane.o.ready.eq(self.o.ready),
                self.o.payload.result[k].eq(lane.o.payload.result),
            ]
            for name in ("acc", "a", "b", "c"):
                m.d.comb += lane.i.payload[name].eq(self.i.payload[name][k])
        m.d.comb += [
            self.i.ready.eq(units[0].i.ready),
            self.o.valid.eq(units[0].o.valid),
        ]
        return m
