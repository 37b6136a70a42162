"""RankCache reference model: organisation, true LRU, eviction choice, invalid ways first,
invalidate, counters, parameter errors, and a brute-force cross-check."""

import random

import pytest

from sim_models.rank_cache import RankCacheModel


def addr(model, tag, s):
    return model.address(tag, s)


def test_organisation_and_address_split():
    m = RankCacheModel()  # 128 KiB, 4 ways, 64 B
    assert (m.sets, m.set_bits, m.ways, m.line_bytes, m.size_bytes) == (512, 9, 4, 64, 128 * 1024)
    a = (0x1234 << 9) | 0x1AB
    assert (m.set_index(a), m.tag(a)) == (0x1AB, 0x1234)
    assert m.address(0x1234, 0x1AB) == a
    # consecutive lines of a row go to consecutive sets
    assert [m.set_index(0x500 + k) for k in range(4)] == [0x100, 0x101, 0x102, 0x103]
    assert RankCacheModel(size_bytes=8192, ways=1).sets == 128
    assert RankCacheModel(size_bytes=256, ways=4).sets == 1


def test_lookup_miss_changes_nothing_and_fill_allocates():
    m = RankCacheModel(size_bytes=1024, ways=2)
    a = addr(m, 7, 3)
    assert not m.lookup(a, True)
    assert not m.contains(a)
    assert m.fill(a) is None
    assert m.lookup(a, False)
    assert m.lru_order(3) == [a]


def test_invalid_ways_are_taken_lowest_first_before_any_eviction():
    m = RankCacheModel(size_bytes=1024, ways=4)  # 4 sets
    lines = [addr(m, t, 1) for t in (10, 11, 12, 13)]
    for k, line in enumerate(lines):
        assert m.fill(line) is None
        assert m.way_of(line) == k
    assert m.evictions == 0
    assert m.lru_order(1) == lines[::-1]
    assert m.lru_order(0) == []


def test_true_lru_order_and_eviction_choice():
    m = RankCacheModel(size_bytes=1024, ways=4)
    a, b, c, d, e, f = (addr(m, t, 2) for t in range(6))
    for x in (a, b, c, d):
        m.fill(x)
    assert m.lru_order(2) == [d, c, b, a]
    assert m.lookup(b) and m.lookup(a)  # hits make MRU
    assert m.lru_order(2) == [a, b, d, c]
    assert m.fill(e) == c  # LRU evicted
    assert m.way_of(e) == 2  # into the evicted line's way
    assert m.lru_order(2) == [e, a, b, d]
    assert not m.lookup(f, True)  # a miss does not change the order
    assert m.lru_order(2) == [e, a, b, d]
    assert m.fill(f) == d
    assert m.lru_order(2) == [f, e, a, b]
    assert not m.contains(c) and not m.contains(d)
    # other sets are untouched
    assert all(m.lru_order(s) == [] for s in (0, 1, 3))


def test_fill_of_present_line_only_makes_it_mru():
    m = RankCacheModel(size_bytes=1024, ways=2)
    a, b = addr(m, 1, 0), addr(m, 2, 0)
    m.fill(a)
    m.fill(b)
    assert m.lru_order(0) == [b, a]
    assert m.fill(a) is None
    assert m.lru_order(0) == [a, b]
    assert (m.fills, m.evictions) == (3, 0)
    assert m.way_of(a) == 0 and m.way_of(b) == 1


def test_direct_mapped():
    m = RankCacheModel(size_bytes=8192, ways=1)
    a, b = addr(m, 1, 5), addr(m, 2, 5)
    m.fill(a)
    assert m.fill(b) == a
    assert not m.lookup(a) and m.lookup(b)


def test_invalidate_empties_and_keeps_counters():
    m = RankCacheModel(size_bytes=1024, ways=2)
    lines = [addr(m, t, s) for t in (1, 2) for s in range(m.sets)]
    for x in lines:
        m.fill(x)
    assert all(m.lookup(x) for x in lines)
    before = m.counters()
    m.invalidate()
    assert m.counters() == before
    assert not any(m.contains(x) for x in lines)
    assert not any(m.lookup(x) for x in lines)
    assert m.fill(lines[0]) is None  # ways are free again
    assert m.way_of(lines[0]) == 0


def test_counters_and_access():
    m = RankCacheModel(size_bytes=1024, ways=1)  # 16 sets
    a, b = addr(m, 1, 0), addr(m, 2, 0)
    assert not m.access(a, True)  # miss + fill
    assert m.access(a, True)  # hit
    assert not m.access(b, False)  # bypass: not filled
    assert not m.contains(b)
    assert not m.access(b, True)  # miss + fill, evicts a
    assert m.counters() == {"hits": 1, "misses": 3, "bypasses": 1, "fills": 2, "evictions": 1}
    assert m.hit_rate == 0.25
    assert RankCacheModel().hit_rate == 0.0


def test_matches_a_brute_force_lru():
    """Random operations against a list-per-set LRU with timestamps."""
    rng = random.Random(1)
    m = RankCacheModel(size_bytes=2048, ways=4)  # 8 sets
    sets: dict[int, dict[int, int]] = {}  # set -> addr -> last use time
    pool = [rng.getrandbits(27) for _ in range(60)]
    for t in range(20000):
        x = rng.choice(pool)
        s = sets.setdefault(x % m.sets, {})
        if rng.random() < 0.6:
            hit = x in s
            assert m.lookup(x, rng.random() < 0.5) == hit
            if hit:
                s[x] = t
        elif rng.random() < 0.99:
            victim = None
            if x not in s and len(s) == 4:
                victim = min(s, key=s.get)
                del s[victim]
            s[x] = t
            assert m.fill(x) == victim
        else:
            m.invalidate()
            sets.clear()
    assert m.hits + m.misses > 0 and m.evictions > 0


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"size_bytes": 3000}, "size_bytes must be a power of two, got 3000"),
        ({"size_bytes": 0}, "size_bytes must be a power of two, got 0"),
        ({"size_bytes": 1024.0}, "size_bytes must be a power of two, got 1024.0"),
        ({"ways": 3}, "ways must be a power of two from 1 to 16, got 3"),
        ({"ways": 32}, "ways must be a power of two from 1 to 16, got 32"),
        ({"ways": True}, "ways must be a power of two from 1 to 16, got True"),
        ({"line_bytes": 48}, "line_bytes must be a power of two, got 48"),
        (
            {"size_bytes": 128, "ways": 4},
            r"size_bytes \(128\) must hold at least one set of 4 ways of 64 B lines \(256 B\)",
        ),
    ],
)
def test_parameter_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RankCacheModel(**kwargs)


def test_speed_for_hit_rate_sweeps():
    """The performance model runs millions of accesses: keep it well under 5 us each (about 0.5 us here)."""
    import time

    rng = random.Random(0)
    trace = [rng.randrange(1 << 16) for _ in range(200_000)]
    m = RankCacheModel(size_bytes=8192, ways=4)
    start = time.perf_counter()
    for x in trace:
        m.access(x)
    elapsed = time.perf_counter() - start
    assert elapsed < 200_000 * 5e-6, f"{elapsed / len(trace) * 1e6:.2f} us per access"
