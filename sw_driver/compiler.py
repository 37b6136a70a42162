"""The packet compiler: checked requests to per-DIMM NMP-Inst streams.

For a call (a list of requests) the compiler

1. orders the requests: with ``table_aware=True`` the requests of one table are made
   consecutive (tables in order of first appearance, requests of a table in call order;
   results are still returned in call order), otherwise call order;
2. cuts each request into packets of at most 16 bags (:data:`sw_driver.pu.PACKET_BAGS`);
   a packet holds bags of one request only and ``psum_tag`` is the bag's index in the
   packet;
3. lays out the lookups in stream order: packet after packet, bag after bag, each bag's
   indices in input order (the order every rank accumulates them in, which is what makes
   results bit-exact with ``sim_models.sls.sls_hardware_order``). Each lookup goes to the
   DIMM of its row (address map) and names its rank in ``daddr``
   (``hw.isa.daddr_compose``); its opcode is ``SUM`` / ``WSUM`` (fp32 tables) or
   ``SUM_Q8`` / ``WSUM_Q8`` (8-bit tables), weighted when the request has weights (float32;
   1.0 otherwise); ``vsize`` from the table; ``ddr_cmd`` from the row-buffer model
   (:mod:`sw_driver.hints`); ``locality`` from hot-entry profiling
   (:mod:`sw_driver.profiling`);
4. per packet and DIMM emits ``CONFIG Q8_ELEMENTS = D`` before the packet's lookups on
   that DIMM when the packet reads an 8-bit table there and the DIMM's ``Q8_ELEMENTS`` is
   not already ``D`` (unknown after device creation or reset), then the lookups, then one
   ``EOP`` to **every** DIMM (``tag_mask`` = the packet's bags, ``elements`` =
   :attr:`~sw_driver.placement.TableLayout.elements`), so every DIMM returns every tag of
   every packet and the host adds them tag by tag;
5. throttles to the C/A transport: per channel, the instructions of its DIMMs are
   interleaved in stream order (per packet: the CONFIGs in DIMM order, the lookups in
   lookup order, the EOPs in DIMM order), and instruction ``k`` of the channel can issue at
   DRAM cycle ``4 * (k // 8)`` (8 NMP-Insts per 4 cycles, :data:`sw_driver.pu.SLOT_INSTS`);
6. packs every DIMM's instructions into 79-bit words (``hw.isa.pack``).

Compiling changes no state: the new row-buffer and ``Q8_ELEMENTS`` states travel in the
:class:`CompiledCall`, and the device adopts them only when the call has run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hw.isa import INST_DTYPE, ConfigRegister, Opcode, config_daddr, daddr_compose, eop_daddr, pack

from . import pu
from .address_map import AddressMap
from .hints import RowBufferModel
from .profiling import locality
from .requests import Request

__all__ = ["LOOKUP_DTYPE", "UNKNOWN_Q8", "CompiledCall", "DimmStream", "PacketInfo", "compile_call", "request_order"]

#: ``Q8_ELEMENTS`` of a DIMM whose register the driver has not written since creation/reset.
UNKNOWN_Q8 = -1

#: One record per lookup, in stream order (:attr:`CompiledCall.lookups`). ``dimm`` is the
#: device-wide DIMM number (channel-major), ``rank`` the rank within it, ``column`` in 8 B
#: units; ``index`` is the table row.
LOOKUP_DTYPE = np.dtype(
    [
        ("request", np.int32),
        ("packet", np.int32),
        ("tag", np.uint8),
        ("index", np.int64),
        ("channel", np.int32),
        ("dimm", np.int32),
        ("rank", np.uint8),
        ("bank_group", np.uint8),
        ("bank", np.uint8),
        ("row", np.int32),
        ("column", np.int32),
        ("vsize", np.uint8),
        ("hint", np.uint8),
        ("locality", np.uint8),
        ("weight", np.float32),
        ("opcode", np.uint8),
    ]
)

_PHASE_CONFIG, _PHASE_LOOKUP, _PHASE_EOP = 0, 1, 2


@dataclass(frozen=True)
class PacketInfo:
    """One packet: a run of at most 16 bags of one request.

    Attributes
    ----------
    request : int
        Position of the request in the caller's list.
    first_bag, bags : int
        The packet holds bags ``first_bag .. first_bag + bags - 1`` of the request; bag
        ``first_bag + t`` has ``psum_tag = t``.
    dim : int
        ``D``: values of each result row the host keeps.
    elements : int
        fp32 values per result vector the DIMMs return (EOP ``elements``, ``>= dim``).
    opcode : int
        The lookup opcode of the packet.
    """

    request: int
    first_bag: int
    bags: int
    dim: int
    elements: int
    opcode: int

    @property
    def tag_mask(self) -> int:
        return (1 << self.bags) - 1


@dataclass(frozen=True)
class DimmStream:
    """The instruction stream of one DIMM for one call.

    Attributes
    ----------
    index : int
        Device-wide DIMM number, channel-major (``channel * dimms_per_channel + dimm``),
        the order in which the host adds DIMM results.
    channel, dimm : int
        The channel and the DIMM within it.
    insts : numpy.ndarray
        Instructions, structured ``hw.isa.INST_DTYPE``.
    words : numpy.ndarray
        The same packed, ``(n, 2) uint64`` (``hw.isa.pack``).
    issue_cycles : numpy.ndarray
        ``int64 (n,)``: the earliest DRAM cycle, from the start of the call, at which the
        channel's transport can deliver each instruction (non-decreasing).
    eop_index : numpy.ndarray
        ``int64 (packets,)``: position in this stream of each packet's EOP; packet ``p``'s
        instructions are ``eop_index[p-1] + 1 .. eop_index[p]``.
    """

    index: int
    channel: int
    dimm: int
    insts: np.ndarray
    words: np.ndarray
    issue_cycles: np.ndarray
    eop_index: np.ndarray


@dataclass(frozen=True)
class CompiledCall:
    """Everything a backend needs to run a call, and the host needs to assemble its results.

    Attributes
    ----------
    requests : tuple of Request
        The checked requests, in the caller's order.
    order : tuple of int
        Request positions in packet (execution) order.
    packets : tuple of PacketInfo
        In execution order; DIMM streams hold them in this order.
    dimms : tuple of DimmStream
        One per DIMM of the device, by device-wide DIMM number (every DIMM has an EOP per packet).
    lookups : numpy.ndarray
        :data:`LOOKUP_DTYPE`, every lookup in stream order.
    channels, dimms_per_channel, ranks_per_dimm : int
        The topology compiled for.
    row_state : numpy.ndarray
        The row-buffer model state after the call (:meth:`RowBufferModel.commit`).
    q8_state : numpy.ndarray
        ``int64 (dimms,)``: each DIMM's ``Q8_ELEMENTS`` after the call (:data:`UNKNOWN_Q8`).
    """

    requests: tuple
    order: tuple
    packets: tuple
    dimms: tuple
    lookups: np.ndarray
    channels: int
    dimms_per_channel: int
    ranks_per_dimm: int
    row_state: np.ndarray
    q8_state: np.ndarray

    @property
    def instructions(self) -> int:
        """NMP-Insts sent, over every DIMM."""
        return sum(len(s.words) for s in self.dimms)

    @property
    def transport_cycles(self) -> int:
        """DRAM cycles the busiest channel's transport needs for the call's instructions."""
        counts = [0] * self.channels
        for stream in self.dimms:
            counts[stream.channel] += len(stream.words)
        return max((-(-c // pu.SLOT_INSTS) * pu.SLOT_CYCLES for c in counts), default=0)


def request_order(requests: Sequence[Request], table_aware: bool) -> list[int]:
    """Execution order of the requests: grouped by table (stable) when ``table_aware``."""
    if not table_aware:
        return list(range(len(requests)))
    first_seen: dict[str, int] = {}
    for position, request in enumerate(requests):
        first_seen.setdefault(request.table.name, position)
    return sorted(range(len(requests)), key=lambda k: (first_seen[requests[k].table.name], k))


def _opcode(request: Request) -> int:
    weighted = request.weights is not None
    if request.table.layout.quantized:
        return int(Opcode.WSUM_Q8 if weighted else Opcode.SUM_Q8)
    return int(Opcode.WSUM if weighted else Opcode.SUM)


def _packets(requests: Sequence[Request], order: Sequence[int]) -> tuple[list[PacketInfo], dict[int, int]]:
    """Cut requests into packets; also the first packet number of each request."""
    packets, first_packet = [], {}
    for k in order:
        request = requests[k]
        first_packet[k] = len(packets)
        layout = request.table.layout
        for first in range(0, request.bags, pu.PACKET_BAGS):
            bags = min(pu.PACKET_BAGS, request.bags - first)
            packets.append(PacketInfo(k, first, bags, layout.dim, layout.elements, _opcode(request)))
    return packets, first_packet


def _lookups(
    requests, order, first_packet, amap: AddressMap, row_model: RowBufferModel, threshold
) -> tuple[np.ndarray, np.ndarray]:
    """Every lookup of the call in stream order (:data:`LOOKUP_DTYPE`), and the new row state."""
    parts, table_of = [], []
    table_ids: dict[str, int] = {}
    for k in order:
        request = requests[k]
        n = request.indices.size
        part = np.zeros(n, LOOKUP_DTYPE)
        bag = np.repeat(np.arange(request.bags), request.lengths)
        part["request"] = k
        part["packet"] = first_packet[k] + bag // pu.PACKET_BAGS
        part["tag"] = bag % pu.PACKET_BAGS
        part["index"] = request.indices
        where = request.table.locate(request.indices)
        part["channel"] = where["channel"]
        part["dimm"] = amap.global_dimm(channel=where["channel"], dimm=where["dimm"])
        for name in ("rank", "bank_group", "bank", "row", "column"):
            part[name] = where[name]
        part["vsize"] = request.table.layout.vsize
        part["weight"] = 1.0 if request.weights is None else request.weights
        part["opcode"] = _opcode(request)
        table_of.append(np.full(n, table_ids.setdefault(request.table.name, len(table_ids)), np.int64))
        parts.append(part)
    lookups = np.concatenate(parts) if parts else np.zeros(0, LOOKUP_DTYPE)
    g = amap.geometry
    bank = (
        (lookups["dimm"].astype(np.int64) * amap.ranks_per_dimm + lookups["rank"]) * g.bank_groups
        + lookups["bank_group"]
    ) * g.banks_per_group + lookups["bank"]
    lookups["hint"], row_state = row_model.predict(bank, lookups["row"])
    tables = np.concatenate(table_of) if table_of else np.zeros(0, np.int64)
    lookups["locality"] = locality(tables, lookups["index"], threshold)
    return lookups, row_state


def _records(count: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    return np.zeros(count, INST_DTYPE), {k: np.zeros(count, np.int64) for k in ("packet", "phase", "pos", "dimm")}


def _lookup_records(lookups: np.ndarray):
    insts, keys = _records(lookups.size)
    for name in ("opcode", "vsize", "weight", "locality"):
        insts[name] = lookups[name]
    insts["ddr_cmd"] = lookups["hint"]
    insts["psum_tag"] = lookups["tag"]
    insts["daddr"] = daddr_compose(
        rank=lookups["rank"],
        bank_group=lookups["bank_group"],
        bank=lookups["bank"],
        row=lookups["row"],
        column=lookups["column"],
    )
    keys["packet"][:] = lookups["packet"]
    keys["phase"][:] = _PHASE_LOOKUP
    keys["pos"][:] = np.arange(lookups.size)
    keys["dimm"][:] = lookups["dimm"]
    return insts, keys


def _eop_records(packets: Sequence[PacketInfo], dimms: int):
    insts, keys = _records(len(packets) * dimms)
    insts["opcode"] = int(Opcode.EOP)
    if packets:
        per_packet = np.array([eop_daddr(tag_mask=p.tag_mask, elements=p.elements) for p in packets], np.uint32)
        insts["daddr"] = np.repeat(per_packet, dimms)
    keys["packet"][:] = np.repeat(np.arange(len(packets)), dimms)
    keys["phase"][:] = _PHASE_EOP
    keys["pos"][:] = np.tile(np.arange(dimms), len(packets))
    keys["dimm"][:] = keys["pos"]
    return insts, keys


def _config_records(packets: Sequence[PacketInfo], lookups: np.ndarray, q8_state: np.ndarray):
    """CONFIG Q8_ELEMENTS where a packet's 8-bit lookups meet a DIMM set to another D; updates ``q8_state``."""
    quantized = np.isin(lookups["opcode"], [int(Opcode.SUM_Q8), int(Opcode.WSUM_Q8)])
    pairs = np.unique(np.stack([lookups["packet"][quantized], lookups["dimm"][quantized]], axis=1), axis=0)
    chosen = []
    for packet, dimm in pairs.reshape(-1, 2).tolist():  # sorted by packet, then DIMM
        dim = packets[packet].dim
        if q8_state[dimm] != dim:
            q8_state[dimm] = dim
            chosen.append((packet, dimm, dim))
    insts, keys = _records(len(chosen))
    insts["opcode"] = int(Opcode.CONFIG)
    for i, (packet, dimm, dim) in enumerate(chosen):
        insts["daddr"][i] = config_daddr(register=ConfigRegister.Q8_ELEMENTS, value=dim)
        keys["packet"][i], keys["phase"][i], keys["pos"][i], keys["dimm"][i] = packet, _PHASE_CONFIG, dimm, dimm
    return insts, keys


