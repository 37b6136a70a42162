"""cocotb model of one DDR4 rank behind a Rank-NMP's DRAM port, with a protocol checker.

Binds by prefix to the ports of :class:`hw.ddr4.DramPortSignature` (``PREFIX__cmd``,
``PREFIX__bank_group``, ..., ``PREFIX__rd_data``). Every cycle it reads the command the DUT
presents, checks it with :class:`verif.ddr4_checker.DDR4ProtocolChecker` (a violation
raises :class:`verif.ddr4_checker.ProtocolError` and fails the test with the constraint,
cycle and bank), and returns the burst of each RD from a :class:`verif.rank_image.RankImage`
``tCL`` cycles later, one 16 B beat per cycle.

Like :mod:`verif.stream`, it acts on the falling edge and samples in the read-only phase,
so cycle ``n`` is the ``n``-th rising edge after the model started.

Given the DUT's reset (``reset=dut.rst``), the model tells the checker when the DUT is
reset while the DRAM keeps running
(:meth:`verif.ddr4_checker.DDR4ProtocolChecker.controller_reset`): the DUT must then
precharge every bank before using it. Read data already scheduled is still returned.
"""

from __future__ import annotations

from collections import Counter, deque

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly

from hw.ddr4 import DDR4Geometry, DDR4Timing, DramCommand

from .ddr4_checker import DDR4ProtocolChecker, ProtocolError
from .rank_image import RankImage

__all__ = ["DramModel"]


class DramModel:
    """One rank: command decoding, protocol checking and read-data return.

    Parameters
    ----------
    dut, prefix, clock :
        The DUT, the prefix of its DRAM port's signals and its clock.
    image : RankImage
        The rank's contents.
    timing, geometry :
        The rank's timing and shape, as the DUT was generated with.
    reset : signal handle, optional
        The DUT's reset (e.g. ``dut.rst``, active high), for testbenches that reset the DUT
        while the DRAM keeps running. Each reset pulse that starts after the DUT's first
        command calls ``checker.controller_reset(cycle)`` once, at the first cycle the
        reset is sampled high, after checking that cycle's command (a synchronous reset
        takes effect at that rising edge). Earlier pulses are the power-up reset, which
        ``initial_state`` describes.
    initial_state : {"precharged", "unknown"}
        What the DUT may assume about the banks at the start, passed to the checker.
    keep_log : bool
        Keep every command in :attr:`log` (for DRAM traces).
    on_command : callable, optional
        Called as ``on_command(cycle, cmd, bank_group, bank, row, column)`` for every
        command, before it is checked (for testbench logs and coverage).

    Attributes
    ----------
    checker : DDR4ProtocolChecker
        Bank state and command counts.
    cycle : int
        Cycles since the model started.
    reads : list of (cycle, bank_group, bank, row, column)
        Every RD, in order.
    refreshes : list of int
        The cycle of every REF.
    data_cycles : int
        Cycles on which ``rd_valid`` was high (data-bus utilisation = data_cycles / cycle).
    """

    def __init__(
        self,
        dut,
        prefix: str,
        clock,
        image: RankImage,
        *,
        timing: DDR4Timing = DDR4Timing(),
        geometry: DDR4Geometry = DDR4Geometry(),
        reset=None,
        initial_state: str = "precharged",
        keep_log: bool = False,
        on_command=None,
    ):
        self.image = image
        self.timing = timing
        self.geometry = geometry
        self.checker = DDR4ProtocolChecker(timing=timing, geometry=geometry, initial_state=initial_state)
        self.clock = clock
        self.reset = reset
        #: Every command (cycle, name, bank group, bank, row, column), with ``keep_log``.
        self.log: list[tuple] | None = [] if keep_log else None
        self.on_command = on_command
        self._in_reset = False
        self.cmd = getattr(dut, f"{prefix}__cmd")
        self.bank_group = getattr(dut, f"{prefix}__bank_group")
        self.bank = getattr(dut, f"{prefix}__bank")
        self.row = getattr(dut, f"{prefix}__row")
        self.column = getattr(dut, f"{prefix}__column")
        self.rd_valid = getattr(dut, f"{prefix}__rd_valid")
        self.rd_data = getattr(dut, f"{prefix}__rd_data")
        self.cycle = 0
        self.reads: list[tuple[int, int, int, int, int]] = []
        #: Cycle of every REF.
        self.refreshes: list[int] = []
        self.data_cycles = 0
        self.counts: Counter[DramCommand] = self.checker.counts
        self._beats: dict[int, int] = {}  # cycle -> beat value to drive
        #: The last commands (cycle, name, bank group, bank, row, column), for error messages.
        self.recent: deque[tuple] = deque(maxlen=12)
        self.rd_valid.value = 0
        self.rd_data.value = 0
        self._task = cocotb.start_soon(self._run())

    def stop(self) -> None:
        self._task.cancel()

    async def _run(self) -> None:
        while True:
            await FallingEdge(self.clock)
            self._drive()
            await ReadOnly()
            self._sample()

    def _drive(self) -> None:
        """Falling edge: drive this cycle's read-data beat, if any."""
        beat = self._beats.pop(self.cycle, None)
        self.rd_valid.value = int(beat is not None)
        if beat is not None:
            self.rd_data.value = beat
            self.data_cycles += 1

    def _sample(self) -> None:
        """Read-only phase: check the command the DUT presents, then follow its reset; ends
        the cycle."""
        beat_bytes = self.geometry.beat_bytes
        cmd = DramCommand(int(self.cmd.value))
        if cmd == DramCommand.NOP:
            self.checker.check_refresh(self.cycle)
        else:
            bg, bank = int(self.bank_group.value), int(self.bank.value)
            row, column = int(self.row.value), int(self.column.value)
            self.recent.append((self.cycle, cmd.name, bg, bank, row, column))
            if self.log is not None:
                self.log.append(self.recent[-1])
            if self.on_command is not None:
                self.on_command(self.cycle, cmd, bg, bank, row, column)
            try:
                open_row = self.checker.command(self.cycle, cmd, bank_group=bg, bank=bank, row=row, column=column)
            except ProtocolError as error:
                history = "\n".join(
                    f"  cycle {c}: {name} bank group {g} bank {b} row {r} column {col}"
                    for c, name, g, b, r, col in self.recent
                )
                error.args = (f"{error.args[0]}\nlast commands:\n{history}",)
                raise
            if cmd == DramCommand.REF:
                self.refreshes.append(self.cycle)
            if cmd == DramCommand.RD:
                self.reads.append((self.cycle, bg, bank, open_row, column))
                burst = self.image.read_burst(bank_group=bg, bank=bank, row=open_row, column=column)
                for k in range(self.geometry.beats_per_burst):
                    chunk = burst[k * beat_bytes : (k + 1) * beat_bytes]
                    self._beats[self.cycle + self.timing.tCL + k] = int.from_bytes(chunk, "little")
        if self.reset is not None:
            in_reset = self.reset.value == 1
            # Once per pulse; a pulse before the first command is the power-up reset.
            if in_reset and not self._in_reset and self.counts.total():
                self.checker.controller_reset(self.cycle)
            self._in_reset = in_reset
        self.cycle += 1
