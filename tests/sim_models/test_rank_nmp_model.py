"""The Rank-NMP reference model: agrees with the golden SLS model on well-formed packets, and
applies every rule of docs/rank_nmp_semantics.md."""

import numpy as np
import pytest

from hw.ddr4 import DDR4Geometry
from hw.isa import (
    DDR_CMD_ACT,
    DDR_CMD_RD,
    ConfigRegister,
    Opcode,
    config_daddr,
    daddr_compose,
    eop_daddr,
    fused8_to_device,
    pack,
    words_to_ints,
)
from sim_models.rank_nmp import RankNMPModel, beats_equal
from sim_models.sls import quantize_fused8, sls
from verif.rank_image import RankImage

G = DDR4Geometry()
SEED = 20261201


def word(opcode, *, daddr=0, vsize=0, weight=0.0, tag=0, ddr_cmd=0, locality=0):
    return words_to_ints(
        pack(
            {
                "opcode": int(opcode),
                "ddr_cmd": ddr_cmd,
                "daddr": int(daddr),
                "vsize": vsize,
                "weight": weight,
                "locality": locality,
                "psum_tag": tag,
            }
        )
    )[0]


def eop(mask, elements):
    return word(Opcode.EOP, daddr=eop_daddr(tag_mask=mask, elements=elements))


def config(value, register=ConfigRegister.Q8_ELEMENTS):
    return word(Opcode.CONFIG, daddr=config_daddr(register=register, value=value))


def place(image, rows, *, vsize, bank_group=0, bank=0, row0=10):
    """Row i of ``rows`` (uint8, one table row each) at (bank_group, bank, row0 + i), column 0."""
    for i, data in enumerate(rows):
        padded = np.zeros(vsize * G.burst_bytes, np.uint8)
        padded[: data.size] = data
        image.write(bank_group=bank_group, bank=bank, row=row0 + i, column=0, data=padded)
    return [
        int(daddr_compose(rank=0, bank_group=bank_group, bank=bank, row=row0 + i, column=0)) for i in range(len(rows))
    ]


def values(beats, tag, elements):
    got = [v for b in beats if b.tag == tag for v in b.data]
    return np.array(got[:elements], np.uint32).view(np.float32)


