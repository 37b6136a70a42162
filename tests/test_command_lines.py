"""Bad input on every command line: exit status 2, one line ``PROG: error: ...`` naming the
option and the value, no traceback, and no work started.

One table over every program and subcommand (``recnmp demo / regress / experiment / sweep /
formal``, ``python -m rtl_gen``, ``python -m sim_models.experiments``, ``python -m
sim_models.trace_export``, ``python -m verif.formal.fp32_ieee``) with the values a user can mistype: 0, negative, huge,
non-numeric, a missing file, an unwritable place, a folder where a file is meant. The rows
run in this process with the work itself replaced by a tripwire, so a check that comes too
late fails the row instead of starting a Verilator build or a sweep. The defects reported
in ``shared/review/cli`` follow, each as its user met it (a subprocess).
"""

import subprocess
import sys

import numpy as np
import pytest

from rtl_gen import cli as rtl_gen_cli
from sim_models import experiments, trace_export
from sw_driver import cli as recnmp_cli
from verif.formal import fp32_ieee

UNWRITABLE = "/proc/recnmp-nope"  # no one may create anything in /proc, not even root
HUGE = str(10**30)
SMALL_RUN = ["--set", "model=RMC1-small", "--set", "batch=1", "--set", "rows=2000", "--set", "pooling=2"]

PROGRAMS = {
    "recnmp": recnmp_cli.main,
    "rtl_gen": rtl_gen_cli.main,
    "python -m sim_models.experiments": experiments.main,
    "python -m sim_models.trace_export": trace_export.main,
    "python -m verif.formal.fp32_ieee": fp32_ieee.main,
}

