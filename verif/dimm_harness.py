"""Run a DIMM job with every per-cycle agent inside the simulation: Python only at the edges.

:func:`run_job` runs one :class:`verif.dimm_job.DimmJob` (a DIMM's instruction words with
their issue cycles, its ranks' images, the result beats to expect) on the generated
``dimm_nmp`` wrapped in a simulation-only SystemVerilog top, ``recnmp_dimm_harness``,
generated here from the block's JSON side file. The top holds what the cocotb testbench of
:mod:`verif.tb.dimm_nmp` does in Python on every clock edge:

* the instruction source: the job's words from a memory, each not before its issue cycle,
  with seeded random pauses;
* the result sink: seeded random backpressure, every beat written to a file;
* per rank, ``recnmp_sim_pkg::Ddr4Rank``: the DDR4 protocol checker (the rules and
  messages of :mod:`verif.ddr4_checker`, with the controller-reset rules) and the DRAM
  model (open rows, each RD's burst ``tCL`` cycles later from a sparse image loaded in
  bulk with ``$readmemh``);
* the cycle count, the idle waits, a reset in the middle of the job, the end of the job
  and its time-outs, exactly as :mod:`verif.tb.dimm_nmp` counts them (so both harnesses
  give the same ``cycles`` and DRAM commands for a job without pauses).

Python writes the job's files, starts the simulation (a C++ loop drives the clock until the
top raises ``done``: ``verif/hdl/harness_main.cpp``, built by :func:`verif.runner.run_harness`)
and reads the result files. The harness is never part of the synthesisable output.

One difference from the Python testbench: a ``reset_at`` that falls before the PU is idle
after power-up resets it on the cycle after it is first idle; the Python testbench resets
it on that cycle (a reset at or after the idle point is pulsed on the same cycle in both).
"""

from __future__ import annotations

import time
from dataclasses import fields
from pathlib import Path

import numpy as np

from hw import isa
from hw.ddr4 import DDR4Geometry, DDR4Timing
from hw.refresh_control import recovery_cycles

from .block_description import BlockDescription
from .dimm_job import beat_arrays

__all__ = ["HARNESS_TOP", "SIM_PACKAGE", "harness_source", "read_job_results", "run_job", "write_job_files"]

HARNESS_TOP = "recnmp_dimm_harness"
#: The classes of the simulation-only models (checker, rank, stalls).
SIM_PACKAGE = Path(__file__).resolve().parent / "hdl" / "recnmp_sim_pkg.sv"
GEOMETRY = DDR4Geometry()
#: Cycles the harness runs after the job's last beat before it stops (as verif.tb.dimm_nmp).
TAIL_CYCLES = 8
_Q32 = 1 << 32


def _streams(description: BlockDescription) -> tuple[list[str], list[str]]:
    """The DUT's status counters (32-bit outputs of no stream or port) and its rank prefixes."""
    counters = [
        name
        for name, (direction, width) in description.ports.items()
        if direction == "output" and width == 32 and "__" not in name
    ]
    ranks = [f"dram{r}" for r in range(description.params["ranks"])]
    return counters, ranks


