"""Drive a :class:`hw.rank_nmp.RankNMP` in the Amaranth simulator, with a DRAM that is never reset.

:class:`RankNMPHarness` wraps the unit in a ``ResetInserter``, feeds instruction words on
``inst`` (with random pauses), takes ``psum`` beats under a backpressure pattern, and plays
the DRAM: every command goes through :class:`verif.ddr4_checker.DDR4ProtocolChecker`, and a
RD returns its burst from a :class:`verif.rank_image.RankImage` ``tCL`` cycles later, 16 B
per cycle. A sync reset of the unit can be pulsed at any cycle; the DRAM and the checker
keep running (the checker is told with ``controller_reset``). The harness only drives and
records; the tests compare what it records with ``sim_models.rank_nmp``.

Use::

    h = RankNMPHarness(RankNMP(lanes=4), image, seed=1, psum_ready=lambda c: c % 3 != 0)
    r = h.run([words], limits=[5000])                   # one phase, no reset
    r = h.run([words_a, words_b], limits=[3000, 8000],  # reset at cycle 700 of phase 0,
              reset_at=[700])                           # then phase 1 runs from reset
    r.phases[1].beats, r.counters, r.errors

A phase ends when all its words are taken and ``expect_beats[k]`` beats are out and the
unit is ``idle`` (or, for a phase that ends in a reset, at that cycle). A phase that does not
end within its cycle limit raises ``AssertionError`` naming what was outstanding.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from amaranth.hdl import ResetInserter, Signal
from amaranth.sim import Simulator

from hw.ddr4 import DramCommand
from hw.rank_nmp import RankNMP
from sim_models.rank_nmp import PsumBeat
from verif.ddr4_checker import DDR4ProtocolChecker
from verif.rank_image import RankImage

__all__ = ["Phase", "RankNMPHarness", "RunResult", "parts_state"]


@dataclass
class Phase:
    """What one phase (from start or reset to its end) produced."""

    beats: list[PsumBeat] = field(default_factory=list)
    accepted: int = 0  #: words taken on ``inst``
    cycles: int = 0
    counters: dict[str, int] = field(default_factory=dict)  #: at the end of the phase


@dataclass
class RunResult:
    phases: list[Phase]
    errors: list[str]  #: protocol checker violations, first line each
    commands: list[tuple]  #: (cycle, command name, bank group, bank, row, column)
    cycles: int

    @property
    def counters(self) -> dict[str, int]:
        return self.phases[-1].counters


def parts_state(ctx, dut: RankNMP) -> dict[str, bool]:
    """Per part, whether it holds work now (the terms of ``idle``), from the parts' ports."""
    return {
        "inst queue": ctx.get(dut._inst_queue.level) != 0,
        "issue": bool(ctx.get(dut._issue.busy)),
        "op queue": ctx.get(dut._op_queue.level) != 0,
        "reorder buffer": not ctx.get(dut._rob.empty),
        "retire": bool(ctx.get(dut._retire.busy)),
        "datapath": bool(ctx.get(dut._datapath.busy)),
        "scheduler": not ctx.get(dut._scheduler.idle),
        "cache": bool(ctx.get(dut._cache.busy)),
    }


