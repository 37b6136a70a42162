"""The system regression: SLS batches through the driver, the generated DIMM-NMP under
Verilator in the simulation-only harness (DRAM models and protocol checkers inside the
simulation: ``verif.dimm_harness``), bit-exact with the golden backend and with
``sls_hardware_order``; illegal and malformed words between packets; a reset in the middle
of a packet with the DRAM left running, then a clean batch.

One Verilator build per ranks value (1, 2, 4), with an 8 KiB RankCache so that rows are
evicted. The DDR4 protocol checker behind every rank fails the job on any violation.
"""

import csv
import os

import numpy as np
import pytest

from hw.isa import Opcode, daddr_compose, ints_to_words, pack, words_to_ints
from sw_driver import Device
from sw_driver.backends import expected_beats, packet_vectors, split_packets
from sw_driver.rtl_backend import _Beat
from verif.coverage import export_points
from verif.dimm_harness import run_job
from verif.dimm_job import DimmJob
from verif.runner import coverage_dir

from .util import random_lengths, random_table, reference, same_bits

pytestmark = pytest.mark.rtl

SEED = int(os.environ.get("RECNMP_SEED", "20261204"))
CACHE = 8192


VSIZE_DIMS = {  # fp32 and 8-bit D of each vsize
    1: ([16], [8, 40, 56]),
    2: ([24, 32], [57, 100, 120]),
    3: ([48], [121, 150, 184]),
    4: ([64], [185, 248]),
}


def random_requests(rng, tables):
    """Two requests per table, one weighted: every operator in every call."""
    requests = []
    for name, table in tables.items():
        for weighted in (False, True):
            lengths = random_lengths(rng, int(rng.integers(1, 20)), high=8)
            idx = rng.integers(0, table.shape[0], int(lengths.sum()))
            weights = (rng.standard_normal(idx.size).astype(np.float32),) if weighted else ()
            requests.append((name, idx, lengths, *weights))
    return requests


def coverage_points():
    return {
        "driver.rtl.opcode": dict.fromkeys(["SUM", "WSUM", "SUM_Q8", "WSUM_Q8"], 0),
        "driver.rtl.vsize": dict.fromkeys(["1", "2", "3", "4"], 0),
        "driver.rtl.feature": dict.fromkeys(
            [
                "page_colouring",
                "no_page_colouring",
                "profiling",
                "no_profiling",
                "locality_0",
                "locality_1",
                "cache_hit",
                "several_tables_in_one_call",
            ],
            0,
        ),
    }


def sample(points, call, *, colouring, profiling, report):
    from hw.isa import Opcode

    for opcode in np.unique(call.lookups["opcode"]).tolist():
        points["driver.rtl.opcode"][Opcode(opcode).name] += 1
    for vsize in np.unique(call.lookups["vsize"]).tolist():
        points["driver.rtl.vsize"][str(vsize)] += 1
    feature = points["driver.rtl.feature"]
    feature["page_colouring" if colouring else "no_page_colouring"] += 1
    feature["profiling" if profiling else "no_profiling"] += 1
    for locality in np.unique(call.lookups["locality"]).tolist():
        feature[f"locality_{locality}"] += 1
    feature["cache_hit"] += report.cache_hits > 0
    feature["several_tables_in_one_call"] += len({r.table.name for r in call.requests}) > 1


