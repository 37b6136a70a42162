"""The cycle loop of the RecNMP performance model: one DIMM's PU, compiled with numba.

:mod:`sim_models.recnmp_perf` prepares the arrays and reads the results; this module is
only the loop, written against the RTL part by part so that a reader can check one
against the other (``docs/perf_model.md`` lists what is exact and what is approximate):

* decoder (``hw/dimm_decoder.py``): a word is offered from its transport cycle; a lookup
  goes to its rank's instruction queue, a control word to every rank's, held until each
  took it; one word per cycle;
* instruction queue (4) and issue stage (``hw/rank_issue.py``): a lookup takes ``1 +
  vsize`` cycles (decode, then one line per cycle while the reorder buffer has a slot and
  the cache takes a lookup), an EOP or CONFIG one;
* RankCache (``hw/rank_cache.py``): true LRU, one operation per cycle, fills win over
  lookups, results one cycle after the lookup, held while they cannot leave;
* reorder buffer (``hw/reorder_buffer.py``): a hit is written unless a DRAM beat arrives
  in that cycle; a miss is a request to the scheduler when it has room; the slot is ready
  the cycle after its hit or its last DRAM beat, which also fills the cache (locality);
* rank scheduler (``hw/rank_scheduler.py`` with ``request_buffer.py``,
  ``bank_timers.py``, ``refresh_control.py``): the same collapsing age-ordered buffer,
  FR-FCFS choice, starvation rule, timing counters and refresh policy, cycle for cycle;
* retire and datapath (``hw/rank_retire.py``, ``hw/rank_datapath.py``): operations in
  order, ``64 / (4 lanes)`` beats per fp32 line, the 8-bit prologue and stream, the
  same-entry interlock, the EOP drain ``mul + 2 add + 2`` cycles after the last beat;
* adder tree (``hw/rank_adder_tree.py``): a drain beat leaves when every rank has it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Instruction kinds (recnmp_perf decodes the NMP-Insts into these).
KIND_LOOKUP, KIND_EOP, KIND_CONFIG, KIND_DROP = 0, 1, 2, 3

# Indices of the integer parameter vector.
(
    P_RANKS,
    P_TRCD,
    P_TCL,
    P_TRP,
    P_TRAS,
    P_TRC,
    P_TBL,
    P_TCCD_S,
    P_TCCD_L,
    P_TRRD_S,
    P_TRRD_L,
    P_TFAW,
    P_TRTP,
    P_TREFI,
    P_TRFC,
    P_BANK_BITS,
    P_BANKS,
    P_DEPTH,
    P_STARVATION,
    P_ROB,
    P_OPQ,
    P_INSTQ,
    P_LANES,
    P_BEATS_PER_LINE,
    P_MUL,
    P_ADD,
    P_REFI_OFFSET,
    P_Q8_DEFAULT,
    P_SET_BITS,
    P_WAYS,
    P_TREE,
    P_HEADER_BYTES,
    P_LINE_BYTES,
    P_MAX_CYCLES,
    N_PARAMS,
) = range(35)

# Per-rank output counters.
(
    C_ACT,
    C_PRE,
    C_RD,
    C_REF,
    C_ROW_HIT,
    C_ROW_MISS,
    C_ROW_CONFLICT,
    C_HINT_MISMATCH,
    C_CACHE_HIT,
    C_CACHE_MISS,
    C_CACHE_BYPASS,
    C_FILL,
    C_EVICT,
    C_LOOKUPS,
    C_LINES,
    C_BEATS,
    C_DRAIN_BEATS,
    C_BUS_BUSY,
    N_COUNTERS,
) = range(19)

_NEVER = np.int64(1) << 62
_HINT_RD, _HINT_MISS, _HINT_CONFLICT = 0b100, 0b110, 0b111
_CLS_NONE, _CLS_MISS, _CLS_CONFLICT = 0, 1, 2


@njit(cache=True)
def _cache_lookup(tags, stamps, valid, clock, addr, set_bits, ways):
    """True-LRU probe of one rank's cache; a hit becomes MRU. Returns the hit.

    LRU is kept as a use stamp per way (``clock`` counts the rank's cache operations):
    the RTL's age permutation orders the valid ways the same way.
    """
    s = addr & ((1 << set_bits) - 1)
    tag = addr >> set_bits
    clock[0] += 1
    for w in range(ways):
        if valid[s, w] and tags[s, w] == tag:
            stamps[s, w] = clock[0]
            return True
    return False


@njit(cache=True)
def _cache_fill(tags, stamps, valid, clock, addr, set_bits, ways):
    """Install ``addr`` as MRU: a present line only becomes MRU, else the lowest invalid
    way, else the LRU way is replaced. Returns 1 on an eviction."""
    s = addr & ((1 << set_bits) - 1)
    tag = addr >> set_bits
    clock[0] += 1
    for w in range(ways):
        if valid[s, w] and tags[s, w] == tag:
            stamps[s, w] = clock[0]
            return 0
    for w in range(ways):
        if not valid[s, w]:
            valid[s, w] = True
            tags[s, w] = tag
            stamps[s, w] = clock[0]
            return 0
    victim = 0
    for w in range(1, ways):
        if stamps[s, w] < stamps[s, victim]:
            victim = w
    tags[s, victim] = tag
    stamps[s, victim] = clock[0]
    return 1


@njit(cache=True, nogil=True)
def _wake(
    t,
    r,
    count,
    cand,
    ref_pending,
    wanted,
    bank_bits,
    banks,
    limit,
    refi,
    e_bank,
    e_from,
    open_valid,
    act_at,
    rd_at,
    pre_at,
    act_bg_at,
    rd_bg_at,
    act_rank_at,
    rd_rank_at,
    faw_at,
    ref_pre_at,
    rfc_at,
):
    """The first cycle after ``t`` at which a command may become legal, when none is in ``t``.

    Between commands and new requests the choice changes only when a timing window opens,
    a conflict's age reaches the starvation limit, or a refresh falls due; this is the
    earliest of those, so skipping the search until then changes nothing.
    """
    wake = t + refi[r] + 1  # the next refresh falls due
    rfc = rfc_at[r]
    if ref_pending:
        all_closed = True
        for b in range(banks):
            if open_valid[r, b]:
                all_closed = False
                wake = min(wake, max(pre_at[r, b], rfc))
        if all_closed:
            wake = min(wake, max(ref_pre_at[r], rfc))
    for i in range(count):
        b = e_bank[r, i]
        g = b >> bank_bits
        c = cand[i]
        if c == 1:
            wake = min(wake, max(rd_at[r, b], rd_bg_at[r, g], rd_rank_at[r], rfc))
        elif c == 2 and not ref_pending:
            wake = min(wake, max(act_at[r, b], act_bg_at[r, g], act_rank_at[r], faw_at[r, 3], rfc))
        elif c == 3:
            if not ref_pending and not (wanted >> b) & 1:
                wake = min(wake, max(pre_at[r, b], rfc))
            if t - e_from[r, i] < limit:
                wake = min(wake, e_from[r, i] + limit)
    return max(wake, t + 1)


@njit(cache=True, nogil=True)
def simulate_dimm(
    p,
    kind,
    rank_of,
    slot_of,
    row_of,
    addr_of,
    vsize_of,
    alloc_of,
    hint_of,
    tag_of,
    weighted_of,
    q8_of,
    value_of,
    mask_of,
    elements_of,
    due,
    cache_tags,
    cache_stamps,
    cache_valid,
    cache_clock,
    shadow_valid,
    shadow_row,
    counters,
):
    """Run one DIMM's instruction stream to its last result beat.

    Returns ``(cycles, eop_done)``: the cycles the RTL testbench counts (from the cycle the
    first word may be offered to the cycle after the last result beat was taken, which it
    sees one cycle later: ``last + 2``), and per EOP the cycle of its last result beat.
    ``counters`` (ranks x :data:`N_COUNTERS`) and the cache and hint-shadow arrays are
    updated in place.
    """
    ranks = p[P_RANKS]
    tRCD, tCL, tRP, tRAS, tRC, tBL = p[P_TRCD], p[P_TCL], p[P_TRP], p[P_TRAS], p[P_TRC], p[P_TBL]
    tCCD_S, tCCD_L, tRRD_S, tRRD_L, tFAW, tRTP = (
        p[P_TCCD_S],
        p[P_TCCD_L],
        p[P_TRRD_S],
        p[P_TRRD_L],
        p[P_TFAW],
        p[P_TRTP],
    )
    tREFI, tRFC = p[P_TREFI], p[P_TRFC]
    bank_bits, banks = p[P_BANK_BITS], p[P_BANKS]
    groups = banks >> bank_bits
    depth, limit, rob, opq_depth, instq_depth = p[P_DEPTH], p[P_STARVATION], p[P_ROB], p[P_OPQ], p[P_INSTQ]
    lanes, bpl, mul_lat, add_lat = p[P_LANES], p[P_BEATS_PER_LINE], p[P_MUL], p[P_ADD]
    set_bits, ways, tree, header, line_bytes = p[P_SET_BITS], p[P_WAYS], p[P_TREE], p[P_HEADER_BYTES], p[P_LINE_BYTES]
    n = kind.shape[0]
    n_eops = 0
    for w in range(n):
        if kind[w] == KIND_EOP:
            n_eops += 1
    eop_done = np.full(n_eops, -1, np.int64)

    # ---- instruction queues and issue stage -------------------------------------------
    iq = np.zeros((ranks, instq_depth), np.int64)
    iq_time = np.zeros((ranks, instq_depth), np.int64)
    iq_head = np.zeros(ranks, np.int64)
    iq_count = np.zeros(ranks, np.int64)
    issue_lines = np.zeros(ranks, np.int64)  # 0: DECODE; k > 0: line k-1 is being sent
    q8_elements = np.full(ranks, p[P_Q8_DEFAULT], np.int64)
    taken = np.zeros(ranks, np.bool_)  # control word of the decoder taken by the rank
    # ---- operation queue: instruction index, first slot, 8-bit beats ------------------
    oq = np.zeros((ranks, opq_depth), np.int64)
    oq_first = np.zeros((ranks, opq_depth), np.int64)
    oq_beats = np.zeros((ranks, opq_depth), np.int64)
    oq_time = np.zeros((ranks, opq_depth), np.int64)
    oq_head = np.zeros(ranks, np.int64)
    oq_count = np.zeros(ranks, np.int64)
    # ---- reorder buffer ------------------------------------------------------------------
    rob_head = np.zeros(ranks, np.int64)  # slots allocated (absolute count)
    rob_tail = np.zeros(ranks, np.int64)  # slots freed
    ready_at = np.full((ranks, rob), _NEVER, np.int64)
    slot_addr = np.zeros((ranks, rob), np.int64)
    slot_alloc = np.zeros((ranks, rob), np.bool_)
    # ---- cache result register -----------------------------------------------------------
    res_valid = np.zeros(ranks, np.bool_)
    res_hit = np.zeros(ranks, np.bool_)
    res_slot = np.zeros(ranks, np.int64)
    res_inst = np.zeros(ranks, np.int64)
    res_line = np.zeros(ranks, np.int64)
    # ---- scheduler -------------------------------------------------------------------------
    e_bank = np.zeros((ranks, depth), np.int64)
    e_row = np.zeros((ranks, depth), np.int64)
    e_slot = np.zeros((ranks, depth), np.int64)
    e_cls = np.zeros((ranks, depth), np.int64)
    e_from = np.zeros((ranks, depth), np.int64)  # first cycle as a candidate: age = t - e_from
    sleep_until = np.zeros(ranks, np.int64)  # no command can become legal before this cycle
    e_count = np.zeros(ranks, np.int64)
    open_valid = np.zeros((ranks, banks), np.bool_)
    open_row = np.zeros((ranks, banks), np.int64)
    act_at = np.zeros((ranks, banks), np.int64)
    rd_at = np.zeros((ranks, banks), np.int64)
    pre_at = np.zeros((ranks, banks), np.int64)
    act_bg_at = np.zeros((ranks, groups), np.int64)
    rd_bg_at = np.zeros((ranks, groups), np.int64)
    act_rank_at = np.zeros(ranks, np.int64)
    rd_rank_at = np.zeros(ranks, np.int64)
    faw_at = np.zeros((ranks, 4), np.int64)
    ref_pre_at = np.zeros(ranks, np.int64)
    rfc_at = np.zeros(ranks, np.int64)
    refi = np.full(ranks, tREFI - 1, np.int64)
    owed = np.zeros(ranks, np.int64)
    # reads in flight: slot and cycle of the last beat (each holds a reorder-buffer slot)
    rd_q = np.zeros((ranks, rob), np.int64)
    rd_q_last = np.zeros((ranks, rob), np.int64)
    rd_q_head = np.zeros(ranks, np.int64)
    rd_q_count = np.zeros(ranks, np.int64)
    # ---- retire and datapath ---------------------------------------------------------------
    rt_state = np.zeros(ranks, np.int64)  # 0 RUN, 1 PROLOGUE, 2 STREAM_Q8, 3 FREE
    rt_k = np.zeros(ranks, np.int64)
    rt_j = np.zeros(ranks, np.int64)
    rt_pos = np.full(ranks, header, np.int64)
    rt_group = np.zeros(ranks, np.int64)
    rt_wait = np.zeros(ranks, np.int64)  # cycle the prologue's product is valid
    last_beat = np.full(ranks, -_NEVER, np.int64)  # cycle of the last beat into the datapath
    entry_last = np.full((ranks, 16, 1024), -_NEVER, np.int64)
    drain_ready = np.full(ranks, _NEVER, np.int64)  # cycle the rank's first drain beat is valid
    drain_end = -1  # cycle of the current drain's last beat (all ranks), -1 when none
    eops_done = 0

    word = 0
    # The call starts when the PU is idle: after the scheduler's recovery (when the tREFI
    # count starts) and the cache's sweep of its sets. Cycles -offset .. -1 are the rest of
    # the sweep: no instruction yet, but refreshes fall due and are issued as in the RTL.
    t = -p[P_REFI_OFFSET]
    last_result = -1
    cand = np.zeros(depth, np.int64)
    push_rank = np.zeros(ranks, np.bool_)
    while eops_done < n_eops or word < n:
        if t > p[P_MAX_CYCLES]:  # a guard: the caller sets a generous bound
            return -1, eop_done
        # ======== decoder: offer the next word ========================================
        push_word = -1
        push_rank[:] = False
        if word < n and t >= due[word]:
            k = kind[word]
            if k == KIND_DROP:
                word += 1
            elif k == KIND_LOOKUP:
                r = rank_of[word]
                if iq_count[r] < instq_depth:
                    push_rank[r] = True
                    push_word = word
                    word += 1
            else:
                done = True
                for r in range(ranks):
                    if not taken[r]:
                        if iq_count[r] < instq_depth:
                            push_rank[r] = True
                            taken[r] = True
                        else:
                            done = False
                push_word = word
                if done:
                    taken[:] = False
                    word += 1

        # ======== per rank ===========================================================
        for r in range(ranks):
            # ---- scheduler: one command from the state at the start of the cycle ----
            ref_pending = owed[r] != 0
            rfc_done = rfc_at[r] <= t
            act_rank_ok = act_rank_at[r] <= t and faw_at[r, 3] <= t and rfc_done
            rd_rank_ok = rd_rank_at[r] <= t and rfc_done
            cmd = 0  # 0 none, 1 ACT, 2 RD, 3 PRE (request), 4 PRE (refresh), 5 REF
            cmd_bank = 0
            cmd_entry = -1
            if t < sleep_until[r]:
                pass  # nothing in the buffer or the timers has changed since the last search
            elif ref_pending:
                all_closed = True
                ref_pre = -1
                for b in range(banks):
                    if open_valid[r, b]:
                        all_closed = False
                        if ref_pre < 0 and pre_at[r, b] <= t and rfc_done:
                            ref_pre = b
                if all_closed and ref_pre_at[r] <= t and rfc_done:
                    cmd = 5
                elif ref_pre >= 0:
                    cmd = 4
                    cmd_bank = ref_pre
            if cmd == 0 and t >= sleep_until[r]:
                # classify the entries: hit_ok / closed / conflict, blockers, wanted banks
                first_rd, first_act, first_pre = -1, -1, -1
                blocked_banks = 0
                wanted = 0
                count = e_count[r]
                for i in range(count):
                    b = e_bank[r, i]
                    if open_valid[r, b]:
                        if open_row[r, b] == e_row[r, i]:
                            if not (blocked_banks >> b) & 1:
                                cand[i] = 1  # hit_ok
                                wanted |= 1 << b
                            else:
                                cand[i] = 0
                        else:
                            cand[i] = 3  # conflict
                            if t - e_from[r, i] >= limit:
                                blocked_banks |= 1 << b
                    else:
                        cand[i] = 2  # closed
                for i in range(count):
                    b = e_bank[r, i]
                    g = b >> bank_bits
                    c = cand[i]
                    if c == 1 and first_rd < 0:
                        ok = rd_at[r, b] <= t and rd_bg_at[r, g] <= t and rd_rank_ok
                        if ref_pending:
                            ok = ok and pre_at[r, b] - t >= tRTP
                        if ok:
                            first_rd = i
                    elif c == 2 and first_act < 0 and not ref_pending:
                        if act_at[r, b] <= t and act_bg_at[r, g] <= t and act_rank_ok:
                            first_act = i
                    elif c == 3 and first_pre < 0 and not ref_pending:
                        if not (wanted >> b) & 1 and pre_at[r, b] <= t and rfc_done:
                            first_pre = i
                if first_rd >= 0:
                    cmd, cmd_entry = 2, first_rd
                elif first_act >= 0:
                    cmd, cmd_entry = 1, first_act
                elif first_pre >= 0:
                    cmd, cmd_entry = 3, first_pre
                else:
                    sleep_until[r] = _wake(
                        t,
                        r,
                        count,
                        cand,
                        ref_pending,
                        wanted,
                        bank_bits,
                        banks,
                        limit,
                        refi,
                        e_bank,
                        e_from,
                        open_valid,
                        act_at,
                        rd_at,
                        pre_at,
                        act_bg_at,
                        rd_bg_at,
                        act_rank_at,
                        rd_rank_at,
                        faw_at,
                        ref_pre_at,
                        rfc_at,
                    )
                if cmd_entry >= 0:
                    cmd_bank = e_bank[r, cmd_entry]

            # ---- timers: each window is the first cycle its command is legal again ------
            # (the RTL's down-counters loaded with gap - 1, keeping the larger, in absolute time)
            if cmd == 1:
                for k4 in range(3, 0, -1):
                    faw_at[r, k4] = faw_at[r, k4 - 1]
                faw_at[r, 0] = t + tFAW
            g = cmd_bank >> bank_bits
            if cmd == 1:
                open_valid[r, cmd_bank] = True
                open_row[r, cmd_bank] = e_row[r, cmd_entry]
                act_at[r, cmd_bank] = max(act_at[r, cmd_bank], t + tRC)
                rd_at[r, cmd_bank] = max(rd_at[r, cmd_bank], t + tRCD)
                pre_at[r, cmd_bank] = max(pre_at[r, cmd_bank], t + tRAS)
                act_bg_at[r, g] = max(act_bg_at[r, g], t + tRRD_L)
                act_rank_at[r] = max(act_rank_at[r], t + tRRD_S)
                counters[r, C_ACT] += 1
                if e_cls[r, cmd_entry] == _CLS_NONE:
                    e_cls[r, cmd_entry] = _CLS_MISS
            elif cmd == 2:
                pre_at[r, cmd_bank] = max(pre_at[r, cmd_bank], t + tRTP)
                rd_bg_at[r, g] = max(rd_bg_at[r, g], t + tCCD_L)
                rd_rank_at[r] = max(rd_rank_at[r], t + tCCD_S)
                counters[r, C_RD] += 1
                cls = e_cls[r, cmd_entry]
                if cls == _CLS_NONE:
                    counters[r, C_ROW_HIT] += 1
                elif cls == _CLS_MISS:
                    counters[r, C_ROW_MISS] += 1
                else:
                    counters[r, C_ROW_CONFLICT] += 1
                q = (rd_q_head[r] + rd_q_count[r]) % rob
                rd_q[r, q] = e_slot[r, cmd_entry]
                rd_q_last[r, q] = t + tCL + tBL
                rd_q_count[r] += 1
                counters[r, C_BUS_BUSY] += tBL
            elif cmd == 3 or cmd == 4:
                open_valid[r, cmd_bank] = False
                act_at[r, cmd_bank] = max(act_at[r, cmd_bank], t + tRP)
                ref_pre_at[r] = max(ref_pre_at[r], t + tRP)
                counters[r, C_PRE] += 1
                if cmd == 3 and e_cls[r, cmd_entry] == _CLS_NONE:
                    e_cls[r, cmd_entry] = _CLS_CONFLICT
            elif cmd == 5:
                rfc_at[r] = max(rfc_at[r], t + tRFC)
                counters[r, C_REF] += 1
            # refresh interval and owed refreshes
            due_now = refi[r] == 0
            refi[r] = tREFI - 1 if due_now else refi[r] - 1
            if due_now and cmd != 5:
                sleep_until[r] = 0
                if owed[r] < 8:
                    owed[r] += 1
            elif not due_now and cmd == 5:
                owed[r] -= 1

            # ---- DRAM read data arriving in this cycle --------------------------------
            dram_beat = False
            fill_addr = -1
            if rd_q_count[r] > 0:
                q = rd_q_head[r]
                last = rd_q_last[r, q]
                if last - tBL < t <= last:
                    dram_beat = True
                    if t == last:
                        s = rd_q[r, q]
                        ready_at[r, s % rob] = t + 1
                        if slot_alloc[r, s % rob]:
                            fill_addr = slot_addr[r, s % rob]
                        rd_q_head[r] = (q + 1) % rob
                        rd_q_count[r] -= 1

            # ---- cache result: hit into its slot, miss to the scheduler ----------------
            res_taken = False
            accepted_req = False
            if res_valid[r]:
                if res_hit[r]:
                    if not dram_beat:
                        res_taken = True
                        ready_at[r, res_slot[r] % rob] = t + 1
                elif e_count[r] < depth:
                    res_taken = True
                    accepted_req = True
            if fill_addr >= 0:
                counters[r, C_FILL] += 1
                counters[r, C_EVICT] += _cache_fill(
                    cache_tags[r], cache_stamps[r], cache_valid[r], cache_clock[r], fill_addr, set_bits, ways
                )

            # ---- issue stage: a line into the reorder buffer and the cache --------------
            lookup_ready = fill_addr < 0 and (not res_valid[r] or res_taken)
            new_res = False
            pop_inst = False
            if issue_lines[r] > 0:
                w = iq[r, iq_head[r]]
                if rob_head[r] - rob_tail[r] < rob and lookup_ready:
                    line_k = issue_lines[r] - 1
                    s = rob_head[r]
                    rob_head[r] += 1
                    addr = addr_of[w] + line_k
                    slot_addr[r, s % rob] = addr
                    slot_alloc[r, s % rob] = alloc_of[w] != 0
                    ready_at[r, s % rob] = _NEVER
                    hit = _cache_lookup(
                        cache_tags[r], cache_stamps[r], cache_valid[r], cache_clock[r], addr, set_bits, ways
                    )
                    counters[r, C_LINES] += 1
                    if hit:
                        counters[r, C_CACHE_HIT] += 1
                    else:
                        counters[r, C_CACHE_MISS] += 1
                        if alloc_of[w] == 0:
                            counters[r, C_CACHE_BYPASS] += 1
                    new_res = True
                    res_hit_new = hit
                    res_slot_new = s
                    res_inst_new = w
                    res_line_new = line_k
                    if line_k + 1 == vsize_of[w]:
                        issue_lines[r] = 0
                        pop_inst = True
                    else:
                        issue_lines[r] += 1
            elif iq_count[r] > 0 and iq_time[r, iq_head[r]] + 2 <= t:
                w = iq[r, iq_head[r]]
                k = kind[w]
                if k == KIND_LOOKUP or k == KIND_EOP:
                    if oq_count[r] < opq_depth:
                        q = (oq_head[r] + oq_count[r]) % opq_depth
                        oq[r, q] = w
                        oq_first[r, q] = rob_head[r]
                        oq_beats[r, q] = (q8_elements[r] + lanes - 1) // lanes
                        oq_time[r, q] = t
                        oq_count[r] += 1
                        if k == KIND_LOOKUP:
                            counters[r, C_LOOKUPS] += 1
                            issue_lines[r] = 1
                        else:
                            pop_inst = True
                else:
                    if k == KIND_CONFIG:
                        q8_elements[r] = value_of[w]
                    pop_inst = True

            # the miss taken by the scheduler enters its buffer (after this cycle's RD)
            if cmd == 2:
                for i in range(cmd_entry, e_count[r] - 1):
                    e_bank[r, i] = e_bank[r, i + 1]
                    e_row[r, i] = e_row[r, i + 1]
                    e_slot[r, i] = e_slot[r, i + 1]
                    e_cls[r, i] = e_cls[r, i + 1]
                    e_from[r, i] = e_from[r, i + 1]
                e_count[r] -= 1
            if accepted_req:
                i = e_count[r]
                w = res_inst[r]
                b = slot_of[w]
                e_bank[r, i] = b
                e_row[r, i] = row_of[w]
                e_slot[r, i] = res_slot[r]
                e_cls[r, i] = _CLS_NONE
                e_from[r, i] = t + 1
                sleep_until[r] = 0
                e_count[r] += 1
                hint = hint_of[w] if res_line[r] == 0 else _HINT_RD
                if not shadow_valid[r, b]:
                    want = _HINT_MISS
                elif shadow_row[r, b] == row_of[w]:
                    want = _HINT_RD
                else:
                    want = _HINT_CONFLICT
                if hint != want:
                    counters[r, C_HINT_MISMATCH] += 1
                shadow_valid[r, b] = True
                shadow_row[r, b] = row_of[w]
            if res_taken:
                res_valid[r] = False
            if new_res:
                res_valid[r] = True
                res_hit[r] = res_hit_new
                res_slot[r] = res_slot_new
                res_inst[r] = res_inst_new
                res_line[r] = res_line_new

            # ---- retire: the head operation into the datapath ------------------------
            if oq_count[r] > 0 and oq_time[r, oq_head[r]] + 2 <= t:
                q = oq_head[r]
                w = oq[r, q]
                first = oq_first[r, q]
                pop_op = False
                if kind[w] == KIND_EOP:
                    if drain_ready[r] == _NEVER:
                        drain_ready[r] = max(t + 1, last_beat[r] + mul_lat + 2 * add_lat + 2)
                    if drain_end >= 0 and t == drain_end:
                        pop_op = True
                        drain_ready[r] = _NEVER
                elif q8_of[w] == 0:
                    s = first + rt_k[r]
                    e = rt_k[r] * bpl + rt_j[r]
                    if ready_at[r, s % rob] <= t and t - entry_last[r, tag_of[w], e] > add_lat:
                        entry_last[r, tag_of[w], e] = t
                        last_beat[r] = t
                        counters[r, C_BEATS] += 1
                        rt_j[r] += 1
                        if rt_j[r] == bpl:
                            rt_j[r] = 0
                            rob_tail[r] += 1
                            rt_k[r] += 1
                            if rt_k[r] == vsize_of[w]:
                                rt_k[r] = 0
                                pop_op = True
                else:
                    state = rt_state[r]
                    if state == 0:
                        if ready_at[r, first % rob] <= t:
                            if weighted_of[w]:
                                rt_state[r] = 1
                                rt_wait[r] = t + mul_lat
                            else:
                                rt_state[r] = 2
                    elif state == 1:
                        if t >= rt_wait[r]:
                            rt_state[r] = 2
                    elif state == 2:
                        pos = rt_pos[r]
                        s = first + pos // line_bytes
                        e = rt_group[r]
                        if ready_at[r, s % rob] <= t and t - entry_last[r, tag_of[w], e] > add_lat:
                            entry_last[r, tag_of[w], e] = t
                            last_beat[r] = t
                            counters[r, C_BEATS] += 1
                            if (pos + lanes) // line_bytes != pos // line_bytes:
                                rob_tail[r] += 1
                            rt_pos[r] = pos + lanes
                            rt_group[r] += 1
                            if rt_group[r] >= oq_beats[r, q]:
                                rt_state[r] = 3
                    else:
                        if rob_tail[r] == first + vsize_of[w]:
                            pop_op = True
                            rt_state[r] = 0
                            rt_pos[r] = header
                            rt_group[r] = 0
                        elif ready_at[r, rob_tail[r] % rob] <= t:
                            rob_tail[r] += 1
                if pop_op:
                    oq_head[r] = (q + 1) % opq_depth
                    oq_count[r] -= 1

            if pop_inst:
                iq_head[r] = (iq_head[r] + 1) % instq_depth
                iq_count[r] -= 1
            if push_rank[r]:
                q = (iq_head[r] + iq_count[r]) % instq_depth
                iq[r, q] = push_word
                iq_time[r, q] = t
                iq_count[r] += 1

        # ======== adder tree: a drain starts once every rank has its first beat ===============
        if drain_end >= 0 and t == drain_end:
            eop_done[eops_done] = t + tree
            last_result = t + tree
            eops_done += 1
            drain_end = -1
        elif drain_end < 0:
            start = 0
            for r in range(ranks):
                start = max(start, drain_ready[r])
            if start != _NEVER and start <= t + 1:
                # the EOP at every rank's head: its beats leave from max(start, t + 1)
                w = oq[0, oq_head[0]]
                mask = mask_of[w]
                tags = 0
                while mask:
                    tags += mask & 1
                    mask >>= 1
                beats = tags * ((elements_of[w] + lanes - 1) // lanes)
                for r in range(ranks):
                    counters[r, C_DRAIN_BEATS] += beats
                drain_end = max(start, t + 1) + max(beats, 1) - 1
        t += 1
    return last_result + 2, eop_done
