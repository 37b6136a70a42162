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
