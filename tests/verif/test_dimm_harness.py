"""The simulation-only DIMM harness (verif/dimm_harness.py) against the cocotb testbench it
replaces (verif/tb/dimm_nmp.py, Python on every clock edge): on the same jobs, without
random pauses (the two draw them from different generators), both give the same result
beats, PU counters, cycles, DRAM command counts and DRAM trace, with and without a reset in
the middle of the job. And the harness's own failure paths: a DDR4 violation and a time-out
end the job with the message of the Python testbench.
"""

import os

import numpy as np
import pytest

from hw.refresh_control import recovery_cycles
from sw_driver import Device
from sw_driver.backends import expected_beats
from verif.dimm_harness import run_job
from verif.dimm_job import DimmJob
from verif.runner import run_block_tests
from verif.tb.dimm_nmp import JOB_ENV, RESULTS_ENV, read_results, write_job

pytestmark = pytest.mark.rtl

SEED = int(os.environ.get("RECNMP_SEED", "20261204"))
CACHE = 8192


def _device_and_call(rng, ranks=2, bags=48):
    dev = Device(backend="rtl", ranks_per_dimm=ranks, cache_size_bytes=CACHE, hot_entry_threshold=2)
    table = rng.standard_normal((3000, int(rng.choice([16, 32, 48])))).astype(np.float32)
    dev.load_table("t", table)
    lengths = rng.integers(1, 16, bags)
    hot = rng.integers(0, 3000, 32)
    n = int(lengths.sum())
    indices = np.where(rng.random(n) < 0.4, hot[rng.integers(0, 32, n)], rng.integers(0, 3000, n))
    return dev, dev.compile([("t", indices, lengths)])


def _job(dev, call, **changes):
    stream = call.dimms[0]
    fields = dict(
        words=stream.words,
        issue_cycles=stream.issue_cycles,
        images=dev.image.dimm_rows(0, 0, dev.ranks_per_dimm),
        expected_beats=expected_beats(call, 4),
        timeout_cycles=200_000,
        trace=True,
    )
    return DimmJob(**{**fields, **changes})


def _python_testbench(dev, job, tmp_path, name):
    job_path, results = tmp_path / f"{name}.npz", tmp_path / f"{name}-results.npz"
    write_job(job_path, job)
    run_block_tests(
        "dimm_nmp",
        "verif.tb.dimm_nmp",
        params=dev.backend.params,
        testcase="run_job",
        extra_env={JOB_ENV: str(job_path), RESULTS_ENV: str(results)},
        name=name,
    )
    return read_results(results)


def _assert_same(old, new, context):
    for key in ("tag", "beat", "last", "data", "pre_tag", "pre_beat", "pre_last", "pre_data", "trace"):
        assert np.array_equal(old[key], new[key]), f"{context}: {key} differs"
    for key in ("counters", "dram_counts", "cycles", "idle", "unwritten_reads"):
        assert old[key] == new[key], f"{context}: {key} {old[key]} != {new[key]}"


def test_the_harness_equals_the_python_testbench(tmp_path):
    rng = np.random.default_rng(SEED)
    dev, call = _device_and_call(rng)
    job = _job(dev, call)
    old = _python_testbench(dev, job, tmp_path, "python")
    new = run_job(job, dev.backend.params, tmp_path / "harness", name="harness")
    print(f"seed {SEED}: {new['cycles']} cycles, {len(new['tag'])} beats, {len(new['trace'])} DRAM commands")
    assert new["cycles"] > 0 and len(new["trace"]) > 0
    _assert_same(old, new, f"seed {SEED}")


def test_the_harness_equals_the_python_testbench_across_a_reset(tmp_path):
    rng = np.random.default_rng(SEED + 1)
    dev, call_a = _device_and_call(rng)
    dev.reset()
    lengths = rng.integers(1, 16, 24)
    call_b = dev.compile([("t", rng.integers(0, 3000, int(lengths.sum())), lengths)])
    a, b = call_a.dimms[0], call_b.dimms[0]
    # The reset comes when A is two thirds done (after the PU's recovery from power-up).
    alone = run_job(_job(dev, call_a, trace=False), dev.backend.params, tmp_path / "a", name="a")
    recovery = recovery_cycles(dev.timing, dev.geometry) + CACHE // 64  # past the PU's first idle cycle
    job = _job(
        dev,
        call_b,
        words=np.concatenate([a.words, b.words]),
        issue_cycles=np.concatenate([a.issue_cycles, b.issue_cycles]),
        reset_at=recovery + int(alone["cycles"] * rng.uniform(0.5, 0.8)),
        resume_at=len(a.words),
    )
    old = _python_testbench(dev, job, tmp_path, "python-reset")
    new = run_job(job, dev.backend.params, tmp_path / "harness-reset", name="harness-reset")
    _assert_same(old, new, f"seed {SEED + 1} reset at {job.reset_at}")
    assert 0 < len(new["pre_tag"]) < len(alone["tag"]), "the reset cut A's beats"


def test_a_protocol_violation_ends_the_job_with_the_checkers_message(tmp_path):
    """DRAM ranks whose tRCD is one cycle longer than the PU's: the first RD breaks it, and
    the job fails with the checker's message and the last commands."""
    from hw.ddr4 import DDR4Timing

    rng = np.random.default_rng(SEED + 2)
    dev, call = _device_and_call(rng, bags=4)
    stricter = DDR4Timing(tRCD=17)
    message = (
        r"^DDR4 tRCD violation at cycle \d+, bank group \d bank \d: RD 16 cycles after ACT at cycle \d+ "
        r"\(needs 17\)\nlast commands:\n  cycle \d+: "
    )
    with pytest.raises(AssertionError, match=message):
        run_job(_job(dev, call), dev.backend.params, tmp_path / "strict", name="strict", dram_timing=stricter)


def test_the_refresh_rules_are_checked_in_place(tmp_path):
    """DRAM ranks that need a refresh every 600 cycles: the PU refreshes every 9360, so the
    checker's refresh rules end the job."""
    from hw.ddr4 import DDR4Timing

    rng = np.random.default_rng(SEED + 4)
    dev, call = _device_and_call(rng, bags=600)  # longer than 9 x 600 cycles
    with pytest.raises(AssertionError, match=r"^DDR4 tREFI violation at cycle \d+, bank group \d bank \d: "):
        run_job(
            _job(dev, call), dev.backend.params, tmp_path / "refresh", name="refresh", dram_timing=DDR4Timing(tREFI=600)
        )


def test_a_job_that_never_ends_times_out_with_what_is_missing(tmp_path):
    rng = np.random.default_rng(SEED + 3)
    dev, call = _device_and_call(rng, bags=4)
    job = _job(dev, call, expected_beats=expected_beats(call, 4) + 1, timeout_cycles=3000)
    with pytest.raises(AssertionError, match=r"^timeout after 3000 cycles: (\d+) of (\d+) result beats received, "):
        run_job(job, dev.backend.params, tmp_path / "late", name="late")