# (program, arguments, the words the message must hold). {file} is an existing file, {dir} an
# existing folder (both made per test); the message names the option or field and the value.
BAD_INPUT = [
    # recnmp demo
    ("recnmp", ["demo", "--ranks", "3"], "argument --ranks: invalid choice: 3"),
    ("recnmp", ["demo", "--dimms", "x"], "argument --dimms: invalid int value: 'x'"),
    ("recnmp", ["demo", "--op", "max"], "argument --op: invalid choice: 'max'"),
    ("recnmp", ["demo", "--dim", "0"], "argument --dim: must be an integer from 1 to 256, got '0'"),
    ("recnmp", ["demo", "--dim", "257"], "argument --dim: must be an integer from 1 to 256, got '257'"),
    ("recnmp", ["demo", "--dim", "113"], "fp32 rows of D = 113 are longer than the PU takes"),
    ("recnmp", ["demo", "--rows", "-1"], "argument --rows: must be an integer from 1 to 1048576, got '-1'"),
    ("recnmp", ["demo", "--rows", HUGE], f"argument --rows: must be an integer from 1 to 1048576, got '{HUGE}'"),
    ("recnmp", ["demo", "--batch", "0"], "argument --batch: must be an integer from 1 to"),
    ("recnmp", ["demo", "--batch", "x"], "argument --batch: must be an integer from 1 to 1048576, got 'x'"),
    ("recnmp", ["demo", "--pooling", HUGE], "argument --pooling: must be an integer from 1 to"),
    ("recnmp", ["demo", "--batch", "4096", "--pooling", "4096"], "--batch 4096 x --pooling 4096 is 16777216 lookups"),
    ("recnmp", ["demo", "--hot-rows", "0"], "argument --hot-rows: must be an integer from 1 to 1048576, got '0'"),
    ("recnmp", ["demo", "--hot-rows", "-1"], "argument --hot-rows: must be an integer from 1 to 1048576, got '-1'"),
    ("recnmp", ["demo", "--hot-share", "1.5"], "argument --hot-share: must be a number from 0.0 to 1.0, got '1.5'"),
    ("recnmp", ["demo", "--hot-share", "nan"], "argument --hot-share: must be a number from 0.0 to 1.0, got 'nan'"),
    ("recnmp", ["demo", "--hot-threshold", "-1"], "argument --hot-threshold: must be an integer from 0 to"),
    ("recnmp", ["demo", "--cache-kib", "12"], "argument --cache-kib: must be a power of two from 8 to 1024, got '12'"),
    ("recnmp", ["demo", "--cache-kib", "0"], "argument --cache-kib: must be an integer from 8 to 1024, got '0'"),
    ("recnmp", ["demo", "--calls", "0"], "argument --calls: must be an integer from 1 to"),
    ("recnmp", ["demo", "--seed", "-1"], "argument --seed: must be an integer from 0 to"),
    ("recnmp", ["demo", "--seed", HUGE], "argument --seed: must be an integer from 0 to"),
    ("recnmp", ["demo", "--dram-trace", UNWRITABLE + ".csv"], "--dram-trace '/proc/recnmp-nope.csv': cannot write"),
    ("recnmp", ["demo", "--dram-trace", "{dir}"], "--dram-trace '{dir}': is a folder, not a file"),
    # recnmp regress
    ("recnmp", ["regress", "-n", "-1"], "argument -n: must be an integer from 0 to 256, got '-1'"),
    ("recnmp", ["regress", "--seed", "x"], "argument --seed: must be an integer from 0 to"),
    # recnmp experiment
    ("recnmp", ["experiment", "nosuch"], "argument name: invalid choice: 'nosuch'"),
    ("recnmp", ["experiment", "energy", "--out", UNWRITABLE], "--out '/proc/recnmp-nope': cannot write there"),
    ("recnmp", ["experiment", "energy", "--out", "{file}"], "--out '{file}': is a file, not a folder"),
    (
        "recnmp",
        ["experiment", "energy", "--workers", "0"],
        "argument --workers: must be an integer from 1 to 256, got '0'",
    ),
    ("recnmp", ["experiment", "energy", "--set", "batch=0"], "batch must be a positive int, got 0"),
    ("recnmp", ["experiment", "energy", "--set", "batch=x"], "batch must be an integer (k and m suffixes allowed)"),
    ("recnmp", ["experiment", "energy", "--set", "batch=" + HUGE], f"batch must be at most 1048576, got {HUGE}"),
    ("recnmp", ["experiment", "energy", "--set", "colour=1"], "unknown configuration field 'colour'"),
    ("recnmp", ["experiment", "energy", "--set", "batch"], "--set takes FIELD=VALUE, got 'batch'"),
    ("recnmp", ["experiment", "energy", "--set", "model=RMC9"], "model must be one of RMC1-small"),
    ("recnmp", ["experiment", "energy", "--set", "channels=3"], "channels must be a power of two from 1 to 16"),
    # recnmp sweep
    ("recnmp", ["sweep"], "the following arguments are required: --grid"),
    ("recnmp", ["sweep", "--grid", "seed"], "--grid takes FIELD=V1,V2,..., got 'seed'"),
    ("recnmp", ["sweep", "--grid", "seed=1,-1"], "seed must be a non-negative int, got -1"),
    ("recnmp", ["sweep", "--grid", "alpha=0", "--set", "generator=zipf"], "alpha must be a finite number > 0"),
    ("recnmp", ["sweep", "--grid", "cache_size_bytes=5"], "cache_size_bytes must be a power of two"),
    ("recnmp", ["sweep", "--grid", "seed=1", "--out", "{dir}"], "--out '{dir}': is a folder, not a file"),
    ("recnmp", ["sweep", "--grid", "seed=1", "--out", UNWRITABLE + "/s.csv"], "--out '/proc/recnmp-nope/s.csv'"),
    (
        "recnmp",
        ["sweep", "--grid", "seed=1", "--workers", "-1"],
        "argument --workers: must be an integer from 1 to 256, got '-1'",
    ),
    ("recnmp", ["sweep", "--grid", "seed=1", "--scheduler", "nonsense"], "--scheduler 'nonsense': not a scheduler"),
    (
        "recnmp",
        ["sweep", "--grid", "seed=1", "--workers", HUGE],
        "argument --workers: must be an integer from 1 to 256",
    ),
    ("recnmp", ["sweep", "--grid", "seed=1", "--grid", "seed=2"], "--grid seed is given twice"),
    ("recnmp", ["sweep", "--grid", "seed=1,2", "--set", "seed=3"], "seed is both a --grid axis and a --set field"),
    ("recnmp", ["sweep", "--grid", "dim=32,113", *SMALL_RUN], "fp32 rows of D = 113 are longer than the PU takes"),
    ("recnmp", ["sweep", "--grid", "batch=1,300", "--set", "model=RMC1-small"], "batch must be at most 256 for"),
    ("recnmp", ["sweep", "--grid", "rows=2000,4294967296"], "needs 549755813888 bytes"),
    ("recnmp", ["sweep", "--grid", "seed=1", "--bogus"], "unrecognized arguments: --bogus"),
    # recnmp formal
    ("recnmp", ["formal", "nosuch"], "unknown property 'nosuch'; known: "),
    ("recnmp", ["formal", "--work-dir", "{dir}", "--out", "{file}"], "--out '{file}': is a file, not a folder"),
    ("recnmp", ["formal", "--solver", "nope"], "argument --solver: invalid choice: 'nope'"),
    ("recnmp", ["formal", "--work-dir", UNWRITABLE], "--work-dir '/proc/recnmp-nope': cannot write there"),
    ("recnmp", ["formal", "--work-dir", "{file}"], "--work-dir '{file}': is a file, not a folder"),
    ("recnmp", ["formal", "--out", UNWRITABLE], "--out '/proc/recnmp-nope': cannot write there"),
    ("recnmp", ["launch"], "argument COMMAND: invalid choice: 'launch'"),
    # python -m rtl_gen
    ("rtl_gen", ["uint_adder", "-o", UNWRITABLE], "-o '/proc/recnmp-nope': cannot write there"),
    ("rtl_gen", ["uint_adder", "-o", "{file}"], "-o '{file}': is a file, not a folder"),
    ("rtl_gen", ["uint_adder", "-o", "{dir}", "-p", "width=" + HUGE], "width must be an integer from 1 to 64"),
    ("rtl_gen", ["uint_adder"], "give a BLOCK and -o DIR, or --list"),
    ("rtl_gen", ["rank_scheduler", "-o", "{dir}", "-p", "tREFI=" + HUGE], "tREFI must be an integer number of cycles"),
    # python -m sim_models.experiments
    ("python -m sim_models.experiments", ["energy", "--out", UNWRITABLE], "--out '/proc/recnmp-nope': cannot"),
    ("python -m sim_models.experiments", ["energy", "--set", "pooling=-1"], "pooling must be a positive int, got -1"),
    # python -m verif.formal.fp32_ieee
    ("python -m verif.formal.fp32_ieee", ["nope"], "argument property: invalid choice: 'nope'"),
    ("python -m verif.formal.fp32_ieee", ["fp32_add_ieee", "--timeout", "-1"], "argument --timeout: must be"),
    ("python -m verif.formal.fp32_ieee", ["fp32_add_ieee", "--case", "nosuch"], "--case 'nosuch': no such case"),
    # python -m sim_models.trace_export
    ("python -m sim_models.trace_export", ["--batch", "1"], "give --dramsim3 PATH and/or --ramulator2 PATH"),
    ("python -m sim_models.trace_export", ["--batch", "0", "--dramsim3", "{dir}/t"], "argument --batch: must be an"),
    ("python -m sim_models.trace_export", ["--dramsim3", "{dir}"], "--dramsim3 '{dir}': is a folder, not a file"),
    ("python -m sim_models.trace_export", ["--ramulator2", UNWRITABLE], "--ramulator2 '/proc/recnmp-nope': cannot"),
    ("python -m sim_models.trace_export", ["--alpha", "-1", "--dramsim3", "{dir}/t"], "argument --alpha: must be"),
    ("python -m sim_models.trace_export", ["--channels", "3", "--dramsim3", "{dir}/t"], "channels must be a power of"),
    ("python -m sim_models.trace_export", ["--pooling", HUGE, "--dramsim3", "{dir}/t"], "argument --pooling: must be"),
    ("python -m sim_models.trace_export", ["--rows", HUGE, "--dramsim3", "{dir}/t"], "argument --rows: must be"),
    ("python -m sim_models.trace_export", ["--interval", HUGE, "--dramsim3", "{dir}/t"], "argument --interval: must"),
    ("python -m sim_models.trace_export", ["--dramsim3", "{dir}/t", "--ramulator2", "{dir}/t"], "name the same file"),
    (
        "python -m sim_models.trace_export",
        ["--generator", "production_like", "--stats", "{dir}/none.txt", "--dramsim3", "{dir}/t"],
        "--stats '{dir}/none.txt': no such file",
    ),
]


