"""The formal proofs (SymbiYosys + z3, docs/formal.md): every property proved with its covers
reached, and every mutation of the design violating its property.

Marker ``formal``: part of the default suite. The SymbiYosys work directories go under
``$RECNMP_FORMAL_BUILD`` or the system temporary folder, never the repository.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil

import pytest

from hw.user_input import UsageError
from verif.formal import cli
from verif.formal.params import FORMAL_GEOMETRY, FORMAL_TIMING, refresh_deadline, unchecked_timing
from verif.formal.registry import PROPERTIES, run_check, run_mutation
from verif.formal.runner import default_work_dir, run_task
from verif.formal.scheduler_ddr4 import SchedulerDDR4Spec

pytestmark = pytest.mark.formal

_CHECKS = [
    pytest.param(
        prop,
        check,
        id=f"{prop.name}-{check.mode}{check.depth}" + "".join(f"-{k}={v}" for k, v in check.spec_args.items()),
    )
    for prop in PROPERTIES.values()
    for check in prop.checks
]
#: Mutations too slow for CI (minutes with z3) run only with RECNMP_FORMAL_ALL=1.
_ALL = os.environ.get("RECNMP_FORMAL_ALL") == "1"
_MUTATIONS = [
    pytest.param(prop, mutation, id=f"{prop.name}-{mutation.name}")
    for prop in PROPERTIES.values()
    for mutation in prop.mutations
    if mutation.ci or _ALL
]


@pytest.fixture(scope="module")
def work_dir():
    if shutil.which("yowasp-sby") is None:  # pragma: no cover - the dev install provides it
        pytest.fail("yowasp-sby is not installed (pip install -e '.[dev]')")
    return default_work_dir() / "pytest"


@pytest.mark.parametrize(("prop", "check"), _CHECKS)
def test_property_holds(prop, check, work_dir, tmp_path):
    result = run_check(prop, check, work_dir=work_dir, trace_dir=tmp_path)
    assert result.passed, f"{prop.name}: {result.summary()}"
    if check.mode == "cover":
        spec = prop.build(**check.spec_args)
        spec.to_rtlil()
        assert sorted(result.reached_covers) == sorted(spec.covers), result.unreached_covers


@pytest.mark.parametrize(("prop", "mutation"), _MUTATIONS)
def test_mutation_violates_the_property(prop, mutation, work_dir, tmp_path):
    result = run_mutation(prop, mutation, work_dir=work_dir, trace_dir=tmp_path)
    assert result.passed, (
        f"{prop.name}: mutation {mutation.name} does not violate {mutation.breaks}: {result.summary()}"
    )
    assert list(result.reached_covers) == [f"violation:{mutation.breaks}"]
    assert (tmp_path / f"{prop.name}.{mutation.name}.vcd").exists()


def test_every_property_assertion_has_a_mutation():
    """Every assertion that is a property (not a proof invariant, ``inv.*``) is the target of
    at least one mutation."""
    # Properties built on the same spec share their mutations (the refresh deadline's spec
    # also asserts every DDR4 rule).
    by_spec: dict[type, set[str]] = {}
    for prop in PROPERTIES.values():
        by_spec.setdefault(prop.spec, set()).update(mutation.breaks for mutation in prop.mutations)
    for prop in PROPERTIES.values():
        spec = prop.build()
        spec.to_rtlil()
        properties = {name for name in spec.asserts if not name.startswith("inv.")}
        for mutation in prop.mutations:
            mutated = prop.build(**mutation.spec_args)
            mutated.to_rtlil()
            assert mutation.breaks in mutated.asserts, (prop.name, mutation.name)
        targeted = by_spec[prop.spec]
        missing = properties - targeted
        # Per-slot / per-rank copies of one rule share the mutation of one instance.
        missing = {n for n in missing if not any(_same_rule(n, t) for t in targeted)}
        assert not missing, f"{prop.name}: no mutation for {sorted(missing)}"


def _same_rule(name: str, target: str) -> bool:
    strip = str.maketrans("", "", "0123456789")
    return name.translate(strip) == target.translate(strip)


def test_failed_proof_reports_the_property_and_writes_its_waveform(work_dir, tmp_path):
    spec = SchedulerDDR4Spec(design_timing=unchecked_timing(tRCD=1), invariants=False)
    result = run_task(
        name="broken_tRCD", rtlil_text=spec.to_rtlil(), mode="bmc", depth=22, work_dir=work_dir, trace_dir=tmp_path
    )
    assert result.status == "fail"
    assert result.failed_asserts == ["ddr4.tRCD"]
    assert result.trace == tmp_path / "broken_tRCD.vcd" and result.trace.exists()
    assert "FAILED" in result.summary() and "ddr4.tRCD" in result.summary()


def test_cli_lists_and_rejects_unknown_names(capsys):
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args(["--list"])) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in PROPERTIES)
    with pytest.raises(UsageError, match="^unknown property 'no_such_property'; known: "):
        cli.run(parser.parse_args(["no_such_property"]))


def test_cli_runs_a_property(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args(["rob_slots", "--out", str(tmp_path), "--work-dir", str(tmp_path / "w")])) == 0
    out = capsys.readouterr().out
    assert "rob_slots: proved (k-induction, k=1)" in out
    assert "formal: all passed" in out


def test_refresh_deadline_bound_is_the_documented_one():
    # tRFC + tREFI + 1 + tRAS + banks - 1 + tRP at the formal timing.
    t, g = FORMAL_TIMING, FORMAL_GEOMETRY
    assert refresh_deadline(t, g) == t.tRFC + t.tREFI + 1 + t.tRAS + g.banks - 1 + t.tRP == 57


@pytest.mark.parametrize(
    ("part", "args"),
    [
        ("hw.request_buffer.RequestBuffer", {}),
        ("hw.read_tagger.ReadTagger", {}),
        ("hw.rank_retire.RankRetire", {}),
    ],
)
def test_test_only_mutations_are_validated(part, args):
    module, name = part.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    with pytest.raises(ValueError, match=r"mutation must be None or one of \("):
        cls(mutation="no_such_bug", **args)
    for mutation in cls.MUTATIONS:
        cls(mutation=mutation, **args)
