"""The DDR4 checker inside the simulation agrees with verif/ddr4_checker.py, rule for rule.

Random legal traces (a greedy random controller that asks the Python checker which command
is legal) and the traces the RTL scheduler recorded in a job, then every kind of seeded
violation made from them (commands moved earlier,
dropped, repeated, re-addressed; controller resets; refreshes removed or crowded in): both
checkers must give the same verdict of every trace, the whole message of its first
violation or "ok". Every rule of the checker must be the verdict of some trace (a coverage
bin per rule), so the agreement is shown for each.
"""

import os

import numpy as np
import pytest

from hw.ddr4 import DDR4Timing, DramCommand
from verif.ddr4_checker import DDR4ProtocolChecker, ProtocolError
from verif.sim_checker import RESET, Event, python_verdict, python_verdicts, simulated_verdicts

pytestmark = pytest.mark.rtl

SEED = int(os.environ.get("RECNMP_SEED", "20261204"))
#: Short refresh windows (9 x tREFI = 1800 cycles), so that traces of a few thousand cycles
#: reach the refresh rules; tRC above tRAS + tRP, so that tRC can be broken alone.
TIMING = DDR4Timing(tREFI=200, tRFC=60, tRC=70)
RULES = (
    "command bus",
    "bank state",
    "row address",
    "burst alignment",
    "tRCD",
    "tRP",
    "tRAS",
    "tRC",
    "tCCD_S",
    "tCCD_L",
    "tRRD_S",
    "tRRD_L",
    "tFAW",
    "tRTP",
    "tRFC",
    "tRAS(max)",
    "tREFI",
)


def legal_trace(rng, cycles: int, *, resets: bool = False) -> list[Event]:
    """A random controller's commands that the Python checker accepts, with NOP checks on
    some idle cycles and, with ``resets``, controller resets followed by the precharges."""
    checker = DDR4ProtocolChecker(timing=TIMING)
    trace, open_rows, unknown = [], {}, set()
    for cycle in range(cycles):
        if resets and rng.random() < 0.002:
            checker.controller_reset(cycle)
            trace.append(Event(cycle, RESET))
            unknown = {(g, b) for g in range(4) for b in range(4)}
            continue
        due = cycle // TIMING.tREFI >= checker.refreshes
        g, b = int(rng.integers(0, 4)), int(rng.integers(0, 4))
        if unknown:
            g, b = sorted(unknown)[0]
            proposal = Event(cycle, DramCommand.PRE, g, b)
        elif due and open_rows:
            g, b = next(iter(open_rows))
            proposal = Event(cycle, DramCommand.PRE, g, b)
        elif due:
            proposal = Event(cycle, DramCommand.REF)
        elif (g, b) in open_rows:
            kind = DramCommand.RD if rng.random() < 0.8 else DramCommand.PRE
            proposal = Event(cycle, kind, g, b, open_rows[(g, b)], 8 * int(rng.integers(0, 128)))
        else:
            proposal = Event(cycle, DramCommand.ACT, g, b, int(rng.integers(0, 1 << 16)))
        if rng.random() < 0.2:
            proposal = proposal._replace(kind=DramCommand.NOP)
        try:
            checker.command(cycle, DramCommand(proposal.kind), **_address(proposal))
        except ProtocolError:
            continue
        if proposal.kind == DramCommand.NOP:
            if rng.random() < 0.05:
                trace.append(proposal)
            continue
        trace.append(proposal)
        key = (proposal.bank_group, proposal.bank)
        if proposal.kind == DramCommand.ACT:
            open_rows[key] = proposal.row
        elif proposal.kind == DramCommand.PRE:
            open_rows.pop(key, None)
            unknown.discard(key)
    return trace


def _address(e: Event) -> dict:
    return dict(bank_group=e.bank_group, bank=e.bank, row=e.row, column=e.column)


def mutate(rng, trace: list[Event]) -> list[Event]:
    """One seeded violation (or, by chance, none) made from a legal trace."""
    trace = list(trace)
    commands = [k for k, e in enumerate(trace) if e.kind not in (RESET, DramCommand.NOP)]
    k = int(rng.choice(commands))
    e = trace[k]
    how = rng.choice(
        ["earlier", "earlier", "earlier", "drop", "repeat", "row", "column", "bank", "reset", "no_refresh", "crowd"]
    )
    if how == "earlier":  # tRCD, tRP, tRAS, tRC, tCCD, tRRD, tFAW, tRTP, tRFC; command bus at the previous cycle
        previous = trace[k - 1].cycle if k else 0
        trace[k] = e._replace(cycle=int(rng.integers(previous, e.cycle)) if previous < e.cycle else e.cycle)
    elif how == "drop":  # bank state (a missing PRE or ACT), tREFI (a missing REF)
        del trace[k]
    elif how == "repeat":
        trace.insert(k + 1, e._replace(cycle=e.cycle + int(rng.integers(1, 8))))
    elif how == "row":
        trace[k] = e._replace(row=(e.row + 1) % (1 << 16))
    elif how == "column":
        trace[k] = e._replace(column=(e.column + int(rng.integers(1, 8))) % 1024)
    elif how == "bank":
        trace[k] = e._replace(bank=(e.bank + 1) % 4)
    elif how == "reset":  # the controller forgets its banks
        trace.insert(k, Event(trace[k - 1].cycle if k else 0, RESET))
    elif how == "no_refresh":  # tREFI, and tRAS(max) for rows left open
        trace = [x for x in trace[:k] if True] + [
            x for x in trace[k:] if x.kind not in (DramCommand.REF, DramCommand.PRE)
        ]
        last = trace[-1].cycle if trace else 0
        trace += [Event(last + 500 * n, DramCommand.NOP) for n in range(1, 8)]
    else:  # short traces at one rule's edge
        trace = _edge_trace(str(rng.choice(["refresh", "faw", "rrd_l", "rc"])))
    return trace


