"""Golden model of the SparseLengthsSum (EmbeddingBag) family: the bit-exact reference.

Every hardware and driver test compares with this module bit for bit, so the arithmetic
follows ``docs/design.md`` ("Operators and their exact arithmetic") exactly.

Operators
---------
A bag ``b`` is a run of consecutive lookups ``k`` (``indices[k]``, optional ``weights[k]``);
its output row is

* sum: ``sum_k E[indices[k]]``;
* weighted sum: ``sum_k weights[k] * E[indices[k]]``;
* mean: the fp32 sum divided by the bag length (converted to fp32). Weighted mean is not
  supported, as in ``torch.nn.functional.embedding_bag``.

The table is either ``float32 (rows, D)`` or a fused 8-bit table ``uint8 (rows, D + 8)``
(Caffe2/FBGEMM ``Fused8BitRowwise``): ``D`` quantised bytes ``q``, then the row's fp32
``scale`` and fp32 ``bias``, little-endian; element ``j`` stands for ``scale * q_j + bias``.

Exact order
-----------
IEEE-754 binary32 throughout, round to nearest even, no fused multiply-add, subnormals kept
(numpy float32 ufuncs round once per operation and are never fused). Per bag the
accumulator starts at ``+0.0`` and, for each lookup in order, does

* float, unweighted: ``acc = acc + x_j``
* float, weighted: ``acc = acc + (w * x_j)``
* 8-bit: per row ``s' = w * scale``, ``b' = w * bias`` (``w = 1.0`` when unweighted, which
  is exact, so it is skipped); per element ``acc = acc + ((s' * float(q_j)) + b')``.

:func:`sls` is the plain sequential order (one accumulator per bag, lookups in input order),
for comparison with PyTorch/FBGEMM within a tolerance. :func:`sls_hardware_order` is the
order of the RecNMP hardware: every rank accumulates its own lookups of a bag, in the order
it received them, from ``+0.0``; the DIMM adds the rank partial sums with a fixed pairwise
tree over rank index (``((r0 + r1) + (r2 + r3))``); the host adds the DIMM results in DIMM
order (``acc = d0; acc = acc + d1; ...``) and divides for mean.

Signed zeros: a rank (or DIMM) with no lookups in a bag contributes ``+0.0`` to the tree,
exactly as the hardware does. Because every accumulator starts at ``+0.0`` and IEEE
addition of zeros of opposite sign, or exact cancellation, gives ``+0.0`` under round to
nearest, no output of this module is ever ``-0.0``, even for a bag whose lookups are all
``-0.0``. Empty bags give ``+0.0`` in every mode. NaN and infinity in tables or weights
propagate by the IEEE rules.

Bags are given by ``lengths`` or by ``offsets`` (torch ``embedding_bag`` convention,
including ``include_last_offset``). Invalid input raises ``TypeError`` (wrong type or
dtype), ``ValueError`` (wrong shape or inconsistent values) or ``IndexError`` (a row index
outside the table); nothing is ever read outside the table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["check_table", "dequantize_fused8", "quantize_fused8", "sls", "sls_hardware_order", "validate_inputs"]

# Fused 8-bit rows end with an fp32 scale and an fp32 bias.
_SCALE_BIAS_BYTES = 8
# FBGEMM's guard against a zero range in FloatOrHalfToFused8BitRowwiseQuantizedSBFloat.
_FBGEMM_EPSILON = np.float32(1e-8)
_VALID_NUM_RANKS = (1, 2, 4)


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def sls(
    table: np.ndarray,
    indices: ArrayLike,
    lengths: ArrayLike | None = None,
    *,
    offsets: ArrayLike | None = None,
    include_last_offset: bool = False,
    weights: ArrayLike | None = None,
    mode: str = "sum",
) -> np.ndarray:
    """SparseLengths(Weighted)Sum / EmbeddingBag in the plain sequential fp32 order.

    Parameters
    ----------
    table : numpy.ndarray
        ``float32 (rows, D)``, ``D >= 1``, or fused 8-bit ``uint8 (rows, D + 8)``
        (``D`` bytes of ``q``, then fp32 scale and fp32 bias, little-endian).
    indices : array_like of int
        1-D row indices, any integer dtype, ``0 <= indices[k] < rows``.
    lengths : array_like of int, optional
        1-D bag lengths, ``>= 0``, summing to ``len(indices)``. Give exactly one of
        `lengths` and `offsets`.
    offsets : array_like of int, optional
        1-D start of each bag in `indices`, as in ``torch.nn.functional.embedding_bag``:
        ``offsets[0] == 0``, non-decreasing, every entry ``<= len(indices)``. With
        ``include_last_offset=False`` there is one bag per entry and the last bag ends at
        ``len(indices)``; with ``include_last_offset=True`` the last entry is the end of the
        last bag (so there are ``len(offsets) - 1`` bags) and must equal ``len(indices)``.
    include_last_offset : bool, default False
        See `offsets`; only allowed with `offsets`.
    weights : array_like of float, optional
        1-D per-lookup weights, one per index; any real floating dtype, rounded to fp32.
        Only with ``mode="sum"``.
    mode : {"sum", "mean"}
        ``"mean"`` divides each bag's fp32 sum by its length in fp32; empty bags stay 0.

    Returns
    -------
    numpy.ndarray
        ``float32 (bags, D)``, C-contiguous.

    Raises
    ------
    TypeError
        Wrong type or dtype of an argument.
    ValueError
        Wrong shape, inconsistent lengths/offsets/weights, unknown mode.
    IndexError
        An index outside the table.

    Notes
    -----
    Per bag, ``acc = +0.0`` and then, for each lookup in input order,
    ``acc = acc + x_j`` (unweighted), ``acc = acc + (w * x_j)`` (weighted), or for 8-bit
    ``acc = acc + ((s' * float(q_j)) + b')`` with ``s' = w * scale``, ``b' = w * bias``.
    The loop runs over the position inside the bag and is vectorised across bags and
    columns, so its cost is ``max(lengths)`` numpy steps.
    """
    args = validate_inputs(table, indices, lengths, offsets, include_last_offset, weights, mode)
    contributions = _Contributions(table, args.indices, args.weights)
    acc = _sequential_sums(contributions, None, args.lengths, args.dim)
    return _finish(acc, args.lengths, mode)


def sls_hardware_order(
    table: np.ndarray,
    indices: ArrayLike,
    lengths: ArrayLike | None = None,
    *,
    offsets: ArrayLike | None = None,
    include_last_offset: bool = False,
    weights: ArrayLike | None = None,
    ranks: ArrayLike,
    num_ranks: int,
    dimms: ArrayLike | None = None,
    num_dimms: int = 1,
    mode: str = "sum",
) -> np.ndarray:
    """SLS in the exact fp32 order of the RecNMP hardware (rank partials, rank tree, DIMMs).

    Parameters
    ----------
    table, indices, lengths, offsets, include_last_offset, weights, mode
        As in :func:`sls`.
    ranks : array_like of int
        1-D, one rank per lookup, ``0 <= ranks[k] < num_ranks``.
    num_ranks : {1, 2, 4}
        Ranks per DIMM (a DIMM has up to 4 ranks).
    dimms : array_like of int, optional
        1-D, one DIMM per lookup, ``0 <= dimms[k] < num_dimms``. DIMM ids are the order in
        which the host adds DIMM results (number DIMMs of all channels consecutively).
        Required when ``num_dimms > 1``; ``None`` puts every lookup on DIMM 0.
    num_dimms : int, default 1
        Number of DIMMs, ``>= 1``.

    Returns
    -------
    numpy.ndarray
        ``float32 (bags, D)``, C-contiguous.

    Raises
    ------
    TypeError, ValueError, IndexError
        As in :func:`sls`, plus bad `ranks`, `num_ranks`, `dimms` or `num_dimms`.

    Notes
    -----
    For every bag, DIMM ``d`` and rank ``r``, the partial sum ``p[d][r]`` starts at ``+0.0``
    and accumulates, with the per-element formulas of :func:`sls`, the bag's lookups that
    have ``dimms == d`` and ``ranks == r``, in input order. A rank without such lookups
    contributes ``+0.0``. Each DIMM reduces its partials pairwise over rank index, level by
    level: 1 rank: ``p0``; 2 ranks: ``p0 + p1``; 4 ranks: ``(p0 + p1) + (p2 + p3)``. The host
    then adds the DIMM results in order, ``acc = t0; acc = acc + t1; ...``, and for
    ``mode="mean"`` divides ``acc`` by the bag length in fp32. With one rank and one DIMM
    this is exactly :func:`sls`.
    """
    args = validate_inputs(table, indices, lengths, offsets, include_last_offset, weights, mode)
    n = args.indices.size
    if isinstance(num_ranks, bool) or not isinstance(num_ranks, (int, np.integer)) or num_ranks not in _VALID_NUM_RANKS:
        raise ValueError(f"num_ranks must be 1, 2 or 4, got {num_ranks!r}")
    if isinstance(num_dimms, bool) or not isinstance(num_dimms, (int, np.integer)) or num_dimms < 1:
        raise ValueError(f"num_dimms must be a positive int, got {num_dimms!r}")
    num_ranks, num_dimms = int(num_ranks), int(num_dimms)
    rank_of = _check_per_lookup_ids("ranks", ranks, n, "num_ranks", num_ranks)
    if dimms is None:
        if num_dimms != 1:
            raise ValueError("dimms must be given when num_dimms > 1")
        dimm_of = np.zeros(n, np.intp)
    else:
        dimm_of = _check_per_lookup_ids("dimms", dimms, n, "num_dimms", num_dimms)

    contributions = _Contributions(table, args.indices, args.weights)
    # Bag of each lookup: lets us count, per bag, the lookups one (DIMM, rank) receives.
    bag_of = np.repeat(np.arange(args.lengths.size), args.lengths)
    group_of = dimm_of * num_ranks + rank_of

    dimm_results = []
    for dimm in range(num_dimms):
        partials = []
        for rank in range(num_ranks):
            # Positions are ascending, so each bag's lookups stay in input order and the
            # bags stay consecutive: exactly the stream this rank received.
            positions = np.flatnonzero(group_of == dimm * num_ranks + rank)
            sub_lengths = np.bincount(bag_of[positions], minlength=args.lengths.size)
            partials.append(_sequential_sums(contributions, positions, sub_lengths, args.dim))
        while len(partials) > 1:  # pairwise tree over rank index, level by level
            partials = [partials[i] + partials[i + 1] for i in range(0, len(partials), 2)]
        dimm_results.append(partials[0])

    acc = dimm_results[0]
    for partial in dimm_results[1:]:  # host: DIMM order, starting from DIMM 0's result
        acc = acc + partial
    return _finish(acc, args.lengths, mode)


def quantize_fused8(table_f32: np.ndarray) -> np.ndarray:
    """Quantise a float32 table to FBGEMM/Caffe2 fused 8-bit rows (scale and bias in fp32).

    Byte for byte the output of FBGEMM's ``FloatOrHalfToFused8BitRowwiseQuantizedSBFloat``,
    i.e. ``torch.ops.quantized.embedding_bag_byte_prepack``. Per row, in fp32::

        bias = min(row); range = max(row) - bias; scale = range / 255
        q_j = lrintf((x_j - bias) * (255 / (range + 1e-8)))    # round half to even

    Parameters
    ----------
    table_f32 : numpy.ndarray
        ``float32 (rows, D)``, ``D >= 1``, finite values.

    Returns
    -------
    numpy.ndarray
        ``uint8 (rows, D + 8)``: ``q``, then scale and bias as little-endian fp32.

    Raises
    ------
    TypeError
        `table_f32` is not a float32 numpy array.
    ValueError
        Not 2-D, no columns, or a NaN/infinity (FBGEMM's output would be meaningless).

    Notes
    -----
    If a row's minimum is a zero and the row holds both ``+0.0`` and ``-0.0``, the sign of
    the stored bias depends on the order FBGEMM's SIMD min visits them and may differ from
    this function's; the decoded values are the same.
    """
    _check_ndarray("table_f32", table_f32)
    if table_f32.dtype != np.float32:
        raise TypeError(f"table_f32 must be float32, got {table_f32.dtype}")
    if table_f32.ndim != 2:
        raise ValueError(f"table_f32 must be 2-D (rows, D), got shape {table_f32.shape}")
    rows, dim = table_f32.shape
    if dim < 1:
        raise ValueError("table_f32 must have at least one column")
    if not np.isfinite(table_f32).all():
        raise ValueError("table_f32 must be finite (no NaN or infinity)")

    minimum = table_f32.min(axis=1, initial=np.inf)
    value_range = table_f32.max(axis=1, initial=-np.inf) - minimum
    scale = value_range / np.float32(255)
    inverse_scale = np.float32(255) / (value_range + _FBGEMM_EPSILON)
    q = np.rint((table_f32 - minimum[:, None]) * inverse_scale[:, None])
    # (x - min) <= range and inverse_scale <= 255 / range * (1 + 2**-24), so q <= 255;
    # the clip mirrors FBGEMM's saturating pack and can never change a value.
    q = np.clip(q, 0, 255).astype(np.uint8)

    fused = np.empty((rows, dim + _SCALE_BIAS_BYTES), np.uint8)
    fused[:, :dim] = q
    fused[:, dim:] = np.stack([scale, minimum], axis=1).astype("<f4").view(np.uint8)
    return fused


def dequantize_fused8(fused: np.ndarray) -> np.ndarray:
    """Decode fused 8-bit rows: ``scale * float(q_j) + bias`` in fp32 (two roundings).

    Parameters
    ----------
    fused : numpy.ndarray
        ``uint8 (rows, D + 8)``, ``D >= 1``.

    Returns
    -------
    numpy.ndarray
        ``float32 (rows, D)``. Unweighted :func:`sls` on `fused` equals :func:`sls` on this
        table bit for bit (both compute ``(scale * q) + bias`` per element).

    Raises
    ------
    TypeError
        `fused` is not a uint8 numpy array.
    ValueError
        Not 2-D or fewer than 9 columns.
    """
    _check_ndarray("fused", fused)
    if fused.dtype != np.uint8:
        raise TypeError(f"fused must be uint8 (rows, D+8), got {fused.dtype}")
    _check_table_shape("fused", fused)
    scale, bias = _scale_bias(fused)
    dim = fused.shape[1] - _SCALE_BIAS_BYTES
    return (scale[:, None] * fused[:, :dim].astype(np.float32)) + bias[:, None]


# --------------------------------------------------------------------------------------
# Arithmetic
# --------------------------------------------------------------------------------------


class _Contributions:
    """The fp32 addend of each lookup (``x_j``, ``w * x_j`` or the 8-bit formula)."""

    def __init__(self, table: np.ndarray, indices: np.ndarray, weights: np.ndarray | None):
        self.table = table
        self.indices = indices
        self.weights = weights
        self.fused = table.dtype == np.uint8
        self.dim = table.shape[1] - (_SCALE_BIAS_BYTES if self.fused else 0)

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        """``(len(positions), D)`` float32 addends of the lookups at `positions`."""
        rows = self.table[self.indices[positions]]
        if self.fused:
            scale, bias = _scale_bias(rows)
            if self.weights is not None:
                w = self.weights[positions]
                scale = w * scale
                bias = w * bias
            return (scale[:, None] * rows[:, : self.dim].astype(np.float32)) + bias[:, None]
        if self.weights is not None:
            return self.weights[positions][:, None] * rows
        return rows


def _sequential_sums(
    contributions: Callable[[np.ndarray], np.ndarray],
    lookup_positions: np.ndarray | None,
    lengths: np.ndarray,
    dim: int,
) -> np.ndarray:
    """Per bag, ``acc = +0.0; acc = acc + x`` over its lookups in order, fp32.

    Bag ``b`` owns entries ``start_b .. start_b + lengths[b] - 1`` of `lookup_positions`
    (the lookup positions themselves when it is None), with ``start`` the running sum of
    `lengths`. Step ``k`` adds the ``k``-th lookup of every bag longer than ``k`` at once:
    each addition is one float32 ufunc (one rounding), and every bag sees its lookups in
    order, so the result equals the scalar loop bit for bit.
    """
    num_bags = lengths.size
    if num_bags == 0 or not lengths.any():
        return np.zeros((num_bags, dim), np.float32)
    starts = np.zeros(num_bags, np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    # Longest bags first, so the bags still active at step k are a prefix.
    order = np.argsort(-lengths, kind="stable")
    sorted_starts = starts[order]
    max_length = int(lengths[order[0]])
    still_active = num_bags - np.cumsum(np.bincount(lengths, minlength=max_length))[:max_length]

    acc = np.zeros((num_bags, dim), np.float32)
    for k in range(max_length):
        active = int(still_active[k])
        entries = sorted_starts[:active] + k
        positions = entries if lookup_positions is None else lookup_positions[entries]
        acc[:active] += contributions(positions)
    out = np.empty_like(acc)
    out[order] = acc
    return out


def _finish(acc: np.ndarray, lengths: np.ndarray, mode: str) -> np.ndarray:
    """Apply the host-side mean division (fp32 sum / fp32 length; empty bags stay +0.0)."""
    if mode == "mean":
        nonempty = lengths > 0
        acc[nonempty] = acc[nonempty] / lengths[nonempty].astype(np.float32)[:, None]
    return np.ascontiguousarray(acc, dtype=np.float32)


def _scale_bias(fused_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fp32 scale and bias of each fused 8-bit row (last 8 bytes, little-endian)."""
    tail = np.ascontiguousarray(fused_rows[:, -_SCALE_BIAS_BYTES:])
    scale_bias = tail.view("<f4").astype(np.float32)
    return scale_bias[:, 0], scale_bias[:, 1]


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


class _Args(NamedTuple):
    """Validated, normalised arguments shared by both operators."""

    indices: np.ndarray  # intp, every entry a valid row
    lengths: np.ndarray  # int64, >= 0, sums to len(indices)
    weights: np.ndarray | None  # float32, one per index
    dim: int  # D, the output width


def validate_inputs(table, indices, lengths, offsets, include_last_offset, weights, mode) -> _Args:
    """Check the arguments of :func:`sls` (the messages every caller reports) and normalise them."""
    if not isinstance(mode, str) or mode not in ("sum", "mean"):
        raise ValueError(f"mode must be 'sum' or 'mean', got {mode!r}")
    if not isinstance(include_last_offset, bool | np.bool_):
        raise TypeError(f"include_last_offset must be a bool, got {include_last_offset!r}")
    rows, dim = check_table(table)
    idx = _as_int_1d("indices", indices)
    n = idx.size

    if (lengths is None) == (offsets is None):
        which = "neither" if lengths is None else "both"
        raise ValueError(f"give exactly one of lengths and offsets, got {which}")
    if lengths is not None:
        if include_last_offset:
            raise ValueError("include_last_offset applies to offsets, not lengths")
        bag_lengths = _lengths_from_lengths(_as_int_1d("lengths", lengths), n)
    else:
        bag_lengths = _lengths_from_offsets(_as_int_1d("offsets", offsets), n, bool(include_last_offset))

    w = None
    if weights is not None:
        if mode != "sum":
            raise ValueError(
                f"weights are only supported with mode='sum' "
                f"(as in torch.nn.functional.embedding_bag), got mode={mode!r}"
            )
        w = np.asarray(weights)
        if w.dtype.kind != "f":
            raise TypeError(f"weights must have a floating dtype, got {w.dtype}")
        if w.ndim != 1:
            raise ValueError(f"weights must be 1-D, got shape {w.shape}")
        if w.size != n:
            raise ValueError(f"weights has {w.size} entries but indices has {n}")
        w = w.astype(np.float32)

    # Compare in the caller's dtype (safe for uint64 and python-int bounds), then convert.
    bad = np.flatnonzero((idx < 0) | (idx >= rows))
    if bad.size:
        k = int(bad[0])
        raise IndexError(f"indices[{k}] = {int(idx[k])} is out of range for a table with {rows} rows")
    return _Args(idx.astype(np.intp), bag_lengths, w, dim)


def _check_ndarray(name: str, value) -> None:
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(value).__name__}")


def check_table(table) -> tuple[int, int]:
    """Return ``(rows, D)`` of a float32 or fused 8-bit table."""
    _check_ndarray("table", table)
    if table.dtype not in (np.float32, np.uint8):
        raise TypeError(f"table must be float32 (rows, D) or uint8 fused 8-bit (rows, D+8), got {table.dtype}")
    if table.dtype == np.uint8:
        _check_table_shape("table", table)
        return table.shape[0], table.shape[1] - _SCALE_BIAS_BYTES
    if table.ndim != 2:
        raise ValueError(f"table must be 2-D (rows, D), got shape {table.shape}")
    if table.shape[1] < 1:
        raise ValueError("table must have at least one column")
    return table.shape


def _check_table_shape(name: str, fused: np.ndarray) -> None:
    if fused.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows, D+8), got shape {fused.shape}")
    if fused.shape[1] < _SCALE_BIAS_BYTES + 1:
        raise ValueError(
            f"{name} (uint8, fused 8-bit) must have at least 9 columns "
            f"(D >= 1 bytes of q, then 8 bytes of scale and bias), got {fused.shape[1]}"
        )


