"""Reference model of the RankCache: set-associative, true LRU, allocate at fill.

The hardware (``hw.rank_cache.RankCache``) is checked against this model operation by
operation, and the performance model uses it for hit-rate sweeps, so it is plain Python
with no simulator dependency and a few dictionary/list operations per access.

Organisation
------------
Addresses are *line addresses*: the integer value of ``hw.ddr4.line_address_layout`` (27
bits by default, ``line`` in the lowest bits, then ``row``, ``bank``, ``bank_group``), one
per 64 B line. With ``sets = size_bytes // (line_bytes * ways)``, the set index is the low
``log2(sets)`` bits of the address (consecutive lines of a DRAM row go to consecutive sets)
and the tag is the remaining high bits.

Operations
----------
* :meth:`RankCacheModel.lookup` probes the cache. A hit makes the line most recently used
  (MRU); a miss changes nothing (allocation happens at :meth:`~RankCacheModel.fill`).
* :meth:`RankCacheModel.fill` installs a line. If it is already present it only becomes
  MRU (no eviction, and the hardware does not rewrite its data). Otherwise it goes to the
  lowest-numbered invalid way of its set if there is one, else it replaces the least
  recently used (LRU) line, which is returned. The new line is MRU.
* :meth:`RankCacheModel.invalidate` empties the cache (counters are kept).

Counters (cumulative, like the hardware's, which only reset clears): ``hits``, ``misses``
(every lookup that missed, so ``hits + misses`` is the number of lookups), ``bypasses``
(the misses with ``allocate=0``, a subset of ``misses``), ``fills`` (every fill, including
fills of a line already present) and ``evictions`` (fills that replaced a valid line).
"""

from __future__ import annotations

__all__ = ["RankCacheModel"]


def _is_power_of_two(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0 and value & (value - 1) == 0


class RankCacheModel:
    """Set-associative cache model with true LRU within each set.

    Parameters
    ----------
    size_bytes : int
        Capacity, a power of two (default 128 KiB).
    ways : int
        Associativity, a power of two from 1 to 16 (default 4).
    line_bytes : int
        Line size, a power of two (default 64 B, one DDR4 burst).

    Raises
    ------
    ValueError
        A parameter that is not a power of two, ``ways`` outside 1..16, or a capacity
        smaller than one set (``size_bytes < line_bytes * ways``).
    """

    def __init__(self, *, size_bytes: int = 128 * 1024, ways: int = 4, line_bytes: int = 64):
        if not _is_power_of_two(size_bytes):
            raise ValueError(f"size_bytes must be a power of two, got {size_bytes!r}")
        if not _is_power_of_two(ways) or ways > 16:
            raise ValueError(f"ways must be a power of two from 1 to 16, got {ways!r}")
        if not _is_power_of_two(line_bytes):
            raise ValueError(f"line_bytes must be a power of two, got {line_bytes!r}")
        if size_bytes < line_bytes * ways:
            raise ValueError(
                f"size_bytes ({size_bytes}) must hold at least one set of {ways} ways of "
                f"{line_bytes} B lines ({line_bytes * ways} B)"
            )
        self._size_bytes = size_bytes
        self._ways = ways
        self._line_bytes = line_bytes
        self._sets = size_bytes // (line_bytes * ways)
        self._set_bits = self._sets.bit_length() - 1
        self._set_mask = self._sets - 1
        self.hits = self.misses = self.bypasses = self.fills = self.evictions = 0
        #: Index of the way the last lookup hit (``None`` after a miss); for coverage.
        self.last_way: int | None = None
        self.invalidate()

    # -- parameters ---------------------------------------------------------------------

    @property
    def size_bytes(self) -> int:
        return self._size_bytes

    @property
    def ways(self) -> int:
        return self._ways

    @property
    def line_bytes(self) -> int:
        return self._line_bytes

    @property
    def sets(self) -> int:
        return self._sets

    @property
    def set_bits(self) -> int:
        """Width of the set index: the low ``set_bits`` bits of a line address."""
        return self._set_bits

    def set_index(self, addr: int) -> int:
        return addr & self._set_mask

    def tag(self, addr: int) -> int:
        return addr >> self._set_bits

    def address(self, tag: int, set_index: int) -> int:
        """The line address with ``tag`` in set ``set_index``."""
        return (tag << self._set_bits) | set_index

    # -- operations ---------------------------------------------------------------------

    def lookup(self, addr: int, allocate: bool = True) -> bool:
        """Probe ``addr``; return whether it hit. A hit makes the line MRU.

        ``allocate`` only matters for the counters: a miss with ``allocate`` false is a
        bypass. The caller fills allocating misses itself (see :meth:`access`).
        """
        s = addr & self._set_mask
        way = self._way_of[s].get(addr >> self._set_bits)
        self.last_way = way
        if way is None:
            self.misses += 1
            if not allocate:
                self.bypasses += 1
            return False
        self.hits += 1
        order = self._order[s]
        if order[0] != way:
            order.remove(way)
            order.insert(0, way)
        return True

    def fill(self, addr: int) -> int | None:
        """Install ``addr`` as MRU; return the evicted line address, or ``None``."""
        self.fills += 1
        s = addr & self._set_mask
        tag = addr >> self._set_bits
        way_of = self._way_of[s]
        order = self._order[s]
        way = way_of.get(tag)
        if way is not None:  # already present: MRU only
            if order[0] != way:
                order.remove(way)
                order.insert(0, way)
            return None
        tags = self._tag_of[s]
        if len(tags) < self._ways:  # ways fill up from 0, so the lowest invalid way is next
            way = len(tags)
            tags.append(tag)
            way_of[tag] = way
            order.insert(0, way)
            return None
        way = order.pop()  # the LRU way
        old = tags[way]
        del way_of[old]
        tags[way] = tag
        way_of[tag] = way
        order.insert(0, way)
        self.evictions += 1
        return (old << self._set_bits) | s

    def access(self, addr: int, allocate: bool = True) -> bool:
        """A lookup followed, on an allocating miss, by the fill of the line (what the
        Rank-NMP does once DRAM returns the row). Returns whether the lookup hit."""
        if self.lookup(addr, allocate):
            return True
        if allocate:
            self.fill(addr)
        return False

    def invalidate(self) -> None:
        """Empty the cache. Counters are kept."""
        self._tag_of: list[list[int]] = [[] for _ in range(self._sets)]  # way -> tag
        self._way_of: list[dict[int, int]] = [{} for _ in range(self._sets)]  # tag -> way
        self._order: list[list[int]] = [[] for _ in range(self._sets)]  # ways, MRU first

    # -- inspection ---------------------------------------------------------------------

    def contains(self, addr: int) -> bool:
        """Whether ``addr`` is cached (does not touch the LRU state or the counters)."""
        return (addr >> self._set_bits) in self._way_of[addr & self._set_mask]

    def way_of(self, addr: int) -> int | None:
        """The way holding ``addr``, or ``None``."""
        return self._way_of[addr & self._set_mask].get(addr >> self._set_bits)

    def lru_order(self, set_index: int) -> list[int]:
        """Line addresses cached in ``set_index``, most recently used first."""
        tags = self._tag_of[set_index]
        return [(tags[w] << self._set_bits) | set_index for w in self._order[set_index]]

    def counters(self) -> dict[str, int]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "bypasses": self.bypasses,
            "fills": self.fills,
            "evictions": self.evictions,
        }

    @property
    def hit_rate(self) -> float:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0

    def __repr__(self) -> str:
        return f"RankCacheModel(size_bytes={self._size_bytes}, ways={self._ways}, line_bytes={self._line_bytes})"
