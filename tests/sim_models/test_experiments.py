"""Experiments and sweeps on the performance models: figures of a run, the files an
experiment writes, a sweep run locally and on a local Dask cluster, the command line."""

import csv
import dataclasses

import pytest

from sim_models.experiments import EXPERIMENTS, RunConfig, run_config, run_experiment, sweep
from sw_driver.cli import main

#: Small and quick: 6 tables of 20 000 rows, 16 samples of 20 lookups.
SMALL = RunConfig(model="RMC1-small", batch=16, pooling=20, rows=20_000)
VOLATILE = ("seconds",)


def _rows(path):
    with open(path) as f:
        return [{k: v for k, v in row.items() if k not in VOLATILE} for row in csv.DictReader(f)]


def test_a_run_reports_consistent_figures():
    row = run_config(SMALL)
    assert row["lookups"] == 6 * 16 * 20
    assert row["lines"] == 2 * row["lookups"]  # 32 fp32 = 128 B rows
    assert row["speedup"] == pytest.approx(row["baseline_cycles"] / row["cycles"])
    # The host reads every line over one channel: never faster than its data bus.
    assert row["baseline_cycles"] >= row["lines"] * 4
    assert 0.0 < row["hit_rate"] < 1.0
    off = run_config(dataclasses.replace(SMALL, cache=False))
    assert off["hit_rate"] == 0.0
    assert off["lookups"] == row["lookups"] and off["baseline_cycles"] == row["baseline_cycles"]


def test_an_experiment_writes_csv_plot_and_the_paper_table(tmp_path):
    paths = run_experiment("ladder", out=tmp_path, base=SMALL, workers=1, command="recnmp experiment ladder (test)")
    assert [p.name for p in paths] == ["ladder.csv", "ladder.png", "ladder.md"]
    assert paths[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = _rows(paths[0])
    assert [r["step"] for r in rows] == [
        "base",
        "+128 KiB RankCache",
        "+table-aware scheduling",
        "+hot-entry profiling",
    ]
    assert {r["ranks"] for r in rows} == {"8"}
    table = paths[2].read_text()
    for paper in ("6.1x", "7.2x", "8.8x", "9.8x"):
        assert paper in table
    assert "Produced by `recnmp experiment ladder (test)`." in table


def test_every_experiment_runs(tmp_path):
    rows = {}
    for name in EXPERIMENTS:
        run_experiment(name, out=tmp_path, base=SMALL, workers=2)
        with open(tmp_path / f"{name}.csv") as f:
            rows[name] = list(csv.DictReader(f))
        assert (tmp_path / f"{name}.md").read_text().count("\n|") == len(rows[name]) + 2  # header, rule, rows
    assert len(rows["ranks"]) == 6 and len(rows["hit_rate"]) == 16 and len(rows["sensitivity"]) == 10
    spread = [float(r["speedup"]) for r in rows["ranks"] if r["page_colouring"] == "False"]
    assert spread == sorted(spread) and spread[-1] > 2 * spread[0]  # 2 -> 8 ranks
    hits = {(r["generator"], r["cache_kib"]): float(r["hit_rate"]) for r in rows["hit_rate"]}
    for size in ("8", "128", "1024"):
        assert hits[("uniform", size)] < hits[("production_like", size)]
    assert [r["step"] for r in rows["energy"]] == [r["step"] for r in rows["ladder"]]


@pytest.mark.parametrize(
    "field, text, message",
    [
        ("batch", "abc", "batch must be an integer (k and m suffixes allowed), got 'abc'"),
        ("alpha", "x", "alpha must be a number, got 'x'"),
        ("cache", "maybe", "cache must be true or false, got 'maybe'"),
        ("colour", "1", "unknown configuration field 'colour'"),
    ],
)
def test_bad_configuration_text_is_named(field, text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RunConfig.parse(field, text)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(chunk=0), "chunk must be a positive int, got 0"),
        (dict(pooling=-4), "pooling must be a positive int, got -4"),
        (dict(generator="gauss"), "generator must be one of uniform, zipf, production_like, got 'gauss'"),
        (dict(hot_entry_threshold=-1), "hot_entry_threshold must be a non-negative int, got -1"),
    ],
)
def test_bad_configurations_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(SMALL, **changes)


def test_a_sweep_on_a_local_dask_cluster_equals_the_local_sweep(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    grid = {"ranks_per_dimm": [1, 2], "cache_size_bytes": [8 << 10, 64 << 10]}
    local = sweep(grid, base=SMALL, out=tmp_path / "local.csv", workers=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        remote = sweep(grid, base=SMALL, out=tmp_path / "dask.csv", scheduler=cluster.scheduler_address)
    rows = _rows(local)
    assert len(rows) == 4
    assert [(r["ranks_per_dimm"], r["cache_size_bytes"]) for r in rows] == [
        ("1", "8192"),
        ("1", "65536"),
        ("2", "8192"),
        ("2", "65536"),
    ]
    assert _rows(remote) == rows


def test_the_sweep_command_line(tmp_path, capsys):
    out = tmp_path / "grid.csv"
    status = main(
        ["sweep", "--grid", "hot_entry_threshold=0,2", "--set", "model=RMC1-small", "--set", "batch=4"]
        + ["--set", "rows=5000", "--set", "pooling=10", "--workers", "1", "--out", str(out)]
    )
    assert status == 0
    rows = _rows(out)
    assert [r["hot_entry_threshold"] for r in rows] == ["0", "2"]
    status = main(["sweep", "--grid", "colour=1", "--out", str(tmp_path / "x.csv")])
    assert status == 2
    err = capsys.readouterr().err
    assert "recnmp sweep: error: unknown configuration field 'colour' (fields: model, generator," in err
    assert main(["experiment", "ranks", "--set", "batch=0", "--out", str(tmp_path)]) == 2
    assert "recnmp experiment: error: batch must be" in capsys.readouterr().err
