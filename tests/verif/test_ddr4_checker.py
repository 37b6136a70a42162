"""The DDR4 protocol checker catches every constraint, exactly at its boundary."""

import re
from types import SimpleNamespace

import pytest

from hw.ddr4 import DDR4Geometry, DDR4Timing, DramCommand
from verif import dram_model
from verif.ddr4_checker import DDR4ProtocolChecker, ProtocolError
from verif.dram_model import DramModel
from verif.rank_image import RankImage

ACT, RD, PRE, REF, NOP = (DramCommand.ACT, DramCommand.RD, DramCommand.PRE, DramCommand.REF, DramCommand.NOP)
RESET = "controller reset"  # pseudo-command for run(): checker.controller_reset(cycle)
T = DDR4Timing()
WINDOW = 9 * T.tREFI  # the longest legal REF gap and row-open time
BANKS = [(bg, b) for bg in range(4) for b in range(4)]


def run(commands, checker=None):
    """commands: (cycle, cmd, bank_group, bank, row, column) tuples."""
    checker = checker or DDR4ProtocolChecker()
    for cycle, cmd, bg, bank, row, col in commands:
        if cmd == RESET:
            checker.controller_reset(cycle)
        else:
            checker.command(cycle, cmd, bank_group=bg, bank=bank, row=row, column=col)
    return checker


def expect(constraint, cycle, bg, bank, commands, checker=None):
    prefix = f"DDR4 {constraint} violation at cycle {cycle}, bank group {bg} bank {bank}: "
    with pytest.raises(ProtocolError, match=re.escape(prefix)) as exc:
        run(commands, checker)
    assert (exc.value.constraint, exc.value.cycle, exc.value.bank_group, exc.value.bank) == (
        constraint,
        cycle,
        bg,
        bank,
    )
    return str(exc.value)


def test_legal_sequence_at_every_minimum_gap_passes():
    c = 0
    seq = [(c, ACT, 0, 0, 5, 0)]
    seq.append((c + T.tRRD_L, ACT, 0, 1, 7, 0))  # same bank group
    seq.append((c + T.tRRD_L + T.tRRD_S, ACT, 1, 0, 9, 0))  # other bank group
    seq.append((c + T.tRRD_L + 2 * T.tRRD_S, ACT, 2, 0, 9, 0))
    rd0 = T.tRRD_L + 2 * T.tRRD_S + T.tRCD  # tRCD after the last ACT
    seq.append((rd0, RD, 0, 0, 5, 8))
    seq.append((rd0 + T.tCCD_S, RD, 1, 0, 9, 16))  # other bank group
    seq.append((rd0 + T.tCCD_S + T.tCCD_L, RD, 1, 0, 9, 24))  # same bank group
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
    assert checker.command(T.tRCD, RD, bank_group=2, bank=3, row=1234, column=64) == 1234