def _as_int_1d(name: str, value) -> np.ndarray:
    """`value` as a 1-D integer array (bool is not an integer here)."""
    if value is None:
        raise TypeError(f"{name} must be a 1-D integer array, got None")
    from_sequence = not isinstance(value, np.ndarray)
    arr = np.asarray(value)
    if from_sequence and arr.size == 0 and arr.dtype == np.float64:
        arr = arr.astype(np.int64)  # np.asarray([]) is float64; an empty list is fine
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must have an integer dtype, got {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr


def _lengths_from_lengths(lengths: np.ndarray, n: int) -> np.ndarray:
    negative = np.flatnonzero(lengths < 0)
    if negative.size:
        b = int(negative[0])
        raise ValueError(f"lengths[{b}] = {int(lengths[b])} is negative")
    # Checked before summing so that the int64 sum below cannot overflow.
    too_long = np.flatnonzero(lengths > n)
    if too_long.size:
        b = int(too_long[0])
        raise ValueError(f"lengths[{b}] = {int(lengths[b])} is more than the number of indices ({n})")
    lengths = lengths.astype(np.int64)
    total = int(lengths.sum())
    if total != n:
        raise ValueError(f"lengths sum to {total} but indices has {n} entries")
    return lengths


def _lengths_from_offsets(offsets: np.ndarray, n: int, include_last: bool) -> np.ndarray:
    if offsets.size == 0:
        if include_last:
            raise ValueError("offsets must have at least one entry when include_last_offset=True")
        if n:
            raise ValueError(f"offsets is empty (no bags) but indices has {n} entries")
        return np.zeros(0, np.int64)
    if offsets[0] != 0:
        raise ValueError(f"offsets[0] must be 0, got {int(offsets[0])}")
    decreasing = np.flatnonzero(offsets[1:] < offsets[:-1])
    if decreasing.size:
        b = int(decreasing[0]) + 1
        raise ValueError(
            f"offsets must be non-decreasing: offsets[{b}] = {int(offsets[b])} "
            f"< offsets[{b - 1}] = {int(offsets[b - 1])}"
        )
    beyond = np.flatnonzero(offsets > n)
    if beyond.size:
        b = int(beyond[0])
        raise ValueError(f"offsets[{b}] = {int(offsets[b])} is beyond len(indices) = {n}")
    offsets = offsets.astype(np.int64)
    if include_last:
        if offsets[-1] != n:
            raise ValueError(
                f"offsets[-1] = {int(offsets[-1])} must equal len(indices) = {n} when include_last_offset=True"
            )
        return np.diff(offsets)
    return np.diff(offsets, append=n)


def _check_per_lookup_ids(name: str, value, n: int, count_name: str, count: int) -> np.ndarray:
    """Validate a per-lookup rank or DIMM id array; return it as intp."""
    ids = _as_int_1d(name, value)
    if ids.size != n:
        raise ValueError(f"{name} has {ids.size} entries but indices has {n}")
    bad = np.flatnonzero((ids < 0) | (ids >= count))
    if bad.size:
        k = int(bad[0])
        raise ValueError(f"{name}[{k}] = {int(ids[k])} is out of range for {count_name} = {count}")
    return ids.astype(np.intp)
