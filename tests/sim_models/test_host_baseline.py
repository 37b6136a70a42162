"""Host-baseline DDR4 model (``sim_models.host_baseline``): protocol legality against the
protocol checker, the shared data bus, physical limits (exact or tight), the policy, and a
one-rank comparison with the RTL's RankScheduler in the Amaranth simulator.

Random stimulus uses ``SEED`` (``RECNMP_SEED`` overrides it); every test prints its seed and
names it in its assertion messages."""

import os
import random

import numpy as np
import pytest

from hw.ddr4 import DDR4Geometry, DDR4Timing, DramCommand
from hw.rank_scheduler import RankScheduler
from sim_models.host_baseline import COMMANDS, TRACE_DTYPE, host_baseline
from sim_models.host_reads import HOST_READ_DTYPE, host_reads
from tests.hw.test_rank_scheduler import random_legal_timing, simulate
from verif.ddr4_checker import DDR4ProtocolChecker

T = DDR4Timing()
G = DDR4Geometry()
SEED = int(os.environ.get("RECNMP_SEED", "20240611"))


def make_reads(n, *, channel=0, rank=0, bank_group=0, bank=0, row=0, line=0):
    """``n`` HOST_READ_DTYPE records with the given fields (scalars or arrays)."""
    reads = np.zeros(n, HOST_READ_DTYPE)
    for name, value in dict(channel=channel, rank=rank, bank_group=bank_group, bank=bank, row=row, line=line).items():
        reads[name] = value
    return reads


def random_reads(rng, n, *, channels=1, ranks=1, rows=1 << 16):
    return make_reads(
        n,
        channel=rng.integers(0, channels, n),
        rank=rng.integers(0, ranks, n),
        bank_group=rng.integers(0, G.bank_groups, n),
        bank=rng.integers(0, G.banks_per_group, n),
        row=rng.integers(0, rows, n),
        line=rng.integers(0, G.lines_per_row, n),
    )


