"""DDR4 protocol checker for one rank: every command against bank state and timing.

Feed it each command with its DRAM clock cycle (:meth:`DDR4ProtocolChecker.command`); it
raises :class:`ProtocolError` on the first violation, naming the constraint, the cycle and
the bank. Call :meth:`DDR4ProtocolChecker.check_refresh` on idle cycles (or at the end of a
test) so that a missing refresh is caught even when no command follows it. Call
:meth:`DDR4ProtocolChecker.controller_reset` when the controller (the DUT) is reset while
the DRAM keeps running.

Checked (constraint names in quotes):

* "command bus": one command per cycle, in increasing cycles.
* "bank state": ACT only to a precharged bank, RD only to an open bank, REF only with every
  bank precharged; after a controller reset, ACT, RD and REF only to banks precharged (PRE)
  since that reset. PRE to a precharged bank is legal (a NOP for that bank).
* "row address": a RD names the row that is open in its bank.
* "burst alignment": a RD column is a multiple of the burst length.
* tRCD, tRP, tRAS, tRC, tCCD_S/L, tRRD_S/L, tFAW, tRTP, tRFC (named as such).
* "tRAS(max)": no row stays open longer than 9 x tREFI.
* "tREFI": with N = cycle // tREFI refresh intervals elapsed, at most ``max_postponed``
  (JEDEC: 8) refreshes may be owed and at most ``max_pulled_in`` (8) issued ahead; and
  no more than 9 x tREFI cycles pass between two REFs (or from the start to the first
  REF), whatever was pulled in before.

tCL and tBL are the read latency and burst length the DRAM model applies; tCCD_S >= tBL
(checked by :class:`hw.ddr4.DDR4Timing`) keeps bursts from overlapping on the data bus.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass

from hw.ddr4 import DDR4Geometry, DDR4Timing, DramCommand

__all__ = ["DDR4ProtocolChecker", "ProtocolError"]

_NEVER = -(1 << 60)
#: JEDEC DDR4: at most 9 x tREFI from one REF to the next, and tRAS(max) = 9 x tREFI.
_REFRESH_WINDOW = 9
_INITIAL_STATES = ("precharged", "unknown")


class ProtocolError(AssertionError):
    """A DDR4 protocol or timing violation. ``constraint``, ``cycle``, ``bank_group`` and
    ``bank`` say which and where."""

    def __init__(self, constraint: str, cycle: int, bank_group: int, bank: int, detail: str):
        self.constraint = constraint
        self.cycle = cycle
        self.bank_group = bank_group
        self.bank = bank
        super().__init__(f"DDR4 {constraint} violation at cycle {cycle}, bank group {bank_group} bank {bank}: {detail}")


@dataclass
class _Bank:
    open_row: int | None = None
    last_act: int = _NEVER
    last_pre: int = _NEVER
    last_rd: int = _NEVER
    #: The controller knows the bank's state: no controller reset since its last PRE.
    known: bool = True


class DDR4ProtocolChecker:
    """Tracks one rank's bank state and checks every command against DDR4 rules.

    Parameters
    ----------
    timing, geometry :
        The rank's timing (cycles) and shape; defaults DDR4-2400, 8 Gb x8.
    max_postponed, max_pulled_in : int
        How many refreshes may be owed, or issued ahead of the tREFI schedule.
    initial_state : {"precharged", "unknown"}
        ``"precharged"``: every bank precharged and known to the controller, as after the
        JEDEC power-up and initialisation sequence. ``"unknown"``: the DRAM is precharged,
        but as if :meth:`controller_reset` happened at cycle 0, so the controller must
        precharge every bank before using it.

    Attributes
    ----------
    refreshes : int
        REFs checked.
    counts : Counter of DramCommand
        How many of each command were checked.
    controller_resets : list of int
        The cycle of every controller reset.
    """

    def __init__(
        self,
        *,
        timing: DDR4Timing = DDR4Timing(),
        geometry: DDR4Geometry = DDR4Geometry(),
        max_postponed: int = 8,
        max_pulled_in: int = 8,
        initial_state: str = "precharged",
    ):
        if initial_state not in _INITIAL_STATES:
            raise ValueError(f"initial_state must be one of {_INITIAL_STATES}, got {initial_state!r}")
        self.timing = timing
        self.geometry = geometry
        self.max_postponed = max_postponed
        self.max_pulled_in = max_pulled_in
        self._banks = {(bg, b): _Bank() for bg in range(geometry.bank_groups) for b in range(geometry.banks_per_group)}
        self._last_cycle = _NEVER
        self._acts: deque[int] = deque(maxlen=4)  # the last four ACTs, any bank
        self._last_act_bg = {bg: _NEVER for bg in range(geometry.bank_groups)}
        self._last_rd_bg = {bg: _NEVER for bg in range(geometry.bank_groups)}
        self._last_ref = _NEVER
        # The next REF is due 9 x tREFI after the previous one, or after the start.
        self._refresh_window_start = 0
        self.refreshes = 0
        #: How many of each command were checked.
        self.counts: Counter[DramCommand] = Counter()
        #: The cycle of every controller reset.
        self.controller_resets: list[int] = []
        if initial_state == "unknown":
            self.controller_reset(0)

    def open_row(self, bank_group: int, bank: int) -> int | None:
        """The row open in a bank, or ``None`` when it is precharged (the DRAM's state,
        whether or not the controller knows it)."""
        return self._banks[(bank_group, bank)].open_row

    def controller_reset(self, cycle: int) -> None:
        """The controller was reset at ``cycle``; the DRAM was not.

        The DRAM keeps its state and every timing window (tRAS, tRFC, ... still apply), and
        the refresh rules keep counting from the last REF. But the controller no longer
        knows which rows are open, so from now on an ACT, RD or REF needs a PRE, since this
        call, to every bank it involves (tRP after it, even if the bank was precharged).
        Commands checked after this call count as after the reset.

        Raises
        ------
        ValueError
            ``cycle`` is before the last command checked.
        """
        if cycle < self._last_cycle:
            raise ValueError(f"controller reset at cycle {cycle}, before the command at cycle {self._last_cycle}")
        self.controller_resets.append(cycle)
        for state in self._banks.values():
            state.known = False

    def check_refresh(self, cycle: int, bank_group: int = 0, bank: int = 0) -> None:
        """Fail if, at ``cycle``, a row has been open longer than 9 x tREFI ("tRAS(max)",
        named by its bank), more than ``max_postponed`` refreshes are owed, or the previous
        REF (or the start) is more than 9 x tREFI ago ("tREFI", named by ``bank_group``,
        ``bank``)."""
        limit = _REFRESH_WINDOW * self.timing.tREFI
        since_refresh = cycle - self._refresh_window_start
        # Every open row was opened after the last REF (REF needs every bank precharged), so
        # only an overdue REF can hide a row open too long: scan the banks only then. The
        # row is named first: it is what kept the REF from being issued.
        if since_refresh > limit:
            for (bg, b), state in self._banks.items():
                if state.open_row is not None and cycle - state.last_act > limit:
                    raise ProtocolError(
                        "tRAS(max)",
                        cycle,
                        bg,
                        b,
                        f"row {state.open_row} open for {cycle - state.last_act} cycles since ACT at "
                        f"cycle {state.last_act} (at most 9 x tREFI = {limit})",
                    )
        owed = cycle // self.timing.tREFI - self.refreshes
        if owed > self.max_postponed:
            raise ProtocolError(
                "tREFI",
                cycle,
                bank_group,
                bank,
                f"missing refresh: {self.refreshes} REF issued after {cycle // self.timing.tREFI} "
                f"refresh intervals of {self.timing.tREFI} cycles (at most {self.max_postponed} may be postponed)",
            )
        # Pulling REFs in does not buy more time: 8 ahead then 8 owed would leave ~17 tREFI.
        if since_refresh > limit:
            since = (
                f"the previous REF at cycle {self._refresh_window_start}"
                if self.refreshes
                else "the start at cycle 0, with no REF"
            )
            raise ProtocolError(
                "tREFI",
                cycle,
                bank_group,
                bank,
                f"{since_refresh} cycles since {since} (at most 9 x tREFI = {limit})",
            )

    def command(
        self,
        cycle: int,
        cmd: DramCommand,
        *,
        bank_group: int = 0,
        bank: int = 0,
        row: int = 0,
        column: int = 0,
    ) -> int | None:
        """Check one command issued at ``cycle``. Returns the row a RD reads, else ``None``.

        ``row`` is the row an ACT opens and, for a RD, the row the command port carries,
        which must be the open row ("row address"); PRE and REF ignore it.

        Raises
        ------
        ProtocolError
            The command breaks a DDR4 rule.
        ValueError
            An address field is out of the geometry's range.
        """
        cmd = DramCommand(cmd)
        if cmd == DramCommand.NOP:
            self.check_refresh(cycle)
            return None
        g = self.geometry
        if not (
            0 <= bank_group < g.bank_groups
            and 0 <= bank < g.banks_per_group
            and 0 <= row < g.rows
            and 0 <= column < g.columns
        ):
            raise ValueError(
                f"address out of range at cycle {cycle}: bank group {bank_group} bank {bank} row {row} column {column}"
            )
        t = self.timing

        def need(constraint: str, since: int, gap: int, what: str) -> None:
            if cycle - since < gap:
                raise ProtocolError(
                    constraint,
                    cycle,
                    bank_group,
                    bank,
                    f"{cmd.name} {cycle - since} cycles after {what} at cycle {since} (needs {gap})",
                )

        def fail(constraint: str, detail: str) -> None:
            raise ProtocolError(constraint, cycle, bank_group, bank, detail)

        def unknown(what: str) -> str:
            return (
                f"{what} unknown state after the controller reset at cycle "
                f"{self.controller_resets[-1]}: precharge it first"
            )

        if cycle <= self._last_cycle:
            fail(
                "command bus",
                f"{cmd.name} in the same or an earlier cycle than the previous command (cycle {self._last_cycle})",
            )
        self.check_refresh(cycle, bank_group, bank)
        need("tRFC", self._last_ref, t.tRFC, "REF")
        state = self._banks[(bank_group, bank)]

        if cmd == DramCommand.ACT:
            if not state.known:
                fail("bank state", unknown(f"ACT row {row} to a bank with"))
            if state.open_row is not None:
                fail("bank state", f"ACT row {row} to a bank with row {state.open_row} open")
            need("tRP", state.last_pre, t.tRP, "PRE")
            need("tRC", state.last_act, t.tRC, "ACT to the same bank")
            need("tRRD_L", self._last_act_bg[bank_group], t.tRRD_L, "ACT in the same bank group")
            need("tRRD_S", self._acts[-1] if self._acts else _NEVER, t.tRRD_S, "ACT")
            if len(self._acts) == 4:
                need("tFAW", self._acts[0], t.tFAW, "the fourth previous ACT")
            state.open_row, state.last_act = row, cycle
            self._acts.append(cycle)
            self._last_act_bg[bank_group] = cycle
            result = None
        elif cmd == DramCommand.RD:
            if not state.known:
                fail("bank state", unknown(f"RD column {column} to a bank with"))
            if state.open_row is None:
                fail("bank state", f"RD column {column} to a precharged bank")
            if row != state.open_row:
                fail("row address", f"RD row {row} column {column} to a bank with row {state.open_row} open")
            if column % g.burst_columns:
                fail("burst alignment", f"RD column {column} is not a multiple of {g.burst_columns}")
            need("tRCD", state.last_act, t.tRCD, "ACT")
            need("tCCD_L", self._last_rd_bg[bank_group], t.tCCD_L, "RD in the same bank group")
            need("tCCD_S", max(self._last_rd_bg.values()), t.tCCD_S, "RD")
            state.last_rd = cycle
            self._last_rd_bg[bank_group] = cycle
            result = state.open_row
        elif cmd == DramCommand.PRE:
            if state.open_row is not None:
                need("tRAS", state.last_act, t.tRAS, "ACT")
                need("tRTP", state.last_rd, t.tRTP, "RD")
                state.open_row, state.last_pre = None, cycle
            elif not state.known:
                # The controller cannot know the bank was already closed: it must wait tRP.
                state.last_pre = cycle
            state.known = True
            result = None
        else:  # REF
            for (bg, b), other in self._banks.items():
                if not other.known:
                    raise ProtocolError("bank state", cycle, bg, b, unknown("REF with the bank in"))
                if other.open_row is not None:
                    raise ProtocolError("bank state", cycle, bg, b, f"REF with row {other.open_row} open")
                if cycle - other.last_pre < t.tRP:
                    raise ProtocolError(
                        "tRP",
                        cycle,
                        bg,
                        b,
                        f"REF {cycle - other.last_pre} cycles after PRE at cycle {other.last_pre} (needs {t.tRP})",
                    )
            ahead = self.refreshes + 1 - cycle // t.tREFI
            if ahead > self.max_pulled_in:
                fail(
                    "tREFI",
                    f"REF pulled in too far: {ahead} refreshes ahead of schedule (at most {self.max_pulled_in})",
                )
            self._last_ref = self._refresh_window_start = cycle
            self.refreshes += 1
            result = None

        self._last_cycle = cycle
        self.counts[cmd] += 1
        return result
