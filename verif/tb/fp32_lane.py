"""cocotb testbench of ``fp32_lane`` and ``fp32_vector_lane``: ``acc + ((a * b) + c)`` vs numpy.

The model is numpy ``float32`` ``acc + ((a * b) + c)``, every operation rounded. For the
vector lane every lane gets its own vectors and is checked on its own.

Environment: ``RECNMP_COUNT`` random vectors (default 50000), of which the fraction
``RECNMP_STALL_SHARE`` (default 0.25) runs with random pauses of probability
``RECNMP_STALL`` (default 0.25) on both streams and the rest at full throughput.
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

PERIOD_NS = 10

#: Backstop: far more cycles than the tests need (RECNMP_COUNT operations, 25 % stalls).
TIMEOUT = test_timeout(20 * int(os.environ.get("RECNMP_COUNT", "50000")) + 100_000, period_ns=PERIOD_NS)
OPERANDS = ("acc", "a", "b", "c")


class Testbench:
    """Reset, clock, model and checker for a (vector) lane."""

    def __init__(self, dut):
        self.dut = dut
        desc = BlockDescription.from_env()
        self.vector = "lanes" in desc.params
        self.lanes = desc.params.get("lanes", 1)
        self.latency = desc.params["mul_latency"] + 2 * desc.params["add_latency"]
        self.i_layout = desc.layout("i__payload")
        self.o_layout = desc.layout("o__payload")
        vec.check_numpy_subnormals()

    def field(self, name: str, lane: int) -> str:
        return f"{name}.{lane}" if self.vector else name

    async def reset(self) -> None:
        cocotb.start_soon(Clock(self.dut.clk, PERIOD_NS, unit="ns").start())
        self.dut.i__valid.value = 0
        self.dut.o__ready.value = 0
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 2)
        self.dut.rst.value = 0

    def vectors(self, count: int, seed: int) -> list[dict[str, np.ndarray]]:
        """Independent random vectors for every lane."""
        return [vec.lane_vectors(count, seed=seed + 1000 * k) for k in range(self.lanes)]

    async def run(self, per_lane: list[dict[str, np.ndarray]], *, stall: float, seed: int):
        """Stream the vectors through, check every lane; return (source, sink)."""
        dut = self.dut
        count = len(per_lane[0]["a"])
        source = StreamSource(dut, "i", dut.clk, pause=random_pauses(stall, seed=seed) if stall else None)
        sink = StreamSink(dut, "o", dut.clk, pause=random_pauses(stall, seed=seed + 1) if stall else None)
        fields = {self.field(n, k): per_lane[k][n] for k in range(self.lanes) for n in OPERANDS}
        source.send_all(vec.pack_words(self.i_layout, fields))
        await sink.wait_for(count)
        await ClockCycles(dut.clk, self.latency + 3)
        assert sink.transfers == count, f"{sink.transfers} results for {count} inputs"
        words = list(sink.received)
        for k, vectors in enumerate(per_lane):
            got = vec.unpack_field(self.o_layout, self.field("result", k), words)
            expected = vec.lane_reference(**vectors)
            bad = vec.mismatches(expected, got)
            assert len(bad) == 0, f"lane {k}: " + vec.format_mismatches(vectors, expected, got, bad)
        dut._log.info("%d vectors x %d lanes checked (stall %.2f)", count, self.lanes, stall)
        return source, sink


def _count() -> int:
    return int(os.environ.get("RECNMP_COUNT", "50000"))


def _stall() -> float:
    return float(os.environ.get("RECNMP_STALL", "0.25"))


def _stall_share() -> float:
    return float(os.environ.get("RECNMP_STALL_SHARE", "0.25"))


@cocotb.test(**TIMEOUT)
async def minus_zero_identity(dut):
    """``acc + ((w * x) + -0.0)`` is ``acc + (w * x)`` for every class of x, -0 included."""
    tb = Testbench(dut)
    await tb.reset()
    identity = vec.lane_identity_vectors()
    await tb.run([identity] * tb.lanes, stall=_stall(), seed=cocotb.RANDOM_SEED)
    with np.errstate(all="ignore"):
        f = {n: identity[n].view(np.float32) for n in OPERANDS}
        plain = (f["acc"] + f["a"] * f["b"]).view(np.uint32)
    bad = vec.mismatches(plain, vec.lane_reference(**identity))
    assert len(bad) == 0, "the model itself breaks the -0.0 identity: " + vec.format_mismatches(
        identity, plain, vec.lane_reference(**identity), bad
    )


@cocotb.test(**TIMEOUT)
async def random_vectors_with_backpressure(dut):
    tb = Testbench(dut)
    await tb.reset()
    count = round(_count() * _stall_share())
    await tb.run(tb.vectors(count, cocotb.RANDOM_SEED), stall=_stall(), seed=cocotb.RANDOM_SEED + 7)


@cocotb.test(**TIMEOUT)
async def random_vectors_full_throughput(dut):
    tb = Testbench(dut)
    await tb.reset()
    count = _count() - round(_count() * _stall_share())
    source, sink = await tb.run(tb.vectors(count, cocotb.RANDOM_SEED + 1), stall=0.0, seed=0)
    cycles = (sink.times[-1] - source.times[0]) / PERIOD_NS
    assert cycles == count - 1 + tb.latency, f"{count} results took {cycles} cycles after the first input"


@cocotb.test(**TIMEOUT)
async def full_throughput_and_latency(dut):
    """Without stalls: the first result ``latency`` cycles after its input, then one per cycle."""
    tb = Testbench(dut)
    await tb.reset()
    source, sink = await tb.run(tb.vectors(64, 5), stall=0.0, seed=0)
    latency = (sink.times[0] - source.times[0]) / PERIOD_NS
    assert latency == tb.latency, f"first result {latency} cycles after its input, not {tb.latency}"
    gaps = {(y - x) / PERIOD_NS for x, y in zip(sink.times, sink.times[1:])}
    assert gaps == {1}, f"results were not back to back: gaps {sorted(gaps)} cycles"
