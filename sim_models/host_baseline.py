"""Host baseline: a cycle-level DDR4 model of the CPU's memory controller reading every line.

Without near-memory processing the host reads every embedding vector itself, one 64 B line
(a BL8 burst) at a time, over the channel that holds it. :func:`host_baseline` takes that
stream (:data:`sim_models.host_reads.HOST_READ_DTYPE`, program order, from
:func:`sim_models.host_reads.host_reads`) and simulates, per channel, a memory controller
in front of the channel's ranks, cycle by cycle on the DRAM command clock. Timing and
geometry are :class:`hw.ddr4.DDR4Timing` and :class:`hw.ddr4.DDR4Geometry`, the one
definition the RTL, the protocol checker and this model share.

Modelled, per channel (channels run in parallel and independently; the result's ``cycles``
is the slowest channel's):

* **C/A bus**: one command (ACT, RD, PRE or REF) per cycle for all ranks of the channel.
* **Data bus**, shared by the ranks: a RD issued in cycle ``c`` occupies it in cycles
  ``c + tCL .. c + tCL + tBL - 1``. Bursts never overlap (same rank: ``tCCD_S >= tBL``);
  a burst of another rank than the previous burst starts at least ``rank_switch`` idle
  cycles after it (DDR4's rank-to-rank turnaround tRTRS; it is a controller/board
  property, not a :class:`~hw.ddr4.DDR4Timing` field, so it is a parameter here, 2 by
  default: JEDEC's minimum of one idle clock plus one for the preamble, as DDR4
  controllers usually configure it).
* **Request queue**: ``queue_depth`` entries (32 as in the paper's baseline), shared by all
  ranks of the channel. Reads enter in program order, at most one per cycle, whenever an
  entry is free (the entry freed by a RD in a cycle is reused in the same cycle); a read
  that entered in cycle ``a`` can be scheduled from ``a + 1``. The CPU is never the
  bottleneck: the next read is always there (no core, cache or MSHR model).
* **FR-FCFS, open page** over every bank of every rank of the channel, one decision per
  cycle, in this order of preference (the policy of the RTL's ``RankScheduler``,
  ``docs/rank_scheduler.md``):

  0. refresh commands (below);
  1. **RD**: the oldest queued read whose row is open and whose RD is legal;
  2. **ACT**: the oldest read whose bank is closed and whose ACT is legal;
  3. **PRE**: the oldest read whose bank has another row open, when no queued read wants
     that open row (rows stay open otherwise) and PRE is legal.

  **Starvation cap**: a read that has waited ``starvation_limit`` cycles (64 by default,
  as the RTL) and whose bank has another row open blocks every younger row hit to that
  bank: the older hits drain, the row is closed for it and it is served.
* **Timing**, per rank: tRCD, tRP, tRAS, tRC, tRTP, tCCD_S/L, tRRD_S/L, tFAW (rolling window
  of the last four ACTs), tRFC (no command to the rank for tRFC after its REF), tCL/tBL on
  the data bus.
* **Refresh**, per rank, every ``tREFI`` (``refresh=True``): when it falls due, the rank gets
  no more ACTs and no PREs for row conflicts; its open banks are precharged as soon as tRAS
  and tRTP allow (a RD to an open row still goes if it does not delay its bank's PRE), REF
  goes when every bank is closed and tRP has passed, then the rank is silent for tRFC.
  Refresh commands have priority over reads on the C/A bus. By default every rank of a
  channel falls due together, at ``k * tREFI`` (``stagger_refresh=False``); with
  ``stagger_refresh=True`` the phases are spread evenly (rank ``r`` of ``R`` first at
  ``(r + 1) * tREFI // R``). Staggering is what a controller with per-rank queues would
  do, but with one queue filled in program order it is slower: while one rank refreshes,
  the queue fills with that rank's reads within a few dozen reads and the channel stalls
  anyway, once per rank instead of once per tREFI (RMC2-large-shaped stream, 4 channels x
  2 ranks: 92.7 % data-bus utilisation aligned, 90.5 % staggered, 97.6 % without refresh).
  The faster choice is the default, so that the baseline is not made slow on purpose.

Not modelled: writes (the SLS stream only reads), the CPU side (cores, caches, prefetchers,
MSHRs, the on-chip network: the queue is always fed), address mapping (the stream already
carries DRAM coordinates), power-down, ZQ calibration, 2N command timing, fine-granularity
or per-bank refresh, and any scheduling beyond FR-FCFS (no rank or bank-group affinity, no
batching). The model starts with every bank precharged and no refresh owed, in cycle 0
(the RTL's recovery after reset is not part of it).

Speed: the per-channel loop is compiled with numba (``@njit(cache=True)``: compiled on
first use, then loaded from the cache next to this file) and skips cycles in which no
command can issue, jumping to the next cycle at which one becomes legal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

from hw.ddr4 import DDR4Geometry, DDR4Timing

from .host_reads import HOST_READ_DTYPE

__all__ = ["COMMANDS", "TRACE_DTYPE", "HostBaselineResult", "host_baseline"]

#: The command names of :attr:`HostBaselineResult.commands`, in the kernel's column order.
COMMANDS = ("ACT", "RD", "PRE", "REF")

#: One command of a ``trace=True`` run. ``cmd`` is the :class:`hw.ddr4.DramCommand` value;
#: ``rank`` the rank within the channel; ``column`` in 8 B units (RD only); ``row`` for
#: ACT and RD; ``bank_group``/``bank`` 0 for REF.
TRACE_DTYPE = np.dtype(
    [
        ("cycle", np.int64),
        ("channel", np.int32),
        ("rank", np.int32),
        ("cmd", np.uint8),
        ("bank_group", np.uint8),
        ("bank", np.uint8),
        ("row", np.int32),
        ("column", np.int32),
    ]
)

_NEVER = -(1 << 40)
_BIG = 1 << 62
# Indices of the kernel's ``stats`` output.
_HITS, _MISSES, _CONFLICTS, _LAST_RD, _READS, _TRACED, _STEPS, _STUCK = range(8)
_NSTATS = 8


@dataclass(frozen=True)
class HostBaselineResult:
    """What :func:`host_baseline` measured.

    Attributes
    ----------
    cycles : int
        DRAM cycles from the first read entering its queue (cycle 0) to the last data beat
        (inclusive) over all channels: the slowest channel's ``channel_cycles``.
    channel_cycles : tuple of int
        Per channel, cycle of its last data beat + 1 (0 for a channel without reads).
    commands : dict
        ``(channel, rank) -> {"ACT": n, "RD": n, "PRE": n, "REF": n}`` for every rank of
        every channel (``rank`` within the channel). PREs include refresh PREs.
    row_hits, row_misses, row_conflicts : int
        Per RD: ``row_conflicts`` if a PRE of another row was issued for its read, else
        ``row_misses`` if an ACT was, else ``row_hits`` (a bank closed by a refresh makes a
        miss). They add up to the reads.
    data_bus_busy : tuple of int
        Per channel, cycles its data bus carried data (``tBL`` per RD).
    bytes_read : int
        64 B per RD.
    reads : int
        Lines read (RDs issued, equal to the input's length).
    trace : numpy.ndarray or None
        With ``trace=True``: every command, :data:`TRACE_DTYPE`, sorted by channel then
        cycle. ``None`` otherwise.
    parameters : dict
        The model's parameters (``timing``, ``queue_depth``, ``rank_switch``, ...).
    """

    cycles: int
    channel_cycles: tuple
    commands: dict
    row_hits: int
    row_misses: int
    row_conflicts: int
    data_bus_busy: tuple
    bytes_read: int
    reads: int
    trace: np.ndarray | None = field(default=None, repr=False)
    parameters: dict = field(default_factory=dict, repr=False)

    @property
    def data_bus_utilisation(self) -> tuple:
        """Per channel, ``data_bus_busy / channel_cycles`` (0.0 for an idle channel)."""
        return tuple(b / c if c else 0.0 for b, c in zip(self.data_bus_busy, self.channel_cycles))

    @property
    def bandwidth_bytes_per_cycle(self) -> float:
        """``bytes_read / cycles`` over the whole system (0.0 without reads)."""
        return self.bytes_read / self.cycles if self.cycles else 0.0


# ---------------------------------------------------------------------------------------
# The per-channel kernel.


@njit(cache=True)
def _simulate_channel(  # noqa: C901 (one loop, on purpose: numba)
    gbank, row, line, timing, params, counts, stats, trace
):
    """Simulate one channel. ``gbank[i]`` is read ``i``'s bank over the channel
    (``(rank * bank_groups + bank_group) * banks_per_group + bank``), ``row``/``line`` its
    row and 64 B line. ``timing`` = tRCD, tCL, tRP, tRAS, tRC, tBL, tCCD_S, tCCD_L, tRRD_S,
    tRRD_L, tFAW, tRTP, tREFI, tRFC; ``params`` = ranks, bank_groups, banks_per_group,
    queue_depth, rank_switch, starvation_limit, refresh, stagger, burst_columns. Writes
    ``counts[rank, ACT/RD/PRE/REF]``, ``stats`` and up to ``len(trace)`` commands
    (cycle, rank, cmd code, bank_group, bank, row, column) to ``trace``."""
    tRCD, tRP, tRAS, tRC, tBL = timing[0], timing[2], timing[3], timing[4], timing[5]  # tCL: not needed
    tCCD_S, tCCD_L, tRRD_S, tRRD_L, tFAW, tRTP = timing[6], timing[7], timing[8], timing[9], timing[10], timing[11]
    tREFI, tRFC = timing[12], timing[13]
    nranks, nbg, nbpg, depth = params[0], params[1], params[2], params[3]
    rank_switch, starvation, refresh, stagger, burst_columns = params[4], params[5], params[6], params[7], params[8]
    code_act, code_rd, code_pre, code_ref = 1, 2, 3, 4
    bpr = nbg * nbpg
    nbanks = nranks * bpr
    ngroups = nranks * nbg
    n = gbank.shape[0]
    cap = trace.shape[0]

    bank_open = np.zeros(nbanks, np.bool_)
    open_row = np.full(nbanks, -1, np.int64)
    b_next_act = np.zeros(nbanks, np.int64)
    b_next_rd = np.zeros(nbanks, np.int64)
    b_next_pre = np.zeros(nbanks, np.int64)
    b_hits = np.zeros(nbanks, np.int64)  # queued reads to the open row
    seen_stamp = np.full(nbanks, -1, np.int64)
    seen_hits = np.zeros(nbanks, np.int64)  # this cycle's scan: older unblocked hits so far
    blocked_stamp = np.full(nbanks, -1, np.int64)
    g_next_act = np.zeros(ngroups, np.int64)
    g_next_rd = np.zeros(ngroups, np.int64)
    r_next_act = np.zeros(nranks, np.int64)
    r_next_rd = np.zeros(nranks, np.int64)
    r_faw = np.full((nranks, 4), -(1 << 40), np.int64)
    r_faw_pos = np.zeros(nranks, np.int64)
    r_rfc_until = np.zeros(nranks, np.int64)
    r_ref_ready = np.zeros(nranks, np.int64)
    r_open = np.zeros(nranks, np.int64)
    r_pending = np.zeros(nranks, np.bool_)
    r_due = np.zeros(nranks, np.int64)
    for r in range(nranks):
        r_due[r] = (r + 1) * tREFI // nranks if stagger else tREFI

    b_rank = np.zeros(nbanks, np.int64)
    b_group = np.zeros(nbanks, np.int64)
    for b in range(nbanks):
        b_rank[b] = b // bpr
        b_group[b] = b // nbpg
    r_act_ok = np.zeros(nranks, np.int64)  # this cycle: the rank's earliest ACT (tRRD_S, tFAW, tRFC)
    r_rd_ok = np.zeros(nranks, np.int64)  # this cycle: the rank's earliest RD (tCCD_S, tRFC, data bus)

    # The queue, oldest first (a collapsing queue: a served entry's younger ones move down).
    q_bank = np.zeros(depth, np.int64)
    q_row = np.zeros(depth, np.int64)
    q_line = np.zeros(depth, np.int64)
    q_adm = np.zeros(depth, np.int64)  # cycle it entered
    q_cls = np.zeros(depth, np.int64)  # 0 nothing done for it, 1 ACT, 2 PRE of another row
    q_n = 0
    nxt = 0
    last_rd = -(1 << 40)
    last_rd_rank = -1
    progress = 0  # cycle of the last RD (or the start)
    stall_limit = 16 * tREFI + 100000
    traced = 0
    steps = 0
    big = 1 << 62
    c = 0

    while nxt < n or q_n > 0:
        steps += 1
        wake = big
        cmd = 0  # what was issued this cycle (0: nothing)
        c_rank, c_bank, c_row, c_col = 0, 0, 0, 0

        # -- 0. refresh ----------------------------------------------------------------
        if refresh:
            for r in range(nranks):
                if not r_pending[r]:
                    if c >= r_due[r]:
                        r_pending[r] = True
                    elif r_due[r] < wake:
                        wake = r_due[r]
            for r in range(nranks):
                if not r_pending[r]:
                    continue
                if r_open[r] == 0:
                    t_ok = max(r_ref_ready[r], r_rfc_until[r])
                    if t_ok <= c:
                        cmd = code_ref
                        c_rank = r
                        c_bank = r * bpr
                        r_rfc_until[r] = c + tRFC
                        r_due[r] += tREFI
                        r_pending[r] = False
                        counts[r, 3] += 1
                        break
                    if t_ok < wake:
                        wake = t_ok
                else:
                    for b in range(r * bpr, (r + 1) * bpr):
                        if bank_open[b]:
                            t_ok = max(b_next_pre[b], r_rfc_until[r])
                            if t_ok <= c:
                                cmd = code_pre
                                c_rank = r
                                c_bank = b
                                break
                            if t_ok < wake:
                                wake = t_ok
                    if cmd:
                        break

        # -- 1-3. FR-FCFS over the queue ----------------------------------------------------
        choice_act = -1
        choice_pre = -1
        rd_at = -1
        if cmd == 0 and q_n > 0:
            bus_ok = last_rd + tBL + rank_switch
            for r in range(nranks):
                r_act_ok[r] = max(r_next_act[r], r_faw[r, r_faw_pos[r]] + tFAW, r_rfc_until[r])
                t_ok = max(r_next_rd[r], r_rfc_until[r])
                if r != last_rd_rank and bus_ok > t_ok:
                    t_ok = bus_ok
                r_rd_ok[r] = t_ok
            for qi in range(q_n):
                b = q_bank[qi]
                if bank_open[b]:
                    r = b_rank[b]
                    if open_row[b] == q_row[qi]:  # row hit
                        if blocked_stamp[b] == c:
                            continue
                        if seen_stamp[b] != c:
                            seen_stamp[b] = c
                            seen_hits[b] = 0
                        seen_hits[b] += 1
                        t_ok = max(b_next_rd[b], g_next_rd[b_group[b]], r_rd_ok[r])
                        if r_pending[r] and b_next_pre[b] < max(t_ok, c) + tRTP:
                            continue  # it would delay the refresh's PRE: served after the refresh
                        if t_ok <= c:
                            rd_at = qi
                            break
                        if t_ok < wake:
                            wake = t_ok
                    else:  # another row open: conflict
                        starving = c - q_adm[qi] >= starvation
                        if starving:
                            blocked_stamp[b] = c
                        if choice_pre < 0 and not r_pending[r]:
                            if starving:
                                wanted = seen_hits[b] if seen_stamp[b] == c else 0
                            else:
                                wanted = b_hits[b]
                                if wanted and q_adm[qi] + starvation < wake:
                                    wake = q_adm[qi] + starvation
                            if wanted == 0:
                                t_ok = max(b_next_pre[b], r_rfc_until[r])
                                if t_ok <= c:
                                    choice_pre = qi
                                elif t_ok < wake:
                                    wake = t_ok
                elif choice_act < 0:
                    r = b_rank[b]
                    if not r_pending[r]:
                        t_ok = max(b_next_act[b], g_next_act[b_group[b]], r_act_ok[r])
                        if t_ok <= c:
                            choice_act = qi
                        elif t_ok < wake:
                            wake = t_ok

        if rd_at >= 0:
            qi = rd_at
            b = q_bank[qi]
            r = b_rank[b]
            cmd = code_rd
            c_rank, c_bank, c_row, c_col = r, b, q_row[qi], q_line[qi] * burst_columns
            b_next_pre[b] = max(b_next_pre[b], c + tRTP)
            g_next_rd[b_group[b]] = c + tCCD_L
            r_next_rd[r] = c + tCCD_S
            last_rd = c
            last_rd_rank = r
            progress = c
            b_hits[b] -= 1
            stats[q_cls[qi]] += 1  # _HITS, _MISSES, _CONFLICTS = 0, 1, 2
            stats[4] += 1
            counts[r, 1] += 1
            for k in range(qi, q_n - 1):
                q_bank[k] = q_bank[k + 1]
                q_row[k] = q_row[k + 1]
                q_line[k] = q_line[k + 1]
                q_adm[k] = q_adm[k + 1]
                q_cls[k] = q_cls[k + 1]
            q_n -= 1
        elif cmd == 0 and choice_act >= 0:
            qi = choice_act
            b = q_bank[qi]
            r = b_rank[b]
            cmd = code_act
            c_rank, c_bank, c_row = r, b, q_row[qi]
            bank_open[b] = True
            open_row[b] = c_row
            b_next_rd[b] = c + tRCD
            b_next_pre[b] = c + tRAS
            b_next_act[b] = c + tRC
            g_next_act[b_group[b]] = c + tRRD_L
            r_next_act[r] = c + tRRD_S
            r_faw[r, r_faw_pos[r]] = c
            r_faw_pos[r] = (r_faw_pos[r] + 1) & 3
            r_open[r] += 1
            if q_cls[qi] == 0:
                q_cls[qi] = 1
            hits = 0
            for k in range(q_n):
                if q_bank[k] == b and q_row[k] == c_row:
                    hits += 1
            b_hits[b] = hits
            counts[r, 0] += 1
        elif cmd == 0 and choice_pre >= 0:
            qi = choice_pre
            b = q_bank[qi]
            cmd = code_pre
            c_rank, c_bank = b_rank[b], b
            q_cls[qi] = 2

        if cmd == code_pre:  # refresh or conflict PRE
            b = c_bank
            r = c_rank
            c_row = open_row[b]
            bank_open[b] = False
            open_row[b] = -1
            b_next_act[b] = max(b_next_act[b], c + tRP)
            r_ref_ready[r] = max(r_ref_ready[r], c + tRP)
            r_open[r] -= 1
            b_hits[b] = 0
            counts[r, 2] += 1

        if cmd:
            if traced < cap:
                local = c_bank - c_rank * bpr
                trace[traced, 0] = c
                trace[traced, 1] = c_rank
                trace[traced, 2] = cmd
                trace[traced, 3] = local // nbpg
                trace[traced, 4] = local % nbpg
                trace[traced, 5] = c_row if cmd != code_ref else 0
                trace[traced, 6] = c_col
            traced += 1

        # -- admission: the next read in program order, if an entry is free ---------------
        admitted = False
        if nxt < n and q_n < depth:
            b = gbank[nxt]
            q_bank[q_n] = b
            q_row[q_n] = row[nxt]
            q_line[q_n] = line[nxt]
            q_adm[q_n] = c
            q_cls[q_n] = 0
            q_n += 1
            if bank_open[b] and open_row[b] == row[nxt]:
                b_hits[b] += 1
            nxt += 1
            admitted = True

        if cmd or admitted:
            c += 1
        elif q_n > 0 or nxt < n:
            if wake == big:
                stats[7] = 1  # nothing can ever issue: a bug
                break
            c = wake if wake > c else c + 1
        if c - progress > stall_limit:
            stats[7] = 2  # no read served for 16 refresh intervals: a bug
            break

    stats[3] = last_rd
    stats[5] = traced
    stats[6] = steps


# ---------------------------------------------------------------------------------------
# The Python front end.


def _check_int(name: str, value, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low or (high and value > high):
        where = f"from {low} to {high}" if high else f">= {low}"
        raise ValueError(f"{name} must be an integer {where}, got {value!r}")
    return int(value)


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


_FIELDS = ("channel", "rank", "bank_group", "bank", "row", "line")


def host_baseline(
    reads: np.ndarray,
    *,
    timing: DDR4Timing = DDR4Timing(),
    geometry: DDR4Geometry = DDR4Geometry(),
    channels: int | None = None,
    ranks_per_channel: int | None = None,
    queue_depth: int = 32,
    rank_switch: int = 2,
    starvation_limit: int = 64,
    refresh: bool = True,
    stagger_refresh: bool = False,
    trace: bool = False,
) -> HostBaselineResult:
    """Simulate the host's memory controllers reading ``reads`` (module docstring).

    Parameters
    ----------
    reads : numpy.ndarray
        The line reads in program order: :data:`~sim_models.host_reads.HOST_READ_DTYPE`
        records (any structured array with integer fields ``channel``, ``rank``,
        ``bank_group``, ``bank``, ``row``, ``line``; ``address`` is not used).
    timing : hw.ddr4.DDR4Timing
        DRAM timing in DRAM clock cycles.
    geometry : hw.ddr4.DDR4Geometry
        One rank's shape (bank groups, banks, rows, lines per row).
    channels : int, optional
        Channels; default ``reads["channel"].max() + 1`` (1 without reads).
    ranks_per_channel : int, optional
        Ranks of each channel (DIMMs x ranks per DIMM); default ``reads["rank"].max() + 1``.
    queue_depth : int, default 32
        Request-queue entries per channel (the paper's baseline controller has 32).
    rank_switch : int, default 2
        Idle data-bus cycles between bursts of different ranks (tRTRS), >= 0.
    starvation_limit : int, default 64
        Cycles after which a queued row conflict blocks younger hits to its bank, >= 1.
    refresh : bool, default True
        Refresh every rank every ``tREFI``.
    stagger_refresh : bool, default False
        Spread the ranks' refresh phases over ``tREFI`` (else all refresh together).
    trace : bool, default False
        Also return every command (:attr:`HostBaselineResult.trace`).

    Returns
    -------
    HostBaselineResult

    Raises
    ------
    ValueError
        A bad parameter, or a read outside the topology or geometry; the message names it.
    """
    if not isinstance(timing, DDR4Timing):
        raise ValueError(f"timing must be a hw.ddr4.DDR4Timing, got {timing!r}")
    if not isinstance(geometry, DDR4Geometry):
        raise ValueError(f"geometry must be a hw.ddr4.DDR4Geometry, got {geometry!r}")
    if not isinstance(reads, np.ndarray) or reads.dtype.names is None or reads.ndim != 1:
        raise ValueError(
            f"reads must be a 1-d structured numpy array of sim_models.host_reads.HOST_READ_DTYPE, got {type(reads)}"
        )
    missing = [f for f in _FIELDS if f not in reads.dtype.names]
    if missing:
        raise ValueError(f"reads lacks the field(s) {missing} (expected HOST_READ_DTYPE: {HOST_READ_DTYPE.names})")
    for f in _FIELDS:
        if reads.dtype[f].kind not in "iu":
            raise ValueError(f"reads[{f!r}] must be integers, got dtype {reads.dtype[f]}")
    queue_depth = _check_int("queue_depth", queue_depth, 1, 1 << 16)
    rank_switch = _check_int("rank_switch", rank_switch, 0, 1 << 16)
    starvation_limit = _check_int("starvation_limit", starvation_limit, 1)
    refresh = _check_bool("refresh", refresh)
    stagger_refresh = _check_bool("stagger_refresh", stagger_refresh)
    trace = _check_bool("trace", trace)
    n = reads.size
    channel = reads["channel"].astype(np.int64)
    rank = reads["rank"].astype(np.int64)
    if channels is None:
        channels = max(int(channel.max()) + 1, 1) if n else 1
    if ranks_per_channel is None:
        ranks_per_channel = max(int(rank.max()) + 1, 1) if n else 1
    channels = _check_int("channels", channels, 1, 1 << 10)
    ranks_per_channel = _check_int("ranks_per_channel", ranks_per_channel, 1, 1 << 10)
    limits = {
        "channel": channels,
        "rank": ranks_per_channel,
        "bank_group": geometry.bank_groups,
        "bank": geometry.banks_per_group,
        "row": geometry.rows,
        "line": geometry.lines_per_row,
    }
    for f, high in limits.items():
        if n:
            values = reads[f]
            low_v, high_v = int(values.min()), int(values.max())
            if low_v < 0 or high_v >= high:
                bad = low_v if low_v < 0 else high_v
                k = int(np.flatnonzero(values == bad)[0])
                raise ValueError(f"read {k}: {f} {bad} is out of range 0..{high - 1}")

    t = timing
    timing_v = np.array(
        [t.tRCD, t.tCL, t.tRP, t.tRAS, t.tRC, t.tBL, t.tCCD_S, t.tCCD_L, t.tRRD_S, t.tRRD_L, t.tFAW, t.tRTP]
        + [t.tREFI, t.tRFC],
        np.int64,
    )
    params_v = np.array(
        [
            ranks_per_channel,
            geometry.bank_groups,
            geometry.banks_per_group,
            queue_depth,
            rank_switch,
            starvation_limit,
            int(refresh),
            int(stagger_refresh),
            geometry.burst_columns,
        ],
        np.int64,
    )
    gbank_all = (rank * geometry.bank_groups + reads["bank_group"].astype(np.int64)) * geometry.banks_per_group + reads[
        "bank"
    ].astype(np.int64)
    order = np.argsort(channel, kind="stable") if channels > 1 else np.arange(n)
    bounds = np.searchsorted(channel[order], np.arange(channels + 1))
    row_all = reads["row"].astype(np.int64)
    line_all = reads["line"].astype(np.int64)

    channel_cycles, busy, traces = [], [], []
    commands = {}
    totals = np.zeros(_NSTATS, np.int64)
    for ch in range(channels):
        sel = order[bounds[ch] : bounds[ch + 1]]
        gbank, row_c, line_c = gbank_all[sel], row_all[sel], line_all[sel]
        counts = np.zeros((ranks_per_channel, 4), np.int64)
        stats = np.zeros(_NSTATS, np.int64)
        cap = 3 * sel.size + 64 if trace else 0
        while True:
            buf = np.zeros((cap, 7), np.int64)
            counts[:] = 0
            stats[:] = 0
            _simulate_channel(gbank, row_c, line_c, timing_v, params_v, counts, stats, buf)
            if stats[_STUCK]:
                why = "can issue no command" if stats[_STUCK] == 1 else "served no read for 16 x tREFI cycles"
                raise RuntimeError(f"host baseline: channel {ch} {why} (a bug of the model)")
            if not trace or stats[_TRACED] <= cap:
                break
            cap = int(stats[_TRACED])
        if trace:
            rec = np.zeros(int(stats[_TRACED]), TRACE_DTYPE)
            buf = buf[: rec.size]
            rec["cycle"], rec["rank"], rec["cmd"] = buf[:, 0], buf[:, 1], buf[:, 2]
            rec["bank_group"], rec["bank"], rec["row"], rec["column"] = buf[:, 3], buf[:, 4], buf[:, 5], buf[:, 6]
            rec["channel"] = ch
            traces.append(rec)
        totals += stats
        channel_cycles.append(int(stats[_LAST_RD]) + t.tCL + t.tBL if stats[_READS] else 0)
        busy.append(int(stats[_READS]) * t.tBL)
        for r in range(ranks_per_channel):
            commands[(ch, r)] = {name: int(counts[r, k]) for k, name in enumerate(COMMANDS)}
    assert int(totals[_READS]) == n
    return HostBaselineResult(
        cycles=max(channel_cycles),
        channel_cycles=tuple(channel_cycles),
        commands=commands,
        row_hits=int(totals[_HITS]),
        row_misses=int(totals[_MISSES]),
        row_conflicts=int(totals[_CONFLICTS]),
        data_bus_busy=tuple(busy),
        bytes_read=n * geometry.burst_bytes,
        reads=n,
        trace=np.concatenate(traces) if trace else None,
        parameters=dict(
            timing=timing,
            geometry=geometry,
            channels=channels,
            ranks_per_channel=ranks_per_channel,
            queue_depth=queue_depth,
            rank_switch=rank_switch,
            starvation_limit=starvation_limit,
            refresh=refresh,
            stagger_refresh=stagger_refresh,
        ),
    )
