"""The driver's own exception classes.

Input that :mod:`sim_models.sls` already validates (indices, lengths, offsets, weights,
dtypes and shapes) raises that module's ``TypeError`` / ``ValueError`` / ``IndexError``
with its message, prefixed with the request it came from. The classes here cover what
only the driver knows: table names, device memory and the limits of the PU. Each also
derives from the builtin a caller would expect (``LookupError``, ``ValueError``), and all
derive from :class:`DriverError`.
"""

from __future__ import annotations

__all__ = ["DeviceMemoryError", "DriverError", "TableExistsError", "UnknownTableError", "UnsupportedConfigError"]


class DriverError(Exception):
    """Base class of the driver's own errors."""


class UnknownTableError(DriverError, LookupError):
    """A request names a table that was never loaded."""

    def __str__(self) -> str:  # LookupError would quote the message like a KeyError
        return str(self.args[0]) if self.args else ""


class TableExistsError(DriverError, ValueError):
    """:meth:`Device.load_table` with a name that is already loaded."""


class DeviceMemoryError(DriverError, ValueError):
    """A table does not fit in the free device memory."""


class UnsupportedConfigError(DriverError, ValueError):
    """A table or request the processing unit cannot take (e.g. rows too long)."""
