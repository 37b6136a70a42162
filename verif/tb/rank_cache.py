"""cocotb testbench of ``rank_cache``: random lookups and fills against the Python model.

Pieces
------
* :class:`Traffic` (stimulus policy, pure Python): lookup addresses from small pools that
  alias into a few sets (more lines than ways, tags 0 and all-ones included), a few random
  addresses and a walk over every set; random ``allocate``; fills of the lines that missed
  with ``allocate=1`` after a random delay (0 = as soon as possible), plus spurious fills.
* :class:`Scoreboard` (model + checker, pure Python): fed one :class:`CycleSample` per
  clock cycle (the handshake signals as the DUT samples them on the next rising edge), it
  applies accepted fills, lookups and invalidates to
  :class:`sim_models.rank_cache.RankCacheModel` in acceptance order, keeps the data of
  every cached line (each fill carries fresh random data), and checks every result (hit,
  data, id, addr, allocate), the hit latency (a lookup accepted in cycle ``t`` has its
  result on ``result`` in ``t+1``), the ready rules (full throughput), the stream rule on
  ``result`` (a stalled result does not change), the ``busy`` length (``sets`` cycles)
  and the counters. It counts coverage events in :attr:`Scoreboard.events` and, when
  asked, samples ``cocotb-coverage`` cover points.
* :class:`Testbench` (cocotb): :class:`verif.stream.StreamSource` on ``lookup`` and
  ``fill``, :class:`verif.stream.StreamSink` on ``result``, a monitor coroutine feeding the
  scoreboard, a stimulus coroutine, and the invalidate driver.

The Amaranth-simulator test (``tests/hw/test_rank_cache_sim.py``) drives the same
:class:`Traffic` and :class:`Scoreboard` from an Amaranth testbench.

Environment: ``RECNMP_COUNT`` lookups for the random test (default 20000).
"""

from __future__ import annotations

import collections
import itertools
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly

from sim_models.rank_cache import RankCacheModel
from verif import coverage
from verif.block_description import BlockDescription
from verif.stream import StreamSink, StreamSource, random_pauses, test_timeout

#: Backstop: far more cycles than the tests need (RECNMP_COUNT lookups under stalls).
TIMEOUT = test_timeout(50 * int(os.environ.get("RECNMP_COUNT", "20000")) + 200_000)

__all__ = ["COUNTERS", "CycleSample", "Fields", "Scoreboard", "Testbench", "Traffic", "coverage_bins"]

COUNTERS = ("hits", "misses", "bypasses", "fills", "evictions")


def coverage_bins(ways: int) -> dict[str, list]:
    """Cover point name -> bins (all must be hit by the random test)."""
    return {
        "lookup.outcome": ["hit", "miss", "bypass"],
        "lookup.hit_way": list(range(ways)),
        "lookup.hit_lru_rank": list(range(ways)),  # 0 = hit on the MRU line, ways-1 = LRU
        "fill.outcome": ["present", "invalid_way", "eviction"],
        "fill.way": list(range(ways)),
        "hazard": [
            "lookup_lookup_same_set",  # accepted in consecutive cycles
            "fill_lookup_same_set",
            "lookup_fill_same_set",
            "fill_fill_same_set",
            "fill_lookup_same_line_hit",  # the lookup hits the line filled one cycle before
            "lookup_fill_offered_same_set",  # both valid in one cycle: the fill goes first
        ],
        "flow": [
            "result_held",
            "fill_while_result_held",
            "lookup_blocked_by_fill",
            "back_to_back_results",
        ],
        "invalidate": [
            "invalidate",
            "invalidate_while_result_held",
            "invalidate_while_busy",
            "stale_line_misses",  # a line cached before the invalidate misses after it
        ],
    }


