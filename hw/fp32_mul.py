"""IEEE-754 binary32 multiplier, round to nearest even, fully pipelined, with stream ports."""

from __future__ import annotations

import functools

from amaranth.hdl import Cat, Const, Module, Mux
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .fp32_add import (
    NORMAL_LAYOUT,
    leading_zeros,
    round_step,
    shift_left,
    shift_right_sticky,
    unpack_fp32,
)
from .params import check_latency, check_mutation
from .pipeline import Step, stream_pipeline, wire

__all__ = ["FP32Multiplier"]

# The exponent travels in excess-384 form, ``X = E + 384`` with ``E`` the biased exponent of
# the product when its top bit is bit 46 (-125 <= E <= 381, so 259 <= X <= 765): unsigned
# 10-bit arithmetic, no negative numbers.
_UNPACK = data.StructLayout(
    {
        "nan": 1,
        "inf": 1,
        "sign": 1,
        "exp": 10,  # X = E + 384
        "sig_a": 24,
        "sig_b": 24,
    }
)

_PRODUCT = data.StructLayout(
    {
        "nan": 1,
        "inf": 1,
        "sign": 1,
        "exp": 10,
        "product": 48,
    }
)


_RESULT = data.StructLayout({"result": 32})


def _unpack(m, x):
    a, b = unpack_fp32(m, "a", x.a), unpack_fp32(m, "b", x.b)
    # a * b = sig_a * sig_b * 2**(e_a + e_b - 300); with the product's top bit at bit 46
    # that is 1.f * 2**(e_a + e_b - 254): biased exponent E = e_a + e_b - 127, and
    # X = E + 384 = (e_a - 127 + 256) + (e_b + 128).
    return {
        "nan": a["nan"] | b["nan"] | (a["inf"] & b["zero"]) | (a["zero"] & b["inf"]),
        "inf": a["inf"] | b["inf"],
        "sign": a["sign"] ^ b["sign"],
        "exp": wire(m, "exp_a", a["e"] + Const(0x81, 8)) + wire(m, "exp_b", b["e"] + Const(0x80, 8)),
        "sig_a": a["sig"],
        "sig_b": b["sig"],
    }


def _multiply(m, x):
    return {
        "nan": x.nan,
        "inf": x.inf,
        "sign": x.sign,
        "exp": x.exp,
        "product": x.sig_a * x.sig_b,
    }


def _normalise(m, x, *, mutation=None):
    # Bring the top bit to bit 47 (biased exponent E + 1 - shift). A subnormal operand
    # leaves leading zeros: shift left by their count, but not below exponent 1. A result
    # below exponent 1 is subnormal: shift right by the difference, keeping a sticky bit.
    lz = leading_zeros(m, "lz", x.product)  # 6 bits, 0..48
    bound = wire(m, "bound", Cat(lz, Const(0b110, 3)))  # lz + 384 (9 bits)
    normal = wire(m, "normal", x.exp[9] | (x.exp[:9] >= bound))  # X >= lz + 384: E >= lz
    non_negative = wire(m, "non_negative", x.exp[9] | (x.exp[8] & x.exp[7]))  # E >= 0
    # Not normal and 0 <= E < lz <= 48: E = X - 384 = X[:6]. E < 0: -E = 128 - X[:7].
    left = wire(m, "left", Mux(normal, lz, Mux(non_negative, x.exp[:6], Const(0, 6))))
    right = wire(m, "right", Mux(non_negative, Const(0, 7), (~x.exp[:7] + 1)[:7]))
    shifted, lost = shift_right_sticky(m, "right", shift_left(m, "left", x.product, left), right)
    exp = wire(m, "exp", ((x.exp[:9] - bound)[:9] + 1)[:9])  # E + 1 - lz (< 512) when normal
    return {
        "nan": x.nan,
        "inf": x.inf,
        "sign": x.sign,
        "exp": Mux(shifted[47], exp, Const(0, 9)),  # bit 47 is set only when normal
        "sig": shifted[24:48],
        "guard": shifted[23],
        "sticky": shifted[:23].any() | lost if mutation != "drop_sticky" else shifted[:23].any(),
    }


class FP32Multiplier(wiring.Component):
    """``result = a * b`` in IEEE-754 binary32, round to nearest even, through a stallable pipeline.

    Subnormal inputs and outputs are kept (gradual underflow, correctly rounded, including
    results that round up to the smallest normal); the sign of a zero result is the XOR of
    the operand signs; overflow gives infinity; ``0 * inf`` and any NaN operand give the
    quiet NaN ``0x7FC00000``. Every other result is bit-identical to IEEE-754 (and to numpy
    ``float32``).

    The computation is four combinational steps, ``latency`` register stages placed between
    them as :func:`hw.pipeline.stream_pipeline` describes:

    1. *unpack*: classify the operands, exponent sum, significands with hidden bits;
    2. *multiply*: the 24 x 24 -> 48-bit significand product;
    3. *normalise*: leading-zero count, left shift (subnormal operands) limited at the
       subnormal boundary, or right shift with sticky bit (subnormal results);
    4. *round*: round to nearest even and pack, with the special cases.

    Parameters
    ----------
    latency : int
        Cycles from an accepted input to its valid output, 1..8. 4 registers each step; 1 to
        3 merge steps; above 4 adds delay registers at the end.

    Attributes
    ----------
    i : In(stream.Signature(StructLayout({"a": 32, "b": 32})))
    o : Out(stream.Signature(StructLayout({"result": 32})))

    mutation : str, optional
        Tests only (default ``None``: the design as documented): a deliberate bug, one of
        :attr:`MUTATIONS`, to show that the IEEE-754 check (``verif/formal/fp32_ieee.py``) bites.

    Latency is ``latency`` cycles; one operation per cycle when ``o`` is never stalled.
    The pipeline advances when its last stage is empty or being read (``i.ready`` is that
    condition), so nothing is lost or duplicated under backpressure.
    """

    #: Test-only deliberate bugs (``mutation``): ``"drop_sticky"`` (the subnormal right
    #: shift forgets the bits it shifts out), ``"ties_away"`` (ties round away from zero).
    MUTATIONS = ("drop_sticky", "ties_away")

    def __init__(self, *, latency: int = 4, mutation: str | None = None):
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
                Step("unpack", _UNPACK, _unpack),
                Step("multiply", _PRODUCT, _multiply),
                Step("normalise", NORMAL_LAYOUT, functools.partial(_normalise, mutation=self._mutation)),
                Step("round", _RESULT, functools.partial(round_step, mutation=self._mutation)),
            ],
        )
        return m
