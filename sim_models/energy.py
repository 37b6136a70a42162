"""Memory-system energy of the host baseline and of RecNMP, from event counts.

Per-event energies are the paper's (Ke et al., ISCA 2020; ``docs/perf_model.md``):

=====================  =============  ==================================================
event                  energy         counted as
=====================  =============  ==================================================
ACT                    2.1 nJ         every ACT the DRAM receives
DRAM read              14 pJ / bit    512 bits per 64 B burst read from a DRAM array
off-chip I/O           22 pJ / bit    bits crossing the DIMM-host channel
RankCache access       50 pJ          every lookup and every fill of a RankCache
fp32 add               7.89 pJ        datapath accumulate adds, adder-tree adds
fp32 mul               25.2 pJ        datapath multiplies (the RTL multiplies every value)
=====================  =============  ==================================================

* **Baseline**: every line is read from its DRAM array and crosses the channel to the CPU:
  ``ACT * E_act + lines * 512 * (E_rd + E_io)``. (The CPU's own adds are not memory
  energy.)
* **RecNMP**: the DRAM arrays deliver only the cache misses, to the buffer chip on the
  DIMM (no channel I/O); the channel carries the NMP-Insts (``hw.isa.INST_BITS`` each)
  and the result beats (``lanes`` fp32 values each); plus RankCache accesses and fp32 arithmetic.
  Refresh energy is left out of both (the paper gives none; it is the same for both).
"""

from __future__ import annotations

from dataclasses import dataclass

from hw.isa import INST_BITS

__all__ = ["EnergyModel", "PAPER_ENERGY"]


@dataclass(frozen=True, kw_only=True)
class EnergyModel:
    """Per-event energies in picojoules (defaults: the paper's)."""

    act_pj: float = 2100.0
    dram_read_pj_per_bit: float = 14.0
    io_pj_per_bit: float = 22.0
    cache_access_pj: float = 50.0
    fp32_add_pj: float = 7.89
    fp32_mul_pj: float = 25.2

    def __post_init__(self):
        for name, value in self.__dict__.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{name} must be a non-negative number of picojoules, got {value!r}")

    def baseline(self, *, acts: int, lines: int, line_bytes: int = 64) -> dict[str, float]:
        """Energy (pJ) of the host reading ``lines`` lines with ``acts`` activations."""
        bits = lines * line_bytes * 8
        parts = {
            "act": acts * self.act_pj,
            "dram_read": bits * self.dram_read_pj_per_bit,
            "io": bits * self.io_pj_per_bit,
        }
        parts["total"] = sum(parts.values())
        return parts

    def recnmp(
        self,
        *,
        acts: int,
        dram_lines: int,
        instructions: int,
        result_beats: int,
        cache_accesses: int,
        datapath_values: int,
        tree_adds: int,
        result_beat_bits: int,
        line_bytes: int = 64,
        inst_bits: int = INST_BITS,
    ) -> dict[str, float]:
        """Energy (pJ) of RecNMP.

        ``dram_lines``: lines read from DRAM (cache misses); ``result_beats``: result beats
        of ``result_beat_bits`` (``lanes`` fp32 values) sent to the host;
        ``datapath_values``: fp32 values accumulated (one multiply and two adds each:
        ``(a * b) + c`` then the accumulate); ``tree_adds``: adder-tree additions.
        """
        parts = {
            "act": acts * self.act_pj,
            "dram_read": dram_lines * line_bytes * 8 * self.dram_read_pj_per_bit,
            "io": (instructions * inst_bits + result_beats * result_beat_bits) * self.io_pj_per_bit,
            "cache": cache_accesses * self.cache_access_pj,
            "fp32": datapath_values * (self.fp32_mul_pj + 2 * self.fp32_add_pj) + tree_adds * self.fp32_add_pj,
        }
        parts["total"] = sum(parts.values())
        return parts


#: The paper's energies.
PAPER_ENERGY = EnergyModel()
