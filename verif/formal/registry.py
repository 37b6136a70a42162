"""Every formal property of the project: its spec, how it is proved, and the mutations that
show it bites (``recnmp formal``, ``tests/verif/test_formal.py``, ``docs/formal.md``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hw.refresh_control import recovery_cycles

from . import comb_paths, fp32_ieee
from .adder_tree_streams import AdderTreeSpec
from .dimm_decoder_dispatch import DimmDecoderSpec
from .packet_isolation import PacketIsolationSpec
from .params import FORMAL_GEOMETRY, FORMAL_TIMING, RESPONSE_BOUND, unchecked_timing
from .pipeline_streams import PipelineStreamSpec
from .retire_drain import RetireDrainSpec
from .rob_slots import ReorderBufferSpec
from .runner import TaskResult, run_task
from .scheduler_ddr4 import SchedulerDDR4Spec
from .spec import FormalSpec

__all__ = ["PROPERTIES", "Check", "FormalProperty", "Mutation", "NoSpec", "run_check", "run_mutation"]


@dataclass(frozen=True)
class Check:
    """One SymbiYosys task of a property: ``mode`` ``prove`` (k-induction of length
    ``depth``), ``bmc`` or ``cover`` (``depth`` cycles from reset), on the property's spec
    built with its arguments updated by ``spec_args``."""

    mode: str
    depth: int
    spec_args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Mutation:
    """A deliberately broken design that must violate ``breaks`` (an assertion's name).

    The spec is built with ``spec_args`` (a mutation parameter or a broken timing) and with
    ``breaks`` turned into ``Cover(~condition)``; the test passes when SymbiYosys reaches
    that violation within ``depth`` cycles from reset. ``ci=False``: too slow for CI (minutes
    with z3); run by ``recnmp formal --mutations`` and by pytest with
    ``RECNMP_FORMAL_ALL=1``.
    """

    name: str
    breaks: str
    spec_args: dict[str, Any]
    depth: int
    ci: bool = True


class NoSpec(FormalSpec):
    """The spec of a property checked without SymbiYosys (:attr:`FormalProperty.run`): no
    statements, so the SymbiYosys-centric tests find nothing to prove in it."""

    def build(self, m, platform) -> None:
        pass


@dataclass(frozen=True)
class FormalProperty:
    """A named group of assertions proved together on one spec.

    ``run``: a property checked by a Python callable instead of SymbiYosys tasks (``spec``
    :class:`NoSpec`, no ``checks``): ``run(work_dir=..., trace_dir=..., solver=...)``
    returns an object with ``passed``, ``seconds`` and ``summary()`` like a
    :class:`~verif.formal.runner.TaskResult`; ``recnmp formal`` calls it once.
    ``deep_run``: call ``run`` only with ``--deep`` or when the property is named.
    """

    name: str
    summary: str
    spec: Callable[..., FormalSpec]
    spec_args: dict[str, Any]
    checks: tuple[Check, ...]
    deep_checks: tuple[Check, ...]
    mutations: tuple[Mutation, ...]
    run: Callable[..., Any] | None = None
    deep_run: bool = False

    def build(self, **changes: Any) -> FormalSpec:
        return self.spec(**{**self.spec_args, **changes})


def run_check(prop: FormalProperty, check: Check, *, work_dir: Path, trace_dir: Path | None, **options) -> TaskResult:
    """Run one :class:`Check` of ``prop``; the task and its counterexample are named by the
    property (``<trace_dir>/<property>.vcd``)."""
    spec = prop.build(**check.spec_args)
    variant = "".join(f"-{key}={value}" for key, value in sorted(check.spec_args.items()))
    return run_task(
        name=f"{prop.name}-{check.depth}{variant}",
        trace_name=prop.name,
        rtlil_text=spec.to_rtlil(),
        mode=check.mode,
        depth=check.depth,
        work_dir=work_dir,
        trace_dir=trace_dir,
        **options,
    )


def run_mutation(
    prop: FormalProperty, mutation: Mutation, *, work_dir: Path, trace_dir: Path | None, **options
) -> TaskResult:
    """Reach ``mutation.breaks``'s violation on the mutated design (cover mode): the result
    passes when the property bites. The trace is ``<trace_dir>/<property>.<mutation>.vcd``."""
    spec = prop.build(**mutation.spec_args)
    spec.violation_of = mutation.breaks
    return run_task(
        name=f"{prop.name}.{mutation.name}",
        rtlil_text=spec.to_rtlil(),
        mode="cover",
        depth=mutation.depth,
        work_dir=work_dir,
        trace_dir=trace_dir,
        **options,
    )


def _timing(**changes: int) -> dict[str, Any]:
    return {"design_timing": unchecked_timing(**changes), "invariants": False}


def _parts(**mutations: str) -> dict[str, Any]:
    return {"part_mutations": mutations, "invariants": False}


#: Cover depth that reaches a request waiting longer than RESPONSE_BOUND: the recovery after
#: power-up, the bound, and a few cycles to fill the buffer.
RESPONSE_DEPTH_FROM_RESET = recovery_cycles(FORMAL_TIMING, FORMAL_GEOMETRY) + RESPONSE_BOUND + 9


_SCHEDULER_MUTATIONS = (
    Mutation("act_to_open_bank", "ddr4.act_to_closed_bank", _parts(buffer="act_to_open_bank"), 32),
    Mutation("tRC_3_tRAS_2_tRCD_1_tRTP_1", "ddr4.tRC", _timing(tRC=3, tRAS=2, tRCD=1, tRTP=1), 32),
    Mutation("tRP_1", "ddr4.tRP", _timing(tRP=1, tRC=5), 32),
    Mutation("tRRD_L_2", "ddr4.tRRD_L", _timing(tRRD_L=2), 32),
    Mutation("tRRD_S_1", "ddr4.tRRD_S", _timing(tRRD_S=1), 32),
    # Five ACTs within tFAW need a bank reopened in the window: four requests buffered.
    Mutation("tFAW_4", "ddr4.tFAW", {**_timing(tFAW=4), "depth": 4}, 32),
    Mutation("rd_ignores_row", "ddr4.rd_to_open_row", _parts(buffer="rd_ignores_row"), 32),
    Mutation("tRCD_1", "ddr4.tRCD", _timing(tRCD=1), 32),
    Mutation("tCCD_L_4", "ddr4.tCCD_L", _timing(tCCD_L=4), 32),
    Mutation("tCCD_S_3", "ddr4.tCCD_S", _timing(tCCD_S=3), 32),
    # tRAS = tRCD + tRTP: a row read before its PRE meets tRAS anyway, so shorten tRTP too.
    Mutation("tRAS_3_tRTP_1", "ddr4.tRAS", _timing(tRAS=3, tRTP=1), 32),
    Mutation("tRTP_1", "ddr4.tRTP", _timing(tRTP=1), 32),
    # A REF with rows open: the recovery after reset forgets to precharge (the DRAM's power-up
    # rows are free); a periodic REF with rows open would need 60+ cycles from reset.
    Mutation("no_precharge_sweep", "ddr4.ref_all_banks_closed", _parts(refresh="no_precharge_sweep"), 32),
    Mutation("ref_ignores_trp", "ddr4.tRP_before_ref", _parts(timers="ref_ignores_trp"), 32),
    Mutation("tRFC_3", "ddr4.tRFC", _timing(tRFC=3), 32),
    Mutation("no_recovery_wait", "ddr4.tRAS", _parts(refresh="no_recovery_wait"), 32),
)

PROPERTIES: dict[str, FormalProperty] = {
    p.name: p
    for p in (
        FormalProperty(
            name="scheduler_ddr4_legality",
            summary="RankScheduler: every command DDR4-legal (bank state, row, tRCD, tRP, tRAS, tRC, tCCD_S/L, "
            "tRRD_S/L, tFAW, tRTP, REF with all banks closed and tRP, tRFC) for any requests, with a reset at any "
            "cycle and the DRAM in any state at power-up",
            spec=SchedulerDDR4Spec,
            spec_args={},
            checks=(
                Check("prove", 2),
                Check("prove", 2, {"depth": 4}),
                Check("cover", 25, {"invariants": False, "tfaw_cover": False}),
                Check("cover", 32, {"invariants": False, "depth": 4}),
                # From power-up: the recovery and more than one whole refresh interval.
                Check("bmc", 70, {"invariants": False}),
            ),
            deep_checks=(),
            mutations=_SCHEDULER_MUTATIONS,
        ),
        FormalProperty(
            name="scheduler_bounded_response",
            summary=f"RankScheduler (buffer of 2): the oldest request served within {RESPONSE_BOUND} cycles of "
            f"becoming the oldest, so every accepted request within (p + 1) x {RESPONSE_BOUND} with p older ones "
            "buffered, across refresh and whatever the other requests do; its RD carries its address and its beats "
            "leave on rdata with its id tCL + 1 cycles later; a reset at any cycle",
            spec=SchedulerDDR4Spec,
            spec_args={"response_bound": RESPONSE_BOUND, "refresh_deadline": True, "tfaw_cover": False},
            checks=(
                Check("prove", RESPONSE_BOUND + 1),
                Check("cover", 32, {"invariants": False}),
            ),
            deep_checks=(),
            mutations=(
                # Younger row hits keep the oldest request's conflicting row open until a refresh.
                Mutation(
                    "no_starvation_block",
                    "response.oldest_served_within_the_bound",
                    _parts(buffer="no_starvation_block"),
                    RESPONSE_DEPTH_FROM_RESET,
                ),
                Mutation(
                    "no_starvation_block_watched",
                    "response.served_within_the_bound",
                    _parts(buffer="no_starvation_block"),
                    RESPONSE_DEPTH_FROM_RESET,
                ),
                Mutation(
                    "remove_other_entry", "response.rd_carries_the_address", _parts(buffer="remove_other_entry"), 28
                ),
                Mutation("beats_late_by_one", "response.beats_leave_with_the_id", _parts(tagger="late_by_one"), 28),
                Mutation(
                    "restart_recovery",
                    "response.recovery_only_after_a_reset",
                    _parts(refresh="restart_recovery"),
                    recovery_cycles(FORMAL_TIMING, FORMAL_GEOMETRY) + 4,
                ),
            ),
        ),
        FormalProperty(
            name="scheduler_refresh_deadline",
            summary="RankScheduler: at most refresh_deadline() cycles from a REF or a reset to the next REF "
            "(and at most one refresh owed), for any requests, with a reset at any cycle",
            spec=SchedulerDDR4Spec,
            spec_args={"refresh_deadline": True},
            checks=(Check("prove", 14),),
            deep_checks=(Check("bmc", 120, {"invariants": False}),),
            mutations=(
                Mutation(
                    "tREFI_60",
                    "ddr4.refresh_deadline",
                    {**_timing(tREFI=60), "requests": False, "refresh_deadline": True},
                    80,
                ),
            ),
        ),
        FormalProperty(
            name="dimm_decoder_dispatch",
            summary="DimmDecoder (2 ranks; and 4): every lookup to exactly its rank, every control instruction to "
            "every rank exactly once, undefined opcodes and missing ranks dropped and counted once, stream rule "
            "on every output",
            spec=DimmDecoderSpec,
            spec_args={"ranks": 2},
            checks=(Check("prove", 1), Check("prove", 1, {"ranks": 4}), Check("cover", 6)),
            deep_checks=(),
            mutations=(
                Mutation(
                    "redeliver_control", "dispatch.control_to_rank_0_not_twice", {"mutation": "redeliver_control"}, 6
                ),
                Mutation(
                    "ready_from_any_rank",
                    "dispatch.lookup_to_rank_0_exactly_once",
                    {"mutation": "ready_from_any_rank"},
                    6,
                ),
                Mutation(
                    "mark_untaken_ranks_loses",
                    "dispatch.control_taken_only_when_every_rank_has_it",
                    {"mutation": "mark_untaken_ranks"},
                    6,
                ),
                Mutation(
                    "mark_untaken_ranks_withdraws", "stream.decoder_output_0", {"mutation": "mark_untaken_ranks"}, 6
                ),
                Mutation("illegal_uncounted", "dispatch.illegal_counted", {"mutation": "illegal_uncounted"}, 6),
                Mutation("bad_rank_uncounted", "dispatch.bad_rank_counted", {"mutation": "bad_rank_uncounted"}, 6),
                Mutation(
                    "illegal_to_rank_0", "dispatch.dropped_words_reach_no_rank", {"mutation": "illegal_to_rank_0"}, 6
                ),
                Mutation(
                    "valid_without_input", "dispatch.output_0_carries_the_input", {"mutation": "valid_without_input"}, 6
                ),
            ),
        ),
        FormalProperty(
            name="rob_slots",
            summary="ReorderBuffer (8 slots): every slot allocated only when free, filled once (hit or DRAM line) and "
            "released once, every miss requested once, ready bits and pointers exact, stream rule on lookup and req",
            spec=ReorderBufferSpec,
            spec_args={},
            checks=(Check("prove", 1), Check("cover", 12)),
            deep_checks=(),
            mutations=(
                Mutation("no_room_check", "rob.allocates_only_a_free_slot", {"mutation": "no_room_check"}, 12),
                Mutation(
                    "keep_ready_on_free", "rob.slot_0_ready_exactly_when_filled", {"mutation": "keep_ready_on_free"}, 12
                ),
                Mutation("hit_ignores_beat", "rob.read_ready_of_the_slot_read", {"mutation": "hit_ignores_beat"}, 12),
                Mutation("request_yields_to_beats", "stream.rob_request", {"mutation": "yield_to_beats"}, 12),
                Mutation("lookup_yields_to_beats", "stream.rob_lookup", {"mutation": "yield_to_beats"}, 12),
                Mutation(
                    "yield_to_beats_loses_a_miss", "rob.every_miss_requested_once", {"mutation": "yield_to_beats"}, 12
                ),
                Mutation(
                    "yield_to_beats_loses_a_lookup",
                    "rob.lookup_with_every_allocation",
                    {"mutation": "yield_to_beats"},
                    12,
                ),
                Mutation("empty_with_one_left", "rob.empty_flag", {"mutation": "empty_with_one_left"}, 12),
                Mutation(
                    "free_keeps_tail", "rob.pointers_follow_allocation_and_release", {"mutation": "free_keeps_tail"}, 12
                ),
                Mutation(
                    "lookup_names_tail", "rob.lookup_names_the_allocated_slot", {"mutation": "lookup_names_tail"}, 12
                ),
                Mutation(
                    "request_names_head", "rob.request_names_the_missed_slot", {"mutation": "request_names_head"}, 12
                ),
                Mutation("fill_every_beat", "rob.fill_only_with_the_last_beat", {"mutation": "fill_every_beat"}, 12),
            ),
        ),
        FormalProperty(
            name="packet_isolation",
            summary="RankDatapath (1 lane, 4 beats per tag, latencies 1): no beat taken while a drain waits or "
            "streams, no write-back during a drain, every mark 0 after a drain (every tag starts the next packet "
            "at +0.0), stream rule on psum",
            spec=PacketIsolationSpec,
            spec_args={},
            checks=(Check("prove", 1), Check("prove", 1, {"beat_rule": False}), Check("cover", 12)),
            deep_checks=(),
            mutations=(
                Mutation(
                    "accept_during_drain",
                    "isolation.no_beat_taken_while_a_drain_waits",
                    {"mutation": "accept_during_drain"},
                    12,
                ),
                Mutation(
                    "drain_before_writeback",
                    "isolation.no_write_back_during_a_drain",
                    {"mutation": "drain_before_writeback"},
                    12,
                ),
                Mutation(
                    "keep_marks", "isolation.every_tag_starts_the_next_packet_at_zero", {"mutation": "keep_marks"}, 12
                ),
                Mutation("drain_ignores_ready", "stream.psum_output", {"mutation": "drain_ignores_ready"}, 12),
            ),
        ),
        FormalProperty(
            name="retire_drain_stream",
            summary="RankRetire (1 lane): stream rule on drain (the EOP to the datapath), with the operation queue "
            "keeping it; with packet_isolation and the wiring this gives the rule on rank_nmp.psum",
            spec=RetireDrainSpec,
            spec_args={},
            checks=(Check("prove", 1), Check("cover", 4)),
            deep_checks=(),
            mutations=(
                Mutation("eop_ignores_drain_ready", "stream.retire_drain", {"mutation": "eop_ignores_drain_ready"}, 4),
            ),
        ),
        FormalProperty(
            name="retire_exactly_once",
            summary="RankRetire (4 lanes): every well-formed operation leaves the queue exactly when all its beats "
            "were taken (fp32: vsize x 4 beats and vsize releases; 8-bit: q8_beats; EOP: none, with its drain), no "
            "beat without its operation, every beat with its tag",
            spec=RetireDrainSpec,
            spec_args={"exactly_once": True},
            checks=(Check("prove", 2), Check("cover", 16)),
            deep_checks=(),
            mutations=(
                Mutation(
                    "skip_last_line",
                    "retire.fp32_lookup_after_all_its_beats",
                    {"mutation": "skip_last_line"},
                    12,
                ),
                Mutation(
                    "q8_one_beat_short", "retire.q8_row_after_all_its_beats", {"mutation": "q8_one_beat_short"}, 12
                ),
                Mutation("beat_without_op", "retire.no_beat_without_its_operation", {"mutation": "beat_without_op"}, 4),
                Mutation("tag_zero", "retire.beat_carries_the_tag", {"mutation": "tag_zero"}, 4),
                Mutation(
                    "eop_ignores_drain_ready", "retire.eop_with_its_drain", {"mutation": "eop_ignores_drain_ready"}, 4
                ),
            ),
        ),
        FormalProperty(
            name="pipeline_streams",
            summary="uint_adder (4 bits), fp32_add, fp32_mul (latency 2): stream rule on the output; uint_adder: "
            "every result is the oldest sum in flight, none lost, duplicated or reordered",
            spec=PipelineStreamSpec,
            spec_args={"block": "uint_adder"},
            checks=(
                Check("prove", 1),
                Check("prove", 1, {"block": "fp32_add"}),
                Check("prove", 1, {"block": "fp32_mul"}),
                Check("cover", 6),
            ),
            deep_checks=(),
            mutations=(
                Mutation(
                    "uint_adder_advance_ignores_ready",
                    "stream.uint_adder_output",
                    {"mutation": "advance_ignores_ready"},
                    6,
                ),
                Mutation(
                    "uint_adder_loses_results",
                    "order.result_is_the_oldest_sum",
                    {"mutation": "advance_ignores_ready"},
                    6,
                ),
                Mutation(
                    "uint_adder_overfills",
                    "order.no_more_in_flight_than_stages",
                    {"mutation": "advance_ignores_ready"},
                    6,
                ),
                Mutation(
                    "uint_adder_empty_result",
                    "order.nothing_taken_from_an_empty_pipeline",
                    {"mutation": "advance_ignores_ready"},
                    6,
                ),
                Mutation(
                    "fp32_add_advance_ignores_ready",
                    "stream.fp32_add_output",
                    {"block": "fp32_add", "mutation": "advance_ignores_ready"},
                    6,
                ),
                Mutation(
                    "fp32_mul_advance_ignores_ready",
                    "stream.fp32_mul_output",
                    {"block": "fp32_mul", "mutation": "advance_ignores_ready"},
                    6,
                ),
            ),
        ),
        FormalProperty(
            name="adder_tree_stream",
            summary="RankAdderTree (2 ranks x 2 lanes; 4 ranks x 1 lane; fp32 adders of latency 1): stream rule on "
            "the output (dimm_nmp.result), every lane's sum, tag, beat and last, with the ranks' sources keeping it "
            "(and with free sources)",
            spec=AdderTreeSpec,
            spec_args={},
            checks=(
                Check("prove", 1),
                Check("prove", 1, {"ranks": 4, "lanes": 1}),
                Check("prove", 1, {"assume_sources": False}),
                Check("cover", 6),
            ),
            deep_checks=(),
            mutations=(
                Mutation("meta_ignores_ready", "stream.tree_output", {"mutation": "meta_ignores_ready"}, 6),
                Mutation("adders_ignore_ready", "stream.tree_output", {"mutation": "adders_ignore_ready"}, 6),
            ),
        ),
        FormalProperty(
            name="stream_valid_registered",
            summary="every rtl_gen block (defaults; dimm_nmp also at 1 and 4 ranks): no output stream's valid or "
            "payload depends combinationally on any output stream's ready (netlist traversal through "
            "combinational cells, asynchronous memory reads included); rank_nmp.psum and dimm_nmp.result wired "
            "straight to the datapath's and the adder tree's o, the tree's inputs to the ranks' psum",
            spec=NoSpec,
            spec_args={},
            checks=(),
            deep_checks=(),
            mutations=(),
            run=comb_paths.run_property,
        ),
        *(
            FormalProperty(
                name=p.name,
                summary=p.summary,
                spec=NoSpec,
                spec_args={},
                checks=(),
                deep_checks=(),
                mutations=(),
                run=p.run_property,
                deep_run=p.deep,
            )
            for p in fp32_ieee.IEEE_PROPERTIES.values()
        ),
    )
}
