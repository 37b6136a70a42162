"""DRAMsim3 / Ramulator 2 trace export of the host-baseline read stream.

The traces are parsed back as the simulators parse them (DRAMsim3 ``src/common.cc``
``operator>>``: hex address, op, decimal cycle; Ramulator 2 ``LoadStoreTrace``: exactly two
tokens split on one space) and their addresses decoded as the simulators decode them with
the address mapping the module proposes (DRAMsim3 ``Config::AddressMapping``; Ramulator 2
``ChRaBaRoCo`` / ``RoBaRaCoCh``), against :func:`sim_models.host_reads.host_reads`.
Random stimulus: every test prints its seed; ``RECNMP_SEED=<n>`` replaces the default.
"""

import os
import re

import numpy as np
import pytest

from sim_models.host_reads import host_reads
from sim_models.trace_export import (
    dramsim3_address_mapping,
    dramsim3_text,
    export_traces,
    main,
    ramulator2_address_mapper,
    ramulator2_text,
    write_dramsim3_trace,
    write_ramulator2_trace,
)
from sim_models.workloads import load_model_tables, model_workload
from sw_driver import Device
from sw_driver.address_map import AddressMap


def seed_of(default: int) -> int:
    seed = int(os.environ.get("RECNMP_SEED", default))
    print(f"seed {seed} (RECNMP_SEED=<n> replaces it)")
    return seed


def small_call(seed, *, channels=1, dimms=1, ranks=2, order=None, dim=24, generator="zipf"):
    dev = Device(channels, dimms, ranks, address_map=order)
    options = {"alpha": 1.0} if generator == "zipf" else {}
    workload = model_workload(
        "RMC1-small", batch=8, seed=seed, rows=20_000, dim=dim, generator=generator, pooling=(5, 15), **options
    )
    load_model_tables(dev, workload, values=False)
    return dev, dev.compile([w.request for w in workload])


def parse_dramsim3(text: str):
    addresses, ops, cycles = [], [], []
    for line in text.splitlines():
        addr, op, cycle = line.split()  # operator>> skips any whitespace
        addresses.append(int(addr, 16))
        ops.append(op)
        cycles.append(int(cycle))
    return np.array(addresses, np.int64), ops, np.array(cycles, np.int64)


def parse_ramulator2(text: str):
    out = []
    for line in text.split("\n")[:-1]:
        tokens = line.split(" ")  # tokenize(tokens, line, " "): empty tokens count
        assert len(tokens) == 2 and tokens[0] == "LD" and tokens[1].startswith("0x"), line
        out.append(int(tokens[1][2:], 16))
    return np.array(out, np.int64)


def test_dramsim3_trace_is_the_host_read_stream(tmp_path):
    seed = seed_of(31)
    dev, call = small_call(seed)
    reads = host_reads(call.lookups, dev.address_map)
    assert reads.size == int(call.lookups["vsize"].astype(np.int64).sum()) and reads.size > 500
    path = tmp_path / "d3.trace"
    assert write_dramsim3_trace(path, call, dev.address_map) == reads.size
    text = path.read_text()
    assert text.endswith("\n") and all(re.fullmatch(r"0x[0-9a-f]+ READ 0", line) for line in text.splitlines())
    addresses, ops, cycles = parse_dramsim3(text)
    assert np.array_equal(addresses, reads["address"]) and set(ops) == {"READ"} and not cycles.any()
    paced = parse_dramsim3(dramsim3_text(reads, interval=3).decode())[2]
    assert np.array_equal(paced, 3 * np.arange(reads.size))


def test_ramulator2_trace_is_the_host_read_stream(tmp_path):
    seed = seed_of(32)
    dev, call = small_call(seed, channels=2, ranks=4)
    reads = host_reads(call.lookups, dev.address_map)
    path = tmp_path / "r2.trace"
    assert write_ramulator2_trace(path, call, dev.address_map) == reads.size
    assert np.array_equal(parse_ramulator2(path.read_text()), reads["address"])


