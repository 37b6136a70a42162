"""Table placement in device memory, and the device memory image.

Every table row becomes one *vector* of ``vsize = ceil(row_bytes / 64)`` 64 B lines
(fp32 tables: ``row_bytes = 4 * D``; 8-bit tables: the device layout of
``hw.isa.fused8_to_device``, fp32 scale, fp32 bias, then ``D`` bytes, ``row_bytes = D + 8``),
zero-padded. A vector never crosses a DRAM row: a DRAM row (a *frame*, see
:mod:`sw_driver.address_map`) holds ``lines_per_row // vsize`` vectors (128 // vsize by
default) from column 0 on, and the rest of the row stays unused. A table takes whole
frames, which no other table shares, so tables never overlap.

Frames are handed out in frame order (the address map's order of the non-column fields):

* without page colouring, one bump allocator over the whole device: table after table,
  frame after frame, so a table spreads over channels, DIMMs, ranks and banks as the map
  rotates;
* with page colouring, each table lies entirely on one rank: the rank with the fewest
  frames in use (ties: the lowest rank number, channel-major), so tables of equal size go
  round-robin over the ranks in load order; within the rank, frames in map order.

A table that does not fit is refused with :class:`~sw_driver.errors.DeviceMemoryError`
naming the table, its size and what is free; nothing is allocated then.

The memory image (:class:`DeviceImage`) is sparse: per rank ``(channel, dimm, rank)`` a
dict ``(bank_group, bank, row) -> uint8 array`` of one DRAM row. It deliberately does not
use ``verif.rank_image.RankImage`` (the driver does not depend on the verification
environment); :meth:`DeviceImage.rank` gives a read-only view with the same ``read``
signature, and the RTL backend copies the rows into RankImages.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hw.isa import fused8_to_device
from sim_models.sls import check_table

from . import pu
from .address_map import FRAME_FIELDS, RANK_FIELDS, AddressMap
from .errors import DeviceMemoryError, UnsupportedConfigError

__all__ = ["DeviceImage", "Placement", "RankView", "TableLayout", "TablePlacement", "device_rows", "table_layout"]

RankKey = tuple[int, int, int]
RowKey = tuple[int, int, int]


@dataclass(frozen=True)
class TableLayout:
    """How one table's rows look in device memory.

    Attributes
    ----------
    quantized : bool
        8-bit fused table (``SUM_Q8`` / ``WSUM_Q8``) rather than fp32.
    rows, dim : int
        Table rows and ``D``, the values per row (the output width).
    row_bytes : int
        Device bytes of one row (``4 * D`` or ``D + 8``).
    vsize : int
        64 B lines per vector.
    elements : int
        fp32 values of each result vector the ranks return (EOP ``elements``): ``16 * vsize``
        for fp32 rows (a rank adds whole lines), ``D`` for 8-bit rows.
    """

    quantized: bool
    rows: int
    dim: int
    row_bytes: int
    vsize: int
    elements: int


def table_layout(name: str, table: np.ndarray, line_bytes: int = 64) -> TableLayout:
    """Check a host table and describe its device layout.

    Raises
    ------
    TypeError, ValueError
        From ``sim_models.sls`` (dtype, shape), prefixed with the table name.
    UnsupportedConfigError
        Rows longer than the PU takes (``MAX_VSIZE`` lines, ``MAX_ELEMENTS`` values).
    """
    try:
        rows, dim = check_table(table)
    except (TypeError, ValueError) as error:
        raise type(error)(f"table {name!r}: {error}") from None
    if rows == 0:
        raise ValueError(f"table {name!r} has no rows")
    quantized = table.dtype == np.uint8
    row_bytes = dim + pu.Q8_HEADER_BYTES if quantized else 4 * dim
    vsize = -(-row_bytes // line_bytes)
    elements = dim if quantized else vsize * line_bytes // 4
    kind = "8-bit" if quantized else "fp32"
    if vsize > pu.MAX_VSIZE or elements > pu.MAX_ELEMENTS:
        limit = pu.MAX_ELEMENTS if quantized else min(pu.MAX_ELEMENTS, pu.MAX_VSIZE * line_bytes // 4)
        raise UnsupportedConfigError(
            f"table {name!r}: {kind} rows of D = {dim} are longer than the PU takes "
            f"(at most D = {limit}: {pu.MAX_VSIZE} lines of {line_bytes} B, {pu.MAX_ELEMENTS} values per partial sum)"
        )
    return TableLayout(quantized, int(rows), int(dim), row_bytes, vsize, elements)


def device_rows(table: np.ndarray, layout: TableLayout) -> np.ndarray:
    """The table's rows as device bytes, ``uint8 (rows, row_bytes)``."""
    if layout.quantized:
        return fused8_to_device(table)
    return np.ascontiguousarray(table, dtype="<f4").view(np.uint8).reshape(layout.rows, layout.row_bytes)


