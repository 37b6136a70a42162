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
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rtl_gen import generate
from rtl_gen.toolchain import setup_verilator

from .block_description import ENV_VAR as BLOCK_JSON_ENV
from .coverage import ENV_VAR as COVERAGE_ENV
from .coverage import RUN_ENV_VAR

__all__ = ["WAIVERS", "build_root", "coverage_dir", "run_block_tests"]

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
