/* Credit in the arena: reserve on admission, settle to the real cost, and recovery of the
 * reservations of processes that died.
 *
 * Money. An account slot holds three int64 nano-dollar atomics: `balance` (published by the
 * persister: the cards, less what the ledger already charged), `spent` (settled by workers, not
 * yet drained into the ledger) and `reserved` (estimates of requests in flight). Available credit
 * is balance - spent - reserved. Admission (tg_credit_reserve):
 *   1. minimum-balance gate: balance - spent >= the owner's minimum ($1 by default, api-compat 1.3);
 *   2. monthly cap: month's settled spend + reserved + estimate <= HardLimit;
 *   3. write the reservation into this process's journal lane, then fetch_add(reserved, estimate)
 *      and check reserved <= balance - spent with the values read after the add; when the check
 *      fails the add is undone. Concurrent reservations therefore see each other: the sum of the
 *      estimates in flight never exceeds what is available.
 * Settling (tg_credit_settle): spent += real cost, month += real cost, reserved -= estimate, the
 * journal entry is freed; when the real cost exceeds the estimate the difference is added to
 * `overshoot` (reported by the account's counters).
 *
 * Over-spend bound. Let B be the balance and S the settled spend. Every admission checked
 * S + (estimates in flight, its own included) <= B. After the last admission nothing new starts,
 * so the final spend is at most B plus the overshoot of the requests in flight at that moment:
 *     spend <= B + sum over requests in flight at the last admission of max(0, real - estimate).
 * With an estimate that bounds the real cost (the request names max_tokens and its prompt is not
 * underestimated) the overshoot is 0 and the account never goes below zero. The estimate is
 * (prompt bytes / 3 + max_tokens, or the default completion budget) x price x Rates x Factor.
 * Killing a process with SIGKILL adds at most one request's estimate per killed process (the
 * instant between a journal write and the counter add, see recovery).
 *
 * Recovery. Each process that reserves claims one of TG_LANES journal lanes in the arena (owner =
 * its pid and start time) and records every reservation there (slot, amount) before adding it to
 * the account. A process that dies leaves its lane owned by a dead pid; tg_credit_reap(), run by
 * every worker once a second and whenever a process claims a lane, finds such lanes, claims them
 * by CAS, subtracts each live entry from its account's `reserved` and frees the lane (the master
 * and the persister reap too). An entry whose request was dispatched to an upstream is billed
 * first: an orphan usage record into the ring, its cost (what was relayed, at most the entry's
 * amount unless the relayed text passed its budget: then the excess is overshoot) into `spent`
 * and the month (shm/flight.h). So no credit stays reserved for longer than the reaping interval after its
 * process died, and no request that reached an upstream goes unbilled. Ordering:
 * entry first, then the add (a kill between the two makes the reaper subtract an amount that was
 * never added: over-credit by one estimate, never a stuck reservation); on settle, the counters
 * first, then the entry is freed (same bound). After a reboot (the kernel boot id changed) every
 * reservation and limiter clock in the arena is void and is cleared when the arena is opened,
 * after the dispatched requests of the previous boot are billed.
 *
 * Lifecycle: any process; the journal lane is claimed on the first reservation and released by
 * tg_arena_close (or reaped after death). Single-threaded per process. */
#ifndef TG_CREDIT_H
#define TG_CREDIT_H

#include <stdint.h>

#include "shm/arena-t.h"
#include "shm/flight.h"
#include "shm/policy.h"

enum { TG_CREDIT_OK = 0, TG_CREDIT_MIN_BALANCE, TG_CREDIT_NO_FUNDS, TG_CREDIT_HARD_LIMIT, TG_CREDIT_BUSY };
enum { TG_HOLD_FREE = 0, TG_HOLD_ACTIVE = 1 };
#define TG_LANE_OWNED (1ull << 32)
#define TG_LANE_RECLAIMING (2ull << 32)
#define TG_LANE_NONE 0xffffffffu

