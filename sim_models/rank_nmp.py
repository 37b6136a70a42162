"""Reference model of one Rank-NMP: instruction words in, partial-sum beats and counters out.

It implements ``docs/rank_nmp_semantics.md`` (the contract of ``hw.rank_nmp.RankNMP`` on
its ``inst`` and ``psum`` streams) instruction by instruction, with numpy float32
arithmetic in the hardware's exact order, so a testbench can compare every beat bit for bit
(any NaN equals any NaN: the hardware's NaN payloads are not specified) and every error
counter exactly. Timing-dependent figures (cache hits, DRAM commands) are not modelled;
:meth:`RankNMPModel.hint_mismatches` gives the scheduler's hint count for traffic in which
every line goes to DRAM (no cache hits).

Use::

    model = RankNMPModel(lanes=4, max_elements=256)
    beats = model.run(words, image)        # list of PsumBeat, in output order
    model.counters                         # {"lookups": ..., "malformed": ..., ...}
    model.reset()                          # what a sync reset of the rank does

``image`` is anything with ``read(bank_group=, bank=, row=, column=, length=) -> bytes``
(``verif.rank_image.RankImage``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from hw.ddr4 import DDR4Geometry
from hw.isa import (
    CONFIG_FIELDS,
    DDR_CMD_RD,
    EOP_FIELDS,
    LOOKUP_OPCODES,
    Q8_HEADER_BYTES,
    ConfigRegister,
    Opcode,
    daddr_split,
    ints_to_words,
    unpack,
)

__all__ = ["COUNTERS", "TAGS", "LineRequest", "PsumBeat", "RankNMPModel", "beats_equal"]

#: The Rank-NMP's own error and work counters (the cache and scheduler ones are timing-dependent).
COUNTERS = ("lookups", "lines", "illegal", "malformed", "eop_mismatches")
TAGS = 16

_F32 = np.float32
_ONE = _F32(1.0)
_MINUS_ZERO = _F32(-0.0)
_OPCODES = frozenset(int(op) for op in Opcode)


class PsumBeat(NamedTuple):
    """One beat on ``psum``: ``lanes`` fp32 values (as ``uint32`` bits) of one tag."""

    tag: int
    beat: int
    data: np.ndarray
    last: bool


class LineRequest(NamedTuple):
    """One 64 B line a well-formed lookup reads, in issue order, with its ``ddr_cmd`` hint."""

    bank_group: int
    bank: int
    row: int
    line: int
    hint: int


def _field(value: int, fields, name: str) -> int:
    f = next(f for f in fields if f.name == name)
    return (value >> f.offset) & ((1 << f.width) - 1)


class RankNMPModel:
    """The documented behaviour of one Rank-NMP.

    Parameters
    ----------
    lanes : int
        fp32 lanes of the datapath (values per ``psum`` beat).
    max_elements : int
        fp32 values per partial sum.
    geometry : DDR4Geometry
        The rank's shape (row length bounds a vector).

    Attributes
    ----------
    counters : dict
        :data:`COUNTERS` by name, cumulative since the last :meth:`reset`.
    requests : list of LineRequest
        Every line the well-formed lookups read, in order (for hint checks).
    q8_elements : int
        D of 8-bit rows (``CONFIG Q8_ELEMENTS``).
    """

    def __init__(self, *, lanes: int = 4, max_elements: int = 256, geometry: DDR4Geometry = DDR4Geometry()):
        if max_elements % lanes:
            raise ValueError(f"max_elements ({max_elements}) must be a multiple of lanes ({lanes})")
        self.lanes = lanes
        self.max_elements = max_elements
        self.geometry = geometry
        self.reset()

    @property
    def default_q8_elements(self) -> int:
        return min(self.max_elements, 64)

    def reset(self) -> None:
        """The state after a sync reset: empty partial sums, default D, zero counters."""
        self.acc = np.zeros((TAGS, self.max_elements), _F32)
        self.written_beats = [0] * TAGS
        self.q8_elements = self.default_q8_elements
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.requests: list[LineRequest] = []

    def run(self, words: Iterable[int], image) -> list[PsumBeat]:
        """Execute instruction words (79-bit integers) in order; return the beats they produce."""
        words = list(words)
        if not words:
            return []
        beats: list[PsumBeat] = []
        for inst in unpack(ints_to_words(words)):
            beats += self.execute(inst, image)
        return beats

    def execute(self, inst, image) -> list[PsumBeat]:
        """Execute one unpacked instruction (a record of ``hw.isa.INST_DTYPE``)."""
        opcode = int(inst["opcode"])
        if opcode not in _OPCODES:
            self.counters["illegal"] += 1
            return []
        opcode = Opcode(opcode)
        if opcode in LOOKUP_OPCODES:
            self._lookup(opcode, inst, image)
            return []
        if opcode == Opcode.CONFIG:
            self._config(int(inst["daddr"]))
            return []
        if opcode == Opcode.EOP:
            return self._eop(int(inst["daddr"]))
        return []  # INVALIDATE: only the cache, which the model does not hold

    # -- lookups ------------------------------------------------------------------------

    def malformed_reason(self, opcode: Opcode, vsize: int, column: int) -> str | None:
        """Why a lookup is malformed (``docs/rank_nmp_semantics.md``), or ``None``."""
        g = self.geometry
        if vsize == 0:
            return "vsize 0"
        if column % g.burst_columns:
            return f"column {column} is not a multiple of {g.burst_columns}"
        if column // g.burst_columns + vsize > g.lines_per_row:
            return f"{vsize} bursts from column {column} cross the end of the row"
        if opcode in (Opcode.SUM, Opcode.WSUM):
            if self._fp32_elements(vsize) > self.max_elements:
                return f"{self._fp32_elements(vsize)} fp32 values exceed max_elements {self.max_elements}"
        elif Q8_HEADER_BYTES + self.q8_elements > g.burst_bytes * vsize:
            return f"an 8-bit row of D={self.q8_elements} does not fit in {vsize} bursts"
        return None

    def _fp32_elements(self, vsize: int) -> int:
        return self.geometry.burst_bytes * vsize // 4

    def _lookup(self, opcode: Opcode, inst, image) -> None:
        vsize = int(inst["vsize"])
        addr = {k: int(v) for k, v in daddr_split(int(inst["daddr"])).items()}
        if self.malformed_reason(opcode, vsize, addr["column"]) is not None:
            self.counters["malformed"] += 1
            return
        g = self.geometry
        self.counters["lookups"] += 1
        self.counters["lines"] += vsize
        first = addr["column"] // g.burst_columns
        for k in range(vsize):
            self.requests.append(
                LineRequest(
                    addr["bank_group"],
                    addr["bank"],
                    addr["row"],
                    first + k,
                    int(inst["ddr_cmd"]) if k == 0 else DDR_CMD_RD,
                )
            )
        row = np.frombuffer(
            image.read(
                bank_group=addr["bank_group"],
                bank=addr["bank"],
                row=addr["row"],
                column=addr["column"],
                length=g.burst_bytes * vsize,
            ),
            np.uint8,
        )
        tag = int(inst["psum_tag"])
        weight = _F32(inst["weight"])
        with np.errstate(all="ignore"):
            if opcode in (Opcode.SUM, Opcode.WSUM):
                a = weight if opcode == Opcode.WSUM else _ONE
                b = row.view(_F32)
                c = _MINUS_ZERO
            else:
                scale, bias = row[:Q8_HEADER_BYTES].view(_F32)
                if opcode == Opcode.WSUM_Q8:  # s' = w * scale, b' = w * bias
                    scale, bias = weight * scale, weight * bias
                groups = -(-self.q8_elements // self.lanes)
                a = scale
                b = row[Q8_HEADER_BYTES : Q8_HEADER_BYTES + groups * self.lanes].astype(_F32)
                c = bias
            n = len(b)
            self.acc[tag, :n] = self.acc[tag, :n] + ((a * b) + c)
        self.written_beats[tag] = max(self.written_beats[tag], n // self.lanes)

    # -- control ------------------------------------------------------------------------

    def _config(self, daddr: int) -> None:
        register = _field(daddr, CONFIG_FIELDS, "register")
        value = _field(daddr, CONFIG_FIELDS, "value")
        if register == ConfigRegister.Q8_ELEMENTS and 1 <= value <= self.max_elements:
            self.q8_elements = value
        else:
            self.counters["malformed"] += 1

    def _eop(self, daddr: int) -> list[PsumBeat]:
        mask = _field(daddr, EOP_FIELDS, "tag_mask")
        elements = _field(daddr, EOP_FIELDS, "elements")
        reserved = _field(daddr, EOP_FIELDS, "reserved")
        beats: list[PsumBeat] = []
        if reserved or not 1 <= elements <= self.max_elements:
            self.counters["malformed"] += 1
        else:
            per_tag = -(-elements // self.lanes)
            for tag in range(TAGS):
                written = self.written_beats[tag]
                if written and (not mask >> tag & 1 or written > per_tag):
                    self.counters["eop_mismatches"] += 1
                if mask >> tag & 1:
                    for b in range(per_tag):
                        data = self.acc[tag, b * self.lanes : (b + 1) * self.lanes].view(np.uint32).copy()
                        beats.append(PsumBeat(tag, b, data, False))
            if beats:
                beats[-1] = beats[-1]._replace(last=True)
        self.acc[:] = 0
        self.written_beats = [0] * TAGS
        return beats

    # -- scheduler hints ----------------------------------------------------------------

    def hint_mismatches(self, requests: Iterable[LineRequest] | None = None) -> int:
        """How many of ``requests`` (default: every line read since reset) carry a hint
        that differs from the scheduler's in-order open-page prediction
        (:func:`hw.isa.expected_hint`); exact when every line misses the cache."""
        from hw.isa import expected_hint

        last_row: dict[tuple[int, int], int] = {}
        mismatches = 0
        for r in self.requests if requests is None else requests:
            bank = (r.bank_group, r.bank)
            mismatches += r.hint != expected_hint(last_row.get(bank), r.row)
            last_row[bank] = r.row
        return mismatches


def beats_equal(got: PsumBeat, want: PsumBeat) -> bool:
    """Same tag, beat, last and data, with any NaN equal to any NaN."""
    if (got.tag, got.beat, bool(got.last)) != (want.tag, want.beat, bool(want.last)):
        return False
    g = np.asarray(got.data, np.uint32)
    w = np.asarray(want.data, np.uint32)
    nan = np.isnan(g.view(_F32)) & np.isnan(w.view(_F32))
    return bool(((g == w) | nan).all())
