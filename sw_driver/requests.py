"""SLS requests: the caller's forms, checked and normalised.

A request names a loaded table and gives ``indices`` with ``lengths`` or ``offsets``
(``include_last_offset``), optional ``weights`` and ``mode``. The checks of indices,
lengths, offsets, weights, dtypes and shapes are those of ``sim_models.sls`` (one source
of truth for their messages), run against the table's shape; the message is prefixed with
the request it came from (``table 't0': ...`` for :meth:`Device.sls`,
``request 2 (table 't1'): ...`` for :meth:`Device.run`), the exception type is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from sim_models.sls import validate_inputs

from .errors import UnknownTableError
from .placement import TablePlacement

__all__ = ["Request", "normalise", "parse"]

_KEYS = ("table", "indices", "lengths", "offsets", "include_last_offset", "weights", "mode")


@dataclass(frozen=True)
class Request:
    """One checked request.

    Attributes
    ----------
    table : TablePlacement
    indices : numpy.ndarray
        ``intp``, every entry a row of the table.
    lengths : numpy.ndarray
        ``int64`` bag lengths, summing to ``len(indices)``.
    weights : numpy.ndarray or None
        ``float32``, one per index.
    mode : str
        ``"sum"`` or ``"mean"``.
    """

    table: TablePlacement
    indices: np.ndarray
    lengths: np.ndarray
    weights: np.ndarray | None
    mode: str

    @property
    def bags(self) -> int:
        return self.lengths.size


def parse(position: int, spec) -> dict:
    """The fields of one :meth:`Device.run` item: ``(table, indices, lengths[, weights])`` or a
    mapping with keys among ``table, indices, lengths, offsets, include_last_offset, weights, mode``."""
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - set(_KEYS))
        if unknown:
            raise ValueError(f"request {position}: unknown key(s) {unknown}; the keys are {', '.join(_KEYS)}")
        if "table" not in spec or "indices" not in spec:
            raise ValueError(f"request {position}: a mapping needs at least 'table' and 'indices'")
        return dict(spec)
    if isinstance(spec, tuple | list) and len(spec) in (3, 4):
        return dict(zip(("table", "indices", "lengths", "weights"), spec))
    got = f"a {type(spec).__name__} of {len(spec)}" if isinstance(spec, tuple | list) else type(spec).__name__
    raise ValueError(
        f"request {position} must be (table, indices, lengths), (table, indices, lengths, weights) "
        f"or a mapping, got {got}"
    )


def normalise(fields: dict, tables: Mapping[str, TablePlacement], label: str | None) -> Request:
    """Check one request against the loaded tables.

    Parameters
    ----------
    fields : dict
        ``table``, ``indices`` and optionally ``lengths``, ``offsets``, ``include_last_offset``,
        ``weights``, ``mode``.
    tables : mapping
        Loaded tables by name.
    label : str or None
        How messages name the request, e.g. ``"request 2"``; ``None``: by its table only.

    Raises
    ------
    UnknownTableError
        The table was never loaded.
    TypeError, ValueError, IndexError
        From ``sim_models.sls``, prefixed with ``label`` and the table name.
    """
    name = fields["table"]
    placement = tables.get(name) if isinstance(name, str) else None
    if placement is None:
        loaded = ", ".join(map(repr, tables)) or "none"
        prefix = f"{label}: " if label else ""
        raise UnknownTableError(f"{prefix}unknown table {name!r} (loaded: {loaded})")
    layout = placement.layout
    # A stand-in of the table's dtype and shape: sls's checks need nothing else.
    columns = layout.dim + (8 if layout.quantized else 0)
    stub = np.broadcast_to(np.zeros((), np.uint8 if layout.quantized else np.float32), (layout.rows, columns))
    mode = fields.get("mode", "sum")
    try:
        args = validate_inputs(
            stub,
            fields["indices"],
            fields.get("lengths"),
            fields.get("offsets"),
            fields.get("include_last_offset", False),
            fields.get("weights"),
            mode,
        )
    except (TypeError, ValueError, IndexError) as error:
        prefix = f"{label} (table {name!r})" if label else f"table {name!r}"
        raise type(error)(f"{prefix}: {error}") from None
    return Request(placement, args.indices, args.lengths, args.weights, mode)
