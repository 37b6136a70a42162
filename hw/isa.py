"""The NMP instruction (NMP-Inst): the one definition of its 79-bit format.

Everything that handles instructions derives from the tables in this module:

* :data:`NMP_INST_LAYOUT` / :data:`DADDR_LAYOUT`: ``amaranth.lib.data`` layouts for the
  hardware;
* :func:`pack` / :func:`unpack`: vectorised numpy conversion between a structured array of
  fields (:data:`INST_DTYPE`) and packed words (``(N, 2)`` ``uint64``: low 64 bits, high
  15 bits), for the host driver, the models and the testbenches;
* :func:`words_to_ints` / :func:`ints_to_words`: packed words as Python integers, the form a
  testbench drives onto a 79-bit port.

Bit 0 is the least significant bit; fields are laid out in :data:`FIELDS` order from bit 0
upwards. ``docs/isa.md`` documents the format for people.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

import numpy as np
from amaranth.lib import data, enum

__all__ = [
    "CONFIG_FIELDS",
    "CONFIG_LAYOUT",
    "ConfigRegister",
    "EOP_FIELDS",
    "EOP_LAYOUT",
    "DADDR_FIELDS",
    "DADDR_LAYOUT",
    "DDR_CMD_ACT",
    "DDR_CMD_PRE",
    "DDR_CMD_RD",
    "FIELDS",
    "HINT_CONFLICT",
    "HINT_HIT",
    "HINT_MISS",
    "INST_BITS",
    "INST_DTYPE",
    "LOOKUP_OPCODES",
    "MAX_VSIZE",
    "Q8_HEADER_BYTES",
    "NMP_INST_LAYOUT",
    "Field",
    "Opcode",
    "config_daddr",
    "daddr_compose",
    "daddr_split",
    "eop_daddr",
    "expected_hint",
    "fused8_to_device",
    "ints_to_words",
    "pack",
    "unpack",
    "words_to_ints",
]


class Opcode(enum.IntEnum, shape=4):
    """NMP-Inst operation codes. Every value not listed here is illegal.

    0 is deliberately illegal so that an all-zero (uninitialised) word is rejected.
    """

    SUM = 0x1  #: acc += row
    WSUM = 0x2  #: acc += weight * row
    SUM_Q8 = 0x3  #: acc += dequantised 8-bit row
    WSUM_Q8 = 0x4  #: acc += weight * dequantised 8-bit row (weight folded into scale/bias)
    EOP = 0x8  #: end of packet: reduce, stream out one result per used tag, clear
    INVALIDATE = 0x9  #: empty the RankCache
    CONFIG = 0xA  #: set a configuration register (daddr = register value, see docs/isa.md)


#: Opcodes that read an embedding row and accumulate it into a partial sum.
LOOKUP_OPCODES = frozenset({Opcode.SUM, Opcode.WSUM, Opcode.SUM_Q8, Opcode.WSUM_Q8})

#: ``ddr_cmd`` hint bits: the host's prediction of the DRAM commands the row needs.
DDR_CMD_PRE = 0b001
DDR_CMD_ACT = 0b010
DDR_CMD_RD = 0b100

#: The hints of an in-order open-page row-buffer model (the only one a host can run): the
#: row is open (RD), the bank is closed (ACT|RD), another row is open (PRE|ACT|RD).
HINT_HIT = DDR_CMD_RD
HINT_MISS = DDR_CMD_ACT | DDR_CMD_RD
HINT_CONFLICT = DDR_CMD_PRE | DDR_CMD_ACT | DDR_CMD_RD


def expected_hint(last_row: int | None, row: int) -> int:
    """The ``ddr_cmd`` hint for a request to ``row`` of a bank whose previous request was to
    ``last_row`` (``None``: no request to the bank yet). The rank scheduler counts the hints
    that differ from this (``hint_mismatches``); the driver's row-buffer model
    (``sw_driver.hints``) produces them."""
    if last_row is None:
        return HINT_MISS
    return HINT_HIT if last_row == row else HINT_CONFLICT


#: Largest vector length, in 64 B bursts.
MAX_VSIZE = 7

#: An 8-bit row in device memory starts with its fp32 scale and fp32 bias (then D bytes),
#: so that they arrive with the row's first burst. Host tables use FBGEMM's fused layout
#: (D bytes, then scale and bias); :func:`fused8_to_device` converts.
Q8_HEADER_BYTES = 8


def fused8_to_device(fused: np.ndarray) -> np.ndarray:
    """FBGEMM fused 8-bit rows ``(rows, D+8)`` to the device layout: scale, bias, D bytes."""
    fused = np.asarray(fused)
    if fused.dtype != np.uint8 or fused.ndim != 2 or fused.shape[1] <= Q8_HEADER_BYTES:
        raise ValueError(f"fused 8-bit rows must be uint8 (rows, D+8) with D >= 1, got {fused.dtype} {fused.shape}")
    dim = fused.shape[1] - Q8_HEADER_BYTES
    return np.concatenate([fused[:, dim:], fused[:, :dim]], axis=1)


class Field(NamedTuple):
    """One bit field of a packed word: ``name``, bit ``offset`` (from bit 0) and ``width``."""

    name: str
    offset: int
    width: int


def _fields(widths: Iterable[tuple[str, int]]) -> tuple[Field, ...]:
    fields, offset = [], 0
    for name, width in widths:
        fields.append(Field(name, offset, width))
        offset += width
    return tuple(fields)


#: daddr sub-fields, LSB first: a 32-bit DDR4 address inside one DIMM. The column counts
#: 8 B units (one column of the 64-bit rank bus), so a 64 B burst starts at a multiple of 8.
DADDR_FIELDS = _fields([("column", 10), ("row", 16), ("bank", 2), ("bank_group", 2), ("rank", 2)])

#: NMP-Inst fields, LSB first.
FIELDS = _fields(
    [
        ("opcode", 4),
        ("ddr_cmd", 3),
        ("daddr", 32),
        ("vsize", 3),
        ("weight", 32),  # IEEE-754 binary32 bits
        ("locality", 1),
        ("psum_tag", 4),
    ]
)

INST_BITS = FIELDS[-1].offset + FIELDS[-1].width
assert INST_BITS == 79

#: daddr of an EOP instruction: which tags of the packet to return (bit t = tag t) and how
#: many fp32 values each result vector has. Every rank returns the same tags and lengths, so
#: the DIMM adder tree can add them beat by beat; a tag a rank never saw returns zeros.
EOP_FIELDS = _fields([("tag_mask", 16), ("elements", 10), ("reserved", 6)])

#: daddr of a CONFIG instruction: write ``value`` to configuration ``register``.
CONFIG_FIELDS = _fields([("value", 24), ("register", 8)])


class ConfigRegister(enum.IntEnum, shape=8):
    """Configuration registers written by CONFIG instructions."""

    Q8_ELEMENTS = 0  #: D, the element count of 8-bit rows (the rows of SUM_Q8 / WSUM_Q8)


DADDR_LAYOUT = data.StructLayout({f.name: f.width for f in DADDR_FIELDS})
EOP_LAYOUT = data.StructLayout({f.name: f.width for f in EOP_FIELDS})
CONFIG_LAYOUT = data.StructLayout({f.name: ConfigRegister if f.name == "register" else f.width for f in CONFIG_FIELDS})

NMP_INST_LAYOUT = data.StructLayout(
    {f.name: {"opcode": Opcode, "daddr": DADDR_LAYOUT}.get(f.name, f.width) for f in FIELDS}
)

#: Unpacked instructions: one record per instruction. ``weight`` is the float32 value.
INST_DTYPE = np.dtype(
    [
        ("opcode", np.uint8),
        ("ddr_cmd", np.uint8),
        ("daddr", np.uint32),
        ("vsize", np.uint8),
        ("weight", np.float32),
        ("locality", np.uint8),
        ("psum_tag", np.uint8),
    ]
)

_OPCODE_VALUES = np.array(sorted(op.value for op in Opcode), dtype=np.int64)
_WORD_BITS = 64


def _as_uint64(name: str, values, width: int) -> np.ndarray:
    """Validate one integer field column and return it as uint64."""
    array = np.asarray(values)
    if array.dtype.kind == "b":
        array = array.astype(np.uint8)
    if array.dtype.kind not in "iu":
        raise ValueError(f"field {name!r} must hold integers, got dtype {array.dtype}")
    if array.size:
        low, high = array.min(), array.max()
        if low < 0 or high >= (1 << width):
            bad = low if low < 0 else high
            raise ValueError(f"field {name!r} value {int(bad)} does not fit in {width} bits (0..{(1 << width) - 1})")
    return array.astype(np.uint64)


def _weight_bits(values) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind not in "fiu":
        raise ValueError(f"field 'weight' must hold numbers, got dtype {array.dtype}")
    return array.astype(np.float32).view(np.uint32).astype(np.uint64)


def _columns(insts) -> dict[str, object]:
    if isinstance(insts, np.ndarray) and insts.dtype.names is not None:
        return {name: insts[name] for name in insts.dtype.names}
    if isinstance(insts, Mapping):
        return dict(insts)
    raise TypeError(
        "pack() takes a structured array of INST_DTYPE or a mapping of field name to values, "
        f"got {type(insts).__name__}"
    )


def pack(insts) -> np.ndarray:
    """Pack instructions into 79-bit words.

    Parameters
    ----------
    insts : numpy structured array or mapping
        Field name to values (scalars broadcast). Every field of :data:`FIELDS` is needed;
        ``weight`` is a number (converted to float32), ``opcode`` an :class:`Opcode` value.

    Returns
    -------
    numpy.ndarray
        ``(N, 2)`` ``uint64``: column 0 holds bits 0-63, column 1 bits 64-78.

    Raises
    ------
    ValueError
        A field is missing or unknown, a value does not fit its field, or an opcode is not
        an :class:`Opcode`. The message names the field and the value.
    """
    columns = _columns(insts)
    names = {f.name for f in FIELDS}
    missing = [f.name for f in FIELDS if f.name not in columns]
    if missing:
        raise ValueError(f"missing field(s) {', '.join(map(repr, missing))}")
    unknown = sorted(set(columns) - names)
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(map(repr, unknown))}")

    values = {}
    for field in FIELDS:
        column = columns[field.name]
        if field.name == "weight":
            values[field.name] = _weight_bits(column)
        else:
            values[field.name] = _as_uint64(field.name, column, field.width)
    opcodes = values["opcode"]
    legal = np.isin(opcodes, _OPCODE_VALUES)
    if not legal.all():
        bad = int(opcodes[~legal].flat[0]) if opcodes.ndim else int(opcodes)
        raise ValueError(f"field 'opcode' value {bad} is not a defined Opcode")

    shape = np.broadcast_shapes(*(v.shape for v in values.values()))
    count = int(np.prod(shape)) if shape else 1
    words = np.zeros((count, 2), dtype=np.uint64)
    for field in FIELDS:
        v = np.broadcast_to(values[field.name], shape).reshape(count)
        _insert(words, v, field)
    return words


def _insert(words: np.ndarray, v: np.ndarray, field: Field) -> None:
    lo_bits = max(0, min(field.width, _WORD_BITS - field.offset))
    if lo_bits:
        words[:, 0] |= (v & np.uint64((1 << lo_bits) - 1)) << np.uint64(field.offset)
    if lo_bits < field.width:
        shift_hi = max(0, field.offset - _WORD_BITS)
        words[:, 1] |= (v >> np.uint64(lo_bits)) << np.uint64(shift_hi)


def _extract(words: np.ndarray, field: Field) -> np.ndarray:
    lo_bits = max(0, min(field.width, _WORD_BITS - field.offset))
    out = np.zeros(len(words), dtype=np.uint64)
    if lo_bits:
        out |= (words[:, 0] >> np.uint64(field.offset)) & np.uint64((1 << lo_bits) - 1)
    if lo_bits < field.width:
        shift_hi = max(0, field.offset - _WORD_BITS)
        hi = (words[:, 1] >> np.uint64(shift_hi)) & np.uint64((1 << (field.width - lo_bits)) - 1)
        out |= hi << np.uint64(lo_bits)
    return out


def _as_words(words) -> np.ndarray:
    array = np.asarray(words)
    if array.ndim != 2 or array.shape[1] != 2 or array.dtype != np.uint64:
        raise ValueError(f"packed words must be a (N, 2) uint64 array, got shape {array.shape} dtype {array.dtype}")
    if array.size and (array[:, 1] >> np.uint64(INST_BITS - _WORD_BITS)).any():
        raise ValueError(f"packed words have bits set above bit {INST_BITS - 1}")
    return array


def unpack(words) -> np.ndarray:
    """Unpack ``(N, 2)`` uint64 words into a structured array of :data:`INST_DTYPE`.

    Undefined opcodes are returned as they are (the hardware's job is to reject them).
    """
    words = _as_words(words)
    out = np.empty(len(words), dtype=INST_DTYPE)
    for field in FIELDS:
        raw = _extract(words, field)
        if field.name == "weight":
            out["weight"] = raw.astype(np.uint32).view(np.float32)
        else:
            out[field.name] = raw
    return out


def words_to_ints(words) -> list[int]:
    """Packed words as Python integers (bit 0 = LSB of the 79-bit word)."""
    words = _as_words(words)
    return [int(lo) | (int(hi) << _WORD_BITS) for lo, hi in words.tolist()]


def ints_to_words(ints: Iterable[int]) -> np.ndarray:
    """Python integers (each below 2**79) as ``(N, 2)`` uint64 packed words."""
    ints = list(ints)
    for value in ints:
        if not 0 <= value < (1 << INST_BITS):
            raise ValueError(f"instruction word {value:#x} does not fit in {INST_BITS} bits")
    mask = (1 << _WORD_BITS) - 1
    return np.array([(v & mask, v >> _WORD_BITS) for v in ints], dtype=np.uint64).reshape(-1, 2)


def _compose(fields: tuple[Field, ...], prefix: str, parts: Mapping[str, object]) -> np.ndarray:
    value = np.uint64(0)
    for field in fields:
        part = _as_uint64(f"{prefix}.{field.name}", parts.get(field.name, 0), field.width)
        value = value | (part << np.uint64(field.offset))
    return np.asarray(value).astype(np.uint32)


def eop_daddr(*, tag_mask, elements) -> np.ndarray:
    """daddr of an EOP returning the tags in ``tag_mask``, ``elements`` fp32 values each."""
    return _compose(EOP_FIELDS, "eop", {"tag_mask": tag_mask, "elements": elements})


def config_daddr(*, register: ConfigRegister, value) -> np.ndarray:
    """daddr of a CONFIG writing ``value`` to ``register``."""
    return _compose(CONFIG_FIELDS, "config", {"register": register, "value": value})


def daddr_compose(*, rank, bank_group, bank, row, column) -> np.ndarray:
    """Build daddr values from their sub-fields (arrays broadcast); checks every width."""
    parts = {"rank": rank, "bank_group": bank_group, "bank": bank, "row": row, "column": column}
    return _compose(DADDR_FIELDS, "daddr", parts)


def daddr_split(daddr) -> dict[str, np.ndarray]:
    """Split daddr values into their sub-fields (``uint32`` arrays)."""
    daddr = _as_uint64("daddr", daddr, 32)
    return {
        f.name: ((daddr >> np.uint64(f.offset)) & np.uint64((1 << f.width) - 1)).astype(np.uint32) for f in DADDR_FIELDS
    }
