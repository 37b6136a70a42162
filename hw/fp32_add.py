"""IEEE-754 binary32 adder, round to nearest even, fully pipelined, with stream ports.

Also home of the small binary32 building blocks the multiplier shares: field split and
classification, leading-zero count, logarithmic left shift, right shift with sticky bit,
round-and-pack.
"""

from __future__ import annotations

import functools

from amaranth.hdl import Cat, Const, Module, Mux, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .params import check_latency, check_mutation
from .pipeline import Step, stream_pipeline, wire

__all__ = [
    "FP32Adder",
    "QUIET_NAN",
    "leading_zeros",
    "round_and_pack",
    "shift_left",
    "shift_right_sticky",
    "unpack_fp32",
]

#: The one NaN the units output (positive, quiet, zero payload).
QUIET_NAN = 0x7FC00000


def unpack_fp32(m: Module, name: str, word) -> dict[str, Value]:
    """Split a binary32 word into its fields and classes (named ``NAME_...`` signals).

    Returns ``sign``, ``sig`` (24 bits: the fraction with the hidden bit, which is 0 for
    zeros and subnormals), ``e`` (the effective biased exponent: the exponent field, or 1
    for zeros and subnormals, so that the value is ``sig * 2**(e - 150)``), ``zero``, ``inf``
    and ``nan``.
    """
    word = Value.cast(word)
    exp, frac = word[23:31], word[0:23]
    normal = wire(m, f"{name}_normal", exp.any())
    top = wire(m, f"{name}_top", exp.all())
    fraction = wire(m, f"{name}_fraction", frac.any())
    return {
        "sign": word[31],
        "sig": wire(m, f"{name}_sig", Cat(frac, normal)),
        "e": wire(m, f"{name}_e", Cat(exp[0] | ~normal, exp[1:])),
        "zero": wire(m, f"{name}_zero", ~normal & ~fraction),
        "inf": wire(m, f"{name}_inf", top & ~fraction),
        "nan": wire(m, f"{name}_nan", top & fraction),
    }


def leading_zeros(m: Module, name: str, value) -> Value:
    """Number of leading zero bits of ``value`` (``len(value)`` for zero), as a tree.

    The value is padded at the bottom with ones to a power of two longer than it, so the
    count never exceeds its width; the tree has ``log2`` levels of 2:1 multiplexers. The
    result has ``len(value).bit_length()`` bits.
    """
    value = Value.cast(value)
    width = len(value)
    n = 1 << width.bit_length()  # a power of two > width
    padded = Cat(Const((1 << (n - width)) - 1, n - width), value)

    def tree(v: Value, path: str) -> tuple[Value, Value]:  # (all zero, leading zero count)
        if len(v) == 2:
            return ~v[1] & ~v[0], ~v[1]
        half = len(v) // 2
        lo_zero, lo_count = tree(v[:half], path + "l")
        hi_zero, hi_count = tree(v[half:], path + "h")
        hi_zero = wire(m, f"{name}_{path}z", hi_zero)
        count = Mux(hi_zero, Cat(lo_count, Const(1, 1)), Cat(hi_count, Const(0, 1)))
        return hi_zero & lo_zero, wire(m, f"{name}_{path}c", count)

    return tree(padded, "")[1]


def shift_left(m: Module, name: str, value, amount) -> Value:
    """``(value << amount)`` truncated to ``len(value)`` bits, as a logarithmic shifter."""
    value, amount = Value.cast(value), Value.cast(amount)
    width = len(value)
    for k in range(len(amount)):
        step = 1 << k
        shifted = Cat(Const(0, step), value[: width - step]) if step < width else Const(0, width)
        value = wire(m, f"{name}_{k}", Mux(amount[k], shifted, value))
    return value


def shift_right_sticky(m: Module, name: str, value, amount) -> tuple[Value, Value]:
    """``value >> amount`` and whether any 1 bit was shifted out (logarithmic shifter)."""
    value, amount = Value.cast(value), Value.cast(amount)
    width = len(value)
    levels = min(len(amount), width.bit_length())  # shifts of 2**levels or more clear it all
    sticky = Const(0, 1)
    original = value
    for k in range(levels):
        step = 1 << k
        shifted = Cat(value[step:], Const(0, step)) if step < width else Const(0, width)
        lost = value[:step].any()
        sticky = wire(m, f"{name}_{k}_sticky", sticky | (amount[k] & lost))
        value = wire(m, f"{name}_{k}", Mux(amount[k], shifted, value))
    if levels < len(amount):
        out = wire(m, f"{name}_out", amount[levels:].any())
        sticky = wire(m, f"{name}_sticky", Mux(out, original.any(), sticky))
        value = wire(m, f"{name}_all", Mux(out, Const(0, width), value))
    return value, sticky


