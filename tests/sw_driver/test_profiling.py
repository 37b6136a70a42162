"""Hot-entry profiling: the locality bit per lookup, per table, over the whole call."""

import numpy as np

from sw_driver import Device
from sw_driver.profiling import locality


def test_rows_used_at_least_threshold_times_in_the_batch_per_table_are_hot():
    tables = np.array([0, 0, 0, 1, 1, 0, 1])
    rows = np.array([5, 5, 6, 5, 7, 5, 7])
    assert locality(tables, rows, 2).tolist() == [1, 1, 0, 0, 1, 1, 1]
    assert locality(tables, rows, 3).tolist() == [1, 1, 0, 0, 0, 1, 0]
    assert locality(tables, rows, 1).tolist() == [1] * 7
    assert locality(tables, rows, None).tolist() == [1] * 7
    assert locality(tables[:0], rows[:0], 2).tolist() == []


def test_the_device_counts_over_every_request_of_a_call_and_the_cache_follows():
    dev = Device(ranks_per_dimm=1, hot_entry_threshold=2)
    dev.load_table("a", np.ones((10, 16), np.float32))
    dev.load_table("b", np.ones((10, 16), np.float32))
    specs = [
        ("a", np.array([1, 2]), np.array([2])),
        ("b", np.array([1, 3]), np.array([2])),
        ("a", np.array([1, 4]), np.array([2])),
    ]
    call = dev.compile(specs)
    # Packet order is a, a, b (table-aware); row 1 of a is used twice, row 1 of b once.
    assert call.lookups["locality"].tolist() == [1, 0, 1, 0, 0, 0]
    assert call.dimms[0].insts["locality"][[0, 1, 3, 4, 6, 7]].tolist() == [1, 0, 1, 0, 0, 0]
    dev.run(specs)
    assert (dev.report.cache_hits, dev.report.cache_misses, dev.report.cache_bypasses) == (1, 5, 4)
    off = Device(ranks_per_dimm=1)
    off.load_table("a", np.ones((10, 16), np.float32))
    off.run([("a", np.array([1, 2, 1, 2]), np.array([4]))])
    assert (off.report.cache_hits, off.report.cache_misses, off.report.cache_bypasses) == (2, 2, 0)
