"""Every block ``rtl_gen`` can generate. Add a block here to make it generatable.

Each block names its component class and the constructor parameters it exposes, with a
help text; the defaults are read from the constructor's signature, so they cannot drift
from the component. A block listing ``timing`` exposes every :class:`hw.ddr4.DDR4Timing`
field as an integer parameter (DDR4-2400 defaults) and passes ``timing=DDR4Timing(...)``.
"""

import inspect
from dataclasses import fields

from hw.ddr4 import DDR4Timing
from hw.dimm_nmp import DimmNMP
from hw.fp32_add import FP32Adder
from hw.fp32_lane import FP32Lane
from hw.fp32_mul import FP32Multiplier
from hw.fp32_vector_lane import LANES as VECTOR_LANES
from hw.fp32_vector_lane import FP32VectorLane
from hw.rank_cache import RankCache
from hw.rank_datapath import RankDatapath
from hw.rank_nmp import RankNMP
from hw.rank_scheduler import RankScheduler, RankSchedulerTop
from hw.uint_adder import UIntAdder

from .registry import Block, Param, register

_LATENCY = "pipeline latency in cycles (1..8)"
_LANE_LATENCIES = {
    "mul_latency": "multiplier latency in cycles (1..8)",
    "add_latency": "latency of each adder in cycles (1..8)",
}
_TIMING_FIELDS = tuple(f.name for f in fields(DDR4Timing))

#: The DDR4 timings as block parameters, DDR4-2400 defaults.
_TIMING = tuple(Param(f.name, int, f.default, f"DDR4 timing {f.name} in DRAM cycles") for f in fields(DDR4Timing))


def _block(
    name: str,
    cls,
    description: str,
    helps: dict[str, str],
    *,
    choices: dict[str, tuple] | None = None,
    signature_of=None,
) -> Block:
    """Register ``cls`` as block ``name`` with the constructor parameters named in ``helps``.

    ``signature_of`` is the class (or classes, searched in order) whose constructor defaults
    are used, when ``cls`` forwards its keyword arguments to them.
    """
    classes = signature_of if isinstance(signature_of, tuple) else (signature_of or cls,)
    signatures = [inspect.signature(c.__init__).parameters for c in classes]
    params = []
    for param, help_text in helps.items():
        if param == "timing":
            params += _TIMING
            continue
        default = next(s[param].default for s in signatures if param in s)
        params.append(Param(param, type(default), default, help_text, (choices or {}).get(param)))

    def factory(**values):
        if "timing" in helps:
            values["timing"] = DDR4Timing(**{f: values.pop(f) for f in _TIMING_FIELDS})
        return cls(**values)

    return register(Block(name=name, factory=factory, description=description, params=tuple(params)))


_block(
    "uint_adder",
    UIntAdder,
    "pipelined unsigned adder with stream ports (toolchain smoke test)",
    {"width": "operand width in bits (1..64)", "latency": _LATENCY},
)

_block(
    "fp32_add",
    FP32Adder,
    "pipelined IEEE-754 binary32 adder, round to nearest even, subnormals kept",
    {"latency": _LATENCY},
)

_block(
    "fp32_mul",
    FP32Multiplier,
    "pipelined IEEE-754 binary32 multiplier, round to nearest even, subnormals kept",
    {"latency": _LATENCY},
)

_block(
    "fp32_lane", FP32Lane, "Rank-NMP lane: result = acc + ((a * b) + c), fp32, each operation rounded", _LANE_LATENCIES
)

_block(
    "fp32_vector_lane",
    FP32VectorLane,
    "LANES fp32 lanes (acc + ((a * b) + c)) sharing one stream",
    {"lanes": "number of fp32 lanes", **_LANE_LATENCIES},
    choices={"lanes": VECTOR_LANES},
)

_block(
    "rank_cache",
    RankCache,
    "RankCache: set-associative true-LRU line cache, 1-cycle hit, 512-bit lines",
    {
        "size_bytes": "capacity in bytes (a power of two, >= 64 * ways)",
        "ways": "associativity (1, 2, 4, 8 or 16)",
        "id_width": "width of the opaque id returned with each result (1..32)",
    },
)

_block(
    "rank_scheduler",
    RankSchedulerTop,
    "DDR4 command generator of one rank: FR-FCFS, open page, refresh, id-tagged read data",
    {
        "depth": "request buffer entries (2..64)",
        "id_width": "width of the opaque request id (1..16)",
        "starvation_limit": "age in cycles after which a conflicting request blocks younger row hits (1..1024)",
        "timing": "",
    },
    signature_of=RankScheduler,
)

_block(
    "rank_datapath",
    RankDatapath,
    "Rank-NMP datapath: LANES fp32 lanes accumulating into the 16-tag partial-sum file",
    {
        "lanes": "fp32 lanes (1, 2, 4, 8 or 16)",
        "max_elements": "fp32 values per partial sum (a multiple of lanes)",
        **_LANE_LATENCIES,
    },
)

_RANK_NMP = {
    "cache_size_bytes": "RankCache capacity in bytes",
    "cache_ways": "RankCache associativity",
    "lanes": "fp32 lanes (1, 2, 4 or 8)",
    "max_elements": "fp32 values per partial sum",
    "rob_lines": "reorder-buffer slots, 64 B lines in flight (8..256)",
    "scheduler_depth": "DRAM request buffer entries",
    **_LANE_LATENCIES,
    "timing": "",
}

_block(
    "rank_nmp", RankNMP, "Rank-NMP: RankCache, DDR4 scheduler, reorder buffer, fp32 datapath, partial sums", _RANK_NMP
)

_block(
    "dimm_nmp",
    DimmNMP,
    "DIMM-NMP: one DIMM's PU: decoder, a Rank-NMP per rank, pairwise fp32 adder tree over ranks",
    {"ranks": "ranks of the DIMM (1, 2 or 4)", **_RANK_NMP},
    choices={"ranks": (1, 2, 4)},
    signature_of=(DimmNMP, RankNMP),
)
