"""``recnmp``: the project's command line (``recnmp demo``, ``regress``, ``experiment``, ``sweep``).

``recnmp demo`` generates one DIMM's PU, loads a random table, runs a batch of SLS requests
with some hot rows through the RTL under Verilator, checks every result bit for bit against
the golden model and prints the figures. ``recnmp regress`` runs the regression (pytest).
Also ``python -m sw_driver ...``.
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from hw.user_input import ArgumentParser, UsageError, integer, number, run_command, writable_dir, writable_file

__all__ = ["main"]

OPERATORS = ("sum", "wsum", "sum_q8", "wsum_q8")
REPO_ROOT = Path(__file__).resolve().parent.parent
#: Bounds of ``recnmp demo``: a table the host holds twice in memory (values and device
#: image), and a batch the RTL simulates in minutes, not days.
DEMO_MAX_ROWS = 1 << 20
DEMO_MAX_LOOKUPS = 1 << 20
_MAX_SEED = 2**63 - 1


def _cache_kib(text: str) -> int:
    value = integer(8, 1024)(text)
    if value & (value - 1):
        raise argparse.ArgumentTypeError(f"must be a power of two from 8 to 1024, got {text!r}")
    return value


def _parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="recnmp",
        description=__doc__.split("\n\n")[1].replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parser.subcommands = commands.choices  # for errors named by their subcommand

    demo = commands.add_parser(
        "demo",
        help="run SLS batches through the generated PU (RTL) and check them",
        description="Generate one DIMM's PU (Verilog, built with Verilator on first use and cached), "
        "load a random table, run a batch of SLS requests with some hot rows on the RTL with a "
        "DDR4 model and protocol checker behind every rank, check every result bit for bit "
        "against the golden model, and print cycles, lookups per 1000 cycles, the RankCache "
        "hit rate, hint mismatches and the speedup over the host-baseline estimate.",
    )
    demo.add_argument("--ranks", type=int, choices=(1, 2, 4), default=2, help="ranks per DIMM (default 2)")
    demo.add_argument(
        "--dimms",
        type=int,
        choices=(1, 2, 4, 8),
        default=1,
        help="DIMMs on the channel; each runs its own simulation (default 1)",
    )
    demo.add_argument(
        "--op",
        choices=OPERATORS,
        default="sum",
        help="operator: fp32 sum or weighted sum, 8-bit row-wise quantised sum or weighted sum (default sum)",
    )
    demo.add_argument(
        "--dim",
        type=integer(1, 256),
        default=32,
        help="D, elements per row: fp32 up to 112, 8-bit up to 256 (default 32 = 128 B rows)",
    )
    demo.add_argument(
        "--rows",
        type=integer(1, DEMO_MAX_ROWS),
        default=4096,
        help=f"rows of the table, up to {DEMO_MAX_ROWS} (default 4096)",
    )
    demo.add_argument(
        "--batch",
        type=integer(1, DEMO_MAX_LOOKUPS),
        default=32,
        help=f"bags (samples) in the batch; batch x pooling up to {DEMO_MAX_LOOKUPS} lookups (default 32)",
    )
    demo.add_argument("--pooling", type=integer(1, DEMO_MAX_LOOKUPS), default=20, help="lookups per bag (default 20)")
    demo.add_argument(
        "--hot-rows",
        type=integer(1, DEMO_MAX_ROWS),
        default=64,
        help="rows that take --hot-share of the lookups (default 64)",
    )
    demo.add_argument(
        "--hot-share", type=number(0.0, 1.0), default=0.5, help="share of lookups to hot rows, 0 to 1 (default 0.5)"
    )
    demo.add_argument(
        "--hot-threshold",
        type=integer(0, DEMO_MAX_LOOKUPS),
        default=2,
        help="hot-entry profiling: cache rows used at least this often in the batch; 0 caches every row (default 2)",
    )
    demo.add_argument(
        "--cache-kib",
        type=_cache_kib,
        default=128,
        help="RankCache size per rank in KiB, a power of two from 8 to 1024 (default 128)",
    )
    demo.add_argument(
        "--calls",
        type=integer(1, DEMO_MAX_LOOKUPS),
        default=4,
        help="split the batch into this many calls (progress is shown per call; default 4)",
    )
    demo.add_argument(
        "--seed", type=integer(0, _MAX_SEED), default=1, help="random seed of table and indices (default 1)"
    )
    demo.add_argument(
        "--waves", action="store_true", help="record FST waveforms (a separate build); the file is printed"
    )
    demo.add_argument("--dram-trace", metavar="PATH", help="write every DRAM command of the last call as CSV to PATH")

    regress = commands.add_parser(
        "regress",
        help="run the regression (pytest); FST waveforms for failing tests",
        description="Run the project's pytest regression. With --waves, tests that fail are run again with "
        "FST waveform recording and the waveform files are listed.",
    )
    regress.add_argument(
        "--seed", type=integer(0, _MAX_SEED), help="seed of every random test (RECNMP_SEED); default: fixed seeds"
    )
    regress.add_argument("-k", dest="select", metavar="EXPR", help="select tests by name (pytest -k)")
    regress.add_argument(
        "-m", dest="marker", metavar="MARKEXPR", help="select by marker, e.g. 'rtl' or 'not rtl' (pytest -m)"
    )
    regress.add_argument(
        "-n", dest="workers", type=integer(0, 256), default=2, help="parallel workers, 0 for none (default 2)"
    )
    regress.add_argument("--waves", action="store_true", help="rerun failing tests with FST waveforms")
    regress.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")

    from sim_models import experiments

    experiment = commands.add_parser(
        "experiment",
        help="run one of the paper's experiments on the performance models (CSV, PNG, markdown)",
        description="Run one of the paper's experiments on the performance models (sim_models.experiments): "
        "ranks (base-design speedup vs ranks, page colouring off and on), ladder (the optimisation ladder at "
        "8 ranks), hit_rate (RankCache hit rate vs size), energy (memory energy saving), sensitivity (vector "
        "size, pooling, hot-entry threshold). Writes NAME.csv, NAME.png and NAME.md (ours beside the paper's).",
    )
    experiments.add_experiment_arguments(experiment)
    sweep = commands.add_parser(
        "sweep",
        help="run a grid of configurations on the performance models, locally or on a Dask cluster",
        description="Run every combination of the --grid axes (fields of sim_models.experiments.RunConfig) on "
        "the performance models, in parallel on the local cores, or on a Dask distributed cluster with "
        "--scheduler, and write one CSV row per configuration.",
    )
    experiments.add_sweep_arguments(sweep)

    from verif.formal import cli as formal_cli

    formal = commands.add_parser(
        "formal",
        help="run the formal proofs (SymbiYosys): DDR4 legality, refresh deadline, no loss, stream rules",
        description="Run the formal properties (docs/formal.md) with SymbiYosys and z3, one task at a time, and "
        "print each property's result; a counterexample is written as <property>.vcd.",
    )
    formal_cli.add_arguments(formal)
    return parser


def _demo_indices(rng, args) -> tuple[np.ndarray, np.ndarray]:
    count = args.batch * args.pooling
    hot = rng.choice(args.rows, min(args.hot_rows, args.rows), replace=False)
    indices = rng.integers(0, args.rows, count)
    take_hot = rng.random(count) < args.hot_share
    indices[take_hot] = rng.choice(hot, int(take_hot.sum()))
    return indices.astype(np.int64), np.full(args.batch, args.pooling, np.int64)


def demo(args) -> int:
    from tqdm import tqdm

    from sim_models.sls import quantize_fused8

    from . import Device

    # Everything a user typed is checked before the Verilator build and the simulation.
    if args.batch * args.pooling > DEMO_MAX_LOOKUPS:
        raise UsageError(
            f"--batch {args.batch} x --pooling {args.pooling} is {args.batch * args.pooling} lookups, "
            f"more than the demo's {DEMO_MAX_LOOKUPS}"
        )
    if args.dram_trace is not None:
        writable_file("--dram-trace", args.dram_trace)
    from verif.runner import build_root

    writable_dir("the build folder (RECNMP_SIM_BUILD)", build_root())
    if args.waves:
        os.environ["WAVES"] = "1"
    rng = np.random.default_rng(args.seed)
    values = rng.standard_normal((args.rows, args.dim)).astype(np.float32)
    table = quantize_fused8(values) if args.op.endswith("_q8") else values
    weighted = args.op.startswith("w")
    config = dict(
        dimms_per_channel=args.dimms,
        ranks_per_dimm=args.ranks,
        cache_size_bytes=args.cache_kib * 1024,
        hot_entry_threshold=args.hot_threshold or None,
    )
    rtl = Device(backend="rtl", dram_trace=args.dram_trace, **config)
    golden = Device(backend="golden", **config)
    for dev in (rtl, golden):
        dev.load_table("demo", table)
    indices, lengths = _demo_indices(rng, args)
    weights = rng.standard_normal(indices.size).astype(np.float32) if weighted else None
    print(
        f"recnmp demo: {args.dimms} DIMM(s) x {args.ranks} rank(s), {args.op}, D={args.dim}, "
        f"{args.batch} bags x {args.pooling} lookups ({args.hot_share:.0%} to {args.hot_rows} hot rows), "
        f"seed {args.seed}"
    )
    print("  (the first run generates and builds the PU with Verilator: a minute or two; later runs reuse it)")
    totals = dict(cycles=0, baseline=0, lookups=0, hits=0, lines=0, mismatches=0)
    bags = np.array_split(np.arange(args.batch), min(args.calls, args.batch))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    wall = time.perf_counter()
    for part in tqdm(bags, desc="calls", unit="call", disable=None):
        lo, hi = offsets[part[0]], offsets[part[-1] + 1]
        request = ("demo", indices[lo:hi], lengths[part], None if weights is None else weights[lo:hi])
        got = rtl.run([request])[0]
        want = golden.run([request])[0]
        if got.tobytes() != want.tobytes():
            bad = np.argwhere(got.view(np.uint32) != want.view(np.uint32))
            print(
                f"MISMATCH: {len(bad)} elements differ from the golden model, first at bag "
                f"{part[0] + bad[0][0]} element {bad[0][1]}",
                file=sys.stderr,
            )
            return 1
        r = rtl.report
        totals["cycles"] += r.cycles
        totals["baseline"] += r.baseline_cycles
        totals["lookups"] += r.lookups
        totals["lines"] += r.lines
        totals["hits"] += r.cache_hits
        totals["mismatches"] += r.hint_mismatches
    wall = time.perf_counter() - wall
    print(f"results: bit-exact with the golden model ({args.batch} bags)")
    print(f"cycles: {totals['cycles']} DRAM cycles ({totals['cycles'] * 0.833e-3:.1f} us at DDR4-2400)")
    print(f"lookups per 1000 cycles: {1000 * totals['lookups'] / totals['cycles']:.1f}")
    print(f"RankCache hit rate: {totals['hits'] / max(totals['lines'], 1):.1%} of {totals['lines']} lines")
    print(f"hint mismatches: {totals['mismatches']}")
    print(f"host-baseline estimate: {totals['baseline']} cycles; speedup {totals['baseline'] / totals['cycles']:.2f}x")
    print(f"wall time: {wall:.1f} s")
    if args.dram_trace:
        print(f"DRAM trace of the last call: {args.dram_trace}")
    if args.waves:
        pattern = REPO_ROOT / "sim_build" / "dimm_nmp-*-waves" / "runs" / "*" / "*.fst"
        print("waveforms:", *sorted(glob.glob(str(pattern))))
    return 0


def regress(args) -> int:
    if args.waves:
        from verif.runner import build_root

        writable_dir("the build folder of --waves (RECNMP_SIM_BUILD)", build_root())
    command = [sys.executable, "-m", "pytest", "-n", str(args.workers)]
    if args.select:
        command += ["-k", args.select]
    if args.marker:
        command += ["-m", args.marker]
    command += args.pytest_args
    env = dict(os.environ)
    if args.seed is not None:
        env["RECNMP_SEED"] = str(args.seed)
    print("recnmp regress:", " ".join(command), flush=True)
    status = subprocess.call(command, cwd=REPO_ROOT, env=env)
    if status == 4:  # pytest's usage error: a bad -k, -m or pytest argument
        print("recnmp regress: error: pytest refused its arguments (see above)", file=sys.stderr)
        return 2
    if status not in (0, 5) and args.waves:
        started = time.time()
        print("recnmp regress: running the failed tests again with FST waveforms", flush=True)
        subprocess.call(
            [sys.executable, "-m", "pytest", "--lf", "-p", "no:xdist"], cwd=REPO_ROOT, env={**env, "WAVES": "1"}
        )
        files = [
            f
            for f in glob.glob(str(REPO_ROOT / "sim_build" / "*-waves" / "runs" / "*" / "*.fst"))
            if os.path.getmtime(f) >= started
        ]
        print("waveforms of the failed tests:", *sorted(files), sep="\n  ")
    return status


def main(argv: list[str] | None = None) -> int:
    from sim_models import experiments

    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        parser.subcommands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    command = {
        "demo": demo,
        "regress": regress,
        "experiment": experiments.experiment_command,
        "sweep": experiments.sweep_command,
        "formal": _formal,
    }[args.command]
    return run_command(f"{parser.prog} {args.command}", lambda: command(args))


def _formal(args) -> int:
    from verif.formal import cli as formal_cli

    return formal_cli.run(args)