def test_hex_and_decimal_digits_by_hand():
    reads = np.zeros(4, [("address", np.int64)])
    reads["address"] = [0, 0x40, 0xABCDEF0, (1 << 40) - 64]
    assert dramsim3_text(reads, interval=7).decode().splitlines() == [
        "0x0 READ 0",
        "0x40 READ 7",
        "0xabcdef0 READ 14",
        "0xffffffffc0 READ 21",
    ]
    assert ramulator2_text(reads).decode() == "LD 0x0\nLD 0x40\nLD 0xabcdef0\nLD 0xffffffffc0\n"
    assert dramsim3_text(reads[:0]) == b"" and ramulator2_text(reads[:0]) == b""
    with pytest.raises(ValueError, match=re.escape("interval must be a non-negative int, got -1")):
        dramsim3_text(reads, interval=-1)
    with pytest.raises(TypeError, match="reads must be sim_models.host_reads.HOST_READ_DTYPE records"):
        dramsim3_text(np.arange(3))


# -- the simulators' decoders, from their sources ------------------------------------------------


def dramsim3_decode(addresses, mapping, widths):
    """DRAMsim3 ``Config::SetAddressMapping`` + ``AddressMapping`` (shift_bits = 6 for 64 B)."""
    tokens = [mapping[i : i + 2] for i in range(0, 12, 2)]
    pos, field_pos = 0, {}
    for token in reversed(tokens):
        field_pos[token] = pos
        pos += widths[token]
    a = addresses >> 6
    return {t: (a >> field_pos[t]) & ((1 << widths[t]) - 1) for t in tokens}


def ramulator2_decode(addresses, mapper, bits):
    """Ramulator 2 ``ChRaBaRoCo`` / ``RoBaRaCoCh`` (levels channel, rank, bankgroup, bank, row, column)."""
    a = addresses >> 6  # tx_offset: prefetch 8 x 64-bit channel
    out = {}

    def take(level):
        nonlocal a
        out[level] = a & ((1 << bits[level]) - 1)
        a = a >> bits[level]

    order = ("co", "ro", "ba", "bg", "ra", "ch") if mapper == "ChRaBaRoCo" else ("ch", "co", "ra", "bg", "ba", "ro")
    for level in order:
        take(level)
    return out


def our_levels(reads, amap):
    fields = amap.decode(reads["address"])
    return fields


def check_ranks(decoded_rank, fields):
    pairs = np.unique(np.stack([fields["channel"], fields["dimm"], fields["rank"]]), axis=1).shape[1]
    combos = np.unique(np.stack([fields["channel"], decoded_rank]), axis=1).shape[1]
    triples = np.unique(np.stack([fields["channel"], fields["dimm"], fields["rank"], decoded_rank]), axis=1).shape[1]
    assert pairs == combos == triples  # the simulator's rank is a relabelling of (dimm, rank)


ORDERS = [
    (1, 1, 2, None),
    (2, 2, 2, None),
    (4, 1, 4, ("byte", "column", "bank_group", "channel", "rank", "dimm", "bank", "row")),
    (2, 2, 1, ("byte", "column", "row", "bank", "bank_group", "rank", "dimm", "channel")),
]


@pytest.mark.parametrize("channels, dimms, ranks, order", ORDERS)
def test_dramsim3_mapping_decodes_the_same_coordinates(channels, dimms, ranks, order):
    seed = seed_of(33)
    dev, call = small_call(seed, channels=channels, dimms=dimms, ranks=ranks, order=order, dim=40)
    amap = dev.address_map
    reads = host_reads(call.lookups, amap)
    mapping = dramsim3_address_mapping(amap)
    print(amap, mapping)
    assert re.fullmatch(r"(ch|ra|bg|ba|ro|co){6}", mapping) and len(set(re.findall("..", mapping))) == 6
    g = amap.geometry
    widths = {
        "ch": int(np.log2(channels)),
        "ra": int(np.log2(dimms * ranks)),
        "bg": int(np.log2(g.bank_groups)),
        "ba": int(np.log2(g.banks_per_group)),
        "ro": int(np.log2(g.rows)),
        "co": int(np.log2(g.columns)) - 3,
    }
    got = dramsim3_decode(parse_dramsim3(dramsim3_text(reads).decode())[0], mapping, widths)
    assert np.array_equal(got["ch"], reads["channel"])
    assert np.array_equal(got["bg"], reads["bank_group"]) and np.array_equal(got["ba"], reads["bank"])
    assert np.array_equal(got["ro"], reads["row"]) and np.array_equal(got["co"], reads["line"])
    check_ranks(got["ra"], our_levels(reads, amap))