def harness_source(description: BlockDescription, geometry: DDR4Geometry = GEOMETRY) -> str:
    """The SystemVerilog of ``recnmp_dimm_harness`` around the block ``description`` describes."""
    params = description.params
    timing = DDR4Timing(**{f.name: params[f.name] for f in fields(DDR4Timing)})
    counters, ranks = _streams(description)
    declarations, connections = [], []
    for name, (direction, width) in description.ports.items():
        if name == "clk":
            connections.append(".clk(clk)")
            continue
        init = " = 1'b1" if name == "rst" else (" = '0" if direction == "input" else "")
        declarations.append(f"  logic [{width - 1}:0] {name}{init};")
        connections.append(f".{name}({name})")
    # The DRAM's timing is the PU's unless a run gives another (+DRAM_tRCD=17 ...).
    config = "\n".join(
        f'    cfg.{f.name} = {getattr(timing, f.name)};\n    void\'($value$plusargs("DRAM_{f.name}=%d", cfg.{f.name}));'
        for f in fields(DDR4Timing)
    )
    geometry_lines = "\n".join(
        f"    cfg.{name} = {getattr(geometry, name)};"
        for name in ("bank_groups", "banks_per_group", "rows", "columns", "burst_columns", "beats_per_burst")
    )
    sample = "\n".join(
        f"      if (rank_model[{r}].command(n, {p}__cmd, {p}__bank_group, {p}__bank, {p}__row, {p}__column))"
        f" violated({r});"
        for r, p in enumerate(ranks)
    )
    drive = "\n".join(
        f"    {{{p}__rd_valid, {p}__rd_data}} <= rank_model[{r}].beat(n + 1);" for r, p in enumerate(ranks)
    )
    status = "\n".join(f'      $fwrite(f, "counter {c} %0d\\n", {c});' for c in counters)
    return _TEMPLATE.format(
        ranks=len(ranks),
        dut=description.top,
        declarations="\n".join(declarations),
        connections=",\n    ".join(connections),
        config=config,
        geometry=geometry_lines,
        sample=sample,
        drive=drive,
        status=status,
        tail=TAIL_CYCLES,
        recovery_bound=recovery_cycles(timing, geometry) + params["cache_size_bytes"] // 64,
    )


