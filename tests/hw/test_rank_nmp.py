"""Rank-NMP end to end under cocotb + Verilator: random packets of all four operators,
bit-exact against the golden model, with the DRAM model checking the DDR4 protocol."""

import pytest

from verif.runner import run_block_tests

pytestmark = pytest.mark.rtl

# A small cache so that evictions happen with the testbench's small tables.
PARAMS = {"cache_size_bytes": 8192, "cache_ways": 4}


def test_rank_nmp_random_packets():
    run_block_tests(
        "rank_nmp", "verif.tb.rank_nmp", params=PARAMS, seed=2024,
        extra_env={"RECNMP_PACKETS": "16", "RECNMP_STALL": "0.2"},
    )