def test_dramsim3_mapping_of_the_default_order():
    for channels, dimms, ranks in ((1, 1, 1), (2, 1, 2), (4, 2, 4)):
        amap = AddressMap(channels=channels, dimms_per_channel=dimms, ranks_per_dimm=ranks)
        assert dramsim3_address_mapping(amap) == "robabgrachco"
    amap = AddressMap(("byte", "column", "dimm", "bank", "rank", "bank_group", "channel", "row"), ranks_per_dimm=2)
    assert dramsim3_address_mapping(amap) == "rochbgrabaco"  # the rank level where the rank bits are


@pytest.mark.parametrize(
    "channels, dimms, ranks, order, mapper",
    [
        (1, 1, 2, None, "RoBaRaCoCh"),
        (1, 2, 2, None, "RoBaRaCoCh"),
        (2, 2, 2, ("byte", "column", "row", "bank", "bank_group", "rank", "dimm", "channel"), "ChRaBaRoCo"),
        (4, 1, 1, ("byte", "column", "row", "bank", "bank_group", "rank", "dimm", "channel"), "ChRaBaRoCo"),
    ],
)
def test_ramulator2_mapper_decodes_the_same_coordinates(channels, dimms, ranks, order, mapper):
    seed = seed_of(34)
    dev, call = small_call(seed, channels=channels, dimms=dimms, ranks=ranks, order=order)
    amap = dev.address_map
    assert ramulator2_address_mapper(amap) == mapper
    reads = host_reads(call.lookups, amap)
    g = amap.geometry
    bits = {
        "ch": int(np.log2(channels)),
        "ra": int(np.log2(dimms * ranks)),
        "bg": int(np.log2(g.bank_groups)),
        "ba": int(np.log2(g.banks_per_group)),
        "ro": int(np.log2(g.rows)),
        "co": int(np.log2(g.columns)) - 3,
    }
    got = ramulator2_decode(parse_ramulator2(ramulator2_text(reads).decode()), mapper, bits)
    assert np.array_equal(got["ch"], reads["channel"])
    assert np.array_equal(got["bg"], reads["bank_group"]) and np.array_equal(got["ba"], reads["bank"])
    assert np.array_equal(got["ro"], reads["row"]) and np.array_equal(got["co"], reads["line"])
    check_ranks(got["ra"], our_levels(reads, amap))


def test_mappings_that_cannot_be_expressed():
    split_column = AddressMap(("byte", "channel", "column", "dimm", "rank", "bank_group", "bank", "row"), channels=2)
    with pytest.raises(ValueError) as info:
        dramsim3_address_mapping(split_column)
    assert info.value.args[0] == (
        "DRAMsim3 needs the column bits directly above the byte offset; the address map's order is "
        "['byte', 'channel', 'column', 'dimm', 'rank', 'bank_group', 'bank', 'row']"
    )
    apart = AddressMap(
        ("byte", "column", "dimm", "bank", "rank", "bank_group", "channel", "row"),
        dimms_per_channel=2,
        ranks_per_dimm=2,
    )
    with pytest.raises(ValueError) as info:
        dramsim3_address_mapping(apart)
    assert info.value.args[0] == (
        "DRAMsim3 has one rank level: 'dimm' and 'rank' must be adjacent in the address map, got "
        "['byte', 'column', 'dimm', 'bank', 'rank', 'bank_group', 'channel', 'row']"
    )
    with pytest.raises(ValueError) as info:
        ramulator2_address_mapper(AddressMap(channels=2, ranks_per_dimm=2))
    assert info.value.args[0] == (
        "no Ramulator 2 linear mapper decodes this address map (levels above the line offset, LSB first: "
        "['co', 'ch', 'ra', 'bg', 'ba', 'ro']); the mappers are RoBaRaCoCh ['ch', 'co', 'ra', 'bg', 'ba', 'ro'], "
        "ChRaBaRoCo ['co', 'ro', 'ba', 'bg', 'ra', 'ch']"
    )


