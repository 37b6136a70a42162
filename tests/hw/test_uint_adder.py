"""Toolchain smoke test: rtl_gen -> Verilator -> cocotb on the small uint_adder block."""

import pytest

from verif.runner import run_block_tests

pytestmark = pytest.mark.rtl


@pytest.mark.parametrize("width,latency", [(8, 1), (33, 3)])
def test_uint_adder_rtl(width, latency):
    run_block_tests(
        "uint_adder",
        "verif.tb.uint_adder",
        params={"width": width, "latency": latency},
        extra_env={"RECNMP_COUNT": "2000", "RECNMP_STALL": "0.3"},
        seed=1234,
    )