def round_and_pack(*, sign, exp, sig, guard, sticky, nan, inf, ties_away: bool = False) -> Value:
    """Round a normalised significand to nearest even and pack a binary32 word.

    Parameters
    ----------
    sign, nan, inf : 1-bit values
        ``nan`` gives :data:`QUIET_NAN`; ``inf`` gives an infinity of sign ``sign``.
    exp : 9-bit unsigned value
        The biased exponent field before rounding: 0 for a subnormal (or zero) result, whose
        ``sig`` then has its top bit clear. Values >= 255 overflow to infinity.
    sig : 24-bit value
        The significand, hidden bit included.
    guard, sticky : 1-bit values
        The first bit below ``sig`` and the OR of every bit below that.

    ties_away : bool
        Test-only deliberate bug (the ``"ties_away"`` mutation of the units): round half
        away from zero instead of to even.

    Rounding up adds one to the packed exponent-and-fraction, so a carry out of the fraction
    moves a subnormal to the smallest normal and the largest finite value to infinity.
    """
    exp, sig = Value.cast(exp), Value.cast(sig)
    round_up = guard & (sticky | sig[0]) if not ties_away else guard
    magnitude = (Cat(sig[:23], exp[:8]) + round_up)[:31]
    overflow = exp[8] | exp[:8].all()
    infinity = Cat(Const(0x7F800000, 31), sign)
    return Mux(nan, Const(QUIET_NAN, 32), Mux(inf | overflow, infinity, Cat(magnitude, sign)))


# Width of the aligned significands: 24 bits, then guard, round and sticky.
_EXT = 27

_ALIGN = data.StructLayout(
    {
        "nan": 1,
        "inf": 1,
        "sign": 1,  # of the larger operand (of the infinity when inf)
        "zero_sign": 1,  # sign of an exactly zero sum: -0 only for (-0) + (-0)
        "sub": 1,  # effective subtraction
        "e": 8,  # effective exponent of the larger operand
        "big": 24,  # significand of the larger operand
        "small": _EXT,  # the smaller one aligned to it, with guard, round and sticky bits
    }
)

#: A normalised result before rounding (shared by the adder and the multiplier).
NORMAL_LAYOUT = data.StructLayout(
    {
        "nan": 1,
        "inf": 1,
        "sign": 1,
        "exp": 9,  # biased exponent field before rounding (0: subnormal or zero)
        "sig": 24,
        "guard": 1,
        "sticky": 1,
    }
)

_RESULT = data.StructLayout({"result": 32})


def _align(m, x, *, mutation=None):
    a, b = unpack_fp32(m, "a", x.a), unpack_fp32(m, "b", x.b)
    swap = wire(m, "swap", x.b[0:31] > x.a[0:31])  # |b| > |a|: magnitude bits order like values
    big = {k: wire(m, f"big_{k}", Mux(swap, b[k], a[k])) for k in ("sign", "sig", "e")}
    small = {k: wire(m, f"small_{k}", Mux(swap, a[k], b[k])) for k in ("sig", "e")}
    distance = wire(m, "distance", (big["e"] - small["e"])[:8])
    shifted, lost = shift_right_sticky(m, "align", Cat(Const(0, 3), small["sig"]), distance)
    inf = a["inf"] | b["inf"]
    return {
        "nan": a["nan"] | b["nan"] | (a["inf"] & b["inf"] & (a["sign"] ^ b["sign"])),
        "inf": inf,
        "sign": Mux(inf, Mux(a["inf"], a["sign"], b["sign"]), big["sign"]),
        "zero_sign": a["sign"] & b["sign"],
        "sub": a["sign"] ^ b["sign"],
        "e": big["e"],
        "big": big["sig"],
        "small": Cat(shifted[0] | lost, shifted[1:]) if mutation != "drop_sticky" else shifted,
    }


