"""Golden SLS model: bit-exact order against scalar references, torch/FBGEMM cross-checks,
fused 8-bit quantisation, hardware order, and every input error."""

import re
import struct
import time

import numpy as np
import pytest

from sim_models.sls import dequantize_fused8, quantize_fused8, sls, sls_hardware_order

F32 = np.float32


# --------------------------------------------------------------------------------------
# Independent scalar references (one np.float32 operation per IEEE operation)
# --------------------------------------------------------------------------------------


def ref_addend(table, row, j, w):
    """fp32 addend of element j of one lookup, op by op as in docs/design.md."""
    if table.dtype == np.uint8:
        dim = table.shape[1] - 8
        scale, bias = (F32(v) for v in struct.unpack("<ff", table[row, dim:].tobytes()))
        if w is not None:
            scale, bias = F32(w * scale), F32(w * bias)
        return F32(F32(scale * F32(int(table[row, j]))) + bias)
    x = table[row, j]
    return x if w is None else F32(w * x)


def ref_sls(table, indices, lengths, weights=None, mode="sum"):
    """Plain sequential order: per bag, acc = +0.0; acc = acc + addend, lookup by lookup."""
    dim = table.shape[1] - (8 if table.dtype == np.uint8 else 0)
    out = np.zeros((len(lengths), dim), F32)
    start = 0
    for b, n in enumerate(lengths):
        for j in range(dim):
            acc = F32(0.0)
            for k in range(start, start + n):
                w = None if weights is None else F32(weights[k])
                acc = F32(acc + ref_addend(table, int(indices[k]), j, w))
            if mode == "mean" and n:
                acc = F32(acc / F32(n))
            out[b, j] = acc
        start += n
    return out


def ref_hardware(table, indices, lengths, ranks, num_ranks, dimms=None, num_dimms=1, weights=None, mode="sum"):
    """Per-(DIMM, rank) sequential partials, explicit rank tree, DIMMs added in order."""
    dim = table.shape[1] - (8 if table.dtype == np.uint8 else 0)
    if dimms is None:
        dimms = [0] * len(indices)
    out = np.zeros((len(lengths), dim), F32)
    start = 0
    for b, n in enumerate(lengths):
        for j in range(dim):
            partial = [[F32(0.0)] * num_ranks for _ in range(num_dimms)]
            for k in range(start, start + n):
                w = None if weights is None else F32(weights[k])
                d, r = int(dimms[k]), int(ranks[k])
                partial[d][r] = F32(partial[d][r] + ref_addend(table, int(indices[k]), j, w))
            dimm_results = []
            for p in partial:
                if num_ranks == 1:
                    dimm_results.append(p[0])
                elif num_ranks == 2:
                    dimm_results.append(F32(p[0] + p[1]))
                else:
                    dimm_results.append(F32(F32(p[0] + p[1]) + F32(p[2] + p[3])))
            acc = dimm_results[0]
            for t in dimm_results[1:]:
                acc = F32(acc + t)
            if mode == "mean" and n:
                acc = F32(acc / F32(n))
            out[b, j] = acc
        start += n
    return out


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


def assert_bits_equal(actual, expected):
    assert actual.dtype == np.float32
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual.view(np.uint32), expected.view(np.uint32))


def nasty(rng, shape, max_exponent=150):
    """fp32 values over the whole exponent range (about 1 in 6 subnormal or zero), signed
    zeros and cancelling large/small pairs; |x| < 2**23, so no bag can overflow."""
    sign = rng.integers(0, 2, shape, dtype=np.uint32) << np.uint32(31)
    exponent = rng.integers(0, max_exponent, shape, dtype=np.uint32) << np.uint32(23)
    mantissa = rng.integers(0, 1 << 23, shape, dtype=np.uint32)
    x = (sign | exponent | mantissa).view(F32)
    specials = np.array(
        [0.0, -0.0, 1.0, -1.0, 0.5, 3.0, 1e6, -1e6, 2.0**22, -(2.0**22) - 1.0, 1e-45, -1e-45],
        F32,
    )
    pick = rng.random(shape) < 0.3
    x[pick] = rng.choice(specials, int(pick.sum()))
    return x