# The harness. Cycle n is the n-th cycle after the power-up reset; the edge that ends it is
# where the Python testbench's falling edge and its read-only phase of that cycle are
# reproduced: first what it does before sampling (the idle wait), then its samples of cycle
# n, then what it decides for cycle n + 1 (the end of the job, the reset, the drives). Its
# cycle count is then n + 1 (it counts from its first edge): the issue cycles and the reset
# cycle of a job are compared with n + 1, and its DRAM models number cycle n as n.
_TEMPLATE = """\
// Generated by verif/dimm_harness.py: the simulation-only top of {dut} (never synthesised).
module recnmp_dimm_harness (input logic clk, output logic done);
  import recnmp_sim_pkg::*;
{declarations}

  {dut} dut (
    {connections}
  );

  typedef enum int {{WAIT_IDLE, SENDING, DRAIN, FINISHED}} state_e;
  string job;
  longint words_count, expected, timeout_cycles, reset_at = -1, resume_at = 0;
  longint unsigned seed = 1, inst_stall = 0, result_stall = 0;
  int trace = 0;
  logic [78:0] words[longint];
  longint due[longint];
  Ddr4Config cfg;
  Ddr4Rank rank_model[{ranks}];
  Stalls inst_stalls, result_stalls;
  int results_file, trace_file;

  state_e state = WAIT_IDLE;
  longint edges = 0, n = 0;
  // The batch being sent: words[first .. last - 1], word k due at base + due[k] - due_base.
  longint first = 0, last = 0, accepted = 0, base = 0, due_base = 0;
  longint transfers = 0, received_before = 0, start = 0, finish = 0, idle_limit = 0;
  longint reset_cycle = -1;  // the first cycle of the mid-job reset
  bit after_reset = 0, in_reset[{ranks}];
  int phase = 0;

  initial begin
    if (!$value$plusargs("JOB=%s", job)) $fatal(1, "recnmp_dimm_harness: no +JOB=<folder>");
    void'($value$plusargs("WORDS=%d", words_count));
    void'($value$plusargs("EXPECTED=%d", expected));
    void'($value$plusargs("TIMEOUT=%d", timeout_cycles));
    void'($value$plusargs("RESET_AT=%d", reset_at));
    void'($value$plusargs("RESUME_AT=%d", resume_at));
    void'($value$plusargs("SEED=%d", seed));
    void'($value$plusargs("INST_STALL=%d", inst_stall));
    void'($value$plusargs("RESULT_STALL=%d", result_stall));
    void'($value$plusargs("TRACE=%d", trace));
    if (words_count > 0) begin
      $readmemh({{job, "/words.hex"}}, words);
      $readmemh({{job, "/due.hex"}}, due);
    end
    cfg = new;
{config}
{geometry}
    foreach (rank_model[r]) begin
      rank_model[r] = new(cfg, r, 0);
      rank_model[r].load($sformatf("%s/image%0d.hex", job, r));
      in_reset[r] = 0;
    end
    inst_stalls = new(seed, inst_stall);
    result_stalls = new(seed + 1, result_stall);
    results_file = $fopen({{job, "/results.txt"}}, "w");
    trace_file = trace ? $fopen({{job, "/trace.csv"}}, "w") : 0;
    foreach (rank_model[r]) rank_model[r].trace_file = trace_file;
    last = reset_at >= 0 ? resume_at : words_count;
    idle_limit = 4 * {recovery_bound};
  end

  function automatic void write_status(string outcome, string detail);
    int f = $fopen({{job, "/status.txt"}}, "w");
    $fwrite(f, "outcome %s\\n", outcome);
    $fwrite(f, "cycles %0d\\n", finish - start);
    $fwrite(f, "idle %0d\\n", idle);
    $fwrite(f, "accepted %0d\\n", accepted);
    $fwrite(f, "words %0d\\n", words_count);
    $fwrite(f, "transfers %0d\\n", transfers - received_before);
    $fwrite(f, "reset %0d\\n", after_reset);
    foreach (rank_model[r]) begin
      $fwrite(f, "unwritten_reads %0d %0d\\n", r, rank_model[r].unwritten_reads);
      $fwrite(f, "dram %0d %0d %0d %0d %0d\\n", r, rank_model[r].protocol.counts[ACT],
              rank_model[r].protocol.counts[RD], rank_model[r].protocol.counts[PRE],
              rank_model[r].protocol.counts[REF]);
    end
    if (outcome == "ok") begin
{status}
    end
    $fclose(f);
    if (detail != "") begin
      f = $fopen({{job, "/failure.txt"}}, "w");
      $fwrite(f, "%s\\n", detail);
      $fclose(f);
    end
    $fclose(results_file);
    if (trace_file != 0) $fclose(trace_file);
    state = FINISHED;
  endfunction

  function automatic void violated(int r);
    if (state != FINISHED) write_status("violation", rank_model[r].report());
  endfunction

  initial done = 1'b0;
  always @(posedge clk) done <= state == FINISHED;

  always @(posedge clk) if (state != FINISHED) begin
    edges++;
    n = edges - 2;  // edges 1 and 2 hold the power-up reset; cycle n ends at edge n + 2
    if (n >= 1) begin
      // Before the samples of cycle n: the idle wait (a batch starts the cycle after).
      if (state == WAIT_IDLE && reset_cycle >= 0 && n < reset_cycle + 2) begin
        // the mid-job reset is still asserted
      end else if (state == WAIT_IDLE && idle) begin
        start = n - 1;
        received_before = transfers;
        state = SENDING;
        if (after_reset) begin
          phase = 1;
          base = n;
        end
        if (expected == 0 && (reset_at < 0 || after_reset)) begin
          finish = n - 1;
          state = DRAIN;
        end
      end else if (state == WAIT_IDLE && n - 1 > idle_limit + (reset_cycle >= 0 ? reset_cycle : 0)) begin
        finish = start;
        write_status("timeout", $sformatf("the PU is not idle %0d cycles after reset", idle_limit));
      end
      // The samples of cycle n: DRAM commands (the DRAM models count cycles as the testbench), then
      // the PU's reset.
{sample}
      foreach (rank_model[r]) begin
        if (rst && !in_reset[r] && rank_model[r].protocol.counts.sum() > 0)
          rank_model[r].protocol.controller_reset(n);
        in_reset[r] = rst;
      end
      if (result__ready && result__valid) begin
        $fwrite(results_file, "%0d %h\\n", phase, result__payload);
        transfers++;
      end
      if (inst__valid && inst__ready) accepted++;
      // For cycle n + 1: the end of the job, a time-out, the reset.
      if (state == SENDING && (reset_at < 0 || after_reset)) begin
        if (transfers - received_before >= expected) begin
          finish = n;
          state = DRAIN;
        end else if (n - start > timeout_cycles) begin
          finish = n;
          write_status("timeout", $sformatf({{"timeout after %0d cycles: %0d of %0d result beats received, ",
              "%0d words of the last batch accepted (of %0d in the job), idle=%0d"}},
              timeout_cycles, transfers - received_before, expected, accepted, words_count, idle));
        end
      end
      if (state == DRAIN && n == finish + {tail}) write_status("ok", "");
      if (state == SENDING && reset_at >= 0 && !after_reset && n + 1 >= reset_at) begin
        reset_cycle = n + 1;
        after_reset = 1;
        state = WAIT_IDLE;
        first = resume_at;
        last = words_count;
        accepted = 0;
        due_base = words_count > resume_at ? due[resume_at] : 0;
      end
    end
    // The drives of cycle n + 1.
    if (state != FINISHED) begin
      rst <= reset_cycle >= 0 && (n + 1 == reset_cycle || n + 1 == reset_cycle + 1) ? 1'b1 : 1'b0;
      result__ready <= !result_stalls.pause();
      if (state != WAIT_IDLE && first + accepted < last && n + 1 >= base + due[first + accepted] - due_base
          && !inst_stalls.pause()) begin
        inst__valid <= 1'b1;
        inst__payload <= words[first + accepted];
      end else inst__valid <= 1'b0;
{drive}
    end
  end
endmodule
"""


