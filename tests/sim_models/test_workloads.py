"""Workload generators, the locality-statistics parser and fit, model shapes, the trace loader.

Random stimulus: every test prints its seed; ``RECNMP_SEED=<n>`` replaces the fixed default.
The fit tolerance (``docs/workloads.md``), total-variation distance, for batches of at least
20 000 lookups: ``production_like``'s unique-row histogram is within 0.005 of the file's and of
the target of :func:`reuse_target`; its access histogram within 0.001 of the target (the
file's, with the access share a batch of that size cannot hold moved down a bin, ``moved``),
so within ``moved + 0.001`` of the file's; ``moved == 0`` from ``full_fit_lookups``.
"""

import gzip
import os
import re
import time

import numpy as np
import pytest

from sim_models.sls import sls
from sim_models.workloads import (
    DEFAULT_STATS_PATH,
    DLRM_EDGES,
    MODEL_SHAPES,
    LocalityStats,
    format_locality_stats,
    full_fit_lookups,
    load_dlrm_trace,
    load_locality_stats,
    load_model_tables,
    model_workload,
    production_like,
    reuse_histograms,
    reuse_target,
    seeded_permutation,
    total_variation,
    uniform,
    zipf,
)
from sw_driver import Device

#: Total-variation distances of the fit, batches of at least MIN_LOOKUPS lookups.
TOL_UNIQUE = 0.005
TOL_ACCESS = 0.001
MIN_LOOKUPS = 20_000


def seed_of(default: int) -> int:
    seed = int(os.environ.get("RECNMP_SEED", default))
    print(f"seed {seed} (RECNMP_SEED=<n> replaces it)")
    return seed


def bag_lengths(offsets, n):
    return np.diff(np.append(offsets, n))


def real_stats() -> LocalityStats:
    if not DEFAULT_STATS_PATH.exists():
        pytest.skip(f"{DEFAULT_STATS_PATH} is not there")
    return load_locality_stats(DEFAULT_STATS_PATH)


# -- uniform / Zipf --------------------------------------------------------------------------


@pytest.mark.parametrize("make", ["uniform", "zipf", "production_like"])
def test_output_convention_and_reproducibility(make, tmp_path):
    seed = seed_of(11)
    path = tmp_path / "stats.txt"
    path.write_text(format_locality_stats([zipf(rows=5000, batch=200, pooling=20, alpha=1.0, seed=seed)[0]]))
    kwargs = {"uniform": {}, "zipf": {"alpha": 0.9}, "production_like": {"stats": path}}[make]
    fn = {"uniform": uniform, "zipf": zipf, "production_like": production_like}[make]
    indices, offsets = fn(rows=5000, batch=64, pooling=(3, 9), seed=seed, **kwargs)
    assert indices.dtype == np.int64 and offsets.dtype == np.int64
    assert offsets.shape == (64,) and offsets[0] == 0 and np.all(np.diff(offsets) >= 0)
    lengths = bag_lengths(offsets, indices.size)
    assert lengths.min() >= 3 and lengths.max() <= 9 and len(set(lengths.tolist())) > 1
    assert indices.min() >= 0 and indices.max() < 5000
    again = fn(rows=5000, batch=64, pooling=(3, 9), seed=seed, **kwargs)
    assert np.array_equal(again[0], indices) and np.array_equal(again[1], offsets)
    other = fn(rows=5000, batch=64, pooling=(3, 9), seed=seed + 1, **kwargs)
    assert not np.array_equal(other[0][:50], indices[:50])
    # The driver takes it as is (EmbeddingBag offsets, include_last_offset=False).
    table = np.random.default_rng(seed).standard_normal((5000, 4), dtype=np.float32)
    dev = Device(1, 1, 2)
    dev.load_table("t", table)
    np.testing.assert_allclose(
        dev.sls("t", indices, offsets=offsets), sls(table, indices, offsets=offsets), rtol=1e-5, atol=1e-5
    )


