"""Spec: the DIMM-NMP adder tree keeps the stream rule on its output (``dimm_nmp.result``).

Free inputs: every rank's partial-sum beats (any data, tag, beat and last; each source
keeps the stream rule, or with ``assume_sources=False`` not even that), ``o.ready`` and the
reset. Property ``stream.tree_output``: a beat
offered on ``o`` and not taken is offered again in the next cycle with the same payload
(every lane's sum, tag, beat, last). ``dimm_nmp.result`` is the tree's ``o`` and the tree's
inputs are the ranks' ``psum`` (``verif/formal/comb_paths.py`` checks the wiring), whose
rule is proved on the datapath (``packet_isolation``).

Invariant: the fp32 adders of a level run in lockstep (their valid bits equal those of the
level's first adder, the one whose ``ready`` the tree uses for all of them).

Mutations (applied by patching, so the hardware module has no test-only parameter):
``meta_ignores_ready`` (tag, beat and last move while the output stalls) and
``adders_ignore_ready`` (the fp32 adders' pipelines move while the output stalls).
"""

from __future__ import annotations

import contextlib
import functools
from unittest import mock

from amaranth.asserts import AnySeq
from amaranth.hdl import Cat, Const, Module, Value

import hw.fp32_add
import hw.rank_adder_tree
from hw.pipeline import delay, stream_pipeline
from hw.rank_adder_tree import RankAdderTree

from .spec import FormalSpec, stream_contract

__all__ = ["AdderTreeSpec"]

MUTATIONS = ("meta_ignores_ready", "adders_ignore_ready")


class AdderTreeSpec(FormalSpec):
    """Stream rule on :class:`hw.rank_adder_tree.RankAdderTree`'s output.

    Parameters
    ----------
    ranks : int
        2 or 4 (1 is a pass-through: the output is the input).
    lanes : int
        fp32 lanes (default 2: two adders per level in lockstep).
    add_latency : int
        Latency of each adder (default 1).
    assume_sources : bool
        The ranks' sources keep the stream rule (default). ``False``: they are free; the
        output keeps the rule all the same (with 2 or 4 ranks every output register moves
        only with the output's ``ready``).
    mutation : str, optional
        One of :data:`MUTATIONS`.
    """

    def __init__(
        self,
        *,
        ranks: int = 2,
        lanes: int = 2,
        add_latency: int = 1,
        assume_sources: bool = True,
        mutation: str | None = None,
    ):
        super().__init__()
        if mutation is not None and mutation not in MUTATIONS:
            raise ValueError(f"mutation must be None or one of {MUTATIONS}, got {mutation!r}")
        if ranks not in (2, 4):
            raise ValueError("the spec needs an adder tree of 2 or 4 ranks")
        self.ranks = ranks
        self.lanes = lanes
        self.add_latency = add_latency
        self.assume_sources = assume_sources
        self.mutation = mutation

    def build(self, m: Module, platform) -> None:
        dut = RankAdderTree(ranks=self.ranks, lanes=self.lanes, beat_width=2, add_latency=self.add_latency)
        stages: list[list] = []  # the valid bits of every adder, in elaboration order

        def recording_pipeline(*args, **kwargs):
            if self.mutation == "adders_ignore_ready":
                kwargs["mutation"] = "advance_ignores_ready"
            valid = stream_pipeline(*args, **kwargs)
            stages.append(valid)
            return valid

        patches = [mock.patch.object(hw.fp32_add, "stream_pipeline", recording_pipeline)]
        if self.mutation == "meta_ignores_ready":
            patches.append(mock.patch.object(hw.rank_adder_tree, "delay", functools.partial(_free_delay)))
        with contextlib.ExitStack() as stack:
            for patch in patches:
                stack.enter_context(patch)
            m.submodules.dut = self.elaborated(dut, platform)

        for i in dut.inputs():
            for port in (i.valid, i.payload):
                m.d.comb += Value.cast(port).eq(AnySeq(len(Value.cast(port))))
        m.d.comb += dut.o.ready.eq(AnySeq(1))
        for r, i in enumerate(dut.inputs()):
            if self.assume_sources:
                stream_contract(self, m, f"stream.rank_{r}_source", i, obligation=False)
        stream_contract(self, m, "stream.tree_output", dut.o, obligation=True)

        # Lockstep: the adders of a level (elaborated level by level, ``lanes`` per pair).
        per_level = []
        pairs = self.ranks // 2
        while pairs:
            per_level.append(pairs * self.lanes)
            pairs //= 2
        first = 0
        for level, count in enumerate(per_level):
            lead = stages[first]
            for n in range(first + 1, first + count):
                self.check(m, f"inv.tree.level_{level}_adder_{n}_in_lockstep", Cat(stages[n]) == Cat(lead))
            first += count

        taken = dut.o.valid & dut.o.ready
        self.cover(m, "cover.result_held_under_backpressure", dut.o.valid & ~dut.o.ready)
        self.cover(m, "cover.result_taken", taken)
        self.cover(m, "cover.beat_taken_from_every_rank", Cat(i.valid & i.ready for i in dut.inputs()).all())


def _free_delay(m, value, cycles, *, enable, name):
    """:func:`hw.pipeline.delay` that loads in every cycle (the mutation)."""
    return delay(m, value, cycles, enable=Const(1), name=name)
