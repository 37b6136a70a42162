"""The DIMM-NMP reference model (sim_models/dimm_nmp.py): decoder, broadcast, adder tree, counters."""

import numpy as np
import pytest

from hw.isa import ConfigRegister, Opcode, config_daddr, daddr_compose, eop_daddr, pack
from sim_models.dimm_nmp import COUNTERS, DimmNMPModel, tree_sum
from verif.rank_image import RankImage


def _words(*insts):
    columns = {k: [] for k in ("opcode", "ddr_cmd", "daddr", "vsize", "weight", "locality", "psum_tag")}
    for inst in insts:
        for k in columns:
            columns[k].append(inst.get(k, 0))
    columns = {k: np.array(v) for k, v in columns.items()}
    # pack refuses undefined opcodes: pack with a legal one, then patch the opcode bits.
    opcodes = columns["opcode"].copy()
    columns["opcode"] = np.where(np.isin(opcodes, [int(o) for o in Opcode]), opcodes, int(Opcode.SUM))
    words = pack(columns)
    words[:, 0] = (words[:, 0] & ~np.uint64(0xF)) | opcodes.astype(np.uint64)
    return words


def _row(values):
    row = np.zeros(64, np.uint8)
    row[: 4 * len(values)] = np.asarray(values, np.float32).view(np.uint8)
    return row


def _images(ranks, value_of_rank):
    images = []
    for r in range(ranks):
        image = RankImage()
        image.write(bank_group=0, bank=0, row=3, column=0, data=_row([value_of_rank[r]] * 16))
        images.append(image)
    return images


def _lookup(rank, tag=0, weight=1.0, opcode=Opcode.SUM):
    return {
        "opcode": int(opcode),
        "daddr": int(daddr_compose(rank=rank, bank_group=0, bank=0, row=3, column=0)),
        "vsize": 1,
        "weight": weight,
        "psum_tag": tag,
        "ddr_cmd": 0b110,
    }


def test_the_adder_tree_is_pairwise_over_rank_index():
    # Sequentially, ((1 + 1e8) + -1e8) + 1 = 1; the tree (1 + 1e8) + (-1e8 + 1) = 0.
    values = [1.0, 1e8, -1e8, 1.0]
    model = DimmNMPModel(ranks=4)
    beats = model.run(
        _words(
            *[_lookup(r) for r in range(4)],
            {"opcode": int(Opcode.EOP), "daddr": int(eop_daddr(tag_mask=1, elements=16))},
        ),
        _images(4, values),
    )
    assert [(b.tag, b.beat, b.last) for b in beats] == [(0, k, k == 3) for k in range(4)]
    assert all((b.data.view(np.float32) == 0.0).all() for b in beats)
    assert tree_sum([np.float32([v]).view(np.uint32) for v in values]).view(np.float32)[0] == 0.0
    two = tree_sum([np.float32([1e8]).view(np.uint32), np.float32([1.0]).view(np.uint32)])
    assert two.view(np.float32)[0] == np.float32(1e8) + np.float32(1.0)


def test_the_decoder_counts_illegal_and_bad_rank_drops_them_and_broadcasts_control():
    model = DimmNMPModel(ranks=2)
    images = _images(2, [2.0, 3.0])
    words = _words(
        {"opcode": 0x5},
        {"opcode": 0x0},
        _lookup(3),
        _lookup(2),  # ranks 2 and 3 do not exist on a 2-rank DIMM
        _lookup(0, tag=1),
        _lookup(1, tag=1),
        _lookup(1, tag=1),
        {"opcode": int(Opcode.CONFIG), "daddr": int(config_daddr(register=ConfigRegister.Q8_ELEMENTS, value=40))},
        {"opcode": int(Opcode.INVALIDATE)},
        {"opcode": int(Opcode.EOP), "daddr": int(eop_daddr(tag_mask=0b11, elements=4))},
    )
    beats = model.run(words, images)
    assert [(b.tag, b.beat, b.last) for b in beats] == [(0, 0, False), (1, 0, True)]
    assert beats[0].data.view(np.float32).tolist() == [0.0] * 4
    assert beats[1].data.view(np.float32).tolist() == [8.0] * 4  # 2 + (3 + 3)
    counters = model.counters
    assert set(counters) == set(COUNTERS)
    # eop_mismatches: tag 1 was written 4 beats long, the EOP asks for 1 (per rank: 2).
    assert counters == {"illegal": 2, "bad_rank": 2, "lookups": 3, "lines": 3, "malformed": 0, "eop_mismatches": 2}
    assert [rank.q8_elements for rank in model.rank_models] == [40, 40]
    assert [rank.counters["lookups"] for rank in model.rank_models] == [1, 2]
    model.reset()
    assert all(v == 0 for v in model.counters.values())


def test_one_rank_and_bad_parameters():
    model = DimmNMPModel(ranks=1)
    beats = model.run(
        _words(
            _lookup(0, weight=0.5, opcode=Opcode.WSUM),
            _lookup(1),
            {"opcode": int(Opcode.EOP), "daddr": int(eop_daddr(tag_mask=1, elements=16))},
        ),
        _images(1, [4.0]),
    )
    assert [b.data.view(np.float32)[0] for b in beats] == [2.0] * 4 and model.counters["bad_rank"] == 1
    with pytest.raises(ValueError, match="ranks must be 1, 2 or 4, got 3"):
        DimmNMPModel(ranks=3)
    with pytest.raises(ValueError, match=r"need one image per rank \(1\), got 2"):
        model.run(_words(_lookup(0)), _images(2, [1.0, 1.0]))