@pytest.mark.parametrize(
    "constraint,cycle,bg,bank,commands",
    [
        ("tRCD", T.tRCD - 1, 1, 2, [(0, ACT, 1, 2, 0, 0), (T.tRCD - 1, RD, 1, 2, 0, 0)]),
        ("tRAS", T.tRAS - 1, 0, 3, [(0, ACT, 0, 3, 0, 0), (T.tRAS - 1, PRE, 0, 3, 0, 0)]),
        ("tRTP", 39, 0, 0, [(0, ACT, 0, 0, 0, 0), (31, RD, 0, 0, 0, 0), (39, PRE, 0, 0, 0, 0)]),
        (
            "tRP",
            T.tRAS + T.tRP - 1,
            0,
            0,
            [(0, ACT, 0, 0, 0, 0), (T.tRAS, PRE, 0, 0, 0, 0), (T.tRAS + T.tRP - 1, ACT, 0, 0, 1, 0)],
        ),
        ("tRRD_L", T.tRRD_L - 1, 2, 1, [(0, ACT, 2, 0, 0, 0), (T.tRRD_L - 1, ACT, 2, 1, 0, 0)]),
        ("tRRD_S", T.tRRD_S - 1, 1, 0, [(0, ACT, 0, 0, 0, 0), (T.tRRD_S - 1, ACT, 1, 0, 0, 0)]),
        (
            "tFAW",
            T.tFAW - 1,
            0,
            1,
            [*[(i * T.tRRD_S, ACT, i % 4, 0, 0, 0) for i in range(4)], (T.tFAW - 1, ACT, 0, 1, 0, 0)],
        ),
        (
            "tCCD_L",
            30 + T.tCCD_L - 1,
            0,
            1,
            [
                (0, ACT, 0, 0, 0, 0),
                (T.tRRD_L, ACT, 0, 1, 0, 0),
                (30, RD, 0, 0, 0, 0),
                (30 + T.tCCD_L - 1, RD, 0, 1, 0, 0),
            ],
        ),
        (
            "tCCD_S",
            30 + T.tCCD_S - 1,
            1,
            0,
            [
                (0, ACT, 0, 0, 0, 0),
                (T.tRRD_S, ACT, 1, 0, 0, 0),
                (30, RD, 0, 0, 0, 0),
                (30 + T.tCCD_S - 1, RD, 1, 0, 0, 0),
            ],
        ),
        ("tRFC", T.tRFC - 1, 0, 0, [(0, REF, 0, 0, 0, 0), (T.tRFC - 1, ACT, 0, 0, 0, 0)]),
        ("bank state", 20, 0, 0, [(0, ACT, 0, 0, 1, 0), (20, ACT, 0, 0, 2, 0)]),
        ("bank state", 5, 3, 2, [(5, RD, 3, 2, 0, 0)]),
        ("bank state", 100, 1, 1, [(0, ACT, 1, 1, 0, 0), (100, REF, 0, 0, 0, 0)]),
        ("tRP", 60, 2, 2, [(0, ACT, 2, 2, 0, 0), (45, PRE, 2, 2, 0, 0), (60, REF, 0, 0, 0, 0)]),
        ("burst alignment", 16, 0, 0, [(0, ACT, 0, 0, 0, 0), (16, RD, 0, 0, 0, 3)]),
        ("command bus", 10, 1, 0, [(10, ACT, 0, 0, 0, 0), (10, ACT, 1, 0, 0, 0)]),
        ("row address", T.tRCD, 1, 3, [(0, ACT, 1, 3, 7, 0), (T.tRCD, RD, 1, 3, 8, 0)]),
        # After a controller reset: the controller must precharge a bank before using it ...
        ("bank state", 200, 1, 1, [(0, ACT, 0, 0, 1, 0), (100, RESET, 0, 0, 0, 0), (200, ACT, 1, 1, 4, 0)]),
        ("bank state", 200, 0, 0, [(0, ACT, 0, 0, 1, 0), (100, RESET, 0, 0, 0, 0), (200, RD, 0, 0, 1, 0)]),
        (
            "bank state",
            100,
            3,
            3,
            [  # every bank but the last one precharged
                (0, RESET, 0, 0, 0, 0),
                *[(1 + i, PRE, bg, b, 0, 0) for i, (bg, b) in enumerate(BANKS[:-1])],
                (100, REF, 0, 0, 0, 0),
            ],
        ),
        # ... and wait tRP after that PRE, even when the bank was already closed ...
        (
            "tRP",
            10 + T.tRP - 1,
            2,
            1,
            [(0, RESET, 0, 0, 0, 0), (10, PRE, 2, 1, 0, 0), (10 + T.tRP - 1, ACT, 2, 1, 5, 0)],
        ),
        (
            "tRP",
            16 + T.tRP - 1,
            3,
            3,
            [
                (0, RESET, 0, 0, 0, 0),
                *[(1 + i, PRE, bg, b, 0, 0) for i, (bg, b) in enumerate(BANKS)],
                (16 + T.tRP - 1, REF, 0, 0, 0, 0),
            ],
        ),
        # ... while the DRAM's own timing windows carry on through the reset.
        ("tRAS", T.tRAS - 1, 0, 0, [(0, ACT, 0, 0, 1, 0), (5, RESET, 0, 0, 0, 0), (T.tRAS - 1, PRE, 0, 0, 0, 0)]),
        ("tRFC", T.tRFC - 1, 1, 1, [(0, REF, 0, 0, 0, 0), (10, RESET, 0, 0, 0, 0), (T.tRFC - 1, PRE, 1, 1, 0, 0)]),
    ],
)
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
    with pytest.raises(
        ProtocolError,
        match=re.escape(
            "DDR4 tRC violation at cycle 59, bank group 3 bank 3: "
            "ACT 59 cycles after ACT to the same bank at cycle 0 (needs 60)"
        ),
    ):
        run(seq, DDR4ProtocolChecker(timing=timing))
    run(seq[:2] + [(60, ACT, 3, 3, 1, 0)], DDR4ProtocolChecker(timing=timing))


