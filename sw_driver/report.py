"""The figures of a call (:attr:`Device.report`) and the analytical host baseline.

``baseline_cycles`` estimates how long the host itself (no NMP: every vector read over
its channel) would take for the same lookups, in DRAM cycles. It is the largest of three
lower bounds, then stretched by refresh:

* **data bus**, per channel: every 64 B line of every lookup on the channel crosses its
  data bus in ``tBL`` cycles: ``lines * tBL``;
* **activations**, per rank: the lookups the driver's row-buffer model
  (:mod:`sw_driver.hints`) predicts as row misses or conflicts (hint with ACT) each need
  an ACT, and tFAW allows four ACTs per window: ``ceil(acts * tFAW / 4)``;
* **row cycle**, per bank: consecutive ACTs of one bank are ``tRC`` apart:
  ``acts_of_bank * tRC``;

``baseline = ceil(max(bounds) * tREFI / (tREFI - tRFC))`` (a refresh takes ``tRFC`` of
every ``tREFI`` cycles). It ignores the host's caches and its reordering beyond the
driver's in-order row model, so it is an optimistic (fast) baseline for random traffic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hw.ddr4 import DDR4Geometry, DDR4Timing
from hw.isa import DDR_CMD_ACT

__all__ = ["Report", "baseline_cycles"]


@dataclass(frozen=True)
class Report:
    """Figures of the last call of a :class:`~sw_driver.Device`.

    Attributes
    ----------
    backend : str
        The backend that ran the call.
    requests, packets, instructions, lookups, lines : int
        Requests of the call; packets; NMP-Insts sent (all DIMMs, CONFIG and EOP
        included); lookups; 64 B lines they read.
    cycles : int or None
        DRAM cycles the backend measured; ``None`` for the golden backend (no timing).
    baseline_cycles : int
        The host baseline's cycles: the cycle-level model's (:mod:`sim_models.host_baseline`)
        for the ``"perf"`` backend, else the analytical estimate (module docstring).
    transport_cycles : int
        DRAM cycles the busiest channel's C/A transport needs for the instructions
        (8 per 4 cycles): a lower bound of ``cycles``.
    cache_hits, cache_misses, cache_bypasses : int
        RankCache, per line, summed over ranks. The golden backend runs
        ``sim_models.rank_cache.RankCacheModel`` in instruction order with the fill right
        after each allocating miss (the RTL may miss again on a line whose fill is still
        in flight).
    hint_mismatches : int
        Lines whose ``ddr_cmd`` hint differs from the scheduler's shadow table (which sees
        only cache misses), summed over ranks.
    illegal, bad_rank, malformed, eop_mismatches : int
        Error counters of the PUs, summed (0 for instructions the driver compiled).
    dram_commands : dict or None
        ``(channel, dimm, rank) -> {"ACT": n, "RD": n, "PRE": n, "REF": n}``; ``None`` for
        the golden backend (it issues no DRAM commands).
    energy : dict or None
        ``"perf"`` backend: ``{"baseline_pj": {...}, "recnmp_pj": {...}, "saving": f}``,
        the memory energy of both by event (:mod:`sim_models.energy`); else ``None``.
    """

    backend: str
    requests: int
    packets: int
    instructions: int
    lookups: int
    lines: int
    cycles: int | None
    baseline_cycles: int
    transport_cycles: int
    cache_hits: int
    cache_misses: int
    cache_bypasses: int
    hint_mismatches: int
    illegal: int
    bad_rank: int
    malformed: int
    eop_mismatches: int
    dram_commands: dict | None
    energy: dict | None = None

    @property
    def speedup(self) -> float | None:
        """``baseline_cycles / cycles``; ``None`` when ``cycles`` is ``None`` (or 0)."""
        if not self.cycles:
            return None
        return self.baseline_cycles / self.cycles


def baseline_cycles(
    lookups: np.ndarray, *, timing: DDR4Timing, geometry: DDR4Geometry, channels: int, ranks_per_dimm: int
) -> int:
    """The host-baseline estimate for a call's lookups (``sw_driver.compiler.LOOKUP_DTYPE``)."""
    if not lookups.size:
        return 0
    lines = np.bincount(lookups["channel"], weights=lookups["vsize"], minlength=channels)
    bus = int(lines.max()) * timing.tBL
    acts = (lookups["hint"] & DDR_CMD_ACT) != 0
    rank = lookups["dimm"].astype(np.int64) * ranks_per_dimm + lookups["rank"]
    bank = (rank * geometry.bank_groups + lookups["bank_group"]) * geometry.banks_per_group + lookups["bank"]
    rank_acts = np.bincount(rank[acts]).max(initial=0)
    bank_acts = np.bincount(bank[acts]).max(initial=0)
    faw = -(-int(rank_acts) * timing.tFAW // 4)
    row_cycle = int(bank_acts) * timing.tRC
    bound = max(bus, faw, row_cycle)
    return -(-bound * timing.tREFI // (timing.tREFI - timing.tRFC))