@pytest.mark.parametrize("ranks,dimms", [(1, 1), (2, 2), (4, 1)])
def test_rtl_equals_golden_and_hardware_order(ranks, dimms):
    """Every operator, vsize 1-4, page colouring and profiling on and off, stalls on both
    host streams: the RTL equals the golden backend and sls_hardware_order bit for bit."""
    seed = SEED + 10 * ranks + dimms
    rng = np.random.default_rng(seed)
    points = coverage_points()
    vsizes = rng.permutation([1, 2, 3, 4]).tolist()  # (fp32, 8-bit) vsizes of call 0, then of call 1
    for call, (colouring, profiling) in enumerate([(False, None), (True, 2)]):
        config = dict(
            dimms_per_channel=dimms, ranks_per_dimm=ranks, page_colouring=colouring, hot_entry_threshold=profiling
        )
        rtl = Device(
            backend="rtl",
            cache_size_bytes=CACHE,
            backend_options={"inst_stall": 0.2, "result_stall": 0.3, "seed": seed + call},
            **config,
        )
        golden = Device(cache_size_bytes=CACHE, **config)
        fp32_vsize, q8_vsize = vsizes[2 * call], vsizes[2 * call + 1]
        tables = {
            "f": random_table(rng, 400, int(rng.choice(VSIZE_DIMS[fp32_vsize][0])), False),
            "q": random_table(rng, 300, int(rng.choice(VSIZE_DIMS[q8_vsize][1])), True),
        }
        # Special values in a few fp32 elements: inf, -inf (their sum across ranks is a NaN) and NaNs.
        special = tables["f"].reshape(-1)
        spots = rng.choice(special.size, 12, replace=False)
        special[spots] = np.array([np.inf, -np.inf, np.nan, -0.0] * 3, np.float32)
        for dev in (rtl, golden):
            for name, table in tables.items():
                dev.load_table(name, table)
        requests = random_requests(rng, tables)
        got, want = rtl.run(requests), golden.run(requests)
        for k, (g, w, request) in enumerate(zip(got, want, requests)):
            name, idx, lengths = request[:3]
            weights = request[3] if len(request) == 4 else None
            with np.errstate(invalid="ignore"):
                hardware = reference(golden, name, tables[name], idx, lengths, weights=weights)
            nan = np.isnan(hardware)
            assert same_bits(g, w) and np.array_equal(np.isnan(g), nan) and same_bits(g[~nan], hardware[~nan]), (
                f"seed {seed} call {call} request {k} ({name}, D={tables[name].shape[1]}, "
                f"weights={weights is not None})"
            )
        report = rtl.report
        assert report.illegal == report.bad_rank == report.malformed == report.eop_mismatches == 0, (seed, report)
        assert report.cache_hits + report.cache_misses == report.lines, (seed, report)
        assert report.cycles > 0 and report.speedup == report.baseline_cycles / report.cycles
        assert set(report.dram_commands) == {(0, d, r) for d in range(dimms) for r in range(ranks)}
        reads = sum(c["RD"] for c in report.dram_commands.values())
        assert reads == report.cache_misses, (seed, report)
        assert all(r["idle"] == 1 for r in rtl.backend.last_results), f"seed {seed}: the PU is not idle at the end"
        rtl.reset()
        sample(points, rtl.compile(requests), colouring=colouring, profiling=profiling, report=report)
    export_points(coverage_dir(), f"driver-rtl-{ranks}x{dimms}", points, context=f"seed {seed}")


def _job(dev, call, *, words, issue, reset_at=None, resume_at=None, stall=0.2, seed=1):
    stream = call.dimms[0]
    return DimmJob(
        words=words,
        issue_cycles=issue,
        images=dev.image.dimm_rows(stream.channel, stream.dimm, dev.ranks_per_dimm),
        expected_beats=expected_beats(call, dev.backend.config.lanes) if reset_at is None else 0,
        timeout_cycles=200_000,
        inst_stall=stall,
        result_stall=stall,
        seed=seed,
        reset_at=reset_at,
        resume_at=resume_at,
    )


def _run(dev, job, tmp_path, name):
    return run_job(job, dev.backend.params, tmp_path / name, name=name)


def _beats(result, prefix=""):
    """The result beats of a job (``prefix="pre_"``: those that left before its reset)."""
    return [
        _Beat(int(t), int(b), bool(last), d)
        for t, b, last, d in zip(
            result[prefix + "tag"], result[prefix + "beat"], result[prefix + "last"], result[prefix + "data"]
        )
    ]


