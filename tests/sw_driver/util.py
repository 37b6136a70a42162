"""Shared helpers of the driver tests."""

import numpy as np

from sim_models.sls import quantize_fused8, sls_hardware_order


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal shapes and identical float32 bit patterns."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def random_table(rng, rows: int, dim: int, quantized: bool) -> np.ndarray:
    table = rng.standard_normal((rows, dim)).astype(np.float32)
    return quantize_fused8(table) if quantized else table


def random_lengths(rng, bags: int, high: int = 6, empty: float = 0.2) -> np.ndarray:
    lengths = rng.integers(1, high + 1, bags)
    lengths[rng.random(bags) < empty] = 0
    return lengths


def reference(dev, name, table, indices, lengths=None, **kwargs):
    """``sls_hardware_order`` with the ranks and DIMMs the device placed the rows on."""
    where = dev.locate(name, np.asarray(indices, np.int64))
    dimms = where["channel"] * dev.dimms_per_channel + where["dimm"]
    return sls_hardware_order(
        table,
        indices,
        lengths,
        ranks=where["rank"],
        num_ranks=dev.ranks_per_dimm,
        dimms=dimms,
        num_dimms=dev.dimms,
        **kwargs,
    )
