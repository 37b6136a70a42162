"""The DIMM-NMP adder tree: element-wise fp32 sum of the ranks' partial-sum beats."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .fp32_add import FP32Adder
from .params import check_choice, check_latency
from .pipeline import delay

__all__ = ["RankAdderTree", "psum_beat_layout"]

RANKS = (1, 2, 4)


def psum_beat_layout(*, lanes: int, beat_width: int) -> data.StructLayout:
    """One beat of partial sums: ``lanes`` fp32 values of ``tag``, beat ``beat``, ``last`` of a drain."""
    return data.StructLayout({"data": data.ArrayLayout(32, lanes), "tag": 4, "beat": beat_width, "last": 1})


class RankAdderTree(wiring.Component):
    """Add the ranks' partial-sum beats element-wise with the fixed pairwise tree over rank index.

    Every rank drains the same tags with the same number of beats at each EOP
    (``docs/rank_nmp_semantics.md``), so the tree joins its inputs beat by beat: a beat is
    taken from every input in the same cycle, once all of them are valid. Lane ``k`` of the
    result is ``p0[k]`` (1 rank), ``p0[k] + p1[k]`` (2 ranks) or
    ``(p0[k] + p1[k]) + (p2[k] + p3[k])`` (4 ranks), each addition an IEEE-754 binary32
    :class:`hw.fp32_add.FP32Adder`; ``tag``, ``beat`` and ``last`` are those of rank 0.

    Parameters
    ----------
    ranks : int
        Inputs: 1, 2 or 4.
    lanes : int
        fp32 values per beat.
    beat_width : int
        Width of the ``beat`` field.
    add_latency : int
        Latency of each adder (1..8, default 3).

    Attributes
    ----------
    i0 .. i{ranks-1} : In(stream.Signature(psum_beat_layout(lanes, beat_width)))
    o : Out(stream.Signature(psum_beat_layout(lanes, beat_width)))
    busy : Out(1)
        A beat is inside the tree (taken from the inputs, not yet out on ``o``).

    Latency: ``log2(ranks) * add_latency`` cycles (0 for one rank: the input is passed
    through); one beat per cycle while ``o`` is ready.
    """

    def __init__(self, *, ranks: int, lanes: int, beat_width: int, add_latency: int = 3):
        check_choice("ranks", ranks, RANKS)
        check_choice("lanes", lanes, (1, 2, 4, 8, 16))
        check_latency("add_latency", add_latency)
        self._ranks = ranks
        self._lanes = lanes
        self._add_latency = add_latency
        layout = psum_beat_layout(lanes=lanes, beat_width=beat_width)
        super().__init__(
            {
                **{f"i{r}": In(stream.Signature(layout)) for r in range(ranks)},
                "o": Out(stream.Signature(layout)),
                "busy": Out(1),
            }
        )

    @property
    def ranks(self) -> int:
        return self._ranks

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def add_latency(self) -> int:
        return self._add_latency

    @property
    def latency(self) -> int:
        return (self._ranks.bit_length() - 1) * self._add_latency

    def inputs(self) -> list:
        return [getattr(self, f"i{r}") for r in range(self._ranks)]

    def elaborate(self, platform):
        m = Module()
        inputs = self.inputs()
        if self._ranks == 1:
            wiring.connect(m, wiring.flipped(inputs[0]), wiring.flipped(self.o))
            return m

        # Join: every input offers a beat, they are taken together.
        valid = Cat(i.valid for i in inputs).all()
        in_flight = Signal(range(self.latency + 2))
        taken, emitted = inputs[0].valid & inputs[0].ready, self.o.valid & self.o.ready
        m.d.sync += in_flight.eq(in_flight + taken - emitted)
        m.d.comb += self.busy.eq(in_flight != 0)
        values = [[i.payload.data[k] for k in range(self._lanes)] for i in inputs]
        meta = Cat(inputs[0].payload.tag, inputs[0].payload.beat, inputs[0].payload.last)
        upstream_ready = None  # ready of the level that takes the join's output
        level = 0
        while len(values) > 1:
            pairs = [(values[n], values[n + 1]) for n in range(0, len(values), 2)]
            adders = []
            for p, (a, b) in enumerate(pairs):
                row = []
                for k in range(self._lanes):
                    adder = FP32Adder(latency=self._add_latency)
                    m.submodules[f"add_l{level}_p{p}_k{k}"] = adder
                    m.d.comb += [
                        adder.i.valid.eq(valid),
                        adder.i.payload.a.eq(a[k]),
                        adder.i.payload.b.eq(b[k]),
                    ]
                    row.append(adder)
                adders.append(row)
            lead = adders[0][0]  # identical units in lockstep: one speaks for all
            if upstream_ready is None:
                for i in inputs:
                    m.d.comb += i.ready.eq(lead.i.ready & valid)
            else:
                m.d.comb += upstream_ready.eq(lead.i.ready)
            meta = delay(m, meta, self._add_latency, enable=lead.i.ready, name=f"meta_l{level}")
            values = [[adder.o.payload.result for adder in row] for row in adders]
            valid = lead.o.valid
            upstream_ready = lead.o.ready
            for row in adders[1:] + [adders[0][1:]]:
                for adder in row:
                    m.d.comb += adder.o.ready.eq(upstream_ready)
            level += 1

        m.d.comb += [
            upstream_ready.eq(self.o.ready),
            self.o.valid.eq(valid),
            Cat(self.o.payload.tag, self.o.payload.beat, self.o.payload.last).eq(meta),
        ]
        m.d.comb += [self.o.payload.data[k].eq(values[0][k]) for k in range(self._lanes)]
        return m
