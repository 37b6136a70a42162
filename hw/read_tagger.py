"""Tags the read data returned by the DRAM with the id of the RD that asked for it."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .ddr4 import DDR4Geometry, DDR4Timing
from .params import check_int, check_mutation

__all__ = ["ReadTagger"]


def _bits(count: int) -> int:
    return max(1, (count - 1).bit_length())


class ReadTagger(wiring.Component):
    """A ``tCL + tBL - 1``-stage shift register of (valid, id) that tags returned beats.

    A RD issued in cycle ``c`` (``rd`` high, its request's ``id``) returns its ``tBL``
    beats on ``rd_data`` in cycles ``c + tCL .. c + tCL + tBL - 1`` (the latency is fixed,
    so the DRAM's ``rd_valid`` is not needed). Each beat leaves on ``rdata`` one cycle
    after it arrives (a register), with the id, its beat number and ``last`` on beat
    ``tBL - 1``. At most one RD's beat is in the window at a time (tCCD_S >= tBL).

    After reset the shift register is empty: beats of RDs issued before the reset arrive
    untagged and are not reported.

    Parameters
    ----------
    timing : DDR4Timing
        ``tCL`` and ``tBL`` are used.
    geometry : DDR4Geometry
        ``beat_bytes`` gives the data width.
    id_width : int
        1..16.

    Attributes
    ----------
    rd : In(1)
        A RD is issued in this cycle.
    id : In(id_width)
        Its request's id.
    rd_data : In(8 * beat_bytes)
        The DRAM's read data.
    rdata : Out(stream.Signature(StructLayout({"id", "beat", "last", "data"}), always_ready=True))
        Tagged beats.
    busy : Out(1)
        A RD is in flight or a beat is on ``rdata``.

    Latency: first beat on ``rdata`` ``tCL + 1`` cycles after the RD.

    ``registers`` (set by :meth:`elaborate`, for the formal specs of ``verif/formal``):
    ``pipe_valid`` and ``pipe_id`` (the shift register, stage 0 = the cycle after the RD)
    and ``out_valid``. ``mutation`` (tests only, default ``None``): ``"late_by_one"`` tags
    each beat one cycle late.
    """

    #: Test-only deliberate bugs (``mutation``), to show that the formal properties bite.
    MUTATIONS = ("late_by_one",)

    def __init__(
        self,
        *,
        timing: DDR4Timing = DDR4Timing(),
        geometry: DDR4Geometry = DDR4Geometry(),
        id_width: int = 6,
        mutation: str | None = None,
    ):
        self._mutation = check_mutation(mutation, self.MUTATIONS)
        if not isinstance(timing, DDR4Timing):
            raise TypeError(f"timing must be a DDR4Timing, got {timing!r}")
        if not isinstance(geometry, DDR4Geometry):
            raise TypeError(f"geometry must be a DDR4Geometry, got {geometry!r}")
        check_int("id_width", id_width, 1, 16)
        self._timing = timing
        self._geometry = geometry
        self._id_width = id_width
        super().__init__(
            {
                "rd": In(1),
                "id": In(id_width),
                "rd_data": In(8 * geometry.beat_bytes),
                "rdata": Out(
                    stream.Signature(
                        data.StructLayout(
                            {"id": id_width, "beat": _bits(timing.tBL), "last": 1, "data": 8 * geometry.beat_bytes}
                        ),
                        always_ready=True,
                    )
                ),
                "busy": Out(1),
            }
        )

    @property
    def timing(self) -> DDR4Timing:
        return self._timing

    @property
    def geometry(self) -> DDR4Geometry:
        return self._geometry

    @property
    def id_width(self) -> int:
        return self._id_width

    def elaborate(self, platform):
        m = Module()
        t = self._timing
        stages = t.tCL + t.tBL - 1 + (self._mutation == "late_by_one")
        pipe_valid = [Signal(name=f"rd_pipe_valid_{k}") for k in range(stages)]
        pipe_id = [Signal(self._id_width, name=f"rd_pipe_id_{k}") for k in range(stages)]
        m.d.sync += [pipe_valid[0].eq(self.rd), pipe_id[0].eq(self.id)]
        for k in range(1, stages):
            m.d.sync += [pipe_valid[k].eq(pipe_valid[k - 1]), pipe_id[k].eq(pipe_id[k - 1])]
        out_valid = Signal()
        m.d.sync += [
            out_valid.eq(0),
            self.rdata.payload.data.eq(self.rd_data),
        ]
        for beat in reversed(range(t.tBL)):  # at most one tap is valid (tCCD_S >= tBL)
            k = t.tCL - 1 + beat + (self._mutation == "late_by_one")
            with m.If(pipe_valid[k]):
                m.d.sync += [
                    out_valid.eq(1),
                    self.rdata.payload.id.eq(pipe_id[k]),
                    self.rdata.payload.beat.eq(beat),
                    self.rdata.payload.last.eq(beat == t.tBL - 1),
                ]
        m.d.comb += [
            self.rdata.valid.eq(out_valid),
            self.busy.eq(Cat(pipe_valid).any() | out_valid),
        ]
        self.registers = SimpleNamespace(pipe_valid=pipe_valid, pipe_id=pipe_id, out_valid=out_valid)
        return m
