"""The rank scheduler's request buffer: collapsing, age-ordered, with the FR-FCFS pick."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from .ddr4 import DDR4Geometry, line_address_layout
from .logic import lowest_one
from .params import check_int, check_mutation

__all__ = ["Issue", "RequestBuffer", "RequestClass"]


class RequestClass(enum.IntEnum, shape=2):
    """What the scheduler first had to do for a buffered request."""

    NONE = 0  #: nothing yet: served from a row already open (row hit)
    MISS = 1  #: an ACT was issued for it (closed bank)
    CONFLICT = 2  #: a PRE of another row was issued for it


class Issue(enum.IntEnum, shape=2):
    """The command issued for a buffered request in this cycle."""

    NONE = 0
    RD = 1  #: for the oldest RD candidate; removes it
    ACT = 2  #: for the oldest ACT candidate
    PRE = 3  #: for the oldest PRE candidate


class RequestBuffer(wiring.Component):
    """Collapsing request buffer of ``depth`` entries and the FR-FCFS candidate selection.

    Entries are kept in acceptance order: entry 0 is the oldest; serving an entry (a RD for
    it) moves every younger one down a place, and a new request goes to the first free
    place. An entry holds the line address, the opaque id, a saturating age (cycles since
    acceptance, up to ``starvation_limit``) and its :class:`RequestClass`.

    With the open-row table of the bank state, each valid entry is a row *hit* (its row is
    open), a *conflict* (another row is open) or *closed*. Candidates, given the per-bank
    permissions ``rd_allow``, ``act_allow``, ``pre_allow`` (timing and policy, from the
    caller):

    * RD: a hit, unless an older entry to the same bank is a *blocker* (a conflict whose
      age reached ``starvation_limit``), whose bank has ``rd_allow``;
    * ACT: a closed entry whose bank has ``act_allow``;
    * PRE: a conflict whose bank has ``pre_allow`` and no RD-eligible hit (ignoring
      ``rd_allow``: a row still wanted by a buffered request is not closed).

    ``rd``, ``act``, ``pre`` say whether each kind has a candidate. The caller picks one
    kind and names it on ``issue``; ``chosen`` is then the oldest candidate of that kind
    (combinationally), and at the clock edge a RD removes it, an ACT or PRE sets its class
    (if still ``NONE``). ``i.ready`` is high while an entry is free (registered state: an
    entry served in this cycle frees its place from the next).

    Parameters
    ----------
    geometry : DDR4Geometry
    depth : int
        Entries, 2..64.
    id_width : int
        Width of the opaque request id, 1..16.
    starvation_limit : int
        Age at which a conflicting entry blocks younger hits to its bank, 1..1024.

    Attributes
    ----------
    i : In(stream.Signature(StructLayout({"addr": line_address_layout(geometry), "id": id_width})))
        New requests. ``ready`` while an entry is free.
    open_valid : In(slots)
        Open flags of the bank slots (``Cat(bank, bank_group)``).
    open_row : In(ArrayLayout(row bits, slots))
        Open rows.
    rd_allow, act_allow, pre_allow : In(slots)
        Per bank slot: a RD / ACT / PRE may go to it in this cycle.
    rd, act, pre : Out(1)
        Some entry is a RD / ACT / PRE candidate.
    issue : In(Issue)
        The kind of command issued for an entry in this cycle (``NONE``: none).
    chosen : Out(StructLayout({"addr": ..., "id": id_width, "cls": RequestClass}))
        The entry ``issue`` is for (zero when ``NONE``).
    level : Out(range(depth + 1))
        Entries held.

    Latency: a request accepted in cycle ``a`` is a candidate from ``a + 1``; every output
    but ``chosen`` depends on registered state and the ``*_allow``/``open_*`` inputs only.

    ``registers`` (set by :meth:`elaborate`, for the formal specs of ``verif/formal``):
    ``entries`` (list of ``depth`` entry views: addr, id, cls, age), ``count`` and
    ``removed`` (one-hot: the entry a RD serves in this cycle).
    ``mutation`` (tests only, default ``None``): ``"act_to_open_bank"`` (an entry counts as
    closed whatever the open-row table says), ``"rd_ignores_row"`` (an entry is a hit when
    its bank is open, whatever the row), ``"lose_second_request"`` (an accepted request
    into a non-empty buffer is not stored), ``"no_starvation_block"`` (an old conflicting
    entry never blocks younger hits), ``"remove_other_entry"`` (a RD removes the entry
    after the one it served, when there is one).
    """

    #: Test-only deliberate bugs (``mutation``), to show that the formal properties bite.
    MUTATIONS = (
        "act_to_open_bank",
        "rd_ignores_row",
        "lose_second_request",
        "no_starvation_block",
        "remove_other_entry",
    )

    def __init__(
        self,
        *,
        geometry: DDR4Geometry = DDR4Geometry(),
        depth: int = 16,
        id_width: int = 6,
        starvation_limit: int = 64,
        mutation: str | None = None,
    ):
        self._mutation = check_mutation(mutation, self.MUTATIONS)
        if not isinstance(geometry, DDR4Geometry):
            raise TypeError(f"geometry must be a DDR4Geometry, got {geometry!r}")
        check_int("depth", depth, 2, 64)
        check_int("id_width", id_width, 1, 16)
        check_int("starvation_limit", starvation_limit, 1, 1024)
        self._geometry = geometry
        self._depth = depth
        self._id_width = id_width
        self._starvation_limit = starvation_limit
        addr = line_address_layout(geometry)
        self._slot_bits = addr["bank"].width + addr["bank_group"].width
        slots = 1 << self._slot_bits
        super().__init__(
            {
                "i": In(stream.Signature(data.StructLayout({"addr": addr, "id": id_width}))),
                "open_valid": In(slots),
                "open_row": In(data.ArrayLayout(addr["row"].width, slots)),
                "rd_allow": In(slots),
                "act_allow": In(slots),
                "pre_allow": In(slots),
                "rd": Out(1),
                "act": Out(1),
                "pre": Out(1),
                "issue": In(Issue),
                "chosen": Out(data.StructLayout({"addr": addr, "id": id_width, "cls": RequestClass})),
                "level": Out(range(depth + 1)),
            }
        )

    @property
    def geometry(self) -> DDR4Geometry:
        return self._geometry

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def id_width(self) -> int:
        return self._id_width

    @property
    def starvation_limit(self) -> int:
        return self._starvation_limit

    def elaborate(self, platform):
        m = Module()
        depth = self._depth
        limit = self._starvation_limit
        slots = 1 << self._slot_bits
        entry_layout = data.StructLayout(
            {"addr": self.i.payload.addr.shape(), "id": self._id_width, "cls": RequestClass, "age": range(limit + 1)}
        )
        entries = [Signal(entry_layout, name=f"entry_{i}") for i in range(depth)]
        count = Signal(range(depth + 1))
        a_open_valid = Array(self.open_valid[b] for b in range(slots))
        a_open_row = Array(self.open_row[b] for b in range(slots))
        a_rd_allow = Array(self.rd_allow[b] for b in range(slots))
        a_act_allow = Array(self.act_allow[b] for b in range(slots))
        a_pre_allow = Array(self.pre_allow[b] for b in range(slots))

        # ---- classification of each entry against the open rows -----------------------
        valid = [Signal(name=f"valid_{i}") for i in range(depth)]
        bank_of = [Signal(self._slot_bits, name=f"bank_of_{i}") for i in range(depth)]
        hit = [Signal(name=f"hit_{i}") for i in range(depth)]
        conflict = [Signal(name=f"conflict_{i}") for i in range(depth)]
        closed = [Signal(name=f"closed_{i}") for i in range(depth)]
        blocker = [Signal(name=f"blocker_{i}") for i in range(depth)]
        hit_ok = [Signal(name=f"hit_ok_{i}") for i in range(depth)]
        for i, e in enumerate(entries):
            row_match = Signal(name=f"row_match_{i}")
            m.d.comb += [
                valid[i].eq(count > i),
                bank_of[i].eq(Cat(e.addr.bank, e.addr.bank_group)),
                row_match.eq(a_open_row[bank_of[i]] == e.addr.row if self._mutation != "rd_ignores_row" else 1),
                hit[i].eq(valid[i] & a_open_valid[bank_of[i]] & row_match),
                conflict[i].eq(valid[i] & a_open_valid[bank_of[i]] & ~row_match),
                closed[i].eq(
                    valid[i] & ~a_open_valid[bank_of[i]] if self._mutation != "act_to_open_bank" else valid[i]
                ),
                blocker[i].eq(conflict[i] & (e.age == limit) if self._mutation != "no_starvation_block" else 0),
            ]
            blocked = Const(0)
            for j in range(i):
                blocked = blocked | (blocker[j] & (bank_of[j] == bank_of[i]))
            m.d.comb += hit_ok[i].eq(hit[i] & ~blocked)

        # Banks with a row hit that may still be served: their open row stays open.
        wanted = Array(Signal(name=f"wanted_{b}") for b in range(slots))
        for b in range(slots):
            m.d.comb += wanted[b].eq(Cat(hit_ok[i] & (bank_of[i] == b) for i in range(depth)).any())

        # ---- candidates and the oldest of each kind ---------------------------------------
        rd_cand = Signal(depth)
        act_cand = Signal(depth)
        pre_cand = Signal(depth)
        for i in range(depth):
            b = bank_of[i]
            m.d.comb += [
                rd_cand[i].eq(hit_ok[i] & a_rd_allow[b]),
                act_cand[i].eq(closed[i] & a_act_allow[b]),
                pre_cand[i].eq(conflict[i] & ~wanted[b] & a_pre_allow[b]),
            ]
        rd_sel = lowest_one(m, rd_cand, "rd_sel")
        act_sel = lowest_one(m, act_cand, "act_sel")
        pre_sel = lowest_one(m, pre_cand, "pre_sel")
        m.d.comb += [self.rd.eq(rd_cand.any()), self.act.eq(act_cand.any()), self.pre.eq(pre_cand.any())]

        issue_rd = self.issue == Issue.RD
        issue_act = self.issue == Issue.ACT
        issue_pre = self.issue == Issue.PRE
        chosen = Signal(depth)  # the entry the command is for (one-hot or zero)
        m.d.comb += chosen.eq(Mux(issue_rd, rd_sel, 0) | Mux(issue_act, act_sel, 0) | Mux(issue_pre, pre_sel, 0))
        for i in range(depth):
            with m.If(chosen[i]):
                m.d.comb += [
                    self.chosen.addr.eq(entries[i].addr),
                    self.chosen.id.eq(entries[i].id),
                    self.chosen.cls.eq(entries[i].cls),
                ]

        # ---- update: accept, remove the served entry, age, classify -----------------------
        accept = Signal()
        m.d.comb += [
            self.i.ready.eq(count != depth),
            accept.eq(self.i.valid & self.i.ready),
            self.level.eq(count),
        ]
        removed = Mux(issue_rd, rd_sel, 0)
        if self._mutation == "remove_other_entry":
            later = Cat(Const(0, 1), rd_sel[:-1])  # the next entry, when it is valid
            removed = Mux(issue_rd, Mux((later & Cat(valid)).any(), later, rd_sel), 0)
        remaining = Signal(range(depth + 1))
        m.d.comb += remaining.eq(count - issue_rd)
        stored = accept if self._mutation != "lose_second_request" else accept & (count == 0)
        m.d.sync += count.eq(remaining + stored)

        updated = []
        for i, e in enumerate(entries):
            u = Signal(entry_layout, name=f"updated_{i}")
            m.d.comb += [
                u.addr.eq(e.addr),
                u.id.eq(e.id),
                u.age.eq(Mux(e.age == limit, limit, e.age + 1)),
                u.cls.eq(e.cls),
            ]
            with m.If(e.cls == RequestClass.NONE):
                with m.If(issue_act & act_sel[i]):
                    m.d.comb += u.cls.eq(RequestClass.MISS)
                with m.If(issue_pre & pre_sel[i]):
                    m.d.comb += u.cls.eq(RequestClass.CONFLICT)
            updated.append(u)
        new_entry = Signal(entry_layout)
        m.d.comb += [
            new_entry.addr.eq(self.i.payload.addr),
            new_entry.id.eq(self.i.payload.id),
        ]
        for i in range(depth):
            shift = removed[: i + 1].any()
            src = updated[i + 1] if i + 1 < depth else updated[i]
            with m.If(stored & (remaining == i)):
                m.d.sync += entries[i].eq(new_entry)
            with m.Elif(shift):
                m.d.sync += entries[i].eq(src)
            with m.Else():
                m.d.sync += entries[i].eq(updated[i])
        self.registers = SimpleNamespace(entries=entries, count=count, removed=removed)
        return m
