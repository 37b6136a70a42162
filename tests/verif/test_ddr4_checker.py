"""The DDR4 protocol checker catches every constraint, exactly at its boundary."""

import re

import pytest

from hw.ddr4 import DDR4Timing, DramCommand
from verif.ddr4_checker import DDR4ProtocolChecker, ProtocolError

ACT, RD, PRE, REF, NOP = (DramCommand.ACT, DramCommand.RD, DramCommand.PRE, DramCommand.REF,
                          DramCommand.NOP)
T = DDR4Timing()


def run(commands, checker=None):
    """commands: (cycle, cmd, bank_group, bank, row, column) tuples."""
    checker = checker or DDR4ProtocolChecker()
    for cycle, cmd, bg, bank, row, col in commands:
        checker.command(cycle, cmd, bank_group=bg, bank=bank, row=row, column=col)
    return checker


def expect(constraint, cycle, bg, bank, commands):
    prefix = f"DDR4 {constraint} violation at cycle {cycle}, bank group {bg} bank {bank}: "
    with pytest.raises(ProtocolError, match=re.escape(prefix)) as exc:
        run(commands)
    assert (exc.value.constraint, exc.value.cycle, exc.value.bank_group, exc.value.bank) == (
        constraint, cycle, bg, bank)
    return str(exc.value)


def test_legal_sequence_at_every_minimum_gap_passes():
    c = 0
    seq = [(c, ACT, 0, 0, 5, 0)]
    seq.append((c + T.tRRD_L, ACT, 0, 1, 7, 0))                 # same bank group
    seq.append((c + T.tRRD_L + T.tRRD_S, ACT, 1, 0, 9, 0))      # other bank group
    seq.append((c + T.tRRD_L + 2 * T.tRRD_S, ACT, 2, 0, 9, 0))
    rd0 = T.tRRD_L + 2 * T.tRRD_S + T.tRCD  # tRCD after the last ACT
    seq.append((rd0, RD, 0, 0, 0, 8))
    seq.append((rd0 + T.tCCD_S, RD, 1, 0, 0, 16))               # other bank group
    seq.append((rd0 + T.tCCD_S + T.tCCD_L, RD, 1, 0, 0, 24))    # same bank group
    pre = max(T.tRAS, rd0 + T.tRTP)
    seq.append((pre, PRE, 0, 0, 0, 0))
    seq.append((max(pre + T.tRP, T.tRC), ACT, 0, 0, 6, 0))
    checker = run(sorted(seq, key=lambda c: c[0]))
    assert checker.open_row(0, 0) == 6
    assert checker.open_row(1, 0) == 9
    assert checker.counts[ACT] == 5 and checker.counts[RD] == 3 and checker.counts[PRE] == 1