class Fields:
    """Top-level fields of a packed payload: (offset, width), nested structs merged.

    Built from the flattened layout of the JSON side file (``addr.line``, ``addr.row``,
    ... become one ``addr`` field: the line address integer).
    """

    def __init__(self, flat: dict[str, tuple[int, int]]):
        spans: dict[str, list[int]] = {}
        for name, (offset, width) in flat.items():
            top = name.split(".", 1)[0]
            lo, hi = spans.get(top, [offset, offset + width])
            spans[top] = [min(lo, offset), max(hi, offset + width)]
        self.fields = {name: (lo, hi - lo) for name, (lo, hi) in spans.items()}
        self.width = max(hi for _, hi in spans.values())

    def pack(self, **values: int) -> int:
        word = 0
        for name, (offset, width) in self.fields.items():
            value = values[name]
            assert 0 <= value < 1 << width, f"{name}={value:#x} does not fit in {width} bits"
            word |= value << offset
        return word

    def unpack(self, word: int) -> dict[str, int]:
        return {n: (word >> o) & ((1 << w) - 1) for n, (o, w) in self.fields.items()}

    def get(self, word: int, name: str) -> int:
        offset, width = self.fields[name]
        return (word >> offset) & ((1 << width) - 1)


class Traffic:
    """Random lookup addresses and the fill policy (no simulator dependency).

    Parameters
    ----------
    sets, ways, addr_bits, line_bits : int
        Cache organisation and line-address / line widths.
    rng : random.Random
    allocate_probability : float
        Probability that a lookup has ``allocate=1``.
    spurious_fill_probability : float
        Per lookup, probability of also filling a random pool line (present or not).
    """

    def __init__(
        self,
        *,
        sets: int,
        ways: int,
        addr_bits: int,
        line_bits: int,
        id_width: int,
        rng: random.Random,
        allocate_probability: float = 0.75,
        spurious_fill_probability: float = 0.03,
    ):
        self.rng = rng
        self.sets = sets
        self.set_bits = sets.bit_length() - 1
        self.tag_bits = addr_bits - self.set_bits
        self.addr_bits = addr_bits
        self.line_bits = line_bits
        self.id_mask = (1 << id_width) - 1
        self.allocate_probability = allocate_probability
        self.spurious_fill_probability = spurious_fill_probability
        max_tag = (1 << self.tag_bits) - 1
        hot_sets = sorted({0, sets - 1, rng.randrange(sets)})
        self.hot: list[int] = []
        for s in hot_sets:
            tags = {0, max_tag}
            while len(tags) < min(ways + 2, max_tag + 1):
                tags.add(rng.randrange(max_tag + 1))
            self.hot += [(t << self.set_bits) | s for t in sorted(tags)]
        self.cold = [rng.getrandbits(addr_bits) for _ in range(16)]
        self.walk_tags = [rng.randrange(max_tag + 1) for _ in range(2)]
        self.walk = 0
        self.next_id = 0
        self.pending_fills: list[tuple[int, int]] = []  # (due cycle, addr)

    def address(self) -> int:
        r = self.rng.random()
        if r < 0.8:
            return self.rng.choice(self.hot)
        if r < 0.9:
            return self.rng.choice(self.cold)
        addr = (self.rng.choice(self.walk_tags) << self.set_bits) | (self.walk % self.sets)
        self.walk += 1
        return addr

    def lookup(self, cycle: int) -> dict[str, int]:
        """The next lookup's fields; may also schedule a spurious fill. Lookups of the walk
        over every set always allocate, so that every set gets filled."""
        ident = self.next_id
        self.next_id = (self.next_id + 1) & self.id_mask
        if self.rng.random() < self.spurious_fill_probability:
            self.schedule_fill(cycle, self.rng.choice(self.hot + self.cold))
        walk = self.walk
        addr = self.address()
        allocate = self.walk != walk or self.rng.random() < self.allocate_probability
        return {"addr": addr, "allocate": int(allocate), "id": ident}

    def schedule_fill(self, cycle: int, addr: int) -> None:
        r = self.rng.random()
        delay = 0 if r < 0.3 else self.rng.randint(1, 3) if r < 0.6 else self.rng.randint(4, 40)
        self.pending_fills.append((cycle + delay, addr))

    def due_fills(self, cycle: int) -> list[dict[str, int]]:
        """Fills due by ``cycle``, each with fresh random line data."""
        due = [a for c, a in self.pending_fills if c <= cycle]
        if due:
            self.pending_fills = [(c, a) for c, a in self.pending_fills if c > cycle]
        return [{"addr": a, "data": self.rng.getrandbits(self.line_bits)} for a in due]