@dataclass(frozen=True, eq=False)  # identity: it holds numpy arrays
class TablePlacement:
    """Where one table lives.

    Attributes
    ----------
    name : str
    layout : TableLayout
    per_frame : int
        Vectors per DRAM row.
    frames : numpy.ndarray
        Frame numbers (``int64``), one per ``per_frame`` table rows, in table order.
    coords : dict of str to numpy.ndarray
        :data:`~sw_driver.address_map.FRAME_FIELDS` of each frame.
    frame_bytes : int
        Bytes of one DRAM row.
    """

    name: str
    layout: TableLayout
    per_frame: int
    frames: np.ndarray
    coords: dict
    frame_bytes: int

    @property
    def nbytes(self) -> int:
        """Device bytes taken (whole DRAM rows)."""
        return self.frames.size * self.frame_bytes

    def locate(self, indices) -> dict[str, np.ndarray]:
        """DRAM coordinates of table rows: :data:`FRAME_FIELDS` plus ``column`` (8 B units, ``int64``)."""
        indices = np.asarray(indices)
        if indices.dtype.kind not in "iu":
            raise TypeError(f"indices must be integers, got dtype {indices.dtype}")
        indices = indices.astype(np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= self.layout.rows):
            bad = int(indices.min() if indices.min() < 0 else indices.max())
            raise IndexError(f"index {bad} is out of range for a table of {self.layout.rows} rows")
        chunk, slot = np.divmod(indices, self.per_frame)
        out = {name: values[chunk] for name, values in self.coords.items()}
        out["column"] = slot * (self.layout.vsize * 8)
        return out


class RankView:
    """Read access to one rank of a :class:`DeviceImage` (the ``RankImage.read`` signature)."""

    def __init__(self, rows: dict, row_bytes: int, column_bytes: int):
        self._rows = rows
        self._row_bytes = row_bytes
        self._column_bytes = column_bytes
        self.unwritten_reads = 0

    def read(self, *, bank_group: int, bank: int, row: int, column: int, length: int) -> bytes:
        """``length`` bytes from ``column`` (8 B units) of one DRAM row; zeros if never written."""
        start = column * self._column_bytes
        if column < 0 or length < 0 or start + length > self._row_bytes:
            raise ValueError(f"{length} bytes at column {column} run past the end of the {self._row_bytes}-byte row")
        stored = self._rows.get((bank_group, bank, row))
        if stored is None:
            self.unwritten_reads += 1
            return bytes(length)
        return stored[start : start + length].tobytes()


class DeviceImage:
    """Sparse byte image of every rank of the device.

    Attributes
    ----------
    ranks : dict
        ``(channel, dimm, rank) -> {(bank_group, bank, row): uint8 array of one DRAM row}``;
        only written rows are present.
    """

    def __init__(self, row_bytes: int, column_bytes: int = 8):
        self.row_bytes = row_bytes
        self.column_bytes = column_bytes
        self.ranks: dict[RankKey, dict[RowKey, np.ndarray]] = {}

    def write_rows(self, coords: dict, data: np.ndarray) -> None:
        """Store whole DRAM rows: ``data[k]`` (``row_bytes`` bytes) at the frame of ``coords[...][k]``."""
        keys = zip(*(coords[n].tolist() for n in FRAME_FIELDS))
        for (channel, dimm, rank, bank_group, bank, row), content in zip(keys, data):
            self.ranks.setdefault((channel, dimm, rank), {})[(bank_group, bank, row)] = content

    def rank(self, channel: int, dimm: int, rank: int) -> RankView:
        """A read-only view of one rank."""
        return RankView(self.ranks.setdefault((channel, dimm, rank), {}), self.row_bytes, self.column_bytes)

    def dimm_rows(self, channel: int, dimm: int, ranks: int) -> dict[int, dict[RowKey, np.ndarray]]:
        """The written rows of one DIMM, per rank: ``{rank: {(bank_group, bank, row): uint8 row}}``
        (the ``images`` of a ``verif.dimm_job.DimmJob``)."""
        return {r: dict(self.ranks.get((channel, dimm, r), {})) for r in range(ranks)}

    @property
    def rows_written(self) -> int:
        return sum(len(rows) for rows in self.ranks.values())


