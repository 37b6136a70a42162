"""``recnmp formal [NAME...]``: run the formal proofs and print each property's result."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from hw.user_input import UsageError, writable_dir

from .registry import PROPERTIES, run_check, run_mutation
from .runner import default_work_dir

__all__ = ["SOLVERS", "add_arguments", "run"]

#: The SMT solvers the SymbiYosys tasks are run with (both installed by the project).
SOLVERS = ("yices", "z3")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``recnmp formal``."""
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"properties to run (default: all): {', '.join(PROPERTIES)}",
    )
    parser.add_argument("--list", action="store_true", help="list the properties and what they prove, then exit")
    parser.add_argument(
        "--deep",
        action="store_true",
        help="also run the deep bounded model checks (for example two refresh intervals of the scheduler; "
        "tens of minutes with z3)",
    )
    parser.add_argument(
        "--mutations",
        action="store_true",
        help="also run every property's mutations (each must violate its property)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for counterexample waveforms, <property>.vcd (default: traces/ in the work folder)",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="SymbiYosys work folder (default $RECNMP_FORMAL_BUILD or <tmp>/recnmp-formal)",
    )
    parser.add_argument(
        "--solver", choices=SOLVERS, default="yices", help="SMT solver of the smtbmc engine: yices (default) or z3"
    )


def run(args: argparse.Namespace) -> int:
    """Run the selected properties one task at a time; 0 when every one passed.

    Raises ``UsageError`` (before any task runs) for an unknown property, solver or an
    unwritable folder.
    """
    if args.list:
        for prop in PROPERTIES.values():
            python = ["python check" + (" (--deep)" if prop.deep_run else "")] if prop.run else []
            modes = ", ".join([f"{c.mode} {c.depth}" for c in prop.checks] + python)
            print(f"{prop.name}: {prop.summary} [{modes}; {len(prop.mutations)} mutations]")
        return 0
    unknown = [n for n in args.names if n not in PROPERTIES]
    if unknown:
        raise UsageError(f"unknown property {', '.join(map(repr, unknown))}; known: {', '.join(PROPERTIES)}")
    if args.solver not in SOLVERS:  # the command line's choices; this is for callers of run()
        raise UsageError(f"--solver must be one of {', '.join(SOLVERS)}, got {args.solver!r}")
    work_label = "--work-dir" if args.work_dir else "the work folder ($RECNMP_FORMAL_BUILD or the default)"
    work_dir = writable_dir(work_label, args.work_dir or default_work_dir())
    trace_label = "--out" if args.out else f"the counterexample folder (--out, default {work_dir / 'traces'})"
    trace_dir = writable_dir(trace_label, args.out or work_dir / "traces")
    failed = []
    start = time.monotonic()
    for name in args.names or list(PROPERTIES):
        prop = PROPERTIES[name]
        checks = prop.checks + (prop.deep_checks if args.deep else ())
        if prop.run is not None and (not prop.deep_run or args.deep or name in args.names):
            result = prop.run(work_dir=work_dir, trace_dir=trace_dir, solver=args.solver)
            print(f"{name}: {result.summary()}", flush=True)
            if not result.passed:
                failed.append(name)
        for check in checks:
            result = run_check(prop, check, work_dir=work_dir, trace_dir=trace_dir, solver=args.solver)
            print(f"{name}: {result.summary()}", flush=True)
            if not result.passed:
                failed.append(name)
        if args.mutations:
            for mutation in prop.mutations:
                result = run_mutation(prop, mutation, work_dir=work_dir, trace_dir=None, solver=args.solver)
                bites = result.passed
                verdict = f"bites ({mutation.breaks} violated)" if bites else f"DOES NOT BITE: {result.summary()}"
                print(f"{name} / mutation {mutation.name}: {verdict} in {result.seconds:.1f} s", flush=True)
                if not bites:
                    failed.append(f"{name}/{mutation.name}")
    verdict = "all passed" if not failed else "FAILED: " + ", ".join(failed)
    print(f"formal: {verdict} in {time.monotonic() - start:.0f} s")
    return 1 if failed else 0
