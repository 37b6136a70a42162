"""The DDR4 command generator of one rank: FR-FCFS scheduling, open page, periodic refresh."""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .ddr4 import DDR4Geometry, DDR4Timing, DramCommand, DramPortSignature, line_address_layout
from .isa import DDR_CMD_ACT, DDR_CMD_PRE, DDR_CMD_RD
from .params import check_int

__all__ = ["HINT_CONFLICT", "HINT_HIT", "HINT_MISS", "RankScheduler", "RankSchedulerTop", "expected_hint"]

#: Request classes (internal): what the scheduler first had to do for a buffered request.
_CLS_NONE, _CLS_MISS, _CLS_CONFLICT = 0, 1, 2

#: The hint a host with an in-order open-page row-buffer model gives for a row hit, a
#: closed bank and a row conflict.
HINT_HIT = DDR_CMD_RD
HINT_MISS = DDR_CMD_ACT | DDR_CMD_RD
HINT_CONFLICT = DDR_CMD_PRE | DDR_CMD_ACT | DDR_CMD_RD


def expected_hint(last_row: int | None, row: int) -> int:
    """The ``ddr_cmd`` hint the scheduler expects for a request to ``row`` of a bank whose
    previous accepted request was to ``last_row`` (``None``: no request to the bank yet)."""
    if last_row is None:
        return HINT_MISS
    return HINT_HIT if last_row == row else HINT_CONFLICT


def _bits(count: int) -> int:
    return max(1, (count - 1).bit_length())


