"""Benchmark the rank scheduler RTL under cocotb + Verilator against the DDR4 model.

Usage: python benchmarks/rank_scheduler.py [--requests N] [--json FILE]

Runs the ``bench_*`` tests of ``verif.tb.rank_scheduler`` on the default build (DDR4-2400
timing, depth 16) and prints:

(a) row hits spread over the 4 bank groups (one open row in each of 16 banks, and in one
    bank per group): data-bus utilisation = data cycles / total cycles over the run, and
    over whole refresh periods (steady state, start-up excluded);
(b) random rows over the 16 banks: 64 B lookups per 1000 cycles, against the ACT-rate
    ceiling set by tFAW (4 ACTs per tFAW) and tRC (16 banks per tRC);
(c) simulated DRAM cycles per wall-clock second under cocotb.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from hw.ddr4 import DDR4Geometry, DDR4Timing
from verif.tb import rank_scheduler as tb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests",
        type=int,
        default=8000,
        help="requests per row-hit stream; the random stream gets half (default 8000)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        start = time.perf_counter()
        tb.run(
            "default",
            testcase=("bench_row_hits", "bench_row_hits_4_banks", "bench_random_rows"),
            name="benchmark",
            seed=1,
            extra_env={tb.BENCH_ENV: str(out), "RECNMP_BENCH_REQUESTS": str(args.requests)},
        )
        wall = time.perf_counter() - start
        results = json.loads(out.read_text())

    t, g = DDR4Timing(), DDR4Geometry()
    faw_limit = 1000 * 4 / t.tFAW
    trc_limit = 1000 * g.banks / t.tRC
    print(f"DDR4-2400 timing, tREFI {t.tREFI}, tRFC {t.tRFC}; {args.requests} requests per row-hit stream")
    for name in ("row_hits_16_banks", "row_hits_4_banks"):
        r = results[name]
        line = (
            f"(a) {name:18s} data-bus utilisation {100 * r['data_bus_utilisation']:6.2f} % over "
            f"{r['cycles']} cycles ({r['refreshes']} refreshes)"
        )
        if "steady_state" in r:
            s = r["steady_state"]
            line += f"; {100 * s['data_bus_utilisation']:6.2f} % over {s['refresh_periods']} whole refresh period(s)"
        print(line)
    r = results["random_rows"]
    print(
        f"(b) random rows        {r['lookups_per_1000_cycles']:6.1f} lookups per 1000 cycles over "
        f"{r['cycles']} cycles ({r['refreshes']} refreshes)",
        end="",
    )
    if "steady_state" in r:
        print(f"; {r['steady_state']['lookups_per_1000_cycles']:6.1f} over whole refresh periods", end="")
    bound = min(faw_limit, trc_limit)
    refreshed = bound * (1 - t.tRFC / t.tREFI)  # no ACT during tRFC
    print(
        f"\n    ceiling: tFAW {faw_limit:.1f}, tRC {trc_limit:.1f} per 1000 cycles; "
        f"{refreshed:.1f} with tRFC / tREFI taken out -> "
        f"{100 * r['lookups_per_1000_cycles'] / bound:.1f} % of the tFAW bound"
    )
    speeds = ", ".join(f"{k} {v['sim_cycles_per_second']:,.0f}" for k, v in results.items())
    cycles = sum(v["cycles"] for v in results.values())
    print(
        f"(c) simulated cycles per second under cocotb: {speeds}; {cycles} cycles, "
        f"{wall:.1f} s wall in all (build included when not cached)"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
