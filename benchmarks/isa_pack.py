"""Time NMP-Inst packing and unpacking with numpy.

Usage: python benchmarks/isa_pack.py [--count N] [--repeat R]
Prints the best of R runs for pack() and unpack() of N random instructions.
"""

import argparse
import time

import numpy as np

from hw.isa import INST_DTYPE, Opcode, pack, unpack


def random_insts(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    insts = np.zeros(count, INST_DTYPE)
    insts["opcode"] = rng.choice([op.value for op in Opcode], count)
    insts["ddr_cmd"] = rng.integers(0, 8, count)
    insts["daddr"] = rng.integers(0, 1 << 32, count, dtype=np.uint64)
    insts["vsize"] = rng.integers(1, 5, count)
    insts["weight"] = rng.standard_normal(count)
    insts["locality"] = rng.integers(0, 2, count)
    insts["psum_tag"] = rng.integers(0, 16, count)
    return insts


def best_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="instructions (default 1M)")
    parser.add_argument("--repeat", type=int, default=5, help="runs; the best is reported")
    args = parser.parse_args()
    insts = random_insts(args.count)
    words = pack(insts)
    assert unpack(words).tobytes() == insts.tobytes()
    t_pack = best_time(lambda: pack(insts), args.repeat)
    t_unpack = best_time(lambda: unpack(words), args.repeat)
    for name, t in (("pack", t_pack), ("unpack", t_unpack)):
        print(
            f"{name:7s} {args.count:>9,d} instructions: {t * 1e3:8.1f} ms "
            f"({args.count / t / 1e6:6.1f} M instructions/s)"
        )


if __name__ == "__main__":
    main()
