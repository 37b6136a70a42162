"""RankCache regression under cocotb + Verilator: ~20k random lookups per configuration
against the Python model, with functional coverage (see ``verif/tb/rank_cache.py``)."""

import pytest

from verif.runner import run_block_tests

pytestmark = pytest.mark.rtl


@pytest.mark.parametrize(
    "size_bytes,ways",
    [
        (8 * 1024, 4),
        (8 * 1024, 1),  # direct-mapped
        (128 * 1024, 4),  # the default
        (1024, 2),  # 8 sets: evictions and LRU order everywhere
    ],
)
def test_rank_cache_rtl(size_bytes, ways):
    run_block_tests(
        "rank_cache",
        "verif.tb.rank_cache",
        params={"size_bytes": size_bytes, "ways": ways, "id_width": 6},
        extra_env={"RECNMP_COUNT": "20000"},
        seed=size_bytes + ways,
    )
