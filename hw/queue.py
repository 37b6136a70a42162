"""A typed stream queue: ``SyncFIFOBuffered`` behind two ``lib.stream`` ports."""

from __future__ import annotations

from amaranth.hdl import Module, Shape
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from .params import check_int

__all__ = ["Queue"]


class Queue(wiring.Component):
    """First-in first-out queue of ``depth`` payloads of ``shape``, with stream ports.

    A thin wrapper of :class:`amaranth.lib.fifo.SyncFIFOBuffered` (whose output is
    registered) so that blocks connect queues with :func:`amaranth.lib.wiring.connect`
    and read the payload through its layout, instead of wiring ``w_data``/``r_en`` by hand.

    Parameters
    ----------
    shape : shape-castable
        Payload shape (a ``data.Layout`` gives typed views on both ports).
    depth : int
        Entries, 1..4096.

    Attributes
    ----------
    i : In(stream.Signature(shape))
        ``i.ready`` is high while the queue has room.
    o : Out(stream.Signature(shape))
        The oldest payload; ``o.valid`` while the queue is not empty.
    level : Out(range(depth + 1))
        Entries held.

    Latency: a payload accepted on ``i`` in cycle ``t`` is valid on ``o`` in ``t + 1`` at the
    earliest (``SyncFIFOBuffered``'s output register). Throughput one payload per cycle.
    """

    def __init__(self, *, shape, depth: int):
        check_int("depth", depth, 1, 4096)
        self._shape = shape
        self._depth = depth
        super().__init__(
            {
                "i": In(stream.Signature(shape)),
                "o": Out(stream.Signature(shape)),
                "level": Out(range(depth + 1)),
            }
        )

    @property
    def shape(self):
        return self._shape

    @property
    def depth(self) -> int:
        return self._depth

    def elaborate(self, platform):
        m = Module()
        width = Shape.cast(data.Layout.cast(self._shape) if isinstance(self._shape, data.Layout) else self._shape).width
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=width, depth=self._depth)
        m.d.comb += [
            fifo.w_data.eq(self.i.payload),
            fifo.w_en.eq(self.i.valid),
            self.i.ready.eq(fifo.w_rdy),
            self.o.payload.eq(fifo.r_data),
            self.o.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(self.o.ready),
            self.level.eq(fifo.level),
        ]
        return m
