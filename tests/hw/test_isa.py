"""NMP-Inst format: numpy pack/unpack, agreement with the Amaranth layout, errors."""

import re

import numpy as np
import pytest
from amaranth.lib import data

from hw.isa import (
    DADDR_FIELDS,
    DADDR_LAYOUT,
    FIELDS,
    INST_BITS,
    INST_DTYPE,
    NMP_INST_LAYOUT,
    Opcode,
    daddr_compose,
    daddr_split,
    ints_to_words,
    pack,
    unpack,
    words_to_ints,
)


def random_insts(n, seed=0):
    rng = np.random.default_rng(seed)
    insts = np.zeros(n, INST_DTYPE)
    insts["opcode"] = rng.choice([op.value for op in Opcode], n)
    insts["ddr_cmd"] = rng.integers(0, 8, n)
    insts["daddr"] = rng.integers(0, 1 << 32, n, dtype=np.uint64)
    insts["vsize"] = rng.integers(0, 8, n)
    insts["weight"] = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32).view(np.float32)
    insts["locality"] = rng.integers(0, 2, n)
    insts["psum_tag"] = rng.integers(0, 16, n)
    return insts


def test_fields_tile_79_bits_without_gaps():
    assert INST_BITS == 79
    offset = 0
    for field in FIELDS:
        assert field.offset == offset
        offset += field.width
    assert offset == 79
    assert sum(f.width for f in DADDR_FIELDS) == 32
    assert NMP_INST_LAYOUT.size == 79
    assert DADDR_LAYOUT.size == 32


def test_round_trip_random_instructions_bit_exact():
    insts = random_insts(20_000)
    back = unpack(pack(insts))
    # Compare raw bytes so NaN weights (random bit patterns) must round-trip exactly too.
    assert back.tobytes() == insts.tobytes()


def test_numpy_packing_matches_the_amaranth_layout():
    insts = random_insts(300, seed=1)
    ints = words_to_ints(pack(insts))
    for inst, word in zip(insts, ints):
        fields = {name: int(inst[name]) for name in INST_DTYPE.names if name != "weight"}
        fields["weight"] = int(np.float32(inst["weight"]).view(np.uint32))
        fields["opcode"] = Opcode(fields["opcode"])
        fields["daddr"] = daddr_split(fields["daddr"])
        fields["daddr"] = {k: int(v) for k, v in fields["daddr"].items()}
        const = data.Const(NMP_INST_LAYOUT, word)
        assert const.as_value().value == word
        assert NMP_INST_LAYOUT.const(fields).as_value().value == word


def test_field_positions_are_as_documented():
    word = words_to_ints(
        pack(
            {
                "opcode": Opcode.WSUM,
                "ddr_cmd": 0b101,
                "daddr": 0xDEADBEEF,
                "vsize": 3,
                "weight": 1.0,
                "locality": 1,
                "psum_tag": 0xA,
            }
        )
    )[0]
    assert word & 0xF == Opcode.WSUM.value
    assert (word >> 4) & 0x7 == 0b101
    assert (word >> 7) & 0xFFFFFFFF == 0xDEADBEEF
    assert (word >> 39) & 0x7 == 3
    assert (word >> 42) & 0xFFFFFFFF == 0x3F800000
    assert (word >> 74) & 1 == 1
    assert word >> 75 == 0xA


def test_scalars_broadcast_against_arrays():
    words = pack(
        {
            "opcode": Opcode.SUM,
            "ddr_cmd": 0,
            "daddr": np.arange(5),
            "vsize": 2,
            "weight": 1.0,
            "locality": 0,
            "psum_tag": 7,
        }
    )
    insts = unpack(words)
    assert list(insts["daddr"]) == [0, 1, 2, 3, 4]
    assert set(insts["psum_tag"]) == {7}


def test_int_conversion_round_trip():
    words = pack(random_insts(1000, seed=2))
    assert np.array_equal(ints_to_words(words_to_ints(words)), words)


def valid_fields(**overrides):
    fields = {"opcode": Opcode.SUM, "ddr_cmd": 0, "daddr": 0, "vsize": 1, "weight": 1.0, "locality": 0, "psum_tag": 0}
    fields.update(overrides)
    return fields


