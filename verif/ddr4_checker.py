"""DDR4 protocol checker for one rank: every command against bank state and timing.

Feed it each command with its DRAM clock cycle (:meth:`DDR4ProtocolChecker.command`); it
raises :class:`ProtocolError` on the first violation, naming the constraint, the cycle and
the bank. Call :meth:`DDR4ProtocolChecker.check_refresh` on idle cycles (or at the end of a
test) so that a missing refresh is caught even when no command follows it.

Checked: one command per cycle; ACT only to a precharged bank, RD only to an open bank,
REF only with every bank precharged; tRCD, tRP, tRAS, tRC, tCCD_S/L, tRRD_S/L, tFAW, tRTP,
tRFC; and refresh: with N = cycle // tREFI refresh intervals elapsed, at most
``max_postponed`` (JEDEC: 8) refreshes may be owed and at most ``max_pulled_in`` (8) issued
ahead. tCL and tBL are the read latency and burst length the DRAM model applies; tCCD_S >=
tBL (checked by :class:`hw.ddr4.DDR4Timing`) keeps bursts from overlapping on the data bus.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass

from hw.ddr4 import DDR4Geometry, DDR4Timing, DramCommand

__all__ = ["DDR4ProtocolChecker", "ProtocolError"]

_NEVER = -(1 << 60)


class ProtocolError(AssertionError):
    """A DDR4 protocol or timing violation. ``constraint``, ``cycle``, ``bank_group`` and
    ``bank`` say which and where."""

    def __init__(self, constraint: str, cycle: int, bank_group: int, bank: int, detail: str):
        self.constraint = constraint
        self.cycle = cycle
        self.bank_group = bank_group
        self.bank = bank
        super().__init__(
            f"DDR4 {constraint} violation at cycle {cycle}, bank group {bank_group} bank {bank}: {detail}"
        )


@dataclass
class _Bank:
    open_row: int | None = None
    last_act: int = _NEVER
    last_pre: int = _NEVER
    last_rd: int = _NEVER


class DDR4ProtocolChecker:
    """Tracks one rank's bank state and checks every command against DDR4 rules.

    Parameters
    ----------
    timing, geometry :
        The rank's timing (cycles) and shape; defaults DDR4-2400, 8 Gb x8.
    max_postponed, max_pulled_in : int
        How many refreshes may be owed, or issued ahead of the tREFI schedule.
    """

    def __init__(
        self,
        *,
        timing: DDR4Timing = DDR4Timing(),
        geometry: DDR4Geometry = DDR4Geometry(),
        max_postponed: int = 8,
        max_pulled_in: int = 8,
    ):
        self.timing = timing
        self.geometry = geometry
        self.max_postponed = max_postponed
        self.max_pulled_in = max_pulled_in
        self._banks = {
            (bg, b): _Bank()
            for bg in range(geometry.bank_groups)
            for b in range(geometry.banks_per_group)
        }
        self._last_cycle = _NEVER
        self._acts: deque[int] = deque(maxlen=4)  # the last four ACTs, any bank
        self._last_act_bg = {bg: _NEVER for bg in range(geometry.bank_groups)}
        self._last_rd_bg = {bg: _NEVER for bg in range(geometry.bank_groups)}
        self._last_ref = _NEVER
        self.refreshes = 0
        #: How many of each command were checked.
        self.counts: Counter[DramCommand] = Counter()

    def open_row(self, bank_group: int, bank: int) -> int | None:
        """The row open in a bank, or ``None`` when it is precharged."""
        return self._banks[(bank_group, bank)].open_row

    def check_refresh(self, cycle: int, bank_group: int = 0, bank: int = 0) -> None:
        """Fail if, at ``cycle``, more than ``max_postponed`` refreshes are owed."""
        owed = cycle // self.timing.tREFI - self.refreshes
        if owed > self.max_postponed:
            raise ProtocolError(
                "tREFI", cycle, bank_group, bank,
                f"missing refresh: {self.refreshes} REF issued after {cycle // self.timing.tREFI} "
                f"refresh intervals of {self.timing.tREFI} cycles (at most {self.max_postponed} may be postponed)",
            )

    def command(
        self, cycle: int, cmd: DramCommand, *, bank_group: int = 0, bank: int = 0,
        row: int = 0, column: int = 0,
    ) -> int | None:
        """Check one command issued at ``cycle``. Returns the row a RD reads, else ``None``.

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
        if not (0 <= bank_group < g.bank_groups and 0 <= bank < g.banks_per_group
                and 0 <= row < g.rows and 0 <= column < g.columns):
            raise ValueError(
                f"address out of range at cycle {cycle}: bank group {bank_group} bank {bank} "
                f"row {row} column {column}"
            )
        t = self.timing

        def need(constraint: str, since: int, gap: int, what: str) -> None:
            if cycle - since < gap:
                raise ProtocolError(
                    constraint, cycle, bank_group, bank,
                    f"{cmd.name} {cycle - since} cycles after {what} at cycle {since} (needs {gap})",
                )

        def fail(constraint: str, detail: str) -> None:
            raise ProtocolError(constraint, cycle, bank_group, bank, detail)

        if cycle <= self._last_cycle:
            fail("command bus", f"{cmd.name} in the same or an earlier cycle than the previous command (cycle {self._last_cycle})")
        self.check_refresh(cycle, bank_group, bank)
        need("tRFC", self._last_ref, t.tRFC, "REF")
        state = self._banks[(bank_group, bank)]

        if cmd == DramCommand.ACT:
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
            if state.open_row is None:
                fail("bank state", f"RD column {column} to a precharged bank")
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
            result = None
        else:  # REF
            for (bg, b), other in self._banks.items():
                if other.open_row is not None:
                    raise ProtocolError("bank state", cycle, bg, b, f"REF with row {other.open_row} open")
                if cycle - other.last_pre < t.tRP:
                    raise ProtocolError(
                        "tRP", cycle, bg, b,
                        f"REF {cycle - other.last_pre} cycles after PRE at cycle {other.last_pre} (needs {t.tRP})",
                    )
            ahead = self.refreshes + 1 - cycle // t.tREFI
            if ahead > self.max_pulled_in:
                fail("tREFI", f"REF pulled in too far: {ahead} refreshes ahead of schedule (at most {self.max_pulled_in})")
            self._last_ref = cycle
            self.refreshes += 1
            result = None

        self._last_cycle = cycle
        self.counts[cmd] += 1
        return result
