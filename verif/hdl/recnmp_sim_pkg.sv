// Simulation-only models of the DDR4 ranks behind a RecNMP PU (never synthesised).
//
// Ddr4Checker is verif/ddr4_checker.py in SystemVerilog: the same rules, checked in the same
// order, with the same messages, so that both name the same first violation of any command
// trace (tests/verif/test_sim_checker.py checks that rule for rule). Ddr4Rank is
// verif/dram_model.py: it feeds every command to its protocol checker and returns each RD's burst
// tCL cycles later, one 16 B beat per cycle, from a sparse image loaded with $readmemh.
//
// Both work on DRAM cycles passed in by the caller, one command per call, so a port that
// carries several commands per logic cycle (phases) calls them once per phase.
package recnmp_sim_pkg;

  typedef enum int {NOP = 0, ACT = 1, RD = 2, PRE = 3, REF = 4} command_e;

  localparam longint NEVER = -(longint'(1) <<< 60);

  function automatic string command_name(int cmd);
    case (cmd)
      NOP: return "NOP";
      ACT: return "ACT";
      RD: return "RD";
      PRE: return "PRE";
      REF: return "REF";
      default: return $sformatf("command %0d", cmd);
    endcase
  endfunction

  // The timing (DRAM cycles) and geometry of one rank: set from hw/ddr4.py by the harness.
  class Ddr4Config;
    int tRCD, tCL, tRP, tRAS, tRC, tBL, tCCD_S, tCCD_L, tRRD_S, tRRD_L, tFAW, tRTP, tREFI, tRFC;
    int bank_groups, banks_per_group, rows, columns, burst_columns, beats_per_burst;
    int max_postponed = 8, max_pulled_in = 8;
  endclass

  // One rank's bank state and every DDR4 rule (see verif/ddr4_checker.py for each rule).
  class Ddr4Checker;
    Ddr4Config c;
    longint open_row[];  // -1: precharged
    longint last_act[], last_pre[], last_rd[];
    bit known[];
    longint acts[$];  // the last four ACTs, any bank, oldest first
    longint last_act_bg[], last_rd_bg[];
    longint last_ref, window_start, refreshes, last_cycle, last_reset;
    longint counts[5];
    // The first violation's whole message (its rule, cycle and bank, as in Python).
    bit violated;
    string message;

    function new(Ddr4Config timing_geometry, bit initial_unknown);
      int banks = timing_geometry.bank_groups * timing_geometry.banks_per_group;
      c = timing_geometry;
      open_row = new[banks];
      last_act = new[banks];
      last_pre = new[banks];
      last_rd = new[banks];
      known = new[banks];
      last_act_bg = new[c.bank_groups];
      last_rd_bg = new[c.bank_groups];
      foreach (open_row[i]) begin
        open_row[i] = -1;
        last_act[i] = NEVER;
        last_pre[i] = NEVER;
        last_rd[i] = NEVER;
        known[i] = 1;
      end
      foreach (last_act_bg[g]) begin
        last_act_bg[g] = NEVER;
        last_rd_bg[g] = NEVER;
      end
      last_ref = NEVER;
      window_start = 0;
      refreshes = 0;
      last_cycle = NEVER;
      foreach (counts[k]) counts[k] = 0;
      if (initial_unknown) controller_reset(0);
    endfunction

    function automatic void controller_reset(longint cycle);
      last_reset = cycle;
      foreach (known[i]) known[i] = 0;
    endfunction

    // Latches the first violation; returns 1 so that callers can `return fail(...)`.
    function automatic bit fail(string rule_name, longint cycle, int bank_group, int bank, string detail);
      if (!violated) begin
        violated = 1;
        message = $sformatf("DDR4 %s violation at cycle %0d, bank group %0d bank %0d: %s",
                            rule_name, cycle, bank_group, bank, detail);
      end
      return 1;
    endfunction

    function automatic bit need(string rule_name, longint cycle, int cmd, int bank_group, int bank,
                                longint since, int gap, string what);
      if (cycle - since < gap)
        return fail(rule_name, cycle, bank_group, bank, $sformatf("%s %0d cycles after %s at cycle %0d (needs %0d)",
                                                          command_name(cmd), cycle - since, what, since, gap));
      return 0;
    endfunction

    function automatic string unknown(string what);
      return $sformatf("%s unknown state after the controller reset at cycle %0d: precharge it first", what,
                       last_reset);
    endfunction

    function automatic bit check_refresh(longint cycle, int bank_group, int bank);
      longint limit = 9 * longint'(c.tREFI);
      longint since_refresh = cycle - window_start;
      longint owed = cycle / c.tREFI - refreshes;
      if (since_refresh > limit)
        foreach (open_row[i])
          if (open_row[i] >= 0 && cycle - last_act[i] > limit)
            return fail("tRAS(max)", cycle, i / c.banks_per_group, i % c.banks_per_group,
                        $sformatf("row %0d open for %0d cycles since ACT at cycle %0d (at most 9 x tREFI = %0d)",
                                  open_row[i], cycle - last_act[i], last_act[i], limit));
      if (owed > c.max_postponed)
        return fail("tREFI", cycle, bank_group, bank,
                    $sformatf("missing refresh: %0d REF issued after %0d refresh intervals of %0d cycles (at most %0d may be postponed)",
                              refreshes, cycle / c.tREFI, c.tREFI, c.max_postponed));
      if (since_refresh > limit)
        return fail("tREFI", cycle, bank_group, bank,
                    $sformatf("%0d cycles since %s (at most 9 x tREFI = %0d)", since_refresh,
                              refreshes ? $sformatf("the previous REF at cycle %0d", window_start)
                                        : "the start at cycle 0, with no REF", limit));
      return 0;
    endfunction

    // One command at `cycle`; 1 when it breaks a rule (then `message` says which).
    function automatic bit command(longint cycle, int cmd, int bank_group, int bank, longint row, longint column);
      int i = bank_group * c.banks_per_group + bank;
      longint last_rd_any = NEVER;
      if (cmd == NOP) return check_refresh(cycle, 0, 0);
      if (cycle <= last_cycle)
        return fail("command bus", cycle, bank_group, bank,
                    $sformatf("%s in the same or an earlier cycle than the previous command (cycle %0d)",
                              command_name(cmd), last_cycle));
      if (check_refresh(cycle, bank_group, bank)) return 1;
      if (need("tRFC", cycle, cmd, bank_group, bank, last_ref, c.tRFC, "REF")) return 1;
      case (cmd)
        ACT: begin
          if (!known[i]) return fail("bank state", cycle, bank_group, bank,
                                     unknown($sformatf("ACT row %0d to a bank with", row)));
          if (open_row[i] >= 0)
            return fail("bank state", cycle, bank_group, bank,
                        $sformatf("ACT row %0d to a bank with row %0d open", row, open_row[i]));
          if (need("tRP", cycle, cmd, bank_group, bank, last_pre[i], c.tRP, "PRE")) return 1;
          if (need("tRC", cycle, cmd, bank_group, bank, last_act[i], c.tRC, "ACT to the same bank")) return 1;
          if (need("tRRD_L", cycle, cmd, bank_group, bank, last_act_bg[bank_group], c.tRRD_L,
                   "ACT in the same bank group")) return 1;
          if (need("tRRD_S", cycle, cmd, bank_group, bank, acts.size() ? acts[$] : NEVER, c.tRRD_S, "ACT"))
            return 1;
          if (acts.size() == 4 && need("tFAW", cycle, cmd, bank_group, bank, acts[0], c.tFAW,
                                       "the fourth previous ACT")) return 1;
          open_row[i] = row;
          last_act[i] = cycle;
          acts.push_back(cycle);
          if (acts.size() > 4) void'(acts.pop_front());
          last_act_bg[bank_group] = cycle;
        end
        RD: begin
          if (!known[i]) return fail("bank state", cycle, bank_group, bank,
                                     unknown($sformatf("RD column %0d to a bank with", column)));
          if (open_row[i] < 0)
            return fail("bank state", cycle, bank_group, bank,
                        $sformatf("RD column %0d to a precharged bank", column));
          if (row != open_row[i])
            return fail("row address", cycle, bank_group, bank,
                        $sformatf("RD row %0d column %0d to a bank with row %0d open", row, column, open_row[i]));
          if (column % c.burst_columns)
            return fail("burst alignment", cycle, bank_group, bank,
                        $sformatf("RD column %0d is not a multiple of %0d", column, c.burst_columns));
          if (need("tRCD", cycle, cmd, bank_group, bank, last_act[i], c.tRCD, "ACT")) return 1;
          if (need("tCCD_L", cycle, cmd, bank_group, bank, last_rd_bg[bank_group], c.tCCD_L,
                   "RD in the same bank group")) return 1;
          foreach (last_rd_bg[g]) if (last_rd_bg[g] > last_rd_any) last_rd_any = last_rd_bg[g];
          if (need("tCCD_S", cycle, cmd, bank_group, bank, last_rd_any, c.tCCD_S, "RD")) return 1;
          last_rd[i] = cycle;
          last_rd_bg[bank_group] = cycle;
        end
        PRE: begin
          if (open_row[i] >= 0) begin
            if (need("tRAS", cycle, cmd, bank_group, bank, last_act[i], c.tRAS, "ACT")) return 1;
            if (need("tRTP", cycle, cmd, bank_group, bank, last_rd[i], c.tRTP, "RD")) return 1;
            open_row[i] = -1;
            last_pre[i] = cycle;
          end else if (!known[i]) begin
            last_pre[i] = cycle;  // the controller cannot know the bank was closed: tRP applies
          end
          known[i] = 1;
        end
        REF: begin
          longint ahead = refreshes + 1 - cycle / c.tREFI;
          foreach (open_row[j]) begin
            if (!known[j]) return fail("bank state", cycle, j / c.banks_per_group, j % c.banks_per_group,
                                       unknown("REF with the bank in"));
            if (open_row[j] >= 0)
              return fail("bank state", cycle, j / c.banks_per_group, j % c.banks_per_group,
                          $sformatf("REF with row %0d open", open_row[j]));
            if (cycle - last_pre[j] < c.tRP)
              return fail("tRP", cycle, j / c.banks_per_group, j % c.banks_per_group,
                          $sformatf("REF %0d cycles after PRE at cycle %0d (needs %0d)", cycle - last_pre[j],
                                    last_pre[j], c.tRP));
          end
          if (ahead > c.max_pulled_in)
            return fail("tREFI", cycle, bank_group, bank,
                        $sformatf("REF pulled in too far: %0d refreshes ahead of schedule (at most %0d)", ahead,
                                  c.max_pulled_in));
          last_ref = cycle;
          window_start = cycle;
          refreshes++;
        end
        default: return fail("command bus", cycle, bank_group, bank, $sformatf("unknown command code %0d", cmd));
      endcase
      last_cycle = cycle;
      counts[cmd]++;
      return 0;
    endfunction
  endclass

  // One rank: its protocol, its sparse image of 64 B bursts and the read data in flight.
  class Ddr4Rank;
    Ddr4Config c;
    Ddr4Checker protocol;
    int rank;
    logic [511:0] image[longint];  // key: image_key(), as verif/dimm_harness.py writes it
    logic [127:0] beats[longint];  // DRAM cycle -> beat driven in it
    longint unwritten_reads;
    longint data_cycles;
    int trace_file;  // 0: no trace
    // The last commands {cycle, cmd, bank group, bank, row, column}, for the message of a
    // violation (verif/dram_model.py keeps 12); formatted only then.
    longint recent[$][6];
    bit violated_when_idle;  // the violation was found on a NOP cycle (no history, as in Python)

    function new(Ddr4Config timing_geometry, int rank_index, bit initial_unknown);
      c = timing_geometry;
      rank = rank_index;
      protocol = new(timing_geometry, initial_unknown);
      unwritten_reads = 0;
      data_cycles = 0;
      trace_file = 0;
    endfunction

    // The burst's place in the rank: ((bank_group x banks + bank) x rows + row) x lines + line.
    function automatic longint image_key(int bank_group, int bank, longint row, longint column);
      return ((longint'(bank_group) * c.banks_per_group + bank) * c.rows + row) * (c.columns / c.burst_columns)
             + column / c.burst_columns;
    endfunction

    function automatic void load(string path);
      $readmemh(path, image);
    endfunction

    // The beat to drive in DRAM cycle `cycle` (valid in bit 128).
    function automatic logic [128:0] beat(longint cycle);
      logic [127:0] data;
      if (!beats.exists(cycle)) return '0;
      data = beats[cycle];
      beats.delete(cycle);
      data_cycles++;
      return {1'b1, data};
    endfunction

    // The command the controller presents in DRAM cycle `cycle`; 1 on a violation.
    function automatic bit command(longint cycle, int cmd, int bank_group, int bank, longint row, longint column);
      logic [511:0] burst;
      longint key;
      if (cmd != NOP) begin
        recent.push_back('{cycle, cmd, bank_group, bank, row, column});
        if (recent.size() > 12) void'(recent.pop_front());
        if (trace_file != 0)
          $fwrite(trace_file, "%0d,%0d,%0d,%0d,%0d,%0d,%0d\n", cycle, rank, cmd, bank_group, bank, row, column);
      end
      if (protocol.command(cycle, cmd, bank_group, bank, row, column)) begin
        violated_when_idle = cmd == NOP;
        return 1;
      end
      if (cmd == RD) begin
        key = image_key(bank_group, bank, row, column);
        if (image.exists(key)) burst = image[key];
        else begin
          burst = '0;
          unwritten_reads++;
        end
        for (int k = 0; k < c.beats_per_burst; k++) beats[cycle + c.tCL + k] = burst[128*k+:128];
      end
      return 0;
    endfunction

    // The violation with the last commands, as verif/dram_model.py reports it.
    function automatic string report();
      string text = protocol.message;
      if (violated_when_idle) return text;  // verif/dram_model.py checks idle cycles without history
      text = {text, "\nlast commands:"};
      foreach (recent[k])
        text = {text, $sformatf("\n  cycle %0d: %s bank group %0d bank %0d row %0d column %0d", recent[k][0],
                                command_name(int'(recent[k][1])), recent[k][2], recent[k][3], recent[k][4],
                                recent[k][5])};
      return text;
    endfunction
  endclass

  // A 64-bit xorshift generator: the seeded stalls of the harness's host streams.
  class Stalls;
    longint unsigned state;
    longint unsigned threshold;  // a pause when the next 32-bit draw is below it

    function new(longint unsigned seed, longint unsigned probability_q32);
      state = seed * 64'h9E3779B97F4A7C15 + 64'h2545F4914F6CDD1D;
      if (state == 0) state = 1;
      threshold = probability_q32;
    endfunction

    function automatic bit pause();
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      return (state >> 32) < threshold;
    endfunction
  endclass
endpackage
