"""Every block ``rtl_gen`` can generate. Add a block here to make it generatable."""

from .registry import Block, Param, register


def _uint_adder(**params):
    from hw.uint_adder import UIntAdder

    return UIntAdder(**params)


register(Block(
    name="uint_adder",
    factory=_uint_adder,
    description="pipelined unsigned adder with stream ports (toolchain smoke test)",
    params=(
        Param("width", int, 8, "operand width in bits (1..64)"),
        Param("latency", int, 1, "pipeline latency in cycles (1..8)"),
    ),
))


def _fp32_add(**params):
    from hw.fp32_add import FP32Adder

    return FP32Adder(**params)


def _fp32_mul(**params):
    from hw.fp32_mul import FP32Multiplier

    return FP32Multiplier(**params)


def _fp32_lane(**params):
    from hw.fp32_lane import FP32Lane

    return FP32Lane(**params)


def _fp32_vector_lane(**params):
    from hw.fp32_vector_lane import FP32VectorLane

    return FP32VectorLane(**params)


register(Block(
    name="fp32_add",
    factory=_fp32_add,
    description="pipelined IEEE-754 binary32 adder, round to nearest even, subnormals kept",
    params=(Param("latency", int, 3, "pipeline latency in cycles (1..8)"),),
))

register(Block(
    name="fp32_mul",
    factory=_fp32_mul,
    description="pipelined IEEE-754 binary32 multiplier, round to nearest even, subnormals kept",
    params=(Param("latency", int, 4, "pipeline latency in cycles (1..8)"),),
))

register(Block(
    name="fp32_lane",
    factory=_fp32_lane,
    description="Rank-NMP lane: result = acc + ((a * b) + c), fp32, each operation rounded",
    params=(
        Param("mul_latency", int, 4, "multiplier latency in cycles (1..8)"),
        Param("add_latency", int, 3, "latency of each adder in cycles (1..8)"),
    ),
))

register(Block(
    name="fp32_vector_lane",
    factory=_fp32_vector_lane,
    description="LANES fp32 lanes (acc + ((a * b) + c)) sharing one stream",
    params=(
        Param("lanes", int, 4, "number of fp32 lanes", choices=(1, 2, 4, 8, 16)),
        Param("mul_latency", int, 4, "multiplier latency in cycles (1..8)"),
        Param("add_latency", int, 3, "latency of each adder in cycles (1..8)"),
    ),
))


def _rank_cache(**params):
    from hw.rank_cache import RankCache

    return RankCache(**params)


register(Block(
    name="rank_cache",
    factory=_rank_cache,
    description="RankCache: set-associative true-LRU line cache, 1-cycle hit, 512-bit lines",
    params=(
        Param("size_bytes", int, 131072, "capacity in bytes (a power of two, >= 64 * ways)"),
        Param("ways", int, 4, "associativity (1, 2, 4, 8 or 16)"),
        Param("id_width", int, 6, "width of the opaque id returned with each result (1..32)"),
    ),
))


def _rank_scheduler(**params):
    from dataclasses import fields

    from hw.ddr4 import DDR4Timing
    from hw.rank_scheduler import RankSchedulerTop

    timing = DDR4Timing(**{f.name: params.pop(f.name) for f in fields(DDR4Timing)})
    return RankSchedulerTop(timing=timing, **params)


def _rank_scheduler_params():
    from dataclasses import fields

    from hw.ddr4 import DDR4Timing

    timing = (
        Param(f.name, int, f.default, f"DDR4 timing {f.name} in DRAM cycles")
        for f in fields(DDR4Timing)
    )
    return (
        Param("depth", int, 16, "request buffer entries (2..64)"),
        Param("id_width", int, 6, "width of the opaque request id (1..16)"),
        Param("starvation_limit", int, 64,
              "age in cycles after which a conflicting request blocks younger row hits (1..1024)"),
        *timing,
    )


register(Block(
    name="rank_scheduler",
    factory=_rank_scheduler,
    description="DDR4 command generator of one rank: FR-FCFS, open page, refresh, id-tagged read data",
    params=_rank_scheduler_params(),
))


def _rank_datapath(**params):
    from hw.rank_datapath import RankDatapath

    return RankDatapath(**params)


register(Block(
    name="rank_datapath",
    factory=_rank_datapath,
    description="Rank-NMP datapath: LANES fp32 lanes accumulating into the 16-tag partial-sum file",
    params=(
        Param("lanes", int, 4, "fp32 lanes (1, 2, 4, 8 or 16)"),
        Param("max_elements", int, 128, "fp32 values per partial sum (a multiple of lanes)"),
        Param("mul_latency", int, 4, "multiplier latency in cycles (1..8)"),
        Param("add_latency", int, 3, "adder latency in cycles (1..8)"),
    ),
))


def _rank_nmp(**params):
    from dataclasses import fields

    from hw.ddr4 import DDR4Timing
    from hw.rank_nmp import RankNMP

    timing = DDR4Timing(**{f.name: params.pop(f.name) for f in fields(DDR4Timing)})
    return RankNMP(timing=timing, **params)


def _rank_nmp_params():
    from dataclasses import fields

    from hw.ddr4 import DDR4Timing

    return (
        Param("cache_size_bytes", int, 131072, "RankCache capacity in bytes"),
        Param("cache_ways", int, 4, "RankCache associativity"),
        Param("lanes", int, 4, "fp32 lanes (1, 2, 4 or 8)"),
        Param("max_elements", int, 256, "fp32 values per partial sum"),
        Param("rob_lines", int, 64, "reorder-buffer slots, 64 B lines in flight (8..256)"),
        Param("scheduler_depth", int, 16, "DRAM request buffer entries"),
        Param("mul_latency", int, 4, "multiplier latency in cycles (1..8)"),
        Param("add_latency", int, 3, "adder latency in cycles (1..8)"),
        *(Param(f.name, int, f.default, f"DDR4 timing {f.name} in DRAM cycles")
          for f in fields(DDR4Timing)),
    )


register(Block(
    name="rank_nmp",
    factory=_rank_nmp,
    description="Rank-NMP: RankCache, DDR4 scheduler, reorder buffer, fp32 datapath, partial sums",
    params=_rank_nmp_params(),
))