# -- whole workloads and the command line ---------------------------------------------------------


def test_export_traces_changes_no_state(tmp_path):
    seed = seed_of(35)
    dev, _ = small_call(seed, generator="uniform")
    workload = model_workload("RMC1-small", batch=8, seed=seed, rows=20_000, dim=24, pooling=(5, 15))
    requests = [w.request for w in workload]
    before = dev.compile(requests).lookups
    n = export_traces(dev, requests, dramsim3=tmp_path / "a", ramulator2=tmp_path / "b", interval=2)
    assert n == int(before["vsize"].astype(np.int64).sum())
    assert np.array_equal(dev.compile(requests).lookups, before)
    assert len((tmp_path / "a").read_text().splitlines()) == n == len((tmp_path / "b").read_text().splitlines())


def test_command_line(tmp_path, capsys):
    d3, r2 = tmp_path / "w.trace", tmp_path / "w.ld"
    argv = ["--model", "RMC1-small", "--batch", "4", "--rows", "5000", "--pooling", "10", "--generator", "zipf"]
    assert main(argv + ["--ranks", "2", "--dramsim3", str(d3), "--ramulator2", str(r2)]) == 0
    out = capsys.readouterr().out
    print(out)
    assert "240 lookups, 480 reads of 64 B" in out  # 6 tables x 4 bags x 10; D = 32: 2 lines per row
    assert f"DRAMsim3: {d3} (address mapping: robabgrachco)" in out
    assert f"Ramulator 2: {r2} (address mapping: RoBaRaCoCh)" in out
    assert len(d3.read_text().splitlines()) == 480
    assert main(argv + ["--channels", "3", "--dramsim3", str(d3)]) == 2
    assert "channels must be a power of two" in capsys.readouterr().err
    order = "byte,column,row,bank,bank_group,rank,dimm,channel"
    assert main(argv + ["--channels", "2", "--address-map", order, "--ramulator2", str(r2)]) == 0
    assert f"Ramulator 2: {r2} (address mapping: ChRaBaRoCo)" in capsys.readouterr().out
    assert main(argv + ["--address-map", "byte,row", "--ramulator2", str(r2)]) == 2
    assert "address_map: missing field(s)" in capsys.readouterr().err


def test_rmc2_large_export_speed(tmp_path):
    import time

    seed = seed_of(36)
    workload = model_workload("RMC2-large", batch=256, pooling=80, seed=seed)
    dev = Device(1, 1, 2)
    load_model_tables(dev, workload, values=False)
    call = dev.compile([w.request for w in workload])
    reads = host_reads(call.lookups, dev.address_map)
    start = time.perf_counter()
    text = dramsim3_text(reads)
    elapsed = time.perf_counter() - start
    print(f"{reads.size} reads: DRAMsim3 text in {elapsed:.2f} s, {len(text) / 1e6:.0f} MB")
    assert reads.size == 64 * 256 * 80 * 2 and elapsed < 10


def test_the_command_line_warns_when_ramulator2_cannot_decode_the_map(tmp_path, capsys):
    from sim_models.trace_export import main

    common = ["--model", "RMC1-small", "--batch", "2", "--rows", "1000", "--channels", "2"]
    status = main(common + ["--ramulator2", str(tmp_path / "a.ld")])
    assert status == 1 and (tmp_path / "a.ld").stat().st_size > 0
    assert "warning: Ramulator 2:" in capsys.readouterr().err
    order = "byte,column,row,bank,bank_group,rank,dimm,channel"
    status = main(common + ["--ramulator2", str(tmp_path / "b.ld"), "--address-map", order])
    assert status == 0
    assert "address mapping: ChRaBaRoCo" in capsys.readouterr().out
