"""The RecNMP performance model: its cache against the reference model, physical bounds,
bad input, and its cycles, DRAM commands and cache figures against the RTL.

The RTL comparisons (marker ``rtl``) run the same calls on ``Device(backend="rtl")`` (the
generated PU under Verilator, one build per ranks value with an 8 KiB cache: the builds of
``tests/sw_driver/test_rtl_backend.py``) and ``Device(backend="perf")``: results bit for
bit equal, per-rank ACT/RD/PRE/REF counts, cache hits, misses, bypasses and hint
mismatches exactly equal, and cycles within 1 % (the issue asks for 5 %; the model is
written cycle by cycle against the RTL and is measured exact or one cycle off).
"""

import os

import numpy as np
import pytest

from hw.ddr4 import DDR4Geometry, DDR4Timing
from hw.isa import INST_DTYPE, Opcode, daddr_compose
from hw.refresh_control import recovery_cycles
from sim_models import recnmp_kernel as kernel
from sim_models.rank_cache import RankCacheModel
from sim_models.recnmp_perf import RecNMPPerfModel
from sim_models.sls import quantize_fused8
from sw_driver import Device

SEED = int(os.environ.get("RECNMP_SEED", "20261201"))
CACHE = 8192


def _rng(offset: int) -> np.random.Generator:
    seed = SEED + offset
    print(f"seed {seed} (RECNMP_SEED={SEED})")
    return np.random.default_rng(seed)


# -- the cache kernel is the reference LRU ---------------------------------------------------


@pytest.mark.parametrize("ways", [1, 2, 4, 8])
def test_cache_kernel_is_the_reference_lru(ways):
    rng = _rng(ways)
    sets = 8
    model = RankCacheModel(size_bytes=64 * ways * sets, ways=ways)
    tags = np.zeros((sets, ways), np.int64)
    stamps = np.zeros((sets, ways), np.int64)
    valid = np.zeros((sets, ways), np.bool_)
    clock = np.zeros(1, np.int64)
    set_bits = sets.bit_length() - 1
    evictions = 0
    for step in range(4000):
        addr = int(rng.integers(0, sets * ways * 3))
        if rng.random() < 0.5:
            got = kernel._cache_lookup(tags, stamps, valid, clock, addr, set_bits, ways)
            assert got == model.lookup(addr), f"step {step}: lookup of {addr}"
        else:
            evictions += kernel._cache_fill(tags, stamps, valid, clock, addr, set_bits, ways)
            model.fill(addr)
    assert evictions == model.evictions > 0


# -- bounds and bad input ----------------------------------------------------------------------


def _lookup_stream(rng, count, *, rows, banks, vsize=1, opcode=Opcode.SUM):
    """``count`` lookups on rank 0 to random banks and rows, then one EOP; issued at once."""
    insts = np.zeros(count + 1, INST_DTYPE)
    bank = rng.integers(0, banks, count)
    insts["opcode"][:count] = int(opcode)
    insts["daddr"][:count] = daddr_compose(
        rank=0, bank_group=bank // 4, bank=bank % 4, row=rng.integers(0, rows, count), column=0
    )
    insts["vsize"][:count] = vsize
    insts["ddr_cmd"][:count] = 0b111
    insts["weight"][:count] = 1.0
    insts["opcode"][count] = int(Opcode.EOP)
    insts["daddr"][count] = (1 << 0) | (16 << 16)  # tag 0, 16 elements
    return insts, np.zeros(count + 1, np.int64)


def test_random_rows_on_one_rank_are_bounded_by_tfaw():
    timing = DDR4Timing()
    model = RecNMPPerfModel(ranks_per_dimm=1, cache_size_bytes=CACHE)
    insts, due = _lookup_stream(_rng(10), 3000, rows=60000, banks=16)
    result = model.run_dimm(insts, due)
    acts = result.rank_counters(0)["acts"]
    bound = acts * timing.tFAW / 4  # four ACTs per tFAW window
    assert result.cycles >= bound
    # Close to the bound: refresh costs about tRFC / tREFI = 4.5 %.
    assert result.cycles <= 1.10 * bound, (result.cycles, bound)


