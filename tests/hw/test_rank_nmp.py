"""Rank-NMP end to end under cocotb + Verilator: random packets of all four operators,
bit-exact against the golden model, with the DRAM model checking the DDR4 protocol."""

import pytest

from verif.runner import run_block_tests

pytestmark = pytest.mark.rtl

CONFIGS = {
    # A small cache so that evictions happen with the testbench's small tables.
    "default": {"cache_size_bytes": 8192, "cache_ways": 4},
    # Everything small: the ROB (8 lines) and the DRAM request buffer fill up, 8 lanes make
    # a 64 B row 2 beats (the accumulation interlock stalls), refresh comes every 2000
    # cycles, a 1 KiB 2-way cache thrashes.
    "stress": {"cache_size_bytes": 1024, "cache_ways": 2, "lanes": 8, "rob_lines": 8,
               "scheduler_depth": 4, "tREFI": 2000},
}


@pytest.mark.parametrize("config", CONFIGS)
def test_rank_nmp_random_packets(config):
    run_block_tests(
        "rank_nmp", "verif.tb.rank_nmp", params=CONFIGS[config], seed=2024,
        extra_env={"RECNMP_PACKETS": "16", "RECNMP_STALL": "0.2"},
    )
