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


def test_every_experiment_has_runs_and_paper_numbers():
    for experiment in EXPERIMENTS.values():
        plan = experiment.configs(SMALL)
        assert plan, experiment.name
        for label, cfg in plan:
            assert isinstance(experiment.paper(label), str)
            assert isinstance(cfg, RunConfig)


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
    assert "recnmp sweep: unknown configuration field 'colour' (fields: model, generator," in err
    assert main(["experiment", "ranks", "--set", "batch=0", "--out", str(tmp_path)]) == 2
    assert "recnmp experiment: batch must be" in capsys.readouterr().err