def _normalise(m, x):
    big = Cat(Const(0, 3), x.big)
    difference = wire(m, "difference", (big - x.small)[:_EXT])
    total = wire(m, "total", Mux(x.sub, Cat(difference, Const(0, 1)), big + x.small))
    carry = total[_EXT]
    # No carry: shift left by the leading-zero count, but never below exponent 1 (the
    # result is then subnormal, and exact: such sums lose no bits).
    lz = leading_zeros(m, "lz", total[:_EXT])  # 5 bits
    limit = wire(m, "limit", (x.e - 1)[:8])
    below = wire(m, "below_limit", limit[5:].any() | (lz <= limit[:5]))
    shift = wire(m, "shift", Mux(below, Cat(lz, Const(0, 3)), limit))
    left = shift_left(m, "left", total[:_EXT], shift[:5])
    # Carry: shift right by one, folding the dropped bit into the sticky bit.
    sig = Mux(carry, total[4:28], left[3:27])
    guard = Mux(carry, total[3], left[2])
    sticky = Mux(carry, total[0:3].any(), left[0:2].any())
    reduced = Mux(left[_EXT - 1], (x.e - shift)[:8], Const(0, 8))
    exp = Mux(carry, x.e + 1, Cat(reduced, Const(0, 1)))
    return {
        "nan": x.nan,
        "inf": x.inf,
        "sign": Mux(~x.inf & ~total.any(), x.zero_sign, x.sign),
        "exp": exp,
        "sig": sig,
        "guard": guard,
        "sticky": sticky,
    }


def round_step(m, x, *, mutation=None):
    """The last pipeline step of the adder and the multiplier: round a ``NORMAL_LAYOUT`` value
    (``mutation="ties_away"``: the test-only rounding bug of :func:`round_and_pack`)."""
    return {
        "result": round_and_pack(
            sign=x.sign,
            exp=x.exp,
            sig=x.sig,
            guard=x.guard,
            sticky=x.sticky,
            nan=x.nan,
            inf=x.inf,
            ties_away=mutation == "ties_away",
        )
    }


class FP32Adder(wiring.Component):
    """``result = a + b`` in IEEE-754 binary32, round to nearest even, through a stallable pipeline.

    Subnormal inputs and outputs are kept (no flush to zero); an exactly zero sum is +0
    unless both operands are -0; overflow gives infinity; ``inf - inf`` and any NaN operand
    give the quiet NaN ``0x7FC00000``. Every other result is bit-identical to IEEE-754 (and
    to numpy ``float32``).

    The computation is three combinational steps, ``latency`` register stages placed
    between them as :func:`hw.pipeline.stream_pipeline` describes:

    1. *align*: unpack, order the operands by magnitude, shift the smaller one right by the
       exponent difference keeping guard, round and sticky bits;
    2. *normalise*: add or subtract, count leading zeros, shift left (limited at the
       subnormal boundary) or right by one on a carry;
    3. *round*: round to nearest even and pack, with the special cases.

    Parameters
    ----------
    latency : int
        Cycles from an accepted input to its valid output, 1..8. 3 registers each step; 1
        and 2 merge steps; above 3 adds delay registers at the end.

    Attributes
    ----------
    i : In(stream.Signature(StructLayout({"a": 32, "b": 32})))
    o : Out(stream.Signature(StructLayout({"result": 32})))

    mutation : str, optional
        Tests only (default ``None``: the design as documented): a deliberate bug, one of
        :attr:`MUTATIONS`, to show that the IEEE-754 proof (``verif/formal/fp32_ieee.py``) bites.

    Latency is ``latency`` cycles; one operation per cycle when ``o`` is never stalled.
    The pipeline advances when its last stage is empty or being read (``i.ready`` is that
    condition), so nothing is lost or duplicated under backpressure.
    """

    #: Test-only deliberate bugs (``mutation``): ``"drop_sticky"`` (the alignment shift
    #: forgets the bits it shifts out), ``"ties_away"`` (ties round away from zero, not to even).
    MUTATIONS = ("drop_sticky", "ties_away")

    def __init__(self, *, latency: int = 3, mutation: str | None = None):
        check_latency("latency", latency)
        self._mutation = check_mutation(mutation, self.MUTATIONS)
        self._latency = latency
        super().__init__(
            {
                "i": In(stream.Signature(data.StructLayout({"a": 32, "b": 32}))),
                "o": Out(stream.Signature(_RESULT)),
            }
        )

    @property
    def latency(self) -> int:
        return self._latency

    def elaborate(self, platform):
        m = Module()
        stream_pipeline(
            m,
            i=self.i,
            o=self.o,
            latency=self._latency,
            steps=[
                Step("align", _ALIGN, functools.partial(_align, mutation=self._mutation)),
                Step("normalise", NORMAL_LAYOUT, _normalise),
                Step("round", _RESULT, functools.partial(round_step, mutation=self._mutation)),
            ],
        )
        return m
