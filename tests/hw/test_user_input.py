"""hw.user_input: the one way the command lines report bad input, and the output-path checks."""

import argparse
import math

import pytest

from hw.user_input import (
    ArgumentParser,
    OutputError,
    UsageError,
    integer,
    number,
    run_command,
    writable_dir,
    writable_file,
)

UNWRITABLE = "/proc/recnmp-nope"  # no one may create anything in /proc, not even root


def test_writable_dir_checks_without_leaving_anything(tmp_path):
    deep = tmp_path / "a" / "b" / "c"
    assert writable_dir("--out", deep) == deep
    assert list(tmp_path.iterdir()) == [], "the check leaves no folder behind"
    (tmp_path / "keep").mkdir()
    writable_dir("--out", tmp_path / "keep")
    assert list((tmp_path / "keep").iterdir()) == []


def test_writable_dir_rejects_a_file_and_an_unwritable_place(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UsageError, match=r"^--out '.*/f': is a file, not a folder$"):
        writable_dir("--out", tmp_path / "f")
    with pytest.raises(UsageError, match=r"^--work-dir '/proc/recnmp-nope/x': cannot write there \(.+\)$"):
        writable_dir("--work-dir", UNWRITABLE + "/x")
    with pytest.raises(UsageError, match="^-o '': give a folder$"):
        writable_dir("-o", "")


def test_writable_file_keeps_an_existing_file_and_creates_nothing(tmp_path):
    existing = tmp_path / "old.csv"
    existing.write_text("kept")
    writable_file("--out", existing)
    assert existing.read_text() == "kept"
    writable_file("--out", tmp_path / "new" / "sub" / "t.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.csv"]


def test_writable_file_rejects_a_folder_and_an_unwritable_place(tmp_path):
    with pytest.raises(UsageError, match=r"^--dram-trace '.*': is a folder, not a file$"):
        writable_file("--dram-trace", tmp_path)
    with pytest.raises(UsageError, match=r"^--dram-trace '/proc/recnmp-nope.csv': cannot write there \(.+\)$"):
        writable_file("--dram-trace", UNWRITABLE + ".csv")


@pytest.mark.parametrize(
    "text,message",
    [
        ("0", "must be an integer from 1 to 10, got '0'"),
        ("11", "must be an integer from 1 to 10, got '11'"),
        ("x", "must be an integer from 1 to 10, got 'x'"),
        ("1.5", "must be an integer from 1 to 10, got '1.5'"),
    ],
)
def test_integer_names_the_range_and_the_text(text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=f"^{message}$"):
        integer(1, 10)(text)
    assert integer(1, 10)("10") == 10
    assert integer(0)("123456789012345678901234567890") == 123456789012345678901234567890


@pytest.mark.parametrize("text", ["-0.5", "1.5", "nan", "inf", "x", "1"])
def test_number_refuses_what_is_outside_or_not_finite(text):
    with pytest.raises(argparse.ArgumentTypeError, match=rf"^must be a number in \[0.0, 1.0\), got '{text}'$"):
        number(0.0, 1.0, below_high=True)(text)
    assert number(0.0, 1.0)("1") == 1.0 and not math.isnan(number(0.0, 1.0)("0.25"))


def test_parser_errors_are_one_line_and_exit_2(capsys):
    parser = ArgumentParser(prog="tool")
    parser.add_argument("--n", type=integer(1, 3))
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["--n", "9"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "tool: error: argument --n: must be an integer from 1 to 3, got '9'\n"
    sub = parser.add_subparsers(dest="command").add_parser("run")
    assert isinstance(sub, ArgumentParser), "subcommand parsers report errors the same way"


def test_run_command_turns_bad_input_into_one_line_and_keeps_real_failures(capsys):
    def bad():
        raise UsageError("--x 'y': no\nsecond line")

    assert run_command("tool sub", bad) == 2
    assert capsys.readouterr().err == "tool sub: error: --x 'y': no second line\n"

    def lost():
        raise OutputError("cannot write 'a.csv' (No space left on device); the results are in /tmp/b.csv")

    assert run_command("tool", lost) == 1
    assert capsys.readouterr().err.startswith("tool: error: cannot write 'a.csv'")
    assert run_command("tool", lambda: 1) == 1, "a real failure keeps its status"

    def bug():
        raise KeyError("internal")

    with pytest.raises(KeyError):  # a bug is not bad input: it keeps its traceback
        run_command("tool", bug)


def test_a_name_too_long_is_a_one_line_error(tmp_path):
    long = tmp_path / ("a" * 300)
    with pytest.raises(UsageError, match=r"^--out '.*': cannot write there \(File name too long\)$"):
        writable_file("--out", str(long) + ".csv")
    with pytest.raises(UsageError, match=r"^-o '.*': cannot write there \(File name too long\)$"):
        writable_dir("-o", long)


def test_a_place_the_user_may_not_enter_is_a_one_line_error(tmp_path, monkeypatch):
    # Root enters every folder, so the check sees what a user's Python sees: stat failing.
    def denied(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("pathlib.Path.exists", denied)
    monkeypatch.setattr("pathlib.Path.is_dir", denied)
    with pytest.raises(UsageError, match=r"^--out '/root/x.csv': cannot write there \(Permission denied\)$"):
        writable_file("--out", "/root/x.csv")
    with pytest.raises(UsageError, match=r"^--work-dir '/root/w': cannot write there \(Permission denied\)$"):
        writable_dir("--work-dir", "/root/w")


def test_a_symbolic_link_is_checked_through_and_kept(tmp_path):
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "target.csv")  # dangling: the target does not exist yet
    writable_file("--out", link)
    assert link.is_symlink() and not (tmp_path / "target.csv").exists()


@pytest.mark.parametrize("text,message", [("", "--out '': give a file"), ("new/", "--out 'new/': is a folder")])
def test_an_empty_path_or_a_trailing_slash_is_not_a_file(text, message):
    with pytest.raises(UsageError, match=f"^{message}"):
        writable_file("--out", text)