@pytest.mark.parametrize(
    "name,value,width",
    [
        ("ddr_cmd", 8, 3),
        ("daddr", 1 << 32, 32),
        ("vsize", 8, 3),
        ("locality", 2, 1),
        ("psum_tag", 16, 4),
        ("psum_tag", -1, 4),
        ("opcode", 16, 4),
    ],
)
def test_value_that_does_not_fit_raises_naming_field_and_value(name, value, width):
    message = f"field {name!r} value {value} does not fit in {width} bits (0..{(1 << width) - 1})"
    with pytest.raises(ValueError, match=re.escape(message)):
        pack(valid_fields(**{name: np.array([0, value, 1], dtype=np.int64)}))


@pytest.mark.parametrize("opcode", [0, 5, 7, 0xB, 0xF])
def test_unknown_opcode_raises(opcode):
    with pytest.raises(ValueError, match=re.escape(f"field 'opcode' value {opcode} is not a defined Opcode")):
        pack(valid_fields(opcode=opcode))


def test_missing_unknown_and_non_integer_fields_raise():
    fields = valid_fields()
    del fields["vsize"]
    with pytest.raises(ValueError, match=re.escape("missing field(s) 'vsize'")):
        pack(fields)
    with pytest.raises(ValueError, match=re.escape("unknown field(s) 'size'")):
        pack(valid_fields(size=1))
    with pytest.raises(ValueError, match=re.escape("field 'daddr' must hold integers, got dtype float64")):
        pack(valid_fields(daddr=np.array([1.5])))
    with pytest.raises(TypeError, match="pack\\(\\) takes a structured array"):
        pack([1, 2, 3])


def test_unpack_rejects_malformed_words():
    with pytest.raises(ValueError, match=re.escape("packed words must be a (N, 2) uint64 array")):
        unpack(np.zeros((3, 3), np.uint64))
    with pytest.raises(ValueError, match=re.escape("packed words have bits set above bit 78")):
        unpack(np.array([[0, 1 << 15]], np.uint64))
    with pytest.raises(ValueError, match=re.escape("does not fit in 79 bits")):
        ints_to_words([1 << 79])


def test_unpack_keeps_undefined_opcodes_for_the_hardware_to_reject():
    word = ints_to_words([0x5])
    assert unpack(word)["opcode"][0] == 5


def test_daddr_compose_and_split():
    rng = np.random.default_rng(3)
    parts = {f.name: rng.integers(0, 1 << f.width, 100) for f in DADDR_FIELDS}
    daddr = daddr_compose(**parts)
    assert daddr.dtype == np.uint32
    split = daddr_split(daddr)
    for name, values in parts.items():
        assert np.array_equal(split[name], values)
    # rank is the top two bits
    assert int(daddr_compose(rank=3, bank_group=0, bank=0, row=0, column=0)) == 3 << 30
    with pytest.raises(ValueError, match=re.escape("field 'daddr.row' value 65536 does not fit in 16 bits")):
        daddr_compose(rank=0, bank_group=0, bank=0, row=1 << 16, column=0)


def test_control_operands_in_daddr():
    from hw.isa import CONFIG_LAYOUT, EOP_LAYOUT, ConfigRegister, config_daddr, eop_daddr

    daddr = int(eop_daddr(tag_mask=0x8001, elements=112))
    assert daddr == 0x8001 | (112 << 16)
    assert EOP_LAYOUT.const({"tag_mask": 0x8001, "elements": 112}).as_value().value == daddr
    daddr = int(config_daddr(register=ConfigRegister.Q8_ELEMENTS, value=248))
    assert daddr == 248
    assert CONFIG_LAYOUT.size == EOP_LAYOUT.size == 32
    with pytest.raises(ValueError, match=re.escape("field 'eop.elements' value 1024 does not fit in 10 bits")):
        eop_daddr(tag_mask=1, elements=1024)
    with pytest.raises(ValueError, match=re.escape("field 'config.value' value 16777216 does not fit in 24 bits")):
        config_daddr(register=ConfigRegister.Q8_ELEMENTS, value=1 << 24)


def test_fused8_rows_to_device_layout():
    from hw.isa import Q8_HEADER_BYTES, fused8_to_device
    from sim_models.sls import quantize_fused8

    fused = quantize_fused8(np.random.default_rng(4).standard_normal((5, 12)).astype(np.float32))
    device = fused8_to_device(fused)
    assert device.shape == fused.shape
    assert np.array_equal(device[:, :Q8_HEADER_BYTES], fused[:, 12:])  # scale, bias first
    assert np.array_equal(device[:, Q8_HEADER_BYTES:], fused[:, :12])  # then the D bytes
    with pytest.raises(ValueError, match=re.escape("fused 8-bit rows must be uint8 (rows, D+8) with D >= 1")):
        fused8_to_device(np.zeros((2, 8), np.uint8))
