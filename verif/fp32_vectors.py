"""binary32 test vectors, reference model and checker for the fp32 units.

Everything works on ``numpy.uint32`` arrays of bit patterns; the reference is numpy
``float32`` arithmetic (IEEE-754, round to nearest even, subnormals kept):

* :func:`directed_pairs` — deliberately constructed operand pairs for ``"add"`` or
  ``"mul"``: every pair of operand classes, exact rounding ties, sticky-bit cases, carries
  out of the significand, subnormal results, results rounding up to the smallest normal or
  to infinity, full cancellation;
* :func:`random_pairs` — random pairs drawn from several distributions;
* :func:`lane_vectors` — ``(acc, a, b, c)`` quadruples for the lane;
* :func:`reference` / :func:`lane_reference` — the expected bits;
* :func:`mismatches` — the checker: NaN expected means any NaN is accepted, otherwise the
  result must be bit-identical; the report names the operands and both results in hex;
* :func:`pack_words` / :func:`unpack_field` — arrays of 32-bit fields to and from the
  integer port values a testbench drives, with the bit positions of the generated side file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "CLASS_VALUES",
    "OPERATIONS",
    "check_numpy_subnormals",
    "directed_pairs",
    "format_mismatches",
    "is_nan",
    "lane_reference",
    "lane_identity_vectors",
    "lane_vectors",
    "mismatches",
    "pack_words",
    "random_pairs",
    "reference",
    "unpack_field",
]

OPERATIONS = ("add", "mul")

SIGN = np.uint32(0x80000000)
QNAN = 0x7FC00000
SNAN = 0x7F800001
INF = 0x7F800000
MAX_NORMAL = 0x7F7FFFFF
MIN_NORMAL = 0x00800000
MAX_SUBNORMAL = 0x007FFFFF
MIN_SUBNORMAL = 0x00000001
ONE = 0x3F800000
NEG_ZERO = 0x80000000

#: One representative of every operand class, both signs (the NaNs once each sign).
CLASS_VALUES: dict[str, int] = {}
for _name, _bits in [
    ("0", 0),
    ("min_sub", MIN_SUBNORMAL),
    ("max_sub", MAX_SUBNORMAL),
    ("min_normal", MIN_NORMAL),
    ("max_normal", MAX_NORMAL),
    ("1", ONE),
    ("inf", INF),
    ("qnan", QNAN),
    ("snan", SNAN),
]:
    CLASS_VALUES[f"+{_name}"] = _bits
    CLASS_VALUES[f"-{_name}"] = _bits | 0x80000000


def _u32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.uint64).astype(np.uint32)


def _f32(bits: np.ndarray) -> np.ndarray:
    return np.asarray(bits, dtype=np.uint32).view(np.float32)


def _bits(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).view(np.uint32)


def _make(sign, exp, frac) -> np.ndarray:
    """Pack arrays of sign (0/1), biased exponent field and 23-bit fraction."""
    sign = np.asarray(sign, dtype=np.uint64)
    exp = np.asarray(exp, dtype=np.uint64)
    frac = np.asarray(frac, dtype=np.uint64)
    return _u32((sign << 31) | ((exp & 0xFF) << 23) | (frac & 0x7FFFFF))


def _scaled(n, e) -> int:
    """The bits of ``n * 2**e`` (exact: ``n`` of at most 24 bits, result representable)."""
    value = np.ldexp(np.float64(n), int(e))
    bits = int(np.float32(value).view(np.uint32))
    assert float(np.float32(value)) == value, (n, e)
    return bits


def check_numpy_subnormals() -> None:
    """Raise if this process flushes subnormals (FTZ/DAZ): the reference would be wrong."""
    tiny = np.array([MIN_SUBNORMAL], dtype=np.uint32).view(np.float32)
    with np.errstate(all="ignore"):
        doubled = (tiny + tiny).view(np.uint32)[0]
        halved = (np.array([MIN_NORMAL], dtype=np.uint32).view(np.float32) * np.float32(0.5)).view(np.uint32)[0]
    if doubled != 2 or halved != 0x00400000:
        raise RuntimeError("numpy float32 flushes subnormals in this process (FTZ/DAZ is set)")


def reference(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Expected result bits of ``a + b`` or ``a * b`` (numpy float32)."""
    x, y = _f32(a), _f32(b)
    with np.errstate(all="ignore"):
        if op == "add":
            return _bits(x + y)
        if op == "mul":
            return _bits(x * y)
    raise ValueError(f"op must be one of {OPERATIONS}, got {op!r}")


