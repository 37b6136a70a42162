"""cocotb testbench of ``rank_scheduler``: request streams against the DDR4 model and checker.

The DUT's ``dram`` port drives :class:`verif.dram_model.DramModel`, which fails the test on
any protocol or timing violation and returns data from a :class:`verif.rank_image.RankImage`
holding random bytes at every line the test reads. A driver sends requests on ``req`` with
random gaps, managing a free list of the ``2**id_width`` ids (an id is reused only after
its last beat came back); a monitor samples ``req``, ``dram`` and ``rdata`` every cycle;
the scoreboard checks that every request gets exactly its 64 B back (beats 0..3 in
consecutive cycles, ``last`` on beat 3), each id once, no extra beats; at the end ``idle``
must be high, the command counters must equal what the DRAM model counted (the
PREs and REF of the recovery after reset included; the counts a test sees are taken from
the end of that recovery, when ``idle`` first rises),
``hint_mismatches`` must equal the in-order shadow-model prediction
(:func:`hw.isa.expected_hint`), and ``row_hits + row_misses + row_conflicts``
must equal ``reads``.

Streams (one cocotb test each; ``coverage_summary`` runs last, prints the functional
coverage collected by the tests of this process and asserts the main bins were hit):
random, same-bank conflicts, one bank group, tFAW bursts, row-hit streams, starvation,
a mix, and a run that crosses refreshes (at least two; many with a short ``tREFI``).
:data:`BUILDS` names the parameter sets and :func:`run` builds one and runs the tests on
it. ``bench_row_hits``, ``bench_row_hits_4_banks`` and ``bench_random_rows`` are the
benchmark (``benchmarks/rank_scheduler.py``); they run only when ``RECNMP_BENCH_JSON``
names the file they write their figures to.

Environment: ``RECNMP_SCALE`` multiplies the request counts (default 1.0),
``RECNMP_GAP`` is the probability of a gap in the request stream per cycle (default 0.3),
``RECNMP_BENCH_REQUESTS`` the benchmark's request count per stream (default 8000).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, FallingEdge, ReadOnly, with_timeout
from cocotb_coverage.coverage import CoverPoint, coverage_db

from hw.ddr4 import DDR4Geometry, DDR4Timing, DramCommand
from hw.isa import expected_hint
from verif import coverage
from verif.block_description import BlockDescription
from verif.dram_model import DramModel
from verif.rank_image import RankImage
from verif.stream import StreamSource, random_pauses, test_timeout

BENCH_ENV = "RECNMP_BENCH_JSON"
BLOCK = "rank_scheduler"
#: Regression tests, in the order they run (``coverage_summary`` last).
TESTS = (
    "random_requests",
    "same_bank_conflicts",
    "one_bank_group",
    "tfaw_bursts",
    "row_hit_streams",
    "starvation",
    "mixed_streams",
    "refresh_collisions",
    "coverage_summary",
)
#: Build parameter sets: the defaults (DDR4-2400, depth 16, 64 ids) and a short refresh
#: interval with a small buffer and few ids (refresh collisions, full buffer, id reuse).
BUILDS = {
    "default": {},
    "short_refresh": {"tREFI": 600, "depth": 8, "id_width": 4, "starvation_limit": 32},
}
COUNTERS = ("acts", "pres", "reads", "refs", "row_hits", "row_misses", "row_conflicts", "hint_mismatches")
GEOMETRY = DDR4Geometry()


@dataclass(frozen=True)
class Request:
    """One 64 B line read: DRAM coordinates (``line`` = column / 8)."""

    bank_group: int
    bank: int
    row: int
    line: int

    @property
    def bank_key(self) -> tuple[int, int]:
        return self.bank_group, self.bank


def run(build: str = "default", *, testcase=TESTS, **kwargs):
    """Build ``rank_scheduler`` with ``BUILDS[build]`` and run ``testcase`` (names) of this
    testbench through :func:`verif.runner.run_block_tests` (``kwargs`` passed on)."""
    from verif.runner import run_block_tests

    return run_block_tests(BLOCK, __name__, params=BUILDS[build], testcase=",".join(testcase), **kwargs)


# ---- request streams ---------------------------------------------------------------------
G = GEOMETRY


def random_stream(rng: random.Random, n: int, rows: int = G.rows) -> list[Request]:
    """Uniform over the 16 banks, random rows and lines."""
    return [
        Request(
            rng.randrange(G.bank_groups),
            rng.randrange(G.banks_per_group),
            rng.randrange(rows),
            rng.randrange(G.lines_per_row),
        )
        for _ in range(n)
    ]


def same_bank_stream(rng: random.Random, n: int) -> list[Request]:
    """One bank, a different row every request: back-to-back row conflicts."""
    bg, bank = rng.randrange(G.bank_groups), rng.randrange(G.banks_per_group)
    rows = rng.sample(range(G.rows), 2)
    return [
        Request(bg, bank, rows[k % 2] if k % 3 else rng.randrange(G.rows), rng.randrange(G.lines_per_row))
        for k in range(n)
    ]


def one_group_stream(rng: random.Random, n: int) -> list[Request]:
    """Every request in one bank group (tCCD_L / tRRD_L bound), a few rows per bank."""
    bg = rng.randrange(G.bank_groups)
    return [
        Request(bg, rng.randrange(G.banks_per_group), rng.randrange(3), rng.randrange(G.lines_per_row))
        for _ in range(n)
    ]


def tfaw_stream(rng: random.Random, n: int) -> list[Request]:
    """Bursts of 8 requests to 8 different banks (2 per bank group), each to a new row:
    8 ACTs wanted back to back, so the fifth waits for tFAW."""
    out = []
    while len(out) < n:
        banks = rng.sample([(bg, b) for bg in range(G.bank_groups) for b in range(G.banks_per_group)], 8)
        out += [Request(bg, b, rng.randrange(G.rows), rng.randrange(G.lines_per_row)) for bg, b in banks]
    return out[:n]


def row_hit_stream(rng: random.Random, n: int, banks_per_group: int = 1) -> list[Request]:
    """Row-buffer hits spread over the 4 bank groups in turn: one row per bank, random
    lines; ``banks_per_group`` banks of each group are used."""
    rows = {(bg, b): rng.randrange(G.rows) for bg in range(G.bank_groups) for b in range(banks_per_group)}
    return [
        Request(
            k % G.bank_groups,
            (b := rng.randrange(banks_per_group)),
            rows[(k % G.bank_groups, b)],
            rng.randrange(G.lines_per_row),
        )
        for k in range(n)
    ]


def mix_stream(rng: random.Random, n: int) -> list[Request]:
    """Phases of every kind above, back to back."""
    makers = [
        lambda k: random_stream(rng, k, rows=4),
        lambda k: same_bank_stream(rng, k),
        lambda k: one_group_stream(rng, k),
        lambda k: tfaw_stream(rng, k),
        lambda k: row_hit_stream(rng, k, banks_per_group=2),
        lambda k: random_stream(rng, k),
    ]
    out = []
    while len(out) < n:
        out += rng.choice(makers)(rng.randrange(8, 48))
    return out[:n]


# ---- functional coverage -------------------------------------------------------------------
_CMD_BINS = ["ACT", "PRE", "RD", "REF"]


@CoverPoint("rank_scheduler.command", xf=lambda cmd: cmd, bins=_CMD_BINS)
def _cover_command(cmd: str) -> None:
    pass


@CoverPoint("rank_scheduler.row_state_at_arrival", xf=lambda state: state, bins=["hit", "miss", "conflict"])
def _cover_arrival(state: str) -> None:
    pass


@CoverPoint("rank_scheduler.same_bank_conflict", xf=lambda conflict: conflict, bins=[True])
def _cover_same_bank_conflict(conflict: bool) -> None:
    pass


@CoverPoint("rank_scheduler.refresh_with_requests_pending", xf=lambda pending: pending, bins=[True])
def _cover_refresh(pending: bool) -> None:
    pass


@CoverPoint("rank_scheduler.tfaw_limited_act", xf=lambda limited: limited, bins=[True])
def _cover_tfaw(limited: bool) -> None:
    pass


@CoverPoint("rank_scheduler.hint", xf=lambda match: match, bins=["match", "mismatch"])
def _cover_hint(match: str) -> None:
    pass


@CoverPoint("rank_scheduler.request_backpressure", xf=lambda full: full, bins=[True])
def _cover_backpressure(full: bool) -> None:
    pass


@CoverPoint("rank_scheduler.out_of_order_completion", xf=lambda ooo: ooo, bins=[True])
def _cover_out_of_order(ooo: bool) -> None:
    pass


#: Bins every regression process must hit (checked by ``coverage_summary``).
MAIN_BINS = (
    "rank_scheduler.command",
    "rank_scheduler.row_state_at_arrival",
    "rank_scheduler.same_bank_conflict",
    "rank_scheduler.refresh_with_requests_pending",
    "rank_scheduler.tfaw_limited_act",
    "rank_scheduler.hint",
    "rank_scheduler.request_backpressure",
    "rank_scheduler.out_of_order_completion",
)

#: Backstop: far more cycles than any test needs (a few thousand requests, refresh included).
TIMEOUT = test_timeout(int(2_000_000 * float(os.environ.get("RECNMP_SCALE", "1.0"))) + 200_000)


# ---- testbench -------------------------------------------------------------------------------
@dataclass
class _Outstanding:
    request: Request
    expected: bytes
    sent_order: int
    accepted: int | None = None  # cycle
    next_beat: int = 0
    last_beat_cycle: int | None = None


class Testbench:
    """Driver on ``req``, DRAM model on ``dram``, monitor + scoreboard on ``rdata``.

    Parameters come from the block description (depth, id_width, timing).
    """

    def __init__(self, dut, *, seed: int, gap: float, wrong_hints: float = 0.1):
        self.dut = dut
        desc = BlockDescription.from_env()
        self.params = desc.params
        self.timing = DDR4Timing(**{k: v for k, v in desc.params.items() if k in DDR4Timing.__dataclass_fields__})
        self.req_layout = desc.layout("req__payload")
        self.rdata_layout = desc.layout("rdata__payload")
        self.rng = random.Random(seed)
        self.wrong_hints = wrong_hints
        self.image = RankImage(GEOMETRY)
        self._written: set[Request] = set()
        self.free_ids = deque(range(1 << self.params["id_width"]))
        self._id_freed = Event()
        self.outstanding: dict[int, _Outstanding] = {}
        self._accept_queue: deque[int] = deque()  # ids in the order they were sent
        self.sent = 0
        self.completed = 0
        self.predicted_mismatches = 0
        self._shadow: dict[tuple[int, int], int] = {}  # last requested row per bank
        self._last_sent: Request | None = None
        self.latencies: list[int] = []
        self._done = Event()
        self._sending = False
        self.source = StreamSource(dut, "req", dut.clk, pause=random_pauses(gap, seed=seed + 1))
        self.model: DramModel | None = None
        # monitor state
        self.cycle = 0
        self.start_cycle = 0  # model cycle when the recovery after reset was over
        self.baseline = dict.fromkeys(COUNTERS, 0)  # counters then
        self._bank_rows: dict[tuple[int, int], int] = {}
        self._acts: deque[int] = deque(maxlen=4)
        self._completion_order: list[int] = []
        self.ref_cycles: list[int] = []

    # -- set-up -----------------------------------------------------------------------------
    async def start(self) -> None:
        cocotb.start_soon(Clock(self.dut.clk, 10, unit="ns").start())
        self.dut.rst.value = 1
        self.dut.dram__rd_valid.value = 0
        self.model = DramModel(
            self.dut, "dram", self.dut.clk, self.image, timing=self.timing, geometry=GEOMETRY, initial_state="unknown"
        )
        cocotb.start_soon(self._monitor())
        await ClockCycles(self.dut.clk, 2)
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0
        # The recovery after reset (docs/rank_scheduler.md: PRE to every bank, one REF) is
        # over when idle rises; counters, cycles and REFs are measured from there.
        while True:
            await FallingEdge(self.dut.clk)
            if self.dut.idle.value == 1:
                break
        self.baseline = self.counters()
        self.start_cycle = self.model.cycle
        self.ref_cycles.clear()

    # -- driver -------------------------------------------------------------------------------
    def _hint_for(self, request: Request) -> int:
        """The correct hint most of the time, a wrong one with probability ``wrong_hints``;
        counts the mismatches the DUT must report."""
        want = expected_hint(self._shadow.get(request.bank_key), request.row)
        self._shadow[request.bank_key] = request.row
        hint = want
        if self.rng.random() < self.wrong_hints:
            hint = self.rng.choice([h for h in range(8) if h != want])
        self.predicted_mismatches += hint != want
        _cover_hint("match" if hint == want else "mismatch")
        return hint

    async def send(self, requests, *, drain_every: int | None = None) -> None:
        """Send ``requests`` in order, each with a free id (waits for one to come back)."""
        self._sending = True
        self._done.clear()
        for k, request in enumerate(requests):
            if drain_every and k and k % drain_every == 0:
                await self.wait_done(partial=True)
            while not self.free_ids:
                self._id_freed.clear()
                await self._id_freed.wait()
            rid = self.free_ids.popleft()
            if request not in self._written:
                self._written.add(request)
                self.image.write(
                    bank_group=request.bank_group,
                    bank=request.bank,
                    row=request.row,
                    column=request.line * GEOMETRY.burst_columns,
                    data=self.rng.randbytes(GEOMETRY.burst_bytes),
                )
            expected = self.image.read_burst(
                bank_group=request.bank_group,
                bank=request.bank,
                row=request.row,
                column=request.line * GEOMETRY.burst_columns,
            )
            prev = self._last_sent
            if prev is not None and prev.bank_key == request.bank_key and prev.row != request.row:
                _cover_same_bank_conflict(True)
            self._last_sent = request
            self.outstanding[rid] = _Outstanding(request, expected, self.sent)
            self._accept_queue.append(rid)
            self.sent += 1
            self.source.send(
                self.req_layout.pack(
                    **{
                        "addr.bank_group": request.bank_group,
                        "addr.bank": request.bank,
                        "addr.row": request.row,
                        "addr.line": request.line,
                        "id": rid,
                        "hint": self._hint_for(request),
                    }
                )
            )
        self._sending = False
        if not self.outstanding:
            self._done.set()

    async def wait_done(self, *, partial: bool = False, timeout_cycles: int = 200_000) -> None:
        """Wait until every sent request has completed (``partial``: while still sending)."""
        while self.outstanding or (self._sending and not partial):
            self._done.clear()
            await with_timeout(self._done.wait(), timeout_cycles * 10, "ns")

    # -- monitor + scoreboard -----------------------------------------------------------------
    def _on_accept(self, cycle: int, word: int) -> None:
        fields = self.req_layout.unpack(word)
        rid = fields["id"]
        expect_rid = self._accept_queue.popleft()
        assert rid == expect_rid, f"cycle {cycle}: accepted id {rid}, the driver sent id {expect_rid}"
        entry = self.outstanding[rid]
        entry.accepted = cycle
        request = entry.request
        open_row = self._bank_rows.get(request.bank_key)
        _cover_arrival("miss" if open_row is None else "hit" if open_row == request.row else "conflict")

    def _on_command(self, cycle: int, cmd: DramCommand, bank_key: tuple[int, int], row: int) -> None:
        _cover_command(cmd.name)
        if cmd == DramCommand.ACT:
            # tFAW-limited: one cycle earlier, the fourth previous ACT was still in the window.
            if len(self._acts) == 4 and cycle - self._acts[0] == self.timing.tFAW:
                _cover_tfaw(True)
            self._acts.append(cycle)
            self._bank_rows[bank_key] = row
        elif cmd == DramCommand.PRE:
            self._bank_rows.pop(bank_key, None)
        elif cmd == DramCommand.REF:
            self.ref_cycles.append(cycle)
            _cover_refresh(any(o.accepted is not None for o in self.outstanding.values()))

    def _on_beat(self, cycle: int, word: int) -> None:
        f = self.rdata_layout.unpack(word)
        rid, beat, last = f["id"], f["beat"], f["last"]
        entry = self.outstanding.get(rid)
        assert entry is not None and entry.accepted is not None, (
            f"cycle {cycle}: beat {beat} for id {rid}, which has no request outstanding"
        )
        assert beat == entry.next_beat, f"cycle {cycle}: id {rid} beat {beat}, expected beat {entry.next_beat}"
        if beat:
            assert cycle == entry.last_beat_cycle + 1, (
                f"cycle {cycle}: id {rid} beat {beat} not in the cycle after beat {beat - 1}"
            )
        final = beat == GEOMETRY.beats_per_burst - 1
        assert last == final, f"cycle {cycle}: id {rid} beat {beat} has last={last}"
        size = GEOMETRY.beat_bytes
        want = int.from_bytes(entry.expected[beat * size : (beat + 1) * size], "little")
        r = entry.request
        assert f["data"] == want, (
            f"cycle {cycle}: id {rid} beat {beat} (bank group {r.bank_group} bank {r.bank} row {r.row} "
            f"line {r.line}): data {f['data']:#034x}, expected {want:#034x}"
        )
        entry.next_beat += 1
        entry.last_beat_cycle = cycle
        if final:
            del self.outstanding[rid]
            self.latencies.append(cycle - entry.accepted)
            if self._completion_order and entry.sent_order < self._completion_order[-1]:
                _cover_out_of_order(True)
            self._completion_order.append(entry.sent_order)
            self.completed += 1
            self.free_ids.append(rid)
            self._id_freed.set()
            if not self.outstanding:
                self._done.set()

    async def _monitor(self) -> None:
        dut = self.dut
        while True:
            await FallingEdge(dut.clk)
            await ReadOnly()
            cycle = self.cycle
            if dut.rst.value == 0:
                if dut.req__valid.value == 1:
                    if dut.req__ready.value == 1:
                        self._on_accept(cycle, int(dut.req__payload.value))
                    else:
                        _cover_backpressure(True)
                if dut.rdata__valid.value == 1:
                    self._on_beat(cycle, int(dut.rdata__payload.value))
                cmd = DramCommand(int(dut.dram__cmd.value))
                if cmd != DramCommand.NOP:
                    self._on_command(
                        cycle,
                        cmd,
                        (int(dut.dram__bank_group.value), int(dut.dram__bank.value)),
                        int(dut.dram__row.value),
                    )
            self.cycle += 1

    # -- end-of-test checks ---------------------------------------------------------------------
    def counters(self) -> dict[str, int]:
        return {name: int(getattr(self.dut, name).value) for name in COUNTERS}

    async def finish(self) -> dict[str, int]:
        """Wait for the last request, then check idle, counters and image accesses."""
        await self.wait_done()
        await ClockCycles(self.dut.clk, 4)
        # At a falling edge the DUT's counters and the model's counts cover the same cycles.
        await FallingEdge(self.dut.clk)
        assert self.dut.idle.value == 1, "idle is low after every request completed"
        got = self.counters()
        counts = self.model.counts
        for name, cmd in (
            ("acts", DramCommand.ACT),
            ("pres", DramCommand.PRE),
            ("reads", DramCommand.RD),
            ("refs", DramCommand.REF),
        ):
            assert got[name] == counts[cmd], f"{name} = {got[name]}, the DRAM model saw {counts[cmd]} {cmd.name}"
        assert got["reads"] == self.sent == self.completed == len(self.model.reads), (
            f"{got['reads']} RDs for {self.sent} requests ({self.completed} completed)"
        )
        assert got["row_hits"] + got["row_misses"] + got["row_conflicts"] == got["reads"], got
        assert got["row_misses"] + got["row_conflicts"] <= got["acts"], got
        assert got["row_conflicts"] <= got["pres"], got
        assert got["hint_mismatches"] == self.predicted_mismatches, (
            f"hint_mismatches = {got['hint_mismatches']}, the shadow model predicts {self.predicted_mismatches}"
        )
        assert self.image.unwritten_reads == 0, f"{self.image.unwritten_reads} reads of never-written rows"
        self.model.checker.check_refresh(self.model.cycle)
        got = {name: got[name] - self.baseline[name] for name in COUNTERS}  # after the recovery
        cocotb.log.info(
            "%d requests in %d cycles; counters %s; latency min/mean/max %d/%.1f/%d",
            self.sent,
            self.model.cycle - self.start_cycle,
            got,
            min(self.latencies),
            sum(self.latencies) / len(self.latencies),
            max(self.latencies),
        )
        return got


def _scale(n: int) -> int:
    return max(8, int(n * float(os.environ.get("RECNMP_SCALE", "1.0"))))


def _gap() -> float:
    return float(os.environ.get("RECNMP_GAP", "0.3"))


async def _run_stream(dut, requests, *, gap: float | None = None, **send) -> tuple[Testbench, dict]:
    tb = Testbench(dut, seed=cocotb.RANDOM_SEED, gap=_gap() if gap is None else gap)
    await tb.start()
    await tb.send(requests, **send)
    return tb, await tb.finish()


def _rng(salt: int) -> random.Random:
    return random.Random(cocotb.RANDOM_SEED * 1000 + salt)


# ---- tests ---------------------------------------------------------------------------------
@cocotb.test(**TIMEOUT)
async def random_requests(dut):
    """Uniform over the 16 banks, random rows: mostly row conflicts, bank parallelism."""
    _, got = await _run_stream(dut, random_stream(_rng(1), _scale(1500)))
    assert got["row_conflicts"] > 0


@cocotb.test(**TIMEOUT)
async def same_bank_conflicts(dut):
    """One bank, a new row nearly every request: PRE/ACT at tRAS/tRP/tRC pace."""
    requests = same_bank_stream(_rng(2), _scale(100))
    _, got = await _run_stream(dut, requests, gap=0.0)
    assert got["row_conflicts"] >= len(requests) // 2, got


@cocotb.test(**TIMEOUT)
async def one_bank_group(dut):
    """All requests in one bank group: tCCD_L and tRRD_L bound."""
    await _run_stream(dut, one_group_stream(_rng(3), _scale(800)))


@cocotb.test(**TIMEOUT)
async def tfaw_bursts(dut):
    """Bursts of 8 ACTs to 8 different banks: the fifth ACT of a burst waits for tFAW."""
    await _run_stream(dut, tfaw_stream(_rng(4), _scale(480)), gap=0.0, drain_every=8)
    assert coverage_db["rank_scheduler.tfaw_limited_act"].coverage == 1, "no ACT was tFAW-limited"


@cocotb.test(**TIMEOUT)
async def row_hit_streams(dut):
    """One open row per bank group, reads spread over the groups: RDs tCCD_S apart."""
    requests = row_hit_stream(_rng(5), _scale(1500))
    tb, got = await _run_stream(dut, requests, gap=0.0)
    if got["refs"] == 0:  # no refresh closed the rows: exact counts
        banks = len({r.bank_key for r in requests})
        assert (got["row_misses"], got["row_conflicts"], got["pres"]) == (banks, 0, 0), got
        assert got["row_hits"] == len(requests) - banks, got


@cocotb.test(**TIMEOUT)
async def starvation(dut):
    """A row conflict behind a long stream of row hits to its bank is served within
    about ``starvation_limit`` cycles, not after the stream."""
    rng = _rng(6)
    tb = Testbench(dut, seed=cocotb.RANDOM_SEED, gap=0.0)
    await tb.start()
    bg, bank = 1, 2
    hits = [Request(bg, bank, 7, rng.randrange(G.lines_per_row)) for _ in range(_scale(300))]
    victim = Request(bg, bank, 9, 5)
    await tb.send(hits[:4] + [victim] + hits[4:])
    await tb.finish()
    # the victim was the fifth request sent: its completion latency
    t = tb.timing
    limit = tb.params["starvation_limit"]
    victim_latency = tb.latencies[tb._completion_order.index(4)]
    bound = limit + tb.params["depth"] * t.tCCD_L + t.tRAS + t.tRP + t.tRCD + t.tCL + t.tBL + t.tRFC
    assert victim_latency <= bound, f"the conflicting request waited {victim_latency} cycles (bound {bound})"
    assert victim_latency < len(hits) * t.tCCD_L // 2, "the conflicting request waited for the whole stream"


@cocotb.test(**TIMEOUT)
async def mixed_streams(dut):
    """Phases of every stream kind back to back, random gaps."""
    await _run_stream(dut, mix_stream(_rng(7), _scale(2000)))


@cocotb.test(**TIMEOUT)
async def refresh_collisions(dut):
    """Traffic for long enough to cross at least two refreshes while requests are queued."""
    tb = Testbench(dut, seed=cocotb.RANDOM_SEED, gap=0.1)
    await tb.start()
    rng = _rng(8)
    # Cycles of traffic: at least two refreshes fall due (many with a short tREFI).
    target = max(int(2.2 * tb.timing.tREFI), 8000)
    while tb.model.cycle < target:
        if rng.random() < 0.5:
            await tb.send(row_hit_stream(rng, 64, banks_per_group=4))
        else:
            await tb.send(random_stream(rng, 32, rows=3))
    got = await tb.finish()
    assert got["refs"] >= 2, f"only {got['refs']} refreshes in {tb.model.cycle} cycles"
    bins = coverage_db["rank_scheduler.refresh_with_requests_pending"].detailed_coverage
    assert bins[True] > 0, "no refresh found requests pending"


@cocotb.test(**TIMEOUT)
async def coverage_summary(dut):
    """Print the coverage of this process's tests and check the main bins were hit."""
    coverage_db.report_coverage(cocotb.log.info, bins=True)
    missing = []
    for name in MAIN_BINS:
        point = coverage_db[name]
        missing += [f"{name}={b!r}" for b, hits in point.detailed_coverage.items() if not hits]
    coverage.export()  # for the regression-wide report (verif.coverage)
    assert not missing, f"coverage bins never hit: {', '.join(missing)}"


