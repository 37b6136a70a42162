"""Fast Amaranth-simulator tests of the fp32 units (seconds; the cocotb runs are the regression).

Each test streams vectors through a unit with a lockstep testbench: every cycle it offers
the next input (unless paused), drives ``o.ready`` (unless paused) and samples the handshake
at the clock edge, so it sees exactly the transfers the hardware makes.
"""

from __future__ import annotations

import gc
import random
import warnings

import numpy as np
import pytest
from amaranth.hdl import UnusedElaboratable
from amaranth.sim import Simulator

from hw.fp32_add import FP32Adder
from hw.fp32_lane import FP32Lane
from hw.fp32_mul import FP32Multiplier
from hw.fp32_vector_lane import FP32VectorLane
from hw.pipeline import register_after
from verif import fp32_vectors as vec


def stream_through(dut, inputs: list, *, stall: float = 0.0, seed: int = 0):
    """Run ``inputs`` (payload dicts) through ``dut``; return (outputs, in cycles, out cycles)."""
    outputs, accepted_at, received_at = [], [], []
    rng = random.Random(seed)

    async def testbench(ctx):
        sent = 0
        cycle = 0
        while len(outputs) < len(inputs):
            offer = sent < len(inputs) and rng.random() >= stall
            ctx.set(dut.i.valid, offer)
            if offer:
                ctx.set(dut.i.payload, inputs[sent])
            accept = rng.random() >= stall
            ctx.set(dut.o.ready, accept)
            _, _, i_ready, o_valid, o_payload = await ctx.tick().sample(dut.i.ready, dut.o.valid, dut.o.payload)
            if offer and i_ready:
                sent += 1
                accepted_at.append(cycle)
            if accept and o_valid:
                outputs.append(o_payload)
                received_at.append(cycle)
            cycle += 1
            assert cycle < 20 * len(inputs) + 100, "the unit stopped producing results"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return outputs, accepted_at, received_at


def check(operands: dict[str, np.ndarray], expected: np.ndarray, got) -> None:
    got = np.array(got, dtype=np.uint64).astype(np.uint32)
    bad = vec.mismatches(expected, got)
    assert len(bad) == 0, vec.format_mismatches(operands, expected, got, bad)


def run_binary(unit, op: str, a: np.ndarray, b: np.ndarray, *, stall: float, seed: int = 0):
    inputs = [{"a": int(x), "b": int(y)} for x, y in zip(a, b)]
    outputs, accepted, received = stream_through(unit, inputs, stall=stall, seed=seed)
    check({"a": a, "b": b}, vec.reference(op, a, b), [o.result for o in outputs])
    return accepted, received


UNITS = {"add": FP32Adder, "mul": FP32Multiplier}


def test_numpy_keeps_subnormals():
    vec.check_numpy_subnormals()


@pytest.mark.parametrize("op", ["add", "mul"])
def test_directed(op):
    a, b = vec.directed_pairs(op)
    run_binary(UNITS[op](), op, a, b, stall=0.2, seed=1)


@pytest.mark.parametrize("op", ["add", "mul"])
def test_random(op):
    a, b = vec.random_pairs(op, 4000, seed=2)
    run_binary(UNITS[op](), op, a, b, stall=0.0)


@pytest.mark.parametrize("op", ["add", "mul"])
@pytest.mark.parametrize("latency", [1, 2, 3, 4, 5, 8])
def test_latencies_under_backpressure(op, latency):
    a, b = vec.random_pairs(op, 400, seed=latency)
    run_binary(UNITS[op](latency=latency), op, a, b, stall=0.3, seed=latency)


@pytest.mark.parametrize("op", ["add", "mul"])
@pytest.mark.parametrize("latency", [1, 3, 6])
def test_latency_and_throughput(op, latency):
    a, b = vec.random_pairs(op, 50, seed=3)
    accepted, received = run_binary(UNITS[op](latency=latency), op, a, b, stall=0.0)
    assert accepted == list(range(50)), "inputs were not accepted one per cycle"
    assert [r - s for r, s in zip(received, accepted)] == [latency] * 50


def run_lane(unit, vectors: dict[str, np.ndarray], *, stall: float, seed: int = 0):
    names = ("acc", "a", "b", "c")
    inputs = [dict(zip(names, map(int, row))) for row in zip(*(vectors[n] for n in names))]
    outputs, accepted, received = stream_through(unit, inputs, stall=stall, seed=seed)
    check(vectors, vec.lane_reference(**vectors), [o.result for o in outputs])
    return accepted, received


