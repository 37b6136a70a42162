"""Placement: tables in whole DRAM rows, never overlapping, vectors inside one row, page
colouring, the device image, and refusal of a table that does not fit."""

import numpy as np
import pytest

from hw.ddr4 import DDR4Geometry
from hw.isa import fused8_to_device
from sw_driver import Device, DeviceMemoryError

from .util import random_table

SEED = 20260202
SMALL = DDR4Geometry(bank_groups=2, banks_per_group=2, rows=4)  # 16 DRAM rows of 8 KiB per rank


def _load_random_tables(dev, rng, count):
    tables = {}
    for k in range(count):
        quantized = bool(rng.integers(0, 2))
        dim = int(rng.integers(1, 100))
        tables[f"t{k}"] = random_table(rng, int(rng.integers(1, 400)), dim, quantized)
        dev.load_table(f"t{k}", tables[f"t{k}"])
    return tables


@pytest.mark.parametrize("colouring", [False, True])
def test_tables_never_overlap_and_no_vector_crosses_a_dram_row(colouring):
    rng = np.random.default_rng(SEED + colouring)
    print("seed", SEED + colouring)
    dev = Device(channels=2, dimms_per_channel=2, ranks_per_dimm=2, page_colouring=colouring)
    tables = _load_random_tables(dev, rng, 12)
    used = set()
    for name, table in tables.items():
        placement = dev.tables[name]
        where = placement.locate(np.arange(table.shape[0]))
        keys = set(zip(*(placement.coords[n].tolist() for n in placement.coords)))
        assert len(keys) == placement.frames.size and not keys & used, name
        used |= keys
        vsize = placement.layout.vsize
        assert (where["column"] % 8 == 0).all()
        assert (where["column"] // 8 + vsize <= 128).all(), name
        # Two rows of the table never share a line.
        lines = set(zip(*(where[n].tolist() for n in where)))
        assert len(lines) == table.shape[0]


def test_the_image_holds_each_row_in_device_layout_at_its_place_zero_padded():
    rng = np.random.default_rng(SEED + 2)
    dev = Device(channels=2, ranks_per_dimm=4)
    tables = _load_random_tables(dev, rng, 6)
    for name, table in tables.items():
        placement = dev.tables[name]
        layout = placement.layout
        device = fused8_to_device(table) if layout.quantized else table.view(np.uint8)
        where = placement.locate(np.arange(table.shape[0]))
        for i in rng.integers(0, table.shape[0], 20).tolist():
            view = dev.image.rank(int(where["channel"][i]), int(where["dimm"][i]), int(where["rank"][i]))
            got = view.read(
                bank_group=int(where["bank_group"][i]),
                bank=int(where["bank"][i]),
                row=int(where["row"][i]),
                column=int(where["column"][i]),
                length=64 * layout.vsize,
            )
            got = np.frombuffer(got, np.uint8)
            assert np.array_equal(got[: layout.row_bytes], device[i]) and not got[layout.row_bytes :].any()
            assert view.unwritten_reads == 0


def test_rows_fill_dram_rows_in_order_and_rotate_over_channels_and_ranks():
    dev = Device(channels=2, ranks_per_dimm=2)
    dev.load_table("t", np.zeros((128 // 2 * 5, 20), np.float32))  # D = 20: vsize 2, 64 per row
    placement = dev.tables["t"]
    assert placement.per_frame == 64 and list(placement.frames) == [0, 1, 2, 3, 4]
    where = placement.locate(np.array([0, 1, 63, 64, 128, 192, 256]))
    assert list(where["column"]) == [0, 16, 63 * 16, 0, 0, 0, 0]
    assert list(where["channel"]) == [0, 0, 0, 1, 0, 1, 0] and list(where["rank"]) == [0, 0, 0, 0, 1, 1, 0]
    assert list(where["bank_group"]) == [0, 0, 0, 0, 0, 0, 1]
    dev.load_table("u", np.zeros((1, 16), np.float32))
    assert list(dev.tables["u"].frames) == [5]  # the next free DRAM row: tables do not share rows


def test_page_colouring_puts_each_table_on_one_rank_round_robin():
    dev = Device(channels=2, dimms_per_channel=1, ranks_per_dimm=2, page_colouring=True)
    ranks = []
    for k in range(6):
        dev.load_table(f"t{k}", np.ones((1000, 32), np.float32))
        coords = dev.tables[f"t{k}"].coords
        placed = {(c, d, r) for c, d, r in zip(coords["channel"], coords["dimm"], coords["rank"])}
        assert len(placed) == 1
        ranks.append(placed.pop())
    assert ranks == [(0, 0, 0), (0, 0, 1), (1, 0, 0), (1, 0, 1), (0, 0, 0), (0, 0, 1)]
    # The least used rank takes the next table: a large one on rank (1, 0, 0), then (1, 0, 1).
    dev.load_table("big", np.ones((5000, 32), np.float32))
    coords = dev.tables["big"].coords
    assert (int(coords["channel"][0]), int(coords["rank"][0])) == (1, 0)
    dev.load_table("next", np.ones((10, 32), np.float32))
    assert (int(dev.tables["next"].coords["channel"][0]), int(dev.tables["next"].coords["rank"][0])) == (1, 1)


@pytest.mark.parametrize("colouring", [False, True])
def test_a_table_larger_than_the_free_memory_is_refused_and_nothing_is_allocated(colouring):
    dev = Device(ranks_per_dimm=2, geometry=SMALL, page_colouring=colouring)  # 32 DRAM rows in all
    dev.load_table("a", np.ones((128 * 12, 16), np.float32))  # 12 DRAM rows
    free = dev.placement.free_frames
    with pytest.raises(DeviceMemoryError) as error:
        dev.load_table("b", np.ones((128 * 25 - 3, 16), np.float32))
    if colouring:
        message = (
            "table 'b' (3197 rows of 64 B) needs 204800 bytes (25 DRAM rows of 8192 B) but only "
            "131072 bytes (16 DRAM rows) are free on the emptiest rank (page colouring puts a table "
            "on one rank)"
        )
    else:
        message = (
            "table 'b' (3197 rows of 64 B) needs 204800 bytes (25 DRAM rows of 8192 B) but only "
            "163840 bytes (20 DRAM rows) are free in device memory"
        )
    assert str(error.value) == message
    assert dev.placement.free_frames == free and "b" not in dev.tables
    dev.load_table("b", np.ones((128 * 4, 16), np.float32))  # fits
    assert dev.placement.free_frames == free - 4
