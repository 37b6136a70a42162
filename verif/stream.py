"""Valid/ready stream source, sink and passive monitor for cocotb, bound to a DUT by signal prefix.

Amaranth names the ports of a stream member ``i`` as ``i__valid``, ``i__ready`` and
``i__payload``. Every component acts on the falling clock edge and looks at the handshake
in the read-only phase after it, so what it sees is exactly what the DUT samples on the
next rising edge, whatever order the simulator runs callbacks in.

Payloads are integers (the packed struct bits) or, when the component is given a
``layout`` (a :class:`verif.block_description.PayloadLayout` from the JSON side file, an
Amaranth ``StructLayout``, or a mapping of flat field name to ``(offset, width)``),
records of named fields::

    desc = BlockDescription.from_env()
    source = StreamSource(dut, "inst", dut.clk, layout=desc.layout("inst__payload"))
    source.send(opcode=1, ddr_cmd=6, daddr={"row": 5, "column": 8}, vsize=2, ...)
    source.send({"opcode": 8, "daddr": 0x30001, ...})        # a nested struct as an int
    sink = StreamSink(dut, "psum", dut.clk, layout=desc.layout("psum__payload"))
    await sink.wait_for(4, cycles=2000)
    beat = sink.records[0]                 # Record: beat.tag, beat["last"], beat.data[3]

A layout's flat names (``daddr.row``, ``data.0`` .. ``data.3``) become nested records:
a struct is a :class:`Record` (a dict whose keys are also attributes), an array (children
named ``0 .. n-1``) a list. When packing, any node may be given as an integer (its whole
bit span) or as a mapping / sequence of its children; every field must be given.

Backpressure and gaps come from *pause generators* (as in cocotbext-axi): an iterator of
booleans, one per cycle, ``True`` meaning "hold off this cycle". :func:`random_pauses`
and :func:`burst_pauses` make them.

Every wait takes a bound in clock cycles (``cycles=``); when it expires, the wait raises
:class:`StreamTimeout` (an ``AssertionError``) saying what was still outstanding, so a
hung DUT fails the test at once instead of running into a wall-clock timeout.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Callable, Iterator, Mapping, Sequence

import cocotb
from cocotb.triggers import Event, FallingEdge, ReadOnly
from cocotb.utils import get_sim_time

__all__ = [
    "Record",
    "StreamMonitor",
    "StreamSink",
    "StreamSource",
    "StreamTimeout",
    "StructCodec",
    "burst_pauses",
    "random_pauses",
    "test_timeout",
    "wait_until",
]


def random_pauses(probability: float, *, seed: int | None = None) -> Iterator[bool]:
    """Pause on each cycle with ``probability`` (0 = never, 1 = always)."""
    rng = random.Random(seed)
    while True:
        yield rng.random() < probability


def burst_pauses(
    *,
    seed: int | None = None,
    probability: float = 0.1,
    stall: tuple[int, int] = (100, 400),
    burst_probability: float = 0.002,
) -> Iterator[bool]:
    """Random pauses with ``probability``, plus, with ``burst_probability`` per cycle, a
    stall of ``stall[0] .. stall[1]`` consecutive cycles (long backpressure)."""
    rng = random.Random(seed)
    while True:
        if rng.random() < burst_probability:
            for _ in range(rng.randint(*stall)):
                yield True
        yield rng.random() < probability


class StreamTimeout(AssertionError):
    """A bounded wait expired; the message says what was outstanding."""


# -- payload layouts ----------------------------------------------------------------------


class Record(dict):
    """The fields of one payload: a dict whose keys are also attributes (``r.tag``)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _flat_fields(layout) -> dict[str, tuple[int, int]]:
    """Flat name -> (offset, width) from a PayloadLayout, an Amaranth layout or a mapping."""
    fields = getattr(layout, "fields", None)
    if isinstance(fields, Mapping):
        return dict(fields)
    if isinstance(layout, Mapping):
        return dict(layout)
    from amaranth.lib import data

    out: dict[str, tuple[int, int]] = {}

    def walk(shape, prefix: str, offset: int) -> None:
        if isinstance(shape, data.Layout):
            for name, field in shape:
                walk(field.shape, f"{prefix}{name}.", offset + field.offset)
        else:
            from amaranth.hdl import Shape

            out[prefix[:-1]] = (offset, Shape.cast(shape).width)

    walk(data.Layout.cast(layout), "", 0)
    return out