def random_bags(rng, rows, bags, max_len, *, allow_empty=True):
    lengths = rng.integers(0 if allow_empty else 1, max_len + 1, bags)
    if allow_empty and bags >= 3:
        lengths[[0, bags // 2, -1]] = 0  # empty bags at both ends and in the middle
    indices = rng.integers(0, rows, int(lengths.sum()))
    return indices, lengths


def random_fused(rng, rows, dim):
    """A fused 8-bit table with arbitrary q bytes and nasty scale/bias (not just prepack)."""
    fused = np.empty((rows, dim + 8), np.uint8)
    fused[:, :dim] = rng.integers(0, 256, (rows, dim))
    fused[:, dim:] = nasty(rng, (rows, 2), max_exponent=140).astype("<f4").view(np.uint8)
    return fused


def offsets_of(lengths):
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def test_platform_keeps_subnormals():
    # The golden model relies on gradual underflow; a flush-to-zero FPU would break it.
    tiny = F32(1.4e-45)
    assert tiny > 0
    assert (np.array([tiny], F32) * F32(3.0))[0] == F32(4.2e-45)
    assert (np.array([tiny], F32) + np.array([tiny], F32))[0] == F32(2.8e-45)


# --------------------------------------------------------------------------------------
# Sequential order: bit-exact against the scalar reference
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", ["normal", "nasty"])
@pytest.mark.parametrize(("weighted", "mode"), [(False, "sum"), (True, "sum"), (False, "mean")])
def test_float_table_bit_exact(data, weighted, mode):
    rng = np.random.default_rng([1, weighted, mode == "mean", data == "nasty"])
    if data == "normal":
        table = rng.standard_normal((40, 7)).astype(F32)
        weights_of = lambda n: rng.standard_normal(n).astype(F32)  # noqa: E731
    else:
        table = nasty(rng, (40, 7))
        weights_of = lambda n: nasty(rng, n, max_exponent=140)  # noqa: E731
    indices, lengths = random_bags(rng, 40, 25, 12)
    weights = weights_of(indices.size) if weighted else None
    expected = ref_sls(table, indices, lengths, weights, mode)
    assert_bits_equal(sls(table, indices, lengths, weights=weights, mode=mode), expected)


@pytest.mark.parametrize("weighted", [False, True])
def test_fused8_bit_exact(weighted):
    rng = np.random.default_rng([2, weighted])
    table = random_fused(rng, 30, 5)
    indices, lengths = random_bags(rng, 30, 20, 10)
    weights = nasty(rng, indices.size, max_exponent=140) if weighted else None
    expected = ref_sls(table, indices, lengths, weights)
    assert_bits_equal(sls(table, indices, lengths, weights=weights), expected)


def test_fused8_mean_bit_exact():
    rng = np.random.default_rng(3)
    table = random_fused(rng, 30, 5)
    indices, lengths = random_bags(rng, 30, 20, 10)
    expected = ref_sls(table, indices, lengths, mode="mean")
    assert_bits_equal(sls(table, indices, lengths, mode="mean"), expected)


def test_fused8_unweighted_equals_dequantized_float_table():
    # Unweighted, the 8-bit formula is (scale * q) + bias per element: dequantize exactly.
    rng = np.random.default_rng(4)
    fused = random_fused(rng, 50, 9)
    indices, lengths = random_bags(rng, 50, 30, 15)
    assert_bits_equal(sls(fused, indices, lengths), sls(dequantize_fused8(fused), indices, lengths))


def test_weighted_fused8_is_not_weight_times_dequantized():
    # w*scale and w*bias are rounded separately: (w*s)*q + w*b != w*(s*q + b) in general,
    # so a model that weighted the dequantized value would fail the bit-exact tests.
    rng = np.random.default_rng(5)
    fused = random_fused(rng, 50, 9)
    indices, lengths = random_bags(rng, 50, 30, 15)
    weights = rng.standard_normal(indices.size).astype(F32)
    ours = sls(fused, indices, lengths, weights=weights)
    other = sls(dequantize_fused8(fused), indices, lengths, weights=weights)
    assert (ours.view(np.uint32) != other.view(np.uint32)).any()


def test_the_nasty_data_is_order_sensitive():
    # Proof that the bit-exact tests have teeth: on this data, summing in another order
    # (reversed, or exactly in float64) changes bits.
    rng = np.random.default_rng(6)
    table = nasty(rng, (40, 7))
    indices, lengths = random_bags(rng, 40, 25, 12, allow_empty=False)
    ours = sls(table, indices, lengths)
    starts = offsets_of(lengths)[:-1]
    reversed_indices = np.concatenate([indices[s : s + n][::-1] for s, n in zip(starts, lengths)])
    reversed_order = ref_sls(table, reversed_indices, lengths)
    in_float64 = np.stack(
        [table[indices[s : s + n]].astype(np.float64).sum(axis=0) for s, n in zip(starts, lengths)]
    ).astype(F32)
    assert (ours.view(np.uint32) != reversed_order.view(np.uint32)).any()
    assert (ours.view(np.uint32) != in_float64.view(np.uint32)).any()


def test_subnormal_sums_are_kept():
    def sub(k):  # the fp32 with bit pattern k (k < 2**23: zero or subnormal)
        return np.array(k, np.uint32).view(F32)

    table = np.array([[sub(1), -sub(1), sub(0x7FFFFF)], [sub(3), sub(0x7FFFFF), sub(1)]], F32)
    out = sls(table, [0, 1, 1, 1], [2, 2])
    expected_bits = [[4, 0x7FFFFE, 0x800000], [6, 0xFFFFFE, 2]]  # 0x800000: smallest normal
    np.testing.assert_array_equal(out.view(np.uint32), np.array(expected_bits, np.uint32))
    # Products landing in the subnormal range round to nearest even there:
    # 2**-75 * 2**-75 = 2**-150 (half an ulp, ties to even: 0); 1.5 * 2**-149 = 1.5 ulp -> 2.
    table = np.array([[2.0**-75], [sub(1)]], F32)
    weights = np.array([2.0**-75, 1.5], F32)
    out = sls(table, [0, 1], [1, 1], weights=weights)
    assert_bits_equal(out, ref_sls(table, [0, 1], [1, 1], weights))
    assert out.view(np.uint32)[:, 0].tolist() == [0, 2]


def test_signed_zeros():
    neg = np.full((3, 4), -0.0, F32)
    # A bag of -0.0 gives +0.0: the accumulator starts at +0.0 and +0 + -0 = +0.
    for kwargs in ({}, {"weights": np.array([1.0, -0.0, 2.0], F32)}, {"mode": "mean"}):
        out = sls(neg, [0, 1, 2], [3], **kwargs)
        assert (out.view(np.uint32) == 0).all(), kwargs
    # Exact cancellation gives +0.0 too.
    table = np.array([[5.0], [-5.0]], F32)
    assert sls(table, [0, 1], [2]).view(np.uint32)[0, 0] == 0
    # A -0.0 weight times a positive value is -0.0, added to +0.0.
    assert sls(table, [0], [1], weights=np.array([-0.0], F32)).view(np.uint32)[0, 0] == 0
    # Fused 8-bit rows with scale = bias = -0.0.
    fused = np.zeros((1, 12), np.uint8)
    fused[0, :4] = [0, 1, 200, 255]
    fused[0, 4:] = np.array([-0.0, -0.0], "<f4").view(np.uint8)
    assert (sls(fused, [0, 0], [2]).view(np.uint32) == 0).all()


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_empty_bags_give_positive_zero(fused, mode):
    rng = np.random.default_rng(7)
    table = random_fused(rng, 5, 3) if fused else nasty(rng, (5, 3))
    out = sls(table, [1, 2], [0, 2, 0], mode=mode)
    assert (out[[0, 2]].view(np.uint32) == 0).all()
    # All bags empty, and no bags at all.
    assert (sls(table, [], [0, 0], mode=mode).view(np.uint32) == 0).all()
    assert sls(table, [], []).shape == (0, 3)
    assert sls(table, np.array([], np.int32), offsets=[]).shape == (0, 3)
    assert sls(table, [], offsets=[0], include_last_offset=True).shape == (0, 3)


def test_lengths_and_offsets_agree():
    rng = np.random.default_rng(8)
    table = nasty(rng, (30, 6))
    indices, lengths = random_bags(rng, 30, 17, 9)
    weights = rng.standard_normal(indices.size).astype(F32)
    offsets = offsets_of(lengths)
    by_lengths = sls(table, indices, lengths, weights=weights)
    assert by_lengths.shape == (17, 6)
    assert_bits_equal(sls(table, indices, offsets=offsets[:-1], weights=weights), by_lengths)
    assert_bits_equal(
        sls(table, indices, offsets=offsets, include_last_offset=True, weights=weights),
        by_lengths,
    )


def test_ambiguous_last_offset_is_decided_by_the_keyword():
    # offsets [0, 2, 4] with 4 indices: 3 bags (the last empty) unless include_last_offset.
    table = np.arange(8, dtype=F32).reshape(4, 2)
    three = sls(table, [0, 1, 2, 3], offsets=[0, 2, 4])
    two = sls(table, [0, 1, 2, 3], offsets=[0, 2, 4], include_last_offset=True)
    assert_bits_equal(three, np.array([[2, 4], [10, 12], [0, 0]], F32))
    assert_bits_equal(two, three[:2])


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint64])
def test_any_integer_dtype_for_indices_lengths_offsets(dtype):
    rng = np.random.default_rng(9)
    table = rng.standard_normal((100, 4)).astype(F32)
    indices, lengths = random_bags(rng, 100, 10, 8)
    expected = sls(table, indices, lengths)
    assert_bits_equal(sls(table, indices.astype(dtype), lengths.astype(dtype)), expected)
    offsets = offsets_of(lengths)[:-1].astype(dtype)
    assert_bits_equal(sls(table, indices.astype(dtype), offsets=offsets), expected)


