"""Bad input: a clear exception naming the problem, and no change of device state (the next
valid call gives the answer and leaves the hint state of a device that never saw the bad one)."""

import subprocess
import sys

import numpy as np
import pytest

from hw.ddr4 import DDR4Geometry
from sw_driver import (
    Device,
    DeviceMemoryError,
    DriverError,
    TableExistsError,
    UnknownTableError,
    UnsupportedConfigError,
)

from .util import random_table, same_bits

SEED = 20260606
SMALL = DDR4Geometry(bank_groups=2, banks_per_group=2, rows=4)


def _device():
    rng = np.random.default_rng(SEED)
    dev = Device(channels=2, dimms_per_channel=1, ranks_per_dimm=2, geometry=SMALL)
    dev.load_table("t0", random_table(rng, 100, 20, False))
    dev.load_table("q0", random_table(rng, 100, 40, True))
    return dev


def _valid_calls(dev, step):
    rng = np.random.default_rng(SEED + step)
    return dev.run(
        [
            ("t0", rng.integers(0, 100, 12), np.array([3, 0, 9])),
            ("q0", rng.integers(0, 100, 6), np.array([6]), rng.standard_normal(6).astype(np.float32)),
        ]
    )


IDX = np.array([1, 2, 3, 4, 5, 6])
BAD_CALLS = [
    (
        "unknown table",
        lambda d: d.sls("nope", IDX, np.array([6])),
        UnknownTableError,
        "unknown table 'nope' (loaded: 't0', 'q0')",
    ),
    (
        "unknown table in run",
        lambda d: d.run([("t0", IDX, np.array([6])), ("t9", IDX, np.array([6]))]),
        UnknownTableError,
        "request 1: unknown table 't9' (loaded: 't0', 'q0')",
    ),
    (
        "index out of range",
        lambda d: d.sls("t0", np.array([1, 2, 100]), np.array([3])),
        IndexError,
        "table 't0': indices[2] = 100 is out of range for a table with 100 rows",
    ),
    (
        "negative index",
        lambda d: d.run([("q0", np.array([-1]), np.array([1]))]),
        IndexError,
        "request 0 (table 'q0'): indices[0] = -1 is out of range for a table with 100 rows",
    ),
    (
        "lengths do not add up",
        lambda d: d.sls("t0", IDX, np.array([2, 3])),
        ValueError,
        "table 't0': lengths sum to 5 but indices has 6 entries",
    ),
    (
        "negative length",
        lambda d: d.sls("t0", IDX, np.array([7, -1])),
        ValueError,
        "table 't0': lengths[1] = -1 is negative",
    ),
    (
        "offsets do not add up",
        lambda d: d.sls("t0", IDX, offsets=np.array([0, 4]), include_last_offset=True),
        ValueError,
        "table 't0': offsets[-1] = 4 must equal len(indices) = 6 when include_last_offset=True",
    ),
    (
        "decreasing offsets",
        lambda d: d.sls("t0", IDX, offsets=np.array([0, 4, 2])),
        ValueError,
        "table 't0': offsets must be non-decreasing: offsets[2] = 2 < offsets[1] = 4",
    ),
    (
        "lengths and offsets",
        lambda d: d.sls("t0", IDX, np.array([6]), offsets=np.array([0])),
        ValueError,
        "table 't0': give exactly one of lengths and offsets, got both",
    ),
    (
        "weights of the wrong length",
        lambda d: d.run([("t0", IDX, np.array([6]), np.ones(3, np.float32))]),
        ValueError,
        "request 0 (table 't0'): weights has 3 entries but indices has 6",
    ),
    (
        "integer weights",
        lambda d: d.sls("t0", IDX, np.array([6]), weights=np.ones(6, np.int64)),
        TypeError,
        "table 't0': weights must have a floating dtype, got int64",
    ),
    (
        "weighted mean",
        lambda d: d.sls("t0", IDX, np.array([6]), weights=np.ones(6, np.float32), mode="mean"),
        ValueError,
        "table 't0': weights are only supported with mode='sum' (as in torch.nn.functional.embedding_bag),"
        " got mode='mean'",
    ),
    (
        "float indices",
        lambda d: d.sls("t0", IDX.astype(float), np.array([6])),
        TypeError,
        "table 't0': indices must have an integer dtype, got float64",
    ),
    (
        "2-D indices",
        lambda d: d.sls("t0", IDX.reshape(2, 3), np.array([6])),
        ValueError,
        "table 't0': indices must be 1-D, got shape (2, 3)",
    ),
    (
        "unknown mode",
        lambda d: d.sls("t0", IDX, np.array([6]), mode="max"),
        ValueError,
        "table 't0': mode must be 'sum' or 'mean', got 'max'",
    ),
    (
        "short request tuple",
        lambda d: d.run([("t0", IDX)]),
        ValueError,
        "request 0 must be (table, indices, lengths), (table, indices, lengths, weights) or a mapping, "
        "got a tuple of 2",
    ),
    (
        "unknown request key",
        lambda d: d.run([{"table": "t0", "indices": IDX, "length": np.array([6])}]),
        ValueError,
        "request 0: unknown key(s) ['length']; the keys are table, indices, lengths, offsets, include_last_offset, "
        "weights, mode",
    ),
    ("requests not a list", lambda d: d.run("t0"), ValueError, "requests must be a list of requests, got str"),
    (
        "name loaded twice",
        lambda d: d.load_table("t0", np.ones((4, 4), np.float32)),
        TableExistsError,
        "table 't0' is already loaded",
    ),
    (
        "float64 table",
        lambda d: d.load_table("x", np.ones((4, 4))),
        TypeError,
        "table 'x': table must be float32 (rows, D) or uint8 fused 8-bit (rows, D+8), got float64",
    ),
    (
        "3-D table",
        lambda d: d.load_table("x", np.ones((4, 4, 4), np.float32)),
        ValueError,
        "table 'x': table must be 2-D (rows, D), got shape (4, 4, 4)",
    ),
    (
        "narrow 8-bit table",
        lambda d: d.load_table("x", np.ones((4, 8), np.uint8)),
        ValueError,
        "table 'x': table (uint8, fused 8-bit) must have at least 9 columns (D >= 1 bytes of q, then 8 bytes of "
        "scale and bias), got 8",
    ),
    (
        "fp32 rows too long for the PU",
        lambda d: d.load_table("x", np.ones((4, 113), np.float32)),
        UnsupportedConfigError,
        "table 'x': fp32 rows of D = 113 are longer than the PU takes (at most D = 112: "
        "7 lines of 64 B, 256 values per partial sum)",
    ),
    (
        "8-bit rows too long for the PU",
        lambda d: d.load_table("x", np.ones((4, 257 + 8), np.uint8)),
        UnsupportedConfigError,
        "table 'x': 8-bit rows of D = 257 are longer than the PU takes (at most D = 256: "
        "7 lines of 64 B, 256 values per partial sum)",
    ),
    (
        "table too large",
        lambda d: d.load_table("x", np.ones((128 * 100, 16), np.float32)),
        DeviceMemoryError,
        "table 'x' (12800 rows of 64 B) needs 819200 bytes (100 DRAM rows of 8192 B) but only 499712 bytes "
        "(61 DRAM rows) are free in device memory",
    ),
    (
        "bad table name",
        lambda d: d.load_table("", np.ones((4, 4), np.float32)),
        ValueError,
        "a table name must be a non-empty str, got ''",
    ),
    (
        "table with no rows",
        lambda d: d.load_table("z", np.zeros((0, 16), np.float32)),
        ValueError,
        "table 'z' has no rows",
    ),
    (
        "include_last_offset not a bool",
        lambda d: d.sls("t0", [0, 1], offsets=[0, 1, 2], include_last_offset="no"),
        TypeError,
        "table 't0': include_last_offset must be a bool, got 'no'",
    ),
    (
        "locate an unknown table",
        lambda d: d.locate("nope", [0]),
        UnknownTableError,
        "unknown table 'nope' (loaded: q0, t0)",
    ),
    (
        "locate a row outside the table",
        lambda d: d.locate("t0", [-1]),
        IndexError,
        "index -1 is out of range for a table of 100 rows",
    ),
]


