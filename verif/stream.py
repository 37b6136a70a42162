"""Valid/ready stream source and sink for cocotb, bound to a DUT by signal prefix.

Amaranth names the ports of a stream member ``i`` as ``i__valid``, ``i__ready`` and
``i__payload``. Both components act on the falling clock edge and look at the handshake in
the read-only phase after it, so what they see is exactly what the DUT samples on the
next rising edge, whatever order the simulator runs callbacks in.

Backpressure and gaps come from *pause generators* (as in cocotbext-axi): an iterator of
booleans, one per cycle, ``True`` meaning "hold off this cycle". :func:`random_pauses`
makes one.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Iterator

import cocotb
from cocotb.triggers import Event, FallingEdge, ReadOnly
from cocotb.utils import get_sim_time

__all__ = ["StreamSink", "StreamSource", "random_pauses"]


def random_pauses(probability: float, *, seed: int | None = None) -> Iterator[bool]:
    """Pause on each cycle with ``probability`` (0 = never, 1 = always)."""
    rng = random.Random(seed)
    while True:
        yield rng.random() < probability


class _StreamEnd:
    def __init__(self, dut, prefix: str, clock, pause: Iterator[bool] | None):
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.clock = clock
        self.pause = pause
        self.transfers = 0
        #: Simulation time (ns) of the falling edge before each transfer's rising edge.
        self.times: list[float] = []

    def set_pause(self, pause: Iterator[bool] | None) -> None:
        self.pause = pause

    def _paused(self) -> bool:
        return self.pause is not None and next(self.pause)


class StreamSource(_StreamEnd):
    """Drives ``PREFIX__valid``/``PREFIX__payload`` from a queue of integer payloads.

    Nothing is lost or repeated: an item leaves the queue only on a cycle whose valid and
    ready were both high.
    """

    def __init__(self, dut, prefix: str, clock, *, pause: Iterator[bool] | None = None):
        super().__init__(dut, prefix, clock, pause)
        self._queue: collections.deque[int] = collections.deque()
        self._idle = Event()
        self._idle.set()
        self.valid.value = 0
        cocotb.start_soon(self._run())

    def send(self, payload: int) -> None:
        """Queue one payload (an integer holding the packed struct bits)."""
        self._queue.append(payload)
        self._idle.clear()

    def send_all(self, payloads) -> None:
        for payload in payloads:
            self.send(payload)

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def wait_idle(self) -> None:
        """Wait until every queued payload has been accepted."""
        await self._idle.wait()

    async def _run(self) -> None:
        while True:
            await FallingEdge(self.clock)
            offer = bool(self._queue) and not self._paused()
            if offer:
                self.payload.value = self._queue[0]
            self.valid.value = int(offer)
            await ReadOnly()
            if offer and self.ready.value == 1:
                self._queue.popleft()
                self.transfers += 1
                self.times.append(get_sim_time(unit="ns"))
                if not self._queue:
                    self._idle.set()


class StreamSink(_StreamEnd):
    """Drives ``PREFIX__ready`` and collects every transferred payload as an integer."""

    def __init__(self, dut, prefix: str, clock, *, pause: Iterator[bool] | None = None):
        super().__init__(dut, prefix, clock, pause)
        self.received: collections.deque[int] = collections.deque()
        self._arrived = Event()
        self.ready.value = 0
        cocotb.start_soon(self._run())

    async def wait_for(self, count: int) -> None:
        """Wait until at least ``count`` payloads have been received in total."""
        while self.transfers < count:
            self._arrived.clear()
            await self._arrived.wait()

    async def _run(self) -> None:
        while True:
            await FallingEdge(self.clock)
            accept = not self._paused()
            self.ready.value = int(accept)
            await ReadOnly()
            if accept and self.valid.value == 1:
                self.received.append(int(self.payload.value))
                self.transfers += 1
                self.times.append(get_sim_time(unit="ns"))
                self._arrived.set()