def _hex_lines(values: np.ndarray, digits: int) -> str:
    return "".join(f"{int(v):0{digits}x}\n" for v in values)


def _bursts_read(words: np.ndarray, geometry: DDR4Geometry) -> set[tuple[int, int, int, int, int]]:
    """``(rank, bank_group, bank, row, line)`` of every 64 B burst the job's lookups name."""
    insts = isa.unpack(words)
    lookups = insts[np.isin(insts["opcode"], [int(op) for op in isa.LOOKUP_OPCODES])]
    parts = isa.daddr_split(lookups["daddr"])
    first = parts["column"].astype(np.int64) // geometry.burst_columns
    keys = set()
    for k in range(int(lookups["vsize"].max(initial=0))):
        take = lookups["vsize"] > k
        line = first[take] + k
        inside = line < geometry.lines_per_row
        columns = [parts[f][take][inside].astype(np.int64) for f in ("rank", "bank_group", "bank", "row")]
        keys.update(zip(*(c.tolist() for c in columns), line[inside].tolist()))
    return keys


def write_job_files(folder: Path, job, ranks: int, geometry: DDR4Geometry = GEOMETRY) -> list[str]:
    """The job as the harness of a PU with ``ranks`` reads it (``$readmemh`` files); returns its plusargs.

    The rank images hold only the bursts the job's lookups name (the rest of a loaded row is
    never read by a correct PU; a read of it counts as a read of unwritten memory).
    """
    folder.mkdir(parents=True, exist_ok=True)
    words = np.asarray(job.words, np.uint64).reshape(-1, 2)
    (folder / "words.hex").write_text("".join(f"{int(hi) << 64 | int(lo):020x}\n" for lo, hi in words.tolist()))
    (folder / "due.hex").write_text(_hex_lines(np.asarray(job.issue_cycles, np.int64), 16))
    lines = geometry.lines_per_row
    read = sorted(_bursts_read(words, geometry))
    for rank in range(ranks):
        rows = job.images.get(rank, {})
        with open(folder / f"image{rank}.hex", "w") as f:
            for _, bank_group, bank, row, line in (r for r in read if r[0] == rank):
                data = rows.get((bank_group, bank, row))
                if data is None:
                    continue  # never written: the harness counts the read
                key = ((bank_group * geometry.banks_per_group + bank) * geometry.rows + row) * lines + line
                burst = np.asarray(data[line * geometry.burst_bytes : (line + 1) * geometry.burst_bytes], np.uint8)
                f.write(f"@{key:x}\n{burst[::-1].tobytes().hex()}\n")
    return [
        f"+JOB={folder}",
        f"+WORDS={len(words)}",
        f"+EXPECTED={job.expected_beats}",
        f"+TIMEOUT={job.timeout_cycles}",
        f"+RESET_AT={-1 if job.reset_at is None else job.reset_at}",
        f"+RESUME_AT={0 if job.resume_at is None else job.resume_at}",
        f"+SEED={job.seed}",
        f"+INST_STALL={int(job.inst_stall * _Q32)}",
        f"+RESULT_STALL={int(job.result_stall * _Q32)}",
        f"+TRACE={int(job.trace)}",
    ]