def lane_reference(acc, a, b, c) -> np.ndarray:
    """Expected bits of ``acc + ((a * b) + c)`` with every operation rounded to float32."""
    with np.errstate(all="ignore"):
        return _bits(_f32(acc) + ((_f32(a) * _f32(b)) + _f32(c)))


def is_nan(bits) -> np.ndarray:
    bits = np.asarray(bits, dtype=np.uint32)
    return ((bits & 0x7F800000) == 0x7F800000) & ((bits & 0x007FFFFF) != 0)


def mismatches(expected, got) -> np.ndarray:
    """Indices where ``got`` is wrong: a NaN where one is expected, else the same bits."""
    expected = np.asarray(expected, dtype=np.uint32)
    got = np.asarray(got, dtype=np.uint32)
    if expected.shape != got.shape:
        raise ValueError(f"{got.shape} results for {expected.shape} expected")
    want_nan = is_nan(expected)
    bad = np.where(want_nan, ~is_nan(got), expected != got)
    return np.flatnonzero(bad)


def format_mismatches(operands: dict[str, np.ndarray], expected, got, bad: Sequence[int], *, limit: int = 10) -> str:
    """One line per mismatch (the first ``limit``): operands, expected and actual in hex."""
    lines = [
        f"{len(bad)} of {len(expected)} results wrong" + (f" (first {limit} shown)" if len(bad) > limit else "") + ":"
    ]
    for n in list(bad)[:limit]:
        args = " ".join(f"{k}={int(v[n]):#010x}" for k, v in operands.items())
        lines.append(f"  #{n}: {args}: expected {int(expected[n]):#010x}, got {int(got[n]):#010x}")
    return "\n".join(lines)


def pack_words(layout, fields: Mapping[str, np.ndarray]) -> list[int]:
    """Port values (integers) for arrays of 32-bit field values.

    ``layout`` is a :class:`verif.block_description.PayloadLayout`; every field named in it
    must be given (vector fields are named ``"acc.0"``, ``"acc.1"``...).
    """
    missing = set(layout.fields) - set(fields)
    if missing:
        raise ValueError(f"fields {sorted(missing)} not given")
    words = [0] * len(next(iter(fields.values())))
    for name, values in fields.items():
        offset, width = layout.fields[name]
        if width != 32:
            raise ValueError(f"field {name!r} is {width} bits wide, not 32")
        for n, value in enumerate(np.asarray(values, dtype=np.uint32).tolist()):
            words[n] |= value << offset
    return words


def unpack_field(layout, name: str, words: Sequence[int]) -> np.ndarray:
    """Field ``name`` of every port value in ``words``, as ``uint32``."""
    offset, width = layout.fields[name]
    mask = (1 << width) - 1
    return np.array([(w >> offset) & mask for w in words], dtype=np.uint64).astype(np.uint32)


# --- directed vectors -----------------------------------------------------------------


def _class_pairs() -> list[tuple[int, int]]:
    values = list(CLASS_VALUES.values())
    return [(a, b) for a in values for b in values]


