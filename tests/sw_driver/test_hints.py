"""The driver's row-buffer model: exact hints for a hand case, persistence and reset, and
agreement with the Rank-NMP model's hint check (no mismatch when every line goes to DRAM)."""

import numpy as np

from hw.ddr4 import DDR4Geometry
from hw.isa import expected_hint as scheduler_expected_hint
from sim_models.dimm_nmp import DimmNMPModel
from sw_driver import Device
from sw_driver.hints import HINT_CONFLICT, HINT_HIT, HINT_MISS, UNUSED, RowBufferModel, expected_hint, hints

from .util import random_lengths, random_table

SEED = 20260404
HIT, MISS, CONFLICT = HINT_HIT, HINT_MISS, HINT_CONFLICT


def test_the_rule_for_a_hand_case_and_its_persistence():
    model = RowBufferModel(3)
    got, state = model.predict(np.array([0, 0, 1, 0, 0, 1, 2]), np.array([5, 5, 7, 6, 5, 7, 0]))
    assert got.tolist() == [MISS, HIT, MISS, CONFLICT, CONFLICT, HIT, MISS]
    assert (model.last_row == UNUSED).all()  # predict is pure
    model.commit(state)
    assert model.last_row.tolist() == [5, 7, 0]
    assert model.predict(np.array([0, 1, 2]), np.array([5, 8, 0]))[0].tolist() == [HIT, CONFLICT, HIT]
    model.reset()
    assert model.predict(np.array([0]), np.array([5]))[0].tolist() == [MISS]


def test_the_rule_is_the_schedulers_and_the_vectorised_form_is_the_scalar_loop():
    for last in (None, 3, 4):
        for row in (3, 4):
            assert expected_hint(last, row) == scheduler_expected_hint(last, row)
    rng = np.random.default_rng(SEED)
    print("seed", SEED)
    banks, rows = rng.integers(0, 6, 2000), rng.integers(0, 3, 2000)
    model = RowBufferModel(6)
    model.last_row[:3] = [0, 1, 2]
    got, state = model.predict(banks, rows)
    last = {b: int(r) for b, r in enumerate(model.last_row) if r != UNUSED}
    want = []
    for b, r in zip(banks.tolist(), rows.tolist()):
        want.append(expected_hint(last.get(b), r))
        last[b] = r
    assert got.tolist() == want and state.tolist() == [last.get(b, UNUSED) for b in range(6)]
    assert hints(np.array([UNUSED, 2, 2]), np.array([2, 2, 3])).tolist() == [MISS, HIT, CONFLICT]


def test_the_device_hints_each_lookup_and_remembers_across_calls():
    dev = Device(ranks_per_dimm=1)
    # vsize 1, 128 rows per DRAM row; DRAM row k of the device: bank group k % 4, bank k // 4 % 4,
    # row k // 16. Table rows 0-127 in (bg 0, bank 0, row 0), 128-255 in (bg 1, ...), 2048 in (bg 0, bank 0, row 1).
    dev.load_table("t", np.ones((4096, 16), np.float32))
    call = dev.compile([("t", np.array([0, 1, 2048, 130, 3]), np.array([3, 2]))])
    lookups = call.dimms[0].insts[:5]
    assert lookups["ddr_cmd"].tolist() == [MISS, HIT, CONFLICT, MISS, CONFLICT]
    dev.sls("t", np.array([0, 1, 2048, 130, 3]), np.array([3, 2]))
    assert dev.compile([("t", np.array([3, 2049, 131]), np.array([3]))]).dimms[0].insts["ddr_cmd"][:3].tolist() == [
        HIT,
        CONFLICT,
        HIT,
    ]
    dev.reset()
    assert dev.compile([("t", np.array([3]), np.array([1]))]).dimms[0].insts["ddr_cmd"][0] == MISS


def test_random_calls_give_no_hint_mismatch_in_the_rank_models():
    rng = np.random.default_rng(SEED + 1)
    # Two banks per rank, so that banks see hits, misses and conflicts.
    dev = Device(
        channels=2, dimms_per_channel=2, ranks_per_dimm=2, geometry=DDR4Geometry(bank_groups=1, banks_per_group=2)
    )
    names = []
    for k, (dim, quantized, rows) in enumerate(
        [(16, False, 4000), (20, False, 2000), (40, True, 4000), (120, True, 2000)]
    ):
        names.append((f"t{k}", rows))
        dev.load_table(f"t{k}", random_table(rng, rows, dim, quantized))
    models = [DimmNMPModel(ranks=2, geometry=dev.geometry) for _ in range(dev.dimms)]
    kinds = {"hit": 0, "miss": 0, "conflict": 0}
    for _ in range(4):  # several calls: the state persists across them
        specs = []
        for name, rows in names:
            lengths = random_lengths(rng, int(rng.integers(1, 20)))
            specs.append((name, rng.integers(0, rows, lengths.sum()), lengths))
        call = dev.compile(specs)
        dev.run(specs)
        for stream in call.dimms:
            images = [dev.image.rank(stream.channel, stream.dimm, r) for r in range(2)]
            models[stream.index].run(stream.words, images)
        for hint, kind in [(HIT, "hit"), (MISS, "miss"), (CONFLICT, "conflict")]:
            kinds[kind] += int((call.lookups["hint"] == hint).sum())
    assert min(kinds.values()) >= 16, kinds  # every one of the 16 banks misses once
    assert sum(rank.hint_mismatches() for m in models for rank in m.rank_models) == 0
    # The check can fail: hint every line RD and the rank models see the misses.
    requests = [r._replace(hint=HIT) for m in models for rank in m.rank_models for r in rank.requests]
    assert models[0].rank_models[0].hint_mismatches(requests) > 0