@pytest.mark.parametrize("lanes", [1, 4, 8])
@pytest.mark.parametrize("opcode", [Opcode.SUM, Opcode.WSUM, Opcode.SUM_Q8, Opcode.WSUM_Q8])
def test_well_formed_packets_equal_the_golden_model(opcode, lanes):
    rng = np.random.default_rng(SEED + lanes + int(opcode))
    image = RankImage(G)
    quantised = opcode in (Opcode.SUM_Q8, Opcode.WSUM_Q8)
    dim = int(rng.integers(1, 120)) if quantised else 16 * int(rng.integers(1, 8))
    table = rng.standard_normal((20, dim)).astype(np.float32)
    if quantised:
        host = quantize_fused8(table)
        device = fused8_to_device(host)
    else:
        host, device = table, table.view(np.uint8)
    vsize = -(-device.shape[1] // G.burst_bytes)
    addrs = place(image, device, vsize=vsize)
    model = RankNMPModel(lanes=lanes, max_elements=128 if dim <= 128 else 256)
    words = [config(dim)] if quantised else []
    bags = {}
    for _ in range(40):
        tag, index = int(rng.integers(0, 16)), int(rng.integers(0, 20))
        w = np.float32(rng.standard_normal()) if opcode in (Opcode.WSUM, Opcode.WSUM_Q8) else np.float32(1)
        bags.setdefault(tag, []).append((index, w))
        words.append(word(opcode, daddr=addrs[index], vsize=vsize, weight=float(w), tag=tag))
    mask = sum(1 << t for t in bags) | 1 << 15
    words.append(eop(mask, dim))
    beats = model.run(words, image)
    per_tag = -(-dim // lanes)
    assert len(beats) == per_tag * bin(mask).count("1")
    assert [b.last for b in beats] == [False] * (len(beats) - 1) + [True]
    for tag in range(16):
        if not mask >> tag & 1:
            continue
        mine = bags.get(tag, [])
        weights = np.array([w for _, w in mine], np.float32) if opcode in (Opcode.WSUM, Opcode.WSUM_Q8) else None
        want = sls(host, np.array([i for i, _ in mine], np.int64), [len(mine)], weights=weights)[0]
        assert values(beats, tag, dim).tobytes() == want.tobytes(), f"seed {SEED} tag {tag}"
    assert model.counters == {"lookups": 40, "lines": 40 * vsize, "illegal": 0, "malformed": 0, "eop_mismatches": 0}


def test_sum_ignores_the_weight_field():
    image = RankImage(G)
    rows = np.random.default_rng(SEED).standard_normal((1, 16)).astype(np.float32)
    (addr,) = place(image, rows.view(np.uint8), vsize=1)
    results = []
    for weight in (1.0, 0.0, float("nan"), float("inf"), -3.5):
        model = RankNMPModel()
        results.append(
            values(
                model.run([word(Opcode.SUM, daddr=addr, vsize=1, weight=weight), eop(1, 16)], image), 0, 16
            ).tobytes()
        )
    assert results == [rows[0].tobytes()] * 5


def test_every_malformed_rule_is_counted_and_reads_nothing():
    image = RankImage(G)
    model = RankNMPModel(lanes=4, max_elements=64)
    d = lambda column, row=5: int(daddr_compose(rank=0, bank_group=1, bank=2, row=row, column=column))  # noqa: E731
    bad = [
        word(Opcode.SUM, daddr=d(0), vsize=0),  # vsize 0
        word(Opcode.SUM, daddr=d(13), vsize=1),  # unaligned
        word(Opcode.SUM, daddr=d(1016), vsize=2),  # crosses the row end
        word(Opcode.SUM, daddr=d(0), vsize=5),  # 80 fp32 > max_elements 64
        config(57),  # well-formed, but then an 8-bit row of 65 B does not fit one burst:
        word(Opcode.SUM_Q8, daddr=d(0), vsize=1),
        config(0),
        config(65),
        config(5, register=7),
        word(Opcode.EOP, daddr=(1 << 26) | (16 << 16) | 1),  # reserved bit
        eop(1, 0),
        eop(1, 65),
    ]
    beats = model.run(bad, image)
    assert beats == []
    assert model.counters["malformed"] == 11  # config(57) itself is well-formed
    assert model.counters["lookups"] == model.counters["lines"] == 0
    assert image.unwritten_reads == 0 and model.requests == []
    # Boundaries are well-formed: the last burst of a row; D + 8 == 64 B; elements == max_elements.
    model.run(
        [word(Opcode.SUM, daddr=d(1016), vsize=1), config(56), word(Opcode.SUM_Q8, daddr=d(0), vsize=1), eop(1, 64)],
        image,
    )
    assert model.counters["malformed"] == 11 and model.counters["lookups"] == 2


def test_undefined_opcodes_are_illegal():
    model = RankNMPModel()
    words = [word(Opcode.SUM) & ~0xF | op for op in (0, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF)]
    assert model.run(words, RankImage(G)) == []
    assert model.counters["illegal"] == 9 and model.counters["malformed"] == 0


def test_no_partial_sum_reaches_the_next_packet_and_mismatches_are_counted():
    image = RankImage(G)
    rows = np.random.default_rng(SEED).standard_normal((2, 32)).astype(np.float32)
    a, b = place(image, rows.view(np.uint8), vsize=2)
    model = RankNMPModel(max_elements=64)
    first = [
        word(Opcode.SUM, daddr=a, vsize=2, tag=5),
        word(Opcode.SUM, daddr=a, vsize=2, tag=3),
        eop(1 << 3, 16),
    ]  # tag 5 missing; tag 3 written 8 beats, only 4 drained
    assert len(model.run(first, image)) == 4
    assert model.counters["eop_mismatches"] == 2
    beats = model.run(
        [
            word(Opcode.SUM, daddr=b, vsize=2, tag=5),
            word(Opcode.SUM, daddr=b, vsize=2, tag=3),
            eop(1 << 3 | 1 << 5, 32),
        ],
        image,
    )
    assert values(beats, 3, 32).tobytes() == values(beats, 5, 32).tobytes() == rows[1].tobytes()
    # A malformed EOP returns nothing but still ends the packet.
    model.run([word(Opcode.SUM, daddr=a, vsize=2, tag=0), eop(1, 0)], image)
    assert values(model.run([eop(1, 32)], image), 0, 32).tobytes() == bytes(128)


def test_hints_are_checked_against_the_in_order_row_model():
    image = RankImage(G)
    model = RankNMPModel()
    d = lambda row: int(daddr_compose(rank=0, bank_group=0, bank=0, row=row, column=0))  # noqa: E731
    model.run(
        [
            word(Opcode.SUM, daddr=d(1), vsize=2, ddr_cmd=DDR_CMD_ACT | DDR_CMD_RD),  # right, then RD right
            word(Opcode.SUM, daddr=d(1), vsize=1, ddr_cmd=DDR_CMD_ACT | DDR_CMD_RD),  # wrong: open row
            word(Opcode.SUM, daddr=d(2), vsize=1, ddr_cmd=DDR_CMD_RD),
        ],
        image,
    )  # wrong: conflict
    assert [r.hint for r in model.requests] == [0b110, 0b100, 0b110, 0b100]
    assert model.hint_mismatches() == 2


def test_beats_equal_treats_any_nan_as_equal():
    from sim_models.rank_nmp import PsumBeat

    nan1, nan2 = np.array([0x7FC00000, 0x7FA00001], np.uint32)
    assert beats_equal(PsumBeat(0, 0, np.array([nan1]), True), PsumBeat(0, 0, np.array([nan2]), True))
    assert not beats_equal(PsumBeat(0, 0, np.array([0]), True), PsumBeat(0, 0, np.array([0x80000000]), True))
    assert not beats_equal(PsumBeat(0, 0, np.array([0]), True), PsumBeat(0, 0, np.array([0]), False))