def _add_directed(rng: np.random.Generator) -> list[tuple[int, int]]:
    pairs: list[tuple[int, int]] = []
    one_ulp = ONE + 1
    half_ulp_of_one = 0x33800000  # 2**-24
    pairs += [
        (ONE, half_ulp_of_one),  # tie, even: stays 1.0
        (one_ulp, half_ulp_of_one),  # tie, odd: rounds up
        (ONE, half_ulp_of_one + 1),  # just above the tie: up
        (ONE, half_ulp_of_one - 1),  # just below the tie: down
        (ONE, half_ulp_of_one | 0x80000000),  # 1 - 2**-24: exact (below 1 the ulp halves)
        (ONE, 0xB3000000),  # 1 - 2**-25: tie after a 1-bit normalisation
        (ONE, 0xB3000001),
        (0x3FFFFFFF, 0x34000000),  # + 1 ulp: exact carry out of the significand (2.0)
        (0x3FFFFFFF, half_ulp_of_one),  # + half an ulp, odd: rounds up and carries
        (0x3FFFFFFF, 0x33FFFFFF),  # + just under 1 ulp: rounds up and carries
        (0x3FFFFFFE, half_ulp_of_one),  # + half an ulp, even: stays
        (MAX_NORMAL, MAX_NORMAL),  # overflow
        (MAX_NORMAL, 0x73000000),  # + half an ulp (2**103): tie, odd -> infinity
        (MAX_NORMAL, 0x72FFFFFF),  # just below: stays
        (MAX_NORMAL, 0x73000001),
        (MAX_NORMAL | 0x80000000, 0xF3000000),
        (MIN_NORMAL, MIN_SUBNORMAL | 0x80000000),  # normal -> largest subnormal
        (MAX_SUBNORMAL, MIN_SUBNORMAL),  # subnormal -> smallest normal (carry)
        (MAX_SUBNORMAL, MAX_SUBNORMAL),
        (MIN_NORMAL | 0x80000000, MAX_SUBNORMAL),
        (0x00800001, 0x80800000),  # cancels to the smallest subnormal
        (0, NEG_ZERO),
        (NEG_ZERO, 0),
        (NEG_ZERO, NEG_ZERO),
        (0, 0),
        (INF, INF | 0x80000000),
        (INF, INF),
        (INF | 0x80000000, MAX_NORMAL),
    ]
    # Ties, and sticky bits just above / below the tie, for every exponent difference 1..24
    # (the shifted-out bits of the smaller operand are 10..0, 10..01 and 01..1), for
    # addition and subtraction, with even and odd larger significands.
    for d in range(1, 25):
        for _ in range(4):
            eb = int(rng.integers(d + 1, 254))
            big_frac = int(rng.integers(0, 1 << 23))
            high = int(rng.integers(0, 1 << 23)) >> min(d, 23) << min(d, 23)
            for low in (1 << (d - 1), (1 << (d - 1)) | 1, (1 << (d - 1)) - 1):
                small_sig = (high | (1 << 23)) & ~((1 << d) - 1) | (low & ((1 << d) - 1))
                small_sig &= (1 << 24) - 1
                small = ((eb - d) << 23) | (small_sig & 0x7FFFFF)
                if small_sig >> 23 == 0:
                    continue
                for sa in (0, 1):
                    for sb in (0, 1):
                        for lsb in (0, 1):
                            big = (eb << 23) | (big_frac & ~1) | lsb
                            pairs.append((big | sa << 31, small | sb << 31))
    # Full cancellation and near-cancellation (x + -x, x + -(x +- 1 ulp)), subnormals too.
    for bits in rng.integers(1, 0x7F800000, 64).tolist() + list(range(1, 9)) + [MAX_SUBNORMAL]:
        for other in (bits, bits + 1, bits - 1):
            pairs.append((bits, other | 0x80000000))
            pairs.append((bits | 0x80000000, other))
    # Subnormal results from normal operands close to the boundary.
    for _ in range(64):
        x = int(rng.integers(MIN_NORMAL, MIN_NORMAL << 2))
        y = int(rng.integers(MIN_SUBNORMAL, MIN_NORMAL << 2))
        pairs.append((x, y | 0x80000000))
    return pairs


def _odd_with_bits(rng: np.random.Generator, n: int) -> int:
    if n == 1:
        return 1
    return (1 << (n - 1)) | (int(rng.integers(0, 1 << (n - 1))) | 1)


