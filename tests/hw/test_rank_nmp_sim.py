"""RankNMP in the Amaranth simulator against sim_models.rank_nmp (docs/rank_nmp_semantics.md).

Random packets of every operator and vsize 1-7, special fp values in data and weights,
mid-packet CONFIG and INVALIDATE, illegal and malformed words of every rule, EOPs that do
not match their packet, long psum backpressure, several parameter sets, and a reset in the
middle of traffic with the DRAM (model and protocol checker) left running. Beats are
compared bit for bit (any NaN equals any NaN), the error and work counters exactly.

Seeds are fixed; ``RECNMP_SEED=n`` replaces the base seed. Every assertion names its seed.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from hw.ddr4 import DDR4Geometry, DDR4Timing
from hw.isa import ConfigRegister, Opcode, eop_daddr
from hw.rank_nmp import RankNMP
from hw.refresh_control import recovery_cycles
from sim_models.rank_nmp import COUNTERS, RankNMPModel, beats_equal
from verif.amaranth_harness import RankNMPHarness, parts_state
from verif.rank_image import RankImage

BASE_SEED = int(os.environ.get("RECNMP_SEED", "1"))
G = DDR4Geometry()
F32 = np.float32
LOOKUPS = (Opcode.SUM, Opcode.WSUM, Opcode.SUM_Q8, Opcode.WSUM_Q8)
ILLEGAL_OPCODES = (0, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF)
SPECIAL_WEIGHTS = (
    0x7FC00000,
    0x7FA00001,
    0xFFFFFFFF,
    0x7F800000,
    0xFF800000,  # NaNs, +-inf
    0x00000001,
    0x80000000,
    0x00000000,
    0x3F800000,
    0xC0400000,
)  # subnormal, +-0


def word(opcode, *, daddr=0, vsize=0, weight_bits=0x3F800000, locality=0, tag=0, ddr_cmd=0):
    """A 79-bit instruction word with raw fields (any opcode, any weight bits)."""
    return int(opcode) | ddr_cmd << 4 | int(daddr) << 7 | vsize << 39 | weight_bits << 42 | locality << 74 | tag << 75


def addr(bg, bank, row, column):
    return column | row << 10 | bank << 26 | bg << 28


def eop(mask, elements, reserved=0):
    return word(Opcode.EOP, daddr=int(eop_daddr(tag_mask=mask, elements=elements)) | reserved << 26)


def config(value, register=ConfigRegister.Q8_ELEMENTS):
    return word(Opcode.CONFIG, daddr=value | int(register) << 24)


def special_f32_bits(rng, n):
    """fp32 bit patterns: mostly ordinary, some NaN (with payloads), inf, subnormal, +-0."""
    v = (rng.standard_normal(n) * 3).astype(F32).view(np.uint32)
    kind = rng.integers(0, 40, n)
    v[kind == 0] = 0x80000000
    v[kind == 1] = 0
    v[kind == 2] = rng.integers(1, 1 << 23, (kind == 2).sum())  # subnormal
    v[kind == 3] = 0x7F800000
    v[kind == 4] = 0xFF800000
    v[kind == 5] = 0x7FA00001  # sNaN with payload
    v[kind == 6] = 0x7E967699  # 1e38
    return v


def table(rng, image, rows):
    """``rows`` vectors at random places (few DRAM rows per bank: row hits and conflicts),
    vsize 1-7, data of special fp32 values; returns [(daddr, vsize)]."""
    out, used = [], set()
    for _ in range(rows):
        vsize = int(rng.integers(1, 8))
        while True:
            bg, bank, row = (int(x) for x in rng.integers(0, 4, 2).tolist() + [rng.integers(0, 3)])
            col = int(rng.integers(0, G.lines_per_row - vsize + 1)) * G.burst_columns
            key = (bg, bank, row, col // 64)
            if key not in used:
                break
        used.add(key)
        data = special_f32_bits(rng, 16 * vsize).view(np.uint8)
        image.write(bank_group=bg, bank=bank, row=row, column=col, data=data)
        out.append((addr(bg, bank, row, col), vsize))
    return out


def random_words(rng, rows, *, lanes, max_elements, packets, lookups):
    """Packets of random lookups with every malformed rule, illegal words and control."""
    words = []
    d = min(max_elements, 64)
    max_fp32_vsize = max_elements // 16
    for _ in range(packets):
        tags, longest = set(), 1
        for _ in range(int(rng.integers(0, lookups + 1))):
            op = LOOKUPS[int(rng.integers(0, 4))]
            daddr, vsize = rows[int(rng.integers(0, len(rows)))]
            if op in (Opcode.SUM, Opcode.WSUM) and vsize > max_fp32_vsize and rng.random() < 0.8:
                vsize = int(rng.integers(1, max_fp32_vsize + 1)) if max_fp32_vsize else vsize
            tag = int(rng.integers(0, 16))
            weight = int(rng.choice(SPECIAL_WEIGHTS)) if rng.random() < 0.3 else int(special_f32_bits(rng, 1)[0])
            r = rng.random()
            if r < 0.04:
                words.append(config(int(rng.integers(1, max_elements + 1))))
                d = None  # the model knows D; the generator only needs a rough idea
            elif r < 0.06:
                words.append(word(Opcode.INVALIDATE, daddr=int(rng.integers(0, 1 << 32))))
            elif r < 0.08:
                words.append(word(int(rng.choice(ILLEGAL_OPCODES)), daddr=daddr, vsize=vsize, tag=tag))
            elif r < 0.13:
                words += malformed_words(rng, daddr, vsize, op, tag, max_elements)
            words.append(
                word(
                    op,
                    daddr=daddr,
                    vsize=vsize,
                    weight_bits=weight,
                    tag=tag,
                    locality=int(rng.integers(0, 2)),
                    ddr_cmd=int(rng.integers(0, 8)),
                )
            )
            tags.add(tag)
            longest = max(longest, 16 * vsize if op in (Opcode.SUM, Opcode.WSUM) else (d or 64))
        mask = 0
        for t in tags:
            if rng.random() < 0.9:  # sometimes a written tag is missing: a mismatch
                mask |= 1 << t
        if rng.random() < 0.5:
            mask |= 1 << int(rng.integers(0, 16))  # a tag with no lookup: zeros
        elements = min(longest, max_elements)
        r = rng.random()
        if r < 0.1:
            elements = int(rng.integers(1, elements + 1))  # shorter: a mismatch
        elif r < 0.13:
            words.append(eop(mask, elements, reserved=int(rng.integers(1, 64))))
            continue
        elif r < 0.16:
            words.append(eop(mask, int(rng.choice([0, max_elements + 1, 1023]))))
            continue
        words.append(eop(mask, elements))
    # At least one of each error kind, wherever it falls.
    daddr, vsize = rows[0]
    for extra in (
        [word(int(rng.choice(ILLEGAL_OPCODES)), daddr=daddr, vsize=vsize)],
        malformed_words(rng, daddr, vsize, Opcode.SUM, 0, max_elements),
        [word(Opcode.SUM_Q8, daddr=daddr, vsize=vsize, tag=3), eop(1 << 4, 1)],
    ):
        at = int(rng.integers(0, len(words) + 1))
        words[at:at] = extra
    return words


def malformed_words(rng, daddr, vsize, op, tag, max_elements):
    """One malformed lookup or CONFIG, of a random rule of docs/rank_nmp_semantics.md."""
    max_fp32_vsize = max_elements // 16
    rules = [0, 1, 2, 4, 5, 6] + ([3] if max_fp32_vsize < 7 else []) + ([7] if max_elements > 56 else [])
    rule = int(rng.choice(rules))
    bad = [
        word(op, daddr=daddr, vsize=0, tag=tag),
        word(op, daddr=daddr | int(rng.integers(1, 8)), vsize=vsize, tag=tag),  # unaligned
        word(op, daddr=(daddr & ~0x3FF) | 8 * int(rng.integers(122, 128)), vsize=7, tag=tag),  # row end
        word(Opcode.WSUM, daddr=daddr, vsize=min(7, max_fp32_vsize + 1), tag=tag),  # too long
        config(0),
        config(max_elements + int(rng.integers(1, 100))),
        config(5, register=int(rng.integers(1, 256))),
        word(Opcode.SUM_Q8, daddr=daddr & ~0x3FF, vsize=1, tag=tag),  # after a D that does not fit
    ][rule]
    if rule == 7:
        return [config(int(rng.integers(57, max_elements + 1))), bad]
    return [bad]


def expected(words, image, *, lanes, max_elements):
    model = RankNMPModel(lanes=lanes, max_elements=max_elements)
    return model.run(words, image), model.counters


def compare(got, want, counters, want_counters, seed, what=""):
    assert len(got) == len(want), f"seed {seed}{what}: {len(got)} psum beats, expected {len(want)}"
    for n, (g, w) in enumerate(zip(got, want)):
        assert beats_equal(g, w), (
            f"seed {seed}{what}: beat {n}: got tag {g.tag} beat {g.beat} last {g.last} "
            f"{[hex(x) for x in g.data]}, expected tag {w.tag} beat {w.beat} last {w.last} "
            f"{[hex(int(x)) for x in w.data]}"
        )
    for name in COUNTERS:
        assert counters[name] == want_counters[name], (
            f"seed {seed}{what}: counter {name} = {counters[name]}, expected {want_counters[name]}"
        )


def psum_pattern(seed, *, long_stalls=True):
    rng = np.random.default_rng(seed + 1000)
    ready = rng.random(400_000) > 0.3
    if long_stalls:
        for start in rng.integers(0, 8000, 3):
            ready[start : start + 300] = False
    return lambda cycle: bool(ready[cycle])


def limit(words, beats, extra=0):
    """A cycle limit proportional to the work: lines from DRAM, words, beats, stalls."""
    lines = sum((w >> 39) & 7 for w in words)
    return 3000 + 80 * lines + 10 * len(words) + 4 * beats + extra


CONFIGS = {
    "default": dict(cache_size_bytes=8192, cache_ways=4),
    "lanes8_rob8_depth4": dict(lanes=8, rob_lines=8, scheduler_depth=4, cache_size_bytes=1024, cache_ways=2),
    "lanes1_rob16_depth2": dict(
        lanes=1, rob_lines=16, scheduler_depth=2, cache_size_bytes=1024, cache_ways=2, max_elements=128
    ),
    "lanes2_short_trefi": dict(
        lanes=2, rob_lines=8, scheduler_depth=3, cache_size_bytes=1024, cache_ways=2, timing=DDR4Timing(tREFI=1200)
    ),
    "small_max_elements": dict(lanes=4, max_elements=36, cache_size_bytes=2048, cache_ways=2),
}
SIZES = {
    "default": (5, 10),
    "lanes8_rob8_depth4": (4, 8),
    "lanes1_rob16_depth2": (3, 3),
    "lanes2_short_trefi": (4, 6),
    "small_max_elements": (5, 8),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_random_traffic_matches_the_model(name):
    seed = BASE_SEED * 100 + list(CONFIGS).index(name)
    kw = CONFIGS[name]
    dut = RankNMP(**kw)
    rng = np.random.default_rng(seed)
    image = RankImage(G)
    rows = table(rng, image, 24)
    packets, lookups = SIZES[name]
    words = random_words(rng, rows, lanes=dut.lanes, max_elements=dut.max_elements, packets=packets, lookups=lookups)
    want, want_counters = expected(words, image, lanes=dut.lanes, max_elements=dut.max_elements)
    h = RankNMPHarness(dut, image, seed=seed, psum_ready=psum_pattern(seed), inst_pause=0.2)
    r = h.run([words], limits=[limit(words, len(want), 1000)], expect_beats=[len(want)])
    assert r.errors == [], f"seed {seed}: DDR4 protocol: {r.errors[:3]}"
    compare(r.phases[0].beats, want, r.counters, want_counters, seed)
    c = r.counters
    assert c["cache_hits"] + c["cache_misses"] == c["lines"], f"seed {seed}: {c}"
    assert c["reads"] == c["cache_misses"], f"seed {seed}: {c}"
    for kind in ("illegal", "malformed", "eop_mismatches"):
        assert want_counters[kind] > 0, f"seed {seed}: the traffic has no {kind} case"


def test_reset_in_the_middle_of_traffic():
    """Reset at several points of busy traffic, DRAM left running: the beats before the reset
    are a prefix of the model's (no ``last`` of a cut drain), the protocol holds across the
    reset, and the traffic after it matches a fresh model (counters from zero)."""
    seed = BASE_SEED * 100 + 50
    rng = np.random.default_rng(seed)
    image = RankImage(G)
    rows = table(rng, image, 24)
    cut_drains = []
    timing = DDR4Timing(tREFI=900)
    kw = dict(cache_size_bytes=2048, cache_ways=2, max_elements=128, timing=timing)
    # After the power-up recovery (no command or beat before it): while lookups are fetched,
    # while rows are open and reads in flight, and while results drain.
    ready = recovery_cycles(timing, G)
    for at in (ready + 40, ready + 150, ready + 400):
        dut = RankNMP(**kw)
        before = random_words(rng, rows, lanes=4, max_elements=128, packets=4, lookups=10)
        after = random_words(rng, rows, lanes=4, max_elements=128, packets=3, lookups=8)
        want_before, _ = expected(before, image, lanes=4, max_elements=128)
        want, want_counters = expected(after, image, lanes=4, max_elements=128)
        h = RankNMPHarness(dut, image, seed=seed + at, psum_ready=psum_pattern(seed + at, long_stalls=False))
        r = h.run(
            [before, after],
            limits=[at + 10, limit(after, len(want), 2000)],
            expect_beats=[None, len(want)],
            reset_at=[at],
        )
        what = f" (reset at cycle {at})"
        assert r.errors == [], f"seed {seed}{what}: DDR4 protocol: {r.errors[:3]}"
        reads_before = [c for c in r.commands if c[1] == "RD" and c[0] < at]
        assert reads_before, f"seed {seed}{what}: no read before the reset: it tests nothing"
        got_before = r.phases[0].beats
        cut_drains.append(0 < len(got_before) and not got_before[-1].last)
        assert len(got_before) <= len(want_before)
        for n, (g, w) in enumerate(zip(got_before, want_before)):
            assert beats_equal(g, w), f"seed {seed}{what}: beat {n} before the reset: {g} != {w}"
        compare(r.phases[1].beats, want, r.counters, want_counters, seed, what)
    assert any(cut_drains), f"seed {seed}: no reset cut a drain"


def test_idle_follows_the_parts_every_cycle():
    """``idle`` is the AND of every part being empty, in every cycle of random traffic with
    INVALIDATEs and a reset (with the RankCache's 256-cycle sweep after it); every part is
    seen holding work, and ``idle`` is seen high between bursts of work."""
    seed = BASE_SEED * 100 + 60
    rng = np.random.default_rng(seed)
    image = RankImage(G)
    rows = table(rng, image, 12)
    dut = RankNMP(
        cache_size_bytes=16384, cache_ways=1, max_elements=64, rob_lines=8, timing=DDR4Timing(tREFI=700)
    )  # 256-cycle cache sweep, frequent refresh
    seen = dict.fromkeys(parts_state_names(), 0)
    idle_cycles = []
    mismatches = []
    # Independent of the parts' own busy flags: a beat that entered the datapath is work
    # until it has been added into its partial sum.
    datapath = dut._datapath
    last_beat = [-(1 << 30)]
    busy_datapath_idle = []

    def check(ctx, cycle, phase):
        state = parts_state(ctx, dut)
        want = not any(state.values())
        if bool(ctx.get(dut.idle)) != want and len(mismatches) < 5:
            mismatches.append((cycle, ctx.get(dut.idle), {k: v for k, v in state.items() if v}))
        if ctx.get(datapath.i.valid) and ctx.get(datapath.i.ready):
            last_beat[0] = cycle
        if ctx.get(dut.idle) and cycle - last_beat[0] < datapath.latency and len(busy_datapath_idle) < 5:
            busy_datapath_idle.append((cycle, cycle - last_beat[0]))
        for k, v in state.items():
            seen[k] += v
        if want:
            idle_cycles.append(cycle)

    words = random_words(rng, rows, lanes=4, max_elements=64, packets=4, lookups=6)
    words += [word(Opcode.INVALIDATE)] + [word(Opcode.SUM, daddr=rows[0][0], vsize=1)] * 3
    want, _ = expected(words, image, lanes=4, max_elements=64)
    # Words in bursts of 150 cycles every 1200 cycles: the unit goes idle in between.
    h = RankNMPHarness(
        dut,
        image,
        seed=seed,
        psum_ready=psum_pattern(seed),
        on_cycle=check,
        inst_pause=lambda cycle: cycle % 1200 >= 150,
    )
    reset = recovery_cycles(dut.timing, G) + 100  # in the middle of the first burst of work
    r = h.run(
        [words[:20], words],
        limits=[reset + 100, limit(words, len(want), 8000)],
        expect_beats=[None, len(want)],
        reset_at=[reset],
    )
    assert mismatches == [], f"seed {seed}: idle wrong at (cycle, idle, parts holding work): {mismatches}"
    assert busy_datapath_idle == [], (
        f"seed {seed}: idle high with a beat in the datapath at (cycle, cycles since it entered): {busy_datapath_idle}"
    )
    assert r.errors == [], f"seed {seed}: {r.errors[:3]}"
    never = [k for k, n in seen.items() if n == 0]
    assert never == [], f"seed {seed}: never seen holding work: {never}"
    assert len(idle_cycles) > 10, f"seed {seed}: idle seen high only in cycles {idle_cycles}"


def parts_state_names():
    return ("inst queue", "issue", "op queue", "reorder buffer", "retire", "datapath", "scheduler", "cache")


def test_sum_and_sum_q8_ignore_the_weight():
    """The weight field of SUM and SUM_Q8 is ignored whatever its bits (NaN, inf, ...)."""
    seed = BASE_SEED * 100 + 70
    rng = np.random.default_rng(seed)
    image = RankImage(G)
    rows = table(rng, image, 6)
    weights = list(SPECIAL_WEIGHTS) + [int(x) for x in rng.integers(0, 1 << 32, 6)]
    words = [config(56)]
    for w in weights:
        for op in (Opcode.SUM, Opcode.SUM_Q8):
            daddr, vsize = rows[int(rng.integers(0, len(rows)))]
            words.append(word(op, daddr=daddr, vsize=min(vsize, 4), weight_bits=w, tag=int(rng.integers(0, 4))))
    words.append(eop(0xF, 64))
    ones = [(w & ~(0xFFFFFFFF << 42)) | 0x3F800000 << 42 if (w & 0xF) in (1, 3) else w for w in words]
    dut = RankNMP(cache_size_bytes=8192, cache_ways=4, max_elements=64)
    want, want_counters = expected(ones, image, lanes=4, max_elements=64)
    r = RankNMPHarness(dut, image, seed=seed).run([words], limits=[limit(words, len(want))], expect_beats=[len(want)])
    compare(r.phases[0].beats, want, r.counters, want_counters, seed)


def test_every_malformed_rule_is_counted_and_reads_nothing():
    """Each rule of docs/rank_nmp_semantics.md, one word each: counted once in ``malformed``
    (or ``illegal``), no DRAM read for a malformed lookup, D unchanged by a bad CONFIG, and a
    malformed EOP returns nothing but still ends the packet."""
    image = RankImage(G)
    row = special_f32_bits(np.random.default_rng(5), 16 * 7).view(np.uint8)
    image.write(bank_group=1, bank=2, row=9, column=0, data=row)
    image.write(bank_group=1, bank=2, row=9, column=1024 - 8, data=row[:64])
    a = addr(1, 2, 9, 0)
    bad = [
        word(0xB, daddr=a, vsize=1),  # illegal opcode
        word(Opcode.SUM, daddr=a, vsize=0),  # vsize 0
        word(Opcode.WSUM, daddr=a | 4, vsize=1),  # unaligned column
        word(Opcode.SUM, daddr=addr(1, 2, 9, 1024 - 8), vsize=2),  # crosses the end of the row
        word(Opcode.SUM, daddr=a, vsize=3),  # 48 fp32 > max_elements 32
        config(33),
        config(0),
        config(8, register=3),  # bad CONFIGs: D stays 32
        word(Opcode.SUM_Q8, daddr=a, vsize=1, tag=1),  # D = 32 fits: well-formed
        config(32 - 4),
        word(Opcode.WSUM_Q8, daddr=a, vsize=1, tag=2),  # D = 28: fits
        eop(0b110, 32, reserved=1),  # malformed EOP: no beats
        eop(0b110, 0),
        eop(0b110, 33),
        word(Opcode.SUM, daddr=addr(1, 2, 9, 1024 - 8), vsize=1, tag=3),  # the last line: fine
        eop(0b1110, 32),  # tags 1, 2 cleared: zeros
    ]
    dut = RankNMP(cache_size_bytes=1024, cache_ways=2, max_elements=32)
    want, want_counters = expected(bad, image, lanes=4, max_elements=32)
    assert want_counters == {"lookups": 3, "lines": 3, "illegal": 1, "malformed": 10, "eop_mismatches": 0}, (
        want_counters
    )
    r = RankNMPHarness(dut, image, seed=0).run([bad], limits=[3000], expect_beats=[len(want)])
    assert r.errors == []
    compare(r.phases[0].beats, want, r.counters, want_counters, 0)
    assert r.counters["reads"] == 3
    rd_columns = sorted({c[5] for c in r.commands if c[1] == "RD"})
    assert rd_columns == [0, 1024 - 8], rd_columns


def test_fp32_rows_at_the_physical_peak_without_bubbles():
    """Default parameters: SUM rows of one line from open rows alternating bank groups
    into one tag keep the datapath busy every cycle (one line per 4 cycles), and no beat
    waits on the accumulate interlock; then the same lookups from the cache (no bubble
    between lookups at retire)."""
    image = RankImage(G)
    rng = np.random.default_rng(9)
    for bg in range(4):
        image.write(bank_group=bg, bank=0, row=3, column=0, data=rng.standard_normal(2048).astype(F32).view(np.uint8))
    n = 96
    lookups = [
        word(Opcode.SUM, daddr=addr(k % 4, 0, 3, 8 * ((k // 4) % 128)), vsize=1, tag=5, locality=1) for k in range(n)
    ]
    words = lookups + [eop(1 << 5, 16)] + lookups + [eop(1 << 5, 16)]
    dut = RankNMP()
    want, want_counters = expected(words, image, lanes=4, max_elements=256)
    dp = dut._datapath
    trace = []

    def watch(ctx, cycle, phase):
        trace.append((ctx.get(dp.i.valid), ctx.get(dp.i.ready)))

    r = RankNMPHarness(dut, image, on_cycle=watch).run(
        [words], limits=[limit(words, len(want))], expect_beats=[len(want)]
    )
    compare(r.phases[0].beats, want, r.counters, want_counters, 0)
    valid = np.array([v for v, _ in trace], bool)
    taken = np.array([v and rd for v, rd in trace], bool)
    assert not (valid & ~taken).any(), "a beat waited at the datapath"
    starts = np.flatnonzero(taken)
    # The two packets' beats: 4 per line, each packet in one run of consecutive cycles
    # (the first from DRAM at the data-bus rate, the second from the cache).
    # Hint: (length, first cycle) of each run of consecutive beats.
    runs = np.split(starts, np.flatnonzero(np.diff(starts) != 1) + 1)
    assert [len(x) for x in runs] == [4 * n, 4 * n], [(len(x), int(x[0])) for x in runs]


def test_invalidate_waits_for_earlier_lookups_then_empties_the_cache():
    """SUM of a row with locality 1, INVALIDATE in the next cycle, then (300 cycles later) the
    same row again: the second lookup misses, because INVALIDATE waited until the first had
    retired (its fill included) before emptying the cache. Without the INVALIDATE it hits."""
    seed = BASE_SEED * 100 + 70
    rng = np.random.default_rng(seed)
    image = RankImage(G)
    ((daddr, vsize),) = table(rng, image, 1)
    lookup = word(Opcode.SUM, daddr=daddr, vsize=vsize, tag=1, locality=1)
    ready = recovery_cycles(DDR4Timing(), G) + 200
    outcome = {}
    for case, middle in (("with INVALIDATE", [word(Opcode.INVALIDATE)]), ("without", [])):
        words = [lookup, *middle, lookup, eop(2, 16 * vsize)]
        burst = {ready, ready + len(middle)}  # the first lookup, then the INVALIDATE at once

        def pause(cycle, burst=burst):
            return not (cycle in burst or cycle >= ready + 300)

        dut = RankNMP(cache_size_bytes=1024, cache_ways=1, max_elements=128)
        r = RankNMPHarness(dut, image, seed=seed, inst_pause=pause).run(
            [words], limits=[ready + 5000], expect_beats=[4 * vsize]
        )
        assert r.errors == [], f"seed {seed} {case}: {r.errors[:3]}"
        outcome[case] = (r.counters["cache_hits"], r.counters["cache_misses"])
    assert outcome == {"with INVALIDATE": (0, 2 * vsize), "without": (vsize, vsize)}, (
        f"seed {seed}: (hits, misses) {outcome}"
    )