class _Node:
    __slots__ = ("name", "children", "offset", "width", "array")

    def __init__(self, name: str):
        self.name = name
        self.children: dict[str, _Node] = {}
        self.offset = self.width = 0
        self.array = False


class StructCodec:
    """Packs records of named fields into payload integers and back (see the module doc)."""

    def __init__(self, layout):
        self.flat = _flat_fields(layout)
        self.width = max((o + w for o, w in self.flat.values()), default=0)
        self.root = _Node("")
        for name, (offset, width) in self.flat.items():
            node = self.root
            for part in name.split("."):
                node = node.children.setdefault(part, _Node(part))
            node.offset, node.width = offset, width
        self._finish(self.root)

    def _finish(self, node: _Node) -> tuple[int, int]:
        if not node.children:
            return node.offset, node.offset + node.width
        spans = [self._finish(c) for c in node.children.values()]
        lo, hi = min(s[0] for s in spans), max(s[1] for s in spans)
        node.offset, node.width = lo, hi - lo
        node.array = sorted(node.children) == sorted(str(k) for k in range(len(node.children)))
        if node.array:
            node.children = {str(k): node.children[str(k)] for k in range(len(node.children))}
        return lo, hi

    @property
    def fields(self) -> list[str]:
        """The top-level field names."""
        return list(self.root.children)

    def pack(self, values=None, /, **fields) -> int:
        """A payload integer from a mapping and/or keyword fields."""
        merged = dict(values or {}, **fields)
        return self._pack(self.root, merged, "")

    def _pack(self, node: _Node, value, path: str) -> int:
        if not isinstance(value, (Mapping, Sequence)) or isinstance(value, (str, bytes)):
            value = int(value)
            if not 0 <= value < 1 << node.width:
                raise ValueError(f"field {path or 'payload'!r} value {value:#x} does not fit in {node.width} bits")
            return value << node.offset
        if not node.children:
            raise ValueError(f"field {path!r} is {node.width} bits wide, not a struct or array: got {value!r}")
        if node.array:
            if isinstance(value, Mapping):
                value = [value[k] if k in value else value[int(k)] for k in node.children]
            if len(value) != len(node.children):
                raise ValueError(f"field {path!r} has {len(node.children)} elements, got {len(value)}")
            items = dict(zip(node.children, value))
        else:
            if not isinstance(value, Mapping):
                raise ValueError(f"field {path or 'payload'!r} is a struct: give a mapping or an int")
            missing = [k for k in node.children if k not in value]
            unknown = [k for k in value if k not in node.children]
            if missing or unknown:
                where = f" of {path!r}" if path else ""
                raise ValueError(f"fields{where} missing {missing}, unknown {unknown}")
            items = value
        word = 0
        for name, child in node.children.items():
            word |= self._pack(child, items[name], f"{path}.{name}" if path else name)
        return word

    def unpack(self, word: int):
        """A :class:`Record` of the payload's fields (arrays as lists)."""
        return self._unpack(self.root, int(word))

    def _unpack(self, node: _Node, word: int):
        if not node.children:
            return (word >> node.offset) & ((1 << node.width) - 1)
        if node.array:
            return [self._unpack(c, word) for c in node.children.values()]
        return Record((name, self._unpack(c, word)) for name, c in node.children.items())

    def get(self, word: int, name: str) -> int:
        """One field (dotted name, e.g. ``"daddr.row"``) as an integer."""
        node = self.root
        for part in name.split("."):
            node = node.children[part]
        return (int(word) >> node.offset) & ((1 << node.width) - 1)


def _codec(layout) -> StructCodec | None:
    if layout is None or isinstance(layout, StructCodec):
        return layout
    return StructCodec(layout)


# -- waits ----------------------------------------------------------------------------------


async def wait_until(
    clock, predicate: Callable[[], bool], *, cycles: int, what: str | Callable[[], str] = "the condition"
) -> int:
    """Wait (checking after each falling edge) until ``predicate()`` holds; at most
    ``cycles`` clock cycles, else raise :class:`StreamTimeout` naming ``what`` (a string
    or a callable returning one, evaluated at expiry). Returns the cycles waited."""
    for waited in range(cycles + 1):
        if predicate():
            return waited
        await FallingEdge(clock)
    raise StreamTimeout(f"timed out after {cycles} cycles waiting for {what() if callable(what) else what}")


