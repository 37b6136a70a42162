"""The golden backend equals sim_models.sls.sls_hardware_order bit for bit over random
shapes: every operator, vsize 1-7, 1/2/4 ranks, 1 and 2 DIMMs, 2 channels, page colouring
and profiling on and off, empty bags, offsets with include_last_offset, mean, several
requests per call; and the report of a call."""

import numpy as np
import pytest

from hw.ddr4 import DDR4Timing
from sw_driver import Device

from .util import random_lengths, random_table, reference, same_bits

SEED = 20260505

TOPOLOGIES = [(1, 1, 1), (1, 1, 2), (1, 1, 4), (1, 2, 2), (2, 1, 2), (2, 2, 4)]
# fp32 D giving vsize 1..7 (D = 112 is the longest fp32 row), 8-bit D up to 256 (vsize 1..5).
FP32_DIMS = [1, 16, 17, 31, 33, 48, 49, 64, 65, 80, 97, 112]
Q8_DIMS = [1, 8, 56, 57, 100, 120, 121, 184, 248, 256]


@pytest.mark.parametrize("profiling", [None, 2])
@pytest.mark.parametrize("colouring", [False, True])
@pytest.mark.parametrize("topology", TOPOLOGIES, ids=lambda t: "x".join(map(str, t)))
def test_golden_equals_sls_hardware_order(topology, colouring, profiling):
    seed = SEED + 100 * TOPOLOGIES.index(topology) + 10 * colouring + (profiling or 0)
    print("seed", seed)
    rng = np.random.default_rng(seed)
    channels, dimms, ranks = topology
    dev = Device(channels, dimms, ranks, page_colouring=colouring, hot_entry_threshold=profiling, cache_size_bytes=8192)
    tables = {}
    for k in range(3):
        quantized = k == 2 or bool(rng.integers(0, 2))
        dim = int(rng.choice(Q8_DIMS if quantized else FP32_DIMS))
        tables[f"t{k}"] = random_table(rng, int(rng.integers(50, 1500)), dim, quantized)
        dev.load_table(f"t{k}", tables[f"t{k}"])

    for _ in range(2):
        specs, expected = [], []
        for name, table in tables.items():
            rows = table.shape[0]
            lengths = random_lengths(rng, int(rng.integers(1, 40)), high=8)
            idx = rng.integers(0, rows, lengths.sum())
            w = rng.standard_normal(idx.size).astype(np.float32)
            specs.append((name, idx, lengths, w))
            expected.append(reference(dev, name, table, idx, lengths, weights=w))
            specs.append({"table": name, "indices": idx, "lengths": lengths, "mode": "mean"})
            expected.append(reference(dev, name, table, idx, lengths, mode="mean"))
            offsets = np.r_[0, np.cumsum(lengths)]
            specs.append({"table": name, "indices": idx, "offsets": offsets, "include_last_offset": True})
            expected.append(reference(dev, name, table, idx, offsets=offsets, include_last_offset=True))
        outs = dev.run(specs)
        assert len(outs) == len(expected)
        for k, (got, want) in enumerate(zip(outs, expected)):
            assert got.dtype == np.float32 and got.flags.c_contiguous
            assert same_bits(got, want), f"request {k} ({specs[k][0] if isinstance(specs[k], tuple) else specs[k]})"
        report = dev.report
        assert report.illegal == report.bad_rank == report.malformed == report.eop_mismatches == 0
        assert report.cache_hits + report.cache_misses == report.lines
        if profiling is None:
            assert report.cache_bypasses == 0

    # Single requests through sls(): unweighted sum with offsets (torch default), empty bags.
    name, table = "t0", tables["t0"]
    idx = rng.integers(0, table.shape[0], 30)
    offsets = np.array([0, 0, 5, 5, 17, 30])
    got = dev.sls(name, idx, offsets=offsets)
    assert same_bits(got, reference(dev, name, table, idx, offsets=offsets))
    assert not got[[0, 2, 5]].any()
    lengths = np.zeros(4, np.int64)
    assert same_bits(dev.sls(name, idx[:0], lengths, mode="mean"), np.zeros((4, got.shape[1]), np.float32))


@pytest.mark.parametrize("dim", FP32_DIMS[:1] + [112])
def test_all_vsizes_on_one_device(dim):
    rng = np.random.default_rng(SEED + dim)
    dev = Device(2, 2, 2)
    for k, d in enumerate(FP32_DIMS + Q8_DIMS):
        quantized = k >= len(FP32_DIMS)
        table = random_table(rng, 300, d, quantized)
        dev.load_table(f"t{k}", table)
        lengths = random_lengths(rng, 20)
        idx = rng.integers(0, 300, lengths.sum())
        assert same_bits(dev.sls(f"t{k}", idx, lengths), reference(dev, f"t{k}", table, idx, lengths)), (d, quantized)


