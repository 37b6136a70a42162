"""The ``rtl`` backend: every DIMM's stream through the generated PU under Verilator.

For each call and each DIMM it runs a job (:class:`verif.dimm_job.DimmJob`): the DIMM's
packed words with their transport issue cycles, the DRAM rows of its ranks and the number of
result beats to expect, in the simulation-only harness of :mod:`verif.dimm_harness` (the
generated ``dimm_nmp`` with a DRAM model and the DDR4 protocol checker behind every rank,
all inside the simulation; built once per configuration, then reused); and reads the result
beats, the PU's counters, the cycle count and every rank's DRAM command counts back. DIMMs
run one after the other (they are independent; the device adds their results); ``cycles``
is the slowest DIMM's.

This is the one module of the driver that imports :mod:`verif`; the compile path does not.
Every call starts from a freshly reset PU (a new simulation), so the device resets its own
row-buffer and ``Q8_ELEMENTS`` models before compiling for it (:attr:`RtlBackend.resets_each_call`).
"""

from __future__ import annotations

import csv
import os
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import NamedTuple

import numpy as np

from hw.ddr4 import DDR4Geometry, DDR4Timing, DramCommand
from verif.dimm_harness import run_job
from verif.dimm_job import DimmJob
from verif.runner import build_root

from .backends import BackendConfig, BackendResult, expected_beats, packet_vectors, split_packets
from .compiler import CompiledCall
from .placement import DeviceImage

__all__ = ["OPTIONS", "RtlBackend", "TRACE_HEADER"]

#: The backend options (``Device(..., backend_options={...})``).
OPTIONS = ("inst_stall", "result_stall", "seed")

#: Columns of the ``dram_trace`` CSV.
TRACE_HEADER = ("cycle", "channel", "dimm", "rank", "command", "bank_group", "bank", "row", "column")
#: The PU counters a call reports (the rest of the status port is available in ``raw_counters``).
REPORTED = (
    "illegal",
    "bad_rank",
    "lookups",
    "lines",
    "malformed",
    "eop_mismatches",
    "cache_hits",
    "cache_misses",
    "cache_bypasses",
    "hint_mismatches",
)


class _Beat(NamedTuple):
    tag: int
    beat: int
    last: bool
    data: np.ndarray


class RtlBackend:
    """Runs compiled calls on the RTL of one DIMM's PU (see the module docstring).

    Parameters
    ----------
    config : BackendConfig
        The device (ranks per DIMM, timing, cache size, lanes, ...).
    inst_stall, result_stall : float
        Probability of a pause on the instruction stream (on top of the transport throttle)
        and of backpressure on the result stream, per cycle, in ``[0, 1)`` (default 0: full
        speed).
    seed : int
        Seed of those pauses, from 0 to 2**62 (each DIMM's is ``seed`` + its index).

    Raises
    ------
    ValueError
        An option of the wrong type or out of range; the message names it.
    """

    name = "rtl"
    resets_each_call = True

    def __init__(self, config: BackendConfig, *, inst_stall: float = 0.0, result_stall: float = 0.0, seed: int = 1):
        if config.geometry != DDR4Geometry():
            raise ValueError("the rtl backend simulates full DDR4 ranks: use the default geometry")
        for name, value in (("inst_stall", inst_stall), ("result_stall", result_stall)):
            if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
                raise ValueError(f"backend option {name!r} must be a number in [0, 1), got {value!r}")
            if not 0.0 <= value < 1.0:
                raise ValueError(f"backend option {name!r} must be in [0, 1), got {value!r}")
        seed_high = 2**62  # with a DIMM's index added, still an int64 in the job file
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed <= seed_high:
            raise ValueError(f"backend option 'seed' must be an integer from 0 to {seed_high}, got {seed!r}")
        self.config = config
        self.inst_stall, self.result_stall, self.seed = float(inst_stall), float(result_stall), int(seed)
        self.params = {
            "ranks": config.ranks_per_dimm,
            "cache_size_bytes": config.cache_size_bytes,
            "cache_ways": config.cache_ways,
            "lanes": config.lanes,
            "max_elements": config.max_elements,
            **{f.name: getattr(config.timing, f.name) for f in fields(DDR4Timing)},
        }
        #: The last call's raw status counters and job results, per DIMM (for tests).
        self.last_results: list[dict] = []

    def reset(self) -> None:
        """Nothing to do: every call runs on a PU fresh out of reset."""

    def run(self, call: CompiledCall, image: DeviceImage) -> BackendResult:
        cfg = self.config
        beats_per_dimm = expected_beats(call, cfg.lanes)
        per_dimm, counters, dram_commands, trace, cycles = [], dict.fromkeys(REPORTED, 0), {}, [], 0
        self.last_results = []
        work = Path(build_root()) / "jobs"
        work.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            for stream in call.dimms:
                result = self._run_dimm(Path(tmp), stream, image, beats_per_dimm)
                self.last_results.append(result)
                beats = [
                    _Beat(int(t), int(b), bool(last), d)
                    for t, b, last, d in zip(result["tag"], result["beat"], result["last"], result["data"])
                ]
                groups = split_packets(beats, len(call.packets))
                per_dimm.append([packet_vectors(g, p, cfg.lanes) for g, p in zip(groups, call.packets)])
                for name in REPORTED:
                    counters[name] += result["counters"].get(name, 0)
                for rank, counts in result["dram_counts"].items():
                    dram_commands[(stream.channel, stream.dimm, int(rank))] = counts
                cycles = max(cycles, result["cycles"])
                trace += [
                    (c, stream.channel, stream.dimm, r, DramCommand(cmd).name, g, b, row, col)
                    for c, r, cmd, g, b, row, col in result["trace"].tolist()
                ]
        vectors = [np.stack([per_dimm[d][p] for d in range(len(call.dimms))]) for p in range(len(call.packets))]
        if cfg.dram_trace is not None:
            self._write_trace(Path(cfg.dram_trace), sorted(trace))
        return BackendResult(vectors, counters, cycles=cycles, dram_commands=dram_commands)

    def _run_dimm(self, tmp: Path, stream, image: DeviceImage, beats: int) -> dict:
        lines = int(sum(int(v) for v in stream.insts["vsize"]))
        t = self.config.timing
        # Generous: every line a row conflict, with refreshes, plus the transport and drains.
        bound = 4 * t.tRFC + 2 * t.tRC + (t.tRC + t.tCL) * (lines + 1) + 4 * beats
        bound += int(stream.issue_cycles[-1]) if len(stream.issue_cycles) else 0
        bound = int(bound / (1 - max(self.inst_stall, self.result_stall)))
        job = DimmJob(
            words=stream.words,
            issue_cycles=stream.issue_cycles,
            images=image.dimm_rows(stream.channel, stream.dimm, self.config.ranks_per_dimm),
            expected_beats=beats,
            timeout_cycles=bound,
            inst_stall=self.inst_stall,
            result_stall=self.result_stall,
            seed=self.seed + stream.index,
            trace=self.config.dram_trace is not None,
        )
        return run_job(job, self.params, tmp / f"dimm{stream.index}", name=f"driver-p{os.getpid()}-dimm{stream.index}")

    @staticmethod
    def _write_trace(path: Path, rows: list[tuple]) -> None:
        """Rewrite ``path`` with every DRAM command of the call (:data:`TRACE_HEADER`)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(TRACE_HEADER)
            writer.writerows(rows)