# -- stream ends ----------------------------------------------------------------------------


class _StreamEnd:
    def __init__(self, dut, prefix: str, clock, pause: Iterator[bool] | None, layout=None):
        self.prefix = prefix
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready", None)
        self.payload = getattr(dut, f"{prefix}__payload")
        self.clock = clock
        self.pause = pause
        self.codec = _codec(layout)
        self.transfers = 0
        #: Cycles with valid high and ready low (offered or seen, not taken).
        self.stalled_cycles = 0
        #: Falling edges seen since the component started (its cycle count).
        self.cycle = 0
        #: Simulation time (ns) of the falling edge before each transfer's rising edge.
        self.times: list[float] = []
        self._arrived = Event()

    def set_pause(self, pause: Iterator[bool] | None) -> None:
        self.pause = pause

    def _paused(self) -> bool:
        return self.pause is not None and next(self.pause)

    def decode(self, word: int):
        """The fields of a payload integer (needs ``layout``)."""
        if self.codec is None:
            raise TypeError(f"{self.prefix}: no layout given, payloads are plain integers")
        return self.codec.unpack(word)

    def encode(self, values=None, /, **fields) -> int:
        if self.codec is None:
            raise TypeError(f"{self.prefix}: no layout given, send integers")
        return self.codec.pack(values, **fields)

    async def wait_for(
        self, count: int, *, cycles: int | None = None, what: str | Callable[[], str] | None = None
    ) -> None:
        """Wait until at least ``count`` transfers happened in total; with ``cycles``, for
        at most that many clock cycles, then raise :class:`StreamTimeout` (the message
        gives the count and ``what``: a string or a callable returning one)."""
        start = self.cycle
        while self.transfers < count:
            if cycles is not None and self.cycle - start >= cycles:
                detail = what() if callable(what) else what
                raise StreamTimeout(
                    f"{self.prefix}: {self.transfers} of {count} transfers after {cycles} cycles"
                    + (f": {detail}" if detail else "")
                )
            self._arrived.clear()
            await self._arrived.wait()


class StreamSource(_StreamEnd):
    """Drives ``PREFIX__valid``/``PREFIX__payload`` from a queue of payloads.

    Nothing is lost or repeated: an item leaves the queue only on a cycle whose valid and
    ready were both high. ``on_transfer(payload_int, cycle)`` is called for each transfer.
    """

    def __init__(
        self,
        dut,
        prefix: str,
        clock,
        *,
        pause: Iterator[bool] | None = None,
        layout=None,
        on_transfer: Callable[[int, int], None] | None = None,
    ):
        super().__init__(dut, prefix, clock, pause, layout)
        self._queue: collections.deque[int] = collections.deque()
        self._idle = Event()
        self._idle.set()
        self.on_transfer = on_transfer
        self.valid.value = 0
        cocotb.start_soon(self._run())

    def send(self, payload=None, /, **fields) -> None:
        """Queue one payload: an integer (the packed bits), or, with a layout, a mapping
        and/or keyword fields."""
        if isinstance(payload, int) and not fields:
            word = payload
        else:
            word = self.encode(payload, **fields)
        self._queue.append(word)
        self._idle.clear()

    def send_all(self, payloads) -> None:
        for payload in payloads:
            self.send(payload)

    def clear(self) -> int:
        """Drop every queued payload (e.g. at a DUT reset); returns how many."""
        dropped = len(self._queue)
        self._queue.clear()
        self._idle.set()
        return dropped

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def wait_idle(self, *, cycles: int | None = None, what: str | Callable[[], str] | None = None) -> None:
        """Wait until every queued payload has been accepted; with ``cycles``, for at most
        that many clock cycles, then raise :class:`StreamTimeout`."""
        start = self.cycle
        while self._queue:
            if cycles is not None and self.cycle - start >= cycles:
                detail = what() if callable(what) else what
                raise StreamTimeout(
                    f"{self.prefix}: {len(self._queue)} payloads not accepted after {cycles} cycles "
                    f"({self.transfers} accepted)" + (f": {detail}" if detail else "")
                )
            self._arrived.clear()
            await self._arrived.wait()

    async def _run(self) -> None:
        while True:
            await FallingEdge(self.clock)
            self.cycle += 1
            offer = bool(self._queue) and not self._paused()
            if offer:
                self.payload.value = self._queue[0]
            self.valid.value = int(offer)
            await ReadOnly()
            ready = self.ready is None or self.ready.value == 1
            if offer and not ready:
                self.stalled_cycles += 1
            if offer and ready and self._queue:  # (a clear() in this cycle drops the offer)
                word = self._queue.popleft()
                self.transfers += 1
                self.times.append(get_sim_time(unit="ns"))
                if self.on_transfer is not None:
                    self.on_transfer(word, self.cycle)
                if not self._queue:
                    self._idle.set()
            # wake bounded waiters every cycle (they count cycles themselves)
            self._arrived.set()