def test_uniform_is_uniform_and_distinct():
    seed = seed_of(12)
    indices, _ = uniform(rows=100, batch=2000, pooling=50, seed=seed)
    counts = np.bincount(indices, minlength=100)
    expected = indices.size / 100
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 160, f"chi-square {chi2:.1f} with 99 degrees of freedom"  # p ~ 1e-4
    indices, offsets = uniform(rows=60, batch=300, pooling=(40, 60), seed=seed, distinct=True)
    for bag in np.split(indices, offsets[1:]):
        assert np.unique(bag).size == bag.size
    assert uniform(rows=5, batch=3, pooling=5, seed=seed, distinct=True)[0].size == 15


@pytest.mark.parametrize("make", [uniform, zipf])
def test_pooling_range_is_inclusive_and_uniform(make):
    seed = seed_of(23)
    kwargs = {"alpha": 1.0} if make is zipf else {}
    indices, offsets = make(rows=1000, batch=7000, pooling=(20, 26), seed=seed, **kwargs)
    counts = np.bincount(bag_lengths(offsets, indices.size), minlength=27)[20:]
    assert counts.min() > 850 and counts.max() < 1150 and counts.sum() == 7000  # 1000 each
    assert make(rows=10, batch=4, pooling=0, seed=seed, **kwargs)[0].size == 0


@pytest.mark.parametrize("alpha", [0.6, 1.0, 1.5])
def test_zipf_rank_frequency(alpha):
    seed = seed_of(13)
    rows = 50_000
    indices, _ = zipf(rows=rows, batch=4000, pooling=50, alpha=alpha, seed=seed)
    freq = np.sort(np.bincount(indices, minlength=rows))[::-1] / indices.size
    p = np.arange(1, rows + 1, dtype=np.float64) ** -alpha
    p /= p.sum()
    # The top ranks' frequencies: within 5 standard errors of r**-alpha / H.
    err = np.abs(freq[:20] - p[:20]) / np.sqrt(p[:20] / indices.size)
    assert err.max() < 5, (err.max(), freq[:5], p[:5])
    # The log-log slope over ranks 2..200 is -alpha.
    ranks = np.arange(2, 201)
    slope = np.polyfit(np.log(ranks), np.log(freq[1:200]), 1)[0]
    assert abs(slope + alpha) < 0.12, slope
    # Hot rows are spread over the table, not rows 0..k.
    hot = np.argsort(np.bincount(indices, minlength=rows))[::-1][:50]
    assert hot.max() - hot.min() > rows // 2 and np.sum(hot < 50) < 5