def test_fifth_act_at_exactly_tfaw_passes():
    acts = [(i * T.tRRD_S, ACT, i % 4, i // 4, 1, 0) for i in range(4)]
    run(acts + [(T.tFAW, ACT, 0, 1, 1, 0)])


def test_rd_returns_the_open_row():
    checker = run([(0, ACT, 2, 3, 1234, 0)])
    assert checker.command(T.tRCD, RD, bank_group=2, bank=3, column=64) == 1234


@pytest.mark.parametrize("constraint,cycle,bg,bank,commands", [
    ("tRCD", T.tRCD - 1, 1, 2, [(0, ACT, 1, 2, 0, 0), (T.tRCD - 1, RD, 1, 2, 0, 0)]),
    ("tRAS", T.tRAS - 1, 0, 3, [(0, ACT, 0, 3, 0, 0), (T.tRAS - 1, PRE, 0, 3, 0, 0)]),
    ("tRTP", 39, 0, 0, [(0, ACT, 0, 0, 0, 0), (31, RD, 0, 0, 0, 0), (39, PRE, 0, 0, 0, 0)]),
    ("tRP", T.tRAS + T.tRP - 1, 0, 0, [
        (0, ACT, 0, 0, 0, 0), (T.tRAS, PRE, 0, 0, 0, 0), (T.tRAS + T.tRP - 1, ACT, 0, 0, 1, 0)]),
    ("tRRD_L", T.tRRD_L - 1, 2, 1, [(0, ACT, 2, 0, 0, 0), (T.tRRD_L - 1, ACT, 2, 1, 0, 0)]),
    ("tRRD_S", T.tRRD_S - 1, 1, 0, [(0, ACT, 0, 0, 0, 0), (T.tRRD_S - 1, ACT, 1, 0, 0, 0)]),
    ("tFAW", T.tFAW - 1, 0, 1, [
        *[(i * T.tRRD_S, ACT, i % 4, 0, 0, 0) for i in range(4)], (T.tFAW - 1, ACT, 0, 1, 0, 0)]),
    ("tCCD_L", 30 + T.tCCD_L - 1, 0, 1, [
        (0, ACT, 0, 0, 0, 0), (T.tRRD_L, ACT, 0, 1, 0, 0), (30, RD, 0, 0, 0, 0),
        (30 + T.tCCD_L - 1, RD, 0, 1, 0, 0)]),
    ("tCCD_S", 30 + T.tCCD_S - 1, 1, 0, [
        (0, ACT, 0, 0, 0, 0), (T.tRRD_S, ACT, 1, 0, 0, 0), (30, RD, 0, 0, 0, 0),
        (30 + T.tCCD_S - 1, RD, 1, 0, 0, 0)]),
    ("tRFC", T.tRFC - 1, 0, 0, [(0, REF, 0, 0, 0, 0), (T.tRFC - 1, ACT, 0, 0, 0, 0)]),
    ("bank state", 20, 0, 0, [(0, ACT, 0, 0, 1, 0), (20, ACT, 0, 0, 2, 0)]),
    ("bank state", 5, 3, 2, [(5, RD, 3, 2, 0, 0)]),
    ("bank state", 100, 1, 1, [(0, ACT, 1, 1, 0, 0), (100, REF, 0, 0, 0, 0)]),
    ("tRP", 60, 2, 2, [(0, ACT, 2, 2, 0, 0), (45, PRE, 2, 2, 0, 0), (60, REF, 0, 0, 0, 0)]),
    ("burst alignment", 16, 0, 0, [(0, ACT, 0, 0, 0, 0), (16, RD, 0, 0, 0, 3)]),
    ("command bus", 10, 1, 0, [(10, ACT, 0, 0, 0, 0), (10, ACT, 1, 0, 0, 0)]),
])
def test_each_violation_is_caught_with_constraint_cycle_and_bank(constraint, cycle, bg, bank, commands):
    expect(constraint, cycle, bg, bank, commands)
    # One cycle later (where that is a timing rule) the same sequence is legal.
    if constraint.startswith("t"):
        fixed = [c if c[0] != cycle else (cycle + 1, *c[1:]) for c in commands]
        run(fixed)


def test_trc_is_checked_when_longer_than_tras_plus_trp():
    # At the default timing tRC = tRAS + tRP, so tRP always fires first; widen tRC.
    timing = DDR4Timing(tRC=60)
    seq = [(0, ACT, 3, 3, 0, 0), (T.tRAS, PRE, 3, 3, 0, 0), (59, ACT, 3, 3, 1, 0)]
    with pytest.raises(ProtocolError, match=re.escape(
        "DDR4 tRC violation at cycle 59, bank group 3 bank 3: ACT 59 cycles after ACT to the same bank at cycle 0 (needs 60)"
    )):
        run(seq, DDR4ProtocolChecker(timing=timing))
    run(seq[:2] + [(60, ACT, 3, 3, 1, 0)], DDR4ProtocolChecker(timing=timing))


def test_messages_say_what_happened():
    message = expect("tRCD", 15, 0, 0, [(0, ACT, 0, 0, 0, 0), (15, RD, 0, 0, 0, 0)])
    assert message.endswith("RD 15 cycles after ACT at cycle 0 (needs 16)")
    message = expect("bank state", 3, 0, 0, [(3, RD, 0, 0, 0, 8)])
    assert message.endswith("RD column 8 to a precharged bank")


def test_missing_refresh_is_caught_on_a_command_and_on_an_idle_check():
    checker = DDR4ProtocolChecker()
    late = 9 * T.tREFI  # nine intervals elapsed, none refreshed: one more than may be postponed
    checker.check_refresh(late - 1)
    with pytest.raises(ProtocolError, match=re.escape(
        f"DDR4 tREFI violation at cycle {late}, bank group 0 bank 0: missing refresh: 0 REF issued "
        f"after 9 refresh intervals of {T.tREFI} cycles (at most 8 may be postponed)"
    )):
        checker.check_refresh(late)
    with pytest.raises(ProtocolError, match="DDR4 tREFI violation at cycle"):
        checker.command(late, ACT, bank_group=1, bank=1)


def test_regular_refresh_keeps_a_long_run_legal():
    checker = DDR4ProtocolChecker()
    for n in range(1, 30):
        checker.command(n * T.tREFI, REF)
        checker.command(n * T.tREFI + T.tRFC, ACT, bank_group=0, bank=0, row=n)
        checker.command(n * T.tREFI + T.tRFC + T.tRAS, PRE, bank_group=0, bank=0)
    assert checker.refreshes == 29
    checker.check_refresh(37 * T.tREFI)  # 8 owed: allowed
    with pytest.raises(ProtocolError, match="missing refresh: 29 REF issued after 38 refresh intervals"):
        checker.check_refresh(38 * T.tREFI)


def test_refresh_pulled_in_too_far_is_caught():
    checker = DDR4ProtocolChecker()
    for n in range(8):
        checker.command(n * T.tRFC, REF)
    with pytest.raises(ProtocolError, match=re.escape("REF pulled in too far: 9 refreshes ahead of schedule")):
        checker.command(8 * T.tRFC, REF)


def test_address_out_of_range_is_a_value_error():
    with pytest.raises(ValueError, match=re.escape("address out of range at cycle 0: bank group 4 bank 0 row 0 column 0")):
        DDR4ProtocolChecker().command(0, ACT, bank_group=4)


def test_timing_parameters_are_validated():
    with pytest.raises(ValueError, match=re.escape("tRC (50) must be at least tRAS + tRP (39 + 16)")):
        DDR4Timing(tRC=50)
    with pytest.raises(ValueError, match=re.escape("tCL must be a positive integer number of cycles, got 0")):
        DDR4Timing(tCL=0)
    with pytest.raises(ValueError, match=re.escape("tCCD_S (3) must be at least tBL (4)")):
        DDR4Timing(tCCD_S=3)