@pytest.fixture
def no_work(monkeypatch):
    """Every kind of long work this table could start fails the row instead."""

    def tripwire(*args, **kwargs):
        raise AssertionError("work started before the input was checked")

    monkeypatch.setattr("sw_driver.rtl_backend.run_job", tripwire)
    monkeypatch.setattr("sw_driver.cli.subprocess.call", tripwire)
    monkeypatch.setattr("sim_models.experiments.run_config", tripwire)
    monkeypatch.setattr("verif.formal.cli.run_check", tripwire)
    monkeypatch.setattr("verif.formal.cli.run_mutation", tripwire)
    monkeypatch.setattr("verif.formal.fp32_ieee.check_ieee", tripwire)


def run_main(program, args, capsys):
    try:
        status = PROGRAMS[program](args)
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("program,args,words", BAD_INPUT, ids=[" ".join([p, *a]) for p, a, _ in BAD_INPUT])
def test_bad_input_exits_2_with_one_line_before_any_work(program, args, words, tmp_path, capsys, no_work):
    (tmp_path / "a-file").write_text("x")

    def fill(text):
        return text.replace("{file}", str(tmp_path / "a-file")).replace("{dir}", str(tmp_path))

    status, out, err = run_main(program, [fill(a) for a in args], capsys)
    prog = "recnmp " + args[0] if program == "recnmp" and args[0] != "launch" else program
    assert status == 2, (status, err)
    assert err.count("\n") == 1 and err.startswith(f"{prog}: error: "), err
    assert fill(words) in err, err
    assert out == "", "nothing ran, so nothing is printed"


