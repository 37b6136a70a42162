"""Hot-entry profiling: the ``locality`` bit of every lookup.

The RankCache allocates a missed line only when its lookup has ``locality = 1``. With a
threshold ``t`` the driver counts, over all requests of one call, how often each row of
each table is looked up, and sets ``locality = 1`` for the lookups of rows used at least
``t`` times (rows used once gain nothing from the cache and would evict hot ones). With
profiling off (``threshold=None``) every lookup has ``locality = 1``: the cache allocates
everything.
"""

from __future__ import annotations

import numpy as np

__all__ = ["locality"]


def locality(tables: np.ndarray, rows: np.ndarray, threshold: int | None) -> np.ndarray:
    """``uint8`` locality bit of each lookup.

    Parameters
    ----------
    tables, rows : numpy.ndarray
        Per lookup, an integer naming its table (any id, equal for one table) and the row.
    threshold : int or None
        Uses per (table, row) in the batch that make a row hot; ``None``: profiling off.
    """
    rows = np.asarray(rows, np.int64)
    if threshold is None:
        return np.ones(rows.size, np.uint8)
    if not rows.size:
        return np.zeros(0, np.uint8)
    keys = np.stack([np.asarray(tables, np.int64), rows], axis=1)
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    return (counts[inverse.reshape(-1)] >= threshold).astype(np.uint8)
