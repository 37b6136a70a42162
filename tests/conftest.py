"""Regression-wide hooks: functional coverage of the cocotb runs, reported at the end."""

import shutil

from verif.coverage import merge, report
from verif.runner import coverage_dir


def _is_controller(config) -> bool:
    return not hasattr(config, "workerinput")  # pytest-xdist workers have it


def pytest_sessionstart(session):
    if _is_controller(session.config):
        shutil.rmtree(coverage_dir(), ignore_errors=True)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    files = sorted(coverage_dir().glob("*.json"))
    if not files:
        return
    terminalreporter.section("functional coverage (cocotb-coverage, merged over the RTL runs)")
    for line in report(merge(files)):
        terminalreporter.write_line(line)
