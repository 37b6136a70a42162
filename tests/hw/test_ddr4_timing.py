"""DDR4Timing validation: each rule rejects the bad value with its exact message and accepts
the boundary value; the timing sets used across the repository stay valid."""

import re

import pytest

from hw.ddr4 import DDR4Timing

T = DDR4Timing()


@pytest.mark.parametrize(
    "bad, boundary, message",
    [
        (
            {"tRAS": 24, "tRC": 40},
            {"tRAS": 25, "tRC": 41},
            "tRAS (24) must be at least tRCD + tRTP (16 + 9): a row must stay open long enough to be read once",
        ),
        ({"tCCD_L": 3}, {"tCCD_L": 4}, "tCCD_L (3) must be at least tCCD_S (4)"),
        ({"tRRD_L": 3}, {"tRRD_L": 4}, "tRRD_L (3) must be at least tRRD_S (4)"),
        (
            {"tREFI": 539},
            {"tREFI": 540},
            "tREFI (539) must be at least 540 = max(tRAS + 15 + tRP + tRFC, tRC, A) + A + tRCD + tCCD_L "
            "+ tCCD_S - 2 with A = max(tRRD_L, tFAW) = 26, tRAS + 15 + tRP + tRFC = 39 + 15 + 16 + 420 = 490, "
            "tRC = 55, tRCD = 16, tCCD_L = 6, tCCD_S = 4: a request must be served between two refreshes",
        ),
        # tRC and tFAW can dominate the bound too
        ({"tRC": 600, "tREFI": 649}, {"tRC": 600, "tREFI": 650}, "tREFI (649) must be at least 650 = "),
        ({"tFAW": 500, "tREFI": 1023}, {"tFAW": 500, "tREFI": 1024}, "tREFI (1023) must be at least 1024 = "),
    ],
)
def test_each_rule_rejects_the_bad_value_and_accepts_the_boundary(bad, boundary, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        DDR4Timing(**bad)
    DDR4Timing(**boundary)


def test_existing_rules_and_messages_are_unchanged():
    with pytest.raises(ValueError, match=re.escape("tRC (50) must be at least tRAS + tRP (39 + 16)")):
        DDR4Timing(tRC=50)
    with pytest.raises(ValueError, match=re.escape("tREFI (420) must be larger than tRFC (420)")):
        DDR4Timing(tREFI=420)
    with pytest.raises(ValueError, match="tCL must be an integer number of cycles from 1 to 16777216"):
        DDR4Timing(tCL=0)


def test_min_trefi_of_the_defaults_and_the_short_refresh_sets_in_use():
    assert T.min_tREFI == 540 <= T.tREFI
    # tests/hw/test_rank_scheduler.py, verif/tb/rank_scheduler.py (short_refresh),
    # tests/hw/test_rank_nmp.py
    for kw in ({"tREFI": 300, "tRFC": 60}, {"tREFI": 600}, {"tREFI": 2000}):
        DDR4Timing(**kw)
