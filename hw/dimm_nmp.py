"""DIMM-NMP: one DIMM's processing unit, from the host's NMP-Insts to reduced partial sums."""

from __future__ import annotations

from functools import reduce

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .ddr4 import DramPortSignature
from .dimm_decoder import RANKS, DimmDecoder
from .isa import NMP_INST_LAYOUT
from .params import check_choice
from .rank_adder_tree import RankAdderTree
from .rank_nmp import RankNMP

__all__ = ["DimmNMP"]


class DimmNMP(wiring.Component):
    """One DIMM's PU: decoder, one :class:`hw.rank_nmp.RankNMP` per rank, adder tree.

    The host streams NMP-Insts on ``inst`` (up to one per cycle). The
    :class:`hw.dimm_decoder.DimmDecoder` sends each lookup to the rank in its daddr and every
    control instruction (EOP, INVALIDATE, CONFIG) to all ranks, with backpressure; it drops
    and counts undefined opcodes and lookups to a rank the DIMM does not have. Each rank
    accumulates its lookups (``docs/rank_nmp_semantics.md``: malformed lookups are dropped
    and counted there) and, at an EOP, drains the EOP's tags; every rank drains the same
    beats, which the :class:`hw.rank_adder_tree.RankAdderTree` adds element-wise with the
    fixed pairwise tree over rank index and streams on ``result``. A rank keeps fetching
    the next packet's lookups while a drain is under way, so packets overlap but never mix.

    Parameters
    ----------
    ranks : int
        Ranks of the DIMM: 1, 2 or 4.
    **rank_params
        Passed to every :class:`hw.rank_nmp.RankNMP` (timing, cache size, lanes, ...).

    Attributes
    ----------
    inst : In(stream.Signature(NMP_INST_LAYOUT))
    result : Out(stream.Signature(psum_beat_layout))
        Reduced partial sums: ``tag``, ``beat``, ``last`` (on the final beat of an EOP's
        drain) and ``lanes`` fp32 values per beat.
    dram0 .. dram{ranks-1} : Out(DramPortSignature)
        The ranks' DDR4 command ports and read data.
    idle : Out(1)
        Nothing held anywhere: every rank idle and no beat in the adder tree.
    illegal, bad_rank, packets : Out(32)
        The decoder's counters (``illegal`` includes the ranks', which are zero: undefined
        opcodes never reach them).
    lookups, lines, malformed, eop_mismatches, cache_*, acts, pres, reads, refs, row_*, hint_mismatches : Out(32)
        The ranks' counters, summed over ranks (wrapping).

    Latency: a rank's latency (``docs/rank_nmp.md``) plus ``log2(ranks) * add_latency``
    cycles of the adder tree for each result beat.
    """

    def __init__(self, *, ranks: int = 2, **rank_params):
        check_choice("ranks", ranks, RANKS)
        self._ranks_list = [RankNMP(**rank_params) for _ in range(ranks)]  # they validate
        self._decoder = DimmDecoder(ranks=ranks)
        first = self._ranks_list[0]
        psum = first.signature.members["psum"].signature
        self._tree = RankAdderTree(
            ranks=ranks,
            lanes=first.lanes,
            add_latency=first.add_latency,
            beat_width=psum.members["payload"].shape["beat"].width,
        )
        self._rank_params = dict(rank_params)
        rank_counters = [name for name in first.counters if name not in DimmDecoder.COUNTERS]
        self._counters = DimmDecoder.COUNTERS + tuple(rank_counters)
        super().__init__(
            {
                "inst": In(stream.Signature(NMP_INST_LAYOUT)),
                "result": Out(psum),
                **{f"dram{r}": Out(DramPortSignature(first.geometry)) for r in range(ranks)},
                "idle": Out(1),
                **{name: Out(32) for name in self._counters},
            }
        )

    @property
    def ranks(self) -> int:
        return len(self._ranks_list)

    @property
    def rank_params(self) -> dict:
        return dict(self._rank_params)

    @property
    def lanes(self) -> int:
        return self._ranks_list[0].lanes

    @property
    def timing(self):
        return self._ranks_list[0].timing

    @property
    def counters(self) -> tuple[str, ...]:
        return self._counters

    def elaborate(self, platform):
        m = Module()
        m.submodules.decoder = decoder = self._decoder
        m.submodules.tree = tree = self._tree
        wiring.connect(m, wiring.flipped(self.inst), decoder.i)
        wiring.connect(m, tree.o, wiring.flipped(self.result))
        for r, rank in enumerate(self._ranks_list):
            m.submodules[f"rank{r}"] = rank
            wiring.connect(m, decoder.outputs()[r], rank.inst)
            wiring.connect(m, rank.psum, tree.inputs()[r])
            wiring.connect(m, rank.dram, wiring.flipped(getattr(self, f"dram{r}")))

        for name in self._counters:
            parts = [getattr(rank, name) for rank in self._ranks_list if name in rank.counters]
            if name in DimmDecoder.COUNTERS:
                parts.append(getattr(decoder, name))
            m.d.comb += getattr(self, name).eq(reduce(lambda a, b: a + b, parts)[:32])
        m.d.comb += self.idle.eq(reduce(lambda a, b: a & b, [rank.idle for rank in self._ranks_list]) & ~tree.busy)
        return m