class StreamSink(_StreamEnd):
    """Drives ``PREFIX__ready`` and collects every transferred payload.

    ``received`` holds the payload integers; with a layout, ``records`` holds the decoded
    :class:`Record` of each. ``on_transfer(payload_int, cycle)`` is called for each.
    """

    def __init__(
        self,
        dut,
        prefix: str,
        clock,
        *,
        pause: Iterator[bool] | None = None,
        layout=None,
        on_transfer: Callable[[int, int], None] | None = None,
    ):
        super().__init__(dut, prefix, clock, pause, layout)
        self.received: collections.deque[int] = collections.deque()
        self.records: list = []
        self.on_transfer = on_transfer
        self.ready.value = 0
        cocotb.start_soon(self._run())

    async def _run(self) -> None:
        while True:
            await FallingEdge(self.clock)
            self.cycle += 1
            accept = not self._paused()
            self.ready.value = int(accept)
            await ReadOnly()
            if not accept and self.valid.value == 1:
                self.stalled_cycles += 1
            if accept and self.valid.value == 1:
                word = int(self.payload.value)
                self.received.append(word)
                if self.codec is not None:
                    self.records.append(self.codec.unpack(word))
                self.transfers += 1
                self.times.append(get_sim_time(unit="ns"))
                if self.on_transfer is not None:
                    self.on_transfer(word, self.cycle)
            self._arrived.set()


class StreamMonitor(_StreamEnd):
    """Watches a stream without driving it: records every transfer (valid and ready high;
    a stream without ``PREFIX__ready`` is always ready). Works on ports and on internal
    streams (``StreamMonitor(dut.scheduler, "req", dut.clk, layout=...)``).

    Attributes: ``received`` (payload integers), ``records`` (decoded, with a layout),
    ``cycles_of`` (the monitor cycle of each transfer), ``stalled_cycles`` (valid and not
    ready), ``longest_stall`` (consecutive stalled cycles). ``on_transfer(payload_int,
    cycle)`` is called for each transfer.
    """

    def __init__(
        self,
        dut,
        prefix: str,
        clock,
        *,
        layout=None,
        on_transfer: Callable[[int, int], None] | None = None,
        keep: bool = True,
    ):
        super().__init__(dut, prefix, clock, None, layout)
        self.received: collections.deque[int] = collections.deque()
        self.records: list = []
        self.cycles_of: list[int] = []
        self.on_transfer = on_transfer
        self.keep = keep
        self.longest_stall = 0
        self._stall = 0
        self._task = cocotb.start_soon(self._run())

    def stop(self) -> None:
        self._task.cancel()

    async def _run(self) -> None:
        while True:
            await FallingEdge(self.clock)
            self.cycle += 1
            await ReadOnly()
            if self.valid.value != 1:
                self._stall = 0
            elif self.ready is not None and self.ready.value != 1:
                self.stalled_cycles += 1
                self._stall += 1
                self.longest_stall = max(self.longest_stall, self._stall)
            else:
                self._stall = 0
                word = int(self.payload.value)
                self.transfers += 1
                if self.keep:
                    self.received.append(word)
                    self.cycles_of.append(self.cycle)
                    if self.codec is not None:
                        self.records.append(self.codec.unpack(word))
                if self.on_transfer is not None:
                    self.on_transfer(word, self.cycle)
            self._arrived.set()


def test_timeout(cycles: int, *, period_ns: int = 10) -> dict:
    """Keyword arguments of ``@cocotb.test`` that fail the test after ``cycles`` clock
    cycles of simulated time: a backstop proportional to the work, so that a hung DUT fails
    its test instead of stalling the regression (``@cocotb.test(**test_timeout(n))``)."""
    return {"timeout_time": int(cycles) * period_ns, "timeout_unit": "ns"}
