"""Backends: what runs a :class:`~sw_driver.compiler.CompiledCall`.

A backend is built once per device by :func:`make_backend` from a :class:`BackendConfig`
and keeps the device-side state that persists across calls (caches, schedulers, models).
Its interface (:class:`Backend`):

``run(call, image) -> BackendResult``
    Execute every DIMM's stream (``call.dimms[d].words``, each word not before
    ``issue_cycles``) against the memory image (:class:`~sw_driver.placement.DeviceImage`)
    and return, per packet, every DIMM's result vectors. The host (the device) adds DIMMs
    in order, keeps ``D`` values and divides for mean, so backends never combine DIMMs.
``reset()``
    What a reset of every PU does (memory contents are kept).

Result beats of a DIMM (tag, beat, last, lanes) become vectors with :func:`packet_vectors`,
which the RTL backend (:mod:`sw_driver.rtl_backend`) shares. ``"perf"`` is
:mod:`sw_driver.perf_backend` (golden results, the performance models' timing).

A backend whose ``resets_each_call`` is true starts every call from a reset PU; the device
then resets its row-buffer and ``Q8_ELEMENTS`` models before compiling for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from typing import Protocol

import numpy as np

from hw.ddr4 import DDR4Geometry, DDR4Timing, line_address_layout
from sim_models.dimm_nmp import DimmNMPModel
from sim_models.rank_cache import RankCacheModel

from .compiler import CompiledCall, PacketInfo
from .hints import HINT_HIT, expected_hint
from .placement import DeviceImage

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendConfig",
    "BackendResult",
    "GoldenBackend",
    "expected_beats",
    "make_backend",
    "packet_vectors",
    "split_packets",
]

#: Backend names the device accepts.
BACKENDS = ("golden", "rtl", "perf")


@dataclass(frozen=True)
class BackendConfig:
    """What a backend is built for (the device's parameters)."""

    channels: int
    dimms_per_channel: int
    ranks_per_dimm: int
    timing: DDR4Timing
    geometry: DDR4Geometry
    cache_size_bytes: int
    cache_ways: int
    lanes: int
    max_elements: int
    dram_trace: str | PathLike | None = None

    @property
    def dimms(self) -> int:
        return self.channels * self.dimms_per_channel


@dataclass(frozen=True)
class BackendResult:
    """What a backend returns for one call.

    Attributes
    ----------
    vectors : list of numpy.ndarray
        Per packet (call order of :attr:`CompiledCall.packets`), ``float32 (dimms, bags,
        elements)``: DIMM ``d``'s result of each bag of the packet.
    counters : dict
        Changes over the call, summed over the device: ``illegal``, ``bad_rank``,
        ``lookups``, ``lines``, ``malformed``, ``eop_mismatches``, ``cache_hits``,
        ``cache_misses``, ``cache_bypasses``, ``hint_mismatches``.
    cycles : int or None
        DRAM cycles from the first instruction to the last result beat; ``None`` without timing.
    dram_commands : dict or None
        ``(channel, dimm, rank) -> {"ACT", "RD", "PRE", "REF"}`` counts; ``None`` without DRAM.
    baseline_cycles : int or None
        The host baseline's cycles when the backend models it (``"perf"``); ``None``: the
        device uses the analytical estimate (:func:`sw_driver.report.baseline_cycles`).
    energy : dict or None
        ``{"baseline_pj": {...}, "recnmp_pj": {...}, "saving": float}``
        (:mod:`sim_models.energy`) when the backend models it.
    """

    vectors: list
    counters: dict
    cycles: int | None = None
    dram_commands: dict | None = None
    baseline_cycles: int | None = None
    energy: dict | None = None


class Backend(Protocol):
    name: str

    def run(self, call: CompiledCall, image: DeviceImage) -> BackendResult: ...

    def reset(self) -> None: ...


def make_backend(name: str, config: BackendConfig, options: dict | None = None) -> Backend:
    """The backend called ``name`` (:data:`BACKENDS`), given its own ``options``."""
    if options is not None and not isinstance(options, Mapping):
        raise ValueError(f"backend_options must be a dict of option names to values, got {options!r}")
    options = dict(options or {})
    if name == "golden" and not options:
        return GoldenBackend(config)
    if name == "rtl":
        from .rtl_backend import OPTIONS, RtlBackend  # the one backend that needs verif/

        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ValueError(f"backend 'rtl' has no option {unknown[0]!r} (options: {', '.join(OPTIONS)})")
        return RtlBackend(config, **options)
    if name == "perf":
        from .perf_backend import OPTIONS, PerfBackend

        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ValueError(f"backend 'perf' has no option {unknown[0]!r} (options: {', '.join(OPTIONS)})")
        return PerfBackend(config, **options)
    if name == "golden":
        raise ValueError(f"backend 'golden' takes no backend_options, got {sorted(options)}")
    raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {name!r}")


def split_packets(beats, packets: int) -> list[list]:
    """Cut a DIMM's result beats into one list per EOP, at each ``last`` beat."""
    groups, current = [], []
    for beat in beats:
        current.append(beat)
        if beat.last:
            groups.append(current)
            current = []
    if current or len(groups) != packets:
        raise RuntimeError(
            f"expected {packets} result drains, got {len(groups)} and {len(current)} beats without a last beat"
        )
    return groups


def packet_vectors(beats, packet: PacketInfo, lanes: int) -> np.ndarray:
    """One DIMM's result beats of one packet as ``float32 (bags, elements)``.

    The DIMM returns tags ``0 .. bags - 1`` in order, ``ceil(elements / lanes)`` beats each.
    """
    per_tag = -(-packet.elements // lanes)
    expected = [(t, b) for t in range(packet.bags) for b in range(per_tag)]
    got = [(int(beat.tag), int(beat.beat)) for beat in beats]
    if got != expected:
        raise RuntimeError(
            f"packet of {packet.bags} bags: result beats (tag, beat) {got[:4]}... "
            f"differ from the expected {expected[:4]}..."
        )
    data = np.stack([np.asarray(beat.data, np.uint32) for beat in beats]).view(np.float32)
    return data.reshape(packet.bags, per_tag * lanes)[:, : packet.elements]


def expected_beats(call: CompiledCall, lanes: int) -> int:
    """Result beats every DIMM returns for a call: ``bags * ceil(elements / lanes)`` per packet."""
    return sum(p.bags * -(-p.elements // lanes) for p in call.packets)


_CACHE_COUNTERS = ("cache_hits", "cache_misses", "cache_bypasses", "hint_mismatches")


class GoldenBackend:
    """Bit-exact, untimed: one :class:`sim_models.dimm_nmp.DimmNMPModel` per DIMM.

    Besides the models it keeps, per rank, a ``RankCacheModel`` and the scheduler's hint
    shadow table (the row of the last line sent to DRAM per bank), to count cache hits and
    hint mismatches in instruction order (:class:`~sw_driver.report.Report`).
    """

    name = "golden"
    resets_each_call = False

    def __init__(self, config: BackendConfig):
        self.config = config
        self.models = [
            DimmNMPModel(
                ranks=config.ranks_per_dimm,
                lanes=config.lanes,
                max_elements=config.max_elements,
                geometry=config.geometry,
            )
            for _ in range(config.dimms)
        ]
        self._line_offsets = {name: field.offset for name, field in line_address_layout(config.geometry)}
        self.reset()

    def reset(self) -> None:
        for model in self.models:
            model.reset()
        ranks = self.config.dimms * self.config.ranks_per_dimm
        self.caches = [
            RankCacheModel(
                size_bytes=self.config.cache_size_bytes,
                ways=self.config.cache_ways,
                line_bytes=self.config.geometry.burst_bytes,
            )
            for _ in range(ranks)
        ]
        self.shadow = [dict() for _ in range(ranks)]

    def run(self, call: CompiledCall, image: DeviceImage) -> BackendResult:
        cfg = self.config
        per_dimm, counters = [], {}
        for stream in call.dimms:
            model = self.models[stream.index]
            before = model.counters
            images = [image.rank(stream.channel, stream.dimm, r) for r in range(cfg.ranks_per_dimm)]
            beats = model.run(stream.words, images) if len(stream.words) else []
            groups = split_packets(beats, len(call.packets))
            per_dimm.append([packet_vectors(g, p, cfg.lanes) for g, p in zip(groups, call.packets)])
            for name, value in model.counters.items():
                counters[name] = counters.get(name, 0) + value - before[name]
        vectors = [
            np.stack([per_dimm[d][p] for d in range(cfg.dimms)]) if cfg.dimms else None
            for p in range(len(call.packets))
        ]
        counters.update(self._cache_and_hints(call.lookups))
        return BackendResult(vectors, counters)

    def _cache_and_hints(self, lookups: np.ndarray) -> dict[str, int]:
        """Cache hits/misses/bypasses and hint mismatches of the lookups, in stream order."""
        off = self._line_offsets
        totals = dict.fromkeys(_CACHE_COUNTERS, 0)
        ranks = lookups["dimm"].astype(np.int64) * self.config.ranks_per_dimm + lookups["rank"]
        first_line = lookups["column"] // self.config.geometry.burst_columns
        base = (
            (lookups["row"].astype(np.int64) << off["row"])
            | (lookups["bank"].astype(np.int64) << off["bank"])
            | (lookups["bank_group"].astype(np.int64) << off["bank_group"])
        )
        for r in np.unique(ranks).tolist():
            cache, shadow = self.caches[r], self.shadow[r]
            before = (cache.hits, cache.misses, cache.bypasses)
            mine = np.flatnonzero(ranks == r)
            for k in mine.tolist():
                lookup = lookups[k]
                bank = (int(lookup["bank_group"]), int(lookup["bank"]))
                row, allocate = int(lookup["row"]), bool(lookup["locality"])
                for line in range(int(lookup["vsize"])):
                    if cache.access(int(base[k]) | (int(first_line[k]) + line) << off["line"], allocate):
                        continue
                    hint = int(lookup["hint"]) if line == 0 else HINT_HIT  # later lines: same row
                    totals["hint_mismatches"] += hint != expected_hint(shadow.get(bank), row)
                    shadow[bank] = row
            totals["cache_hits"] += cache.hits - before[0]
            totals["cache_misses"] += cache.misses - before[1]
            totals["cache_bypasses"] += cache.bypasses - before[2]
        return totals
