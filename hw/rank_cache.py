"""RankCache: the Rank-NMP's set-associative, true-LRU cache of 64 B embedding-table lines."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .ddr4 import DDR4Geometry, line_address_layout
from .logic import COUNTER_WIDTH, count_events, lowest_one
from .params import check_int

__all__ = ["RankCache"]

COUNTERS = ("hits", "misses", "bypasses", "fills", "evictions")


def _is_power_of_two(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0 and value & (value - 1) == 0


class RankCache(wiring.Component):
    """Set-associative cache of 64 B DRAM lines with true LRU; one lookup per cycle.

    Read-only (embedding tables): lines are installed by ``fill`` and never written back.
    A lookup never allocates by itself; the Rank-NMP fills the line once DRAM has returned
    it (only when the instruction's ``locality`` bit asked for it). The Python reference
    is :class:`sim_models.rank_cache.RankCacheModel`.

    Organisation
    ------------
    ``sets = size_bytes // (64 * ways)``. A line address is the integer value of
    :func:`hw.ddr4.line_address_layout` (27 bits by default, ``line`` lowest): the set
    index is its low ``log2(sets)`` bits (consecutive lines of a row go to consecutive
    sets), the tag the remaining ``27 - log2(sets)`` bits. Storage, all
    :class:`amaranth.lib.memory.Memory` with one synchronous read port (transparent for
    the write port) and one write port:

    * ``tags_W`` (one per way ``W``): ``{tag, valid}`` per set;
    * ``data_W`` (one per way): the 512-bit line, so a hit returns the whole line at once;
    * ``lru`` (not for ``ways=1``): ``ways`` ages of ``log2(ways)`` bits per set.

    All ways of the set are read in parallel; a hit selects the matching way's line.

    LRU encoding
    ------------
    Per set, the ages of the ways are always a permutation of ``0 .. ways-1``: 0 is the
    most recently used way, ``ways-1`` the least. Touching way ``w`` (hit, fill) gives it
    age 0 and adds one to every age smaller than its old one, which keeps the permutation
    and the order of the other ways. A fill of a missing line goes to the lowest-numbered
    invalid way, else to the way of age ``ways-1`` (evicting it). Since the ages of the
    valid ways keep their relative order, this is exactly true LRU among the valid lines.

    Timing and ordering
    -------------------
    Every operation is accepted in a cycle ``t`` (which reads its set from the memories)
    and evaluated and committed in cycle ``t+1`` (tag compare, way choice, memory writes,
    counters). At most one operation is accepted per cycle, and operations take effect in
    acceptance order:

    * **Hit latency 1**: a lookup accepted in cycle ``t`` has its result on ``result`` in
      cycle ``t+1`` (``data`` is the line on a hit and zero on a miss). With ``result``
      always ready, one lookup per cycle, in any set order. ``result.valid``, ``id``,
      ``addr`` and ``allocate`` come from registers; ``hit`` and ``data`` are the tag
      compare and way select after the memory read (combinational in ``t+1``).
    * **Fills win**: ``fill.ready`` is high except while ``busy`` (and in the cycle
      ``invalidate`` is raised), and ``lookup.ready`` is low in any cycle ``fill.valid``
      is high, so a fill is accepted at once and costs one lookup slot. A producer that
      cannot wait (DRAM read data) may drop the fill when ``fill.ready`` is low: the line
      is then simply not cached.
    * **Backpressure**: ``lookup.ready = ~busy & ~invalidate & ~fill.valid &
      (~result.valid | result.ready)``. A result that cannot leave is held (its hit way
      in a register, its line in the data read ports, which are not re-enabled until
      another lookup is accepted); fills are still accepted meanwhile.

    Hazards handled: back-to-back operations on the same set (a lookup's LRU update, a
    fill's tag/data/LRU write in cycle ``t+1`` are seen by the operation accepted in
    ``t+1`` through the transparent read ports, no stall); a fill and a lookup offered
    together (the fill goes first, the lookup one cycle later); a fill of a line already
    present (it only becomes MRU, no second copy; its data is not rewritten); a held
    result while fills change its set (its line was read when it was accepted).

    Invalidate
    ----------
    A one-cycle ``invalidate`` strobe (ignored while ``busy``) starts a sweep: ``busy``
    is high for exactly ``sets`` cycles, from the cycle after the strobe, clearing one
    set (all valid bits, LRU ages) per cycle; no lookup or fill is accepted in the strobe
    cycle or while ``busy``. Operations accepted before the strobe complete normally (a
    held result stays valid). Afterwards every lookup misses. The same sweep runs after
    reset (``busy`` for ``sets`` cycles), as SRAM contents are not reset. Counters are
    cleared by reset only. ``sets`` is 32 at 8 KiB, 512 at 128 KiB, 4096 at 1 MiB with
    4 ways (:attr:`invalidate_cycles`).

    Parameters
    ----------
    size_bytes : int
        Capacity: a power of two of at least two sets, ``2 * 64 * ways`` bytes (default
        128 KiB). (The model also takes a single set; a 0-bit set index cannot be
        expressed in Verilog.)
    ways : int
        Associativity: 1 (direct-mapped), 2, 4, 8 or 16 (default 4).
    id_width : int
        Width of the opaque ``id`` returned with each result, 1..32 (default 6).
    geometry : DDR4Geometry
        Rank geometry: the line address layout and the line size (one burst).

    Attributes
    ----------
    lookup : In(stream.Signature(StructLayout({"addr": line_address_layout(geometry), "allocate": 1, "id": id_width})))
    result : Out(stream.Signature(StructLayout({"id": id_width, "addr": ..., "allocate": 1, "hit": 1, "data": 512})))
        One result per lookup, in lookup order.
    fill : In(stream.Signature(StructLayout({"addr": ..., "data": 512})))
    invalidate : In(1)
    busy : Out(1)
    hits, misses, bypasses, fills, evictions : Out(32)
        Wrapping event counters: ``misses`` counts every miss, ``bypasses`` the misses
        with ``allocate=0``; ``fills`` every accepted fill, ``evictions`` the fills that
        replaced a valid line. An operation accepted in cycle ``t`` is counted from
        cycle ``t+2`` on (committed in ``t+1``, registered). Cleared by reset only.
    """

    def __init__(
        self, *, size_bytes: int = 128 * 1024, ways: int = 4, id_width: int = 6, geometry: DDR4Geometry = DDR4Geometry()
    ):
        if not isinstance(geometry, DDR4Geometry):
            raise ValueError(f"geometry must be a DDR4Geometry, got {geometry!r}")
        line_bytes = geometry.burst_bytes
        if not _is_power_of_two(size_bytes):
            raise ValueError(f"size_bytes must be a power of two, got {size_bytes!r}")
        if not _is_power_of_two(ways) or ways > 16:
            raise ValueError(f"ways must be a power of two from 1 to 16, got {ways!r}")
        if size_bytes < line_bytes * ways:
            raise ValueError(
                f"size_bytes ({size_bytes}) must hold at least one set of {ways} ways of "
                f"{line_bytes} B lines ({line_bytes * ways} B)"
            )
        check_int("id_width", id_width, 1, 32)
        addr_layout = line_address_layout(geometry)
        sets = size_bytes // (line_bytes * ways)
        set_bits = sets.bit_length() - 1
        if sets < 2:
            # A 0-bit set index would give 0-width signals, which Verilog cannot express.
            raise ValueError(
                f"size_bytes ({size_bytes}) with {ways} ways gives a single set; the hardware "
                f"needs at least 2 sets (size_bytes >= {2 * line_bytes * ways})"
            )
        if set_bits >= addr_layout.size:
            raise ValueError(
                f"size_bytes ({size_bytes}) with {ways} ways gives {sets} sets, more than the "
                f"{1 << addr_layout.size} lines of a rank's line address"
            )
        self._size_bytes = size_bytes
        self._ways = ways
        self._id_width = id_width
        self._geometry = geometry
        self._sets = sets
        self._set_bits = set_bits
        self._tag_bits = addr_layout.size - set_bits
        self._line_bits = 8 * line_bytes
        self._addr_layout = addr_layout
        super().__init__(
            {
                "lookup": In(
                    stream.Signature(
                        data.StructLayout(
                            {
                                "addr": addr_layout,
                                "allocate": 1,
                                "id": id_width,
                            }
                        )
                    )
                ),
                "result": Out(
                    stream.Signature(
                        data.StructLayout(
                            {
                                "id": id_width,
                                "addr": addr_layout,
                                "allocate": 1,
                                "hit": 1,
                                "data": self._line_bits,
                            }
                        )
                    )
                ),
                "fill": In(
                    stream.Signature(
                        data.StructLayout(
                            {
                                "addr": addr_layout,
                                "data": self._line_bits,
                            }
                        )
                    )
                ),
                "invalidate": In(1),
                "busy": Out(1),
                **{name: Out(COUNTER_WIDTH) for name in COUNTERS},
            }
        )

    @property
    def size_bytes(self) -> int:
        return self._size_bytes

    @property
    def ways(self) -> int:
        return self._ways

    @property
    def id_width(self) -> int:
        return self._id_width

    @property
    def geometry(self) -> DDR4Geometry:
        return self._geometry

    @property
    def sets(self) -> int:
        return self._sets

    @property
    def set_bits(self) -> int:
        """Width of the set index (the low bits of the line address)."""
        return self._set_bits

    @property
    def tag_bits(self) -> int:
        return self._tag_bits

    @property
    def invalidate_cycles(self) -> int:
        """Cycles ``busy`` stays high after an ``invalidate`` strobe (and after reset)."""
        return self._sets

    def elaborate(self, platform):
        m = Module()
        ways, sets, set_bits = self._ways, self._sets, self._set_bits
        age_bits = (ways - 1).bit_length()
        tag_entry = data.StructLayout({"tag": self._tag_bits, "valid": 1})

        def index(addr):
            return Value.cast(addr)[:set_bits]

        def tag(addr):
            return Value.cast(addr)[set_bits:]

        # -- storage ------------------------------------------------------------------
        tag_w, tag_r, data_w, data_r = [], [], [], []
        for w in range(ways):
            tags = Memory(shape=tag_entry, depth=sets, init=[])
            lines = Memory(shape=self._line_bits, depth=sets, init=[])
            m.submodules[f"tags_{w}"] = tags
            m.submodules[f"data_{w}"] = lines
            tag_w.append(tags.write_port())
            tag_r.append(tags.read_port(transparent_for=(tag_w[-1],)))
            data_w.append(lines.write_port())
            data_r.append(lines.read_port(transparent_for=(data_w[-1],)))
        if ways > 1:
            ages_layout = data.ArrayLayout(age_bits, ways)
            lru = Memory(shape=ages_layout, depth=sets, init=[list(range(ways))] * sets)
            m.submodules.lru = lru
            lru_w = lru.write_port()
            lru_r = lru.read_port(transparent_for=(lru_w,))

        # -- control ------------------------------------------------------------------
        busy = Signal(init=1)  # the sweep also runs after reset
        sweep_set = Signal(range(sets))
        l_valid = Signal()  # a lookup result is on `result` (fresh or held)
        l_fresh = Signal()  # that lookup was accepted last cycle: evaluate and commit now
        l_addr = Signal(self._addr_layout)
        l_id = Signal(self._id_width)
        l_allocate = Signal()
        f_valid = Signal()  # a fill was accepted last cycle: commit now
        f_addr = Signal(self._addr_layout)
        f_data = Signal(self._line_bits)
        accept_lookup = Signal()
        accept_fill = Signal()

        m.d.comb += [
            self.busy.eq(busy),
            self.fill.ready.eq(~busy & ~self.invalidate),
            self.lookup.ready.eq(~busy & ~self.invalidate & ~self.fill.valid & (~l_valid | self.result.ready)),
            accept_fill.eq(self.fill.valid & self.fill.ready),
            accept_lookup.eq(self.lookup.valid & self.lookup.ready),
        ]
        read_index = Mux(self.fill.valid, index(self.fill.payload.addr), index(self.lookup.payload.addr))
        for w in range(ways):
            m.d.comb += [
                tag_r[w].addr.eq(read_index),
                data_r[w].addr.eq(index(self.lookup.payload.addr)),
                data_r[w].en.eq(accept_lookup),  # holds a stalled result's line
            ]
        if ways > 1:
            m.d.comb += lru_r.addr.eq(read_index)

        m.d.sync += [l_fresh.eq(accept_lookup), f_valid.eq(accept_fill)]
        with m.If(accept_lookup):
            m.d.sync += [
                l_valid.eq(1),
                l_addr.eq(self.lookup.payload.addr),
                l_id.eq(self.lookup.payload.id),
                l_allocate.eq(self.lookup.payload.allocate),
            ]
        with m.Elif(self.result.ready):
            m.d.sync += l_valid.eq(0)
        with m.If(accept_fill):
            m.d.sync += [f_addr.eq(self.fill.payload.addr), f_data.eq(self.fill.payload.data)]

        # -- evaluation of the operation accepted last cycle ------------------------------
        op_addr = Mux(f_valid, f_addr, l_addr)
        op_index = Signal(set_bits)
        op_tag = Signal(self._tag_bits)
        m.d.comb += [op_index.eq(index(op_addr)), op_tag.eq(tag(op_addr))]
        match = []
        for w in range(ways):
            sig = Signal(name=f"match_{w}")
            m.d.comb += sig.eq(tag_r[w].data.valid & (tag_r[w].data.tag == op_tag))
            match.append(sig)
        hit = Signal()
        m.d.comb += hit.eq(Cat(*match).any())
        invalid = [~tag_r[w].data.valid for w in range(ways)]
        any_invalid = Signal()
        m.d.comb += any_invalid.eq(Cat(*invalid).any())
        if ways > 1:
            ages = lru_r.data
            oldest = lowest_one(m, [ages[w] == ways - 1 for w in range(ways)], "lru")
        else:
            oldest = [Const(1, 1)]
        first_invalid = lowest_one(m, invalid, "invalid")
        victim = [Signal(name=f"victim_{w}") for w in range(ways)]
        m.d.comb += [victim[w].eq(Mux(any_invalid, first_invalid[w], oldest[w])) for w in range(ways)]
        # The way the operation touches (makes MRU): the hit way, else the fill's victim.
        touch = [Signal(name=f"touch_{w}") for w in range(ways)]
        m.d.comb += [touch[w].eq(Mux(hit, match[w], victim[w])) for w in range(ways)]

        commit_lookup = l_fresh
        commit_fill = f_valid
        install = Signal()  # the fill writes a new line
        evict = Signal()
        m.d.comb += [install.eq(commit_fill & ~hit), evict.eq(install & ~any_invalid)]

        if ways > 1:
            touched_age = Signal(age_bits)
            m.d.comb += touched_age.eq(_or_reduce([Mux(touch[w], ages[w], 0) for w in range(ways)]))
            new_ages = Signal(ages_layout)
            for w in range(ways):
                m.d.comb += new_ages[w].eq(Mux(touch[w], 0, Mux(ages[w] < touched_age, ages[w] + 1, ages[w])))
            with m.If(busy):
                m.d.comb += [
                    lru_w.addr.eq(sweep_set),
                    lru_w.data.eq(ages_layout.const(list(range(ways)))),
                    lru_w.en.eq(1),
                ]
            with m.Else():
                m.d.comb += [
                    lru_w.addr.eq(op_index),
                    lru_w.data.eq(new_ages),
                    lru_w.en.eq(commit_fill | (commit_lookup & hit)),
                ]

        for w in range(ways):
            with m.If(busy):
                m.d.comb += [tag_w[w].addr.eq(sweep_set), tag_w[w].data.eq(0), tag_w[w].en.eq(1)]
            with m.Else():
                m.d.comb += [
                    tag_w[w].addr.eq(op_index),
                    tag_w[w].data.valid.eq(1),
                    tag_w[w].data.tag.eq(op_tag),
                    tag_w[w].en.eq(install & victim[w]),
                ]
            m.d.comb += [
                data_w[w].addr.eq(op_index),
                data_w[w].data.eq(f_data),
                data_w[w].en.eq(install & victim[w]),
            ]

        # -- sweep (invalidate, reset) --------------------------------------------------
        with m.If(busy):
            m.d.sync += sweep_set.eq(sweep_set + 1)
            with m.If(sweep_set == sets - 1):
                m.d.sync += [busy.eq(0), sweep_set.eq(0)]
        with m.Elif(self.invalidate):
            m.d.sync += busy.eq(1)

        # -- result -------------------------------------------------------------------
        held_match = Signal(ways)
        held_hit = Signal()
        with m.If(commit_lookup):
            m.d.sync += [held_match.eq(Cat(*match)), held_hit.eq(hit)]
        select = Signal(ways)
        m.d.comb += select.eq(Mux(l_fresh, Cat(*match), held_match))
        m.d.comb += [
            self.result.valid.eq(l_valid),
            self.result.payload.id.eq(l_id),
            self.result.payload.addr.eq(l_addr),
            self.result.payload.allocate.eq(l_allocate),
            self.result.payload.hit.eq(Mux(l_fresh, hit, held_hit)),
            self.result.payload.data.eq(_or_reduce([Mux(select[w], data_r[w].data, 0) for w in range(ways)])),
        ]

        # -- counters -----------------------------------------------------------------
        count_events(
            m,
            {
                "hits": commit_lookup & hit,
                "misses": commit_lookup & ~hit,
                "bypasses": commit_lookup & ~hit & ~l_allocate,
                "fills": commit_fill,
                "evictions": evict,
            },
            self,
            width=COUNTER_WIDTH,
        )
        return m


def _or_reduce(values):
    result = values[0]
    for value in values[1:]:
        result = result | value
    return result
