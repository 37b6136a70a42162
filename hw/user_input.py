"""Bad input on the project's command lines: one wording, exit status 2, checked before work.

Every command line (``python -m rtl_gen``, ``recnmp`` and its subcommands, ``python -m
sim_models.*``) reports what a user typed wrong the same way: one line ``PROG: error:
MESSAGE`` on standard error, naming the option and the value, and exit status 2. Exit
status 1 is kept for real failures (a result mismatch, a property that does not hold).

Output paths are checked *before* any work starts, by really creating the folder and a
probe file (``os.access`` says yes to root for places like ``/proc``), so a typo in a path
never throws away a long run. This module lives in ``hw`` only because every command line
sits above it; nothing in the hardware uses it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "ArgumentParser",
    "OutputError",
    "UsageError",
    "fallback_path",
    "integer",
    "number",
    "run_command",
    "writable_dir",
    "writable_file",
]


class UsageError(ValueError):
    """Input a user typed (an option, a value, a path) that the command cannot take."""


class OutputError(OSError):
    """Output that could not be written after the work was done; the message says where it went instead."""


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one line, ``PROG: error: MESSAGE``, exit 2.

    (argparse prints its usage first; ``--help`` still shows it.) Subcommand parsers made with
    ``add_subparsers`` are of this class too.
    """

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: a whole number from ``low`` to ``high`` (no upper bound: ``None``)."""
    span = f"from {low} to {high}" if high is not None else f"of at least {low}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be an integer {span}, got {text!r}")
        return value

    return parse


def number(low: float, high: float, *, below_high: bool = False) -> Callable[[str], float]:
    """An argparse ``type``: a finite number in ``[low, high]`` (``[low, high)`` with ``below_high``)."""
    span = f"in [{low}, {high})" if below_high else f"from {low} to {high}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high or (below_high and value == high):
            raise argparse.ArgumentTypeError(f"must be a number {span}, got {text!r}")
        return value

    return parse


def _describe(error: OSError) -> str:
    return error.strerror or str(error)


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and its ancestors that do not exist yet, the deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _cannot_write(option: str, path, error: OSError) -> UsageError:
    return UsageError(f"{option} {str(path)!r}: cannot write there ({_describe(error)})")


def _probe(folder: Path, probe: Callable[[], None]) -> None:
    """Create ``folder``, run ``probe``, then remove the folders this made: a check leaves nothing."""
    made = _missing_folders(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe()
    finally:
        for made_folder in made:
            try:
                made_folder.rmdir()
            except OSError:
                break


def writable_dir(option: str, path) -> Path:
    """``path`` as a folder that exists or can be made, and takes new files; nothing is left behind.

    Raises
    ------
    UsageError
        Naming ``option`` and ``path``: empty, a file stands there, or the folder cannot be
        made or written (permissions, a name too long, a file on the way).
    """
    if str(path) == "":
        raise UsageError(f"{option} '': give a folder")
    folder = Path(path)
    try:
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"{option} {str(path)!r}: is a file, not a folder")

        def probe():
            with tempfile.TemporaryFile(dir=folder):
                pass

        _probe(folder, probe)
    except OSError as error:
        raise _cannot_write(option, path, error) from None
    return folder


def writable_file(option: str, path) -> Path:
    """``path`` as a file that can be written; an existing file is not changed, nothing is left behind.

    A symbolic link is followed: its target is what is checked (and later written).

    Raises
    ------
    UsageError
        Naming ``option`` and ``path``: empty, a folder stands there (or the path ends in a
        slash), or the file cannot be written (permissions, a name too long, a file on the way).
    """
    text = str(path)
    if text == "":
        raise UsageError(f"{option} '': give a file")
    if text.endswith(("/", os.sep)):
        raise UsageError(f"{option} {text!r}: is a folder, not a file")
    try:
        file = Path(path).resolve() if Path(path).is_symlink() else Path(path)
        if file.is_dir():
            raise UsageError(f"{option} {text!r}: is a folder, not a file")
        existed = file.exists()

        def probe():
            with open(file, "a"):
                pass
            if not existed:
                file.unlink()

        _probe(file.parent, probe)
    except OSError as error:
        raise _cannot_write(option, path, error) from None
    return Path(path)


def fallback_path(name: str) -> Path:
    """A new file in the temporary folder for output whose own place failed after the run."""
    handle, path = tempfile.mkstemp(prefix="recnmp-", suffix=f"-{name}")
    os.close(handle)
    return Path(path)


def run_command(prog: str, command: Callable[[], int]) -> int:
    """``command()``'s status, with one line ``PROG: error: ...`` instead of a traceback for

    - a ``ValueError`` (which ``UsageError`` is): bad input, status 2;
    - an ``OutputError``: the work was done but its output went elsewhere, status 1.
    """
    try:
        return command()
    except (ValueError, OutputError) as error:
        message = " ".join(str(error).split())  # one line, whatever the message held
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2 if isinstance(error, ValueError) else 1
