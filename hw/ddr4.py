"""DDR4 rank geometry, timing parameters and DRAM command codes: the one definition.

The rank scheduler (hardware), the DRAM model and protocol checker (verification) and the
performance model all take a :class:`DDR4Timing` and :class:`DDR4Geometry` from here.
Every timing is in DRAM command clock cycles (tCK = 0.833 ns at DDR4-2400), the clock the
RTL runs in.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from .isa import DADDR_FIELDS

_DADDR_WIDTH = {f.name: f.width for f in DADDR_FIELDS}

__all__ = ["DDR4Geometry", "DDR4Timing", "DramCommand", "DramPortSignature", "line_address_layout"]


class DramCommand(enum.IntEnum, shape=3):
    """Command codes on a Rank-NMP's DRAM command port."""

    NOP = 0
    ACT = 1  #: open ``row`` in (bank_group, bank)
    RD = 2  #: read one BL8 burst (64 B) at ``column`` of the open row
    PRE = 3  #: close (bank_group, bank)
    REF = 4  #: refresh; every bank must be precharged


@dataclass(frozen=True, kw_only=True)
class DDR4Timing:
    """DDR4 timing constraints in DRAM clock cycles. Defaults: DDR4-2400, 8 Gb x8 devices.

    ``tBL`` is the burst length on the command clock (BL8 = 4 cycles); a rank delivers
    64 B in those 4 cycles, 16 B per cycle.

    Validation (``ValueError`` naming the fields and values). Every field is an integer from
    1 to :attr:`MAX_CYCLES`, and these relations, which every JEDEC DDR4 speed bin satisfies, hold:

    * ``tRC >= tRAS + tRP``; ``tCCD_S >= tBL`` (bursts do not overlap on the data bus);
    * ``tRAS >= tRCD + tRTP``: a row opened by an ACT can be read once and precharged
      without extending tRAS (the rank scheduler relies on it during a pending refresh);
    * ``tCCD_L >= tCCD_S`` and ``tRRD_L >= tRRD_S``;
    * ``tREFI > tRFC``, and ``tREFI >=`` :attr:`min_tREFI`, so that after the worst-case
      refresh the rank scheduler still opens a row and reads it before the next refresh
      falls due (no request can starve behind refreshes).
    """

    #: Banks of the largest DDR4 rank (4 bank groups x 4 banks): the scheduler precharges
    #: at most this many banks, one per cycle, before a refresh.
    MAX_BANKS = 16

    tRCD: int = 16  #: ACT to RD, same bank
    tCL: int = 16  #: RD to first data
    tRP: int = 16  #: PRE to ACT (or REF), same bank
    tRAS: int = 39  #: ACT to PRE, same bank
    tRC: int = 55  #: ACT to ACT, same bank
    tBL: int = 4  #: data cycles per burst
    tCCD_S: int = 4  #: RD to RD, different bank group
    tCCD_L: int = 6  #: RD to RD, same bank group
    tRRD_S: int = 4  #: ACT to ACT, different bank group
    tRRD_L: int = 6  #: ACT to ACT, same bank group
    tFAW: int = 26  #: window holding at most four ACTs
    tRTP: int = 9  #: RD to PRE, same bank
    tREFI: int = 9360  #: average refresh interval
    tRFC: int = 420  #: REF to next command (8 Gb)

    #: The largest value of any field: 16 M cycles (14 ms at DDR4-2400), far beyond any DDR4
    #: timing, and small enough for every counter the hardware sizes from it.
    MAX_CYCLES = 1 << 24

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= self.MAX_CYCLES:
                raise ValueError(
                    f"{f.name} must be an integer number of cycles from 1 to {self.MAX_CYCLES}, got {value!r}"
                )
        if self.tRC < self.tRAS + self.tRP:
            raise ValueError(f"tRC ({self.tRC}) must be at least tRAS + tRP ({self.tRAS} + {self.tRP})")
        if self.tCCD_S < self.tBL:
            raise ValueError(f"tCCD_S ({self.tCCD_S}) must be at least tBL ({self.tBL}): bursts would overlap")
        if self.tRAS < self.tRCD + self.tRTP:
            raise ValueError(
                f"tRAS ({self.tRAS}) must be at least tRCD + tRTP ({self.tRCD} + {self.tRTP}): "
                f"a row must stay open long enough to be read once"
            )
        if self.tCCD_L < self.tCCD_S:
            raise ValueError(f"tCCD_L ({self.tCCD_L}) must be at least tCCD_S ({self.tCCD_S})")
        if self.tRRD_L < self.tRRD_S:
            raise ValueError(f"tRRD_L ({self.tRRD_L}) must be at least tRRD_S ({self.tRRD_S})")
        if self.tREFI <= self.tRFC:
            raise ValueError(f"tREFI ({self.tREFI}) must be larger than tRFC ({self.tRFC})")
        if self.tREFI < self.min_tREFI:
            act = max(self.tRRD_L, self.tFAW)
            refresh = self.tRAS + (self.MAX_BANKS - 1) + self.tRP + self.tRFC
            raise ValueError(
                f"tREFI ({self.tREFI}) must be at least {self.min_tREFI} = "
                f"max(tRAS + 15 + tRP + tRFC, tRC, A) + A + tRCD + tCCD_L + tCCD_S - 2 with "
                f"A = max(tRRD_L, tFAW) = {act}, tRAS + 15 + tRP + tRFC = "
                f"{self.tRAS} + 15 + {self.tRP} + {self.tRFC} = {refresh}, tRC = {self.tRC}, "
                f"tRCD = {self.tRCD}, tCCD_L = {self.tCCD_L}, tCCD_S = {self.tCCD_S}: "
                f"a request must be served between two refreshes"
            )

    @property
    def min_tREFI(self) -> int:
        """The smallest ``tREFI`` accepted, from the rank scheduler's policy.

        Let the refresh fall due in cycle ``d`` (no ACT from then on). Every open bank may
        be precharged by ``d - 1 + tRAS`` (RDs during a pending refresh never delay a PRE;
        ``tRAS >= tRTP``); the PREs go one per cycle, at most :attr:`MAX_BANKS`; REF follows
        tRP after the last, and commands resume tRFC later, by
        ``E = d - 1 + tRAS + 15 + tRP + tRFC``. The oldest buffered request then gets the
        first ACT once its bank's tRC (from an ACT before ``d``) and the rank's tRRD/tFAW
        windows allow, by ``max(E, d - 1 + tRC, d - 1 + A) + A`` with ``A = max(tRRD_L,
        tFAW)`` (younger requests may be activated while it waits on tRC; a RD takes at
        most one cycle from it), and its RD, which nothing older competes with, follows
        within ``tRCD + tCCD_L + tCCD_S - 2``. That RD must come before the next refresh
        falls due, at ``d + tREFI``::

            min_tREFI = max(tRAS + 15 + tRP + tRFC, tRC, A) + A + tRCD + tCCD_L + tCCD_S - 2

        So every refresh interval serves at least the request that is oldest when the
        refresh's tRFC ends. 540 at DDR4-2400 (tREFI is 9360).
        """
        act = max(self.tRRD_L, self.tFAW)
        refresh = self.tRAS + (self.MAX_BANKS - 1) + self.tRP + self.tRFC
        return max(refresh, self.tRC, act) + act + self.tRCD + self.tCCD_L + self.tCCD_S - 2

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, kw_only=True)
class DDR4Geometry:
    """One rank: 4 bank groups x 4 banks, 64 K rows of 1024 columns of 8 B (8 KiB).

    The defaults are the ranges of the NMP-Inst daddr sub-fields (``hw.isa.DADDR_FIELDS``).
    """

    bank_groups: int = 1 << _DADDR_WIDTH["bank_group"]
    banks_per_group: int = 1 << _DADDR_WIDTH["bank"]
    rows: int = 1 << _DADDR_WIDTH["row"]
    columns: int = 1 << _DADDR_WIDTH["column"]
    column_bytes: int = 8  #: the 64-bit rank data bus
    burst_columns: int = 8  #: BL8: one RD returns 8 columns = 64 B

    @property
    def banks(self) -> int:
        return self.bank_groups * self.banks_per_group

    @property
    def row_bytes(self) -> int:
        return self.columns * self.column_bytes

    @property
    def burst_bytes(self) -> int:
        return self.burst_columns * self.column_bytes

    @property
    def rank_bytes(self) -> int:
        return self.banks * self.rows * self.row_bytes

    @property
    def beat_bytes(self) -> int:
        """Bytes delivered per DRAM clock cycle: two transfers (DDR) of the rank bus."""
        return 2 * self.column_bytes

    @property
    def beats_per_burst(self) -> int:
        return self.burst_bytes // self.beat_bytes

    @property
    def lines_per_row(self) -> int:
        """64 B lines (bursts) per row."""
        return self.columns // self.burst_columns