def test_seeded_permutation_is_a_bijection():
    seed = seed_of(14)
    rng = np.random.default_rng(seed)
    for size in (1, 2, 3, 7, 64, 1000, 65537, 1 << 20):
        keys = rng.integers(0, 1 << 62, 4, dtype=np.uint64)
        perm = seeded_permutation(np.arange(size), size, keys)
        assert np.array_equal(np.sort(perm), np.arange(size)), size
    perm = seeded_permutation(np.arange(1000), 1000, [1, 2, 3, 4])
    assert np.mean(perm == np.arange(1000)) < 0.02  # not the identity


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: uniform(rows=0, batch=1, pooling=1, seed=0), ValueError, "rows must be at least 1, got 0"),
        (lambda: uniform(rows=10, batch=0, pooling=1, seed=0), ValueError, "batch must be at least 1, got 0"),
        (lambda: uniform(rows=1.5, batch=1, pooling=1, seed=0), TypeError, "rows must be an int, got 1.5"),
        (lambda: uniform(rows=10, batch=1, pooling=-1, seed=0), ValueError, "pooling must be at least 0, got -1"),
        (lambda: uniform(rows=10, batch=1, pooling=(5, 3), seed=0), ValueError, "pooling range (5, 3) has low > high"),
        (
            lambda: uniform(rows=10, batch=1, pooling=(1, 2, 3), seed=0),
            ValueError,
            "pooling must be an int or a (low, high) pair, got (1, 2, 3)",
        ),
        (lambda: uniform(rows=10, batch=1, pooling=1, seed=-1), ValueError, "seed must be a non-negative int, got -1"),
        (
            lambda: uniform(rows=10, batch=1, pooling=(5, 11), seed=0, distinct=True),
            ValueError,
            "pooling 11 exceeds rows 10: a bag of distinct rows cannot be drawn",
        ),
        (
            lambda: zipf(rows=10, batch=1, pooling=1, alpha=0, seed=0),
            ValueError,
            "alpha must be a finite number > 0, got 0",
        ),
        (
            lambda: zipf(rows=10, batch=1, pooling=1, alpha=-1.0, seed=0),
            ValueError,
            "alpha must be a finite number > 0, got -1.0",
        ),
        (
            lambda: zipf(rows=10, batch=1, pooling=1, alpha=float("nan"), seed=0),
            ValueError,
            "alpha must be a finite number > 0, got nan",
        ),
        (lambda: zipf(rows=10, batch=1, pooling=1, alpha="1", seed=0), TypeError, "alpha must be a number, got '1'"),
        (
            lambda: model_workload("RMC3", batch=1, seed=0),
            KeyError,
            "unknown model 'RMC3'; the models are RMC1-small, RMC1-large, RMC2-small, RMC2-large",
        ),
        (
            lambda: model_workload("RMC1-small", batch=257, seed=0),
            ValueError,
            "batch must be at most 256 for RMC1-small, got 257",
        ),
        (
            lambda: model_workload("RMC1-small", batch=1, seed=0, generator="random"),
            ValueError,
            "generator must be one of uniform, zipf, production_like, got 'random'",
        ),
    ],
)
def test_bad_arguments(call, error, message):
    with pytest.raises(error) as info:
        call()
    text = info.value.args[0]
    assert text == message


