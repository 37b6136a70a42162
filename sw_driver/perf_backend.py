"""The ``"perf"`` backend: golden results, with the performance model's timing and figures.

``Device(..., backend="perf")`` compiles calls exactly as for the other backends (page
colouring, hot-entry profiling, table-aware scheduling, the C/A transport throttle) and
hands the compiled streams to :class:`sim_models.recnmp_perf.RecNMPPerfModel`, the
cycle-level model of every DIMM's PU. The host-baseline model
(:mod:`sim_models.host_baseline`) reads the same lookups as the CPU would. The report
(``Device.report``) then carries the model's ``cycles``, the baseline's ``baseline_cycles``,
``speedup``, RankCache and DRAM-command figures and the energy of both
(:mod:`sim_models.energy`).

Options (``backend_options``):

``values`` (default ``True``)
    Compute the results with the golden models (bit-exact, as the ``"golden"`` backend).
    ``False`` skips them (every result is ``+0.0``): timing-only runs at production scale,
    the only way to run tables placed with :meth:`Device.reserve_table`.
``baseline`` (default ``True``)
    Run the cycle-level host baseline; ``False`` keeps the analytical estimate of
    :func:`sw_driver.report.baseline_cycles` (faster).

Like the RTL backend, every call starts from PUs fresh out of reset (``resets_each_call``).
"""

from __future__ import annotations

import numpy as np

from sim_models.energy import PAPER_ENERGY
from sim_models.recnmp_perf import COUNTERS, RecNMPPerfModel

from .backends import BackendConfig, BackendResult, GoldenBackend
from .compiler import CompiledCall
from .placement import DeviceImage

__all__ = ["OPTIONS", "PerfBackend"]

#: Options of the backend.
OPTIONS = ("values", "baseline")


class PerfBackend:
    """Runs compiled calls on the performance models (see the module docstring)."""

    name = "perf"
    resets_each_call = True

    def __init__(self, config: BackendConfig, *, values: bool = True, baseline: bool = True):
        for name, value in (("values", values), ("baseline", baseline)):
            if not isinstance(value, bool):
                raise ValueError(f"backend option {name!r} must be True or False, got {value!r}")
        self.config = config
        self.values, self.baseline = values, baseline
        self.model = RecNMPPerfModel(
            ranks_per_dimm=config.ranks_per_dimm,
            timing=config.timing,
            geometry=config.geometry,
            cache_size_bytes=config.cache_size_bytes,
            cache_ways=config.cache_ways,
            lanes=config.lanes,
            max_elements=config.max_elements,
        )
        self.golden = GoldenBackend(config) if values else None
        #: The last call's model result (``sim_models.recnmp_perf.PerfResult``).
        self.last = None
        #: The last call's host-baseline result, when ``baseline`` is on.
        self.last_baseline = None

    def reset(self) -> None:
        """Nothing to keep: every call runs on PUs fresh out of reset."""

    def run(self, call: CompiledCall, image: DeviceImage) -> BackendResult:
        cfg = self.config
        if self.golden is not None:
            self.golden.reset()
            golden = self.golden.run(call, image)
            vectors, counters = golden.vectors, dict(golden.counters)
        else:
            vectors = [np.zeros((cfg.dimms, p.bags, p.elements), np.float32) for p in call.packets]
            counters = dict.fromkeys(("illegal", "bad_rank", "malformed", "eop_mismatches"), 0)
        perf = self.model.run(call)
        self.last = perf
        counters["lookups"] = perf.total("lookups")
        counters["lines"] = perf.total("lines")
        for name in ("cache_hits", "cache_misses", "cache_bypasses", "hint_mismatches"):
            counters[name] = perf.total(name)
        dram_commands = {}
        for stream, dimm in zip(call.dimms, perf.dimms):
            for rank in range(cfg.ranks_per_dimm):
                c = dimm.rank_counters(rank)
                dram_commands[(stream.channel, stream.dimm, rank)] = {
                    "ACT": c["acts"],
                    "RD": c["reads"],
                    "PRE": c["pres"],
                    "REF": c["refs"],
                }
        baseline_cycles, baseline_acts = None, None
        if self.baseline:
            baseline_cycles, baseline_acts = self._baseline(call)
        energy = self._energy(call, perf, baseline_acts)
        return BackendResult(
            vectors,
            counters,
            cycles=perf.cycles,
            dram_commands=dram_commands,
            baseline_cycles=baseline_cycles,
            energy=energy,
        )

    def _baseline(self, call: CompiledCall) -> tuple[int, int]:
        from sim_models.host_baseline import host_baseline
        from sim_models.host_reads import host_reads

        from .address_map import AddressMap

        cfg = self.config
        # Only the coordinates of the lookups matter to the baseline; the map gives the
        # channel's rank numbering (host_reads' ``address`` field is not used here).
        amap = AddressMap(
            channels=cfg.channels,
            dimms_per_channel=cfg.dimms_per_channel,
            ranks_per_dimm=cfg.ranks_per_dimm,
            geometry=cfg.geometry,
        )
        result = host_baseline(
            host_reads(call.lookups, amap),
            timing=cfg.timing,
            geometry=cfg.geometry,
            channels=cfg.channels,
            ranks_per_channel=cfg.dimms_per_channel * cfg.ranks_per_dimm,
        )
        self.last_baseline = result
        acts = sum(c["ACT"] for c in result.commands.values())
        return int(result.cycles), int(acts)

    def _energy(self, call: CompiledCall, perf, baseline_acts) -> dict:
        cfg = self.config
        lines = int(call.lookups["vsize"].sum(dtype=np.int64))
        if baseline_acts is None:
            # Without the baseline model: the driver's in-order row model's ACTs.
            from hw.isa import DDR_CMD_ACT

            baseline_acts = int(np.count_nonzero(call.lookups["hint"] & DDR_CMD_ACT))
        base = PAPER_ENERGY.baseline(acts=baseline_acts, lines=lines, line_bytes=cfg.geometry.burst_bytes)
        result_beats = sum(int(d.counters[0, COUNTERS.index("drain_beats")]) for d in perf.dimms)  # one per DIMM beat
        nmp = PAPER_ENERGY.recnmp(
            acts=perf.total("acts"),
            dram_lines=perf.total("reads"),
            instructions=call.instructions,
            result_beats=result_beats,
            result_beat_bits=32 * cfg.lanes,
            cache_accesses=perf.total("lines") + perf.total("cache_fills"),
            datapath_values=perf.total("datapath_beats") * cfg.lanes,
            tree_adds=result_beats * cfg.lanes * (cfg.ranks_per_dimm - 1),
            line_bytes=cfg.geometry.burst_bytes,
        )
        saving = 1.0 - nmp["total"] / base["total"] if base["total"] else None  # no lookups: undefined
        return {"baseline_pj": base, "recnmp_pj": nmp, "saving": saving}
