"""The ``recnmp`` command line: help, bad options, and a small ``recnmp demo`` on the RTL."""

import subprocess
import sys

import pytest

from sw_driver.cli import main


def recnmp(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "sw_driver", *args], capture_output=True, text=True, timeout=timeout)


def test_help_explains_every_demo_option():
    out = recnmp("demo", "--help").stdout
    for option in (
        "--ranks",
        "--dimms",
        "--op",
        "--dim",
        "--batch",
        "--pooling",
        "--seed",
        "--waves",
        "--dram-trace",
        "--cache-kib",
        "--hot-rows",
        "--hot-share",
        "--hot-threshold",
        "--calls",
        "--rows",
    ):
        assert option in out, option


@pytest.mark.parametrize(
    "args, words",
    [
        (["demo", "--ranks", "3"], "invalid choice: 3"),
        (["demo", "--dim", "0"], "must be an integer from 1 to 256, got '0'"),
        (["demo", "--op", "max"], "invalid choice: 'max'"),
        (["launch"], "invalid choice: 'launch'"),
    ],
)
def test_bad_options_exit_2_with_the_reason(args, words):
    result = recnmp(*args)
    assert result.returncode == 2 and words in result.stderr, result.stderr


def test_a_table_the_pu_cannot_take_is_a_clear_error(capsys):
    assert main(["demo", "--dim", "113", "--cache-kib", "8"]) == 2
    assert "fp32 rows of D = 113 are longer than the PU takes" in capsys.readouterr().err


@pytest.mark.rtl
def test_demo_runs_on_the_rtl_and_is_bit_exact(tmp_path):
    trace = tmp_path / "trace.csv"
    result = recnmp(
        "demo",
        "--cache-kib",
        "8",
        "--batch",
        "6",
        "--pooling",
        "5",
        "--calls",
        "2",
        "--op",
        "wsum_q8",
        "--dim",
        "24",
        "--dram-trace",
        str(trace),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "results: bit-exact with the golden model (6 bags)" in result.stdout
    for line in ("lookups per 1000 cycles:", "RankCache hit rate:", "hint mismatches:", "speedup"):
        assert line in result.stdout, line
    assert trace.read_text().startswith("cycle,channel,dimm,rank,command,bank_group,bank,row,column\n")