def test_python_sequences_are_accepted():
    table = np.arange(6, dtype=F32).reshape(3, 2)
    out = sls(table, [2, 0, 1], [1, 2], weights=[0.5, 2.0, 1.0])  # float64 weights -> fp32
    assert_bits_equal(out, np.array([[2, 2.5], [2, 5]], F32))


def test_weights_are_rounded_to_float32():
    w64 = np.array([0.1], np.float64)
    table = np.array([[3.0]], F32)
    assert_bits_equal(sls(table, [0], [1], weights=w64), np.array([[F32(0.1) * F32(3.0)]], F32))


def test_non_contiguous_and_big_inputs():
    rng = np.random.default_rng(10)
    base = rng.standard_normal((2000, 128)).astype(F32)
    table = base[::2, ::2]  # a strided view
    indices, lengths = random_bags(rng, 1000, 2000, 100)  # ~1e5 lookups
    start = time.perf_counter()
    out = sls(table, indices[::-1].copy(), lengths)
    assert time.perf_counter() - start < 5.0  # generous: about 0.05 s in practice
    assert out.flags.c_contiguous and out.shape == (2000, 64)
    first = indices[::-1][: lengths[:5].sum()]
    assert_bits_equal(out[:5], sls(np.ascontiguousarray(table), first, lengths[:5]))


