"""Every block's Verilog passes ``verilator --lint-only -Wall`` with only documented waivers."""

import re
import subprocess
from pathlib import Path

import pytest

from rtl_gen import block_names, generate, setup_verilator
from verif.runner import WAIVERS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "verilator.md"


def waived_rules() -> list[str]:
    return re.findall(r"^lint_off -rule (\w+)", WAIVERS.read_text(), re.M)


def test_every_waiver_is_documented():
    documented = DOCS.read_text()
    rules = waived_rules()
    assert rules, "the waiver file waives nothing?"
    for rule in rules:
        assert f"`{rule}`" in documented, f"waiver {rule} is not explained in docs/verilator.md"


@pytest.mark.rtl
@pytest.mark.parametrize("block", block_names())
def test_lint_clean_with_documented_waivers(block, tmp_path):
    setup_verilator()
    generated = generate(block, tmp_path)
    result = subprocess.run(
        ["verilator", "--lint-only", "-Wall", str(WAIVERS), str(generated.verilog_path)], capture_output=True, text=True
    )
    warnings = [line for line in result.stderr.splitlines() if line.startswith("%")]
    assert result.returncode == 0 and not warnings, "\n".join(warnings[:20])