@pytest.mark.parametrize(("what", "call", "kind", "message"), BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_input_is_refused_clearly_and_changes_no_state(what, call, kind, message):
    dev, twin = _device(), _device()
    _valid_calls(dev, 1), _valid_calls(twin, 1)
    state = (
        dev.row_model.last_row.copy(),
        dev.q8_state.copy(),
        dev.report,
        dev.placement.free_frames,
        dict(dev.tables),
        dev.image.rows_written,
    )
    with pytest.raises(kind) as error:
        call(dev)
    assert str(error.value) == message
    assert np.array_equal(dev.row_model.last_row, state[0]) and np.array_equal(dev.q8_state, state[1])
    assert dev.report is state[2] and dev.placement.free_frames == state[3]
    assert dev.tables == state[4] and dev.image.rows_written == state[5]
    for got, want in zip(_valid_calls(dev, 2), _valid_calls(twin, 2)):
        assert same_bits(got, want)
    assert np.array_equal(dev.row_model.last_row, twin.row_model.last_row)
    assert dev.report == twin.report


def test_driver_errors_share_a_base_class_and_the_builtin_one():
    assert issubclass(UnknownTableError, DriverError) and issubclass(UnknownTableError, LookupError)
    for cls in (TableExistsError, DeviceMemoryError, UnsupportedConfigError):
        assert issubclass(cls, DriverError) and issubclass(cls, ValueError)


BAD_DEVICES = [
    (
        dict(channels=3),
        ValueError,
        "channels must be a power of two from 1 to 16 (the address map is made of bit fields), got 3",
    ),
    (
        dict(dimms_per_channel=0),
        ValueError,
        "dimms_per_channel must be a power of two from 1 to 8 (the address map is made of bit fields), got 0",
    ),
    (
        dict(ranks_per_dimm=8),
        ValueError,
        "ranks_per_dimm must be 1, 2 or 4 (the PU takes 1, 2 or 4 ranks per DIMM), got 8",
    ),
    (
        dict(ranks_per_dimm=3),
        ValueError,
        "ranks_per_dimm must be 1, 2 or 4 (the PU takes 1, 2 or 4 ranks per DIMM), got 3",
    ),
    (
        dict(ranks_per_dimm=4.0),
        ValueError,
        "ranks_per_dimm must be 1, 2 or 4 (the PU takes 1, 2 or 4 ranks per DIMM), got 4.0",
    ),
    (dict(backend="fpga"), ValueError, "backend must be one of 'golden', 'rtl', 'perf', got 'fpga'"),
    (
        dict(backend="perf", backend_options={"cache": 1}),
        ValueError,
        "backend 'perf' has no option 'cache' (options: values, baseline)",
    ),
    (
        dict(backend="perf", backend_options={"values": 1}),
        ValueError,
        "backend option 'values' must be True or False, got 1",
    ),
    (dict(backend_options={"seed": 1}), ValueError, "backend 'golden' takes no backend_options, got ['seed']"),
    (
        dict(backend="rtl", backend_options={"inst_stall": 1.0}),
        ValueError,
        "backend option 'inst_stall' must be in [0, 1), got 1.0",
    ),
    (
        dict(backend="rtl", backend_options={"speed": 2}),
        ValueError,
        "backend 'rtl' has no option 'speed' (options: inst_stall, result_stall, seed)",
    ),
    (dict(timing=26), ValueError, "timing must be a hw.ddr4.DDR4Timing, got 26"),
    (dict(cache_size_bytes=1000), ValueError, "cache_size_bytes must be a power of two from 8192 to 1048576, got 1000"),
    (dict(cache_size_bytes=4096), ValueError, "cache_size_bytes must be a power of two from 8192 to 1048576, got 4096"),
    (
        dict(address_map=["byte", "row"]),
        ValueError,
        "address_map: missing field(s) ['column', 'channel', 'dimm', 'rank', 'bank_group', 'bank']",
    ),
    (dict(page_colouring="yes"), ValueError, "page_colouring must be True or False, got 'yes'"),
    (dict(table_aware=1), ValueError, "table_aware must be True or False, got 1"),
    (
        dict(hot_entry_threshold=0),
        ValueError,
        "hot_entry_threshold must be None (profiling off) or a positive int, got 0",
    ),
    (dict(dram_trace=5), ValueError, "dram_trace must be a path (str or os.PathLike) or None, got 5"),
    (dict(geometry="ddr4"), ValueError, "geometry must be a hw.ddr4.DDR4Geometry, got 'ddr4'"),
]


@pytest.mark.parametrize(("kwargs", "kind", "message"), BAD_DEVICES, ids=[str(k) for k, _, _ in BAD_DEVICES])
def test_bad_device_parameters_name_the_parameter(kwargs, kind, message):
    with pytest.raises(kind) as error:
        Device(**kwargs)
    assert str(error.value) == message


def test_dram_trace_is_stored_and_the_compile_path_does_not_import_verif(tmp_path):
    assert Device(dram_trace=tmp_path / "t.trace").dram_trace == tmp_path / "t.trace"
    code = (
        "import sys, numpy as np; from sw_driver import Device; d = Device(); "
        "d.load_table('t', np.ones((4, 16), np.float32)); d.sls('t', np.array([1]), np.array([1])); "
        "bad = [m for m in sys.modules if m == 'verif' or m.startswith('verif.')]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_call_that_fails_in_the_backend_commits_no_driver_state(monkeypatch):
    dev = _device()  # no call yet: every bank unused, Q8_ELEMENTS unknown
    rows, q8, report = dev.row_model.last_row.copy(), dev.q8_state.copy(), dev.report

    def broken(call, image):
        raise RuntimeError("backend failed")

    monkeypatch.setattr(dev.backend, "run", broken)
    with pytest.raises(RuntimeError, match="backend failed"):
        dev.sls("q0", np.array([7, 8]), np.array([2]))
    assert np.array_equal(dev.row_model.last_row, rows) and np.array_equal(dev.q8_state, q8)
    assert dev.report is report