def _edge_trace(rule: str) -> list[Event]:
    t = TIMING
    if rule == "refresh":  # REFs as often as tRFC allows: pulled in too far
        return [Event(n * t.tRFC, DramCommand.REF) for n in range(14)]
    if rule == "rc":  # the ACT after a PRE at tRAS, tRP later: tRC (above tRAS + tRP) is not met
        return [Event(0, DramCommand.ACT, 0, 0, 1), Event(t.tRAS, DramCommand.PRE), Event(t.tRAS + t.tRP, 1, 0, 0, 2)]
    # ACTs as often as tRRD_S allows: tFAW over the bank groups in turn, tRRD_L in one group
    turns = rule == "faw"
    return [
        Event(n * t.tRRD_S, DramCommand.ACT, n % 4 if turns else 0, n // 4 if turns else n % 4, n) for n in range(5)
    ]


def test_both_checkers_agree_on_legal_and_violating_traces():
    rng = np.random.default_rng(SEED)
    print(f"seed {SEED}")
    legal = [legal_trace(rng, int(rng.integers(600, 4000)), resets=bool(n % 2)) for n in range(12)]
    assert all(v == "ok" for v in python_verdicts(legal, TIMING)), "the generator makes legal traces"
    traces = legal + [mutate(rng, legal[int(rng.integers(0, len(legal)))]) for _ in range(2000)]
    want = python_verdicts(traces, TIMING)
    got = simulated_verdicts(traces, TIMING)
    for k, (w, g) in enumerate(zip(want, got)):
        assert g == w, f"seed {SEED}, trace {k}: Python says\n  {w}\nthe simulation says\n  {g}"
    hit = {rule: 0 for rule in RULES}
    for verdict in want:
        for rule in RULES:
            hit[rule] += verdict.startswith(f"DDR4 {rule} violation")
    missed = [rule for rule, count in hit.items() if count == 0]
    print({rule: count for rule, count in hit.items()}, sum(v == "ok" for v in want), "ok")
    assert not missed, f"seed {SEED}: no trace broke {missed}"


def test_a_disagreement_would_be_seen():
    """The comparison bites: a trace whose verdicts differ under two timings."""
    trace = [Event(0, DramCommand.ACT, 0, 0, 5), Event(TIMING.tRCD - 1, DramCommand.RD, 0, 0, 5, 0)]
    assert python_verdict(trace, TIMING).startswith("DDR4 tRCD violation at cycle 15")
    looser = DDR4Timing(tREFI=200, tRFC=60, tRCD=15, tRAS=39)
    assert simulated_verdicts([trace], looser) == ["ok"] != python_verdicts([trace], TIMING)


def test_both_checkers_agree_on_recorded_rtl_traces(tmp_path):
    """The commands the RTL scheduler issued in a job (recorded by the harness), per rank,
    and seeded violations made from them, at the PU's own timing."""
    from sw_driver import Device

    rng = np.random.default_rng(SEED + 5)
    dev = Device(backend="rtl", ranks_per_dimm=2, cache_size_bytes=8192, dram_trace=tmp_path / "trace.csv")
    dev.load_table("t", rng.standard_normal((4096, 32)).astype(np.float32))
    lengths = rng.integers(1, 30, 64)
    dev.sls("t", rng.integers(0, 4096, int(lengths.sum())), lengths)
    trace = dev.backend.last_results[0]["trace"]  # cycle, rank, command, bank group, bank, row, column
    recorded = [
        [Event(int(c), int(k), int(g), int(b), int(row), int(col)) for c, r, k, g, b, row, col in trace if r == rank]
        for rank in range(2)
    ]
    assert all(len(t) > 100 for t in recorded)
    timing = dev.timing
    assert python_verdicts(recorded, timing) == ["ok", "ok"]
    traces = recorded + [mutate(rng, recorded[int(rng.integers(0, 2))]) for _ in range(300)]
    want, got = python_verdicts(traces, timing), simulated_verdicts(traces, timing)
    for k, (w, g) in enumerate(zip(want, got)):
        assert g == w, f"seed {SEED + 5}, trace {k}: Python says\n  {w}\nthe simulation says\n  {g}"
    assert sum(v != "ok" for v in want) > 100, "most mutations break a rule"