def test_production_like_needs_enough_rows(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text(format_locality_stats([np.arange(1000)]))  # every row used once
    with pytest.raises(ValueError) as info:
        production_like(path, rows=100, batch=10, pooling=20, seed=0)
    assert info.value.args[0] == (
        "production_like: 200 lookups need 200 distinct rows (mean reuse 1.0) but the table has only 100 rows"
    )


# -- locality statistics ---------------------------------------------------------------------


def test_reuse_histograms_by_hand():
    unique, access = reuse_histograms(np.array([5, 5, 5, 2, 7, 7, 9, 9, 9, 9, 9]), DLRM_EDGES)
    # counts: row 2 x1 (0,1], row 7 x2 (1,2], row 5 x3 (2,4], row 9 x5 (4,8]
    assert np.allclose(unique[:5], [0.25, 0.25, 0.25, 0.25, 0]) and unique[5:].sum() == 0
    assert np.allclose(access[:5], np.array([1, 2, 3, 5, 0]) / 11)
    unique, access = reuse_histograms(np.repeat(np.arange(3), [40000, 1, 2]), [0, 1, 2, 4, 32768])
    assert np.allclose(unique, [1 / 3, 1 / 3, 0, 0, 1 / 3]) and np.isclose(access[-1], 40000 / 40003)
    assert reuse_histograms(np.zeros(0, np.int64), DLRM_EDGES)[0].sum() == 0
    with pytest.raises(ValueError, match=re.escape("bin edges must be increasing, got [0, 2, 2]")):
        reuse_histograms([1], [0, 2, 2])
    with pytest.raises(TypeError, match="indices must be integers, got dtype float64"):
        reuse_histograms(np.ones(3), DLRM_EDGES)


def test_real_stats_file_parses():
    stats = real_stats()
    assert stats.batches == 16 and stats.batch_size == 131072 and len(stats.names) == 16
    assert stats.names[0] == "fbgemm_t788_bs131072_0.pt"
    assert np.array_equal(stats.edges, DLRM_EDGES)
    assert np.isclose(stats.unique[0], 0.342) and np.isclose(stats.unique[4], 0.112)
    # Each block's printed shares are renormalised to sum to 1 (they sum to 0.999..1.002).
    assert abs(stats.access[-1] - 0.0751) < 0.0005 and abs(stats.access[0] - 0.027) < 1e-4
    assert abs(stats.mean_reuse - 12.75) < 0.01  # indices / unique cols, not the rounded 12.7
    assert 900_000 < full_fit_lookups(stats) < 1_000_000


def test_format_round_trip(tmp_path):
    seed = seed_of(15)
    batches = [zipf(rows=20000, batch=400, pooling=40, alpha=1.2, seed=seed + k)[0] for k in range(3)]
    path = tmp_path / "z.txt"
    path.write_text(format_locality_stats(batches, names=["a", "b", "c"]))
    stats = load_locality_stats(path)
    assert stats.names == ("a", "b", "c") and stats.batches == 3
    mean_u = np.mean([reuse_histograms(b, DLRM_EDGES)[0] for b in batches], axis=0)
    assert np.abs(stats.unique - mean_u).max() < 0.002  # 3-decimal printing, then renormalised
    assert np.isclose(stats.mean_reuse, np.mean([b.size / np.unique(b).size for b in batches]))


GOOD_BLOCK = """t.pt
Locality stats after processing 2 batches of size 8
Avg # of indices: 100
Avg # of unique cols: 40
Avg col size: 2.5
Histogram of col sizes:
(0, 1]: 0.500
(1, 3]: 0.300
(3+: 0.200
[0, 1, 3]
['0.000', '0.500', '0.800', '1.000']
Ratio of index distribution at different column sizes:
(0, 1]: 0.200
(1, 3]: 0.300
(3+: 0.500
"""


def test_other_bins_parse(tmp_path):
    path = tmp_path / "g.txt"
    path.write_text(
        GOOD_BLOCK
        + "\n"
        + GOOD_BLOCK.replace("2 batches", "1 batches").replace("0.500\n(1, 3]: 0.300", "0.4\n(1, 3]: 0.4")
    )
    stats = load_locality_stats(path)
    assert stats.edges.tolist() == [0, 1, 3] and stats.batches == 3 and stats.mean_reuse == 2.5
    assert np.allclose(stats.unique, [(2 * 0.5 + 0.4) / 3, (2 * 0.3 + 0.4) / 3, 0.2])


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: "", "no statistics blocks (an empty file?)"),
        (lambda t: t.replace("(1, 3]: 0.300\n(3+: 0.200", "(1, 3]: 0.300\n(4, 5]: 0.200"), None),
        (lambda t: t.replace("(0, 1]: 0.500", "(0, 1]: half"), ":7: bin '(0, 1]: half': 'half' is not a number"),
        (lambda t: t.replace("(0, 1]: 0.500", "(0, 1]: 1.500"), ":7: bin '(0, 1]: 1.500': share 1.5 is outside 0..1"),
        (
            lambda t: t.replace("(1, 3]: 0.300\n(3+: 0.200", "(2, 3]: 0.300\n(3+: 0.200"),
            ":8: bin '(2, 3]: 0.300' does not continue the previous bins (expected it to start at 1)",
        ),
        (
            lambda t: t.replace("Avg col size: 2.5", "Avg col size: many"),
            ":5: Avg col size: must be followed by a number, got 'many'",
        ),
        (
            lambda t: t.replace("Avg col size: 2.5\n", "Avg col size: 2.5\nsomething else\n"),
            ":6: unexpected line 'something else'",
        ),
        (
            lambda t: t.replace("[0, 1, 3]", "[0, 1, 2]"),
            ":10: the edge list [0, 1, 2] disagrees with the bins above ([0, 1, 3])",
        ),
        (
            lambda t: t.replace("Locality stats after processing 2 batches of size 8\n", ""),
            ":1: block 't.pt' has no 'Locality stats after processing N batches of size B' line",
        ),
        (
            lambda t: t[: t.index("Ratio")],
            ":1: block 't.pt' has no 'Ratio of index distribution' histogram",
        ),
        (
            lambda t: t.replace("(3+: 0.500", "(3, 9]: 0.500"),
            ":1: block 't.pt': the access histogram does not end with an open bin '(N+: share'",
        ),
        (
            lambda t: t.replace("(1, 3]: 0.300\n(3+: 0.500", "(1, 4]: 0.300\n(4+: 0.500"),
            ":1: block 't.pt': the two histograms have different bins",
        ),
        (
            lambda t: t.replace("(3+: 0.200", "(3+: 0.600"),
            ":1: block 't.pt': the unique histogram sums to 1.4000, not 1",
        ),
        (
            lambda t: t.replace("Avg # of indices: 100\n", "").replace("Avg col size: 2.5\n", ""),
            ":1: block 't.pt' has neither 'Avg # of indices'/'Avg # of unique cols' nor 'Avg col size'",
        ),
        (lambda t: t.replace("(0, 1]: 0.500\n", "").replace("Histogram of col sizes:\n", "") + "(0, 1]: 0.1\n", None),
        (
            lambda t: t + "\n" + t.replace("(1, 3]", "(1, 4]").replace("(3+", "(4+").replace("[0, 1, 3]", "[0, 1, 4]"),
            ":17: block 't.pt': bins [0, 1, 4] differ from the first block's [0, 1, 3]",
        ),
    ],
)
def test_malformed_stats_files(tmp_path, edit, message):
    path = tmp_path / "bad.txt"
    path.write_text(edit(GOOD_BLOCK))
    with pytest.raises(ValueError) as info:
        load_locality_stats(path)
    text = info.value.args[0]
    print(text)
    assert text.startswith(str(path))
    if message is not None:
        assert text == f"{path}{message}" or text == f"{path}: {message}"