def _issue_cycles(channel_of: np.ndarray, channels: int) -> np.ndarray:
    """Earliest issue cycle of each instruction of the merged stream (stream order)."""
    cycles = np.zeros(channel_of.size, np.int64)
    for channel in range(channels):
        mine = np.flatnonzero(channel_of == channel)
        cycles[mine] = (np.arange(mine.size) // pu.SLOT_INSTS) * pu.SLOT_CYCLES
    return cycles


def compile_call(
    requests: Sequence[Request],
    *,
    address_map: AddressMap,
    row_model: RowBufferModel,
    q8_state: np.ndarray,
    table_aware: bool = True,
    hot_entry_threshold: int | None = None,
) -> CompiledCall:
    """Compile checked requests into per-DIMM instruction streams (no state changes).

    Parameters
    ----------
    requests : sequence of Request
        Checked requests (:func:`sw_driver.requests.normalise`), in the caller's order.
    address_map : AddressMap
        The device topology and map.
    row_model : RowBufferModel
        The row-buffer model; read only (the new state is in the result).
    q8_state : numpy.ndarray
        Each DIMM's ``Q8_ELEMENTS`` before the call; not modified.
    table_aware : bool
        Group the requests of one table (see the module docstring).
    hot_entry_threshold : int or None
        Hot-entry profiling threshold (:func:`sw_driver.profiling.locality`).

    Returns
    -------
    CompiledCall
    """
    amap = address_map
    dimms = amap.channels * amap.dimms_per_channel
    order = request_order(requests, table_aware)
    packets, first_packet = _packets(requests, order)
    lookups, row_state = _lookups(requests, order, first_packet, amap, row_model, hot_entry_threshold)
    new_q8 = np.array(q8_state, np.int64, copy=True)

    parts = [_config_records(packets, lookups, new_q8), _lookup_records(lookups), _eop_records(packets, dimms)]
    insts = np.concatenate([p[0] for p in parts])
    keys = {k: np.concatenate([p[1][k] for p in parts]) for k in parts[0][1]}
    stream = np.lexsort((keys["pos"], keys["phase"], keys["packet"]))
    insts, dimm_of = insts[stream], keys["dimm"][stream]
    cycles = _issue_cycles(dimm_of // amap.dimms_per_channel, amap.channels)

    streams = []
    for d in range(dimms):
        mine = np.flatnonzero(dimm_of == d)
        own = insts[mine]
        eops = np.flatnonzero(own["opcode"] == int(Opcode.EOP)).astype(np.int64)
        words = pack(own) if own.size else np.zeros((0, 2), np.uint64)
        channel, dimm = divmod(d, amap.dimms_per_channel)
        streams.append(DimmStream(d, channel, dimm, own, words, cycles[mine], eops))
    return CompiledCall(
        tuple(requests),
        tuple(order),
        tuple(packets),
        tuple(streams),
        lookups,
        amap.channels,
        amap.dimms_per_channel,
        amap.ranks_per_dimm,
        row_state,
        new_q8,
    )
