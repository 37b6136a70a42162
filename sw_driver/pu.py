"""Fixed properties of the processing unit (PU) the driver compiles for.

The datapath parameters are read from ``hw.rank_nmp.RankNMP``'s constructor defaults, so
the driver and the RTL it drives cannot disagree (the RTL backend elaborates the same
defaults). The transport rate is the paper's: 8 NMP-Insts per 4 DRAM cycles per channel.
"""

from __future__ import annotations

import inspect

from hw.isa import EOP_FIELDS, MAX_VSIZE, Q8_HEADER_BYTES
from hw.rank_nmp import RankNMP

__all__ = [
    "CACHE_WAYS",
    "LANES",
    "MAX_ELEMENTS",
    "MAX_VSIZE",
    "PACKET_BAGS",
    "Q8_DEFAULT_ELEMENTS",
    "Q8_HEADER_BYTES",
    "SLOT_CYCLES",
    "SLOT_INSTS",
    "VALID_RANKS_PER_DIMM",
]

_DEFAULTS = {name: p.default for name, p in inspect.signature(RankNMP.__init__).parameters.items()}

#: fp32 lanes of a Rank-NMP datapath: values per result beat.
LANES: int = _DEFAULTS["lanes"]
#: RankCache associativity.
CACHE_WAYS: int = _DEFAULTS["cache_ways"]
#: fp32 values per partial sum (the longest result vector).
MAX_ELEMENTS: int = _DEFAULTS["max_elements"]
#: ``Q8_ELEMENTS`` after a reset of the rank (``docs/rank_nmp_semantics.md``).
Q8_DEFAULT_ELEMENTS: int = min(MAX_ELEMENTS, 64)
#: Bags per packet: the 4-bit ``psum_tag`` space.
PACKET_BAGS: int = next(f.width for f in EOP_FIELDS if f.name == "tag_mask")
#: Ranks per DIMM a PU takes (the daddr rank field is 2 bits; the adder tree is pairwise).
VALID_RANKS_PER_DIMM = (1, 2, 4)
#: Transport: ``SLOT_INSTS`` NMP-Insts every ``SLOT_CYCLES`` DRAM cycles per channel.
SLOT_INSTS: int = 8
SLOT_CYCLES: int = 4

assert PACKET_BAGS == 16
