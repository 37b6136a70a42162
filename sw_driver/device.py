"""The host driver's front end: :class:`Device`."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from hw.ddr4 import DDR4Geometry, DDR4Timing
from hw.fp32_add import QUIET_NAN
from hw.params import check_power_of_two
from hw.user_input import writable_file

from . import pu
from .address_map import DEFAULT_ORDER, AddressMap
from .backends import BACKENDS, BackendConfig, make_backend
from .compiler import UNKNOWN_Q8, CompiledCall, compile_call
from .errors import TableExistsError, UnknownTableError
from .hints import RowBufferModel
from .placement import DeviceImage, Placement, TablePlacement, device_rows, table_layout
from .report import Report, baseline_cycles
from .requests import normalise, parse

__all__ = ["Device"]

_MAX_CHANNELS = 16
_MAX_DIMMS_PER_CHANNEL = 8
_MAX_RESERVED_ROWS = 1 << 40
_MAX_RESERVED_DIM = 1 << 16


def _check_count(name: str, value, high: int) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | np.integer)
        or not 1 <= value <= high
        or value & (value - 1)
    ):
        raise ValueError(
            f"{name} must be a power of two from 1 to {high} (the address map is made of bit fields), got {value!r}"
        )
    return int(value)


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


class Device:
    """A RecNMP memory system: channels x DIMMs x ranks, one PU per DIMM, and its host driver.

    Parameters
    ----------
    channels : int, default 1
        Memory channels, a power of two (1 to 16).
    dimms_per_channel : int, default 1
        DIMMs per channel, a power of two (1 to 8).
    ranks_per_dimm : {1, 2, 4}, default 2
        Ranks per DIMM (the PU takes 1, 2 or 4).
    backend : {"golden", "rtl", "perf"}, default "golden"
        What runs the instructions: ``"golden"`` (the bit-exact Python models, no timing),
        ``"rtl"`` (the generated PU under cocotb + Verilator, with the DRAM model and protocol
        checker: bit-exact and timed), ``"perf"`` (golden results, with the cycle-level
        performance models' timing, host baseline and energy: :mod:`sw_driver.perf_backend`).
    timing : hw.ddr4.DDR4Timing
        DRAM timing (timed backends; the report's baseline estimate).
    cache_size_bytes : int, default 131072
        RankCache capacity per rank: a power of two from 8 KiB to 1 MiB (4 ways).
    address_map : sequence of str or AddressMap, optional
        Field order of physical addresses, LSB first (:mod:`sw_driver.address_map`);
        default ``byte, column, channel, dimm, rank, bank_group, bank, row``.
    page_colouring : bool, default False
        Place every table on one rank (:mod:`sw_driver.placement`).
    hot_entry_threshold : int or None, default None
        Hot-entry profiling: lookups of rows used at least this often in a call get
        ``locality = 1``, others 0; ``None``: every lookup 1 (:mod:`sw_driver.profiling`).
    table_aware : bool, default True
        Group the requests of a call by table (:mod:`sw_driver.compiler`).
    dram_trace : str or os.PathLike, optional
        Where the ``"rtl"`` backend writes its DRAM command trace (checked writable here);
        stored, unused by ``"golden"``.
    geometry : hw.ddr4.DDR4Geometry
        One rank's shape (a smaller one gives a small device, e.g. for tests; golden only).
    backend_options : dict, optional
        Options of the backend: for ``"rtl"``, ``inst_stall`` and ``result_stall`` (pause
        probabilities on the PU's host streams) and ``seed`` (:mod:`sw_driver.rtl_backend`);
        for ``"perf"``, ``values`` and ``baseline`` (:mod:`sw_driver.perf_backend`).

    Raises
    ------
    ValueError
        A bad parameter; the message names it.
    """

    def __init__(
        self,
        channels: int = 1,
        dimms_per_channel: int = 1,
        ranks_per_dimm: int = 2,
        backend: str = "golden",
        *,
        timing: DDR4Timing = DDR4Timing(),
        cache_size_bytes: int = 128 * 1024,
        address_map=None,
        page_colouring: bool = False,
        hot_entry_threshold: int | None = None,
        table_aware: bool = True,
        dram_trace=None,
        geometry: DDR4Geometry = DDR4Geometry(),
        backend_options: dict | None = None,
    ):
        self.channels = _check_count("channels", channels, _MAX_CHANNELS)
        self.dimms_per_channel = _check_count("dimms_per_channel", dimms_per_channel, _MAX_DIMMS_PER_CHANNEL)
        if (
            not isinstance(ranks_per_dimm, int | np.integer)
            or isinstance(ranks_per_dimm, bool)
            or ranks_per_dimm not in pu.VALID_RANKS_PER_DIMM
        ):
            raise ValueError(
                f"ranks_per_dimm must be 1, 2 or 4 (the PU takes 1, 2 or 4 ranks per DIMM), got {ranks_per_dimm!r}"
            )
        self.ranks_per_dimm = int(ranks_per_dimm)
        if not isinstance(backend, str) or backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
        if not isinstance(timing, DDR4Timing):
            raise ValueError(f"timing must be a hw.ddr4.DDR4Timing, got {timing!r}")
        if not isinstance(geometry, DDR4Geometry):
            raise ValueError(f"geometry must be a hw.ddr4.DDR4Geometry, got {geometry!r}")
        self.timing, self.geometry = timing, geometry
        self.cache_size_bytes = check_power_of_two("cache_size_bytes", cache_size_bytes, 8 * 1024, 1024 * 1024)
        self.address_map = self._address_map(address_map)
        self.page_colouring = _check_bool("page_colouring", page_colouring)
        self.table_aware = _check_bool("table_aware", table_aware)
        if hot_entry_threshold is not None and (
            isinstance(hot_entry_threshold, bool)
            or not isinstance(hot_entry_threshold, int | np.integer)
            or hot_entry_threshold < 1
        ):
            raise ValueError(
                f"hot_entry_threshold must be None (profiling off) or a positive int, got {hot_entry_threshold!r}"
            )
        self.hot_entry_threshold = None if hot_entry_threshold is None else int(hot_entry_threshold)
        if dram_trace is not None and not isinstance(dram_trace, str | os.PathLike):
            raise ValueError(f"dram_trace must be a path (str or os.PathLike) or None, got {dram_trace!r}")
        if dram_trace is not None:
            writable_file("dram_trace", dram_trace)  # now, not after the first simulation
        self.dram_trace = dram_trace

        self.backend_name = backend
        self.backend = make_backend(
            backend,
            BackendConfig(
                channels=self.channels,
                dimms_per_channel=self.dimms_per_channel,
                ranks_per_dimm=self.ranks_per_dimm,
                timing=timing,
                geometry=geometry,
                cache_size_bytes=self.cache_size_bytes,
                cache_ways=pu.CACHE_WAYS,
                lanes=pu.LANES,
                max_elements=pu.MAX_ELEMENTS,
                dram_trace=dram_trace,
            ),
            backend_options,
        )
        self.placement = Placement(self.address_map, self.page_colouring)
        self.image = DeviceImage(geometry.row_bytes, geometry.column_bytes)
        self.row_model = RowBufferModel(self.dimms * self.ranks_per_dimm * geometry.banks)
        self.q8_state = np.full(self.dimms, UNKNOWN_Q8, np.int64)
        self.report: Report | None = None
        self._reserved: set[str] = set()  # tables placed without contents (reserve_table)

    def _address_map(self, spec) -> AddressMap:
        topology = dict(
            channels=self.channels,
            dimms_per_channel=self.dimms_per_channel,
            ranks_per_dimm=self.ranks_per_dimm,
            geometry=self.geometry,
        )
        if isinstance(spec, AddressMap):
            mine = (spec.channels, spec.dimms_per_channel, spec.ranks_per_dimm, spec.geometry)
            if mine != tuple(topology.values()):
                raise ValueError(f"address_map {spec!r} is for another topology or geometry than this device")
            return spec
        return AddressMap(DEFAULT_ORDER if spec is None else spec, **topology)

    # -- properties ---------------------------------------------------------------------

    @property
    def dimms(self) -> int:
        """DIMMs of the device."""
        return self.channels * self.dimms_per_channel

    @property
    def tables(self) -> dict[str, TablePlacement]:
        """Loaded tables by name (read only)."""
        return dict(self.placement.tables)

    def locate(self, name: str, indices) -> dict[str, np.ndarray]:
        """DRAM coordinates of rows of a loaded table: ``channel, dimm, rank, bank_group, bank, row, column``.

        Raises ``UnknownTableError`` for a name not loaded, ``IndexError`` for a row outside the table.
        """
        if name not in self.placement.tables:
            loaded = ", ".join(sorted(self.placement.tables)) or "none"
            raise UnknownTableError(f"unknown table {name!r} (loaded: {loaded})")
        return self.placement.tables[name].locate(indices)

    # -- tables -----------------------------------------------------------------------------

    def load_table(self, name: str, table: np.ndarray) -> TablePlacement:
        """Place a table in device memory and write its rows.

        Parameters
        ----------
        name : str
            A new, non-empty name.
        table : numpy.ndarray
            ``float32 (rows, D)`` or FBGEMM fused 8-bit ``uint8 (rows, D + 8)``.

        Returns
        -------
        TablePlacement

        Raises
        ------
        TableExistsError
            ``name`` is already loaded.
        TypeError, ValueError
            Not a table (dtype, shape; the messages of ``sim_models.sls``).
        UnsupportedConfigError
            Rows longer than the PU takes.
        DeviceMemoryError
            Not enough free device memory.
        """
        self._check_new_name(name)
        layout = table_layout(name, table, self.geometry.burst_bytes)
        placement = self.placement.plan(name, layout)
        data = self.placement.frame_data(placement, device_rows(table, layout))
        self.placement.commit(placement)
        self.image.write_rows(placement.coords, data)
        return placement

    def _check_new_name(self, name) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a table name must be a non-empty str, got {name!r}")
        if name in self.placement.tables:
            raise TableExistsError(f"table {name!r} is already loaded")

    def reserve_table(self, name: str, *, rows: int, dim: int, quantized: bool = False) -> TablePlacement:
        """Place a table of ``rows`` x ``dim`` without writing its contents.

        For timing-only runs at production scale (``backend="perf"`` with
        ``backend_options={"values": False}``: a 1 M-row table then costs no host or device
        memory). The placement is exactly that of :meth:`load_table` for a table of that
        shape (``quantized``: FBGEMM fused 8-bit rows of ``dim + 8`` bytes). A call that
        reads a reserved table on a backend that computes results raises ``ValueError``.
        """
        self._check_new_name(name)
        # Bounds far beyond any device (whose memory and PU then give the precise reason), so
        # that the stand-in array below can be shaped.
        for what, value, high in (("rows", rows, _MAX_RESERVED_ROWS), ("dim", dim, _MAX_RESERVED_DIM)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 1 <= value <= high:
                raise ValueError(f"{what} must be an int from 1 to {high}, got {value!r}")
        quantized = _check_bool("quantized", quantized)
        columns = int(dim) + (pu.Q8_HEADER_BYTES if quantized else 0)
        shape_only = np.broadcast_to(np.zeros((1, columns), np.uint8 if quantized else np.float32), (rows, columns))
        placement = self.placement.plan(name, table_layout(name, shape_only, self.geometry.burst_bytes))
        self.placement.commit(placement)
        self._reserved.add(name)
        return placement

    # -- calls ------------------------------------------------------------------------------

    def sls(
        self,
        name: str,
        indices,
        lengths=None,
        weights=None,
        mode: str = "sum",
        *,
        offsets=None,
        include_last_offset: bool = False,
    ) -> np.ndarray:
        """SparseLengths(Weighted)Sum / EmbeddingBag of one table.

        Parameters
        ----------
        name : str
            A loaded table.
        indices, lengths, weights, mode, offsets, include_last_offset
            As in ``sim_models.sls.sls``.

        Returns
        -------
        numpy.ndarray
            ``float32 (bags, D)``, equal bit for bit to ``sim_models.sls.sls_hardware_order``
            with the ranks and DIMMs of the table's rows.
        """
        fields = dict(
            table=name,
            indices=indices,
            lengths=lengths,
            offsets=offsets,
            include_last_offset=include_last_offset,
            weights=weights,
            mode=mode,
        )
        return self._call([normalise(fields, self.placement.tables, None)])[0]

    def run(self, requests: Sequence) -> list[np.ndarray]:
        """Several requests in one call; a list of outputs in request order.

        Each request is ``(table, indices, lengths)``, ``(table, indices, lengths, weights)``
        or a mapping with keys ``table, indices, lengths, offsets, include_last_offset,
        weights, mode``.
        """
        if isinstance(requests, str | bytes) or not isinstance(requests, Sequence):
            raise ValueError(f"requests must be a list of requests, got {type(requests).__name__}")
        checked = [normalise(parse(k, spec), self.placement.tables, f"request {k}") for k, spec in enumerate(requests)]
        return self._call(checked)

    def compile(self, requests: Sequence) -> CompiledCall:
        """Compile requests (the forms of :meth:`run`) without running them or changing any state."""
        checked = [normalise(parse(k, spec), self.placement.tables, f"request {k}") for k, spec in enumerate(requests)]
        return self._compile(checked)

    def reset(self) -> None:
        """Reset every PU and the driver's row and ``Q8_ELEMENTS`` models; tables stay loaded."""
        self.backend.reset()
        self.row_model.reset()
        self.q8_state[:] = UNKNOWN_Q8
        self.report = None

    def _compile(self, checked) -> CompiledCall:
        return compile_call(
            checked,
            address_map=self.address_map,
            row_model=self.row_model,
            q8_state=self.q8_state,
            table_aware=self.table_aware,
            hot_entry_threshold=self.hot_entry_threshold,
        )

    def _call(self, checked) -> list[np.ndarray]:
        reserved = sorted({r.table.name for r in checked} & self._reserved)
        if reserved and getattr(self.backend, "values", True):
            raise ValueError(
                f"table {reserved[0]!r} was reserved without contents: only backend='perf' with "
                f"backend_options={{'values': False}} can run it"
            )
        if getattr(self.backend, "resets_each_call", False):
            # The backend's PU starts this call from reset: so do the driver's models of it.
            self.row_model.reset()
            self.q8_state[:] = UNKNOWN_Q8
        call = self._compile(checked)
        result = self.backend.run(call, self.image)
        outputs = self._assemble(call, result.vectors)
        # Everything succeeded: adopt the driver state the call leaves behind.
        self.row_model.commit(call.row_state)
        self.q8_state[:] = call.q8_state
        self.report = self._report(call, result)
        return outputs

    def _assemble(self, call: CompiledCall, vectors) -> list[np.ndarray]:
        """Add DIMM results in DIMM order (``acc = t0; acc = acc + t1 ...``), keep D values, mean."""
        outputs = [np.zeros((r.bags, r.table.layout.dim), np.float32) for r in call.requests]
        for packet, per_dimm in zip(call.packets, vectors):
            acc = per_dimm[0]
            with np.errstate(all="ignore"):
                for partial in per_dimm[1:]:
                    acc = acc + partial
            outputs[packet.request][packet.first_bag : packet.first_bag + packet.bags] = acc[:, : packet.dim]
        for request, out in zip(call.requests, outputs):
            if request.mode == "mean":
                nonempty = request.lengths > 0
                with np.errstate(all="ignore"):
                    out[nonempty] = out[nonempty] / request.lengths[nonempty].astype(np.float32)[:, None]
            # Every NaN is the hardware's one quiet NaN (numpy keeps payloads and signs), so
            # that every backend returns the same bits.
            out.view(np.uint32)[np.isnan(out)] = QUIET_NAN
        return outputs

    def _report(self, call: CompiledCall, result) -> Report:
        c = result.counters
        return Report(
            backend=self.backend_name,
            requests=len(call.requests),
            packets=len(call.packets),
            instructions=call.instructions,
            lookups=int(call.lookups.size),
            lines=int(call.lookups["vsize"].sum(dtype=np.int64)),
            cycles=result.cycles,
            baseline_cycles=result.baseline_cycles
            if result.baseline_cycles is not None
            else baseline_cycles(
                call.lookups,
                timing=self.timing,
                geometry=self.geometry,
                channels=self.channels,
                ranks_per_dimm=self.ranks_per_dimm,
            ),
            transport_cycles=call.transport_cycles,
            cache_hits=c.get("cache_hits", 0),
            cache_misses=c.get("cache_misses", 0),
            cache_bypasses=c.get("cache_bypasses", 0),
            hint_mismatches=c.get("hint_mismatches", 0),
            illegal=c.get("illegal", 0),
            bad_rank=c.get("bad_rank", 0),
            malformed=c.get("malformed", 0),
            eop_mismatches=c.get("eop_mismatches", 0),
            dram_commands=result.dram_commands,
            energy=result.energy,
        )
