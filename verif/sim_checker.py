"""The two DDR4 protocol checkers side by side: Python's and the one inside the simulation.

:class:`verif.ddr4_checker.DDR4ProtocolChecker` is the reference; ``recnmp_sim_pkg::Ddr4Checker``
(``verif/hdl/recnmp_sim_pkg.sv``) is what the simulation-only harness runs behind every rank
(:mod:`verif.dimm_harness`). Both take a *trace*: events in cycle order, each a command
(``NOP`` checks the refresh deadlines on an idle cycle) or a controller reset. Both verdicts
of a trace are its first violation's whole message, or ``"ok"``:

* :func:`python_verdicts` runs the Python checker;
* :func:`simulated_verdicts` replays every trace through the SystemVerilog checker in one
  simulation (``verif/hdl/recnmp_checker_harness.sv``, built once and reused).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import NamedTuple

from hw.ddr4 import DDR4Geometry, DDR4Timing, DramCommand

from .ddr4_checker import DDR4ProtocolChecker, ProtocolError

__all__ = ["RESET", "Event", "python_verdicts", "simulated_verdicts"]

#: The kind of a controller-reset event (commands are their ``DramCommand`` codes).
RESET = 7
CHECKER_HARNESS = Path(__file__).resolve().parent / "hdl" / "recnmp_checker_harness.sv"


class Event(NamedTuple):
    """One event of a trace: a command (``kind`` a ``DramCommand``) or a reset (``kind == RESET``)."""

    cycle: int
    kind: int
    bank_group: int = 0
    bank: int = 0
    row: int = 0
    column: int = 0


def python_verdict(trace: Sequence[Event], timing: DDR4Timing, geometry: DDR4Geometry = DDR4Geometry()) -> str:
    """The reference checker's verdict of one trace: its first violation's message, or ``"ok"``."""
    checker = DDR4ProtocolChecker(timing=timing, geometry=geometry)
    try:
        for e in trace:
            if e.kind == RESET:
                checker.controller_reset(e.cycle)
            else:
                checker.command(
                    e.cycle, DramCommand(e.kind), bank_group=e.bank_group, bank=e.bank, row=e.row, column=e.column
                )
    except ProtocolError as error:
        return str(error)
    return "ok"


def python_verdicts(traces: Sequence[Sequence[Event]], timing: DDR4Timing) -> list[str]:
    return [python_verdict(t, timing) for t in traces]


#: Bits of each field of an event word (recnmp_checker_harness.sv).
_WIDTHS = {"trace": 16, "cycle": 40, "kind": 8, "bank_group": 8, "bank": 8, "row": 24, "column": 24}


def _pack(trace: int, e: Event) -> int:
    for name, value in (("trace", trace), *zip(Event._fields, e)):
        if not 0 <= value < 1 << _WIDTHS[name]:
            raise ValueError(f"event {e} of trace {trace}: {name} {value} does not fit in {_WIDTHS[name]} bits")
    return trace << 112 | e.kind << 104 | e.cycle << 64 | e.bank_group << 56 | e.bank << 48 | e.row << 24 | e.column


def simulated_verdicts(traces: Sequence[Sequence[Event]], timing: DDR4Timing) -> list[str]:
    """The in-simulation checker's verdict of every trace (one simulation for all of them)."""
    from .dimm_harness import SIM_PACKAGE
    from .runner import _locked, build_root, build_simulation, run_simulation

    build_dir = build_root() / "checker-harness"
    with _locked(build_dir.with_suffix(".lock")):  # pytest-xdist workers share the build
        executable = build_simulation(
            "the DDR4 checker harness", [SIM_PACKAGE, CHECKER_HARNESS], "recnmp_checker_harness", build_dir=build_dir
        )
    with tempfile.TemporaryDirectory(dir=build_root()) as tmp:
        events = Path(tmp) / "events.hex"
        words = [_pack(k, e) for k, trace in enumerate(traces) for e in trace]
        events.write_text("".join(f"{w:032x}\n" for w in words))
        out = Path(tmp) / "verdicts.txt"
        plusargs = [f"+EVENTS={events}", f"+OUT={out}", f"+COUNT={len(words)}"]
        plusargs += [f"+{f.name}={getattr(timing, f.name)}" for f in fields(DDR4Timing)]
        run_simulation(executable, plusargs, Path(tmp) / "run", name="checker")
        verdicts = dict.fromkeys(range(len(traces)), "ok")  # a trace without events passes
        for line in out.read_text().splitlines():
            trace, _, verdict = line.partition(" ")
            verdicts[int(trace)] = verdict
    return [verdicts[k] for k in range(len(traces))]