def test_missing_stats_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_locality_stats(tmp_path / "none.txt")


# -- the production-like fit ------------------------------------------------------------------


def check_fit(stats, indices, label):
    unique, access = reuse_histograms(indices, stats)
    target = reuse_target(stats, indices.size)
    fit = {
        "unique vs target": total_variation(unique, target.unique),
        "access vs target": total_variation(access, target.access),
        "unique vs file": total_variation(unique, stats.unique),
        "access vs file": total_variation(access, stats.access),
        "moved": target.moved,
    }
    print(label, indices.size, {k: round(v, 4) for k, v in fit.items()})
    assert fit["unique vs target"] <= TOL_UNIQUE and fit["access vs target"] <= TOL_ACCESS
    assert fit["unique vs file"] <= TOL_UNIQUE
    assert fit["access vs file"] <= target.moved + TOL_ACCESS
    return fit


@pytest.mark.parametrize("lookups", [20_480, 100_000, 1_000_000])
def test_production_like_matches_published_stats(lookups):
    seed = seed_of(16)
    stats = real_stats()
    indices, offsets = production_like(stats, rows=1_000_000, batch=lookups // 80, pooling=80, seed=seed)
    fit = check_fit(stats, indices, "dlrm_datasets 2022")
    mean = indices.size / np.unique(indices).size
    assert abs(mean - stats.mean_reuse) < 0.2, mean
    if lookups >= full_fit_lookups(stats):
        assert fit["moved"] == 0 and fit["access vs file"] <= TOL_ACCESS


def test_production_like_matches_a_second_file(tmp_path):
    """A file of another shape (Zipf 1.1 batches, mean reuse ~7), written in the format."""
    seed = seed_of(17)
    batches = [zipf(rows=200_000, batch=5000, pooling=60, alpha=1.1, seed=seed + k)[0] for k in range(2)]
    path = tmp_path / "zipf_stats.txt"
    path.write_text(format_locality_stats(batches))
    stats = load_locality_stats(path)
    full = full_fit_lookups(stats)
    for lookups in (MIN_LOOKUPS, 100_000, full + 1000):
        indices, _ = production_like(path, rows=200_000, batch=-(-lookups // 50), pooling=50, seed=seed)
        fit = check_fit(stats, indices, "zipf file")
    assert fit["moved"] == 0 and fit["access vs file"] <= TOL_ACCESS


def test_production_like_places_rows_randomly():
    seed = seed_of(18)
    stats = real_stats()
    indices, _ = production_like(stats, rows=1_000_000, batch=256, pooling=80, seed=seed)
    rows = np.unique(indices)
    assert rows.min() < 50_000 and rows.max() > 950_000  # spread over the table
    hot = np.argsort(np.bincount(indices))[::-1][:10]
    assert np.sum(np.diff(np.sort(hot)) == 1) < 3
    # Occurrences are shuffled: a hot row's uses spread over the batch, not in one run.
    where = np.flatnonzero(indices == hot[0])
    assert where.max() - where.min() > indices.size // 2


# -- model shapes ----------------------------------------------------------------------------


def test_model_shapes_are_the_papers():
    table = {name: (s.tables, s.rows, s.pooling, s.max_batch) for name, s in MODEL_SHAPES.items()}
    assert table == {
        "RMC1-small": (6, 1_000_000, (20, 60), 256),
        "RMC1-large": (12, 1_000_000, (20, 60), 256),
        "RMC2-small": (24, 1_000_000, (20, 60), 256),
        "RMC2-large": (64, 1_000_000, (20, 60), 256),
    }


@pytest.mark.parametrize("generator, options", [("uniform", {}), ("zipf", {"alpha": 1.0}), ("production_like", {})])
def test_rmc2_large_generation_speed(generator, options):
    if generator == "production_like":
        options = {"stats": real_stats()}
    seed = seed_of(19)
    start = time.perf_counter()
    workload = model_workload("RMC2-large", batch=256, pooling=80, generator=generator, seed=seed, **options)
    elapsed = time.perf_counter() - start
    lookups = sum(w.indices.size for w in workload)
    print(f"RMC2-large {generator}: {lookups} lookups in {elapsed:.3f} s")
    assert lookups == 64 * 256 * 80 and len(workload) == 64
    assert elapsed < 3.0
    assert len({w.indices[:20].tobytes() for w in workload}) == 64  # tables differ


def test_model_workload_runs_on_the_device():
    seed = seed_of(20)
    workload = model_workload("RMC1-small", batch=8, seed=seed, rows=3000, dim=8, generator="zipf", alpha=1.2)
    assert [w.table for w in workload] == [f"t{t}" for t in range(6)]
    assert all(w.rows == 3000 and w.dim == 8 and w.offsets.size == 8 for w in workload)
    lengths = np.concatenate([bag_lengths(w.offsets, w.indices.size) for w in workload])
    assert lengths.min() >= 20 and lengths.max() <= 60
    dev = Device(1, 1, 2)
    load_model_tables(dev, workload, seed=seed)
    # The same workload placed without values compiles to the same lookups.
    lean = Device(1, 1, 2)
    load_model_tables(lean, workload, values=False)
    assert lean.image.rows_written == 0 and dev.image.rows_written > 0
    a = dev.compile([w.request for w in workload]).lookups
    b = lean.compile([w.request for w in workload]).lookups
    assert np.array_equal(a, b)
    outs = dev.run([w.request for w in workload])
    assert [out.shape for out in outs] == [(8, 8)] * 6
    with pytest.raises(Exception, match="already loaded"):
        load_model_tables(lean, workload[:1], values=False)


def test_load_model_tables_values_are_the_golden_tables():
    seed = seed_of(21)
    workload = model_workload("RMC1-small", batch=4, seed=seed, rows=500, dim=4, pooling=5)
    dev = Device(1, 1, 1)
    load_model_tables(dev, workload, seed=seed)
    rng = np.random.default_rng(seed)
    for w, out in zip(workload, dev.run([w.request for w in workload])):
        table = rng.standard_normal((w.rows, w.dim), dtype=np.float32)
        np.testing.assert_allclose(out, sls(table, w.indices, offsets=w.offsets), rtol=1e-5, atol=1e-5)


# -- dlrm_datasets traces --------------------------------------------------------------------


def write_trace(path, tables=3, batch=5, seed=0, flat_offsets=True):
    import torch

    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 4, (tables, batch))
    indices = rng.integers(0, 100, int(lengths.sum()))
    offsets = np.concatenate([[0], np.cumsum(lengths.ravel())])
    if not flat_offsets:
        offsets = offsets[:-1].reshape(tables, batch)
    data = (torch.from_numpy(indices), torch.from_numpy(offsets), torch.from_numpy(lengths))
    if str(path).endswith(".gz"):
        with gzip.open(path, "wb") as f:
            torch.save(data, f)
    else:
        torch.save(data, path)
    return indices, lengths


@pytest.mark.parametrize("name, flat", [("t.pt", True), ("t.pt.gz", True), ("t2.pt", False)])
def test_load_dlrm_trace(tmp_path, name, flat):
    seed = seed_of(22)
    path = tmp_path / name
    indices, lengths = write_trace(path, seed=seed, flat_offsets=flat)
    per_table = np.split(indices, np.cumsum(lengths.sum(axis=1))[:-1])
    got = load_dlrm_trace(path)
    assert [t.table for t in got] == [0, 1, 2]
    for t, want in zip(got, per_table):
        assert np.array_equal(t.indices, want) and t.indices.dtype == np.int64
        assert np.array_equal(bag_lengths(t.offsets, t.indices.size), lengths[t.table])
        assert t.offsets[0] == 0 and t.rows == (int(want.max()) + 1 if want.size else 1)
    part = load_dlrm_trace(path, tables=[2, 0], batch=2, start=3)
    assert [t.table for t in part] == [2, 0]
    for t in part:
        assert np.array_equal(bag_lengths(t.offsets, t.indices.size), lengths[t.table, 3:5])
        bags = np.split(per_table[t.table], np.cumsum(lengths[t.table])[:-1])
        assert np.array_equal(t.indices, np.concatenate(bags[3:5]))


def test_bad_dlrm_traces(tmp_path):
    import torch

    path = tmp_path / "t.pt"
    write_trace(path)
    with pytest.raises(ValueError, match=re.escape("table 3 is outside the trace's 3 tables")):
        load_dlrm_trace(path, tables=[3])
    with pytest.raises(ValueError, match=re.escape("bags 4..5 are outside the trace's 5 bags per table")):
        load_dlrm_trace(path, batch=2, start=4)
    bad = tmp_path / "bad.pt"
    torch.save((torch.arange(4), torch.tensor([0, 1, 2, 3, 4]), torch.tensor([[1, 1], [1, 2]])), bad)
    with pytest.raises(ValueError, match="offsets and lengths disagree"):
        load_dlrm_trace(bad)
    torch.save((torch.arange(4), torch.tensor([0, 1, 4]), torch.tensor([[1, 1], [1, 1]])), bad)
    with pytest.raises(ValueError, match=re.escape("offsets must have 5 entries (tables * batch + 1) or shape (2, 2)")):
        load_dlrm_trace(bad)
    torch.save({"indices": torch.arange(3)}, bad)
    with pytest.raises(
        ValueError, match=re.escape("expected a tuple (indices, offsets, lengths) of tensors, got dict")
    ):
        load_dlrm_trace(bad)
