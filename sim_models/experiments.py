"""The paper's experiments on the performance models, and sweeps over configurations.

``recnmp experiment NAME`` (or ``python -m sim_models.experiments NAME``) runs one of
:data:`EXPERIMENTS` and writes ``NAME.csv``, ``NAME.png`` and ``NAME.md`` (our numbers
beside the paper's) into ``--out`` (default ``experiments/``). ``recnmp sweep`` runs a
grid of :class:`RunConfig` values, on the local cores by default or on a Dask
distributed cluster given its scheduler address, into one CSV.

One run (:func:`run_config`) builds a batch of a model of
:data:`sim_models.workloads.MODEL_SHAPES`, places its tables on a
``sw_driver.Device(backend="perf")`` without contents (``Device.reserve_table``), sends the
batch as the host would (for each group of ``chunk`` samples, one request per table) and
reads the report: the RecNMP model's cycles, the cycle-level host baseline's, the speedup,
the RankCache hit rate, DRAM commands and the memory energy of both.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import math
import os
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from hw.user_input import (
    ArgumentParser,
    OutputError,
    UsageError,
    fallback_path,
    integer,
    run_command,
    writable_dir,
    writable_file,
)

__all__ = ["EXPERIMENTS", "RunConfig", "batch_requests", "main", "run_config", "run_many", "sweep"]

#: A hot-entry threshold no row reaches: no lookup allocates, the RankCache is unused.
NO_CACHE = 1 << 40
#: Index generators of :class:`RunConfig` (``sim_models.workloads``).
GENERATORS = ("uniform", "zipf", "production_like")
#: Upper bounds of :class:`RunConfig` fields: a run's arrays stay within this machine's memory
#: (and the device's own limits: ``sw_driver.Device`` checks the topology and cache size).
_UPPER_BOUNDS = {"batch": 1 << 20, "pooling": 1 << 10, "dim": 1 << 12, "rows": 1 << 32, "seed": 2**63 - 1}


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """One configuration of a run (every field is a sweep axis).

    Attributes
    ----------
    model : str
        A model of ``MODEL_SHAPES`` (tables, rows per table).
    generator : {"uniform", "zipf", "production_like"}
        Index generator (``sim_models.workloads``); ``alpha`` is Zipf's exponent.
    batch, pooling, dim : int
        Samples, lookups per bag (the paper's simulations use 80), fp32 values per row.
    rows : int
        Rows per table; 0 for the model's (1 M).
    channels, dimms_per_channel, ranks_per_dimm : int
        The memory system; the host baseline reads over the same channels.
    cache : bool
        RankCache used; ``False`` sends every lookup with ``locality = 0`` (the base design).
    cache_size_bytes : int
    hot_entry_threshold : int
        With the cache: 0 caches every lookup, ``n > 0`` only rows used ``n`` times or more
        in the batch (hot-entry profiling).
    table_aware, page_colouring : bool
        The driver's options.
    chunk : int
        Samples per host request: the host sends, per group of ``chunk`` samples, one
        request per table, so tables interleave unless ``table_aware`` groups them.
    seed : int
    """

    model: str = "RMC2-small"
    generator: str = "production_like"
    alpha: float = 1.05
    batch: int = 256
    pooling: int = 80
    dim: int = 32
    rows: int = 0
    channels: int = 1
    dimms_per_channel: int = 1
    ranks_per_dimm: int = 2
    cache: bool = True
    cache_size_bytes: int = 128 * 1024
    hot_entry_threshold: int = 0
    table_aware: bool = True
    page_colouring: bool = False
    chunk: int = 16
    seed: int = 1

    def __post_init__(self):
        for name in ("batch", "pooling", "dim", "channels", "dimms_per_channel", "ranks_per_dimm", "chunk"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name in ("rows", "hot_entry_threshold", "cache_size_bytes", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative int, got {value!r}")
        for name, high in _UPPER_BOUNDS.items():
            if getattr(self, name) > high:
                raise ValueError(f"{name} must be at most {high}, got {getattr(self, name)!r}")
        if self.generator not in GENERATORS:
            raise ValueError(f"generator must be one of {', '.join(GENERATORS)}, got {self.generator!r}")
        from .workloads import MODEL_SHAPES

        if self.model not in MODEL_SHAPES:
            raise ValueError(f"model must be one of {', '.join(MODEL_SHAPES)}, got {self.model!r}")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, int | float) or not 0 < self.alpha < math.inf:
            raise ValueError(f"alpha must be a finite number > 0, got {self.alpha!r}")

    def device(self):
        """The ``sw_driver.Device(backend="perf")`` of this configuration, without tables.

        Raises ``ValueError`` naming the field the device does not take (a topology, a cache size).
        """
        from sw_driver import Device

        return Device(
            self.channels,
            self.dimms_per_channel,
            self.ranks_per_dimm,
            "perf",
            cache_size_bytes=self.cache_size_bytes,
            page_colouring=self.page_colouring,
            table_aware=self.table_aware,
            hot_entry_threshold=NO_CACHE if not self.cache else (self.hot_entry_threshold or None),
            backend_options={"values": False},
        )

    def check(self) -> None:
        """What a run of this configuration would refuse, refused now, in a fraction of a
        second: its device, the model's largest batch, and its tables' shapes and memory
        (``Device.reserve_table``). A workload a generator cannot draw (more distinct rows
        than a table holds) is still found only by the run.
        """
        _check_shape(
            (self.channels, self.dimms_per_channel, self.ranks_per_dimm, self.cache_size_bytes),
            self.model,
            self.batch,
            self.rows,
            self.dim,
        )

    @property
    def ranks(self) -> int:
        """Ranks of the whole system."""
        return self.channels * self.dimms_per_channel * self.ranks_per_dimm

    @classmethod
    def parse(cls, name: str, text: str):
        """The value of field ``name`` from its text (for the command line)."""
        types = {f.name: f.type for f in fields(cls)}
        if name not in types:
            raise ValueError(f"unknown configuration field {name!r} (fields: {', '.join(types)})")
        kind = types[name]
        if kind == "bool":
            if text.lower() not in ("true", "false", "1", "0", "on", "off"):
                raise ValueError(f"{name} must be true or false, got {text!r}")
            return text.lower() in ("true", "1", "on")
        try:
            if kind == "int":
                suffix = {"k": 1024, "m": 1024 * 1024}.get(text[-1:].lower(), 1)
                return int(text[:-1] if suffix > 1 else text) * suffix
            if kind == "float":
                return float(text)
        except ValueError:
            raise ValueError(
                f"{name} must be {'an integer (k and m suffixes allowed)' if kind == 'int' else 'a number'}, "
                f"got {text!r}"
            ) from None
        return text


@functools.lru_cache(maxsize=256)
def _check_shape(topology: tuple, model: str, batch: int, rows: int, dim: int) -> None:
    from sw_driver import Device

    from .workloads import MODEL_SHAPES

    shape = MODEL_SHAPES[model]
    if batch > shape.max_batch:
        raise ValueError(f"batch must be at most {shape.max_batch} for {model}, got {batch}")
    channels, dimms, ranks, cache = topology
    dev = Device(channels, dimms, ranks, "perf", cache_size_bytes=cache, backend_options={"values": False})
    for t in range(shape.tables):
        dev.reserve_table(f"t{t}", rows=rows or shape.rows, dim=dim)


def batch_requests(cfg: RunConfig, workload) -> list[dict]:
    """The batch as the host sends it: per group of ``chunk`` samples, a request per table."""
    requests = []
    for first in range(0, cfg.batch, cfg.chunk):  # chunk >= 1 (RunConfig)
        last = min(cfg.batch, first + cfg.chunk)
        for req in workload:
            offsets = np.append(req.offsets, req.indices.size)
            lo, hi = int(offsets[first]), int(offsets[last])
            requests.append({"table": req.table, "indices": req.indices[lo:hi], "offsets": offsets[first:last] - lo})
    return requests


def run_config(cfg: RunConfig, threads: int | None = None) -> dict:
    """Run one configuration; its fields and figures as one CSV row (a dict).

    ``threads``: DIMMs the RecNMP model simulates in parallel (default: the CPU cores; the
    parallel runners use 1 per run, so that runs do not oversubscribe the cores).
    """
    from .workloads import model_workload

    options = {"alpha": cfg.alpha} if cfg.generator == "zipf" else {}
    workload = model_workload(
        cfg.model,
        batch=cfg.batch,
        generator=cfg.generator,
        seed=cfg.seed,
        rows=cfg.rows or None,
        pooling=cfg.pooling,
        dim=cfg.dim,
        **options,
    )
    dev = cfg.device()
    for req in workload:
        dev.reserve_table(req.table, rows=req.rows, dim=req.dim)
    if threads is not None:
        dev.backend.model.workers = threads
    start = time.perf_counter()
    dev.run(batch_requests(cfg, workload))
    wall = time.perf_counter() - start
    report, backend = dev.report, dev.backend
    lines = report.lines
    commands = report.dram_commands.values()
    return {
        **dataclasses.asdict(cfg),
        "ranks": cfg.ranks,
        "lookups": report.lookups,
        "lines": lines,
        "cycles": report.cycles,
        "baseline_cycles": report.baseline_cycles,
        "speedup": report.speedup,
        "hit_rate": report.cache_hits / lines if lines else 0.0,
        "acts": sum(c["ACT"] for c in commands),
        "baseline_acts": sum(c["ACT"] for c in backend.last_baseline.commands.values()),
        "baseline_bus_utilisation": float(np.mean(backend.last_baseline.data_bus_utilisation)),
        "energy_saving": report.energy["saving"],
        "recnmp_energy_uj": report.energy["recnmp_pj"]["total"] / 1e6,
        "baseline_energy_uj": report.energy["baseline_pj"]["total"] / 1e6,
        "seconds": wall,
    }


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="run", file=sys.stderr, disable=None)


def run_many(
    configs: Sequence[RunConfig], *, workers: int | None = None, scheduler: str | None = None, desc: str = "runs"
) -> list[dict]:
    """Run configurations in parallel, results in input order, with a progress bar.

    ``scheduler``: a Dask distributed scheduler address (``tcp://host:8786``); the runs
    are then spread over its workers (``pip install "recnmp[dask]"``). Otherwise a process
    pool of ``workers`` (default: the CPU cores; 1 runs in this process).
    """
    configs = list(configs)
    for cfg in configs:  # every configuration before any run: a bad one must not cost the others
        cfg.check()
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS
    ):
        raise ValueError(f"workers must be an int from 1 to {MAX_WORKERS}, got {workers!r}")
    results: list[dict | None] = [None] * len(configs)
    single = functools.partial(run_config, threads=1)
    with _progress(len(configs), desc) as bar:
        if scheduler is not None:
            from dask.distributed import as_completed

            with _dask_client(scheduler) as client:
                futures = client.map(single, configs, pure=False)
                index = {f.key: k for k, f in enumerate(futures)}
                for future in as_completed(futures):
                    results[index[future.key]] = future.result()
                    bar.update()
        elif (workers or os.cpu_count() or 1) == 1 or len(configs) == 1:
            for k, cfg in enumerate(configs):
                results[k] = run_config(cfg)
                bar.update()
        else:
            with ProcessPoolExecutor(workers or os.cpu_count()) as pool:
                futures = {pool.submit(single, cfg): k for k, cfg in enumerate(configs)}
                from concurrent.futures import as_completed as done

                for future in done(futures):
                    results[futures[future]] = future.result()
                    bar.update()
    return results


#: Local parallel runs at most (a process each).
MAX_WORKERS = 256
#: Seconds to wait for a Dask scheduler before calling its address unreachable.
SCHEDULER_TIMEOUT = 10


def _dask_client(scheduler: str):
    """A Dask client of ``scheduler``; ``UsageError`` naming it when it cannot be reached."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise UsageError('--scheduler needs Dask distributed: pip install "recnmp[dask]"') from None
    try:
        return Client(scheduler, timeout=SCHEDULER_TIMEOUT)
    except (ValueError, TypeError) as error:
        raise UsageError(f"--scheduler {scheduler!r}: not a scheduler address ({error})") from None
    except (OSError, TimeoutError) as error:
        reason = str(error) or type(error).__name__
        raise UsageError(f"--scheduler {scheduler!r}: cannot connect within {SCHEDULER_TIMEOUT} s ({reason})") from None


def write_csv(path: Path, rows: Iterable[dict]) -> Path:
    """Write ``rows`` to ``path``; where that fails after the runs, to a temporary file named in the error.

    Raises
    ------
    hw.user_input.OutputError
        ``path`` could not be written: the message names the file that holds the rows instead.
    """
    rows = list(rows)

    def write(target: Path) -> None:
        with open(target, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path)
    except OSError as error:
        kept = fallback_path(path.name)
        write(kept)
        reason = error.strerror or error
        raise OutputError(f"cannot write {str(path)!r} ({reason}); the results are in {kept}") from None
    return path


# -- the experiments ------------------------------------------------------------------------------

#: Topologies (DIMMs on one channel x ranks per DIMM) of the rank experiments (the paper's 1x2, 2x2, 4x2).
RANK_SHAPES = {2: (1, 2), 4: (2, 2), 8: (4, 2)}


@dataclass(frozen=True)
class Experiment:
    """An experiment: its runs, and how to tabulate and plot them."""

    name: str
    title: str
    configs: object  # callable(base RunConfig) -> list of (label dict, RunConfig)
    paper: object  # callable(label dict) -> str, the paper's number for that row
    x: str
    y: str
    series: str


def _ranks_configs(base: RunConfig):
    out = []
    for colour in (False, True):
        for ranks, (dimms, per_dimm) in RANK_SHAPES.items():
            cfg = dataclasses.replace(
                base,
                generator="uniform",
                dimms_per_channel=dimms,
                ranks_per_dimm=per_dimm,
                cache=False,
                page_colouring=colour,
            )
            out.append(({"ranks": ranks, "page_colouring": colour}, cfg))
    return out


_PAPER_RANKS = {2: (1.61, 1.96), 4: (2.40, 3.83), 8: (3.37, 7.35)}


def _paper_ranks(label):
    low, high = _PAPER_RANKS[label["ranks"]]
    return f"{high if label['page_colouring'] else low:.2f}x ({low:.2f}-{high:.2f}x)"


_LADDER = (
    ("base", dict(cache=False, table_aware=False)),
    ("+128 KiB RankCache", dict(cache=True, table_aware=False, hot_entry_threshold=0)),
    ("+table-aware scheduling", dict(cache=True, table_aware=True, hot_entry_threshold=0)),
    ("+hot-entry profiling", dict(cache=True, table_aware=True, hot_entry_threshold=2)),
)
_PAPER_LADDER = dict(zip([name for name, _ in _LADDER], ("6.1x", "7.2x", "8.8x", "9.8x")))


def _ladder_configs(base: RunConfig):
    dimms, per_dimm = RANK_SHAPES[8]
    return [
        ({"step": name}, dataclasses.replace(base, dimms_per_channel=dimms, ranks_per_dimm=per_dimm, **changes))
        for name, changes in _LADDER
    ]


_CACHE_SIZES = [8 << 10, 16 << 10, 32 << 10, 64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20]


def _hit_rate_configs(base: RunConfig):
    return [
        (
            {"generator": generator, "cache_kib": size >> 10},
            dataclasses.replace(base, generator=generator, cache_size_bytes=size),
        )
        for generator in ("uniform", "production_like")
        for size in _CACHE_SIZES
    ]


def _paper_hit_rate(label):
    if label["generator"] == "uniform":
        return "< 5 %"
    size = label["cache_kib"]
    if size == 8:
        return "24.9 %"
    if size == 128:
        return "best point (20-60 % with large caches)"
    return "little gain beyond 128 KiB" if size > 128 else ""


def _energy_configs(base: RunConfig):
    return [(label, cfg) for label, cfg in _ladder_configs(base)]


def _sensitivity_configs(base: RunConfig):
    dimms, per_dimm = RANK_SHAPES[8]
    eight = dataclasses.replace(base, dimms_per_channel=dimms, ranks_per_dimm=per_dimm, hot_entry_threshold=2)
    out = [({"axis": "vector_bytes", "value": 4 * dim}, dataclasses.replace(eight, dim=dim)) for dim in (16, 32, 64)]
    out += [({"axis": "pooling", "value": p}, dataclasses.replace(eight, pooling=p)) for p in (20, 40, 80)]
    out += [
        ({"axis": "hot_entry_threshold", "value": h}, dataclasses.replace(eight, hot_entry_threshold=h))
        for h in (1, 2, 4, 8)
    ]
    return out


EXPERIMENTS = {
    e.name: e
    for e in (
        Experiment(
            "ranks",
            "Base design (no RankCache) speedup over the host vs ranks, random traces",
            _ranks_configs,
            _paper_ranks,
            "ranks",
            "speedup",
            "page_colouring",
        ),
        Experiment(
            "ladder",
            "Optimisation ladder at 8 ranks (4 DIMMs x 2 ranks), production-like traces",
            _ladder_configs,
            lambda label: _PAPER_LADDER[label["step"]],
            "step",
            "speedup",
            "",
        ),
        Experiment(
            "hit_rate",
            "RankCache hit rate vs cache size",
            _hit_rate_configs,
            _paper_hit_rate,
            "cache_kib",
            "hit_rate",
            "generator",
        ),
        Experiment(
            "energy",
            "Memory energy saving of RecNMP over the host at 8 ranks",
            _energy_configs,
            lambda label: "45.8 % (configuration not stated)",
            "step",
            "energy_saving",
            "",
        ),
        Experiment(
            "sensitivity",
            "Sensitivity at 8 ranks (RankCache, table-aware, hot entries >= 2 unless varied)",
            _sensitivity_configs,
            lambda label: "",
            "value",
            "speedup",
            "axis",
        ),
    )
}


def _format(name: str, value) -> str:
    if isinstance(value, float):
        if name in ("hit_rate", "energy_saving"):
            return f"{100 * value:.1f} %"
        return f"{value:.2f}" + ("x" if name == "speedup" else "")
    return str(value)


def _markdown(exp: Experiment, labelled: list[tuple[dict, dict]], command: str) -> str:
    label_keys = list(labelled[0][0])
    columns = ["speedup", "hit_rate", "energy_saving", "cycles", "baseline_cycles", "lookups"]
    lines = [f"# {exp.title}", "", f"Produced by `{command}`.", ""]
    header = label_keys + ["paper"] + columns
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for label, row in labelled:
        cells = [str(label[k]) for k in label_keys] + [exp.paper(label)] + [_format(c, row[c]) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _plot(exp: Experiment, labelled: list[tuple[dict, dict]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    groups: dict = {}
    for label, row in labelled:
        groups.setdefault(label.get(exp.series, "") if exp.series else "", []).append((label[exp.x], row[exp.y]))
    for key, points in groups.items():
        xs = [str(x) for x, _ in points]
        ys = [y * (100 if exp.y in ("hit_rate", "energy_saving") else 1) for _, y in points]
        ax.plot(xs, ys, marker="o", label=f"{exp.series} = {key}" if exp.series else None)
    ax.set_xlabel(exp.x)
    ax.set_ylabel(exp.y + (" (%)" if exp.y in ("hit_rate", "energy_saving") else ""))
    ax.set_title(exp.title, fontsize=9)
    ax.grid(True, alpha=0.3)
    if exp.series:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run_experiment(
    name: str, *, out: Path, base: RunConfig = RunConfig(), workers: int | None = None, command: str = ""
) -> list[Path]:
    """Run experiment ``name``; write its CSV, PNG and markdown table into ``out``."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r} (experiments: {', '.join(EXPERIMENTS)})")
    exp = EXPERIMENTS[name]
    writable_dir("--out", out)  # before the runs: a typo must not cost them
    plan = exp.configs(base)
    rows = run_many([cfg for _, cfg in plan], workers=workers, desc=name)
    labelled = list(zip([label for label, _ in plan], rows))
    out = Path(out)
    csv_path = write_csv(out / f"{name}.csv", [{**label, **row} for label, row in labelled])
    md_path = out / f"{name}.md"
    md_path.write_text(_markdown(exp, labelled, command or f"recnmp experiment {name}"))
    png_path = _plot(exp, labelled, out / f"{name}.png")
    return [csv_path, png_path, md_path]


def sweep(grid: dict[str, list], *, base: RunConfig = RunConfig(), out: Path, workers=None, scheduler=None) -> Path:
    """Every combination of ``grid`` (field -> values) over ``base``, into one CSV."""
    names = list(grid)
    combos = [{}]
    for name in names:
        combos = [{**c, name: v} for c in combos for v in grid[name]]
    configs = [dataclasses.replace(base, **c) for c in combos]
    writable_file("--out", out)  # before the runs: a typo must not cost them
    return write_csv(Path(out), run_many(configs, workers=workers, scheduler=scheduler, desc="sweep"))


# -- command line -------------------------------------------------------------------------------


def _base_config(settings: Sequence[str]) -> RunConfig:
    values = {}
    for item in settings:
        name, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"--set takes FIELD=VALUE, got {item!r}")
        values[name] = RunConfig.parse(name, text)
    return RunConfig(**values)


def add_experiment_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=sorted(EXPERIMENTS), help="the experiment")
    parser.add_argument("--out", type=Path, default=Path("experiments"), help="output folder (default experiments/)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="change the base configuration, e.g. --set model=RMC2-large --set batch=64 (fields: "
        + ", ".join(f.name for f in fields(RunConfig))
        + ")",
    )
    parser.add_argument(
        "--workers", type=integer(1, MAX_WORKERS), default=None, help="parallel runs (default: the CPU cores)"
    )


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="FIELD=V1,V2,...",
        required=True,
        help="an axis of the grid, e.g. --grid ranks_per_dimm=1,2,4 --grid cache_size_bytes=8k,128k",
    )
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a fixed field")
    parser.add_argument("--out", type=Path, default=Path("sweep.csv"), help="the CSV to write (default sweep.csv)")
    parser.add_argument(
        "--workers", type=integer(1, MAX_WORKERS), default=None, help="local parallel runs (default: the CPU cores)"
    )
    parser.add_argument(
        "--scheduler", default=None, help="Dask distributed scheduler address (tcp://host:8786): run on that cluster"
    )


def experiment_command(args) -> int:
    base = _base_config(args.set)
    command = "recnmp experiment " + args.name + "".join(f" --set {s}" for s in args.set)
    for path in run_experiment(args.name, out=args.out, base=base, workers=args.workers, command=command):
        print(path)
    print((args.out / f"{args.name}.md").read_text())
    return 0


def sweep_command(args) -> int:
    grid = {}
    for item in args.grid:
        name, sep, text = item.partition("=")
        if not sep or not text:
            raise ValueError(f"--grid takes FIELD=V1,V2,..., got {item!r}")
        if name in grid:
            raise ValueError(f"--grid {name} is given twice: give its values once, comma-separated")
        grid[name] = [RunConfig.parse(name, v) for v in text.split(",")]
    fixed = {item.partition("=")[0] for item in args.set}
    if both := sorted(fixed & set(grid)):
        raise ValueError(f"{both[0]} is both a --grid axis and a --set field: keep one")
    path = sweep(grid, base=_base_config(args.set), out=args.out, workers=args.workers, scheduler=args.scheduler)
    print(path)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="python -m sim_models.experiments", description="Run one of the paper's experiments on the models."
    )
    add_experiment_arguments(parser)
    args = parser.parse_args(argv)
    return run_command(parser.prog, lambda: experiment_command(args))


if __name__ == "__main__":
    sys.exit(main())
