"""``Device(backend="perf")``: golden results, the performance models' report, reserved tables."""

import os

import numpy as np
import pytest

from sim_models.host_baseline import host_baseline
from sim_models.host_reads import host_reads
from sw_driver import Device
from sw_driver.report import baseline_cycles

from .util import random_lengths, random_table, reference, same_bits

SEED = int(os.environ.get("RECNMP_SEED", "20261202"))


def _requests(rng, tables):
    requests = []
    for name, table in tables.items():
        for weighted in (False, True):
            lengths = random_lengths(rng, int(rng.integers(5, 40)), high=20)
            idx = rng.integers(0, table.shape[0], int(lengths.sum()))
            weights = (rng.standard_normal(idx.size).astype(np.float32),) if weighted else ()
            requests.append((name, idx, lengths, *weights))
    return requests


@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_results_are_golden_and_the_report_is_the_models(ranks):
    print(f"seed {SEED + ranks}")
    rng = np.random.default_rng(SEED + ranks)
    config = dict(channels=2, dimms_per_channel=2, ranks_per_dimm=ranks, cache_size_bytes=8192, hot_entry_threshold=2)
    tables = {"f": random_table(rng, 3000, 48, False), "q": random_table(rng, 3000, 100, True)}
    perf, golden = Device(backend="perf", **config), Device(**config)
    for dev in (perf, golden):
        for name, table in tables.items():
            dev.load_table(name, table)
    requests = _requests(rng, tables)
    got, want = perf.run(requests), golden.run(requests)
    for (name, idx, lengths, *w), a, b in zip(requests, got, want):
        assert same_bits(a, b)
        assert same_bits(a, reference(perf, name, tables[name], idx, lengths, weights=w[0] if w else None))
    report, backend = perf.report, perf.backend
    assert report.backend == "perf"
    assert report.cycles == backend.last.cycles > report.transport_cycles
    call = perf.compile(requests)
    host = host_baseline(
        host_reads(call.lookups, perf.address_map), channels=2, ranks_per_channel=2 * ranks, timing=perf.timing
    )
    assert report.baseline_cycles == host.cycles
    assert report.speedup == report.baseline_cycles / report.cycles
    assert sorted(report.dram_commands) == [(c, d, r) for c in range(2) for d in range(2) for r in range(ranks)]
    assert report.lines == sum(c["RD"] for c in report.dram_commands.values()) + report.cache_hits
    energy = report.energy
    assert set(energy) == {"baseline_pj", "recnmp_pj", "saving"}
    assert energy["saving"] == pytest.approx(1 - energy["recnmp_pj"]["total"] / energy["baseline_pj"]["total"])
    # Every part from the counts (sim_models.energy, the paper's energies).
    acts = sum(c["ACT"] for c in report.dram_commands.values())
    reads = sum(c["RD"] for c in report.dram_commands.values())
    beats = 4 * sum(p.bags * -(-p.elements // 4) for p in call.packets)  # every DIMM returns every tag
    nmp, base = energy["recnmp_pj"], energy["baseline_pj"]
    assert nmp["act"] == pytest.approx(2100.0 * acts) and nmp["dram_read"] == pytest.approx(14.0 * 512 * reads)
    assert nmp["io"] == pytest.approx(22.0 * (79 * report.instructions + 128 * beats))
    assert nmp["cache"] == pytest.approx(50.0 * (report.lines + backend.last.total("cache_fills")))
    host_acts = sum(c["ACT"] for c in host.commands.values())
    assert base["act"] == pytest.approx(2100.0 * host_acts)
    assert base["dram_read"] + base["io"] == pytest.approx((14.0 + 22.0) * 512 * report.lines)


def test_the_analytical_baseline_without_the_baseline_model():
    rng = np.random.default_rng(SEED)
    dev = Device(backend="perf", backend_options={"baseline": False})
    table = random_table(rng, 2000, 16, False)
    dev.load_table("t", table)
    idx = rng.integers(0, 2000, 400)
    dev.sls("t", idx, [20] * 20)
    call = dev.compile([("t", idx, [20] * 20)])
    expected = baseline_cycles(call.lookups, timing=dev.timing, geometry=dev.geometry, channels=1, ranks_per_dimm=2)
    assert dev.report.baseline_cycles == expected
    assert dev.backend.last_baseline is None


def test_reserved_tables_run_only_without_values():
    dev = Device(backend="perf", backend_options={"values": False})
    placement = dev.reserve_table("big", rows=1_000_000, dim=32)
    assert placement.layout.rows == 1_000_000 and placement.layout.vsize == 2
    out = dev.sls("big", np.arange(0, 1_000_000, 9973), [10] * 10 + [1])
    assert out.shape == (11, 32) and not out.any()
    assert dev.report.lookups == 101 and dev.report.cycles > 0
    golden = Device()
    golden.reserve_table("big", rows=100, dim=8, quantized=True)
    with pytest.raises(
        ValueError,
        match=r"table 'big' was reserved without contents: only backend='perf' with "
        r"backend_options=\{'values': False\} can run it",
    ):
        golden.sls("big", [1, 2], [2])
    with pytest.raises(ValueError, match="rows must be an int from 1 to 1099511627776, got 0"):
        golden.reserve_table("x", rows=0, dim=8)
    from sw_driver.errors import TableExistsError

    with pytest.raises(TableExistsError, match="table 'big' is already loaded"):
        golden.reserve_table("big", rows=10, dim=8)