class CycleSample:
    """Interface values of one cycle, as the DUT samples them on the next rising edge.

    Payloads are packed integers (``None`` when the stream is not valid); ``counters``
    is a tuple in :data:`COUNTERS` order, or ``None`` to skip the counter check.
    """

    __slots__ = (
        "lookup_valid",
        "lookup_ready",
        "lookup_payload",
        "fill_valid",
        "fill_ready",
        "fill_payload",
        "result_valid",
        "result_ready",
        "result_payload",
        "invalidate",
        "busy",
        "counters",
    )

    def __init__(self, **values):
        for name in self.__slots__:
            setattr(self, name, values.get(name))


class Scoreboard:
    """The Python model, the line data, the expected results and every check.

    Call :meth:`cycle` once per clock cycle, from the first cycle after reset.
    """

    def __init__(
        self, *, size_bytes: int, ways: int, lookup: Fields, fill: Fields, result: Fields, coverage: bool = False
    ):
        self.model = RankCacheModel(size_bytes=size_bytes, ways=ways)
        self.sets = self.model.sets
        self.ways = ways
        self.lookup_f, self.fill_f, self.result_f = lookup, fill, result
        self.lines: dict[int, int] = {}  # addr -> data of every cached line
        self.sets_filled: set[int] = set()  # sets that received a new line at least once
        self.stale: set[int] = set()  # lines cached at the last invalidate, not filled since
        self.expected: collections.deque[tuple[int, dict[str, int]]] = collections.deque()
        self.to_fill: list[int] = []  # addresses of allocating misses, for the stimulus
        self.cycle_no = 0
        self.lookups = 0
        self.results = 0
        self.events: collections.Counter[str] = collections.Counter()
        self.busy_runs: list[int] = []
        self._busy_run = 0
        self._invalidated = True  # the reset sweep
        self._prev_op: tuple[str, int, int] | None = None  # (kind, set, addr) accepted last cycle
        self._prev_held: int | None = None  # result payload held (valid, not ready) last cycle
        self._prev_result_transfer = False
        self._counter_history: collections.deque[tuple[int, ...]] = collections.deque([(0,) * 5, (0,) * 5], maxlen=2)
        self._cover = None
        if coverage:
            from cocotb_coverage.coverage import CoverPoint

            self._cover = {}
            for name, bins in coverage_bins(ways).items():
                self._cover[name] = CoverPoint(f"rank_cache.{name}", xf=lambda v: v, bins=bins)(lambda v: None)

    # -- helpers ------------------------------------------------------------------------

    def _event(self, point: str, value) -> None:
        self.events[f"{point}:{value}"] += 1
        if self._cover is not None:
            self._cover[point](value)

    def _fail(self, message: str) -> None:
        raise AssertionError(f"cycle {self.cycle_no}: {message}")

    def model_counters(self) -> tuple[int, ...]:
        m = self.model
        return (m.hits, m.misses, m.bypasses, m.fills, m.evictions)

    # -- the per-cycle step -------------------------------------------------------------

    def cycle(self, s: CycleSample) -> None:
        busy = bool(s.busy)
        fill_ready = not busy and not s.invalidate
        if bool(s.fill_ready) != fill_ready:
            self._fail(
                f"fill.ready is {s.fill_ready}, expected {int(fill_ready)} "
                f"(busy={int(busy)}, invalidate={s.invalidate})"
            )
        lookup_ready = fill_ready and not s.fill_valid and (not s.result_valid or bool(s.result_ready))
        if bool(s.lookup_ready) != lookup_ready:
            self._fail(
                f"lookup.ready is {s.lookup_ready}, expected {int(lookup_ready)} "
                f"(busy={int(busy)}, invalidate={s.invalidate}, fill.valid={s.fill_valid}, "
                f"result.valid={s.result_valid}, result.ready={s.result_ready})"
            )

        # result stream: latency 1, stable while stalled, right order
        if self._prev_held is not None and (not s.result_valid or s.result_payload != self._prev_held):
            self._fail("a stalled result changed or disappeared before it was taken")
        if self._prev_op is not None and self._prev_op[0] == "lookup" and not s.result_valid:
            self._fail("no result one cycle after a lookup was accepted (hit latency must be 1)")
        if s.result_valid:
            if not self.expected:
                self._fail("result.valid with no lookup outstanding")
            head = self.expected[0][1]
            got = self.result_f.unpack(s.result_payload)
            if (got["id"], got["addr"]) != (head["id"], head["addr"]):
                self._fail(
                    f"result for id {got['id']} addr {got['addr']:#x}, expected the result of "
                    f"lookup {self.expected[0][0]} (id {head['id']}, addr {head['addr']:#x})"
                )

        # busy runs
        if busy:
            self._busy_run += 1
        elif self._busy_run:
            if self._busy_run != self.sets:
                self._fail(f"busy was high for {self._busy_run} cycles, expected {self.sets} (the sets)")
            if not self._invalidated:
                self._fail("busy went high without an invalidate")
            self.busy_runs.append(self._busy_run)
            self._busy_run = 0
            self._invalidated = False

        # counters: those of the operations accepted up to two cycles ago
        if s.counters is not None and tuple(s.counters) != self._counter_history[0]:
            expected = dict(zip(COUNTERS, self._counter_history[0]))
            self._fail(f"counters {dict(zip(COUNTERS, s.counters))}, expected {expected}")

        held = s.result_valid and not s.result_ready
        op = None
        if s.invalidate:
            if busy:
                self._event("invalidate", "invalidate_while_busy")
            else:
                self._event("invalidate", "invalidate")
                if held:
                    self._event("invalidate", "invalidate_while_result_held")
                self.model.invalidate()
                self.stale = set(self.lines)
                self.lines.clear()
                self._invalidated = True
        if s.fill_valid and s.fill_ready:
            op = self._fill(s.fill_payload, held)
        if s.lookup_valid and s.lookup_ready:
            if op is not None:
                self._fail("a fill and a lookup were accepted in the same cycle")
            op = self._lookup(s.lookup_payload)
        if s.lookup_valid and s.fill_valid and not busy and not s.invalidate:
            self._event("flow", "lookup_blocked_by_fill")
            if self.model.set_index(self.lookup_f.get(s.lookup_payload, "addr")) == self.model.set_index(
                self.fill_f.get(s.fill_payload, "addr")
            ):
                self._event("hazard", "lookup_fill_offered_same_set")
        if held:
            self._event("flow", "result_held")

        transfer = bool(s.result_valid and s.result_ready)
        if transfer:
            self._check_result(s.result_payload)
            if self._prev_result_transfer:
                self._event("flow", "back_to_back_results")
        self._prev_result_transfer = transfer
        self._prev_held = s.result_payload if held else None
        self._prev_op = op
        self._counter_history.append(self.model_counters())
        self.cycle_no += 1

    def _fill(self, payload: int, held: bool) -> tuple[str, int, int]:
        f = self.fill_f.unpack(payload)
        addr = f["addr"]
        s = self.model.set_index(addr)
        present = self.model.contains(addr)
        evicted = self.model.fill(addr)
        if present:
            self._event("fill.outcome", "present")
        else:
            self.lines[addr] = f["data"]
            self.sets_filled.add(s)
            self.stale.discard(addr)
            if evicted is not None:
                del self.lines[evicted]
                self._event("fill.outcome", "eviction")
            else:
                self._event("fill.outcome", "invalid_way")
        self._event("fill.way", self.model.way_of(addr))
        if held:
            self._event("flow", "fill_while_result_held")
        if self._prev_op is not None and self._prev_op[1] == s:
            self._event("hazard", f"{self._prev_op[0]}_fill_same_set")
        return ("fill", s, addr)

    def _lookup(self, payload: int) -> tuple[str, int, int]:
        f = self.lookup_f.unpack(payload)
        addr, allocate = f["addr"], f["allocate"]
        s = self.model.set_index(addr)
        rank = self.model.lru_order(s).index(addr) if self.model.contains(addr) else None
        hit = self.model.lookup(addr, bool(allocate))
        if hit:
            self._event("lookup.outcome", "hit")
            self._event("lookup.hit_way", self.model.last_way)
            self._event("lookup.hit_lru_rank", rank)
        else:
            self._event("lookup.outcome", "miss" if allocate else "bypass")
            if addr in self.stale:
                self._event("invalidate", "stale_line_misses")
        if self._prev_op is not None and self._prev_op[1] == s:
            self._event("hazard", f"{self._prev_op[0]}_lookup_same_set")
            if hit and self._prev_op[0] == "fill" and self._prev_op[2] == addr:
                self._event("hazard", "fill_lookup_same_line_hit")
        expected = {
            "id": f["id"],
            "addr": addr,
            "allocate": allocate,
            "hit": int(hit),
            "data": self.lines[addr] if hit else 0,
        }
        self.expected.append((self.lookups, expected))
        self.lookups += 1
        return ("lookup", s, addr)

    def _check_result(self, payload: int) -> None:
        n, exp = self.expected.popleft()
        got = self.result_f.unpack(payload)
        for name in ("id", "addr", "allocate", "hit", "data"):
            if got[name] != exp[name]:
                self._fail(
                    f"result {n} (addr {exp['addr']:#x}, set {self.model.set_index(exp['addr'])}): "
                    f"{name} is {got[name]:#x}, expected {exp[name]:#x}"
                )
        self.results += 1
        if not exp["hit"] and exp["allocate"]:
            self.to_fill.append(exp["addr"])

    def finish(self, counters: tuple[int, ...]) -> None:
        """End-of-test checks: every lookup answered, the counters equal the model's."""
        if self.expected:
            self._fail(f"{len(self.expected)} lookups never got a result")
        got = dict(zip(COUNTERS, counters))
        want = self.model.counters()
        if got != want:
            self._fail(f"final counters {got}, model {want}")

    def missing_bins(self) -> list[str]:
        """Coverage bins never hit (from :attr:`events`)."""
        return [
            f"{point}:{b}"
            for point, bins in coverage_bins(self.ways).items()
            for b in bins
            if not self.events[f"{point}:{b}"]
        ]