def _bad_words(rng, count, ranks):
    """Undefined opcodes, lookups to a rank the DIMM lacks, malformed lookups (vsize 0,
    unaligned, crossing the row end): the words and their kinds (``illegal``, ``bad_rank``,
    ``vsize0``, ``unaligned``, ``crossing``)."""
    words, kinds = [], []
    for _ in range(count):
        kind = rng.choice(["illegal", "malformed"] + (["bad_rank"] if ranks < 4 else []))
        rank = int(rng.integers(ranks, 4)) if kind == "bad_rank" else int(rng.integers(0, ranks))
        column = int(rng.choice([0, 13, 1016]))
        vsize = 0 if column == 0 and kind == "malformed" else (2 if column == 1016 else 1)
        daddr = int(
            daddr_compose(
                rank=rank,
                bank_group=int(rng.integers(0, 4)),
                bank=int(rng.integers(0, 4)),
                row=int(rng.integers(0, 100)),
                column=column if kind == "malformed" else 0,
            )
        )
        word = words_to_ints(
            pack(
                {
                    "opcode": Opcode.SUM,
                    "ddr_cmd": 6,
                    "daddr": daddr,
                    "vsize": vsize if kind == "malformed" else 1,
                    "weight": 1.0,
                    "locality": 1,
                    "psum_tag": 0,
                }
            )
        )[0]
        if kind == "illegal":
            word = (word & ~0xF) | int(rng.choice([0, 5, 6, 7, 11, 12, 13, 14, 15]))
        words.append(word)
        kinds.append(kind if kind != "malformed" else {0: "vsize0", 13: "unaligned", 1016: "crossing"}[column])
    return words, kinds


def test_illegal_words_between_packets_are_counted_and_change_nothing(tmp_path):
    seed = SEED + 1
    rng = np.random.default_rng(seed)
    dev = Device(backend="rtl", cache_size_bytes=CACHE, ranks_per_dimm=2)
    table = random_table(rng, 500, 32, False)
    dev.load_table("t", table)
    lengths = random_lengths(rng, 40, high=6)
    idx = rng.integers(0, 500, int(lengths.sum()))
    call = dev.compile([("t", idx, lengths)])
    stream = call.dimms[0]
    words, issue, kinds = [], [], []
    where = {"between_packets": 0, "inside_packet": 0}
    ints = words_to_ints(stream.words)
    for k, word in enumerate(ints):
        words.append(word)
        issue.append(int(stream.issue_cycles[k]))
        between = k in stream.eop_index.tolist()
        if between or rng.random() < 0.05:
            bad, what = _bad_words(rng, int(rng.integers(1, 4)), 2)
            words += bad
            issue += [issue[-1]] * len(bad)
            kinds += what
            where["between_packets" if between else "inside_packet"] += 1
    result = _run(
        dev, _job(dev, call, words=ints_to_words(words), issue=np.array(issue), seed=seed), tmp_path, "illegal"
    )
    counters = result["counters"]
    malformed = sum(kinds.count(k) for k in ("vsize0", "unaligned", "crossing"))
    assert (counters["illegal"], counters["bad_rank"], counters["malformed"]) == (
        kinds.count("illegal"),
        kinds.count("bad_rank"),
        malformed,
    ), f"seed {seed}: {counters}"
    groups = split_packets(_beats(result), len(call.packets))
    got = np.concatenate([packet_vectors(g, p, 4)[:, :32] for g, p in zip(groups, call.packets)])
    assert same_bits(got, reference(dev, "t", table, idx, lengths)), f"seed {seed}"
    points = {
        "driver.rtl.bad_words": {k: kinds.count(k) for k in ("illegal", "bad_rank", "vsize0", "unaligned", "crossing")},
        "driver.rtl.bad_word_place": where,
    }
    export_points(coverage_dir(), "driver-rtl-bad-words", points, context=f"seed {seed}")