# -- the reproductions of shared/review/cli, as a user met them ---------------------------------


def recnmp(*args):
    return subprocess.run([sys.executable, "-m", "sw_driver", *args], capture_output=True, text=True, timeout=600)


def assert_one_line(result, prog, words):
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"{prog}: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert words in result.stderr
    assert result.stdout == "", "the check comes before any work: nothing ran"


def test_demo_with_an_unwritable_dram_trace_fails_before_the_build():
    result = recnmp(
        "demo", "--batch", "2", "--pooling", "2", "--calls", "1", "--cache-kib", "8", "--dram-trace", "/proc/nope.csv"
    )
    assert_one_line(result, "recnmp demo", "--dram-trace '/proc/nope.csv': cannot write there")


def test_sweep_experiment_and_rtl_gen_check_their_output_first(tmp_path):
    common = ["--grid", "ranks_per_dimm=2", *SMALL_RUN, "--workers", "1"]
    assert_one_line(recnmp("sweep", *common, "--out", "/proc/nope/sweep.csv"), "recnmp sweep", "/proc/nope/sweep.csv")
    assert_one_line(recnmp("sweep", *common, "--out", str(tmp_path)), "recnmp sweep", "is a folder, not a file")
    result = recnmp("experiment", "energy", *SMALL_RUN, "--workers", "1", "--out", "/proc/nope")
    assert_one_line(result, "recnmp experiment", "--out '/proc/nope': cannot write there")
    result = subprocess.run(
        [sys.executable, "-m", "rtl_gen", "uint_adder", "-o", "/proc/nope"], capture_output=True, text=True
    )
    assert_one_line(result, "rtl_gen", "-o '/proc/nope': cannot write there")


def test_demo_hot_rows_zero_and_negative():
    for value in ("0", "-1"):
        assert_one_line(recnmp("demo", "--hot-rows", value), "recnmp demo", f"got '{value}'")


def test_formal_unwritable_work_dir_and_unknown_solver(tmp_path):
    result = recnmp("formal", "dimm_decoder_dispatch", "--work-dir", "/proc/nope")
    assert_one_line(result, "recnmp formal", "--work-dir '/proc/nope': cannot write there")
    result = recnmp("formal", "dimm_decoder_dispatch", "--solver", "nope", "--work-dir", str(tmp_path))
    assert_one_line(result, "recnmp formal", "argument --solver: invalid choice: 'nope' (choose from 'yices', 'z3')")
    assert not any(tmp_path.iterdir()), "no task ran"


def test_sweep_with_an_unreachable_scheduler(monkeypatch, capsys, no_work):
    pytest.importorskip("dask.distributed")
    monkeypatch.setattr(experiments, "SCHEDULER_TIMEOUT", 1)
    args = ["sweep", "--grid", "ranks_per_dimm=2", *SMALL_RUN, "--scheduler", "tcp://127.0.0.1:1"]
    status, out, err = run_main("recnmp", args, capsys)
    assert status == 2 and err.count("\n") == 1, err
    assert err.startswith("recnmp sweep: error: --scheduler 'tcp://127.0.0.1:1': cannot connect within 1 s ("), err
    assert "after 1 s" in err, "Dask itself was given the timeout"


