"""The host baseline's request stream: every 64 B line the CPU reads for a call's lookups.

Without near-memory processing the host reads every embedding row itself, one 64 B line
(one BL8 burst) at a time, over the channel that holds it. :func:`host_reads` expands the
driver's lookups (``sw_driver.compiler.LOOKUP_DTYPE``, stream order) into those line reads,
in program order, with their DRAM coordinates and physical byte address from the driver's
address map. The host baseline model (:mod:`sim_models.host_baseline`) and the trace
exporters (:mod:`sim_models.trace_export`) consume this one stream.
"""

from __future__ import annotations

import numpy as np

__all__ = ["HOST_READ_DTYPE", "host_reads"]

#: One line read. ``rank`` is the rank within the channel (``dimm * ranks_per_dimm + rank``,
#: the channel's rank number), ``line`` the 64 B line within the DRAM row, ``address`` the
#: physical byte address of the line's first byte.
HOST_READ_DTYPE = np.dtype(
    [
        ("channel", np.int32),
        ("rank", np.int32),
        ("bank_group", np.uint8),
        ("bank", np.uint8),
        ("row", np.int32),
        ("line", np.int32),
        ("address", np.int64),
    ]
)


def host_reads(lookups: np.ndarray, address_map) -> np.ndarray:
    """Every line read of ``lookups``, lookup by lookup, lines of a lookup in address order.

    Parameters
    ----------
    lookups : numpy.ndarray
        ``sw_driver.compiler.LOOKUP_DTYPE`` records (``CompiledCall.lookups``).
    address_map : sw_driver.address_map.AddressMap
        The device's map (topology and geometry).

    Returns
    -------
    numpy.ndarray
        :data:`HOST_READ_DTYPE`, ``sum(lookups["vsize"])`` records.
    """
    geometry = address_map.geometry
    vsize = lookups["vsize"].astype(np.int64)
    owner = np.repeat(np.arange(lookups.size), vsize)
    first = np.cumsum(vsize) - vsize
    within = np.arange(owner.size) - np.repeat(first, vsize)
    src = lookups[owner]
    reads = np.zeros(owner.size, HOST_READ_DTYPE)
    dimm_in_channel = src["dimm"].astype(np.int64) % address_map.dimms_per_channel
    reads["channel"] = src["channel"]
    reads["rank"] = dimm_in_channel * address_map.ranks_per_dimm + src["rank"]
    for name in ("bank_group", "bank", "row"):
        reads[name] = src[name]
    column = src["column"].astype(np.int64) + within * geometry.burst_columns
    reads["line"] = column // geometry.burst_columns
    reads["address"] = address_map.encode(
        byte=0,
        column=column,
        channel=src["channel"],
        dimm=dimm_in_channel,
        rank=src["rank"],
        bank_group=src["bank_group"],
        bank=src["bank"],
        row=src["row"],
    )
    return reads
