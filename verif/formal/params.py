"""The scaled-down geometry and timing the proofs run at (the state space must stay small).

Every ratio that the scheduler's policy and ``DDR4Timing`` rely on is kept: tRC >= tRAS +
tRP, tRAS >= tRCD + tRTP, tCCD_L > tCCD_S >= tBL, tRRD_L > tRRD_S, tFAW longer than tRC (so
the tFAW window, not tRC, limits a fifth ACT with 4 banks) and tREFI = ``min_tREFI``.
"""

from __future__ import annotations

import copy

from hw.ddr4 import DDR4Geometry, DDR4Timing
from hw.refresh_control import recovery_cycles, recovery_wait

__all__ = [
    "RESPONSE_BOUND",
    "FORMAL_GEOMETRY",
    "FORMAL_TIMING",
    "refresh_deadline",
    "recovery_ref_cycle",
    "unchecked_timing",
]

#: 2 bank groups x 2 banks, 2 rows of 2 lines; 1 B columns (16-bit beats), BL8 = 4 beats.
FORMAL_GEOMETRY = DDR4Geometry(bank_groups=2, banks_per_group=2, rows=2, columns=16, column_bytes=1)

#: Small DDR4-like timing (cycles). tFAW (9) > 4 x tRRD_S (8), so that tFAW, not tRRD_S, limits
#: a fifth ACT; tREFI is the smallest ``DDR4Timing`` accepts (43).
FORMAL_TIMING = DDR4Timing(
    tRCD=2,
    tCL=2,
    tRP=2,
    tRAS=4,
    tRC=6,
    tBL=4,
    tCCD_S=4,
    tCCD_L=5,
    tRRD_S=2,
    tRRD_L=3,
    tFAW=9,
    tRTP=2,
    tRFC=4,
    tREFI=43,
)


#: Cycles (not counting the recovery after a reset) within which the scheduler at
#: FORMAL_TIMING / FORMAL_GEOMETRY with a buffer of 2 and a starvation limit of 4 serves its
#: oldest request, once that request is the oldest (proved by ``scheduler_bounded_response``;
#: with 28 the induction does not close: it finds a request served after 29 cycles).
RESPONSE_BOUND = 29


def unchecked_timing(base: DDR4Timing | None = None, **changes: int) -> DDR4Timing:
    """``base`` with ``changes``, *without* ``DDR4Timing``'s validation: a deliberately
    broken timing for the mutation tests (for example ``tCCD_S < tBL``)."""
    timing = copy.copy(base or FORMAL_TIMING)
    for name, value in changes.items():
        if not hasattr(timing, name):
            raise ValueError(f"DDR4Timing has no field {name!r}")
        object.__setattr__(timing, name, value)
    return timing


def recovery_ref_cycle(timing: DDR4Timing, geometry: DDR4Geometry) -> int:
    """Cycle after reset (0 = the first cycle out of reset) of the recovery's REF:
    ``W + banks - 1 + tRP``."""
    return recovery_wait(timing) + geometry.banks - 1 + timing.tRP


def refresh_deadline(timing: DDR4Timing, geometry: DDR4Geometry) -> int:
    """The most cycles from one REF (or a reset) to the next REF.

    From the recovery's REF the tREFI counter starts tRFC later; a refresh falls due
    ``tREFI`` cycles after that and is issued at most ``tRAS + banks - 1 + tRP`` cycles after
    it falls due (the last ACT's tRAS, one PRE per open bank, tRP to REF), plus one cycle
    for ``pending`` to rise. Between periodic REFs the interval counter runs on, so the gap
    is at most the same. After a reset the recovery's REF comes at
    :func:`recovery_ref_cycle`.
    """
    t, g = timing, geometry
    periodic = t.tRFC + t.tREFI + 1 + t.tRAS + g.banks - 1 + t.tRP
    return max(periodic, recovery_ref_cycle(t, g), recovery_cycles(t, g))
