"""Workloads of the performance model: synthetic generators, the paper's model shapes, real traces.

Every generator returns ``(indices, offsets)``, both ``int64``, in the EmbeddingBag convention
the driver takes (``Device.sls(name, indices, offsets=offsets)``, ``include_last_offset=False``):
``offsets`` has one entry per bag, starts at 0 and is non-decreasing; bag ``b`` is
``indices[offsets[b]:offsets[b + 1]]`` (the last bag runs to the end). ``pooling`` (lookups
per bag) is an int or an inclusive ``(low, high)`` range drawn uniformly per bag. Bags may
repeat a row, as in the dlrm_datasets traces (EmbeddingBag allows it); :func:`uniform` can
draw distinct rows per bag (``distinct=True``).

- :func:`uniform`: every row equally likely.
- :func:`zipf`: rank-frequency Zipf, ``P(rank r) ~ r ** -alpha`` over ranks ``1 .. rows``;
  ranks are mapped to rows by a seeded permutation, so hot rows are spread over the table.
- :func:`production_like`: indices whose reuse histograms (the unique-row histogram and the
  access-share histogram of a batch) match a locality-statistics file in the format of
  facebookresearch/dlrm_datasets ``locality_stats.txt`` (:func:`load_locality_stats`);
  :func:`reuse_histograms` measures the same two histograms of any index array.
- :data:`MODEL_SHAPES` and :func:`model_workload`: the RMC1/RMC2 small/large models of the
  paper, one request per table; :func:`load_model_tables` places their tables in a
  ``sw_driver.Device``.
- :func:`load_dlrm_trace`: real traces in the dlrm_datasets ``.pt`` format.

Details, the tolerance of :func:`production_like` and measured figures: ``docs/workloads.md``.
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "DEFAULT_DIM",
    "DEFAULT_STATS_PATH",
    "DLRM_EDGES",
    "MODEL_SHAPES",
    "LocalityStats",
    "ModelShape",
    "ReuseTarget",
    "TableRequest",
    "TraceTable",
    "format_locality_stats",
    "full_fit_lookups",
    "load_dlrm_trace",
    "load_locality_stats",
    "load_model_tables",
    "model_workload",
    "production_like",
    "reuse_histograms",
    "reuse_target",
    "seeded_permutation",
    "total_variation",
    "uniform",
    "zipf",
]

#: dlrm_datasets' reuse bins: ``(0, 1], (1, 2], (2, 4], ..., (16384, 32768], (32768+``.
DLRM_EDGES = np.array([0] + [1 << k for k in range(16)], np.int64)

_STATS_NAME = "dlrm_datasets_2022_locality_stats.txt"


def _default_stats_path() -> Path:
    if os.environ.get("RECNMP_LOCALITY_STATS"):
        return Path(os.environ["RECNMP_LOCALITY_STATS"])
    here = Path(__file__).resolve()
    for candidate in (here.parent / "data" / _STATS_NAME, here.parents[2] / "shared" / "data" / _STATS_NAME):
        if candidate.exists():
            return candidate
    return here.parent / "data" / _STATS_NAME


#: The locality statistics of the dlrm_datasets 2022 release (788 tables, batches of 131072
#: samples): ``$RECNMP_LOCALITY_STATS`` if set, else ``sim_models/data/``, else
#: ``../shared/data/`` next to the repository.
DEFAULT_STATS_PATH = _default_stats_path()

#: Default embedding dimension of :func:`model_workload`: 32 fp32 values = 128 B per row (two
#: 64 B lines), inside the paper's 64-256 B production vector sizes.
DEFAULT_DIM = 32


# -- argument checks --------------------------------------------------------------------------


def _int(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be at least {low}, got {value}")
    return int(value)


def _seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


def _pooling(pooling) -> tuple[int, int]:
    if isinstance(pooling, tuple | list):
        if len(pooling) != 2:
            raise ValueError(f"pooling must be an int or a (low, high) pair, got {pooling!r}")
        low, high = (_int("pooling low", pooling[0], 0), _int("pooling high", pooling[1], 0))
        if low > high:
            raise ValueError(f"pooling range ({low}, {high}) has low > high")
        return low, high
    value = _int("pooling", pooling, 0)
    return value, value


def _bags(rng: np.random.Generator, batch: int, pooling: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Bag lengths (``int64 (batch,)``, uniform in the inclusive range) and their offsets."""
    low, high = pooling
    lengths = np.full(batch, low, np.int64) if low == high else rng.integers(low, high + 1, batch, dtype=np.int64)
    offsets = np.zeros(batch, np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    return lengths, offsets


# -- uniform and Zipf ---------------------------------------------------------------------------


def uniform(*, rows: int, batch: int, pooling, seed: int, distinct: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random lookups: every row of the table equally likely, independently.

    Parameters
    ----------
    rows : int
        Rows of the table (at least 1).
    batch : int
        Bags (at least 1).
    pooling : int or (int, int)
        Lookups per bag, or an inclusive range drawn uniformly per bag.
    seed : int
        Seed of ``numpy.random.default_rng``.
    distinct : bool, default False
        Draw distinct rows within each bag (as DLRM's random data generator does); needs
        ``pooling <= rows``.

    Returns
    -------
    indices, offsets : numpy.ndarray
        ``int64``; ``offsets`` has ``batch`` entries, the first 0.

    Raises
    ------
    TypeError, ValueError
        A bad argument, named in the message.
    """
    rows, batch, pooling, seed = _int("rows", rows), _int("batch", batch), _pooling(pooling), _seed(seed)
    if distinct and pooling[1] > rows:
        raise ValueError(f"pooling {pooling[1]} exceeds rows {rows}: a bag of distinct rows cannot be drawn")
    rng = np.random.default_rng(seed)
    lengths, offsets = _bags(rng, batch, pooling)
    indices = rng.integers(0, rows, int(lengths.sum()), dtype=np.int64)
    if distinct:
        bag = np.repeat(np.arange(batch, dtype=np.int64), lengths)
        while True:  # redraw repeats within a bag until none is left (few rounds when pooling << rows)
            order = np.lexsort((indices, bag))
            repeat = np.zeros(indices.size, bool)
            same = (bag[order][1:] == bag[order][:-1]) & (indices[order][1:] == indices[order][:-1])
            repeat[order[1:][same]] = True
            if not repeat.any():
                break
            indices[repeat] = rng.integers(0, rows, int(repeat.sum()), dtype=np.int64)
    return indices, offsets


def zipf(*, rows: int, batch: int, pooling, alpha: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rank-frequency Zipf lookups: rank ``r`` (1-based) has probability ``r ** -alpha / H``.

    ``H = sum(r ** -alpha for r in 1 .. rows)`` (finite support, so any ``alpha > 0`` is
    allowed). Rank ``r`` is row ``perm[r - 1]`` of a permutation of the table drawn from
    ``seed`` (independently of the lookups), so the hot rows are spread over the table and
    over the DRAM banks rather than being rows ``0 .. k``.

    Parameters
    ----------
    rows, batch, pooling, seed
        As :func:`uniform`.
    alpha : float
        The exponent, ``> 0``.

    Returns
    -------
    indices, offsets : numpy.ndarray

    Raises
    ------
    TypeError, ValueError
        A bad argument, named in the message.
    """
    rows, batch, pooling, seed = _int("rows", rows), _int("batch", batch), _pooling(pooling), _seed(seed)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float | np.floating | np.integer):
        raise TypeError(f"alpha must be a number, got {alpha!r}")
    if not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}")
    rng = np.random.default_rng([seed, 0])
    lengths, offsets = _bags(rng, batch, pooling)
    cdf = _zipf_cdf(rows, float(alpha))
    ranks = np.searchsorted(cdf, rng.random(int(lengths.sum())) * cdf[-1], side="right")
    np.minimum(ranks, rows - 1, out=ranks)
    keys = np.random.default_rng([seed, 1]).integers(0, 1 << 62, _FEISTEL_ROUNDS, dtype=np.uint64)
    return seeded_permutation(ranks, rows, keys), offsets


@functools.lru_cache(maxsize=8)
def _zipf_cdf(rows: int, alpha: float) -> np.ndarray:
    cdf = np.cumsum(np.arange(1, rows + 1, dtype=np.float64) ** -alpha)
    cdf.setflags(write=False)
    return cdf


_FEISTEL_ROUNDS = 4
_MASK64 = np.uint64((1 << 64) - 1)


def seeded_permutation(values, size: int, keys) -> np.ndarray:
    """``perm[values]`` for a pseudo-random permutation ``perm`` of ``0 .. size - 1`` given by ``keys``.

    A balanced Feistel network on the smallest ``2 ** (2 h) >= size`` with cycle walking (a
    value mapped outside ``0 .. size - 1`` is mapped again), so it is a bijection of
    ``0 .. size - 1`` that costs ``O(len(values))``: no ``size``-long array is made.

    Parameters
    ----------
    values : array_like of int
        In ``0 .. size - 1``.
    size : int
    keys : array_like of uint64
        One round key per round.

    Returns
    -------
    numpy.ndarray
        ``int64``, the shape of ``values``.
    """
    half = max(1, (int(size - 1).bit_length() + 1) // 2)
    mask = np.uint64((1 << half) - 1)
    keys = np.asarray(keys, np.uint64)
    x = np.asarray(values, np.int64).astype(np.uint64)
    pending = np.ones(x.shape, bool)
    out = x.copy()
    with np.errstate(over="ignore"):
        while pending.any():
            v = out[pending]
            left, right = v >> np.uint64(half), v & mask
            for key in keys:
                h = (right + key) * np.uint64(0x9E3779B97F4A7C15) & _MASK64
                h ^= h >> np.uint64(29)
                h = h * np.uint64(0xBF58476D1CE4E5B9) & _MASK64
                h ^= h >> np.uint64(32)
                left, right = right, left ^ (h & mask)
            out[pending] = (left << np.uint64(half)) | right
            pending &= out >= np.uint64(size)
    return out.astype(np.int64)


# -- locality statistics --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LocalityStats:
    """A locality-statistics file, averaged over its batches.

    Attributes
    ----------
    edges : numpy.ndarray
        ``int64 (bins,)``: bin ``k`` holds reuse counts ``c`` with ``edges[k] < c <= edges[k + 1]``;
        the last bin is ``c > edges[-1]`` (the file's ``(32768+``).
    unique : numpy.ndarray
        ``float64 (bins,)``: share of a batch's unique rows whose reuse count is in each bin
        ("Histogram of col sizes"), averaged over the batches.
    access : numpy.ndarray
        ``float64 (bins,)``: share of a batch's accesses that go to rows of each bin ("Ratio of
        index distribution at different column sizes"), averaged over the batches.
    mean_reuse : float
        Accesses per unique row: the mean of ``Avg # of indices / Avg # of unique cols`` over
        the batches (``Avg col size`` where those are missing).
    batches : int
        Batches the file describes (the sum of "after processing N batches").
    batch_size : int
        Samples per batch (of the first block).
    names : tuple of str
        The blocks' names (the trace file of each block).
    """

    edges: np.ndarray
    unique: np.ndarray
    access: np.ndarray
    mean_reuse: float
    batches: int
    batch_size: int
    names: tuple


_BIN = re.compile(r"^\((\d+),\s*(\d+)\]:\s*(\S+)$")
_OPEN_BIN = re.compile(r"^\((\d+)\+:\s*(\S+)$")
_HEADER = re.compile(r"^Locality stats after processing (\d+) batches of size (\d+)$")
_AVG = {
    "Avg # of indices:": "indices",
    "Avg # of unique cols:": "unique_cols",
    "Avg col size:": "col_size",
}
_SECTIONS = {
    "Histogram of col sizes:": "unique",
    "Ratio of index distribution at different column sizes:": "access",
}


class _Block:
    def __init__(self, name: str, line: int):
        self.name, self.line = name, line
        self.batches = self.batch_size = None
        self.values: dict[str, float] = {}
        self.hist: dict[str, list] = {}


def load_locality_stats(path) -> LocalityStats:
    """Parse a locality-statistics file of the dlrm_datasets format.

    The file is a sequence of blocks separated by blank lines, one per trace file::

        fbgemm_t788_bs131072_0.pt
        Locality stats after processing 1 batches of size 131072
        Avg # of indices: 1405163864
        Avg # of unique cols: 110259238
        Avg col size: 12.7
        Histogram of col sizes:
        (0, 1]: 0.342
        (1, 2]: 0.144
        ...
        (32768+: 0.000
        [0, 1, 2, 4, ..., 32768]
        ['0.000', '0.342', ..., '1.000']
        Ratio of index distribution at different column sizes:
        (0, 1]: 0.027
        ...

    The bracketed lines after each histogram (edges and cumulative shares) are optional; when
    present the edges must agree with the bins. The histograms are averaged over the blocks,
    weighted by their batch counts. Both histograms of every block must use the same bins.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    LocalityStats

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        A malformed file: ``<path>:<line>: <what is wrong>``.
    """
    path = Path(path)
    text = path.read_text()
    blocks: list[_Block] = []
    block = section = None
    edges_seen = None

    def fail(number: int, what: str):
        raise ValueError(f"{path}:{number}: {what}")

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            block = section = None
            continue
        if block is None:
            block = _Block(line, number)
            blocks.append(block)
            continue
        header = _HEADER.match(line)
        if header:
            block.batches, block.batch_size = int(header[1]), int(header[2])
            continue
        avg = next((key for key in _AVG if line.startswith(key)), None)
        if avg is not None:
            try:
                block.values[_AVG[avg]] = float(line[len(avg) :])
            except ValueError:
                fail(number, f"{avg} must be followed by a number, got {line[len(avg) :].strip()!r}")
            continue
        if line in _SECTIONS:
            section = _SECTIONS[line]
            if section in block.hist:
                fail(number, f"a second {line!r} in block {block.name!r}")
            block.hist[section] = []
            continue
        closed, opened = _BIN.match(line), _OPEN_BIN.match(line)
        if closed or opened:
            if section is None:
                fail(number, f"histogram bin {line!r} outside a histogram section")
            bins = block.hist[section]
            if bins and bins[-1][1] is None:
                fail(number, f"bin {line!r} after the open last bin")
            low, high, value = (
                (int(closed[1]), int(closed[2]), closed[3]) if closed else (int(opened[1]), None, opened[2])
            )
            try:
                share = float(value)
            except ValueError:
                fail(number, f"bin {line!r}: {value!r} is not a number")
            if not 0.0 <= share <= 1.0:
                fail(number, f"bin {line!r}: share {share} is outside 0..1")
            expected = bins[-1][1] if bins else 0
            if low != expected or (high is not None and high <= low):
                fail(number, f"bin {line!r} does not continue the previous bins (expected it to start at {expected})")
            bins.append((low, high, share))
            continue
        if line.startswith("["):
            if section is None:
                fail(number, f"unexpected line {line!r}")
            if not line.startswith("['"):
                try:
                    edges_seen = [int(v) for v in line.strip("[]").split(",")]
                except ValueError:
                    fail(number, f"the edge list {line!r} must hold integers")
                listed = [b[0] for b in block.hist[section]]
                if edges_seen != listed:
                    fail(number, f"the edge list {edges_seen} disagrees with the bins above ({listed})")
            continue
        fail(number, f"unexpected line {line!r}")

    if not blocks:
        raise ValueError(f"{path}: no statistics blocks (an empty file?)")
    edges = None
    unique, access, weights, reuse = [], [], [], []
    for b in blocks:
        where = f"{path}:{b.line}: block {b.name!r}"
        if b.batches is None:
            raise ValueError(f"{where} has no 'Locality stats after processing N batches of size B' line")
        for section, title in (("unique", "Histogram of col sizes:"), ("access", "Ratio of index distribution")):
            if section not in b.hist or not b.hist[section]:
                raise ValueError(f"{where} has no {title!r} histogram")
            if b.hist[section][-1][1] is not None:
                raise ValueError(f"{where}: the {section} histogram does not end with an open bin '(N+: share'")
        lows = [[low for low, _, _ in b.hist[s]] for s in ("unique", "access")]
        if lows[0] != lows[1]:
            raise ValueError(f"{where}: the two histograms have different bins")
        if edges is None:
            edges = lows[0]
        elif lows[0] != edges:
            raise ValueError(f"{where}: bins {lows[0]} differ from the first block's {edges}")
        u = np.array([s for _, _, s in b.hist["unique"]])
        a = np.array([s for _, _, s in b.hist["access"]])
        for name, hist in (("unique", u), ("access", a)):
            if abs(hist.sum() - 1.0) > 0.02:
                raise ValueError(f"{where}: the {name} histogram sums to {hist.sum():.4f}, not 1")
        if "indices" in b.values and "unique_cols" in b.values and b.values["unique_cols"] > 0:
            reuse.append(b.values["indices"] / b.values["unique_cols"])
        elif "col_size" in b.values:
            reuse.append(b.values["col_size"])
        else:
            raise ValueError(f"{where} has neither 'Avg # of indices'/'Avg # of unique cols' nor 'Avg col size'")
        unique.append(u / u.sum())
        access.append(a / a.sum())
        weights.append(b.batches)
    w = np.asarray(weights, np.float64)
    return LocalityStats(
        edges=np.asarray(edges, np.int64),
        unique=np.average(unique, axis=0, weights=w),
        access=np.average(access, axis=0, weights=w),
        mean_reuse=float(np.average(reuse, weights=w)),
        batches=int(w.sum()),
        batch_size=int(blocks[0].batch_size),
        names=tuple(b.name for b in blocks),
    )


def reuse_histograms(indices, bins) -> tuple[np.ndarray, np.ndarray]:
    """The two reuse histograms of one batch of lookups, with a statistics file's bins.

    The reuse count of a row is how often it occurs in ``indices``. Bin ``k`` holds counts
    ``c`` with ``edges[k] < c <= edges[k + 1]``, the last bin ``c > edges[-1]``.

    Parameters
    ----------
    indices : array_like of int
        The lookups (any integers; e.g. ``table * rows + row`` for several tables).
    bins : LocalityStats or array_like of int
        The statistics (their ``edges``) or the edges themselves: increasing, the first 0.

    Returns
    -------
    unique, access : numpy.ndarray
        ``float64 (bins,)``: the share of unique rows per bin ("Histogram of col sizes") and
        the share of accesses per bin ("Ratio of index distribution"). Zeros for no lookups.

    Raises
    ------
    TypeError, ValueError
        Non-integer indices, or bad edges.
    """
    edges = np.asarray(bins.edges if isinstance(bins, LocalityStats) else bins)
    if edges.ndim != 1 or edges.size < 1 or edges.dtype.kind not in "iu" or edges[0] != 0:
        raise ValueError(f"bins must be 1-D integer edges starting at 0, got {edges!r}")
    if np.any(np.diff(edges) <= 0):
        raise ValueError(f"bin edges must be increasing, got {edges.tolist()}")
    indices = np.asarray(indices)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"indices must be integers, got dtype {indices.dtype}")
    if indices.size == 0:
        return np.zeros(edges.size), np.zeros(edges.size)
    counts = np.unique(indices.ravel(), return_counts=True)[1]
    which = np.searchsorted(edges, counts, side="left") - 1
    unique = np.bincount(which, minlength=edges.size).astype(np.float64)
    access = np.bincount(which, weights=counts, minlength=edges.size)
    return unique / counts.size, access / indices.size


def format_locality_stats(batches, *, edges=DLRM_EDGES, names=None) -> str:
    """A locality-statistics file (the format :func:`load_locality_stats` reads) of batches of lookups.

    Parameters
    ----------
    batches : sequence of array_like of int
        One index array per batch (a block of the file each).
    edges : array_like of int, default :data:`DLRM_EDGES`
    names : sequence of str, optional
        The blocks' names (default ``batch_0``, ``batch_1``, ...).

    Returns
    -------
    str
        Shares printed with 3 decimals, as dlrm_datasets does.
    """
    edges = np.asarray(edges, np.int64)
    labels = [f"({lo}, {hi}]" for lo, hi in zip(edges[:-1], edges[1:])] + [f"({edges[-1]}+"]
    out = []
    for number, batch in enumerate(batches):
        batch = np.asarray(batch)
        unique_rows = np.unique(batch).size
        u, a = reuse_histograms(batch, edges)
        out.append(names[number] if names is not None else f"batch_{number}")
        out.append("Locality stats after processing 1 batches of size 1")
        out.append(f"Avg # of indices: {batch.size}")
        out.append(f"Avg # of unique cols: {unique_rows}")
        out.append(f"Avg col size: {batch.size / max(unique_rows, 1):.1f}")
        for title, hist in (
            ("Histogram of col sizes:", u),
            ("Ratio of index distribution at different column sizes:", a),
        ):
            out.append(title)
            out += [f"{label}: {share:.3f}" for label, share in zip(labels, hist)]
            out.append("[" + ", ".join(str(e) for e in edges) + "]")
            out.append(str(["0.000"] + [f"{c:.3f}" for c in np.cumsum(hist)]))
        out.append("")
    return "\n".join(out)


def total_variation(p, q) -> float:
    """Total-variation distance ``0.5 * sum |p - q|`` of two histograms."""
    return 0.5 * float(np.abs(np.asarray(p, np.float64) - np.asarray(q, np.float64)).sum())


# -- the production-like generator ---------------------------------------------------------------

#: Where a bin's mean reuse cannot be derived from the file (its unique share printed as 0 or
#: inconsistent), the generator uses the geometric mean of the bin's counts; the open last bin
#: ``(e, inf)`` is taken as ``(e, OPEN_BIN_FACTOR * e]`` with mean ``2 * e``.
OPEN_BIN_FACTOR = 4


@dataclass(frozen=True, eq=False)
class ReuseTarget:
    """What :func:`production_like` aims at for a batch of ``lookups`` lookups.

    Attributes
    ----------
    lookups : int
    low, high : numpy.ndarray
        ``int64 (bins,)``: the counts a row of each bin may take, ``low .. high`` inclusive.
    mean : numpy.ndarray
        ``float64``: mean reuse count of a row of each bin (from the file, see ``docs/workloads.md``).
    access : numpy.ndarray
        Target access shares: the file's, where a bin's share is too small for one row of
        ``low`` accesses in a batch of ``lookups`` it goes to the next bin down (repeatedly).
    unique : numpy.ndarray
        Target unique-row shares implied by ``access`` and ``mean``.
    moved : float
        The access share moved to a lower bin because a batch of this size cannot hold a row
        of the bin it belongs to (0 for large batches): the total-variation distance of
        ``access`` to the file's histogram.
    """

    lookups: int
    low: np.ndarray
    high: np.ndarray
    mean: np.ndarray
    access: np.ndarray
    unique: np.ndarray
    moved: float


def _bin_means(stats: LocalityStats) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    edges = stats.edges
    low = edges + 1
    high = np.append(edges[1:], max(OPEN_BIN_FACTOR * edges[-1], edges[-1] + 1))
    default = np.sqrt(low * high.astype(np.float64))
    default[-1] = max(2.0 * edges[-1], edges[-1] + 1.0)
    mean = default.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        implied = stats.access * stats.mean_reuse / stats.unique
    ok = (stats.unique > 0) & (implied >= low) & (implied <= high)
    mean[ok] = implied[ok]
    # Single-count bins ((0, 1], (1, 2]) have no freedom: their mean is their count.
    mean[low == high] = low[low == high]
    return low, high, mean


def reuse_target(stats, lookups: int) -> ReuseTarget:
    """The histograms :func:`production_like` aims at for a batch of ``lookups`` lookups.

    Parameters
    ----------
    stats : str, os.PathLike or LocalityStats
    lookups : int

    Returns
    -------
    ReuseTarget
    """
    stats = stats if isinstance(stats, LocalityStats) else load_locality_stats(stats)
    lookups = _int("lookups", lookups)
    low, high, mean = _bin_means(stats)
    # From the top bin down, a bin whose budget cannot hold one row of its least count passes
    # its share on to the next bin below, so the hot mass stays as hot as the batch allows.
    share = np.zeros(stats.access.size)
    carry = 0.0
    for k in range(stats.access.size - 1, -1, -1):
        here = stats.access[k] + carry
        if here > 0 and (here * lookups >= low[k] or k == 0):
            share[k], carry = here, 0.0
        else:
            carry = here
    share /= share.sum()
    keep = share > 0
    moved = total_variation(share, stats.access)
    high = np.minimum(high, lookups)
    unique = np.where(keep, share / mean, 0.0)
    return ReuseTarget(
        lookups=lookups,
        low=low,
        high=high,
        mean=mean,
        access=share,
        unique=unique / unique.sum(),
        moved=moved if moved > 1e-12 else 0.0,
    )


def full_fit_lookups(stats) -> int:
    """The smallest batch (lookups) whose :func:`reuse_target` moves no access share.

    Every bin with a share then holds at least one row of its least count: ``max(low[k] /
    access[k])``. For the dlrm_datasets 2022 file it is about 0.96 M lookups.
    """
    stats = stats if isinstance(stats, LocalityStats) else load_locality_stats(stats)
    low = stats.edges + 1
    has = stats.access > 0
    return int(np.ceil(np.max(low[has] / stats.access[has]))) if has.any() else 1


def _largest_remainder(shares: np.ndarray, total: int) -> np.ndarray:
    raw = shares * total
    out = np.floor(raw).astype(np.int64)
    short = total - int(out.sum())
    if short > 0:
        out[np.argsort(out - raw, kind="stable")[:short]] += 1
    return out


def _within_bin(rng: np.random.Generator, n: int, low: int, high: int, total: int) -> np.ndarray:
    """``n`` counts in ``low .. high`` summing to ``total``: maximum-entropy (truncated
    exponential) around the mean ``total / n``, then corrected to the exact sum."""
    if low == high:
        return np.full(n, low, np.int64)
    a, w = low - 0.5, float(high - low + 1)
    target = (total / n - a) / w  # in (0, 1)

    def g(t: float) -> float:  # mean position of a density ~ exp(-t x) on [0, 1]
        return 0.5 - t / 12.0 if abs(t) < 1e-6 else 1.0 / t - 1.0 / math.expm1(t)

    lo_t, hi_t = -200.0, 200.0
    for _ in range(80):
        mid = 0.5 * (lo_t + hi_t)
        lo_t, hi_t = (mid, hi_t) if g(mid) > target else (lo_t, mid)
    t = 0.5 * (lo_t + hi_t)
    u = rng.random(n)
    x = u if abs(t) < 1e-9 else -np.log1p(-u * -math.expm1(-t)) / t
    counts = np.clip(np.floor(a + x * w + 0.5), low, high).astype(np.int64)
    diff = total - int(counts.sum())
    if diff:
        room = (high - counts) if diff > 0 else (counts - low)
        step = abs(diff) * room / room.sum()
        whole = np.floor(step).astype(np.int64)
        rest = abs(diff) - int(whole.sum())
        if rest:
            whole[np.argsort(whole - step, kind="stable")[:rest]] += 1
        counts += np.sign(diff) * whole
    return counts


def _reuse_counts(rng: np.random.Generator, target: ReuseTarget) -> np.ndarray:
    """A reuse count per unique row, summing to ``target.lookups``."""
    budget = _largest_remainder(target.access, target.lookups)
    parts, spill = [], 0
    for k in np.flatnonzero(budget):
        total, low, high = int(budget[k]), int(target.low[k]), int(target.high[k])
        n = int(np.clip(round(total / target.mean[k]), -(-total // high), total // low)) if total >= low else 0
        if n < 1:
            spill += total
            continue
        used = min(total, n * high)
        spill += total - used
        parts.append(_within_bin(rng, n, low, high, used))
    if spill:  # the few accesses no bin could take (parity of (1, 2], rounding): single-use rows
        parts.append(np.ones(spill, np.int64))
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def production_like(
    stats=DEFAULT_STATS_PATH, *, rows: int, batch: int, pooling, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Lookups whose reuse histograms match a locality-statistics file.

    The batch's ``L = sum(lengths)`` lookups are built from unique rows with a reuse count
    each: the access budget ``L * access[k]`` of every bin the batch can hold (see
    :func:`reuse_target`) is shared among ``round(budget / mean[k])`` rows, whose counts are
    drawn from the maximum-entropy distribution on the bin's counts with that mean and then
    corrected to sum exactly to the budget. The unique rows are distinct rows of the table
    drawn at random, their occurrences are shuffled over the batch, then cut into bags.

    Parameters
    ----------
    stats : str, os.PathLike or LocalityStats, default :data:`DEFAULT_STATS_PATH`
        The statistics file (:func:`load_locality_stats`), or its parsed form.
    rows, batch, pooling, seed
        As :func:`uniform`.

    Returns
    -------
    indices, offsets : numpy.ndarray

    Raises
    ------
    TypeError, ValueError
        A bad argument or statistics file, or a table with fewer rows than the batch's unique rows.
    """
    rows, batch, pooling, seed = _int("rows", rows), _int("batch", batch), _pooling(pooling), _seed(seed)
    stats = stats if isinstance(stats, LocalityStats) else load_locality_stats(stats)
    rng = np.random.default_rng(seed)
    lengths, offsets = _bags(rng, batch, pooling)
    lookups = int(lengths.sum())
    if lookups == 0:
        return np.zeros(0, np.int64), offsets
    counts = _reuse_counts(rng, reuse_target(stats, lookups))
    if counts.size > rows:
        raise ValueError(
            f"production_like: {lookups} lookups need {counts.size} distinct rows "
            f"(mean reuse {stats.mean_reuse:.1f}) but the table has only {rows} rows"
        )
    chosen = rng.choice(rows, counts.size, replace=False)
    indices = np.repeat(chosen.astype(np.int64), counts)
    rng.shuffle(indices)
    return indices, offsets


# -- model shapes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelShape:
    """One recommendation model of the paper (PAPER_FACTS.md, "Workloads").

    Attributes
    ----------
    name : str
    tables : int
        Embedding tables.
    rows : int
        Rows per table.
    pooling : (int, int)
        Lookups per bag (inclusive range; the paper's simulations use 80, see ``docs/workloads.md``).
    max_batch : int
        Largest batch the paper runs (batches 1 .. max_batch).
    """

    name: str
    tables: int
    rows: int
    pooling: tuple[int, int]
    max_batch: int


#: The paper's models: 1 M rows per table, pooling 20-60, batch 1-256.
MODEL_SHAPES: dict[str, ModelShape] = {
    s.name: s
    for s in (
        ModelShape("RMC1-small", 6, 1_000_000, (20, 60), 256),
        ModelShape("RMC1-large", 12, 1_000_000, (20, 60), 256),
        ModelShape("RMC2-small", 24, 1_000_000, (20, 60), 256),
        ModelShape("RMC2-large", 64, 1_000_000, (20, 60), 256),
    )
}


@dataclass(frozen=True, eq=False)
class TableRequest:
    """One table of a workload and its request.

    Attributes
    ----------
    table : str
        Table name (``"t0"``, ``"t1"``, ...).
    rows, dim : int
        The table's shape (``float32 (rows, dim)``).
    indices, offsets : numpy.ndarray
        ``int64``, the request (EmbeddingBag offsets, ``include_last_offset=False``).
    """

    table: str
    rows: int
    dim: int
    indices: np.ndarray
    offsets: np.ndarray

    @property
    def request(self) -> dict:
        """The ``Device.run`` request: ``{"table", "indices", "offsets"}``."""
        return {"table": self.table, "indices": self.indices, "offsets": self.offsets}


_GENERATORS = ("uniform", "zipf", "production_like")


def model_workload(
    name: str,
    *,
    batch: int,
    generator: str = "uniform",
    seed: int,
    rows: int | None = None,
    pooling=None,
    dim: int = DEFAULT_DIM,
    **options,
) -> list[TableRequest]:
    """One batch of a model of :data:`MODEL_SHAPES`: a request per table.

    Parameters
    ----------
    name : str
        A key of :data:`MODEL_SHAPES`.
    batch : int
        Bags per table (1 .. the model's ``max_batch``).
    generator : {"uniform", "zipf", "production_like"}
    seed : int
        Table ``t`` uses seed ``numpy.random.SeedSequence([seed, t])`` (its first 63-bit word),
        so tables differ and every table is reproducible on its own.
    rows : int, optional
        Rows per table (default: the model's, 1 M); smaller tables make quick tests.
    pooling : int or (int, int), optional
        Default: the model's range (20, 60). The paper's simulations use 80.
    dim : int, default :data:`DEFAULT_DIM`
        fp32 values per row.
    **options
        Passed to the generator: ``alpha`` (zipf), ``stats`` (production_like; parsed once),
        ``distinct`` (uniform).

    Returns
    -------
    list of TableRequest

    Raises
    ------
    KeyError
        An unknown model.
    TypeError, ValueError
        A bad argument.
    """
    if name not in MODEL_SHAPES:
        raise KeyError(f"unknown model {name!r}; the models are {', '.join(MODEL_SHAPES)}")
    shape = MODEL_SHAPES[name]
    batch = _int("batch", batch)
    if batch > shape.max_batch:
        raise ValueError(f"batch must be at most {shape.max_batch} for {name}, got {batch}")
    if generator not in _GENERATORS:
        raise ValueError(f"generator must be one of {', '.join(_GENERATORS)}, got {generator!r}")
    seed = _seed(seed)
    rows = shape.rows if rows is None else _int("rows", rows)
    pooling = shape.pooling if pooling is None else pooling
    dim = _int("dim", dim)
    if generator == "production_like":
        stats = options.pop("stats", DEFAULT_STATS_PATH)
        options["stats"] = stats if isinstance(stats, LocalityStats) else load_locality_stats(stats)
    make = {"uniform": uniform, "zipf": zipf, "production_like": production_like}[generator]
    out = []
    for t in range(shape.tables):
        table_seed = int(np.random.SeedSequence([seed, t]).generate_state(1, np.uint64)[0] >> np.uint64(1))
        indices, offsets = make(rows=rows, batch=batch, pooling=pooling, seed=table_seed, **options)
        out.append(TableRequest(f"t{t}", rows, dim, indices, offsets))
    return out


def load_model_tables(device, workload: Sequence[TableRequest], *, values: bool = True, seed: int = 0) -> None:
    """Load the tables of a workload into a ``sw_driver.Device``.

    Parameters
    ----------
    device : sw_driver.Device
    workload : sequence of TableRequest
    values : bool, default True
        ``True``: random ``float32`` tables (standard normal, from ``seed``) through
        ``Device.load_table``; the device image then holds every row (``rows * 4 * dim`` bytes
        per table: 122 MiB for a 1 M x 32 table, 7.6 GiB for RMC2-large). ``False``: place the
        tables (the same placement ``load_table`` gives) without writing any value, for work
        that needs only addresses (``Device.compile``, the trace exporters, a timing-only
        backend) with ``Device.reserve_table``: only ``backend="perf"`` with
        ``backend_options={"values": False}`` can run them.
    seed : int, default 0

    Raises
    ------
    Whatever ``Device.load_table`` / ``Device.reserve_table`` raise (a name already loaded,
    device memory full, ...).
    """
    rng = np.random.default_rng(_seed(seed))
    for req in workload:
        if values:
            device.load_table(req.table, rng.standard_normal((req.rows, req.dim), dtype=np.float32))
        else:
            device.reserve_table(req.table, rows=req.rows, dim=req.dim)


# -- real traces ---------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TraceTable:
    """One table of a real trace.

    Attributes
    ----------
    table : int
        The table's number in the file.
    indices, offsets : numpy.ndarray
        ``int64``; ``offsets`` per bag, starting at 0.
    rows : int
        ``max(indices) + 1`` (at least 1): the smallest table that holds the trace.
    """

    table: int
    indices: np.ndarray
    offsets: np.ndarray
    rows: int


def load_dlrm_trace(path, *, tables=None, batch: int | None = None, start: int = 0) -> list[TraceTable]:
    """Load a trace of the facebookresearch/dlrm_datasets format (``.pt`` or ``.pt.gz``).

    The file is ``torch.save((indices, offsets, lengths))`` of the FBGEMM table-batched
    embedding convention (read by FBGEMM's ``split_table_batched_embeddings_benchmark``
    ``--requests_data_file``): ``lengths`` is ``(T, B)``; ``offsets`` is 1-D of ``T * B + 1``
    entries into ``indices`` (table-major: bag ``b`` of table ``t`` is
    ``indices[offsets[t * B + b] : offsets[t * B + b + 1]]``); ``indices`` is 1-D, each a row
    of its own table. A ``(T, B)`` ``offsets`` of bag starts is also accepted.

    Parameters
    ----------
    path : str or os.PathLike
    tables : sequence of int, optional
        The tables to load (default: all), in that order.
    batch : int, optional
        Bags per table to keep (default: all ``B``), starting at bag ``start``.
    start : int, default 0

    Returns
    -------
    list of TraceTable

    Raises
    ------
    FileNotFoundError
    ValueError
        Not a trace of that format (naming what is wrong), or a table/bag range outside it.
    """
    import torch

    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = torch.load(f, map_location="cpu", weights_only=True)
    if not isinstance(data, tuple | list) or len(data) != 3 or not all(isinstance(x, torch.Tensor) for x in data):
        raise ValueError(f"{path}: expected a tuple (indices, offsets, lengths) of tensors, got {type(data).__name__}")
    indices, offsets, lengths = (x.numpy() for x in data)
    if lengths.ndim != 2:
        raise ValueError(f"{path}: lengths must be 2-D (tables, batch), got shape {lengths.shape}")
    n_tables, n_batch = lengths.shape
    if indices.ndim != 1 or indices.dtype.kind not in "iu":
        raise ValueError(f"{path}: indices must be a 1-D integer tensor, got shape {indices.shape} {indices.dtype}")
    lengths = lengths.astype(np.int64)
    if offsets.shape == (n_tables * n_batch + 1,):
        starts = offsets[:-1].astype(np.int64).reshape(n_tables, n_batch)
        end = int(offsets[-1])
    elif offsets.shape == (n_tables, n_batch):
        starts, end = offsets.astype(np.int64), int(offsets.flat[-1] + lengths.flat[-1]) if offsets.size else 0
    else:
        raise ValueError(
            f"{path}: offsets must have {n_tables * n_batch + 1} entries (tables * batch + 1) or shape "
            f"{(n_tables, n_batch)}, got shape {offsets.shape}"
        )
    flat = starts.ravel()
    if flat.size and (flat[0] != 0 or end != indices.size or np.any(np.diff(np.append(flat, end)) != lengths.ravel())):
        raise ValueError(f"{path}: offsets and lengths disagree (offsets must be the prefix sums of lengths)")
    if tables is None:
        tables = range(n_tables)
    start = _int("start", start, 0)
    batch = n_batch - start if batch is None else _int("batch", batch)
    if start + batch > n_batch:
        raise ValueError(f"bags {start}..{start + batch - 1} are outside the trace's {n_batch} bags per table")
    out = []
    for t in tables:
        t = _int("table", t, 0)
        if t >= n_tables:
            raise ValueError(f"table {t} is outside the trace's {n_tables} tables")
        lo = int(starts[t, start])
        hi = int(starts[t, start + batch]) if start + batch < n_batch else int(starts[t, -1] + lengths[t, -1])
        idx = indices[lo:hi].astype(np.int64)
        if idx.size and idx.min() < 0:
            raise ValueError(f"{path}: table {t} has a negative index {int(idx.min())}")
        offs = starts[t, start : start + batch] - lo
        out.append(TraceTable(t, idx, offs, int(idx.max()) + 1 if idx.size else 1))
    return out
