"""Speed of the host-baseline DDR4 model (sim_models.host_baseline), in simulated line reads per second.

Usage: python benchmarks/host_baseline.py [--reads N] [--tables T --bags B --pooling P] [--repeat R] [--json FILE]

(a) numba compile time: the model's kernel compiled from scratch (an empty numba cache,
in a fresh interpreter) and loaded from the cache (a second fresh interpreter).
(b) random rows: N reads, each to a random row of a random bank, on one rank (tFAW-bound)
and on 4 channels x 2 ranks.
(c) the RMC2-large batch: T tables of 1 M rows of 128 B vectors (2 lines each), B bags of
P lookups per table, random rows, laid out by the driver's placement over 4 channels x
1 DIMM x 2 ranks (default address map), expanded to line reads by
``sim_models.host_reads.host_reads``. Loading 64 tables of 1 M rows into a
``sw_driver.Device`` would take 8 GiB of table data plus the device image, so the
lookups are built directly with the driver's own ``Placement`` (frames, no data) and
``TablePlacement.locate``: the same coordinates ``Device.compile`` would give them, in
the compiler's stream order (table-aware: table by table, bag by bag).
Every figure is the best of R runs; the model runs on one core.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from hw.ddr4 import DDR4Timing
from sim_models.host_baseline import host_baseline
from sim_models.host_reads import HOST_READ_DTYPE, host_reads
from sw_driver.address_map import AddressMap
from sw_driver.compiler import LOOKUP_DTYPE
from sw_driver.placement import Placement, TableLayout

_COMPILE_PROBE = """
import time, numpy as np
t0 = time.perf_counter()
from sim_models.host_baseline import host_baseline
from sim_models.host_reads import HOST_READ_DTYPE
t1 = time.perf_counter()
host_baseline(np.zeros(1, HOST_READ_DTYPE))
print(t1 - t0, time.perf_counter() - t1)
"""


def compile_times() -> dict:
    """(import, first call) seconds in a fresh interpreter with an empty numba cache, then
    again with the cache that run wrote."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for name in ("cold", "cached"):
            text = subprocess.run(
                [sys.executable, "-c", _COMPILE_PROBE], env=env, check=True, capture_output=True, text=True
            ).stdout
            imp, first = map(float, text.split())
            out[name] = {"import_s": imp, "first_call_s": first}
    return out


