"""The physical address map: round trips, where each field sits, and its validation."""

import numpy as np
import pytest

from hw.ddr4 import DDR4Geometry
from hw.isa import daddr_split
from sw_driver.address_map import DEFAULT_ORDER, FIELD_NAMES, AddressMap

SEED = 20260101


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 1, 2), (2, 1, 4), (4, 2, 2)])
def test_random_round_trips_in_default_and_shuffled_orders(shape):
    rng = np.random.default_rng(SEED + sum(shape))
    print("seed", SEED + sum(shape))
    channels, dimms, ranks = shape
    orders = [DEFAULT_ORDER, ("byte",) + tuple(rng.permutation(FIELD_NAMES[1:]))]
    for order in orders:
        amap = AddressMap(order, channels=channels, dimms_per_channel=dimms, ranks_per_dimm=ranks)
        assert amap.total_bytes == channels * dimms * ranks * DDR4Geometry().rank_bytes
        address = rng.integers(0, amap.total_bytes, 5000)
        fields = amap.decode(address)
        assert np.array_equal(amap.encode(**fields), address)
        counts = {
            "byte": 8,
            "column": 1024,
            "channel": channels,
            "dimm": dimms,
            "rank": ranks,
            "bank_group": 4,
            "bank": 4,
            "row": 65536,
        }
        for name, count in counts.items():
            assert fields[name].min() >= 0 and fields[name].max() < count
        random_fields = {name: rng.integers(0, count, 100) for name, count in counts.items()}
        assert all(np.array_equal(amap.decode(amap.encode(**random_fields))[n], v) for n, v in random_fields.items())


def test_default_order_keeps_a_dram_row_contiguous_and_rotates_rows_over_channels_dimms_ranks_banks():
    amap = AddressMap(channels=2, dimms_per_channel=2, ranks_per_dimm=2)
    within = amap.decode(np.arange(8192))
    assert (within["byte"] == np.arange(8192) % 8).all() and (within["column"] == np.arange(8192) // 8).all()
    assert all((within[n] == 0).all() for n in ("channel", "dimm", "rank", "bank_group", "bank", "row"))
    rows = amap.decode(np.arange(0, 8192 * 2 * 2 * 2 * 16 * 2, 8192))
    k = np.arange(rows["row"].size)
    expected = {
        "channel": k % 2,
        "dimm": k // 2 % 2,
        "rank": k // 4 % 2,
        "bank_group": k // 8 % 4,
        "bank": k // 32 % 4,
        "row": k // 128,
    }
    for name, values in expected.items():
        assert np.array_equal(rows[name], values), name
    assert amap.widths == {
        "byte": 3,
        "column": 10,
        "channel": 1,
        "dimm": 1,
        "rank": 1,
        "bank_group": 2,
        "bank": 2,
        "row": 16,
    }


def test_a_custom_order_puts_the_fields_where_it_says():
    order = ("byte", "channel", "column", "rank", "bank", "bank_group", "row", "dimm")
    amap = AddressMap(order, channels=2, dimms_per_channel=2, ranks_per_dimm=4)
    assert amap.encode(byte=0, column=0, channel=1, dimm=0, rank=0, bank_group=0, bank=0, row=0) == 8
    assert amap.encode(byte=0, column=1, channel=0, dimm=0, rank=0, bank_group=0, bank=0, row=0) == 16
    assert amap.encode(byte=0, column=0, channel=0, dimm=0, rank=1, bank_group=0, bank=0, row=0) == 1 << 14
    assert amap.encode(byte=0, column=0, channel=0, dimm=1, rank=0, bank_group=0, bank=0, row=0) == 1 << 36
    # Frames are numbered by the non-column fields in map order: channel first here.
    first = amap.frame.decode(np.arange(4))
    assert list(first["channel"]) == [0, 1, 0, 1] and list(first["rank"]) == [0, 0, 1, 1]


def test_daddr_comes_from_hw_isa():
    rng = np.random.default_rng(SEED)
    parts = {
        "rank": rng.integers(0, 4, 50),
        "bank_group": rng.integers(0, 4, 50),
        "bank": rng.integers(0, 4, 50),
        "row": rng.integers(0, 65536, 50),
        "column": rng.integers(0, 128, 50) * 8,
    }
    split = daddr_split(AddressMap.daddr(**parts))
    assert all(np.array_equal(split[n], v) for n, v in parts.items())


@pytest.mark.parametrize(
    ("order", "message"),
    [
        (("byte", "column", "channel", "dimm", "rank", "bank_group", "bank"), "address_map: missing field(s) ['row']"),
        (
            ("byte", "column", "chanel", "dimm", "rank", "bank_group", "bank", "row"),
            "address_map: unknown field(s) ['chanel']; the fields are byte, column, channel, dimm, rank, bank_group, "
            "bank, row",
        ),
        (
            ("byte", "column", "column", "dimm", "rank", "bank_group", "bank", "row"),
            "address_map: field(s) ['column'] appear more than once",
        ),
        (
            ("column", "byte", "channel", "dimm", "rank", "bank_group", "bank", "row"),
            "address_map: 'byte' must be the lowest field (the rank bus is 8 B wide), got 'column' first",
        ),
        (
            "byte,column",
            "address_map must be a sequence of field names (LSB first) or an AddressMap, got 'byte,column'",
        ),
    ],
)
def test_bad_orders_are_refused_with_the_reason(order, message):
    with pytest.raises(ValueError) as error:
        AddressMap(order)
    assert str(error.value) == message


def test_bad_values_are_refused():
    amap = AddressMap(ranks_per_dimm=2)
    with pytest.raises(ValueError) as error:
        amap.encode(byte=0, column=0, channel=0, dimm=0, rank=2, bank_group=0, bank=0, row=0)
    assert str(error.value) == "physical address field 'rank' value 2 is out of range 0..1"
    with pytest.raises(ValueError) as error:
        amap.decode(amap.total_bytes)
    assert str(error.value) == f"physical address {amap.total_bytes} is out of range 0..{amap.total_bytes - 1}"
    with pytest.raises(ValueError) as error:
        amap.decode(np.array([1.5]))
    assert str(error.value) == "physical address must be integers, got dtype float64"
    with pytest.raises(ValueError) as error:
        AddressMap(channels=3)
    assert str(error.value) == "channels must be a positive power of two for a bit-field address map, got 3"