def test_row_hits_over_bank_groups_fill_the_data_bus():
    timing = DDR4Timing()
    model = RecNMPPerfModel(ranks_per_dimm=1, cache_size_bytes=CACHE)
    rng = _rng(11)
    insts, due = _lookup_stream(rng, 4000, rows=1, banks=16, vsize=4)
    # Same row in every bank: after the first ACTs, every line is a row hit.
    result = model.run_dimm(insts, due)
    lines = result.rank_counters(0)["reads"]
    assert lines == 4 * 4000
    bus = lines * timing.tBL
    assert bus <= result.cycles <= 1.08 * bus, (result.cycles, bus)


@pytest.mark.parametrize("cache", [8 << 10, 1 << 20])
@pytest.mark.parametrize("trefi, trfc", [(9360, 420), (600, 420)])
def test_a_refresh_falls_due_every_trefi_from_the_end_of_the_recovery(cache, trefi, trfc):
    """Also while the cache still sweeps its sets after reset (1 MiB: 4096 sets, the call
    starts 3225 cycles after the tREFI count did)."""
    timing = DDR4Timing(tREFI=trefi, tRFC=trfc)
    model = RecNMPPerfModel(ranks_per_dimm=1, timing=timing, cache_size_bytes=cache)
    insts, due = _lookup_stream(_rng(13), 2000, rows=60000, banks=16)
    result = model.run_dimm(insts, due)
    before = max(0, model.sets - recovery_cycles(timing, DDR4Geometry()))
    # The recovery's REF, then one per tREFI since the count started.
    expected = 1 + (before + result.cycles) // trefi
    assert abs(result.rank_counters(0)["refs"] - expected) <= 1, (result.rank_counters(0)["refs"], expected)


def test_the_model_refuses_what_it_does_not_model():
    model = RecNMPPerfModel(ranks_per_dimm=2)
    insts, due = _lookup_stream(_rng(12), 4, rows=10, banks=16)
    bad = insts.copy()
    bad["opcode"][1] = int(Opcode.INVALIDATE)
    with pytest.raises(ValueError, match="does not model INVALIDATE"):
        model.run_dimm(bad, due)
    bad = insts.copy()
    bad["vsize"][2] = 0
    with pytest.raises(ValueError, match="instruction 2 is a malformed lookup"):
        model.run_dimm(bad, due)
    with pytest.raises(ValueError, match="ranks_per_dimm must be 1, 2 or 4, got 3"):
        RecNMPPerfModel(ranks_per_dimm=3)
    with pytest.raises(ValueError, match="workers must be None or a positive int, got 0"):
        RecNMPPerfModel(ranks_per_dimm=1, workers=0)
    with pytest.raises(ValueError, match="max_cycles must be None or a positive int, got 0"):
        RecNMPPerfModel(ranks_per_dimm=1, max_cycles=0)
    with pytest.raises(RuntimeError, match="did not finish within 100 cycles"):
        RecNMPPerfModel(ranks_per_dimm=2, max_cycles=100).run_dimm(insts, due)


def test_calls_compiled_for_other_ranks_are_refused():
    dev = Device(ranks_per_dimm=2)
    dev.load_table("t", np.ones((64, 16), np.float32))
    call = dev.compile([("t", np.arange(8), [8])])
    with pytest.raises(ValueError, match="compiled for 2 ranks per DIMM, the model has 4"):
        RecNMPPerfModel(ranks_per_dimm=4).run(call)


# -- against the RTL -------------------------------------------------------------------------------


def _workload(rng, rows=4096):
    """Every operator, hot rows (for the cache), bags over several packets."""
    tables = {
        "f32": rng.standard_normal((rows, 32)).astype(np.float32),
        "q8": quantize_fused8(rng.standard_normal((rows, int(rng.choice([24, 64, 100])))).astype(np.float32)),
    }
    hot = rng.integers(0, rows, 24)
    requests = []
    for name, weighted in (("f32", False), ("q8", True), ("f32", True), ("q8", False)):
        lengths = rng.integers(1, 12, int(rng.integers(10, 24)))
        n = int(lengths.sum())
        indices = np.where(rng.random(n) < 0.4, hot[rng.integers(0, hot.size, n)], rng.integers(0, rows, n))
        request = {"table": name, "indices": indices, "lengths": lengths}
        if weighted:
            request["weights"] = rng.standard_normal(n).astype(np.float32)
        requests.append(request)
    return tables, requests