def read_job_results(folder: Path, description: BlockDescription) -> dict:
    """The job's results, as :func:`verif.tb.dimm_nmp.read_results` gives them.

    Raises
    ------
    AssertionError
        The job broke a DDR4 rule (the checker's message with the last commands), or timed out.
    """
    status_path = folder / "status.txt"
    if not status_path.is_file():
        raise AssertionError(f"the harness wrote no status: the simulation did not finish (see {folder})")
    status, counters, dram_counts, unwritten = {}, {}, {}, 0
    for line in status_path.read_text().splitlines():
        key, *values = line.split()
        if key == "counter":
            counters[values[0]] = int(values[1])
        elif key == "dram":
            r, act, rd, pre, ref = map(int, values)
            dram_counts[str(r)] = {"ACT": act, "RD": rd, "PRE": pre, "REF": ref}
        elif key == "unwritten_reads":
            unwritten += int(values[1])
        else:
            status[key] = values[0]
    if status["outcome"] != "ok":
        raise AssertionError((folder / "failure.txt").read_text().rstrip())
    lanes = description.params["lanes"]
    layout = description.layout("result__payload")
    beats: dict[int, list[dict]] = {0: [], 1: []}
    for line in (folder / "results.txt").read_text().splitlines():
        phase, payload = line.split()
        beats[int(phase)].append(layout.unpack(int(payload, 16)))
    # Without a mid-job reset every beat is of the job (phase 0); with one, phase 1 is.
    reset = status["reset"] == "1"
    after, before = (beats[1], beats[0]) if reset else (beats[0], [])
    trace = np.zeros((0, 7), np.int64)
    if (folder / "trace.csv").is_file():
        text = (folder / "trace.csv").read_text()
        if text:
            trace = np.loadtxt(folder / "trace.csv", delimiter=",", dtype=np.int64, ndmin=2)
            trace = trace[np.lexsort((trace[:, 1], trace[:, 0]))]
    return {
        "counters": counters,
        "dram_counts": dram_counts,
        "cycles": int(status["cycles"]),
        "idle": int(status["idle"]),
        "unwritten_reads": unwritten,
        **beat_arrays(after, lanes),
        **{f"pre_{k}": v for k, v in beat_arrays(before, lanes).items()},
        "trace": trace,
    }


def run_job(
    job, params: dict, folder: Path, *, name: str, waves: bool | None = None, dram_timing: DDR4Timing | None = None
) -> dict:
    """Run ``job`` on ``dimm_nmp`` with ``params`` in the harness; its results (see
    :func:`read_job_results`), with ``wall_seconds`` of the simulation.

    ``dram_timing``: the timing the DRAM models and checkers hold the PU to, when it is not
    the PU's own (a test of the checker in place); the same build serves every timing.
    """
    from .runner import run_harness

    for output in ("status.txt", "results.txt", "trace.csv", "failure.txt"):  # a reused folder's old run
        (folder / output).unlink(missing_ok=True)
    plusargs = write_job_files(folder, job, params["ranks"])
    if dram_timing is not None:
        plusargs += [f"+DRAM_{f.name}={getattr(dram_timing, f.name)}" for f in fields(DDR4Timing)]
    wall = time.perf_counter()
    description = run_harness(
        "dimm_nmp", params, harness=harness_source, top=HARNESS_TOP, plusargs=plusargs, name=name, waves=waves
    )
    wall = time.perf_counter() - wall
    results = read_job_results(folder, description)
    results["wall_seconds"] = wall
    return results