def test_messages_say_what_happened():
    message = expect("tRCD", 15, 0, 0, [(0, ACT, 0, 0, 0, 0), (15, RD, 0, 0, 0, 0)])
    assert message.endswith("RD 15 cycles after ACT at cycle 0 (needs 16)")
    message = expect("bank state", 3, 0, 0, [(3, RD, 0, 0, 0, 8)])
    assert message.endswith("RD column 8 to a precharged bank")
    message = expect("row address", 20, 0, 0, [(0, ACT, 0, 0, 7, 0), (20, RD, 0, 0, 8, 16)])
    assert message.endswith("RD row 8 column 16 to a bank with row 7 open")
    message = expect("bank state", 200, 1, 1, [(100, RESET, 0, 0, 0, 0), (200, ACT, 1, 1, 4, 0)])
    assert message.endswith(
        "ACT row 4 to a bank with unknown state after the controller reset at cycle 100: precharge it first"
    )
    message = expect("bank state", 200, 0, 0, [(100, RESET, 0, 0, 0, 0), (200, RD, 0, 0, 0, 8)])
    assert message.endswith(
        "RD column 8 to a bank with unknown state after the controller reset at cycle 100: precharge it first"
    )
    message = expect("bank state", 200, 0, 0, [(100, RESET, 0, 0, 0, 0), (200, REF, 0, 0, 0, 0)])
    assert message.endswith(
        "REF with the bank in unknown state after the controller reset at cycle 100: precharge it first"
    )


def test_missing_refresh_is_caught_on_a_command_and_on_an_idle_check():
    checker = DDR4ProtocolChecker()
    late = 9 * T.tREFI  # nine intervals elapsed, none refreshed: one more than may be postponed
    checker.check_refresh(late - 1)
    with pytest.raises(
        ProtocolError,
        match=re.escape(
            f"DDR4 tREFI violation at cycle {late}, bank group 0 bank 0: missing refresh: 0 REF issued "
            f"after 9 refresh intervals of {T.tREFI} cycles (at most 8 may be postponed)"
        ),
    ):
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
    with pytest.raises(
        ValueError, match=re.escape("address out of range at cycle 0: bank group 4 bank 0 row 0 column 0")
    ):
        DDR4ProtocolChecker().command(0, ACT, bank_group=4)


def test_timing_parameters_are_validated():
    with pytest.raises(ValueError, match=re.escape("tRC (50) must be at least tRAS + tRP (39 + 16)")):
        DDR4Timing(tRC=50)
    with pytest.raises(
        ValueError, match=re.escape("tCL must be an integer number of cycles from 1 to 16777216, got 0")
    ):
        DDR4Timing(tCL=0)
    with pytest.raises(ValueError, match=re.escape("tCCD_S (3) must be at least tBL (4)")):
        DDR4Timing(tCCD_S=3)


def test_ref_gap_after_pulled_in_refreshes_is_at_most_9_trefi():
    # Eight REFs pulled in, then eight postponed would leave ~16.7 tREFI without a REF.
    pulled_in = [(k * T.tRFC, REF, 0, 0, 0, 0) for k in range(8)]
    last = 7 * T.tRFC
    run(pulled_in).check_refresh(last + WINDOW)  # exactly at the limit: legal
    run(pulled_in + [(last + WINDOW, REF, 0, 0, 0, 0)])
    message = expect("tREFI", last + WINDOW + 1, 2, 1, pulled_in + [(last + WINDOW + 1, ACT, 2, 1, 0, 0)])
    assert message.endswith(
        f"{WINDOW + 1} cycles since the previous REF at cycle {last} (at most 9 x tREFI = {WINDOW})"
    )
    expect("tREFI", last + WINDOW + 1, 0, 0, pulled_in + [(last + WINDOW + 1, REF, 0, 0, 0, 0)])
    # Also on an idle cycle, with no command to notice it.
    checker = run(pulled_in)
    with pytest.raises(
        ProtocolError,
        match=re.escape(
            f"DDR4 tREFI violation at cycle {last + WINDOW + 1}, bank group 0 bank 0: {WINDOW + 1} cycles since "
            f"the previous REF at cycle {last}"
        ),
    ):
        checker.check_refresh(last + WINDOW + 1)