class RankNMPHarness:
    """Amaranth-simulator bench of one RankNMP and its (never reset) DRAM.

    Parameters
    ----------
    dut : RankNMP
    image : RankImage
        The rank's contents.
    seed : int
        Seeds the pauses on ``inst``.
    psum_ready : callable(cycle) -> bool
        ``psum.ready`` in each cycle (default always).
    inst_pause : float or callable(cycle) -> bool
        Probability that ``inst.valid`` is held low in a cycle, or whether it is.
    on_cycle : callable(ctx, cycle, phase), optional
        Called every cycle after the inputs are set, before the clock edge (to check
        invariants such as ``idle``).
    """

    def __init__(
        self,
        dut: RankNMP,
        image: RankImage,
        *,
        seed: int = 0,
        psum_ready: Callable[[int], bool] | None = None,
        inst_pause: float | Callable[[int], bool] = 0.0,
        on_cycle: Callable | None = None,
    ):
        self.dut = dut
        self.image = image
        self.seed = seed
        self.psum_ready = psum_ready or (lambda cycle: True)
        self.inst_pause = inst_pause
        self.on_cycle = on_cycle
        self.timing = dut.timing

    def run(
        self,
        phases: Sequence[Sequence[int]],
        *,
        limits: Sequence[int],
        expect_beats: Sequence[int | None] | None = None,
        reset_at: Sequence[int] = (),
    ) -> RunResult:
        """Run ``phases`` of words; phase ``k < len(reset_at)`` ends with a reset pulse at its
        cycle ``reset_at[k]``, the others when done. ``limits[k]`` bounds phase ``k``."""
        dut, t = self.dut, self.timing
        rst = Signal()
        top = ResetInserter({"sync": rst})(dut)
        checker = DDR4ProtocolChecker(timing=t, geometry=dut.geometry)
        rng = random.Random(self.seed)
        lanes = dut.lanes
        expect_beats = list(expect_beats or [None] * len(phases))
        result = RunResult([], [], [], 0)

        def fail(msg):
            result.errors.append(msg)

        async def bench(ctx):
            dram_beats: dict[int, int] = {}
            cycle = 0
            for k, words in enumerate(phases):
                phase = Phase()
                result.phases.append(phase)
                pending = list(words)
                reset_cycle = reset_at[k] if k < len(reset_at) else None
                start = cycle
                while True:
                    n = cycle - start
                    is_reset = reset_cycle is not None and n == reset_cycle
                    ctx.set(rst, is_reset)
                    beat = dram_beats.pop(cycle, None)
                    ctx.set(dut.dram.rd_valid, beat is not None)
                    ctx.set(dut.dram.rd_data, beat or 0)
                    pause = self.inst_pause(cycle) if callable(self.inst_pause) else rng.random() < self.inst_pause
                    offer = bool(pending) and not pause
                    ctx.set(dut.inst.valid, offer)
                    if offer:
                        ctx.set(dut.inst.payload.as_value(), pending[0])
                    ready_out = bool(self.psum_ready(cycle))
                    ctx.set(dut.psum.ready, ready_out)
                    if self.on_cycle is not None:
                        self.on_cycle(ctx, cycle, k)
                    cmd = DramCommand(ctx.get(dut.dram.cmd))
                    if cmd != DramCommand.NOP:
                        a = {f: ctx.get(getattr(dut.dram, f)) for f in ("bank_group", "bank", "row", "column")}
                        result.commands.append((cycle, cmd.name, *a.values()))
                        try:
                            checker.command(cycle, cmd, **a)
                        except AssertionError as e:
                            fail(str(e).splitlines()[0])
                        open_row = checker.open_row(a["bank_group"], a["bank"])
                        if cmd == DramCommand.RD and open_row is not None:
                            burst = self.image.read_burst(
                                bank_group=a["bank_group"], bank=a["bank"], row=open_row, column=a["column"]
                            )
                            step = dut.geometry.beat_bytes
                            for b in range(dut.geometry.beats_per_burst):
                                dram_beats[cycle + t.tCL + b] = int.from_bytes(
                                    burst[step * b : step * (b + 1)], "little"
                                )
                    else:
                        try:
                            checker.check_refresh(cycle)
                        except AssertionError as e:
                            if not result.errors or result.errors[-1] != str(e).splitlines()[0]:
                                fail(str(e).splitlines()[0])
                    if ready_out and ctx.get(dut.psum.valid):
                        p = dut.psum.payload
                        phase.beats.append(
                            PsumBeat(
                                ctx.get(p.tag),
                                ctx.get(p.beat),
                                np.array([ctx.get(p.data[i]) for i in range(lanes)], np.uint32),
                                bool(ctx.get(p.last)),
                            )
                        )
                    if offer and ctx.get(dut.inst.ready) and not is_reset:
                        pending.pop(0)
                        phase.accepted += 1
                    done = (
                        not pending
                        and reset_cycle is None
                        and (expect_beats[k] is None or len(phase.beats) >= expect_beats[k])
                        and ctx.get(dut.idle)
                    )
                    if done or is_reset:
                        phase.counters = {name: ctx.get(getattr(dut, name)) for name in dut.counters}
                    await ctx.tick()
                    cycle += 1
                    if is_reset:
                        checker.controller_reset(cycle - 1)
                    if done or is_reset:
                        phase.cycles = cycle - start
                        break
                    if n >= limits[k]:
                        state = parts_state(ctx, dut)
                        busy = [name for name, held in state.items() if held] or ["nothing"]
                        raise AssertionError(
                            f"phase {k} not done after {limits[k]} cycles (seed {self.seed}): "
                            f"{len(pending)} of {len(words)} words not taken, {len(phase.beats)} of "
                            f"{expect_beats[k]} psum beats out, idle {ctx.get(dut.idle)}; "
                            f"holding work: {', '.join(busy)}; protocol errors {result.errors[:3]}"
                        )
            result.cycles = cycle

        sim = Simulator(top)
        sim.add_clock(1e-9)
        sim.add_testbench(bench)
        sim.run()
        return result
