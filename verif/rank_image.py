"""Sparse byte image of one DDR4 rank, addressed by DRAM coordinates.

A rank holds 8 GiB; only rows that were written take memory (one 8 KiB array each).
Reading a row that was never written returns zeros and counts it in
:attr:`RankImage.unwritten_reads`, so a test can assert it read only loaded data.
"""

from __future__ import annotations

import numpy as np

from hw.ddr4 import DDR4Geometry

__all__ = ["RankImage"]


class RankImage:
    """Byte contents of one rank. ``column`` counts 8 B units, as on the DRAM port."""

    def __init__(self, geometry: DDR4Geometry = DDR4Geometry()):
        self.geometry = geometry
        self._rows: dict[tuple[int, int, int], np.ndarray] = {}
        self.unwritten_reads = 0

    def _check(self, bank_group: int, bank: int, row: int, column: int, length: int) -> None:
        g = self.geometry
        if not (0 <= bank_group < g.bank_groups and 0 <= bank < g.banks_per_group and 0 <= row < g.rows):
            raise ValueError(f"no bank group {bank_group} bank {bank} row {row} in this rank")
        start = column * g.column_bytes
        if column < 0 or start + length > g.row_bytes:
            raise ValueError(f"{length} bytes at column {column} run past the end of the {g.row_bytes}-byte row")

    def write(self, *, bank_group: int, bank: int, row: int, column: int, data) -> None:
        """Store ``data`` (bytes or a uint8 array) from ``column`` on, within one row."""
        data = np.frombuffer(bytes(data), dtype=np.uint8) if not isinstance(data, np.ndarray) else data
        if data.dtype != np.uint8:
            raise TypeError(f"data must be bytes or a uint8 array, got dtype {data.dtype}")
        self._check(bank_group, bank, row, column, data.size)
        key = (bank_group, bank, row)
        if key not in self._rows:
            self._rows[key] = np.zeros(self.geometry.row_bytes, dtype=np.uint8)
        start = column * self.geometry.column_bytes
        self._rows[key][start : start + data.size] = data.ravel()

    def read(self, *, bank_group: int, bank: int, row: int, column: int, length: int) -> bytes:
        """``length`` bytes from ``column`` on, within one row."""
        self._check(bank_group, bank, row, column, length)
        stored = self._rows.get((bank_group, bank, row))
        if stored is None:
            self.unwritten_reads += 1
            return bytes(length)
        start = column * self.geometry.column_bytes
        return stored[start : start + length].tobytes()

    def read_burst(self, *, bank_group: int, bank: int, row: int, column: int) -> bytes:
        """One BL8 burst (64 B) starting at ``column``."""
        return self.read(bank_group=bank_group, bank=bank, row=row, column=column, length=self.geometry.burst_bytes)

    @property
    def rows_written(self) -> int:
        return len(self._rows)
