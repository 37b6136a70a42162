"""Reference model of one DIMM's processing unit (DIMM-NMP): decoder, Rank-NMPs, adder tree.

It implements the DIMM level of ``docs/design.md`` ("DIMM-NMP") on top of
:class:`sim_models.rank_nmp.RankNMPModel`, instruction by instruction:

* **Decoder.** An undefined opcode is dropped and counted (``illegal``). A lookup
  (``SUM``, ``WSUM``, ``SUM_Q8``, ``WSUM_Q8``) goes to the rank named by the rank bits of
  its ``daddr``; a rank number ``>= ranks`` is dropped and counted (``bad_rank``).
  ``CONFIG``, ``INVALIDATE`` and ``EOP`` are broadcast to every rank, in order.
* **Ranks.** One :class:`~sim_models.rank_nmp.RankNMPModel` per rank, each reading its own
  rank image.
* **Adder tree.** At each EOP every rank returns the same tags and beats; the DIMM adds
  them element-wise in fp32, pairwise over rank index, level by level (1 rank: ``p0``;
  2: ``p0 + p1``; 4: ``(p0 + p1) + (p2 + p3)``), giving one result beat per rank beat
  (tag, beat, last, ``lanes`` fp32 values as ``uint32`` bits).

Timing (transport rate, backpressure, DRAM, cache) is not modelled; like the rank model,
the results never depend on it.

Use::

    model = DimmNMPModel(ranks=2)
    beats = model.run(words, images)   # images[r] has RankImage's read(); list of DimmBeat
    model.counters                     # DIMM counters plus the sums of the ranks'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from hw.ddr4 import DDR4Geometry
from hw.isa import DADDR_FIELDS, LOOKUP_OPCODES, Opcode, ints_to_words, unpack

from .rank_nmp import COUNTERS as RANK_COUNTERS
from .rank_nmp import RankNMPModel

__all__ = ["COUNTERS", "DIMM_COUNTERS", "DimmBeat", "DimmNMPModel", "tree_sum"]

#: The decoder's own counters.
DIMM_COUNTERS = ("illegal", "bad_rank")
#: Every counter of :attr:`DimmNMPModel.counters`: the DIMM's, then the ranks' summed
#: (``illegal`` is the DIMM's plus the ranks', which the decoder never sends one).
COUNTERS = DIMM_COUNTERS + tuple(c for c in RANK_COUNTERS if c not in DIMM_COUNTERS)

_VALID_RANKS = (1, 2, 4)
_OPCODES = frozenset(int(op) for op in Opcode)
_LOOKUPS = frozenset(int(op) for op in LOOKUP_OPCODES)
_RANK_FIELD = next(f for f in DADDR_FIELDS if f.name == "rank")


class DimmBeat(NamedTuple):
    """One result beat of the DIMM: ``lanes`` fp32 values (``uint32`` bits) of one tag."""

    tag: int
    beat: int
    last: bool
    data: np.ndarray


def tree_sum(partials: Sequence[np.ndarray]) -> np.ndarray:
    """Pairwise fp32 sum over rank index, level by level (``((p0 + p1) + (p2 + p3))``).

    ``partials`` are ``uint32`` bit patterns of fp32 values (one array per rank, equal
    shapes, a power-of-two count); returns the sum's bits.
    """
    level = [np.asarray(p, np.uint32).view(np.float32) for p in partials]
    with np.errstate(all="ignore"):
        while len(level) > 1:
            level = [level[i] + level[i + 1] for i in range(0, len(level), 2)]
    return level[0].view(np.uint32).copy()


class DimmNMPModel:
    """The documented behaviour of one DIMM's PU.

    Parameters
    ----------
    ranks : {1, 2, 4}
        Ranks of the DIMM, one Rank-NMP each.
    lanes, max_elements : int
        Datapath of every rank (:class:`~sim_models.rank_nmp.RankNMPModel`).
    geometry : DDR4Geometry
        Shape of every rank.

    Attributes
    ----------
    rank_models : list of RankNMPModel
    counters : dict
        :data:`COUNTERS` (a fresh dict on every read).
    """

    def __init__(
        self, *, ranks: int = 2, lanes: int = 4, max_elements: int = 256, geometry: DDR4Geometry = DDR4Geometry()
    ):
        if isinstance(ranks, bool) or ranks not in _VALID_RANKS:
            raise ValueError(f"ranks must be 1, 2 or 4, got {ranks!r}")
        self.ranks = ranks
        self.lanes = lanes
        self.rank_models = [
            RankNMPModel(lanes=lanes, max_elements=max_elements, geometry=geometry) for _ in range(ranks)
        ]
        self._own = dict.fromkeys(DIMM_COUNTERS, 0)

    def reset(self) -> None:
        """A sync reset of the PU: every rank reset, counters zero."""
        for rank in self.rank_models:
            rank.reset()
        self._own = dict.fromkeys(DIMM_COUNTERS, 0)

    @property
    def counters(self) -> dict[str, int]:
        out = dict(self._own)
        for name in RANK_COUNTERS:
            out[name] = out.get(name, 0) + sum(rank.counters[name] for rank in self.rank_models)
        return out

    def run(self, words: Iterable[int] | np.ndarray, images: Sequence) -> list[DimmBeat]:
        """Execute instructions in order; return the result beats they produce.

        Parameters
        ----------
        words : iterable of int, or numpy.ndarray
            79-bit instruction words as Python integers, or packed ``(n, 2) uint64`` words.
        images : sequence
            ``images[r]`` is rank ``r``'s memory, with
            ``read(bank_group=, bank=, row=, column=, length=) -> bytes``.
        """
        if not isinstance(words, np.ndarray):
            words = list(words)
            if not words:
                return []
            words = ints_to_words(words)
        if len(images) != self.ranks:
            raise ValueError(f"need one image per rank ({self.ranks}), got {len(images)}")
        beats: list[DimmBeat] = []
        for inst in unpack(words):
            beats += self.execute(inst, images)
        return beats

    def execute(self, inst, images: Sequence) -> list[DimmBeat]:
        """Decode and execute one unpacked instruction (a record of ``hw.isa.INST_DTYPE``)."""
        opcode = int(inst["opcode"])
        if opcode not in _OPCODES:
            self._own["illegal"] += 1
            return []
        if opcode in _LOOKUPS:
            rank = (int(inst["daddr"]) >> _RANK_FIELD.offset) & ((1 << _RANK_FIELD.width) - 1)
            if rank >= self.ranks:
                self._own["bad_rank"] += 1
            else:
                self.rank_models[rank].execute(inst, images[rank])
            return []
        results = [model.execute(inst, image) for model, image in zip(self.rank_models, images)]
        if opcode != Opcode.EOP or not results[0]:
            return []
        return [
            DimmBeat(first.tag, first.beat, bool(first.last), tree_sum([r[i].data for r in results]))
            for i, first in enumerate(results[0])
        ]
