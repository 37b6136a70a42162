"""The sparse rank image: reads return what was written, bounds are checked."""

import re

import numpy as np
import pytest

from hw.ddr4 import DDR4Geometry
from verif.rank_image import RankImage


def test_write_then_read_bursts_and_partial_rows():
    image = RankImage()
    data = np.arange(256, dtype=np.uint32).view(np.uint8)  # 1 KiB
    image.write(bank_group=2, bank=1, row=40000, column=64, data=data)
    assert image.read(bank_group=2, bank=1, row=40000, column=64, length=1024) == data.tobytes()
    assert image.read_burst(bank_group=2, bank=1, row=40000, column=72) == data[64:128].tobytes()
    assert image.rows_written == 1
    assert image.unwritten_reads == 0


def test_unwritten_rows_read_as_zero_and_are_counted():
    image = RankImage()
    assert image.read_burst(bank_group=0, bank=0, row=1, column=0) == bytes(64)
    assert image.unwritten_reads == 1
    assert image.rows_written == 0


def test_rows_are_independent():
    image = RankImage()
    image.write(bank_group=0, bank=0, row=5, column=0, data=b"\x01" * 64)
    image.write(bank_group=0, bank=1, row=5, column=0, data=b"\x02" * 64)
    assert image.read_burst(bank_group=0, bank=0, row=5, column=0) == b"\x01" * 64
    assert image.read_burst(bank_group=0, bank=1, row=5, column=0) == b"\x02" * 64


def test_bounds_and_types_are_checked():
    image = RankImage()
    g = DDR4Geometry()
    with pytest.raises(ValueError, match=re.escape("64 bytes at column 1017 run past the end of the 8192-byte row")):
        image.write(bank_group=0, bank=0, row=0, column=1017, data=bytes(64))
    with pytest.raises(ValueError, match=re.escape("no bank group 4 bank 0 row 0 in this rank")):
        image.read_burst(bank_group=g.bank_groups, bank=0, row=0, column=0)
    with pytest.raises(TypeError, match=re.escape("data must be bytes or a uint8 array, got dtype float32")):
        image.write(bank_group=0, bank=0, row=0, column=0, data=np.zeros(4, np.float32))
