"""The combinational-path check (``verif/formal/comb_paths.py``, ``recnmp formal
stream_valid_registered``): it flags a ``ready`` -> ``valid`` / ``payload`` path (through logic
and through an asynchronous memory read), not a registered output; it refuses cells it does
not model; the connection evidence rejects anything but a straight wiring; and every
generated block meets its documented expectation (``docs/formal.md``)."""

from __future__ import annotations

import argparse

import pytest
from amaranth.hdl import ClockDomain, ClockSignal, Instance, Module, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from rtl_gen.registry import block_names, get_block
from verif.formal import cli, comb_paths
from verif.formal.comb_paths import (
    EXPECTED,
    VARIANTS,
    CombPathError,
    analyse,
    check_connection,
    expectation_failures,
    run_property,
    stream_ports,
)
from verif.formal.registry import PROPERTIES

pytestmark = pytest.mark.formal


class _Toy(wiring.Component):
    """A test-only stream block: ``kind`` chooses how ``o`` is driven.

    * ``comb_valid``: ``o.valid = i.valid & o.ready`` (the bug the check must flag);
    * ``registered``: a one-entry register stage, ``i.ready = ~o.valid | o.ready``;
    * ``comb_payload``: registered valid, ``o.payload = data ^ o.ready``;
    * ``other_port``: ``o.valid`` registered but ``o.valid = reg & p.ready`` for a second
      output stream ``p``;
    * ``async_memory``: ``o.valid`` read from a memory by an asynchronous port addressed by
      ``o.ready``;
    * ``sync_memory``: the same with a synchronous read port (registered);
    * ``ready_clock``: ``o.valid`` a register clocked by ``o.ready``.
    """

    def __init__(self, kind: str):
        self.kind = kind
        super().__init__(
            {
                "i": In(stream.Signature(8)),
                "o": Out(stream.Signature(8)),
                "p": Out(stream.Signature(1)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        full = Signal()
        data = Signal(8)
        m.d.comb += self.i.ready.eq(~full | self.o.ready)
        with m.If(self.i.ready):
            m.d.sync += [full.eq(self.i.valid), data.eq(self.i.payload)]
        m.d.comb += [self.o.valid.eq(full), self.o.payload.eq(data), self.p.valid.eq(full), self.p.payload.eq(1)]
        if self.kind == "comb_valid":
            m.d.comb += self.o.valid.eq(self.i.valid & self.o.ready)
        elif self.kind == "comb_payload":
            m.d.comb += self.o.payload.eq(data ^ self.o.ready.replicate(8))
        elif self.kind == "other_port":
            m.d.comb += self.o.valid.eq(full & self.p.ready)
        elif self.kind in ("async_memory", "sync_memory"):
            m.submodules.mem = mem = memory.Memory(shape=8, depth=2, init=[0, 1])
            write = mem.write_port()
            read = mem.read_port(domain="comb" if self.kind == "async_memory" else "sync")
            m.d.comb += [write.addr.eq(data[0]), write.data.eq(data), write.en.eq(self.i.valid)]
            m.d.comb += [read.addr.eq(self.o.ready), self.o.valid.eq(read.data[0] & full)]
        elif self.kind == "ready_clock":
            m.domains.by_ready = ClockDomain("by_ready", reset_less=True)
            toggle = Signal()
            m.d.comb += ClockSignal("by_ready").eq(self.o.ready)
            m.d.by_ready += toggle.eq(~toggle)
            m.d.comb += self.o.valid.eq(toggle)
        else:
            assert self.kind == "registered"
        return m


def _result(kind: str, port: str = "o"):
    return next(r for r in analyse(_Toy(kind), kind) if r.port == port)


def test_a_combinational_ready_to_valid_path_is_flagged():
    r = _result("comb_valid")
    assert not r.valid_registered and set(r.valid_from) == {"o"}
    path = r.valid_from["o"]
    assert path[0] == "o__ready" and path[-1] == "o__valid"
    assert r.payload_registered


def test_a_registered_valid_is_not_flagged():
    for port in ("o", "p"):
        r = _result("registered", port)
        assert r.valid_registered and r.payload_registered, (port, r)


def test_the_payload_is_reported_separately():
    r = _result("comb_payload")
    assert r.valid_registered
    assert set(r.payload_from) == {"o"}


def test_a_combinational_payload_fails_a_registered_expectation():
    failures = expectation_failures("comb_payload", _result("comb_payload"), expected="registered")
    assert len(failures) == 1 and failures[0].startswith("comb_payload.o.payload depends on o.ready: o__payload[")
    assert expectation_failures("registered", _result("registered"), expected="registered") == []
    assert expectation_failures("comb_payload", _result("comb_payload"), expected="allowed") == []


def test_a_register_clocked_by_ready_is_flagged():
    r = _result("ready_clock")
    assert not r.valid_registered and set(r.valid_from) == {"o"}


def test_a_path_from_another_output_streams_ready_is_flagged():
    r = _result("other_port")
    assert set(r.valid_from) == {"p"}
    assert _result("other_port", "p").valid_registered


def test_a_path_through_an_asynchronous_memory_read_is_flagged():
    assert set(_result("async_memory").valid_from) == {"o"}
    assert _result("sync_memory").valid_registered


def test_cells_the_check_does_not_model_are_an_error():
    with pytest.raises(CombPathError, match=r"\$frobnicate"):
        list(comb_paths._cell_edges("c", {"type": "$frobnicate", "connections": {}, "parameters": {}}))

    class _BlackBox(wiring.Component):
        def __init__(self):
            super().__init__({"o": Out(stream.Signature(1))})

        def elaborate(self, platform):
            m = Module()
            m.submodules.box = Instance("black_box", i_a=self.o.ready, o_y=self.o.valid)
            return m

    with pytest.raises(CombPathError):
        analyse(_BlackBox(), "black_box")


class _Wrapper(wiring.Component):
    """Wraps a :class:`_Toy`: ``o`` straight from the toy's ``o``, or (``staged``) through
    an inverter on ``valid``."""

    def __init__(self, staged: bool):
        self.staged = staged
        self.part = _Toy("registered")
        super().__init__({"i": In(stream.Signature(8)), "o": Out(stream.Signature(8))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.part = self.part
        wiring.connect(m, wiring.flipped(self.i), self.part.i)
        m.d.comb += self.part.p.ready.eq(1)
        wiring.connect(m, self.part.o, wiring.flipped(self.o))
        if self.staged:
            m.d.comb += self.o.valid.eq(~self.part.o.valid)
        return m


def test_the_connection_evidence_accepts_only_a_straight_wiring():
    straight = _Wrapper(staged=False)
    check_connection(straight, straight.o, straight.part.o, parts=(straight.part,), where="straight")
    staged = _Wrapper(staged=True)
    with pytest.raises(CombPathError, match="valid is not wired straight through"):
        check_connection(staged, staged.o, staged.part.o, parts=(staged.part,), where="staged")
    with pytest.raises(CombPathError, match="not a submodule"):
        check_connection(straight, straight.o, straight.part.o, parts=(_Toy("registered"),), where="foreign")


def test_every_generated_output_stream_has_an_expectation():
    labels = {label for label, _, _ in VARIANTS}
    assert {block for _, block, _ in VARIANTS} == set(block_names())
    for label, block, params in VARIANTS:
        component, _ = get_block(block).elaborate(params)
        for port in stream_ports(component):
            assert (label, port.name) in EXPECTED, (label, port.name)
    assert {label for label, _ in EXPECTED} <= labels


@pytest.mark.parametrize(("label", "block", "params"), VARIANTS, ids=[v[0].replace(" ", "-") for v in VARIANTS])
def test_every_block_meets_its_documented_expectation(label, block, params):
    result = run_property(variants=[(label, block, params)], verbose=False)
    assert result.passed, result.summary()
    for r in result.ports:
        assert EXPECTED[(label, r.port)] != "registered" or r.valid_registered
    if block in comb_paths.CONNECTIONS:
        assert result.connections


def test_recnmp_formal_runs_the_check(monkeypatch, capsys):
    assert PROPERTIES["stream_valid_registered"].run is comb_paths.run_property
    monkeypatch.setattr(comb_paths, "VARIANTS", (("uint_adder", "uint_adder", {}),))
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args(["stream_valid_registered"])) == 0
    out = capsys.readouterr().out
    assert "uint_adder.o: valid registered; payload registered [registered]" in out
    assert "stream_valid_registered: checked (netlist, 1 output streams, valid registered in 1" in out
    assert "formal: all passed" in out
