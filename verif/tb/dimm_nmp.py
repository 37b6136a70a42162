"""cocotb testbench of ``dimm_nmp`` that runs a *job* (:class:`verif.dimm_job.DimmJob`), with
the DRAM models, checkers and host streams in Python on every clock edge.

The reference of the simulation-only harness that the driver's ``rtl`` backend and the
system regression run (:mod:`verif.dimm_harness`): ``tests/verif/test_dimm_harness.py``
runs both on the same jobs. A test writes a job file (:func:`write_job`), runs the
``run_job`` test on the generated PU, and reads the results file (:func:`read_results`).
One job is one DIMM's share of a call:

* ``words`` (``(N, 2)`` uint64 packed NMP-Insts) and ``issue_cycles`` (the earliest cycle
  each word may be offered: the C/A transport throttle), offered in order on ``inst`` with
  optional random gaps;
* the rank images: per rank, the DRAM rows the tables occupy;
* ``expected_beats``: result beats to wait for (the test fails, naming what is missing, if
  they do not come within ``timeout_cycles``);
* optionally ``reset_at`` (a cycle) and ``resume_at`` (a word index): the DUT's reset is
  pulsed at that cycle while the DRAM models keep running; words before ``resume_at`` not yet
  accepted are dropped, and the words from ``resume_at`` on are sent after the reset (their
  issue cycles count from the end of the reset). Beats that left before the reset are
  reported apart (``beats_before_reset``): a drain cut by the reset has no ``last``.

Every rank's DRAM port drives a :class:`verif.dram_model.DramModel` with the protocol
checker (a violation fails the job). The results hold the beats, the DUT's counters, the
cycles from the first instruction offered to the last beat (and the wall-clock seconds they
took to simulate), each rank's DRAM command counts and, when asked, every DRAM command (the
``dram_trace`` of the driver).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import fields
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly

from hw.ddr4 import DDR4Geometry, DDR4Timing, DramCommand
from hw.refresh_control import recovery_cycles
from verif.block_description import BlockDescription
from verif.dimm_job import DimmJob, beat_arrays
from verif.dram_model import DramModel
from verif.rank_image import RankImage
from verif.stream import StreamSink, random_pauses

__all__ = ["DimmJob", "JOB_ENV", "RESULTS_ENV", "read_results", "write_job"]

JOB_ENV = "RECNMP_DIMM_JOB"
RESULTS_ENV = "RECNMP_DIMM_RESULTS"
GEOMETRY = DDR4Geometry()


def write_job(path: Path, job: DimmJob) -> None:
    """Store ``job`` as an ``.npz`` file."""
    arrays = {
        "words": np.asarray(job.words, np.uint64).reshape(-1, 2),
        "issue_cycles": np.asarray(job.issue_cycles, np.int64),
    }
    for rank, rows in job.images.items():
        keys = sorted(rows)
        arrays[f"image{rank}_keys"] = np.array(keys, np.int64).reshape(-1, 3)
        arrays[f"image{rank}_rows"] = (
            np.stack([np.asarray(rows[k], np.uint8) for k in keys])
            if keys
            else np.zeros((0, GEOMETRY.row_bytes), np.uint8)
        )
    meta = {f.name: getattr(job, f.name) for f in fields(job) if f.name not in ("words", "issue_cycles", "images")}
    meta["ranks"] = sorted(job.images)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, **arrays)


def _read_job(path: Path) -> DimmJob:
    with np.load(path) as z:
        meta = json.loads(bytes(z["meta"]).decode())
        images = {}
        for rank in meta.pop("ranks"):
            keys, rows = z[f"image{rank}_keys"], z[f"image{rank}_rows"]
            images[rank] = {tuple(int(v) for v in k): rows[n] for n, k in enumerate(keys)}
        return DimmJob(words=z["words"], issue_cycles=z["issue_cycles"], images=images, **meta)


def read_results(path: Path) -> dict:
    """The results of a job: beats as arrays, counters, cycles, DRAM command counts, trace."""
    with np.load(path) as z:
        out = json.loads(bytes(z["meta"]).decode())
        for name in ("tag", "beat", "last", "data", "pre_tag", "pre_beat", "pre_last", "pre_data", "trace"):
            out[name] = z[name]
    return out


class Testbench:
    """The DUT with a DRAM model per rank, a throttled instruction source and a result sink."""

    def __init__(self, dut, job: DimmJob):
        self.dut = dut
        self.job = job
        desc = BlockDescription.from_env()
        self.description = desc
        self.params = desc.params
        self.ranks = desc.params["ranks"]
        self.lanes = desc.params["lanes"]
        self.result_layout = desc.layout("result__payload")
        timing = DDR4Timing(**{f.name: desc.params[f.name] for f in fields(DDR4Timing)})
        # The scheduler's recovery after reset, or the cache's sweep of its sets, whichever is longer.
        self.recovery_bound = recovery_cycles(timing, GEOMETRY) + desc.params["cache_size_bytes"] // 64
        self.images = {r: RankImage(GEOMETRY) for r in range(self.ranks)}
        for rank, rows in job.images.items():
            for (bg, bank, row), data in rows.items():
                self.images[rank].write(bank_group=bg, bank=bank, row=row, column=0, data=data)
        self.drams = [
            DramModel(dut, f"dram{r}", dut.clk, self.images[r], timing=timing, reset=dut.rst, keep_log=job.trace)
            for r in range(self.ranks)
        ]
        self.cycle = 0
        self.accepted = 0  # words of the current batch accepted
        self.inst_pause = random_pauses(job.inst_stall, seed=job.seed)
        self.inst_valid, self.inst_payload, self.inst_ready = dut.inst__valid, dut.inst__payload, dut.inst__ready
        self.inst_valid.value = 0
        self.sink = StreamSink(dut, "result", dut.clk, pause=random_pauses(job.result_stall, seed=job.seed + 1))

    async def send(self, words: list[int], due: np.ndarray, start: int) -> None:
        """Offer ``words`` in order, word k not before cycle ``start + due[k]`` (the C/A
        throttle) and not in a random pause; a word leaves only when ``ready`` took it."""
        self.accepted = 0
        while self.accepted < len(words):
            await FallingEdge(self.dut.clk)
            offer = self.cycle >= start + int(due[self.accepted]) and not next(self.inst_pause)
            if offer:
                self.inst_payload.value = words[self.accepted]
            self.inst_valid.value = int(offer)
            await ReadOnly()
            if offer and self.inst_ready.value == 1:
                self.accepted += 1
        await FallingEdge(self.dut.clk)
        self.inst_valid.value = 0

    async def count_cycles(self) -> None:
        while True:
            await FallingEdge(self.dut.clk)
            await ReadOnly()
            self.cycle += 1

    async def reset(self, cycles: int = 2) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, cycles)
        self.dut.rst.value = 0

    async def wait_idle(self) -> None:
        """Wait until the PU is ready for work (the scheduler's recovery after reset, the
        RankCache sweep), within a bound."""
        limit = self.cycle + 4 * self.recovery_bound
        while self.dut.idle.value != 1:
            if self.cycle > limit:
                raise AssertionError(f"the PU is not idle {4 * self.recovery_bound} cycles after reset")
            await FallingEdge(self.dut.clk)

    def beats(self, words) -> list[dict]:
        return [self.result_layout.unpack(w) for w in words]


@cocotb.test(skip=os.environ.get(JOB_ENV) is None)
async def run_job(dut):
    job = _read_job(Path(os.environ[JOB_ENV]))
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    tb = Testbench(dut, job)
    cocotb.start_soon(tb.count_cycles())
    await tb.wait_idle()
    words = [int(lo) | int(hi) << 64 for lo, hi in job.words]
    due = job.issue_cycles
    before_reset: list[int] = []
    if job.reset_at is None:
        sending = cocotb.start_soon(tb.send(words, due, 0))
    else:
        # The first batch until the reset; what it had not sent is dropped. The words from
        # resume_at on follow, throttled from the end of the reset.
        sending = cocotb.start_soon(tb.send(words[: job.resume_at], due[: job.resume_at], 0))
        while tb.cycle < job.reset_at:
            await FallingEdge(dut.clk)
        sending.cancel()
        tb.inst_valid.value = 0
        await tb.reset()
        await tb.wait_idle()
        before_reset = list(tb.sink.received)
        tb.sink.received.clear()
        rest = due[job.resume_at :]
        sending = cocotb.start_soon(tb.send(words[job.resume_at :], rest - (rest[0] if len(rest) else 0), tb.cycle))

    start, wall = tb.cycle, time.perf_counter()
    received_before = tb.sink.transfers
    while tb.sink.transfers - received_before < job.expected_beats:
        if tb.cycle - start > job.timeout_cycles:
            raise AssertionError(
                f"timeout after {job.timeout_cycles} cycles: {tb.sink.transfers - received_before} of "
                f"{job.expected_beats} result beats received, {tb.accepted} words of the last batch "
                f"accepted (of {len(words)} in the job), idle={int(dut.idle.value)}"
            )
        await FallingEdge(dut.clk)
    end, wall = tb.cycle, time.perf_counter() - wall
    await ClockCycles(dut.clk, 8)
    beats = tb.beats(list(tb.sink.received))
    pre = beat_arrays(tb.beats(before_reset), tb.lanes)
    counters = {name: int(getattr(dut, name).value) for name in _counter_names(tb)}
    dram_counts = {
        str(r): {cmd.name: d.counts[cmd] for cmd in (DramCommand.ACT, DramCommand.RD, DramCommand.PRE, DramCommand.REF)}
        for r, d in enumerate(tb.drams)
    }
    trace = np.zeros((0, 7), np.int64)
    if job.trace:
        trace = np.array(
            [
                (c, r, DramCommand[name].value, g, b, row, col)
                for r, d in enumerate(tb.drams)
                for c, name, g, b, row, col in d.log
            ],
            np.int64,
        ).reshape(-1, 7)
        trace = trace[np.lexsort((trace[:, 1], trace[:, 0]))]
    meta = {
        "counters": counters,
        "dram_counts": dram_counts,
        "cycles": end - start,
        "wall_seconds": wall,
        "idle": int(dut.idle.value),
        "unwritten_reads": sum(i.unwritten_reads for i in tb.images.values()),
    }
    arrays = {
        **beat_arrays(beats, tb.lanes),
        **{f"pre_{k}": v for k, v in pre.items()},
        "trace": trace,
        "meta": np.frombuffer(json.dumps(meta).encode(), np.uint8),
    }
    np.savez(os.environ[RESULTS_ENV], **arrays)


def _counter_names(tb: Testbench) -> list[str]:
    """The status counters: the 32-bit outputs that belong to no stream or DRAM port."""
    return [
        name
        for name, (direction, width) in tb.description.ports.items()
        if direction == "output" and width == 32 and "__" not in name
    ]