def _bits(count: int) -> int:
    return max(1, (count - 1).bit_length())


def line_address_layout(geometry: DDR4Geometry = DDR4Geometry()) -> data.StructLayout:
    """Rank-local address of one 64 B line (one burst): the RankCache tag and the
    scheduler's request address. ``line`` is the column divided by the burst length."""
    return data.StructLayout(
        {
            "line": _bits(geometry.lines_per_row),
            "row": _bits(geometry.rows),
            "bank": _bits(geometry.banks_per_group),
            "bank_group": _bits(geometry.bank_groups),
        }
    )


class DramPortSignature(wiring.Signature):
    """A Rank-NMP's DRAM port, from the Rank-NMP's side (``Out`` = driven by the Rank-NMP).

    Members: ``cmd`` (:class:`DramCommand`, one per cycle, ``NOP`` when idle),
    ``bank_group``, ``bank``, ``row``, ``column`` (the command's address; ``column`` in 8 B
    units), and from the DRAM ``rd_valid`` / ``rd_data``: a RD issued in cycle ``c``
    returns its burst in cycles ``c + tCL .. c + tCL + tBL - 1``, ``beat_bytes`` (16 B)
    per cycle in ascending address order (``rd_data`` bits 0-7 = the lowest byte).
    """

    def __init__(self, geometry: DDR4Geometry = DDR4Geometry()):
        self._geometry = geometry
        super().__init__(
            {
                "cmd": Out(DramCommand),
                "bank_group": Out(_bits(geometry.bank_groups)),
                "bank": Out(_bits(geometry.banks_per_group)),
                "row": Out(_bits(geometry.rows)),
                "column": Out(_bits(geometry.columns)),
                "rd_valid": In(1),
                "rd_data": In(8 * geometry.beat_bytes),
            }
        )

    @property
    def geometry(self) -> DDR4Geometry:
        return self._geometry

    def __eq__(self, other):
        return isinstance(other, DramPortSignature) and other.geometry == self.geometry

    def __repr__(self):
        return f"DramPortSignature({self._geometry!r})"
