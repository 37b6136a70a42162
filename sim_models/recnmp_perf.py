"""RecNMP performance model: cycles, DRAM commands and cache figures of compiled calls.

:class:`RecNMPPerfModel` runs the driver's compiled instruction streams
(``sw_driver.compiler.CompiledCall``) on a cycle-level model of every DIMM's PU: the
decoder, per rank the instruction queue, issue stage, RankCache (true LRU, the RTL's
geometry), reorder buffer, the RankScheduler's FR-FCFS policy and DDR4 timing cycle for
cycle, retire and datapath (8-bit row rate included), the EOP drain and the adder tree.
The loop is :func:`sim_models.recnmp_kernel.simulate_dimm` (numba). DIMMs run
independently; the C/A transport limit (8 NMP-Insts per 4 cycles per channel, shared by
the channel's DIMMs) is in the streams' ``issue_cycles``. A packet ends when its slowest
rank has drained (load imbalance), and a call when its slowest DIMM has.

Like the RTL backend, every call starts from a PU fresh out of reset: empty caches, the
scheduler's recovery done (its 16 PREs and one REF are in the command counts, as the DRAM
model counts them), ``cycles`` from the first instruction offered to the last result beat.
The model's agreement with the RTL is tested (``tests/sim_models/test_recnmp_perf.py``)
and documented in ``docs/perf_model.md``.
"""

from __future__ import annotations

import inspect
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from hw.ddr4 import DDR4Geometry, DDR4Timing, line_address_layout
from hw.isa import EOP_FIELDS, LOOKUP_OPCODES, MAX_VSIZE, Q8_HEADER_BYTES, ConfigRegister, Opcode, daddr_split
from hw.rank_issue import RankIssue
from hw.rank_nmp import INST_QUEUE_DEPTH, RankNMP
from hw.rank_scheduler import RankScheduler
from hw.refresh_control import recovery_cycles

from . import recnmp_kernel as k

__all__ = ["COUNTERS", "DimmPerf", "PerfResult", "RecNMPPerfModel"]

#: Per-rank figures of :attr:`DimmPerf.counters`, in kernel order.
COUNTERS = (
    "acts",
    "pres",
    "reads",
    "refs",
    "row_hits",
    "row_misses",
    "row_conflicts",
    "hint_mismatches",
    "cache_hits",
    "cache_misses",
    "cache_bypasses",
    "cache_fills",
    "cache_evictions",
    "lookups",
    "lines",
    "datapath_beats",
    "drain_beats",
    "data_bus_cycles",
)
assert len(COUNTERS) == k.N_COUNTERS

_RANK_NMP = {name: p.default for name, p in inspect.signature(RankNMP.__init__).parameters.items()}
_STARVATION = inspect.signature(RankScheduler.__init__).parameters["starvation_limit"].default
_LOOKUPS = np.array(sorted(int(o) for o in LOOKUP_OPCODES))
_QUANTISED = (int(Opcode.SUM_Q8), int(Opcode.WSUM_Q8))
_WEIGHTED = (int(Opcode.WSUM), int(Opcode.WSUM_Q8))
_EOP = {f.name: f for f in EOP_FIELDS}


@dataclass(frozen=True)
class DimmPerf:
    """One DIMM's figures for one call.

    Attributes
    ----------
    cycles : int
        DRAM cycles from the first instruction offered to the cycle after the last result beat.
    packet_end : numpy.ndarray
        ``int64 (packets,)``: cycle of each packet's last result beat.
    counters : numpy.ndarray
        ``int64 (ranks, len(COUNTERS))``, per rank (recovery PREs and REF included in
        ``pres`` and ``refs``).
    """

    cycles: int
    packet_end: np.ndarray
    counters: np.ndarray

    def rank_counters(self, rank: int) -> dict[str, int]:
        return dict(zip(COUNTERS, self.counters[rank].tolist()))