# ----------------------------------------------------------------------------------------
# cocotb
# ----------------------------------------------------------------------------------------


class Testbench:
    """Sources on ``lookup`` and ``fill``, sink on ``result``, monitor, stimulus."""

    def __init__(self, dut, *, seed: int, coverage: bool = True):
        self.dut = dut
        desc = BlockDescription.from_env()
        self.params = desc.params
        self.ways = desc.params["ways"]
        lookup = Fields(desc.layout("lookup__payload").fields)
        fill = Fields(desc.layout("fill__payload").fields)
        result = Fields(desc.layout("result__payload").fields)
        self.lookup_f, self.fill_f = lookup, fill
        self.sb = Scoreboard(
            size_bytes=desc.params["size_bytes"],
            ways=self.ways,
            lookup=lookup,
            fill=fill,
            result=result,
            coverage=coverage,
        )
        self.traffic = Traffic(
            sets=self.sb.sets,
            ways=self.ways,
            addr_bits=lookup.fields["addr"][1],
            line_bits=fill.fields["data"][1],
            id_width=lookup.fields["id"][1],
            rng=random.Random(seed),
        )
        self.lookups = StreamSource(dut, "lookup", dut.clk)
        self.fills = StreamSource(dut, "fill", dut.clk)
        self.results = StreamSink(dut, "result", dut.clk)
        self.counter_handles = [getattr(dut, name) for name in COUNTERS]
        self.auto_fill = True  # fill the lines of allocating misses (the Rank-NMP's job)
        self.lookup_target = 0  # lookups the stimulus still has to issue
        self.issued = 0
        self.rng = random.Random(seed + 1)

    async def reset(self) -> None:
        cocotb.start_soon(Clock(self.dut.clk, 10, unit="ns").start())
        self.dut.invalidate.value = 0
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 2)
        self.dut.rst.value = 0
        cocotb.start_soon(self._monitor())
        cocotb.start_soon(self._stimulus())

    def set_stalls(self, *, lookup_gap: float, result_stall: float, fill_gap: float) -> None:
        seed = self.rng.getrandbits(32)
        self.lookups.set_pause(random_pauses(lookup_gap, seed=seed) if lookup_gap else None)
        self.results.set_pause(random_pauses(result_stall, seed=seed + 1) if result_stall else None)
        self.fills.set_pause(random_pauses(fill_gap, seed=seed + 2) if fill_gap else None)

    def counters(self) -> tuple[int, ...]:
        return tuple(int(h.value) for h in self.counter_handles)

    async def _monitor(self) -> None:
        dut = self.dut
        while True:
            await FallingEdge(dut.clk)
            await ReadOnly()
            lv = int(dut.lookup__valid.value)
            fv = int(dut.fill__valid.value)
            rv = int(dut.result__valid.value)
            self.sb.cycle(
                CycleSample(
                    lookup_valid=lv,
                    lookup_ready=int(dut.lookup__ready.value),
                    lookup_payload=int(dut.lookup__payload.value) if lv else None,
                    fill_valid=fv,
                    fill_ready=int(dut.fill__ready.value),
                    fill_payload=int(dut.fill__payload.value) if fv else None,
                    result_valid=rv,
                    result_ready=int(dut.result__ready.value),
                    result_payload=int(dut.result__payload.value) if rv else None,
                    invalidate=int(dut.invalidate.value),
                    busy=int(dut.busy.value),
                    counters=self.counters(),
                )
            )

    async def _stimulus(self) -> None:
        """Keep two lookups queued while some remain to issue; fill allocating misses."""
        sb, traffic = self.sb, self.traffic
        while True:
            await FallingEdge(self.dut.clk)
            cycle = sb.cycle_no
            while self.lookup_target > self.issued and self.lookups.pending < 2:
                self.lookups.send(self.lookup_f.pack(**traffic.lookup(cycle)))
                self.issued += 1
            for addr in sb.to_fill if self.auto_fill else ():
                traffic.schedule_fill(cycle, addr)
            sb.to_fill.clear()
            for fill in traffic.due_fills(cycle):
                self.fills.send(self.fill_f.pack(**fill))

    async def run(self, count: int) -> None:
        """Issue ``count`` more lookups and wait until they have all been answered."""
        self.lookup_target += count
        while self.sb.results < self.lookup_target:
            await FallingEdge(self.dut.clk)

    async def invalidate(self, *, after: int = 0, while_held: bool = False, twice: bool = False) -> None:
        """A one-cycle ``invalidate`` strobe ``after`` cycles from now (start it with
        ``cocotb.start_soon`` to have traffic around it).

        ``while_held``: first stop taking results until one is held on ``result``, and
        strobe while it is. ``twice``: strobe again two cycles later, while ``busy``.
        """
        dut = self.dut
        await ClockCycles(dut.clk, after)
        pause = self.results.pause
        if while_held:
            self.results.set_pause(itertools.repeat(True))
            while True:
                await FallingEdge(dut.clk)
                await ReadOnly()
                if dut.result__valid.value == 1 and dut.result__ready.value == 0 and dut.busy.value == 0:
                    break
        await FallingEdge(dut.clk)
        dut.invalidate.value = 1
        await FallingEdge(dut.clk)
        dut.invalidate.value = 0
        self.results.set_pause(pause)
        if twice:
            await ClockCycles(dut.clk, 2)
            await FallingEdge(dut.clk)
            dut.invalidate.value = 1
            await FallingEdge(dut.clk)
            dut.invalidate.value = 0

    async def drain(self) -> None:
        """Let pending fills land, then check the end state."""
        while self.traffic.pending_fills or self.fills.pending or self.dut.busy.value == 1:
            await FallingEdge(self.dut.clk)
        await ClockCycles(self.dut.clk, 4)
        await FallingEdge(self.dut.clk)
        self.sb.finish(self.counters())


