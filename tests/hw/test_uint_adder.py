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


def test_waves_are_written_as_fst_named_by_test():
    results = run_block_tests(
        "uint_adder",
        "verif.tb.uint_adder",
        params={"width": 8, "latency": 2},
        waves=True,
        extra_env={"RECNMP_COUNT": "50"},
        testcase="full_throughput_and_latency",
        name="waves_smoke",
    )
    fst = results.parent / "waves_smoke.fst"
    data = fst.read_bytes()
    # An FST file starts with its header block: block type 0, then the 64-bit block length.
    assert data[0] == 0 and int.from_bytes(data[1:9], "big") == 329
    assert len(data) > 329 + 9, "only a header: no hierarchy or value changes"