# --------------------------------------------------------------------------------------
# Hardware order
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_ranks", [1, 2, 4])
@pytest.mark.parametrize("case", ["float", "weighted", "fused", "fused-weighted", "mean"])
def test_hardware_order_bit_exact(num_ranks, case):
    rng = np.random.default_rng([11, num_ranks, len(case)])
    fused = case.startswith("fused")
    table = random_fused(rng, 30, 4) if fused else nasty(rng, (30, 4))
    indices, lengths = random_bags(rng, 30, 15, 12)
    weights = nasty(rng, indices.size, 140) if "weighted" in case else None
    mode = "mean" if case == "mean" else "sum"
    ranks = rng.integers(0, num_ranks, indices.size)
    expected = ref_hardware(table, indices, lengths, ranks, num_ranks, weights=weights, mode=mode)
    out = sls_hardware_order(table, indices, lengths, weights=weights, ranks=ranks, num_ranks=num_ranks, mode=mode)
    assert_bits_equal(out, expected)


@pytest.mark.parametrize("num_ranks", [1, 2, 4])
@pytest.mark.parametrize("num_dimms", [2, 3])
def test_hardware_order_multi_dimm_bit_exact(num_ranks, num_dimms):
    rng = np.random.default_rng([12, num_ranks, num_dimms])
    table = nasty(rng, (30, 4))
    indices, lengths = random_bags(rng, 30, 15, 14)
    weights = nasty(rng, indices.size, 140)
    ranks = rng.integers(0, num_ranks, indices.size)
    dimms = rng.integers(0, num_dimms, indices.size)
    expected = ref_hardware(table, indices, lengths, ranks, num_ranks, dimms, num_dimms, weights)
    out = sls_hardware_order(
        table,
        indices,
        offsets=offsets_of(lengths),
        include_last_offset=True,
        weights=weights,
        ranks=ranks,
        num_ranks=num_ranks,
        dimms=dimms,
        num_dimms=num_dimms,
    )
    assert_bits_equal(out, expected)


@pytest.mark.parametrize("case", ["float", "weighted", "fused-weighted", "mean"])
def test_one_rank_one_dimm_is_the_sequential_order(case):
    rng = np.random.default_rng([13, len(case)])
    table = random_fused(rng, 40, 6) if case.startswith("fused") else nasty(rng, (40, 6))
    indices, lengths = random_bags(rng, 40, 30, 20)
    weights = nasty(rng, indices.size, 140) if "weighted" in case else None
    mode = "mean" if case == "mean" else "sum"
    all_zero = np.zeros(indices.size, np.int64)
    expected = sls(table, indices, lengths, weights=weights, mode=mode)
    assert_bits_equal(
        sls_hardware_order(table, indices, lengths, weights=weights, ranks=all_zero, num_ranks=1, mode=mode),
        expected,
    )
    # Every lookup on rank 0 of DIMM 0 of a bigger system: the empty partials are +0.0,
    # and x + (+0.0) == x for every x the model can produce (never -0.0).
    assert_bits_equal(
        sls_hardware_order(
            table,
            indices,
            lengths,
            weights=weights,
            ranks=all_zero,
            num_ranks=4,
            dimms=all_zero,
            num_dimms=2,
            mode=mode,
        ),
        expected,
    )


def test_hardware_order_differs_from_sequential():
    # ulp(1e8) = 8, so 1e8 + 1 == 1e8. Sequential: ((1e8 + 1) - 1e8) + 1 = 1.
    # Ranks [0, 1, 0, 1]: r0 = 1e8 - 1e8 = 0, r1 = 1 + 1 = 2, tree: 0 + 2 = 2.
    table = np.array([[1e8], [1.0], [-1e8]], F32)
    indices, lengths = [0, 1, 2, 1], [4]
    assert sls(table, indices, lengths)[0, 0] == 1.0
    hw = sls_hardware_order(table, indices, lengths, ranks=[0, 1, 0, 1], num_ranks=2)
    assert hw[0, 0] == 2.0
    # The same split across two DIMMs (one rank each) gives the same numbers.
    hw = sls_hardware_order(table, indices, lengths, ranks=[0, 0, 0, 0], num_ranks=1, dimms=[0, 1, 0, 1], num_dimms=2)
    assert hw[0, 0] == 2.0
    # And on random data the two orders disagree somewhere.
    rng = np.random.default_rng(14)
    table = nasty(rng, (40, 6))
    indices, lengths = random_bags(rng, 40, 30, 20)
    ranks = rng.integers(0, 4, indices.size)
    hw = sls_hardware_order(table, indices, lengths, ranks=ranks, num_ranks=4)
    assert (hw.view(np.uint32) != sls(table, indices, lengths).view(np.uint32)).any()


