"""Regression-wide hooks: functional coverage of the cocotb runs, merged, reported, enforced.

At the end of the session the coverage files the cocotb runs exported (``verif.coverage``)
are merged and printed. The session fails (exit status 1) when a cover point has a bin
that no run hit, for the cover points whose every exporting run was complete (the rule is
in ``verif/coverage.py`` and ``docs/verification.md``): a selection that does not run a
testbench (``-k``, a single test id) is never failed for that testbench's coverage.
"""

import shutil

import pytest

from verif.coverage import merge, report, session_missing
from verif.runner import coverage_dir

_MISSING_KEY = pytest.StashKey[list]()


def _is_controller(config) -> bool:
    return not hasattr(config, "workerinput")  # pytest-xdist workers have it


def pytest_sessionstart(session):
    if _is_controller(session.config):
        shutil.rmtree(coverage_dir(), ignore_errors=True)


def pytest_sessionfinish(session, exitstatus):
    if not _is_controller(session.config):
        return
    files = sorted(coverage_dir().glob("*.json"))
    missing = session_missing(files) if files else []
    session.config.stash[_MISSING_KEY] = missing
    if missing and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    files = sorted(coverage_dir().glob("*.json"))
    if not files:
        return
    terminalreporter.section("functional coverage (cocotb-coverage, merged over the RTL runs)")
    for line in report(merge(files)):
        terminalreporter.write_line(line)
    missing = config.stash.get(_MISSING_KEY, [])
    if missing:
        terminalreporter.write_line(
            f"FAILED: {len(missing)} coverage bin(s) of completely run testbenches never hit:", red=True
        )
        for entry in missing:
            terminalreporter.write_line(f"  {entry}", red=True)
