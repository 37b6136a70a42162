"""cocotb testbench of ``rank_nmp``: random SLS packets against the golden model, bit for bit.

The DUT's DRAM port drives :class:`verif.dram_model.DramModel` (any DDR4 protocol or
timing violation fails the test); tables are placed in its :class:`RankImage`; NMP-Insts
go in on ``inst`` with random gaps and partial sums come out on ``psum`` under random
backpressure; malformed instructions (dropped and counted) and INVALIDATEs are mixed in. Each packet's partial sums must equal :func:`sim_models.sls.sls` bit for
bit (a single rank accumulates in instruction order from +0.0, which is the sequential
order).

Environment: ``RECNMP_PACKETS`` (default 12), ``RECNMP_STALL`` (pause probability on
``inst`` and ``psum``, default 0.2), ``RECNMP_OPS`` (comma-separated operator names, default
all four).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import fields
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge
from cocotb_coverage.coverage import CoverCross, CoverPoint

from hw.ddr4 import DDR4Geometry, DDR4Timing
from hw.isa import (
    DDR_CMD_ACT,
    DDR_CMD_RD,
    ConfigRegister,
    Opcode,
    config_daddr,
    eop_daddr,
    fused8_to_device,
    pack,
    words_to_ints,
)
from sim_models.sls import quantize_fused8, sls
from verif import coverage
from verif.block_description import BlockDescription
from verif.dram_model import DramModel
from verif.rank_image import RankImage
from verif.stream import StreamSink, StreamSource, random_pauses

GEOMETRY = DDR4Geometry()
LINE = GEOMETRY.burst_bytes


class Table:
    """An embedding table placed in one rank: row ``i`` occupies ``vsize`` lines of one DRAM row.

    Placement (``layout``): ``"bank"`` puts consecutive table rows in consecutive banks, so
    random lookups spread over all 16 banks; ``"bank_group"`` fills one DRAM row in each of
    the 16 banks, consecutive indices alternating bank groups, so a run of consecutive
    indices is a stream of row hits across bank groups (the pattern that can use the whole
    data bus: same-group bursts are tCCD_L apart); ``"scattered"``
    gives every table row its own random DRAM row and bank (all lookups miss the row buffer).
    """

    def __init__(self, rng, *, rows: int, quantised: bool, dim: int, base_row: int,
                 layout: str = "bank"):
        self.quantised = quantised
        if quantised:
            values = rng.standard_normal((rows, dim)).astype(np.float32)
            self.host = quantize_fused8(values)  # FBGEMM layout: q..., scale, bias
            device = fused8_to_device(self.host)
            self.elements = dim
        else:
            self.host = (rng.standard_normal((rows, dim)) * 2).astype(np.float32)
            device = self.host.view(np.uint8).reshape(rows, -1)
            self.elements = dim
        self.vsize = -(-device.shape[1] // LINE)
        self.device = np.zeros((rows, self.vsize * LINE), np.uint8)
        self.device[:, :device.shape[1]] = device
        self.per_dram_row = GEOMETRY.lines_per_row // self.vsize
        self.base_row = base_row
        self.layout = layout
        if layout == "scattered":
            self.scatter = [(int(b), int(r)) for b, r in zip(
                rng.integers(0, GEOMETRY.banks, rows),
                rng.choice(GEOMETRY.rows - base_row, rows, replace=False) + base_row)]

    def location(self, index: int) -> dict[str, int]:
        if self.layout == "scattered":
            bank_id, row = self.scatter[index]
            return {"bank_group": bank_id // GEOMETRY.banks_per_group,
                    "bank": bank_id % GEOMETRY.banks_per_group, "row": row, "column": 0}
        if self.layout == "bank_group":
            within, bank_id = divmod(index, GEOMETRY.banks)
            row, within = divmod(within, self.per_dram_row)
            return {"bank_group": bank_id % GEOMETRY.bank_groups,
                    "bank": bank_id // GEOMETRY.bank_groups, "row": self.base_row + row,
                    "column": within * self.vsize * GEOMETRY.burst_columns}
        slot, within = divmod(index, self.per_dram_row)
        bank_id, row = slot % GEOMETRY.banks, self.base_row + slot // GEOMETRY.banks
        return {
            "bank_group": bank_id // GEOMETRY.banks_per_group,
            "bank": bank_id % GEOMETRY.banks_per_group,
            "row": row,
            "column": within * self.vsize * GEOMETRY.burst_columns,
        }

    def load(self, image: RankImage) -> None:
        for index in range(len(self.device)):
            image.write(**self.location(index), data=self.device[index])

    def daddr(self, index: int) -> int:
        loc = self.location(index)
        return (loc["column"] | loc["row"] << 10 | loc["bank"] << 26 | loc["bank_group"] << 28)


@CoverPoint("rank_nmp.opcode", xf=lambda op, vsize, tag, loc: op.name,
            bins=["SUM", "WSUM", "SUM_Q8", "WSUM_Q8"])
@CoverPoint("rank_nmp.vsize", xf=lambda op, vsize, tag, loc: vsize, bins=[1, 2, 3, 4])
@CoverCross("rank_nmp.opcode_x_vsize", items=["rank_nmp.opcode", "rank_nmp.vsize"])
@CoverPoint("rank_nmp.tag", xf=lambda op, vsize, tag, loc: tag, bins=list(range(16)))
@CoverPoint("rank_nmp.locality", xf=lambda op, vsize, tag, loc: loc, bins=[0, 1])
def sample_lookup(opcode, vsize, tag, locality):
    """Coverage of the lookups sent."""


@CoverPoint("rank_nmp.cache_outcome", xf=lambda counters: [k for k, v in counters.items() if v],
            bins=["cache_hits", "cache_bypasses", "cache_fills", "cache_evictions", "row_conflicts"],
            rel=lambda value, b: b in value, inj=False)
@CoverPoint("rank_nmp.empty_tag_in_mask", xf=lambda counters: counters["empty_tags"], bins=[True],
            rel=lambda value, b: value > 0)
@CoverPoint("rank_nmp.control", xf=lambda counters: [k for k in ("invalidates", "illegal") if counters[k]],
            bins=["invalidates", "illegal"], rel=lambda value, b: b in value, inj=False)
def sample_run(counters):
    """Coverage of what happened inside the rank over the run."""


def packet(rng, table: Table, opcode: Opcode, *, max_bags=16, max_len=12):
    """One packet: (instruction words, mask, elements, expected {tag: fp32 vector}, empty bags)."""
    tags = rng.choice(16, int(rng.integers(1, max_bags + 1)), replace=False)
    weighted = opcode in (Opcode.WSUM, Opcode.WSUM_Q8)
    lookups = []  # (tag, index, weight)
    for tag in tags:
        for _ in range(int(rng.integers(0, max_len + 1))):
            # Small index pool: rows repeat, so the cache hits.
            index = int(rng.integers(0, len(table.host)))
            weight = np.float32(rng.standard_normal()) if weighted else np.float32(1.0)
            lookups.append((int(tag), index, weight))
    order = rng.permutation(len(lookups))  # bags interleave in the instruction stream
    lookups = [lookups[i] for i in order]
    insts = []
    if table.quantised:
        insts.append(dict(opcode=Opcode.CONFIG, ddr_cmd=0, vsize=0, weight=0.0, locality=0, psum_tag=0,
                          daddr=int(config_daddr(register=ConfigRegister.Q8_ELEMENTS, value=table.elements))))
    for tag, index, weight in lookups:
        locality = int(rng.integers(0, 2))
        sample_lookup(opcode, table.vsize, tag, locality)
        insts.append(dict(opcode=opcode, ddr_cmd=DDR_CMD_ACT | DDR_CMD_RD, daddr=table.daddr(index),
                          vsize=table.vsize, weight=float(weight), locality=locality,
                          psum_tag=tag))
    mask = 0
    for tag in tags:
        mask |= 1 << int(tag)
    insts.append(dict(opcode=Opcode.EOP, ddr_cmd=0, vsize=0, weight=0.0, locality=0, psum_tag=0,
                      daddr=int(eop_daddr(tag_mask=mask, elements=table.elements))))
    words = words_to_ints(pack({name: np.array([i[name] for i in insts]) for name in insts[0]}))
    words, illegal = with_illegal_words(rng, words)
    expected, empty = {}, 0
    for tag in sorted(int(t) for t in tags):
        mine = [(index, weight) for t, index, weight in lookups if t == tag]
        indices = np.array([i for i, _ in mine], np.int64)
        weights = np.array([w for _, w in mine], np.float32) if weighted else None
        expected[tag] = sls(table.host, indices, [len(mine)], weights=weights)[0]
        empty += not mine
    return words, mask, table.elements, expected, empty, illegal


ILLEGAL_OPCODES = sorted(set(range(16)) - {op.value for op in Opcode})


def with_illegal_words(rng, words: list[int], probability: float = 0.05) -> tuple[list[int], int]:
    """Insert malformed instructions (undefined opcodes, lookups of vsize 0) at random
    places; the rank must drop and count them without disturbing the packet."""
    out, illegal = [], 0
    for word in words:
        if rng.random() < probability:
            if rng.random() < 0.5:
                bad = (word & ~0xF) | int(rng.choice(ILLEGAL_OPCODES))
            else:
                bad = (word & ~(0x7 << 39) & ~0xF) | Opcode.SUM  # vsize 0
            out.append(bad)
            illegal += 1
        out.append(word)
    return out, illegal


class Testbench:
    def __init__(self, dut, *, stall: float, seed: int):
        self.dut = dut
        desc = BlockDescription.from_env()
        self.lanes = desc.params["lanes"]
        self.psum_layout = desc.layout("psum__payload")
        self.image = RankImage(GEOMETRY)
        # The DRAM is checked against the timing the DUT was generated with.
        timing = DDR4Timing(**{f.name: desc.params[f.name] for f in fields(DDR4Timing)})
        self.dram = DramModel(dut, "dram", dut.clk, self.image, timing=timing)
        self.source = StreamSource(dut, "inst", dut.clk, pause=random_pauses(stall, seed=seed))
        self.sink = StreamSink(dut, "psum", dut.clk, pause=random_pauses(stall, seed=seed + 1))

    async def reset(self) -> None:
        cocotb.start_soon(Clock(self.dut.clk, 10, unit="ns").start())
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 2)
        self.dut.rst.value = 0

    def beats(self, words: list[int]):
        """Decode psum beats: (tag, beat, [lanes uint32], last)."""
        out = []
        for word in words:
            fields = self.psum_layout.unpack(word)
            data = [fields[f"data.{n}"] for n in range(self.lanes)]
            out.append((fields["tag"], fields["beat"], data, fields["last"]))
        return out

    def check_packet(self, n: int, beats, mask: int, elements: int, expected) -> None:
        per_tag = -(-elements // self.lanes)
        tags = [t for t in range(16) if mask >> t & 1]
        assert len(beats) == per_tag * len(tags), (
            f"packet {n}: {len(beats)} beats, expected {per_tag} for each of tags {tags}")
        for i, (tag, beat, data, last) in enumerate(beats):
            want_tag = tags[i // per_tag]
            assert (tag, beat, last) == (want_tag, i % per_tag, int(i == len(beats) - 1)), (
                f"packet {n} beat {i}: tag {tag} beat {beat} last {last}")
        for t_i, tag in enumerate(tags):
            got = np.array([v for _, _, data, _ in beats[t_i * per_tag:(t_i + 1) * per_tag] for v in data],
                           np.uint32)[:elements]
            want = expected.get(tag, np.zeros(elements, np.float32)).view(np.uint32)
            both_nan = np.isnan(got.view(np.float32)) & np.isnan(want.view(np.float32))
            bad = np.nonzero((got != want) & ~both_nan)[0]
            assert len(bad) == 0, (
                f"packet {n} tag {tag}: {len(bad)} elements differ, first at {bad[:5].tolist()}: "
                f"expected {[hex(int(want[b])) for b in bad[:5]]}, got {[hex(int(got[b])) for b in bad[:5]]}")


INVALIDATE_WORD = words_to_ints(pack({
    "opcode": Opcode.INVALIDATE, "ddr_cmd": 0, "daddr": 0, "vsize": 0, "weight": 0.0,
    "locality": 0, "psum_tag": 0}))[0]

OPS = {"sum": Opcode.SUM, "wsum": Opcode.WSUM, "sum_q8": Opcode.SUM_Q8, "wsum_q8": Opcode.WSUM_Q8}


@cocotb.test()
async def random_packets_bit_exact(dut):
    packets = int(os.environ.get("RECNMP_PACKETS", "12"))
    stall = float(os.environ.get("RECNMP_STALL", "0.2"))
    ops = [OPS[name] for name in os.environ.get("RECNMP_OPS", ",".join(OPS)).split(",")]
    seed = cocotb.RANDOM_SEED
    rng = np.random.default_rng(seed)
    tb = Testbench(dut, stall=stall, seed=seed)
    # fp32 rows of 64-256 B (vsize 1-4), 8-bit rows of 64-256 B (D+8 bytes, vsize 1-4).
    fp32_tables = [Table(rng, rows=48, quantised=False, dim=16 * v, base_row=100 * v) for v in (1, 2, 3, 4)]
    q8_tables = [Table(rng, rows=48, quantised=True, dim=d, base_row=1000 + 100 * n)
                 for n, d in enumerate((56, 100, 150, 200))]
    tables = fp32_tables + q8_tables
    for table in tables:
        table.load(tb.image)
    await tb.reset()

    plan, empty_bags, illegal, invalidates = [], 0, 0, 0
    for n in range(packets):
        opcode = ops[n % len(ops)]
        quantised = opcode in (Opcode.SUM_Q8, Opcode.WSUM_Q8)
        table = (q8_tables if quantised else fp32_tables)[(n // len(ops)) % 4]
        words, mask, elements, expected, empty, bad = packet(rng, table, opcode)
        if n % 4 == 3:  # empty the cache between packets now and then
            words = [INVALIDATE_WORD] + words
            invalidates += 1
        tb.source.send_all(words)  # packets stream back to back: drains overlap fetches
        plan.append((mask, elements, expected))
        empty_bags += empty
        illegal += bad
    total_beats = sum(-(-e // tb.lanes) * bin(m).count("1") for m, e, _ in plan)
    await tb.sink.wait_for(total_beats)
    beats = tb.beats(tb.sink.received)
    start = 0
    for n, (mask, elements, expected) in enumerate(plan):
        count = -(-elements // tb.lanes) * bin(mask).count("1")
        tb.check_packet(n, beats[start:start + count], mask, elements, expected)
        start += count
    await ClockCycles(dut.clk, 40)
    assert dut.idle.value == 1, "the rank is not idle after the last packet"
    assert tb.image.unwritten_reads == 0, "the rank read memory no table was loaded in"
    lines = int(dut.lines.value)
    hits, misses = int(dut.cache_hits.value), int(dut.cache_misses.value)
    assert hits + misses == lines, f"{hits} hits + {misses} misses != {lines} lines"
    assert int(dut.illegal.value) == illegal, f"{int(dut.illegal.value)} illegal counted, {illegal} sent"
    assert int(dut.reads.value) == len(tb.dram.reads) == misses
    counters = {name: int(getattr(dut, name).value)
                for name in ("cache_hits", "cache_bypasses", "cache_fills", "cache_evictions", "row_conflicts")}
    counters["empty_tags"] = empty_bags
    counters["invalidates"] = invalidates
    counters["illegal"] = illegal
    sample_run(counters)
    coverage.export()
    dut._log.info(f"{packets} packets, {lines} lines, {hits} cache hits, "
                  f"{len(tb.dram.reads)} DRAM reads, {tb.dram.cycle} cycles, "
                  f"{invalidates} invalidates, {illegal} malformed instructions")


def lookup_packets(table: Table, indices, *, pooling: int = 80, bags: int = 8,
                   opcode: Opcode = Opcode.SUM) -> list[int]:
    """Lookups of ``indices`` in order: bags of ``pooling`` lookups, ``bags`` bags per
    packet (the paper's setup: 80 vectors per pooling, 8 poolings per packet), locality 0
    (every line from DRAM), weight 0.5 for the weighted operators."""
    insts = []
    if table.quantised:
        insts.append(dict(opcode=Opcode.CONFIG, ddr_cmd=0, vsize=0, weight=0.0, locality=0, psum_tag=0,
                          daddr=int(config_daddr(register=ConfigRegister.Q8_ELEMENTS, value=table.elements))))
    per_packet = pooling * bags
    for start in range(0, len(indices), per_packet):
        chunk = indices[start:start + per_packet]
        for n, index in enumerate(chunk):
            insts.append(dict(opcode=opcode, ddr_cmd=DDR_CMD_RD, daddr=table.daddr(int(index)),
                              vsize=table.vsize, weight=0.5, locality=0, psum_tag=n // pooling))
        insts.append(dict(opcode=Opcode.EOP, ddr_cmd=0, vsize=0, weight=0.0, locality=0, psum_tag=0,
                          daddr=int(eop_daddr(tag_mask=(1 << bags) - 1, elements=table.elements))))
    return words_to_ints(pack({name: np.array([i[name] for i in insts]) for name in insts[0]}))


def drained_beats(lookups: int, lanes: int, elements: int, *, pooling: int = 80, bags: int = 8) -> int:
    return -(-lookups // (pooling * bags)) * bags * -(-elements // lanes)


async def measure(tb: Testbench, words: list[int], drained_beats: int) -> dict:
    """Run ``words``; count DRAM data cycles and datapath beats over the busy window."""
    dut = tb.dut
    while dut.idle.value != 1:  # e.g. the partial-sum file is still being cleared after reset
        await FallingEdge(dut.clk)
    first_read, start_cycle = len(tb.dram.reads), tb.dram.cycle
    data_start = tb.dram.data_cycles
    beats = {"n": 0}

    async def count_datapath():
        while True:
            await FallingEdge(dut.clk)
            if dut.datapath.i__valid.value == 1 and dut.datapath.i__ready.value == 1:
                beats["n"] += 1

    counter = cocotb.start_soon(count_datapath())
    wall = time.perf_counter()
    received = tb.sink.transfers
    tb.source.send_all(words)
    await tb.sink.wait_for(received + drained_beats)
    wall = time.perf_counter() - wall
    counter.cancel()
    reads = tb.dram.reads[first_read:]
    window = reads[-1][0] + tb.dram.timing.tCL + tb.dram.timing.tBL - reads[0][0] - tb.dram.timing.tCL
    cycles = tb.dram.cycle - start_cycle
    t = tb.dram.timing
    first_data, last_data = reads[0][0] + t.tCL, reads[-1][0] + t.tCL + t.tBL
    refreshes = sum(1 for c in tb.dram.refreshes if first_data <= c < last_data)
    # Data-bus cycles a refresh takes at the least: close the banks, refresh, reopen.
    blackout = refreshes * (t.tRTP + t.tRP + t.tRFC + t.tRCD - t.tBL)
    return {
        "lookups": len(reads),
        "cycles": cycles,
        "cycles_per_lookup": window / len(reads),
        "refreshes": refreshes,
        "data_bus_utilisation": (tb.dram.data_cycles - data_start) / window,
        "datapath_utilisation": beats["n"] / window,
        "data_bus_utilisation_outside_refresh": (tb.dram.data_cycles - data_start) / (window - blackout),
        "lookups_per_1000_cycles": 1000 * len(reads) / (reads[-1][0] - reads[0][0] + 1),
        "simulated_cycles_per_second": cycles / wall,
    }


@cocotb.test(skip=os.environ.get("RECNMP_BENCH_OUT") is None)
async def throughput_benchmark(dut):
    """Row-hit streams across bank groups, and scattered rows across 16 banks (figures to JSON)."""
    rng = np.random.default_rng(1)
    tb = Testbench(dut, stall=0.0, seed=1)
    hits = Table(rng, rows=2048, quantised=False, dim=16, base_row=10, layout="bank_group")
    scattered = Table(rng, rows=2048, quantised=False, dim=16, base_row=2000, layout="scattered")
    for table in (hits, scattered):
        table.load(tb.image)
    await tb.reset()
    count = int(os.environ.get("RECNMP_BENCH_LOOKUPS", "6400"))
    results = {}
    # Starts after reset and ends before the first refresh (tREFI = 9360 cycles).
    first = 1920
    words = lookup_packets(hits, np.arange(first) % len(hits.host))
    results["row_hits_between_refreshes"] = await measure(
        tb, words, drained_beats(first, tb.lanes, hits.elements))
    words = lookup_packets(hits, np.arange(count) % len(hits.host))
    results["row_hits_with_refresh"] = await measure(
        tb, words, drained_beats(count, tb.lanes, hits.elements))
    words = lookup_packets(scattered, rng.integers(0, len(scattered.host), count // 2))
    results["random_rows_16_banks"] = await measure(
        tb, words, drained_beats(count // 2, tb.lanes, hits.elements))
    q8 = Table(rng, rows=2048, quantised=True, dim=56, base_row=30000, layout="bank_group")
    q8.load(tb.image)
    for opcode in (Opcode.SUM_Q8, Opcode.WSUM_Q8):
        words = lookup_packets(q8, np.arange(1280), opcode=opcode)
        results[f"{opcode.name.lower()}_64B_rows"] = await measure(
            tb, words, drained_beats(1280, tb.lanes, q8.elements))
    results["timing"] = tb.dram.timing.as_dict()
    Path(os.environ["RECNMP_BENCH_OUT"]).write_text(json.dumps(results, indent=2))
