"""Rank-NMP throughput under cocotb + Verilator, with the DDR4 DRAM model.

Usage: python benchmarks/rank_nmp.py [--lookups N]

Packets as in the paper: bags of 80 lookups, 8 bags per packet, locality 0.
(a) SUM lookups of 64 B rows laid out as row hits alternating the 4 bank groups: DRAM data
bus and datapath utilisation over the busy window (target >= 95%), once in a run that ends
before the first refresh and once over a long run (each refresh costs ~460 cycles of data
bus: tRTP + tRP + tRFC + tRCD, 4.9% of tREFI).
(b) the same on rows scattered over random DRAM rows of the 16 banks: lookups per 1000
cycles, against the DDR4 limits (tFAW: 4 ACTs per tFAW; tRC per bank).
(c) 8-bit rows of 64 B (D = 56), unweighted and weighted: cycles per lookup (the datapath
takes ``lanes`` bytes per cycle, so 8-bit rows are datapath-bound).
(d) simulated DRAM cycles per second under cocotb.
"""

import argparse
import json
import tempfile
from pathlib import Path

from verif.runner import run_block_tests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lookups",
        type=int,
        default=6400,
        help="lookups of the long row-hit run (default 6400 = 10 packets of 8 bags of 80)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        run_block_tests(
            "rank_nmp",
            "verif.tb.rank_nmp",
            testcase="throughput_benchmark",
            extra_env={"RECNMP_BENCH_OUT": str(out), "RECNMP_BENCH_LOOKUPS": str(args.lookups)},
            name="throughput_benchmark",
        )
        results = json.loads(out.read_text())
    t = results.pop("timing")
    faw_limit = 1000 * 4 / t["tFAW"]
    trc_limit = 1000 * 16 / t["tRC"]
    for name, r in results.items():
        print(f"{name}: {r['lookups']} lookups in {r['cycles']} cycles, {r['refreshes']} refreshes")
        print(f"  DRAM data bus busy   {100 * r['data_bus_utilisation']:6.1f} %")
        print(f"  datapath busy        {100 * r['datapath_utilisation']:6.1f} %")
        print(
            f"  data bus busy outside refresh {100 * r['data_bus_utilisation_outside_refresh']:6.1f} %"
            f"   (each REF takes >= tRTP+tRP+tRFC+tRCD-tBL cycles of the bus)"
        )
        print(
            f"  lookups / 1000 cyc   {r['lookups_per_1000_cycles']:6.1f}"
            f"   (limits: tFAW {faw_limit:.1f}, tRC x 16 banks {trc_limit:.1f}, data bus {1000 / t['tBL']:.0f})"
        )
        print(f"  cycles per lookup    {r['cycles_per_lookup']:6.2f}   (DRAM reads)")
        print(f"  cycles per lookup    {r['datapath_cycles_per_lookup']:6.2f}   (datapath, first to last beat)")
        print(f"  simulated cycles/s   {r['simulated_cycles_per_second']:8.0f}")


if __name__ == "__main__":
    main()
