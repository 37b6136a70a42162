"""Functional coverage across a regression: each cocotb run exports, pytest merges and reports.

Testbenches declare cover points with ``cocotb-coverage`` as usual and call :func:`export`
at the end of a test; it writes the hits of every bin to
``$RECNMP_COVERAGE_DIR/<name>.json`` (:mod:`verif.runner` sets the variable). At the end of
the pytest session, ``tests/conftest.py`` merges the files of the run (a bin counts as hit
if any run hit it) and prints one line per cover point, with the bins never hit.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["ENV_VAR", "export", "merge", "report"]

ENV_VAR = "RECNMP_COVERAGE_DIR"
RUN_ENV_VAR = "RECNMP_RUN_NAME"


def export(name: str | None = None) -> Path | None:
    """Write the hits of every bin of the cocotb-coverage database; returns the file.

    ``name`` defaults to the run name the runner passes in ``RECNMP_RUN_NAME``.
    """
    from cocotb_coverage.coverage import CoverItem, coverage_db

    directory = os.environ.get(ENV_VAR)
    if not directory:
        return None
    name = name or os.environ.get(RUN_ENV_VAR, "run")
    points = {}
    for key in sorted(coverage_db):
        item = coverage_db[key]
        if type(item) is CoverItem:  # a group: its points are listed themselves
            continue
        points[key] = {str(b): int(h) for b, h in item.detailed_coverage.items()}
    path = Path(directory) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(points, indent=1))
    return path


def merge(files: Iterable[Path]) -> dict[str, dict[str, int]]:
    """Sum the hits of each bin over several exported files."""
    merged: dict[str, dict[str, int]] = {}
    for path in files:
        for point, bins in json.loads(Path(path).read_text()).items():
            target = merged.setdefault(point, {})
            for name, hits in bins.items():
                target[name] = target.get(name, 0) + hits
    return merged


def report(merged: dict[str, dict[str, int]], *, max_missing: int = 6) -> list[str]:
    """One line per cover point: bins hit / bins, and the first bins never hit."""
    lines = []
    for point, bins in sorted(merged.items()):
        hit = sum(1 for h in bins.values() if h)
        line = f"{point:<48} {hit:>4}/{len(bins):<4} {100 * hit / max(len(bins), 1):5.1f}%"
        missing = [b for b, h in bins.items() if not h]
        if missing:
            shown = ", ".join(missing[:max_missing]) + (" ..." if len(missing) > max_missing else "")
            line += f"  never hit: {shown}"
        lines.append(line)
    return lines
