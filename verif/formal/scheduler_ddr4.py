"""Spec: every command of the rank scheduler is DDR4-legal, for every request sequence and
with a reset at any cycle; refreshes come within a fixed deadline.

The spec keeps a shadow model of the DRAM, never reset (the DRAM keeps running when the
controller is reset): per bank the open row and the cycles since its last ACT, PRE and RD;
per bank group and per rank the cycles since the last ACT and RD; the ages of the last four
ACTs (tFAW); the cycles since the last effective PRE and the last REF. Its power-up state
is free (any rows open, any recent history). The scheduler's requests (valid, address, id,
hint), the DRAM read data and the scheduler's reset are free inputs.

Strengthening invariants (``inv.*``), which make the properties inductive, tie the
scheduler's registers (:attr:`hw.bank_timers.BankTimers.registers`,
:attr:`hw.refresh_control.RefreshControl.registers`) to the shadow model: with ``k`` the
cycles since the scheduler's reset (``left`` of the recovery counter), for ``k < W`` every
shadow counter is at least ``k`` (no command during the wait), and from ``k >= W`` on every
timing down-counter is at least ``gap - (cycles since the command that loads it)`` and the
open-row table equals the shadow's for every bank the recovery sweep has precharged.
"""

from __future__ import annotations

import contextlib
import functools
from types import SimpleNamespace
from unittest import mock

from amaranth.asserts import AnySeq, Initial
from amaranth.hdl import Array, Cat, Module, Mux, ResetSignal, Signal

import hw.rank_scheduler as rank_scheduler_module
from hw.bank_timers import BankTimers
from hw.ddr4 import DDR4Geometry, DDR4Timing, DramCommand
from hw.rank_scheduler import RankScheduler
from hw.read_tagger import ReadTagger
from hw.refresh_control import RefreshControl, recovery_cycles, recovery_wait
from hw.request_buffer import RequestBuffer

from .params import FORMAL_GEOMETRY, FORMAL_TIMING, recovery_ref_cycle, refresh_deadline
from .spec import FormalSpec, free_init_signal

__all__ = ["SchedulerDDR4Spec", "mutated_scheduler_parts"]

_PARTS = {"timers": BankTimers, "buffer": RequestBuffer, "refresh": RefreshControl, "tagger": ReadTagger}


@contextlib.contextmanager
def mutated_scheduler_parts(mutations: dict[str, str] | None):
    """While active, :class:`RankScheduler` builds the named parts with a test-only
    ``mutation`` (``{"timers": "ref_ignores_trp"}``, keys ``timers``, ``buffer``, ``refresh``, ``tagger``)."""
    with contextlib.ExitStack() as stack:
        for part, mutation in (mutations or {}).items():
            cls = _PARTS[part]
            stack.enter_context(
                mock.patch.object(rank_scheduler_module, cls.__name__, functools.partial(cls, mutation=mutation))
            )
        yield


