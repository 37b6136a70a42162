"""Stallable stream pipelines: combinational steps with a chosen number of register stages.

The arithmetic units describe their computation as a short list of combinational
:class:`Step` s and let :func:`stream_pipeline` place ``latency`` register stages between
them, with the project's stall rule (the one :class:`hw.uint_adder.UIntAdder` uses): the whole
pipeline advances when its last stage is empty or being read,

    ``advance = ~valid_last | o.ready``,  ``i.ready = advance``,

and every stage (valid bit and data) moves only on ``advance``. Nothing is lost or
duplicated under backpressure, and one operation per cycle passes when ``o`` never stalls.

Placement of the register stages for ``n`` steps and a latency ``L``:

* ``L >= n``: one register after every step, then ``L - n`` plain delay registers at the end;
* ``L < n``: the steps are merged combinationally into ``L`` consecutive groups, as equal in
  size as possible (earlier groups are the smaller ones), with a register after each group.

:func:`delay` makes a side delay line that moves with a unit's ``advance`` (its
``i.ready``), to carry operands alongside a unit's pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from amaranth.hdl import Module, Signal, Value
from amaranth.lib import data

from .params import check_mutation

__all__ = ["Step", "delay", "register_after", "stream_pipeline", "wire"]


@dataclass(frozen=True)
class Step:
    """One combinational step of a pipeline.

    Parameters
    ----------
    name : str
        Names the step's output signals in the generated Verilog (``NAME`` for a
        combinational output, ``NAME_q`` for its register).
    layout : amaranth.lib.data.StructLayout
        Shape of the step's output.
    function : callable
        ``function(m, x)`` with ``x`` a view of the previous step's output (of the input
        payload for the first step); returns a mapping of every field of ``layout`` to its
        value. It may add combinational logic to ``m``, never synchronous logic.
    """

    name: str
    layout: data.StructLayout
    function: Callable[[Module, data.View], Mapping[str, object]]


def register_after(steps: int, latency: int) -> list[bool]:
    """Which steps are followed by a register stage (before any trailing delay stages).

    >>> register_after(3, 2)
    [True, False, True]
    >>> register_after(4, 3)
    [True, True, False, True]
    """
    if steps < 1 or latency < 1:
        raise ValueError("a pipeline needs at least one step and one register stage")
    if latency >= steps:
        return [True] * steps
    ends = {(g + 1) * steps // latency - 1 for g in range(latency)}
    return [k in ends for k in range(steps)]


#: Test-only deliberate bugs of :func:`stream_pipeline` (``mutation``), to show that the
#: formal properties bite: ``"advance_ignores_ready"`` (the pipeline moves while ``o`` stalls).
MUTATIONS = ("advance_ignores_ready",)


def stream_pipeline(
    m: Module, *, i, o, steps: Sequence[Step], latency: int, mutation: str | None = None
) -> list[Signal]:
    """Connect stream ``i`` to stream ``o`` through ``steps`` with ``latency`` register stages.

    ``i`` and ``o`` are the component's stream interfaces (``i.payload`` feeds the first
    step; the last step's layout must be that of ``o.payload``). Latency is exactly
    ``latency`` cycles, see the module docstring for where the registers go. Returns the
    valid bits of the register stages, first to last (for the formal specs).
    """
    check_mutation(mutation, MUTATIONS)
    last = steps[-1].layout
    if last != o.payload.shape():
        raise ValueError(f"the last step's layout {last!r} is not the output payload's layout")
    registered = register_after(len(steps), latency)
    extra = latency - sum(registered)

    advance = Signal()
    valid = i.valid
    value = i.payload
    stages: list[tuple[Signal, data.View, object]] = []  # (valid_q, data_q, data_d)

    for step, reg in zip(steps, registered):
        out = Signal(step.layout, name=step.name)
        fields = step.function(m, value)
        names = {name for name, _ in step.layout}
        if set(fields) != names:
            raise ValueError(f"step {step.name!r} returned fields {sorted(fields)}, layout has {sorted(names)}")
        m.d.comb += [out[name].eq(fields[name]) for name in fields]
        value = out
        if reg:
            valid_q = Signal(name=f"{step.name}_valid")
            value_q = Signal(step.layout, name=f"{step.name}_q")
            stages.append((valid_q, value_q, (valid, value)))
            valid, value = valid_q, value_q
    for k in range(extra):
        valid_q = Signal(name=f"delay{k}_valid")
        value_q = Signal(last, name=f"delay{k}_q")
        stages.append((valid_q, value_q, (valid, value)))
        valid, value = valid_q, value_q

    m.d.comb += [
        advance.eq(~valid | o.ready if mutation != "advance_ignores_ready" else 1),
        i.ready.eq(advance),
        o.valid.eq(valid),
        o.payload.eq(value),
    ]
    with m.If(advance):
        for valid_q, value_q, (valid_d, value_d) in stages:
            m.d.sync += [valid_q.eq(valid_d), value_q.eq(value_d)]
    return [valid_q for valid_q, _, _ in stages]


def delay(m: Module, value, cycles: int, *, enable, name: str) -> Value:
    """``value`` delayed by ``cycles`` registers that load only when ``enable`` is high.

    With ``enable`` a unit's ``i.ready`` (its ``advance``) and ``cycles`` its latency, the
    output lines up with the unit's output: it is the ``value`` that was presented with the
    operation now in the unit's last stage. Returns ``value`` itself for ``cycles == 0``.
    """
    value = Value.cast(value)
    for k in range(cycles):
        reg = Signal(value.shape(), name=f"{name}_d{k}")
        with m.If(enable):
            m.d.sync += reg.eq(value)
        value = reg
    return value


def wire(m: Module, name: str, value, shape=None) -> Signal:
    """A named combinational signal driven by ``value`` (of ``shape``, default its own).

    Use it for every intermediate value that is read more than once: an Amaranth expression
    is emitted once per use, so shared sub-expressions would otherwise be duplicated in the
    generated Verilog (and in simulation).
    """
    value = Value.cast(value)
    signal = Signal(value.shape() if shape is None else shape, name=name)
    m.d.comb += signal.eq(value)
    return signal