def test_hardware_order_tree_shape():
    # (r0 + r1) + (r2 + r3), not ((r0 + r1) + r2) + r3: with r = [1e8, 1, -1e8, 1] the tree
    # gives (1e8 + 1) + (-1e8 + 1) = 1e8 - 1e8 = 0, the chain gives ((1e8+1) - 1e8) + 1 = 1.
    table = np.array([[1e8], [1.0], [-1e8]], F32)
    hw = sls_hardware_order(table, [0, 1, 2, 1], [4], ranks=[0, 1, 2, 3], num_ranks=4)
    assert hw.view(np.uint32)[0, 0] == 0
    # DIMM order is sequential from DIMM 0: ((d0 + d1) + d2) + d3 = 1.
    hw = sls_hardware_order(table, [0, 1, 2, 1], [4], ranks=[0] * 4, num_ranks=1, dimms=[0, 1, 2, 3], num_dimms=4)
    assert hw[0, 0] == 1.0


def test_hardware_order_negative_zero_partials():
    # Ranks holding only -0.0 produce +0.0 partials (they start at +0.0); empty ranks add
    # +0.0; the result is +0.0 in every case.
    table = np.full((2, 3), -0.0, F32)
    for ranks in ([0, 0, 0], [0, 1, 2], [3, 3, 1]):
        out = sls_hardware_order(table, [0, 1, 0], [3], ranks=ranks, num_ranks=4)
        assert (out.view(np.uint32) == 0).all()


def test_hardware_order_empty_bags():
    table = np.ones((3, 2), F32)
    out = sls_hardware_order(table, [0, 1], [0, 2, 0], ranks=[1, 3], num_ranks=4, mode="mean")
    assert_bits_equal(out, np.array([[0, 0], [1, 1], [0, 0]], F32))


# --------------------------------------------------------------------------------------
# Cross-checks with torch / FBGEMM (tolerance: they may use other orders and FMA)
# --------------------------------------------------------------------------------------


def assert_close(ours, theirs, magnitude):
    """|ours - theirs| <= 1e-5 * (sum of |addends|): a few ulps per addend on both sides."""
    assert ours.shape == theirs.shape
    err = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
    bound = 1e-5 * magnitude + 1e-37
    assert (err <= bound).all(), f"max err/bound {np.max(err / bound)}"


def abs_magnitude(values, indices, lengths, weights, mode):
    """Per-bag sum of |w * x| in float64 (divided by the length for mean)."""
    contrib = np.abs(values[indices].astype(np.float64))
    if weights is not None:
        contrib *= np.abs(weights.astype(np.float64))[:, None]
    bag = np.repeat(np.arange(len(lengths)), lengths)
    mag = np.zeros((len(lengths), values.shape[1]))
    np.add.at(mag, bag, contrib)
    if mode == "mean":
        mag /= np.maximum(lengths, 1)[:, None]
    return mag


