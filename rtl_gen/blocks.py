"""Every block ``rtl_gen`` can generate. Add a block here to make it generatable.

Components are imported when a block is generated, not when the registry loads, so
``--list`` stays fast.
"""

from dataclasses import fields
from importlib import import_module

from hw.ddr4 import DDR4Timing

from .registry import Block, Param, register

_LATENCY = "pipeline latency in cycles (1..8)"


def _component(path: str, *, with_timing: bool = False):
    """A factory for the component class at ``"module:Class"``.

    ``with_timing``: the block takes every :class:`DDR4Timing` field as an integer parameter
    (see :data:`_TIMING`) and the component a ``timing=DDR4Timing(...)``.
    """
    module, name = path.split(":")

    def factory(**params):
        cls = getattr(import_module(module), name)
        if with_timing:
            params["timing"] = DDR4Timing(**{f.name: params.pop(f.name) for f in fields(DDR4Timing)})
        return cls(**params)

    return factory


#: The DDR4 timings as block parameters, DDR4-2400 defaults.
_TIMING = tuple(
    Param(f.name, int, f.default, f"DDR4 timing {f.name} in DRAM cycles") for f in fields(DDR4Timing)
)

register(Block(
    name="uint_adder",
    factory=_component("hw.uint_adder:UIntAdder"),
    description="pipelined unsigned adder with stream ports (toolchain smoke test)",
    params=(
        Param("width", int, 8, "operand width in bits (1..64)"),
        Param("latency", int, 1, _LATENCY),
    ),
))

register(Block(
    name="fp32_add",
    factory=_component("hw.fp32_add:FP32Adder"),
    description="pipelined IEEE-754 binary32 adder, round to nearest even, subnormals kept",
    params=(Param("latency", int, 3, _LATENCY),),
))

register(Block(
    name="fp32_mul",
    factory=_component("hw.fp32_mul:FP32Multiplier"),
    description="pipelined IEEE-754 binary32 multiplier, round to nearest even, subnormals kept",
    params=(Param("latency", int, 4, _LATENCY),),
))

_LANE_LATENCIES = (
    Param("mul_latency", int, 4, "multiplier latency in cycles (1..8)"),
    Param("add_latency", int, 3, "latency of each adder in cycles (1..8)"),
)

register(Block(
    name="fp32_lane",
    factory=_component("hw.fp32_lane:FP32Lane"),
    description="Rank-NMP lane: result = acc + ((a * b) + c), fp32, each operation rounded",
    params=_LANE_LATENCIES,
))

register(Block(
    name="fp32_vector_lane",
    factory=_component("hw.fp32_vector_lane:FP32VectorLane"),
    description="LANES fp32 lanes (acc + ((a * b) + c)) sharing one stream",
    params=(
        Param("lanes", int, 4, "number of fp32 lanes", choices=(1, 2, 4, 8, 16)),
        *_LANE_LATENCIES,
    ),
))

register(Block(
    name="rank_cache",
    factory=_component("hw.rank_cache:RankCache"),
    description="RankCache: set-associative true-LRU line cache, 1-cycle hit, 512-bit lines",
    params=(
        Param("size_bytes", int, 131072, "capacity in bytes (a power of two, >= 64 * ways)"),
        Param("ways", int, 4, "associativity (1, 2, 4, 8 or 16)"),
        Param("id_width", int, 6, "width of the opaque id returned with each result (1..32)"),
    ),
))

register(Block(
    name="rank_scheduler",
    factory=_component("hw.rank_scheduler:RankSchedulerTop", with_timing=True),
    description="DDR4 command generator of one rank: FR-FCFS, open page, refresh, id-tagged read data",
    params=(
        Param("depth", int, 16, "request buffer entries (2..64)"),
        Param("id_width", int, 6, "width of the opaque request id (1..16)"),
        Param("starvation_limit", int, 64,
              "age in cycles after which a conflicting request blocks younger row hits (1..1024)"),
        *_TIMING,
    ),
))

register(Block(
    name="rank_datapath",
    factory=_component("hw.rank_datapath:RankDatapath"),
    description="Rank-NMP datapath: LANES fp32 lanes accumulating into the 16-tag partial-sum file",
    params=(
        Param("lanes", int, 4, "fp32 lanes (1, 2, 4, 8 or 16)"),
        Param("max_elements", int, 128, "fp32 values per partial sum (a multiple of lanes)"),
        *_LANE_LATENCIES,
    ),
))

register(Block(
    name="rank_nmp",
    factory=_component("hw.rank_nmp:RankNMP", with_timing=True),
    description="Rank-NMP: RankCache, DDR4 scheduler, reorder buffer, fp32 datapath, partial sums",
    params=(
        Param("cache_size_bytes", int, 131072, "RankCache capacity in bytes"),
        Param("cache_ways", int, 4, "RankCache associativity"),
        Param("lanes", int, 4, "fp32 lanes (1, 2, 4 or 8)"),
        Param("max_elements", int, 256, "fp32 values per partial sum"),
        Param("rob_lines", int, 64, "reorder-buffer slots, 64 B lines in flight (8..256)"),
        Param("scheduler_depth", int, 16, "DRAM request buffer entries"),
        *_LANE_LATENCIES,
        *_TIMING,
    ),
))