/* A reservation held by a request (copied into its state; settle it exactly once). */
typedef struct tg_credit_hold {
    uint32_t lane, idx, slot; /* lane TG_LANE_NONE: nothing reserved (cost 0) */
    uint32_t _pad;
    int64_t amount;
} tg_credit_hold_t;

/* What settling a request needs, carried from admission to the usage record's push. */
typedef struct tg_credit_bill {
    tg_credit_hold_t hold;
    int64_t cost;       /* real cost, nano-dollars */
    uint32_t month;     /* month of the admission */
    uint32_t _pad;
    int64_t soft_limit; /* the account's SoftLimit */
} tg_credit_bill_t;

typedef struct tg_credit_terms {
    int64_t min_balance; /* nano-dollars balance - spent must reach; 0 = none */
    int64_t hard_limit;  /* monthly cap, nano-dollars; 0 = none */
    uint32_t month;      /* current month (tg_cal_t.month) */
    uint64_t now_ms;     /* wall clock, recorded with the reservation (an orphan's latency) */
    const tg_flight_info_t *flight; /* the request, for the reaper to bill (flight.h); NULL: none. With
                                     * a request, a zero amount is journalled too (free models) */
} tg_credit_terms_t;

/** Journal lane I (lanes are hdr->lane_size bytes apart: their capacity is set at creation). */
static inline tg_lane_t *tg_lane_at(const tg_arena_t *a, uint32_t i)
{
    return (tg_lane_t *)((char *)a->lanes + (uint64_t)i * a->hdr->lane_size);
}

/** Reserves AMOUNT for the account in SLOT. TG_CREDIT_OK and *OUT, or the reason it was refused
 * (TG_CREDIT_BUSY: no journal room; answer 503). */
int tg_credit_reserve(tg_arena_t *a, uint32_t slot, int64_t amount, const tg_credit_terms_t *terms, tg_credit_hold_t *out);
/** Settles H to REAL nano-dollars (0 for a request that was not billed) in MONTH; SOFT_LIMIT (0 =
 * none) is the account's monthly alert threshold (crossing it sets the slot's soft_month). */
void tg_credit_settle(tg_arena_t *a, tg_credit_hold_t *h, int64_t real, uint32_t month, int64_t soft_limit);
/** Nano-dollars the account settled in MONTH. */
int64_t tg_credit_month_spent(const tg_account_t *acct, uint32_t month);
/** balance - spent - reserved. */
int64_t tg_credit_available(const tg_account_t *acct);

/** Reclaims the journal lanes of dead processes: each dispatched request among their open
 * reservations is billed with an orphan record (flight.h), then every reservation is released.
 * Returns the reservations released. A lane whose orphans do not fit the ring now is left to a
 * later call. */
size_t tg_credit_reap(tg_arena_t *a);
/** tg_credit_reap() at most once a second (NOW_MS). */
void tg_credit_maybe_reap(tg_arena_t *a, uint64_t now_ms);
/** Releases this process's lane when none of its reservations is open, and frees the private
 * state (tg_arena_close calls it). */
void tg_credit_detach(tg_arena_t *a);
/** Reservations of this process still open. */
uint32_t tg_credit_open_holds(const tg_arena_t *a);

/** Master, when opening the arena: after a reboot clears the limiter clocks (CLOCK_MONOTONIC
 * restarted) and every reservation and lane (their processes are gone). */
void tg_quota_boot_check(tg_arena_t *a);

/** Cost in nano-dollars: (uncached prompt x input + cached x cached + completion x output) x
 * Rates x Factor, rounded to the nearest nano-dollar. CACHED is part of PROMPT (OpenAI). */
int64_t tg_cost_nanos(const tg_price_t *p, uint64_t prompt, uint64_t completion, uint64_t cached, uint64_t rates_ppm,
                      uint64_t factor_ppm);

#endif
