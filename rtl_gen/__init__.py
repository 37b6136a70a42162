"""Elaborate RecNMP blocks into Verilog with a JSON side file (``python -m rtl_gen --help``)."""

from .generate import Generated, generate
from .registry import BlockError, block_names, get_block
from .toolchain import ToolchainError, setup_amaranth, setup_verilator

__all__ = [
    "BlockError",
    "Generated",
    "ToolchainError",
    "block_names",
    "generate",
    "get_block",
    "setup_amaranth",
    "setup_verilator",
]