def test_first_ref_is_due_9_trefi_after_the_start():
    # With more postponed REFs allowed, the gap rule still bounds the first one.
    checker = DDR4ProtocolChecker(max_postponed=20)
    checker.check_refresh(WINDOW)
    with pytest.raises(
        ProtocolError,
        match=re.escape(
            f"DDR4 tREFI violation at cycle {WINDOW + 1}, bank group 0 bank 0: {WINDOW + 1} cycles since the "
            f"start at cycle 0, with no REF (at most 9 x tREFI = {WINDOW})"
        ),
    ):
        checker.check_refresh(WINDOW + 1)


def test_controller_reset_does_not_restart_the_ref_gap():
    # The DRAM does not see the controller's reset: the next REF is still due 9 tREFI after
    # the last one, so a controller must refresh soon after its reset.
    seq = [(1000, REF, 0, 0, 0, 0), (5000, RESET, 0, 0, 0, 0)]
    run(seq).check_refresh(1000 + WINDOW)
    expect("tREFI", 1000 + WINDOW + 1, 0, 0, seq + [(1000 + WINDOW + 1, PRE, 0, 0, 0, 0)])


def test_row_open_longer_than_9_trefi_is_caught():
    # A row open 9 tREFI means no REF for as long, so this shows when commands or refresh
    # checks are sparse: the open row, which kept the REF out, is named first.
    seq = [(0, ACT, 1, 2, 3, 0)]
    message = expect("tRAS(max)", WINDOW + 1, 1, 2, seq + [(WINDOW + 1, ACT, 3, 0, 0, 0)])
    assert message.endswith(f"row 3 open for {WINDOW + 1} cycles since ACT at cycle 0 (at most 9 x tREFI = {WINDOW})")
    expect("tRAS(max)", WINDOW + 1, 1, 2, seq + [(WINDOW + 1, PRE, 1, 2, 0, 0)])
    with pytest.raises(
        ProtocolError,
        match=re.escape(f"DDR4 tRAS(max) violation at cycle {WINDOW + 1}, bank group 1 bank 2: row 3 open"),
    ):
        run(seq).check_refresh(WINDOW + 1)


def test_row_open_exactly_9_trefi_passes():
    # max_postponed=9 so that no REF for 9 tREFI is allowed too; only tRAS(max) is in play.
    checker = run([(0, ACT, 1, 2, 3, 0)], DDR4ProtocolChecker(max_postponed=9))
    checker.check_refresh(WINDOW)
    checker.command(WINDOW, PRE, bank_group=1, bank=2)
    assert checker.open_row(1, 2) is None
    # Opened one cycle later, the row is again exactly at its limit and not blamed; the
    # overdue REF is.
    expect("tREFI", 1 + WINDOW, 1, 2, [(1, ACT, 1, 2, 3, 0), (1 + WINDOW, PRE, 1, 2, 0, 0)])


def test_after_a_controller_reset_precharging_every_bank_makes_them_usable():
    seq = [(0, ACT, 0, 0, 1, 0), (T.tRRD_S, ACT, 1, 0, 2, 0), (20, RESET, 0, 0, 0, 0)]
    # PRE to every bank, open or closed (a closed one is a legal NOP), respecting tRAS.
    pres = [(T.tRAS + 4 + i, PRE, bg, b, 0, 0) for i, (bg, b) in enumerate(BANKS)]
    last_pre = pres[-1][0]
    checker = run(seq + pres)
    assert checker.controller_resets == [20]
    assert all(checker.open_row(bg, b) is None for bg, b in BANKS)
    # tRP after the PRE, exactly: ACT to the first bank, then REF after the last PRE.
    run([(pres[0][0] + T.tRP, ACT, 0, 0, 9, 0)], checker)
    run(seq + pres + [(last_pre + T.tRP, REF, 0, 0, 0, 0)])


