"""Rank-NMP end to end under cocotb + Verilator (``verif/tb/rank_nmp.py``): random
instruction streams of all four operators, every malformed rule, EOP mismatches, resets
with the DRAM running, against the Rank-NMP model bit for bit, with the DRAM model checking
the DDR4 protocol. One build per configuration; each runs every cocotb test of the
testbench (``random_traffic``, ``reset_recovery``)."""

import random

import pytest

from hw.ddr4 import DDR4Timing
from verif.runner import run_block_tests

pytestmark = pytest.mark.rtl


def random_legal_timing(seed: int) -> dict[str, int]:
    """DDR4 timings drawn at random (fixed seed: one build) among the legal ones, with
    tRC > tRAS + tRP, tCCD_L == tCCD_S, small gaps and a short tREFI."""
    rng = random.Random(seed)
    while True:
        t = {
            "tRCD": rng.randint(8, 20),
            "tCL": rng.randint(8, 20),
            "tRP": rng.randint(8, 20),
            "tRTP": rng.randint(4, 10),
            "tBL": 4,
            "tRRD_S": rng.randint(2, 6),
            "tRFC": rng.randint(80, 200),
        }
        t["tRAS"] = t["tRCD"] + t["tRTP"] + rng.randint(0, 15)
        t["tRC"] = t["tRAS"] + t["tRP"] + rng.randint(1, 12)
        t["tCCD_S"] = t["tCCD_L"] = rng.randint(4, 7)
        t["tRRD_L"] = t["tRRD_S"] + rng.randint(0, 3)
        t["tFAW"] = rng.randint(4 * t["tRRD_S"] + 1, 4 * t["tRRD_S"] + 16)
        t["tREFI"] = rng.randint(1000, 1600)
        try:
            DDR4Timing(**t)
        except ValueError:
            continue
        return t


CONFIGS = {
    # A small cache so that evictions happen with the testbench's small tables.
    "default": {"cache_size_bytes": 8192, "cache_ways": 4},
    # Everything small: the ROB (8 lines) and the DRAM request buffer fill up, 8 lanes make
    # a 64 B row 2 beats (the accumulation interlock stalls), refresh comes every 2000
    # cycles, a 1 KiB 2-way cache thrashes.
    "stress": {
        "cache_size_bytes": 1024,
        "cache_ways": 2,
        "lanes": 8,
        "rob_lines": 8,
        "scheduler_depth": 4,
        "tREFI": 2000,
    },
    # Random legal timings; max_elements 64, so fp32 rows of 5-7 bursts are malformed.
    "timing": {
        "cache_size_bytes": 2048,
        "cache_ways": 2,
        "max_elements": 64,
        "scheduler_depth": 8,
        **random_legal_timing(20240917),
    },
}
#: Fixed seeds (``RECNMP_SEED`` replaces them); each cocotb test derives its own from it.
SEEDS = {"default": 2024, "stress": 7, "timing": 31}
ENV = {
    "default": {"RECNMP_PACKETS": "48", "RECNMP_STALL": "0.2"},
    "stress": {"RECNMP_PACKETS": "32", "RECNMP_STALL": "0.3"},
    "timing": {"RECNMP_PACKETS": "40", "RECNMP_STALL": "0.2"},
}


@pytest.mark.parametrize("config", CONFIGS)
def test_rank_nmp(config):
    print(f"rank_nmp {config}: {CONFIGS[config]}, seed {SEEDS[config]}")
    run_block_tests("rank_nmp", "verif.tb.rank_nmp", params=CONFIGS[config], seed=SEEDS[config], extra_env=ENV[config])
