// Replays command traces through recnmp_sim_pkg::Ddr4Checker and writes each trace's verdict:
// the agreement test of the in-simulation checker with verif/ddr4_checker.py
// (tests/verif/test_sim_checker.py). Simulation only.
//
// +EVENTS=<file>: $readmemh words, one event each (verif/sim_checker.py packs them):
//   [127:112] trace, [111:104] kind (0-4 a command, 7 a controller reset), [103:64] cycle,
//   [63:56] bank group, [55:48] bank, [47:24] row, [23:0] column.
// +COUNT=<events> +OUT=<file> and the timing as +tRCD=16 ... +tRFC=420 (every field of
// hw.ddr4.DDR4Timing). Writes "<trace> ok" or "<trace> <message>" per trace.
module recnmp_checker_harness (input logic clk, output logic done);
  import recnmp_sim_pkg::*;

  logic [127:0] events[longint];

  function automatic int timing(string name);
    int value;
    if (!$value$plusargs({name, "=%d"}, value)) $fatal(1, "recnmp_checker_harness: no +%s=", name);
    return value;
  endfunction

  initial begin
    string path, out_path;
    longint count;
    int out;
    Ddr4Config cfg = new;
    Ddr4Checker checker_of_trace;
    int trace = -1;
    done = 1'b0;
    if (!$value$plusargs("EVENTS=%s", path) || !$value$plusargs("OUT=%s", out_path)
        || !$value$plusargs("COUNT=%d", count))
      $fatal(1, "recnmp_checker_harness: give +EVENTS=, +OUT= and +COUNT=");
    cfg.tRCD = timing("tRCD");
    cfg.tCL = timing("tCL");
    cfg.tRP = timing("tRP");
    cfg.tRAS = timing("tRAS");
    cfg.tRC = timing("tRC");
    cfg.tBL = timing("tBL");
    cfg.tCCD_S = timing("tCCD_S");
    cfg.tCCD_L = timing("tCCD_L");
    cfg.tRRD_S = timing("tRRD_S");
    cfg.tRRD_L = timing("tRRD_L");
    cfg.tFAW = timing("tFAW");
    cfg.tRTP = timing("tRTP");
    cfg.tREFI = timing("tREFI");
    cfg.tRFC = timing("tRFC");
    cfg.bank_groups = 4;
    cfg.banks_per_group = 4;
    cfg.rows = 65536;
    cfg.columns = 1024;
    cfg.burst_columns = 8;
    cfg.beats_per_burst = 4;
    if (count > 0) $readmemh(path, events);
    out = $fopen(out_path, "w");
    for (longint k = 0; k < count; k++) begin
      // (assigned, not initialised: the initialiser of a static block variable runs once)
      logic [127:0] e;
      int this_trace, kind;
      longint cycle;
      e = events[k];
      this_trace = int'(e[127:112]);
      kind = int'(e[111:104]);
      cycle = longint'(e[103:64]);
      if (this_trace != trace) begin
        if (trace >= 0) $fwrite(out, "%0d %s\n", trace, checker_of_trace.violated ? checker_of_trace.message : "ok");
        trace = this_trace;
        checker_of_trace = new(cfg, 0);
      end
      if (checker_of_trace.violated) continue;  // the first violation is the verdict
      if (kind == 7) checker_of_trace.controller_reset(cycle);
      else void'(checker_of_trace.command(cycle, kind, int'(e[63:56]), int'(e[55:48]), longint'(e[47:24]),
                                          longint'(e[23:0])));
    end
    if (trace >= 0) $fwrite(out, "%0d %s\n", trace, checker_of_trace.violated ? checker_of_trace.message : "ok");
    $fclose(out);
    done = 1'b1;
  end
endmodule
