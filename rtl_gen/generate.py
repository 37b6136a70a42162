"""Elaborate a registered block into Verilog plus a JSON side file.

The JSON side file (``BLOCK.json``) holds:

* ``top``: the Verilog module name (the block name);
* ``block`` and ``params``: what was generated, with every parameter value used;
* ``ports``: every port of the module in declaration order, with ``direction``
  (``input``/``output``) and ``width``, read back from the generated Verilog;
* ``layouts``: for every port that carries a struct (a stream payload, for instance), each
  field's dotted ``name``, bit ``offset`` and ``width``, nested structs flattened.

Files are rewritten only when their content changes, so simulator builds that depend on
them are reused when nothing changed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .registry import get_block
from .toolchain import setup_amaranth

__all__ = ["Generated", "generate", "layout_fields"]


@dataclass(frozen=True)
class Generated:
    """Paths and contents of one generation."""

    top: str
    verilog_path: Path
    json_path: Path
    description: dict[str, Any]


def layout_fields(layout, prefix: str = "", base: int = 0) -> list[dict[str, Any]]:
    """Flatten an ``amaranth.lib.data`` layout to ``[{name, offset, width}]`` (leaves only)."""
    from amaranth.lib import data

    fields = []
    for name, field in layout:
        path = f"{prefix}{name}"
        shape = field.shape
        if isinstance(shape, data.Layout):
            fields.extend(layout_fields(shape, f"{path}.", base + field.offset))
        else:
            fields.append({"name": path, "offset": base + field.offset, "width": field.width})
    return fields


def _signature_layouts(component) -> dict[str, list[dict[str, Any]]]:
    from amaranth.lib import data

    layouts = {}
    for path, member, _value in component.signature.flatten(component):
        if member.is_port and isinstance(member.shape, data.Layout):
            name = "__".join(str(p) for p in path)
            layouts[name] = layout_fields(member.shape)
    return layouts


_PORT_DECL = re.compile(r"^\s*(input|output|inout)\s+(?:wire\s+|reg\s+)?(?:\[(\d+):(\d+)\]\s+)?(\w+)\s*;")


def _verilog_ports(verilog: str, top: str) -> list[dict[str, Any]]:
    """Port declarations of module ``top`` in the order the module header lists them."""
    match = re.search(rf"^module {re.escape(top)}\s*\((.*?)\);(.*?)^endmodule", verilog, re.S | re.M)
    if match is None:
        raise RuntimeError(f"module {top} not found in the generated Verilog")
    order = [p.strip() for p in match[1].split(",") if p.strip()]
    decls = {}
    for line in match[2].splitlines():
        decl = _PORT_DECL.match(line)
        if decl:
            width = int(decl[2]) - int(decl[3]) + 1 if decl[2] is not None else 1
            decls[decl[4]] = {"name": decl[4], "direction": decl[1], "width": width}
    return [decls[name] for name in order]


def _write_if_changed(path: Path, text: str) -> None:
    if path.exists() and path.read_text() == text:
        return
    path.write_text(text)


def generate(block: str, out_dir, params: Mapping[str, Any] | None = None) -> Generated:
    """Elaborate ``block`` with ``params`` into ``out_dir/BLOCK.v`` and ``out_dir/BLOCK.json``.

    Parameters
    ----------
    block : str
        A registered block name (see ``python -m rtl_gen --list``).
    out_dir : path-like
        Created if missing.
    params : mapping, optional
        Parameter overrides, already typed (``int``/``bool``/``str``).

    Raises
    ------
    rtl_gen.BlockError
        Unknown block or parameter, or a value the block rejects.
    """
    setup_amaranth()
    from amaranth.back import verilog

    spec = get_block(block)
    component, used = spec.elaborate(dict(params or {}))
    text = verilog.convert(component, name=spec.name, emit_src=False)

    description = {
        "top": spec.name,
        "block": spec.name,
        "params": used,
        "ports": _verilog_ports(text, spec.name),
        "layouts": _signature_layouts(component),
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    verilog_path = out / f"{spec.name}.v"
    json_path = out / f"{spec.name}.json"
    _write_if_changed(verilog_path, text)
    _write_if_changed(json_path, json.dumps(description, indent=2) + "\n")
    return Generated(spec.name, verilog_path, json_path, description)