@pytest.mark.parametrize("mode", ["sum", "weighted", "mean"])
@pytest.mark.parametrize("include_last_offset", [False, True])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_matches_torch_embedding_bag(mode, include_last_offset, index_dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng([15, len(mode), include_last_offset])
    table = (rng.standard_normal((200, 16)) * rng.choice([1e-3, 1.0, 1e3], (200, 1))).astype(F32)
    indices, lengths = random_bags(rng, 200, 64, 40)
    indices = indices.astype(index_dtype)
    offsets = offsets_of(lengths).astype(index_dtype)
    if not include_last_offset:
        offsets = offsets[:-1]
    weights = rng.standard_normal(indices.size).astype(F32) if mode == "weighted" else None
    op = "mean" if mode == "mean" else "sum"
    theirs = torch.nn.functional.embedding_bag(
        torch.from_numpy(indices),
        torch.from_numpy(table),
        torch.from_numpy(offsets),
        mode=op,
        per_sample_weights=None if weights is None else torch.from_numpy(weights),
        include_last_offset=include_last_offset,
    ).numpy()
    ours = sls(table, indices, offsets=offsets, include_last_offset=include_last_offset, weights=weights, mode=op)
    assert_close(ours, theirs, abs_magnitude(table, indices, lengths, weights, op))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("include_last_offset", [False, True])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_matches_fbgemm_byte_rowwise(weighted, include_last_offset, index_dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng([16, weighted, include_last_offset])
    fused = quantize_fused8((rng.standard_normal((150, 24)) * 4).astype(F32))
    indices, lengths = random_bags(rng, 150, 50, 30)
    indices = indices.astype(index_dtype)
    offsets = offsets_of(lengths).astype(index_dtype)
    if not include_last_offset:
        offsets = offsets[:-1]
    weights = rng.standard_normal(indices.size).astype(F32) if weighted else None
    # quantized::embedding_bag_byte_rowwise_offsets(weight, indices, offsets,
    #     scale_grad_by_freq, mode (0 = sum), pruned_weights, per_sample_weights,
    #     compressed_indices_mapping, include_last_offset)
    theirs = torch.ops.quantized.embedding_bag_byte_rowwise_offsets(
        torch.from_numpy(fused),
        torch.from_numpy(indices),
        torch.from_numpy(offsets),
        False,
        0,
        False,
        None if weights is None else torch.from_numpy(weights),
        None,
        include_last_offset,
    ).numpy()
    ours = sls(fused, indices, offsets=offsets, include_last_offset=include_last_offset, weights=weights)
    magnitude = abs_magnitude(dequantize_fused8(fused), indices, lengths, weights, "sum")
    assert_close(ours, theirs, magnitude)


def test_big_batch_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(17)
    table = rng.standard_normal((5000, 64)).astype(F32)
    indices, lengths = random_bags(rng, 5000, 1000, 200)  # ~1e5 lookups
    weights = rng.standard_normal(indices.size).astype(F32)
    offsets = offsets_of(lengths)
    theirs = torch.nn.functional.embedding_bag(
        torch.from_numpy(indices),
        torch.from_numpy(table),
        torch.from_numpy(offsets),
        mode="sum",
        per_sample_weights=torch.from_numpy(weights),
        include_last_offset=True,
    ).numpy()
    ours = sls(table, indices, lengths, weights=weights)
    assert_close(ours, theirs, abs_magnitude(table, indices, lengths, weights, "sum"))


# --------------------------------------------------------------------------------------
# Fused 8-bit quantisation
# --------------------------------------------------------------------------------------


def quantize_test_table(rng, rows, dim):
    table = (
        rng.standard_normal((rows, dim)) * rng.choice([1e-3, 1.0, 1e3], (rows, 1))
        + rng.choice([0.0, 5.0, -100.0], (rows, 1))
    ).astype(F32)
    table[0] = 2.5  # range 0
    table[1] = -7.0  # range 0, negative
    table[2] = 0.0  # all +0.0
    table[3, :] = 1.0
    table[3, 0] = 2.0  # a single different element
    table[4] = rng.uniform(1e30, 3e30, dim)  # huge
    return table


@pytest.mark.parametrize("dim", [1, 3, 8, 13, 32, 64, 100])
def test_quantize_matches_torch_prepack_byte_for_byte(dim):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng([18, dim])
    table = quantize_test_table(rng, 64, dim)
    theirs = torch.ops.quantized.embedding_bag_byte_prepack(torch.from_numpy(table)).numpy()
    ours = quantize_fused8(table)
    assert ours.dtype == np.uint8 and ours.shape == (64, dim + 8)
    np.testing.assert_array_equal(ours, theirs)


def test_quantize_layout_and_formula():
    table = np.array([[-1.0, 0.5, 0.25, 7.0], [3.0, 3.0, 3.0, 3.0]], F32)
    fused = quantize_fused8(table)
    scale, bias = np.frombuffer(fused[0, 4:].tobytes(), "<f4")
    assert scale == F32(8.0) / F32(255.0) and bias == F32(-1.0)
    inverse = F32(255.0) / (F32(8.0) + F32(1e-8))
    expected_q = [int(np.rint((F32(x) - F32(-1.0)) * inverse)) for x in table[0]]
    assert fused[0, :4].tolist() == expected_q == [0, 48, 40, 255]
    assert fused[1, :4].tolist() == [0, 0, 0, 0]
    assert np.frombuffer(fused[1, 4:].tobytes(), "<f4").tolist() == [0.0, 3.0]


def test_quantize_round_trip_error_is_half_a_step():
    rng = np.random.default_rng(19)
    table = quantize_test_table(rng, 200, 40)
    fused = quantize_fused8(table)
    scale = np.ascontiguousarray(fused[:, 40:44]).view("<f4")[:, 0].astype(np.float64)
    q = fused[:, :40].astype(np.int64)
    assert (q.min(axis=1)[scale > 0] == 0).all() and (q.max(axis=1)[scale > 0] == 255).all()
    err = np.abs(table.astype(np.float64) - dequantize_fused8(fused).astype(np.float64))
    eps = float(np.finfo(F32).eps)
    # Half a step, plus the 1e-8 in FBGEMM's inverse scale and a few fp32 roundings.
    tiny = 1e-3 * scale[:, None] + 4 * eps * np.abs(table).max(axis=1, keepdims=True)
    assert (err <= scale[:, None] / 2 + tiny).all()
    # Constant rows come back exactly.
    assert_bits_equal(dequantize_fused8(fused[:3]), table[:3])


def test_dequantize_close_to_torch_unpack():
    # torch's unpack may fuse the multiply-add; ours rounds twice as the spec says.
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(20)
    fused = quantize_fused8(quantize_test_table(rng, 50, 20))
    theirs = torch.ops.quantized.embedding_bag_byte_unpack(torch.from_numpy(fused)).numpy()
    ours = dequantize_fused8(fused)
    scale, bias = np.ascontiguousarray(fused[:, 20:]).view("<f4").T
    magnitude = (np.abs(scale) * 255 + np.abs(bias)).astype(np.float64)[:, None]
    assert_close(ours, theirs, magnitude)


def test_dequantize_formula_bit_exact():
    rng = np.random.default_rng(21)
    fused = random_fused(rng, 20, 6)
    expected = np.array([[ref_addend(fused, r, j, None) for j in range(6)] for r in range(20)], F32)
    assert_bits_equal(dequantize_fused8(fused), expected)


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------

T = np.zeros((10, 4), F32)
Q = np.zeros((10, 12), np.uint8)
IDX = np.array([1, 2, 3, 4])

ERRORS = [
    # (function, args, kwargs, exception, exact message)
    (sls, (T, IDX, [4]), {"mode": "max"}, ValueError, "mode must be 'sum' or 'mean', got 'max'"),
    (sls, (T.tolist(), IDX, [4]), {}, TypeError, "table must be a numpy.ndarray, got list"),
    (
        sls,
        (T.astype(np.float64), IDX, [4]),
        {},
        TypeError,
        "table must be float32 (rows, D) or uint8 fused 8-bit (rows, D+8), got float64",
    ),
    (
        sls,
        (T.astype(np.float16), IDX, [4]),
        {},
        TypeError,
        "table must be float32 (rows, D) or uint8 fused 8-bit (rows, D+8), got float16",
    ),
    (sls, (T[0], IDX, [4]), {}, ValueError, "table must be 2-D (rows, D), got shape (4,)"),
    (sls, (np.zeros((10, 0), F32), IDX, [4]), {}, ValueError, "table must have at least one column"),
    (sls, (Q[0], IDX, [4]), {}, ValueError, "table must be 2-D (rows, D+8), got shape (12,)"),
    (
        sls,
        (Q[:, :8], IDX, [4]),
        {},
        ValueError,
        "table (uint8, fused 8-bit) must have at least 9 columns (D >= 1 bytes of q, then 8 "
        "bytes of scale and bias), got 8",
    ),
    (sls, (T, IDX.astype(np.float64), [4]), {}, TypeError, "indices must have an integer dtype, got float64"),
    (sls, (T, [1.0, 2.0], [2]), {}, TypeError, "indices must have an integer dtype, got float64"),
    (sls, (T, IDX > 2, [4]), {}, TypeError, "indices must have an integer dtype, got bool"),
    (sls, (T, IDX.reshape(2, 2), [4]), {}, ValueError, "indices must be 1-D, got shape (2, 2)"),
    (sls, (T, None, [4]), {}, TypeError, "indices must be a 1-D integer array, got None"),
    (sls, (T, IDX, [4]), {"offsets": [0]}, ValueError, "give exactly one of lengths and offsets, got both"),
    (sls, (T, IDX), {}, ValueError, "give exactly one of lengths and offsets, got neither"),
    (
        sls,
        (T, IDX, [4]),
        {"include_last_offset": True},
        ValueError,
        "include_last_offset applies to offsets, not lengths",
    ),
    (sls, (T, IDX, [1.0, 3.0]), {}, TypeError, "lengths must have an integer dtype, got float64"),
    (sls, (T, IDX, [[4]]), {}, ValueError, "lengths must be 1-D, got shape (1, 1)"),
    (sls, (T, IDX, [5, -1]), {}, ValueError, "lengths[1] = -1 is negative"),
    (
        sls,
        (T, IDX, np.array([2**64 - 1, 5], np.uint64)),
        {},
        ValueError,
        "lengths[0] = 18446744073709551615 is more than the number of indices (4)",
    ),
    (sls, (T, IDX, [1, 2]), {}, ValueError, "lengths sum to 3 but indices has 4 entries"),
    (sls, (T, IDX, [3, 2]), {}, ValueError, "lengths sum to 5 but indices has 4 entries"),
    (sls, (T, IDX), {"offsets": [0.0, 2.0]}, TypeError, "offsets must have an integer dtype, got float64"),
    (sls, (T, IDX), {"offsets": [1, 2]}, ValueError, "offsets[0] must be 0, got 1"),
    (
        sls,
        (T, IDX),
        {"offsets": [0, 3, 1]},
        ValueError,
        "offsets must be non-decreasing: offsets[2] = 1 < offsets[1] = 3",
    ),
    (sls, (T, IDX), {"offsets": [0, 2, 5]}, ValueError, "offsets[2] = 5 is beyond len(indices) = 4"),
    (
        sls,
        (T, IDX),
        {"offsets": [0, 2, 3], "include_last_offset": True},
        ValueError,
        "offsets[-1] = 3 must equal len(indices) = 4 when include_last_offset=True",
    ),
    (
        sls,
        (T, []),
        {"offsets": [], "include_last_offset": True},
        ValueError,
        "offsets must have at least one entry when include_last_offset=True",
    ),
    (sls, (T, IDX), {"offsets": []}, ValueError, "offsets is empty (no bags) but indices has 4 entries"),
    (
        sls,
        (T, IDX, [4]),
        {"weights": np.ones(4, F32), "mode": "mean"},
        ValueError,
        "weights are only supported with mode='sum' (as in torch.nn.functional.embedding_bag), got mode='mean'",
    ),
    (sls, (T, IDX, [4]), {"weights": np.ones(4, np.int64)}, TypeError, "weights must have a floating dtype, got int64"),
    (sls, (T, IDX, [4]), {"weights": np.ones((2, 2), F32)}, ValueError, "weights must be 1-D, got shape (2, 2)"),
    (sls, (T, IDX, [4]), {"weights": np.ones(3, F32)}, ValueError, "weights has 3 entries but indices has 4"),
    (sls, (T, [1, 2, 10, 3], [4]), {}, IndexError, "indices[2] = 10 is out of range for a table with 10 rows"),
    (sls, (Q, [1, -1, 2], [3]), {}, IndexError, "indices[1] = -1 is out of range for a table with 10 rows"),
    (
        sls,
        (T, np.array([2**64 - 1], np.uint64), [1]),
        {},
        IndexError,
        "indices[0] = 18446744073709551615 is out of range for a table with 10 rows",
    ),
    (sls, (np.zeros((0, 4), F32), [0], [1]), {}, IndexError, "indices[0] = 0 is out of range for a table with 0 rows"),
    (
        sls_hardware_order,
        (T, IDX, [4]),
        {"ranks": [0] * 4, "num_ranks": 3},
        ValueError,
        "num_ranks must be 1, 2 or 4, got 3",
    ),
    (
        sls_hardware_order,
        (T, IDX, [4]),
        {"ranks": [0] * 4, "num_ranks": 2.0},
        ValueError,
        "num_ranks must be 1, 2 or 4, got 2.0",
    ),
    (
        sls_hardware_order,
        (T, IDX, [4]),
        {"ranks": [0] * 4, "num_ranks": True},
        ValueError,
        "num_ranks must be 1, 2 or 4, got True",
    ),
    (
        sls_hardware_order,
        (T, IDX, [4]),
        {"ranks": [0] * 4, "num_ranks": 2, "num_dimms": 0},
        ValueError,
        "num_dimms must be a positive int, got 0",
    ),
    (
        sls_hardware_order,
        (T, IDX, [4]),
        {"ranks": [0] * 3, "num_ranks": 2},
        ValueError,
        "ranks has 3 entries but indices has 4",
    ),
    (
        sls_hardware_order,
        (T, IDX, [4]),
        {"ranks": [0, 1, 2, 1], "num_ranks": 2},
        ValueError,
        "ranks[2] = 2 is out of range for num_ranks = 2",
    ),
    (
        sls_hardware_order,
        (T, IDX, [4]),
        {"ranks": [0, -1, 0, 0], "num_ranks": 4},
        ValueError,
        "ranks[1] = -1 is out of range for num_ranks = 4",
    ),
    (
        sls_hardware_order,
        (T, IDX, [4]),
        {"ranks": [0.0] * 4, "num_ranks": 2},
        TypeError,
        "ranks must have an integer dtype, got float64",
    ),
    (
        sls_hardware_order,
        (T, IDX, [4]),
        {"ranks": [0] * 4, "num_ranks": 2, "num_dimms": 2},
        ValueError,
        "dimms must be given when num_dimms > 1",
    ),
    (
        sls_hardware_order,
        (T, IDX, [4]),
        {"ranks": [0] * 4, "num_ranks": 1, "dimms": [0, 0, 2, 0], "num_dimms": 2},
        ValueError,
        "dimms[2] = 2 is out of range for num_dimms = 2",
    ),
    (
        sls_hardware_order,
        (T, IDX, [4]),
        {"ranks": [0] * 4, "num_ranks": 1, "dimms": [0, 1], "num_dimms": 2},
        ValueError,
        "dimms has 2 entries but indices has 4",
    ),
    (
        sls_hardware_order,
        (T, [1, 11], [2]),
        {"ranks": [0, 0], "num_ranks": 1},
        IndexError,
        "indices[1] = 11 is out of range for a table with 10 rows",
    ),
    (quantize_fused8, (T.tolist(),), {}, TypeError, "table_f32 must be a numpy.ndarray, got list"),
    (quantize_fused8, (T.astype(np.float64),), {}, TypeError, "table_f32 must be float32, got float64"),
    (quantize_fused8, (T[0],), {}, ValueError, "table_f32 must be 2-D (rows, D), got shape (4,)"),
    (quantize_fused8, (np.zeros((3, 0), F32),), {}, ValueError, "table_f32 must have at least one column"),
    (
        quantize_fused8,
        (np.array([[1.0, np.nan]], F32),),
        {},
        ValueError,
        "table_f32 must be finite (no NaN or infinity)",
    ),
    (
        quantize_fused8,
        (np.array([[1.0, -np.inf]], F32),),
        {},
        ValueError,
        "table_f32 must be finite (no NaN or infinity)",
    ),
    (dequantize_fused8, (T,), {}, TypeError, "fused must be uint8 (rows, D+8), got float32"),
    (dequantize_fused8, (Q.tolist(),), {}, TypeError, "fused must be a numpy.ndarray, got list"),
    (dequantize_fused8, (Q[0],), {}, ValueError, "fused must be 2-D (rows, D+8), got shape (12,)"),
    (
        dequantize_fused8,
        (Q[:, :8],),
        {},
        ValueError,
        "fused (uint8, fused 8-bit) must have at least 9 columns (D >= 1 bytes of q, then 8 "
        "bytes of scale and bias), got 8",
    ),
]


@pytest.mark.parametrize(
    ("func", "args", "kwargs", "exc", "message"),
    ERRORS,
    ids=[f"{e[0].__name__}:{e[4][:40]}" for e in ERRORS],
)
def test_errors(func, args, kwargs, exc, message):
    with pytest.raises(exc, match=f"^{re.escape(message)}$"):
        func(*args, **kwargs)