class RankScheduler(wiring.Component):
    """DDR4 command generator of one rank, with a request buffer and read-data tagging.

    **Organisation.**

    * A collapsing request buffer of ``depth`` entries kept in acceptance order (entry 0 is
      the oldest; a served entry is removed and the younger ones move down). Each entry
      holds the line address, the opaque ``id``, a saturating age (cycles since acceptance,
      up to ``starvation_limit``) and what the scheduler has done for it so far (nothing,
      ACT, or PRE of another row), which classifies it as row hit / miss / conflict.
    * Per-bank state: open flag and open row. Timing is enforced with down-counters that
      say how many cycles remain before a command is legal: per bank (ACT: tRC after ACT,
      tRP after PRE; RD: tRCD after ACT; PRE: tRAS after ACT, tRTP after RD), per bank
      group (tRRD_L, tCCD_L), rank-wide (tRRD_S, tCCD_S, tRP from any PRE to REF, tRFC
      after REF) and a four-deep tFAW window (the ages of the last four ACTs).
    * The decision is combinational from registered state: ``dram`` carries the command
      chosen in the current cycle (no path from any input to the command outputs).
    * Read data: a shift register of (valid, id) records each RD; ``tCL`` cycles later the
      ``tBL`` beats of ``dram.rd_data`` are tagged with the id and beat number and leave on
      ``rdata`` one cycle after they arrive (``dram.rd_valid`` is not needed: the latency
      is fixed).

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

    A REF becomes due every ``tREFI`` cycles after reset (a counter of owed refreshes).
    While one is owed no ACT is issued; every open bank is precharged as soon as tRAS and
    tRTP allow (RDs still go to open rows only when they do not delay their bank's PRE);
    REF is issued tRP after the last PRE, then no command for tRFC. A refresh is therefore
    issued at most tRAS + tRP + one cycle per open bank after it is due, never postponed
    by a whole tREFI (the checker allows 8). Banks are closed after a refresh; buffered
    requests reopen them (counted as row misses). Cost: the data bus idles for
    tRTP + tRP + tRFC + tRCD - tBL = 457 cycles per tREFI at DDR4-2400, a few more when
    many banks must be precharged one per cycle, so a saturating row-hit stream reaches
    about 95.0-95.1 % of the data bus in the long run (tRFC / tREFI alone is 4.5 %).

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
        No request buffered and no read in flight.
    acts, pres, reads, refs, row_hits, row_misses, row_conflicts, hint_mismatches : Out(32)
        Event counters (wrap around).
    """

    COUNTERS = ("acts", "pres", "reads", "refs", "row_hits", "row_misses", "row_conflicts",
                "hint_mismatches")

    def __init__(self, *, timing: DDR4Timing = DDR4Timing(), geometry: DDR4Geometry = DDR4Geometry(),
                 depth: int = 16, id_width: int = 6, starvation_limit: int = 64):
        if not isinstance(timing, DDR4Timing):
            raise TypeError(f"timing must be a DDR4Timing, got {timing!r}")
        if not isinstance(geometry, DDR4Geometry):
            raise TypeError(f"geometry must be a DDR4Geometry, got {geometry!r}")
        if timing.tBL != geometry.beats_per_burst:
            raise ValueError(
                f"tBL ({timing.tBL}) must equal the beats of a burst ({geometry.beats_per_burst})")
        check_int("depth", depth, 2, 64)
        check_int("id_width", id_width, 1, 16)
        check_int("starvation_limit", starvation_limit, 1, 1024)
        self._timing = timing
        self._geometry = geometry
        self._depth = depth
        self._id_width = id_width
        self._starvation_limit = starvation_limit
        members = {
            "req": In(stream.Signature(data.StructLayout({
                "addr": line_address_layout(geometry), "id": id_width, "hint": 3}))),
            "dram": Out(DramPortSignature(geometry)),
            "rdata": Out(stream.Signature(data.StructLayout({
                "id": id_width, "beat": _bits(geometry.beats_per_burst), "last": 1,
                "data": 8 * geometry.beat_bytes}), always_ready=True)),
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

    def elaborate(self, platform):
        m = Module()
        t, g = self._timing, self._geometry
        depth = self._depth
        addr_layout = line_address_layout(g)
        bank_bits = addr_layout["bank"].width
        bg_bits = addr_layout["bank_group"].width
        banks = 1 << (bank_bits + bg_bits)  # bank slot = Cat(bank, bank_group)
        groups = 1 << bg_bits
        row_bits = addr_layout["row"].width

        # ---- timing counters: cycles left before a command is legal ----------------
        def counter(name, *gaps):
            return Signal(range(max(gaps) + 1), name=name)

        loads = {}  # counter -> [(condition, gap)]

        def load(ctr, cond, gap):
            loads.setdefault(id(ctr), (ctr, []))[1].append((cond, gap))

        act_wait = [counter(f"act_wait_{b}", t.tRC, t.tRP) for b in range(banks)]
        rd_wait = [counter(f"rd_wait_{b}", t.tRCD) for b in range(banks)]
        pre_wait = [counter(f"pre_wait_{b}", t.tRAS, t.tRTP) for b in range(banks)]
        act_wait_bg = [counter(f"act_wait_bg_{k}", t.tRRD_L) for k in range(groups)]
        rd_wait_bg = [counter(f"rd_wait_bg_{k}", t.tCCD_L) for k in range(groups)]
        act_wait_rank = counter("act_wait_rank", t.tRRD_S)
        rd_wait_rank = counter("rd_wait_rank", t.tCCD_S)
        faw = [counter(f"faw_{k}", t.tFAW) for k in range(4)]  # ages of the last 4 ACTs
        pre_to_ref = counter("pre_to_ref", t.tRP)
        rfc_wait = counter("rfc_wait", t.tRFC)

        # ---- bank state ------------------------------------------------------------
        open_valid = [Signal(name=f"open_valid_{b}") for b in range(banks)]
        open_row = [Signal(row_bits, name=f"open_row_{b}") for b in range(banks)]
        a_open_valid, a_open_row = Array(open_valid), Array(open_row)
        a_pre_wait = Array(pre_wait)
        rd_ok_bank = Array(Signal(name=f"rd_ok_{b}") for b in range(banks))
        act_ok_bank = Array(Signal(name=f"act_ok_{b}") for b in range(banks))
        pre_ok_bank = Array(Signal(name=f"pre_ok_{b}") for b in range(banks))
        for b in range(banks):
            grp = b >> bank_bits
            m.d.comb += [
                rd_ok_bank[b].eq((rd_wait[b] == 0) & (rd_wait_bg[grp] == 0)),
                act_ok_bank[b].eq((act_wait[b] == 0) & (act_wait_bg[grp] == 0)),
                pre_ok_bank[b].eq(pre_wait[b] == 0),
            ]

        # ---- refresh bookkeeping ------------------------------------------------------
        refi = Signal(range(t.tREFI), init=t.tREFI - 1)
        owed = Signal(range(9))  # refreshes due and not issued (saturates at 8)
        ref_pending = Signal()
        m.d.comb += ref_pending.eq(owed != 0)

        # ---- request buffer ----------------------------------------------------------
        limit = self._starvation_limit
        entry_layout = data.StructLayout({
            "addr": addr_layout, "id": self._id_width, "cls": 2, "age": range(limit + 1)})
        entries = [Signal(entry_layout, name=f"entry_{i}") for i in range(depth)]
        count = Signal(range(depth + 1))

        valid = [Signal(name=f"valid_{i}") for i in range(depth)]
        bank_of = [Signal(bank_bits + bg_bits, name=f"bank_of_{i}") for i in range(depth)]
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
                row_match.eq(a_open_row[bank_of[i]] == e.addr.row),
                hit[i].eq(valid[i] & a_open_valid[bank_of[i]] & row_match),
                conflict[i].eq(valid[i] & a_open_valid[bank_of[i]] & ~row_match),
                closed[i].eq(valid[i] & ~a_open_valid[bank_of[i]]),
                blocker[i].eq(conflict[i] & (e.age == limit)),
            ]
            blocked = Const(0)
            for j in range(i):
                blocked = blocked | (blocker[j] & (bank_of[j] == bank_of[i]))
            m.d.comb += hit_ok[i].eq(hit[i] & ~blocked)

        # Banks with a row hit that may still be served: their open row stays open.
        wanted = Array(Signal(name=f"wanted_{b}") for b in range(banks))
        for b in range(banks):
            m.d.comb += wanted[b].eq(
                Cat(hit_ok[i] & (bank_of[i] == b) for i in range(depth)).any())

        rd_ok_rank = Signal()
        act_ok_rank = Signal()
        row_ok_rank = Signal()
        m.d.comb += [
            rd_ok_rank.eq((rd_wait_rank == 0) & (rfc_wait == 0)),
            act_ok_rank.eq((act_wait_rank == 0) & (faw[3] == 0) & (rfc_wait == 0) & ~ref_pending),
            row_ok_rank.eq((rfc_wait == 0) & ~ref_pending),
        ]

        rd_cand = Signal(depth)
        act_cand = Signal(depth)
        pre_cand = Signal(depth)
        for i in range(depth):
            b = bank_of[i]
            # During a pending refresh a RD may go only if it does not delay its bank's PRE.
            rd_refresh_ok = ~ref_pending | (a_pre_wait[b] >= t.tRTP)
            m.d.comb += [
                rd_cand[i].eq(hit_ok[i] & rd_ok_rank & rd_ok_bank[b] & rd_refresh_ok),
                act_cand[i].eq(closed[i] & act_ok_rank & act_ok_bank[b]),
                pre_cand[i].eq(conflict[i] & ~wanted[b] & pre_ok_bank[b] & row_ok_rank),
            ]

        def oldest(cand, name):
            """One-hot of the lowest set bit of ``cand``."""
            sel = Signal(depth, name=name)
            m.d.comb += sel.eq(cand & ~(cand - 1))
            return sel

        rd_sel = oldest(rd_cand, "rd_sel")
        act_sel = oldest(act_cand, "act_sel")
        pre_sel = oldest(pre_cand, "pre_sel")

        # Refresh: precharge any open bank (lowest first), then REF.
        ref_pre = Signal(banks)
        m.d.comb += ref_pre.eq(Cat(open_valid[b] & pre_ok_bank[b] for b in range(banks)))
        ref_pre_sel = Signal(banks)
        m.d.comb += ref_pre_sel.eq(ref_pre & ~(ref_pre - 1))
        ref_ok = Signal()
        m.d.comb += ref_ok.eq(ref_pending & ~Cat(open_valid).any() & (pre_to_ref == 0)
                              & (rfc_wait == 0))

        # ---- command choice ----------------------------------------------------------
        issue_rd = Signal()
        issue_act = Signal()
        issue_pre = Signal()  # for a request (row conflict)
        issue_ref_pre = Signal()  # for the refresh
        issue_ref = Signal()
        with m.If(ref_pending):
            with m.If(ref_ok):
                m.d.comb += issue_ref.eq(1)
            with m.Elif(ref_pre.any()):
                m.d.comb += issue_ref_pre.eq(1)
            with m.Elif(rd_cand.any()):
                m.d.comb += issue_rd.eq(1)
        with m.Else():
            with m.If(rd_cand.any()):
                m.d.comb += issue_rd.eq(1)
            with m.Elif(act_cand.any()):
                m.d.comb += issue_act.eq(1)
            with m.Elif(pre_cand.any()):
                m.d.comb += issue_pre.eq(1)

        chosen = Signal(depth)  # the request the command is for (one-hot or zero)
        m.d.comb += chosen.eq(Mux(issue_rd, rd_sel, 0) | Mux(issue_act, act_sel, 0)
                              | Mux(issue_pre, pre_sel, 0))
        cmd_entry = Signal(entry_layout)
        for i in range(depth):
            with m.If(chosen[i]):
                m.d.comb += cmd_entry.eq(entries[i])
        ref_pre_bank = Signal(bank_bits + bg_bits)
        for b in reversed(range(banks)):
            with m.If(ref_pre_sel[b]):
                m.d.comb += ref_pre_bank.eq(b)

        cmd_bank = Signal(bank_bits + bg_bits)  # bank slot the command addresses
        with m.If(issue_ref_pre):
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
        ]
        any_pre = issue_pre | issue_ref_pre
        cmd_group = cmd_bank[bank_bits:]

        # ---- bank state and timing updates ----------------------------------------------
        for b in range(banks):
            here = cmd_bank == b
            with m.If(issue_act & here):
                m.d.sync += [open_valid[b].eq(1), open_row[b].eq(cmd_entry.addr.row)]
            with m.If(any_pre & here):
                m.d.sync += open_valid[b].eq(0)
            load(act_wait[b], issue_act & here, t.tRC)
            load(act_wait[b], any_pre & here, t.tRP)
            load(rd_wait[b], issue_act & here, t.tRCD)
            load(pre_wait[b], issue_act & here, t.tRAS)
            load(pre_wait[b], issue_rd & here, t.tRTP)
        for k in range(groups):
            load(act_wait_bg[k], issue_act & (cmd_group == k), t.tRRD_L)
            load(rd_wait_bg[k], issue_rd & (cmd_group == k), t.tCCD_L)
        load(act_wait_rank, issue_act, t.tRRD_S)
        load(rd_wait_rank, issue_rd, t.tCCD_S)
        load(pre_to_ref, any_pre, t.tRP)
        load(rfc_wait, issue_ref, t.tRFC)
        for ctr, conditions in loads.values():
            nxt = Mux(ctr == 0, 0, ctr - 1)
            for cond, gap in conditions:
                if gap > 1:
                    nxt = Mux(cond & (nxt < gap - 1), gap - 1, nxt)
            m.d.sync += ctr.eq(nxt)

        def dec(ctr):
            return Mux(ctr == 0, 0, ctr - 1)

        with m.If(issue_act):
            m.d.sync += faw[0].eq(t.tFAW - 1)
            m.d.sync += [faw[k].eq(dec(faw[k - 1])) for k in range(1, 4)]
        with m.Else():
            m.d.sync += [faw[k].eq(dec(faw[k])) for k in range(4)]

        # Refresh interval and owed refreshes.
        due = refi == 0
        m.d.sync += refi.eq(Mux(due, t.tREFI - 1, refi - 1))
        with m.If(due & ~issue_ref):
            with m.If(owed != 8):
                m.d.sync += owed.eq(owed + 1)
        with m.Elif(~due & issue_ref):
            m.d.sync += owed.eq(owed - 1)

        # ---- request buffer update -----------------------------------------------------
        accept = Signal()
        m.d.comb += [
            self.req.ready.eq(count != depth),
            accept.eq(self.req.valid & self.req.ready),
        ]
        removed = Mux(issue_rd, rd_sel, 0)
        remaining = Signal(range(depth + 1))
        m.d.comb += remaining.eq(count - issue_rd)
        m.d.sync += count.eq(remaining + accept)

        updated = []
        for i, e in enumerate(entries):
            u = Signal(entry_layout, name=f"updated_{i}")
            m.d.comb += [
                u.addr.eq(e.addr),
                u.id.eq(e.id),
                u.age.eq(Mux(e.age == limit, limit, e.age + 1)),
                u.cls.eq(e.cls),
            ]
            with m.If(e.cls == _CLS_NONE):
                with m.If(issue_act & act_sel[i]):
                    m.d.comb += u.cls.eq(_CLS_MISS)
                with m.If(issue_pre & pre_sel[i]):
                    m.d.comb += u.cls.eq(_CLS_CONFLICT)
            updated.append(u)
        new_entry = Signal(entry_layout)
        m.d.comb += [
            new_entry.addr.eq(self.req.payload.addr),
            new_entry.id.eq(self.req.payload.id),
        ]
        for i in range(depth):
            shift = removed[:i + 1].any()
            src = updated[i + 1] if i + 1 < depth else updated[i]
            with m.If(accept & (remaining == i)):
                m.d.sync += entries[i].eq(new_entry)
            with m.Elif(shift):
                m.d.sync += entries[i].eq(src)
            with m.Else():
                m.d.sync += entries[i].eq(updated[i])

        # ---- counters ------------------------------------------------------------------
        def count_up(ctr, cond):
            with m.If(cond):
                m.d.sync += ctr.eq(ctr + 1)

        stat = {name: Signal(32, name=f"{name}_q") for name in self.COUNTERS}
        for name in self.COUNTERS:
            m.d.comb += getattr(self, name).eq(stat[name])
        count_up(stat["acts"], issue_act)
        count_up(stat["pres"], any_pre)
        count_up(stat["reads"], issue_rd)
        count_up(stat["refs"], issue_ref)
        count_up(stat["row_hits"], issue_rd & (cmd_entry.cls == _CLS_NONE))
        count_up(stat["row_misses"], issue_rd & (cmd_entry.cls == _CLS_MISS))
        count_up(stat["row_conflicts"], issue_rd & (cmd_entry.cls == _CLS_CONFLICT))

        # Hint check against the in-order shadow row table (acceptance order).
        shadow_valid = Array(Signal(name=f"shadow_valid_{b}") for b in range(banks))
        shadow_row = Array(Signal(row_bits, name=f"shadow_row_{b}") for b in range(banks))
        req_addr = self.req.payload.addr
        req_bank = Cat(req_addr.bank, req_addr.bank_group)
        want_hint = Signal(3)
        with m.If(~shadow_valid[req_bank]):
            m.d.comb += want_hint.eq(HINT_MISS)
        with m.Elif(shadow_row[req_bank] == req_addr.row):
            m.d.comb += want_hint.eq(HINT_HIT)
        with m.Else():
            m.d.comb += want_hint.eq(HINT_CONFLICT)
        for b in range(banks):
            with m.If(accept & (req_bank == b)):
                m.d.sync += [shadow_valid[b].eq(1), shadow_row[b].eq(req_addr.row)]
        count_up(stat["hint_mismatches"], accept & (self.req.payload.hint != want_hint))

        # ---- read data: tag each beat with the id of its RD -------------------------------
        stages = t.tCL + t.tBL - 1
        pipe_valid = [Signal(name=f"rd_pipe_valid_{k}") for k in range(stages)]
        pipe_id = [Signal(self._id_width, name=f"rd_pipe_id_{k}") for k in range(stages)]
        m.d.sync += [pipe_valid[0].eq(issue_rd), pipe_id[0].eq(cmd_entry.id)]
        for k in range(1, stages):
            m.d.sync += [pipe_valid[k].eq(pipe_valid[k - 1]), pipe_id[k].eq(pipe_id[k - 1])]
        out_valid = Signal()
        m.d.sync += [
            out_valid.eq(0),
            self.rdata.payload.data.eq(self.dram.rd_data),
        ]
        for beat in reversed(range(t.tBL)):  # at most one tap is valid (tCCD_S >= tBL)
            k = t.tCL - 1 + beat
            with m.If(pipe_valid[k]):
                m.d.sync += [
                    out_valid.eq(1),
                    self.rdata.payload.id.eq(pipe_id[k]),
                    self.rdata.payload.beat.eq(beat),
                    self.rdata.payload.last.eq(beat == t.tBL - 1),
                ]
        m.d.comb += [
            self.rdata.valid.eq(out_valid),
            self.idle.eq((count == 0) & ~Cat(pipe_valid).any() & ~out_valid),
        ]
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
        members["rdata"] = Out(wiring.Signature({
            "valid": Out(1), "payload": Out(rdata["payload"].shape)}))
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