# ---- benchmark -----------------------------------------------------------------------------
async def _bench(dut, name: str, requests) -> dict:
    tb = Testbench(dut, seed=cocotb.RANDOM_SEED, gap=0.0, wrong_hints=0.0)
    await tb.start()
    start = time.perf_counter()
    await tb.send(requests)
    got = await tb.finish()
    wall = time.perf_counter() - start
    cycles = tb.model.cycle - tb.start_cycle  # from the end of the recovery after reset
    figures = {
        "requests": len(requests),
        "cycles": cycles,
        "data_cycles": tb.model.data_cycles,
        "data_bus_utilisation": tb.model.data_cycles / cycles,
        "lookups_per_1000_cycles": 1000 * len(requests) / cycles,
        "refreshes": got["refs"],
        "counters": got,
        "latency_mean": sum(tb.latencies) / len(tb.latencies),
        "latency_max": max(tb.latencies),
        "wall_seconds": wall,
        "sim_cycles_per_second": cycles / wall,
    }
    # Steady state: from the first RD after the first REF to the first RD after the last
    # REF, i.e. over whole refresh periods (refresh overhead included, start-up excluded).
    reads = [r[0] for r in tb.model.reads]
    if len(tb.ref_cycles) >= 2:
        first = next(c for c in reads if c > tb.ref_cycles[0])
        last = next(c for c in reads if c > tb.ref_cycles[-1])
        n = sum(1 for c in reads if first <= c < last)
        figures["steady_state"] = {
            "refresh_periods": len(tb.ref_cycles) - 1,
            "cycles": last - first,
            "data_bus_utilisation": n * tb.timing.tBL / (last - first),
            "lookups_per_1000_cycles": 1000 * n / (last - first),
        }
    path = Path(os.environ[BENCH_ENV])
    results = json.loads(path.read_text()) if path.is_file() else {}
    results[name] = figures
    path.write_text(json.dumps(results, indent=2) + "\n")
    return figures


def _bench_requests() -> int:
    return int(os.environ.get("RECNMP_BENCH_REQUESTS", "8000"))


@cocotb.test(skip=BENCH_ENV not in os.environ)
async def bench_row_hits(dut):
    """(a) Row hits spread over the 4 bank groups, one open row in each of the 16 banks:
    data-bus utilisation over the run."""
    await _bench(dut, "row_hits_16_banks", row_hit_stream(random.Random(11), _bench_requests(), banks_per_group=4))


@cocotb.test(skip=BENCH_ENV not in os.environ)
async def bench_row_hits_4_banks(dut):
    """(a') As (a) with one open row per bank group (4 banks)."""
    await _bench(dut, "row_hits_4_banks", row_hit_stream(random.Random(13), _bench_requests(), banks_per_group=1))


@cocotb.test(skip=BENCH_ENV not in os.environ)
async def bench_random_rows(dut):
    """(b) Random rows over 16 banks: lookups per 1000 cycles (ACT-rate bound)."""
    await _bench(dut, "random_rows", random_stream(random.Random(12), _bench_requests() // 2))
