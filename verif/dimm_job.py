"""A *job* of one DIMM's PU, as both DIMM harnesses run it, and the arrays of its result beats.

One job is one DIMM's share of a call: ``words`` (``(N, 2)`` uint64 packed NMP-Insts) and
``issue_cycles`` (the earliest cycle each word may be offered: the C/A transport throttle),
the rank images (per rank, the DRAM rows ``(bank_group, bank, row) -> 8 KiB`` the tables
occupy), the result beats to expect within ``timeout_cycles``, random pauses on the host
streams (``inst_stall``, ``result_stall``, ``seed``), ``trace`` (keep every DRAM command) and
optionally ``reset_at`` (a cycle) and ``resume_at`` (a word index): the PU's reset is pulsed
at that cycle while the DRAM models keep running; words before ``resume_at`` not yet accepted
are dropped, and the words from ``resume_at`` on are sent after the reset.

:mod:`verif.dimm_harness` runs jobs inside the simulation; :mod:`verif.tb.dimm_nmp` is the
cocotb testbench it replaced, kept as its reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DimmJob", "beat_arrays"]


@dataclass
class DimmJob:
    """What one DIMM is asked to do (see the module docstring)."""

    words: np.ndarray
    issue_cycles: np.ndarray
    images: dict[int, dict[tuple[int, int, int], np.ndarray]]
    expected_beats: int
    timeout_cycles: int
    inst_stall: float = 0.0
    result_stall: float = 0.0
    seed: int = 1
    trace: bool = False
    reset_at: int | None = None
    resume_at: int | None = None

    def __post_init__(self):
        words = len(np.asarray(self.words).reshape(-1, 2))
        issue = np.asarray(self.issue_cycles, np.int64)
        if issue.shape != (words,):
            raise ValueError(f"issue_cycles has {issue.size} entries for {words} words")
        if words and issue.min() < 0:
            raise ValueError("issue_cycles must be non-negative")
        if (self.reset_at is None) != (self.resume_at is None):
            raise ValueError("reset_at and resume_at go together: a reset, and the first word sent after it")
        if self.reset_at is not None and (self.reset_at < 0 or not 0 <= self.resume_at <= words):
            raise ValueError(
                f"reset_at must be >= 0 and resume_at in 0..{words}, got {self.reset_at}, {self.resume_at}"
            )


def beat_arrays(beats: list[dict], lanes: int) -> dict[str, np.ndarray]:
    """Decoded result beats (``tag``, ``beat``, ``last``, ``data.<lane>``) as arrays."""
    return {
        "tag": np.array([b["tag"] for b in beats], np.int64),
        "beat": np.array([b["beat"] for b in beats], np.int64),
        "last": np.array([b["last"] for b in beats], np.int64),
        "data": np.array([[b[f"data.{k}"] for k in range(lanes)] for b in beats], np.uint32).reshape(-1, lanes),
    }