def test_reset_in_the_middle_of_a_packet_then_a_clean_batch(tmp_path):
    """Reset while batch A is in flight (lookups queued, a drain maybe under way), the DRAM
    models and checkers keep running; batch B after the reset comes out bit-exact; beats
    before the reset are whole drains of A plus at most one cut drain without ``last``."""
    _reset_then_clean_batch(SEED + 2, tmp_path)


def _reset_then_clean_batch(seed, tmp_path):
    rng = np.random.default_rng(seed)
    dev = Device(backend="rtl", cache_size_bytes=CACHE, ranks_per_dimm=2)
    table = random_table(rng, 2000, 48, False)
    dev.load_table("t", table)
    batches = []
    for _ in range(2):
        lengths = random_lengths(rng, 48, high=10)
        batches.append((rng.integers(0, 2000, int(lengths.sum())), lengths))
    call_a = dev.compile([("t", *batches[0])])
    dev.reset()  # B is compiled for a PU fresh out of reset
    call_b = dev.compile([("t", *batches[1])])
    a, b = call_a.dimms[0], call_b.dimms[0]
    words = np.concatenate([a.words, b.words])
    issue = np.concatenate([a.issue_cycles, b.issue_cycles])
    for reset_at in (int(rng.integers(300, 900)), int(rng.integers(900, 2500))):
        job = _job(dev, call_b, words=words, issue=issue, reset_at=reset_at, resume_at=len(a.words), seed=seed)
        job.expected_beats = expected_beats(call_b, 4)
        result = _run(dev, job, tmp_path, f"reset{reset_at}")
        groups = split_packets(_beats(result), len(call_b.packets))
        got = np.concatenate([packet_vectors(g, p, 4)[:, :48] for g, p in zip(groups, call_b.packets)])
        assert same_bits(got, reference(dev, "t", table, *batches[1])), f"seed {seed} reset at {reset_at}"
        # Before the reset: A's drains in order, `last` only on the final beat of a whole drain,
        # so a drain the reset cut shows no `last`.
        before = _beats(result, prefix="pre_")
        per_tag = -(-48 // 4)
        expected_a = [
            (t, k, t == p.bags - 1 and k == per_tag - 1)
            for p in call_a.packets
            for t in range(p.bags)
            for k in range(per_tag)
        ]
        assert [(x.tag, x.beat, x.last) for x in before] == expected_a[: len(before)], (
            f"seed {seed} reset at {reset_at}"
        )
        assert result["counters"]["illegal"] == result["counters"]["malformed"] == 0


def test_dram_trace_lists_every_command(tmp_path):
    rng = np.random.default_rng(SEED + 3)
    trace = tmp_path / "trace.csv"
    dev = Device(backend="rtl", cache_size_bytes=CACHE, ranks_per_dimm=2, dram_trace=trace)
    dev.load_table("t", random_table(rng, 300, 16, False))
    dev.sls("t", rng.integers(0, 300, 60), np.full(6, 10))
    with open(trace) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["cycle", "channel", "dimm", "rank", "command", "bank_group", "bank", "row", "column"]
    counts = {}
    for row in rows:
        key = (int(row["channel"]), int(row["dimm"]), int(row["rank"]))
        counts.setdefault(key, {"ACT": 0, "RD": 0, "PRE": 0, "REF": 0})[row["command"]] += 1
    assert counts == dev.report.dram_commands
    cycles = [int(r["cycle"]) for r in rows]
    assert cycles == sorted(cycles)
    # Reading the trace back: every RD names a row an ACT opened in its bank.
    open_rows = {}
    for row in rows:
        bank = (row["rank"], row["bank_group"], row["bank"])
        if row["command"] == "ACT":
            open_rows[bank] = row["row"]
        elif row["command"] == "PRE":
            open_rows.pop(bank, None)
        elif row["command"] == "RD":
            assert open_rows.get(bank) == row["row"], row


def test_a_call_without_instructions_takes_no_cycles_on_rtl_and_perf():
    reports = []
    for backend in ("rtl", "perf"):
        dev = Device(backend=backend, cache_size_bytes=CACHE, ranks_per_dimm=2)
        assert dev.run([]) == []
        reports.append(dev.report)
    assert [r.cycles for r in reports] == [0, 0]
    assert reports[0].dram_commands == reports[1].dram_commands  # the recovery after reset only


@pytest.mark.parametrize("ranks,dimms", [(2, 1), (4, 2), (1, 2)])
def test_many_random_calls_equal_golden(ranks, dimms):
    """A call on the harness costs a fraction of a second: many random calls per topology,
    each with its own tables, operators, pauses on both host streams and profiling."""
    for call in range(12):
        seed = SEED + 1000 * ranks + 100 * dimms + call
        rng = np.random.default_rng(seed)
        stall = float(rng.choice([0.0, 0.1, 0.4]))
        config = dict(
            dimms_per_channel=dimms,
            ranks_per_dimm=ranks,
            page_colouring=bool(rng.integers(0, 2)),
            hot_entry_threshold=[None, 1, 2][int(rng.integers(0, 3))],
        )
        options = {"inst_stall": stall, "result_stall": float(rng.choice([0.0, 0.3])), "seed": seed}
        rtl = Device(backend="rtl", cache_size_bytes=CACHE, backend_options=options, **config)
        golden = Device(cache_size_bytes=CACHE, **config)
        vsizes = rng.integers(1, 5, 2)
        tables = {
            "f": random_table(rng, 500, int(rng.choice(VSIZE_DIMS[int(vsizes[0])][0])), False),
            "q": random_table(rng, 500, int(rng.choice(VSIZE_DIMS[int(vsizes[1])][1])), True),
        }
        for dev in (rtl, golden):
            for name, table in tables.items():
                dev.load_table(name, table)
        requests = random_requests(rng, tables)
        for k, (g, w) in enumerate(zip(rtl.run(requests), golden.run(requests))):
            assert same_bits(g, w), f"seed {seed} request {k}"
        report = rtl.report
        assert report.illegal == report.bad_rank == report.malformed == report.eop_mismatches == 0, (seed, report)
        assert all(r["idle"] == 1 and r["unwritten_reads"] == 0 for r in rtl.backend.last_results), f"seed {seed}"


@pytest.mark.soak
def test_soak_long_calls_and_resets(tmp_path):
    """Millions of DRAM cycles: long calls over many refresh intervals on 4 ranks and 2 DIMMs,
    each bit-exact with golden, and jobs reset at a random moment, each followed by a clean
    batch. ``pytest -m soak`` (not in the default run); ``RECNMP_SOAK_ROUNDS`` rounds."""
    rounds = int(os.environ.get("RECNMP_SOAK_ROUNDS", "6"))
    cycles = 0
    for round_ in range(rounds):
        seed = SEED + 77_000 + round_
        rng = np.random.default_rng(seed)
        config = dict(dimms_per_channel=2, ranks_per_dimm=4, hot_entry_threshold=2)
        rtl = Device(
            backend="rtl", cache_size_bytes=CACHE, backend_options={"inst_stall": 0.05, "seed": seed}, **config
        )
        golden = Device(cache_size_bytes=CACHE, **config)
        table = random_table(rng, 50_000, 32, False)
        for dev in (rtl, golden):
            dev.load_table("t", table)
        lengths = rng.integers(40, 120, 1024)
        indices = rng.integers(0, 50_000, int(lengths.sum()))
        assert same_bits(rtl.sls("t", indices, lengths), golden.sls("t", indices, lengths)), f"seed {seed}"
        cycles += rtl.report.cycles
        assert rtl.report.dram_commands[(0, 0, 0)]["REF"] > 5, "several refresh intervals"
        (tmp_path / f"round{round_}").mkdir()
        _reset_then_clean_batch(seed, tmp_path / f"round{round_}")
    print(f"soak: {rounds} rounds, {cycles} DRAM cycles per DIMM")
    assert cycles > 1_000_000 or rounds < 6
