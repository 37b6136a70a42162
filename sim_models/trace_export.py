"""Export a call's host-baseline request stream as DRAMsim3 and Ramulator 2 traces.

The host baseline reads every embedding row itself, one 64 B line at a time
(:func:`sim_models.host_reads.host_reads`: the compiled call's lookups in stream order, lines
of a lookup in address order, physical addresses from the device's address map). This
module writes that stream, unchanged and in that order, so the baseline can be rerun on the
established C++ DRAM simulators. One file holds every channel: both simulators model a
whole memory system and pick the channel from the address.

Formats (checked against the simulators' sources):

- **DRAMsim3** (umd-memsys/DRAMsim3 at 2981759, ``src/common.cc`` ``operator>>(istream&,
  Transaction&)``: ``is >> std::hex >> addr >> op >> std::dec >> added_cycle``; a write is
  ``WRITE``/``write``/``P_MEM_WR``/``BOFF``, anything else a read): one line per 64 B read,
  ``0x<hex address> READ <cycle>``. ``src/cpu.cc`` ``TraceBasedCPU::ClockTick`` offers the
  next line once its cycle has come (memory clock cycles) and the controller accepts it,
  at most one per cycle. The cycle column is ``i * interval`` for read ``i``: with the
  default ``interval=0`` every read is available at cycle 0, so the stream runs as fast as
  the controller's queues take it (the closed-loop, always-ready host of our baseline
  model); ``interval=k`` paces the reads one per ``k`` cycles.
- **Ramulator 2** (CMU-SAFARI/ramulator2, ``LoadStoreTrace`` frontend,
  ``src/frontend/impl/memory_trace/loadstore_trace.cpp`` at 628a3b1, now
  ``src/ramulator/frontend/impl/memory_trace/loadstore_trace.cpp``): one line per access,
  ``LD 0x<hex address>``, tokens split on a single space (``tokenize(tokens, line, " ")``
  expects exactly two), ``LD`` a read, ``ST`` a write. The frontend sends the next request
  every cycle the memory system accepts it and finishes after one pass.

Addresses are the driver's physical byte addresses. For a simulator to decode them into the
same channel, rank, bank group, bank, row and column, configure its address mapping to the
driver's map: :func:`dramsim3_address_mapping` gives DRAMsim3's ``address_mapping`` string
and :func:`ramulator2_address_mapper` the matching Ramulator 2 linear mapper (or says why
there is none). ``python -m sim_models.trace_export --help`` writes the traces of a model
workload from the command line (``docs/workloads.md``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from hw.user_input import ArgumentParser, UsageError, integer, number, run_command, writable_file

from .host_reads import host_reads

__all__ = [
    "dramsim3_address_mapping",
    "dramsim3_text",
    "export_traces",
    "main",
    "ramulator2_address_mapper",
    "ramulator2_text",
    "write_dramsim3_trace",
    "write_ramulator2_trace",
]

_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)
_DEC = np.frombuffer(b"0123456789", np.uint8)


def _digits(values: np.ndarray, base: int) -> tuple[np.ndarray, np.ndarray]:
    """Digits of non-negative ``values`` as ASCII (``uint8 (n, width)``), and which to keep
    (no leading zeros, at least one digit)."""
    values = values.astype(np.uint64)
    top = int(values.max()) if values.size else 0
    width = 1
    while base**width <= top:
        width += 1
    if base == 16:
        shifts = np.arange(4 * (width - 1), -1, -4, dtype=np.uint64)
        digit = ((values[:, None] >> shifts) & np.uint64(15)).astype(np.uint8)
    else:
        digit = (
            (values[:, None] // np.uint64(10) ** np.arange(width - 1, -1, -1, dtype=np.uint64)) % np.uint64(10)
        ).astype(np.uint8)
    chars = (_HEX if base == 16 else _DEC)[digit]
    keep = np.cumsum(digit != 0, axis=1) > 0
    keep[:, -1] = True
    return chars, keep


def _lines(parts: list) -> bytes:
    """Join per-line columns: each part is ``bytes`` (the same for every line) or a
    ``(chars, keep)`` pair from :func:`_digits`."""
    n = next(p[0].shape[0] for p in parts if isinstance(p, tuple))
    chars, keeps = [], []
    for p in parts:
        if isinstance(p, bytes):
            chars.append(np.broadcast_to(np.frombuffer(p, np.uint8), (n, len(p))))
            keeps.append(np.ones((n, len(p)), bool))
        else:
            chars.append(p[0])
            keeps.append(p[1])
    return np.hstack(chars)[np.hstack(keeps)].tobytes()


def _check_reads(reads: np.ndarray) -> np.ndarray:
    if not isinstance(reads, np.ndarray) or reads.dtype.names is None or "address" not in reads.dtype.names:
        raise TypeError("reads must be sim_models.host_reads.HOST_READ_DTYPE records (host_reads(...))")
    return reads["address"]


def dramsim3_text(reads: np.ndarray, *, interval: int = 0) -> bytes:
    """The DRAMsim3 trace of host reads: ``0x<addr> READ <cycle>`` per read.

    Parameters
    ----------
    reads : numpy.ndarray
        :data:`sim_models.host_reads.HOST_READ_DTYPE` records.
    interval : int, default 0
        Read ``i`` is available at cycle ``i * interval`` (0: all at cycle 0).

    Returns
    -------
    bytes
        ASCII, one line per read, each ending in ``\\n``.
    """
    if isinstance(interval, bool) or not isinstance(interval, int | np.integer) or interval < 0:
        raise ValueError(f"interval must be a non-negative int, got {interval!r}")
    address = _check_reads(reads)
    if address.size == 0:
        return b""
    cycles = np.arange(address.size, dtype=np.uint64) * np.uint64(interval)
    return _lines([b"0x", _digits(address, 16), b" READ ", _digits(cycles, 10), b"\n"])


def ramulator2_text(reads: np.ndarray) -> bytes:
    """The Ramulator 2 load/store trace of host reads: ``LD 0x<addr>`` per read."""
    address = _check_reads(reads)
    if address.size == 0:
        return b""
    return _lines([b"LD 0x", _digits(address, 16), b"\n"])


def write_dramsim3_trace(path, call, address_map, *, interval: int = 0) -> int:
    """Write a compiled call's host-baseline reads as a DRAMsim3 trace (:func:`dramsim3_text`).

    Parameters
    ----------
    path : str or os.PathLike
    call : sw_driver.compiler.CompiledCall
        ``Device.compile(requests)``.
    address_map : sw_driver.address_map.AddressMap
        The device's (``Device.address_map``).
    interval : int, default 0

    Returns
    -------
    int
        Lines written (64 B reads).
    """
    reads = host_reads(call.lookups, address_map)
    _write(path, dramsim3_text(reads, interval=interval))
    return int(reads.size)


def write_ramulator2_trace(path, call, address_map) -> int:
    """Write a compiled call's host-baseline reads as a Ramulator 2 ``LoadStoreTrace``.

    Parameters and return as :func:`write_dramsim3_trace`.
    """
    reads = host_reads(call.lookups, address_map)
    _write(path, ramulator2_text(reads))
    return int(reads.size)


def export_traces(device, requests, *, dramsim3=None, ramulator2=None, interval: int = 0) -> int:
    """Compile ``requests`` on ``device`` (no state changes) and write the traces asked for.

    Parameters
    ----------
    device : sw_driver.Device
    requests : sequence
        As ``Device.run``.
    dramsim3, ramulator2 : str or os.PathLike, optional
        Output paths.
    interval : int, default 0
        DRAMsim3 cycle column (:func:`dramsim3_text`).

    Returns
    -------
    int
        64 B reads in the stream.
    """
    reads = host_reads(device.compile(requests).lookups, device.address_map)
    if dramsim3 is not None:
        _write(dramsim3, dramsim3_text(reads, interval=interval))
    if ramulator2 is not None:
        _write(ramulator2, ramulator2_text(reads))
    return int(reads.size)


# -- matching address mappings ---------------------------------------------------------------------


def _sim_fields(address_map, simulator: str) -> list[str]:
    """The map's fields above the 64 B line offset, LSB first, as simulator levels
    (``co, ch, ra, bg, ba, ro``; DIMM and rank merge into one rank level), zero-width ones dropped."""
    g = address_map.geometry
    if g.column_bytes * g.burst_columns != 64:
        raise ValueError(f"{simulator} reads 64 B per request; this geometry's bursts are {g.burst_bytes} B")
    order = [n for n in address_map.order if address_map.widths[n] > 0 or n in ("byte", "column")]
    if order[1] != "column":
        raise ValueError(
            f"{simulator} needs the column bits directly above the byte offset; the address map's order is "
            f"{list(address_map.order)}"
        )
    levels = {
        "column": "co",
        "channel": "ch",
        "dimm": "ra",
        "rank": "ra",
        "bank_group": "bg",
        "bank": "ba",
        "row": "ro",
    }
    out: list[str] = []
    for name in order[1:]:
        level = levels[name]
        if out and out[-1] == "ra" and level == "ra":
            continue
        if level in out:
            raise ValueError(
                f"{simulator} has one rank level: 'dimm' and 'rank' must be adjacent in the address map, got "
                f"{list(address_map.order)}"
            )
        out.append(level)
    return out


def dramsim3_address_mapping(address_map) -> str:
    """DRAMsim3's ``address_mapping`` (``[system]`` of its ``.ini``) that decodes the map's addresses.

    DRAMsim3 drops the 6 bits of a 64 B request (``shift_bits``), then reads the fields named
    MSB first in a 12-character string (``ch``, ``ra``, ``bg``, ``ba``, ``ro``, ``co``;
    ``src/configuration.cc`` ``Config::SetAddressMapping`` and ``AddressMapping``). The
    driver's DIMM and rank fields become DRAMsim3's rank (``dimms_per_channel *
    ranks_per_dimm`` ranks per channel: set ``channels`` and ``channel_size = ranks * rank
    MB``, 8192 per rank for the 8 Gb x8 configs); the geometry (4 bank groups of 4 banks, 64 K
    rows, 1024 columns, BL8, 64-bit bus) is that of ``configs/DDR4_8Gb_x8_*.ini``.

    Parameters
    ----------
    address_map : sw_driver.address_map.AddressMap

    Returns
    -------
    str
        E.g. ``"robabgrachco"`` for the driver's default order.

    Raises
    ------
    ValueError
        The map cannot be expressed (column not directly above the byte offset, DIMM and rank
        fields not adjacent).
    """
    _sim_fields(address_map, "DRAMsim3")  # the checks
    # Every level in the map's order (zero-width ones too, where they sit: harmless, and the
    # string is then the same for every topology); the rank level where DIMM/rank bits are.
    widths = address_map.widths
    rank_bits = widths["dimm"] + widths["rank"]
    lsb_first = []
    for name in address_map.order[1:]:
        level = {"column": "co", "channel": "ch", "bank_group": "bg", "bank": "ba", "row": "ro"}.get(name, "ra")
        if level == "ra" and ("ra" in lsb_first or (rank_bits and not widths[name])):
            continue
        lsb_first.append(level)
    return "".join(reversed(lsb_first))


#: Ramulator 2's linear mappers (``src/addr_mapper/impl/linear_mappers.cpp`` at 628a3b1), as
#: the levels above the 64 B transaction offset, LSB first.
_RAMULATOR2_MAPPERS = {
    "RoBaRaCoCh": ("ch", "co", "ra", "bg", "ba", "ro"),
    "ChRaBaRoCo": ("co", "ro", "ba", "bg", "ra", "ch"),
}


def ramulator2_address_mapper(address_map) -> str:
    """The Ramulator 2 linear address mapper that decodes the map's addresses.

    Ramulator 2's DDR4 levels are channel, rank, bank group, bank, row, column; after the
    64 B transaction offset ``ChRaBaRoCo`` takes, LSB first, column, row, bank, bank group,
    rank, channel, and ``RoBaRaCoCh`` channel, column, rank, bank group, bank, row. The
    driver's default order matches ``RoBaRaCoCh`` with one channel; with several channels
    build the device with ``address_map=("byte", "column", "row", "bank", "bank_group",
    "rank", "dimm", "channel")`` for ``ChRaBaRoCo``.

    Parameters
    ----------
    address_map : sw_driver.address_map.AddressMap

    Returns
    -------
    str
        ``"RoBaRaCoCh"`` or ``"ChRaBaRoCo"``.

    Raises
    ------
    ValueError
        No linear mapper decodes this map (the message gives the map's levels).
    """
    fields = _sim_fields(address_map, "Ramulator 2")
    for name, levels in _RAMULATOR2_MAPPERS.items():
        present = [lv for lv in levels if lv in fields]
        if present == fields:
            return name
    raise ValueError(
        f"no Ramulator 2 linear mapper decodes this address map (levels above the line offset, LSB first: "
        f"{fields}); the mappers are " + ", ".join(f"{n} {list(v)}" for n, v in _RAMULATOR2_MAPPERS.items())
    )


def _write(path, text: bytes) -> None:
    """Write a trace, creating its folder."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(text)


# -- command line -------------------------------------------------------------------------------


def main(argv=None) -> int:
    """``python -m sim_models.trace_export``: write the traces of one batch of a model workload."""
    from .workloads import DEFAULT_DIM, DEFAULT_STATS_PATH, MODEL_SHAPES

    parser = ArgumentParser(
        prog="python -m sim_models.trace_export",
        description="Write the host-baseline read stream of a model workload as DRAMsim3 / Ramulator 2 traces.",
    )
    parser.add_argument("--model", default="RMC1-small", choices=list(MODEL_SHAPES))
    parser.add_argument("--batch", type=integer(1, 1 << 20), default=16)
    parser.add_argument(
        "--pooling", type=integer(1, 1024), default=None, help="lookups per bag (default: the model's 20-60)"
    )
    parser.add_argument(
        "--rows", type=integer(1, 1 << 32), default=None, help="rows per table (default: the model's 1 M)"
    )
    parser.add_argument("--dim", type=integer(1, 1 << 12), default=DEFAULT_DIM, help="fp32 values per row")
    parser.add_argument("--generator", default="uniform", choices=["uniform", "zipf", "production_like"])
    parser.add_argument("--alpha", type=number(0.0, 100.0), default=1.0, help="Zipf exponent")
    parser.add_argument("--stats", default=str(DEFAULT_STATS_PATH), help="locality statistics (production_like)")
    parser.add_argument("--seed", type=integer(0, 2**63 - 1), default=0)
    parser.add_argument("--channels", type=integer(1, 16), default=1)
    parser.add_argument("--dimms", type=integer(1, 8), default=1, help="DIMMs per channel")
    parser.add_argument("--ranks", type=integer(1, 4), default=2, help="ranks per DIMM")
    parser.add_argument("--page-colouring", action="store_true")
    parser.add_argument(
        "--address-map",
        help="field order LSB first, comma-separated (default: the driver's byte,column,channel,dimm,rank,"
        "bank_group,bank,row; byte,column,row,bank,bank_group,rank,dimm,channel matches Ramulator 2's ChRaBaRoCo)",
    )
    parser.add_argument(
        "--interval", type=integer(0, 1 << 32), default=0, help="DRAMsim3 cycle column: read i at cycle i * interval"
    )
    parser.add_argument("--dramsim3", help="DRAMsim3 trace to write")
    parser.add_argument("--ramulator2", help="Ramulator 2 load/store trace to write")
    args = parser.parse_args(argv)
    if args.dramsim3 is None and args.ramulator2 is None:
        parser.error("give --dramsim3 PATH and/or --ramulator2 PATH")
    if args.dramsim3 is not None and args.dramsim3 == args.ramulator2:
        parser.error(f"--dramsim3 and --ramulator2 name the same file {args.dramsim3!r}")
    return run_command(parser.prog, lambda: _export(args))


def _export(args) -> int:
    from sw_driver import Device

    from .workloads import load_model_tables, model_workload

    for option, path in (("--dramsim3", args.dramsim3), ("--ramulator2", args.ramulator2)):
        if path is not None:
            writable_file(option, path)
    if args.generator == "production_like" and not Path(args.stats).is_file():
        raise UsageError(f"--stats {args.stats!r}: no such file")
    options = {"zipf": {"alpha": args.alpha}, "production_like": {"stats": args.stats}}.get(args.generator, {})
    try:
        workload = model_workload(
            args.model,
            batch=args.batch,
            generator=args.generator,
            seed=args.seed,
            rows=args.rows,
            pooling=args.pooling,
            dim=args.dim,
            **options,
        )
        order = None if args.address_map is None else [f.strip() for f in args.address_map.split(",")]
        device = Device(args.channels, args.dimms, args.ranks, page_colouring=args.page_colouring, address_map=order)
        load_model_tables(device, workload, values=False)
        reads = export_traces(
            device,
            [w.request for w in workload],
            dramsim3=args.dramsim3,
            ramulator2=args.ramulator2,
            interval=args.interval,
        )
    except (KeyError, TypeError, OSError) as error:  # a missing --stats file, a bad shape
        raise UsageError(str(error)) from None
    lookups = sum(w.indices.size for w in workload)
    print(f"{lookups} lookups, {reads} reads of 64 B")
    status = 0
    for name, path, mapping in (
        ("DRAMsim3", args.dramsim3, dramsim3_address_mapping),
        ("Ramulator 2", args.ramulator2, ramulator2_address_mapper),
    ):
        if path is not None:
            try:
                print(f"{name}: {path} (address mapping: {mapping(device.address_map)})")
            except ValueError as error:
                # The file is written, but the simulator would map its addresses differently.
                print(
                    f"warning: {name}: {path} follows an address map no {name} mapping reproduces ({error}); "
                    f"choose one with --address-map",
                    file=sys.stderr,
                )
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