@pytest.mark.parametrize(
    "mul_latency,add_latency,stall,count",
    [
        (4, 3, 0.3, 700),
        (1, 1, 0.3, 300),
        (2, 5, 0.0, 300),
    ],
)
def test_lane(mul_latency, add_latency, stall, count):
    unit = FP32Lane(mul_latency=mul_latency, add_latency=add_latency)
    vectors = vec.lane_vectors(count, seed=mul_latency)
    identity = vec.lane_identity_vectors()
    vectors = {k: np.concatenate([identity[k], vectors[k]]) for k in vectors}
    accepted, received = run_lane(unit, vectors, stall=stall, seed=5)
    if stall == 0.0:
        assert [r - s for r, s in zip(received, accepted)] == [unit.latency] * len(accepted)


def test_vector_lane():
    lanes = 2
    unit = FP32VectorLane(lanes=lanes, mul_latency=2, add_latency=1)
    count = 200
    per_lane = [vec.lane_vectors(count, seed=10 + k) for k in range(lanes)]
    inputs = [{n: [int(per_lane[k][n][j]) for k in range(lanes)] for n in ("acc", "a", "b", "c")} for j in range(count)]
    outputs, _, _ = stream_through(unit, inputs, stall=0.3, seed=7)
    for k in range(lanes):
        check(per_lane[k], vec.lane_reference(**per_lane[k]), [o.result[k] for o in outputs])


@pytest.mark.parametrize(
    "factory,kwargs",
    [
        (FP32Adder, {"latency": 0}),
        (FP32Adder, {"latency": 9}),
        (FP32Adder, {"latency": True}),
        (FP32Multiplier, {"latency": 0}),
        (FP32Lane, {"add_latency": 9}),
        (FP32VectorLane, {"lanes": 3}),
        (FP32VectorLane, {"mul_latency": 0}),
    ],
)
def test_rejects_bad_parameters(factory, kwargs):
    with warnings.catch_warnings():
        # The half-built component is never elaborated: collect it here, quietly.
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(ValueError) as excinfo:
            factory(**kwargs)
        del excinfo
        gc.collect()


def test_register_placement():
    assert register_after(3, 1) == [False, False, True]
    assert register_after(3, 2) == [True, False, True]
    assert register_after(3, 5) == [True, True, True]
    assert register_after(4, 2) == [False, True, False, True]
    assert register_after(4, 3) == [True, True, False, True]


def test_checker_reports_operands_and_accepts_any_nan():
    a = np.full(12, 0x3F800000, dtype=np.uint32)
    b = np.full(12, 0x00000001, dtype=np.uint32)
    expected = np.full(12, 0x3F800000, dtype=np.uint32)
    got = expected + 1
    report = vec.format_mismatches({"a": a, "b": b}, expected, got, vec.mismatches(expected, got))
    assert "a=0x3f800000 b=0x00000001: expected 0x3f800000, got 0x3f800001" in report
    assert report.count("expected") == 10 and report.startswith("12 of 12 results wrong")
    nans = np.array([0x7FC00000, 0x7FC00000, 0x7F800000], dtype=np.uint32)
    assert list(vec.mismatches(nans, np.array([0xFFC00001, 0x7F800000, 0x7FC00000], np.uint32))) == [1, 2]


def test_directed_vectors_cover_the_corner_cases():
    """The directed sets hit ties, subnormal results, overflow and cancellation."""
    for op in ("add", "mul"):
        a, b = vec.directed_pairs(op)
        result = vec.reference(op, a, b)
        with np.errstate(all="ignore"):
            x, y = a.view(np.float32).astype(np.float64), b.view(np.float32).astype(np.float64)
            exact = x + y if op == "add" else x * y  # exact in float64 for these vectors
            rounded = result.view(np.float32).astype(np.float64)
            # A tie: the exact value is halfway between the result and its neighbour.
            up = np.nextafter(result.view(np.float32), np.float32(np.inf)).astype(np.float64)
            down = np.nextafter(result.view(np.float32), np.float32(-np.inf)).astype(np.float64)
            ties = (exact == (rounded + up) / 2) | (exact == (rounded + down) / 2)
        ties &= np.isfinite(rounded) & (exact != rounded)
        assert ties.sum() >= 200, f"{op}: only {ties.sum()} exact ties"
        exponent = (result >> 23) & 0xFF
        assert ((exponent == 0) & ((result & 0x7FFFFF) != 0)).sum() >= 50, f"{op}: few subnormal results"
        assert ((result & 0x7FFFFFFF) == 0x7F800000).sum() >= 10, f"{op}: few infinities"
        assert vec.is_nan(result).sum() >= 50
