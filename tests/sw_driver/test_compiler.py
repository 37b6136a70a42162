"""The packet compiler: packets, tags, EOPs, CONFIG, rank routing, opcodes, table-aware
order, transport throttling, packing."""

import numpy as np
import pytest

from hw.isa import (
    CONFIG_FIELDS,
    EOP_FIELDS,
    ConfigRegister,
    Opcode,
    daddr_split,
    eop_daddr,
    unpack,
)
from sw_driver import Device

from .util import random_lengths, random_table

SEED = 20260303


def _field(value, fields, name):
    f = next(f for f in fields if f.name == name)
    return (int(value) >> f.offset) & ((1 << f.width) - 1)


def _lookups(stream):
    return stream.insts[np.isin(stream.insts["opcode"], [1, 2, 3, 4])]


def test_packets_hold_at_most_16_bags_of_one_request_with_tags_and_eop_masks():
    rng = np.random.default_rng(SEED)
    print("seed", SEED)
    dev = Device(channels=2, dimms_per_channel=2, ranks_per_dimm=2)
    dev.load_table("t", random_table(rng, 3000, 20, False))
    dev.load_table("q", random_table(rng, 500, 40, True))
    la, lb = random_lengths(rng, 37), random_lengths(rng, 5)
    call = dev.compile([("t", rng.integers(0, 3000, la.sum()), la), ("q", rng.integers(0, 500, lb.sum()), lb)])
    assert [(p.request, p.first_bag, p.bags) for p in call.packets] == [(0, 0, 16), (0, 16, 16), (0, 32, 5), (1, 0, 5)]
    assert [(p.dim, p.elements) for p in call.packets] == [(20, 32)] * 3 + [(40, 40)]
    for stream in call.dimms:
        eops = stream.insts[stream.eop_index]
        assert (eops["opcode"] == Opcode.EOP).all() and len(eops) == len(call.packets)
        assert [_field(e, EOP_FIELDS, "tag_mask") for e in eops["daddr"]] == [0xFFFF, 0xFFFF, 0x1F, 0x1F]
        assert [_field(e, EOP_FIELDS, "elements") for e in eops["daddr"]] == [32, 32, 32, 40]
        assert (stream.insts["opcode"] == Opcode.EOP).sum() == len(call.packets)
    # Every lookup carries the tag of its bag within its packet, in bag order then index order.
    lookups = call.lookups
    bag = np.concatenate([np.repeat(np.arange(la.size), la), np.repeat(np.arange(lb.size), lb)])
    assert np.array_equal(lookups["tag"], bag % 16)
    assert np.array_equal(
        lookups["packet"], np.concatenate([np.repeat(np.arange(la.size), la) // 16, np.full(lb.sum(), 3)])
    )
    assert len(lookups) == sum(len(_lookups(s)) for s in call.dimms)


def test_lookups_go_to_the_dimm_and_rank_of_their_row_in_order_with_the_right_fields():
    rng = np.random.default_rng(SEED + 1)
    dev = Device(channels=2, dimms_per_channel=2, ranks_per_dimm=4)
    dev.load_table("t", random_table(rng, 5000, 36, False))  # vsize 3
    dev.load_table("q", random_table(rng, 5000, 100, True))  # vsize 2
    idx = rng.integers(0, 5000, 300)
    lengths = random_lengths(rng, 60, high=8)[:300]
    lengths[-1] += 300 - lengths.sum()
    w = rng.standard_normal(300).astype(np.float32)
    for name, weights, opcode, vsize in [
        ("t", None, Opcode.SUM, 3),
        ("t", w, Opcode.WSUM, 3),
        ("q", None, Opcode.SUM_Q8, 2),
        ("q", w, Opcode.WSUM_Q8, 2),
    ]:
        spec = (name, idx, lengths) if weights is None else (name, idx, lengths, weights)
        call = dev.compile([spec])
        where = dev.locate(name, idx)
        dimm = where["channel"] * 2 + where["dimm"]
        bag = np.repeat(np.arange(lengths.size), lengths)
        for stream in call.dimms:
            mine = np.flatnonzero(dimm == stream.index)
            got = _lookups(stream)
            assert len(got) == mine.size
            split = daddr_split(got["daddr"])
            for field in ("rank", "bank_group", "bank", "row", "column"):
                assert np.array_equal(split[field], where[field][mine]), field
            assert (got["opcode"] == opcode).all() and (got["vsize"] == vsize).all()
            assert np.array_equal(got["psum_tag"], bag[mine] % 16)
            expect_w = np.ones(mine.size, np.float32) if weights is None else w[mine]
            assert np.array_equal(got["weight"].view(np.uint32), expect_w.view(np.uint32))
            assert (got["locality"] == 1).all()
            assert np.array_equal(unpack(stream.words), stream.insts)


def test_config_q8_elements_only_when_d_changes_on_a_dimm_that_has_lookups():
    rng = np.random.default_rng(SEED + 2)
    dev = Device(channels=1, dimms_per_channel=2, ranks_per_dimm=1)
    # Default map: DRAM row k of a table is on DIMM k % 2; D = 40 gives 128 rows per DRAM row.
    dev.load_table("a", random_table(rng, 256, 40, True))
    dev.load_table("b", random_table(rng, 256, 20, True))
    dev.load_table("f", random_table(rng, 256, 16, False))

    def configs(call):
        return [
            [_field(i["daddr"], CONFIG_FIELDS, "value") for i in s.insts if i["opcode"] == Opcode.CONFIG]
            for s in call.dimms
        ]

    def register(call):
        return {
            _field(i["daddr"], CONFIG_FIELDS, "register")
            for s in call.dimms
            for i in s.insts
            if i["opcode"] == Opcode.CONFIG
        }

    both = np.array([0, 130]), np.array([2])
    dev.sls("a", *both)
    first = dev.compile([("a", *both)])  # compiling after the call: D is already 40 on both DIMMs
    assert configs(first) == [[], []]
    dev.reset()
    call = dev.compile([("a", *both)])
    assert configs(call) == [[40], [40]] and register(call) == {ConfigRegister.Q8_ELEMENTS}
    assert all(s.insts[0]["opcode"] == Opcode.CONFIG for s in call.dimms)  # before the packet's lookups
    dev.sls("a", *both)
    call = dev.compile(
        [
            ("b", np.array([1]), np.array([1])),
            ("f", np.array([5]), np.array([1])),
            ("b", np.array([200]), np.array([1])),
            ("a", np.array([3, 4]), np.array([2])),
        ]
    )
    # b on DIMM 0, then b on DIMM 1 (second b request, grouped with the first), then a on DIMM 0.
    assert configs(call) == [[20, 40], [20]]
    assert [p.request for p in call.packets] == [0, 2, 1, 3]
    assert configs(dev.compile([("f", np.array([5]), np.array([1]))])) == [[], []]


def test_table_aware_ordering_groups_requests_of_a_table_and_keeps_result_order():
    rng = np.random.default_rng(SEED + 3)
    tables = {n: random_table(rng, 100, 16, False) for n in ("x", "y", "z")}
    specs = [(n, rng.integers(0, 100, 4), np.array([2, 2])) for n in ("y", "x", "y", "z", "x")]
    results = {}
    for aware in (True, False):
        dev = Device(ranks_per_dimm=1, table_aware=aware)
        for n, t in tables.items():
            dev.load_table(n, t)
        call = dev.compile(specs)
        assert list(call.order) == ([0, 2, 1, 4, 3] if aware else [0, 1, 2, 3, 4])
        assert [p.request for p in call.packets] == list(call.order)
        results[aware] = dev.run(specs)
    for a, b in zip(results[True], results[False]):
        assert np.array_equal(a, b)


def test_throttling_gives_8_instructions_per_4_cycles_per_channel_shared_by_its_dimms():
    dev = Device(channels=2, dimms_per_channel=2, ranks_per_dimm=1)
    # vsize 1: 128 rows per DRAM row; DRAM row k is on channel k % 2, DIMM k // 2 % 2.
    dev.load_table("t", np.ones((128 * 4, 16), np.float32))
    on = {(0, 0): 0, (1, 0): 128, (0, 1): 256, (1, 1): 384}  # (channel, dimm) -> first row there
    # Channel 0: 10 lookups alternating over its DIMMs; channel 1: 3 lookups on DIMM 0.
    idx = [on[(0, k % 2)] + k for k in range(10)] + [on[(1, 0)] + k for k in range(3)]
    call = dev.compile([("t", np.array(idx), np.array([6, 7]))])
    cycles = {(s.channel, s.dimm): s.issue_cycles.tolist() for s in call.dimms}
    # Channel 0 stream: L0 L1 ... L9 (DIMMs 0, 1, 0, 1, ...), EOP(d0), EOP(d1): positions 0..11.
    assert cycles[(0, 0)] == [0, 0, 0, 0, 4, 4]  # positions 0 2 4 6 8 10
    assert cycles[(0, 1)] == [0, 0, 0, 0, 4, 4]  # positions 1 3 5 7 9 11
    # Channel 1 stream: 3 lookups on DIMM 0, EOP(d0), EOP(d1).
    assert cycles[(1, 0)] == [0, 0, 0, 0] and cycles[(1, 1)] == [0]
    assert call.transport_cycles == 8
    # 20 bags of 10 lookups on channel 0, DIMM 0: packets of 16 and 4 bags. Channel 0 stream:
    # 160 lookups, EOP(d0), EOP(d1), 40 lookups, EOP(d0), EOP(d1).
    big = dev.compile([("t", np.arange(0, 400, 2) % 128, np.full(20, 10))])
    dimm0 = list(range(161)) + list(range(162, 203))
    assert big.dimms[0].issue_cycles.tolist() == [4 * (k // 8) for k in dimm0]
    assert big.dimms[1].issue_cycles.tolist() == [4 * (161 // 8), 4 * (203 // 8)]
    assert big.transport_cycles == 4 * 26


def test_compiling_changes_no_state():
    rng = np.random.default_rng(SEED + 4)
    dev = Device(channels=2, ranks_per_dimm=2)
    dev.load_table("q", random_table(rng, 1000, 24, True))
    spec = [("q", rng.integers(0, 1000, 50), np.full(10, 5))]
    first = dev.compile(spec)
    state = dev.row_model.last_row.copy(), dev.q8_state.copy()
    second = dev.compile(spec)
    assert np.array_equal(dev.row_model.last_row, state[0]) and np.array_equal(dev.q8_state, state[1])
    assert all(np.array_equal(a.words, b.words) for a, b in zip(first.dimms, second.dimms))
    assert (state[0] == -1).all() and (state[1] == -1).all()


def test_empty_calls_and_empty_bags():
    dev = Device(ranks_per_dimm=2)
    dev.load_table("t", np.ones((10, 16), np.float32))
    call = dev.compile([("t", np.zeros(0, np.int64), np.zeros(3, np.int64))])
    assert len(call.packets) == 1 and call.dimms[0].insts["opcode"].tolist() == [Opcode.EOP]
    assert int(call.dimms[0].insts["daddr"][0]) == int(eop_daddr(tag_mask=0b111, elements=16))
    assert dev.run([]) == [] and dev.report.packets == 0 and dev.report.instructions == 0


@pytest.mark.parametrize("bags", [1, 15, 16, 17, 33])
def test_packet_count(bags):
    dev = Device(ranks_per_dimm=1)
    dev.load_table("t", np.ones((10, 16), np.float32))
    call = dev.compile([("t", np.zeros(bags, np.int64), np.ones(bags, np.int64))])
    assert len(call.packets) == -(-bags // 16) and sum(p.bags for p in call.packets) == bags
