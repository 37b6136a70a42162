"""Physical address map: host byte addresses to DRAM coordinates and back.

A physical address is a concatenation of bit fields, listed from the least significant
bit up. The fields and their widths:

============== ================================== ===================================
field          width (bits)                       meaning
============== ================================== ===================================
``byte``       ``log2(column_bytes)`` = 3         byte within an 8 B column
``column``     ``log2(columns)`` = 10             column of the rank bus (8 B units)
``channel``    ``log2(channels)``                 memory channel
``dimm``       ``log2(dimms_per_channel)``        DIMM within the channel
``rank``       ``log2(ranks_per_dimm)``           rank within the DIMM
``bank_group`` ``log2(bank_groups)`` = 2          bank group
``bank``       ``log2(banks_per_group)`` = 2      bank within the bank group
``row``        ``log2(rows)`` = 16                DRAM row within the bank
============== ================================== ===================================

(widths for the default ``hw.ddr4.DDR4Geometry``; a topology count of 1 takes 0 bits).
The default order is :data:`DEFAULT_ORDER`: a whole 8 KiB DRAM row is contiguous, and
consecutive DRAM rows rotate over channels, then DIMMs, ranks, bank groups and banks.
``byte`` must be the lowest field (the rank bus is 8 B wide); any other order is allowed.

A *frame* is one DRAM row of the whole device: the address without its ``byte`` and
``column`` fields. Frames are numbered by the remaining fields in map order, which is the
order in which :mod:`sw_driver.placement` hands DRAM rows out. With the default order
frame ``f`` covers physical bytes ``f * 8192 .. f * 8192 + 8191``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from hw.ddr4 import DDR4Geometry
from hw.isa import DADDR_FIELDS, daddr_compose

__all__ = ["DEFAULT_ORDER", "FIELD_NAMES", "FRAME_FIELDS", "RANK_FIELDS", "AddressMap", "BitFields"]

#: Every field of a physical address.
FIELD_NAMES = ("byte", "column", "channel", "dimm", "rank", "bank_group", "bank", "row")
#: The default order, LSB first.
DEFAULT_ORDER = FIELD_NAMES
#: The fields that name one DRAM row of the device (a frame).
FRAME_FIELDS = ("channel", "dimm", "rank", "bank_group", "bank", "row")
#: The fields that name one rank of the device.
RANK_FIELDS = ("channel", "dimm", "rank")

_DADDR_WIDTH = {f.name: f.width for f in DADDR_FIELDS}


def _log2(name: str, count: int) -> int:
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1 or count & (count - 1):
        raise ValueError(f"{name} must be a positive power of two for a bit-field address map, got {count!r}")
    return int(count).bit_length() - 1


class BitFields:
    """Named bit fields packed LSB first into one integer (vectorised over numpy arrays).

    Parameters
    ----------
    widths : sequence of (str, int)
        Field names and widths in bits, least significant first; widths may be 0.
    what : str
        What the packed integer is, for error messages (e.g. ``"physical address"``).
    """

    def __init__(self, widths: Sequence[tuple[str, int]], what: str):
        self.what = what
        self.names = tuple(name for name, _ in widths)
        self.widths = dict(widths)
        self.offsets = {}
        offset = 0
        for name, width in widths:
            self.offsets[name] = offset
            offset += width
        self.bits = offset

    @property
    def size(self) -> int:
        """Number of distinct values, ``2 ** bits``."""
        return 1 << self.bits

    def encode(self, fields: Mapping[str, object]) -> np.ndarray:
        """Pack ``fields`` (every name, arrays broadcast) into ``int64`` values.

        Raises
        ------
        ValueError
            A field is missing or unknown, not an integer, or out of its range.
        """
        missing = [n for n in self.names if n not in fields]
        unknown = sorted(set(fields) - set(self.names))
        if missing or unknown:
            raise ValueError(
                f"{self.what} fields must be exactly {', '.join(self.names)}; missing {missing}, unknown {unknown}"
            )
        arrays = {n: np.asarray(fields[n]) for n in self.names}
        out = np.zeros(np.broadcast_shapes(*(a.shape for a in arrays.values())), np.int64)
        for name in self.names:
            value = arrays[name]
            if value.dtype.kind not in "iu":
                raise ValueError(f"{self.what} field {name!r} must hold integers, got dtype {value.dtype}")
            limit = 1 << self.widths[name]
            if value.size and (value.min() < 0 or value.max() >= limit):
                bad = int(value.min()) if value.min() < 0 else int(value.max())
                raise ValueError(f"{self.what} field {name!r} value {bad} is out of range 0..{limit - 1}")
            out |= value.astype(np.int64) << self.offsets[name]
        return out

    def decode(self, values) -> dict[str, np.ndarray]:
        """Split packed values into their fields (``int64`` arrays of the input's shape).

        Raises
        ------
        ValueError
            Not integers, or a value outside ``0 .. size - 1``.
        """
        values = np.asarray(values)
        if values.dtype.kind not in "iu":
            raise ValueError(f"{self.what} must be integers, got dtype {values.dtype}")
        if values.size and (values.min() < 0 or values.max() >= self.size):
            bad = int(values.min()) if values.min() < 0 else int(values.max())
            raise ValueError(f"{self.what} {bad} is out of range 0..{self.size - 1}")
        values = values.astype(np.int64)
        return {n: (values >> self.offsets[n]) & ((1 << self.widths[n]) - 1) for n in self.names}


class AddressMap:
    """Configurable map between physical byte addresses and DRAM coordinates.

    Parameters
    ----------
    order : sequence of str, default :data:`DEFAULT_ORDER`
        Every name of :data:`FIELD_NAMES` once, least significant first; ``"byte"`` first.
    channels, dimms_per_channel, ranks_per_dimm : int
        The topology; each a power of two.
    geometry : hw.ddr4.DDR4Geometry
        One rank's shape; bank groups, banks, rows, columns and column bytes must be powers
        of two, and bank groups, banks, rows and columns must fit the daddr sub-fields.

    Raises
    ------
    ValueError
        A bad order (naming the problem), a count that is not a power of two, or a geometry
        the NMP-Inst daddr cannot address.
    """

    def __init__(
        self,
        order: Sequence[str] = DEFAULT_ORDER,
        *,
        channels: int = 1,
        dimms_per_channel: int = 1,
        ranks_per_dimm: int = 1,
        geometry: DDR4Geometry = DDR4Geometry(),
    ):
        self.order = _check_order(order)
        self.geometry = geometry
        widths = {
            "byte": _log2("geometry.column_bytes", geometry.column_bytes),
            "column": _log2("geometry.columns", geometry.columns),
            "channel": _log2("channels", channels),
            "dimm": _log2("dimms_per_channel", dimms_per_channel),
            "rank": _log2("ranks_per_dimm", ranks_per_dimm),
            "bank_group": _log2("geometry.bank_groups", geometry.bank_groups),
            "bank": _log2("geometry.banks_per_group", geometry.banks_per_group),
            "row": _log2("geometry.rows", geometry.rows),
        }
        for name in ("column", "rank", "bank_group", "bank", "row"):
            if widths[name] > _DADDR_WIDTH[name]:
                raise ValueError(
                    f"{name} needs {widths[name]} bits but the NMP-Inst daddr has "
                    f"{_DADDR_WIDTH[name]} (hw.isa.DADDR_FIELDS)"
                )
        self.widths = widths
        self.channels, self.dimms_per_channel, self.ranks_per_dimm = channels, dimms_per_channel, ranks_per_dimm
        self.address = BitFields([(n, widths[n]) for n in self.order], "physical address")
        self.frame = BitFields([(n, widths[n]) for n in self.order if n in FRAME_FIELDS], "frame")
        self.rank_frame = BitFields(
            [(n, widths[n]) for n in self.order if n in FRAME_FIELDS and n not in RANK_FIELDS], "rank frame"
        )

    def __repr__(self) -> str:
        return (
            f"AddressMap({list(self.order)!r}, channels={self.channels}, "
            f"dimms_per_channel={self.dimms_per_channel}, ranks_per_dimm={self.ranks_per_dimm})"
        )

    @property
    def total_bytes(self) -> int:
        """Bytes of device memory the map covers."""
        return self.address.size

    @property
    def frames(self) -> int:
        """DRAM rows (frames) of the whole device."""
        return self.frame.size

    @property
    def frames_per_rank(self) -> int:
        return self.rank_frame.size

    def encode(self, **fields) -> np.ndarray:
        """Physical byte addresses (``int64``) of the given coordinates (every field, arrays broadcast)."""
        return self.address.encode(fields)

    def decode(self, address) -> dict[str, np.ndarray]:
        """DRAM coordinates of physical byte addresses: a dict of every field (``int64`` arrays)."""
        return self.address.decode(address)

    def frame_address(self, frame) -> np.ndarray:
        """Physical address of column 0, byte 0 of each frame."""
        fields = self.frame.decode(frame)
        return self.encode(byte=0, column=0, **fields)

    def global_rank(self, *, channel, dimm, rank) -> np.ndarray:
        """Rank number over the device, channel-major: ``(channel * dimms + dimm) * ranks + rank``."""
        return (np.asarray(channel) * self.dimms_per_channel + np.asarray(dimm)) * self.ranks_per_dimm + rank

    def global_dimm(self, *, channel, dimm) -> np.ndarray:
        """DIMM number over the device, channel-major (the host's order of adding DIMMs)."""
        return np.asarray(channel) * self.dimms_per_channel + np.asarray(dimm)

    @staticmethod
    def daddr(*, rank, bank_group, bank, row, column) -> np.ndarray:
        """The NMP-Inst daddr of DIMM-local coordinates (``hw.isa.daddr_compose``)."""
        return daddr_compose(rank=rank, bank_group=bank_group, bank=bank, row=row, column=column)


def _check_order(order) -> tuple[str, ...]:
    if isinstance(order, str) or not isinstance(order, Sequence):
        raise ValueError(f"address_map must be a sequence of field names (LSB first) or an AddressMap, got {order!r}")
    order = tuple(order)
    unknown = [n for n in order if n not in FIELD_NAMES]
    if unknown:
        raise ValueError(f"address_map: unknown field(s) {unknown}; the fields are {', '.join(FIELD_NAMES)}")
    duplicated = sorted({n for n in order if order.count(n) > 1})
    if duplicated:
        raise ValueError(f"address_map: field(s) {duplicated} appear more than once")
    missing = [n for n in FIELD_NAMES if n not in order]
    if missing:
        raise ValueError(f"address_map: missing field(s) {missing}")
    if order[0] != "byte":
        raise ValueError(
            f"address_map: 'byte' must be the lowest field (the rank bus is 8 B wide), got {order[0]!r} first"
        )
    return order
