"""cocotb testbench of ``fp32_add`` and ``fp32_mul``: directed and random vectors vs numpy.

The model is numpy ``float32`` ``a + b`` for ``fp32_add`` and ``a * b`` for ``fp32_mul``
(chosen by the block name in the side file, or ``RECNMP_FP32_OP=add|mul``).

Environment: ``RECNMP_COUNT`` random operand pairs (default 200000), of which the fraction
``RECNMP_STALL_SHARE`` (default 0.25) runs with random pauses of probability
``RECNMP_STALL`` (default 0.25) on both streams and the rest at full throughput.

Streams are driven with :mod:`verif.stream` (about 45 us of wall time per operation with
Verilator, so 200k pairs take about 10 s).
"""

from __future__ import annotations

import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles

from verif import fp32_vectors as vec
from verif.block_description import BlockDescription
from verif.stream import StreamSink, StreamSource, random_pauses, test_timeout

OPERATIONS = {"fp32_add": "add", "fp32_mul": "mul"}
PERIOD_NS = 10

#: Backstop: far more cycles than the tests need (RECNMP_COUNT pairs, 25 % stalls on both streams).
TIMEOUT = test_timeout(20 * int(os.environ.get("RECNMP_COUNT", "200000")) + 100_000, period_ns=PERIOD_NS)


class Testbench:
    """Reset, clock, model and checker for one binary fp32 unit."""

    def __init__(self, dut):
        self.dut = dut
        desc = BlockDescription.from_env()
        self.op = os.environ.get("RECNMP_FP32_OP") or OPERATIONS[desc.top]
        self.latency = desc.params["latency"]
        self.i_layout = desc.layout("i__payload")
        self.o_layout = desc.layout("o__payload")
        vec.check_numpy_subnormals()

    async def reset(self) -> None:
        cocotb.start_soon(Clock(self.dut.clk, PERIOD_NS, unit="ns").start())
        self.dut.i__valid.value = 0
        self.dut.o__ready.value = 0
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 2)
        self.dut.rst.value = 0

    async def run(self, a: np.ndarray, b: np.ndarray, *, stall: float, seed: int) -> float:
        """Stream ``(a, b)`` through the unit, check every result; return the cycles taken.

        The cycles run from the first input's transfer to the last result's.
        """
        dut = self.dut
        source = StreamSource(dut, "i", dut.clk, pause=random_pauses(stall, seed=seed) if stall else None)
        sink = StreamSink(dut, "o", dut.clk, pause=random_pauses(stall, seed=seed + 1) if stall else None)
        source.send_all(vec.pack_words(self.i_layout, {"a": a, "b": b}))
        await sink.wait_for(len(a))
        await ClockCycles(dut.clk, self.latency + 3)
        assert sink.transfers == len(a), f"{sink.transfers} results for {len(a)} inputs"
        got = vec.unpack_field(self.o_layout, "result", list(sink.received))
        expected = vec.reference(self.op, a, b)
        bad = vec.mismatches(expected, got)
        assert len(bad) == 0, f"{self.op}: " + vec.format_mismatches({"a": a, "b": b}, expected, got, bad)
        cycles = (sink.times[-1] - source.times[0]) / PERIOD_NS
        dut._log.info("%s: %d results checked in %d cycles (stall %.2f)", self.op, len(a), cycles, stall)
        return cycles


def _count() -> int:
    return int(os.environ.get("RECNMP_COUNT", "200000"))


def _stall() -> float:
    return float(os.environ.get("RECNMP_STALL", "0.25"))


def _stall_share() -> float:
    return float(os.environ.get("RECNMP_STALL_SHARE", "0.25"))


@cocotb.test(**TIMEOUT)
async def directed_vectors(dut):
    """Every pair of operand classes, ties, sticky cases, carries, underflow, overflow."""
    tb = Testbench(dut)
    await tb.reset()
    a, b = vec.directed_pairs(tb.op, seed=cocotb.RANDOM_SEED)
    await tb.run(a, b, stall=_stall(), seed=cocotb.RANDOM_SEED)


@cocotb.test(**TIMEOUT)
async def random_vectors_with_backpressure(dut):
    """A share of the random pairs with random pauses on both streams."""
    tb = Testbench(dut)
    await tb.reset()
    count = round(_count() * _stall_share())
    a, b = vec.random_pairs(tb.op, count, seed=cocotb.RANDOM_SEED)
    await tb.run(a, b, stall=_stall(), seed=cocotb.RANDOM_SEED + 7)


@cocotb.test(**TIMEOUT)
async def random_vectors_full_throughput(dut):
    """The rest of the random pairs with no pauses: one result per cycle."""
    tb = Testbench(dut)
    await tb.reset()
    count = _count() - round(_count() * _stall_share())
    a, b = vec.random_pairs(tb.op, count, seed=cocotb.RANDOM_SEED + 1)
    cycles = await tb.run(a, b, stall=0.0, seed=0)
    expected = count - 1 + tb.latency
    assert cycles == expected, f"{count} results took {cycles} cycles after the first input, not {expected}"


@cocotb.test(**TIMEOUT)
async def full_throughput_and_latency(dut):
    """Without stalls: the first result ``latency`` cycles after its input, then one per cycle."""
    tb = Testbench(dut)
    await tb.reset()
    count = 64
    a, b = vec.random_pairs(tb.op, count, seed=3)
    source = StreamSource(dut, "i", dut.clk)
    sink = StreamSink(dut, "o", dut.clk)
    source.send_all(vec.pack_words(tb.i_layout, {"a": a, "b": b}))
    await sink.wait_for(count)
    got = vec.unpack_field(tb.o_layout, "result", list(sink.received))
    expected = vec.reference(tb.op, a, b)
    bad = vec.mismatches(expected, got)
    assert len(bad) == 0, vec.format_mismatches({"a": a, "b": b}, expected, got, bad)
    latency = (sink.times[0] - source.times[0]) / PERIOD_NS
    assert latency == tb.latency, f"first result {latency} cycles after its input, not {tb.latency}"
    gaps = {(y - x) / PERIOD_NS for x, y in zip(sink.times, sink.times[1:])}
    assert gaps == {1}, f"results were not back to back: gaps {sorted(gaps)} cycles"
    in_gaps = {(y - x) / PERIOD_NS for x, y in zip(source.times, source.times[1:])}
    assert in_gaps == {1}, f"inputs were not accepted back to back: gaps {sorted(in_gaps)} cycles"