@dataclass(frozen=True)
class PerfResult:
    """The model's figures for one call: per DIMM (:class:`DimmPerf`), and totals."""

    dimms: tuple

    @property
    def cycles(self) -> int:
        """The slowest DIMM's cycles."""
        return max((d.cycles for d in self.dimms), default=0)

    def total(self, name: str) -> int:
        """A counter summed over every rank of every DIMM."""
        column = COUNTERS.index(name)
        return int(sum(int(d.counters[:, column].sum()) for d in self.dimms))


class RecNMPPerfModel:
    """Cycle-level performance model of a RecNMP device (one PU per DIMM).

    Parameters
    ----------
    ranks_per_dimm : {1, 2, 4}
    timing : hw.ddr4.DDR4Timing
    geometry : hw.ddr4.DDR4Geometry
    cache_size_bytes, cache_ways : int
        RankCache per rank (the RTL's geometry: ``size / (64 * ways)`` sets).
    lanes, max_elements, rob_lines, scheduler_depth, mul_latency, add_latency : int
        The Rank-NMP's parameters (defaults: ``hw.rank_nmp.RankNMP``'s).
    starvation_limit : int
        The scheduler's (default: ``hw.rank_scheduler.RankScheduler``'s).
    max_cycles : int or None
        A DIMM stream taking longer raises ``RuntimeError`` (a guard against a model that
        does not finish). Default: a bound from the stream, every line a row conflict
        behind every refresh (:meth:`cycle_bound`).
    workers : int or None
        Threads that simulate DIMMs in parallel (default: the CPU cores; 1: sequential).
    """

    def __init__(
        self,
        *,
        ranks_per_dimm: int,
        timing: DDR4Timing = DDR4Timing(),
        geometry: DDR4Geometry = DDR4Geometry(),
        cache_size_bytes: int = _RANK_NMP["cache_size_bytes"],
        cache_ways: int = _RANK_NMP["cache_ways"],
        lanes: int = _RANK_NMP["lanes"],
        max_elements: int = _RANK_NMP["max_elements"],
        rob_lines: int = _RANK_NMP["rob_lines"],
        scheduler_depth: int = _RANK_NMP["scheduler_depth"],
        mul_latency: int = _RANK_NMP["mul_latency"],
        add_latency: int = _RANK_NMP["add_latency"],
        starvation_limit: int = _STARVATION,
        max_cycles: int | None = None,
        workers: int | None = None,
    ):
        if ranks_per_dimm not in (1, 2, 4):
            raise ValueError(f"ranks_per_dimm must be 1, 2 or 4, got {ranks_per_dimm!r}")
        # The RTL's own constructors validate the rest (one set of rules).
        RankNMP(
            timing=timing,
            geometry=geometry,
            cache_size_bytes=cache_size_bytes,
            cache_ways=cache_ways,
            lanes=lanes,
            max_elements=max_elements,
            rob_lines=rob_lines,
            scheduler_depth=scheduler_depth,
            mul_latency=mul_latency,
            add_latency=add_latency,
        )
        RankScheduler(timing=timing, geometry=geometry, depth=scheduler_depth, starvation_limit=starvation_limit)
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ValueError(f"workers must be None or a positive int, got {workers!r}")
        self.workers = workers or os.cpu_count() or 1
        self.ranks_per_dimm = ranks_per_dimm
        self.timing, self.geometry = timing, geometry
        self.lanes, self.max_elements = lanes, max_elements
        self.sets = cache_size_bytes // (geometry.burst_bytes * cache_ways)
        self.ways = cache_ways
        layout = dict(line_address_layout(geometry))
        self._offsets = {name: field.offset for name, field in layout.items()}
        t = timing
        params = np.zeros(k.N_PARAMS, np.int64)
        values = {
            k.P_RANKS: ranks_per_dimm,
            k.P_TRCD: t.tRCD,
            k.P_TCL: t.tCL,
            k.P_TRP: t.tRP,
            k.P_TRAS: t.tRAS,
            k.P_TRC: t.tRC,
            k.P_TBL: t.tBL,
            k.P_TCCD_S: t.tCCD_S,
            k.P_TCCD_L: t.tCCD_L,
            k.P_TRRD_S: t.tRRD_S,
            k.P_TRRD_L: t.tRRD_L,
            k.P_TFAW: t.tFAW,
            k.P_TRTP: t.tRTP,
            k.P_TREFI: t.tREFI,
            k.P_TRFC: t.tRFC,
            k.P_BANK_BITS: (geometry.banks_per_group - 1).bit_length(),
            k.P_BANKS: geometry.banks,
            k.P_DEPTH: scheduler_depth,
            k.P_STARVATION: starvation_limit,
            k.P_ROB: rob_lines,
            k.P_OPQ: rob_lines + 8,
            k.P_INSTQ: INST_QUEUE_DEPTH,
            k.P_LANES: lanes,
            k.P_BEATS_PER_LINE: geometry.burst_bytes // (4 * lanes),
            k.P_MUL: mul_latency,
            k.P_ADD: add_latency,
            # The PU is idle (so the call starts) once both the scheduler's recovery and
            # the cache's sweep of its sets are over; the tREFI count starts with the former.
            k.P_REFI_OFFSET: max(0, self.sets - recovery_cycles(timing, geometry)),
            k.P_Q8_DEFAULT: RankIssue(lanes=lanes, max_elements=max_elements).default_q8_elements,
            k.P_SET_BITS: self.sets.bit_length() - 1,
            k.P_WAYS: cache_ways,
            k.P_TREE: (ranks_per_dimm.bit_length() - 1) * add_latency,
            k.P_HEADER_BYTES: Q8_HEADER_BYTES,
            k.P_LINE_BYTES: geometry.burst_bytes,
            k.P_MAX_CYCLES: 0,  # per stream (run_dimm)
        }
        for index, value in values.items():
            params[index] = value
        self._params = params
        if max_cycles is not None and (
            isinstance(max_cycles, bool) or not isinstance(max_cycles, int) or max_cycles < 1
        ):
            raise ValueError(f"max_cycles must be None or a positive int, got {max_cycles!r}")
        self.max_cycles = max_cycles

    def cycle_bound(self, insts: np.ndarray, issue_cycles: np.ndarray) -> int:
        """A generous upper bound of a stream's cycles: every word and line a row conflict
        plus a read latency, every drain beat, stretched by refresh, after the transport."""
        t = self.timing
        lines = int(insts["vsize"].astype(np.int64).sum())
        beats = int(insts.size) * 16 * (self.max_elements // self.lanes)  # a 16-tag drain per word
        work = (insts.size + lines) * (t.tRC + t.tFAW + t.tCL + t.tBL) + beats + 4 * t.tREFI
        last = int(issue_cycles[-1]) if len(issue_cycles) else 0
        return last + int(work * t.tREFI / (t.tREFI - t.tRFC)) + int(self._params[k.P_REFI_OFFSET])

    # -- one DIMM -------------------------------------------------------------------------

    def _decode(self, insts: np.ndarray) -> dict[str, np.ndarray]:
        """The kernel's per-instruction arrays from ``hw.isa.INST_DTYPE`` records."""
        n = insts.size
        opcode = insts["opcode"].astype(np.int64)
        parts = {name: v.astype(np.int64) for name, v in daddr_split(insts["daddr"]).items()}
        daddr = insts["daddr"].astype(np.int64)
        lookup = np.isin(opcode, _LOOKUPS)
        bad_rank = lookup & (parts["rank"] >= self.ranks_per_dimm)
        kind = np.full(n, k.KIND_DROP, np.int64)
        kind[lookup & ~bad_rank] = k.KIND_LOOKUP
        kind[opcode == int(Opcode.EOP)] = k.KIND_EOP
        kind[opcode == int(Opcode.CONFIG)] = k.KIND_CONFIG
        if (opcode == int(Opcode.INVALIDATE)).any():
            raise ValueError("the performance model does not model INVALIDATE (the driver never sends one)")
        g = self.geometry
        line = parts["column"] // g.burst_columns
        vsize = insts["vsize"].astype(np.int64)
        bad = lookup & (
            (vsize < 1)
            | (vsize > MAX_VSIZE)
            | (parts["column"] % g.burst_columns != 0)
            | (line + vsize > g.lines_per_row)
        )
        if bad.any():
            raise ValueError(
                f"instruction {int(np.flatnonzero(bad)[0])} is a malformed lookup: the performance model "
                f"runs well-formed streams (those the driver compiles)"
            )
        config = opcode == int(Opcode.CONFIG)
        register, value = daddr >> 24, daddr & 0xFFFFFF
        if (config & ((register != int(ConfigRegister.Q8_ELEMENTS)) | (value < 1) | (value > self.max_elements))).any():
            raise ValueError("a CONFIG other than Q8_ELEMENTS = 1 .. max_elements: not modelled")
        off = self._offsets
        slot = parts["bank_group"] * g.banks_per_group + parts["bank"]
        addr = (
            (line << off["line"])
            | (parts["row"] << off["row"])
            | (parts["bank"] << off["bank"])
            | (parts["bank_group"] << off["bank_group"])
        )

        def eop_field(name):
            f = _EOP[name]
            return (daddr >> f.offset) & ((1 << f.width) - 1)

        return dict(
            kind=kind,
            rank_of=np.where(lookup, parts["rank"], 0),
            slot_of=slot,
            row_of=parts["row"],
            addr_of=addr,
            vsize_of=vsize,
            alloc_of=insts["locality"].astype(np.int64),
            hint_of=insts["ddr_cmd"].astype(np.int64),
            tag_of=insts["psum_tag"].astype(np.int64) & 0xF,
            weighted_of=np.isin(opcode, _WEIGHTED).astype(np.int64),
            q8_of=np.isin(opcode, _QUANTISED).astype(np.int64),
            value_of=value,
            mask_of=eop_field("tag_mask"),
            elements_of=eop_field("elements"),
        )

    def run_dimm(self, insts: np.ndarray, issue_cycles: np.ndarray) -> DimmPerf:
        """One DIMM's stream (``hw.isa.INST_DTYPE``, transport cycles), from reset."""
        ranks, g = self.ranks_per_dimm, self.geometry
        arrays = self._decode(insts)
        counters = np.zeros((ranks, k.N_COUNTERS), np.int64)
        params = self._params.copy()
        params[k.P_MAX_CYCLES] = self.max_cycles or self.cycle_bound(insts, issue_cycles)
        cycles, packet_end = k.simulate_dimm(
            params,
            *arrays.values(),
            np.asarray(issue_cycles, np.int64),
            np.zeros((ranks, self.sets, self.ways), np.int64),
            np.zeros((ranks, self.sets, self.ways), np.int64),
            np.zeros((ranks, self.sets, self.ways), np.bool_),
            np.zeros((ranks, 1), np.int64),
            np.zeros((ranks, g.banks), np.bool_),
            np.zeros((ranks, g.banks), np.int64),
            counters,
        )
        if cycles < 0:
            raise RuntimeError(f"the performance model did not finish within {params[k.P_MAX_CYCLES]} cycles")
        # The recovery after reset, before the call: a PRE to every bank and one REF.
        counters[:, COUNTERS.index("pres")] += g.banks
        counters[:, COUNTERS.index("refs")] += 1
        # A DIMM given no instruction has no first instruction to count from: 0, as the RTL.
        return DimmPerf(int(cycles) if len(insts) else 0, packet_end, counters)

    def run(self, call) -> PerfResult:
        """Every DIMM's stream of a compiled call (``sw_driver.compiler.CompiledCall``)."""
        if call.ranks_per_dimm != self.ranks_per_dimm:
            raise ValueError(
                f"the call was compiled for {call.ranks_per_dimm} ranks per DIMM, the model has {self.ranks_per_dimm}"
            )
        streams = [(s.insts, s.issue_cycles) for s in call.dimms]
        if self.workers > 1 and len(streams) > 1:
            # The kernel releases the GIL: DIMMs are independent, so they run in parallel.
            with ThreadPoolExecutor(min(self.workers, len(streams))) as pool:
                return PerfResult(tuple(pool.map(lambda s: self.run_dimm(*s), streams)))
        return PerfResult(tuple(self.run_dimm(*s) for s in streams))