@pytest.mark.parametrize("args", [["demo"], ["regress", "--waves"]])
def test_an_unwritable_build_folder_is_refused_before_any_work(args, monkeypatch, capsys, no_work):
    monkeypatch.setenv("RECNMP_SIM_BUILD", "/proc/recnmp-nope")
    status, out, err = run_main("recnmp", args, capsys)
    assert status == 2 and err.count("\n") == 1, err
    assert "(RECNMP_SIM_BUILD) '/proc/recnmp-nope': cannot write there" in err


def test_formal_run_refuses_an_unknown_solver_from_python_too(tmp_path, no_work):
    import argparse

    from hw.user_input import UsageError
    from verif.formal import cli as formal_cli

    args = argparse.Namespace(list=False, names=[], work_dir=tmp_path, out=None, solver="cvc9", deep=False)
    with pytest.raises(UsageError, match=r"^--solver must be one of yices, z3, got 'cvc9'$"):
        formal_cli.run(args)


@pytest.mark.parametrize(
    "options,message",
    [
        ({"seed": "x"}, "backend option 'seed' must be an integer from 0 to 4611686018427387904, got 'x'"),
        ({"seed": -1}, "backend option 'seed' must be an integer from 0 to 4611686018427387904, got -1"),
        ({"seed": True}, "backend option 'seed' must be an integer from 0 to 4611686018427387904, got True"),
        ({"inst_stall": "0.1"}, "backend option 'inst_stall' must be a number in [0, 1), got '0.1'"),
        ({"result_stall": 1.0}, "backend option 'result_stall' must be in [0, 1), got 1.0"),
        ({"result_stall": float("nan")}, "backend option 'result_stall' must be in [0, 1), got nan"),
        ({"stall": 0.1}, "backend 'rtl' has no option 'stall' (options: inst_stall, result_stall, seed)"),
    ],
)
def test_rtl_backend_options_are_checked_when_the_device_is_built(options, message):
    from sw_driver import Device

    with pytest.raises(ValueError) as error:
        Device(backend="rtl", backend_options=options)
    assert str(error.value) == message


def test_device_api_bad_values_name_what_is_wrong(tmp_path):
    from sw_driver import Device

    with pytest.raises(ValueError, match=r"^dram_trace '/proc/nope.csv': cannot write there"):
        Device(backend="rtl", dram_trace="/proc/nope.csv")
    with pytest.raises(ValueError, match=r"^dram_trace '.*': is a folder, not a file$"):
        Device(backend="rtl", dram_trace=tmp_path)
    with pytest.raises(ValueError, match="^backend_options must be a dict of option names to values, got 'seed'$"):
        Device(backend="perf", backend_options="seed")
    dev = Device(backend="perf", backend_options={"values": False})
    with pytest.raises(ValueError, match=r"^rows must be an int from 1 to 1099511627776, got 4611686018427387904$"):
        dev.reserve_table("t", rows=2**62, dim=32)
    with pytest.raises(ValueError, match=r"^dim must be an int from 1 to 65536, got 4611686018427387904$"):
        dev.reserve_table("t", rows=4, dim=2**62)
    assert dev.tables == {}, "a refused table leaves nothing placed"
    golden = Device()
    golden.load_table("t", np.ones((4, 4), np.float32))
    with pytest.raises(ValueError, match=r"mode must be 'sum' or 'mean', got array\(\['sum'\]"):
        golden.sls("t", [1], [1], mode=np.array(["sum"]))


def test_a_call_without_instructions_takes_no_cycles_on_the_perf_backend():
    from sw_driver import Device

    dev = Device(backend="perf")
    dev.load_table("t", np.ones((4, 4), np.float32))
    assert dev.run([]) == []
    assert dev.report.cycles == 0 and dev.report.instructions == 0


def test_results_a_failed_write_would_lose_go_to_a_named_file():
    from hw.user_input import OutputError

    with pytest.raises(OutputError, match=r"^cannot write '/proc/nope/s.csv' \(.+\); the results are in (\S+)$") as e:
        experiments.write_csv(experiments.Path("/proc/nope/s.csv"), [{"a": 1, "b": 2}])
    kept = experiments.Path(str(e.value).rsplit(" ", 1)[1])
    try:
        assert kept.read_text() == "a,b\n1,2\n"
    finally:
        kept.unlink()
