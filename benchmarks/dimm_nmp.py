"""DIMM-NMP throughput on random rows, through the driver's ``rtl`` backend (Verilator harness).

Usage: python benchmarks/dimm_nmp.py [--lookups N] [--ranks 1 2 4]

For each number of ranks and each row size (64 B and 256 B fp32 rows), one batch of random
lookups over a large table (every lookup a different DRAM row, spread over every bank of
every rank by the default address map), no caching (locality 0: hot-entry profiling with a
threshold no row reaches), bags of 80 lookups, 8 bags per packet (the paper's setup).
Prints cycles per lookup and lookups per 1000 DRAM cycles of the DIMM, against the per-rank
physical limits (four ACTs per tFAW for rows that each need an ACT; the data bus, tBL cycles
per 64 B line), and the simulation speed of the rtl backend in DRAM cycles per second: of the
whole call (``Device.sls``: compiling, writing the job, the simulation with every DRAM command
checked and its results read back) and of the simulator process alone. Then the overhead of
a call: the wall time of a call of one bag of one lookup.
The first run of each configuration builds it with Verilator (a minute or two).
"""

import argparse
import time

import numpy as np

from sw_driver import Device


def measure(ranks: int, dim: int, lookups: int, seed: int, pooling: int = 80) -> dict:
    rng = np.random.default_rng(seed)
    dev = Device(ranks_per_dimm=ranks, backend="rtl", cache_size_bytes=8192, hot_entry_threshold=1 << 30)
    rows = 1 << 16
    dev.load_table("t", rng.standard_normal((rows, dim)).astype(np.float32))
    bags = -(-lookups // pooling)
    indices = rng.integers(0, rows, bags * pooling)
    start = time.perf_counter()
    dev.sls("t", indices, np.full(bags, pooling))
    wall = time.perf_counter() - start
    r = dev.report
    simulated = dev.backend.last_results[0]["wall_seconds"]  # the run itself, without start-up
    return {"cycles": r.cycles, "lookups": r.lookups, "lines": r.lines, "wall": wall, "simulated": simulated}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=20480, help="lookups per measurement (default 20480)")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4], choices=(1, 2, 4))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    t = Device().timing
    for ranks in args.ranks:
        for dim, row_bytes in ((16, 64), (64, 256)):
            m = measure(ranks, dim, args.lookups, args.seed)
            lines_per_lookup = row_bytes // 64
            # Per rank: one ACT per lookup (4 per tFAW), and lines_per_lookup bursts of tBL cycles.
            limit = ranks * 1000 / max(t.tFAW / 4, lines_per_lookup * t.tBL)
            rate = 1000 * m["lookups"] / m["cycles"]
            print(
                f"{ranks} rank(s), {row_bytes:3d} B rows: {m['lookups']} lookups in {m['cycles']} cycles: "
                f"{m['cycles'] / m['lookups']:.2f} cycles/lookup, {rate:6.1f} lookups/1000 cycles "
                f"(physical limit {limit:.1f}, {100 * rate / limit:.0f} %); "
                f"simulation {m['cycles'] / m['wall']:,.0f} DRAM cycles/s for the call "
                f"({m['wall']:.1f} s), {m['cycles'] / m['simulated']:,.0f} for the simulator alone"
            )
        overhead = measure(ranks, 16, 1, args.seed, pooling=1)
        print(f"{ranks} rank(s): a call of one lookup takes {overhead['wall']:.2f} s (the overhead of a call)")


if __name__ == "__main__":
    main()
