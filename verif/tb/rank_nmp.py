"""cocotb testbench of ``rank_nmp``: random instruction streams against the Rank-NMP model, bit for bit.

The contract is ``docs/rank_nmp_semantics.md``; the model of it is
:class:`sim_models.rank_nmp.RankNMPModel`. Pieces:

* :class:`Memory` (stimulus data, pure Python): embedding tables of every vector size
  (fp32 rows of ``vsize`` bursts; 8-bit rows: fp32 scale and bias, then bytes, then random
  padding), spread over all 16 banks and 4 bank groups, two DRAM rows per bank and table
  (row hits and row conflicts), half of the tables ending at the last line of their DRAM
  rows; values and weights with NaN, infinities, subnormals and signed zeros.
* :class:`Stimulus` (pure Python, from a seed): packets of random bags whose operator,
  vector size, table row, tag, locality and ``ddr_cmd`` hint are drawn at random, runs of
  lookups to one bank (row hits, conflicts) or to neighbouring banks; malformed
  instructions of every rule of the contract, between and inside packets; EOPs that do not
  match the packet; CONFIG and INVALIDATE inside packets. It records what it meant in
  cover points (``rank_nmp.<test>.*``).
* Driver / monitor: :class:`verif.stream.StreamSource` on ``inst`` (records of named
  fields, from the JSON layout), :class:`verif.stream.StreamSink` on ``psum`` (decoded
  beats), a :class:`verif.stream.StreamMonitor` on the scheduler's internal ``req`` stream
  (the line requests in acceptance order, with their hints), and
  :class:`verif.dram_model.DramModel` (DDR4 protocol and timing checked on every command)
  whose commands :class:`CommandLog` records.
* :class:`Scoreboard`: runs each instruction through the model when ``inst`` accepts it,
  and compares every ``psum`` beat, as it arrives, with the model's (tag, beat, last, every
  lane bit for bit; NaN equals NaN), packet by packet; at the end of a phase the model's
  counters exactly, the hint count, the DUT's command counters against the DRAM model's.
* :class:`Testbench`: wires them, resets (the DRAM model keeps running: ``reset=dut.rst``),
  runs batches with cycle bounds (a hung DUT fails within a bound proportional to the
  work, naming the packets still outstanding), and checks coverage at the end.

Every test prints its seed (``RECNMP_SEED`` replaces the fixed default of the pytest
entry; each cocotb test derives its own from it) and every failure names it.

Environment: ``RECNMP_PACKETS`` (packets of the mixed phase, default 24), ``RECNMP_STALL``
(pause probability on ``inst`` and ``psum``, default 0.2), ``RECNMP_MALFORMED`` (share of
malformed instructions, default 0.05; 0 = well-formed traffic only, the contract's error
rules unused), ``RECNMP_PHASES`` (comma-separated phases of ``random_traffic``, default
all: ``hints,mixed,long_stalls,small_q8``).
"""

from __future__ import annotations

import collections
import functools
import inspect
import json
import os
import time
import zlib
from dataclasses import dataclass, field, fields
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly

from hw.ddr4 import DDR4Geometry, DDR4Timing, DramCommand, line_address_layout
from hw.isa import (
    DDR_CMD_ACT,
    DDR_CMD_RD,
    MAX_VSIZE,
    Q8_HEADER_BYTES,
    ConfigRegister,
    Opcode,
    config_daddr,
    eop_daddr,
    expected_hint,
    fused8_to_device,
    pack,
    words_to_ints,
)
from sim_models.rank_nmp import PsumBeat, RankNMPModel, beats_equal
from sim_models.sls import quantize_fused8
from verif import coverage
from verif.block_description import BlockDescription
from verif.dram_model import DramModel
from verif.rank_image import RankImage
from verif.stream import (
    StreamMonitor,
    StreamSink,
    StreamSource,
    StructCodec,
    burst_pauses,
    random_pauses,
    wait_until,
)

GEOMETRY = DDR4Geometry()
LINE = GEOMETRY.burst_bytes
LINES_PER_ROW = GEOMETRY.lines_per_row
FP32_OPS = (Opcode.SUM, Opcode.WSUM)
Q8_OPS = (Opcode.SUM_Q8, Opcode.WSUM_Q8)
LOOKUP_OPS = FP32_OPS + Q8_OPS
WEIGHTED = (Opcode.WSUM, Opcode.WSUM_Q8)
ILLEGAL_OPCODES = sorted(set(range(16)) - {op.value for op in Opcode})
CLOCK_NS = 10
#: The rank's own counters the model predicts exactly.
MODEL_COUNTERS = ("lookups", "lines", "illegal", "malformed", "eop_mismatches")
DRAM_COUNTERS = {"acts": DramCommand.ACT, "pres": DramCommand.PRE, "reads": DramCommand.RD, "refs": DramCommand.REF}

F32 = np.float32
SPECIALS = {
    "nan": np.array([0x7FC00000, 0xFFC00001, 0x7F800001], np.uint32).view(F32),
    "inf": np.array([np.inf, -np.inf], F32),
    "subnormal": np.array([0x00000001, 0x807FFFFF, 0x00400000, 0x80000010], np.uint32).view(F32),
    "neg_zero": np.array([-0.0], F32),
}


def special_kinds(values: np.ndarray) -> set[str]:
    """Which special classes occur among fp32 ``values``."""
    v = np.asarray(values, F32)
    bits = v.view(np.uint32)
    kinds = set()
    if np.isnan(v).any():
        kinds.add("nan")
    if np.isinf(v).any():
        kinds.add("inf")
    if ((bits & 0x7F800000 == 0) & (bits & 0x007FFFFF != 0)).any():
        kinds.add("subnormal")
    if (bits == 0x80000000).any():
        kinds.add("neg_zero")
    return kinds


def random_f32(rng, n: int, *, scale: float = 2.0, special: float = 0.01) -> np.ndarray:
    """Normal values; a share ``special`` replaced by NaN/inf/subnormal/-0 (a tenth of the
    rows are tiny: subnormal and near-subnormal values, so sums stay subnormal)."""
    if rng.random() < 0.1:
        v = (rng.standard_normal(n) * 1e-39).astype(F32)  # subnormal range
    else:
        v = (rng.standard_normal(n) * scale).astype(F32)
    for k in np.nonzero(rng.random(n) < special)[0]:
        v[k] = rng.choice(SPECIALS[str(rng.choice(list(SPECIALS)))])
    return v


def random_weight(rng) -> np.float32:
    r = rng.random()
    if r < 0.95:
        return F32(rng.standard_normal())
    return F32(rng.choice(SPECIALS[str(rng.choice(list(SPECIALS)))]))


def bits_of(value: np.float32) -> int:
    return int(np.asarray(value, F32).view(np.uint32))


# ----------------------------------------------------------------------------------------
# Memory: the tables in the rank image
# ----------------------------------------------------------------------------------------