class SchedulerDDR4Spec(FormalSpec):
    """DDR4 legality and the refresh deadline of :class:`hw.rank_scheduler.RankScheduler`.

    Parameters
    ----------
    timing : DDR4Timing
        The timing the spec checks against (default :data:`~verif.formal.params.FORMAL_TIMING`).
    geometry : DDR4Geometry
        Default :data:`~verif.formal.params.FORMAL_GEOMETRY` (4 banks in 2 bank groups).
    design_timing : DDR4Timing, optional
        The timing the scheduler is built with; a different one is a mutation (default:
        ``timing``).
    part_mutations : dict, optional
        Test-only mutations of the scheduler's parts (:func:`mutated_scheduler_parts`).
    depth, starvation_limit : int
        Request buffer of the scheduler under test (default 2 and 4).
    invariants : bool
        Assert the strengthening invariants (needed for k-induction; a BMC of a mutation
        leaves them out so that the DDR4 rule itself is what fails).
    reset_at_start : bool
        Assume the reset in the first cycle (power-up; for BMC and covers).
    refresh_deadline : bool
        Also assert the refresh deadline (:func:`~verif.formal.params.refresh_deadline`:
        cycles from a REF or a reset to the next REF) and the invariants its induction needs.
    requests : bool
        Free requests (default); ``False`` assumes none (a deterministic run, for the
        mutation test of the refresh deadline, which needs a whole refresh interval).
    tfaw_cover : bool
        Include the cover of a full tFAW window with a request waiting (reachable only with
        a buffer of 4: about 30 cycles deep, minutes with z3).
    """

    def __init__(
        self,
        *,
        timing: DDR4Timing = FORMAL_TIMING,
        geometry: DDR4Geometry = FORMAL_GEOMETRY,
        design_timing: DDR4Timing | None = None,
        part_mutations: dict[str, str] | None = None,
        depth: int = 2,
        starvation_limit: int = 4,
        invariants: bool = True,
        reset_at_start: bool = True,
        refresh_deadline: bool = False,
        requests: bool = True,
        tfaw_cover: bool = True,
        response_bound: int | None = None,
    ):
        super().__init__()
        self.timing = timing
        self.geometry = geometry
        self.design_timing = design_timing or timing
        self.part_mutations = dict(part_mutations or {})
        self.depth = depth
        self.starvation_limit = starvation_limit
        self.invariants = invariants
        self.reset_at_start = reset_at_start
        self.check_refresh_deadline = refresh_deadline
        self.requests = requests
        self.tfaw_cover = tfaw_cover
        self.response_bound = response_bound

    def build(self, m: Module, platform) -> None:
        t, g = self.timing, self.geometry
        dut = RankScheduler(
            timing=self.design_timing,
            geometry=g,
            depth=self.depth,
            id_width=1,
            starvation_limit=self.starvation_limit,
        )
        with mutated_scheduler_parts(self.part_mutations):
            m.submodules.dut = self.elaborated(dut, platform)
        timers = dut.parts.timers.registers
        refresh = dut.parts.refresh.registers

        # ---- free inputs --------------------------------------------------------------------
        m.d.comb += [
            dut.req.valid.eq(AnySeq(1)),
            dut.req.payload.eq(AnySeq(len(dut.req.payload.as_value()))),
            dut.dram.rd_data.eq(AnySeq(len(dut.dram.rd_data))),
            dut.dram.rd_valid.eq(AnySeq(1)),
        ]
        if not self.requests:
            self.assume(m, "no_requests", ~dut.req.valid)
        if self.reset_at_start:
            with m.If(Initial()):
                self.assume(m, "power_up_is_a_reset", ResetSignal())

        # ---- shadow DRAM ----------------------------------------------------------------------
        banks = g.banks
        groups = g.bank_groups
        wait = recovery_wait(t)
        cap = wait  # every gap <= W: a saturated counter is "long ago"
        row_bits = len(dut.dram.row)

        def since(name):
            return free_init_signal(range(cap + 1), name=name)

        open_ = [free_init_signal(1, name=f"open_{b}") for b in range(banks)]
        row = [free_init_signal(row_bits, name=f"row_{b}") for b in range(banks)]
        since_act = [since(f"since_act_{b}") for b in range(banks)]
        since_pre = [since(f"since_pre_{b}") for b in range(banks)]
        since_rd = [since(f"since_rd_{b}") for b in range(banks)]
        since_act_bg = [since(f"since_act_bg_{k}") for k in range(groups)]
        since_rd_bg = [since(f"since_rd_bg_{k}") for k in range(groups)]
        since_act_rank = since("since_act_rank")
        since_rd_rank = since("since_rd_rank")
        act_age = [since(f"act_age_{j}") for j in range(4)]  # the last four ACTs, newest first
        since_pre_rank = since("since_pre_rank")  # last PRE that closed a bank
        since_ref = since("since_ref")

        cmd = dut.dram.cmd
        slot = Signal(range(banks), name="cmd_slot")
        m.d.comb += slot.eq(Cat(dut.dram.bank, dut.dram.bank_group))
        grp = dut.dram.bank_group
        is_act = Signal(name="is_act")
        is_rd = Signal(name="is_rd")
        is_pre = Signal(name="is_pre")
        is_ref = Signal(name="is_ref")
        m.d.comb += [
            is_act.eq(cmd == DramCommand.ACT),
            is_rd.eq(cmd == DramCommand.RD),
            is_pre.eq(cmd == DramCommand.PRE),
            is_ref.eq(cmd == DramCommand.REF),
        ]
        a_open = Array(open_)
        a_row = Array(row)
        a_since_act = Array(since_act)
        a_since_pre = Array(since_pre)
        a_since_rd = Array(since_rd)
        a_since_act_bg = Array(since_act_bg)
        a_since_rd_bg = Array(since_rd_bg)

        def step(counter, event):
            m.d.model += counter.eq(Mux(event, 1, Mux(counter >= cap, cap, counter + 1)))

        for b in range(banks):
            here = slot == b
            closing = is_pre & here & open_[b]
            step(since_act[b], is_act & here)
            step(since_pre[b], closing)
            step(since_rd[b], is_rd & here)
            with m.If(is_act & here):
                m.d.model += [open_[b].eq(1), row[b].eq(dut.dram.row)]
            with m.If(closing):
                m.d.model += open_[b].eq(0)
        for k in range(groups):
            step(since_act_bg[k], is_act & (grp == k))
            step(since_rd_bg[k], is_rd & (grp == k))
        step(since_act_rank, is_act)
        step(since_rd_rank, is_rd)
        step(since_pre_rank, is_pre & a_open[slot])
        step(since_ref, is_ref)
        with m.If(is_act):
            m.d.model += act_age[0].eq(1)
            m.d.model += [act_age[j].eq(Mux(act_age[j - 1] >= cap, cap, act_age[j - 1] + 1)) for j in range(1, 4)]
        with m.Else():
            m.d.model += [act_age[j].eq(Mux(act_age[j] >= cap, cap, act_age[j] + 1)) for j in range(4)]

        # ---- the DDR4 rules -------------------------------------------------------------------
        def rule(name, when, condition):
            self.check(m, f"ddr4.{name}", ~when | condition)

        rule("act_to_closed_bank", is_act, ~a_open[slot])
        rule("tRC", is_act, a_since_act[slot] >= t.tRC)
        rule("tRP", is_act, a_since_pre[slot] >= t.tRP)
        rule("tRRD_L", is_act, a_since_act_bg[grp] >= t.tRRD_L)
        rule("tRRD_S", is_act, since_act_rank >= t.tRRD_S)
        rule("tFAW", is_act, act_age[3] >= t.tFAW)
        rule("rd_to_open_row", is_rd, a_open[slot] & (a_row[slot] == dut.dram.row))
        rule("tRCD", is_rd, a_since_act[slot] >= t.tRCD)
        rule("tCCD_L", is_rd, a_since_rd_bg[grp] >= t.tCCD_L)
        rule("tCCD_S", is_rd, since_rd_rank >= t.tCCD_S)
        rule("tRAS", is_pre & a_open[slot], a_since_act[slot] >= t.tRAS)
        rule("tRTP", is_pre & a_open[slot], a_since_rd[slot] >= t.tRTP)
        rule("ref_all_banks_closed", is_ref, ~Cat(open_).any())
        rule("tRP_before_ref", is_ref, since_pre_rank >= t.tRP)
        rule("tRFC", cmd != DramCommand.NOP, since_ref >= t.tRFC)

        # Refresh deadline: cycles since the last REF or the scheduler's last reset.
        deadline = refresh_deadline(t, g)
        since_ref_or_reset = Signal(range(deadline + 2), name="since_ref_or_reset")
        with m.If(ResetSignal() | is_ref):
            m.d.model += since_ref_or_reset.eq(0)
        with m.Elif(since_ref_or_reset <= deadline):
            m.d.model += since_ref_or_reset.eq(since_ref_or_reset + 1)
        self.deadline = deadline
        if self.check_refresh_deadline:
            self.check(m, "ddr4.refresh_deadline", since_ref_or_reset <= deadline)

        # ---- covers -------------------------------------------------------------------------
        total = recovery_cycles(self.design_timing, g)
        left = refresh.left
        recovered = left == 0
        buffered = dut.parts.buffer.registers.count != 0
        self.cover(m, "cover.ref_with_a_request_waiting", is_ref & buffered)
        # Four ACTs within tFAW and a request waiting for a closed bank that only tRRD/tFAW hold.
        tfaw_limited = Signal(name="tfaw_limited")
        m.d.comb += tfaw_limited.eq(
            recovered
            & (timers.faw[3] != 0)
            & Cat(~timers.open_valid[b] & (timers.act_wait[b] == 0) for b in range(banks)).any()
            & buffered
        )
        if self.tfaw_cover:
            self.cover(m, "cover.tfaw_window_full_with_a_request_waiting", tfaw_limited)
        self.cover(m, "cover.row_conflict_pre", recovered & is_pre & ~refresh.owed.any())
        self.cover(m, "cover.read", is_rd)
        self.cover(m, "cover.reset_with_requests_buffered", ResetSignal() & recovered & buffered)

        if self.response_bound is not None:
            # The response clocks pause during the recovery after a reset, counted by the
            # spec itself (not by the design's ``left``, which an invariant ties to it).
            since_reset = Signal(range(total + 1), name="since_reset")
            with m.If(since_reset != total):
                m.d.sync += since_reset.eq(since_reset + 1)
            self._bounded_response(m, dut, recovered=since_reset == total, since_rd_rank=since_rd_rank)
            # The scheduler is in its recovery exactly the recovery's length after a reset: it
            # cannot pause service (and these clocks) on its own.
            self.check(m, "response.recovery_only_after_a_reset", left == total - since_reset)

        # ---- strengthening invariants -----------------------------------------------------------
        if not self.invariants:
            return
        dt = self.design_timing
        wait = recovery_wait(dt)
        self.check(m, "inv.recovery_counter_in_range", left <= total)
        cycles_since_reset = Signal(range(total + 1), name="cycles_since_reset")
        m.d.comb += cycles_since_reset.eq(total - left)
        waiting = cycles_since_reset < wait
        shadow_counters = [
            *since_act,
            *since_pre,
            *since_rd,
            *since_act_bg,
            *since_rd_bg,
            since_act_rank,
            since_rd_rank,
            since_pre_rank,
            since_ref,
            *act_age,
        ]
        quiet = Cat(~waiting | (c >= cycles_since_reset) for c in shadow_counters).all()
        self.check(m, "inv.no_command_history_during_the_wait", quiet)
        # No ACT or RD during the whole recovery (the sweep's PREs need tRAS and tRTP).
        no_act_rd = [*since_act, *since_rd, *since_act_bg, *since_rd_bg, since_act_rank, since_rd_rank, *act_age]
        in_recovery = left != 0
        floor = Mux(cycles_since_reset < cap, cycles_since_reset, cap)
        self.check(
            m,
            "inv.no_act_or_rd_history_during_the_recovery",
            ~in_recovery | Cat(c >= floor for c in no_act_rd).all(),
        )
        self.check(m, "inv.no_command_during_the_wait", ~waiting | (cmd == DramCommand.NOP))

        def window(name, counter, gap, elapsed):
            if gap > 1:
                self.check(m, f"inv.{name}", waiting | (counter + elapsed >= gap))

        for b in range(banks):
            window(f"act_wait_{b}_tRC", timers.act_wait[b], dt.tRC, since_act[b])
            window(f"act_wait_{b}_tRP", timers.act_wait[b], dt.tRP, since_pre[b])
            window(f"rd_wait_{b}_tRCD", timers.rd_wait[b], dt.tRCD, since_act[b])
            window(f"pre_wait_{b}_tRAS", timers.pre_wait[b], dt.tRAS, since_act[b])
            window(f"pre_wait_{b}_tRTP", timers.pre_wait[b], dt.tRTP, since_rd[b])
        for k in range(groups):
            window(f"act_wait_bg_{k}", timers.act_wait_bg[k], dt.tRRD_L, since_act_bg[k])
            window(f"rd_wait_bg_{k}", timers.rd_wait_bg[k], dt.tCCD_L, since_rd_bg[k])
        window("act_wait_rank", timers.act_wait_rank, dt.tRRD_S, since_act_rank)
        window("rd_wait_rank", timers.rd_wait_rank, dt.tCCD_S, since_rd_rank)
        for j in range(4):
            window(f"faw_{j}", timers.faw[j], dt.tFAW, act_age[j])
        window("pre_to_ref", timers.pre_to_ref, dt.tRP, since_pre_rank)
        window("rfc_wait", timers.rfc_wait, dt.tRFC, since_ref)
        if self.response_bound is not None:
            shadow = SimpleNamespace(
                since_act=since_act,
                since_rd=since_rd,
                since_act_bg=since_act_bg,
                since_rd_bg=since_rd_bg,
                since_act_rank=since_act_rank,
                since_rd_rank=since_rd_rank,
                act_age=act_age,
                since_ref=since_ref,
            )
            self._exact_timers(m, timers, shadow, waiting=waiting, slot=slot, cmd=cmd)
        for b in range(banks):
            swept = cycles_since_reset > wait + b  # the recovery's PRE to slot b is done
            same = (timers.open_valid[b] == open_[b]) & (~open_[b] | (timers.open_row[b] == row[b]))
            self.check(m, f"inv.open_row_table_{b}", ~swept | same)

        # Refresh bookkeeping: during the recovery the tREFI counter is held and one
        # refresh is owed until the recovery's REF (at ``ref_at``); afterwards at most one is
        # owed, and the time since the last REF plus what is left of the interval is bounded.
        ref_at = recovery_ref_cycle(dt, g)
        recovering = left != 0
        since_rr = since_ref_or_reset
        owed = refresh.owed
        refi = refresh.refi

        def during_recovery(name, condition):
            self.check(m, f"inv.refresh.{name}", ~recovering | condition)

        during_recovery("interval_held", refi == dt.tREFI - 1)
        during_recovery("no_bank_open", ~Cat(timers.open_valid).any())
        during_recovery("at_most_one_owed", owed <= 1)
        during_recovery("no_ref_before_it_is_owed", (owed != 1) | (since_rr == cycles_since_reset))
        during_recovery("owed_no_trfc", (owed != 1) | (timers.rfc_wait == 0))
        during_recovery("ref_counted_since_reset", (owed != 0) | (since_ref == since_rr + 1))
        during_recovery("ref_not_before_the_sweep", (owed != 0) | (since_rr + ref_at < cycles_since_reset))
        if not self.check_refresh_deadline:
            return
        # These need the deadline's argument (a REF within the bound once owed): only with it.
        self.check(m, "inv.refresh.at_most_one_owed_after_recovery", recovering | (owed <= 1))
        self.check(
            m,
            "inv.refresh.interval_bound",
            recovering | (owed != 0) | (since_rr + refi <= dt.tREFI + dt.tRFC),
        )

    def _exact_timers(self, m: Module, timers, shadow: SimpleNamespace, *, waiting, slot, cmd) -> None:
        """Upper bounds on the timing down-counters (the lower bounds are ``inv.window``s):
        each counter is at most the largest ``gap - elapsed`` of the commands that load it,
        so no counter holds a command back longer than DDR4 requires. Bounded response
        needs them: with lower bounds only, the induction could start from a counter that
        waits a whole window too long."""
        dt, g = self.design_timing, self.geometry
        cap = recovery_wait(dt)
        # Shadow counters of the commands that load a timer whatever the bank's state: any
        # PRE (also to a closed bank), per bank and per rank.
        since_pre_cmd = [free_init_signal(range(cap + 1), name=f"since_pre_cmd_{b}") for b in range(g.banks)]
        since_pre_cmd_rank = free_init_signal(range(cap + 1), name="since_pre_cmd_rank")

        def step(counter, event):
            m.d.model += counter.eq(Mux(event, 1, Mux(counter >= cap, cap, counter + 1)))

        is_pre = cmd == DramCommand.PRE
        for b in range(g.banks):
            step(since_pre_cmd[b], is_pre & (slot == b))
        step(since_pre_cmd_rank, is_pre)

        def at_most(name, counter, *loads):
            bound = (counter == 0) | Cat(counter + elapsed <= gap for gap, elapsed in loads).any()
            self.check(m, f"inv.exact.{name}", waiting | bound)

        for b in range(g.banks):
            at_most(f"act_wait_{b}", timers.act_wait[b], (dt.tRC, shadow.since_act[b]), (dt.tRP, since_pre_cmd[b]))
            at_most(f"rd_wait_{b}", timers.rd_wait[b], (dt.tRCD, shadow.since_act[b]))
            at_most(f"pre_wait_{b}", timers.pre_wait[b], (dt.tRAS, shadow.since_act[b]), (dt.tRTP, shadow.since_rd[b]))
        for k in range(g.bank_groups):
            at_most(f"act_wait_bg_{k}", timers.act_wait_bg[k], (dt.tRRD_L, shadow.since_act_bg[k]))
            at_most(f"rd_wait_bg_{k}", timers.rd_wait_bg[k], (dt.tCCD_L, shadow.since_rd_bg[k]))
        at_most("act_wait_rank", timers.act_wait_rank, (dt.tRRD_S, shadow.since_act_rank))
        at_most("rd_wait_rank", timers.rd_wait_rank, (dt.tCCD_S, shadow.since_rd_rank))
        for j in range(4):
            at_most(f"faw_{j}", timers.faw[j], (dt.tFAW, shadow.act_age[j]))
        at_most("pre_to_ref", timers.pre_to_ref, (dt.tRP, since_pre_cmd_rank))
        at_most("rfc_wait", timers.rfc_wait, (dt.tRFC, shadow.since_ref))

    def _bounded_response(self, m: Module, dut: RankScheduler, *, recovered, since_rd_rank) -> None:
        """Bounded response, in two steps (recovery cycles are not counted):

        * the oldest buffered request is served by a RD within ``response_bound`` cycles of
          becoming the oldest (``response.oldest_served_within_the_bound``);
        * so a request chosen by a free ``watch`` input at its acceptance, with ``p`` older
          requests buffered, is served within ``(p + 1) * response_bound`` cycles
          (``response.served_within_the_bound``); the RD carries its address and its beats
          leave on ``rdata`` with its id ``tCL + 1`` cycles later.

        A reset drops the buffered requests, the watched one too.
        """
        t, bound, depth = self.design_timing, self.response_bound, self.depth
        buf = dut.parts.buffer.registers
        tagger = dut.parts.tagger.registers
        removed = buf.removed
        # ---- the oldest request ---------------------------------------------------------
        oldest_wait = Signal(range(bound + 2), name="oldest_wait")
        with m.If((buf.count == 0) | removed[0]):
            m.d.sync += oldest_wait.eq(0)
        with m.Elif(recovered & (oldest_wait <= bound)):
            m.d.sync += oldest_wait.eq(oldest_wait + 1)
        self.check(m, "response.oldest_served_within_the_bound", oldest_wait <= bound)

        # ---- a watched request ----------------------------------------------------------
        watch = Signal(name="watch")
        m.d.comb += watch.eq(AnySeq(1))
        accept = dut.req.valid & dut.req.ready
        watching = Signal(name="watching")
        pos = Signal(range(depth), name="watch_pos")
        first_pos = Signal(range(depth), name="watch_first_pos")
        waited = Signal(range(depth * bound + 2), name="watch_waited")
        age = Signal(range(self.starvation_limit + 1), name="watch_age")
        w_addr = Signal.like(dut.req.payload.addr, name="watch_addr")
        w_id = Signal.like(dut.req.payload.id, name="watch_id")
        served = Signal(name="watch_served")
        older_served = Signal(name="watch_older_served")
        m.d.comb += [
            served.eq(watching & Cat(removed[i] & (pos == i) for i in range(depth)).any()),
            older_served.eq(Cat(removed[i] & (i < pos) for i in range(depth)).any()),
        ]
        with m.If(~watching | served):
            m.d.sync += watching.eq(accept & watch)
            with m.If(accept & watch):
                place = buf.count - removed.any()
                m.d.sync += [
                    pos.eq(place),
                    first_pos.eq(place),
                    waited.eq(0),
                    age.eq(0),
                    w_addr.eq(dut.req.payload.addr),
                    w_id.eq(dut.req.payload.id),
                ]
        with m.Else():
            m.d.sync += pos.eq(pos - older_served)
            with m.If(recovered & (waited <= depth * bound)):
                m.d.sync += waited.eq(waited + 1)
            with m.If(age != self.starvation_limit):
                m.d.sync += age.eq(age + 1)
        self.check(m, "response.served_within_the_bound", ~watching | (waited <= (first_pos + 1) * bound))
        self.check(
            m,
            "response.rd_carries_the_address",
            ~served
            | (
                (dut.dram.cmd == DramCommand.RD)
                & (dut.dram.bank == w_addr.bank)
                & (dut.dram.bank_group == w_addr.bank_group)
                & (dut.dram.row == w_addr.row)
                & (dut.dram.column == w_addr.line * self.geometry.burst_columns)
            ),
        )
        # Its beats: the RD in cycle c, beat j on rdata in cycle c + tCL + 1 + j.
        last_beat = t.tCL + t.tBL
        since_served = Signal(range(last_beat + 2), name="since_watch_served")
        rd_id = Signal.like(w_id, name="watch_rd_id")
        with m.If(served):
            m.d.sync += [since_served.eq(1), rd_id.eq(w_id)]
        with m.Elif((since_served != 0) & (since_served <= last_beat)):
            m.d.sync += since_served.eq(since_served + 1)
        with m.Else():
            m.d.sync += since_served.eq(0)
        beat_due = (since_served >= t.tCL + 1) & (since_served <= last_beat)
        beat = Signal(range(t.tBL), name="watch_beat_due")
        m.d.comb += beat.eq(since_served - (t.tCL + 1))
        out = dut.rdata
        self.check(
            m,
            "response.beats_leave_with_the_id",
            ~beat_due
            | (
                out.valid
                & (out.payload.id == rd_id)
                & (out.payload.beat == beat)
                & (out.payload.last == (beat == t.tBL - 1))
            ),
        )
        self.cover(m, "cover.watched_request_served_behind_an_older_one", served & (first_pos != 0))
        if not self.invariants:
            return
        entry_addr = Array(e.addr.as_value() for e in buf.entries)[pos]
        entry_id = Array(e.id for e in buf.entries)[pos]
        entry_age = Array(e.age for e in buf.entries)[pos]
        self.check(m, "inv.watch.in_the_buffer", ~watching | (pos < buf.count))
        self.check(m, "inv.watch.entry", ~watching | ((entry_addr == w_addr.as_value()) & (entry_id == w_id)))
        self.check(m, "inv.watch.age", ~watching | (entry_age == age))
        self.check(m, "inv.watch.pos", ~watching | (pos <= first_pos))
        self.check(m, "inv.watch.waited", ~watching | (waited <= (first_pos - pos) * bound + oldest_wait))
        self.check(m, "inv.buffer.count_in_range", buf.count <= depth)
        for i, e in enumerate(buf.entries):
            self.check(m, f"inv.buffer.age_in_range_{i}", e.age <= self.starvation_limit)
        for i in range(depth - 1):
            older, younger = buf.entries[i], buf.entries[i + 1]
            self.check(m, f"inv.buffer.ages_ordered_{i}", (buf.count <= i + 1) | (older.age >= younger.age))
        stages = len(tagger.pipe_valid)
        for k in range(stages):
            self.check(
                m,
                f"inv.watch.rd_in_stage_{k}",
                (since_served != k + 1) | (tagger.pipe_valid[k] & (tagger.pipe_id[k] == rd_id)),
            )
            newest = tagger.pipe_valid[k] & ~Cat(tagger.pipe_valid[:k]).any() if k else tagger.pipe_valid[0]
            self.check(m, f"inv.tagger.newest_rd_{k}", ~newest | (since_rd_rank == k + 1))
            for k2 in range(k + 1, min(stages, k + t.tCCD_S)):
                self.check(m, f"inv.tagger.rds_apart_{k}_{k2}", ~(tagger.pipe_valid[k] & tagger.pipe_valid[k2]))