def test_the_report_of_a_golden_call():
    dev = Device(channels=2, ranks_per_dimm=2, timing=DDR4Timing())
    dev.load_table("t", np.ones((1024, 32), np.float32))  # vsize 2: 64 rows per DRAM row
    # 8 lookups, all on channel 0 rank 0 (rows 0-63), two of them repeated.
    dev.sls("t", np.array([0, 1, 2, 3, 0, 1, 60, 61]), np.array([4, 4]))
    report = dev.report
    assert (report.backend, report.requests, report.packets, report.lookups, report.lines) == ("golden", 1, 1, 8, 16)
    assert report.instructions == 8 + 2  # an EOP per DIMM
    assert report.cycles is None and report.speedup is None and report.dram_commands is None
    assert (report.cache_hits, report.cache_misses, report.cache_bypasses) == (4, 12, 0)
    assert report.hint_mismatches == 0
    # Baseline: 16 lines on channel 0 at tBL = 4 is the largest bound (one ACT), plus refresh.
    assert report.baseline_cycles == -(-64 * 9360 // (9360 - 420))
    assert report.transport_cycles == 8  # channel 0: 8 lookups + 1 EOP = 9 instructions, two slots of 4 cycles


def test_baseline_cycles_take_the_largest_bound():
    timing = DDR4Timing()
    refresh = timing.tREFI / (timing.tREFI - timing.tRFC)
    dev = Device(channels=1, ranks_per_dimm=1)
    dev.load_table("t", np.ones((4096, 16), np.float32))  # vsize 1; DRAM row k: bank k % 16, row k // 16
    # 32 lookups, each to another DRAM row: 32 ACTs on one rank, 2 per bank.
    dev.sls("t", np.arange(32) * 128, np.array([32]))
    bus, faw, row_cycle = 32 * timing.tBL, -(-32 * timing.tFAW // 4), 2 * timing.tRC
    assert faw > max(bus, row_cycle)
    assert dev.report.baseline_cycles == int(np.ceil(faw * refresh))
    # Channels work in parallel: 24 lines on channel 0 and 8 on channel 1 take 24 * tBL.
    dev = Device(channels=2, ranks_per_dimm=1)
    dev.load_table("t", np.ones((256, 32), np.float32))  # vsize 2: rows 0-63 on channel 0, 64-127 on channel 1
    dev.sls("t", np.r_[np.arange(12), np.arange(64, 68)], np.array([16]))
    assert dev.report.baseline_cycles == int(np.ceil(24 * timing.tBL * refresh))
    dev.run([])
    assert dev.report.baseline_cycles == 0


def test_results_add_dimms_in_dimm_order():
    # Four DIMMs: ((d0 + d1) + d2) + d3 differs from other orders for these values.
    dev = Device(channels=2, dimms_per_channel=2, ranks_per_dimm=1)
    table = np.zeros((512, 16), np.float32)
    # DRAM rows 0-3 (table rows 0, 128, 256, 384) are on channel 0 DIMM 0, channel 1 DIMM 0,
    # channel 0 DIMM 1, channel 1 DIMM 1: device DIMMs 0, 2, 1, 3 (channel-major).
    table[[0, 256, 128, 384]] = np.float32([[1e8], [1.0], [-1e8], [1.0]])
    out = dev.load_table("t", table) and dev.sls("t", np.array([0, 128, 256, 384]), np.array([4]))
    assert out[0, 0] == np.float32(1.0)  # (1e8 + 1) = 1e8; + -1e8 = 0; + 1 = 1 (backwards: 0)
    assert same_bits(out, reference(dev, "t", table, np.array([0, 128, 256, 384]), np.array([4])))


def test_what_a_timed_backend_needs_per_dimm():
    from sw_driver.backends import expected_beats

    rng = np.random.default_rng(SEED + 7)
    dev = Device(channels=1, dimms_per_channel=2, ranks_per_dimm=2)
    table = random_table(rng, 2000, 40, True)
    dev.load_table("q", table)
    lengths = random_lengths(rng, 20)
    call = dev.compile([("q", rng.integers(0, 2000, lengths.sum()), lengths)])
    assert expected_beats(call, 4) == 20 * 10  # 40 values: 10 beats of 4 lanes per bag
    beats = 0
    for stream in call.dimms:
        rows = dev.image.dimm_rows(stream.channel, stream.dimm, 2)
        assert sorted(rows) == [0, 1] and all(v.shape == (8192,) for r in rows.values() for v in r.values())
        assert sum(len(r) for r in rows.values()) == len(dev.image.ranks.get((0, stream.dimm, 0), {})) + len(
            dev.image.ranks.get((0, stream.dimm, 1), {})
        )
        dimm = dev.backend.models[stream.index]
        views = [dev.image.rank(stream.channel, stream.dimm, r) for r in range(2)]
        beats += len(dimm.run(stream.words, views))
    assert beats == 2 * expected_beats(call, 4)


def test_every_nan_is_the_hardware_quiet_nan():
    """inf on one rank and -inf on the other (the tree makes a NaN), and NaNs with payloads
    and signs in the data: every NaN of the output is 0x7FC00000, the one NaN the fp32 units
    produce (numpy keeps payloads), and every other value equals sls_hardware_order."""
    rng = np.random.default_rng(SEED + 1)
    dev = Device(ranks_per_dimm=2, cache_size_bytes=8192)
    table = rng.standard_normal((400, 16)).astype(np.float32)
    dev.load_table("t", table)
    where = dev.locate("t", np.arange(400))["rank"]
    a, b = int(np.flatnonzero(where == 0)[0]), int(np.flatnonzero(where == 1)[0])
    table[a, 0], table[b, 0] = np.inf, -np.inf
    table.view(np.uint32)[a, 1] = 0xFFC00042  # a negative NaN with a payload
    dev2 = Device(ranks_per_dimm=2, cache_size_bytes=8192)
    dev2.load_table("t", table)
    idx, lengths = np.array([a, b, a, 7]), np.array([2, 2])
    out = dev2.sls("t", idx, lengths)
    nan = np.isnan(out)
    assert nan[0, 0] and nan[0, 1] and nan[1, 1]
    assert (out.view(np.uint32)[nan] == 0x7FC00000).all()
    with np.errstate(invalid="ignore"):
        want = reference(dev2, "t", table, idx, lengths)
    assert np.array_equal(np.isnan(want), nan) and same_bits(out[~nan], want[~nan])