def test_initial_state_unknown_is_a_controller_reset_at_cycle_0():
    checker = DDR4ProtocolChecker(initial_state="unknown")
    assert checker.controller_resets == [0]
    message = expect("bank state", 5, 2, 2, [(5, ACT, 2, 2, 0, 0)], checker)
    assert "after the controller reset at cycle 0: precharge it first" in message
    checker = DDR4ProtocolChecker(initial_state="unknown")
    run([(5, PRE, 2, 2, 0, 0), (5 + T.tRP, ACT, 2, 2, 0, 0)], checker)
    expect("bank state", 5 + T.tRP + 1, 0, 0, [(5 + T.tRP + 1, ACT, 0, 0, 0, 0)], checker)
    run([(0, ACT, 2, 2, 0, 0)], DDR4ProtocolChecker(initial_state="precharged"))


def test_bad_initial_state_and_controller_reset_in_the_past_are_value_errors():
    with pytest.raises(
        ValueError, match=re.escape("initial_state must be one of ('precharged', 'unknown'), got 'open'")
    ):
        DDR4ProtocolChecker(initial_state="open")
    checker = run([(10, ACT, 0, 0, 0, 0)])
    with pytest.raises(ValueError, match=re.escape("controller reset at cycle 9, before the command at cycle 10")):
        checker.controller_reset(9)


class _Signal:
    """Stands in for a cocotb signal handle: ``value`` is read and written."""

    def __init__(self, value=0):
        self.value = value


def test_dram_model_reports_each_dut_reset_pulse_and_still_returns_read_data(monkeypatch):
    # No simulator here: the model's per-cycle steps are called by hand on stand-in signals.
    monkeypatch.setattr(dram_model.cocotb, "start_soon", lambda coroutine: coroutine.close())
    port = {f"dram__{n}": _Signal() for n in ("cmd", "bank_group", "bank", "row", "column", "rd_valid", "rd_data")}
    dut = SimpleNamespace(rst=_Signal(), **port)
    image = RankImage()
    data = bytes(range(64))
    image.write(bank_group=0, bank=0, row=5, column=0, data=data)
    model = DramModel(dut, "dram", None, image, reset=dut.rst)
    beats = {}

    def cycle(rst=0, cmd=NOP, bank_group=0, bank=0, row=0, column=0):
        model._drive()
        if dut.dram__rd_valid.value:
            beats[model.cycle] = dut.dram__rd_data.value
        dut.rst.value = rst
        for name, value in (("cmd", cmd), ("bank_group", bank_group), ("bank", bank), ("row", row), ("column", column)):
            getattr(dut, f"dram__{name}").value = int(value)
        model._sample()

    cycle(rst=1)  # 0, 1: the power-up reset, before any command
    cycle(rst=1)
    cycle(cmd=ACT, row=5)  # 2
    while model.cycle < 2 + T.tRCD:
        cycle()
    cycle(cmd=RD, row=5)  # 18: data in cycles 34..37
    cycle(rst=1)  # 19..21: one pulse
    cycle(rst=1)
    cycle(rst=1)
    cycle()
    cycle()
    cycle(rst=1)  # 24: another
    while model.cycle < 40:
        cycle()
    assert model.checker.controller_resets == [19, 24]
    beat = DDR4Geometry().beat_bytes
    rd = 2 + T.tRCD
    assert beats == {rd + T.tCL + k: int.from_bytes(data[k * beat : (k + 1) * beat], "little") for k in range(4)}
    with pytest.raises(
        ProtocolError,
        match=re.escape(
            "DDR4 bank state violation at cycle 40, bank group 1 bank 1: ACT row 2 to a bank with unknown "
            "state after the controller reset at cycle 24: precharge it first"
        ),
    ):
        cycle(cmd=ACT, bank_group=1, bank=1, row=2)