def _run(backend, ranks, threshold, tables, requests, cache=CACHE, **options):
    dev = Device(
        ranks_per_dimm=ranks,
        backend=backend,
        cache_size_bytes=cache,
        hot_entry_threshold=threshold,
        backend_options=options or None,
    )
    for name, table in tables.items():
        dev.load_table(name, table)
    return dev.run(requests), dev.report


def _compare(rng, ranks, threshold, tables, requests):
    perf_out, perf = _run("perf", ranks, threshold, tables, requests, baseline=False)
    rtl_out, rtl = _run("rtl", ranks, threshold, tables, requests)
    for a, b in zip(perf_out, rtl_out):
        assert np.array_equal(a.view(np.uint32), b.view(np.uint32))
    print(f"{ranks} ranks: cycles perf {perf.cycles} rtl {rtl.cycles}; {rtl.lookups} lookups")
    assert perf.dram_commands == rtl.dram_commands
    for name in ("cache_hits", "cache_misses", "cache_bypasses", "hint_mismatches", "lookups", "lines"):
        assert getattr(perf, name) == getattr(rtl, name), name
    assert abs(perf.cycles - rtl.cycles) <= 0.01 * rtl.cycles
    return perf, rtl


@pytest.mark.rtl
@pytest.mark.parametrize(
    "ranks, threshold",
    [(1, 2), (2, 2), (4, 1), (2, 1_000_000), (4, 1_000_000)],
    ids=["1rank-cache", "2ranks-hot-entries", "4ranks-cache-all", "2ranks-cache-off", "4ranks-cache-off"],
)
def test_model_equals_the_rtl(ranks, threshold):
    """Hot-entry thresholds: 1 caches every row, 2 the rows used twice or more, 10**6 none."""
    rng = _rng(100 + 10 * ranks + (threshold > 2))
    tables, requests = _workload(rng)
    perf, rtl = _compare(rng, ranks, threshold, tables, requests)
    if threshold < 1_000_000:
        assert rtl.cache_hits > 0
    else:
        assert rtl.cache_hits == 0 and rtl.cache_bypasses == rtl.lines


@pytest.mark.rtl
def test_model_equals_the_rtl_with_a_large_cache():
    """1 MiB: the cache sweeps its 4096 sets for 3225 cycles after the scheduler's recovery,
    so the first refresh of the call falls due 6135 cycles in, not 9360."""
    rng = _rng(300)
    rows = 1 << 15
    tables = {"f32": rng.standard_normal((rows, 16)).astype(np.float32)}
    lengths = np.full(16, 80)
    requests = [{"table": "f32", "indices": rng.integers(0, rows, int(lengths.sum())), "lengths": lengths}]
    dev_args = dict(ranks=1, threshold=2, tables=tables, requests=requests)
    perf_out, perf = _run("perf", cache=1 << 20, baseline=False, **dev_args)
    rtl_out, rtl = _run("rtl", cache=1 << 20, **dev_args)
    for a, b in zip(perf_out, rtl_out):
        assert np.array_equal(a.view(np.uint32), b.view(np.uint32))
    print(f"cycles perf {perf.cycles} rtl {rtl.cycles}")
    assert perf.dram_commands == rtl.dram_commands and rtl.dram_commands[(0, 0, 0)]["REF"] == 2
    assert perf.cache_hits == rtl.cache_hits and perf.hint_mismatches == rtl.hint_mismatches
    assert abs(perf.cycles - rtl.cycles) <= 0.01 * rtl.cycles


@pytest.mark.rtl
def test_model_equals_the_rtl_across_refreshes():
    """Over 2.5 refresh intervals: the refresh phase after reset and every REF exact."""
    rng = _rng(200)
    rows = 1 << 15
    tables = {"f32": rng.standard_normal((rows, 16)).astype(np.float32)}
    lengths = np.full(48, 80)
    requests = [{"table": "f32", "indices": rng.integers(0, rows, int(lengths.sum())), "lengths": lengths}]
    perf, rtl = _compare(rng, 1, 1_000_000, tables, requests)
    assert rtl.dram_commands[(0, 0, 0)]["REF"] >= 3 and rtl.cycles > 2 * DDR4Timing().tREFI