@cocotb.test(**TIMEOUT)
async def random_traffic(dut):
    """~RECNMP_COUNT lookups in phases of different stall profiles, invalidates in the middle."""
    from cocotb_coverage.coverage import coverage_db

    count = int(os.environ.get("RECNMP_COUNT", "20000"))
    tb = Testbench(dut, seed=cocotb.RANDOM_SEED)
    await tb.reset()
    phases = [  # (share of the lookups, lookup gap, result stall, fill gap)
        (0.15, 0.0, 0.0, 0.0),  # full rate: back-to-back lookups and results
        (0.35, 0.2, 0.3, 0.3),
        (0.15, 0.1, 0.7, 0.1),  # heavy backpressure on result
        (0.35, 0.3, 0.2, 0.5),
    ]
    for k, (share, gap, stall, fill_gap) in enumerate(phases):
        tb.set_stalls(lookup_gap=gap, result_stall=stall, fill_gap=fill_gap)
        n = int(count * share)
        if k == 2:  # invalidates in the middle: one under a stalled result, one twice in a row
            cocotb.start_soon(tb.invalidate(after=n // 2, while_held=True))
            cocotb.start_soon(tb.invalidate(after=3 * n // 2, twice=True))
        await tb.run(n)
    await tb.drain()
    sb = tb.sb
    hit_rate = sb.model.hit_rate
    dut._log.info(
        f"{sb.lookups} lookups, {sb.model.fills} fills in {sb.cycle_no} cycles; counters "
        f"{sb.model.counters()}; hit rate {hit_rate:.1%}; busy runs {sb.busy_runs}; "
        f"{len(sb.sets_filled)} of {sb.sets} sets filled"
    )
    coverage_db.report_coverage(dut._log.info, bins=True)
    coverage.export()
    missing = sb.missing_bins()
    assert not missing, f"coverage bins never hit: {missing}"
    assert coverage_db["rank_cache"].coverage == coverage_db["rank_cache"].size
    assert len(sb.sets_filled) == sb.sets, f"only {len(sb.sets_filled)} of {sb.sets} sets were filled"


@cocotb.test(**TIMEOUT)
async def hit_latency_and_throughput(dut):
    """Lookups every cycle with ``result`` always ready: results back to back, 1 cycle after."""
    tb = Testbench(dut, seed=7, coverage=False)
    tb.auto_fill = False
    await tb.reset()
    while dut.busy.value == 1:
        await FallingEdge(dut.clk)
    addrs = tb.traffic.hot[:4]
    for addr in addrs:  # install a few lines
        tb.fills.send(tb.fill_f.pack(addr=addr, data=tb.traffic.rng.getrandbits(512)))
    await tb.fills.wait_idle()
    await ClockCycles(dut.clk, 2)
    start = len(tb.results.times)
    count = 64
    for n in range(count):
        tb.lookups.send(
            tb.lookup_f.pack(addr=addrs[n % len(addrs)] if n % 3 else tb.traffic.cold[0], allocate=n & 1, id=n % 64)
        )
    first = len(tb.lookups.times)
    while tb.sb.results < count:
        await FallingEdge(dut.clk)
    period = 10
    times_in = tb.lookups.times[first:]
    times_out = tb.results.times[start:]
    latency = {(b - a) / period for a, b in zip(times_in, times_out)}
    assert latency == {1}, f"result latency {sorted(latency)} cycles, expected 1"
    gaps = {(b - a) / period for a, b in zip(times_out, times_out[1:])}
    assert gaps == {1}, f"results were not back to back: gaps {sorted(gaps)} cycles"
    await tb.drain()