class Memory:
    """Tables of fp32 and of 8-bit rows, one per (kind, vsize), spread over the rank.

    Row ``i`` of table ``t`` is in bank ``(i + 5 t) % 16`` (so every table covers every
    bank and bank group), DRAM row ``base_t + (i // 16) % 2`` (two rows per bank: lookups
    of one bank are row hits or row conflicts), slot ``i // 32`` of that row. Tables of odd
    ``t`` fill their DRAM rows from the end, so their vectors end at the row's last line.
    """

    ROWS_PER_BANK = 2

    def __init__(self, rng, *, fp32_vsizes, q8_vsizes, rows: int = 48):
        self.rows = rows
        self.image = RankImage(GEOMETRY)
        self.tables: dict[tuple[str, int], int] = {}  # (kind, vsize) -> table number
        self.specials: dict[tuple[int, int], set[str]] = {}  # (table, index) -> special classes
        self.vsize: dict[int, int] = {}
        self.kind: dict[int, str] = {}
        t = 0
        for kind, vsizes in (("fp32", fp32_vsizes), ("q8", q8_vsizes)):
            for v in vsizes:
                self.tables[(kind, v)] = t
                self.vsize[t], self.kind[t] = v, kind
                for i in range(rows):
                    data = self._row(rng, kind, v)
                    self.image.write(**self.location(t, i), data=data)
                    if kind == "fp32":
                        self.specials[(t, i)] = special_kinds(data.view(F32))
                    else:
                        self.specials[(t, i)] = special_kinds(data[:Q8_HEADER_BYTES].view(F32))
                t += 1

    @staticmethod
    def _row(rng, kind: str, vsize: int) -> np.ndarray:
        if kind == "fp32":
            return random_f32(rng, 16 * vsize).view(np.uint8)
        row = rng.integers(0, 256, vsize * LINE, dtype=np.uint8)  # q bytes and padding
        header = np.array([F32(rng.uniform(-0.1, 0.1)), F32(rng.standard_normal())], F32)
        if rng.random() < 0.04:
            header[int(rng.integers(0, 2))] = random_f32(rng, 1, special=1.0)[0]
        row[:Q8_HEADER_BYTES] = header.view(np.uint8)
        return row

    def location(self, t: int, index: int) -> dict[str, int]:
        v = self.vsize[t]
        bank_id = (index + 5 * t) % GEOMETRY.banks
        k = index // GEOMETRY.banks
        row = 64 + 16 * t + k % self.ROWS_PER_BANK
        slot = k // self.ROWS_PER_BANK
        line = (LINES_PER_ROW - (slot + 1) * v) if t % 2 else slot * v
        return {
            "bank_group": bank_id // GEOMETRY.banks_per_group,
            "bank": bank_id % GEOMETRY.banks_per_group,
            "row": row,
            "column": line * GEOMETRY.burst_columns,
        }

    def daddr(self, t: int, index: int, *, rank: int = 0) -> int:
        loc = self.location(t, index)
        return loc["column"] | loc["row"] << 10 | loc["bank"] << 26 | loc["bank_group"] << 28 | rank << 30


class QuietImage:
    """The model's view of the rank image: reads do not count as the DUT's."""

    def __init__(self, image: RankImage):
        self._image = image

    def read(self, **kwargs) -> bytes:
        before = self._image.unwritten_reads
        try:
            return self._image.read(**kwargs)
        finally:
            self._image.unwritten_reads = before


# ----------------------------------------------------------------------------------------
# Coverage: cover points with bins derived from the configuration
# ----------------------------------------------------------------------------------------


class Cover:
    """Cover points ``<prefix>.<name>`` (cocotb-coverage), created at run time with the
    bins a configuration can hit. ``hit(name, bin)``; :func:`verif.coverage.finish`
    checks them."""

    def __init__(self, prefix: str, bins: dict[str, list]):
        from cocotb_coverage.coverage import CoverPoint

        self.prefix = prefix
        self.bins = bins
        self._points = {}
        for name, point_bins in bins.items():
            self._points[name] = CoverPoint(f"{prefix}.{name}", xf=lambda v: v, bins=list(point_bins))(lambda v: None)

    def hit(self, name: str, value) -> None:
        if value in self.bins[name]:
            self._points[name](value)


def stimulus_bins(cfg: Config) -> dict[str, list]:
    """Cover points of the stimulus of ``random_traffic`` for one configuration."""
    malformed = [
        "undefined_opcode",
        "vsize0",
        "unaligned_column",
        "row_crossing",
        "config_bad_register",
        "config_bad_value",
        "eop_reserved",
        "eop_elements0",
        "eop_elements_too_large",
    ]
    if cfg.q8_d_max > LINE - Q8_HEADER_BYTES:  # D > 56 makes one burst too short
        malformed.append("q8_too_long")
    if cfg.fp32_vsize_max < MAX_VSIZE:
        malformed.append("fp32_too_long")
    dram = [
        "row_hits",
        "row_misses",
        "row_conflicts",
        "refs",
        "out_of_order_completion",
        "rd_same_bank_group_at_tCCD_L",
        "rd_other_bank_group_at_tCCD_S",
        "8_banks_open",
        "all_16_banks_read",
    ]
    if cfg.scheduler_depth > 4:  # five ACTs in one tFAW need five requests buffered
        dram.append("tfaw_limited_act")
    return {
        "opcode_x_vsize": [f"{op.name}/{v}" for op in FP32_OPS for v in cfg.fp32_vsizes]
        + [f"{op.name}/{v}" for op in Q8_OPS for v in cfg.q8_vsizes],
        "tag": list(range(16)),
        "locality": [0, 1],
        "hint": list(range(8)),
        "special": [f"{where}_{kind}" for where in ("data", "weight") for kind in SPECIALS]
        + ["garbage_weight_ignored"],
        "q8_small_d": [f"{op.name}/D{d}" for op in Q8_OPS for d in range(1, 2 * cfg.lanes + 1)],
        "malformed": malformed,
        "malformed_position": ["between_packets", "inside_packet"],
        "eop_mismatch": ["missing_tag", "short_elements"],
        "control": [
            "config_mid_packet",
            "invalidate_mid_packet",
            "empty_mask",
            "empty_tag_in_mask",
            "long_elements",
            "rank_bits_set",
            "vector_at_row_end",
        ],
        "flow": ["psum_stall_200_cycles", "inst_backpressure", "psum_backpressure"],
        "cache": ["cache_hits", "cache_bypasses", "cache_fills", "cache_evictions"],
        "dram": dram,
        "hint_result": ["match", "mismatch"],
    }


RESET_BINS = {
    "reset": ["mid_packet", "mid_drain_cut", "rows_open_at_reset", "reads_in_flight_at_reset", "clean_batch_after"],
}


# ----------------------------------------------------------------------------------------
# Configuration and stimulus
# ----------------------------------------------------------------------------------------