def row_hit_stream(n, ranks=1):
    """Reads cycling over the bank groups first (then banks, then ranks in runs of 16),
    row 7 of every bank: after the first 16 per rank, every read is a row hit."""
    k = np.arange(n)
    return make_reads(n, rank=(k // 16) % ranks, bank_group=k % 4, bank=(k // 4) % 4, row=7, line=(k // 64) % 128)


def check_protocol(result, timing):
    """Feed every (channel, rank)'s commands to a DDR4ProtocolChecker; return the checkers."""
    trace = result.trace
    checkers = {}
    for rec in trace:
        key = (int(rec["channel"]), int(rec["rank"]))
        checker = checkers.setdefault(key, DDR4ProtocolChecker(timing=timing))
        checker.command(
            int(rec["cycle"]),
            DramCommand(int(rec["cmd"])),
            bank_group=int(rec["bank_group"]),
            bank=int(rec["bank"]),
            row=int(rec["row"]),
            column=int(rec["column"]),
        )
    for (channel, _), checker in checkers.items():
        checker.check_refresh(result.channel_cycles[channel])  # a channel's run ends with its last burst
    return checkers


def check_data_bus(result, timing, rank_switch):
    """Bursts never overlap on a channel's data bus; bursts of different ranks are at least
    ``rank_switch`` idle cycles apart. Returns the smallest rank-to-rank gap seen."""
    trace = result.trace
    smallest = None
    for ch in np.unique(trace["channel"]):
        rd = trace[(trace["channel"] == ch) & (trace["cmd"] == int(DramCommand.RD))]
        assert np.all(np.diff(rd["cycle"]) > 0)
        gap = np.diff(rd["cycle"]) - timing.tBL  # idle data-bus cycles between two bursts
        switch = rd["rank"][1:] != rd["rank"][:-1]
        assert gap.min() >= 0, f"bursts overlap on channel {ch}"
        if switch.any():
            assert gap[switch].min() >= rank_switch, f"rank switch of {gap[switch].min()} idle cycles on channel {ch}"
            low = int(gap[switch].min())
            smallest = low if smallest is None else min(smallest, low)
    return smallest


# -- parameters -------------------------------------------------------------------------------


def test_bad_parameters_are_rejected():
    reads = make_reads(4)
    for kwargs, words in [
        ({"queue_depth": 0}, "queue_depth"),
        ({"queue_depth": True}, "queue_depth"),
        ({"rank_switch": -1}, "rank_switch"),
        ({"rank_switch": 1.5}, "rank_switch"),
        ({"starvation_limit": 0}, "starvation_limit"),
        ({"refresh": 1}, "refresh"),
        ({"stagger_refresh": "yes"}, "stagger_refresh"),
        ({"trace": None}, "trace"),
        ({"timing": {"tRCD": 16}}, "timing"),
        ({"geometry": None}, "geometry"),
        ({"channels": 0}, "channels"),
        ({"ranks_per_channel": 0}, "ranks_per_channel"),
    ]:
        with pytest.raises(ValueError, match=words):
            host_baseline(reads, **kwargs)
    with pytest.raises(ValueError, match="structured"):
        host_baseline(np.zeros(4, np.int64))
    with pytest.raises(ValueError, match=r"lacks the field\(s\) \['line'\]"):
        host_baseline(np.zeros(2, [(f, np.int32) for f in ("channel", "rank", "bank_group", "bank", "row")]))
    for name, bad, high in [("bank_group", 4, 3), ("bank", 4, 3), ("row", 1 << 16, (1 << 16) - 1), ("line", 128, 127)]:
        r = make_reads(3)
        r[name][1] = bad
        with pytest.raises(ValueError, match=rf"read 1: {name} {bad} is out of range 0\.\.{high}"):
            host_baseline(r)
    with pytest.raises(ValueError, match=r"read 2: rank 2 is out of range 0\.\.1"):
        host_baseline(make_reads(3, rank=[0, 1, 2]), ranks_per_channel=2)
    with pytest.raises(ValueError, match=r"read 0: channel -1 is out of range"):
        host_baseline(make_reads(1, channel=-1))


def test_empty_stream_and_result_fields():
    empty = host_baseline(np.zeros(0, HOST_READ_DTYPE), channels=2, ranks_per_channel=2, trace=True)
    assert (empty.cycles, empty.reads, empty.bytes_read, empty.channel_cycles) == (0, 0, 0, (0, 0))
    assert empty.commands == {(c, r): dict.fromkeys(COMMANDS, 0) for c in range(2) for r in range(2)}
    assert empty.trace.dtype == TRACE_DTYPE and empty.trace.size == 0
    one = host_baseline(make_reads(1, bank_group=1, bank=2, row=100, line=3), trace=True)
    # admitted in cycle 0, ACT in 1, RD tRCD later, last beat tCL + tBL - 1 after it: 37 cycles
    assert one.cycles == 1 + T.tRCD + T.tCL + T.tBL == 37
    assert [tuple(r)[1:] for r in one.trace] == [(0, 0, 1, 1, 2, 100, 0), (0, 0, 2, 1, 2, 100, 24)]
    assert [r["cycle"] for r in one.trace] == [1, 1 + T.tRCD]
    assert (one.row_hits, one.row_misses, one.row_conflicts, one.bytes_read, one.data_bus_busy) == (0, 1, 0, 64, (4,))


def test_reads_enter_the_queue_one_per_cycle_in_program_order():
    """Read k enters in cycle k at the earliest and is scheduled from k + 1: with ACT spacing
    of one cycle (tRRD 1, tFAW 4), the ACT of read 2 (another bank, behind a conflict that
    waits) comes in cycle 3, not earlier; with a queue of 2 it waits for read 0's RD."""
    timing = DDR4Timing(tRRD_S=1, tRRD_L=1, tFAW=4)
    reads = make_reads(3, bank=[0, 0, 1], row=[0, 1, 0])
    acts = {}
    for depth in (32, 2):
        result = host_baseline(reads, timing=timing, queue_depth=depth, refresh=False, trace=True)
        act = result.trace[result.trace["cmd"] == int(DramCommand.ACT)]
        acts[depth] = [(int(a["cycle"]), int(a["bank"]), int(a["row"])) for a in act]
    assert acts[32][:2] == [(1, 0, 0), (3, 1, 0)]
    # depth 2: read 2 enters in the cycle read 0's RD frees its entry (1 + tRCD) and ACTs next
    assert acts[2][:2] == [(1, 0, 0), (2 + timing.tRCD, 1, 0)]


# -- protocol legality ------------------------------------------------------------------------


@pytest.mark.parametrize("trial", range(6))
def test_every_command_is_legal_for_the_protocol_checker(trial):
    """Random traffic over 2 channels x 4 ranks x every bank, few rows (hits, misses and
    conflicts), short tREFI (refresh all the time); trial 0 the DDR4-2400 set with tREFI
    300, the others random legal timing sets (boundaries often) with random queue depth,
    rank switch, starvation limit and refresh stagger. Every command of every rank passes
    DDR4ProtocolChecker, the checker's counts equal the result's, every read is served
    exactly once, the data bus is never overbooked."""
    seed = SEED + trial
    print(f"seed {seed}")
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    if trial == 0:
        timing = DDR4Timing(tREFI=300, tRFC=60)
        kwargs = dict(queue_depth=32, rank_switch=2, starvation_limit=64, stagger_refresh=True)
    else:
        timing = random_legal_timing(rng)
        kwargs = dict(
            queue_depth=rng.choice([1, 2, 5, 16, 32]),
            rank_switch=rng.choice([0, 1, 2, 3, 7]),
            starvation_limit=rng.choice([1, 8, 64, 10**6]),
            stagger_refresh=rng.random() < 0.5,
        )
    reads = random_reads(nrng, 3000, channels=2, ranks=4, rows=3)
    result = host_baseline(reads, timing=timing, trace=True, **kwargs)
    where = f"seed {seed}: {timing}, {kwargs}"
    checkers = check_protocol(result, timing)
    assert set(checkers) == set(result.commands), where
    for key, checker in checkers.items():
        assert {c.name: checker.counts[c] for c in map(DramCommand.__getitem__, COMMANDS)} == result.commands[key]
        intervals = result.channel_cycles[key[0]] // timing.tREFI
        assert checker.refreshes >= intervals - 1 >= 1, (where, key, checker.refreshes)
    rd = result.trace[result.trace["cmd"] == int(DramCommand.RD)]
    served = sorted(zip(rd["channel"], rd["rank"], rd["bank_group"], rd["bank"], rd["row"], rd["column"] // 8))
    wanted = sorted(zip(*(reads[f] for f in ("channel", "rank", "bank_group", "bank", "row", "line"))))
    assert served == wanted, where
    assert result.row_hits + result.row_misses + result.row_conflicts == result.reads == reads.size
    acts = sum(c["ACT"] for c in result.commands.values())
    assert result.row_misses + result.row_conflicts <= acts, where
    assert check_data_bus(result, timing, kwargs["rank_switch"]) == kwargs["rank_switch"], where
    for ch in range(2):
        last_rd = rd["cycle"][rd["channel"] == ch].max()
        assert result.channel_cycles[ch] == last_rd + timing.tCL + timing.tBL
    assert result.cycles == max(result.channel_cycles)


def test_refresh_sequence_and_stagger():
    """Refresh: no ACT to a rank from the cycle its refresh falls due until its REF, REF within
    tRAS + tRP + one cycle per bank of falling due, nothing to the rank for tRFC after; a RD
    while it is owed never delays its bank's PRE; ranks fall due together unless staggered
    (then rank r of R first at (r + 1) tREFI / R)."""
    timing = DDR4Timing(tREFI=1000, tRFC=100)
    reads = random_reads(np.random.default_rng(SEED), 4000, ranks=2, rows=4)
    for stagger, first_due in ((False, (1000, 1000)), (True, (500, 1000))):
        result = host_baseline(reads, timing=timing, stagger_refresh=stagger, trace=True)
        check_protocol(result, timing)
        for rank in range(2):
            mine = result.trace[result.trace["rank"] == rank]
            refs = mine["cycle"][mine["cmd"] == int(DramCommand.REF)]
            due_in_run = (result.cycles - first_due[rank]) // timing.tREFI + 1  # refreshes falling due in the run
            assert due_in_run - 1 <= len(refs) <= due_in_run, (stagger, rank, len(refs), due_in_run)
            for k, ref in enumerate(refs):
                due = first_due[rank] + k * timing.tREFI
                window = mine[(mine["cycle"] >= due) & (mine["cycle"] < ref)]
                assert not np.any(window["cmd"] == int(DramCommand.ACT)), (stagger, rank, k)
                assert set(window["cmd"]) <= {int(DramCommand.PRE), int(DramCommand.RD)}
                assert due <= ref <= due + timing.tRAS + timing.tRP + G.banks, (stagger, rank, due, ref)
                after = mine[(mine["cycle"] > ref) & (mine["cycle"] < ref + timing.tRFC)]
                assert after.size == 0, (stagger, rank, ref)
            # a RD while a refresh is owed never delays its bank's PRE (tRAS still dominates)
            pending = np.zeros(mine.size, bool)
            for k, ref in enumerate(refs):
                pending |= (mine["cycle"] >= first_due[rank] + k * timing.tREFI) & (mine["cycle"] < ref)
            last_act, last_rd, checked = {}, {}, 0
            for rec, owed in zip(mine, pending):
                bank, cycle = (int(rec["bank_group"]), int(rec["bank"])), int(rec["cycle"])
                if rec["cmd"] == int(DramCommand.ACT):
                    last_act[bank] = cycle
                elif rec["cmd"] == int(DramCommand.RD):
                    if owed:
                        pre_at = max(last_act[bank] + timing.tRAS, last_rd.get(bank, -(10**9)) + timing.tRTP)
                        assert cycle + timing.tRTP <= pre_at, (stagger, rank, cycle, bank)
                        checked += 1
                    last_rd[bank] = cycle
            assert checked > 0, (stagger, rank)


# -- physical limits --------------------------------------------------------------------------


def test_row_hits_over_bank_groups_fill_the_data_bus_exactly():
    """Row hits cycling over the 4 bank groups, no refresh: RDs tCCD_S = tBL apart, the data
    bus 100 % busy from the first burst: exactly 1 + tRCD + tBL (n - 1) + tCL + tBL cycles."""
    n = 4000
    result = host_baseline(row_hit_stream(n), refresh=False)
    assert result.cycles == 1 + T.tRCD + T.tBL * (n - 1) + T.tCL + T.tBL
    assert (result.row_misses, result.row_hits, result.commands[(0, 0)]["PRE"]) == (16, n - 16, 0)
    assert result.data_bus_busy == (n * T.tBL,)
    # 2 ranks in runs of 16: FR-FCFS serves the ready rank, so rank switches cost little
    two = host_baseline(row_hit_stream(n, ranks=2), refresh=False)
    switches = n // 16 - 1
    assert n * T.tBL < two.cycles <= 1 + T.tRCD + n * T.tBL + switches * 2 + T.tCL, two.cycles
    assert two.data_bus_busy[0] / two.cycles > 0.985


def test_row_hits_with_refresh_lose_only_the_refresh_time():
    """A long row-hit stream with refresh: every tREFI the bus idles for at least
    tRTP + tRP + tRFC + tRCD - tBL = 457 cycles (the RTL's floor) and not much more: the
    utilisation is 1 - 457 / 9360 = 95.12 % to within 0.1 %."""
    n = 200_000
    result = host_baseline(row_hit_stream(n))
    floor = T.tRTP + T.tRP + T.tRFC + T.tRCD - T.tBL
    assert floor == 457
    util = result.data_bus_utilisation[0]
    assert 1 - floor / T.tREFI - 0.001 <= util <= 1 - floor / T.tREFI + 0.0005, util
    assert result.commands[(0, 0)]["REF"] == result.cycles // T.tREFI


def test_random_rows_on_one_rank_are_bounded_by_tfaw_and_reach_it():
    """Random rows on one rank (every read a new row): the ACT rate never beats 4 per tFAW,
    and with 32 queued reads over 16 banks it reaches it: within 0.3 % of the bound without
    refresh, within 0.5 % of it times the refresh factor (1 - 457/9360) with refresh."""
    seed = SEED
    print(f"seed {seed}")
    reads = random_reads(np.random.default_rng(seed), 20_000)
    for refresh in (False, True):
        result = host_baseline(reads, refresh=refresh)
        acts = result.commands[(0, 0)]["ACT"]
        assert acts >= reads.size - G.banks
        # the k-th ACT (from 0) is at least tFAW * (k // 4) after the first, which is in cycle 1;
        # the last ACT is followed by its RD tRCD later, whose burst ends tCL + tBL after it
        bound = 1 + T.tFAW * ((acts - 1) // 4) + T.tRCD + T.tCL + T.tBL
        assert result.cycles >= bound, (seed, refresh)
        ratio = result.cycles / bound
        if refresh:
            assert ratio <= 1.005 / (1 - 457 / T.tREFI), (seed, ratio)
        else:
            assert ratio <= 1.003, (seed, ratio)


@pytest.mark.parametrize("trial", range(4))
def test_never_faster_than_the_data_bus_or_tfaw(trial):
    """Any stream, any parameters: each channel needs at least tBL per line on its data bus,
    and each rank's ACTs are at most 4 per tFAW (bound as above)."""
    seed = SEED + 100 + trial
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    channels, ranks = int(rng.choice([1, 2, 4])), int(rng.choice([1, 2, 4]))
    reads = random_reads(rng, 20_000, channels=channels, ranks=ranks, rows=int(rng.choice([1, 4, 1 << 16])))
    result = host_baseline(
        reads, queue_depth=int(rng.choice([8, 32, 64])), rank_switch=int(rng.integers(0, 4)), channels=channels
    )
    for ch in range(channels):
        lines = int((reads["channel"] == ch).sum())
        assert result.channel_cycles[ch] >= lines * T.tBL + T.tCL + 1, (seed, ch)
        assert result.data_bus_busy[ch] == lines * T.tBL
        for r in range(ranks):
            acts = result.commands[(ch, r)]["ACT"]
            if acts:
                assert result.channel_cycles[ch] >= 1 + T.tFAW * ((acts - 1) // 4) + T.tRCD + T.tCL + T.tBL, seed
    assert result.cycles == max(result.channel_cycles)


# -- policy -------------------------------------------------------------------------------------


def test_channels_are_independent():
    """A multi-channel run is each channel's sub-stream run alone."""
    reads = random_reads(np.random.default_rng(SEED + 7), 6000, channels=3, ranks=2, rows=8)
    both = host_baseline(reads, channels=3)
    for ch in range(3):
        sub = reads[reads["channel"] == ch]
        sub["channel"] = 0
        alone = host_baseline(sub, ranks_per_channel=2)
        assert alone.cycles == both.channel_cycles[ch]
        assert [alone.commands[(0, r)] for r in range(2)] == [both.commands[(ch, r)] for r in range(2)]


def test_starvation_limit_caps_the_wait_of_a_row_conflict():
    """One read to row 2 of a bank behind a stream of hits to row 1 of that bank: without a
    cap (a huge limit) FR-FCFS serves every hit first; with the limit its ACT comes soon
    after the limit (the hits older than it drain: at most the queue), and it is the only
    extra PRE/ACT pair."""
    n = 600
    rows = np.ones(n, np.int64)
    rows[1] = 2
    reads = make_reads(n, bank_group=2, bank=1, row=rows, line=np.arange(n) % 128)

    def act_of_row_2(limit):
        result = host_baseline(reads, starvation_limit=limit, refresh=False, trace=True)
        acts = result.trace[(result.trace["cmd"] == int(DramCommand.ACT)) & (result.trace["row"] == 2)]
        return int(acts["cycle"][0]), result

    late, _ = act_of_row_2(10**9)
    assert late > (n - 2) * T.tCCD_L  # after all the hits (same bank group: tCCD_L apart)
    soon, result = act_of_row_2(64)
    assert soon <= 64 + 1 + T.tRCD + T.tRTP + T.tRP + 32 * T.tCCD_L, soon
    assert result.commands[(0, 0)]["ACT"] == 3 and result.row_conflicts == 2  # row 2, then row 1 again


# -- the driver's stream -------------------------------------------------------------------------


def test_runs_on_the_drivers_host_reads():
    """Device + compile + host_reads: the model reads every line of every lookup and is never
    faster than the data-bus bound of the report's analytical baseline."""
    from sw_driver import Device

    dev = Device(channels=2, dimms_per_channel=1, ranks_per_dimm=2)
    rng = np.random.default_rng(SEED)
    dev.load_table("t", rng.standard_normal((4096, 32)).astype(np.float32))  # 128 B rows: 2 lines
    call = dev.compile([("t", rng.integers(0, 4096, 800), np.full(10, 80))])
    reads = host_reads(call.lookups, dev.address_map)
    result = host_baseline(reads, channels=2, ranks_per_channel=2)
    assert result.reads == reads.size == 1600 and result.bytes_read == 1600 * 64
    lines = np.bincount(reads["channel"], minlength=2)
    assert result.cycles >= lines.max() * T.tBL
    assert sum(c["RD"] for c in result.commands.values()) == 1600


# -- against the RTL ----------------------------------------------------------------------------

#: (stream, timing): random rows at DDR4-2400 (tFAW-bound; tRFC 160 only shortens the RTL's
#: recovery from reset, no refresh falls due in the run), and 3 rows per bank (hits and
#: conflicts) with a refresh every 1000 cycles.
RTL_CASES = {
    "random_rows": ("random", DDR4Timing(tRFC=160)),
    "three_rows_refresh": ("three_rows", DDR4Timing(tREFI=1000, tRFC=160)),
}


@pytest.mark.parametrize("case", sorted(RTL_CASES))
def test_one_rank_cycles_are_close_to_the_rtl_rank_scheduler(case):
    """The same 400 back-to-back reads on one rank through the RTL's RankScheduler
    (Amaranth simulator, ``tests.hw.test_rank_scheduler.simulate``) and through the model.
    Cycles from the first acceptance (after the RTL's recovery from reset) to the last
    beat. With the RTL's queue depth (16) the model is within 2 % (measured 0.0-1.2 %);
    with its default 32 within 4 % (0-2 %, usually faster: more candidates). They differ
    because the model admits a read into the entry freed in the same cycle, its refresh
    PREs and REF take priority over RDs, it may ACT for a younger read of a bank while an
    older one waits, and the RTL's first refresh comes tREFI after its recovery while the
    model's is at tREFI."""
    kind, timing = RTL_CASES[case]
    seed = SEED + len(case)
    print(f"seed {seed}")
    rng = random.Random(seed)
    n = 400
    requests = []
    for k in range(n):
        row = rng.randrange(1 << 16) if kind == "random" else rng.randrange(3)
        requests.append((0, rng.randrange(4), rng.randrange(4), row, rng.randrange(128), k % 64, 0))
    dut = RankScheduler(timing=timing)
    out = simulate(
        dut, requests, timing=timing, cycles=dut.recovery_cycles + 20 * n + 2000, serial=False, stop_when_done=True
    )
    assert out["counters"]["reads"] == n
    last_rd = max(cycle for cycle, cmd in out["commands"] if cmd == DramCommand.RD)
    rtl = last_rd + timing.tCL + timing.tBL - out["accepted"][0]
    reads = make_reads(
        n,
        bank_group=[r[1] for r in requests],
        bank=[r[2] for r in requests],
        row=[r[3] for r in requests],
        line=[r[4] for r in requests],
    )
    m16 = host_baseline(reads, timing=timing, queue_depth=16)
    m32 = host_baseline(reads, timing=timing)
    c = out["counters"]
    print(
        f"{case}: RTL {rtl} cycles (ACT {c['acts']}, hits/misses/conflicts {c['row_hits']}/{c['row_misses']}/"
        f"{c['row_conflicts']}); model depth 16 {m16.cycles} ({m16.cycles / rtl - 1:+.2%}, ACT "
        f"{m16.commands[(0, 0)]['ACT']}, {m16.row_hits}/{m16.row_misses}/{m16.row_conflicts}); "
        f"depth 32 {m32.cycles} ({m32.cycles / rtl - 1:+.2%})"
    )
    assert abs(m16.cycles / rtl - 1) <= 0.02, (seed, rtl, m16.cycles)
    assert abs(m32.cycles / rtl - 1) <= 0.04, (seed, rtl, m32.cycles)
    assert abs(m16.commands[(0, 0)]["ACT"] - c["acts"]) <= 0.03 * c["acts"], seed
    if kind == "random":  # every read its own row: the same classification as the RTL, exactly
        assert (m16.row_hits, m16.row_misses, m16.row_conflicts) == (
            c["row_hits"],
            c["row_misses"],
            c["row_conflicts"],
        )