def random_reads(n: int, *, channels: int, ranks: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    reads = np.zeros(n, HOST_READ_DTYPE)
    reads["channel"] = rng.integers(0, channels, n)
    reads["rank"] = rng.integers(0, ranks, n)
    reads["bank_group"] = rng.integers(0, 4, n)
    reads["bank"] = rng.integers(0, 4, n)
    reads["row"] = rng.integers(0, 1 << 16, n)
    reads["line"] = rng.integers(0, 128, n)
    return reads


def rmc2_large_reads(tables: int, bags: int, pooling: int, rows: int, seed: int) -> np.ndarray:
    """The host's line reads of one batch (module docstring, (c))."""
    amap = AddressMap(channels=4, dimms_per_channel=1, ranks_per_dimm=2)
    placement = Placement(amap)
    layout = TableLayout(quantized=False, rows=rows, dim=32, row_bytes=128, vsize=2, elements=32)
    rng = np.random.default_rng(seed)
    parts = []
    for t in range(tables):
        table = placement.plan(f"t{t}", layout)
        placement.commit(table)
        indices = rng.integers(0, rows, bags * pooling)
        where = table.locate(indices)
        part = np.zeros(indices.size, LOOKUP_DTYPE)
        part["index"] = indices
        part["channel"] = where["channel"]
        part["dimm"] = amap.global_dimm(channel=where["channel"], dimm=where["dimm"])
        for name in ("rank", "bank_group", "bank", "row", "column"):
            part[name] = where[name]
        part["vsize"] = layout.vsize
        parts.append(part)
    return host_reads(np.concatenate(parts), amap)


def best(fn, repeat: int):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=1_000_000, help="reads of the random-row runs (default 1M)")
    parser.add_argument("--tables", type=int, default=64, help="RMC2-large tables (default 64)")
    parser.add_argument("--bags", type=int, default=256, help="bags per table: the batch (default 256)")
    parser.add_argument("--pooling", type=int, default=80, help="lookups per bag (default 80)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per table (default 1M)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the best is reported")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    t = DDR4Timing()
    results = {"timing": t.as_dict(), "seed": args.seed}

    results["compile"] = ct = compile_times()
    print(
        f"(a) numba compile: {ct['cold']['first_call_s']:.2f} s on first use with an empty cache "
        f"(import {ct['cold']['import_s']:.2f} s); {ct['cached']['first_call_s']:.2f} s from the cache"
    )
    host_baseline(np.zeros(1, HOST_READ_DTYPE))  # load the kernel in this process

    for name, channels, ranks in (("random_rows_1_rank", 1, 1), ("random_rows_4ch_2ranks", 4, 2)):
        reads = random_reads(args.reads, channels=channels, ranks=ranks, seed=args.seed)
        seconds, r = best(lambda reads=reads: host_baseline(reads), args.repeat)
        results[name] = fig = {
            "reads": r.reads,
            "seconds": seconds,
            "reads_per_second": r.reads / seconds,
            "cycles": r.cycles,
            "acts_per_1000_cycles_per_rank": 1000 * r.commands[(0, 0)]["ACT"] / r.channel_cycles[0],
            "data_bus_utilisation": float(np.mean(r.data_bus_utilisation)),
        }
        print(
            f"(b) {name:23s} {fig['reads']:>9,d} reads in {seconds:6.2f} s: {fig['reads_per_second']:>9,.0f} reads/s"
            f"  ({r.cycles:,d} cycles; rank 0: {fig['acts_per_1000_cycles_per_rank']:.1f} ACT per 1000 cycles,"
            f" tFAW bound {4000 / t.tFAW:.1f}; data bus {100 * fig['data_bus_utilisation']:.1f} %)"
        )

    start = time.perf_counter()
    reads = rmc2_large_reads(args.tables, args.bags, args.pooling, args.rows, args.seed)
    build = time.perf_counter() - start
    seconds, r = best(lambda: host_baseline(reads), args.repeat)
    lookups = args.tables * args.bags * args.pooling
    results["rmc2_large"] = fig = {
        "lookups": lookups,
        "reads": r.reads,
        "stream_build_seconds": build,
        "seconds": seconds,
        "reads_per_second": r.reads / seconds,
        "lookups_per_second": lookups / seconds,
        "cycles": r.cycles,
        "channel_cycles": list(r.channel_cycles),
        "data_bus_utilisation": list(r.data_bus_utilisation),
        "row_hits": r.row_hits,
        "row_misses": r.row_misses,
        "row_conflicts": r.row_conflicts,
        "bandwidth_GBps_at_1200MHz": r.bytes_read / r.cycles * 1.2,
    }
    print(
        f"(c) RMC2-large {args.tables} tables x {args.bags} bags x {args.pooling} lookups = {lookups:,d} lookups, "
        f"{r.reads:,d} line reads (stream built in {build:.1f} s)"
    )
    print(
        f"    model {seconds:.2f} s: {fig['reads_per_second']:,.0f} reads/s,"
        f" {fig['lookups_per_second']:,.0f} lookups/s;"
        f" {r.cycles:,d} DRAM cycles ({r.cycles / 1.2e6:.2f} ms at DDR4-2400),"
        f" {fig['bandwidth_GBps_at_1200MHz']:.1f} GB/s of 76.8,"
        f" data bus {', '.join(f'{100 * u:.1f}' for u in r.data_bus_utilisation)} % per channel;"
        f" hits/misses/conflicts {r.row_hits:,d}/{r.row_misses:,d}/{r.row_conflicts:,d}"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
