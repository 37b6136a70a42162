"""The DDR4 command generator of one rank: FR-FCFS scheduling, open page, periodic refresh."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Array, Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .bank_timers import BankTimers
from .ddr4 import DDR4Geometry, DDR4Timing, DramCommand, DramPortSignature, line_address_layout
from .isa import HINT_CONFLICT, HINT_HIT, HINT_MISS
from .logic import count_events, lowest_one, lowest_one_index
from .params import check_int
from .read_tagger import ReadTagger
from .refresh_control import RefreshControl, recovery_cycles
from .request_buffer import Issue, RequestBuffer, RequestClass

__all__ = ["RankScheduler", "RankSchedulerTop"]


def _bits(count: int) -> int:
    return max(1, (count - 1).bit_length())


class RankScheduler(wiring.Component):
    """DDR4 command generator of one rank, with a request buffer and read-data tagging.

    **Organisation.** Four parts, wired by :meth:`elaborate`, which holds the command choice:

    * :class:`~hw.request_buffer.RequestBuffer`: a collapsing buffer of ``depth`` entries
      in acceptance order (address, id, saturating age, class: nothing / ACT / PRE done
      for it) and the oldest-first candidates for RD, ACT and PRE.
    * :class:`~hw.bank_timers.BankTimers`: the open-row table and every DDR4 timing window
      (per bank, bank group and rank down-counters, tFAW), fed with the command issued.
    * :class:`~hw.refresh_control.RefreshControl`: the tREFI counter, owed refreshes and
      the recovery after reset.
    * :class:`~hw.read_tagger.ReadTagger`: a shift register of (valid, id) per RD;
      ``tCL`` cycles later the ``tBL`` beats of ``dram.rd_data`` are tagged with the id
      and beat number and leave on ``rdata`` one cycle after they arrive.

    The decision is combinational from registered state: ``dram`` carries the command
    chosen in the current cycle (no path from any input to the command outputs).

    **Scheduling policy (FR-FCFS, open page).**

    One command per cycle, chosen in this order:

    1. **RD**: the oldest buffered request whose row is open and whose RD is legal
       (tRCD, tCCD_S, tCCD_L). Rows stay open after reads.
    2. **ACT**: the oldest request whose bank is closed and whose ACT is legal (tRP, tRC,
       tRRD_S/L, tFAW). Other banks keep being activated while one waits on tRCD, so
       bank parallelism is used up to tRRD/tFAW.
    3. **PRE**: the oldest request whose bank has another row open, when no buffered
       request can still use the open row and PRE is legal (tRAS, tRTP).

    Starvation: a request whose age reached ``starvation_limit`` cycles and whose bank has
    another row open blocks every younger row hit to that bank, so the open row is
    drained of older hits only and then closed for it. A request therefore waits at most
    about ``starvation_limit`` cycles plus the service of the older requests.

    Latency from acceptance on ``req`` (cycle ``a``) to the RD, with timing otherwise free:
    row hit ``a + 1``; closed bank ``a + 1 + tRCD`` (ACT at ``a + 1``); row conflict
    ``a + 1 + tRP + tRCD`` (PRE at ``a + 1``). The first beat leaves on ``rdata``
    ``tCL + 1`` cycles after the RD: 18 / 34 / 50 cycles after acceptance at DDR4-2400.

    Throughput: RDs to one bank group are tCCD_L (6) apart, to different groups tCCD_S (4)
    apart, and a burst occupies the data bus tBL (4) cycles, so only requests spread over
    bank groups keep the data bus full (16 B per cycle); row misses are limited to 4 ACTs
    per tFAW (154 per 1000 cycles at DDR4-2400).

    **Refresh policy.**

    A REF becomes due every ``tREFI`` cycles after the recovery (a counter of owed refreshes).
    While one is owed no ACT is issued; every open bank is precharged as soon as tRAS and
    tRTP allow (RDs still go to open rows only when they do not delay their bank's PRE);
    REF is issued tRP after the last PRE, then no command for tRFC. A refresh is therefore
    issued at most tRAS + tRP + one cycle per open bank after it is due, never postponed
    by a whole tREFI (the checker allows 8). Banks are closed after a refresh; buffered
    requests reopen them (counted as row misses). Cost: the data bus idles for
    tRTP + tRP + tRFC + tRCD - tBL = 457 cycles per tREFI at DDR4-2400, a few more when
    many banks must be precharged one per cycle, so a saturating row-hit stream reaches
    about 95.0-95.1 % of the data bus in the long run (tRFC / tREFI alone is 4.5 %).

    Progress: ``DDR4Timing`` only accepts a ``tREFI`` of at least
    :attr:`~hw.ddr4.DDR4Timing.min_tREFI`, derived from this policy, so that every refresh
    interval serves at least the request that is oldest when the refresh's tRFC ends; no
    accepted timing set can starve a request behind refreshes.

    **Reset.** A synchronous reset (also the enclosing design's) may come at any cycle
    while the DRAM keeps running. The scheduler then knows neither the open rows nor the
    running timing windows, so it recovers (:class:`~hw.refresh_control.RefreshControl`):
    no command for ``W`` cycles (the longest timing window of any earlier command: tRFC
    = 420 at DDR4-2400), a PRE to every bank one per cycle, a REF tRP after the last, then
    tRFC. Requests are accepted meanwhile but served only after it, ``idle`` is low
    throughout, and read data of RDs issued before the reset is not reported. It lasts
    :attr:`recovery_cycles` cycles: 420 + 15 + 16 + 420 = 871 at DDR4-2400. Power-up is a
    reset, too.

    **Counters and hints.**

    ``acts``, ``pres``, ``reads``, ``refs`` count commands issued. Each RD classifies its
    request: ``row_conflicts`` if a PRE was issued for it, else ``row_misses`` if an ACT
    was issued for it, else ``row_hits`` (served from a row already open, possibly opened
    for an older request); so ``row_hits + row_misses + row_conflicts == reads``.

    ``hint_mismatches`` counts accepted requests whose ``hint`` differs from what an
    in-order open-page row-buffer model predicts, which is the only model the host can
    run: a shadow table holds, per bank, the row of the last *accepted* request (no
    refresh, no reordering; a bank with no accepted request yet counts as closed). The
    expected hint is RD (``0b100``) for the same row, ACT|RD (``0b110``) for a closed bank
    and PRE|ACT|RD (``0b111``) for another row (:func:`expected_hint`). The hint never
    changes the commands issued.

    Parameters
    ----------
    timing : DDR4Timing
        Timing constraints in cycles. ``tBL`` must equal the beats of a burst.
    geometry : DDR4Geometry
        Rank shape.
    depth : int
        Request buffer entries, 2..64.
    id_width : int
        Width of the opaque request ``id``, 1..16.
    starvation_limit : int
        Age in cycles after which a request with a row conflict blocks younger row hits to
        its bank, 1..1024 (default 64).

    Attributes
    ----------
    req : In(stream.Signature(StructLayout({"addr": line_address_layout(geometry), "id": id_width, "hint": 3})))
        Read one 64 B line.
    dram : Out(DramPortSignature(geometry))
        The rank's command port and read data.
    rdata : Out(stream.Signature(StructLayout({"id": id_width, "beat": 2, "last": 1, "data": 128}), always_ready=True))
        Returned beats, tagged with the request's id; beats 0..3 of a request in
        consecutive cycles, ``last`` on beat 3. Requests may complete out of order.
    idle : Out(1)
        No request buffered, no read in flight, no recovery after reset in progress.
    acts, pres, reads, refs, row_hits, row_misses, row_conflicts, hint_mismatches : Out(32)
        Event counters (wrap around).
    """

    COUNTERS = ("acts", "pres", "reads", "refs", "row_hits", "row_misses", "row_conflicts", "hint_mismatches")

    def __init__(
        self,
        *,
        timing: DDR4Timing = DDR4Timing(),
        geometry: DDR4Geometry = DDR4Geometry(),
        depth: int = 16,
        id_width: int = 6,
        starvation_limit: int = 64,
    ):
        if not isinstance(timing, DDR4Timing):
            raise TypeError(f"timing must be a DDR4Timing, got {timing!r}")
        if not isinstance(geometry, DDR4Geometry):
            raise TypeError(f"geometry must be a DDR4Geometry, got {geometry!r}")
        if timing.tBL != geometry.beats_per_burst:
            raise ValueError(f"tBL ({timing.tBL}) must equal the beats of a burst ({geometry.beats_per_burst})")
        if geometry.banks > DDR4Timing.MAX_BANKS:
            raise ValueError(f"geometry must have at most {DDR4Timing.MAX_BANKS} banks (DDR4), got {geometry.banks}")
        check_int("depth", depth, 2, 64)
        check_int("id_width", id_width, 1, 16)
        check_int("starvation_limit", starvation_limit, 1, 1024)
        self._timing = timing
        self._geometry = geometry
        self._depth = depth
        self._id_width = id_width
        self._starvation_limit = starvation_limit
        members = {
            "req": In(
                stream.Signature(data.StructLayout({"addr": line_address_layout(geometry), "id": id_width, "hint": 3}))
            ),
            "dram": Out(DramPortSignature(geometry)),
            "rdata": Out(
                stream.Signature(
                    data.StructLayout(
                        {
                            "id": id_width,
                            "beat": _bits(geometry.beats_per_burst),
                            "last": 1,
                            "data": 8 * geometry.beat_bytes,
                        }
                    ),
                    always_ready=True,
                )
            ),
            "idle": Out(1),
        }
        members.update({name: Out(32) for name in self.COUNTERS})
        super().__init__(members)

    @property
    def timing(self) -> DDR4Timing:
        return self._timing

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

    @property
    def recovery_cycles(self) -> int:
        """Cycles from reset until requests are served (:class:`RefreshControl`): 871 at
        DDR4-2400."""
        return recovery_cycles(self._timing, self._geometry)

    def elaborate(self, platform):
        m = Module()
        t, g = self._timing, self._geometry
        addr_layout = line_address_layout(g)
        bank_bits = addr_layout["bank"].width
        slot_bits = bank_bits + addr_layout["bank_group"].width
        slots = 1 << slot_bits  # bank slot = Cat(bank, bank_group)

        m.submodules.timers = timers = BankTimers(timing=t, geometry=g)
        m.submodules.buffer = buffer = RequestBuffer(
            geometry=g, depth=self._depth, id_width=self._id_width, starvation_limit=self._starvation_limit
        )
        m.submodules.refresh = refresh = RefreshControl(timing=t, geometry=g)
        m.submodules.tagger = tagger = ReadTagger(timing=t, geometry=g, id_width=self._id_width)
        # The parts, for the formal specs of verif/formal (their ``registers``).
        self.parts = SimpleNamespace(timers=timers, buffer=buffer, refresh=refresh, tagger=tagger)

        # ---- requests in -----------------------------------------------------------------
        m.d.comb += [
            buffer.i.valid.eq(self.req.valid),
            buffer.i.payload.addr.eq(self.req.payload.addr),
            buffer.i.payload.id.eq(self.req.payload.id),
            self.req.ready.eq(buffer.i.ready),
            buffer.open_valid.eq(timers.open_valid),
            buffer.open_row.eq(timers.open_row),
        ]
        accept = self.req.valid & self.req.ready

        # ---- policy: what each bank may be sent, from timing and the refresh state ----------
        pending = refresh.pending
        # During a pending refresh: no ACT, no PRE for a conflict, and a RD only when it
        # does not delay its bank's PRE.
        m.d.comb += [
            buffer.rd_allow.eq(Mux(pending, timers.rd_ok & timers.rd_keeps_pre, timers.rd_ok)),
            buffer.act_allow.eq(Mux(pending, 0, timers.act_ok)),
            buffer.pre_allow.eq(Mux(pending, 0, timers.pre_ok)),
        ]
        # Refresh: precharge any open bank (lowest slot first), then REF.
        ref_pre_sel = lowest_one(m, timers.open_valid & timers.pre_ok, "ref_pre_sel")
        ref_pre_bank = lowest_one_index(m, ref_pre_sel, "ref_pre_bank")

        # ---- command choice ----------------------------------------------------------------
        issue_rd = Signal()
        issue_act = Signal()
        issue_pre = Signal()  # for a request (row conflict)
        issue_ref_pre = Signal()  # for the refresh
        issue_sweep = Signal()  # recovery after reset
        issue_ref = Signal()
        with m.If(refresh.hold):
            m.d.comb += issue_sweep.eq(refresh.sweep)
        with m.Elif(pending):
            with m.If(timers.ref_ok):
                m.d.comb += issue_ref.eq(1)
            with m.Elif(ref_pre_sel.any()):
                m.d.comb += issue_ref_pre.eq(1)
            with m.Elif(buffer.rd):
                m.d.comb += issue_rd.eq(1)
        with m.Else():
            with m.If(buffer.rd):
                m.d.comb += issue_rd.eq(1)
            with m.Elif(buffer.act):
                m.d.comb += issue_act.eq(1)
            with m.Elif(buffer.pre):
                m.d.comb += issue_pre.eq(1)

        with m.If(issue_rd):
            m.d.comb += buffer.issue.eq(Issue.RD)
        with m.Elif(issue_act):
            m.d.comb += buffer.issue.eq(Issue.ACT)
        with m.Elif(issue_pre):
            m.d.comb += buffer.issue.eq(Issue.PRE)
        cmd_entry = buffer.chosen

        cmd_bank = Signal(slot_bits)  # bank slot the command addresses
        with m.If(issue_sweep):
            m.d.comb += [
                cmd_bank.eq(Cat(refresh.sweep_bank, refresh.sweep_bank_group)),
                self.dram.cmd.eq(DramCommand.PRE),
            ]
        with m.Elif(issue_ref_pre):
            m.d.comb += [
                cmd_bank.eq(ref_pre_bank),
                self.dram.cmd.eq(DramCommand.PRE),
            ]
        with m.Else():
            m.d.comb += cmd_bank.eq(Cat(cmd_entry.addr.bank, cmd_entry.addr.bank_group))
            with m.If(issue_rd):
                m.d.comb += self.dram.cmd.eq(DramCommand.RD)
            with m.Elif(issue_act):
                m.d.comb += self.dram.cmd.eq(DramCommand.ACT)
            with m.Elif(issue_pre):
                m.d.comb += self.dram.cmd.eq(DramCommand.PRE)
            with m.Elif(issue_ref):
                m.d.comb += self.dram.cmd.eq(DramCommand.REF)
        m.d.comb += [
            self.dram.bank.eq(cmd_bank[:bank_bits]),
            self.dram.bank_group.eq(cmd_bank[bank_bits:]),
            self.dram.row.eq(Mux(issue_rd | issue_act, cmd_entry.addr.row, 0)),
            self.dram.column.eq(Mux(issue_rd, cmd_entry.addr.line * g.burst_columns, 0)),
            # the issued command updates the bank state and the refresh count
            timers.cmd.eq(self.dram.cmd),
            timers.cmd_bank.eq(cmd_bank),
            timers.cmd_row.eq(cmd_entry.addr.row),
            refresh.ref_issued.eq(issue_ref),
        ]

        # ---- read data ---------------------------------------------------------------------
        m.d.comb += [
            tagger.rd.eq(issue_rd),
            tagger.id.eq(cmd_entry.id),
            tagger.rd_data.eq(self.dram.rd_data),
            self.rdata.valid.eq(tagger.rdata.valid),
            self.rdata.payload.eq(tagger.rdata.payload),
            self.idle.eq((buffer.level == 0) & ~tagger.busy & ~refresh.recovering),
        ]

        # ---- hint check against the in-order shadow row table (acceptance order) ------------
        row_bits = addr_layout["row"].width
        shadow_valid = Array(Signal(name=f"shadow_valid_{b}") for b in range(slots))
        shadow_row = Array(Signal(row_bits, name=f"shadow_row_{b}") for b in range(slots))
        req_addr = self.req.payload.addr
        req_bank = Cat(req_addr.bank, req_addr.bank_group)
        want_hint = Signal(3)
        with m.If(~shadow_valid[req_bank]):
            m.d.comb += want_hint.eq(HINT_MISS)
        with m.Elif(shadow_row[req_bank] == req_addr.row):
            m.d.comb += want_hint.eq(HINT_HIT)
        with m.Else():
            m.d.comb += want_hint.eq(HINT_CONFLICT)
        for b in range(slots):
            with m.If(accept & (req_bank == b)):
                m.d.sync += [shadow_valid[b].eq(1), shadow_row[b].eq(req_addr.row)]

        # ---- counters ----------------------------------------------------------------------
        count_events(
            m,
            {
                "acts": issue_act,
                "pres": issue_pre | issue_ref_pre | issue_sweep,
                "reads": issue_rd,
                "refs": issue_ref,
                "row_hits": issue_rd & (cmd_entry.cls == RequestClass.NONE),
                "row_misses": issue_rd & (cmd_entry.cls == RequestClass.MISS),
                "row_conflicts": issue_rd & (cmd_entry.cls == RequestClass.CONFLICT),
                "hint_mismatches": accept & (self.req.payload.hint != want_hint),
            },
            self,
        )
        return m


class RankSchedulerTop(wiring.Component):
    """:class:`RankScheduler` as a Verilog top level (what ``rtl_gen`` generates).

    ``rdata`` is an ``always_ready`` stream, whose ``ready`` is the constant 1; a constant
    cannot be a module port, so this wrapper exposes ``rdata`` as its ``valid`` and
    ``payload`` only. Every other port is the scheduler's own, under the same name.
    Takes the same parameters as :class:`RankScheduler`.
    """

    def __init__(self, **params):
        self._scheduler = RankScheduler(**params)
        members = dict(self._scheduler.signature.members)
        rdata = members["rdata"].signature.members
        members["rdata"] = Out(wiring.Signature({"valid": Out(1), "payload": Out(rdata["payload"].shape)}))
        super().__init__(members)

    @property
    def scheduler(self) -> RankScheduler:
        return self._scheduler

    def elaborate(self, platform):
        m = Module()
        m.submodules.scheduler = inner = self._scheduler
        wiring.connect(m, wiring.flipped(self.req), inner.req)
        wiring.connect(m, inner.dram, wiring.flipped(self.dram))
        m.d.comb += [
            self.rdata.valid.eq(inner.rdata.valid),
            self.rdata.payload.eq(inner.rdata.payload),
            self.idle.eq(inner.idle),
        ]
        m.d.comb += [getattr(self, name).eq(getattr(inner, name)) for name in RankScheduler.COUNTERS]
        return m
