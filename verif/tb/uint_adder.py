"""cocotb testbench of ``uint_adder``: random operands under random backpressure.

Environment: ``RECNMP_COUNT`` operations (default 2000), ``RECNMP_STALL`` probability of a
pause on each stream per cycle (default 0.3).
"""

from __future__ import annotations

import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles

from verif.block_description import BlockDescription
from verif.stream import StreamSink, StreamSource, random_pauses, test_timeout

#: Backstop: far more cycles than the tests need (RECNMP_COUNT operations, 30 % stalls).
TIMEOUT = test_timeout(50 * int(os.environ.get("RECNMP_COUNT", "2000")) + 10_000)


class Testbench:
    """Source on ``i``, sink on ``o``, the Python model and an in-order checker."""

    def __init__(self, dut, *, stall: float, seed: int):
        self.dut = dut
        desc = BlockDescription.from_env()
        self.width = desc.params["width"]
        self.latency = desc.params["latency"]
        self.i_layout = desc.layout("i__payload")
        self.o_layout = desc.layout("o__payload")
        self.source = StreamSource(dut, "i", dut.clk, pause=random_pauses(stall, seed=seed))
        self.sink = StreamSink(dut, "o", dut.clk, pause=random_pauses(stall, seed=seed + 1))
        self.expected: list[int] = []

    async def reset(self) -> None:
        cocotb.start_soon(Clock(self.dut.clk, 10, unit="ns").start())
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 2)
        self.dut.rst.value = 0

    def send(self, a: int, b: int) -> None:
        self.source.send(self.i_layout.pack(a=a, b=b))
        self.expected.append(a + b)  # the model

    def check(self) -> None:
        got = [self.o_layout.unpack(word)["result"] for word in self.sink.received]
        assert len(got) == len(self.expected), f"{len(got)} results for {len(self.expected)} inputs"
        for n, (g, e) in enumerate(zip(got, self.expected)):
            assert g == e, f"result {n}: expected {e:#x}, got {g:#x}"


@cocotb.test(**TIMEOUT)
async def random_operands_with_backpressure(dut):
    count = int(os.environ.get("RECNMP_COUNT", "2000"))
    stall = float(os.environ.get("RECNMP_STALL", "0.3"))
    seed = cocotb.RANDOM_SEED
    tb = Testbench(dut, stall=stall, seed=seed)
    await tb.reset()
    rng = random.Random(seed)
    top = (1 << tb.width) - 1
    for _ in range(count):
        tb.send(rng.choice([0, top, rng.randint(0, top)]), rng.choice([0, top, rng.randint(0, top)]))
    await tb.source.wait_idle()
    await tb.sink.wait_for(count)
    await ClockCycles(dut.clk, tb.latency + 3)
    tb.check()


@cocotb.test(**TIMEOUT)
async def full_throughput_and_latency(dut):
    """Without stalls: the first result ``latency`` cycles after its input, then one per cycle."""
    tb = Testbench(dut, stall=0.0, seed=0)
    await tb.reset()
    count = 64
    for n in range(count):
        tb.send(n, 2 * n % (1 << tb.width))
    await tb.sink.wait_for(count)
    tb.check()
    period = 10
    latency = (tb.sink.times[0] - tb.source.times[0]) / period
    assert latency == tb.latency, f"first result {latency} cycles after its input"
    gaps = {(b - a) / period for a, b in zip(tb.sink.times, tb.sink.times[1:])}
    assert gaps == {1}, f"results were not back to back: gaps {sorted(gaps)} cycles"
