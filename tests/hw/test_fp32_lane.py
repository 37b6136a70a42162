"""fp32_lane and fp32_vector_lane under cocotb + Verilator (verif.tb.fp32_lane)."""

import pytest

from verif.runner import run_block_tests

pytestmark = pytest.mark.rtl


def test_fp32_lane_rtl():
    run_block_tests(
        "fp32_lane",
        "verif.tb.fp32_lane",
        params={"mul_latency": 4, "add_latency": 3},
        extra_env={"RECNMP_COUNT": "50000", "RECNMP_STALL": "0.25", "RECNMP_STALL_SHARE": "0.25"},
        seed=20240603,
    )


def test_fp32_vector_lane_rtl():
    run_block_tests(
        "fp32_vector_lane",
        "verif.tb.fp32_lane",
        params={"lanes": 4, "mul_latency": 4, "add_latency": 3},
        extra_env={"RECNMP_COUNT": "10000", "RECNMP_STALL": "0.25", "RECNMP_STALL_SHARE": "0.3"},
        seed=20240604,
    )
