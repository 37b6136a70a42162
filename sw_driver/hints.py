"""The driver's row-buffer model: the ``ddr_cmd`` hint of every lookup.

The host cannot see the scheduler's reordering or refresh, so the only row-buffer model
it can run is an in-order open-page one. Per bank of the device
``(channel, dimm, rank, bank_group, bank)`` it remembers the row of the last lookup sent to
that bank, and hints each lookup's first line

* ``RD`` (:data:`HINT_HIT`) when the previous lookup to the bank was to the same row;
* ``ACT|RD`` (:data:`HINT_MISS`) when the bank has not been used since the device was
  created or reset;
* ``PRE|ACT|RD`` (:data:`HINT_CONFLICT`) otherwise.

Later lines of a vector are in the same row, so the Rank-NMP hints them ``RD`` itself.
This is the rule the rank scheduler's shadow table applies (``docs/rank_scheduler.md``);
:func:`hw.isa.expected_hint` is its one definition, with the ``ddr_cmd`` field it gives
meaning to. The state persists across calls, as the hardware's shadow
table does; :meth:`RowBufferModel.predict` is pure, and the caller commits the new state
only when the whole call succeeded.
"""

from __future__ import annotations

import numpy as np

from hw.isa import HINT_CONFLICT, HINT_HIT, HINT_MISS, expected_hint

__all__ = ["HINT_CONFLICT", "HINT_HIT", "HINT_MISS", "RowBufferModel", "expected_hint", "hints"]

#: The "no lookup yet" row in :class:`RowBufferModel` state arrays.
UNUSED = -1


def hints(last_rows: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Vectorised :func:`expected_hint`: ``last_rows`` uses :data:`UNUSED` for ``None``; ``uint8``."""
    last_rows = np.asarray(last_rows)
    out = np.where(last_rows == np.asarray(rows), HINT_HIT, HINT_CONFLICT)
    return np.where(last_rows == UNUSED, HINT_MISS, out).astype(np.uint8)


class RowBufferModel:
    """Open-row state of every bank of the device.

    Parameters
    ----------
    banks : int
        Number of banks of the device; a bank is named by a flat index (the caller's
        choice, e.g. ``global_rank * banks_per_rank + bank_group * banks_per_group + bank``).

    Attributes
    ----------
    last_row : numpy.ndarray
        ``int64 (banks,)``, the row of the last lookup to each bank, :data:`UNUSED` if none.
    """

    def __init__(self, banks: int):
        self.last_row = np.full(banks, UNUSED, np.int64)

    def reset(self) -> None:
        """Forget every bank (the state after device creation or reset)."""
        self.last_row[:] = UNUSED

    def predict(self, banks: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hints of a stream of lookups, without changing the state.

        Parameters
        ----------
        banks, rows : numpy.ndarray
            Flat bank index and DRAM row of each lookup, in the order the ranks receive
            them (any interleaving of banks; only the order within each bank matters).

        Returns
        -------
        hints : numpy.ndarray
            ``uint8`` hint of each lookup.
        state : numpy.ndarray
            The new :attr:`last_row` after the stream; pass it to :meth:`commit`.
        """
        banks = np.asarray(banks, np.int64)
        rows = np.asarray(rows, np.int64)
        state = self.last_row.copy()
        if not banks.size:
            return np.zeros(0, np.uint8), state
        order = np.argsort(banks, kind="stable")
        sorted_banks, sorted_rows = banks[order], rows[order]
        first = np.r_[True, sorted_banks[1:] != sorted_banks[:-1]]
        last = np.r_[sorted_banks[1:] != sorted_banks[:-1], True]
        previous = np.empty_like(sorted_rows)
        previous[1:] = sorted_rows[:-1]
        previous[first] = state[sorted_banks[first]]
        out = np.empty(banks.size, np.uint8)
        out[order] = hints(previous, sorted_rows)
        state[sorted_banks[last]] = sorted_rows[last]
        return out, state

    def commit(self, state: np.ndarray) -> None:
        """Adopt the state a :meth:`predict` returned."""
        self.last_row[:] = state