@dataclass
class Config:
    lanes: int
    max_elements: int
    timing: DDR4Timing
    scheduler_depth: int = 16

    @property
    def fp32_vsize_max(self) -> int:
        return min(MAX_VSIZE, self.max_elements // 16)

    @property
    def fp32_vsizes(self) -> list[int]:
        return list(range(1, self.fp32_vsize_max + 1))

    @property
    def q8_vsizes(self) -> list[int]:
        return list(range(1, MAX_VSIZE + 1))

    @property
    def q8_d_max(self) -> int:
        return min(self.max_elements, MAX_VSIZE * LINE - Q8_HEADER_BYTES)


def inst(opcode, *, ddr_cmd=0, daddr=0, vsize=0, weight=0, locality=0, psum_tag=0) -> dict:
    """One instruction as a record of the ``inst`` payload fields (``weight``: the bits)."""
    return {
        "opcode": int(opcode),
        "ddr_cmd": ddr_cmd,
        "daddr": int(daddr),
        "vsize": vsize,
        "weight": weight,
        "locality": locality,
        "psum_tag": psum_tag,
    }


def to_word(fields_: dict) -> int:
    """The instruction word, packed by ``hw.isa`` (the one definition of the format)."""
    f = dict(fields_)
    weight = np.array([f.pop("weight")], np.uint32).view(F32)
    opcode = f.pop("opcode")
    word = words_to_ints(
        pack(
            {
                **{k: np.array([v]) for k, v in f.items()},
                "weight": weight,
                "opcode": np.array([opcode if opcode in {o.value for o in Opcode} else 1]),
            }
        )
    )[0]
    return (word & ~0xF) | opcode  # pack() refuses undefined opcodes: put them in by hand


class Stimulus:
    """Random instruction streams (records of fields) from one seed; see the module doc."""

    def __init__(self, rng, cfg: Config, memory: Memory, cover: Cover | None):
        self.rng = rng
        self.cfg = cfg
        self.mem = memory
        self.cover = cover
        self.d = min(cfg.max_elements, 64)  # D the DUT will use (the model's default)
        self.malformed = 0.05
        self.locality: int | None = None  # None: random
        self.hints = "random"  # or "act_rd"
        self.mismatches = True
        self.control = True
        self._prev = None  # (table, index) of the previous lookup

    def _hit(self, name, value):
        if self.cover is not None:
            self.cover.hit(name, value)

    # -- lookups --------------------------------------------------------------------------

    def _index(self, t: int) -> int:
        """Random, or near the previous lookup: same DRAM row, same bank other row, next bank."""
        n = self.mem.rows
        if self._prev is not None and self._prev[0] == t:
            r = self.rng.random()
            i = self._prev[1]
            if r < 0.2:
                return (i + 32) % n if (i + 32) < n else i % 32  # same bank, same DRAM row
            if r < 0.3:
                return i + 16 if i + 16 < n else i - 16  # same bank, other DRAM row
            if r < 0.45:
                return (i + 1) % n  # the next bank (other bank group)
        return int(self.rng.integers(0, n))

    def lookup(self, op: Opcode, tag: int, *, vsize: int | None = None) -> dict:
        cfg = self.cfg
        if vsize is None:
            if op in FP32_OPS:
                vsize = int(self.rng.choice(cfg.fp32_vsizes))
            else:
                need = -(-(Q8_HEADER_BYTES + self.d) // LINE)
                vsize = int(self.rng.integers(need, MAX_VSIZE + 1))
        kind = "fp32" if op in FP32_OPS else "q8"
        t = self.mem.tables[(kind, vsize)]
        index = self._index(t)
        self._prev = (t, index)
        if op in WEIGHTED:
            weight = random_weight(self.rng)
            for k in special_kinds(np.array([weight])):
                self._hit("special", f"weight_{k}")
            wbits = bits_of(weight)
        else:
            wbits = int(self.rng.integers(0, 1 << 32))  # garbage: must be ignored
            self._hit("special", "garbage_weight_ignored")
        for k in self.mem.specials[(t, index)]:
            self._hit("special", f"data_{k}")
        locality = int(self.rng.integers(0, 2)) if self.locality is None else self.locality
        hint = int(self.rng.integers(0, 8)) if self.hints == "random" else DDR_CMD_ACT | DDR_CMD_RD
        rank = int(self.rng.integers(0, 4)) if self.rng.random() < 0.1 else 0
        if rank:
            self._hit("control", "rank_bits_set")
        if self.mem.location(t, index)["column"] // 8 + vsize == LINES_PER_ROW:
            self._hit("control", "vector_at_row_end")
        self._hit("opcode_x_vsize", f"{op.name}/{vsize}")
        self._hit("tag", tag)
        self._hit("locality", locality)
        self._hit("hint", hint)
        return inst(
            op,
            ddr_cmd=hint,
            daddr=self.mem.daddr(t, index, rank=rank),
            vsize=vsize,
            weight=wbits,
            locality=locality,
            psum_tag=tag,
        )

    def elements_of(self, op: Opcode, vsize: int) -> int:
        return 16 * vsize if op in FP32_OPS else self.d

    # -- control --------------------------------------------------------------------------

    def config(self, d: int) -> dict:
        self.d = d
        return inst(
            Opcode.CONFIG,
            daddr=config_daddr(register=ConfigRegister.Q8_ELEMENTS, value=d),
            vsize=int(self.rng.integers(0, 8)),
            weight=int(self.rng.integers(0, 1 << 32)),
        )

    def eop(self, mask: int, elements: int, reserved: int = 0) -> dict:
        daddr = int(eop_daddr(tag_mask=mask, elements=elements)) | reserved << 26
        return inst(Opcode.EOP, daddr=daddr, vsize=int(self.rng.integers(0, 8)), psum_tag=int(self.rng.integers(0, 16)))

    def malformed_inst(self, position: str) -> list[dict]:
        """An instruction breaking one rule of the contract (a kind drawn at random); for an
        8-bit row too long for its vsize, after a CONFIG making D > 56 if it is not."""
        cfg, rng = self.cfg, self.rng
        kinds = list(self.cover.bins["malformed"]) if self.cover else ["undefined_opcode", "vsize0"]
        kind = str(rng.choice(kinds))
        if kind == "q8_too_long" and self.d <= LINE - Q8_HEADER_BYTES:
            d = int(rng.integers(LINE - Q8_HEADER_BYTES + 1, cfg.q8_d_max + 1))
            return [self.config(d), self._malformed(kind, position)]
        return [self._malformed(kind, position)]

    def _malformed(self, kind: str, position: str) -> dict:
        cfg, rng = self.cfg, self.rng
        self._hit("malformed", kind)
        self._hit("malformed_position", position)
        op = LOOKUP_OPS[int(rng.integers(0, 4))]
        cover, self.cover = self.cover, None  # not a lookup that happens
        try:
            good = self.lookup(op, int(rng.integers(0, 16)))
        finally:
            self.cover = cover
        if kind == "undefined_opcode":
            return {**good, "opcode": int(rng.choice(ILLEGAL_OPCODES))}
        if kind == "vsize0":
            return {**good, "vsize": 0}
        if kind == "unaligned_column":
            return {**good, "daddr": (good["daddr"] & ~0x3FF) | int(rng.integers(0, 128)) * 8 + int(rng.integers(1, 8))}
        if kind == "row_crossing":
            v = max(2, good["vsize"])  # one burst cannot cross
            line = int(rng.integers(LINES_PER_ROW - v + 1, LINES_PER_ROW))
            return {**good, "vsize": v, "daddr": (good["daddr"] & ~0x3FF) | line * 8}
        if kind == "fp32_too_long":
            v = int(rng.integers(cfg.fp32_vsize_max + 1, MAX_VSIZE + 1))
            op = FP32_OPS[int(rng.integers(0, 2))]
            return {**good, "opcode": int(op), "vsize": v, "daddr": good["daddr"] & ~0x3FF}
        if kind == "q8_too_long":
            need = -(-(Q8_HEADER_BYTES + self.d) // LINE)
            op = Q8_OPS[int(rng.integers(0, 2))]
            return {**good, "opcode": int(op), "vsize": int(rng.integers(1, need)), "daddr": good["daddr"] & ~0x3FF}
        if kind == "config_bad_register":
            daddr = int(rng.integers(1, 256)) << 24 | int(rng.integers(0, 1 << 24))
            return inst(Opcode.CONFIG, daddr=daddr)
        if kind == "config_bad_value":
            value = 0 if rng.random() < 0.5 else int(rng.integers(cfg.max_elements + 1, 1 << 24))
            return inst(Opcode.CONFIG, daddr=config_daddr(register=ConfigRegister.Q8_ELEMENTS, value=value))
        if kind == "eop_reserved":
            return self.eop(
                int(rng.integers(0, 1 << 16)),
                int(rng.integers(1, cfg.max_elements + 1)),
                reserved=int(rng.integers(1, 64)),
            )
        if kind == "eop_elements0":
            return self.eop(int(rng.integers(0, 1 << 16)), 0)
        assert kind == "eop_elements_too_large"
        return self.eop(int(rng.integers(0, 1 << 16)), int(rng.integers(cfg.max_elements + 1, 1024)))

    # -- packets --------------------------------------------------------------------------

    def packet(
        self, *, ops=LOOKUP_OPS, max_bags: int = 16, max_len: int = 10, small_d: int | None = None
    ) -> list[dict]:
        """One packet (CONFIG first when it has 8-bit lookups), with malformed instructions,
        INVALIDATE and CONFIG mixed in, ending with its EOP (matching or not)."""
        rng = self.rng
        out: list[dict] = []

        def maybe_malformed(position: str, rate: float) -> None:
            while rate and rng.random() < rate:
                out.extend(self.malformed_inst(position))

        maybe_malformed("between_packets", min(0.5, 4 * self.malformed))
        single = rng.random() < 0.6
        packet_ops = [ops[int(rng.integers(0, len(ops)))]] if single else list(ops)
        if any(op in Q8_OPS for op in packet_ops) or small_d is not None:
            d = small_d if small_d is not None else self._random_d()
            out.append(self.config(d))
        tags = [int(t) for t in rng.choice(16, int(rng.integers(1, max_bags + 1)), replace=False)]
        lookups = []
        for tag in tags:
            lookups += [tag] * int(rng.integers(0, max_len + 1))
        if small_d is not None and not lookups:
            lookups = [tags[0]]
        rng.shuffle(lookups)
        written: dict[int, int] = {}  # tag -> elements written
        for n, tag in enumerate(lookups):
            op = packet_ops[int(rng.integers(0, len(packet_ops)))]
            if self.control and n and rng.random() < 0.02:
                self._hit("control", "invalidate_mid_packet")
                out.append(inst(Opcode.INVALIDATE, daddr=int(rng.integers(0, 1 << 32)), vsize=int(rng.integers(0, 8))))
            if self.control and n and small_d is None and rng.random() < 0.02:
                self._hit("control", "config_mid_packet")
                out.append(self.config(self._random_d()))
            look = self.lookup(op, tag)
            if small_d is not None and op in Q8_OPS:
                self._hit("q8_small_d", f"{op.name}/D{self.d}")
            out.append(look)
            written[tag] = max(written.get(tag, 0), self.elements_of(op, look["vsize"]))
            maybe_malformed("inside_packet", self.malformed)
        mask = 0
        for tag in tags:
            mask |= 1 << tag
        elements = max(written.values(), default=int(rng.integers(1, self.cfg.max_elements + 1)))
        r = rng.random()
        if self.mismatches and written and r < 0.08:
            drop = int(rng.choice(sorted(written)))
            mask &= ~(1 << drop)
            self._hit("eop_mismatch", "missing_tag")
        elif self.mismatches and written and r < 0.16 and elements > self.cfg.lanes:
            elements = int(rng.integers(1, elements - self.cfg.lanes + 1))
            self._hit("eop_mismatch", "short_elements")
        elif r < 0.25:
            elements = int(rng.integers(elements, self.cfg.max_elements + 1))
            self._hit("control", "long_elements")
        if r > 0.9 and small_d is None:
            extra = int(rng.integers(0, 16))
            if not mask >> extra & 1:
                mask |= 1 << extra
        if rng.random() < 0.03 and self.mismatches:
            mask = 0
        if mask == 0:
            self._hit("control", "empty_mask")
        if any(mask >> t & 1 and t not in written for t in range(16)):
            self._hit("control", "empty_tag_in_mask")
        out.append(self.eop(mask, elements))
        return out

    def _random_d(self) -> int:
        r = self.rng.random()
        hi = self.cfg.q8_d_max
        if r < 0.3:
            return int(self.rng.integers(1, min(hi, 2 * self.cfg.lanes) + 1))
        return int(self.rng.integers(1, hi + 1))


# ----------------------------------------------------------------------------------------
# DRAM command log
# ----------------------------------------------------------------------------------------


class CommandLog:
    """Every command the DRAM model checks: (cycle, command, bank group, bank, row, column,
    rst, the DUT's counter of that command before it), through the model's ``on_command``
    hook, so it costs nothing per idle cycle."""

    def __init__(self, dram: DramModel, rst, dut=None):
        self.entries: list[tuple] = []
        #: Entries before this index were issued before the last reset ended (:meth:`mark_reset`).
        self.reset_mark = 0
        handles = {cmd: getattr(dut, name, None) for name, cmd in DRAM_COUNTERS.items()} if dut is not None else {}

        def command(cycle, cmd, bank_group, bank, row, column):
            handle = handles.get(cmd)
            count = int(handle.value) if handle is not None else None
            self.entries.append((cycle, cmd, bank_group, bank, row, column, int(rst.value), count))

        dram.on_command = command

    def mark_reset(self) -> None:
        """Call on the falling edge that releases ``rst``: the commands sampled from then on
        are issued with ``rst`` low, so the DUT's counters count them."""
        self.reset_mark = len(self.entries)

    def since_reset(self, before: int | None = None) -> list[tuple]:
        """Commands issued since the last reset ended (those the DUT counts), sampled
        before DRAM cycle ``before`` (default: all)."""
        return [e for e in self.entries[self.reset_mark :] if not e[6] and (before is None or e[0] < before)]

    def counts(self, entries) -> collections.Counter:
        return collections.Counter(e[1] for e in entries)

    def first_uncounted(self, cmd: DramCommand, before: int | None = None) -> str:
        """Where the DUT's counter of ``cmd`` first disagreed with the commands seen."""
        entries = [e for e in self.since_reset(before) if e[1] == cmd]
        for n, e in enumerate(entries):
            if e[7] is not None and e[7] != n:
                prev = entries[n - 1][0] if n else None
                return (
                    f"the counter read {e[7]} at the {cmd.name} of cycle {e[0]} (bank group {e[2]} bank "
                    f"{e[3]} row {e[4]}), {n} {cmd.name}s seen before it (previous at cycle {prev})"
                )
        return "the counter agreed at every command; it changed later"


def dram_events(entries, timing: DDR4Timing) -> set[str]:
    """DRAM-side cover bins shown by a command log (see :func:`stimulus_bins`)."""
    out: set[str] = set()
    acts = [e[0] for e in entries if e[1] == DramCommand.ACT]
    if any(acts[i] - acts[i - 4] <= timing.tFAW + 2 for i in range(4, len(acts))):
        out.add("tfaw_limited_act")
    reads = [e for e in entries if e[1] == DramCommand.RD]
    for a, b in zip(reads, reads[1:]):
        gap = b[0] - a[0]
        if a[2] == b[2] and gap == timing.tCCD_L:
            out.add("rd_same_bank_group_at_tCCD_L")
        if a[2] != b[2] and gap == timing.tCCD_S:
            out.add("rd_other_bank_group_at_tCCD_S")
    if len({(e[2], e[3]) for e in reads}) == GEOMETRY.banks:
        out.add("all_16_banks_read")
    open_banks: set[tuple[int, int]] = set()
    for e in entries:
        if e[1] == DramCommand.ACT:
            open_banks.add((e[2], e[3]))
            if len(open_banks) >= 8:
                out.add("8_banks_open")
        elif e[1] == DramCommand.PRE:
            open_banks.discard((e[2], e[3]))
    return out


def out_of_order(requests, entries) -> bool:
    """True when a RD served a line request while an older accepted request was still
    waiting for its RD (``requests``: line addresses in acceptance order)."""
    waiting: dict[tuple, collections.deque] = collections.defaultdict(collections.deque)
    for seq, addr in enumerate(requests):
        waiting[addr].append(seq)
    served_seqs = []
    for e in entries:
        if e[1] == DramCommand.RD:
            key = (e[2], e[3], e[4], e[5] // GEOMETRY.burst_columns)
            if waiting[key]:
                served_seqs.append(waiting[key].popleft())
    return any(b < a for a, b in zip(served_seqs, served_seqs[1:]))


# ----------------------------------------------------------------------------------------
# Scoreboard
# ----------------------------------------------------------------------------------------


@dataclass
class Drain:
    """The beats one EOP should produce (empty for an empty mask or a malformed EOP)."""

    number: int  # EOP number since the start of the test
    inst_number: int  # which accepted instruction it was
    expected: list = field(default_factory=list)
    received: int = 0

    @property
    def done(self) -> bool:
        return self.received >= len(self.expected)


class Scoreboard:
    """Model in acceptance order, beat-by-beat comparison, outstanding-work reports."""

    def __init__(self, model: RankNMPModel, image, *, seed: int):
        self.model = model
        self.image = image
        self.seed = seed
        self.accepted = 0
        self.eops = 0
        self.drains: collections.deque[Drain] = collections.deque()  # not complete yet
        self.beats = 0
        self.error: str | None = None
        self.cut_drains = 0  # drains with beats received when a reset came, never finished

    def on_inst(self, word: int, cycle: int) -> None:
        opcode = word & 0xF
        beats = self.model.run([word], self.image)
        if opcode == Opcode.EOP:
            self.drains.append(Drain(self.eops, self.accepted, list(beats)))
            self.eops += 1
        self.accepted += 1

    def on_beat(self, record) -> None:
        got = PsumBeat(record["tag"], record["beat"], np.array(record["data"], np.uint32), bool(record["last"]))
        self.beats += 1
        while self.drains and not self.drains[0].expected:
            self.drains.popleft()  # empty drains: nothing to see
        if self.error:
            return
        if not self.drains:
            self.error = (
                f"unexpected psum beat {self.beats - 1} (tag {got.tag} beat {got.beat} "
                f"last {int(got.last)}): no EOP is outstanding"
            )
            return
        drain = self.drains[0]
        want = drain.expected[drain.received]
        if not beats_equal(got, want):
            lanes = [
                k
                for k in range(len(want.data))
                if not beats_equal(
                    got._replace(data=got.data[k : k + 1], tag=want.tag, beat=want.beat, last=want.last),
                    want._replace(data=want.data[k : k + 1]),
                )
            ]
            self.error = (
                f"packet {drain.number} (instruction {drain.inst_number}) beat {drain.received}: "
                f"got tag {got.tag} beat {got.beat} last {int(got.last)}, expected tag {want.tag} "
                f"beat {want.beat} last {int(want.last)}; lanes differing {lanes}: expected "
                f"{[hex(int(x)) for x in want.data]}, got {[hex(int(x)) for x in got.data]}"
            )
            return
        drain.received += 1
        if drain.done:
            self.drains.popleft()

    def reset(self) -> None:
        """The DUT was reset: what was outstanding will never come."""
        if self.drains and self.drains[0].received:
            self.cut_drains += 1
        self.drains.clear()
        self.model.reset()

    def pending(self) -> bool:
        return any(d.expected for d in self.drains)

    def outstanding(self) -> str:
        parts = []
        for d in list(self.drains)[:6]:
            if d.expected:
                parts.append(
                    f"packet {d.number} (instruction {d.inst_number}): {d.received} of {len(d.expected)} beats"
                )
        more = sum(1 for d in list(self.drains)[6:] if d.expected)
        if more:
            parts.append(f"{more} more packets with no beat yet")
        return "; ".join(parts) or "no beats outstanding"

    def check(self) -> None:
        if self.error:
            raise AssertionError(self.error)


# ----------------------------------------------------------------------------------------
# Testbench
# ----------------------------------------------------------------------------------------


def run_seed() -> int:
    """The run's seed: ``RECNMP_SEED`` or the pytest entry's default (the runner passes it
    as ``COCOTB_RANDOM_SEED``)."""
    return int(os.environ.get("COCOTB_RANDOM_SEED", cocotb.RANDOM_SEED))


def test_seed(name: str) -> int:
    """This cocotb test's seed: the run's seed mixed with the test name, so each test has
    its own stream (and the same run seed always gives the same streams)."""
    return (run_seed() ^ zlib.crc32(name.encode())) & 0x7FFFFFFF


def seeded(timeout_ms: float):
    """``@cocotb.test`` with an overall simulated-time bound, the seed printed at the start
    and named in every failure."""

    def wrap(fn):
        @functools.wraps(fn)
        async def run(dut):
            seed = test_seed(fn.__name__)
            dut._log.info(f"{fn.__name__}: seed {seed} (run seed {run_seed()}; RECNMP_SEED=<n> replaces it)")
            try:
                await fn(dut, seed)
            except AssertionError as error:
                raise AssertionError(f"[{fn.__name__} seed {seed}, run seed {run_seed()}] {error}") from error

        return cocotb.test(timeout_time=timeout_ms, timeout_unit="ms")(run)

    return wrap


def _request_stream(dut):
    """(handle, prefix) of the line-request stream into the scheduler: the scheduler's
    ``req`` port or, where synthesis renamed it, the reorder buffer's ``req``."""
    for path in ("scheduler", "rob"):
        try:
            handle = getattr(dut, path)
            for suffix in ("valid", "ready", "payload"):
                getattr(handle, f"req__{suffix}")
            return handle
        except AttributeError:
            continue
    return None


class Testbench:
    """Driver, monitors, DRAM model, model and scoreboard of one cocotb test; the tables
    (:class:`Memory`, ``rows`` per table) are loaded in the DRAM model's image."""

    def __init__(self, dut, *, seed: int, stall: float = 0.2, rows: int = 48, check: bool = True):
        self.dut = dut
        desc = BlockDescription.from_env()
        self.params = desc.params
        self.lanes = desc.params["lanes"]
        self.timing = DDR4Timing(**{f.name: desc.params[f.name] for f in fields(DDR4Timing)})
        self.cfg = Config(self.lanes, desc.params["max_elements"], self.timing, desc.params.get("scheduler_depth", 16))
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.memory = Memory(self.rng, fp32_vsizes=self.cfg.fp32_vsizes, q8_vsizes=self.cfg.q8_vsizes, rows=rows)
        self.image = self.memory.image
        kwargs = {"timing": self.timing}
        if "reset" in inspect.signature(DramModel).parameters:
            kwargs["reset"] = dut.rst  # the DRAM keeps running through a DUT reset
        self.dram_tells_resets = "reset" in kwargs
        self.dram = DramModel(dut, "dram", dut.clk, self.image, **kwargs)
        self.commands = CommandLog(self.dram, dut.rst, dut)
        self.model = RankNMPModel(lanes=self.lanes, max_elements=self.cfg.max_elements)
        self.sb = Scoreboard(self.model, QuietImage(self.image), seed=seed)
        self.source = StreamSource(
            dut, "inst", dut.clk, layout=desc.layout("inst__payload"), on_transfer=self.sb.on_inst if check else None
        )
        self.sink = StreamSink(
            dut,
            "psum",
            dut.clk,
            layout=desc.layout("psum__payload"),
            on_transfer=(lambda word, cycle: self.sb.on_beat(self.sink.codec.unpack(word))) if check else None,
        )
        sample = inst(Opcode.WSUM, ddr_cmd=5, daddr=0x9ABCDE08, vsize=3, weight=0x3FC00000, locality=1, psum_tag=9)
        assert self.source.encode(sample) == to_word(sample), (
            "the inst layout of the JSON side file disagrees with hw.isa"
        )
        self.set_stalls(stall, stall)
        scheduler = _request_stream(dut)
        self.requests: list[tuple] = []  # (bank_group, bank, row, line, hint) in acceptance order
        if scheduler is None:
            dut._log.warning(
                "no scheduler request stream found: request order and out-of-order completion are not observed"
            )
        if scheduler is not None:
            width = len(scheduler.req__payload)
            req_layout = StructCodec(_req_layout(width))
            self.req_codec = req_layout
            self.req_monitor = StreamMonitor(
                scheduler, "req", dut.clk, layout=None, keep=False, on_transfer=self._on_request
            )
        else:
            self.req_monitor = None
        self.resets = 0
        self.clock_started = False

    def _on_request(self, word: int, cycle: int) -> None:
        r = self.req_codec.unpack(word)
        a = r["addr"]
        self.requests.append((a["bank_group"], a["bank"], a["row"], a["line"], r["hint"]))

    def set_stalls(self, inst: float, psum: float, *, long_stalls: bool = False) -> None:
        seed = int(self.rng.integers(0, 1 << 31))
        self.source.set_pause(random_pauses(inst, seed=seed) if inst else None)
        if long_stalls:
            self.sink.set_pause(
                burst_pauses(seed=seed + 1, probability=psum, stall=(200, 500), burst_probability=0.004)
            )
        else:
            self.sink.set_pause(random_pauses(psum, seed=seed + 1) if psum else None)

    def counter(self, name: str) -> int | None:
        handle = getattr(self.dut, name, None)
        return None if handle is None else int(handle.value)

    async def reset(self, cycles: int = 2) -> None:
        """Synchronous reset of the DUT (the DRAM model keeps running)."""
        if not self.clock_started:
            cocotb.start_soon(Clock(self.dut.clk, CLOCK_NS, unit="ns").start())
            self.clock_started = True
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 1
        self.source.clear()
        await ClockCycles(self.dut.clk, cycles)
        await FallingEdge(self.dut.clk)
        self.sb.reset()
        self.requests.clear()
        if self.resets and not self.dram_tells_resets and hasattr(self.dram.checker, "controller_reset"):
            self.dram.checker.controller_reset(self.dram.cycle)
        self.dut.rst.value = 0
        self.commands.mark_reset()
        self.resets += 1

    def bound(self, words: list[dict], factor: float = 1.0) -> int:
        """Cycles a batch may take: generous, proportional to its lines, instructions and beats."""
        lines = sum(w["vsize"] for w in words if w["opcode"] in {int(o) for o in LOOKUP_OPS})
        beats = sum(bin(w["daddr"] & 0xFFFF).count("1") * 256 // self.lanes for w in words if w["opcode"] == Opcode.EOP)
        t = self.timing
        refresh = 1 + (t.tRFC + t.tRC) / t.tREFI * 2
        return int(
            (6000 + 80 * lines * max(1, 8 / self.params.get("scheduler_depth", 16)) + 8 * len(words) + 3 * beats)
            * refresh
            * factor
        )

    def describe(self) -> str:
        return (
            f"{self.source.pending} instructions not accepted ({self.sb.accepted} accepted); "
            f"beats outstanding: {self.sb.outstanding()}"
        )

    async def run(self, words: list[dict], *, factor: float = 1.0, what: str = "batch") -> int:
        """Send ``words`` (instruction records) and wait until every one was accepted and
        every beat they produce was received and matched; returns the cycles taken."""
        for w in words:
            self.source.send(w)
        bound = self.bound(words, factor)
        waited = await wait_until(
            self.dut.clk,
            lambda: self.sb.error is not None or (not self.source.pending and not self.sb.pending()),
            cycles=bound,
            what=lambda: f"{what}: {self.describe()}",
        )
        self.sb.check()
        return waited

    async def settle(self, cycles: int = 20000) -> None:
        """Wait for ``idle`` (bounded), then a few cycles in which no extra beat may come."""
        await wait_until(
            self.dut.clk,
            lambda: self.dut.idle.value == 1,
            cycles=cycles,
            what=lambda: f"idle after the last batch ({self.describe()})",
        )
        beats = self.sink.transfers
        await ClockCycles(self.dut.clk, 50)
        self.sb.check()
        assert self.sink.transfers == beats, f"{self.sink.transfers - beats} psum beats after idle"

    async def check_counters(self, *, where: str) -> dict[str, int]:
        """The model's counters exactly; the DUT's invariants; command counts = the DRAM's.

        Read in the read-only phase after a falling edge: the counters then hold every
        command issued before it, which are the DRAM model's commands of earlier cycles
        (the scheduler refreshes on its own, so commands may come while ``idle`` is high).
        """
        await FallingEdge(self.dut.clk)
        before = self.dram.cycle  # the DRAM model samples this cycle's command after us
        await ReadOnly()
        got = {}
        for name in MODEL_COUNTERS:
            value = self.counter(name)
            want = self.model.counters[name]
            if value is None:
                assert want == 0, f"{where}: the DUT has no {name} counter; the model counts {want}"
                self.dut._log.warning(f"the DUT has no {name} counter (model: 0)")
                continue
            got[name] = value
            assert value == want, f"{where}: {name} is {value}, the model says {want} (counters {got})"
        hits, misses, lines = self.counter("cache_hits"), self.counter("cache_misses"), self.counter("lines")
        assert hits + misses == lines, f"{where}: {hits} cache hits + {misses} misses != {lines} lines"
        since = self.commands.since_reset(before)
        counts = self.commands.counts(since)
        for name, cmd in DRAM_COUNTERS.items():
            assert self.counter(name) == counts[cmd], (
                f"{where}: {name} is {self.counter(name)}, the DRAM model saw {counts[cmd]} {cmd.name}: "
                f"{self.commands.first_uncounted(cmd, before)}"
            )
        rows = sum(self.counter(n) for n in ("row_hits", "row_misses", "row_conflicts"))
        assert rows == self.counter("reads"), f"{where}: row hits+misses+conflicts {rows} != reads"
        assert self.counter("reads") == misses, f"{where}: {self.counter('reads')} DRAM reads != {misses} cache misses"
        assert self.image.unwritten_reads == 0, f"{where}: the rank read memory no table was loaded in"
        return got


def _req_layout(width: int):
    from amaranth.lib import data

    addr = line_address_layout(GEOMETRY)
    return data.StructLayout({"addr": addr, "id": width - addr.size - 3, "hint": 3})


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


# ----------------------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------------------


PHASES = ("hints", "mixed", "long_stalls", "small_q8")


def _sample_end(tb: Testbench, cover: Cover) -> None:
    for name in ("cache_hits", "cache_bypasses", "cache_fills", "cache_evictions"):
        if tb.counter(name):
            cover.hit("cache", name)
    for name in ("row_hits", "row_misses", "row_conflicts", "refs"):
        if tb.counter(name):
            cover.hit("dram", name)
    for event in dram_events(tb.commands.entries, tb.timing):
        cover.hit("dram", event)
    if tb.sink.stalled_cycles:
        cover.hit("flow", "psum_backpressure")
    if tb.source.stalled_cycles:
        cover.hit("flow", "inst_backpressure")


#: Overall simulated-time bounds (ms at 10 ns per cycle; a backstop, ~5x the normal length:
#: the per-wait cycle bounds fail a hung DUT much sooner).
RANDOM_TRAFFIC_TIMEOUT_MS = 3 + int(os.environ.get("RECNMP_PACKETS", "24")) // 10
RESET_RECOVERY_TIMEOUT_MS = 3


@seeded(timeout_ms=RANDOM_TRAFFIC_TIMEOUT_MS)
async def random_traffic(dut, seed):
    """Phases after one reset: hints (locality 0, random hints: hint_mismatches exact),
    mixed (everything), long_stalls (psum stalled for hundreds of cycles), small_q8 (8-bit
    rows of every D = 1 .. 2*lanes, both operators)."""
    tb = Testbench(dut, seed=seed, stall=float(_env("RECNMP_STALL", "0.2")))
    cfg = tb.cfg
    cover = Cover("rank_nmp.random", stimulus_bins(cfg))
    stim = Stimulus(tb.rng, cfg, tb.memory, cover)
    stim.malformed = float(_env("RECNMP_MALFORMED", "0.05"))
    well_formed = stim.malformed == 0
    if well_formed:
        stim.mismatches = False
    phases = _env("RECNMP_PHASES", ",".join(PHASES)).split(",")
    packets = int(_env("RECNMP_PACKETS", "24"))
    await tb.reset()
    psum_watch = StreamMonitor(dut, "psum", dut.clk, keep=False)  # passive: stall statistics

    if "hints" in phases:
        # Empty cache, locality 0: every line goes to DRAM in instruction order, so the
        # scheduler's hint count is exact, and its request stream must be the model's.
        stim.locality, stim.hints = 0, "random"
        words = [w for _ in range(6) for w in stim.packet(max_bags=6, max_len=6)]
        await tb.run(words, what="hints phase")
        await tb.settle()
        await tb.check_counters(where="after the hints phase")
        want = tb.model.hint_mismatches()
        got = tb.counter("hint_mismatches")
        assert got == want, f"hint_mismatches is {got}, the in-order open-page prediction gives {want}"
        assert tb.counter("cache_hits") == 0, "a line hit the cache with locality 0 everywhere"
        model_lines = [(r.bank_group, r.bank, r.row, r.line, r.hint) for r in tb.model.requests]
        if tb.req_monitor is not None:
            first = next(
                (k for k, (a, b) in enumerate(zip(tb.requests, model_lines)) if a != b),
                min(len(tb.requests), len(model_lines)),
            )
            assert tb.requests == model_lines, (
                f"the scheduler's requests (bank group, bank, row, line, hint) differ from the lookups' "
                f"lines in order: {len(tb.requests)} requests, {len(model_lines)} lines, first difference "
                f"at {first}: {tb.requests[first : first + 1]} vs {model_lines[first : first + 1]}"
            )
            if out_of_order([r[:4] for r in tb.requests], tb.commands.entries):
                cover.hit("dram", "out_of_order_completion")
        last_row: dict = {}
        for r in tb.model.requests:
            cover.hit("hint_result", "match" if r.hint == expected_hint(last_row.get(r[:2]), r.row) else "mismatch")
            last_row[r[:2]] = r.row
        dut._log.info(f"hints phase: {tb.model.counters['lines']} lines, {got} hint mismatches")

    stim.locality, stim.hints = None, "random"
    if "mixed" in phases:
        start = len(tb.requests)
        words = [w for _ in range(packets) for w in stim.packet()]
        cycles = await tb.run(words, what="mixed phase")
        dut._log.info(f"mixed phase: {packets} packets, {len(words)} instructions, {cycles} cycles")
        if tb.req_monitor is not None and out_of_order([r[:4] for r in tb.requests[start:]], tb.commands.entries):
            cover.hit("dram", "out_of_order_completion")
    if "long_stalls" in phases:
        tb.set_stalls(0.3, 0.3, long_stalls=True)
        words = [w for _ in range(max(4, packets // 3)) for w in stim.packet(max_len=4)]
        cycles = await tb.run(words, factor=4, what="long-stall phase")
        dut._log.info(f"long-stall phase: {cycles} cycles, longest psum stall {psum_watch.longest_stall}")
        tb.set_stalls(0.2, 0.2)
    if "small_q8" in phases:
        words = []
        for d in tb.rng.permutation(np.arange(1, 2 * cfg.lanes + 1)):
            for op in tb.rng.permutation(2):
                words += stim.packet(ops=(Q8_OPS[int(op)],), small_d=int(d), max_bags=4, max_len=4)
        cycles = await tb.run(words, what="small 8-bit rows")
        dut._log.info(f"small 8-bit rows: {cycles} cycles")
    await tb.settle()
    got = await tb.check_counters(where="at the end")
    if psum_watch.longest_stall >= 200:
        cover.hit("flow", "psum_stall_200_cycles")
    _sample_end(tb, cover)
    dut_counters = {
        n: tb.counter(n)
        for n in ("cache_hits", "cache_misses", "reads", "acts", "refs", "row_conflicts", "hint_mismatches")
    }
    dut._log.info(f"counters {got}; DUT {dut_counters}; {tb.dram.cycle} cycles, {tb.sink.transfers} beats")
    if well_formed or set(phases) != set(PHASES):
        # A partial run: no malformed instruction was sent (the contract's error bins cannot
        # be hit) or only some phases ran. Exported as partial; with every phase, every bin
        # but the error ones must still be hit.
        coverage.export(prefix="rank_nmp.random", complete=False)
        skip = ("malformed", "malformed_position", "eop_mismatch", "control: empty_mask")
        missing = [
            m
            for m in coverage.missing_bins("rank_nmp.random")
            if not any(m.startswith(f"rank_nmp.random.{k}") for k in skip)
        ]
        assert set(phases) != set(PHASES) or not missing, f"coverage bins never hit: {'; '.join(missing)}"
        return
    coverage.finish("rank_nmp.random", log=dut._log.info, context=f"seed {seed}")


@seeded(timeout_ms=RESET_RECOVERY_TIMEOUT_MS)
async def reset_recovery(dut, seed):
    """Resets with the DRAM model running: in the middle of a packet and in the middle of a
    drain (no ``last`` may show), each followed by a clean batch that must be bit-exact,
    with the counters restarted from zero."""
    tb = Testbench(dut, seed=seed, stall=0.1, rows=32)
    cfg = tb.cfg
    cover = Cover("rank_nmp.reset", RESET_BINS)
    stim = Stimulus(tb.rng, cfg, tb.memory, None)
    stim.malformed = 0.0
    stim.mismatches = False
    await tb.reset()

    async def clean_batch(label: str) -> None:
        words = [w for _ in range(4) for w in stim.packet(max_bags=8, max_len=6)]
        await tb.run(words, what=label)
        await tb.settle()
        await tb.check_counters(where=label)
        cover.hit("reset", "clean_batch_after")

    await clean_batch("first batch")
    for round_ in range(2):
        # (1) reset while a packet's lookups are being fetched
        words = [w for _ in range(3) for w in stim.packet(max_bags=8, max_len=8)]
        for w in words:
            tb.source.send(w)
        target = tb.sb.accepted + len(words) // 2
        await wait_until(
            dut.clk,
            lambda t=target: tb.sb.accepted >= t,
            cycles=tb.bound(words),
            what=lambda: f"half the instructions accepted: {tb.describe()}",
        )
        if tb.commands.entries and any(
            tb.dram.checker.open_row(bg, b) is not None for bg in range(4) for b in range(4)
        ):
            cover.hit("reset", "rows_open_at_reset")
        if getattr(tb.dram, "_beats", None):
            cover.hit("reset", "reads_in_flight_at_reset")
        cover.hit("reset", "mid_packet")
        await tb.reset()
        await clean_batch(f"clean batch after reset {tb.resets - 1} (mid packet)")

        # (2) reset in the middle of a drain: a full packet on every tag, psum stalled
        stim.d = cfg.q8_d_max
        words = [stim.config(cfg.q8_d_max)]
        for tag in range(16):
            words.append(stim.lookup(Q8_OPS[0], tag, vsize=MAX_VSIZE))
        words.append(stim.eop(0xFFFF, cfg.max_elements))
        tb.sink.set_pause(random_pauses(0.7, seed=seed + round_))
        for w in words:
            tb.source.send(w)
        start = tb.sink.transfers
        await tb.sink.wait_for(
            start + 3 + round_ * 7,
            cycles=tb.bound(words),
            what=lambda: f"the first beats of the drain: {tb.describe()}",
        )
        cut = tb.sink.records[start:]
        await tb.reset()
        assert not any(r["last"] for r in tb.sink.records[start:]), "a drain cut by reset showed last"
        if tb.sb.cut_drains:
            cover.hit("reset", "mid_drain_cut")
        dut._log.info(f"reset {tb.resets - 1} cut a drain after {len(cut)} beats")
        tb.set_stalls(0.1, 0.1)
        await clean_batch(f"clean batch after reset {tb.resets - 1} (mid drain)")
    coverage.finish("rank_nmp.reset", log=dut._log.info, context=f"seed {seed}")


# ----------------------------------------------------------------------------------------
# Throughput benchmark (benchmarks/rank_nmp.py)
# ----------------------------------------------------------------------------------------


class Table:
    """(Benchmark) an embedding table placed in one rank: row ``i`` occupies ``vsize`` lines of one DRAM row.

    Placement (``layout``): ``"bank"`` puts consecutive table rows in consecutive banks, so
    random lookups spread over all 16 banks; ``"bank_group"`` fills one DRAM row in each of
    the 16 banks, consecutive indices alternating bank groups, so a run of consecutive
    indices is a stream of row hits across bank groups (the pattern that can use the whole
    data bus: same-group bursts are tCCD_L apart); ``"scattered"``
    gives every table row its own random DRAM row and bank (all lookups miss the row buffer).
    """

    def __init__(self, rng, *, rows: int, quantised: bool, dim: int, base_row: int, layout: str = "bank"):
        self.quantised = quantised
        if quantised:
            values = rng.standard_normal((rows, dim)).astype(np.float32)
            self.host = quantize_fused8(values)  # FBGEMM layout: q..., scale, bias
            device = fused8_to_device(self.host)
            self.elements = dim
        else:
            self.host = (rng.standard_normal((rows, dim)) * 2).astype(np.float32)
            device = self.host.view(np.uint8).reshape(rows, -1)
            self.elements = dim
        self.vsize = -(-device.shape[1] // LINE)
        self.device = np.zeros((rows, self.vsize * LINE), np.uint8)
        self.device[:, : device.shape[1]] = device
        self.per_dram_row = GEOMETRY.lines_per_row // self.vsize
        self.base_row = base_row
        self.layout = layout
        if layout == "scattered":
            self.scatter = [
                (int(b), int(r))
                for b, r in zip(
                    rng.integers(0, GEOMETRY.banks, rows),
                    rng.choice(GEOMETRY.rows - base_row, rows, replace=False) + base_row,
                )
            ]

    def location(self, index: int) -> dict[str, int]:
        if self.layout == "scattered":
            bank_id, row = self.scatter[index]
            return {
                "bank_group": bank_id // GEOMETRY.banks_per_group,
                "bank": bank_id % GEOMETRY.banks_per_group,
                "row": row,
                "column": 0,
            }
        if self.layout == "bank_group":
            within, bank_id = divmod(index, GEOMETRY.banks)
            row, within = divmod(within, self.per_dram_row)
            return {
                "bank_group": bank_id % GEOMETRY.bank_groups,
                "bank": bank_id // GEOMETRY.bank_groups,
                "row": self.base_row + row,
                "column": within * self.vsize * GEOMETRY.burst_columns,
            }
        slot, within = divmod(index, self.per_dram_row)
        bank_id, row = slot % GEOMETRY.banks, self.base_row + slot // GEOMETRY.banks
        return {
            "bank_group": bank_id // GEOMETRY.banks_per_group,
            "bank": bank_id % GEOMETRY.banks_per_group,
            "row": row,
            "column": within * self.vsize * GEOMETRY.burst_columns,
        }

    def load(self, image: RankImage) -> None:
        for index in range(len(self.device)):
            image.write(**self.location(index), data=self.device[index])

    def daddr(self, index: int) -> int:
        loc = self.location(index)
        return loc["column"] | loc["row"] << 10 | loc["bank"] << 26 | loc["bank_group"] << 28


def lookup_packets(
    table: Table, indices, *, pooling: int = 80, bags: int = 8, opcode: Opcode = Opcode.SUM
) -> list[int]:
    """Lookups of ``indices`` in order: bags of ``pooling`` lookups, ``bags`` bags per
    packet (the paper's setup: 80 vectors per pooling, 8 poolings per packet), locality 0
    (every line from DRAM), weight 0.5 for the weighted operators."""
    insts = []
    if table.quantised:
        insts.append(
            dict(
                opcode=Opcode.CONFIG,
                ddr_cmd=0,
                vsize=0,
                weight=0.0,
                locality=0,
                psum_tag=0,
                daddr=int(config_daddr(register=ConfigRegister.Q8_ELEMENTS, value=table.elements)),
            )
        )
    per_packet = pooling * bags
    for start in range(0, len(indices), per_packet):
        chunk = indices[start : start + per_packet]
        for n, index in enumerate(chunk):
            insts.append(
                dict(
                    opcode=opcode,
                    ddr_cmd=DDR_CMD_RD,
                    daddr=table.daddr(int(index)),
                    vsize=table.vsize,
                    weight=0.5,
                    locality=0,
                    psum_tag=n // pooling,
                )
            )
        insts.append(
            dict(
                opcode=Opcode.EOP,
                ddr_cmd=0,
                vsize=0,
                weight=0.0,
                locality=0,
                psum_tag=0,
                daddr=int(eop_daddr(tag_mask=(1 << bags) - 1, elements=table.elements)),
            )
        )
    return words_to_ints(pack({name: np.array([i[name] for i in insts]) for name in insts[0]}))


def drained_beats(lookups: int, lanes: int, elements: int, *, pooling: int = 80, bags: int = 8) -> int:
    return -(-lookups // (pooling * bags)) * bags * -(-elements // lanes)


async def measure(tb: Testbench, words: list[int], drained_beats: int) -> dict:
    """Run ``words``; count DRAM data cycles and datapath beats over the busy window."""
    dut = tb.dut
    while dut.idle.value != 1:  # e.g. the partial-sum file is still being cleared after reset
        await FallingEdge(dut.clk)
    first_read, start_cycle = len(tb.dram.reads), tb.dram.cycle
    data_start = tb.dram.data_cycles
    beats = {"n": 0, "first": None, "last": None}

    async def count_datapath():
        cycle = 0
        while True:
            await FallingEdge(dut.clk)
            cycle += 1
            if dut.datapath.i__valid.value == 1 and dut.datapath.i__ready.value == 1:
                beats["n"] += 1
                beats["first"] = cycle if beats["first"] is None else beats["first"]
                beats["last"] = cycle

    counter = cocotb.start_soon(count_datapath())
    wall = time.perf_counter()
    received = tb.sink.transfers
    tb.source.send_all(words)
    await tb.sink.wait_for(
        received + drained_beats, cycles=200 * len(words) + 20000, what="the benchmark's partial sums"
    )
    wall = time.perf_counter() - wall
    counter.cancel()
    reads = tb.dram.reads[first_read:]
    window = reads[-1][0] + tb.dram.timing.tCL + tb.dram.timing.tBL - reads[0][0] - tb.dram.timing.tCL
    cycles = tb.dram.cycle - start_cycle
    t = tb.dram.timing
    first_data, last_data = reads[0][0] + t.tCL, reads[-1][0] + t.tCL + t.tBL
    refreshes = sum(1 for c in tb.dram.refreshes if first_data <= c < last_data)
    # Data-bus cycles a refresh takes at the least: close the banks, refresh, reopen.
    blackout = refreshes * (t.tRTP + t.tRP + t.tRFC + t.tRCD - t.tBL)
    return {
        "lookups": len(reads),
        "cycles": cycles,
        "cycles_per_lookup": window / len(reads),
        # At the datapath, from the first beat to the last: the rate of datapath-bound rows.
        "datapath_cycles_per_lookup": (beats["last"] - beats["first"] + 1) / len(reads),
        "refreshes": refreshes,
        "data_bus_utilisation": (tb.dram.data_cycles - data_start) / window,
        "datapath_utilisation": beats["n"] / window,
        "data_bus_utilisation_outside_refresh": (tb.dram.data_cycles - data_start) / (window - blackout),
        "lookups_per_1000_cycles": 1000 * len(reads) / (reads[-1][0] - reads[0][0] + 1),
        "simulated_cycles_per_second": cycles / wall,
    }


@cocotb.test(skip=os.environ.get("RECNMP_BENCH_OUT") is None)
async def throughput_benchmark(dut):
    """Row-hit streams across bank groups, and scattered rows across 16 banks (figures to JSON)."""
    rng = np.random.default_rng(1)
    tb = Testbench(dut, stall=0.0, seed=1, check=False)
    hits = Table(rng, rows=2048, quantised=False, dim=16, base_row=10, layout="bank_group")
    scattered = Table(rng, rows=2048, quantised=False, dim=16, base_row=2000, layout="scattered")
    for table in (hits, scattered):
        table.load(tb.image)
    await tb.reset()
    count = int(os.environ.get("RECNMP_BENCH_LOOKUPS", "6400"))
    results = {}
    # Starts after reset and ends before the first refresh (tREFI = 9360 cycles).
    first = 1920
    words = lookup_packets(hits, np.arange(first) % len(hits.host))
    results["row_hits_between_refreshes"] = await measure(tb, words, drained_beats(first, tb.lanes, hits.elements))
    words = lookup_packets(hits, np.arange(count) % len(hits.host))
    results["row_hits_with_refresh"] = await measure(tb, words, drained_beats(count, tb.lanes, hits.elements))
    words = lookup_packets(scattered, rng.integers(0, len(scattered.host), count // 2))
    results["random_rows_16_banks"] = await measure(tb, words, drained_beats(count // 2, tb.lanes, hits.elements))
    q8 = Table(rng, rows=2048, quantised=True, dim=56, base_row=30000, layout="bank_group")
    q8.load(tb.image)
    for opcode in (Opcode.SUM_Q8, Opcode.WSUM_Q8):
        words = lookup_packets(q8, np.arange(1280), opcode=opcode)
        results[f"{opcode.name.lower()}_64B_rows"] = await measure(
            tb, words, drained_beats(1280, tb.lanes, q8.elements)
        )
    results["timing"] = tb.dram.timing.as_dict()
    Path(os.environ["RECNMP_BENCH_OUT"]).write_text(json.dumps(results, indent=2))
