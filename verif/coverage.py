"""Functional coverage across a regression: each cocotb run checks and exports, pytest merges.

Testbenches declare cover points with ``cocotb-coverage`` as usual (names
``<testbench>.<point>``, e.g. ``rank_nmp.random.opcode``), with bins derived from the
configuration under test (a bin that configuration cannot hit is not declared). At the end
of a test, :func:`finish` (or :func:`export` plus :func:`missing_bins`) writes the hits of
every bin of the test's cover points to ``$RECNMP_COVERAGE_DIR/<name>.json``
(:mod:`verif.runner` sets the variable) and fails the test listing every bin never hit.

**The session rule.** ``tests/conftest.py`` merges the files of the pytest session (a bin
counts as hit if any run hit it), prints one line per cover point, and makes the session
fail (exit status 1, the missing bins printed) when a cover point has a bin never hit,
but only for cover points that every exporting run marked *complete*. A run is complete
when its testbench reached the end of the test that owns the points and called
:func:`export` / :func:`finish` with ``complete=True`` (the default); a run that failed
before exports nothing, and one that ran only part of its stimulus exports with
``complete=False``. Cover points of testbenches that did not run in the session (``pytest
-k something``) have no file, so they are not checked either.

File format: ``{"complete": bool, "points": {point: {bin: hits}}}`` (a plain
``{point: {bin: hits}}`` is read as complete).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "ENV_VAR",
    "export",
    "export_points",
    "finish",
    "incomplete_points",
    "merge",
    "missing_bins",
    "report",
    "session_missing",
]

ENV_VAR = "RECNMP_COVERAGE_DIR"
RUN_ENV_VAR = "RECNMP_RUN_NAME"


def _points(prefix) -> dict[str, dict[str, int]]:
    """Bin hits of the cocotb-coverage points whose name starts with ``prefix`` (a string
    or several; ``None``: every point)."""
    from cocotb_coverage.coverage import CoverItem, coverage_db

    prefixes = (prefix,) if isinstance(prefix, str) else tuple(prefix or ("",))
    points = {}
    for key in sorted(coverage_db):
        item = coverage_db[key]
        if type(item) is CoverItem:  # a group: its points are listed themselves
            continue
        if not any(key == p or key.startswith(p if p.endswith(".") or not p else p + ".") for p in prefixes):
            continue
        points[key] = {str(b): int(h) for b, h in item.detailed_coverage.items()}
    return points


def missing_bins(prefix: str | Iterable[str] | None = None) -> list[str]:
    """``"point: bin"`` for every bin never hit, among the points under ``prefix``."""
    return [f"{point}: {b}" for point, bins in _points(prefix).items() for b, h in bins.items() if not h]


def export(name: str | None = None, *, prefix: str | Iterable[str] | None = None, complete: bool = True) -> Path | None:
    """Write the hits of every bin of the cover points under ``prefix`` (default: all the
    cocotb-coverage database); returns the file (``None`` outside :mod:`verif.runner`).

    ``name`` defaults to the run name the runner passes in ``RECNMP_RUN_NAME``, followed by
    the prefix when one is given (so several tests of one process write their own files).
    ``complete=False`` marks the points as partially collected: the session does not fail
    on their missing bins.
    """
    directory = os.environ.get(ENV_VAR)
    if not directory:
        return None
    if name is None:
        name = os.environ.get(RUN_ENV_VAR, "run")
        if prefix is not None:
            name += "--" + "+".join((prefix,) if isinstance(prefix, str) else prefix)
    path = Path(directory) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"complete": bool(complete), "points": _points(prefix)}, indent=1))
    return path


def export_points(directory: Path, name: str, points: dict[str, dict[str, int]], *, context: str = "") -> Path:
    """Coverage collected in Python (not with cocotb-coverage), e.g. by a pytest test of
    the driver: write ``points`` (point -> bin -> hits) as a complete run into
    ``directory`` (:func:`verif.runner.coverage_dir`), then fail listing every bin never hit."""
    path = Path(directory) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"complete": True, "points": points}, indent=1))
    missing = [f"{point}: {b}" for point, bins in points.items() for b, h in bins.items() if not h]
    if missing:
        raise AssertionError(
            f"{len(missing)} coverage bin(s) never hit{' (' + context + ')' if context else ''}: " + "; ".join(missing)
        )
    return path


def finish(prefix: str | Iterable[str], *, log=None, context: str = "") -> None:
    """End of a test: export the points under ``prefix`` (complete) and fail, listing every
    bin never hit. ``log`` (e.g. ``dut._log.info``) gets the coverage report first;
    ``context`` (e.g. ``"seed 5"``) is added to the failure message."""
    points = _points(prefix)
    if log is not None:
        for line in report(points):
            log(line)
    export(prefix=prefix)
    missing = missing_bins(prefix)
    if missing:
        raise AssertionError(
            f"{len(missing)} coverage bin(s) never hit{' (' + context + ')' if context else ''}: " + "; ".join(missing)
        )


def _load(path: Path) -> tuple[bool, dict[str, dict[str, int]]]:
    raw = json.loads(Path(path).read_text())
    if isinstance(raw, dict) and "points" in raw and isinstance(raw.get("complete"), bool):
        return raw["complete"], raw["points"]
    return True, raw


def merge(files: Iterable[Path]) -> dict[str, dict[str, int]]:
    """Sum the hits of each bin over several exported files."""
    merged: dict[str, dict[str, int]] = {}
    for path in files:
        for point, bins in _load(path)[1].items():
            target = merged.setdefault(point, {})
            for name, hits in bins.items():
                target[name] = target.get(name, 0) + hits
    return merged


def incomplete_points(files: Iterable[Path]) -> set[str]:
    """Points that at least one file marks as partially collected."""
    out: set[str] = set()
    for path in files:
        complete, points = _load(path)
        if not complete:
            out |= set(points)
    return out


def session_missing(files: Iterable[Path]) -> list[str]:
    """The session rule: ``"point: bin"`` never hit in the merged files, for the points
    every file marks complete."""
    files = list(files)
    skip = incomplete_points(files)
    return [
        f"{point}: {b}"
        for point, bins in sorted(merge(files).items())
        if point not in skip
        for b, h in bins.items()
        if not h
    ]


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
