"""Speed of the RecNMP performance model (sim_models.recnmp_perf) at production scale.

Usage: python benchmarks/perf_model.py [--model RMC2-large] [--batch 256] [--pooling 80]
                                       [--generator uniform production_like] [--repeat 3] [--json FILE]

For each generator: one batch of the model (RMC2-large: 64 tables of 1 M rows, 128 B
vectors, batch 256, pooling 80: 1,310,720 lookups) on the paper's system, 4 channels x
1 DIMM x 2 ranks, tables placed without contents (``Device.reserve_table``). It times,
best of ``--repeat``:

* the driver's compile (``Device.compile``: placement lookups, row-buffer hints,
  profiling, instruction packing, transport throttle);
* the RecNMP model (``RecNMPPerfModel.run``: every DIMM's PU, cycle by cycle; DIMMs run
  in parallel threads, one per core), in simulated lookups per second;
* the host baseline (``sim_models.host_baseline``) on the same lookups' line reads, in
  simulated line reads per second;

and prints the simulated cycles of both and the speedup. The numba kernels are compiled
(or loaded from numba's cache) by a small warm-up call first; that time is printed too.
"""

import argparse
import json
import time

from sim_models.experiments import RunConfig, batch_requests
from sim_models.host_baseline import host_baseline
from sim_models.host_reads import host_reads
from sim_models.workloads import model_workload
from sw_driver import Device


def _best(repeat, fn):
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), value


def measure(model: str, batch: int, pooling: int, generator: str, repeat: int) -> dict:
    cfg = RunConfig(model=model, batch=batch, pooling=pooling, generator=generator, channels=4, ranks_per_dimm=2)
    start = time.perf_counter()
    workload = model_workload(cfg.model, batch=batch, generator=generator, seed=cfg.seed, pooling=pooling)
    generate = time.perf_counter() - start
    dev = Device(4, 1, 2, "perf", backend_options={"values": False})
    for req in workload:
        dev.reserve_table(req.table, rows=req.rows, dim=req.dim)
    requests = batch_requests(cfg, workload)
    warm = time.perf_counter()
    dev.run(requests[:1])  # compiles or loads the numba kernels
    warm = time.perf_counter() - warm
    compile_s, call = _best(repeat, lambda: dev.compile(requests))
    model_s, perf = _best(repeat, lambda: dev.backend.model.run(call))
    reads = host_reads(call.lookups, dev.address_map)
    base_s, base = _best(repeat, lambda: host_baseline(reads, timing=dev.timing, channels=4, ranks_per_channel=2))
    return {
        "model": model,
        "generator": generator,
        "lookups": int(call.lookups.size),
        "line_reads": int(reads.size),
        "generate_s": generate,
        "warm_up_s": warm,
        "compile_s": compile_s,
        "recnmp_s": model_s,
        "recnmp_lookups_per_s": call.lookups.size / model_s,
        "recnmp_cycles": perf.cycles,
        "baseline_s": base_s,
        "baseline_reads_per_s": reads.size / base_s,
        "baseline_cycles": base.cycles,
        "speedup": base.cycles / perf.cycles,
        "hit_rate": perf.total("cache_hits") / perf.total("lines"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="RMC2-large")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--pooling", type=int, default=80)
    parser.add_argument("--generator", nargs="+", default=["uniform", "production_like"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    results = []
    for generator in args.generator:
        m = measure(args.model, args.batch, args.pooling, generator, args.repeat)
        results.append(m)
        print(
            f"{m['model']} batch {args.batch} pooling {args.pooling}, {generator}: {m['lookups']:,} lookups, "
            f"{m['line_reads']:,} line reads (4 channels x 1 DIMM x 2 ranks)\n"
            f"  workload {m['generate_s']:.2f} s, numba warm-up {m['warm_up_s']:.2f} s, "
            f"compile {m['compile_s']:.2f} s\n"
            f"  RecNMP model   {m['recnmp_s']:.2f} s = {m['recnmp_lookups_per_s']:,.0f} lookups/s "
            f"({m['recnmp_cycles']:,} cycles, hit rate {m['hit_rate']:.1%})\n"
            f"  host baseline  {m['baseline_s']:.2f} s = {m['baseline_reads_per_s']:,.0f} reads/s "
            f"({m['baseline_cycles']:,} cycles); speedup {m['speedup']:.2f}x"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