class Placement:
    """The allocator of device memory: frames to tables.

    Parameters
    ----------
    address_map : AddressMap
    page_colouring : bool
        Put each table entirely on one rank (the least used one).
    """

    def __init__(self, address_map: AddressMap, page_colouring: bool = False):
        self.address_map = address_map
        self.page_colouring = page_colouring
        g = address_map.geometry
        self.frame_bytes = g.row_bytes
        self.lines_per_row = g.lines_per_row
        self.line_bytes = g.burst_bytes
        ranks = address_map.channels * address_map.dimms_per_channel * address_map.ranks_per_dimm
        self._next_frame = 0  # without colouring: the bump pointer over all frames
        self._rank_used = np.zeros(ranks, np.int64)  # with colouring: frames used per rank
        self.tables: dict[str, TablePlacement] = {}

    # -- queries --------------------------------------------------------------------------

    @property
    def free_frames(self) -> int:
        """Frames still free (with colouring: over all ranks)."""
        if self.page_colouring:
            return int((self.address_map.frames_per_rank - self._rank_used).sum())
        return self.address_map.frames - self._next_frame

    @property
    def free_bytes(self) -> int:
        return self.free_frames * self.frame_bytes

    # -- allocation -------------------------------------------------------------------------

    def plan(self, name: str, layout: TableLayout) -> TablePlacement:
        """Choose frames for a table, without allocating them (see :meth:`commit`).

        Raises
        ------
        DeviceMemoryError
            Not enough free frames (on any one rank with page colouring).
        """
        per_frame = self.lines_per_row // layout.vsize
        count = -(-layout.rows // per_frame)
        amap = self.address_map
        if self.page_colouring:
            rank = int(np.argmin(self._rank_used))
            free = amap.frames_per_rank - int(self._rank_used[rank])
            if count > free:
                self._refuse(
                    name, layout, count, free, " on the emptiest rank (page colouring puts a table on one rank)"
                )
            local = amap.rank_frame.decode(np.arange(self._rank_used[rank], self._rank_used[rank] + count))
            channel, rest = divmod(rank, amap.dimms_per_channel * amap.ranks_per_dimm)
            dimm, rank_in_dimm = divmod(rest, amap.ranks_per_dimm)
            coords = dict(
                local,
                channel=np.full(count, channel, np.int64),
                dimm=np.full(count, dimm, np.int64),
                rank=np.full(count, rank_in_dimm, np.int64),
            )
            frames = amap.frame.encode(coords)
        else:
            free = amap.frames - self._next_frame
            if count > free:
                self._refuse(name, layout, count, free, " in device memory")
            frames = np.arange(self._next_frame, self._next_frame + count, dtype=np.int64)
            coords = amap.frame.decode(frames)
        coords = {n: coords[n] for n in FRAME_FIELDS}
        return TablePlacement(name, layout, per_frame, frames, coords, self.frame_bytes)

    def commit(self, placement: TablePlacement) -> None:
        """Allocate the frames of a :meth:`plan`."""
        if self.page_colouring:
            if placement.frames.size:
                rank = int(self.address_map.global_rank(**{n: placement.coords[n][0] for n in RANK_FIELDS}))
                self._rank_used[rank] += placement.frames.size
        else:
            self._next_frame += placement.frames.size
        self.tables[placement.name] = placement

    def frame_data(self, placement: TablePlacement, rows: np.ndarray) -> np.ndarray:
        """The DRAM rows holding a table: ``uint8 (frames, frame_bytes)``, zero-padded."""
        layout = placement.layout
        vector_bytes = layout.vsize * self.line_bytes
        count = placement.frames.size
        vectors = np.zeros((count * placement.per_frame, vector_bytes), np.uint8)
        vectors[: layout.rows, : layout.row_bytes] = rows
        data = np.zeros((count, self.frame_bytes), np.uint8)
        data[:, : placement.per_frame * vector_bytes] = vectors.reshape(count, -1)
        return data

    def _refuse(self, name: str, layout: TableLayout, count: int, free: int, where: str):
        raise DeviceMemoryError(
            f"table {name!r} ({layout.rows} rows of {layout.row_bytes} B) needs {count * self.frame_bytes} bytes "
            f"({count} DRAM rows of {self.frame_bytes} B) but only {free * self.frame_bytes} bytes "
            f"({free} DRAM rows) are free{where}"
        )
