"""fp32_mul under cocotb + Verilator: directed set, 200k random pairs, latency."""

import pytest

from verif.runner import run_block_tests

pytestmark = pytest.mark.rtl


def test_fp32_mul_rtl():
    run_block_tests(
        "fp32_mul",
        "verif.tb.fp32_binary_op",
        params={"latency": 4},
        extra_env={"RECNMP_COUNT": "200000", "RECNMP_STALL": "0.25", "RECNMP_STALL_SHARE": "0.25"},
        seed=20240602,
    )