def _mul_directed(rng: np.random.Generator) -> list[tuple[int, int]]:
    pairs: list[tuple[int, int]] = [
        (0x3FC00000, 0x3F800001),  # 1.5 * (1 + 2**-23): tie, odd -> up
        (0x3FC00000, 0x3F800003),
        (0x3F800001, 0x3F800001),  # (1 + 2**-23)**2: below the tie
        (0x3FFFFFFF, 0x3FFFFFFF),
        (MAX_NORMAL, 0x40000000),  # overflow
        (MAX_NORMAL, 0x3F800001),  # rounds up to infinity
        (MAX_NORMAL, ONE),
        (0x5F800000, 0x5F800000),  # 2**64 * 2**64 = infinity
        (MIN_NORMAL, 0x3F000000),  # smallest normal / 2: subnormal, exact
        (MIN_NORMAL, 0x3EFFFFFF),  # just below: rounds (tie)
        (MIN_SUBNORMAL, 0x3F000000),  # half the smallest subnormal: tie to even -> 0
        (MIN_SUBNORMAL, 0x3F000001),  # just above half: smallest subnormal
        (0x00000003, 0x3F000000),  # 1.5 smallest subnormals: tie -> 2
        (MIN_SUBNORMAL, 0x3F7FFFFF),
        (MIN_SUBNORMAL, MIN_SUBNORMAL),  # underflow to zero
        (MAX_SUBNORMAL, MAX_SUBNORMAL | 0x80000000),
        (MAX_SUBNORMAL, 0x4B000000),  # subnormal * 2**23: normal
        (MIN_SUBNORMAL, 0x7F000000),  # 2**-149 * 2**127
        (MAX_SUBNORMAL, 0x3F800001),  # (2**23 - 2**-23) * 2**-149: up to the smallest normal
        (MIN_NORMAL, 0x3F7FFFFF),  # just below the smallest normal
        (0, INF),
        (NEG_ZERO, INF),
        (INF, 0),
        (INF | 0x80000000, NEG_ZERO),
        (0, NEG_ZERO),
        (NEG_ZERO, NEG_ZERO),
        (NEG_ZERO, MAX_NORMAL),
        (0, MIN_SUBNORMAL | 0x80000000),
    ]
    # (2**24 - 1) * 2**-150 = 4095 * 4097 * 2**-150: tie, rounds up to the smallest normal.
    for p, q, e in [
        (4095, 4097, -150),
        (4095, 4097, -151),
        (4095, 4097, -149),
        (18631, 1801, 103),
        (18631, 1801, 102),
    ]:  # 2**25 - 1 = 18631 * 1801
        for ea in (e // 2, e // 2 - 7, e // 2 + 5):
            pairs.append((_scaled(p, ea), _scaled(q, e - ea)))
    # Exact ties in the normal range: odd p * q of exactly 25 significant bits rounds to
    # 24 bits at exactly half an ulp; 26..30 bits give guard and sticky patterns.
    for length in range(25, 31):
        made = 0
        while made < 40:
            lp = int(rng.integers(2, min(24, length - 1) + 1))
            lq = length + 1 - lp if rng.random() < 0.5 else length - lp
            if not 1 <= lq <= 24:
                continue
            p, q = _odd_with_bits(rng, lp), _odd_with_bits(rng, lq)
            if (p * q).bit_length() != length:
                continue
            ep = int(rng.integers(-60, 40))
            eq = int(rng.integers(-60, 40))
            sa, sb = rng.integers(0, 2, 2).tolist()
            pairs.append((_scaled(p, ep) | sa << 31, _scaled(q, eq) | sb << 31))
            made += 1
    # Subnormal results with ties and sticky bits: an odd product p*q placed so its last
    # bit is 1, 2 or 3 positions below the smallest subnormal.
    for _ in range(150):
        length = int(rng.integers(2, 26))
        lp = int(rng.integers(1, min(24, length) + 1))
        lq = max(1, min(24, length - lp + int(rng.integers(0, 2))))
        p, q = _odd_with_bits(rng, lp), _odd_with_bits(rng, lq)
        below = int(rng.integers(1, 4))
        e = -149 - below
        ep = int(rng.integers(-149, -below + 1))  # both operands >= 2**-149: exact
        pairs.append((_scaled(p, ep), _scaled(q, e - ep) | int(rng.integers(0, 2)) << 31))
    # Operands on both sides of the subnormal boundary (subnormal * normal, both ways).
    for _ in range(100):
        sub = int(rng.integers(MIN_SUBNORMAL, MIN_NORMAL))
        normal = int(rng.integers(0x3F000000, 0x4C000000))
        pairs.append((sub, normal))
        pairs.append((normal | 0x80000000, sub))
    return pairs


def directed_pairs(op: str, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deliberately constructed ``(a, b)`` bit patterns for ``"add"`` or ``"mul"``."""
    rng = np.random.default_rng(seed)
    pairs = _class_pairs()
    if op == "add":
        pairs += _add_directed(rng)
    elif op == "mul":
        pairs += _mul_directed(rng)
    else:
        raise ValueError(f"op must be one of {OPERATIONS}, got {op!r}")
    # Both operand orders: the units must be commutative.
    both = pairs + [(b, a) for a, b in pairs]
    arr = np.array(both, dtype=np.uint64).astype(np.uint32)
    return arr[:, 0].copy(), arr[:, 1].copy()


# --- random vectors -------------------------------------------------------------------


def _uniform(rng, n):
    return _u32(rng.integers(0, 1 << 32, n)), _u32(rng.integers(0, 1 << 32, n))


def _finite(rng, n, exp_low=0, exp_high=255):
    return _make(rng.integers(0, 2, n), rng.integers(exp_low, exp_high, n), rng.integers(0, 1 << 23, n))


def _finite_pairs(rng, n):
    return _finite(rng, n), _finite(rng, n)


def _exponent_difference(rng, n):
    a = _make(rng.integers(0, 2, n), rng.integers(31, 254, n), rng.integers(0, 1 << 23, n))
    d = rng.integers(0, 31, n)
    ea = (a.astype(np.int64) >> 23) & 0xFF
    b = _make(rng.integers(0, 2, n), ea - d, rng.integers(0, 1 << 23, n))
    return a, b


def _near_equal(rng, n):
    a = _finite(rng, n, 0, 255)
    offset = rng.integers(-64, 65, n)
    mag = np.clip((a & 0x7FFFFFFF).astype(np.int64) + offset, 0, MAX_NORMAL)
    sign = np.where(rng.random(n) < 0.8, (a >> 31) ^ 1, a >> 31).astype(np.int64)
    return a, _u32((sign << 31) | mag)


def _small(rng, n):
    """Both operands tiny: subnormal sums and subnormal/normal boundary crossings."""
    return _finite(rng, n, 0, 4), _finite(rng, n, 0, 4)


def _near_subnormal_products(rng, n):
    """Exponents whose sum lands near the subnormal range, some operands subnormal."""
    ea = rng.integers(0, 160, n)
    eb = np.clip(127 - ea + rng.integers(-30, 6, n), 0, 254)
    a = _make(rng.integers(0, 2, n), ea, rng.integers(0, 1 << 23, n))
    b = _make(rng.integers(0, 2, n), eb, rng.integers(0, 1 << 23, n))
    return a, b


def _near_overflow_products(rng, n):
    ea = rng.integers(100, 255, n)
    eb = np.clip(254 + 127 - ea + rng.integers(-3, 3, n), 0, 254)
    return (
        _make(rng.integers(0, 2, n), ea, rng.integers(0, 1 << 23, n)),
        _make(rng.integers(0, 2, n), eb, rng.integers(0, 1 << 23, n)),
    )


def _short_significands(rng, n):
    """Significands with few significant bits: exact results, ties and sticky edges."""

    def one():
        keep = rng.integers(1, 14, n)
        frac = rng.integers(0, 1 << 23, n) >> (23 - keep) << (23 - keep)
        return _make(rng.integers(0, 2, n), rng.integers(90, 165, n), frac)

    return one(), one()


_DISTRIBUTIONS = {
    "add": [(_uniform, 2), (_exponent_difference, 3), (_near_equal, 2), (_small, 1), (_short_significands, 1)],
    "mul": [
        (_uniform, 2),
        (_near_subnormal_products, 3),
        (_near_overflow_products, 1),
        (_short_significands, 2),
        (_small, 1),
        (_finite_pairs, 1),
    ],
}


def random_pairs(op: str, count: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` random ``(a, b)`` pairs mixed from several distributions, shuffled.

    add: uniform 32-bit patterns, exponent differences 0..30, near-equal magnitudes
    (mostly opposite signs: cancellation), tiny operands, short significands.
    mul: uniform patterns, exponent sums near the subnormal range (subnormal operands and
    results), near overflow, short significands (ties), tiny operands, finite values.
    About 1% of operands are replaced by a class representative (zeros, infinities, NaNs...).
    """
    if op not in _DISTRIBUTIONS:
        raise ValueError(f"op must be one of {OPERATIONS}, got {op!r}")
    rng = np.random.default_rng(seed)
    weights = np.array([w for _, w in _DISTRIBUTIONS[op]], dtype=float)
    counts = rng.multinomial(count, weights / weights.sum())
    parts = [make(rng, int(k)) for (make, _), k in zip(_DISTRIBUTIONS[op], counts)]
    a = np.concatenate([p[0] for p in parts])
    b = np.concatenate([p[1] for p in parts])
    order = rng.permutation(count)
    a, b = a[order], b[order]
    specials = np.array(list(CLASS_VALUES.values()), dtype=np.uint32)
    for x in (a, b):
        hit = rng.random(count) < 0.01
        x[hit] = rng.choice(specials, int(hit.sum()))
    return a, b


def lane_vectors(count: int, *, seed: int = 0) -> dict[str, np.ndarray]:
    """``count`` random ``(acc, a, b, c)`` for the lane, then the RecNMP operator shapes.

    Mixes: realistic magnitudes (embedding values, weights, scales, biases), uniform bit
    patterns, the sum form (a = 1.0, c = -0.0), the weighted form (c = -0.0), and -0.0 / +0.0
    accumulators; about 1% class representatives.
    """
    rng = np.random.default_rng(seed)

    def realistic(n):
        return _make(rng.integers(0, 2, n), rng.integers(100, 140, n), rng.integers(0, 1 << 23, n))

    def uniform(n):
        return _u32(rng.integers(0, 1 << 32, n))

    def mixed(n):
        kind = rng.integers(0, 4, n)
        return np.select(
            [kind == 0, kind == 1, kind == 2], [uniform(n), _finite(rng, n), _finite(rng, n, 0, 8)], realistic(n)
        )

    vec = {name: mixed(count) for name in ("acc", "a", "b", "c")}
    form = rng.integers(0, 4, count)
    vec["a"] = np.where(form == 0, np.uint32(ONE), vec["a"])  # sum: 1.0 * x + -0.0
    vec["c"] = np.where(form <= 1, np.uint32(NEG_ZERO), vec["c"])  # weighted: w * x + -0.0
    vec["acc"] = np.where(rng.random(count) < 0.05, np.uint32(NEG_ZERO), vec["acc"])
    specials = np.array(list(CLASS_VALUES.values()), dtype=np.uint32)
    for x in vec.values():
        hit = rng.random(count) < 0.01
        x[hit] = rng.choice(specials, int(hit.sum()))
    return vec


def lane_identity_vectors() -> dict[str, np.ndarray]:
    """The ``c = -0.0`` identity: ``acc + ((1.0 * x) + -0.0)`` must equal ``acc + x``."""
    xs = list(CLASS_VALUES.values()) + [0x3F8CCCCD, 0xC0490FDB, 0x00000003, 0x80400000]
    accs = [0, NEG_ZERO, ONE, 0xBF800000, MIN_SUBNORMAL, 0x80000001, MAX_NORMAL, INF]
    rows = [(acc, ONE, x, NEG_ZERO) for acc in accs for x in xs]
    rows += [(acc, w, x, NEG_ZERO) for acc in accs for x in xs[:8] for w in (0x3F000000, 0xC0000000)]
    arr = np.array(rows, dtype=np.uint64).astype(np.uint32)
    return {name: arr[:, k].copy() for k, name in enumerate(("acc", "a", "b", "c"))}
